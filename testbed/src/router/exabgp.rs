//! ExaBGP driver: renders a configuration whose neighbours share one API process. That process
//! is a two-line shell script relaying a named pipe (which [`Exabgp::send`] writes) to ExaBGP,
//! and ExaBGP's JSON events (state changes and parsed UPDATEs) to a file, which
//! [`Router::sessions`] and [`Router::bgp_table`] read back.
//!
//! Malformed UPDATEs for error-handling tests: ExaBGP 4.2 has no raw-message command, but an
//! `announce route ... attribute [ 0xTYPE 0xFLAGS 0xHEX ]` carries any path attribute bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ipnetwork::IpNetwork;
use serde_json::Value;

use super::{BgpTable, Router, RouterConfig, Session, SessionState};
use crate::lab::{Netns, Process};
use crate::{Error, Result};

/// Renders `config` as an ExaBGP 4 configuration whose API process runs `api_script`.
/// Every neighbour needs a `local_address`.
pub fn render(config: &RouterConfig, api_script: &str) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "process api {{\n  run {api_script};\n  encoder json;\n}}\n"
    );
    for neighbor in &config.neighbors {
        let local = neighbor.local_address.ok_or_else(|| {
            Error::Topology(format!(
                "ExaBGP neighbour {} needs a local address",
                neighbor.address
            ))
        })?;
        let _ = writeln!(out, "neighbor {} {{", neighbor.address);
        let _ = writeln!(out, "  router-id {};", config.router_id);
        let _ = writeln!(out, "  local-address {local};");
        let _ = writeln!(out, "  local-as {};", config.local_as);
        let _ = writeln!(out, "  peer-as {};", neighbor.remote_as);
        let _ = writeln!(out, "  hold-time {};", config.timers.hold);
        if neighbor.passive {
            out.push_str("  passive true;\n");
        }
        if let Some(password) = &neighbor.password {
            let _ = writeln!(out, "  md5-password \"{password}\";");
        }
        if let Some(ttl) = neighbor.multihop {
            let _ = writeln!(out, "  outgoing-ttl {ttl};");
        }
        let family = if neighbor.address.is_ipv6() {
            "ipv6"
        } else {
            "ipv4"
        };
        let _ = writeln!(out, "  family {{ {family} unicast; }}");
        out.push_str(
            "  api {\n    processes [ api ];\n    receive { parsed; update; }\n    \
             neighbor-changes;\n  }\n",
        );
        let announced: Vec<&IpNetwork> = config
            .announce
            .iter()
            .filter(|p| p.is_ipv6() == neighbor.address.is_ipv6())
            .collect();
        if !announced.is_empty() {
            out.push_str("  static {\n");
            for prefix in announced {
                let _ = writeln!(out, "    route {prefix} next-hop self;");
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
    }
    Ok(out)
}

/// A running ExaBGP with its command pipe.
#[derive(Debug)]
pub struct Exabgp {
    netns: Netns,
    dir: PathBuf,
    passive: bool,
    commands: Option<File>,
    process: Option<Process>,
}

impl Exabgp {
    /// Renders `config` and starts ExaBGP in `netns`.
    pub fn start(netns: &Netns, config: &RouterConfig) -> Result<Exabgp> {
        let dir = super::router_dir(netns, "exabgp")?;
        let script = dir.join("api.sh");
        let text = render(config, &script.to_string_lossy())?;
        Self::start_with_config(netns, &text, config.neighbors.iter().any(|n| n.passive))
    }

    /// Starts ExaBGP with a configuration text as is. Its API process, if it wants the
    /// testbed's command pipe, must `run` [`Exabgp::api_script`]. `listen` makes ExaBGP accept
    /// incoming connections (needed for passive neighbours).
    pub fn start_with_config(netns: &Netns, config: &str, listen: bool) -> Result<Exabgp> {
        super::require_program("exabgp", "exabgp")?;
        let dir = super::router_dir(netns, "exabgp")?;
        std::fs::write(dir.join("exabgp.conf"), config)
            .map_err(|e| Error::io("write exabgp.conf", e))?;
        let fifo = dir.join("api.fifo");
        let events = dir.join("events.json");
        let script = format!(
            // fd 3 keeps ExaBGP's pipe: a background job's own stdin is /dev/null.
            "#!/bin/sh\n# ExaBGP's messages to us, then our commands to ExaBGP.\n\
             exec 3<&0\ncat <&3 >>'{}' &\nexec cat '{}'\n",
            events.display(),
            fifo.display()
        );
        let script_path = dir.join("api.sh");
        std::fs::write(&script_path, script).map_err(|e| Error::io("write api.sh", e))?;
        std::fs::set_permissions(
            &script_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| Error::io("chmod api.sh", e))?;
        if !fifo.exists() {
            let status = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .map_err(|e| Error::io("mkfifo", e))?;
            if !status.success() {
                return Err(Error::Daemon("mkfifo failed".into()));
            }
        }
        let mut exabgp = Exabgp {
            netns: netns.clone(),
            dir,
            passive: listen,
            commands: None,
            process: None,
        };
        exabgp.launch()?;
        Ok(exabgp)
    }

    /// The API helper script a hand-written configuration should `run`.
    pub fn api_script(netns: &Netns) -> Result<PathBuf> {
        Ok(super::router_dir(netns, "exabgp")?.join("api.sh"))
    }

    fn launch(&mut self) -> Result<()> {
        let log = File::create(self.dir.join("exabgp.out"))
            .map_err(|e| Error::io("create exabgp.out", e))?;
        let log2 = log.try_clone().map_err(|e| Error::io("dup log", e))?;
        let _ = std::fs::remove_file(self.dir.join("events.json"));
        let mut command = self.netns.command("exabgp");
        command
            .arg(self.dir.join("exabgp.conf"))
            .env("exabgp_daemon_user", "root")
            .env("exabgp_daemon_drop", "false")
            .env("exabgp_api_cli", "false")
            .env("exabgp_log_destination", "stdout")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        if self.passive {
            command.env("exabgp_tcp_bind", "0.0.0.0 ::");
        }
        let process = Process::spawn(format!("exabgp in {}", self.netns.node()), command)?;
        // Opened read-write so this never blocks, and the reader sees EOF only when we close.
        let commands = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join("api.fifo"))
            .map_err(|e| Error::io("open api.fifo", e))?;
        self.process = Some(process);
        self.commands = Some(commands);
        Ok(())
    }

    /// Sends one API command line, e.g. `announce route 10.0.0.1/32 next-hop self` or
    /// `neighbor 10.1.1.1 announce route ... attribute [ 0x20 0xc0 0x0102 ]`.
    pub fn send(&mut self, command: &str) -> Result<()> {
        let pipe = self
            .commands
            .as_mut()
            .ok_or_else(|| Error::Daemon("exabgp is stopped".into()))?;
        writeln!(pipe, "{command}").map_err(|e| Error::io("write exabgp command", e))
    }

    /// Announces `prefix` with next hop self to every neighbour.
    pub fn announce(&mut self, prefix: IpNetwork) -> Result<()> {
        self.send(&format!("announce route {prefix} next-hop self"))
    }

    /// Withdraws `prefix` from every neighbour.
    pub fn withdraw(&mut self, prefix: IpNetwork) -> Result<()> {
        self.send(&format!("withdraw route {prefix} next-hop self"))
    }

    /// ExaBGP's log so far (for messages in failing tests).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("exabgp.out")).unwrap_or_default()
    }

    fn events(&self) -> Events {
        let text = std::fs::read_to_string(self.dir.join("events.json")).unwrap_or_default();
        Events::parse(&text)
    }
}

impl Router for Exabgp {
    fn kind(&self) -> &'static str {
        "exabgp"
    }

    fn netns(&self) -> &Netns {
        &self.netns
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        Ok(self.events().sessions())
    }

    fn bgp_table(&self) -> Result<BgpTable> {
        Ok(self.events().table())
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch()
    }

    fn stop(&mut self) {
        self.commands = None;
        if let Some(mut process) = self.process.take() {
            process.stop(Duration::from_secs(3));
        }
        // The helper script's background `cat` is our grandchild; it is in the namespace and
        // ends when its stdin (ExaBGP) is gone.
    }
}

impl Drop for Exabgp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What ExaBGP reported on the API: per-peer state and received routes.
#[derive(Debug, Default)]
struct Events {
    peers: BTreeMap<IpAddr, (String, BTreeMap<IpNetwork, Option<IpAddr>>)>,
}

impl Events {
    fn parse(text: &str) -> Events {
        let mut events = Events::default();
        for line in text.lines() {
            let Ok(message) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(peer) = message
                .pointer("/neighbor/address/peer")
                .and_then(Value::as_str)
                .and_then(|p| p.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let entry = events.peers.entry(peer).or_default();
            match message.get("type").and_then(Value::as_str) {
                Some("state") => {
                    let state = message.pointer("/neighbor/state").and_then(Value::as_str);
                    entry.0 = state.unwrap_or("").to_string();
                    if entry.0 == "down" {
                        entry.1.clear();
                    }
                }
                Some("update") => {
                    let Some(update) = message.pointer("/neighbor/message/update") else {
                        continue;
                    };
                    absorb_update(update, &mut entry.1);
                }
                _ => {}
            }
        }
        events
    }

    fn sessions(&self) -> Vec<Session> {
        self.peers
            .iter()
            .map(|(peer, (state, routes))| Session {
                name: peer.to_string(),
                peer: Some(*peer),
                state: if state == "up" {
                    SessionState::Established
                } else {
                    SessionState::Other(state.clone())
                },
                prefixes_received: routes.len() as u64,
            })
            .collect()
    }

    fn table(&self) -> BgpTable {
        let mut table = BgpTable::default();
        for (_, routes) in self.peers.values() {
            for (prefix, hop) in routes {
                table.add(*prefix, *hop);
            }
        }
        table
    }
}

/// Applies one parsed UPDATE (`{"announce": {"ipv4 unicast": {NH: [{"nlri": P}]}},
/// "withdraw": {"ipv4 unicast": [{"nlri": P}]}}`) to a peer's routes.
fn absorb_update(update: &Value, routes: &mut BTreeMap<IpNetwork, Option<IpAddr>>) {
    if let Some(families) = update.get("withdraw").and_then(Value::as_object) {
        for nlris in families.values() {
            for nlri in nlris.as_array().into_iter().flatten() {
                if let Some(Ok(prefix)) = nlri.get("nlri").and_then(Value::as_str).map(str::parse) {
                    routes.remove(&prefix);
                }
            }
        }
    }
    if let Some(families) = update.get("announce").and_then(Value::as_object) {
        for by_hop in families.values() {
            for (hop, nlris) in by_hop.as_object().into_iter().flatten() {
                for nlri in nlris.as_array().into_iter().flatten() {
                    if let Some(Ok(prefix)) =
                        nlri.get("nlri").and_then(Value::as_str).map(str::parse)
                    {
                        routes.insert(prefix, hop.parse().ok());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Neighbor;

    #[test]
    fn events_track_state_and_routes() {
        let text = r#"{"type":"state","neighbor":{"address":{"local":"10.1.1.2","peer":"10.1.1.1"},"state":"up"}}
{"type":"update","neighbor":{"address":{"peer":"10.1.1.1"},"message":{"update":{"announce":{"ipv4 unicast":{"10.1.1.1":[{"nlri":"10.0.0.1/32"},{"nlri":"10.0.0.2/32"}]}}}}}}
{"type":"update","neighbor":{"address":{"peer":"10.1.1.1"},"message":{"update":{"withdraw":{"ipv4 unicast":[{"nlri":"10.0.0.2/32"}]}}}}}
done"#;
        let events = Events::parse(text);
        let sessions = events.sessions();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].state, SessionState::Established);
        assert_eq!(sessions[0].prefixes_received, 1);
        let table = events.table();
        assert_eq!(
            table.next_hops("10.0.0.1/32".parse().unwrap()),
            ["10.1.1.1".parse().unwrap()].into()
        );
    }

    #[test]
    fn rendering_needs_a_local_address() {
        let config = RouterConfig::new("x", "10.1.1.2".parse().unwrap(), 65001)
            .neighbor(Neighbor::new("10.1.1.1".parse().unwrap(), 65000));
        assert!(render(&config, "/x").is_err());
        let config = RouterConfig::new("x", "10.1.1.2".parse().unwrap(), 65001)
            .neighbor(
                Neighbor::new("10.1.1.1".parse().unwrap(), 65000)
                    .local_address("10.1.1.2".parse().unwrap())
                    .password("pw"),
            )
            .announce("10.0.0.1/32".parse().unwrap());
        let text = render(&config, "/x/api.sh").unwrap();
        assert!(text.contains("run /x/api.sh;"), "{text}");
        assert!(text.contains("md5-password \"pw\";"), "{text}");
        assert!(text.contains("route 10.0.0.1/32 next-hop self;"), "{text}");
    }
}
