//! `berthctl`: reads a speaker's admin API and prints it as tables (like `birdc show
//! protocols`) or, with `-o json`, as JSON.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use speaker::admin::{PeerView, RouteView, StatusView};
use speaker::desired::VipReport;
use speaker::layer2::edge::Layer2View;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

/// Inspect a running berth-speaker.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The speaker's admin address.
    #[arg(long, env = "BERTH_ADMIN_ADDR", default_value = "127.0.0.1:7473")]
    addr: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table", global = true)]
    output: Output,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum What {
    /// BGP sessions.
    Peers,
    /// Routes announced, per session.
    Routes,
    /// Every load-balancer address and why this node does or does not announce it.
    Vips,
    /// The speaker as a whole: sync, settings, skipped objects.
    Status,
    /// Layer-2 addresses: which node answers ARP/NDP for each, and which would take over.
    Layer2,
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn uptime(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) => format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60),
    }
}

/// Routes received: the table size when the speaker tracks it (a max-prefix limit),
/// else `-` with the NLRI counters.
fn received(p: &PeerView) -> String {
    match p.prefixes_received {
        Some(n) => n.to_string(),
        None => format!("- (+{}/-{} NLRI)", p.nlri_announced, p.nlri_withdrawn),
    }
}

fn render(what: What, body: &str) -> Result<String, serde_json::Error> {
    Ok(match what {
        What::Peers => {
            let peers: Vec<PeerView> = serde_json::from_str(body)?;
            let rows: Vec<Vec<String>> = peers
                .iter()
                .map(|p| {
                    let info = match &p.last_error {
                        Some(e) if p.state != "Established" => e.clone(),
                        _ => format!(
                            "{} out, {} in, {} flaps",
                            p.prefixes_advertised,
                            received(p),
                            p.flaps
                        ),
                    };
                    vec![
                        p.name.clone(),
                        p.address.to_string(),
                        p.peer_as.to_string(),
                        p.local_as.to_string(),
                        p.state.clone(),
                        p.bfd.clone().unwrap_or_else(|| "-".into()),
                        uptime(p.uptime_secs),
                        info,
                    ]
                })
                .collect();
            table(
                &[
                    "Name", "Neighbor", "PeerAS", "LocalAS", "State", "BFD", "Uptime", "Info",
                ],
                &rows,
            )
        }
        What::Routes => {
            let routes: Vec<RouteView> = serde_json::from_str(body)?;
            let rows: Vec<Vec<String>> = routes
                .iter()
                .map(|r| {
                    let mut attrs = Vec::new();
                    if let Some(m) = r.med {
                        attrs.push(format!("med {m}"));
                    }
                    if let Some(l) = r.local_pref {
                        attrs.push(format!("local-pref {l}"));
                    }
                    if !r.communities.is_empty() {
                        attrs.push(format!("communities {}", r.communities.join(" ")));
                    }
                    if !r.large_communities.is_empty() {
                        attrs.push(format!("large {}", r.large_communities.join(" ")));
                    }
                    vec![
                        r.prefix.clone(),
                        r.peer.to_string(),
                        "self".into(),
                        attrs.join(", "),
                    ]
                })
                .collect();
            table(&["Prefix", "Peer", "NextHop", "Attributes"], &rows)
        }
        What::Vips => {
            let vips: Vec<VipReport> = serde_json::from_str(body)?;
            let rows: Vec<Vec<String>> = vips
                .iter()
                .map(|v| {
                    vec![
                        v.address.to_string(),
                        v.service.clone(),
                        v.pool.clone().unwrap_or_else(|| "-".into()),
                        v.policy.clone(),
                        if v.announced { "yes" } else { "no" }.into(),
                        v.why.clone(),
                    ]
                })
                .collect();
            table(
                &["VIP", "Service", "Pool", "Policy", "Announced", "Why"],
                &rows,
            )
        }
        What::Layer2 => {
            let v: Layer2View = serde_json::from_str(body)?;
            let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
            let rows: Vec<Vec<String>> = v
                .addresses
                .iter()
                .map(|a| {
                    vec![
                        a.address.map(|ip| ip.to_string()).unwrap_or_default(),
                        a.pool.clone(),
                        dash(&a.owner) + if a.here { " (this node)" } else { "" },
                        dash(&a.standby),
                        dash(&a.interface),
                        a.candidates.join(","),
                    ]
                })
                .collect();
            let mut out = table(
                &[
                    "Address",
                    "Pool",
                    "Owner",
                    "Standby",
                    "Interface",
                    "Candidates",
                ],
                &rows,
            );
            out.push_str(&format!(
                "live: {} of {} members; eligible: {}; isolated: {}; detection {} ms\n",
                v.live.join(","),
                v.members.len(),
                v.eligible,
                v.isolated,
                v.detection_ms
            ));
            for p in &v.problems {
                out.push_str(&format!("problem: {p}\n"));
            }
            out
        }
        What::Status => {
            let s: StatusView = serde_json::from_str(body)?;
            let mut out = format!(
                "Node:           {}\nReady:          {}\nSyncs:          {} (last {} µs)\nVIPs announced: {}\n",
                s.node, s.ready, s.syncs, s.last_sync_micros, s.vips_announced
            );
            if let Some(set) = &s.settings {
                out.push_str(&format!(
                    "Local AS:       {}\nRouter ID:      {}\nListen port:    {}\n",
                    set.local_as,
                    set.router_id,
                    set.listen_port.map_or("none".into(), |p| p.to_string())
                ));
            }
            if let Some(e) = &s.source_error {
                out.push_str(&format!("Source error:   {e}\n"));
            }
            for p in &s.problems {
                out.push_str(&format!("Skipped:        {p}\n"));
            }
            out
        }
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let path = match args.what {
        What::Peers => "/api/v1/peers",
        What::Routes => "/api/v1/routes",
        What::Vips => "/api/v1/vips",
        What::Status => "/api/v1/status",
        What::Layer2 => "/api/v1/layer2",
    };
    let body = match serving::get(&args.addr, path, Duration::from_secs(5)) {
        Ok((200, body)) => body,
        Ok((status, body)) => {
            eprintln!("berthctl: {} answered {status}: {}", args.addr, body.trim());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("berthctl: cannot reach the speaker at {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    if args.output == Output::Json {
        print!("{body}");
        return ExitCode::SUCCESS;
    }
    match render(args.what, &body) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berthctl: unexpected answer from the speaker: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["Name", "State"],
            &[vec!["tor-long-name".into(), "Established".into()]],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "Name           State");
        assert_eq!(lines[1], "tor-long-name  Established");
    }

    #[test]
    fn peers_have_a_bfd_column() {
        let body = r#"[{"name":"tor","address":"10.0.0.254","peerAs":65000,"localAs":65001,
            "state":"Established","uptimeSecs":5,"flaps":0,"holdTime":90,
            "prefixesAdvertised":1,"prefixesReceived":0,"sent":{"open":1,"update":1,
            "notification":0,"keepalive":1,"routeRefresh":0},"received":{"open":1,"update":0,
            "notification":0,"keepalive":1,"routeRefresh":0},"lastError":null,
            "description":"","bfd":"Up"}]"#;
        let t = render(What::Peers, body).expect("render");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("State        BFD"), "{t}");
        assert!(lines[1].contains("Established  Up "), "{t}");
        let without = body.replace(r#","bfd":"Up""#, "");
        let t = render(What::Peers, &without).expect("older speakers have no bfd field");
        assert!(
            t.lines()
                .nth(1)
                .is_some_and(|l| l.contains("Established  -")),
            "{t}"
        );
    }

    #[test]
    fn an_untracked_table_size_shows_as_a_dash_with_the_nlri_counters() {
        let peer = |received: &str| {
            format!(
                r#"[{{"name":"tor","address":"10.0.0.254","peerAs":65000,"localAs":65001,
                "state":"Established","uptimeSecs":5,"flaps":0,"holdTime":90,
                "prefixesAdvertised":1,"prefixesReceived":{received},"nlriAnnounced":7,
                "nlriWithdrawn":2,"sent":{{"open":1,"update":1,"notification":0,
                "keepalive":1,"routeRefresh":0}},"received":{{"open":1,"update":3,
                "notification":0,"keepalive":1,"routeRefresh":0}},"lastError":null,
                "description":""}}]"#
            )
        };
        let untracked = render(What::Peers, &peer("null")).expect("render");
        assert!(
            untracked.contains("1 out, - (+7/-2 NLRI) in, 0 flaps"),
            "{untracked}"
        );
        let tracked = render(What::Peers, &peer("5")).expect("render");
        assert!(tracked.contains("1 out, 5 in, 0 flaps"), "{tracked}");
    }

    #[test]
    fn uptime_is_clock_like() {
        assert_eq!(uptime(Some(3723)), "01:02:03");
        assert_eq!(uptime(None), "-");
    }
}
