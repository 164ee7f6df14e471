//! The benchmark's scenarios by name.

use super::senders::Plan;

/// A transfer scenario (`plan`) or the churn scenario (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Name on the command line and in result files.
    pub name: &'static str,
    /// What to announce; `None` for churn.
    pub plan: Option<Plan>,
    /// Title in the report.
    pub title: &'static str,
    /// Whether the receiver installs routes into its kernel FIB (and arrival is read there);
    /// without, arrival is read from BIRD's table and the wire, so the sender's own pace
    /// shows instead of the receiver's kernel.
    pub fib: bool,
}

const fn transfer(
    name: &'static str,
    title: &'static str,
    sessions: usize,
    per: usize,
) -> Scenario {
    Scenario {
        name,
        plan: Some(Plan {
            sessions,
            per_session: per,
        }),
        title,
        fib: true,
    }
}

/// Every scenario, in report order.
pub const ALL: [Scenario; 7] = [
    transfer("1k", "1,000 /32s, one session", 1, 1_000),
    transfer("10k", "10,000 /32s, one session", 1, 10_000),
    transfer("100k", "100,000 /32s, one session", 1, 100_000),
    transfer("1m", "1,000,000 /32s, one session", 1, 1_000_000),
    transfer("100x1k", "100 sessions × 1,000 /32s", 100, 1_000),
    Scenario {
        fib: false,
        ..transfer(
            "100k-rib",
            "100,000 /32s, one session, receiver without kernel export (BGP table only)",
            1,
            100_000,
        )
    },
    Scenario {
        name: "churn",
        plan: None,
        title: "churn: one prefix announced and withdrawn",
        fib: true,
    },
];

/// The scenario called `name`.
pub fn parse(name: &str) -> Option<Scenario> {
    ALL.into_iter().find(|s| s.name == name)
}
