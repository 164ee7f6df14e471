//! Moving a cluster from OpenELB to Berth on a real control plane (issue 13 item 6): CRDs in
//! OpenELB's shape (`testbed/openelb/crds/`: group `network.kubesphere.io`, cluster-scoped,
//! v1alpha1 and v1alpha2 served, v1alpha2 stored, no conversion webhook) and the objects of a
//! cluster that ran OpenELB (`testbed/openelb/in-cluster.yaml`) come first; Berth's
//! `deploy/crds` are then server-side applied over them, the way docs/migrating-from-openelb.md
//! says, and each test checks what that guide promises:
//!
//! - after the guide's step 3b (OpenELB's status dropped, every object rewritten without the
//!   managedFields entries recorded under v1alpha1), every Eip, BgpConf and BgpPeer keeps its
//!   uid and its spec, read as v1alpha2, and Berth's controller and speaker serve them (an
//!   OpenELB-annotated Service gets its address from an OpenELB Eip, the Eips' status is
//!   Berth's, the router learns the VIPs);
//! - Eips still stored as v1alpha1 (a PorterLB-era CRD) make the API server refuse Berth's CRD
//!   until they are rewritten and v1alpha1 leaves `status.storedVersions`; dropping it from
//!   `storedVersions` without the rewrite makes every read of the kind fail; an object ever
//!   written as v1alpha1 refuses server-side apply (Berth's status writes) under Berth's CRD
//!   until step 3b's rewrite; the guide's recovery from each of these works.
//!
//! Reads go through the admin's HTTPS client ([`ControlPlane::get`]) or `kubectl` with
//! fully qualified resource names (kubectl's discovery cache may still name a version the
//! CRD no longer serves). Needs root, the control plane (`BERTH_CONTROLPLANE_BIN`; `./test.sh`
//! builds it) and, for the first test, BIRD and the workspace's binaries (`cargo build
//! --workspace --bins`): ignored by plain `cargo test`, run by `./test.sh` or `cargo test -p
//! testbed --test kube_migration -- --include-ignored`; without them they fail, never skip.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

#[path = "../common/mod.rs"]
mod common;

mod apiserver;
mod daemon;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use testbed::Lab;
use testbed::k8s::{ControlPlane, ControlPlaneConfig};
use testbed::router::Router;
use testbed::router::bird::Bird;

use apiserver::*;
use common::{link_addresses, router_config, star};
use daemon::Daemon;

/// The control plane's address on the management bridge.
const CP_ADDRESS: &str = "10.99.0.1";
/// Node n1's address on it.
const N1_MGMT: &str = "10.99.0.11";
/// Where the speaker serves its admin API and its metrics inside n1.
const SPEAKER_ADMIN: &str = "127.0.0.1:7473";
const SPEAKER_METRICS: &str = "127.0.0.1:7472";
/// The API server's refusal of a CRD update that drops a version still in storedVersions
/// (kube-apiserver 1.37.2).
const STORED_VERSION_REFUSAL: &str = "The CustomResourceDefinition \"eips.network.kubesphere.io\" \
     is invalid: status.storedVersions[0]: Invalid value: \"v1alpha1\": missing from \
     spec.versions; v1alpha1 was previously a storage version, and must remain in \
     spec.versions until a storage migration ensures no data remains persisted in v1alpha1 \
     and removes v1alpha1 from status.storedVersions";
/// What a server-side apply to an object with a managedFields entry recorded under v1alpha1
/// fails with once the CRD no longer lists v1alpha1 (the API server would convert the object
/// to v1alpha1 to work out that manager's fields).
const APPLY_REFUSAL: &str =
    "request to convert CR to an invalid group/version: network.kubesphere.io/v1alpha1";
/// The guide's way to make v1alpha1 objects readable again: v1alpha1 back in the CRD, served,
/// not stored, any schema.
const V1ALPHA1_BACK: &str = r#"[{"op":"add","path":"/spec/versions/-","value":{"name":"v1alpha1","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}]"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn openelb(file: &str) -> String {
    repo()
        .join("testbed/openelb")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

fn berth_crds() -> String {
    repo().join("deploy/crds").to_string_lossy().into_owned()
}

fn berth_crds_file(kind: &str) -> String {
    repo()
        .join(format!("deploy/crds/{kind}.yaml"))
        .to_string_lossy()
        .into_owned()
}

/// A lab namespace `cp` on bridge `mgmt` at [`CP_ADDRESS`], holding a control plane without
/// kube-controller-manager (nothing here needs it).
fn control_plane(lab: &mut Lab) -> ControlPlane {
    lab.add_namespace("cp").unwrap();
    lab.add_bridge("mgmt").unwrap();
    lab.attach("mgmt", ("cp", "eth0")).unwrap();
    lab.add_address("cp", "eth0", format!("{CP_ADDRESS}/24").parse().unwrap())
        .unwrap();
    let mut config = ControlPlaneConfig::new(CP_ADDRESS.parse().unwrap());
    config.controller_manager = false;
    ControlPlane::start(lab.netns("cp").unwrap(), config)
        .unwrap_or_else(|e| panic!("control plane: {e}"))
}

/// The OpenELB objects survive Berth's CRDs unchanged, and Berth serves them: OpenELB was
/// installed by Helm, so the server-side apply of Berth's CRDs conflicts on `.spec.versions`
/// until it is forced; every Eip, BgpConf and BgpPeer (one Eip written as v1alpha1) keeps its
/// uid and spec, but for the `enabled: false` Berth's schema fills in where an object left it
/// out ([`DEFAULTED_ON_READ`]); v1alpha1 is no longer served. Berth's controller keeps the
/// address OpenELB gave a Service, gives an OpenELB-annotated Service an address from the
/// OpenELB Eip it names, and rewrites both Eips' status (one of them stale, as OpenELB left
/// it); the speaker, configured by the OpenELB BgpConf and BgpPeer, brings both VIPs to the
/// router; no spec changed after all that.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn openelb_objects_survive_berth_crds_and_berth_serves_them() {
    let mut lab = star("migrate-serve", 1);
    let cp = control_plane(&mut lab);
    lab.attach("mgmt", ("n1", "mgmt")).unwrap();
    lab.add_address("n1", "mgmt", format!("{N1_MGMT}/24").parse().unwrap())
        .unwrap();

    // OpenELB as its Helm chart installs it: CRDs created by the "helm" field manager.
    for kind in KINDS {
        kubectl(
            &cp,
            &[
                "create",
                "--field-manager=helm",
                "-f",
                &openelb(&format!("crds/{kind}.yaml")),
            ],
        );
    }
    wait_established(&cp);
    kubectl(&cp, &["apply", "-f", &openelb("in-cluster.yaml")]);
    let (_, n4, _, _) = link_addresses(1);
    for (target, status) in [
        (
            vec!["node", "n1"],
            json!({"addresses": [{"type": "InternalIP", "address": n4.to_string()}],
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                   "message": "test"}]}),
        ),
        // What OpenELB wrote: the Service's address, and the pool's accounting, stale (a
        // Service deleted while OpenELB's controller was down): Berth must rewrite it.
        (
            vec!["service", "legacy", "-n", "web"],
            json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.96"}]}}),
        ),
        (
            vec!["eips.v1alpha2.network.kubesphere.io", "eip-pool"],
            json!({"occupied": false, "usage": 2, "poolSize": 16,
                   "used": {"10.0.0.96": "web/legacy", "10.0.0.97": "web/gone"},
                   "firstIP": "10.0.0.96", "lastIP": "10.0.0.111", "ready": true, "v4": true}),
        ),
    ] {
        let patch = json!({ "status": status }).to_string();
        let mut args = vec!["patch"];
        args.extend(target);
        args.extend(["--subresource=status", "--type=merge", "-p", &patch]);
        kubectl(&cp, &args);
    }
    let before = openelb_objects(&cp);
    assert_eq!(before.len(), 6, "{before:#?}");
    let expected = with_berth_defaults(&before);
    let v1alpha1 = get_ok(&cp, "/apis/network.kubesphere.io/v1alpha1/eips/eip-pool");
    assert_eq!(v1alpha1["spec"]["address"], "10.0.0.96/28", "{v1alpha1}");
    for kind in KINDS {
        assert_eq!(
            crd_versions(&cp, kind),
            (
                vec!["v1alpha1".to_string(), "v1alpha2".to_string()],
                vec!["v1alpha2".to_string()],
                "None".to_string()
            ),
            "{kind}: OpenELB's CRD is not as the test means it"
        );
    }

    // The guide's step 3b. OpenELB's status goes (or its stale `used` entry would stay next
    // to Berth's). eip-pool, written as v1alpha1, carries a managedFields entry under
    // v1alpha1: without the rewrite, every server-side apply to it (Berth's status writes)
    // would fail once Berth's CRD is in. No spec changes, and nothing is stored as v1alpha1.
    assert_eq!(
        v1alpha1_managers(&cp, "eips", "eip-pool"),
        ["kubectl-client-side-apply"]
    );
    for kind in KINDS {
        clear_status(&cp, kind);
        rewrite_for_berth(&cp, kind);
    }
    assert!(v1alpha1_managers(&cp, "eips", "eip-pool").is_empty());
    let pool = get_ok(&cp, "/apis/network.kubesphere.io/v1alpha2/eips/eip-pool");
    assert!(pool.get("status").is_none(), "{pool}");
    assert_unchanged(&before, &openelb_objects(&cp));

    // Berth's CRDs: refused while Helm owns `.spec.versions`, taken over with --force-conflicts.
    let switched = Instant::now();
    let conflict = kubectl_refused(&cp, &["apply", "--server-side", "-f", &berth_crds()]);
    assert!(
        conflict.contains(
            "Apply failed with 1 conflict: conflict with \"helm\" using apiextensions.k8s.io/v1: \
             .spec.versions"
        ),
        "{conflict}"
    );
    println!("server-side apply over Helm's CRDs, refused:\n{conflict}");
    kubectl(
        &cp,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &berth_crds(),
        ],
    );
    for kind in KINDS {
        assert_eq!(
            crd_versions(&cp, kind),
            (
                vec!["v1alpha2".to_string()],
                vec!["v1alpha2".to_string()],
                "None".to_string()
            ),
            "{kind}: not Berth's CRD"
        );
    }
    wait_status(
        &cp,
        "/apis/network.kubesphere.io/v1alpha1/eips/eip-pool",
        404,
    );
    wait_established(&cp);
    assert_unchanged(&expected, &openelb_objects(&cp));
    println!(
        "Berth's CRDs in place, every object unchanged, {:?} after the first apply",
        switched.elapsed()
    );

    // Berth itself.
    for file in ["deploy/namespace.yaml", "deploy/rbac"] {
        kubectl(
            &cp,
            &[
                "apply",
                "--server-side",
                "-f",
                &repo().join(file).to_string_lossy(),
            ],
        );
    }
    let controller_kubeconfig = cp
        .service_account_kubeconfig("berth-system", "berth-controller")
        .unwrap();
    let speaker_kubeconfig = cp
        .service_account_kubeconfig("berth-system", "berth-speaker")
        .unwrap();
    let router = Bird::start(lab.netns("r").unwrap(), &router_config(1)).unwrap();
    let n1 = lab.netns("n1").unwrap();
    let marker = n1.dir().unwrap().join("restart-marker");
    let speaker_args: Vec<String> = [
        "--node-name",
        "n1",
        "--admin-addr",
        SPEAKER_ADMIN,
        "--metrics-addr",
        SPEAKER_METRICS,
        "--drain-seconds",
        "0",
        "--log-format",
        "json",
        "--restart-marker",
        &marker.to_string_lossy(),
    ]
    .iter()
    .map(|a| (*a).to_string())
    .collect();
    let speaker = Daemon::start(n1, "berth-speaker", &speaker_args, &speaker_kubeconfig);
    let controller_args: Vec<String> = [
        "--identity",
        "replica-1",
        "--lease-namespace",
        "berth-system",
        "--metrics-addr",
        "127.0.0.1:9091",
        "--log-format",
        "json",
    ]
    .iter()
    .map(|a| (*a).to_string())
    .collect();
    let started = Instant::now();
    let controller = Daemon::start(
        lab.netns("cp").unwrap(),
        "berth-controller",
        &controller_args,
        &controller_kubeconfig,
    );
    let logs = || format!("{}\n{}", controller.log_tail(), speaker.log_tail());

    let fresh = testbed::wait::until("an address for shop/fresh", TIMEOUT, || {
        Ok(ingress(&cp, "shop", "fresh").first().copied())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    println!(
        "shop/fresh got {fresh} {:?} after the controller started",
        started.elapsed()
    );
    let range = 200..=210;
    assert!(
        matches!(fresh, IpAddr::V4(v4) if v4.octets()[..3] == [10, 0, 0] && range.contains(&v4.octets()[3])),
        "{fresh} is not from eip-range"
    );
    let status_of = |name: &str| {
        get_ok(
            &cp,
            &format!("/apis/network.kubesphere.io/v1alpha2/eips/{name}"),
        )["status"]
            .clone()
    };
    testbed::wait::until("Berth's status in both Eips", TIMEOUT, || {
        Ok(
            (status_of("eip-range")["used"] == json!({ fresh.to_string(): "shop/fresh" })
                && status_of("eip-range")["usage"] == 1
                && status_of("eip-pool")["used"] == json!({"10.0.0.96": "web/legacy"})
                && status_of("eip-pool")["usage"] == 1)
                .then_some(()),
        )
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\neip-pool {}\neip-range {}\n{}",
            status_of("eip-pool"),
            status_of("eip-range"),
            logs()
        )
    });
    println!(
        "Eip status written {:?} after the controller started: eip-pool {}, eip-range {}",
        started.elapsed(),
        status_of("eip-pool"),
        status_of("eip-range")
    );
    assert_eq!(
        ingress(&cp, "web", "legacy"),
        vec!["10.0.0.96".parse::<IpAddr>().unwrap()],
        "the address OpenELB gave web/legacy moved"
    );
    for vip in [fresh, "10.0.0.96".parse().unwrap()] {
        let prefix = ipnetwork::IpNetwork::new(vip, 32).unwrap();
        testbed::wait::until(
            &format!("{vip} via n1 in the router's FIB"),
            TIMEOUT,
            || Ok(router.fib()?.gateways(prefix).contains(&n4).then_some(())),
        )
        .unwrap_or_else(|e| panic!("{e}\nFIB: {:?}\n{}", router.fib(), logs()));
    }
    println!(
        "both VIPs in the router's FIB via n1 {:?} after the controller started",
        started.elapsed()
    );
    assert_unchanged(&expected, &openelb_objects(&cp));
    for daemon in [&controller, &speaker] {
        assert!(
            !daemon.log().contains("invalid group/version"),
            "a write was refused for a v1alpha1 leftover:\n{}",
            daemon.log_tail()
        );
    }
}

/// Eips stored as v1alpha1 (a cluster whose Eip CRD dates from PorterLB, v1alpha1 only) keep
/// v1alpha1 in `status.storedVersions` after OpenELB's CRD upgrade, and the API server refuses
/// Berth's CRD (v1alpha2 only) with [`STORED_VERSION_REFUSAL`]; the other two CRDs are taken
/// over (kubectl's server-side apply takes the fields of its own client-side apply: no
/// conflict). Dropping v1alpha1 from storedVersions without rewriting the objects lets Berth's
/// CRD in, and every LIST of Eips, and every GET of an Eip stored as v1alpha1, fails
/// ([`UNDECODABLE`]). Putting v1alpha1 back in the CRD ([`V1ALPHA1_BACK`]) makes them readable;
/// a plain rewrite (`kubectl get … -o json | kubectl replace -f -`) then stores them as
/// v1alpha2, so Berth's CRD can go in (with `--force-conflicts`: the JSON patch made
/// `kubectl-patch` an owner of `.spec.versions`) and they read and take merge patches, but
/// server-side applies to Eips ever written as v1alpha1 still fail ([`APPLY_REFUSAL`]) until
/// the guide's rewrite drops their managedFields entries recorded under v1alpha1. A v1alpha1
/// manifest finds no Eip kind. Every Eip keeps its uid and spec throughout.
#[test]
#[ignore = "needs root, network namespaces and the test control plane: ./test.sh runs it"]
fn eips_stored_as_v1alpha1_block_berth_crds_until_rewritten() {
    let mut lab = Lab::new("migrate-storage").unwrap();
    let cp = control_plane(&mut lab);

    // PorterLB's Eip CRD and an Eip stored under it.
    kubectl(&cp, &["apply", "-f", &openelb("crds/porterlb/eips.yaml")]);
    kubectl(
        &cp,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/eips.network.kubesphere.io",
        ],
    );
    let eip = |name: &str, address: &str| {
        format!(
            "apiVersion: network.kubesphere.io/v1alpha1\nkind: Eip\nmetadata: {{name: {name}}}\n\
             spec: {{address: \"{address}\", protocol: bgp}}\n"
        )
    };
    kubectl_in(
        &cp,
        &["apply", "-f", "-"],
        Some(&eip("porter-pool", "10.0.0.96/28")),
    );
    // OpenELB's `kubectl apply -f openelb.yaml`, then an Eip written as v1alpha1 under it.
    kubectl(&cp, &["apply", "-f", &openelb("crds")]);
    wait_established(&cp);
    wait_status(&cp, "/apis/network.kubesphere.io/v1alpha2/eips", 200);
    kubectl_in(
        &cp,
        &["apply", "-f", "-"],
        Some(&eip("openelb-pool", "10.0.1.0/28")),
    );
    let (_, stored, _) = crd_versions(&cp, "eips");
    assert_eq!(stored, ["v1alpha1", "v1alpha2"]);
    let before = openelb_objects(&cp);
    assert_eq!(before.len(), 2, "{before:#?}");

    // Berth's CRDs: eips refused, the others taken over.
    let refusal = kubectl_refused(&cp, &["apply", "--server-side", "-f", &berth_crds()]);
    assert!(refusal.contains(STORED_VERSION_REFUSAL), "{refusal}");
    println!("Berth's eips CRD refused:\n{refusal}");
    assert_eq!(
        crd_versions(&cp, "eips").0,
        ["v1alpha1", "v1alpha2"],
        "the refused CRD changed"
    );
    for kind in ["bgpconfs", "bgppeers"] {
        assert_eq!(crd_versions(&cp, kind).0, ["v1alpha2"], "{kind}");
    }

    // The shortcut: storedVersions cut without rewriting. Berth's CRD goes in; reads fail.
    let patch_stored = [
        "patch",
        "crd",
        "eips.network.kubesphere.io",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"storedVersions":["v1alpha2"]}}"#,
    ];
    kubectl(&cp, &patch_stored);
    kubectl(&cp, &["apply", "--server-side", "-f", &berth_crds()]);
    wait_status(&cp, "/apis/network.kubesphere.io/v1alpha1/eips", 404);
    assert_undecodable(&cp, "/apis/network.kubesphere.io/v1alpha2/eips");
    assert_undecodable(&cp, "/apis/network.kubesphere.io/v1alpha2/eips/porter-pool");
    let asked = Instant::now();
    let listed = kubectl_refused(&cp, &["get", "eips.v1alpha2.network.kubesphere.io"]);
    assert!(listed.contains(UNDECODABLE), "{listed}");
    println!(
        "kubectl get eips after the shortcut, {:?}:\n{listed}",
        asked.elapsed()
    );
    let (status, _) = get(
        &cp,
        "/apis/network.kubesphere.io/v1alpha2/eips/openelb-pool",
    );
    assert_eq!(
        status, 200,
        "an Eip written under OpenELB's CRD is stored as v1alpha2"
    );

    // v1alpha1 back in the CRD (served, not stored, any schema): readable again.
    let recovered = Instant::now();
    kubectl(
        &cp,
        &[
            "patch",
            "crd",
            "eips.network.kubesphere.io",
            "--type=json",
            "-p",
            V1ALPHA1_BACK,
        ],
    );
    wait_status(&cp, "/apis/network.kubesphere.io/v1alpha1/eips", 200);
    assert_unchanged(&before, &openelb_objects(&cp));

    // A plain rewrite stores every Eip as v1alpha2: Berth's CRD goes in and they read, but
    // server-side apply still fails on both (each has a v1alpha1 managedFields entry).
    let list = kubectl(
        &cp,
        &["get", "eips.v1alpha2.network.kubesphere.io", "-o", "json"],
    );
    kubectl_in(&cp, &["replace", "-f", "-"], Some(&list));
    kubectl(&cp, &patch_stored);
    let conflict = kubectl_refused(
        &cp,
        &["apply", "--server-side", "-f", &berth_crds_file("eips")],
    );
    assert!(
        conflict.contains(
            "conflict with \"kubectl-patch\" using apiextensions.k8s.io/v1: .spec.versions"
        ),
        "{conflict}"
    );
    kubectl(
        &cp,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &berth_crds(),
        ],
    );
    for kind in KINDS {
        assert_eq!(
            crd_versions(&cp, kind),
            (
                vec!["v1alpha2".to_string()],
                vec!["v1alpha2".to_string()],
                "None".to_string()
            ),
            "{kind}: not Berth's CRD"
        );
    }
    wait_status(&cp, "/apis/network.kubesphere.io/v1alpha1/eips", 404);
    assert_unchanged(&before, &openelb_objects(&cp));
    for name in ["porter-pool", "openelb-pool"] {
        assert_eq!(
            v1alpha1_managers(&cp, "eips", name),
            ["kubectl-client-side-apply"],
            "{name}"
        );
        // A merge patch goes through (it is how Berth sets finalizers)...
        kubectl(
            &cp,
            &[
                "patch",
                "eips.v1alpha2.network.kubesphere.io",
                name,
                "--type=merge",
                "-p",
                r#"{"metadata":{"labels":{"migrated":"yes"}}}"#,
            ],
        );
        // ...a server-side apply (how Berth writes status) does not.
        let output = apply_eip_status(&cp, name);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(APPLY_REFUSAL),
            "status apply to {name}: {}\n{stderr}",
            output.status
        );
        println!("status apply to {name} refused: {}", stderr.trim());
    }

    // The guide's rewrite: the v1alpha1 entries go, server-side apply works.
    rewrite_for_berth(&cp, "eips");
    for name in ["porter-pool", "openelb-pool"] {
        assert!(v1alpha1_managers(&cp, "eips", name).is_empty(), "{name}");
        let output = apply_eip_status(&cp, name);
        assert!(
            output.status.success(),
            "status apply to {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_unchanged(&before, &openelb_objects(&cp));

    // A manifest still written as v1alpha1 (kubectl with fresh discovery, no cache).
    let cache = lab.dir().join("kubectl-cache");
    let output = kubectl_raw(
        &cp,
        &["--cache-dir", &cache.to_string_lossy(), "apply", "-f", "-"],
        Some(&eip("gitops-pool", "10.0.2.0/28")),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains(
                "no matches for kind \"Eip\" in version \"network.kubesphere.io/v1alpha1\""
            ),
        "{stderr}"
    );
    println!("a v1alpha1 manifest: {}", stderr.trim());
    println!(
        "recovered: every Eip read and written as v1alpha2 with its spec, {:?} after v1alpha1 \
         came back",
        recovered.elapsed()
    );
}
