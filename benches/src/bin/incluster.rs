//! In-cluster benchmark (issue 13 "Performance"): Berth on a real control plane in the
//! tor-pair lab. Three measurements, recorded in `benches/results/incluster-<date>.json`:
//!
//! 1. `one`: Services created one at a time; from the create call's return to the address in
//!    the Service's status (watch), the speakers' sync start and end (`synced` log lines) and
//!    the VIP in each router's kernel FIB (prefix count polled every 1 ms in the router);
//! 2. `burst`: N Services created at once (concurrent creates over the kube client) until all
//!    N are in both routers' FIBs;
//! 3. `usage`: resident memory and CPU of the controller and the speakers with the burst's
//!    Services (and, with `--scale N`, with N Services in all).
//!
//! Needs root, BIRD, FRR and `BERTH_CONTROLPLANE_BIN`; uses the daemons of `target/release`
//! when built, else those next to this binary. Prints progress, asserts nothing.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark run fails loudly on any error"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use benches::incluster::cluster::Bench;
use benches::incluster::fib_history::FibHistory;
use benches::incluster::objects::{NAMESPACE, POOL, endpoint_slice, service, service_of_class};
use benches::incluster::proc_usage::{self, ProcUsage};
use benches::incluster::speaker_log::{self, Sync};
use benches::incluster::stats::summary;
use benches::incluster::status_watch::StatusWatch;
use benches::whole::probe::{load_average, now_ns};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

/// How many creates are in flight at once in the burst (the kube client's connection pool
/// opens one HTTP/2 stream or connection per request).
const CONCURRENCY: usize = 100;
/// The FIB probe's period.
const POLL: Duration = Duration::from_millis(1);

struct Args {
    one: usize,
    control: usize,
    burst: usize,
    scale: usize,
    out: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        one: 60,
        control: 1000,
        burst: 1000,
        scale: 0,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--one" => a.one = value().parse().unwrap(),
            "--burst" => a.burst = value().parse().unwrap(),
            "--control" => a.control = value().parse().unwrap(),
            "--scale" => a.scale = value().parse().unwrap(),
            "--out" => a.out = Some(value().into()),
            other => panic!(
                "unknown argument {other}; usage: incluster [--one N] [--control N] [--burst N] [--scale N] [--out FILE]"
            ),
        }
    }
    a
}

fn bin_dir() -> PathBuf {
    benches::daemon_dir(&["berth-speaker", "berth-controller"])
}

fn ms(from: u64, to: u64) -> f64 {
    (to as f64 - from as f64) / 1e6
}

fn main() {
    let args = args();
    let load_before = load_average();
    let started = Instant::now();
    let dir = bin_dir();
    println!("daemons from {}", dir.display());
    let mut bench = Bench::start(&dir).unwrap();
    println!("lab up, sessions Established ({:?})", started.elapsed());
    let routers = [
        FibHistory::start(bench.clab.lab().netns("tor1").unwrap(), POLL).unwrap(),
        FibHistory::start(bench.clab.lab().netns("tor2").unwrap(), POLL).unwrap(),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut results = runtime.block_on(run(&mut bench, &routers, &args));
    results["load_average_before"] = json!(load_before);
    results["load_average_after"] = json!(load_average());
    results["versions"] = json!(bench.versions());
    results["daemons"] = json!(bench.bin_dir.display().to_string());
    results["build"] = json!(if bench.bin_dir.ends_with("release") {
        "release"
    } else {
        "debug"
    });
    results["machine"] = json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "model": cpu_model(),
    });
    results["settings"] = json!({
        "lab": "testbed/labs/tor-pair.clab.yml (tor1 BIRD, tor2 FRR, 3 nodes, IPv4 sessions)",
        "controller_replicas": 1,
        "pool": POOL,
        "service": "type LoadBalancer, class berth.io/lb, policy Cluster, no NodePorts, \
                    one EndpointSlice with a ready endpoint on each of the 3 nodes",
        "fib_probe": "fib_triestat prefix count in each router's namespace every 1 ms",
        "burst_concurrency": CONCURRENCY,
        "one": args.one, "control": args.control, "burst": args.burst, "scale": args.scale,
    });
    let out = args.out.clone().unwrap_or_else(|| {
        let date = String::from_utf8(
            std::process::Command::new("date")
                .args(["-u", "+%Y-%m-%d"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        testbed::incluster::repository()
            .join(format!("benches/results/incluster-{}.json", date.trim()))
    });
    std::fs::write(&out, serde_json::to_string_pretty(&results).unwrap() + "\n").unwrap();
    println!("wrote {}", out.display());
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default()
}

async fn run(bench: &mut Bench, routers: &[FibHistory; 2], args: &Args) -> Value {
    let client = bench.cp.client().await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let watch = StatusWatch::start(client.clone(), NAMESPACE);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = usage(bench);

    // Warm-up: the first Service pays for connections and caches; not counted.
    one_service(&services, &slices, &watch, routers, "warmup").await;

    // 1. One at a time.
    let mut samples = Vec::new();
    for i in 0..args.one {
        let name = format!("one-{i:03}");
        let sample = one_service(&services, &slices, &watch, routers, &name).await;
        // Let the slower speakers' syncs of this Service finish before the next one starts.
        tokio::time::sleep(Duration::from_millis(150)).await;
        samples.push(sample);
    }
    let logs: Vec<Vec<Sync>> = bench
        .speakers
        .iter()
        .map(|s| speaker_log::syncs(&s.log()))
        .collect();
    let mut rows = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let end = samples.get(i + 1).map_or(u64::MAX, |n| n.sent);
        // Each speaker's first sync with route changes in this Service's window.
        let syncs: Vec<Option<Sync>> = logs
            .iter()
            .map(|l| {
                l.iter()
                    .find(|y| y.done >= s.sent && y.done < end && y.routes > 0)
                    .copied()
            })
            .collect();
        let first_start = syncs.iter().flatten().map(|y| y.started).min();
        let first_done = syncs.iter().flatten().map(|y| y.done).min();
        let all_done = if syncs.iter().all(Option::is_some) {
            syncs.iter().flatten().map(|y| y.done).max()
        } else {
            None
        };
        let rel = |t: Option<u64>| t.map(|t| ms(s.returned, t));
        rows.push(json!({
            "service": s.name,
            "create_call_ms": ms(s.sent, s.returned),
            "status_ms": rel(s.status),
            "speaker_sync_start_ms": rel(first_start),
            "speaker_synced_ms": rel(first_done),
            "all_speakers_synced_ms": rel(all_done),
            "tor1_fib_ms": rel(s.fib[0]),
            "tor2_fib_ms": rel(s.fib[1]),
            "both_fibs_ms": rel(s.fib[0].zip(s.fib[1]).map(|(a, b)| a.max(b))),
        }));
    }
    let column = |key: &str| -> Value {
        let v: Vec<f64> = rows.iter().filter_map(|r| r[key].as_f64()).collect();
        json!(summary(&v))
    };
    let one = json!({
        "from": "the create call's return",
        "summary": {
            "create_call": column("create_call_ms"),
            "status_written": column("status_ms"),
            "speaker_sync_start": column("speaker_sync_start_ms"),
            "speaker_synced": column("speaker_synced_ms"),
            "all_speakers_synced": column("all_speakers_synced_ms"),
            "tor1_fib": column("tor1_fib_ms"),
            "tor2_fib": column("tor2_fib_ms"),
            "both_fibs": column("both_fibs_ms"),
        },
        "samples": rows,
    });
    println!(
        "one at a time: {}",
        serde_json::to_string_pretty(&one["summary"]).unwrap()
    );

    // 2. A burst, after the same burst of Services Berth ignores (another class): what the
    // API server alone takes to accept them.
    let control = if args.control > 0 {
        let c = control_burst(bench, &services, args.control).await;
        println!("control: {}", serde_json::to_string_pretty(&c).unwrap());
        c
    } else {
        Value::Null
    };
    settle(bench).await;
    let before_burst = usage(bench);
    let burst_result = burst(
        bench, &services, &slices, &watch, routers, "burst", args.burst,
    )
    .await;
    println!(
        "burst: {}",
        serde_json::to_string_pretty(&burst_result).unwrap()
    );
    settle(bench).await;
    let after_burst = usage(bench);
    let total = 1 + args.one + args.burst;
    let mut usage_rows = vec![
        usage_row("idle (no Services)", 0, &idle, None),
        usage_row("after the burst", total, &after_burst, Some(&before_burst)),
    ];

    // 3. Scale.
    if args.scale > total {
        let more = args.scale - total;
        let scale = burst(bench, &services, &slices, &watch, routers, "scale", more).await;
        println!("scale: {}", serde_json::to_string_pretty(&scale).unwrap());
        settle(bench).await;
        let after = usage(bench);
        usage_rows.push(usage_row(
            "after the scale step",
            args.scale,
            &after,
            Some(&after_burst),
        ));
        usage_rows.push(json!({"scale_step": scale}));
    }
    println!(
        "usage: {}",
        serde_json::to_string_pretty(&usage_rows).unwrap()
    );
    json!({"one_at_a_time": one, "control_burst": control, "burst": burst_result, "usage": usage_rows})
}

struct OneSample {
    name: String,
    sent: u64,
    returned: u64,
    status: Option<u64>,
    fib: [Option<u64>; 2],
}

/// Creates `name`'s EndpointSlice, then the Service, and waits (up to 20 s) until the VIP
/// is in both routers' FIBs.
async fn one_service(
    services: &Api<Service>,
    slices: &Api<EndpointSlice>,
    watch: &StatusWatch,
    routers: &[FibHistory; 2],
    name: &str,
) -> OneSample {
    let pp = PostParams::default();
    slices.create(&pp, &endpoint_slice(name)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let base = [routers[0].count(), routers[1].count()];
    let sent = now_ns();
    services.create(&pp, &service(name)).await.unwrap();
    let returned = now_ns();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut fib = [None, None];
    while Instant::now() < deadline {
        for (i, r) in routers.iter().enumerate() {
            fib[i] = r.reached(sent, base[i] + 1);
        }
        if fib.iter().all(Option::is_some) && watch.addressed(name).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if fib.iter().any(Option::is_none) {
        println!("{name}: not in both FIBs after 20 s ({fib:?})");
    }
    OneSample {
        name: name.to_string(),
        sent,
        returned,
        status: watch.addressed(name),
        fib,
    }
}

/// Creates `count` EndpointSlices (not timed), then `count` Services at once, and waits (up
/// to 300 s) until all are in both routers' FIBs.
async fn burst(
    bench: &mut Bench,
    services: &Api<Service>,
    slices: &Api<EndpointSlice>,
    watch: &StatusWatch,
    routers: &[FibHistory; 2],
    prefix: &str,
    count: usize,
) -> Value {
    let names: Vec<String> = (0..count).map(|i| format!("{prefix}-{i:05}")).collect();
    let pp = PostParams::default();
    futures::stream::iter(names.iter())
        .map(|n| {
            let (slices, pp) = (slices.clone(), pp.clone());
            async move { create(&slices, &pp, &endpoint_slice(n)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<u32>>()
        .await;
    settle(bench).await;
    let load = load_average();
    let cp_before = control_plane_cpu(bench);
    let base = [routers[0].count(), routers[1].count()];
    let target = [base[0] + count as u64, base[1] + count as u64];
    let sent = now_ns();
    let retries: u32 = futures::stream::iter(names.iter())
        .map(|n| {
            let (services, pp) = (services.clone(), pp.clone());
            async move { create(&services, &pp, &service(n)).await }
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
    let (addressed, status_all) = watch.all(&names);
    let cp_after = control_plane_cpu(bench);
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
        "control_plane_cpu_ms_in_step": cpu_delta(&cp_before, &cp_after),
        "all_status_written_ms": rel(status_all),
        "statuses_written": addressed,
        "tor1_first_ms": rel(first[0]),
        "tor2_first_ms": rel(first[1]),
        "tor1_all_ms": rel(fib[0]),
        "tor2_all_ms": rel(fib[1]),
        "both_all_ms": rel(fib[0].zip(fib[1]).map(|(a, b)| a.max(b))),
        "tor1_prefixes_at_end": routers[0].count().saturating_sub(base[0]),
        "tor2_prefixes_at_end": routers[1].count().saturating_sub(base[1]),
    })
}

/// Creates `count` Services of another class at once (no EndpointSlices): how long the API
/// server takes to accept them with Berth running but not acting on them.
async fn control_burst(bench: &mut Bench, services: &Api<Service>, count: usize) -> Value {
    settle(bench).await;
    let before = control_plane_cpu(bench);
    let load = load_average();
    let pp = PostParams::default();
    let sent = now_ns();
    let retries: u32 = futures::stream::iter(0..count)
        .map(|i| {
            let (services, pp) = (services.clone(), pp.clone());
            async move {
                let svc = service_of_class(&format!("other-{i:05}"), "example.com/other");
                create(&services, &pp, &svc).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<u32>>()
        .await
        .iter()
        .sum();
    let created = now_ns();
    let after = control_plane_cpu(bench);
    json!({
        "services": count,
        "class": "example.com/other (Berth ignores it)",
        "load_average_at_start": load,
        "all_created_ms": ms(sent, created),
        "create_retries": retries,
        "control_plane_cpu_ms_in_step": cpu_delta(&before, &after),
    })
}

/// CPU (ms) of etcd, kube-apiserver and kube-controller-manager.
fn control_plane_cpu(bench: &mut Bench) -> Vec<(String, u64)> {
    use testbed::k8s::Component;
    [
        Component::Etcd,
        Component::ApiServer,
        Component::ControllerManager,
    ]
    .into_iter()
    .map(|c| {
        let cpu = bench.cp.pid(c).map_or(0, |p| proc_usage::read(p).cpu_ms);
        (c.program().to_string(), cpu)
    })
    .collect()
}

fn cpu_delta(before: &[(String, u64)], after: &[(String, u64)]) -> Value {
    after
        .iter()
        .zip(before)
        .map(|((name, a), (_, b))| (name.clone(), json!(a.saturating_sub(*b))))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// Creates `object`, retrying refusals (the API server's flow control may answer 429 under
/// a burst) up to 20 times; returns how many retries it took. Panics if it never succeeds.
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

struct Usage {
    controller: ProcUsage,
    speakers: Vec<ProcUsage>,
}

fn usage(bench: &Bench) -> Usage {
    Usage {
        controller: proc_usage::read(bench.controller.pid()),
        speakers: bench
            .speakers
            .iter()
            .map(|s| proc_usage::read(s.pid()))
            .collect(),
    }
}

/// Waits until the daemons have used less than 20 ms of CPU together in 500 ms (at most
/// 30 s), so late work is counted in the step that caused it.
async fn settle(bench: &Bench) {
    let total = |u: &Usage| u.controller.cpu_ms + u.speakers.iter().map(|s| s.cpu_ms).sum::<u64>();
    let mut last = total(&usage(bench));
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = total(&usage(bench));
        if now.saturating_sub(last) < 20 {
            return;
        }
        last = now;
    }
}

fn usage_row(when: &str, services: usize, now: &Usage, since: Option<&Usage>) -> Value {
    let cpu = |a: &ProcUsage, b: Option<&ProcUsage>| b.map(|b| a.cpu_ms.saturating_sub(b.cpu_ms));
    json!({
        "when": when,
        "services": services,
        "controller": now.controller,
        "controller_cpu_ms_in_step": cpu(&now.controller, since.map(|s| &s.controller)),
        "speakers": now.speakers,
        "speakers_cpu_ms_in_step": now.speakers.iter().enumerate()
            .map(|(i, s)| cpu(s, since.and_then(|b| b.speakers.get(i)))).collect::<Vec<_>>(),
    })
}
