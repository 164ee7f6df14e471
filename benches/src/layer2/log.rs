//! Reads the speakers' JSON logs: when a node decided it owns an address (`layer-2 owner`).

use std::path::Path;

/// Nanoseconds since the Unix epoch of an RFC 3339 UTC timestamp as `tracing` writes it
/// (`2026-12-07T16:04:13.527732Z`); `None` for anything else.
pub fn parse_timestamp(s: &str) -> Option<u64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(str::parse::<i64>);
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let digits: String = frac.chars().take(9).collect();
    let nanos = format!("{digits:0<9}").parse::<i64>().ok()?;
    u64::try_from(secs * 1_000_000_000 + nanos).ok()
}

/// The first time after `after_ns` that the log at `path` says `owner` took `vip`.
pub fn decided_at(path: &Path, vip: &str, owner: &str, after_ns: u64) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            let f = &v["fields"];
            f["message"] == "layer-2 owner" && f["vip"] == vip && f["owner"] == owner
        })
        .filter_map(|v| parse_timestamp(v["timestamp"].as_str()?))
        .find(|t| *t > after_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        assert_eq!(
            parse_timestamp("2026-12-07T16:04:13.527732Z"),
            Some(1_796_659_453_527_732_000)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
