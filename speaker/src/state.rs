//! `ClusterState`: the objects a speaker decides from, whichever source they came from (a
//! Kubernetes API server through reflectors, or a directory of manifests). Objects are kept
//! in maps keyed by name, so the state, and everything computed from it, does not depend on
//! the order the objects arrived in.
//!
//! Objects are shared (`Arc`), not copied: the Kubernetes source hands in the very objects its
//! reflector stores hold, so a new state after a change costs one pointer per object, not a
//! deep copy of the cluster.
//!
//! This module knows nothing of where the objects come from nor of BGP.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use api::{BgpConf, BgpPeer, Eip};
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// A namespaced object's `namespace/name`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace (`default` when the manifest has none).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// A key from its two parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an object's metadata; a missing namespace is `default`.
    pub fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self::new(
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name.as_deref().unwrap_or(""),
        )
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One object of a kind the speaker reads.
#[derive(Clone, Debug)]
pub enum Object {
    /// A Node.
    Node(Box<Node>),
    /// A Service.
    Service(Box<Service>),
    /// An EndpointSlice.
    EndpointSlice(Box<EndpointSlice>),
    /// An address pool.
    Eip(Box<Eip>),
    /// Global BGP settings.
    BgpConf(Box<BgpConf>),
    /// A BGP neighbour.
    BgpPeer(Box<BgpPeer>),
    /// A Secret (for TCP MD5 passwords).
    Secret(Box<Secret>),
}

/// Everything the speaker's decisions depend on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterState {
    /// Nodes by name.
    pub nodes: BTreeMap<String, Arc<Node>>,
    /// Services by key.
    pub services: BTreeMap<ObjectKey, Arc<Service>>,
    /// EndpointSlices by key.
    pub endpoint_slices: BTreeMap<ObjectKey, Arc<EndpointSlice>>,
    /// Eips by name.
    pub eips: BTreeMap<String, Arc<Eip>>,
    /// BgpConfs by name (only `default` counts).
    pub bgp_confs: BTreeMap<String, Arc<BgpConf>>,
    /// BgpPeers by name.
    pub bgp_peers: BTreeMap<String, Arc<BgpPeer>>,
    /// Secrets by key.
    pub secrets: BTreeMap<ObjectKey, Arc<Secret>>,
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

impl ClusterState {
    /// A state holding `objects`; when two share a key the later one wins (as a watch would
    /// leave it).
    pub fn from_objects(objects: impl IntoIterator<Item = Object>) -> Self {
        let mut state = Self::default();
        for o in objects {
            state.insert(o);
        }
        state
    }

    /// Adds or replaces one object.
    pub fn insert(&mut self, object: Object) {
        match object {
            Object::Node(o) => {
                self.nodes.insert(name_of(&o.metadata), Arc::from(o));
            }
            Object::Service(o) => {
                self.services
                    .insert(ObjectKey::of(&o.metadata), Arc::from(o));
            }
            Object::EndpointSlice(o) => {
                self.endpoint_slices
                    .insert(ObjectKey::of(&o.metadata), Arc::from(o));
            }
            Object::Eip(o) => {
                self.eips.insert(name_of(&o.metadata), Arc::from(o));
            }
            Object::BgpConf(o) => {
                self.bgp_confs.insert(name_of(&o.metadata), Arc::from(o));
            }
            Object::BgpPeer(o) => {
                self.bgp_peers.insert(name_of(&o.metadata), Arc::from(o));
            }
            Object::Secret(o) => {
                self.secrets
                    .insert(ObjectKey::of(&o.metadata), Arc::from(o));
            }
        }
    }

    /// Number of objects of every kind together.
    pub fn len(&self) -> usize {
        self.nodes.len()
            + self.services.len()
            + self.endpoint_slices.len()
            + self.eips.len()
            + self.bgp_confs.len()
            + self.bgp_peers.len()
            + self.secrets.len()
    }

    /// Whether no object is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
