//! Issue 13 item 1, "Install", proven on a real kube-apiserver 1.37 (the testbed's
//! `berth-controlplane`, without kube-controller-manager: nothing here needs it):
//!
//! - `deploy/crds` (file by file, and again as one `List`, which kubectl validates on the
//!   client) and every file of `deploy/examples` apply with server-side apply, without a refusal
//!   or a warning, and the CRDs become Established with no other condition;
//! - `kubectl kustomize deploy/` and the Helm chart (default values, and `values-example.yaml`,
//!   each release into a fresh namespace) apply, first with `--dry-run=server`, then for real;
//!   deploy/README.md's `kubectl apply --server-side -k deploy/` over the first is a clean
//!   upgrade; the ServiceAccounts are bound to their roles;
//! - every validation `docs/reference.md` lists (schema constraints and CEL rules, per field) is
//!   enforced: an object that breaks it is refused with the documented message (the field, and
//!   the bound, pattern, values or CEL message the document gives). The case table must cover
//!   every rule the document lists, so a new rule without a case fails
//!   `the_case_table_covers_every_documented_rule` before any control plane starts.
//!
//! Workloads are applied, never run (there is no kubelet). Needs root, the control plane
//! binary (`BERTH_CONTROLPLANE_BIN`, or `scripts/build-controlplane.sh` builds it) and, for
//! the chart, the virtualenv `scripts/check-deploy.sh` makes (`./test.sh` runs it first);
//! without them the tests fail, they never skip. Two control planes (~400 MB each), in
//! parallel.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::time::Instant;

use common::install::{
    accounts_bound, cluster, documents, install, kubectl, kubectl_ok, render_chart, repo, stream,
};
use serde_json::{Value, json};
use testbed::k8s::ControlPlane;

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn kustomize_and_helm_renderings_install() {
    let started = Instant::now();
    let cluster = cluster("kube-install");
    let plane = &cluster.plane;

    let deploy = repo().join("deploy");
    let deploy = deploy.to_str().unwrap();
    let what = "kubectl kustomize deploy/";
    let objects = documents(&kubectl_ok(plane, what, &["kustomize", deploy], None), what);
    // Under kubectl's own field manager, so that deploy/README.md's command below is the
    // upgrade of this installation: every object again, unchanged, no conflict.
    install(plane, what, "kubectl", &objects);
    accounts_bound(plane, what, "berth-system");
    let what = "kubectl apply --server-side -k deploy/";
    let out = kubectl_ok(plane, what, &["apply", "--server-side", "-k", deploy], None);
    assert_eq!(out.lines().count(), objects.len(), "{what}:\n{out}");
    eprintln!("{what}: {} objects", objects.len());

    let example = repo().join("deploy/chart/values-example.yaml");
    for (release, values) in [("berth-chart", None), ("berth-example", Some(&*example))] {
        // Each release into a fresh namespace of its name, as `helm install --create-namespace`.
        let what = format!("the chart as release {release}");
        kubectl_ok(plane, &what, &["create", "namespace", release], None);
        let objects = render_chart(release, release, values);
        install(plane, &what, release, &objects);
        accounts_bound(plane, &what, release);
        eprintln!("{what}: {} objects", objects.len());
    }
    let pools = kubectl_ok(plane, "pools", &["get", "eips", "-o", "name"], None);
    assert_eq!(
        pools.lines().collect::<Vec<_>>(),
        [
            "eip.network.kubesphere.io/public-v4",
            "eip.network.kubesphere.io/public-v6"
        ],
        "values-example.yaml's pools"
    );
    eprintln!("installed in {:?}", started.elapsed());
}

// --- the documented rules -----------------------------------------------------------------

/// One way to break one documented validation. Bounds carry the documented number, rules
/// their message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Breach {
    /// A required field left out.
    Required,
    /// A list-map key left out of an item (refused before validation, by the typed patch).
    ListKey,
    /// A string that does not match the pattern.
    Pattern(String),
    /// A value not in the enum (the documented values, as JSON).
    OneOf(Vec<String>),
    /// A number below the minimum.
    Below(String),
    /// A number above the maximum.
    Above(String),
    /// A string shorter than the minimum length.
    TooShort(String),
    /// A string longer than the maximum length.
    TooLong(String),
    /// A list with fewer items than the minimum.
    TooFew(String),
    /// A list with more items than the maximum.
    TooMany(String),
    /// A CEL rule broken; its message.
    Rule(String),
}

/// One breach of one validation `docs/reference.md` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Documented {
    kind: String,
    /// The field as the document writes it (`[]` for items, `<key>` for map values).
    field: String,
    breach: Breach,
}

/// Every breach of every validation in `docs/reference.md`'s field tables. `default` is not
/// a validation; anything else the parser does not know fails the test.
fn documented() -> Vec<Documented> {
    let path = repo().join("docs/reference.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = Vec::new();
    let mut kind = String::new();
    let mut in_table = false;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            kind = heading.trim().to_owned();
            in_table = false;
        } else if line.starts_with("| field |") {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table && !line.starts_with("|---") {
            let cells = cells(line);
            let field = cells[1].trim_matches('`').to_owned();
            for constraint in cells[3].split("; ").filter(|c| !c.is_empty()) {
                for breach in breaches(constraint)
                    .unwrap_or_else(|| panic!("{kind} {field}: unknown constraint {constraint:?}"))
                {
                    out.push(Documented {
                        kind: kind.clone(),
                        field: field.clone(),
                        breach,
                    });
                }
            }
        }
    }
    out
}

/// The cells of a Markdown table row, `\|` unescaped.
fn cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push(chars.next().unwrap())
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.iter().map(|c| c.trim().to_owned()).collect()
}

/// The ways to break one documented constraint; `None` if it is not understood.
fn breaches(constraint: &str) -> Option<Vec<Breach>> {
    if constraint == "**required**" {
        return Some(vec![Breach::Required]);
    }
    if constraint == "**required** (list key)" {
        return Some(vec![Breach::ListKey]);
    }
    if constraint.starts_with("default `") {
        return Some(Vec::new());
    }
    if let Some(message) = constraint.strip_prefix("rule: ") {
        return Some(vec![Breach::Rule(message.to_owned())]);
    }
    if let Some(pattern) = constraint.strip_prefix("pattern `") {
        return Some(vec![Breach::Pattern(pattern.strip_suffix('`')?.to_owned())]);
    }
    if let Some(values) = constraint.strip_prefix("one of ") {
        let values = values.split(", ").map(|v| v.trim_matches('`').to_owned());
        return Some(vec![Breach::OneOf(values.collect())]);
    }
    let (what, bounds) = constraint.split_once(' ')?;
    type Bound = fn(String) -> Breach;
    let (below, above): (Bound, Bound) = match what {
        "value" => (Breach::Below, Breach::Above),
        "length" => (Breach::TooShort, Breach::TooLong),
        "items" => (Breach::TooFew, Breach::TooMany),
        _ => return None,
    };
    let (min, max) = if let Some(max) = bounds.strip_prefix("≤ ") {
        (None, Some(max))
    } else if let Some(min) = bounds.strip_prefix("≥ ") {
        (Some(min), None)
    } else {
        let (min, max) = bounds.split_once('–')?;
        (Some(min), Some(max))
    };
    Some(
        min.map(|m| below(m.to_owned()))
            .into_iter()
            .chain(max.map(|m| above(m.to_owned())))
            .collect(),
    )
}

/// The path the API server names for a documented field: the first item, the key `k`.
fn server_path(field: &str) -> String {
    field.replace("[]", "[0]").replace("<key>", "k")
}

/// What the API server's refusal must say for `breach` of `field`: every string listed.
fn expected(field: &str, breach: &Breach) -> Vec<String> {
    let path = server_path(field);
    let also = match breach {
        Breach::Required => return vec![format!("{path}: Required value")],
        Breach::ListKey => {
            let list = path
                .rsplit_once('[')
                .map_or(path.as_str(), |(list, _)| list);
            return vec![format!(
                ".{list}: element 0: associative list with keys has an element that omits all key fields"
            )];
        }
        Breach::Pattern(p) => format!("should match '{p}'"),
        Breach::OneOf(values) => {
            format!(
                "Unsupported value: \"bogus\": supported values: {}",
                values.join(", ")
            )
        }
        Breach::Below(min) => format!("should be greater than or equal to {min}"),
        Breach::Above(max) => format!("should be less than or equal to {max}"),
        Breach::TooShort(min) => format!("should be at least {min} chars long"),
        Breach::TooLong(max) => format!("may not be more than {max} bytes"),
        Breach::TooFew(min) => format!("should have at least {min} items"),
        Breach::TooMany(max) => format!("must have at most {max} items"),
        Breach::Rule(message) => message.clone(),
    };
    vec![format!("{path}: "), also]
}

/// How a case reaches the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// `kubectl create --dry-run=server` of a new object.
    Create,
    /// Server-side apply (dry run) over the existing object `base`: for transition rules.
    Update,
    /// Server-side apply (dry run) of the `status` subresource of `base`.
    Status,
}

/// One row of the table: [`base`] of `kind` with the JSON merge patch `patch` breaks `field`'s
/// validation in the way `breach` says.
#[derive(Debug)]
struct Case {
    kind: &'static str,
    field: &'static str,
    breach: Breach,
    how: How,
    patch: Value,
}

/// A row of the table: status fields go through the status subresource, the rest
/// as new objects.
fn case(kind: &'static str, field: &'static str, breach: Breach, patch: Value) -> Case {
    let how = if field.starts_with("status.") {
        How::Status
    } else {
        How::Create
    };
    Case {
        kind,
        field,
        breach,
        how,
        patch,
    }
}

impl Case {
    /// Sent as an update of `base` instead: for transition rules.
    fn on_update(mut self) -> Case {
        self.how = How::Update;
        self
    }

    /// The documented breach it covers (the kind and field, and the breach's variant; the
    /// bound, pattern or message come from the document).
    fn covers(&self, documented: &Documented) -> bool {
        documented.kind == self.kind
            && documented.field == self.field
            && std::mem::discriminant(&documented.breach) == std::mem::discriminant(&self.breach)
            && match (&documented.breach, &self.breach) {
                (Breach::Rule(a), Breach::Rule(b)) => a == b,
                _ => true,
            }
    }
}

/// A valid object of each kind with every constrained field set, named `base`.
fn base(kind: &str) -> Value {
    let body = match kind {
        "Eip" => json!({
            "spec": {
                "address": "10.0.0.0/24",
                "protocol": "layer2",
                "interface": "eth0",
                "advertisement": { "localPref": 100, "med": 10 },
            },
        }),
        "BgpConf" => json!({
            "spec": {
                "as": 64512,
                "asPerRack": { "k": 64513 },
                "families": [1],
                "listenPort": 17900,
                "routerId": "10.0.0.1",
            },
            "status": {
                "nodesConfStatus": { "k": { "as": 64512, "routerId": "10.0.0.1", "conditions": [
                    { "type": "Valid", "status": "True", "reason": "Valid", "message": "",
                      "lastTransitionTime": "2026-12-01T00:00:00Z" },
                ] } },
            },
        }),
        "BgpPeer" => json!({
            "spec": {
                "conf": { "peerAs": 65000, "neighborAddress": "10.0.0.1", "localAs": 64512 },
                "authPasswordSecretRef": { "name": "md5", "key": "password" },
                "afiSafis": [{
                    "config": { "family": { "afi": "AFI_IP", "safi": "SAFI_UNICAST" }, "enabled": true },
                    "addPaths": { "config": { "sendMax": 1 } },
                }],
                "bfd": { "enabled": true, "minRx": 300, "minTx": 300, "multiplier": 3 },
                "ebgpMultihop": { "enabled": true, "multihopTtl": 2 },
                "maxPrefix": 100,
                "nodeSelector": { "matchExpressions": [{ "key": "rack", "operator": "Exists" }] },
                "sourceAddress": "10.0.0.2",
                "transport": { "remotePort": 179 },
            },
            "status": {
                "nodesPeerStatus": { "k": {
                    "conditions": [{ "type": "Valid", "status": "True" }],
                    "peerState": { "localAs": 64512, "peerAs": 65000 },
                } },
            },
        }),
        other => panic!("no base object for kind {other}"),
    };
    let mut object = json!({
        "apiVersion": "network.kubesphere.io/v1alpha2",
        "kind": kind,
        "metadata": { "name": "base" },
    });
    merge(&mut object, &body);
    object
}

/// RFC 7386 JSON merge patch: `null` removes, objects merge, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().unwrap();
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The table: one case per documented breach. Kept one case a line (hence no rustfmt): it reads
/// like the document's table. Bounds, patterns and messages are the document's, not repeated here.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Breach::*;
    let (eip, conf, peer) = ("Eip", "BgpConf", "BgpPeer");
    let (s, none, big) = (String::new, Vec::new, 4_294_967_296_u64);
    let rule = |m: &str| Rule(m.to_owned());
    let family = |family: Value| json!({ "spec": { "afiSafis": [{ "config": { "family": family } }] } });
    let conf_status = |c: Value| json!({ "status": { "nodesConfStatus": { "k": c } } });
    let peer_status = |c: Value| json!({ "status": { "nodesPeerStatus": { "k": c } } });
    vec![
        case(eip, "spec.address", Required, json!({ "spec": { "address": null } })),
        case(eip, "spec.address", Pattern(s()), json!({ "spec": { "address": "10.0.0.0/24!" } })),
        case(eip, "spec.address", TooShort(s()), json!({ "spec": { "address": "1" } })),
        case(eip, "spec.address", TooLong(s()), json!({ "spec": { "address": "1".repeat(101) } })),
        case(eip, "spec.address", rule("spec.address is immutable: create a new Eip instead"),
            json!({ "spec": { "address": "10.0.1.0/24" } })).on_update(),
        case(eip, "spec.advertisement.localPref", Above(s()), json!({ "spec": { "advertisement": { "localPref": big } } })),
        case(eip, "spec.advertisement.med", Above(s()), json!({ "spec": { "advertisement": { "med": big } } })),
        case(eip, "spec.interface", TooLong(s()), json!({ "spec": { "interface": "e".repeat(65) } })),
        // Issue 18: AS-path prepend and the peer selector.
        case(eip, "spec.advertisement.asPathPrepend.count", Below(s()), json!({ "spec": { "advertisement": { "asPathPrepend": { "count": 0 } } } })),
        case(eip, "spec.advertisement.asPathPrepend.count", Above(s()), json!({ "spec": { "advertisement": { "asPathPrepend": { "count": 11 } } } })),
        case(eip, "spec.advertisement.asPathPrepend.count", Required, json!({ "spec": { "advertisement": { "asPathPrepend": { "asn": 65010 } } } })),
        case(eip, "spec.advertisement.asPathPrepend.asn", Below(s()), json!({ "spec": { "advertisement": { "asPathPrepend": { "count": 1, "asn": 0 } } } })),
        case(eip, "spec.advertisement.asPathPrepend.asn", Above(s()), json!({ "spec": { "advertisement": { "asPathPrepend": { "count": 1, "asn": big } } } })),
        case(eip, "spec.advertisement.aggregationLength", Above(s()), json!({ "spec": { "advertisement": { "aggregationLength": 33 } } })),
        case(eip, "spec.advertisement.aggregationLengthV6", Above(s()), json!({ "spec": { "advertisement": { "aggregationLengthV6": 129 } } })),
        case(eip, "spec.peerSelector.matchExpressions[].key", Required,
            json!({ "spec": { "peerSelector": { "matchExpressions": [{ "operator": "Exists" }] } } })),
        case(eip, "spec.peerSelector.matchExpressions[].operator", Required,
            json!({ "spec": { "peerSelector": { "matchExpressions": [{ "key": "edge" }] } } })),
        case(eip, "spec.protocol", OneOf(none()), json!({ "spec": { "protocol": "bogus" } })),
        case(eip, "status.conditions[].status", Required, json!({ "status": { "conditions": [{ "type": "Valid" }] } })),
        case(eip, "status.conditions[].type", ListKey, json!({ "status": { "conditions": [{ "status": "True" }] } })),
        case(eip, "status.nodesLayer2Status.<key>.conditions[].status", Required,
            json!({ "status": { "nodesLayer2Status": { "k": { "conditions": [{ "type": "InterfaceResolved" }] } } } })),
        case(eip, "status.nodesLayer2Status.<key>.conditions[].type", Required,
            json!({ "status": { "nodesLayer2Status": { "k": { "conditions": [{ "status": "True" }] } } } })),
        case(eip, "spec.nodeSelector.matchExpressions[].key", Required,
            json!({ "spec": { "nodeSelector": { "matchExpressions": [{ "operator": "Exists" }] } } })),
        case(eip, "spec.nodeSelector.matchExpressions[].operator", Required,
            json!({ "spec": { "nodeSelector": { "matchExpressions": [{ "key": "rack" }] } } })),
        // Issue 14 items 13 and 14: one rule set with api::validate (testbed/tests/kube_validation.rs).
        case(eip, "spec.address", rule("spec.address must be one IP, a CIDR (a.b.c.d/n) or a range (first-last) of one family"),
            json!({ "spec": { "address": "1.2.3" } })),
        case(eip, "spec.advertisement.communities", TooMany(s()), json!({ "spec": { "advertisement": { "communities": vec!["1:1"; 65] } } })),
        case(eip, "spec.advertisement.communities", rule("each community must be ASN:VALUE (each 0-65535), no-export, no-advertise, no-export-subconfed or blackhole"),
            json!({ "spec": { "advertisement": { "communities": ["65536:1"] } } })),
        case(eip, "spec.advertisement.communities[]", TooLong(s()), json!({ "spec": { "advertisement": { "communities": ["1".repeat(33)] } } })),
        case(eip, "spec.advertisement.largeCommunities", TooMany(s()), json!({ "spec": { "advertisement": { "largeCommunities": vec!["1:1:1"; 65] } } })),
        case(eip, "spec.advertisement.largeCommunities", rule("each large community must be GLOBAL:LOCAL1:LOCAL2 (each 0-4294967295)"),
            json!({ "spec": { "advertisement": { "largeCommunities": ["1:2"] } } })),
        case(eip, "spec.advertisement.largeCommunities[]", TooLong(s()), json!({ "spec": { "advertisement": { "largeCommunities": ["1".repeat(33)] } } })),

        case(conf, "spec", rule("set spec.as (1-4294967295) or a non-empty spec.asPerRack"),
            json!({ "spec": { "as": 0, "asPerRack": null } })),
        case(conf, "spec.as", Above(s()), json!({ "spec": { "as": big } })),
        case(conf, "spec.asPerRack.<key>", Above(s()), json!({ "spec": { "asPerRack": { "k": big } } })),
        case(conf, "spec.families[]", Above(s()), json!({ "spec": { "families": [big] } })),
        case(conf, "spec.listenPort", Below(s()), json!({ "spec": { "listenPort": -2 } })),
        case(conf, "spec.listenPort", Above(s()), json!({ "spec": { "listenPort": 65536 } })),
        case(conf, "spec.routerId", Pattern(s()), json!({ "spec": { "routerId": "10.0.0" } })),
        case(conf, "spec.gracefulRestart", rule("graceful restart times are whole seconds (a number or a string of digits)"), json!({ "spec": { "gracefulRestart": { "restartTime": "abc" } } })),
        case(conf, "spec.gracefulRestart.deferralTime", TooLong(s()), json!({ "spec": { "gracefulRestart": { "deferralTime": "1".repeat(21) } } })),
        case(conf, "spec.gracefulRestart.peerRestartTime", TooLong(s()), json!({ "spec": { "gracefulRestart": { "peerRestartTime": "1".repeat(21) } } })),
        case(conf, "spec.gracefulRestart.restartTime", TooLong(s()), json!({ "spec": { "gracefulRestart": { "restartTime": "1".repeat(21) } } })),
        case(conf, "spec.gracefulRestart.staleRoutesTime", TooLong(s()), json!({ "spec": { "gracefulRestart": { "staleRoutesTime": "1".repeat(21) } } })),
        case(conf, "spec.listenAddresses", TooMany(s()), json!({ "spec": { "listenAddresses": vec!["10.0.0.1"; 17] } })),
        case(conf, "spec.listenAddresses", rule("each listen address must be an IP address"), json!({ "spec": { "listenAddresses": ["eth0"] } })),
        case(conf, "spec.listenAddresses[]", TooLong(s()), json!({ "spec": { "listenAddresses": ["1".repeat(65)] } })),
        case(conf, "spec.routerId", TooLong(s()), json!({ "spec": { "routerId": "1".repeat(16) } })),
        case(conf, "spec.routerId", rule("must be an IPv4 address"), json!({ "spec": { "routerId": "999.0.0.1" } })),
        case(conf, "status.nodesConfStatus.<key>.as", Above(s()), conf_status(json!({ "as": big }))),
        case(conf, "status.nodesConfStatus.<key>.conditions[].status", Required,
            conf_status(json!({ "conditions": [{ "type": "Valid" }] }))),
        case(conf, "status.nodesConfStatus.<key>.conditions[].type", Required,
            conf_status(json!({ "conditions": [{ "status": "True" }] }))),

        case(peer, "spec", rule("set conf.authPassword or authPasswordSecretRef, not both"),
            json!({ "spec": { "conf": { "authPassword": "secret" } } })),
        case(peer, "spec.afiSafis[].addPaths.config.sendMax", Above(s()),
            json!({ "spec": { "afiSafis": [{ "addPaths": { "config": { "sendMax": big } } }] } })),
        case(peer, "spec.afiSafis[].config.family.afi", Required, family(json!({ "safi": "SAFI_UNICAST" }))),
        case(peer, "spec.afiSafis[].config.family.afi", OneOf(none()), family(json!({ "afi": "bogus", "safi": "SAFI_UNICAST" }))),
        case(peer, "spec.afiSafis[].config.family.safi", Required, family(json!({ "afi": "AFI_IP" }))),
        case(peer, "spec.afiSafis[].config.family.safi", OneOf(none()), family(json!({ "afi": "AFI_IP", "safi": "bogus" }))),
        case(peer, "spec.authPasswordSecretRef.name", Required, json!({ "spec": { "authPasswordSecretRef": { "name": null } } })),
        case(peer, "spec.authPasswordSecretRef.name", TooShort(s()), json!({ "spec": { "authPasswordSecretRef": { "name": "" } } })),
        case(peer, "spec.bfd.minRx", Below(s()), json!({ "spec": { "bfd": { "minRx": 9 } } })),
        case(peer, "spec.bfd.minRx", Above(s()), json!({ "spec": { "bfd": { "minRx": 60001 } } })),
        case(peer, "spec.bfd.minTx", Below(s()), json!({ "spec": { "bfd": { "minTx": 9 } } })),
        case(peer, "spec.bfd.minTx", Above(s()), json!({ "spec": { "bfd": { "minTx": 60001 } } })),
        case(peer, "spec.bfd.multiplier", Below(s()), json!({ "spec": { "bfd": { "multiplier": 0 } } })),
        case(peer, "spec.bfd.multiplier", Above(s()), json!({ "spec": { "bfd": { "multiplier": 256 } } })),
        case(peer, "spec.conf", Required, json!({ "spec": { "conf": null } })),
        case(peer, "spec.conf.authPassword", TooLong(s()),
            json!({ "spec": { "conf": { "authPassword": "p".repeat(81) }, "authPasswordSecretRef": null } })),
        case(peer, "spec.conf.localAs", Above(s()), json!({ "spec": { "conf": { "localAs": big } } })),
        case(peer, "spec.conf.neighborAddress", Required, json!({ "spec": { "conf": { "neighborAddress": null } } })),
        case(peer, "spec.conf.neighborAddress", Pattern(s()), json!({ "spec": { "conf": { "neighborAddress": "router.example" } } })),
        case(peer, "spec.conf.peerAs", Required, json!({ "spec": { "conf": { "peerAs": null } } })),
        case(peer, "spec.conf.peerAs", Below(s()), json!({ "spec": { "conf": { "peerAs": 0 } } })),
        case(peer, "spec.conf.peerAs", Above(s()), json!({ "spec": { "conf": { "peerAs": big } } })),
        case(peer, "spec.ebgpMultihop.multihopTtl", Below(s()), json!({ "spec": { "ebgpMultihop": { "multihopTtl": 0 } } })),
        case(peer, "spec.ebgpMultihop.multihopTtl", Above(s()), json!({ "spec": { "ebgpMultihop": { "multihopTtl": 256 } } })),
        case(peer, "spec.maxPrefix", Below(s()), json!({ "spec": { "maxPrefix": 0 } })),
        case(peer, "spec.maxPrefix", Above(s()), json!({ "spec": { "maxPrefix": big } })),
        case(peer, "spec.nodeSelector.matchExpressions[].key", Required,
            json!({ "spec": { "nodeSelector": { "matchExpressions": [{ "operator": "Exists" }] } } })),
        case(peer, "spec.nodeSelector.matchExpressions[].operator", Required,
            json!({ "spec": { "nodeSelector": { "matchExpressions": [{ "key": "rack" }] } } })),
        case(peer, "spec.sourceAddress", Pattern(s()), json!({ "spec": { "sourceAddress": "10.0.0.2/32" } })),
        case(peer, "spec.transport.remotePort", Below(s()), json!({ "spec": { "transport": { "remotePort": 0 } } })),
        case(peer, "spec.transport.remotePort", Above(s()), json!({ "spec": { "transport": { "remotePort": 65536 } } })),
        case(peer, "spec", rule("spec.sourceAddress (or transport.localAddress) must be the same family as conf.neighborAddress"),
            json!({ "spec": { "sourceAddress": "fd00::2" } })),
        case(peer, "spec.conf.neighborAddress", TooLong(s()), json!({ "spec": { "conf": { "neighborAddress": "1".repeat(65) } } })),
        case(peer, "spec.conf.neighborAddress", rule("must be an IP address"), json!({ "spec": { "conf": { "neighborAddress": "1.2.3" } } })),
        case(peer, "spec.gracefulRestart", rule("graceful restart times are whole seconds (a number or a string of digits)"), json!({ "spec": { "gracefulRestart": { "restartTime": "abc" } } })),
        case(peer, "spec.gracefulRestart.deferralTime", TooLong(s()), json!({ "spec": { "gracefulRestart": { "deferralTime": "1".repeat(21) } } })),
        case(peer, "spec.gracefulRestart.peerRestartTime", TooLong(s()), json!({ "spec": { "gracefulRestart": { "peerRestartTime": "1".repeat(21) } } })),
        case(peer, "spec.gracefulRestart.restartTime", TooLong(s()), json!({ "spec": { "gracefulRestart": { "restartTime": "1".repeat(21) } } })),
        case(peer, "spec.gracefulRestart.staleRoutesTime", TooLong(s()), json!({ "spec": { "gracefulRestart": { "staleRoutesTime": "1".repeat(21) } } })),
        case(peer, "spec.sourceAddress", TooLong(s()), json!({ "spec": { "sourceAddress": "1".repeat(65) } })),
        case(peer, "spec.sourceAddress", rule("must be an IP address"), json!({ "spec": { "sourceAddress": "1.2.3" } })),
        case(peer, "spec.timers.config", rule("timers are whole seconds (a number or a string of digits), and holdTime is 0 or 3-65535"),
            json!({ "spec": { "timers": { "config": { "holdTime": 2 } } } })),
        case(peer, "spec.timers.config.connectRetry", TooLong(s()), json!({ "spec": { "timers": { "config": { "connectRetry": "1".repeat(21) } } } })),
        case(peer, "spec.timers.config.holdTime", TooLong(s()), json!({ "spec": { "timers": { "config": { "holdTime": "1".repeat(21) } } } })),
        case(peer, "spec.timers.config.keepaliveInterval", TooLong(s()), json!({ "spec": { "timers": { "config": { "keepaliveInterval": "1".repeat(21) } } } })),
        case(peer, "spec.timers.config.minimumAdvertisementInterval", TooLong(s()), json!({ "spec": { "timers": { "config": { "minimumAdvertisementInterval": "1".repeat(21) } } } })),
        case(peer, "spec.transport.localAddress", TooLong(s()), json!({ "spec": { "transport": { "localAddress": "1".repeat(65) } } })),
        case(peer, "spec.transport.localAddress", rule("must be an IP address"), json!({ "spec": { "transport": { "localAddress": "eth0" } } })),
        case(peer, "status.nodesPeerStatus.<key>.conditions[].status", Required,
            peer_status(json!({ "conditions": [{ "type": "Valid" }] }))),
        case(peer, "status.nodesPeerStatus.<key>.conditions[].type", Required,
            peer_status(json!({ "conditions": [{ "status": "True" }] }))),
        case(peer, "status.nodesPeerStatus.<key>.peerState.localAs", Above(s()), peer_status(json!({ "peerState": { "localAs": big } }))),
        case(peer, "status.nodesPeerStatus.<key>.peerState.peerAs", Above(s()), peer_status(json!({ "peerState": { "peerAs": big } }))),
    ]
}

/// Each documented breach paired with its case; fails naming every breach without a case and
/// every case that breaks nothing documented.
fn table() -> Vec<(Documented, Case)> {
    let documented = documented();
    let mut cases: Vec<Option<Case>> = cases().into_iter().map(Some).collect();
    let mut paired = Vec::new();
    let mut uncovered = Vec::new();
    for doc in documented {
        match cases
            .iter_mut()
            .find(|c| c.as_ref().is_some_and(|c| c.covers(&doc)))
        {
            Some(case) => paired.push((doc, case.take().unwrap())),
            None => uncovered.push(format!("{} {}: {:?}", doc.kind, doc.field, doc.breach)),
        }
    }
    let stale: Vec<String> = cases
        .into_iter()
        .flatten()
        .map(|c| format!("{} {}: {:?}", c.kind, c.field, c.breach))
        .collect();
    assert!(
        uncovered.is_empty() && stale.is_empty(),
        "docs/reference.md and the case table disagree.\nDocumented, without a case (add one to \
         cases()):\n  {}\nCases for nothing documented:\n  {}",
        uncovered.join("\n  "),
        stale.join("\n  ")
    );
    paired
}

#[test]
fn the_case_table_covers_every_documented_rule() {
    let table = table();
    assert!(
        table.len() >= 50,
        "only {} documented breaches: did the parser miss the tables?",
        table.len()
    );
    for kind in ["Eip", "BgpConf", "BgpPeer"] {
        assert!(
            table.iter().any(|(d, _)| d.kind == kind),
            "no rule of {kind} found"
        );
    }
}

/// Sends every case and returns what went wrong, a line per case. New objects go in one
/// `kubectl create --dry-run=server` (kubectl goes on after a refusal and names the object in
/// each error), updates and status changes one at a time (they all concern `base`).
fn failures(plane: &ControlPlane, table: &[(Documented, Case)]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut creates = Vec::new();
    for (i, (doc, case)) in table.iter().enumerate() {
        let mut object = base(case.kind);
        merge(&mut object, &case.patch);
        let mut apply = vec!["apply", "--server-side", "--field-manager=base"];
        apply.extend(["--force-conflicts", "--dry-run=server", "-f", "-"]);
        match case.how {
            How::Create => {
                object["metadata"]["name"] = json!(format!("breach-{i}"));
                creates.push((doc, object));
                continue;
            }
            How::Update => {}
            How::Status => apply.push("--subresource=status"),
        }
        let run = kubectl(plane, &apply, Some(&object.to_string()));
        let refusal = (!run.success).then_some(run.stderr.as_str());
        failures.extend(verdict(doc, &object, refusal));
    }
    let objects: Vec<Value> = creates.iter().map(|(_, o)| o.clone()).collect();
    let create = ["create", "--dry-run=server", "-f", "-"];
    let run = kubectl(plane, &create, Some(&stream(&objects)));
    let mut refusals: Vec<String> = Vec::new();
    for line in run.stderr.lines() {
        match refusals.last_mut() {
            Some(last) if !line.starts_with("Error from server") => {
                last.push('\n');
                last.push_str(line);
            }
            _ => refusals.push(line.to_owned()),
        }
    }
    for (doc, object) in &creates {
        let name = format!("{:?}", object["metadata"]["name"].as_str().unwrap());
        let refusal = refusals.iter().find(|r| r.contains(&name));
        failures.extend(verdict(doc, object, refusal.map(String::as_str)));
    }
    failures
}

/// `None` when `object` was refused as `doc` says, else what went wrong.
fn verdict(doc: &Documented, object: &Value, refusal: Option<&str>) -> Option<String> {
    let what = format!("{} {} ({:?})", doc.kind, doc.field, doc.breach);
    let Some(refusal) = refusal else {
        return Some(format!("{what}: accepted {object}"));
    };
    let expect = expected(&doc.field, &doc.breach);
    let missing: Vec<&String> = expect.iter().filter(|e| !refusal.contains(*e)).collect();
    (!missing.is_empty()).then(|| format!("{what}: refused without {missing:?}:\n    {refusal}"))
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn crds_and_examples_apply_and_every_documented_rule_is_enforced() {
    let table = table();
    let started = Instant::now();
    let cluster = cluster("kube-rules");
    let plane = &cluster.plane;

    // The CRDs, one file at a time so a refusal names its file (and the server the field).
    let crds = manifests("deploy/crds");
    for (what, objects) in &crds {
        install(plane, what, "berth-crds", objects);
    }
    // Again as one `List`, as `kubectl get crd -o yaml` writes several (a backup, say): kubectl
    // validates a List on the client, against the server's OpenAPI.
    let all: Vec<Value> = crds.iter().flat_map(|(_, o)| o.clone()).collect();
    let list = json!({ "apiVersion": "v1", "kind": "List", "items": all }).to_string();
    let apply = [
        "apply",
        "--server-side",
        "--field-manager=berth-crds",
        "-f",
        "-",
    ];
    kubectl_ok(plane, "deploy/crds as a List", &apply, Some(&list));

    // Every example, into the namespaces it names.
    for namespace in ["berth-system", "shop"] {
        kubectl_ok(plane, namespace, &["create", "namespace", namespace], None);
    }
    let examples = manifests("deploy/examples");
    for (what, objects) in &examples {
        install(plane, what, "berth-examples", objects);
    }

    // The base objects are valid (as new objects and as status), and exist for the updates.
    let create = ["create", "--dry-run=server", "-f", "-"];
    for kind in ["Eip", "BgpConf", "BgpPeer"] {
        let what = format!("base {kind}");
        let object = base(kind);
        let mut fresh = object.clone();
        fresh["metadata"]["name"] = json!("breach");
        kubectl_ok(plane, &what, &create, Some(&fresh.to_string()));
        let apply = ["apply", "--server-side", "--field-manager=base", "-f", "-"];
        kubectl_ok(plane, &what, &apply, Some(&object.to_string()));
        let status = [&apply[..], &["--subresource=status", "--dry-run=server"]].concat();
        kubectl_ok(plane, &what, &status, Some(&object.to_string()));
    }
    // An explicit null in the optional enum is pruned as an unset field, as OpenELB's CRD does:
    // an OpenELB manifest's empty `protocol:` applies (api::crd::optional_enum).
    let mut null_protocol = base("Eip");
    null_protocol["spec"] = json!({ "address": "10.0.2.0/24", "protocol": null });
    null_protocol["metadata"]["name"] = json!("null-protocol");
    let null_protocol = null_protocol.to_string();
    kubectl_ok(plane, "protocol: null", &create, Some(&null_protocol));

    let failures = failures(plane, &table);
    assert!(
        failures.is_empty(),
        "{} of {} documented rule breaches are not refused as documented:\n  {}",
        failures.len(),
        table.len(),
        failures.join("\n  ")
    );
    eprintln!(
        "{} CRDs, {} example files, {} documented rule breaches refused as documented, in {:?}",
        crds.len(),
        examples.len(),
        table.len(),
        started.elapsed()
    );
}

/// The objects of each YAML file in `dir` (relative to the workspace), by name, in order.
fn manifests(dir: &str) -> Vec<(String, Vec<Value>)> {
    let mut paths: Vec<_> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no YAML files in {dir}");
    paths
        .iter()
        .map(|path| {
            let what = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let objects = documents(&std::fs::read_to_string(path).unwrap(), &what);
            (what, objects)
        })
        .collect()
}
