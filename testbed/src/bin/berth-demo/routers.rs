//! The routers' side of the demo, tor1 (BIRD) and tor2 (FRR): waiting for the nodes'
//! sessions and the VIP's multipath route, and showing them with the routers' own tools.
//! Knows nothing about how Berth was configured (files or a cluster).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use testbed::clab::ClabLab;
use testbed::router::SessionState;

use crate::console::show;
use crate::signals::wait_for;
use crate::topology::NODES;

/// Sessions each router should see established: every node over IPv4 and IPv6.
const SESSIONS_PER_ROUTER: usize = 6;

/// Where the routers' command-line tools connect.
pub struct Sockets {
    /// BIRD's control socket on tor1 (`birdc -s`).
    pub bird: PathBuf,
    /// FRR's vty socket directory on tor2 (`vtysh --vty_socket`).
    pub vty: PathBuf,
}

impl Sockets {
    /// The sockets of the lab's routers.
    pub fn of(clab: &ClabLab) -> Result<Sockets> {
        let lab = clab.lab();
        Ok(Sockets {
            bird: lab.netns("tor1")?.dir()?.join("bird").join("bird.ctl"),
            vty: lab.netns("tor2")?.dir()?.join("frr"),
        })
    }
}

/// Waits until both routers have every node's IPv4 and IPv6 session established.
pub fn wait_for_sessions(clab: &ClabLab) -> Result<()> {
    for name in ["tor1", "tor2"] {
        let router = clab.router(name)?;
        wait_for(
            &format!("{SESSIONS_PER_ROUTER} established sessions on {name}"),
            || {
                let up = router
                    .sessions()?
                    .iter()
                    .filter(|s| s.state == SessionState::Established)
                    .count();
                Ok((up >= SESSIONS_PER_ROUTER).then_some(()))
            },
        )?;
    }
    Ok(())
}

/// Waits until both routers route `vip` via all three nodes.
pub fn wait_for_ecmp(clab: &ClabLab, vip: IpAddr) -> Result<()> {
    for (name, tor) in [("tor1", 1), ("tor2", 2)] {
        let netns = clab.lab().netns(name)?;
        let expected: BTreeSet<IpAddr> = (1..=NODES.len())
            .filter_map(|n| format!("10.{tor}.{n}.2").parse().ok())
            .collect();
        let host = ipnetwork::IpNetwork::new(vip, 32).context("host route")?;
        wait_for(&format!("{vip} via three nodes on {name}"), || {
            Ok((netns.fib()?.gateways(host) == expected).then_some(()))
        })?;
    }
    Ok(())
}

/// Shows tor1's `birdc show protocols` and, with `frr_summary`, tor2's BGP summary.
pub fn show_sessions(sockets: &Sockets, frr_summary: bool) -> Result<()> {
    let birdc = run_tool(
        Command::new("birdc")
            .arg("-s")
            .arg(&sockets.bird)
            .args(["show", "protocols"]),
    )?;
    show("tor1 (BIRD) $ birdc show protocols", &birdc);
    if frr_summary {
        let vtysh = run_tool(
            Command::new("vtysh")
                .arg("--vty_socket")
                .arg(&sockets.vty)
                .args(["-c", "show bgp ipv4 unicast summary"]),
        )?;
        show(
            "tor2 (FRR) $ vtysh -c 'show bgp ipv4 unicast summary'",
            &vtysh,
        );
    }
    Ok(())
}

/// Shows both routers' kernel route for `vip`: one route, three next hops.
pub fn show_routes(clab: &ClabLab, vip: IpAddr) -> Result<()> {
    let vip_text = vip.to_string();
    for (router, kind) in [("tor1", "BIRD"), ("tor2", "FRR")] {
        let route = clab
            .lab()
            .netns(router)?
            .output("ip", &["route", "show", &vip_text])?;
        show(&format!("{router} ({kind}) $ ip route show {vip}"), &route);
    }
    Ok(())
}

/// Runs a router CLI and returns its standard output, or why it failed.
fn run_tool(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("run {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
