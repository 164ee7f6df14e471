//! The Kubernetes state source: one kube-runtime reflector per kind (this node only for
//! Node; Secrets of the speaker's own namespace only), and a `ClusterState` rebuilt from
//! the reflectors' stores and published after every change, once every store has done its
//! initial list.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use api::{BgpConf, BgpPeer, Eip};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::StateSender;
use crate::state::{ClusterState, Object};

/// Changes arriving within this time of each other are published as one state.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

fn reflect<K>(api: Api<K>, config: watcher::Config, changed: Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = api::watch::retrying(watcher(api, config))
        // Managed fields are half of most objects and never read here.
        .map_ok(|ev| ev.modify(|o| o.managed_fields_mut().clear()));
    let stream = reflector::reflector(writer, stream);
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => warn!(kind, "watch failed, retrying: {e}"),
            }
        }
    });
    reader
}

/// The stores of every kind the speaker reads.
struct Stores {
    nodes: Store<Node>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    eips: Store<Eip>,
    confs: Store<BgpConf>,
    peers: Store<BgpPeer>,
    secrets: Store<Secret>,
}

impl Stores {
    async fn wait_until_ready(&self) -> bool {
        self.nodes.wait_until_ready().await.is_ok()
            && self.services.wait_until_ready().await.is_ok()
            && self.slices.wait_until_ready().await.is_ok()
            && self.eips.wait_until_ready().await.is_ok()
            && self.confs.wait_until_ready().await.is_ok()
            && self.peers.wait_until_ready().await.is_ok()
            && self.secrets.wait_until_ready().await.is_ok()
    }

    fn state(&self) -> ClusterState {
        fn each<K, F: Fn(Box<K>) -> Object>(store: &Store<K>, f: F) -> Vec<Object>
        where
            K: kube::runtime::reflector::Lookup + Clone + 'static,
            K::DynamicType: Eq + Hash + Clone,
        {
            store
                .state()
                .iter()
                .map(|o| f(Box::new((**o).clone())))
                .collect()
        }
        let mut objects = Vec::new();
        objects.extend(each(&self.nodes, Object::Node));
        objects.extend(each(&self.services, Object::Service));
        objects.extend(each(&self.slices, Object::EndpointSlice));
        objects.extend(each(&self.eips, Object::Eip));
        objects.extend(each(&self.confs, Object::BgpConf));
        objects.extend(each(&self.peers, Object::BgpPeer));
        objects.extend(each(&self.secrets, Object::Secret));
        ClusterState::from_objects(objects)
    }
}

/// Watches the cluster and publishes a state after every change, until `tx` has no
/// receiver. `namespace` is the speaker's own (where its Secrets are read).
pub async fn run_kube(client: Client, node_name: String, namespace: String, tx: StateSender) {
    let changed = Arc::new(Notify::new());
    let all = watcher::Config::default();
    let stores = Stores {
        nodes: reflect(
            Api::<Node>::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={node_name}")),
            changed.clone(),
        ),
        services: reflect(Api::all(client.clone()), all.clone(), changed.clone()),
        slices: reflect(Api::all(client.clone()), all.clone(), changed.clone()),
        eips: reflect(Api::all(client.clone()), all.clone(), changed.clone()),
        confs: reflect(Api::all(client.clone()), all.clone(), changed.clone()),
        peers: reflect(Api::all(client.clone()), all.clone(), changed.clone()),
        secrets: reflect(Api::namespaced(client, &namespace), all, changed.clone()),
    };
    if !stores.wait_until_ready().await {
        warn!("a reflector stopped before its first list");
        return;
    }
    info!("initial lists complete");
    loop {
        let state = stores.state();
        tx.send_modify(|f| f.state = Some(Arc::new(state)));
        changed.notified().await;
        tokio::time::sleep(DEBOUNCE).await;
        if tx.is_closed() {
            return;
        }
    }
}
