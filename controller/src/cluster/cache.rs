//! Object caches that fill on their own, as Go's shared informers do: each kind's reflector
//! runs in a task of its own from the start, so a cache fills whether or not a controller is
//! polling it yet, and [`wait_filled`] waits for every cache before any controller starts.
//!
//! Why this shape: kube-runtime's `Store::wait_until_ready` wakes only the last of several
//! concurrent waiters (its `DelayedInit` holds one waker). With a controller's applier and a
//! reconcile both waiting on one store, the other waiter was never woken again, and it held
//! the engine's lock: the controller sat idle forever on a real API server. Here each store
//! has exactly one waiter, once, before anything else runs, and nothing waits on a cache
//! after that.
//!
//! This module knows kube-runtime's watcher and reflector, and nothing of Berth's decisions.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A filling cache of one kind: the store, and the task that keeps it in step with the API
/// server (aborted when the cache is dropped).
pub struct Cache<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    task: JoinHandle<()>,
}

impl<K> Cache<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    /// Starts listing and watching `api`; every object the watch applies (created, changed,
    /// or listed again after a reconnect) is passed to `on_applied` after the store has it.
    /// Watch failures are logged and retried with [`api::watch::WatchBackoff`].
    pub fn start(
        api: Api<K>,
        config: watcher::Config,
        mut on_applied: impl FnMut(K) + Send + 'static,
    ) -> Cache<K> {
        let (store, writer) = reflector::store();
        let kind = K::kind(&K::DynamicType::default()).to_string();
        let events = api::watch::retrying(watcher(api, config))
            // Managed fields are half of most objects, and `kubectl apply`'s copy of the object
            // often the other half; the controller reads neither.
            .map_ok(|event| {
                event.modify(|o| {
                    o.managed_fields_mut().clear();
                    o.annotations_mut().remove(api::keys::KUBECTL_LAST_APPLIED);
                })
            });
        let applied = reflector::reflector(writer, events).applied_objects();
        let task = tokio::spawn(async move {
            futures::pin_mut!(applied);
            while let Some(item) = applied.next().await {
                match item {
                    Ok(object) => on_applied(object),
                    Err(e) => tracing::warn!(kind, "watch failed, retrying: {e}"),
                }
            }
        });
        Cache { store, task }
    }

    /// Starts a cache whose applied objects are queued for a controller:
    /// [`Cache::start`] plus the receiving end as a stream (see [`queued`]).
    pub fn start_queued(
        api: Api<K>,
        config: watcher::Config,
    ) -> (Cache<K>, mpsc::UnboundedReceiver<K>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let cache = Cache::start(api, config, move |object| {
            // The controller may be gone on shutdown; the store stays right either way.
            let _ = tx.send(object);
        });
        (cache, rx)
    }

    /// The store (a cheap handle; reads never wait).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Waits until the first list is in the store. Call once, from one place: see the
    /// module docs.
    async fn filled(&self) -> Result<(), reflector::store::WriterDropped> {
        self.store.wait_until_ready().await
    }
}

impl<K: Resource + 'static> Drop for Cache<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A queue of applied objects as the trigger stream a kube-runtime `Controller` takes.
pub fn queued<K>(
    mut rx: mpsc::UnboundedReceiver<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
{
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(Ok)
}

/// Waits for a cache to fill, logging every `every` while it has not (an API server that is
/// down, or RBAC that refuses the list, shows up in the log instead of as silence).
pub async fn wait_filled<K>(cache: &Cache<K>, every: Duration) -> Result<(), super::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let filled = cache.filled();
    futures::pin_mut!(filled);
    loop {
        match tokio::time::timeout(every, &mut filled).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => return Err(super::Error::CacheClosed),
            Err(_) => tracing::info!(kind, "still waiting for the first list"),
        }
    }
}
