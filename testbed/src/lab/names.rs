//! How lab objects are named, so parallel labs never collide and a later run can tell which
//! namespaces belong to a dead process. Pure functions only.

/// Every namespace a lab creates starts with this prefix.
pub const PREFIX: &str = "bt-";

/// Linux limit on interface names (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// The lab id for the `seq`-th lab of process `pid`: `bt-PID-SEQ`.
pub fn lab_id(pid: u32, seq: u32) -> String {
    format!("{PREFIX}{pid}-{seq}")
}

/// The kernel name of a lab namespace: `bt-PID-SEQ-NODE`.
pub fn netns_name(lab_id: &str, node: &str) -> String {
    format!("{lab_id}-{node}")
}

/// The pid that created a namespace or runtime directory named by [`netns_name`] or [`lab_id`],
/// or `None` if the name is not the testbed's.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    let seq = rest.split('-').next()?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether `name` is acceptable as an interface name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// Whether `name` is acceptable as a node name (it becomes part of a file name).
pub fn valid_node(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_round_trips() {
        let name = netns_name(&lab_id(4242, 7), "r-1");
        assert_eq!(name, "bt-4242-7-r-1");
        assert_eq!(owner_pid(&name), Some(4242));
        assert_eq!(owner_pid(&lab_id(9, 0)), Some(9));
    }

    #[test]
    fn foreign_names_have_no_owner() {
        assert_eq!(owner_pid("blue"), None);
        assert_eq!(owner_pid("bt-x-1-r1"), None);
        assert_eq!(owner_pid("bt-12-r1"), None);
        assert_eq!(owner_pid("bt-12"), None);
    }

    #[test]
    fn interface_names_respect_the_kernel_limit() {
        assert!(valid_ifname("eth0"));
        assert!(valid_ifname("abcdefghijklmno"));
        assert!(!valid_ifname("abcdefghijklmnop"));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname(""));
        assert!(!valid_node("a b"));
        assert!(valid_node("node-1"));
    }
}
