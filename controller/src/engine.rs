//! The decision logic: (cluster state, allocator) → (desired statuses, finalizers, events).
//!
//! Pure and synchronous, shared by the Kubernetes reconcilers and the standalone mode. It owns
//! the [`Allocator`]; it does no I/O and reads no clock. Restart safety lives in
//! [`Engine::rebuild`]: every address already written into a Service's status is restored
//! before anything new is handed out, so a restart never moves an address.

use std::collections::BTreeSet;

use crate::decision::{
    EipDecision, Event, EventType, FinalizerChange, ServiceDecision, eip_conditions, eip_status,
};
use crate::ipam::{
    AllocationError, Allocator, ExistingClaim, PoolError, ServiceRef, request_for_service,
};
use crate::view::{EipView, ServiceView};

/// The allocator plus the rules for turning object views into decisions.
#[derive(Debug, Default)]
pub struct Engine {
    allocator: Allocator,
}

impl Engine {
    /// Rebuilds every allocation from Eips and Service statuses, before any new allocation.
    ///
    /// Only Services Berth handles count; pools of Eips being deleted hand out nothing new.
    /// Claims whose address lies in no pool, or that collide without a valid sharing key (the
    /// later Service loses), are refused with a Warning event; reconciling that Service
    /// afterwards gives it a fresh address or a failure event.
    pub fn rebuild(eips: &[EipView], services: &[ServiceView]) -> (Engine, Vec<Event>) {
        // A Terminating Eip is admitted closed, as `reconcile_eip` leaves it: its Services
        // keep their addresses, but nothing new comes from it, whichever runs first after a
        // restart or a leader change.
        let pools = eips.iter().map(|e| crate::ipam::PoolSpec {
            disable: e.spec.disable || e.deleting,
            ..e.spec.clone()
        });
        let mut events = Vec::new();
        let claims = services
            .iter()
            .filter(|s| s.managed && !s.ingress.is_empty())
            .map(|s| match request_for_service(&s.facts) {
                Ok(request) => ExistingClaim {
                    request,
                    addresses: s.ingress.clone(),
                    created: s.created,
                },
                Err(e) => {
                    // Its request no longer parses; keep its addresses under plain terms so
                    // nothing moves, and tell the owner.
                    events.push(failure_event(&s.key, &e));
                    let mut request = crate::ipam::AllocationRequest::new(s.key.clone());
                    request.addresses = s.ingress.clone();
                    request.policy = crate::ipam::FamilyPolicy::PreferDualStack;
                    ExistingClaim {
                        request,
                        addresses: s.ingress.clone(),
                        created: s.created,
                    }
                }
            });
        let rebuilt = Allocator::rebuild(pools, claims);
        for (pool, error) in &rebuilt.pool_errors {
            events.push(
                Event::eip(pool, EventType::Warning, "InvalidPool", error.to_string())
                    .with_cause(pool_error_cause(error)),
            );
        }
        for r in &rebuilt.refused {
            events.push(
                Event::service(
                    &r.service,
                    EventType::Warning,
                    "AddressRefused",
                    format!("{} was in status but is refused: {}", r.address, r.error),
                )
                .with_cause(r.error.reason()),
            );
        }
        (
            Engine {
                allocator: rebuilt.allocator,
            },
            events,
        )
    }

    /// The allocator, read-only (metrics, status).
    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// Decides what to do with one Service.
    pub fn reconcile_service(&mut self, view: &ServiceView) -> ServiceDecision {
        if !view.managed || view.deleting {
            return self.release_service(view);
        }
        let mut decision = ServiceDecision {
            ingress: None,
            finalizer: if view.has_finalizer {
                FinalizerChange::Keep
            } else {
                FinalizerChange::Add
            },
            events: Vec::new(),
            pools: Vec::new(),
            allocated: false,
            failure: None,
        };
        let before: BTreeSet<String> = self.pools_of(&view.key);
        let result = request_for_service(&view.facts).and_then(|r| self.allocator.allocate(&r));
        match result {
            Ok(allocation) => {
                for gone in &allocation.released {
                    decision.events.push(Event::service(
                        &view.key,
                        EventType::Normal,
                        "AddressReleased",
                        format!("released {} back to pool {}", gone.address, gone.pool),
                    ));
                }
                if allocation.changed {
                    let new: Vec<String> = allocation
                        .addresses
                        .iter()
                        .filter(|a| !view.ingress.contains(&a.address))
                        .map(|a| format!("{} from pool {}", a.address, a.pool))
                        .collect();
                    if !new.is_empty() {
                        decision.allocated = true;
                        decision.events.push(Event::service(
                            &view.key,
                            EventType::Normal,
                            "AddressAllocated",
                            format!("allocated {}", new.join(", ")),
                        ));
                    }
                }
                for a in &allocation.addresses {
                    let why = self
                        .allocator
                        .pool(&a.pool)
                        .and_then(|p| p.spec().not_announced.as_deref());
                    if let Some(why) = why
                        && (allocation.changed || !view.ingress.contains(&a.address))
                    {
                        decision.events.push(Event::service(
                            &view.key,
                            EventType::Warning,
                            "AddressNotAnnounced",
                            format!("{} from pool {}: {why}", a.address, a.pool),
                        ));
                    }
                }
                for (family, e) in &allocation.missing {
                    decision.events.push(
                        Event::service(
                            &view.key,
                            EventType::Warning,
                            "AllocationFailed",
                            format!("no {family} address (PreferDualStack): {e}"),
                        )
                        .with_cause(e.reason()),
                    );
                }
                decision.ingress = Some(allocation.addresses.iter().map(|a| a.address).collect());
            }
            Err(e) => {
                // Nothing moves on failure: whatever the Service held stays held and published.
                decision.failure = Some(e.reason());
                decision.events.push(failure_event(&view.key, &e));
                decision.ingress = Some(
                    self.allocator
                        .addresses_of(&view.key)
                        .iter()
                        .map(|a| a.address)
                        .collect(),
                );
            }
        }
        let after = self.pools_of(&view.key);
        if before != after || decision.allocated || !decision.events.is_empty() {
            decision.pools = before.union(&after).cloned().collect();
        }
        // After the pools: a refused annotation changes nothing of any pool.
        if let Some(event) = bgp_annotations_event(view) {
            decision.events.push(event);
        }
        decision
    }

    fn release_service(&mut self, view: &ServiceView) -> ServiceDecision {
        let released = self.allocator.release(&view.key);
        let events = released
            .iter()
            .map(|a| {
                Event::service(
                    &view.key,
                    EventType::Normal,
                    "AddressReleased",
                    format!("released {} back to pool {}", a.address, a.pool),
                )
            })
            .collect();
        // Clear the status only of a Service we published to (it carries our finalizer), and
        // not of one being deleted: another controller may own a Service that never was ours.
        let ingress =
            (view.has_finalizer && !view.deleting && !view.ingress.is_empty()).then(Vec::new);
        ServiceDecision {
            ingress,
            finalizer: if view.has_finalizer {
                FinalizerChange::Remove
            } else {
                FinalizerChange::Keep
            },
            events,
            pools: released.into_iter().map(|a| a.pool).collect(),
            allocated: false,
            failure: None,
        }
    }

    /// Forgets a Service that vanished without our finalizer (e.g. removed by hand).
    pub fn forget_service(&mut self, key: &ServiceRef) -> Vec<String> {
        self.allocator
            .release(key)
            .into_iter()
            .map(|a| a.pool)
            .collect()
    }

    /// Brings the pool set in line with the Eips that exist: admits pools not seen yet and
    /// drops pools whose Eip is gone (a pool still in use stays: its Services hold it).
    /// Changes to known pools go through [`Engine::reconcile_eip`], which reports evictions.
    pub fn sync_pools(&mut self, eips: &[EipView]) {
        for e in eips.iter().filter(|e| !e.deleting) {
            if self.allocator.pool(&e.spec.name).is_none() {
                // An invalid spec is reported by the Eip's own reconcile.
                let _ = self.allocator.upsert_pool(e.spec.clone());
            }
        }
        let gone: Vec<String> = self
            .allocator
            .pools()
            .map(|p| p.name().to_string())
            .filter(|n| !eips.iter().any(|e| e.spec.name == *n))
            .collect();
        for name in gone {
            let _ = self.allocator.remove_pool(&name);
        }
    }

    /// Forgets every Service holding an address in `pool` that no longer exists (deleted
    /// without our finalizer, e.g. by hand); returns whether anything was forgotten.
    pub fn forget_missing(&mut self, pool: &str, exists: impl Fn(&ServiceRef) -> bool) -> bool {
        let Some(p) = self.allocator.pool(pool) else {
            return false;
        };
        let gone: BTreeSet<ServiceRef> = p
            .allocations()
            .flat_map(|(_, holders)| holders.iter().filter(|s| !exists(s)).cloned())
            .collect();
        for s in &gone {
            self.allocator.release(s);
        }
        !gone.is_empty()
    }

    fn pools_of(&self, key: &ServiceRef) -> BTreeSet<String> {
        self.allocator
            .addresses_of(key)
            .iter()
            .map(|a| a.pool.clone())
            .collect()
    }

    /// Decides what to do with one Eip: keep the pool in step with its spec, hold a deleted
    /// pool while Services use it, and report its exact status.
    pub fn reconcile_eip(&mut self, view: &EipView) -> EipDecision {
        let name = view.spec.name.clone();
        if view.deleting {
            if self.allocator.pool_in_use(&name) {
                // A pool on its way out hands out nothing new while it waits for its Services.
                let closing = crate::ipam::PoolSpec {
                    disable: true,
                    ..view.spec.clone()
                };
                // An invalid or overlapping spec was never admitted; nothing to close.
                let _ = self.allocator.upsert_pool(closing);
            }
            return match self.allocator.remove_pool(&name) {
                Ok(()) => EipDecision {
                    status: None,
                    finalizer: if view.has_finalizer {
                        FinalizerChange::Remove
                    } else {
                        FinalizerChange::Keep
                    },
                    events: Vec::new(),
                    evicted: Vec::new(),
                },
                Err(e) => EipDecision {
                    status: self.pool_status(&name),
                    finalizer: if view.has_finalizer {
                        FinalizerChange::Keep
                    } else {
                        FinalizerChange::Add
                    },
                    events: vec![
                        Event::eip(&name, EventType::Warning, "PoolInUse", e.to_string())
                            .with_cause("PoolInUse"),
                    ],
                    evicted: Vec::new(),
                },
            };
        }
        match self.allocator.upsert_pool(view.spec.clone()) {
            Ok(update) => {
                let mut events = Vec::new();
                for (svc, gone) in &update.evicted {
                    events.push(Event::service(
                        svc,
                        EventType::Warning,
                        "AddressReleased",
                        format!(
                            "{} is no longer inside pool {}'s range; a new address will be allocated",
                            gone.address, gone.pool
                        ),
                    ));
                }
                let problems = self
                    .allocator
                    .pool(&name)
                    .map(|p| p.problems().to_vec())
                    .unwrap_or_default();
                let refusal = (!problems.is_empty()).then(|| {
                    let held = self.allocator.pool(&name).map_or(0, |p| p.usage());
                    (
                        "InvalidPool",
                        format!(
                            "pool {name:?} is invalid and hands out nothing: {}; the {held} address(es) Services already hold in it stay theirs",
                            problems.join("; ")
                        ),
                    )
                });
                if let Some((reason, message)) = &refusal {
                    events.push(
                        Event::eip(&name, EventType::Warning, reason, message.clone())
                            .with_cause("InvalidAddress"),
                    );
                }
                for warning in &view.spec.warnings {
                    events.push(Event::eip(
                        &name,
                        EventType::Warning,
                        "FieldIgnored",
                        warning.clone(),
                    ));
                }
                let status = self.pool_status(&name).map(|s| api::EipStatus {
                    ready: refusal.is_none(),
                    conditions: eip_conditions(
                        refusal.as_ref().map(|(r, m)| (*r, m.clone())),
                        &view.spec.warnings,
                    ),
                    ..s
                });
                EipDecision {
                    status,
                    finalizer: self.eip_finalizer(&name, view.has_finalizer),
                    events,
                    evicted: update.evicted.into_iter().map(|(s, _)| s).collect(),
                }
            }
            Err(e) => {
                let cause = pool_error_cause(&e);
                let condition_reason = if cause == "PoolOverlaps" {
                    "PoolOverlaps"
                } else {
                    "InvalidPool"
                };
                let status = api::EipStatus {
                    ready: false,
                    conditions: eip_conditions(
                        Some((condition_reason, e.to_string())),
                        &view.spec.warnings,
                    ),
                    ..self.pool_status(&name).unwrap_or_default()
                };
                let mut events = vec![
                    Event::eip(&name, EventType::Warning, "InvalidPool", e.to_string())
                        .with_cause(cause),
                ];
                for warning in &view.spec.warnings {
                    events.push(Event::eip(
                        &name,
                        EventType::Warning,
                        "FieldIgnored",
                        warning.clone(),
                    ));
                }
                EipDecision {
                    status: Some(status),
                    finalizer: self.eip_finalizer(&name, view.has_finalizer),
                    events,
                    evicted: Vec::new(),
                }
            }
        }
    }

    /// The finalizer change that makes "present exactly while in use" true.
    pub fn eip_finalizer(&self, name: &str, has_finalizer: bool) -> FinalizerChange {
        match (self.allocator.pool_in_use(name), has_finalizer) {
            (true, false) => FinalizerChange::Add,
            (false, true) => FinalizerChange::Remove,
            _ => FinalizerChange::Keep,
        }
    }

    /// The exact status of a pool the allocator knows.
    pub fn pool_status(&self, name: &str) -> Option<api::EipStatus> {
        self.allocator.pool(name).map(|p| eip_status(&p.status()))
    }
}

fn failure_event(key: &ServiceRef, e: &AllocationError) -> Event {
    Event::service(key, EventType::Warning, "AllocationFailed", e.to_string())
        .with_cause(e.reason())
}

fn pool_error_cause(e: &PoolError) -> &'static str {
    match e {
        PoolError::InvalidAddress(_) | PoolError::Invalid { .. } => "InvalidAddress",
        PoolError::Overlaps { .. } => "PoolOverlaps",
        PoolError::InUse { .. } => "PoolInUse",
    }
}

/// The Warning a Service gets when its `berth.io/bgp-*` annotations do not parse
/// (`api::bgp_overrides`): the speakers then announce its addresses with the pool's
/// attributes, and say so in their logs.
fn bgp_annotations_event(view: &ServiceView) -> Option<Event> {
    let errors = api::bgp_overrides::parse(&view.facts.annotations).err()?;
    Some(Event::service(
        &view.key,
        EventType::Warning,
        "InvalidBgpAttributes",
        format!(
            "BGP attribute annotations refused, the pool's attributes apply: {}",
            errors.join("; ")
        ),
    ))
}
