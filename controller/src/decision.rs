//! What a decision asks the outer layer to do: statuses to write, finalizers to change,
//! events to record. Plain data, so tests can assert on it and both layers can carry it out.

use std::net::IpAddr;

use api::EipStatus;

use crate::ipam::{PoolStatus, ServiceRef};

/// Whether an event is routine or needs a human.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Routine.
    Normal,
    /// Something a user should act on.
    Warning,
}

/// The object an event is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// A Service.
    Service(ServiceRef),
    /// An Eip (pool), by name.
    Eip(String),
}

/// One event for a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What it is about.
    pub subject: Subject,
    /// Normal or Warning.
    pub type_: EventType,
    /// Short CamelCase reason (`AddressAllocated`, `AllocationFailed`, …).
    pub reason: String,
    /// What happened, and for failures what to change.
    pub message: String,
    /// For failures, the allocator's stable cause word (metrics label), e.g. `PoolExhausted`.
    pub cause: Option<&'static str>,
}

impl Event {
    pub(crate) fn service(
        service: &ServiceRef,
        type_: EventType,
        reason: &str,
        message: String,
    ) -> Event {
        Event {
            subject: Subject::Service(service.clone()),
            type_,
            reason: reason.to_string(),
            message,
            cause: None,
        }
    }

    pub(crate) fn eip(name: &str, type_: EventType, reason: &str, message: String) -> Event {
        Event {
            subject: Subject::Eip(name.to_string()),
            type_,
            reason: reason.to_string(),
            message,
            cause: None,
        }
    }

    pub(crate) fn with_cause(mut self, cause: &'static str) -> Event {
        self.cause = Some(cause);
        self
    }
}

/// Add, remove or leave a finalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalizerChange {
    /// Add it (before anything is published).
    Add,
    /// Remove it (after everything is released).
    Remove,
    /// Leave as is.
    Keep,
}

/// What to do with one Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceDecision {
    /// `status.loadBalancer.ingress` IPs to write, or `None` to leave the status alone.
    pub ingress: Option<Vec<IpAddr>>,
    /// The Service finalizer.
    pub finalizer: FinalizerChange,
    /// Events to record.
    pub events: Vec<Event>,
    /// Pools whose Eip status may have changed.
    pub pools: Vec<String>,
    /// The Service had a new address (or addresses) allocated.
    pub allocated: bool,
    /// The allocation failed with this stable cause word.
    pub failure: Option<&'static str>,
}

/// What to do with one Eip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EipDecision {
    /// The status to write, or `None` when the pool is gone.
    pub status: Option<EipStatus>,
    /// The Eip finalizer: present exactly while the pool is in use.
    pub finalizer: FinalizerChange,
    /// Events to record.
    pub events: Vec<Event>,
    /// Services that lost an address (range shrank) and must be reconciled again.
    pub evicted: Vec<ServiceRef>,
}

/// The largest count the API server takes in an integer field: it checks every integer as
/// int64, so a status with a larger one (the size of an IPv6 pool of /64 or wider, clamped to
/// `u64::MAX`) was refused and the pool's status was never written.
pub const MAX_API_COUNT: u64 = i64::MAX as u64;

/// The Eip status for a pool the allocator knows. Counts past [`MAX_API_COUNT`] are written
/// as that (documented on `status.poolSize`).
pub fn eip_status(status: &PoolStatus) -> EipStatus {
    let clamp = |n: u128| u64::try_from(n).unwrap_or(u64::MAX).min(MAX_API_COUNT);
    EipStatus {
        occupied: status.occupied,
        usage: clamp(status.usage as u128),
        pool_size: clamp(status.pool_size),
        used: status.used.clone(),
        first_ip: status.first_ip.to_string(),
        last_ip: status.last_ip.to_string(),
        ready: true,
        v4: status.v4,
        conditions: Vec::new(),
        // The speakers' part (layer 2): never written by the controller.
        ..EipStatus::default()
    }
}

/// The part of an Eip's status the controller writes: without what the speakers write for
/// layer 2 (`layer2Owners`, `nodesLayer2Status`, the `Layer2Answered` condition). Compare
/// this, not the whole status, with a decision's status: the speakers' part is never the
/// controller's to write, and must not make every reconcile look like a change.
pub fn controller_part(status: &EipStatus) -> EipStatus {
    EipStatus {
        conditions: status
            .conditions
            .iter()
            .filter(|c| c.type_ != api::condition::LAYER2_ANSWERED)
            .cloned()
            .collect(),
        layer2_owners: std::collections::BTreeMap::new(),
        nodes_layer2_status: std::collections::BTreeMap::new(),
        ..status.clone()
    }
}

/// The `Valid` condition of an Eip: `False` with `reason` and `message` when the pool hands
/// out nothing new, `True` with reason `FieldsIgnored` when only `warnings` are to say, none
/// when there is nothing to say. No transition time: the decisions read no clock.
pub fn eip_conditions(refusal: Option<(&str, String)>, warnings: &[String]) -> Vec<api::Condition> {
    let condition = |status: &str, reason: &str, message: String| api::Condition {
        type_: api::condition::VALID.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: String::new(),
    };
    match refusal {
        Some((reason, message)) => vec![condition("False", reason, message)],
        None if !warnings.is_empty() => {
            vec![condition("True", "FieldsIgnored", warnings.join("; "))]
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod api_count_tests {
    use super::*;

    fn status(pool_size: u128) -> PoolStatus {
        PoolStatus {
            usage: 1,
            pool_size,
            used: std::collections::BTreeMap::new(),
            first_ip: "2001:db8::1".parse().expect("ip"),
            last_ip: "2001:db8::ffff".parse().expect("ip"),
            occupied: false,
            v4: false,
        }
    }

    /// Regression: a /64 pool (2^64 addresses) was written as u64::MAX, which the API server
    /// refuses (int64), so the Eip's status was never written in a real cluster.
    #[test]
    fn sizes_past_int64_are_written_as_int64_max() {
        assert_eq!(eip_status(&status(1 << 64)).pool_size, i64::MAX as u64);
        assert_eq!(eip_status(&status(u128::MAX)).pool_size, i64::MAX as u64);
        assert_eq!(eip_status(&status(256)).pool_size, 256);
        let json = serde_json::to_value(eip_status(&status(1 << 64))).expect("json");
        assert!(json["poolSize"].as_i64().is_some(), "{json}");
    }
}

#[cfg(test)]
mod speakers_part_tests {
    use super::*;

    /// What the speakers write for layer 2 is not the controller's: a status that differs
    /// only there is no change for the controller (else every owner change the speakers
    /// wrote made the controller apply its status again and log its conditions again).
    #[test]
    fn the_speakers_layer2_part_is_no_change_for_the_controller() {
        let mine = EipStatus {
            usage: 1,
            pool_size: 4,
            ready: true,
            v4: true,
            conditions: eip_conditions(None, &["interface is ignored".to_string()]),
            ..EipStatus::default()
        };
        let mut read_back = mine.clone();
        read_back.conditions.push(api::Condition {
            type_: api::condition::LAYER2_ANSWERED.into(),
            status: "True".into(),
            reason: "Answered".into(),
            message: "1 of 1 addresses answered".into(),
            last_transition_time: "2026-01-01T00:00:00Z".into(),
        });
        read_back
            .layer2_owners
            .insert("10.0.0.1".into(), "node1".into());
        read_back
            .nodes_layer2_status
            .insert("node1".into(), api::eip::NodeLayer2Status::default());
        assert_ne!(read_back, mine);
        assert_eq!(controller_part(&read_back), mine);
        // The controller's own changes still count.
        let mut changed = read_back.clone();
        changed.usage = 2;
        assert_ne!(controller_part(&changed), mine);
    }
}
