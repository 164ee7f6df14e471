//! Carrying decisions out against the API server: status by server-side apply with Berth's
//! fixed field manager, finalizers by merge patch guarded by `resourceVersion`, events through
//! kube's `Recorder`. No decisions are made here.

use std::net::IpAddr;

use api::keys::{CONTROLLER_FIELD_MANAGER, EIP_FINALIZER, SERVICE_FINALIZER};
use api::{Eip, EipStatus};
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::decision::{Event, EventType, FinalizerChange, Subject};

/// Writes `status.loadBalancer.ingress` of a Service by server-side apply.
pub async fn service_ingress(api: &Api<Service>, name: &str, ips: &[IpAddr]) -> kube::Result<()> {
    let ingress: Vec<_> = ips
        .iter()
        .map(|ip| json!({"ip": ip.to_string(), "ipMode": "VIP"}))
        .collect();
    let patch = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "status": {"loadBalancer": {"ingress": ingress}}
    });
    api.patch_status(
        name,
        &PatchParams::apply(CONTROLLER_FIELD_MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map(|_| ())
}

/// Writes an Eip's status by server-side apply.
pub async fn eip_status(api: &Api<Eip>, name: &str, status: &EipStatus) -> kube::Result<()> {
    let patch = json!({
        "apiVersion": "network.kubesphere.io/v1alpha2",
        "kind": "Eip",
        "status": status
    });
    api.patch_status(
        name,
        &PatchParams::apply(CONTROLLER_FIELD_MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map(|_| ())
}

/// Adds or removes `finalizer` on `obj`. The merge patch carries `resourceVersion`, so it
/// never overwrites a finalizer list someone else changed meanwhile; on such a conflict (or a
/// cache lagging behind our own writes) it reads the object afresh and tries once more.
pub async fn finalizer<K>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
    change: FinalizerChange,
) -> kube::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match patch_finalizers(api, obj, finalizer, change).await {
        Err(kube::Error::Api(s)) if s.is_conflict() => {
            let Some(fresh) = api.get_opt(&obj.name_any()).await? else {
                return Ok(());
            };
            patch_finalizers(api, &fresh, finalizer, change).await
        }
        other => other,
    }
}

async fn patch_finalizers<K>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
    change: FinalizerChange,
) -> kube::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut list: Vec<String> = obj.finalizers().to_vec();
    let present = list.iter().any(|f| f == finalizer);
    match change {
        FinalizerChange::Keep => return Ok(()),
        FinalizerChange::Add if present => return Ok(()),
        FinalizerChange::Remove if !present => return Ok(()),
        FinalizerChange::Add => list.push(finalizer.to_string()),
        FinalizerChange::Remove => list.retain(|f| f != finalizer),
    }
    let patch = json!({
        "metadata": {
            "finalizers": list,
            "resourceVersion": obj.resource_version(),
        }
    });
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map(|_| ())
}

/// The finalizer Berth puts on Services.
pub const SERVICE: &str = SERVICE_FINALIZER;
/// The finalizer Berth puts on Eips in use.
pub const EIP: &str = EIP_FINALIZER;

/// The object reference an event is attached to.
pub fn reference(subject: &Subject) -> ObjectReference {
    match subject {
        Subject::Service(s) => ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            namespace: Some(s.namespace.clone()),
            name: Some(s.name.clone()),
            ..ObjectReference::default()
        },
        Subject::Eip(name) => ObjectReference {
            api_version: Some(Eip::api_version(&()).into_owned()),
            kind: Some("Eip".into()),
            name: Some(name.clone()),
            ..ObjectReference::default()
        },
    }
}

/// Publishes events; a failure to record an event is logged, never fatal.
pub async fn events(recorder: &Recorder, events: &[Event], uid: Option<&str>) {
    for e in events {
        let mut reference = reference(&e.subject);
        reference.uid = uid.map(str::to_string);
        let ev = KubeEvent {
            type_: match e.type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: e.reason.clone(),
            note: Some(e.message.chars().take(1000).collect()),
            action: if e.type_ == EventType::Normal {
                "Allocate".into()
            } else {
                "Reconcile".into()
            },
            secondary: None,
        };
        if let Err(err) = recorder.publish(&ev, &reference).await {
            tracing::warn!("recording event {}: {err}", e.reason);
        }
    }
}
