//! The speakers' `synced` log lines (JSON, one per sync that changed something): when the
//! sync finished (the line's timestamp, after the driver was told: the UPDATE leaves right
//! after) and when it started (finish − `micros`: the speaker had the new state then).

/// One `synced` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sync {
    /// When the sync began, ns since the epoch.
    pub started: u64,
    /// When it was logged (done), ns since the epoch.
    pub done: u64,
    /// Routes announced plus withdrawn.
    pub routes: u64,
}

/// Every `synced` line of a JSON log, in order.
pub fn syncs(log: &str) -> Vec<Sync> {
    log.lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = &v["fields"];
            if fields["message"] != "synced" {
                return None;
            }
            let done = parse_rfc3339(v["timestamp"].as_str()?)?;
            let micros = fields["micros"].as_u64().unwrap_or(0);
            Some(Sync {
                started: done.saturating_sub(micros * 1000),
                done,
                routes: fields["routes"].as_u64().unwrap_or(0),
            })
        })
        .collect()
}

/// `2026-12-07T13:45:56.123456Z` (UTC, any number of fraction digits) as ns since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let digits = fraction.len().min(9);
    let mut ns: u64 = if digits == 0 {
        0
    } else {
        fraction[..digits].parse().ok()?
    };
    for _ in digits..9 {
        ns *= 10;
    }
    let days = u64::try_from(days_from_civil(y, m, day)).ok()?;
    Some(((days * 86_400 + h * 3_600 + min * 60 + s) * 1_000_000_000) + ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-12-07T13:45:56.123456Z"),
            Some(1_796_651_156_123_456_000)
        );
        assert_eq!(parse_rfc3339("not a time"), None);
    }

    #[test]
    fn synced_lines_are_found() {
        let log = "{\"timestamp\":\"1970-01-01T00:00:01Z\",\"level\":\"INFO\",\"fields\":{\"message\":\"synced\",\"routes\":2,\"micros\":250}}\n\
                   {\"timestamp\":\"1970-01-01T00:00:02Z\",\"fields\":{\"message\":\"session up\"}}\nnot json";
        assert_eq!(
            syncs(log),
            vec![Sync {
                started: 999_750_000,
                done: 1_000_000_000,
                routes: 2
            }]
        );
    }
}
