//! The four senders, each loaded with its table before the receiver enables the session:
//! Berth (`berth-sender`, the `bgp` library in a child process), gobgpd (fed by a BIRD
//! feeder over eBGP), BIRD 2 (static routes) and FRR (kernel blackholes added with one
//! `ip -batch` call, then `redistribute kernel`). Every sender is passive: the receiver
//! connects out when enabled.
//!
//! Churn: Berth announces and withdraws through its library call (timed in the child just
//! before the call); BIRD and FRR learn a kernel blackhole added or deleted over rtnetlink in
//! the sender's namespace (timed just before the netlink request); gobgpd gets
//! `gobgp global rib add/del` (timed before the CLI starts, so its start-up is included).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use netlink_packet_route::route::RouteType;
use rtnetlink::RouteMessageBuilder;
use testbed::lab::netns::processes_in;
use testbed::router::bird::Bird;
use testbed::router::frr::{Daemons, Frr};
use testbed::router::gobgp::Gobgp;
use testbed::{Lab, Netns};

use super::addressing::{
    CHURN_PREFIX, FEEDER, FEEDER_AS, RECEIVER_AS, SENDER, SENDER_AS, SENDER_FEED, all_routes,
    receiver_addresses, sender_address, session_block,
};
use super::probe::now_ns;

/// Which implementation sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The `bgp` library (this repository).
    Berth,
    /// BIRD 2.0.12.
    Bird,
    /// FRR 8.4 bgpd.
    Frr,
    /// gobgpd 3.10.
    Gobgp,
}

impl Kind {
    /// Every sender, Berth first.
    pub const ALL: [Kind; 4] = [Kind::Berth, Kind::Bird, Kind::Frr, Kind::Gobgp];

    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Berth => "berth",
            Kind::Bird => "bird",
            Kind::Frr => "frr",
            Kind::Gobgp => "gobgp",
        }
    }

    /// Parses a name of [`Kind::name`].
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a sender announces: `per_session` routes on each of `sessions` sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Sessions to the receiver.
    pub sessions: usize,
    /// Routes per session (0 for the churn scenario).
    pub per_session: usize,
}

enum Inner {
    Berth {
        child: Child,
        stdin: ChildStdin,
        lines: mpsc::Receiver<String>,
    },
    // Held so the daemon runs until the sender drops.
    Bird(#[allow(dead_code)] Bird),
    Frr(#[allow(dead_code)] Frr),
    Gobgp {
        gobgp: Gobgp,
        _feeder: Option<Bird>,
    },
}

/// A loaded sender.
pub struct Sender {
    kind: Kind,
    pid: u32,
    netns: Netns,
    inner: Inner,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Sender {
    /// Starts `kind` in the lab's `s` namespace (and `f` for gobgpd's feeder) and returns
    /// once its table holds every route of `plan`.
    pub fn start(kind: Kind, lab: &mut Lab, plan: Plan) -> Result<Sender, BoxError> {
        let netns = lab.netns("s")?.clone();
        let total = plan.sessions.max(1) * plan.per_session;
        let load_timeout = Duration::from_secs(60 + total as u64 / 5_000);
        let (pid, inner) = match kind {
            Kind::Berth => start_berth(&netns, plan, load_timeout)?,
            Kind::Bird => {
                let bird = Bird::start_with_config(&netns, &bird_config(plan))?;
                testbed::wait::until("BIRD sender loaded", load_timeout, || {
                    Ok((bird_route_count(&bird)? >= total as u64).then_some(()))
                })?;
                (
                    pid_file(&bird.socket().with_file_name("bird.pid"))?,
                    Inner::Bird(bird),
                )
            }
            Kind::Frr => {
                let batch = netns.dir()?.join("routes.batch");
                let mut text = String::with_capacity(total * 40);
                for route in all_routes(plan.sessions, plan.per_session) {
                    let _ = writeln!(text, "route add blackhole {route}/32");
                }
                std::fs::write(&batch, text)?;
                if total > 0 {
                    netns.output("ip", &["-batch", &batch.to_string_lossy()])?;
                }
                let frr = Frr::start_with_config(&netns, &frr_config(plan), Daemons::default())?;
                testbed::wait::until("FRR sender loaded", load_timeout, || {
                    Ok((frr_route_count(&frr)? >= total as u64).then_some(()))
                })?;
                (pid_file(&frr.vty_dir().join("bgpd.pid"))?, Inner::Frr(frr))
            }
            Kind::Gobgp => start_gobgp(lab, &netns, plan, load_timeout)?,
        };
        Ok(Sender {
            kind,
            pid,
            netns,
            inner,
        })
    }

    /// Which sender this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The process whose CPU and memory are measured (bgpd for FRR).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Announces (or withdraws) [`CHURN_PREFIX`] and returns when the call was made.
    pub fn churn(&mut self, announce: bool) -> Result<u64, BoxError> {
        match &mut self.inner {
            Inner::Berth { stdin, lines, .. } => {
                stdin.write_all(if announce { b"a\n" } else { b"w\n" })?;
                stdin.flush()?;
                let line = lines.recv_timeout(Duration::from_secs(10))?;
                let t = line
                    .strip_prefix("t ")
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| format!("berth-sender said {line:?}"))?;
                Ok(t)
            }
            Inner::Bird(_) | Inner::Frr(_) => kernel_blackhole(&self.netns, announce),
            Inner::Gobgp { gobgp, .. } => {
                let prefix = format!("{CHURN_PREFIX}/32").parse()?;
                let t = now_ns();
                if announce {
                    gobgp.announce(prefix)?;
                } else {
                    gobgp.withdraw(prefix)?;
                }
                Ok(t)
            }
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if let Inner::Berth { child, .. } = &mut self.inner {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pid_file(path: &std::path::Path) -> Result<u32, BoxError> {
    let text = testbed::wait::until("pid file", Duration::from_secs(10), || {
        Ok(std::fs::read_to_string(path).ok())
    })?;
    Ok(text.trim().parse()?)
}

fn start_berth(netns: &Netns, plan: Plan, timeout: Duration) -> Result<(u32, Inner), BoxError> {
    let exe = std::env::current_exe()?.with_file_name("berth-sender");
    if !exe.is_file() {
        return Err(format!(
            "{} missing: build it with `cargo build --release -p benches --bin berth-sender`",
            exe.display()
        )
        .into());
    }
    let peers: Vec<String> = receiver_addresses(plan.sessions)
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut command = netns.command(&exe);
    command.args([peers.join(","), plan.per_session.to_string()]);
    // Diagnosis knob: announce in a pseudo-random order instead of address order.
    if std::env::var_os("WHOLE_BERTH_SHUFFLED").is_some() {
        command.arg("shuffled");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take().ok_or("berth-sender stdin")?;
    let stdout = child.stdout.take().ok_or("berth-sender stdout")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let pid = child.id();
    let line = lines.recv_timeout(timeout)?;
    if line != "ready" {
        return Err(format!("berth-sender said {line:?}").into());
    }
    Ok((
        pid,
        Inner::Berth {
            child,
            stdin,
            lines,
        },
    ))
}

fn start_gobgp(
    lab: &mut Lab,
    netns: &Netns,
    plan: Plan,
    timeout: Duration,
) -> Result<(u32, Inner), BoxError> {
    let total = plan.sessions.max(1) * plan.per_session;
    let gobgp = Gobgp::start_with_config(netns, &gobgp_config(plan))?;
    let feeder = if total > 0 {
        lab.add_namespace("f")?;
        lab.link(("s", "eth1"), ("f", "eth0"))?;
        lab.add_address("s", "eth1", format!("{SENDER_FEED}/24").parse()?)?;
        lab.add_address("f", "eth0", format!("{FEEDER}/24").parse()?)?;
        let feeder = Bird::start_with_config(lab.netns("f")?, &feeder_config(plan))?;
        testbed::wait::until("gobgpd loaded from its feeder", timeout, || {
            let text = gobgp.gobgp(&["global", "rib", "summary", "-a", "ipv4"])?;
            Ok((gobgp_destinations(&text) >= total as u64).then_some(()))
        })?;
        Some(feeder)
    } else {
        None
    };
    let pid = processes_in(netns.path())
        .into_iter()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "gobgpd")
        })
        .ok_or("gobgpd pid not found")?;
    Ok((
        pid,
        Inner::Gobgp {
            gobgp,
            _feeder: feeder,
        },
    ))
}

/// Adds or deletes the churn blackhole in `netns` over rtnetlink; returns the time just
/// before the request.
fn kernel_blackhole(netns: &Netns, add: bool) -> Result<u64, BoxError> {
    let t = netns.netlink(async move |handle| {
        let message = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(CHURN_PREFIX, 32)
            .kind(RouteType::BlackHole)
            .build();
        let t = now_ns();
        let result = if add {
            handle.route().add(message).execute().await
        } else {
            handle.route().del(message).execute().await
        };
        result.map_err(|e| testbed::Error::netlink("churn blackhole", e))?;
        Ok(t)
    })?;
    Ok(t)
}

/// BIRD as a sender: the table as static blackholes (plus kernel routes learned, for churn),
/// one passive session per receiver address, each exporting its session's block.
pub fn bird_config(plan: Plan) -> String {
    let mut out = format!("router id {SENDER};\nprotocol device {{ scan time 10; }}\n");
    let routes = all_routes(plan.sessions, plan.per_session);
    if !routes.is_empty() {
        out.reserve(routes.len() * 36);
        out.push_str("protocol static st {\n  ipv4;\n");
        for route in routes {
            let _ = writeln!(out, "  route {route}/32 blackhole;");
        }
        out.push_str("}\n");
    }
    out.push_str(
        "protocol kernel kl { learn; scan time 10; ipv4 { import all; export none; }; }\n",
    );
    for (i, peer) in receiver_addresses(plan.sessions).iter().enumerate() {
        let filter = if plan.sessions > 1 {
            let (block, len) = session_block(i);
            format!("where net ~ [ {block}/{len}+ ]")
        } else {
            "where source = RTS_STATIC || source = RTS_INHERIT".to_string()
        };
        let _ = writeln!(
            out,
            "protocol bgp s{i} {{\n  local {} as {SENDER_AS};\n  neighbor {peer} as \
             {RECEIVER_AS};\n  passive on;\n  hold time 90;\n  keepalive time 30;\n  \
             ipv4 {{ import none; export {filter}; next hop self; }};\n}}",
            sender_address(i, plan.sessions)
        );
    }
    out
}

fn bird_route_count(bird: &Bird) -> testbed::Result<u64> {
    // "100000 of 100000 routes for 100000 networks in table master4"
    let text = bird.birdc(&["show", "route", "count"])?;
    Ok(text
        .lines()
        .find(|l| l.contains("routes for"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// FRR as a sender: kernel routes redistributed, one passive session per receiver address,
/// with a prefix list per session in multi-session runs.
pub fn frr_config(plan: Plan) -> String {
    let peers = receiver_addresses(plan.sessions);
    let mut out = String::from("frr defaults datacenter\nhostname s\n");
    if plan.sessions > 1 {
        for i in 0..peers.len() {
            let (block, len) = session_block(i);
            let _ = writeln!(
                out,
                "ip prefix-list pl{i} seq 5 permit {block}/{len} le 32\nroute-map rm{i} permit 10\n match ip address prefix-list pl{i}\nexit"
            );
        }
    }
    let _ = writeln!(
        out,
        "router bgp {SENDER_AS}\n bgp router-id {SENDER}\n no bgp ebgp-requires-policy\n no bgp network import-check"
    );
    for (i, peer) in peers.iter().enumerate() {
        let _ = writeln!(
            out,
            " neighbor {peer} remote-as {RECEIVER_AS}\n neighbor {peer} passive\n neighbor {peer} timers 30 90\n neighbor {peer} update-source {}",
            sender_address(i, plan.sessions)
        );
    }
    out.push_str(" address-family ipv4 unicast\n  redistribute kernel\n");
    if plan.sessions > 1 {
        for (i, peer) in peers.iter().enumerate() {
            let _ = writeln!(out, "  neighbor {peer} route-map rm{i} out");
        }
    }
    out.push_str(" exit-address-family\nexit\n");
    out
}

fn frr_route_count(frr: &Frr) -> testbed::Result<u64> {
    let text = frr.vtysh("show bgp ipv4 unicast statistics")?;
    Ok(text
        .lines()
        .find(|l| l.trim_start().starts_with("Total Prefixes"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// gobgpd as a sender: a session to the feeder, passive sessions to the receiver, and a
/// per-session export policy in multi-session runs.
pub fn gobgp_config(plan: Plan) -> String {
    let peers = receiver_addresses(plan.sessions);
    let mut out = format!(
        "[global.config]\n  as = {SENDER_AS}\n  router-id = \"{SENDER}\"\n\n\
         [global.apply-policy.config]\n  default-import-policy = \"accept-route\"\n  \
         default-export-policy = \"accept-route\"\n\n"
    );
    if plan.sessions > 1 {
        for i in 0..peers.len() {
            let (block, len) = session_block(i);
            let _ = writeln!(
                out,
                "[[defined-sets.prefix-sets]]\n  prefix-set-name = \"ps{i}\"\n  \
                 [[defined-sets.prefix-sets.prefix-list]]\n    ip-prefix = \"{block}/{len}\"\n    \
                 masklength-range = \"32..32\"\n\n[[policy-definitions]]\n  name = \"p{i}\"\n  \
                 [[policy-definitions.statements]]\n    name = \"s{i}\"\n    \
                 [policy-definitions.statements.conditions.match-prefix-set]\n      \
                 prefix-set = \"ps{i}\"\n    [policy-definitions.statements.actions]\n      \
                 route-disposition = \"accept-route\"\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{FEEDER}\"\n    \
         peer-as = {FEEDER_AS}\n  [neighbors.timers.config]\n    connect-retry = 1\n    \
         hold-time = 90\n    keepalive-interval = 30\n  [[neighbors.afi-safis]]\n    \
         [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n"
    );
    for (i, peer) in peers.iter().enumerate() {
        let _ = writeln!(
            out,
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{peer}\"\n    \
             peer-as = {RECEIVER_AS}\n  [neighbors.timers.config]\n    connect-retry = 1\n    \
             hold-time = 90\n    keepalive-interval = 30\n  [neighbors.transport.config]\n    \
             passive-mode = true\n    local-address = \"{}\"\n  [[neighbors.afi-safis]]\n    \
             [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"",
            sender_address(i, plan.sessions)
        );
        if plan.sessions > 1 {
            let _ = writeln!(
                out,
                "  [neighbors.apply-policy.config]\n    export-policy-list = [\"p{i}\"]\n    \
                 default-export-policy = \"reject-route\""
            );
        }
        out.push('\n');
    }
    out
}

fn gobgp_destinations(text: &str) -> u64 {
    // "Table ipv4-unicast\nDestination: 100000, Path: 100000"
    text.split("Destination:")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The feeder BIRD that loads gobgpd: every route as a static blackhole, exported to gobgpd.
pub fn feeder_config(plan: Plan) -> String {
    let routes = all_routes(plan.sessions, plan.per_session);
    let mut out = String::with_capacity(routes.len() * 36 + 512);
    let _ = writeln!(
        out,
        "router id {FEEDER};\nprotocol device {{ scan time 10; }}\nprotocol static st {{\n  ipv4;"
    );
    for route in routes {
        let _ = writeln!(out, "  route {route}/32 blackhole;");
    }
    let _ = writeln!(
        out,
        "}}\nprotocol bgp gobgp {{\n  local {FEEDER} as {FEEDER_AS};\n  neighbor {SENDER_FEED} \
         as {SENDER_AS};\n  hold time 90;\n  ipv4 {{ import none; export all; next hop self; }};\n}}"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_every_session() {
        let plan = Plan {
            sessions: 3,
            per_session: 2,
        };
        assert_eq!(bird_config(plan).matches("protocol bgp").count(), 3);
        assert!(bird_config(plan).contains("100.64.8.0/22+"));
        assert_eq!(frr_config(plan).matches(" passive").count(), 3);
        assert_eq!(gobgp_config(plan).matches("passive-mode").count(), 3);
        assert_eq!(feeder_config(plan).matches("blackhole").count(), 6);
        assert_eq!(
            gobgp_destinations("Table ipv4-unicast\nDestination: 42, Path: 42"),
            42
        );
    }
}
