//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas can run and only one
//! allocates. kube-runtime 5 ships no lease helper, so this is a small one.
//!
//! ```text
//!            no lease / expired / released          holder == me
//!  Follow ──────────────────────────────────► Lead ◄──────────── renew every `renew_every`
//!    ▲                                          │
//!    └──── someone else renewed in time ◄───────┘ renew failed for longer than the lease
//! ```
//!
//! The decision ([`decide`]) is pure: lease record + identity + clock → step. The I/O
//! ([`LeaderElector`]) reads the Lease and writes it back with its `resourceVersion`, so two
//! candidates racing for an expired lease cannot both win (the loser gets 409 Conflict).
//! A leader that cannot renew stops acting before its lease can expire: it steps down after
//! `lease_duration - renew_every` without a successful renew (each attempt is bounded by a
//! timeout, so a hanging API server cannot keep a stale leader running).
//!
//! Expiry is judged on this candidate's own clock, like client-go: a record counts as renewed
//! at the moment this candidate first saw it change, never by the `renewTime` another node's
//! clock wrote. Clock skew between nodes therefore cannot make two replicas lead at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;

/// What the Lease says now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `spec.holderIdentity` (empty or absent: released).
    pub holder: Option<String>,
    /// `spec.renewTime`.
    pub renew_time: Option<Timestamp>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
}

/// What a candidate should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// No Lease exists: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Expired or released: take it over (transitions + 1).
    TakeOver,
    /// Someone else holds it and renewed in time.
    Follow {
        /// The current leader.
        holder: String,
    },
}

/// The pure decision.
pub fn decide(record: Option<&LeaseRecord>, me: &str, now: Timestamp) -> Step {
    let Some(r) = record else {
        return Step::Create;
    };
    match r.holder.as_deref().filter(|h| !h.is_empty()) {
        None => Step::TakeOver,
        Some(h) if h == me => Step::Renew,
        Some(h) => {
            let expired = r.renew_time.is_none_or(|t| {
                let d = SignedDuration::try_from(r.duration).unwrap_or(SignedDuration::MAX);
                t.checked_add(d).is_ok_and(|end| end < now)
            });
            if expired {
                Step::TakeOver
            } else {
                Step::Follow {
                    holder: h.to_string(),
                }
            }
        }
    }
}

/// Reads the record of a Lease.
pub fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity,
        renew_time: spec.renew_time.map(|t| t.0),
        duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(15),
        ),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// The last Lease record seen and when (on our clock) it was first seen.
type Observed = Option<((Option<String>, Option<Timestamp>), Timestamp)>;

/// Candidate for one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    renew_every: Duration,
    observed: std::sync::Arc<std::sync::Mutex<Observed>>,
}

impl LeaderElector {
    /// A candidate `identity` for Lease `name` (in `api`'s namespace).
    pub fn new(
        api: Api<Lease>,
        name: impl Into<String>,
        identity: impl Into<String>,
        lease_duration: Duration,
        renew_every: Duration,
    ) -> LeaderElector {
        LeaderElector {
            api,
            name: name.into(),
            identity: identity.into(),
            lease_duration,
            renew_every,
            observed: std::sync::Arc::default(),
        }
    }

    /// The record with its renew time replaced by when we first saw this exact record.
    fn as_observed(&self, record: LeaseRecord, now: Timestamp) -> LeaseRecord {
        let key = (record.holder.clone(), record.renew_time);
        let mut observed = self
            .observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen_at = match observed.as_ref() {
            Some((k, at)) if *k == key => *at,
            _ => {
                *observed = Some((key, now));
                now
            }
        };
        LeaseRecord {
            renew_time: Some(seen_at),
            ..record
        }
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn spec(&self, now: Timestamp, acquired: Option<Timestamp>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: acquired.map(MicroTime),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One attempt: returns whether this candidate holds the Lease afterwards.
    pub async fn try_lead(&self, now: Timestamp) -> Result<bool, kube::Error> {
        let current = self.api.get_opt(&self.name).await?;
        let record = current
            .as_ref()
            .map(|l| self.as_observed(record_of(l), now));
        let step = decide(record.as_ref(), &self.identity, now);
        let result = match (step, current) {
            (Step::Follow { .. }, _) => return Ok(false),
            (Step::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, Some(now), 0)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Step::Renew, Some(mut lease)) => {
                let old = lease.spec.clone().unwrap_or_default();
                let mut spec = self.spec(now, old.acquire_time.map(|t| t.0), 0);
                spec.lease_transitions = old.lease_transitions;
                lease.spec = Some(spec);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
            (Step::TakeOver, Some(mut lease)) => {
                let transitions = record_of(&lease).transitions.saturating_add(1);
                lease.spec = Some(self.spec(now, Some(now), transitions));
                // resourceVersion stays set: a racing candidate's write makes ours fail.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.is_conflict() || s.is_already_exists() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this candidate leads.
    pub async fn acquire(&self) {
        loop {
            match self.try_lead(Timestamp::now()).await {
                Ok(true) => {
                    tracing::info!(identity = %self.identity, lease = %self.name, "leading");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("lease {}: {e}", self.name),
            }
            tokio::time::sleep(self.renew_every).await;
        }
    }

    /// Renews while leading; returns when leadership is lost (someone else holds the Lease, or
    /// renewing failed for so long that the Lease may expire).
    pub async fn hold(&self) {
        let give_up = self.lease_duration.saturating_sub(self.renew_every);
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.renew_every).await;
            let attempt = tokio::time::timeout(self.renew_every, self.try_lead(Timestamp::now()));
            match attempt.await {
                Ok(Ok(true)) => last_ok = tokio::time::Instant::now(),
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %self.name, "another replica holds the lease");
                    return;
                }
                Ok(Err(e)) => tracing::warn!("renewing lease {}: {e}", self.name),
                Err(_) => tracing::warn!("renewing lease {}: timed out", self.name),
            }
            if last_ok.elapsed() >= give_up {
                tracing::warn!(lease = %self.name, "could not renew in time; stepping down");
                return;
            }
        }
    }

    /// Releases the Lease on a clean shutdown so another replica takes over at once.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        if record_of(&lease).holder.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
        }
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).expect("timestamp")
    }

    fn held_by(who: &str, renewed: i64) -> LeaseRecord {
        LeaseRecord {
            holder: Some(who.into()),
            renew_time: Some(at(renewed)),
            duration: Duration::from_secs(15),
            transitions: 3,
        }
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(None, "a", at(100)), Step::Create);
        assert_eq!(decide(Some(&held_by("a", 90)), "a", at(100)), Step::Renew);
        assert_eq!(
            decide(Some(&held_by("b", 90)), "a", at(100)),
            Step::Follow { holder: "b".into() }
        );
        // Exactly at expiry the holder still has it; one second later it is gone.
        assert_eq!(
            decide(Some(&held_by("b", 85)), "a", at(100)),
            Step::Follow { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&held_by("b", 84)), "a", at(100)),
            Step::TakeOver
        );
        let released = LeaseRecord {
            holder: Some(String::new()),
            ..held_by("b", 99)
        };
        assert_eq!(decide(Some(&released), "a", at(100)), Step::TakeOver);
    }
}
