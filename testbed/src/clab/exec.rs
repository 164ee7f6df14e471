//! Turning containerlab `exec` lines into netlink actions where they are the usual address,
//! route, link and sysctl commands. Pure parsing; anything unrecognised stays a shell line.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// What one `exec` line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecAction {
    /// `ip address add CIDR dev IF`.
    AddAddress {
        /// Interface.
        ifname: String,
        /// Address with prefix length.
        address: IpNetwork,
    },
    /// `ip route add DEST via GW`.
    AddRoute {
        /// Destination.
        destination: IpNetwork,
        /// Gateway.
        gateway: IpAddr,
    },
    /// `ip link set [dev] IF up`.
    LinkUp(String),
    /// `sysctl [-w] KEY=VALUE`.
    Sysctl {
        /// Dotted or slashed key.
        key: String,
        /// Value.
        value: String,
    },
    /// Anything else, for `sh -c`.
    Shell(String),
}

fn is_prefix_of(word: &str, full: &str) -> bool {
    !word.is_empty() && full.starts_with(word)
}

/// Parses one `exec` line.
pub fn parse_exec(line: &str) -> ExecAction {
    parse_known(line).unwrap_or_else(|| ExecAction::Shell(line.to_string()))
}

fn parse_known(line: &str) -> Option<ExecAction> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match *words.first()? {
        "sysctl" => {
            let assignment = words.iter().skip(1).find(|w| !w.starts_with('-'))?;
            let (key, value) = assignment.split_once('=')?;
            Some(ExecAction::Sysctl {
                key: key.to_string(),
                value: value.to_string(),
            })
        }
        "ip" => parse_ip(&words[1..]),
        _ => None,
    }
}

fn parse_ip(words: &[&str]) -> Option<ExecAction> {
    let mut v6 = false;
    let mut rest = words;
    while let Some(flag) = rest.first().filter(|w| w.starts_with('-')) {
        match *flag {
            "-6" => v6 = true,
            "-4" => {}
            _ => return None,
        }
        rest = &rest[1..];
    }
    let (object, verb) = (*rest.first()?, *rest.get(1)?);
    let args = &rest[2..];
    let value_of = |key: &str| args.windows(2).find(|w| w[0] == key).map(|w| w[1]);
    if is_prefix_of(object, "address") && verb == "add" {
        let address: IpNetwork = args.first()?.parse().ok()?;
        let ifname = value_of("dev")?.to_string();
        if args.len() != 3 {
            return None;
        }
        return Some(ExecAction::AddAddress { ifname, address });
    }
    if is_prefix_of(object, "route") && verb == "add" {
        let gateway: IpAddr = value_of("via")?.parse().ok()?;
        let destination = match *args.first()? {
            "default" if v6 || gateway.is_ipv6() => "::/0".parse().ok()?,
            "default" => "0.0.0.0/0".parse().ok()?,
            other => other.parse().ok()?,
        };
        // Only `DEST via GW [dev IF]`: anything more (metric, table, nexthop) goes to the shell.
        let known = if value_of("dev").is_some() { 5 } else { 3 };
        if args.len() != known {
            return None;
        }
        return Some(ExecAction::AddRoute {
            destination,
            gateway,
        });
    }
    if object == "link" && verb == "set" {
        let args: Vec<&str> = args.iter().copied().filter(|w| *w != "dev").collect();
        if let [ifname, "up"] = args.as_slice() {
            return Some(ExecAction::LinkUp((*ifname).to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_route_link_and_sysctl_lines_become_actions() {
        assert_eq!(
            parse_exec("ip addr add 10.0.0.1/24 dev eth1"),
            ExecAction::AddAddress {
                ifname: "eth1".into(),
                address: "10.0.0.1/24".parse().unwrap()
            }
        );
        assert_eq!(
            parse_exec("ip -6 address add fd00::1/64 dev eth1"),
            ExecAction::AddAddress {
                ifname: "eth1".into(),
                address: "fd00::1/64".parse().unwrap()
            }
        );
        assert_eq!(
            parse_exec("ip route add default via 10.0.0.1"),
            ExecAction::AddRoute {
                destination: "0.0.0.0/0".parse().unwrap(),
                gateway: "10.0.0.1".parse().unwrap()
            }
        );
        assert_eq!(
            parse_exec("ip -6 route add default via fd00::1 dev eth1"),
            ExecAction::AddRoute {
                destination: "::/0".parse().unwrap(),
                gateway: "fd00::1".parse().unwrap()
            }
        );
        assert_eq!(
            parse_exec("ip link set dev eth1 up"),
            ExecAction::LinkUp("eth1".into())
        );
        assert_eq!(
            parse_exec("sysctl -w net.ipv4.ip_forward=1"),
            ExecAction::Sysctl {
                key: "net.ipv4.ip_forward".into(),
                value: "1".into()
            }
        );
    }

    #[test]
    fn anything_else_is_left_to_the_shell() {
        for line in [
            "vtysh -b",
            "ip route add 10.0.0.0/8 via 10.0.0.1 metric 10",
            "ip addr add 10.0.0.1/24 dev eth1 label x",
            "ip route add default nexthop via 10.0.0.1 nexthop via 10.0.1.1",
            "ip -s link",
        ] {
            assert_eq!(parse_exec(line), ExecAction::Shell(line.into()), "{line}");
        }
    }
}
