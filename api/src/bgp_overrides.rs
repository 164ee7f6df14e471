//! Per-Service BGP attribute overrides: the `berth.io/bgp-*` annotations of a Service read
//! into values, or refused with one message per malformed annotation.
//!
//! The rules, in one place for the controller (which puts an event on a Service whose
//! annotations are refused) and the speaker (which announces with them):
//! - `berth.io/bgp-communities`, `berth.io/bgp-large-communities`: comma-separated lists
//!   (spaces around items allowed, at most 64 items), each item as in the pool's
//!   `advertisement`; they are **added** to the pool's.
//! - `berth.io/bgp-local-pref`, `berth.io/bgp-med`: a decimal 0–4294967295 that **replaces**
//!   the pool's value.
//! - `berth.io/bgp-as-path-prepend`: a count 0–10 that **replaces** the pool's
//!   `asPathPrepend` (`0` turns it off for this Service), with the AS of
//!   `berth.io/bgp-as-path-prepend-asn` (1–4294967295; unset: the local AS). The ASN alone is
//!   refused.
//! - Any malformed annotation refuses them all: the Service keeps the pool's attributes.
//!
//! Pure; knows nothing of how the values reach the wire.

use std::collections::BTreeMap;

use crate::keys;
use crate::validate::{MAX_COMMUNITIES, MAX_PREPEND, parse_community, parse_large_community};

/// AS_PATH prepending asked for: `count` copies of `asn` (`None`: the local AS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Prepend {
    /// Copies after the local AS; 0 is none.
    pub count: u8,
    /// The AS to prepend; `None` is the session's local AS.
    pub asn: Option<u32>,
}

/// What a Service's annotations ask for, on top of its pool's attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BgpOverrides {
    /// Standard communities to add.
    pub communities: Vec<u32>,
    /// Large communities to add.
    pub large_communities: Vec<(u32, u32, u32)>,
    /// LOCAL_PREF to use instead of the pool's.
    pub local_pref: Option<u32>,
    /// MED to use instead of the pool's.
    pub med: Option<u32>,
    /// Prepending to use instead of the pool's.
    pub as_path_prepend: Option<Prepend>,
}

impl BgpOverrides {
    /// Whether the annotations ask for nothing.
    pub fn is_empty(&self) -> bool {
        *self == BgpOverrides::default()
    }
}

/// Every annotation key this module reads.
pub const KEYS: [&str; 6] = [
    keys::BGP_COMMUNITIES,
    keys::BGP_LARGE_COMMUNITIES,
    keys::BGP_LOCAL_PREF,
    keys::BGP_MED,
    keys::BGP_AS_PATH_PREPEND,
    keys::BGP_AS_PATH_PREPEND_ASN,
];

fn list<T>(
    annotations: &BTreeMap<String, String>,
    key: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
    errors: &mut Vec<String>,
) -> Vec<T> {
    let Some(text) = annotations.get(key) else {
        return Vec::new();
    };
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() > MAX_COMMUNITIES {
        errors.push(format!(
            "{key}: at most {MAX_COMMUNITIES} items, not {}",
            items.len()
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for item in items {
        match parse(item) {
            Some(v) => out.push(v),
            None => errors.push(format!("{key}: {item:?} is not {what}")),
        }
    }
    out
}

fn number<T: std::str::FromStr>(
    annotations: &BTreeMap<String, String>,
    key: &str,
    what: &str,
    ok: impl Fn(&T) -> bool,
    errors: &mut Vec<String>,
) -> Option<T> {
    let text = annotations.get(key)?;
    let trimmed = text.trim();
    let parsed = (!trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()))
        .then(|| trimmed.parse::<T>().ok())
        .flatten()
        .filter(|v| ok(v));
    if parsed.is_none() {
        errors.push(format!("{key}: {text:?} is not {what}"));
    }
    parsed
}

/// Reads the overrides off a Service's annotations; `Err` lists every malformed one (then
/// none applies).
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<BgpOverrides, Vec<String>> {
    let mut errors = Vec::new();
    let communities = list(
        annotations,
        keys::BGP_COMMUNITIES,
        "ASN:VALUE (each 0-65535), no-export, no-advertise, no-export-subconfed or blackhole",
        parse_community,
        &mut errors,
    );
    let large_communities = list(
        annotations,
        keys::BGP_LARGE_COMMUNITIES,
        "GLOBAL:LOCAL1:LOCAL2 (each 0-4294967295)",
        parse_large_community,
        &mut errors,
    );
    let local_pref = number::<u32>(
        annotations,
        keys::BGP_LOCAL_PREF,
        "a number 0-4294967295",
        |_| true,
        &mut errors,
    );
    let med = number::<u32>(
        annotations,
        keys::BGP_MED,
        "a number 0-4294967295",
        |_| true,
        &mut errors,
    );
    let count = number::<u8>(
        annotations,
        keys::BGP_AS_PATH_PREPEND,
        "a count 0-10",
        |c| *c <= MAX_PREPEND,
        &mut errors,
    );
    let asn = number::<u32>(
        annotations,
        keys::BGP_AS_PATH_PREPEND_ASN,
        "an AS number 1-4294967295",
        |a| *a >= 1,
        &mut errors,
    );
    if annotations.contains_key(keys::BGP_AS_PATH_PREPEND_ASN)
        && !annotations.contains_key(keys::BGP_AS_PATH_PREPEND)
    {
        errors.push(format!(
            "{} needs {} beside it (the count)",
            keys::BGP_AS_PATH_PREPEND_ASN,
            keys::BGP_AS_PATH_PREPEND
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(BgpOverrides {
        communities,
        large_communities,
        local_pref,
        med,
        as_path_prepend: count.map(|count| Prepend { count, asn }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_every_key() {
        let o = parse(&ann(&[
            (keys::BGP_COMMUNITIES, "65000:100, no-export"),
            (keys::BGP_LARGE_COMMUNITIES, "65000:1:2"),
            (keys::BGP_LOCAL_PREF, "250"),
            (keys::BGP_MED, " 7 "),
            (keys::BGP_AS_PATH_PREPEND, "3"),
            (keys::BGP_AS_PATH_PREPEND_ASN, "65010"),
        ]))
        .expect("valid");
        assert_eq!(o.communities, vec![(65000 << 16) | 100, 0xFFFF_FF01]);
        assert_eq!(o.large_communities, vec![(65000, 1, 2)]);
        assert_eq!((o.local_pref, o.med), (Some(250), Some(7)));
        assert_eq!(
            o.as_path_prepend,
            Some(Prepend {
                count: 3,
                asn: Some(65010)
            })
        );
        assert!(parse(&ann(&[("other", "x")])).expect("none").is_empty());
    }

    #[test]
    fn refuses_each_malformed_value_and_says_which() {
        for (key, value) in [
            (keys::BGP_COMMUNITIES, "65536:1"),
            (keys::BGP_COMMUNITIES, "65000:1,"),
            (keys::BGP_LARGE_COMMUNITIES, "1:2"),
            (keys::BGP_LOCAL_PREF, "-1"),
            (keys::BGP_LOCAL_PREF, "4294967296"),
            (keys::BGP_MED, "ten"),
            (keys::BGP_AS_PATH_PREPEND, "11"),
            (keys::BGP_AS_PATH_PREPEND, "+2"),
        ] {
            let errors = parse(&ann(&[(key, value), ("example.com/other", "1")]))
                .expect_err(&format!("{key}={value}"));
            assert_eq!(errors.len(), 1, "{key}={value}: {errors:?}");
            assert!(errors[0].starts_with(key), "{errors:?}");
        }
        let errors = parse(&ann(&[(keys::BGP_AS_PATH_PREPEND_ASN, "65010")])).expect_err("alone");
        assert!(errors[0].contains("needs"), "{errors:?}");
        let errors = parse(&ann(&[
            (keys::BGP_AS_PATH_PREPEND, "2"),
            (keys::BGP_AS_PATH_PREPEND_ASN, "0"),
        ]))
        .expect_err("asn 0");
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
