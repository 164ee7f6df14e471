//! What layer 2 says in Kubernetes, decided purely from two samples of the edge's view
//! ([`Layer2View`]) and the interface choice ([`Resolution`]): which owner changes this node
//! reports as Events on the Services (only the node that takes over, once per change, within
//! an [`EventBudget`]); the pool-level `Layer2Answered` condition and `layer2Owners` map,
//! written by one node only ([`is_reporter`]); and this node's own entry of a pool
//! (`nodesLayer2Status`), with its `InterfaceResolved` condition.
//!
//! Nothing here changes per heartbeat: every output depends on owners, members and
//! interfaces, never on sequence numbers or times heard, so the writer writes only when an
//! owner or a problem changes. Must not know about sockets or the API server.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use api::Condition;
use api::condition::{INTERFACE_RESOLVED, LAYER2_ANSWERED};
use api::eip::NodeLayer2Status;

use crate::layer2::edge::Layer2View;
use crate::layer2::link::Resolution;

/// Why an address changed owner, as the node taking it over sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// Nobody answered it before (no live candidate, or the address is new here).
    Unanswered,
    /// The old owner is no longer live: not heard within the detection time, its link
    /// down, or stepping down (SIGTERM, drain).
    Failover {
        /// The detection time, milliseconds.
        detection_ms: u64,
    },
    /// The old owner left the heartbeat members (deselected, not Ready, removed).
    Left,
    /// The old owner is live but no longer a candidate of the address (its endpoints, the
    /// pool's node selector, a cordon).
    NotCandidate,
    /// The old owner is live and a candidate: the live candidates changed and the owners
    /// were spread again.
    Rebalance,
}

impl Why {
    /// The one-word kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Why::Unanswered => "unanswered",
            Why::Failover { .. } | Why::Left => "failover",
            Why::NotCandidate => "candidates",
            Why::Rebalance => "rebalance",
        }
    }
}

/// One address this node took over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Takeover {
    /// The address.
    pub address: IpAddr,
    /// Its Eip.
    pub pool: String,
    /// The Services using it (`namespace/name`).
    pub services: Vec<String>,
    /// This node.
    pub owner: String,
    /// Who answered it before (`None`: nobody).
    pub previous: Option<String>,
    /// Why it moved.
    pub why: Why,
}

impl Takeover {
    /// The Event's note.
    pub fn note(&self) -> String {
        let was = match &self.previous {
            Some(p) => format!("was {p}"),
            None => "was answered by nobody".to_string(),
        };
        let p = self.previous.as_deref().unwrap_or_default();
        let why = match &self.why {
            Why::Unanswered => "no node answered it".to_string(),
            Why::Failover { detection_ms } => format!(
                "failover: {p} is no longer live (not heard for {detection_ms} ms, its link down, or stepping down)"
            ),
            Why::Left => format!("failover: {p} is no longer a layer-2 member of the pool"),
            Why::NotCandidate => format!(
                "{p} is no longer a candidate (endpoints, node selector, cordon or readiness changed)"
            ),
            Why::Rebalance => "rebalance: the live candidates changed".to_string(),
        };
        format!(
            "{} (pool {}) is now answered by {} ({was}): {why}",
            self.address, self.pool, self.owner
        )
    }

    /// Whether the Event is a Warning (the old owner failed) rather than Normal.
    pub fn warning(&self) -> bool {
        matches!(self.why, Why::Failover { .. } | Why::Left)
    }
}

/// The addresses `me` owns in `after` and did not in `before`, each with who had it and
/// why it moved. An address `before` did not list at all is not reported (it is new to
/// this node: a Service just got it, or the speaker just started).
pub fn taken_over(before: &Layer2View, after: &Layer2View, me: &str) -> Vec<Takeover> {
    let old: BTreeMap<IpAddr, &crate::layer2::edge::AddressView> = before
        .addresses
        .iter()
        .filter_map(|a| Some((a.address?, a)))
        .collect();
    let members: BTreeSet<&str> = after.members.iter().map(String::as_str).collect();
    let live: BTreeSet<&str> = after.live.iter().map(String::as_str).collect();
    after
        .addresses
        .iter()
        .filter(|a| a.owner.as_deref() == Some(me))
        .filter_map(|a| {
            let address = a.address?;
            let was = old.get(&address)?;
            if was.owner.as_deref() == Some(me) {
                return None;
            }
            let why = match was.owner.as_deref() {
                None => Why::Unanswered,
                Some(p) if !members.contains(p) => Why::Left,
                Some(p) if !live.contains(p) => Why::Failover {
                    detection_ms: after.detection_ms,
                },
                Some(p) if !a.candidates.iter().any(|c| c == p) => Why::NotCandidate,
                Some(_) => Why::Rebalance,
            };
            Some(Takeover {
                address,
                pool: a.pool.clone(),
                services: Vec::new(),
                owner: me.to_string(),
                previous: was.owner.clone(),
                why,
            })
        })
        .collect()
}

/// A token bucket per key (a Service): a flapping node cannot flood the API server with
/// owner-change Events. `burst` Events at once, then one per `every`; the changes held
/// back are counted and said in the next Event that goes out.
#[derive(Clone, Debug)]
pub struct EventBudget {
    burst: u32,
    every: Duration,
    keys: BTreeMap<String, Bucket>,
}

#[derive(Clone, Debug)]
struct Bucket {
    tokens: u32,
    since: Instant,
    held_back: u32,
}

/// Whether an Event may go out now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend {
    /// Yes; this many changes were held back since the last one that went out.
    Send {
        /// Changes not reported since the last Event.
        held_back: u32,
    },
    /// No: over budget (counted, said in the next one).
    HoldBack,
}

impl EventBudget {
    /// `burst` at once, then one per `every`.
    pub fn new(burst: u32, every: Duration) -> Self {
        Self {
            burst: burst.max(1),
            every: every.max(Duration::from_millis(1)),
            keys: BTreeMap::new(),
        }
    }

    /// Asks to send one Event for `key` at `now`.
    pub fn spend(&mut self, key: &str, now: Instant) -> Spend {
        let (burst, every) = (self.burst, self.every);
        let b = self.keys.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            since: now,
            held_back: 0,
        });
        let earned = now.saturating_duration_since(b.since).as_nanos() / every.as_nanos();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            b.tokens = b.tokens.saturating_add(earned).min(burst);
            b.since += every * earned;
        }
        if b.tokens == 0 {
            b.held_back += 1;
            return Spend::HoldBack;
        }
        if b.tokens == burst {
            // A full bucket earns nothing while it waits.
            b.since = now;
        }
        b.tokens -= 1;
        Spend::Send {
            held_back: std::mem::take(&mut b.held_back),
        }
    }

    /// Forgets keys whose bucket is full again and holds nothing back (bounded memory).
    pub fn forget_idle(&mut self, now: Instant) {
        let (burst, every) = (self.burst, self.every);
        self.keys.retain(|_, b| {
            b.held_back > 0 || now.saturating_duration_since(b.since) < every * (burst - b.tokens)
        });
    }
}

/// Whether `me` writes the pool-level status (`Layer2Answered`, `layer2Owners`): the first
/// live member by name, or, when none is live, the first member. Every node computes it
/// from its own view, so a single node writes, and when it goes the next one does.
pub fn is_reporter(view: &Layer2View, me: &str) -> bool {
    view.live
        .iter()
        .min()
        .or_else(|| view.members.iter().min())
        .is_some_and(|first| first == me)
}

/// A layer2 pool as its reporter writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolReport {
    /// Address → owner, for the addresses answered.
    pub owners: BTreeMap<String, String>,
    /// The addresses nobody answers for.
    pub unanswered: Vec<IpAddr>,
}

impl PoolReport {
    /// `Layer2Answered`: `True` when every address is answered, with how many per node.
    /// `previous` keeps the transition time while the status stays.
    pub fn condition(&self, previous: Option<&Condition>, now: &str) -> Condition {
        let total = self.owners.len() + self.unanswered.len();
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for o in self.owners.values() {
            *per_node.entry(o.as_str()).or_default() += 1;
        }
        let spread: Vec<String> = per_node.iter().map(|(n, c)| format!("{n}: {c}")).collect();
        let answered = format!(
            "{} of {total} address(es) answered by {} node(s){}",
            self.owners.len(),
            per_node.len(),
            if spread.is_empty() {
                String::new()
            } else {
                format!(" ({})", spread.join(", "))
            }
        );
        let (status, reason, message) = if self.unanswered.is_empty() {
            ("True", "Answered", answered)
        } else {
            let nobody: Vec<String> = self.unanswered.iter().map(IpAddr::to_string).collect();
            (
                "False",
                "NotAnswered",
                format!(
                    "{answered}; nobody answers for {} (no live candidate: no ready endpoint, no node selected, or every candidate down or without the interface)",
                    nobody.join(", ")
                ),
            )
        };
        condition(LAYER2_ANSWERED, status, reason, message, previous, now)
    }
}

/// Every layer2 pool of the view, by name.
pub fn pool_reports(view: &Layer2View) -> BTreeMap<String, PoolReport> {
    let mut out: BTreeMap<String, PoolReport> = BTreeMap::new();
    for a in &view.addresses {
        let Some(address) = a.address else { continue };
        let r = out.entry(a.pool.clone()).or_insert_with(|| PoolReport {
            owners: BTreeMap::new(),
            unanswered: Vec::new(),
        });
        match &a.owner {
            Some(o) => {
                r.owners.insert(address.to_string(), o.clone());
            }
            None => r.unanswered.push(address),
        }
    }
    out
}

/// A condition whose transition time stays `previous`'s while its status does not change.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    previous: Option<&Condition>,
    now: &str,
) -> Condition {
    let last_transition_time = previous
        .filter(|p| p.type_ == type_ && p.status == status && !p.last_transition_time.is_empty())
        .map_or_else(|| now.to_string(), |p| p.last_transition_time.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
    }
}

/// This node's problem with a pool's interface, for the Event and the log (`None`: none).
/// Returns `(reason, message)`.
pub fn interface_problem(node: &str, pool: &str, r: &Resolution) -> Option<(&'static str, String)> {
    match r {
        Resolution::One { .. } => None,
        Resolution::Several {
            name, all, source, ..
        } => Some((
            "SeveralInterfaces",
            format!(
                "node {node}: pool {pool} could be answered on {} ({source}); it answers on {name}, the first by name. Set spec.interface to choose",
                all.join(", ")
            ),
        )),
        Resolution::NoInterface(why) => Some((
            "InterfaceNotFound",
            format!(
                "node {node}: {why}: it is not a candidate for pool {pool}'s addresses (the nodes that have it are)"
            ),
        )),
        Resolution::NoRoute(why) => Some((
            "NoRoute",
            format!(
                "node {node}: {why}: it is not a candidate for pool {pool}'s addresses (the nodes that have it are)"
            ),
        )),
    }
}

/// This node's entry of a pool (`nodesLayer2Status[node]`).
pub fn node_entry(
    node: &str,
    pool: &str,
    r: &Resolution,
    previous: Option<&NodeLayer2Status>,
    now: &str,
) -> NodeLayer2Status {
    let prev = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == INTERFACE_RESOLVED));
    let (status, reason, message) = match interface_problem(node, pool, r) {
        None => ("True", "Found", String::new()),
        Some((reason @ "SeveralInterfaces", m)) => ("True", reason, m),
        Some((reason, m)) => ("False", reason, m),
    };
    NodeLayer2Status {
        interface: r.name().map(str::to_string),
        conditions: vec![condition(
            INTERFACE_RESOLVED,
            status,
            reason,
            message,
            prev,
            now,
        )],
    }
}

/// The plan the layer-2 edge acts on: each address's candidates less the nodes whose own
/// entry in its pool's status says they have no interface for it (`InterfaceResolved`
/// `False`), so no node picks such a node as owner of that pool's addresses, and the node
/// itself stays eligible for the pools it can answer. The node keeps computing its entry from
/// the unfiltered plan (else it would drop its entry, count again, and flap). An entry is
/// configuration read back from the API server, never liveness: in standalone mode there is
/// none and nothing is filtered.
pub fn without_unresolved(
    mut plan: crate::layer2::candidates::Layer2Plan,
    eips: &BTreeMap<String, std::sync::Arc<api::Eip>>,
) -> crate::layer2::candidates::Layer2Plan {
    let unresolved = |pool: &str| -> BTreeSet<&str> {
        eips.get(pool)
            .and_then(|e| e.status.as_ref())
            .map(|s| {
                s.nodes_layer2_status
                    .iter()
                    .filter(|(_, entry)| {
                        entry
                            .conditions
                            .iter()
                            .any(|c| c.type_ == INTERFACE_RESOLVED && c.status == "False")
                    })
                    .map(|(n, _)| n.as_str())
                    .collect()
            })
            .unwrap_or_default()
    };
    for vip in plan.vips.values_mut() {
        let out = unresolved(&vip.pool);
        if !out.is_empty() {
            vip.candidates.retain(|n| !out.contains(n.as_str()));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer2::candidates::Interface;
    use crate::layer2::edge::AddressView;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn view(owners: &[(&str, Option<&str>)], members: &[&str], live: &[&str]) -> Layer2View {
        Layer2View {
            members: members.iter().map(|s| (*s).to_string()).collect(),
            live: live.iter().map(|s| (*s).to_string()).collect(),
            detection_ms: 150,
            addresses: owners
                .iter()
                .map(|(a, o)| AddressView {
                    address: Some(ip(a)),
                    pool: "lan".into(),
                    candidates: members.iter().map(|s| (*s).to_string()).collect(),
                    owner: o.map(str::to_string),
                    ..AddressView::default()
                })
                .collect(),
            ..Layer2View::default()
        }
    }

    const ALL: [&str; 3] = ["n1", "n2", "n3"];

    #[test]
    fn only_the_node_taking_over_reports_and_says_why() {
        let before = view(
            &[("10.0.0.1", Some("n1")), ("10.0.0.2", Some("n2"))],
            &ALL,
            &ALL,
        );
        // n1 stops being heard: n2 takes 10.0.0.1 over.
        let after = view(
            &[("10.0.0.1", Some("n2")), ("10.0.0.2", Some("n2"))],
            &ALL,
            &["n2", "n3"],
        );
        let t = taken_over(&before, &after, "n2");
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].address, ip("10.0.0.1"));
        assert_eq!(t[0].previous.as_deref(), Some("n1"));
        assert_eq!(t[0].why, Why::Failover { detection_ms: 150 });
        assert!(t[0].warning());
        let note = t[0].note();
        assert!(
            note.contains("10.0.0.1")
                && note.contains("now answered by n2")
                && note.contains("was n1")
                && note.contains("failover"),
            "{note}"
        );
        // The others write nothing: n3 took nothing over, n1 lost.
        assert!(taken_over(&before, &after, "n3").is_empty());
        assert!(taken_over(&before, &after, "n1").is_empty());
        // The same view again: nothing (once per change).
        assert!(taken_over(&after, &after, "n2").is_empty());
    }

    #[test]
    fn rebalance_candidates_and_members_are_told_apart() {
        let before = view(&[("10.0.0.1", Some("n1"))], &ALL, &ALL);
        let rebalanced = view(&[("10.0.0.1", Some("n3"))], &ALL, &ALL);
        assert_eq!(
            taken_over(&before, &rebalanced, "n3")[0].why,
            Why::Rebalance
        );
        let mut not_candidate = rebalanced.clone();
        not_candidate.addresses[0].candidates = vec!["n2".into(), "n3".into()];
        let t = taken_over(&before, &not_candidate, "n3");
        assert_eq!(t[0].why, Why::NotCandidate);
        assert!(!t[0].warning());
        let left = view(&[("10.0.0.1", Some("n3"))], &["n2", "n3"], &["n2", "n3"]);
        assert_eq!(taken_over(&before, &left, "n3")[0].why, Why::Left);
        let nobody = view(&[("10.0.0.1", None)], &ALL, &[]);
        let t = taken_over(&nobody, &rebalanced, "n3");
        assert_eq!(t[0].why, Why::Unanswered);
        assert!(
            t[0].note().contains("answered by nobody"),
            "{}",
            t[0].note()
        );
        // An address new to this node (a Service just got it, the speaker just started) is
        // no owner change.
        let empty = Layer2View::default();
        assert!(taken_over(&empty, &rebalanced, "n3").is_empty());
    }

    #[test]
    fn a_flapping_owner_is_held_to_the_budget_and_the_held_back_are_counted() {
        let t0 = Instant::now();
        let mut b = EventBudget::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(b.spend("web/a", t0), Spend::Send { held_back: 0 });
        }
        assert_eq!(b.spend("web/a", t0), Spend::HoldBack);
        assert_eq!(
            b.spend("web/a", t0 + Duration::from_secs(30)),
            Spend::HoldBack
        );
        // Another Service has its own budget.
        assert_eq!(b.spend("web/b", t0), Spend::Send { held_back: 0 });
        // A minute on: one more, saying two were held back.
        assert_eq!(
            b.spend("web/a", t0 + Duration::from_secs(61)),
            Spend::Send { held_back: 2 }
        );
        assert_eq!(
            b.spend("web/a", t0 + Duration::from_secs(62)),
            Spend::HoldBack
        );
        // Over 100 flaps in ten minutes send at most 3 + 10.
        let mut c = EventBudget::new(3, Duration::from_secs(60));
        let sent = (0..1000)
            .filter(|i| {
                matches!(
                    c.spend("web/c", t0 + Duration::from_millis(600 * i)),
                    Spend::Send { .. }
                )
            })
            .count();
        assert!(sent <= 13, "{sent} sent");
        assert!(sent >= 10, "{sent} sent");
        // Idle and full again: forgotten.
        b.forget_idle(t0 + Duration::from_secs(3600));
        assert!(b.keys.contains_key("web/a"), "web/a holds one back");
        assert!(!b.keys.contains_key("web/b"));
    }

    #[test]
    fn one_reporter_the_first_live_member() {
        let v = view(&[], &ALL, &["n2", "n3"]);
        assert!(is_reporter(&v, "n2"));
        assert!(!is_reporter(&v, "n1") && !is_reporter(&v, "n3"));
        let none_live = view(&[], &ALL, &[]);
        assert!(is_reporter(&none_live, "n1"));
        assert!(!is_reporter(&Layer2View::default(), "n1"));
    }

    #[test]
    fn the_pool_condition_counts_owners_and_names_the_unanswered() {
        let v = view(
            &[
                ("10.0.0.1", Some("n1")),
                ("10.0.0.2", Some("n2")),
                ("10.0.0.3", Some("n1")),
            ],
            &ALL,
            &ALL,
        );
        let r = &pool_reports(&v)["lan"];
        assert_eq!(r.owners["10.0.0.2"], "n2");
        let c = r.condition(None, "2026-01-01T00:00:00Z");
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            ("Layer2Answered", "True")
        );
        assert_eq!(
            c.message,
            "3 of 3 address(es) answered by 2 node(s) (n1: 2, n2: 1)"
        );
        // Owners move, the status stays: the transition time stays.
        let moved = view(
            &[
                ("10.0.0.1", Some("n3")),
                ("10.0.0.2", Some("n2")),
                ("10.0.0.3", Some("n1")),
            ],
            &ALL,
            &ALL,
        );
        let c2 = pool_reports(&moved)["lan"].condition(Some(&c), "2026-01-01T00:05:00Z");
        assert_eq!(c2.last_transition_time, "2026-01-01T00:00:00Z");
        assert_ne!(c2.message, c.message);
        let down = view(
            &[("10.0.0.1", Some("n1")), ("10.0.0.4", None)],
            &ALL,
            &["n1"],
        );
        let c3 = pool_reports(&down)["lan"].condition(Some(&c2), "2026-01-01T00:09:00Z");
        assert_eq!(
            (c3.status.as_str(), c3.reason.as_str()),
            ("False", "NotAnswered")
        );
        assert!(
            c3.message.contains("nobody answers for 10.0.0.4"),
            "{}",
            c3.message
        );
        assert_eq!(c3.last_transition_time, "2026-01-01T00:09:00Z");
        // Same view, same report: nothing to write (no per-heartbeat change).
        assert_eq!(pool_reports(&down), pool_reports(&down.clone()));
    }

    #[test]
    fn the_node_entry_says_which_interface_and_why_none() {
        let t = "2026-01-01T00:00:00Z";
        let one = node_entry(
            "n1",
            "lan",
            &Resolution::One {
                index: 2,
                name: "eth0".into(),
            },
            None,
            t,
        );
        assert_eq!(one.interface.as_deref(), Some("eth0"));
        assert_eq!(one.conditions[0].status, "True");
        assert_eq!(one.conditions[0].type_, "InterfaceResolved");
        let missing = node_entry(
            "n1",
            "lan",
            &Resolution::NoInterface("no interface named eth9".into()),
            Some(&one),
            t,
        );
        assert_eq!(missing.interface, None);
        let c = &missing.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InterfaceNotFound")
        );
        assert!(c.message.contains("no interface named eth9") && c.message.contains("n1"));
        let several = node_entry(
            "n1",
            "lan",
            &Resolution::Several {
                index: 2,
                name: "eth0".into(),
                all: vec!["eth0".into(), "eth1".into()],
                source: "an equal-cost multipath default route (IPv4) of metric 0".into(),
            },
            None,
            t,
        );
        let c = &several.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "SeveralInterfaces")
        );
        assert!(c.message.contains("eth0, eth1") && c.message.contains("answers on eth0"));
        assert_eq!(several.interface.as_deref(), Some("eth0"));
        let json = serde_json::to_value(&missing).unwrap_or_default();
        assert_eq!(json["conditions"][0]["reason"], "InterfaceNotFound");
        assert!(json.get("interface").is_none());
    }

    #[test]
    fn a_node_without_the_interface_is_no_candidate_of_that_pool_only() {
        use crate::layer2::candidates::{Layer2Plan, Layer2Vip};
        let vip = |pool: &str| Layer2Vip {
            pool: pool.into(),
            interface: Interface::Named("eth0".into()),
            services: vec!["web/a".into()],
            candidates: ["n1".to_string(), "n2".to_string()].into(),
        };
        let mut plan = Layer2Plan::default();
        plan.vips.insert(ip("10.0.0.1"), vip("good"));
        plan.vips.insert(ip("10.0.1.1"), vip("bad"));
        let entry = |status: &str| NodeLayer2Status {
            interface: None,
            conditions: vec![condition(
                INTERFACE_RESOLVED,
                status,
                "R",
                String::new(),
                None,
                "t",
            )],
        };
        let mut bad = api::Eip::new("bad", api::EipSpec::default());
        bad.status = Some(api::EipStatus {
            nodes_layer2_status: [
                ("n1".to_string(), entry("False")),
                ("n2".to_string(), entry("True")),
            ]
            .into(),
            ..api::EipStatus::default()
        });
        let eips = BTreeMap::from([("bad".to_string(), std::sync::Arc::new(bad))]);
        let out = without_unresolved(plan.clone(), &eips);
        assert_eq!(
            out.vips[&ip("10.0.1.1")].candidates,
            ["n2".to_string()].into()
        );
        assert_eq!(
            out.vips[&ip("10.0.0.1")].candidates,
            plan.vips[&ip("10.0.0.1")].candidates
        );
        assert_eq!(without_unresolved(plan.clone(), &BTreeMap::new()), plan);
    }
}
