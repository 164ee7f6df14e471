//! The containerlab topology file format (the commonly used subset), parsed with serde, and
//! the pure resolution of each node's effective kind and files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// A `*.clab.yml` file.
#[derive(Debug, Clone, Deserialize)]
pub struct Topology {
    /// Lab name.
    pub name: String,
    /// Nodes and links.
    pub topology: Body,
    /// The directory of the file (relative paths resolve against it).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The `topology:` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Body {
    /// `defaults:` applied to every node.
    #[serde(default)]
    pub defaults: NodeDefinition,
    /// `kinds:` defaults per kind.
    #[serde(default)]
    pub kinds: BTreeMap<String, NodeDefinition>,
    /// `nodes:` by name.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeDefinition>,
    /// `links:`.
    #[serde(default)]
    pub links: Vec<LinkDefinition>,
}

/// One node (or a defaults block). Fields containerlab has and the testbed has no use for
/// (ports, mgmt addresses, env, …) are accepted and ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NodeDefinition {
    /// `kind:`.
    pub kind: Option<String>,
    /// `image:` (used only to recognise routers of kind `linux`).
    pub image: Option<String>,
    /// `startup-config:`: a path relative to the topology file, or an embedded config.
    pub startup_config: Option<String>,
    /// `binds:` (`host:container[:opts]`); a bind onto a router's config path is its config.
    #[serde(default)]
    pub binds: Vec<String>,
    /// `exec:` commands run after the links are up.
    #[serde(default)]
    pub exec: Vec<String>,
}

/// One `links:` entry, brief or extended form.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LinkDefinition {
    /// `- endpoints: ["r1:eth1", "n1:eth0"]`.
    Brief {
        /// Two `node:interface` strings.
        endpoints: Vec<String>,
    },
    /// `- type: veth` with `endpoints: [{node: r1, interface: eth1}, ...]`.
    Extended {
        /// Link type (only `veth` is supported).
        #[serde(rename = "type")]
        kind: Option<String>,
        /// Two endpoints.
        endpoints: Vec<Endpoint>,
    },
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoint {
    /// Node name.
    pub node: String,
    /// Interface name inside the node.
    pub interface: String,
}

/// What the testbed does with a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A plain namespace (`linux`, and `berth`: a node for a Berth speaker the test attaches).
    Host,
    /// A bridge (shared segment).
    Bridge,
    /// BIRD 2 with this configuration text.
    Bird(String),
    /// FRR with this integrated configuration text.
    Frr(String),
    /// gobgpd with this TOML text.
    Gobgp(String),
    /// ExaBGP with this configuration text.
    Exabgp(String),
}

impl NodeKind {
    /// Whether the node forwards packets (routers do).
    pub fn is_router(&self) -> bool {
        matches!(
            self,
            NodeKind::Bird(_) | NodeKind::Frr(_) | NodeKind::Gobgp(_) | NodeKind::Exabgp(_)
        )
    }
}

impl Topology {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Topology> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        let mut topology = Self::parse(&text)?;
        topology.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(topology)
    }

    /// Parses topology text (relative paths then resolve against the current directory).
    pub fn parse(text: &str) -> Result<Topology> {
        serde_yaml::from_str(text).map_err(|e| Error::Topology(e.to_string()))
    }

    /// The node's kind name after `defaults` and `kinds`.
    pub fn kind_name(&self, node: &str) -> Option<String> {
        let definition = self.topology.nodes.get(node)?;
        definition
            .kind
            .clone()
            .or_else(|| self.topology.defaults.kind.clone())
    }

    /// A field of the node, falling back to its kind's block, then to `defaults`.
    fn field<T: Clone>(&self, node: &str, get: impl Fn(&NodeDefinition) -> Option<T>) -> Option<T> {
        let definition = self.topology.nodes.get(node)?;
        get(definition)
            .or_else(|| {
                let kind = self.kind_name(node)?;
                get(self.topology.kinds.get(&kind)?)
            })
            .or_else(|| get(&self.topology.defaults))
    }

    /// The node's `exec` lines.
    pub fn exec(&self, node: &str) -> Vec<String> {
        self.field(node, |d| (!d.exec.is_empty()).then(|| d.exec.clone()))
            .unwrap_or_default()
    }

    fn read_config(&self, reference: &str) -> Result<String> {
        if reference.contains('\n') {
            return Ok(reference.to_string());
        }
        let path = self.base_dir.join(reference);
        std::fs::read_to_string(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))
    }

    /// The host file bound onto one of `targets` in the container, if any.
    fn bound_config(&self, node: &str, targets: &[&str]) -> Option<String> {
        let binds = self.field(node, |d| (!d.binds.is_empty()).then(|| d.binds.clone()))?;
        binds.iter().find_map(|bind| {
            let mut parts = bind.split(':');
            let (host, container) = (parts.next()?, parts.next()?);
            targets.contains(&container).then(|| host.to_string())
        })
    }

    /// What the testbed does with `node`, with router configurations read.
    pub fn node_kind(&self, node: &str) -> Result<NodeKind> {
        let kind = self
            .kind_name(node)
            .ok_or_else(|| Error::Topology(format!("node {node} has no kind")))?;
        let startup = self.field(node, |d| d.startup_config.clone());
        let config = |what: &str| -> Result<String> {
            let reference = startup.clone().ok_or_else(|| {
                Error::Topology(format!("{what} node {node} needs a startup-config"))
            })?;
            self.read_config(&reference)
        };
        Ok(match kind.as_str() {
            "bird" => NodeKind::Bird(config("bird")?),
            "frr" => NodeKind::Frr(config("frr")?),
            "gobgp" => NodeKind::Gobgp(config("gobgp")?),
            "exabgp" => NodeKind::Exabgp(config("exabgp")?),
            "bridge" | "ovs-bridge" => NodeKind::Bridge,
            "berth" | "host" => NodeKind::Host,
            "linux" => {
                let image = self.field(node, |d| d.image.clone()).unwrap_or_default();
                if let Some(file) = self.bound_config(node, &["/etc/frr/frr.conf"]) {
                    NodeKind::Frr(self.read_config(&file)?)
                } else if let Some(file) =
                    self.bound_config(node, &["/etc/bird/bird.conf", "/etc/bird.conf"])
                {
                    NodeKind::Bird(self.read_config(&file)?)
                } else if image.contains("frr") && startup.is_some() {
                    NodeKind::Frr(config("frr")?)
                } else {
                    NodeKind::Host
                }
            }
            other => {
                return Err(Error::Topology(format!(
                    "node {node}: unsupported kind {other}"
                )));
            }
        })
    }

    /// Every link as two endpoints, validated against the node list.
    pub fn links(&self) -> Result<Vec<(Endpoint, Endpoint)>> {
        let mut links = Vec::new();
        for link in &self.topology.links {
            let endpoints: Vec<Endpoint> = match link {
                LinkDefinition::Brief { endpoints } => endpoints
                    .iter()
                    .map(|e| {
                        let (node, interface) = e.split_once(':').ok_or_else(|| {
                            Error::Topology(format!("endpoint {e:?} is not node:interface"))
                        })?;
                        Ok(Endpoint {
                            node: node.into(),
                            interface: interface.into(),
                        })
                    })
                    .collect::<Result<_>>()?,
                LinkDefinition::Extended { kind, endpoints } => {
                    if kind.as_deref().is_some_and(|k| k != "veth") {
                        return Err(Error::Topology(format!("unsupported link type {kind:?}")));
                    }
                    endpoints.clone()
                }
            };
            let [a, b]: [Endpoint; 2] = endpoints
                .try_into()
                .map_err(|_| Error::Topology("a link needs exactly two endpoints".into()))?;
            for end in [&a, &b] {
                if !self.topology.nodes.contains_key(&end.node) {
                    return Err(Error::Topology(format!(
                        "link to unknown node {}",
                        end.node
                    )));
                }
            }
            links.push((a, b));
        }
        Ok(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPOLOGY: &str = r#"
name: t
topology:
  defaults:
    kind: linux
  kinds:
    bird:
      startup-config: |
        router id 1.1.1.1;
        protocol device {}
  nodes:
    r1: { kind: bird }
    r2:
      kind: linux
      image: quay.io/frrouting/frr:8.4.4
      binds: ["r2.conf:/etc/frr/frr.conf"]
    sw: { kind: bridge }
    n1:
      exec: ["ip addr add 10.0.0.2/24 dev eth0"]
      mgmt-ipv4: 172.20.20.2
  links:
    - endpoints: ["r1:eth1", "n1:eth0"]
    - type: veth
      endpoints: [{node: r1, interface: eth2}, {node: sw, interface: p1}]
"#;

    #[test]
    fn kinds_resolve_through_defaults_and_kind_blocks() {
        let topology = Topology::parse(TOPOLOGY).unwrap();
        assert_eq!(topology.name, "t");
        assert!(
            matches!(topology.node_kind("r1").unwrap(), NodeKind::Bird(c) if c.contains("router id"))
        );
        assert_eq!(topology.node_kind("sw").unwrap(), NodeKind::Bridge);
        assert_eq!(topology.node_kind("n1").unwrap(), NodeKind::Host);
        assert_eq!(topology.exec("n1"), ["ip addr add 10.0.0.2/24 dev eth0"]);
        // r2's bound file does not exist here: the error names it.
        let err = topology.node_kind("r2").unwrap_err().to_string();
        assert!(err.contains("r2.conf"), "{err}");
    }

    #[test]
    fn brief_and_extended_links_parse_alike() {
        let topology = Topology::parse(TOPOLOGY).unwrap();
        let links = topology.links().unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(
            links[0].0,
            Endpoint {
                node: "r1".into(),
                interface: "eth1".into()
            }
        );
        assert_eq!(
            links[1].1,
            Endpoint {
                node: "sw".into(),
                interface: "p1".into()
            }
        );
    }

    #[test]
    fn links_to_unknown_nodes_are_rejected() {
        let text = "name: x\ntopology:\n  nodes: {a: {kind: linux}}\n  links:\n    - endpoints: [\"a:e1\", \"b:e1\"]\n";
        assert!(Topology::parse(text).unwrap().links().is_err());
    }
}
