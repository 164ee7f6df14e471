//! The Kubernetes state source: one kube-runtime reflector per kind (every Node, which
//! layer 2's candidates need; Secrets of the speaker's own namespace only), and a
//! `ClusterState` rebuilt from the reflectors' stores and published after every change, once
//! every store has done its initial list.
//!
//! Footprint: each object is kept once, in its store, with the fields no decision reads
//! removed as it arrives ([`slim`]); a published state shares the stores' objects (`Arc`), so
//! building one costs a pointer per object, not a copy of the cluster. Latency: a change is
//! published at once; changes that arrive while the last state is younger than
//! [`MIN_PUBLISH_GAP`] are published together when it has passed (a burst of creates costs at
//! most one state per gap, a lone change no wait at all). The daemon takes the newest state
//! whenever it is free, so a sync slower than the gap coalesces further on its own.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use api::{BgpConf, BgpPeer, Eip};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::StateSender;
use crate::state::{ClusterState, ObjectKey};

/// The shortest time between two published states: changes arriving sooner after the last
/// one are published together when it has passed. Short enough that the Service's create,
/// its EndpointSlice and its status (written ≈ 10 ms later by the controller) cost one extra
/// state at most; long enough to bound the work of a burst at 1,000 Services (one sync there
/// takes a few ms).
pub const MIN_PUBLISH_GAP: Duration = Duration::from_millis(10);

/// Removes what the speaker's decisions never read from an object as it arrives from a
/// watch: managed fields and `kubectl apply`'s copy of the object for every kind; a Node's
/// images, volumes, capacity and system information, and every condition but `Ready`; an
/// EndpointSlice endpoint's target reference, hints, zone and host name. What stays is what
/// `desired` reads (labels, annotations, specs, addresses, readiness).
pub trait Slim {
    /// Drops the unread fields in place.
    fn slim(&mut self);
}

fn slim_meta(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(api::keys::KUBECTL_LAST_APPLIED);
    }
}

macro_rules! slim_metadata_only {
    ($($kind:ty),*) => {
        $(impl Slim for $kind {
            fn slim(&mut self) {
                slim_meta(&mut self.metadata);
            }
        })*
    };
}

slim_metadata_only!(Service, Eip, BgpConf, BgpPeer, Secret);

impl Slim for Node {
    fn slim(&mut self) {
        slim_meta(&mut self.metadata);
        if let Some(status) = self.status.as_mut() {
            status.images = None;
            status.volumes_attached = None;
            status.volumes_in_use = None;
            status.node_info = None;
            status.capacity = None;
            status.allocatable = None;
            status.daemon_endpoints = None;
            status.config = None;
            status.features = None;
            status.runtime_handlers = None;
            if let Some(conditions) = status.conditions.as_mut() {
                conditions.retain(|c| c.type_ == "Ready");
            }
        }
    }
}

impl Slim for EndpointSlice {
    fn slim(&mut self) {
        slim_meta(&mut self.metadata);
        for endpoint in self.endpoints.iter_mut().flatten() {
            endpoint.target_ref = None;
            endpoint.hints = None;
            endpoint.zone = None;
            endpoint.hostname = None;
            endpoint.deprecated_topology = None;
        }
    }
}

/// The fields [`Slim`] removes, as the speaker's decisions see them: nothing.
#[cfg(test)]
fn slimmed<K: Slim + Clone>(object: &K) -> K {
    let mut o = object.clone();
    o.slim();
    o
}

fn reflect<K>(api: Api<K>, config: watcher::Config, changed: Arc<Notify>) -> Store<K>
where
    K: Resource + Slim + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = api::watch::retrying(watcher(api, config)).map_ok(|ev| ev.modify(Slim::slim));
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
        fn shared<K, Key: Ord>(store: &Store<K>, key: impl Fn(&K) -> Key) -> BTreeMap<Key, Arc<K>>
        where
            K: kube::runtime::reflector::Lookup + Clone + 'static,
            K::DynamicType: Eq + Hash + Clone,
        {
            store.state().into_iter().map(|o| (key(&o), o)).collect()
        }
        let name = |m: &ObjectMeta| m.name.clone().unwrap_or_default();
        ClusterState {
            nodes: shared(&self.nodes, |o: &Node| name(&o.metadata)),
            services: shared(&self.services, |o: &Service| ObjectKey::of(&o.metadata)),
            endpoint_slices: shared(&self.slices, |o: &EndpointSlice| ObjectKey::of(&o.metadata)),
            eips: shared(&self.eips, |o: &Eip| name(&o.metadata)),
            bgp_confs: shared(&self.confs, |o: &BgpConf| name(&o.metadata)),
            bgp_peers: shared(&self.peers, |o: &BgpPeer| name(&o.metadata)),
            secrets: shared(&self.secrets, |o: &Secret| ObjectKey::of(&o.metadata)),
        }
    }
}

/// Watches the cluster and publishes a state after every change, until `tx` has no
/// receiver. `namespace` is the speaker's own (where its Secrets are read); `_node_name`
/// is this node's, unused since every Node is watched.
pub async fn run_kube(client: Client, _node_name: String, namespace: String, tx: StateSender) {
    let changed = Arc::new(Notify::new());
    let all = watcher::Config::default();
    let stores = Stores {
        // Every Node, not only this one: layer 2 chooses one owner per address among the
        // candidate nodes and sends heartbeats to their InternalIPs, so every node must see
        // the same set of Nodes (with this node alone, each node owned every address).
        nodes: reflect(
            Api::<Node>::all(client.clone()),
            all.clone(),
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
        // Rate limit, not delay: the next change is published as soon as it comes, unless
        // this state is younger than the gap (then when it has passed, with whatever else came).
        tokio::time::sleep(MIN_PUBLISH_GAP).await;
        changed.notified().await;
        if tx.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{NodeContext, desired};
    use crate::state::Object;

    fn parse<T: DeserializeOwned>(yaml: &str) -> T {
        serde_yaml::from_str(yaml).expect("fixture parses")
    }

    /// Objects as a kubelet, kube-controller-manager and `kubectl apply` write them, with
    /// every field [`Slim`] removes present.
    fn full_objects() -> Vec<Object> {
        let node: Node = parse(
            "metadata:\n  name: n0\n  labels: {rack: r1}\n  managedFields: [{manager: kubelet}]\n\
             status:\n  addresses: [{type: InternalIP, address: 10.0.0.1}]\n\
             \x20 conditions:\n\
             \x20 - {type: MemoryPressure, status: 'False'}\n\
             \x20 - {type: Ready, status: 'True'}\n\
             \x20 images: [{names: [registry/app:1], sizeBytes: 1000}]\n\
             \x20 capacity: {cpu: '2'}\n\
             \x20 nodeInfo: {architecture: amd64, bootID: b, containerRuntimeVersion: c, kernelVersion: k, kubeProxyVersion: p, kubeletVersion: v, machineID: m, operatingSystem: linux, osImage: o, systemUUID: u}\n",
        );
        let service: Service = parse(
            "metadata:\n  name: web\n  namespace: ns\n  annotations:\n    lb.kubesphere.io/v1alpha1: openelb\n    kubectl.kubernetes.io/last-applied-configuration: '{\"big\": true}'\n\
             spec: {type: LoadBalancer, externalTrafficPolicy: Local}\n\
             status: {loadBalancer: {ingress: [{ip: 10.128.0.1}]}}\n",
        );
        let slice: EndpointSlice = parse(
            "addressType: IPv4\nmetadata: {namespace: ns, name: web-1, labels: {kubernetes.io/service-name: web}}\n\
             endpoints:\n\
             - {addresses: [10.244.0.1], nodeName: n0, zone: z, hostname: h, targetRef: {kind: Pod, name: web-1, namespace: ns}, conditions: {ready: true}}\n\
             - {addresses: [10.244.0.2], nodeName: n1, targetRef: {kind: Pod, name: web-2}, conditions: {ready: false}}\n",
        );
        vec![
            Object::BgpConf(Box::new(parse(
                "metadata: {name: default}\nspec: {as: 65001}\n",
            ))),
            Object::Eip(Box::new(parse(
                "metadata: {name: pool, annotations: {eip.openelb.kubesphere.io/is-default-eip: 'true'}}\nspec: {address: 10.128.0.0/24}\n",
            ))),
            Object::BgpPeer(Box::new(parse(
                "metadata: {name: tor}\nspec: {conf: {peerAs: 65000, neighborAddress: 10.0.1.1}}\n",
            ))),
            Object::Node(Box::new(node)),
            Object::Service(Box::new(service)),
            Object::EndpointSlice(Box::new(slice)),
        ]
    }

    fn slim_all(objects: Vec<Object>) -> Vec<Object> {
        objects
            .into_iter()
            .map(|o| match o {
                Object::Node(o) => Object::Node(Box::new(slimmed(&*o))),
                Object::Service(o) => Object::Service(Box::new(slimmed(&*o))),
                Object::EndpointSlice(o) => Object::EndpointSlice(Box::new(slimmed(&*o))),
                Object::Eip(o) => Object::Eip(Box::new(slimmed(&*o))),
                Object::BgpConf(o) => Object::BgpConf(Box::new(slimmed(&*o))),
                Object::BgpPeer(o) => Object::BgpPeer(Box::new(slimmed(&*o))),
                Object::Secret(o) => Object::Secret(Box::new(slimmed(&*o))),
            })
            .collect()
    }

    #[test]
    fn slimmed_objects_decide_what_full_ones_do() {
        let full = ClusterState::from_objects(full_objects());
        let slim = ClusterState::from_objects(slim_all(full_objects()));
        assert_ne!(full, slim, "the fixture carries fields Slim removes");
        let ctx = NodeContext {
            node_name: "n0".into(),
            namespace: "berth-system".into(),
            ..NodeContext::default()
        };
        let (a, b) = (desired(&ctx, &full), desired(&ctx, &slim));
        assert_eq!(a, b);
        assert!(!a.vips.is_empty(), "the fixture announces something: {a:?}");
    }

    #[test]
    fn slim_removes_the_bulk() {
        let size = |objects: &[Object]| format!("{objects:?}").len();
        let full = full_objects();
        let slim = slim_all(full_objects());
        assert!(size(&slim) < size(&full));
        let Object::Node(node) = &slim[3] else {
            panic!("fixture order")
        };
        let status = node.status.as_ref().expect("status");
        assert!(status.images.is_none() && status.node_info.is_none());
        let types: Vec<_> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| &c.type_)
            .collect();
        assert_eq!(types, ["Ready"]);
        let Object::Service(svc) = &slim[4] else {
            panic!("fixture order")
        };
        let annotations = svc.metadata.annotations.as_ref().expect("annotations");
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["lb.kubesphere.io/v1alpha1"]
        );
    }
}
