//! The Kubernetes edge: kube-runtime controllers for Services and Eips, leader election, and
//! the rebuild before the first allocation. Every decision comes from [`crate::engine`]; this
//! module only reads objects and carries decisions out ([`apply`]).

pub mod apply;
pub mod cache;
pub mod leader;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{BgpPeer, Eip};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Mutex, MutexGuard, mpsc};

use self::cache::Cache;
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
    engine: Mutex<Engine>,
    services: Store<Service>,
    eips: Store<Eip>,
    namespaces: Store<Namespace>,
    recorder: Recorder,
    metrics: Metrics,
    reconcile_services: mpsc::UnboundedSender<()>,
    generations: std::sync::Mutex<HashMap<String, i64>>,
    pool_writes: PoolWrites,
    /// Nodes and BgpPeers, for the Eips' `Selected` condition; `None` says nothing of it.
    selection: Option<(Store<Node>, Store<BgpPeer>)>,
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
    /// A context over caches that are already filled ([`cache::wait_filled`], or a test's
    /// stores): rebuilds every allocation from the Services' status before any reconcile can
    /// run, and publishes the rebuild's events. `reconcile_services` receives a message
    /// whenever every Service should be reconciled.
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per shared collaborator"
    )]
    pub async fn new(
        client: Client,
        class: ClassConfig,
        services: Store<Service>,
        eips: Store<Eip>,
        namespaces: Store<Namespace>,
        recorder: Recorder,
        metrics: Metrics,
        reconcile_services: mpsc::UnboundedSender<()>,
    ) -> Context {
        let eip_views: Vec<EipView> = eips.state().iter().map(|e| EipView::from_eip(e)).collect();
        let service_views: Vec<ServiceView> = services
            .state()
            .iter()
            .map(|s| service_view(s, &class, &namespaces))
            .collect();
        let (engine, events) = Engine::rebuild(&eip_views, &service_views);
        tracing::info!(
            pools = eip_views.len(),
            services = service_views.len(),
            "rebuilt allocations from Service status"
        );
        apply::events(&recorder, &events, None).await;
        metrics.observe_pools(&engine);
        Context {
            client,
            class,
            engine: Mutex::new(engine),
            services,
            eips,
            namespaces,
            recorder,
            metrics,
            reconcile_services,
            generations: std::sync::Mutex::new(HashMap::new()),
            pool_writes: PoolWrites::Immediate,
            selection: None,
        }
    }

    /// Puts the `Selected` condition (`crate::selection`) on bgp pools with a selector,
    /// reading Nodes and BgpPeers from these caches.
    pub fn with_selection(mut self, nodes: Store<Node>, peers: Store<BgpPeer>) -> Context {
        self.selection = Some((nodes, peers));
        self
    }

    /// The `Selected` condition of `eip`, from the caches; `None` when there is nothing to
    /// say or no caches.
    fn selected(&self, eip: &Eip) -> Option<api::Condition> {
        let (nodes, peers) = self.selection.as_ref()?;
        let nodes: Vec<crate::selection::Labels> = nodes
            .state()
            .iter()
            .map(|n| n.metadata.labels.clone().unwrap_or_default())
            .collect();
        let peers: Vec<crate::selection::PeerFacts> = peers
            .state()
            .iter()
            .map(|p| crate::selection::PeerFacts {
                labels: p.metadata.labels.clone().unwrap_or_default(),
                node_selector: p.spec.node_selector.clone(),
            })
            .collect();
        crate::selection::selected(&eip.spec, &nodes, &peers)
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

    /// The engine. The lock is never held across a wait on a cache or the API server.
    async fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().await
    }

    fn view(&self, svc: &Service) -> ServiceView {
        service_view(svc, &self.class, &self.namespaces)
    }

    /// Brings one pool's Eip (status, finalizer) in line with the allocator.
    async fn sync_pool(&self, eip: &Eip) -> Result<Vec<ServiceRef>, Error> {
        let name = eip.name_any();
        let view = EipView::from_eip(eip);
        let mut decision = {
            let mut engine = self.engine().await;
            let services = &self.services;
            let exists = |s: &ServiceRef| {
                services
                    .get(&ObjectRef::new(&s.name).within(&s.namespace))
                    .is_some()
            };
            engine.forget_missing(&name, exists);
            let d = engine.reconcile_eip(&view);
            self.metrics.observe_pools(&engine);
            d
        };
        if let Some(status) = decision.status.as_mut()
            && let Some(selected) = self.selected(eip)
        {
            if selected.status == "False" {
                decision.events.push(crate::decision::Event::eip(
                    &name,
                    crate::decision::EventType::Warning,
                    &selected.reason,
                    selected.message.clone(),
                ));
            }
            status.conditions.push(selected);
        }
        let api: Api<Eip> = Api::all(self.client.clone());
        if decision.finalizer == FinalizerChange::Add {
            apply::finalizer(&api, eip, apply::EIP, FinalizerChange::Add).await?;
        }
        // A pool refused or with fields ignored says so in the log once, when its condition
        // changes (the Events repeat on every reconcile).
        if let Some(status) = &decision.status
            && eip
                .status
                .as_ref()
                .map(|s| crate::decision::controller_part(s).conditions)
                != Some(status.conditions.clone())
        {
            for c in &status.conditions {
                tracing::warn!(eip = %name, reason = %c.reason, "{}", c.message);
            }
        }
        if let Some(status) = &decision.status
            && eip.status.as_ref().map(crate::decision::controller_part) != Some(status.clone())
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

/// What the decisions need of a Service, with its namespace's labels from the cache.
fn service_view(svc: &Service, class: &ClassConfig, namespaces: &Store<Namespace>) -> ServiceView {
    let ns = svc.namespace().unwrap_or_else(|| "default".into());
    let labels = namespaces
        .get(&ObjectRef::new(&ns))
        .and_then(|n| n.metadata.labels.clone())
        .unwrap_or_default();
    ServiceView::from_service(svc, class, &labels)
}

/// Reconciles one Service: allocate, publish, release; see [`Engine::reconcile_service`].
pub async fn reconcile_service(svc: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let view = ctx.view(&svc);
    let decision: ServiceDecision = {
        let mut engine = ctx.engine().await;
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
        // The Warning Event says it on the Service; the log says it for the operator too.
        let why: Vec<&str> = decision.events.iter().map(|e| e.message.as_str()).collect();
        tracing::warn!(service = %view.key, reason, "no address: {}", why.join("; "));
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

/// How long a stop may take to give the Lease back before the process exits anyway.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the log says which caches are still filling.
const FILL_REPORT: Duration = Duration::from_secs(10);

/// Runs the controllers (after winning the Lease, when configured) until `shutdown`
/// resolves. A replica that loses the Lease (another took it, or it could not renew in time,
/// as in an API server outage) drops its controllers and caches and becomes a candidate
/// again: when it leads again it starts from fresh caches and rebuilds every allocation, as
/// a new process would, without a restart and the kubelet's crash-loop backoff. A stop
/// returns promptly in every state (waiting for the Lease, caches filling, the API server
/// unreachable): in-flight reconciles are dropped, which is safe because each one is
/// idempotent and the next leader redoes it from the cluster.
pub async fn run(
    client: Client,
    opts: ClusterOptions,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let elector = opts.lease.as_ref().map(|(ns, name)| {
        leader::LeaderElector::new(
            Api::namespaced(client.clone(), ns),
            name,
            opts.identity.clone(),
            opts.lease_duration,
            opts.renew_every,
        )
    });
    let work = async {
        let Some(e) = &elector else {
            controllers(client.clone(), &opts, metrics.clone()).await;
            return;
        };
        loop {
            tracing::info!(identity = %opts.identity, "waiting to lead");
            e.acquire().await;
            tokio::select! {
                () = controllers(client.clone(), &opts, metrics.clone()) => return,
                () = e.hold() => tracing::warn!(
                    identity = %opts.identity,
                    "lost the leader lease: controllers stopped, a candidate again"
                ),
            }
        }
    };
    tokio::select! {
        () = work => tracing::warn!("the controllers stopped"),
        () = shutdown => tracing::info!("stopping: controllers stopped"),
    }
    if let Some(e) = &elector {
        match tokio::time::timeout(RELEASE_TIMEOUT, e.release()).await {
            Ok(Ok(())) => tracing::info!("lease released (if held)"),
            Ok(Err(err)) => tracing::warn!("releasing the lease: {err}"),
            Err(_) => {
                tracing::warn!("releasing the lease: no answer in time; it expires by itself")
            }
        }
    }
    Ok(())
}

/// The two controllers over shared caches of Services, Eips and Namespaces, until a
/// controller stops. Every cache is filled first and the allocations are rebuilt from it;
/// only then does any reconcile run (see [`cache`]).
pub async fn controllers(client: Client, opts: &ClusterOptions, metrics: Metrics) {
    let (reconcile_all, reconcile_all_rx) = mpsc::unbounded_channel::<()>();
    let (services, service_queue) = Cache::start_queued(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let (eips, eip_queue) =
        Cache::start_queued(Api::<Eip>::all(client.clone()), watcher::Config::default());
    // A namespace's labels decide which pools bind it: retry Services when they change.
    let on_namespace = reconcile_all.clone();
    let namespaces = Cache::start(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        move |_| {
            let _ = on_namespace.send(());
        },
    );
    // Node and BgpPeer labels (and a BgpPeer's nodeSelector) decide the Eips' `Selected`
    // condition: reconcile every Eip when they change, not on every Node heartbeat.
    let (reconcile_eips, reconcile_eips_rx) = mpsc::unbounded_channel::<()>();
    let nodes = Cache::start(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        on_change(reconcile_eips.clone(), |n: &Node| {
            format!("{:?}", n.metadata.labels)
        }),
    );
    let bgp_peers = Cache::start(
        Api::<BgpPeer>::all(client.clone()),
        watcher::Config::default(),
        on_change(reconcile_eips, |p: &BgpPeer| {
            format!("{:?} {:?}", p.metadata.labels, p.spec.node_selector)
        }),
    );
    tracing::info!(
        "waiting for the caches of Services, Eips, Namespaces, Nodes and BgpPeers to fill"
    );
    for filled in [
        cache::wait_filled(&services, FILL_REPORT).await,
        cache::wait_filled(&eips, FILL_REPORT).await,
        cache::wait_filled(&namespaces, FILL_REPORT).await,
        cache::wait_filled(&nodes, FILL_REPORT).await,
        cache::wait_filled(&bgp_peers, FILL_REPORT).await,
    ] {
        if let Err(e) = filled {
            tracing::error!("{e}");
            return;
        }
    }
    tracing::info!(
        services = services.store().len(),
        eips = eips.store().len(),
        namespaces = namespaces.store().len(),
        "caches filled; starting the controllers"
    );
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
            services.store(),
            eips.store(),
            namespaces.store(),
            recorder,
            metrics,
            reconcile_all,
        )
        .await
        .with_coalesced_pool_writes(Duration::from_millis(500))
        .with_selection(nodes.store(), bgp_peers.store()),
    );
    let eip_trigger = futures::stream::poll_fn({
        let mut rx = reconcile_eips_rx;
        move |cx| rx.poll_recv(cx)
    });
    let trigger = futures::stream::poll_fn({
        let mut rx = reconcile_all_rx;
        move |cx| rx.poll_recv(cx)
    });
    let pool_writer = write_dirty_pools(ctx.clone());
    let svc = Controller::for_stream(cache::queued(service_queue), services.store())
        .reconcile_all_on(trigger)
        .run(reconcile_service, error_policy, ctx.clone())
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!("service controller: {e}");
            }
            futures::future::ready(())
        });
    let eip = Controller::for_stream(cache::queued(eip_queue), eips.store())
        .reconcile_all_on(eip_trigger)
        .run(reconcile_eip, error_policy, ctx)
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!("eip controller: {e}");
            }
            futures::future::ready(())
        });
    tokio::select! {
        _ = futures::future::join(svc, eip) => {}
        () = pool_writer => {}
    }
}

/// A cache callback that sends on `tx` when the part of an object `key` reads changed (or
/// the object is new to it): so Eips are reconciled when a Node's labels change, not on each
/// of its status heartbeats.
fn on_change<K: kube::Resource>(
    tx: mpsc::UnboundedSender<()>,
    key: impl Fn(&K) -> String + Send + 'static,
) -> impl FnMut(K) + Send + 'static {
    let mut seen: HashMap<String, String> = HashMap::new();
    move |object: K| {
        let name = object.meta().name.clone().unwrap_or_default();
        let now = key(&object);
        if seen.get(&name) != Some(&now) {
            seen.insert(name, now);
            let _ = tx.send(());
        }
    }
}
