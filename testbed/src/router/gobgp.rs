//! GoBGP driver: `gobgpd -f gobgp.toml --api-hosts 127.0.0.1:PORT` inside the namespace, driven
//! and queried with `gobgp -u 127.0.0.1 -p PORT ... -j` run in the same namespace. GoBGP does not
//! program the kernel FIB (no zebra here), and has no BFD; those flags are ignored.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ipnetwork::IpNetwork;
use serde_json::Value;

use super::{BgpTable, Router, RouterConfig, Session, SessionState};
use crate::lab::{Netns, Process};
use crate::{Error, Result};

/// The gRPC port gobgpd listens on, on the namespace's own loopback (so every lab namespace can
/// use the same one).
pub const API_PORT: u16 = 50051;

fn family_name(v6: bool) -> &'static str {
    if v6 { "ipv6-unicast" } else { "ipv4-unicast" }
}

/// Renders `config` as a gobgpd TOML configuration.
pub fn render(config: &RouterConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "[global.config]\n  as = {}\n  router-id = \"{}\"\n",
        config.local_as, config.router_id
    );
    out.push_str(
        "[global.apply-policy.config]\n  default-import-policy = \"accept-route\"\n  \
         default-export-policy = \"accept-route\"\n\n",
    );
    if config.ecmp {
        out.push_str("[global.use-multiple-paths.config]\n  enabled = true\n\n");
    }
    let timers = config.timers;
    for neighbor in &config.neighbors {
        out.push_str("[[neighbors]]\n  [neighbors.config]\n");
        let _ = writeln!(out, "    neighbor-address = \"{}\"", neighbor.address);
        let _ = writeln!(out, "    peer-as = {}", neighbor.remote_as);
        if let Some(password) = &neighbor.password {
            let _ = writeln!(out, "    auth-password = \"{password}\"");
        }
        let _ = writeln!(
            out,
            "  [neighbors.timers.config]\n    connect-retry = {}\n    hold-time = {}\n    \
             keepalive-interval = {}",
            timers.connect_retry,
            timers.hold,
            (timers.hold / 3).max(1)
        );
        if neighbor.passive || neighbor.local_address.is_some() {
            out.push_str("  [neighbors.transport.config]\n");
            if neighbor.passive {
                out.push_str("    passive-mode = true\n");
            }
            if let Some(local) = neighbor.local_address {
                let _ = writeln!(out, "    local-address = \"{local}\"");
            }
        }
        if let Some(ttl) = neighbor.multihop {
            let _ = writeln!(
                out,
                "  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = {ttl}"
            );
        }
        if neighbor.graceful_restart {
            // Helper (receiving speaker) only: gobgpd keeps the neighbour's paths, marked
            // stale, while it restarts; it never restarts gracefully itself here.
            out.push_str(
                "  [neighbors.graceful-restart.config]\n    enabled = true\n    \
                 helper-only = true\n",
            );
        }
        let _ = writeln!(
            out,
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
             afi-safi-name = \"{}\"\n",
            family_name(neighbor.address.is_ipv6())
        );
    }
    for (i, range) in config.listen_ranges.iter().enumerate() {
        let _ = writeln!(
            out,
            "[[peer-groups]]\n  [peer-groups.config]\n    peer-group-name = \"dyn{i}\"\n    \
             peer-as = {}\n  [[peer-groups.afi-safis]]\n    [peer-groups.afi-safis.config]\n      \
             afi-safi-name = \"{}\"\n\n[[dynamic-neighbors]]\n  [dynamic-neighbors.config]\n    \
             prefix = \"{}\"\n    peer-group = \"dyn{i}\"\n",
            range.remote_as,
            family_name(range.prefix.is_ipv6()),
            range.prefix
        );
    }
    out
}

/// A running gobgpd.
#[derive(Debug)]
pub struct Gobgp {
    netns: Netns,
    dir: PathBuf,
    announce: Vec<IpNetwork>,
    process: Option<Process>,
}

impl Gobgp {
    /// Renders `config`, starts gobgpd and adds the announced prefixes to its global RIB.
    pub fn start(netns: &Netns, config: &RouterConfig) -> Result<Gobgp> {
        let mut gobgp = Self::start_with_config(netns, &render(config))?;
        gobgp.announce.clone_from(&config.announce);
        for prefix in &config.announce {
            gobgp.announce(*prefix)?;
        }
        Ok(gobgp)
    }

    /// Starts gobgpd with a TOML configuration as is.
    pub fn start_with_config(netns: &Netns, config: &str) -> Result<Gobgp> {
        super::require_program("gobgpd", "gobgpd")?;
        super::require_program("gobgp", "gobgpd")?;
        let dir = super::router_dir(netns, "gobgp")?;
        std::fs::write(dir.join("gobgp.toml"), config)
            .map_err(|e| Error::io("write gobgp.toml", e))?;
        let mut gobgp = Gobgp {
            netns: netns.clone(),
            dir,
            announce: Vec::new(),
            process: None,
        };
        gobgp.launch()?;
        Ok(gobgp)
    }

    fn launch(&mut self) -> Result<()> {
        let log = std::fs::File::create(self.dir.join("gobgpd.out"))
            .map_err(|e| Error::io("create gobgpd.out", e))?;
        let log2 = log.try_clone().map_err(|e| Error::io("dup log", e))?;
        let mut command = self.netns.command("gobgpd");
        command
            .arg("-f")
            .arg(self.dir.join("gobgp.toml"))
            .arg("--api-hosts")
            .arg(format!("127.0.0.1:{API_PORT}"))
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let mut process = Process::spawn(format!("gobgpd in {}", self.netns.node()), command)?;
        let out = self.dir.join("gobgpd.out");
        crate::wait::until("gobgpd API", Duration::from_secs(10), || {
            if !process.running() {
                let text = std::fs::read_to_string(&out).unwrap_or_default();
                return Err(Error::Daemon(format!("gobgpd exited: {}", text.trim())));
            }
            Ok(self.gobgp(&["global"]).ok().map(|_| ()))
        })?;
        self.process = Some(process);
        Ok(())
    }

    /// gobgpd's log (JSON lines, stdout and stderr): it says why each session went down
    /// (`"msg":"Peer Down"` with a `Reason`), which its API does not.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("gobgpd.out")
    }

    /// Runs `gobgp -u 127.0.0.1 -p PORT args...` inside the namespace.
    pub fn gobgp(&self, args: &[&str]) -> Result<String> {
        let port = API_PORT.to_string();
        let mut full = vec!["-u", "127.0.0.1", "-p", &port];
        full.extend_from_slice(args);
        self.netns.output("gobgp", &full)
    }

    /// Adds `prefix` to the global RIB (announced with next hop self on eBGP).
    pub fn announce(&self, prefix: IpNetwork) -> Result<()> {
        let family = if prefix.is_ipv6() { "ipv6" } else { "ipv4" };
        self.gobgp(&["global", "rib", "add", &prefix.to_string(), "-a", family])
            .map(|_| ())
    }

    /// Removes `prefix` from the global RIB.
    pub fn withdraw(&self, prefix: IpNetwork) -> Result<()> {
        let family = if prefix.is_ipv6() { "ipv6" } else { "ipv4" };
        self.gobgp(&["global", "rib", "del", &prefix.to_string(), "-a", family])
            .map(|_| ())
    }
}

impl Router for Gobgp {
    fn kind(&self) -> &'static str {
        "gobgp"
    }

    fn netns(&self) -> &Netns {
        &self.netns
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        let text = self.gobgp(&["neighbor", "-j"])?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| Error::parse("gobgp neighbor", e))?;
        Ok(parse_neighbors(&json))
    }

    fn bgp_table(&self) -> Result<BgpTable> {
        let mut table = BgpTable::default();
        for family in ["ipv4", "ipv6"] {
            let text = self.gobgp(&["global", "rib", "-a", family, "-j"])?;
            let json: Value =
                serde_json::from_str(&text).map_err(|e| Error::parse("gobgp global rib", e))?;
            parse_rib(&json, &mut table);
        }
        Ok(table)
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch()?;
        for prefix in &self.announce {
            self.announce(*prefix)?;
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Duration::from_secs(3));
        }
    }
}

impl Drop for Gobgp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// gobgp's `SessionState` enum, numbered as in its API.
fn state_from_number(n: u64) -> SessionState {
    match n {
        1 => SessionState::Idle,
        2 => SessionState::Connect,
        3 => SessionState::Active,
        4 => SessionState::OpenSent,
        5 => SessionState::OpenConfirm,
        6 => SessionState::Established,
        other => SessionState::Other(format!("state {other}")),
    }
}

/// Parses `gobgp neighbor -j`.
pub fn parse_neighbors(json: &Value) -> Vec<Session> {
    json.as_array()
        .into_iter()
        .flatten()
        .map(|peer| {
            let address = peer
                .pointer("/state/neighbor_address")
                .or_else(|| peer.pointer("/conf/neighbor_address"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let state = match peer.pointer("/state/session_state") {
                Some(Value::Number(n)) => state_from_number(n.as_u64().unwrap_or(0)),
                Some(Value::String(s)) => SessionState::parse(s),
                _ => SessionState::Idle,
            };
            let prefixes = peer
                .get("afi_safis")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|family| {
                    let state = family.get("state")?;
                    state
                        .get("accepted")
                        .or_else(|| state.get("received"))?
                        .as_u64()
                })
                .sum();
            Session {
                name: address.to_string(),
                peer: address.parse().ok(),
                state,
                prefixes_received: prefixes,
            }
        })
        .collect()
}

/// Folds `gobgp global rib -a FAMILY -j` into `table`. Local routes (next hop 0.0.0.0 or ::)
/// are kept without a next hop.
pub fn parse_rib(json: &Value, table: &mut BgpTable) {
    let Some(routes) = json.as_object() else {
        return;
    };
    for (prefix, paths) in routes {
        let Ok(prefix) = prefix.parse() else { continue };
        for path in paths.as_array().into_iter().flatten() {
            let hop = path
                .get("attrs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|attr| attr.get("nexthop")?.as_str()?.parse().ok())
                .filter(|ip: &std::net::IpAddr| !ip.is_unspecified());
            table.add(prefix, hop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Neighbor;

    #[test]
    fn neighbors_json_becomes_sessions() {
        let json: Value = serde_json::from_str(
            r#"[{"conf":{"neighbor_address":"10.1.1.1","peer_asn":65000},
                 "state":{"neighbor_address":"10.1.1.1","session_state":6},
                 "afi_safis":[{"state":{"family":{"afi":1,"safi":1},"received":3,"accepted":3}}]},
                {"conf":{"neighbor_address":"fd00::1"},"state":{"session_state":3}}]"#,
        )
        .unwrap();
        let sessions = parse_neighbors(&json);
        assert_eq!(sessions[0].state, SessionState::Established);
        assert_eq!(sessions[0].prefixes_received, 3);
        assert_eq!(sessions[1].state, SessionState::Active);
        assert_eq!(sessions[1].peer, Some("fd00::1".parse().unwrap()));
    }

    #[test]
    fn rib_json_keeps_next_hops_of_every_path() {
        let json: Value = serde_json::from_str(
            r#"{"10.0.0.100/32":[{"attrs":[{"type":1,"value":2},{"type":3,"nexthop":"10.1.1.2"}]},
                                 {"attrs":[{"type":3,"nexthop":"10.1.2.2"}]}],
                "10.0.0.1/32":[{"attrs":[{"type":3,"nexthop":"0.0.0.0"}]}],
                "2001:db8::1/128":[{"attrs":[{"type":14,"nexthop":"fd00::2"}]}]}"#,
        )
        .unwrap();
        let mut table = BgpTable::default();
        parse_rib(&json, &mut table);
        assert_eq!(table.next_hops("10.0.0.100/32".parse().unwrap()).len(), 2);
        assert!(table.next_hops("10.0.0.1/32".parse().unwrap()).is_empty());
        assert!(table.routes.contains_key(&"10.0.0.1/32".parse().unwrap()));
        assert_eq!(table.next_hops("2001:db8::1/128".parse().unwrap()).len(), 1);
    }

    #[test]
    fn rendering_has_timers_password_and_dynamic_neighbors() {
        let config = RouterConfig::new("n1", "10.1.1.2".parse().unwrap(), 65001)
            .neighbor(
                Neighbor::new("10.1.1.1".parse().unwrap(), 65000)
                    .password("pw")
                    .passive()
                    .graceful_restart(),
            )
            .listen("10.3.0.0/24".parse().unwrap(), 65003);
        let text = render(&config);
        assert!(text.contains("hold-time = 9"), "{text}");
        assert!(text.contains("auth-password = \"pw\""), "{text}");
        assert!(text.contains("passive-mode = true"), "{text}");
        assert!(
            text.contains(
                "[neighbors.graceful-restart.config]\n    enabled = true\n    helper-only = true"
            ),
            "{text}"
        );
        assert!(text.contains("prefix = \"10.3.0.0/24\""), "{text}");
    }
}
