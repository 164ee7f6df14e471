//! Every manifest in `deploy/examples/` parses into Berth's types and passes validation, and the
//! committed CRDs in `deploy/crds/` are the ones the code generates.

use std::path::PathBuf;

use api::validate::{validate_bgp_conf, validate_bgp_peer, validate_eip};
use api::{BgpConf, BgpPeer, Eip};
use k8s_openapi::api::core::v1::{Secret, Service};
use serde::Deserialize;

fn repo_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(sub)
}

fn documents(text: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("yaml document"))
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn every_example_parses_and_validates() {
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let dir = repo_dir("deploy/examples");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read");
        for doc in documents(&text) {
            let kind = doc["kind"].as_str().expect("kind").to_string();
            let what = format!("{} ({kind})", path.display());
            match kind.as_str() {
                "Eip" => {
                    let eip: Eip = serde_yaml::from_value(doc).expect(&what);
                    assert_eq!(validate_eip(&eip.spec), vec![], "{what}");
                }
                "BgpPeer" => {
                    let p: BgpPeer = serde_yaml::from_value(doc).expect(&what);
                    assert_eq!(validate_bgp_peer(&p.spec), vec![], "{what}");
                }
                "BgpConf" => {
                    let c: BgpConf = serde_yaml::from_value(doc).expect(&what);
                    assert_eq!(validate_bgp_conf(&c.spec), vec![], "{what}");
                }
                "Service" => {
                    let s: Service = serde_yaml::from_value(doc).expect(&what);
                    assert_eq!(
                        s.spec.and_then(|s| s.type_).as_deref(),
                        Some("LoadBalancer"),
                        "{what}"
                    );
                }
                "Secret" => {
                    let _: Secret = serde_yaml::from_value(doc).expect(&what);
                }
                other => panic!("{what}: unexpected kind {other}"),
            }
            *kinds.entry(kind).or_default() += 1;
        }
    }
    for kind in ["Eip", "BgpPeer", "BgpConf", "Service"] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} example"
        );
    }
}

#[test]
fn openelb_peer_keeps_string_timers_and_ignores_gobgp_leftovers() {
    let text =
        std::fs::read_to_string(repo_dir("deploy/examples/openelb-bgppeer.yaml")).expect("read");
    let peer: BgpPeer = serde_yaml::from_value(documents(&text).remove(0)).expect("peer");
    let timers = peer.spec.timers.and_then(|t| t.config).expect("timers");
    assert_eq!(timers.hold_time.map(|n| n.get()), Some(90));
    assert_eq!(timers.connect_retry.map(|n| n.get()), Some(10));
    assert_eq!(peer.spec.conf.peer_as, 50001);
}

#[test]
fn committed_crds_are_fresh() {
    for (file, crd) in api::crd::all() {
        let path = repo_dir("deploy/crds").join(file);
        let have = std::fs::read_to_string(&path).expect("committed CRD");
        let want = api::crd::render(&crd).expect("render");
        assert!(
            have == want,
            "{file} is stale: run `cargo run -p api --bin crdgen -- deploy/crds`"
        );
    }
}

#[test]
fn crds_carry_the_openelb_contract() {
    let eip = serde_json::to_value(api::crd::all()[0].1.clone()).expect("json");
    assert_eq!(eip["spec"]["scope"], "Cluster");
    assert_eq!(eip["spec"]["group"], "network.kubesphere.io");
    let version = &eip["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha2");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<_> = version["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["jsonPath"].as_str().expect("path").to_string())
        .collect();
    assert!(columns.starts_with(&[
        ".spec.address".to_string(),
        ".status.usage".to_string(),
        ".status.poolSize".to_string()
    ]));
    let address =
        &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["address"];
    assert_eq!(
        address["x-kubernetes-validations"][0]["rule"],
        "self == oldSelf"
    );
}
