//! The receiving BIRD 2: every session configured but disabled, so the sender can load its
//! table first; `enable` then lets BIRD connect out (the senders are passive) and the clock
//! starts at the session's Established time, which BIRD reports with microseconds.

use std::fmt::Write as _;
use std::time::Duration;

use testbed::Netns;
use testbed::router::bird::Bird;

use super::addressing::{RECEIVER_AS, SENDER_AS, receiver_addresses, sender_address};

/// Renders the receiver's configuration for `sessions` sessions, exporting to the kernel
/// FIB when `fib`.
pub fn render(sessions: usize, fib: bool) -> String {
    let mut out = String::new();
    out.push_str("router id 10.0.0.1;\n");
    // Epoch seconds with microseconds: comparable with the probes' wall clock.
    out.push_str("timeformat protocol \"%s.%6f\";\n");
    out.push_str("protocol device { scan time 10; }\n");
    if fib {
        out.push_str("protocol kernel k4 { ipv4 { import none; export all; }; }\n");
    }
    for (i, local) in receiver_addresses(sessions).iter().enumerate() {
        let _ = writeln!(
            out,
            "protocol bgp peer{i} {{\n  local {local} as {RECEIVER_AS};\n  \
             neighbor {} as {SENDER_AS};\n  disabled;\n  connect delay time 1;\n  \
             connect retry time 1;\n  hold time 90;\n  keepalive time 30;\n  \
             ipv4 {{ import all; export none; }};\n}}",
            sender_address(i, sessions)
        );
    }
    out
}

/// A running receiver.
pub struct Receiver {
    bird: Bird,
}

impl Receiver {
    /// Starts BIRD with `sessions` disabled sessions in `netns`.
    pub fn start(netns: &Netns, sessions: usize, fib: bool) -> testbed::Result<Receiver> {
        Ok(Receiver {
            bird: Bird::start_with_config(netns, &render(sessions, fib))?,
        })
    }

    /// Routes in BIRD's table (`show route count`).
    pub fn route_count(&self) -> testbed::Result<u64> {
        let text = self.bird.birdc(&["show", "route", "count"])?;
        Ok(text
            .lines()
            .find(|l| l.contains("routes for"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Enables every session (BIRD connects out within about a second).
    pub fn enable(&self) -> testbed::Result<()> {
        self.bird.birdc(&["enable", "\"peer*\""]).map(|_| ())
    }

    /// Established times (ns since the epoch) of the sessions that are up.
    pub fn established(&self) -> testbed::Result<Vec<u64>> {
        Ok(parse_established(&self.bird.birdc(&[
            "show",
            "protocols",
            "\"peer*\"",
        ])?))
    }

    /// Waits until `count` sessions are up and returns the earliest Established time.
    pub fn wait_established(&self, count: usize, timeout: Duration) -> testbed::Result<u64> {
        testbed::wait::until("receiver sessions established", timeout, || {
            let times = self.established()?;
            Ok((times.len() >= count).then(|| times.iter().copied().min().unwrap_or(0)))
        })
    }

    /// The BIRD driver (for `birdc`).
    pub fn bird(&self) -> &Bird {
        &self.bird
    }
}

/// Parses `show protocols` lines `peerN BGP --- up SECONDS.MICROS Established`.
pub fn parse_established(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 6 && fields[1] == "BGP" && fields[5] == "Established" {
                let (secs, micros) = fields[4].split_once('.')?;
                let secs: u64 = secs.parse().ok()?;
                let micros: u64 = micros.parse().ok()?;
                Some(secs * 1_000_000_000 + micros * 1_000)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_times_are_parsed() {
        let text = "Name       Proto      Table      State  Since         Info\n\
                    peer0      BGP        ---        up     1795713472.289090  Established\n\
                    peer1      BGP        ---        start  1795713472.289090  Active\n";
        assert_eq!(parse_established(text), vec![1_795_713_472_289_090_000]);
    }

    #[test]
    fn config_has_one_disabled_session_per_address() {
        let text = render(3, true);
        assert_eq!(text.matches("disabled;").count(), 3);
        assert!(text.contains("local 10.0.1.3 as 65000"), "{text}");
    }
}
