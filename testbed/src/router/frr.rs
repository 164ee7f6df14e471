//! FRR driver: `zebra` and `bgpd` (and `bfdd` when BFD is wanted) started with `-N NAME` and
//! every socket and pid file in a private directory owned by user `frr`; queried with
//! `vtysh --vty_socket DIR -c '... json'`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{BgpTable, Router, RouterConfig, Session, SessionState};
use crate::lab::{Netns, Process};
use crate::{Error, Result};

const DAEMON_DIR: &str = "/usr/lib/frr";

/// Which FRR daemons to run next to zebra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daemons {
    /// bgpd.
    pub bgpd: bool,
    /// bfdd (needed for `neighbor X bfd`).
    pub bfdd: bool,
    /// Let bgpd install routes through zebra (off: bgpd runs with `--no_zebra`).
    pub install_routes: bool,
}

impl Default for Daemons {
    fn default() -> Self {
        Daemons {
            bgpd: true,
            bfdd: false,
            install_routes: true,
        }
    }
}

/// Renders `config` as an integrated `frr.conf`.
pub fn render(config: &RouterConfig) -> String {
    let mut out = String::new();
    out.push_str("frr defaults datacenter\n");
    let _ = writeln!(out, "hostname {}", config.hostname);
    out.push_str("!\n");
    let _ = writeln!(out, "router bgp {}", config.local_as);
    let _ = writeln!(out, " bgp router-id {}", config.router_id);
    out.push_str(" no bgp ebgp-requires-policy\n no bgp network import-check\n");
    out.push_str(" bgp bestpath as-path multipath-relax\n");
    let timers = config.timers;
    let _ = writeln!(
        out,
        " timers bgp {} {}",
        (timers.hold / 3).max(1),
        timers.hold
    );
    for neighbor in &config.neighbors {
        let a = neighbor.address;
        let _ = writeln!(out, " neighbor {a} remote-as {}", neighbor.remote_as);
        let _ = writeln!(out, " neighbor {a} timers connect {}", timers.connect_retry);
        if neighbor.passive {
            let _ = writeln!(out, " neighbor {a} passive");
        }
        if let Some(ttl) = neighbor.multihop {
            let _ = writeln!(out, " neighbor {a} ebgp-multihop {ttl}");
        }
        if let Some(password) = &neighbor.password {
            let _ = writeln!(out, " neighbor {a} password {password}");
        }
        if neighbor.bfd {
            let _ = writeln!(out, " neighbor {a} bfd");
        }
        if let Some(local) = neighbor.local_address {
            let _ = writeln!(out, " neighbor {a} update-source {local}");
        }
        if neighbor.graceful_restart {
            let _ = writeln!(out, " neighbor {a} graceful-restart-helper");
        }
    }
    for (i, range) in config.listen_ranges.iter().enumerate() {
        let _ = writeln!(out, " neighbor dyn{i} peer-group");
        let _ = writeln!(out, " neighbor dyn{i} remote-as {}", range.remote_as);
        let _ = writeln!(out, " bgp listen range {} peer-group dyn{i}", range.prefix);
    }
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        let _ = writeln!(out, " address-family {family} unicast");
        for prefix in config.announce.iter().filter(|p| p.is_ipv6() == v6) {
            let _ = writeln!(out, "  network {prefix}");
        }
        if config.ecmp {
            out.push_str("  maximum-paths 16\n  maximum-paths ibgp 16\n");
        }
        for neighbor in &config.neighbors {
            let no = if neighbor.address.is_ipv6() == v6 {
                ""
            } else {
                "no "
            };
            let _ = writeln!(out, "  {no}neighbor {} activate", neighbor.address);
        }
        for (i, range) in config.listen_ranges.iter().enumerate() {
            let no = if range.prefix.is_ipv6() == v6 {
                ""
            } else {
                "no "
            };
            let _ = writeln!(out, "  {no}neighbor dyn{i} activate");
        }
        out.push_str(" exit-address-family\n");
    }
    out.push_str("!\n");
    out
}

/// A running FRR instance.
#[derive(Debug)]
pub struct Frr {
    netns: Netns,
    dir: PathBuf,
    daemons: Daemons,
    processes: Vec<Process>,
}

/// The uid and gid of user `frr`.
fn frr_user() -> Result<(u32, u32)> {
    let passwd =
        std::fs::read_to_string("/etc/passwd").map_err(|e| Error::io("read /etc/passwd", e))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"frr") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| Error::Missing("user `frr` (Debian package frr)".into()))
}

impl Frr {
    /// Renders `config` and starts zebra and bgpd (and bfdd if a neighbour uses BFD).
    pub fn start(netns: &Netns, config: &RouterConfig) -> Result<Frr> {
        let daemons = Daemons {
            bgpd: true,
            bfdd: config.neighbors.iter().any(|n| n.bfd),
            install_routes: config.install_routes,
        };
        Self::start_with_config(netns, &render(config), daemons)
    }

    /// Starts FRR with an integrated configuration text as is.
    pub fn start_with_config(netns: &Netns, config: &str, daemons: Daemons) -> Result<Frr> {
        for daemon in ["zebra", "bgpd", "bfdd"] {
            super::require_program(&format!("{DAEMON_DIR}/{daemon}"), "frr")?;
        }
        super::require_program("vtysh", "frr")?;
        let (uid, gid) = frr_user()?;
        let dir = super::router_dir(netns, "frr")?;
        let conf = dir.join("frr.conf");
        std::fs::write(&conf, config).map_err(|e| Error::io("write frr.conf", e))?;
        for path in [&dir, &conf] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| Error::io(format!("chown {} to frr", path.display()), e))?;
        }
        let mut frr = Frr {
            netns: netns.clone(),
            dir,
            daemons,
            processes: Vec::new(),
        };
        frr.launch()?;
        Ok(frr)
    }

    /// The vty socket directory (for `vtysh --vty_socket`).
    pub fn vty_dir(&self) -> &Path {
        &self.dir
    }

    fn spawn_daemon(&mut self, daemon: &str, extra: &[&str]) -> Result<()> {
        let log = std::fs::File::create(self.dir.join(format!("{daemon}.out")))
            .map_err(|e| Error::io("create daemon log", e))?;
        let log2 = log.try_clone().map_err(|e| Error::io("dup log", e))?;
        let d = &self.dir;
        let mut command = self.netns.command(format!("{DAEMON_DIR}/{daemon}"));
        command
            .args(["-N", self.netns.name(), "-A", "127.0.0.1"])
            .arg("-z")
            .arg(d.join("zserv.api"))
            .arg("--vty_socket")
            .arg(d)
            .arg("-i")
            .arg(d.join(format!("{daemon}.pid")))
            .arg("-f")
            .arg(d.join("frr.conf"))
            .args(extra)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let process = Process::spawn(format!("{daemon} in {}", self.netns.node()), command)?;
        self.processes.push(process);
        let socket = d.join(format!("{daemon}.vty"));
        let out = d.join(format!("{daemon}.out"));
        let index = self.processes.len() - 1;
        crate::wait::until(
            &format!("{daemon} vty socket"),
            Duration::from_secs(10),
            || {
                if !self.processes[index].running() {
                    let text = std::fs::read_to_string(&out).unwrap_or_default();
                    return Err(Error::Daemon(format!("{daemon} exited: {}", text.trim())));
                }
                Ok(socket.exists().then_some(()))
            },
        )
    }

    fn launch(&mut self) -> Result<()> {
        self.spawn_daemon("zebra", &[])?;
        if self.daemons.bfdd {
            let ctl = self.dir.join("bfdd.sock");
            let ctl = ctl.to_string_lossy().into_owned();
            self.spawn_daemon("bfdd", &["--bfdctl", &ctl])?;
        }
        if self.daemons.bgpd {
            let extra: &[&str] = if self.daemons.install_routes {
                &[]
            } else {
                &["--no_zebra"]
            };
            self.spawn_daemon("bgpd", extra)?;
            crate::wait::until("bgpd answers", Duration::from_secs(10), || {
                Ok(self.vtysh("show bgp summary json").ok().map(|_| ()))
            })?;
        }
        Ok(())
    }

    /// Runs one vtysh command and returns its output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        let output = Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.dir)
            .args(["-c", command])
            .output()
            .map_err(|e| Error::io("run vtysh", e))?;
        if !output.status.success() {
            return Err(Error::Daemon(format!(
                "vtysh -c '{command}' failed: {}{}",
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn vtysh_json(&self, command: &str) -> Result<Value> {
        let text = self.vtysh(command)?;
        serde_json::from_str(&text).map_err(|e| Error::parse(format!("vtysh -c '{command}'"), e))
    }
}

impl Router for Frr {
    fn kind(&self) -> &'static str {
        "frr"
    }

    fn netns(&self) -> &Netns {
        &self.netns
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        Ok(parse_neighbors(
            &self.vtysh_json("show bgp neighbors json")?,
        ))
    }

    fn bgp_table(&self) -> Result<BgpTable> {
        let mut table = BgpTable::default();
        for family in ["ipv4", "ipv6"] {
            parse_table(
                &self.vtysh_json(&format!("show bgp {family} unicast json"))?,
                &mut table,
            );
        }
        Ok(table)
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch()
    }

    fn stop(&mut self) {
        // bgpd first, zebra last, so zebra withdraws what bgpd installed.
        while let Some(mut process) = self.processes.pop() {
            process.stop(Duration::from_secs(3));
        }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses `show bgp neighbors json`.
pub fn parse_neighbors(json: &Value) -> Vec<Session> {
    let Some(peers) = json.as_object() else {
        return Vec::new();
    };
    peers
        .iter()
        .filter(|(_, peer)| peer.get("bgpState").is_some())
        .map(|(name, peer)| {
            let prefixes = peer
                .get("addressFamilyInfo")
                .and_then(Value::as_object)
                .map(|families| {
                    families
                        .values()
                        .filter_map(|f| f.get("acceptedPrefixCounter").and_then(Value::as_u64))
                        .sum()
                })
                .unwrap_or(0);
            Session {
                name: name.clone(),
                peer: name.trim_start_matches('*').parse().ok(),
                state: SessionState::parse(
                    peer.get("bgpState").and_then(Value::as_str).unwrap_or(""),
                ),
                prefixes_received: prefixes,
            }
        })
        .collect()
}

/// Folds `show bgp FAMILY unicast json` into `table` (valid paths only).
pub fn parse_table(json: &Value, table: &mut BgpTable) {
    let Some(routes) = json.get("routes").and_then(Value::as_object) else {
        return;
    };
    for (prefix, paths) in routes {
        let Ok(prefix) = prefix.parse() else { continue };
        for path in paths.as_array().into_iter().flatten() {
            if path.get("valid").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            let hop = path
                .get("nexthops")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|hop| hop.get("scope").and_then(Value::as_str) != Some("link-local"))
                .find_map(|hop| hop.get("ip").and_then(Value::as_str)?.parse().ok())
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
            r#"{"10.1.1.2":{"bgpState":"Established","remoteAs":65001,
                "addressFamilyInfo":{"ipv4Unicast":{"acceptedPrefixCounter":1}}},
               "fd00:1::2":{"bgpState":"Active",
                "addressFamilyInfo":{"ipv4Unicast":{"acceptedPrefixCounter":0},
                                     "ipv6Unicast":{"acceptedPrefixCounter":2}}}}"#,
        )
        .unwrap();
        let sessions = parse_neighbors(&json);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].state, SessionState::Established);
        assert_eq!(sessions[0].prefixes_received, 1);
        assert_eq!(sessions[1].peer, Some("fd00:1::2".parse().unwrap()));
        assert_eq!(sessions[1].prefixes_received, 2);
    }

    #[test]
    fn table_json_keeps_every_valid_path() {
        let json: Value = serde_json::from_str(
            r#"{"routes":{"10.0.0.100/32":[
                {"valid":true,"nexthops":[{"ip":"10.1.2.2","afi":"ipv4"}]},
                {"valid":true,"nexthops":[{"ip":"10.1.1.2","afi":"ipv4"}]},
                {"nexthops":[{"ip":"10.9.9.9"}]}]}}"#,
        )
        .unwrap();
        let mut table = BgpTable::default();
        parse_table(&json, &mut table);
        assert_eq!(table.next_hops("10.0.0.100/32".parse().unwrap()).len(), 2);
    }

    #[test]
    fn rendering_enables_multipath_and_listen_ranges() {
        let config = RouterConfig::new("r2", "10.0.0.2".parse().unwrap(), 65000)
            .neighbor(
                Neighbor::new("fd00::2".parse().unwrap(), 65001)
                    .bfd()
                    .graceful_restart(),
            )
            .listen("10.2.0.0/16".parse().unwrap(), 65002);
        let text = render(&config);
        assert!(text.contains("maximum-paths 16"), "{text}");
        assert!(
            text.contains("bgp bestpath as-path multipath-relax"),
            "{text}"
        );
        assert!(text.contains("no bgp ebgp-requires-policy"), "{text}");
        assert!(
            text.contains("bgp listen range 10.2.0.0/16 peer-group dyn0"),
            "{text}"
        );
        assert!(text.contains("neighbor fd00::2 bfd"), "{text}");
        assert!(
            text.contains("neighbor fd00::2 graceful-restart-helper"),
            "{text}"
        );
        assert!(text.contains("  no neighbor fd00::2 activate"), "{text}");
    }
}
