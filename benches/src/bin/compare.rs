//! Side-by-side benchmark (issue 19): Berth, then MetalLB, then kube-vip, each on a fresh
//! copy of the same lab (tor-pair: BIRD tor1, FRR tor2, three nodes, a real control plane),
//! measured the same way. Scenarios, written to `benches/results/compare-<scenario>-<date>.json`:
//!
//! - `fib`: one Service at a time (after a warm-up Service) from the create call's return
//!   until its VIP is in both routers' kernel FIBs (prefix count polled every 1 ms), then
//!   `--burst` Services created at once until all are in both FIBs;
//! - `nodeloss`: node1's uplinks set down, then 100 % loss on them (iptables DROP), until
//!   node1's next hop has left the warm-up VIP's route in both routers' FIBs (polled every
//!   10 ms); `--trials` each; then the time until it is back after the fault is cleared;
//! - `footprint`: every daemon's CPU and peak RSS (VmHWM) with the warm-up Service, after the
//!   burst, and after growing to `--scale` Services at once.
//!
//! Needs root, BIRD, FRR, `BERTH_CONTROLPLANE_BIN`, the peers from `scripts/build-peers.sh`
//! (run by this program; `BERTH_KUBEVIP_SRC` for kube-vip). Berth's daemons come from
//! `target/release` when built there. Prints progress, asserts nothing.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark run fails loudly on any error"
)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use benches::compare::fault::{self, Fault};
use benches::compare::lab::{CompareLab, node_address};
use benches::compare::objects::service;
use benches::compare::peers::{self, Peers};
use benches::compare::product::{Product, Running};
use benches::compare::route_watch::{gateways, observe_outage, wait_gateway};
use benches::compare::{berth, kubevip, metallb};
use benches::incluster::fib_history::FibHistory;
use benches::incluster::objects::{NAMESPACE, endpoint_slice};
use benches::incluster::proc_usage::{self, ProcUsage};
use benches::incluster::stats::summary;
use benches::whole::probe::{load_average, now_ns};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

/// Creates in flight at once in a burst.
const CONCURRENCY: usize = 100;
/// The FIB prefix-count probe's period.
const POLL: Duration = Duration::from_millis(1);
/// The next-hop probe's period.
const ROUTE_POLL: Duration = Duration::from_millis(10);

struct Args {
    products: Vec<Product>,
    one: usize,
    burst: usize,
    scale: usize,
    trials: usize,
    bfd: Option<u32>,
    restarts: usize,
    scenarios: Vec<String>,
    date: String,
}

fn args() -> Args {
    let mut a = Args {
        products: vec![Product::Berth, Product::MetalLb, Product::KubeVip],
        one: 50,
        burst: 100,
        scale: 1000,
        trials: 3,
        bfd: None,
        restarts: 3,
        scenarios: ["fib", "nodeloss", "footprint", "restart"]
            .map(String::from)
            .to_vec(),
        date: today(),
    };
    let mut scenarios = None;
    let mut restarts = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--products" => {
                a.products = value()
                    .split(',')
                    .map(|p| Product::parse(p).unwrap_or_else(|| panic!("unknown product {p}")))
                    .collect();
            }
            "--one" => a.one = value().parse().unwrap(),
            "--burst" => a.burst = value().parse().unwrap(),
            "--scale" => a.scale = value().parse().unwrap(),
            "--trials" => a.trials = value().parse().unwrap(),
            "--date" => a.date = value(),
            "--bfd" => a.bfd = Some(value().parse().unwrap()),
            "--restarts" => restarts = Some(value().parse().unwrap()),
            "--scenarios" => scenarios = Some(value().split(',').map(String::from).collect()),
            other => panic!(
                "unknown argument {other}; usage: compare [--products berth,metallb,kube-vip] \
                 [--one N] [--burst N] [--scale N] [--trials N] [--bfd MS] [--restarts N] \
                 [--scenarios fib,nodeloss,footprint,restart] [--date YYYY-MM-DD]"
            ),
        }
    }
    // With BFD only node loss is of interest unless asked otherwise.
    if a.bfd.is_some() {
        a.scenarios = vec!["nodeloss".into()];
        a.restarts = 0;
    }
    a.scenarios = scenarios.unwrap_or(a.scenarios);
    a.restarts = restarts.unwrap_or(a.restarts);
    a
}

fn today() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn ms(from: u64, to: u64) -> f64 {
    (to as f64 - from as f64) / 1e6
}

fn main() {
    let args = args();
    let berth_dir = benches::daemon_dir(&["berth-speaker", "berth-controller"]);
    let peers = if args.products.iter().any(|p| *p != Product::Berth) {
        peers::locate()
    } else {
        Peers::default()
    };
    let mut results: Vec<(Product, Value)> = Vec::new();
    for &product in &args.products {
        let load = load_average();
        let started = Instant::now();
        let lab = CompareLab::start(args.bfd).unwrap();
        let running = match product {
            Product::Berth => Ok(berth::start(&lab, &berth_dir, args.bfd)),
            Product::MetalLb if args.bfd.is_some() => Err(
                "MetalLB's native BGP mode has no BFD (only its FRR mode, which needs frr-k8s, has)"
                    .to_string(),
            ),
            Product::MetalLb => peers
                .metallb
                .as_ref()
                .map(|dir| metallb::start(&lab, dir))
                .map_err(Clone::clone),
            Product::KubeVip => peers
                .kubevip
                .as_ref()
                .map(|bin| kubevip::start(&lab, bin, args.bfd))
                .map_err(Clone::clone),
        };
        let value = match running {
            Err(why) => {
                println!("{}: skipped: {why}", product.name());
                json!({"skipped": why})
            }
            Ok(Err(e)) => {
                println!("{}: could not start: {e}", product.name());
                json!({"failed_to_start": e.to_string()})
            }
            Ok(Ok(mut running)) => {
                println!(
                    "{} {}: lab up and daemons started ({:?})",
                    product.name(),
                    running.version,
                    started.elapsed()
                );
                let mut v = measure(&lab, &mut running, &args);
                v["version"] = json!(running.version);
                v["settings"] = running.settings.clone();
                v["load_average_at_start"] = json!(load);
                v
            }
        };
        results.push((product, value));
    }
    write(&args, &results);
}

/// Everything measured of one product, keyed by scenario.
fn measure(lab: &CompareLab, running: &mut Running, args: &Args) -> Value {
    let routers = [
        FibHistory::start(lab.netns("tor1").unwrap(), POLL).unwrap(),
        FibHistory::start(lab.netns("tor2").unwrap(), POLL).unwrap(),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let product = running.product;
    let client = runtime.block_on(lab.cp.client()).unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let slices: Api<EndpointSlice> = Api::namespaced(client, NAMESPACE);
    let mut index = 0;

    // Warm-up: every node announces it to both routers (all six sessions work); not counted.
    let warm = runtime.block_on(one_service(
        product, &services, &slices, &routers, "warmup", index,
    ));
    index += 1;
    let vip = runtime
        .block_on(vip_of(&services, "warmup"))
        .unwrap_or_else(|| panic!("warm-up Service has no address\n{}", running.log_tails()));
    let prefix = ipnetwork::IpNetwork::new(vip, 32).unwrap();
    let all_nodes = [1, 2, 3].map(|n| node_address(n, 1).parse::<IpAddr>().unwrap());
    let tor1 = lab.netns("tor1").unwrap();
    let ready = testbed::wait::until(
        "all three nodes in tor1's route",
        Duration::from_secs(120),
        || {
            Ok(all_nodes
                .iter()
                .all(|a| gateways(tor1, prefix).contains(a))
                .then_some(()))
        },
    );
    if let Err(e) = ready {
        panic!("{e}: {:?}\n{}", gateways(tor1, prefix), running.log_tails());
    }
    println!("warm-up {vip} announced by every node ({:?})", warm.both);
    settle(running);
    let idle = usage(running);
    let idle_cpu_warm = idle_cpu(running);

    // 1. One at a time.
    let mut rows = Vec::new();
    for i in 0..args.one {
        let name = format!("one-{i:03}");
        let s = runtime.block_on(one_service(
            product, &services, &slices, &routers, &name, index,
        ));
        index += 1;
        std::thread::sleep(Duration::from_millis(150));
        let rel = |t: Option<u64>| t.map(|t| ms(s.returned, t));
        rows.push(json!({
            "service": name,
            "create_call_ms": ms(s.sent, s.returned),
            "tor1_fib_ms": rel(s.fib[0]),
            "tor2_fib_ms": rel(s.fib[1]),
            "both_fibs_ms": rel(s.both),
        }));
    }
    let column = |key: &str| -> Value {
        let v: Vec<f64> = rows.iter().filter_map(|r| r[key].as_f64()).collect();
        json!(summary(&v))
    };
    let missing = rows.iter().filter(|r| r["both_fibs_ms"].is_null()).count();
    let one = json!({
        "from": "the create call's return",
        "services": args.one,
        "not_in_both_fibs_within_20s": missing,
        "summary": {
            "tor1_fib": column("tor1_fib_ms"),
            "tor2_fib": column("tor2_fib_ms"),
            "both_fibs": column("both_fibs_ms"),
        },
        "samples": rows,
    });
    println!(
        "{} one at a time: {}",
        product.name(),
        one["summary"]["both_fibs"]
    );

    // 2. A burst.
    settle(running);
    let before_burst = usage(running);
    let burst_result = runtime.block_on(burst(
        product, &services, &slices, &routers, "burst", index, args.burst,
    ));
    index += args.burst;
    println!(
        "{} burst of {}: {}",
        product.name(),
        args.burst,
        burst_result["both_all_ms"]
    );
    settle(running);
    let after_burst = usage(running);

    // 3. Speaker restarts, then node loss (its link-down trial leaves FRR without node1's
    // next hop, so nothing that needs node1 in both routes can follow it).
    let restart = if args.restarts > 0 {
        speaker_restart(lab, running, prefix, args.restarts)
    } else {
        Value::Null
    };
    let node_loss = if args.trials > 0 {
        node_loss(lab, running, prefix, args.trials)
    } else {
        Value::Null
    };

    // 4. Scale.
    let mut footprint = vec![
        usage_row("with the warm-up Service", 1, &idle, None),
        usage_row("after the burst", index, &after_burst, Some(&before_burst)),
    ];
    let mut scale = Value::Null;
    let mut idle_cpu_scaled = Value::Null;
    if args.scale > index {
        settle(running);
        let before = usage(running);
        let more = args.scale - index;
        scale = runtime.block_on(burst(
            product, &services, &slices, &routers, "scale", index, more,
        ));
        println!(
            "{} scale to {}: {}",
            product.name(),
            args.scale,
            scale["both_all_ms"]
        );
        settle(running);
        let after = usage(running);
        footprint.push(usage_row(
            "after the scale step",
            args.scale,
            &after,
            Some(&before),
        ));
        idle_cpu_scaled = idle_cpu(running);
    }
    let alive: Vec<bool> = running
        .controller
        .iter_mut()
        .chain(running.speakers.iter_mut())
        .map(|d| d.alive())
        .collect();
    json!({
        "fib": {"one_at_a_time": one, "burst": burst_result, "scale": scale},
        "nodeloss": node_loss,
        "restart": restart,
        "footprint": {
            "rows": footprint,
            "idle_cpu_ms_in_10s": {"with_the_warm_up_service": idle_cpu_warm,
                                   "after_the_scale_step": idle_cpu_scaled},
            "daemons_alive_at_end": alive,
        },
    })
}

struct OneSample {
    sent: u64,
    returned: u64,
    fib: [Option<u64>; 2],
    both: Option<u64>,
}

/// Creates `name`'s EndpointSlice, then the Service, and waits (up to 20 s) until the VIP is
/// in both routers' FIBs.
async fn one_service(
    product: Product,
    services: &Api<Service>,
    slices: &Api<EndpointSlice>,
    routers: &[FibHistory; 2],
    name: &str,
    index: usize,
) -> OneSample {
    let pp = PostParams::default();
    slices.create(&pp, &endpoint_slice(name)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let base = [routers[0].count(), routers[1].count()];
    let sent = now_ns();
    services
        .create(&pp, &service(product, name, index))
        .await
        .unwrap();
    let returned = now_ns();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut fib = [None, None];
    while Instant::now() < deadline {
        for (i, r) in routers.iter().enumerate() {
            fib[i] = r.reached(sent, base[i] + 1);
        }
        if fib.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if fib.iter().any(Option::is_none) {
        println!("{name}: not in both FIBs after 20 s ({fib:?})");
    }
    OneSample {
        sent,
        returned,
        fib,
        both: fib[0].zip(fib[1]).map(|(a, b)| a.max(b)),
    }
}

/// The first ingress address in `name`'s status (waits up to 20 s for one).
async fn vip_of(services: &Api<Service>, name: &str) -> Option<IpAddr> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let ip = services
            .get(name)
            .await
            .ok()
            .and_then(|s| s.status?.load_balancer?.ingress?.first()?.ip.clone())
            .and_then(|ip| ip.parse().ok());
        if ip.is_some() {
            return ip;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Creates `count` EndpointSlices (not timed), then `count` Services at once, and waits (up
/// to 300 s) until all are in both routers' FIBs.
async fn burst(
    product: Product,
    services: &Api<Service>,
    slices: &Api<EndpointSlice>,
    routers: &[FibHistory; 2],
    prefix: &str,
    first_index: usize,
    count: usize,
) -> Value {
    let names: Vec<(usize, String)> = (0..count)
        .map(|i| (first_index + i, format!("{prefix}-{i:05}")))
        .collect();
    let pp = PostParams::default();
    futures::stream::iter(names.iter())
        .map(|(_, n)| {
            let (slices, pp) = (slices.clone(), pp.clone());
            async move { create(&slices, &pp, &endpoint_slice(n)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<u32>>()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let load = load_average();
    let base = [routers[0].count(), routers[1].count()];
    let target = [base[0] + count as u64, base[1] + count as u64];
    let sent = now_ns();
    let retries: u32 = futures::stream::iter(names.iter())
        .map(|(i, n)| {
            let (services, pp) = (services.clone(), pp.clone());
            async move { create(&services, &pp, &service(product, n, *i)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<u32>>()
        .await
        .iter()
        .sum();
    let created = now_ns();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut fib = [None, None];
    while Instant::now() < deadline && fib.iter().any(Option::is_none) {
        for (i, r) in routers.iter().enumerate() {
            fib[i] = r.reached(sent, target[i]);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = [
        routers[0].reached(sent, base[0] + 1),
        routers[1].reached(sent, base[1] + 1),
    ];
    let rel = |t: Option<u64>| t.map(|t| ms(sent, t));
    json!({
        "services": count,
        "from": "the first create call",
        "load_average_at_start": load,
        "all_created_ms": ms(sent, created),
        "create_retries": retries,
        "tor1_first_ms": rel(first[0]),
        "tor2_first_ms": rel(first[1]),
        "tor1_all_ms": rel(fib[0]),
        "tor2_all_ms": rel(fib[1]),
        "both_all_ms": rel(fib[0].zip(fib[1]).map(|(a, b)| a.max(b))),
        "tor1_prefixes_at_end": routers[0].count().saturating_sub(base[0]),
        "tor2_prefixes_at_end": routers[1].count().saturating_sub(base[1]),
    })
}

/// Faults on node1's uplinks: per fault and trial, the time from the injection until node1's
/// next hop has left `prefix`'s route in both routers, and from clearing it until it is back.
fn node_loss(
    lab: &CompareLab,
    running: &Running,
    prefix: ipnetwork::IpNetwork,
    trials: usize,
) -> Value {
    let node = lab.netns("node1").unwrap();
    let routers = [lab.netns("tor1").unwrap(), lab.netns("tor2").unwrap()];
    let hops: [IpAddr; 2] = [
        node_address(1, 1).parse().unwrap(),
        node_address(1, 2).parse().unwrap(),
    ];
    let mut faults = Vec::new();
    // Loss first: after a link-down, FRR 8.4's zebra believes node1's next hop is back in its
    // nexthop group while the kernel's group lacks it (seen with every product), so link down
    // runs once, last, and its "back" figure is for tor1 (BIRD) alone.
    for (f, trials) in [(Fault::Loss, trials), (Fault::LinkDown, 1)] {
        let mut rows = Vec::new();
        for trial in 0..trials {
            let back = wait_gateway(
                &routers,
                prefix,
                &hops,
                true,
                ROUTE_POLL,
                Duration::from_secs(180),
            );
            if back.iter().any(Option::is_none) {
                println!(
                    "{} {}: node1 not in both routes before trial {trial}; stopping",
                    running.product.name(),
                    f.name()
                );
                break;
            }
            let load = load_average();
            let t0 = now_ns();
            fault::inject(node, f).unwrap();
            let gone = wait_gateway(
                &routers,
                prefix,
                &hops,
                false,
                ROUTE_POLL,
                Duration::from_secs(150),
            );
            let t1 = now_ns();
            fault::clear(node, f, 1).unwrap();
            let returned = wait_gateway(
                &routers,
                prefix,
                &hops,
                true,
                ROUTE_POLL,
                Duration::from_secs(180),
            );
            if returned.iter().any(Option::is_none) {
                println!(
                    "node1 not back in both routes 180 s after the fault was cleared: {:?} {:?}\n{}",
                    gateways(routers[0], prefix),
                    gateways(routers[1], prefix),
                    running.speakers[0].log_tail()
                );
            }
            let rel = |from: u64, t: &Option<u64>| t.map(|t| ms(from, t));
            let row = json!({
                "trial": trial,
                "load_average": load,
                "tor1_gone_ms": rel(t0, &gone[0]),
                "tor2_gone_ms": rel(t0, &gone[1]),
                "both_gone_ms": gone[0].zip(gone[1]).map(|(a, b)| ms(t0, a.max(b))),
                "tor1_back_ms": rel(t1, &returned[0]),
                "tor2_back_ms": rel(t1, &returned[1]),
            });
            println!(
                "{} {} trial {trial}: {row}",
                running.product.name(),
                f.name()
            );
            rows.push(row);
        }
        let column = |key: &str| -> Value {
            let v: Vec<f64> = rows.iter().filter_map(|r| r[key].as_f64()).collect();
            json!(summary(&v))
        };
        faults.push(json!({
            "fault": f.name(),
            "on": "node1's two uplinks (eth1 to tor1, eth2 to tor2); management link untouched",
            "note": if f == Fault::LinkDown {
                "the routers' ends lose carrier: the kernel and the routers drop the next hop \
                 whatever the speaker does; one trial, last, because after link up FRR 8.4's \
                 zebra lists node1's next hop again while the kernel's nexthop group lacks it \
                 (tor2_back is null for every product; a lab artefact)"
            } else {
                "iptables DROP in and out of both uplinks: only the BGP hold timer (the routers' \
                 9 s) or BFD can notice"
            },
            "summary": {
                "tor1_gone": column("tor1_gone_ms"), "tor2_gone": column("tor2_gone_ms"),
                "both_gone": column("both_gone_ms"),
                "tor1_back": column("tor1_back_ms"), "tor2_back": column("tor2_back_ms"),
            },
            "trials": rows,
        }));
    }
    json!({
        "vip": prefix.to_string(),
        "probe": "the VIP's route in each router's kernel FIB (rtnetlink) every 10 ms",
        "faults": faults,
    })
}

/// Speaker restarts: SIGKILL node1's speaker and start it again at once (as a kubelet does
/// after a crash), then watch for 20 s whether and when node1's next hop leaves the VIP's
/// route in each router and comes back.
fn speaker_restart(
    lab: &CompareLab,
    running: &mut Running,
    prefix: ipnetwork::IpNetwork,
    trials: usize,
) -> Value {
    let routers = [lab.netns("tor1").unwrap(), lab.netns("tor2").unwrap()];
    let hops: [IpAddr; 2] = [
        node_address(1, 1).parse().unwrap(),
        node_address(1, 2).parse().unwrap(),
    ];
    let mut rows = Vec::new();
    for trial in 0..trials {
        let ready = wait_gateway(
            &routers,
            prefix,
            &hops,
            true,
            ROUTE_POLL,
            Duration::from_secs(180),
        );
        if ready.iter().any(Option::is_none) {
            println!(
                "{} restart: node1 not in both routes before trial {trial}; stopping",
                running.product.name()
            );
            break;
        }
        // Let the new speaker's sessions settle (graceful restart's end-of-RIB) between trials.
        std::thread::sleep(Duration::from_secs(5));
        let load = load_average();
        let speaker = &mut running.speakers[0];
        let t0 = now_ns();
        speaker.kill();
        let _ = speaker.restart_if_exited();
        let seen = observe_outage(&routers, prefix, &hops, ROUTE_POLL, Duration::from_secs(20));
        let rel = |t: Option<u64>| t.map(|t| ms(t0, t));
        let row = json!({
            "trial": trial,
            "load_average": load,
            "tor1_gone_ms": rel(seen[0].gone), "tor1_back_ms": rel(seen[0].back),
            "tor2_gone_ms": rel(seen[1].gone), "tor2_back_ms": rel(seen[1].back),
        });
        println!("{} restart trial {trial}: {row}", running.product.name());
        rows.push(row);
    }
    let outages = |key: &str| rows.iter().filter(|r| !r[key].is_null()).count();
    let column = |key: &str| -> Value {
        let v: Vec<f64> = rows.iter().filter_map(|r| r[key].as_f64()).collect();
        json!(summary(&v))
    };
    json!({
        "fault": "SIGKILL of node1's speaker, started again at once with the same arguments",
        "probe": "the warm-up VIP's route in each router's kernel FIB every 10 ms for 20 s from the kill",
        "trials_with_next_hop_gone": {"tor1": outages("tor1_gone_ms"), "tor2": outages("tor2_gone_ms")},
        "summary": {
            "tor1_gone": column("tor1_gone_ms"), "tor1_back": column("tor1_back_ms"),
            "tor2_gone": column("tor2_gone_ms"), "tor2_back": column("tor2_back_ms"),
        },
        "trials": rows,
    })
}

/// Creates `object`, retrying refusals up to 20 times; returns how many retries it took.
async fn create<K>(api: &Api<K>, pp: &PostParams, object: &K) -> u32
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let mut retries = 0;
    loop {
        match api.create(pp, object).await {
            Ok(_) => return retries,
            Err(e) if retries < 20 => {
                if retries == 0 {
                    println!("create refused, retrying: {e}");
                }
                retries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("create: {e}"),
        }
    }
}

fn usage(running: &Running) -> Vec<(String, ProcUsage)> {
    running
        .pids()
        .into_iter()
        .map(|(name, pid)| (name, proc_usage::read(pid)))
        .collect()
}

/// Each daemon's CPU (ms) over 10 s with nothing changing: what it costs at rest.
fn idle_cpu(running: &Running) -> Value {
    let before = usage(running);
    std::thread::sleep(Duration::from_secs(10));
    let after = usage(running);
    after
        .iter()
        .zip(&before)
        .map(|((name, a), (_, b))| (name.clone(), json!(a.cpu_ms.saturating_sub(b.cpu_ms))))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// Waits until the daemons have used less than 20 ms of CPU together in 500 ms (at most
/// 30 s), so late work is counted in the step that caused it.
fn settle(running: &Running) {
    let total = |u: &[(String, ProcUsage)]| u.iter().map(|(_, p)| p.cpu_ms).sum::<u64>();
    let mut last = total(&usage(running));
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(500));
        let now = total(&usage(running));
        if now.saturating_sub(last) < 20 {
            return;
        }
        last = now;
    }
}

fn usage_row(
    when: &str,
    services: usize,
    now: &[(String, ProcUsage)],
    since: Option<&[(String, ProcUsage)]>,
) -> Value {
    let daemons: serde_json::Map<String, Value> = now
        .iter()
        .enumerate()
        .map(|(i, (name, u))| {
            let step = since
                .and_then(|s| s.get(i))
                .map(|(_, b)| u.cpu_ms.saturating_sub(b.cpu_ms));
            (name.clone(), json!({"usage": u, "cpu_ms_in_step": step}))
        })
        .collect();
    json!({"when": when, "services": services, "daemons": daemons})
}

/// One file per scenario, each with every product's block and the lab's versions.
fn write(args: &Args, results: &[(Product, Value)]) {
    let dir = testbed::incluster::repository().join("benches/results");
    let common = json!({
        "lab": "testbed/labs/tor-pair.clab.yml: tor1 BIRD 2 and tor2 FRR (AS 65000, hold 9 s, \
                keepalive 3 s, ECMP), node1..node3 (AS 65001) wired to both, IPv4 sessions; \
                a fresh lab and control plane per product; with --bfd MS a scratch copy whose \
                routers run BFD at MS ms x 3 on the IPv4 node sessions (BIRD protocol bfd, FRR \
                bfdd profile)",
        "versions": versions(),
        "machine": {
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "model": cpu_model(),
        },
        "load_average_at_end": load_average(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "berth_daemons": benches::daemon_dir(&["berth-speaker", "berth-controller"]).display().to_string(),
    });
    let tag = args.bfd.map(|ms| format!("bfd{ms}-")).unwrap_or_default();
    for scenario in &args.scenarios {
        let products: serde_json::Map<String, Value> = results
            .iter()
            .map(|(p, v)| {
                let mut block = json!({
                    "version": v["version"], "settings": v["settings"],
                    "load_average_at_start": v["load_average_at_start"],
                    "result": v[scenario],
                });
                for k in ["skipped", "failed_to_start"] {
                    if !v[k].is_null() {
                        block[k] = v[k].clone();
                    }
                }
                (p.name().to_string(), block)
            })
            .collect();
        let mut out = common.clone();
        out["scenario"] = json!(scenario);
        out["bfd_ms_x3"] = json!(args.bfd);
        out["products"] = Value::Object(products);
        let path: PathBuf = dir.join(format!("compare-{scenario}-{tag}{}.json", args.date));
        let text = scrub(&(serde_json::to_string_pretty(&out).unwrap() + "\n"));
        std::fs::write(&path, text).unwrap();
        println!("wrote {}", path.display());
    }
}

/// `text` without this machine's paths (results are committed): the repository becomes
/// relative, the home directory `~`.
fn scrub(text: &str) -> String {
    let repo = testbed::incluster::repository().display().to_string() + "/";
    let mut out = text.replace(&repo, "");
    if let Some(home) = std::env::var_os("HOME").map(|h| h.to_string_lossy().into_owned())
        && home.len() > 1
    {
        out = out.replace(&(home + "/"), "~/");
    }
    out
}

fn versions() -> Value {
    let first_line = |program: &str, a: &[&str]| {
        std::process::Command::new(program)
            .args(a)
            .output()
            .ok()
            .map(|o| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                text.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_default()
    };
    let repo = testbed::incluster::repository();
    json!({
        "berth_commit": first_line("git", &["-C", &repo.to_string_lossy(), "rev-parse", "HEAD"]),
        "bird": first_line("bird", &["--version"]),
        "frr": first_line("/usr/lib/frr/bgpd", &["--version"]),
        "go": first_line("go", &["version"]),
        "kernel": first_line("uname", &["-r"]),
    })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default()
}
