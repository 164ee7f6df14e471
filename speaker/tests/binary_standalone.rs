//! The real `berth-speaker` binary in standalone mode over loopback TCP, against a router
//! that is a plain `bgp::driver::Speaker` in the test: the VIP arrives with the node as
//! next hop; `berthctl` shows the session and the VIP; an endpoint going unready withdraws
//! it; a broken manifest changes nothing; SIGTERM drains with GRACEFUL_SHUTDOWN, then
//! closes. One bad document (a type error, another API group) is skipped and shown by file and
//! line while the rest is served; a pool moved away stays announced for the grace period.
//! No root needed: 127.0.0.1 is the node, 127.0.0.2 the router.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bgp::driver::{PeerConfig, Speaker, SpeakerConfig};
use bgp::rib::route::GRACEFUL_SHUTDOWN;
use bgp::session::{ConnectMode, State};

/// Kills the child on drop (the test may panic).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn manifests(router_port: u16, endpoint_ready: bool) -> String {
    format!(
        r#"apiVersion: v1
kind: Node
metadata:
  name: n1
status:
  addresses:
  - {{type: InternalIP, address: 127.0.0.1}}
---
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpConf
metadata: {{name: default}}
spec:
  as: 65001
  listenAddresses: [127.0.0.1]
---
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpPeer
metadata: {{name: tor}}
spec:
  conf: {{peerAs: 65000, neighborAddress: 127.0.0.2}}
  transport: {{remotePort: {router_port}}}
  sourceAddress: 127.0.0.1
  timers: {{config: {{connectRetry: "1", holdTime: "9"}}}}
---
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {{name: pool}}
spec: {{address: 192.0.2.0/24}}
---
apiVersion: v1
kind: Service
metadata: {{namespace: web, name: a}}
spec:
  type: LoadBalancer
  loadBalancerClass: berth.io/lb
  ports: [{{port: 80}}]
status:
  loadBalancer:
    ingress: [{{ip: 192.0.2.10}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: web
  name: a-1
  labels: {{kubernetes.io/service-name: a}}
addressType: IPv4
endpoints:
- addresses: [10.244.0.1]
  nodeName: n1
  conditions: {{ready: {endpoint_ready}}}
"#
    )
}

fn write(dir: &Path, text: &str) {
    // Write and rename, as the controller does, so the speaker never reads half a file.
    let tmp = dir.join(".cluster.yaml.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join("cluster.yaml")).expect("rename");
}

async fn until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

fn berthctl(admin: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_berthctl"))
        .arg("--addr")
        .arg(admin)
        .args(args)
        .output()
        .expect("run berthctl");
    assert!(
        out.status.success(),
        "berthctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn node_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_speaker_announces_withdraws_and_drains() {
    let router_port = free_port("127.0.0.2");
    let mut config = SpeakerConfig::new(65000, Ipv4Addr::new(127, 0, 0, 2));
    config.listen_addresses = vec!["127.0.0.2".parse().expect("ip")];
    config.listen_port = router_port;
    let router = Speaker::start(config).await.expect("router listens");
    let mut p = PeerConfig::new(node_ip(), 65000, 65001, Ipv4Addr::new(127, 0, 0, 2));
    p.session.mode = ConnectMode::Passive;
    p.session.keep_received = true;
    router.add_peer(p).expect("router peer");

    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &manifests(router_port, true));
    let admin = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let metrics = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let child = Command::new(env!("CARGO_BIN_EXE_berth-speaker"))
        .args(["--node-name", "n1", "--state-dir"])
        .arg(dir.path())
        .args(["--listen-port", &free_port("127.0.0.1").to_string()])
        .args(["--admin-addr", &admin, "--metrics-addr", &metrics])
        .args(["--drain-seconds", "2", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start berth-speaker");
    let mut child = Proc(child);

    // The router keeps what it receives, so it counts exactly.
    let received = |r: &Speaker| r.peer(node_ip()).and_then(|p| p.prefixes_received_total());
    until("the VIP at the router", Duration::from_secs(30), || {
        received(&router) == Some(1)
    })
    .await;
    let routes = router.received(node_ip()).await.expect("received");
    assert_eq!(routes.len(), 1, "{routes:?}");
    let shown = format!("{routes:?}");
    assert!(shown.contains("192.0.2.10"), "{shown}");
    assert!(
        shown.contains("127.0.0.1"),
        "next hop is the node itself: {shown}"
    );

    let peers = berthctl(&admin, &["peers"]);
    assert!(
        peers.contains("tor") && peers.contains("Established"),
        "{peers}"
    );
    let vips = berthctl(&admin, &["vips", "-o", "json"]);
    let vips: serde_json::Value = serde_json::from_str(&vips).expect("json");
    assert_eq!(vips[0]["announced"], true);
    let (status, body) = serving::get(&metrics, "/readyz", Duration::from_secs(5)).expect("readyz");
    assert_eq!(status, 200, "{body}");
    let (_, body) = serving::get(&metrics, "/metrics", Duration::from_secs(5)).expect("metrics");
    assert!(
        body.contains("berth_speaker_session_up{peer=\"127.0.0.2\"} 1"),
        "{body}"
    );
    assert!(body.contains("berth_speaker_vips_announced 1"), "{body}");

    // The endpoint goes unready: the VIP is withdrawn, the session stays.
    write(dir.path(), &manifests(router_port, false));
    until("the withdrawal", Duration::from_secs(10), || {
        received(&router) == Some(0)
    })
    .await;
    let why = berthctl(&admin, &["vips"]);
    assert!(why.contains("no ready endpoint"), "{why}");

    // A broken manifest changes nothing; fixing it announces again.
    write(dir.path(), "kind: Node\nmetadata: {name: [\n");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        router.peer(node_ip()).map(|p| p.state),
        Some(State::Established)
    );
    write(dir.path(), &manifests(router_port, true));
    until("the VIP again", Duration::from_secs(10), || {
        received(&router) == Some(1)
    })
    .await;
    assert_eq!(
        router.peer(node_ip()).map(|p| p.flaps),
        Some(0),
        "no session reset"
    );

    // SIGTERM: the route is re-announced with GRACEFUL_SHUTDOWN, then the session closes.
    let pid = child.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut drained = false;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) && !drained {
        let routes = router.received(node_ip()).await.unwrap_or_default();
        drained = format!("{routes:?}").contains(&format!("{:?}", GRACEFUL_SHUTDOWN));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(drained, "routes were not marked GRACEFUL_SHUTDOWN");
    until("the session down", Duration::from_secs(15), || {
        router
            .peer(node_ip())
            .is_some_and(|p| p.state != State::Established)
    })
    .await;
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "berth-speaker exited with {status}");
}

/// Issue 14 items 7, 10, 11 on the speaker: a BgpPeer with a type error and an Eip of another
/// API group are skipped and shown with file and line (`berthctl status`, `/readyz`) while the
/// rest is served; a pool whose file is moved away keeps its VIPs announced for the grace
/// period (nothing withdrawn, and a new Service in it is announced), they go when it ends,
/// and come back with the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_manifest_is_skipped_and_a_vanished_pool_stays_for_the_grace_period() {
    let router_port = free_port("127.0.0.2");
    let mut config = SpeakerConfig::new(65000, Ipv4Addr::new(127, 0, 0, 2));
    config.listen_addresses = vec!["127.0.0.2".parse().expect("ip")];
    config.listen_port = router_port;
    let router = Speaker::start(config).await.expect("router listens");
    let mut p = PeerConfig::new(node_ip(), 65000, 65001, Ipv4Addr::new(127, 0, 0, 2));
    p.session.mode = ConnectMode::Passive;
    p.session.keep_received = true;
    router.add_peer(p).expect("router peer");

    let dir = tempfile::tempdir().expect("tempdir");
    let aside = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let all = manifests(router_port, true);
    let pool = "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: pool}\nspec: {address: 192.0.2.0/24}\n";
    assert!(
        all.contains(pool.trim_end()),
        "the pool document moves to its own file"
    );
    write(d, &all.replace(&format!("{}\n---\n", pool.trim_end()), ""));
    std::fs::write(d.join("pools.yaml"), pool).expect("pools");
    let bad = "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {name: bad}\nspec:\n  conf: {peerAs: 4294967296, neighborAddress: 127.0.0.3}\n---\napiVersion: metallb.io/v1beta1\nkind: Eip\nmetadata: {name: mlb}\nspec: {address: 198.51.100.0/24}\n---\napiVersion: v1\nkind: Service\nmetadata: {namespace: web, name: b}\nspec:\n  type: LoadBalancer\n  loadBalancerClass: berth.io/lb\n  externalTrafficPolicy: Cluster\n  ports: [{port: 80}]\nstatus:\n  loadBalancer:\n    ingress: [{ip: 198.51.100.1}]\n";
    std::fs::write(d.join("bad.yaml"), bad).expect("bad");

    let admin = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let metrics = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let child = Command::new(env!("CARGO_BIN_EXE_berth-speaker"))
        .args(["--node-name", "n1", "--state-dir"])
        .arg(d)
        .args(["--listen-port", &free_port("127.0.0.1").to_string()])
        .args(["--admin-addr", &admin, "--metrics-addr", &metrics])
        .args(["--vanish-grace-secs", "3", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start berth-speaker");
    let _child = Proc(child);

    let received = |r: &Speaker| r.peer(node_ip()).and_then(|p| p.prefixes_received_total());
    let withdrawn = |r: &Speaker| {
        r.peer(node_ip())
            .map_or(0, |p| p.nlri_received_total().withdrawn)
    };
    until("the VIP at the router", Duration::from_secs(30), || {
        received(&router) == Some(1)
    })
    .await;
    let routes = format!("{:?}", router.received(node_ip()).await.expect("received"));
    assert!(
        routes.contains("192.0.2.10") && !routes.contains("198.51.100.1"),
        "a metallb.io Eip is no pool: {routes}"
    );
    let status = berthctl(&admin, &["status"]);
    assert!(
        status.contains("bad.yaml:5") && status.contains("BgpPeer bad"),
        "{status}"
    );
    assert!(
        status.contains("bad.yaml:7") && status.contains("metallb.io/v1beta1"),
        "{status}"
    );
    let (code, body) = serving::get(&metrics, "/readyz", Duration::from_secs(5)).expect("readyz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("bad.yaml:5"), "{body}");

    // The pool's file moves away, then a Service of that pool appears: both VIPs are
    // announced while the grace period lasts, none withdrawn.
    let before = withdrawn(&router);
    std::fs::rename(d.join("pools.yaml"), aside.path().join("pools.yaml")).expect("away");
    let late = "apiVersion: v1\nkind: Service\nmetadata: {namespace: web, name: c}\nspec:\n  type: LoadBalancer\n  loadBalancerClass: berth.io/lb\n  externalTrafficPolicy: Cluster\n  ports: [{port: 80}]\nstatus:\n  loadBalancer:\n    ingress: [{ip: 192.0.2.11}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: web\n  name: c-1\n  labels: {kubernetes.io/service-name: c}\naddressType: IPv4\nendpoints:\n- addresses: [10.244.0.2]\n  nodeName: n1\n  conditions: {ready: true}\n";
    std::fs::write(d.join("late.yaml"), late).expect("late");
    until("the new VIP", Duration::from_secs(10), || {
        received(&router) == Some(2)
    })
    .await;
    assert_eq!(
        withdrawn(&router),
        before,
        "nothing withdrawn in the grace period"
    );
    // The grace period ends: the pool's VIPs go.
    until("the withdrawal", Duration::from_secs(15), || {
        received(&router) == Some(0)
    })
    .await;
    std::fs::rename(aside.path().join("pools.yaml"), d.join("pools.yaml")).expect("back");
    until("the VIPs again", Duration::from_secs(10), || {
        received(&router) == Some(2)
    })
    .await;
    assert_eq!(
        router.peer(node_ip()).map(|p| p.flaps),
        Some(0),
        "no session reset"
    );
}
