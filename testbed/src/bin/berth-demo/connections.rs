//! The traffic half of the demo: each node answers every TCP connection on port 80 with its
//! own name, and the client opens connections to the VIP, each from a new source port, so the
//! routers' ECMP hashing spreads them; the result is a table per node. Knows nothing about
//! BGP or Kubernetes.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, bail};
use testbed::clab::ClabLab;
use testbed::traffic::{Protocol, Responder, Spread, spread};

use crate::console::step;
use crate::signals;
use crate::topology::NODES;

/// Starts a responder on every node, on any address: the VIP arrives on the node's `lo` when
/// its speaker announces it. They stop when dropped.
pub fn responders(clab: &ClabLab) -> Result<Vec<Responder>> {
    let any: SocketAddr = ([0, 0, 0, 0], 80).into();
    NODES
        .iter()
        .map(|node| Ok(Responder::start(clab.lab().netns(node)?, node, &[any])?))
        .collect()
}

/// Opens `connections` TCP connections from the client to `vip:80`, prints the table and
/// fails if any got no answer.
pub fn show_spread(clab: &ClabLab, vip: IpAddr, connections: usize) -> Result<()> {
    step(&format!(
        "{connections} TCP connections from the client to {vip}:80, each from a new source port"
    ));
    let client = clab.lab().netns("client")?;
    let target: SocketAddr = (vip, 80).into();
    let mut result = Spread::default();
    let mut left = connections;
    // In batches, so Ctrl-C is honoured within a few seconds even if nothing answers.
    while left > 0 {
        signals::check()?;
        let batch = left.min(25);
        let part = spread(client, Protocol::Tcp, target, batch, Duration::from_secs(2))?;
        for (node, count) in part.answers {
            *result.answers.entry(node).or_default() += count;
        }
        result.failures += part.failures;
        left -= batch;
    }
    println!("{}", table(&result));
    if result.failures > 0 {
        bail!("{} connections got no answer", result.failures);
    }
    Ok(())
}

/// The table of answers per node: count, share and a bar.
fn table(result: &Spread) -> String {
    let total = result.answered() + result.failures;
    let mut out = String::from("\n    node    connections   share\n");
    let mut rows: Vec<(String, usize)> = NODES
        .iter()
        .map(|n| ((*n).to_string(), result.count(n)))
        .collect();
    for (name, count) in &result.answers {
        if !NODES.contains(&name.as_str()) {
            rows.push((name.clone(), *count));
        }
    }
    if result.failures > 0 {
        rows.push(("(failed)".into(), result.failures));
    }
    for (name, count) in rows {
        let share = (count * 100).checked_div(total).unwrap_or(0);
        let _ = writeln!(
            out,
            "    {name:<8}{count:>11}   {share:>4}%  {}",
            "#".repeat(share / 2)
        );
    }
    let _ = write!(out, "    {:<8}{total:>11}", "total");
    out
}
