//! The reconcilers against a scripted in-memory API server (kube-rs `tower-test` pattern):
//! what they write (finalizers, status by server-side apply, events), for each case the
//! controller must handle, and leader hand-over on a Lease.

mod fake_api;

use std::sync::Arc;
use std::time::Duration;

use api::Eip;
use controller::cluster::leader::LeaderElector;
use controller::cluster::{Context, reconcile_eip, reconcile_service};
use controller::metrics::Metrics;
use controller::view::ClassConfig;
use fake_api::{FakeApi, calls_to};
use http::Method;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

fn svc_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/services/{name}")
}

fn eip_path(name: &str) -> String {
    format!("/apis/network.kubesphere.io/v1alpha2/eips/{name}")
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn eip(name: &str, address: &str) -> Value {
    json!({
        "apiVersion": "network.kubesphere.io/v1alpha2", "kind": "Eip",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1,
                     "annotations": {"eip.openelb.kubesphere.io/is-default-eip": "true"}},
        "spec": {"address": address}
    })
}

fn service(name: &str, created: u32, extra: Value) -> Value {
    let mut v = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": name, "namespace": "shop", "uid": format!("uid-{name}"),
            "annotations": {"lb.kubesphere.io/v1alpha1": "openelb"},
            "creationTimestamp": format!("2024-01-01T{:02}:{:02}:{:02}Z", created / 3600, created / 60 % 60, created % 60)
        },
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}
    });
    merge(&mut v, extra);
    v
}

struct World {
    fake: FakeApi,
    ctx: Arc<Context>,
    services: Writer<Service>,
    eips: Writer<Eip>,
    _namespaces: Writer<Namespace>,
    _trigger: tokio::sync::mpsc::UnboundedReceiver<()>,
    eip_names: Vec<String>,
}

impl World {
    async fn new(eips: &[Value], services: &[Value]) -> World {
        let (client, fake) = FakeApi::start();
        let (svc_store, mut svc_w) = reflector::store::<Service>();
        let (eip_store, mut eip_w) = reflector::store::<Eip>();
        let (ns_store, mut ns_w) = reflector::store::<Namespace>();
        svc_w.apply_watcher_event(&Event::Init);
        for s in services {
            let path = svc_path(
                s["metadata"]["namespace"].as_str().expect("ns"),
                s["metadata"]["name"].as_str().expect("name"),
            );
            fake.put(&path, s.clone());
            let obj: Service =
                serde_json::from_value(fake.get(&path).expect("stored")).expect("svc");
            svc_w.apply_watcher_event(&Event::InitApply(obj));
        }
        svc_w.apply_watcher_event(&Event::InitDone);
        eip_w.apply_watcher_event(&Event::Init);
        for e in eips {
            let path = eip_path(e["metadata"]["name"].as_str().expect("name"));
            fake.put(&path, e.clone());
            let obj: Eip = serde_json::from_value(fake.get(&path).expect("stored")).expect("eip");
            eip_w.apply_watcher_event(&Event::InitApply(obj));
        }
        eip_w.apply_watcher_event(&Event::InitDone);
        ns_w.apply_watcher_event(&Event::Init);
        ns_w.apply_watcher_event(&Event::InitDone);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "berth-controller".into(),
                instance: Some("test".into()),
            },
        );
        let ctx = Arc::new(
            Context::new(
                client,
                ClassConfig::default(),
                svc_store,
                eip_store,
                ns_store,
                recorder,
                Metrics::default(),
                tx,
            )
            .await,
        );
        World {
            fake,
            ctx,
            services: svc_w,
            eips: eip_w,
            _namespaces: ns_w,
            _trigger: rx,
            eip_names: eips
                .iter()
                .filter_map(|e| e["metadata"]["name"].as_str().map(str::to_string))
                .collect(),
        }
    }

    /// Reads a Service back from the server into the cache, as a watch event would.
    fn refresh_service(&mut self, name: &str) -> Service {
        let s: Service =
            serde_json::from_value(self.fake.get(&svc_path("shop", name)).expect("svc"))
                .expect("service");
        self.services.apply_watcher_event(&Event::Apply(s.clone()));
        s
    }

    fn refresh_eip(&mut self, name: &str) -> Eip {
        let e: Eip =
            serde_json::from_value(self.fake.get(&eip_path(name)).expect("eip")).expect("eip");
        self.eips.apply_watcher_event(&Event::Apply(e.clone()));
        e
    }

    async fn reconcile(&mut self, name: &str) {
        let s = self.refresh_service(name);
        reconcile_service(Arc::new(s), self.ctx.clone())
            .await
            .expect("reconcile");
        // Deliver the writes to the Eip cache, as the watch would.
        let names = self.eip_names.clone();
        for n in names {
            self.refresh_eip(&n);
        }
    }

    fn ingress(&self, name: &str) -> Vec<String> {
        self.fake
            .get(&svc_path("shop", name))
            .and_then(|s| s["status"]["loadBalancer"]["ingress"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i["ip"].as_str().map(str::to_string))
            .collect()
    }

    fn events(&self) -> Vec<(String, String, String)> {
        calls_to(&self.fake.calls(), &Method::POST, "/events")
            .iter()
            .map(|c| {
                (
                    c.body["reason"].as_str().unwrap_or("").to_string(),
                    c.body["regarding"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    c.body["note"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn first_allocation_writes_finalizer_status_event_and_pool_status() {
    let mut w = World::new(
        &[eip("pool", "10.0.0.0/24")],
        &[service("web", 1, json!({}))],
    )
    .await;
    w.reconcile("web").await;
    let calls = w.fake.calls();
    // Finalizer first, by merge patch guarded by resourceVersion.
    let fin = calls_to(&calls, &Method::PATCH, "/services/web");
    assert_eq!(fin.len(), 1);
    assert_eq!(
        fin[0].body["metadata"]["finalizers"],
        json!(["berth.io/service-address"])
    );
    assert!(fin[0].body["metadata"]["resourceVersion"].is_string());
    // Status by server-side apply with the fixed field manager.
    let status = calls_to(&calls, &Method::PATCH, "/services/web/status");
    assert_eq!(status.len(), 1);
    assert!(
        status[0]
            .content_type
            .starts_with("application/apply-patch"),
        "{}",
        status[0].content_type
    );
    assert!(
        status[0].query.contains("fieldManager=berth-controller"),
        "{}",
        status[0].query
    );
    assert!(
        status[0].query.contains("force=true"),
        "{}",
        status[0].query
    );
    let fin_at = calls
        .iter()
        .position(|c| c.path.ends_with("/services/web"))
        .expect("fin");
    let status_at = calls
        .iter()
        .position(|c| c.path.ends_with("/web/status"))
        .expect("status");
    assert!(
        fin_at < status_at,
        "finalizer must precede the published address"
    );
    assert_eq!(w.ingress("web"), ["10.0.0.1"]);
    let events = w.events();
    assert!(
        events
            .iter()
            .any(|(r, n, m)| r == "AddressAllocated" && n == "web" && m.contains("10.0.0.1")),
        "{events:?}"
    );
    // The pool's status and finalizer.
    let pool = w.fake.get(&eip_path("pool")).expect("pool");
    assert_eq!(pool["status"]["usage"], 1);
    assert_eq!(pool["status"]["poolSize"], 254);
    assert_eq!(pool["status"]["used"]["10.0.0.1"], "shop/web");
    assert_eq!(
        pool["metadata"]["finalizers"],
        json!(["berth.io/pool-in-use"])
    );

    // A second reconcile of the unchanged Service writes nothing.
    w.refresh_eip("pool");
    w.fake.clear_calls();
    w.reconcile("web").await;
    let writes: Vec<_> = w
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.method != Method::GET)
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn requested_address_is_honoured() {
    let s = service("web", 1, json!({"spec": {"loadBalancerIP": "10.0.0.42"}}));
    let mut w = World::new(&[eip("pool", "10.0.0.0/24")], &[s]).await;
    w.reconcile("web").await;
    assert_eq!(w.ingress("web"), ["10.0.0.42"]);
}

#[tokio::test]
async fn pool_exhaustion_is_a_warning_event_and_no_status() {
    let mut w = World::new(
        &[eip("tiny", "10.0.0.7")],
        &[service("a", 1, json!({})), service("b", 2, json!({}))],
    )
    .await;
    w.reconcile("a").await;
    w.reconcile("b").await;
    assert_eq!(w.ingress("a"), ["10.0.0.7"]);
    assert!(w.ingress("b").is_empty());
    let events = w.events();
    let failed: Vec<_> = events
        .iter()
        .filter(|(r, n, _)| r == "AllocationFailed" && n == "b")
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(failed[0].2.contains("exhausted"), "{}", failed[0].2);
    let post = calls_to(&w.fake.calls(), &Method::POST, "/events")
        .into_iter()
        .find(|c| c.body["reason"] == "AllocationFailed")
        .map(|c| c.body["type"].clone());
    assert_eq!(post, Some(json!("Warning")));
    assert!(calls_to(&w.fake.calls(), &Method::PATCH, "/services/b/status").is_empty());
}

#[tokio::test]
async fn conflicting_requests_second_is_refused() {
    let want =
        json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/v1alpha1": "10.0.0.9"}}});
    let mut w = World::new(
        &[eip("pool", "10.0.0.0/24")],
        &[
            service("first", 1, want.clone()),
            service("second", 2, want),
        ],
    )
    .await;
    w.reconcile("first").await;
    w.reconcile("second").await;
    assert_eq!(w.ingress("first"), ["10.0.0.9"]);
    assert!(w.ingress("second").is_empty());
    let events = w.events();
    assert!(
        events
            .iter()
            .any(|(r, n, m)| r == "AllocationFailed" && n == "second" && m.contains("shop/first")),
        "{events:?}"
    );
}

#[tokio::test]
async fn sharing_key_shares_one_address() {
    let shared = |port: u16| {
        json!({"metadata": {"annotations": {"metallb.io/allow-shared-ip": "front",
                                            "eip.openelb.kubesphere.io/v1alpha1": "10.0.0.20"}},
               "spec": {"ports": [{"port": port, "protocol": "TCP"}]}})
    };
    let mut w = World::new(
        &[eip("pool", "10.0.0.0/24")],
        &[
            service("http", 1, shared(80)),
            service("https", 2, shared(443)),
        ],
    )
    .await;
    w.reconcile("http").await;
    w.reconcile("https").await;
    assert_eq!(w.ingress("http"), ["10.0.0.20"]);
    assert_eq!(w.ingress("https"), ["10.0.0.20"]);
    let pool = w.fake.get(&eip_path("pool")).expect("pool");
    assert_eq!(pool["status"]["used"]["10.0.0.20"], "shop/http;shop/https");
    assert_eq!(pool["status"]["usage"], 1);
}

#[tokio::test]
async fn dual_stack_service_gets_both_families() {
    let s = service(
        "web",
        1,
        json!({"spec": {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]}}),
    );
    let mut w = World::new(
        &[eip("v4", "10.0.0.0/24"), eip("v6", "fd00::10-fd00::1f")],
        &[s],
    )
    .await;
    w.reconcile("web").await;
    assert_eq!(w.ingress("web"), ["10.0.0.1", "fd00::10"]);
    assert_eq!(
        w.fake.get(&eip_path("v6")).expect("v6")["status"]["usage"],
        1
    );
}

#[tokio::test]
async fn pool_deletion_waits_for_its_services() {
    let mut w = World::new(
        &[eip("pool", "10.0.0.0/24")],
        &[service("web", 1, json!({}))],
    )
    .await;
    w.reconcile("web").await;
    // The pool is deleted while in use: the finalizer holds it.
    let mut pool = w.fake.get(&eip_path("pool")).expect("pool");
    pool["metadata"]["deletionTimestamp"] = json!("2024-02-01T00:00:00Z");
    w.fake.put(&eip_path("pool"), pool);
    let e = w.refresh_eip("pool");
    w.fake.clear_calls();
    reconcile_eip(Arc::new(e), w.ctx.clone())
        .await
        .expect("reconcile eip");
    assert_eq!(
        w.fake.get(&eip_path("pool")).expect("pool")["metadata"]["finalizers"],
        json!(["berth.io/pool-in-use"])
    );
    assert!(
        w.events()
            .iter()
            .any(|(r, n, _)| r == "PoolInUse" && n == "pool")
    );
    // The Service goes: its address is released, its finalizer removed, then the pool's.
    let mut svc = w.fake.get(&svc_path("shop", "web")).expect("svc");
    svc["metadata"]["deletionTimestamp"] = json!("2024-02-01T00:00:01Z");
    w.fake.put(&svc_path("shop", "web"), svc);
    w.reconcile("web").await;
    let svc = w.fake.get(&svc_path("shop", "web")).expect("svc");
    assert_eq!(svc["metadata"]["finalizers"], json!([]));
    assert!(
        w.events()
            .iter()
            .any(|(r, n, _)| r == "AddressReleased" && n == "web")
    );
    assert_eq!(
        w.fake.get(&eip_path("pool")).expect("pool")["metadata"]["finalizers"],
        json!([])
    );
}

#[tokio::test]
async fn restart_with_1000_allocations_moves_nothing() {
    let mut services: Vec<Value> = (0..1000u32)
        .map(|i| {
            // Reverse order of addresses so a fresh allocation would differ.
            let n = 1000 - i;
            let mut s = service(&format!("s{i}"), i, json!({}));
            s["metadata"]["finalizers"] = json!(["berth.io/service-address"]);
            s["status"] = json!({"loadBalancer": {"ingress": [{"ip": format!("10.1.{}.{}", n / 250, n % 250 + 1)}]}});
            s
        })
        .collect();
    services.push(service("new", 5000, json!({})));
    let mut w = World::new(&[eip("pool", "10.1.0.0/16")], &services).await;
    let before: Vec<Vec<String>> = (0..1000).map(|i| w.ingress(&format!("s{i}"))).collect();
    for i in 0..1000 {
        w.reconcile(&format!("s{i}")).await;
    }
    w.reconcile("new").await;
    let calls = w.fake.calls();
    let status_writes: Vec<_> = calls
        .iter()
        .filter(|c| c.path.ends_with("/status") && c.path.contains("/services/"))
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(
        status_writes,
        [format!("{}/status", svc_path("shop", "new"))]
    );
    for (i, ips) in before.iter().enumerate() {
        assert_eq!(&w.ingress(&format!("s{i}")), ips, "s{i} moved");
    }
    let new_ip = w.ingress("new");
    assert_eq!(new_ip.len(), 1);
    assert!(!before.contains(&new_ip), "new Service got a taken address");
    assert_eq!(
        w.fake.get(&eip_path("pool")).expect("pool")["status"]["usage"],
        1001
    );
    assert!(
        !w.events()
            .iter()
            .any(|(r, n, _)| r == "AddressAllocated" && n != "new"),
        "an existing Service was re-allocated"
    );
}

fn elector(client: &kube::Client, who: &str) -> LeaderElector {
    LeaderElector::new(
        Api::namespaced(client.clone(), "berth-system"),
        "berth-controller",
        who,
        Duration::from_secs(15),
        Duration::from_secs(5),
    )
}

#[tokio::test]
async fn leader_hand_over() {
    let (client, fake) = FakeApi::start();
    let a = elector(&client, "a");
    let b = elector(&client, "b");
    let t0 = Timestamp::from_second(1_700_000_000).expect("t0");
    let at = |s: i64| {
        t0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(s))
            .expect("time")
    };
    assert!(a.try_lead(at(0)).await.expect("a creates"));
    assert!(!b.try_lead(at(1)).await.expect("b follows"));
    assert!(a.try_lead(at(5)).await.expect("a renews"));
    // b sees a's renew at 19 (on b's clock), so for b the lease runs until 34, whatever
    // renewTime a's clock wrote.
    assert!(!b.try_lead(at(19)).await.expect("lease still valid"));
    assert!(!b.try_lead(at(33)).await.expect("not yet expired for b"));
    // a stopped renewing; 15 s after b saw the last renew, b takes over.
    assert!(b.try_lead(at(35)).await.expect("b takes over"));
    assert!(!a.try_lead(at(36)).await.expect("a now follows"));
    let lease = fake
        .get("/apis/coordination.k8s.io/v1/namespaces/berth-system/leases/berth-controller")
        .expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    // A clean shutdown releases the lease: a takes over at once.
    b.release().await.expect("release");
    assert!(
        a.try_lead(at(23))
            .await
            .expect("a takes the released lease")
    );
}

#[tokio::test]
async fn racing_candidates_cannot_both_win() {
    let (client, _fake) = FakeApi::start();
    let t0 = Timestamp::from_second(1_700_000_000).expect("t0");
    let a = elector(&client, "a");
    let b = elector(&client, "b");
    let c = elector(&client, "c");
    assert!(a.try_lead(t0).await.expect("a"));
    let later = t0
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(60))
        .expect("later");
    let seen = t0
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
        .expect("seen");
    assert!(!b.try_lead(seen).await.expect("b follows"));
    assert!(!c.try_lead(seen).await.expect("c follows"));
    // Both find the lease expired; the server's resourceVersion check lets exactly one win.
    let (rb, rc) = tokio::join!(b.try_lead(later), c.try_lead(later));
    let winners = [rb.expect("b"), rc.expect("c")]
        .iter()
        .filter(|w| **w)
        .count();
    assert_eq!(winners, 1);
}

/// The whole controller (`cluster::run`) against the fake, never told to stop; `lease`
/// turns leader election on.
fn spawn_controller(
    client: kube::Client,
    lease: bool,
    metrics: &Metrics,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    use controller::cluster::{ClusterOptions, run};
    tokio::spawn(run(
        client,
        ClusterOptions {
            class: ClassConfig::default(),
            reporter: "berth-controller".into(),
            identity: "replica-1".into(),
            lease: lease.then(|| ("berth-system".into(), "berth-controller".into())),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        },
        metrics.clone(),
        std::future::pending(),
    ))
}

/// Waits (20 s at most) until `shop/web` holds `ip` in its status.
async fn wait_web_address(fake: &FakeApi, ip: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let svc = fake.get(&svc_path("shop", "web")).expect("svc");
        if svc["status"]["loadBalancer"]["ingress"][0]["ip"] == ip {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no allocation: {svc}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn whole_controller_leads_lists_and_allocates() {
    let (client, fake) = FakeApi::start();
    fake.put(&eip_path("pool"), eip("pool", "10.0.0.0/24"));
    fake.put(&svc_path("shop", "web"), service("web", 1, json!({})));
    fake.put(
        "/api/v1/namespaces/shop",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    );
    let metrics = Metrics::default();
    let task = spawn_controller(client, true, &metrics);
    wait_web_address(&fake, "10.0.0.1").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // Pool status is written by the coalescing writer shortly after.
    loop {
        let pool = fake.get(&eip_path("pool")).expect("pool");
        if pool["status"]["usage"] == 1 && pool["status"]["used"]["10.0.0.1"] == "shop/web" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pool status: {pool}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let lease = fake
        .get("/apis/coordination.k8s.io/v1/namespaces/berth-system/leases/berth-controller")
        .expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], "replica-1");
    assert!(metrics.render().contains("berth_allocations_total 1"));
}

/// Regression (issue 22): the Eip list answered after the Service list. Before, the first
/// Service reconcile waited on the Eip cache while holding the engine's lock, the Eip
/// controller waited on the same cache, kube-runtime woke only one of the two, and the
/// controller never allocated anything again.
#[tokio::test]
async fn eip_list_answered_late_still_allocates() {
    let (client, fake) = FakeApi::start();
    fake.put(&eip_path("pool"), eip("pool", "10.0.0.0/24"));
    fake.put(&svc_path("shop", "web"), service("web", 1, json!({})));
    fake.hold_lists("/eips");
    let metrics = Metrics::default();
    let task = spawn_controller(client, false, &metrics);
    // Evidence that the Service list was answered and the Eip list is the one outstanding.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !fake.calls().iter().any(|c| c.path == "/api/v1/services") {
        assert!(tokio::time::Instant::now() < deadline, "no Service list");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    fake.release_lists();
    wait_web_address(&fake, "10.0.0.1").await;
    task.abort();
    assert!(metrics.render().contains("berth_allocations_total 1"));
}

#[tokio::test]
async fn clock_skew_does_not_make_two_leaders() {
    let (client, _fake) = FakeApi::start();
    let t0 = Timestamp::from_second(1_700_000_000).expect("t0");
    let at = |s: i64| {
        t0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(s))
            .expect("time")
    };
    let a = elector(&client, "a");
    let b = elector(&client, "b");
    // a's clock runs 1000 s behind b's: its renewTime looks long expired to b.
    assert!(a.try_lead(at(-1000)).await.expect("a creates"));
    assert!(!b.try_lead(at(0)).await.expect("b must not take over"));
    assert!(a.try_lead(at(-995)).await.expect("a renews"));
    assert!(!b.try_lead(at(10)).await.expect("b still follows"));
}

#[tokio::test]
async fn class_change_releases_clears_status_and_finalizer() {
    let mut w = World::new(
        &[eip("pool", "10.0.0.0/24")],
        &[service("web", 1, json!({}))],
    )
    .await;
    w.reconcile("web").await;
    assert_eq!(w.ingress("web"), ["10.0.0.1"]);
    let mut svc = w.fake.get(&svc_path("shop", "web")).expect("svc");
    svc["spec"]["loadBalancerClass"] = json!("other.example/lb");
    w.fake.put(&svc_path("shop", "web"), svc);
    w.fake.clear_calls();
    w.reconcile("web").await;
    let calls = w.fake.calls();
    let status = calls_to(&calls, &Method::PATCH, "/services/web/status");
    assert_eq!(status.len(), 1);
    assert_eq!(
        status[0].body["status"]["loadBalancer"]["ingress"],
        json!([])
    );
    let svc = w.fake.get(&svc_path("shop", "web")).expect("svc");
    assert_eq!(svc["metadata"]["finalizers"], json!([]));
    assert!(
        w.events()
            .iter()
            .any(|(r, n, _)| r == "AddressReleased" && n == "web")
    );
    let pool = w.fake.get(&eip_path("pool")).expect("pool");
    assert_eq!(pool["status"]["usage"], 0);
    assert_eq!(pool["metadata"]["finalizers"], json!([]));
}
