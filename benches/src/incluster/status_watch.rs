//! When each Service first had an address in its status, seen by a watch on the benchmark's
//! namespace (one long-lived request: polling 1,000 Services would load the API server
//! being measured).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::runtime::watcher::{self, Event};

use crate::whole::probe::now_ns;

/// First time (ns since the epoch) each Service was seen with an ingress address.
#[derive(Debug, Clone, Default)]
pub struct StatusWatch {
    seen: Arc<Mutex<HashMap<String, u64>>>,
}

impl StatusWatch {
    /// Starts watching `namespace` on the current tokio runtime.
    pub fn start(client: kube::Client, namespace: &str) -> StatusWatch {
        let watch = StatusWatch::default();
        let seen = Arc::clone(&watch.seen);
        let api: Api<Service> = Api::namespaced(client, namespace);
        tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let t = now_ns();
                let svc = match event {
                    Ok(Event::Apply(s) | Event::InitApply(s)) => s,
                    _ => continue,
                };
                let addressed = svc
                    .status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .is_some_and(|i| !i.is_empty());
                if let (true, Some(name)) = (addressed, svc.metadata.name) {
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(name)
                        .or_insert(t);
                }
            }
        });
        watch
    }

    /// When `name` was first seen with an address.
    pub fn addressed(&self, name: &str) -> Option<u64> {
        self.lock().get(name).copied()
    }

    /// How many of `names` have an address, and the latest of their times.
    pub fn all(&self, names: &[String]) -> (usize, Option<u64>) {
        let seen = self.lock();
        let times: Vec<u64> = names.iter().filter_map(|n| seen.get(n).copied()).collect();
        (times.len(), times.into_iter().max())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
