//! The Kubernetes edge: kube-runtime controllers for Services and Eips, leader election, and
//! the rebuild before the first allocation. Every decision comes from [`crate::engine`]; this
//! module only reads objects and carries decisions out ([`apply`]).

pub mod apply;
pub mod leader;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::Eip;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Mutex, MutexGuard, mpsc};

use crate::decision::{FinalizerChange, ServiceDecision};
use crate::engine::Engine;
use crate::ipam::ServiceRef;
use crate::metrics::Metrics;
use crate::view::{ClassConfig, EipView, ServiceView};

/// Failures of one reconcile; the controller retries it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A cache stopped before it was filled.
    #[error("object cache closed before it was filled")]
    CacheClosed,
}

/// Shared state of the reconcilers.
pub struct Context {
    client: Client,
    class: ClassConfig,
    engine: Mutex<Option<Engine>>,
    services: Store<Service>,
    eips: Store<Eip>,
    namespaces: Store<Namespace>,
    recorder: Recorder,
    metrics: Metrics,
    reconcile_services: mpsc::UnboundedSender<()>,
    generations: std::sync::Mutex<HashMap<String, i64>>,
    pool_writes: PoolWrites,
}

/// How Eip statuses follow Service changes.
///
/// An Eip's status lists every address in use (OpenELB's `used` map), so writing it after
/// each of 10,000 allocations in a burst would send gigabytes. Coalesced mode marks pools
/// dirty and a single writer ([`write_dirty_pools`]) writes each once per window.
enum PoolWrites {
    /// Write right after the Service's reconcile (tests, small clusters).
    Immediate,
    /// Write dirty pools at most once per window.
    Coalesced {
        window: Duration,
        dirty: std::sync::Mutex<std::collections::BTreeSet<String>>,
        wake: tokio::sync::Notify,
    },
}

impl Context {
    /// A context over caches filled elsewhere (the controllers' stores, or a test's).
    /// `reconcile_services` receives a message whenever every Service should be reconciled.
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per shared collaborator"
    )]
    pub fn new(
        client: Client,
        class: ClassConfig,
        services: Store<Service>,
        eips: Store<Eip>,
        namespaces: Store<Namespace>,
        recorder: Recorder,
        metrics: Metrics,
        reconcile_services: mpsc::UnboundedSender<()>,
    ) -> Context {
        Context {
            client,
            class,
            engine: Mutex::new(None),
            services,
            eips,
            namespaces,
            recorder,
            metrics,
            reconcile_services,
            generations: std::sync::Mutex::new(HashMap::new()),
            pool_writes: PoolWrites::Immediate,
        }
    }

    /// Coalesces Eip status writes caused by Services into one per pool per `window`;
    /// [`write_dirty_pools`] must then run beside the controllers.
    pub fn with_coalesced_pool_writes(mut self, window: Duration) -> Context {
        self.pool_writes = PoolWrites::Coalesced {
            window,
            dirty: std::sync::Mutex::default(),
            wake: tokio::sync::Notify::new(),
        };
        self
    }

    /// A Service's holding in `pool` changed: write the pool's status now or soon.
    async fn pool_changed(&self, pool: &str) -> Result<(), Error> {
        match &self.pool_writes {
            PoolWrites::Immediate => {
                if let Some(eip) = self.eips.get(&ObjectRef::new(pool)) {
                    self.sync_pool(&eip).await?;
                }
            }
            PoolWrites::Coalesced { dirty, wake, .. } => {
                dirty
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(pool.to_string());
                wake.notify_one();
            }
        }
        Ok(())
    }

    /// The engine, rebuilt from every Service's status on first use: nothing is allocated
    /// before every existing allocation is known.
    async fn engine(&self) -> Result<MutexGuard<'_, Option<Engine>>, Error> {
        let mut guard = self.engine.lock().await;
        if guard.is_none() {
            self.services
                .wait_until_ready()
                .await
                .map_err(|_| Error::CacheClosed)?;
            self.eips
                .wait_until_ready()
                .await
                .map_err(|_| Error::CacheClosed)?;
            self.namespaces
                .wait_until_ready()
                .await
                .map_err(|_| Error::CacheClosed)?;
            let eips: Vec<EipView> = self
                .eips
                .state()
                .iter()
                .map(|e| EipView::from_eip(e))
                .collect();
            let services: Vec<ServiceView> =
                self.services.state().iter().map(|s| self.view(s)).collect();
            let (engine, events) = Engine::rebuild(&eips, &services);
            tracing::info!(
                pools = eips.len(),
                services = services.len(),
                "rebuilt allocations from Service status"
            );
            apply::events(&self.recorder, &events, None).await;
            self.metrics.observe_pools(&engine);
            *guard = Some(engine);
        }
        Ok(guard)
    }

    fn view(&self, svc: &Service) -> ServiceView {
        let ns = svc.namespace().unwrap_or_else(|| "default".into());
        let labels = self
            .namespaces
            .get(&ObjectRef::new(&ns))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        ServiceView::from_service(svc, &self.class, &labels)
    }

    /// Brings one pool's Eip (status, finalizer) in line with the allocator.
    async fn sync_pool(&self, eip: &Eip) -> Result<Vec<ServiceRef>, Error> {
        let name = eip.name_any();
        let view = EipView::from_eip(eip);
        let decision = {
            let mut guard = self.engine().await?;
            let Some(engine) = guard.as_mut() else {
                return Ok(Vec::new());
            };
            let services = &self.services;
            let exists = |s: &ServiceRef| {
                services
                    .get(&ObjectRef::new(&s.name).within(&s.namespace))
                    .is_some()
            };
            engine.forget_missing(&name, exists);
            let d = engine.reconcile_eip(&view);
            self.metrics.observe_pools(engine);
            d
        };
        let api: Api<Eip> = Api::all(self.client.clone());
        if decision.finalizer == FinalizerChange::Add {
            apply::finalizer(&api, eip, apply::EIP, FinalizerChange::Add).await?;
        }
        if let Some(status) = &decision.status
            && eip.status.as_ref() != Some(status)
            && !view.deleting
        {
            apply::eip_status(&api, &name, status).await?;
        }
        let uid = eip.uid();
        apply::events(&self.recorder, &decision.events, uid.as_deref()).await;
        if decision.finalizer == FinalizerChange::Remove {
            apply::finalizer(&api, eip, apply::EIP, FinalizerChange::Remove).await?;
        }
        Ok(decision.evicted)
    }
}

/// Reconciles one Service: allocate, publish, release; see [`Engine::reconcile_service`].
pub async fn reconcile_service(svc: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let view = ctx.view(&svc);
    let decision: ServiceDecision = {
        let mut guard = ctx.engine().await?;
        let Some(engine) = guard.as_mut() else {
            return Ok(Action::requeue(Duration::from_secs(1)));
        };
        // The controller is not called for objects deleted without a finalizer: an unused
        // pool removed that way must not keep handing out addresses.
        let eips: Vec<EipView> = ctx
            .eips
            .state()
            .iter()
            .map(|e| EipView::from_eip(e))
            .collect();
        engine.sync_pools(&eips);
        engine.reconcile_service(&view)
    };
    let ns = view.key.namespace.clone();
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    // The finalizer goes on before the address is published, so a deletion always reaches us.
    if decision.finalizer == FinalizerChange::Add {
        apply::finalizer(&api, svc.as_ref(), apply::SERVICE, FinalizerChange::Add).await?;
    }
    if let Some(ips) = &decision.ingress
        && *ips != view.ingress
        && !view.deleting
    {
        apply::service_ingress(&api, &view.key.name, ips).await?;
    }
    let uid = svc.uid();
    apply::events(&ctx.recorder, &decision.events, uid.as_deref()).await;
    if decision.allocated {
        ctx.metrics.allocated();
    }
    if let Some(reason) = decision.failure {
        ctx.metrics.failed(reason);
    }
    let released = decision
        .events
        .iter()
        .filter(|e| e.reason == "AddressReleased")
        .count();
    ctx.metrics.released(released);
    for pool in &decision.pools {
        ctx.pool_changed(pool).await?;
    }
    if decision.finalizer == FinalizerChange::Remove {
        apply::finalizer(&api, svc.as_ref(), apply::SERVICE, FinalizerChange::Remove).await?;
    }
    ctx.metrics.reconciled("service", started.elapsed());
    Ok(match decision.failure {
        // A failed allocation may succeed once pools change; Eip changes also trigger a retry.
        Some(_) => Action::requeue(Duration::from_secs(60)),
        None => Action::await_change(),
    })
}

/// Reconciles one Eip: status, finalizer while in use; see [`Engine::reconcile_eip`].
pub async fn reconcile_eip(eip: Arc<Eip>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let evicted = ctx.sync_pool(&eip).await?;
    let generation = eip.metadata.generation.unwrap_or(0);
    let changed = {
        let mut seen = ctx
            .generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.insert(eip.name_any(), generation) != Some(generation)
    };
    if changed || !evicted.is_empty() {
        // A new or changed pool may serve Services that failed, or must re-home evicted ones.
        let _ = ctx.reconcile_services.send(());
    }
    ctx.metrics.reconciled("eip", started.elapsed());
    Ok(Action::await_change())
}

/// Writes the status of pools marked dirty, at most once per window each; runs forever
/// (returns at once in immediate mode).
pub async fn write_dirty_pools(ctx: Arc<Context>) {
    let PoolWrites::Coalesced {
        window,
        dirty,
        wake,
    } = &ctx.pool_writes
    else {
        return;
    };
    loop {
        wake.notified().await;
        tokio::time::sleep(*window).await;
        let pools = std::mem::take(
            &mut *dirty
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for pool in pools {
            let Some(eip) = ctx.eips.get(&ObjectRef::new(&pool)) else {
                continue;
            };
            if let Err(e) = ctx.sync_pool(&eip).await {
                tracing::warn!("writing status of Eip {pool}: {e}");
                dirty
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(pool);
                wake.notify_one();
            }
        }
    }
}

fn error_policy<K>(_: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!("reconcile failed: {error}");
    ctx.metrics.failed("ApiError");
    Action::requeue(Duration::from_secs(5))
}

/// Options of the Kubernetes mode.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Which Services are Berth's.
    pub class: ClassConfig,
    /// Reporting controller name for events.
    pub reporter: String,
    /// This replica's identity (pod name) for events and the Lease.
    pub identity: String,
    /// Lease `(namespace, name)`; `None` runs without leader election (one replica only).
    pub lease: Option<(String, String)>,
    /// Lease duration.
    pub lease_duration: Duration,
    /// Renew period.
    pub renew_every: Duration,
}

/// Runs the controllers (after winning the Lease, when configured) until leadership is lost
/// or the process is told to stop.
pub async fn run(client: Client, opts: ClusterOptions, metrics: Metrics) -> anyhow::Result<()> {
    let elector = opts.lease.as_ref().map(|(ns, name)| {
        leader::LeaderElector::new(
            Api::namespaced(client.clone(), ns),
            name,
            opts.identity.clone(),
            opts.lease_duration,
            opts.renew_every,
        )
    });
    if let Some(e) = &elector {
        e.acquire().await;
    }
    let controllers = controllers(client, &opts, metrics);
    let outcome = match &elector {
        Some(e) => {
            tokio::select! {
                () = controllers => Ok(()),
                () = e.hold() => Err(anyhow::anyhow!("lost the leader lease; exiting so a fresh start rebuilds")),
            }
        }
        None => {
            controllers.await;
            Ok(())
        }
    };
    if let Some(e) = &elector
        && outcome.is_ok()
        && let Err(err) = e.release().await
    {
        tracing::warn!("releasing the lease: {err}");
    }
    outcome
}

/// The two controllers and the Namespace cache, until shutdown (SIGTERM / Ctrl-C).
pub async fn controllers(client: Client, opts: &ClusterOptions, metrics: Metrics) {
    let services: Api<Service> = Api::all(client.clone());
    let eips: Api<Eip> = Api::all(client.clone());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let (ns_reader, ns_writer) = reflector::store();
    let ns_cache = reflector::reflector(ns_writer, watcher(namespaces, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let on_namespace = tx.clone();
    // A namespace's labels decide which pools bind it: retry Services when they change.
    let ns_cache = ns_cache.for_each(move |_| {
        let _ = on_namespace.send(());
        futures::future::ready(())
    });
    let trigger = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let service_ctl = Controller::new(services, watcher::Config::default())
        .reconcile_all_on(trigger)
        .shutdown_on_signal();
    let eip_ctl = Controller::new(eips, watcher::Config::default()).shutdown_on_signal();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: opts.reporter.clone(),
            instance: Some(opts.identity.clone()),
        },
    );
    let ctx = Arc::new(
        Context::new(
            client,
            opts.class.clone(),
            service_ctl.store(),
            eip_ctl.store(),
            ns_reader,
            recorder,
            metrics,
            tx,
        )
        .with_coalesced_pool_writes(Duration::from_millis(500)),
    );
    let pool_writer = write_dirty_pools(ctx.clone());
    let svc = service_ctl
        .run(reconcile_service, error_policy, ctx.clone())
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!("service controller: {e}");
            }
            futures::future::ready(())
        });
    let eip = eip_ctl.run(reconcile_eip, error_policy, ctx).for_each(|r| {
        if let Err(e) = r {
            tracing::debug!("eip controller: {e}");
        }
        futures::future::ready(())
    });
    tokio::select! {
        _ = futures::future::join(svc, eip) => {}
        () = ns_cache => {}
        () = pool_writer => {}
    }
}
