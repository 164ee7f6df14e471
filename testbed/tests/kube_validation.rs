//! Issue 14 items 3, 13 and 14: one set of admission rules. A table of valid and invalid
//! `Eip`, `BgpPeer` and `BgpConf` objects goes through the shipped CRDs (`deploy/crds`) on a
//! real kube-apiserver 1.37 and through the standalone mode's validation (`api::validate`,
//! after the typed deserialization the standalone reader does); both must give the same
//! verdict for every row, and that verdict must be the one the row expects.
//!
//! The unprivileged test checks the standalone half alone (the expected verdicts), so a rule
//! changed on one side only shows without a control plane as far as the row's expectation
//! goes; the ignored test adds the API server. Needs root and the control plane binary
//! (`BERTH_CONTROLPLANE_BIN`, or `scripts/build-controlplane.sh` builds it).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use api::validate::{validate_bgp_conf, validate_bgp_peer, validate_eip};
use api::{BgpConf, BgpPeer, Eip};
use common::install::{cluster, install, kubectl, repo, stream};
use serde_json::{Value, json};

/// One object and whether it is valid.
struct Row {
    kind: &'static str,
    /// What the row tries.
    what: &'static str,
    spec: Value,
    valid: bool,
}

fn row(kind: &'static str, what: &'static str, valid: bool, spec: Value) -> Row {
    Row {
        kind,
        what,
        spec,
        valid,
    }
}

fn peer(extra: Value) -> Value {
    let mut spec = json!({ "conf": { "peerAs": 65000, "neighborAddress": "10.0.0.1" } });
    merge(&mut spec, &extra);
    spec
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// The table. Admission is syntax: a reversed range, host bits or a special-purpose address
/// pass here and are refused by the controller as a pool rule (`kube_pools.rs`).
#[rustfmt::skip]
fn rows() -> Vec<Row> {
    let (eip, conf, bgp) = ("Eip", "BgpConf", "BgpPeer");
    let addr = |a: &str| json!({ "address": a });
    vec![
        row(eip, "a CIDR", true, addr("10.0.0.0/24")),
        row(eip, "one address", true, addr("10.0.0.5")),
        row(eip, "a range", true, addr("10.0.0.1-10.0.0.9")),
        row(eip, "an IPv6 CIDR", true, addr("fd00::/64")),
        row(eip, "an IPv6 range", true, addr("fd00::10-fd00::20")),
        row(eip, "a range with spaces around the dash", true, addr("10.70.0.1 - 10.70.0.9")),
        row(eip, "a range with a space before the dash", true, addr("10.70.0.1 -10.70.0.9")),
        row(eip, "a CIDR with a space", false, addr("10.70.0.0 /24")),
        row(eip, "a range with a tab", false, addr("10.70.0.1\t-10.70.0.9")),
        row(eip, "a leading space", false, addr(" 10.0.0.1")),
        row(eip, "prefix too long", false, addr("10.0.0.0/33")),
        row(eip, "prefix with a leading zero", false, addr("10.0.0.0/08")),
        row(eip, "three octets", false, addr("1.2.3")),
        row(eip, "five octets", false, addr("1.2.3.4.5")),
        row(eip, "mixed-family range", false, addr("10.0.0.1-fd00::1")),
        row(eip, "IPv4-mapped IPv6", false, addr("::ffff:10.0.0.1")),
        row(eip, "three-part range", false, addr("10.0.0.1-10.0.0.2-10.0.0.3")),
        row(eip, "a reversed range (a pool rule)", true, addr("10.0.0.9-10.0.0.1")),
        row(eip, "host bits (a pool rule)", true, addr("10.0.0.0/0")),
        row(eip, "loopback (a pool rule)", true, addr("127.0.0.1")),
        row(eip, "bgp with an interface (ignored, warned)", true,
            json!({ "address": "10.0.1.0/24", "protocol": "bgp", "interface": "eth0" })),
        row(eip, "empty protocol with an interface", true,
            json!({ "address": "10.0.1.0/24", "protocol": "", "interface": "eth0" })),
        row(eip, "layer2 with an interface", true,
            json!({ "address": "10.0.1.0/24", "protocol": "layer2", "interface": "can_reach:10.0.0.1" })),
        row(eip, "communities", true,
            json!({ "address": "10.0.2.0/24", "advertisement": { "communities": ["65000:1", "no-export"], "largeCommunities": ["1:2:3"] } })),
        row(eip, "community out of range", false,
            json!({ "address": "10.0.2.0/24", "advertisement": { "communities": ["65536:1"] } })),
        row(eip, "community with a sign", false,
            json!({ "address": "10.0.2.0/24", "advertisement": { "communities": ["+1:2"] } })),
        row(eip, "large community out of range", false,
            json!({ "address": "10.0.2.0/24", "advertisement": { "largeCommunities": ["1:2:4294967296"] } })),

        row(bgp, "a minimal peer", true, peer(json!({}))),
        row(bgp, "remotePort 0", false, peer(json!({ "transport": { "remotePort": 0 } }))),
        row(bgp, "remotePort 65535", true, peer(json!({ "transport": { "remotePort": 65535 } }))),
        row(bgp, "neighbour of three octets", false, peer(json!({ "conf": { "neighborAddress": "1.2.3" } }))),
        row(bgp, "IPv4-mapped neighbour", false, peer(json!({ "conf": { "neighborAddress": "::ffff:1.2.3.4" } }))),
        row(bgp, "empty sourceAddress", true, peer(json!({ "sourceAddress": "" }))),
        row(bgp, "sourceAddress of the other family", false, peer(json!({ "sourceAddress": "fd00::1" }))),
        row(bgp, "localAddress of the other family", false, peer(json!({ "transport": { "localAddress": "fd00::1" } }))),
        row(bgp, "localAddress not an address", false, peer(json!({ "transport": { "localAddress": "eth0" } }))),
        row(bgp, "localAddress of the same family", true, peer(json!({ "transport": { "localAddress": "10.0.0.2" } }))),
        row(bgp, "holdTime as a string", true, peer(json!({ "timers": { "config": { "holdTime": "90" } } }))),
        row(bgp, "holdTime 0", true, peer(json!({ "timers": { "config": { "holdTime": 0 } } }))),
        row(bgp, "holdTime 2", false, peer(json!({ "timers": { "config": { "holdTime": 2 } } }))),
        row(bgp, "holdTime \"2\"", false, peer(json!({ "timers": { "config": { "holdTime": "2" } } }))),
        row(bgp, "holdTime 65536", false, peer(json!({ "timers": { "config": { "holdTime": 65536 } } }))),
        row(bgp, "holdTime not a number", false, peer(json!({ "timers": { "config": { "holdTime": "abc" } } }))),
        row(bgp, "holdTime with spaces", true, peer(json!({ "timers": { "config": { "holdTime": " 90 " } } }))),
        row(bgp, "holdTime with a tab", false, peer(json!({ "timers": { "config": { "holdTime": "\t90" } } }))),
        row(bgp, "holdTime \"90.0\"", true, peer(json!({ "timers": { "config": { "holdTime": "90.0" } } }))),
        row(bgp, "holdTime \"2.0\"", false, peer(json!({ "timers": { "config": { "holdTime": "2.0" } } }))),
        row(bgp, "holdTime in exponent form", false, peer(json!({ "timers": { "config": { "holdTime": "9e1" } } }))),
        row(bgp, "holdTime with a plus", false, peer(json!({ "timers": { "config": { "holdTime": "+90" } } }))),
        row(bgp, "holdTime as a JSON float", true, peer(json!({ "timers": { "config": { "holdTime": 90.0 } } }))),
        row(bgp, "holdTime as a JSON fraction", false, peer(json!({ "timers": { "config": { "holdTime": 90.5 } } }))),
        row(bgp, "holdTime with leading zeros", true, peer(json!({ "timers": { "config": { "holdTime": "0090" } } }))),
        row(bgp, "holdTime of 21 digits", false, peer(json!({ "timers": { "config": { "holdTime": "0".repeat(21) } } }))),
        row(bgp, "negative keepalive", false, peer(json!({ "timers": { "config": { "keepaliveInterval": -1 } } }))),
        row(bgp, "connectRetry not a number", false, peer(json!({ "timers": { "config": { "connectRetry": "x" } } }))),
        row(bgp, "graceful restart time as a string", true,
            peer(json!({ "gracefulRestart": { "enabled": true, "restartTime": "120" } }))),
        row(bgp, "graceful restart time in exponent form", false,
            peer(json!({ "gracefulRestart": { "enabled": true, "restartTime": "1e2" } }))),

        row(conf, "an AS", true, json!({ "as": 64512 })),
        row(conf, "no AS but a rack map", true, json!({ "as": 0, "asPerRack": { "r1": 64513 } })),
        row(conf, "no AS at all", false, json!({ "as": 0 })),
        row(conf, "routerId with a large octet", false, json!({ "as": 64512, "routerId": "999.0.0.1" })),
        row(conf, "routerId", true, json!({ "as": 64512, "routerId": "10.0.0.1" })),
        row(conf, "listen addresses", true, json!({ "as": 64512, "listenAddresses": ["10.0.0.1", "fd00::1"] })),
        row(conf, "an empty listen address", false, json!({ "as": 64512, "listenAddresses": [""] })),
        row(conf, "a listen address that is a name", false, json!({ "as": 64512, "listenAddresses": ["eth0"] })),
        row(conf, "graceful restart time not a number", false,
            json!({ "as": 64512, "gracefulRestart": { "enabled": true, "restartTime": "abc" } })),
        row(conf, "graceful restart time with a space", true,
            json!({ "as": 64512, "gracefulRestart": { "enabled": true, "restartTime": " 120" } })),
    ]
}

fn object(i: usize, row: &Row) -> Value {
    json!({
        "apiVersion": "network.kubesphere.io/v1alpha2",
        "kind": row.kind,
        "metadata": { "name": format!("row-{i}") },
        "spec": row.spec,
    })
}

/// The standalone verdict: typed deserialization (as the manifest reader does), then the
/// kind's validation. `Err` carries why.
fn standalone(object: &Value) -> Result<(), String> {
    let problems: Vec<String> = match object["kind"].as_str().unwrap() {
        "Eip" => {
            let o: Eip = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
            validate_eip(&o.spec)
                .iter()
                .map(ToString::to_string)
                .collect()
        }
        "BgpPeer" => {
            let o: BgpPeer = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
            validate_bgp_peer(&o.spec)
                .iter()
                .map(ToString::to_string)
                .collect()
        }
        "BgpConf" => {
            let o: BgpConf = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
            validate_bgp_conf(&o.spec)
                .iter()
                .map(ToString::to_string)
                .collect()
        }
        other => panic!("no kind {other}"),
    };
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn standalone_validation_gives_each_rows_verdict() {
    let wrong: Vec<String> = rows()
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let got = standalone(&object(i, r));
            (got.is_ok() != r.valid).then(|| format!("{} {:?}: {got:?}", r.kind, r.what))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "standalone verdicts:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn the_api_server_and_standalone_validation_agree_on_every_row() {
    let cluster = cluster("kube-valid");
    let plane = &cluster.plane;
    for file in ["eips.yaml", "bgppeers.yaml", "bgpconfs.yaml"] {
        let text = std::fs::read_to_string(repo().join("deploy/crds").join(file)).unwrap();
        let crd: Value = serde_yaml::from_str(&text).unwrap();
        install(plane, file, "berth-crds", &[crd]);
    }
    let rows = rows();
    let objects: Vec<Value> = rows.iter().enumerate().map(|(i, r)| object(i, r)).collect();
    // One dry-run create of every row: kubectl goes on after a refusal and names the object.
    let run = kubectl(
        plane,
        &["create", "--dry-run=server", "-f", "-"],
        Some(&stream(&objects)),
    );
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
    let mut wrong = Vec::new();
    for (i, (row, object)) in rows.iter().zip(&objects).enumerate() {
        let name = format!("\"row-{i}\"");
        let server = refusals.iter().find(|r| r.contains(&name));
        let local = standalone(object);
        if server.is_none() != row.valid || local.is_ok() != row.valid {
            wrong.push(format!(
                "{} {:?} (expected {}): API server {}, standalone {:?}",
                row.kind,
                row.what,
                if row.valid { "valid" } else { "invalid" },
                server.map_or("accepted".to_string(), |r| format!("refused: {r}")),
                local
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows disagree:\n  {}\nkubectl stdout:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n  "),
        run.stdout
    );
    eprintln!(
        "{} rows, same verdict from the API server and standalone",
        rows.len()
    );
}
