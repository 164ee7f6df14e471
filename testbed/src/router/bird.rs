//! BIRD 2 driver: `bird -f -c CONF -s SOCK -P PID` inside the namespace, queried with
//! `birdc -s SOCK`, whose text output is parsed here.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipnetwork::IpNetwork;

use super::{BgpTable, Router, RouterConfig, Session, SessionState};
use crate::lab::{Netns, Process};
use crate::{Error, Result};

/// Renders `config` as a BIRD 2 configuration.
pub fn render(config: &RouterConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {} (rendered by the Berth testbed)", config.hostname);
    let _ = writeln!(out, "router id {};", config.router_id);
    out.push_str("protocol device { scan time 1; }\n");
    if config.install_routes {
        let merge = if config.ecmp { " merge paths on;" } else { "" };
        out.push_str(&format!(
            "protocol kernel k4 {{ ipv4 {{ import none; export where source = RTS_BGP; }};{merge} }}\n"
        ));
        if config.has_ipv6() {
            out.push_str(&format!(
                "protocol kernel k6 {{ ipv6 {{ import none; export where source = RTS_BGP; }};{merge} }}\n"
            ));
        }
    }
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        let routes: Vec<&IpNetwork> = config
            .announce
            .iter()
            .filter(|p| p.is_ipv6() == v6)
            .collect();
        if !routes.is_empty() {
            let _ = writeln!(out, "protocol static announce_{family} {{\n  {family};");
            for route in routes {
                let _ = writeln!(out, "  route {route} blackhole;");
            }
            out.push_str("}\n");
        }
    }
    if config.neighbors.iter().any(|n| n.bfd) {
        out.push_str("protocol bfd {}\n");
    }
    let timers = config.timers;
    let common = |out: &mut String, v6: bool| {
        let _ = writeln!(out, "  local as {};", config.local_as);
        let _ = writeln!(
            out,
            "  hold time {}; keepalive time {}; connect retry time {}; error wait time 1, 5;",
            timers.hold,
            (timers.hold / 3).max(1),
            timers.connect_retry
        );
        let family = if v6 { "ipv6" } else { "ipv4" };
        let _ = writeln!(
            out,
            "  {family} {{ import all; export where source = RTS_STATIC; next hop self; }};"
        );
    };
    for (i, neighbor) in config.neighbors.iter().enumerate() {
        let _ = writeln!(out, "protocol bgp {} {{", protocol_name(i));
        let _ = writeln!(
            out,
            "  neighbor {} as {};",
            neighbor.address, neighbor.remote_as
        );
        common(&mut out, neighbor.address.is_ipv6());
        if neighbor.passive {
            out.push_str("  passive on;\n");
        }
        if let Some(ttl) = neighbor.multihop {
            let _ = writeln!(out, "  multihop {ttl};");
        }
        if let Some(password) = &neighbor.password {
            let _ = writeln!(out, "  password \"{password}\";");
        }
        if neighbor.bfd {
            out.push_str("  bfd on;\n");
        }
        if let Some(local) = neighbor.local_address {
            let _ = writeln!(out, "  source address {local};");
        }
        if neighbor.graceful_restart {
            // Receiving role only (BIRD's default, said explicitly): keep the neighbour's
            // routes as stale while it restarts.
            out.push_str("  graceful restart aware;\n");
        }
        out.push_str("}\n");
    }
    for (i, range) in config.listen_ranges.iter().enumerate() {
        let _ = writeln!(out, "protocol bgp range{i} {{");
        let _ = writeln!(
            out,
            "  neighbor range {} as {};",
            range.prefix, range.remote_as
        );
        let _ = writeln!(out, "  dynamic name \"dyn{i}_\";");
        common(&mut out, range.prefix.is_ipv6());
        out.push_str("}\n");
    }
    out
}

/// The BIRD protocol name of the `i`-th configured neighbour.
pub fn protocol_name(i: usize) -> String {
    format!("peer{i}")
}

/// A running BIRD.
#[derive(Debug)]
pub struct Bird {
    netns: Netns,
    dir: PathBuf,
    process: Option<Process>,
}

impl Bird {
    /// Renders `config` and starts BIRD in `netns`.
    pub fn start(netns: &Netns, config: &RouterConfig) -> Result<Bird> {
        Self::start_with_config(netns, &render(config))
    }

    /// Starts BIRD in `netns` with a configuration text as is.
    pub fn start_with_config(netns: &Netns, config: &str) -> Result<Bird> {
        super::require_program("bird", "bird2")?;
        super::require_program("birdc", "bird2")?;
        let dir = super::router_dir(netns, "bird")?;
        std::fs::write(dir.join("bird.conf"), config)
            .map_err(|e| Error::io("write bird.conf", e))?;
        let mut bird = Bird {
            netns: netns.clone(),
            dir,
            process: None,
        };
        bird.launch()?;
        Ok(bird)
    }

    /// The control socket (for `birdc -s`).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    fn launch(&mut self) -> Result<()> {
        let conf = self.dir.join("bird.conf");
        let log = std::fs::File::create(self.dir.join("bird.out"))
            .map_err(|e| Error::io("create bird.out", e))?;
        let log2 = log.try_clone().map_err(|e| Error::io("dup log", e))?;
        let mut command = self.netns.command("bird");
        command
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(self.socket())
            .arg("-P")
            .arg(self.dir.join("bird.pid"))
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let _ = std::fs::remove_file(self.socket());
        let mut process = Process::spawn(format!("bird in {}", self.netns.node()), command)?;
        let ready = crate::wait::until("bird control socket", Duration::from_secs(10), || {
            if !process.running() {
                let out = std::fs::read_to_string(self.dir.join("bird.out")).unwrap_or_default();
                return Err(Error::Daemon(format!("bird exited: {}", out.trim())));
            }
            Ok(self.birdc(&["show", "status"]).ok().map(|_| ()))
        });
        if let Err(err) = ready {
            // Surface why it died rather than a bare timeout.
            if !process.running() {
                let out = std::fs::read_to_string(self.dir.join("bird.out")).unwrap_or_default();
                return Err(Error::Daemon(format!("bird exited: {}", out.trim())));
            }
            return Err(err);
        }
        self.process = Some(process);
        Ok(())
    }

    /// Runs a `birdc` command and returns its output (without the greeting line).
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let output = Command::new("birdc")
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .map_err(|e| Error::io("run birdc", e))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() || text.contains("Unable to connect") {
            return Err(Error::Daemon(format!(
                "birdc {} failed: {}{}",
                args.join(" "),
                text.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(text
            .lines()
            .filter(|l| !l.starts_with("BIRD "))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Re-reads the configuration file after `config` replaced it (`birdc configure`).
    pub fn reconfigure(&self, config: &RouterConfig) -> Result<()> {
        std::fs::write(self.dir.join("bird.conf"), render(config))
            .map_err(|e| Error::io("write bird.conf", e))?;
        self.birdc(&["configure"]).map(|_| ())
    }
}

impl Router for Bird {
    fn kind(&self) -> &'static str {
        "bird"
    }

    fn netns(&self) -> &Netns {
        &self.netns
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        Ok(parse_protocols(&self.birdc(&[
            "show",
            "protocols",
            "all",
        ])?))
    }

    fn bgp_table(&self) -> Result<BgpTable> {
        Ok(parse_routes(&self.birdc(&["show", "route", "all"])?))
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch()
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Duration::from_secs(3));
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses `birdc show protocols all` into the BGP sessions it lists.
pub fn parse_protocols(text: &str) -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut current: Option<(Session, bool)> = None;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            if let Some((session, true)) = current.take() {
                sessions.push(session);
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 2 && fields[0] != "Name" {
                let state = fields.get(5).map_or_else(
                    || SessionState::Other(fields.get(3).unwrap_or(&"").to_string()),
                    |s| SessionState::parse(s),
                );
                let session = Session {
                    name: fields[0].to_string(),
                    peer: None,
                    state,
                    prefixes_received: 0,
                };
                current = Some((session, fields[1] == "BGP"));
            }
            continue;
        }
        let Some((session, _)) = current.as_mut() else {
            continue;
        };
        let line = line.trim();
        if let Some(state) = line.strip_prefix("BGP state:") {
            session.state = SessionState::parse(state.trim());
        } else if let Some(addr) = line.strip_prefix("Neighbor address:") {
            session.peer = addr.trim().parse().ok();
        } else if let Some(routes) = line.strip_prefix("Routes:") {
            // "1 imported, 0 exported, 1 preferred"
            let imported = routes
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok());
            session.prefixes_received += imported.unwrap_or(0);
        }
    }
    if let Some((session, true)) = current {
        sessions.push(session);
    }
    sessions
}

/// Parses `birdc show route all` into prefix → BGP next hops.
pub fn parse_routes(text: &str) -> BgpTable {
    let mut table = BgpTable::default();
    let mut prefix: Option<IpNetwork> = None;
    for line in text.lines() {
        if line.starts_with("Table ") || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            prefix = line.split_whitespace().next().and_then(|p| p.parse().ok());
            if let Some(p) = prefix {
                table.add(p, None);
            }
            continue;
        }
        let Some(p) = prefix else { continue };
        if let Some(hops) = line.trim().strip_prefix("BGP.next_hop:") {
            // IPv6 paths list the global address first, then the link-local one.
            let hop = hops.split_whitespace().next().and_then(|h| h.parse().ok());
            table.add(p, hop);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Neighbor;

    const PROTOCOLS: &str = "\
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     16:54:19.794
n1         BGP        ---        up     16:54:23.920  Established
  BGP state:          Established
    Neighbor address: 10.1.1.2
    Neighbor AS:      65001
  Channel ipv4
    State:          UP
    Routes:         1 imported, 0 exported, 1 preferred
n2         BGP        ---        start  16:54:24.085  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: 10.1.2.2
  Channel ipv4
    State:          DOWN
";

    const ROUTES: &str = "\
Table master4:
10.0.0.100/32        unicast [n1 16:54:23.921] * (100) [AS65001?]
\tvia 10.1.1.2 on e1
\tType: BGP univ
\tBGP.next_hop: 10.1.1.2
                     unicast [n2 16:54:24.085] (100) [AS65001?]
\tvia 10.1.2.2 on e2
\tBGP.next_hop: 10.1.2.2

Table master6:
2001:db8::100/128    unicast [n1v6 16:54:23.983] * (100) [AS65001?]
\tvia fd00:1::2 on e1
\tBGP.next_hop: fd00:1::2 fe80::1
";

    #[test]
    fn protocols_become_sessions() {
        let sessions = parse_protocols(PROTOCOLS);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].name, "n1");
        assert_eq!(sessions[0].state, SessionState::Established);
        assert_eq!(sessions[0].peer, Some("10.1.1.2".parse().unwrap()));
        assert_eq!(sessions[0].prefixes_received, 1);
        assert_eq!(sessions[1].state, SessionState::Active);
        assert_eq!(sessions[1].prefixes_received, 0);
    }

    #[test]
    fn routes_collect_every_path_next_hop() {
        let table = parse_routes(ROUTES);
        let hops = table.next_hops("10.0.0.100/32".parse().unwrap());
        assert_eq!(hops.len(), 2);
        let v6 = table.next_hops("2001:db8::100/128".parse().unwrap());
        assert_eq!(v6, ["fd00:1::2".parse().unwrap()].into());
    }

    #[test]
    fn rendering_has_ecmp_and_timers() {
        let config = RouterConfig::new("r1", "10.0.0.1".parse().unwrap(), 65000)
            .neighbor(
                Neighbor::new("10.1.1.2".parse().unwrap(), 65001)
                    .password("s3cret")
                    .graceful_restart(),
            )
            .listen("10.2.0.0/16".parse().unwrap(), 65002);
        let text = render(&config);
        assert!(text.contains("merge paths on"), "{text}");
        assert!(text.contains("hold time 9"), "{text}");
        assert!(text.contains("password \"s3cret\""), "{text}");
        assert!(text.contains("graceful restart aware;"), "{text}");
        assert!(
            text.contains("neighbor range 10.2.0.0/16 as 65002"),
            "{text}"
        );
    }
}
