//! Least privilege, enforced in both directions (issue 13 item 2). The in-cluster tests fail
//! on any 403 in a daemon's log, so the shipped RBAC is enough; this test shows it is not
//! more than enough: kube-apiserver audits every request (level `Metadata`), Berth goes
//! through a representative life cycle, and every (API group, resource, verb) that
//! `deploy/rbac` grants `berth-controller` or `berth-speaker` must show up in the audit log
//! as a request by that ServiceAccount, unless it is in [`RARELY_USED`] with the reason.
//! No request of either account may be refused.
//!
//! Needs root and the control plane (`./test.sh` builds it; `BERTH_CONTROLPLANE_BIN` names
//! it): without them it fails, it never skips.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::kube::{APP_NS, Cluster, DaemonChecks, TIMEOUT};
use serde::Deserialize;
use serde_json::Value;
use testbed::incluster::{self, NAMESPACE};

/// Grants that a life cycle in a test cannot be counted on to use, each with the code path
/// that needs it: `(account, API group, resource, verb, why)`. Anything granted, unused and
/// not listed here fails the test: remove the grant or say here why it stays.
const RARELY_USED: &[(&str, &str, &str, &str, &str)] = &[
    (
        "berth-controller",
        "",
        "services",
        "get",
        "controller/src/cluster/apply.rs `finalizer`: when the finalizer merge patch (guarded by \
         resourceVersion) meets a conflict, the Service is read afresh and patched once more; \
         a conflict needs someone else's write between the cache and the patch",
    ),
    (
        "berth-controller",
        "network.kubesphere.io",
        "eips",
        "get",
        "controller/src/cluster/apply.rs `finalizer`: the same conflict path for an Eip's \
         in-use finalizer",
    ),
];

/// The ServiceAccounts under test.
const ACCOUNTS: [&str; 2] = ["berth-controller", "berth-speaker"];

/// One thing a Role or ClusterRole allows a ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    /// `berth-controller` or `berth-speaker`.
    account: String,
    /// The API group (`""` for the core group).
    group: String,
    /// `resource` or `resource/subresource`.
    resource: String,
    verb: String,
    /// `Some(namespace)` for a Role's grant.
    namespace: Option<String>,
    /// A rule's `resourceNames` (empty: any name).
    names: Vec<String>,
    /// Where it comes from: `ClusterRole/berth-speaker`.
    role: String,
}

/// One request from the audit log.
#[derive(Debug, Clone)]
struct Request {
    audit_id: String,
    user: String,
    verb: String,
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    code: Option<u64>,
    uri: String,
}

impl Grant {
    fn covers(&self, r: &Request) -> bool {
        r.user == user(&self.account)
            && r.group == self.group
            && r.resource == self.resource
            && r.verb == self.verb
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| r.namespace.as_ref() == Some(ns))
            && (self.names.is_empty() || r.name.as_ref().is_some_and(|n| self.names.contains(n)))
    }

    fn label(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        let mut label = format!("{group} {} {}", self.resource, self.verb);
        if let Some(ns) = &self.namespace {
            label.push_str(&format!(" (in {ns})"));
        }
        if !self.names.is_empty() {
            label.push_str(&format!(" (names {})", self.names.join(",")));
        }
        label
    }
}

/// The audit log's username of a Berth ServiceAccount.
fn user(account: &str) -> String {
    format!("system:serviceaccount:{NAMESPACE}:{account}")
}

/// Every grant the files in `deploy/rbac` give Berth's ServiceAccounts, through their
/// bindings.
fn grants(dir: &Path) -> Vec<Grant> {
    let mut objects: Vec<Value> = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).unwrap();
            if !value.is_null() {
                objects.push(value);
            }
        }
    }
    let role = |kind: &str, name: &str, ns: Option<&str>| {
        objects
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"] == name
                    && o["metadata"]["namespace"].as_str() == ns
            })
            .unwrap_or_else(|| panic!("{kind}/{name} is bound but not in {}", dir.display()))
    };
    let mut out = Vec::new();
    for binding in &objects {
        let kind = binding["kind"].as_str().unwrap_or("");
        if kind != "ClusterRoleBinding" && kind != "RoleBinding" {
            continue;
        }
        let namespace = binding["metadata"]["namespace"].as_str();
        let role_kind = binding["roleRef"]["kind"].as_str().unwrap();
        let role_name = binding["roleRef"]["name"].as_str().unwrap();
        let rules = &role(
            role_kind,
            role_name,
            if role_kind == "Role" { namespace } else { None },
        )["rules"];
        for subject in binding["subjects"].as_array().unwrap() {
            let account = subject["name"].as_str().unwrap();
            assert_eq!(subject["kind"], "ServiceAccount", "{binding}");
            assert_eq!(subject["namespace"], NAMESPACE, "{binding}");
            for rule in rules.as_array().unwrap() {
                let list = |field: &str| -> Vec<String> {
                    rule[field]
                        .as_array()
                        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                        .unwrap_or_default()
                };
                for group in list("apiGroups") {
                    for resource in list("resources") {
                        for verb in list("verbs") {
                            out.push(Grant {
                                account: account.to_string(),
                                group: group.clone(),
                                resource: resource.clone(),
                                verb,
                                namespace: namespace.map(str::to_string),
                                names: list("resourceNames"),
                                role: format!("{role_kind}/{role_name}"),
                            });
                        }
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// The requests in the audit log at `path` (each once, though a watch is logged when it
/// starts and when it ends).
fn requests(path: &Path) -> Vec<Request> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the audit log {}: {e}", path.display()));
    let mut by_id: BTreeMap<String, Request> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let e: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("an audit line that is not JSON ({err}): {line}"));
        let object = &e["objectRef"];
        let mut resource = object["resource"].as_str().unwrap_or("").to_string();
        if let Some(sub) = object["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        let request = Request {
            audit_id: e["auditID"].as_str().unwrap_or("").to_string(),
            user: e["user"]["username"].as_str().unwrap_or("").to_string(),
            verb: e["verb"].as_str().unwrap_or("").to_string(),
            group: object["apiGroup"].as_str().unwrap_or("").to_string(),
            resource,
            namespace: object["namespace"].as_str().map(str::to_string),
            name: object["name"].as_str().map(str::to_string),
            code: e["responseStatus"]["code"].as_u64(),
            uri: e["requestURI"].as_str().unwrap_or("").to_string(),
        };
        // The later stage (ResponseComplete) replaces the earlier one: it has the final code.
        by_id.insert(request.audit_id.clone(), request);
    }
    by_id.into_values().collect()
}

/// The Service `name` in [`APP_NS`] asking for the pool `pool` (which may not exist).
fn service_in_pool(name: &str, pool: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: {APP_NS}\n  name: {name}\n  \
         annotations:\n    lb.kubesphere.io/v1alpha1: openelb\n    \
         eip.openelb.kubesphere.io/v1alpha2: {pool}\nspec:\n  type: LoadBalancer\n  \
         ports: [{{port: 80, targetPort: 8080, protocol: TCP}}]\n"
    )
}

/// Waits until the audit log shows `account` doing `verb` on `resource` at least `times`
/// times (best effort: the final comparison reports what is missing).
fn wait_audited(cluster: &Cluster, account: &str, verb: &str, resource: &str, times: usize) {
    let path = cluster.cp.audit_log_path().unwrap();
    let who = user(account);
    let seen = testbed::wait::until(
        &format!("{account} to {verb} {resource} {times} times"),
        TIMEOUT,
        || {
            let count = requests(&path)
                .iter()
                .filter(|r| r.user == who && r.verb == verb && r.resource == resource)
                .count();
            Ok((count >= times).then_some(()))
        },
    );
    if let Err(e) = seen {
        println!("  (not seen: {e})");
    }
}

/// Berth's life cycle with auditing on; then every grant is checked against the requests.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn every_granted_verb_is_used_and_no_request_is_refused() {
    let started = Instant::now();
    let cluster = Cluster::start_with("kube-rbac", 1, |config| config.audit = true);

    // A second peer of n1 whose MD5 password comes from a Secret (its neighbour never
    // answers; it is there so the speaker resolves a Secret reference).
    cluster
        .cp
        .apply(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: bgp-md5, namespace: {NAMESPACE}}}\n\
             stringData: {{password: lab-secret}}\n---\n\
             apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: md5-n1}}\n\
             spec:\n  conf: {{peerAs: 65000, neighborAddress: \"10.1.1.99\"}}\n  \
             authPasswordSecretRef: {{name: bgp-md5, namespace: {NAMESPACE}, key: password}}\n  \
             nodeSelector: {{matchLabels: {{kubernetes.io/hostname: n1}}}}\n"
        ))
        .unwrap();

    // Controller: Lease create/get/update, Services watched, finalizers added, addresses
    // allocated (status), the pool's status written, Events created.
    cluster.create_service("before");
    let mut speaker = cluster.speaker(1);
    let mut controller = cluster.controller(1);
    let (before, _) = cluster.wait_address("before", &mut [&mut controller]);
    cluster.wait_router(before, 1, true, &speaker);
    cluster.create_service("after");
    let (after, _) = cluster.wait_address("after", &mut [&mut controller]);
    cluster.wait_router(after, 1, true, &speaker);
    testbed::wait::until("the Eip status to count 2", TIMEOUT, || {
        Ok((cluster.pool_status()["usage"] == 2).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", cluster.pool_status()));

    // Layer 2: a layer2 pool and a Service of it with a ready endpoint on n1. The speaker
    // writes its own entry of the pool and, as its only live member, the pool's owners and
    // Layer2Answered condition (eips/status patch).
    cluster
        .cp
        .apply(&format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: l2}}\n\
             spec: {{address: 10.99.0.200-10.99.0.201, protocol: layer2, interface: mgmt}}\n---\n\
             {}---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: {APP_NS}\n  \
             name: l2-web-1\n  labels: {{kubernetes.io/service-name: l2-web}}\naddressType: IPv4\n\
             ports: [{{port: 8080, protocol: TCP}}]\n\
             endpoints:\n- addresses: [10.244.1.5]\n  nodeName: n1\n  conditions: {{ready: true}}\n",
            service_in_pool("l2-web", "l2")
        ))
        .unwrap();
    testbed::wait::until("the layer2 pool's owners in its status", TIMEOUT, || {
        let eip = cluster.get("/apis/network.kubesphere.io/v1alpha2/eips/l2");
        Ok(eip
            .filter(|e| {
                e["status"]["layer2Owners"]
                    .as_object()
                    .is_some_and(|o| !o.is_empty())
            })
            .map(|_| ()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", speaker.log_tail()));
    wait_audited(&cluster, "berth-speaker", "patch", "eips/status", 2);

    // The same Event twice on one object: kube's Recorder patches the first into a series.
    // A Service asking for a pool that does not exist fails; touching it fails it again.
    cluster
        .cp
        .apply(&service_in_pool("lost", "nowhere"))
        .unwrap();
    wait_audited(&cluster, "berth-controller", "create", "events", 2);
    for round in 1..=3 {
        cluster
            .cp
            .kubectl(&[
                "annotate",
                "service",
                "-n",
                APP_NS,
                "lost",
                &format!("touched={round}"),
                "--overwrite",
            ])
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_audited(&cluster, "berth-controller", "patch", "events", 1);

    // The speaker: a session that goes down (SessionDown, a second Event) and comes up again
    // gives a second SessionEstablished Event on the BgpPeer, which the Recorder patches.
    // The speaker samples its sessions every 2 s, so the session stays down until it has
    // reported that.
    cluster.router.birdc(&["disable", "\"peer*\""]).unwrap();
    cluster.wait_router(before, 1, false, &speaker);
    wait_audited(&cluster, "berth-speaker", "create", "events", 2);
    cluster.router.birdc(&["enable", "\"peer*\""]).unwrap();
    cluster.wait_router(before, 1, true, &speaker);
    wait_audited(&cluster, "berth-speaker", "patch", "events", 1);

    // A restart: a new process reads the Lease and renews it, and serves.
    controller.stop();
    controller.start_again().unwrap();
    cluster.create_service("third");
    cluster.wait_address("third", &mut [&mut controller]);

    // Deleting a Service: the finalizer goes, the address returns to the pool.
    cluster.delete_service("after");
    cluster.wait_router(after, 1, false, &speaker);
    testbed::wait::until("shop/after to be gone", TIMEOUT, || {
        Ok(cluster.service("after").is_none().then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", controller.log_tail()));

    // The pool's in-use finalizer comes off when nothing uses it: delete the last Services
    // and the pool.
    cluster.delete_service("before");
    cluster.delete_service("lost");
    cluster.delete_service("third");
    cluster.delete_service("l2-web");
    cluster
        .cp
        .kubectl(&["delete", "eip", "pool", "--wait=false"])
        .unwrap();
    testbed::wait::until("the pool to be gone", TIMEOUT, || {
        Ok(cluster
            .get("/apis/network.kubesphere.io/v1alpha2/eips/pool")
            .is_none()
            .then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", controller.log_tail()));

    controller.stop();
    speaker.stop();
    controller.assert_no_forbidden();
    speaker.assert_no_forbidden();

    let all = requests(&cluster.cp.audit_log_path().unwrap());
    let grants = grants(&incluster::repository().join("deploy/rbac"));
    let ours: Vec<&Request> = all
        .iter()
        .filter(|r| ACCOUNTS.iter().any(|a| r.user == user(a)))
        .collect();

    // (1) Nothing either account asked for was refused.
    let refused: Vec<String> = ours
        .iter()
        .filter(|r| r.code == Some(403))
        .map(|r| format!("{} {} {}", r.user, r.verb, r.uri))
        .collect();
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));

    // (2) Every grant used, or listed with its reason.
    println!(
        "\n{:<18} {:<28} {:<72} {:>6}",
        "account", "role", "grant", "seen"
    );
    let mut unused = Vec::new();
    for grant in &grants {
        let seen = ours.iter().filter(|r| grant.covers(r)).count();
        let listed = RARELY_USED.iter().find(|(a, g, res, v, _)| {
            *a == grant.account && *g == grant.group && *res == grant.resource && *v == grant.verb
        });
        let note = match (seen, listed) {
            (0, Some(_)) => "  allow-listed",
            (0, None) => "  UNUSED",
            (_, Some(_)) => "  (allow-listed, used this time)",
            _ => "",
        };
        println!(
            "{:<18} {:<28} {:<72} {:>6}{note}",
            grant.account,
            grant.role,
            grant.label(),
            seen
        );
        if seen == 0 && listed.is_none() {
            unused.push(format!("{} {}", grant.account, grant.label()));
        }
    }

    // Requests no grant covers got in through the default roles (discovery, self-review):
    // listed, not failed.
    let uncovered: BTreeSet<String> = ours
        .iter()
        .filter(|r| !grants.iter().any(|g| g.covers(r)))
        .map(|r| format!("{} {} {}", r.user, r.verb, r.uri))
        .collect();
    if !uncovered.is_empty() {
        println!("requests outside deploy/rbac (default roles):");
        for line in &uncovered {
            println!("  {line}");
        }
    }
    println!(
        "{} requests by Berth's accounts of {} audited; {} grants; {:?} in all",
        ours.len(),
        all.len(),
        grants.len(),
        started.elapsed()
    );
    assert!(
        unused.is_empty(),
        "granted but never used (remove the grant, or list it in RARELY_USED with the reason):\n{}",
        unused.join("\n")
    );
}
