//! A scripted, in-memory Kubernetes API server behind kube's `Client` (the kube-rs
//! `tower-test` pattern): it stores objects by path, answers GET/POST/PUT/PATCH with
//! `resourceVersion` conflicts like the real one, and records every call for assertions.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the controller made.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    log: Vec<Call>,
    next_rv: u64,
    /// Collections whose lists are held back until [`FakeApi::release_lists`].
    held: Vec<String>,
}

/// The fake server's handle: seed objects, read the call log.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
    release: Arc<tokio::sync::Notify>,
}

fn status(code: StatusCode, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "reason": reason, "code": code.as_u16(), "message": reason})
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

impl FakeApi {
    /// Starts the server; returns a client talking to it.
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = FakeApi::default();
        let state = fake.clone();
        tokio::spawn(async move {
            // Watches are held open, never answered: the objects a test cares about come
            // from the initial list, and the cache stays as the controller left it.
            let mut watches = Vec::new();
            let mut held = Vec::new();
            loop {
                let (request, send) = tokio::select! {
                    next = handle.next_request() => match next {
                        Some(next) => next,
                        None => break,
                    },
                    () = state.release.notified() => {
                        state.state.lock().expect("lock").held.clear();
                        for (request, send) in held.drain(..) {
                            state.answer(request, send).await;
                        }
                        continue;
                    }
                };
                if request.uri().query().unwrap_or("").contains("watch=true") {
                    watches.push(send);
                    continue;
                }
                let path = request.uri().path().to_string();
                if request.method() == Method::GET
                    && state
                        .state
                        .lock()
                        .expect("lock")
                        .held
                        .iter()
                        .any(|h| path.ends_with(h.as_str()))
                {
                    held.push((request, send));
                    continue;
                }
                state.answer(request, send).await;
            }
        });
        (Client::new(service, "default"), fake)
    }

    /// Holds back every list of a collection whose path ends with `suffix` (say `/eips`)
    /// until [`FakeApi::release_lists`]: the order in which a real API server answers is
    /// not the order of the requests.
    pub fn hold_lists(&self, suffix: &str) {
        self.state
            .lock()
            .expect("lock")
            .held
            .push(suffix.to_string());
    }

    /// Answers the held lists now, and holds nothing from then on.
    pub fn release_lists(&self) {
        self.release.notify_one();
    }

    async fn answer(
        &self,
        request: Request<Body>,
        send: tower_test::mock::SendResponse<Response<Body>>,
    ) {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let (code, reply) = self.respond(&parts, body);
        let response = Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&reply).unwrap_or_default()))
            .expect("response");
        send.send_response(response);
    }

    /// Stores an object at its API path.
    pub fn put(&self, path: &str, mut object: Value) {
        let mut s = self.state.lock().expect("lock");
        s.next_rv += 1;
        object["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
        s.objects.insert(path.to_string(), object);
    }

    /// The stored object at a path.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().expect("lock").objects.get(path).cloned()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("lock").log.clone()
    }

    /// Forgets the call log.
    pub fn clear_calls(&self) {
        self.state.lock().expect("lock").log.clear();
    }

    fn respond(&self, parts: &http::request::Parts, body: Value) -> (StatusCode, Value) {
        let path = parts.uri.path().to_string();
        let mut s = self.state.lock().expect("lock");
        s.log.push(Call {
            method: parts.method.clone(),
            path: path.clone(),
            query: parts.uri.query().unwrap_or("").to_string(),
            content_type: parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            body: body.clone(),
        });
        let key = path.strip_suffix("/status").unwrap_or(&path).to_string();
        s.next_rv += 1;
        let rv = s.next_rv.to_string();
        match parts.method {
            Method::GET => match s.objects.get(&key) {
                Some(o) => (StatusCode::OK, o.clone()),
                None if is_collection(&key) => {
                    let items: Vec<Value> = s
                        .objects
                        .iter()
                        .filter(|(k, _)| in_collection(&key, k))
                        .map(|(_, v)| v.clone())
                        .collect();
                    (
                        StatusCode::OK,
                        json!({"apiVersion": "v1", "kind": "List",
                               "metadata": {"resourceVersion": rv}, "items": items}),
                    )
                }
                None => (
                    StatusCode::NOT_FOUND,
                    status(StatusCode::NOT_FOUND, "NotFound"),
                ),
            },
            Method::POST => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("generated-{rv}"));
                let key = format!("{key}/{name}");
                if s.objects.contains_key(&key) {
                    return (
                        StatusCode::CONFLICT,
                        status(StatusCode::CONFLICT, "AlreadyExists"),
                    );
                }
                let mut o = body;
                o["metadata"]["resourceVersion"] = json!(rv);
                o["metadata"]["name"] = json!(name);
                s.objects.insert(key, o.clone());
                (StatusCode::CREATED, o)
            }
            Method::PUT => {
                let stored_rv = s
                    .objects
                    .get(&key)
                    .map(|o| o["metadata"]["resourceVersion"].clone());
                if stored_rv.is_some_and(|r| r != body["metadata"]["resourceVersion"]) {
                    return (
                        StatusCode::CONFLICT,
                        status(StatusCode::CONFLICT, "Conflict"),
                    );
                }
                let mut o = body;
                o["metadata"]["resourceVersion"] = json!(rv);
                s.objects.insert(key, o.clone());
                (StatusCode::OK, o)
            }
            Method::PATCH => {
                let mut o = s.objects.get(&key).cloned().unwrap_or_else(|| json!({}));
                let want_rv = &body["metadata"]["resourceVersion"];
                if !want_rv.is_null() && *want_rv != o["metadata"]["resourceVersion"] {
                    return (
                        StatusCode::CONFLICT,
                        status(StatusCode::CONFLICT, "Conflict"),
                    );
                }
                let mut patch = body;
                if let Some(m) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                merge(&mut o, &patch);
                o["metadata"]["resourceVersion"] = json!(rv);
                s.objects.insert(key, o.clone());
                (StatusCode::OK, o)
            }
            _ => (
                StatusCode::METHOD_NOT_ALLOWED,
                status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ),
        }
    }
}

// `nodes` and `bgppeers`: the controller caches them for the Eips' `Selected` condition.
const COLLECTIONS: [&str; 7] = [
    "services",
    "eips",
    "namespaces",
    "nodes",
    "bgppeers",
    "leases",
    "events",
];

fn is_collection(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| COLLECTIONS.contains(&last))
}

/// Whether the object at `key` belongs to the cluster-wide list at `list`
/// (`/api/v1/services` holds `/api/v1/namespaces/NS/services/NAME`).
fn in_collection(list: &str, key: &str) -> bool {
    let (base, kind) = list.rsplit_once('/').unwrap_or(("", list));
    let Some(rest) = key.strip_prefix(base) else {
        return false;
    };
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    matches!(parts.as_slice(), [k, _] if *k == kind)
        || matches!(parts.as_slice(), ["namespaces", _, k, _] if *k == kind)
}

/// Calls matching a method and a path suffix.
pub fn calls_to<'a>(calls: &'a [Call], method: &Method, path_end: &str) -> Vec<&'a Call> {
    calls
        .iter()
        .filter(|c| c.method == *method && c.path.ends_with(path_end))
        .collect()
}
