//! The reconcile against a scripted API server: the pipeline as it runs in the operator
//! (caches → plan → apply → events → status), with `kube::Client` talking to a
//! `tower-test` mock instead of a cluster. Each scenario says, step by step, which
//! requests it expects and how the "API server" answers them; a request it does not
//! expect fails the test with its method and path. The requests of one step may come in
//! any order (the children of one apply stage go out together); the steps are strictly
//! ordered. Nothing here sleeps: every wait on the mock is bounded by [`PATIENCE`], and
//! the reconcile's own end stops a script still waiting for a request.
//!
//! The caches are filled as the watches would fill them: with what the mock answered,
//! trimmed by each kind's cache policy. Events are queued in the context's outbox and
//! read back by the test; no recorder delivers them, so they never reach the mock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tower_test::mock::{self, Handle, SendResponse};

use super::{RESYNC, WHILE_PROGRESSING, error_policy, reconcile};
use crate::api::{Microservice, MicroserviceClass, MicroserviceStatus};
use crate::builders::{Capabilities, ChildKind, KINDS, labels};
use crate::controller::APPLIED_HASH_ANNOTATION;
use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::controller::read_failure::{REASON_FORBIDDEN, REASON_READ_FAILED, ReadFailure};
use crate::controller::report::recorder::{EventType, Outbox, Queued};
use crate::controller::report::status_pace::SETTLE;
use crate::controller::watch::caches::{Caches, ChildCache};
use crate::controller::watch::indexes::{Indexes, Triggers};
use crate::controller::watch::packed_store::{PackedWriter, packed_store};
use crate::controller::watch::pod_index::PodIndex;
use crate::metrics::Metrics;
use crate::status::{
    DEGRADED, DEPENDENCIES_READY, PROGRESSING, READY, REASON_APPLY_FAILED, REASON_CHILD_CONFLICT,
};

/// The longest any step waits for the other side: a request that never comes, or a
/// reconcile that never ends, fails the test after this instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(5);

const NAMESPACE: &str = "shop";
const NAME: &str = "users";
const UID: &str = "uid-users";

// The children of `users`, as the API server serves them (`Capabilities::newest`).
const SERVICE_ACCOUNT: &str = "/api/v1/namespaces/shop/serviceaccounts/users";
const NETWORK_POLICY: &str = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/users";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/users";
const SERVICE: &str = "/api/v1/namespaces/shop/services/users";
const AUTOSCALER: &str = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/users";
const DISRUPTION_BUDGET: &str = "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/users";
const STATUS: &str = "/apis/flotilla.dev/v1alpha1/namespaces/shop/microservices/users/status";

/// The children in apply order: what the pods need first, the workload, the rest.
const STAGES: [&[&str]; 3] = [
    &[SERVICE_ACCOUNT, NETWORK_POLICY],
    &[DEPLOYMENT],
    &[SERVICE, AUTOSCALER, DISRUPTION_BUDGET],
];

/// `users`: one port, autoscaled from two pods, so it has every built-in child.
fn microservice() -> Microservice {
    serde_json::from_value(json!({
        "apiVersion": "flotilla.dev/v1alpha1",
        "kind": "Microservice",
        "metadata": {
            "name": NAME, "namespace": NAMESPACE, "uid": UID,
            "generation": 1, "resourceVersion": "100",
        },
        "spec": {
            "image": "registry.example.com/shop/users:1.0.0",
            "ports": [{"name": "http", "port": 8080, "appProtocol": "http"}],
            "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        },
    }))
    .expect("a Microservice")
}

// ----- The scripted API server -----

/// A request as the mock received it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    content_type: Option<String>,
    body: Value,
}

impl Seen {
    async fn read(request: Request<Body>) -> Self {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("a request body");
        Seen {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(parse_query).unwrap_or_default(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string),
            body: if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("a JSON request body")
            },
        }
    }

    fn line(&self) -> String {
        let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} {}?{}", self.method, self.path, query.join("&"))
    }
}

/// `a=1&b=x%3Dy` as a map; what kube's query strings need decoded (`%XX`, `+`).
fn parse_query(query: &str) -> BTreeMap<String, String> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
                    out.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                byte => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).expect("UTF-8")
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// How the scripted API server answers one request.
enum Reply {
    /// 404, as for an object that does not exist.
    NotFound,
    /// The applied object as the API server stores it: the body, with a UID, a new
    /// resource version and Flotilla's managed fields (owning what it set).
    Applied,
    /// The Microservice with the status the request wrote, at a new resource version.
    StatusWritten(Box<Microservice>),
    /// This object, as it is.
    Object(Value),
    /// The object deleted (a `Success` Status, as for a background deletion).
    Deleted,
    /// A failure `Status`: code, reason, message.
    Refused(u16, &'static str, String),
}

/// One request a step expects, and its answer.
struct Expect {
    method: Method,
    path: String,
    reply: Reply,
}

impl Expect {
    fn new(method: Method, path: &str, reply: Reply) -> Self {
        Expect {
            method,
            path: path.to_string(),
            reply,
        }
    }

    fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The steps of a scenario, in order; the requests of one step in any order.
type Script = Vec<Vec<Expect>>;

/// What the mock saw and answered during one reconcile.
#[derive(Default)]
struct Played {
    seen: Vec<Seen>,
    /// The objects the answers stored (applied children, written statuses): what the
    /// watches deliver next.
    stored: Vec<Value>,
}

impl Played {
    fn lines(&self) -> String {
        self.seen
            .iter()
            .map(|seen| format!("  {}\n", seen.line()))
            .collect()
    }
}

/// The API server's side of the mocked client.
struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    /// The last resource version handed out.
    version: u64,
    /// Each applied object's generation, by path.
    generations: BTreeMap<String, i64>,
}

impl ApiServer {
    /// Answers the requests of `script`, failing on any it does not expect, then waits
    /// for the reconcile to end (`finished`), failing on any request that comes after
    /// the script. Fails too when the reconcile ends or goes quiet for [`PATIENCE`] while
    /// a request is still expected.
    async fn play(mut self, script: Script, mut finished: watch::Receiver<bool>) -> (Self, Played) {
        let mut played = Played::default();
        for (index, mut step) in script.into_iter().enumerate() {
            while !step.is_empty() {
                let wanted: Vec<String> = step.iter().map(Expect::line).collect();
                let Some((request, respond)) = self.next(&mut finished).await else {
                    panic!(
                        "step {index} expected {wanted:?}, but no request came (seen so far:\n{})",
                        played.lines()
                    );
                };
                let seen = Seen::read(request).await;
                let Some(at) = step
                    .iter()
                    .position(|e| e.method == seen.method && e.path == seen.path)
                else {
                    panic!(
                        "unexpected request {} (step {index} expected {wanted:?}; seen before:\n{})",
                        seen.line(),
                        played.lines()
                    );
                };
                let expect = step.remove(at);
                let response = self.answer(expect.reply, &seen, &mut played);
                played.seen.push(seen);
                respond.send_response(response);
            }
        }
        if let Some((request, _)) = self.next(&mut finished).await {
            panic!(
                "unexpected request after the script: {} {} (seen before:\n{})",
                request.method(),
                request.uri(),
                played.lines()
            );
        }
        (self, played)
    }

    /// The next request; None when the reconcile ended first or nothing came in time.
    async fn next(
        &mut self,
        finished: &mut watch::Receiver<bool>,
    ) -> Option<(Request<Body>, SendResponse<Response<Body>>)> {
        let next = async {
            tokio::select! {
                biased;
                next = self.handle.next_request() => next,
                // Every request of a reconcile is answered before it ends: nothing more
                // can come, but what is already queued.
                _ = finished.wait_for(|done| *done) => self.handle.next_request().now_or_never().flatten(),
            }
        };
        tokio::time::timeout(PATIENCE, next).await.ok().flatten()
    }

    /// A request still waiting for an answer, as a line to report.
    fn pending(&mut self) -> Option<String> {
        let (request, _) = self.handle.next_request().now_or_never().flatten()?;
        Some(format!("{} {}", request.method(), request.uri()))
    }

    fn answer(&mut self, reply: Reply, seen: &Seen, played: &mut Played) -> Response<Body> {
        let (code, body) = match reply {
            Reply::NotFound => {
                let name = seen.path.rsplit('/').next().unwrap_or_default();
                (
                    404,
                    failure(404, "NotFound", format!("\"{name}\" not found")),
                )
            }
            Reply::Refused(code, reason, message) => (code, failure(code, reason, message)),
            Reply::Applied => {
                let object = self.stored_apply(&seen.path, &seen.body);
                played.stored.push(object.clone());
                (200, object)
            }
            Reply::StatusWritten(ms) => {
                self.version += 1;
                let mut object = serde_json::to_value(&*ms).expect("a Microservice as JSON");
                object["metadata"]["resourceVersion"] = json!(self.version.to_string());
                object["status"] = seen.body["status"].clone();
                played.stored.push(object.clone());
                (200, object)
            }
            Reply::Object(object) => (200, object),
            Reply::Deleted => (
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
            ),
        };
        Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&body).expect("JSON")))
            .expect("a response")
    }

    /// What the API server stores for a server-side apply of `applied`.
    fn stored_apply(&mut self, path: &str, applied: &Value) -> Value {
        self.version += 1;
        let generation = self.generations.entry(path.to_string()).or_default();
        *generation += 1;
        let generation = *generation;
        let mut object = applied.clone();
        let kind = applied["kind"].as_str().unwrap_or_default().to_lowercase();
        let name = applied["metadata"]["name"].as_str().unwrap_or_default();
        let owned: serde_json::Map<String, Value> = applied
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| !["apiVersion", "kind", "metadata"].contains(&key.as_str()))
            .map(|(key, _)| (format!("f:{key}"), json!({})))
            .collect();
        let metadata = &mut object["metadata"];
        metadata["uid"] = json!(format!("uid-{kind}-{name}"));
        metadata["resourceVersion"] = json!(self.version.to_string());
        metadata["generation"] = json!(generation);
        metadata["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        metadata["managedFields"] = json!([{
            "manager": "flotilla",
            "operation": "Apply",
            "apiVersion": applied["apiVersion"],
            "fieldsType": "FieldsV1",
            "fieldsV1": owned,
        }]);
        object
    }
}

/// A failure `Status` as the API server sends it.
fn failure(code: u16, reason: &str, message: String) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

// ----- Steps of the usual scripts -----

fn get_missing(path: &str) -> Expect {
    Expect::new(Method::GET, path, Reply::NotFound)
}

fn apply(path: &str) -> Expect {
    Expect::new(Method::PATCH, path, Reply::Applied)
}

/// Creating the children of one stage: each is looked for (the cache does not hold an
/// object someone else made), then applied.
fn create_stage(paths: &[&str]) -> Vec<Expect> {
    paths
        .iter()
        .flat_map(|path| [get_missing(path), apply(path)])
        .collect()
}

fn status_write(ms: &Microservice) -> Vec<Expect> {
    vec![Expect::new(
        Method::PATCH,
        STATUS,
        Reply::StatusWritten(Box::new(ms.clone())),
    )]
}

/// Every child created, stage by stage, then the status written.
fn create_script(ms: &Microservice) -> Script {
    let mut script: Script = STAGES.iter().map(|stage| create_stage(stage)).collect();
    script.push(status_write(ms));
    script
}

// ----- The world the reconcile sees -----

/// The caches' writing side: what the watches would deliver.
struct Watches {
    microservices: Writer<Microservice>,
    children: Vec<(&'static ChildKind, PackedWriter)>,
    pods: PackedWriter,
}

/// A context on the scripted API server and caches filled by hand.
struct World {
    ctx: Arc<Context>,
    server: Option<ApiServer>,
    watches: Watches,
    events: mpsc::Receiver<Queued>,
    /// The children as the API server last stored them, by kind.
    stored: BTreeMap<String, Value>,
    /// Writers kept so that their stores stay ready.
    _kept: (
        Writer<MicroserviceClass>,
        Writer<PartialObjectMeta<ConfigMap>>,
        Writer<PartialObjectMeta<Secret>>,
    ),
}

/// A reconcile's outcome and the requests it made.
struct Pass {
    result: Result<Action, Error>,
    played: Played,
}

impl Pass {
    /// The requests as `METHOD path`, in the order they came.
    fn requests(&self) -> Vec<String> {
        self.played
            .seen
            .iter()
            .map(|seen| format!("{} {}", seen.method, seen.path))
            .collect()
    }

    /// The bodies of the status writes.
    fn statuses(&self) -> Vec<MicroserviceStatus> {
        self.played
            .seen
            .iter()
            .filter(|seen| seen.path == STATUS)
            .map(|seen| serde_json::from_value(seen.body["status"].clone()).expect("a status"))
            .collect()
    }

    fn status(&self) -> MicroserviceStatus {
        let statuses = self.statuses();
        assert_eq!(statuses.len(), 1, "one status write: {:?}", self.requests());
        statuses.into_iter().next().expect("one")
    }
}

/// A ready store and its writer, holding `objects`.
fn listed<K>(objects: Vec<K>) -> Writer<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let mut writer = Writer::default();
    writer.apply_watcher_event(&Event::Init);
    for object in objects {
        writer.apply_watcher_event(&Event::InitApply(object));
    }
    writer.apply_watcher_event(&Event::InitDone);
    writer
}

fn listed_packed() -> (
    PackedWriter,
    crate::controller::watch::packed_store::PackedStore,
) {
    let (writer, store) = packed_store();
    writer.apply(&Event::Init);
    writer.apply(&Event::InitDone);
    (writer, store)
}

impl World {
    /// Every cache listed (empty but for `ms`), on a server of the newest version.
    fn new(ms: &Microservice) -> Self {
        let capabilities = Capabilities::newest();
        let (client_side, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(client_side, NAMESPACE);
        let microservices = listed(vec![ms.clone()]);
        let classes = listed(Vec::<MicroserviceClass>::new());
        let config_maps = listed(Vec::<PartialObjectMeta<ConfigMap>>::new());
        let secrets = listed(Vec::<PartialObjectMeta<Secret>>::new());
        let mut child_writers = Vec::new();
        let mut children = Vec::new();
        for &kind in KINDS {
            let Some(resource) = capabilities.api_resource(kind) else {
                continue;
            };
            let (writer, store) = listed_packed();
            child_writers.push((kind, writer));
            children.push(ChildCache {
                kind,
                resource,
                store,
            });
        }
        let (pod_writer, pods) = listed_packed();
        let caches = Caches {
            microservices: microservices.as_reader(),
            classes: classes.as_reader(),
            children,
            pods,
            pod_index: Arc::new(PodIndex::default()),
            config_maps: config_maps.as_reader(),
            secrets: Some(secrets.as_reader()),
            namespaces: None,
            watch_failures: Arc::default(),
        };
        let (outbox, events) = Outbox::new();
        let ctx = Context::new(
            client,
            capabilities,
            caches,
            Arc::new(Indexes::default()),
            // Nothing listens: a scenario drives one Microservice's reconciles itself.
            Triggers::new(futures::channel::mpsc::unbounded().0),
            Arc::new(Metrics::default()),
            outbox,
        );
        World {
            ctx: Arc::new(ctx),
            server: Some(ApiServer {
                handle,
                version: 1000,
                generations: BTreeMap::new(),
            }),
            watches: Watches {
                microservices,
                children: child_writers,
                pods: pod_writer,
            },
            events,
            stored: BTreeMap::new(),
            _kept: (classes, config_maps, secrets),
        }
    }

    /// The Microservice as the cache holds it.
    fn cached(&self) -> Arc<Microservice> {
        self.ctx
            .caches
            .microservices
            .get(&ObjectRef::new(NAME).within(NAMESPACE))
            .expect("users is cached")
    }

    /// Runs one reconcile of `users` against `script`.
    async fn reconcile(&mut self, script: Script) -> Pass {
        let server = self.server.take().expect("the API server is back");
        let (finished, finished_rx) = watch::channel(false);
        let play = tokio::spawn(server.play(script, finished_rx));
        let result =
            tokio::time::timeout(PATIENCE, reconcile(self.cached(), self.ctx.clone())).await;
        finished.send_replace(true);
        let (mut server, played) = match play.await {
            Ok(done) => done,
            Err(error) => {
                eprintln!("the reconcile returned {result:?}");
                std::panic::resume_unwind(error.into_panic())
            }
        };
        let Ok(result) = result else {
            panic!("the reconcile did not end within {PATIENCE:?}");
        };
        if let Some(request) = server.pending() {
            panic!("unexpected request after the reconcile: {request}");
        }
        self.server = Some(server);
        Pass { result, played }
    }

    /// The watches deliver what the API server stored: children into their caches
    /// (trimmed as their kind's cache keeps them), the Microservice with its status.
    fn watch_sees(&mut self, stored: &[Value]) {
        for object in stored {
            if object["kind"] == "Microservice" {
                let ms: Microservice =
                    serde_json::from_value(object.clone()).expect("a Microservice");
                self.watches
                    .microservices
                    .apply_watcher_event(&Event::Apply(ms));
            } else {
                self.child_changed(object.clone());
            }
        }
    }

    /// A child as its watch delivers it.
    fn child_changed(&mut self, object: Value) {
        let kind = object["kind"].as_str().expect("a kind").to_string();
        self.stored.insert(kind.clone(), object.clone());
        let (kind, writer) = self
            .watches
            .children
            .iter()
            .find(|(k, _)| k.kind == kind)
            .expect("a cached kind");
        let mut object: DynamicObject = serde_json::from_value(object).expect("an object");
        (kind.cache)(&mut object);
        writer.apply(&Event::Apply(object));
    }

    /// The Deployment's status as its controller writes it (a new resource version, the
    /// generation unchanged).
    fn deployment_status(&mut self, status: Value) {
        let mut deployment = self.stored["Deployment"].clone();
        let server = self.server.as_mut().expect("the API server is back");
        server.version += 1;
        deployment["metadata"]["resourceVersion"] = json!(server.version.to_string());
        deployment["status"] = status;
        self.child_changed(deployment);
    }

    /// A pod of `users` as the pod watch delivers it: metadata and status only.
    fn pod_changed(&mut self, name: &str, status: Value) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": NAMESPACE, "uid": format!("uid-{name}"),
                "resourceVersion": "1",
                "labels": {labels::INSTANCE: NAME, labels::MANAGED_BY: "flotilla"},
            },
            "status": status,
        }))
        .expect("a pod");
        self.ctx
            .caches
            .pod_index
            .observe(&Event::Apply(pod.clone()));
        self.watches.pods.apply(&Event::Apply(DynamicObject {
            types: None,
            metadata: pod.metadata,
            data: json!({"status": pod.status}),
        }));
    }

    /// The Microservice edited: a new spec, a new generation.
    fn edit(&mut self, edit: impl FnOnce(&mut Microservice)) -> Microservice {
        let mut ms = (*self.cached()).clone();
        edit(&mut ms);
        ms.metadata.generation = ms.metadata.generation.map(|g| g + 1);
        let version: u64 = ms
            .resource_version()
            .unwrap_or_default()
            .parse()
            .unwrap_or(0);
        ms.metadata.resource_version = Some((version + 1).to_string());
        self.watches
            .microservices
            .apply_watcher_event(&Event::Apply(ms.clone()));
        ms
    }

    /// The events queued so far: type, reason, note.
    fn events(&mut self) -> Vec<(EventType, String, String)> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push((event.type_, event.reason, event.note));
        }
        events
    }

    /// How many applies of `kind` the metrics counted with `result` (applied, unchanged).
    fn applies(&self, kind: &str, result: &str) -> u64 {
        self.ctx
            .metrics
            .applies
            .get_or_create(&crate::metrics::ApplyLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .get()
    }

    /// `users` created: every child applied and the first status written, and the
    /// watches caught up with all of it.
    async fn created(&mut self) -> Pass {
        let ms = (*self.cached()).clone();
        let pass = self.reconcile(create_script(&ms)).await;
        assert!(pass.result.is_ok(), "{:?}", pass.result);
        self.watch_sees(&pass.played.stored.clone());
        self.events();
        pass
    }
}

/// A condition's status and reason.
fn verdict(status: &MicroserviceStatus, type_: &str) -> (String, String) {
    let condition = status
        .condition(type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status:?}"));
    (condition.status.clone(), condition.reason.clone())
}

fn message(status: &MicroserviceStatus, type_: &str) -> String {
    status
        .condition(type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

/// The paths of the child PATCHes (server-side applies), in the order they came.
fn child_applies(pass: &Pass) -> Vec<&str> {
    pass.played
        .seen
        .iter()
        .filter(|seen| seen.method == Method::PATCH && seen.path != STATUS)
        .map(|seen| seen.path.as_str())
        .collect()
}

fn sorted<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut paths: Vec<&str> = paths.into_iter().collect();
    paths.sort_unstable();
    paths
}

fn forbidden(message: &str) -> Reply {
    Reply::Refused(403, "Forbidden", message.to_string())
}

#[tokio::test]
async fn creating_applies_the_children_stage_by_stage_then_writes_the_status_once() {
    let ms = microservice();
    let mut world = World::new(&ms);
    // The script holds each stage until the one before is answered: a Deployment
    // request while the ServiceAccount's is unanswered would be unexpected.
    let pass = world.reconcile(create_script(&ms)).await;
    assert_eq!(
        pass.result.as_ref().ok(),
        Some(&Action::requeue(WHILE_PROGRESSING)),
        "{:?}",
        pass.result
    );

    let applies = child_applies(&pass);
    assert_eq!(applies.len(), 6, "{applies:?}");
    assert_eq!(sorted(applies[..2].to_vec()), sorted(STAGES[0].to_vec()));
    assert_eq!(applies[2], DEPLOYMENT);
    assert_eq!(sorted(applies[3..].to_vec()), sorted(STAGES[2].to_vec()));
    assert_eq!(
        pass.requests().last().map(String::as_str),
        Some(format!("PATCH {STATUS}").as_str()),
        "the status comes last"
    );

    for seen in &pass.played.seen {
        if seen.method == Method::GET {
            // Whether someone else made an object of that name: from the watch cache.
            assert_eq!(
                seen.query.get("resourceVersion").map(String::as_str),
                Some("0")
            );
            continue;
        }
        // Server-side apply, under Flotilla's field manager, forced.
        assert_eq!(
            seen.query.get("fieldManager").map(String::as_str),
            Some("flotilla")
        );
        assert_eq!(seen.query.get("force").map(String::as_str), Some("true"));
        assert_eq!(
            seen.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{}",
            seen.line()
        );
        if seen.path == STATUS {
            continue;
        }
        let body = &seen.body;
        let plural = seen.path.rsplit('/').nth(1).expect("a plural");
        let kind = KINDS
            .iter()
            .find(|k| k.plural == plural)
            .expect("a child kind");
        assert_eq!(body["kind"], kind.kind, "{}", seen.line());
        assert_eq!(body["metadata"]["name"], NAME);
        assert_eq!(body["metadata"]["labels"][labels::INSTANCE], NAME);
        let hash = body["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
            .as_str()
            .unwrap_or_default();
        assert_eq!(hash.len(), 16, "{} carries the applied hash", kind.kind);
        let owner = &body["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["kind"], &owner["uid"], &owner["controller"]),
            (&json!("Microservice"), &json!(UID), &json!(true)),
            "{} is controlled by users",
            kind.kind
        );
    }
    // An autoscaled Deployment starts at the minimum; later applies leave the count to
    // the autoscaler.
    let deployment = pass
        .played
        .seen
        .iter()
        .find(|s| s.path == DEPLOYMENT && s.method == Method::PATCH);
    assert_eq!(
        deployment.map(|s| &s.body["spec"]["replicas"]),
        Some(&json!(2))
    );

    let status = pass.status();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(verdict(&status, READY), pair("False", "Creating"));
    assert_eq!(verdict(&status, PROGRESSING), pair("True", "Creating"));
    assert_eq!(verdict(&status, DEGRADED), pair("False", "AsExpected"));
    assert_eq!(
        verdict(&status, DEPENDENCIES_READY),
        pair("True", "NoDependencies")
    );
    assert_eq!(status.replica_summary.as_deref(), Some("0/2"));

    assert_eq!(
        world.events(),
        [(
            EventType::Normal,
            "Created".to_string(),
            "Created ServiceAccount users, NetworkPolicy users, Deployment users, Service users, HorizontalPodAutoscaler users, PodDisruptionBudget users".to_string()
        )]
    );
    for kind in ["ServiceAccount", "NetworkPolicy", "Deployment", "Service"] {
        assert_eq!(world.applies(kind, "applied"), 1, "{kind}");
    }
}

#[tokio::test]
async fn children_the_cache_shows_as_applied_are_not_written_again() {
    let ms = microservice();
    let mut world = World::new(&ms);
    world.created().await;
    // The Deployment controller rolls it out.
    world.deployment_status(json!({
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
        "readyReplicas": 2, "availableReplicas": 2,
    }));

    // Every child matches its applied hash: only the status moves (Ready, at once).
    let pass = world.reconcile(vec![status_write(&ms)]).await;
    assert!(pass.result.is_ok(), "{:?}", pass.result);
    assert_eq!(pass.requests(), [format!("PATCH {STATUS}")]);
    let status = pass.status();
    assert_eq!(verdict(&status, READY), pair("True", "Available"));
    for kind in [
        "ServiceAccount",
        "NetworkPolicy",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ] {
        assert_eq!(world.applies(kind, "applied"), 1, "{kind}: only the create");
        assert_eq!(world.applies(kind, "unchanged"), 1, "{kind}");
    }
    let events = world.events();
    assert!(
        events
            .iter()
            .all(|(_, reason, _)| reason != "Created" && reason != "Updated"),
        "{events:?}"
    );
    world.watch_sees(&pass.played.stored);

    // Nothing changed since: not one request.
    let pass = world.reconcile(vec![]).await;
    assert_eq!(
        pass.result.as_ref().ok(),
        Some(&Action::requeue(RESYNC)),
        "{:?}",
        pass.result
    );
    assert!(pass.requests().is_empty(), "{:?}", pass.requests());
    assert!(world.events().is_empty());
}

#[tokio::test]
async fn pruning_deletes_only_what_this_microservice_s_uid_owns() {
    let ms = microservice();
    let mut world = World::new(&ms);
    world.created().await;
    // An autoscaler of an earlier `users` (deleted and created again: another UID),
    // with the same labels: never this Microservice's to delete.
    let mut earlier = world.stored["HorizontalPodAutoscaler"].clone();
    earlier["metadata"]["name"] = json!("users-earlier");
    earlier["metadata"]["uid"] = json!("uid-hpa-earlier");
    earlier["metadata"]["ownerReferences"][0]["uid"] = json!("uid-users-earlier");
    world.child_changed(earlier);

    // Autoscaling switched off: the autoscaler is no longer wanted.
    let edited = world.edit(|ms| {
        ms.spec.autoscaling = None;
        ms.spec.replicas = Some(2);
    });
    let pass = world
        .reconcile(vec![
            vec![apply(DEPLOYMENT)],
            vec![Expect::new(Method::DELETE, AUTOSCALER, Reply::Deleted)],
            status_write(&edited),
        ])
        .await;
    assert!(pass.result.is_ok(), "{:?}", pass.result);
    let delete = pass
        .played
        .seen
        .iter()
        .find(|s| s.method == Method::DELETE)
        .expect("a delete");
    assert_eq!(delete.body["propagationPolicy"], "Background");
    // The new generation is written at once.
    assert_eq!(pass.status().observed_generation, Some(2));
    assert_eq!(
        world.events(),
        [
            (
                EventType::Normal,
                "Updated".to_string(),
                "Updated Deployment users".to_string()
            ),
            (
                EventType::Normal,
                "Deleted".to_string(),
                "Deleted HorizontalPodAutoscaler users".to_string()
            ),
        ]
    );
}

#[tokio::test]
async fn an_object_of_a_child_s_name_another_uid_controls_is_left_alone_and_reported() {
    let ms = microservice();
    let mut world = World::new(&ms);
    // The Service `users` of an earlier `users`, which garbage collection has not
    // removed yet.
    let earlier = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": NAME, "namespace": NAMESPACE, "uid": "uid-service-earlier",
            "resourceVersion": "50",
            "labels": {labels::INSTANCE: NAME, labels::MANAGED_BY: "flotilla"},
            "ownerReferences": [{
                "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
                "name": NAME, "uid": "uid-users-earlier", "controller": true,
            }],
        },
        "spec": {"ports": [{"port": 8080}]},
    });
    let mut script = create_script(&ms);
    script[2] = vec![
        Expect::new(Method::GET, SERVICE, Reply::Object(earlier)),
        get_missing(AUTOSCALER),
        apply(AUTOSCALER),
        get_missing(DISRUPTION_BUDGET),
        apply(DISRUPTION_BUDGET),
    ];
    let pass = world.reconcile(script).await;
    // A conflict is reported, not retried as an error: only an edit resolves it.
    assert!(pass.result.is_ok(), "{:?}", pass.result);
    assert!(
        !child_applies(&pass).contains(&SERVICE),
        "the Service is not written"
    );

    let status = pass.status();
    assert_eq!(
        verdict(&status, READY),
        pair("False", REASON_CHILD_CONFLICT)
    );
    assert_eq!(
        verdict(&status, DEGRADED),
        pair("True", REASON_CHILD_CONFLICT)
    );
    let said = message(&status, READY);
    assert!(
        said.starts_with("Service users exists and is not this Microservice's (controlled by Microservice users (uid uid-users-earlier))"),
        "{said}"
    );
    let events = world.events();
    assert!(
        events.contains(&(
            EventType::Warning,
            REASON_CHILD_CONFLICT.to_string(),
            said.clone()
        )),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_foreign_service_account_holds_the_deployment_and_what_follows() {
    let ms = microservice();
    let mut world = World::new(&ms);
    // Made by hand, no owner: the pods would run as someone else's identity.
    let by_hand = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {
            "name": NAME, "namespace": NAMESPACE, "uid": "uid-sa-by-hand",
            "resourceVersion": "40",
            "managedFields": [{"manager": "kubectl-create", "operation": "Update"}],
        },
    });
    let pass = world
        .reconcile(vec![
            vec![
                Expect::new(Method::GET, SERVICE_ACCOUNT, Reply::Object(by_hand)),
                get_missing(NETWORK_POLICY),
                apply(NETWORK_POLICY),
            ],
            // Held: only looked for, for conflicts of their own.
            vec![get_missing(DEPLOYMENT)],
            vec![
                get_missing(SERVICE),
                get_missing(AUTOSCALER),
                get_missing(DISRUPTION_BUDGET),
            ],
            status_write(&ms),
        ])
        .await;
    assert!(pass.result.is_ok(), "{:?}", pass.result);
    assert_eq!(child_applies(&pass), [NETWORK_POLICY]);
    let status = pass.status();
    assert_eq!(
        verdict(&status, READY),
        pair("False", REASON_CHILD_CONFLICT)
    );
    let said = message(&status, READY);
    assert!(
        said.contains(
            "ServiceAccount users exists and is not this Microservice's (managed by kubectl-create)"
        ),
        "{said}"
    );
    assert!(said.ends_with("the Deployment and the children after it wait until then: its pods would run as another's ServiceAccount or without their NetworkPolicy"), "{said}");
}

#[tokio::test]
async fn a_refused_deployment_stops_the_later_stages_and_fails_the_reconcile() {
    let ms = microservice();
    let mut world = World::new(&ms);
    let refusal = "Deployment.apps \"users\" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: \"100m\": must be less than or equal to cpu limit";
    let pass = world
        .reconcile(vec![
            create_stage(STAGES[0]),
            vec![
                get_missing(DEPLOYMENT),
                Expect::new(
                    Method::PATCH,
                    DEPLOYMENT,
                    Reply::Refused(422, "Invalid", refusal.to_string()),
                ),
            ],
            // Nothing of the last stage, no pruning: straight to the status.
            status_write(&ms),
        ])
        .await;
    assert_eq!(
        sorted(child_applies(&pass)),
        sorted([SERVICE_ACCOUNT, NETWORK_POLICY, DEPLOYMENT])
    );
    for later in STAGES[2] {
        assert!(
            !pass.requests().iter().any(|r| r.ends_with(later)),
            "{later} was touched"
        );
    }
    let expected = format!("applying Deployment users: {refusal}");
    let status = pass.status();
    assert_eq!(verdict(&status, READY), pair("False", REASON_APPLY_FAILED));
    assert_eq!(message(&status, READY), expected);
    assert_eq!(
        verdict(&status, DEGRADED),
        pair("True", REASON_APPLY_FAILED)
    );

    let error = match pass.result {
        Err(error @ Error::Apply { .. }) => error,
        other => panic!("expected an apply error, got {other:?}"),
    };
    assert_eq!(error.to_string(), expected);

    // The error policy: a backoff per object, doubling, and the Warning event.
    let cached = world.cached();
    assert_eq!(
        error_policy(cached.clone(), &error, world.ctx.clone()),
        Action::requeue(Duration::from_secs(1))
    );
    assert_eq!(
        error_policy(cached, &error, world.ctx.clone()),
        Action::requeue(Duration::from_secs(2))
    );
    let events = world.events();
    assert_eq!(
        events[0],
        (
            EventType::Normal,
            "Created".to_string(),
            "Created ServiceAccount users, NetworkPolicy users".to_string()
        )
    );
    assert_eq!(
        events[1..],
        [
            (
                EventType::Warning,
                REASON_APPLY_FAILED.to_string(),
                expected.clone()
            ),
            (
                EventType::Warning,
                REASON_APPLY_FAILED.to_string(),
                expected.clone()
            ),
        ]
    );
    let failed = world
        .ctx
        .metrics
        .errors
        .get_or_create(&crate::metrics::ErrorLabels {
            reason: "apply_failed".into(),
        })
        .get();
    assert_eq!(failed, 2);
}

#[tokio::test]
async fn a_child_refused_in_the_last_stage_leaves_its_siblings_applied_and_nothing_pruned() {
    let ms = microservice();
    let mut world = World::new(&ms);
    world.created().await;
    // Autoscaling off (the autoscaler is to go), another port (the Service changes) and
    // another disruption budget.
    let edited = world.edit(|ms| {
        ms.spec.autoscaling = None;
        ms.spec.replicas = Some(2);
        ms.spec.ports[0].port = 9090;
        ms.spec.disruption = serde_json::from_value(json!({"minAvailable": 1})).expect("a budget");
    });
    let refusal = "services \"users\" is forbidden: exceeded quota: services.nodeports";
    let pass = world
        .reconcile(vec![
            vec![apply(DEPLOYMENT)],
            // The Service's stage goes out together: its sibling is applied.
            vec![
                Expect::new(Method::PATCH, SERVICE, forbidden(refusal)),
                apply(DISRUPTION_BUDGET),
            ],
            status_write(&edited),
        ])
        .await;
    assert!(
        matches!(
            &pass.result,
            Err(Error::Apply {
                kind: "Service",
                ..
            })
        ),
        "{:?}",
        pass.result
    );
    // The refusal stops what comes after the stage: the autoscaler is not deleted.
    assert!(
        !pass.requests().iter().any(|r| r.starts_with("DELETE")),
        "{:?}",
        pass.requests()
    );
    assert_eq!(
        world.events(),
        [(
            EventType::Normal,
            "Updated".to_string(),
            "Updated Deployment users, PodDisruptionBudget users".to_string()
        )]
    );
    let status = pass.status();
    assert_eq!(verdict(&status, READY), pair("False", REASON_APPLY_FAILED));
    assert_eq!(
        message(&status, READY),
        format!("applying Service users: {refusal}")
    );
}

#[tokio::test]
async fn a_config_map_read_the_api_server_refuses_is_reported_with_its_reason() {
    let config_list = "/api/v1/namespaces/shop/configmaps";
    for (code, reason, expected) in [
        (403, "Forbidden", REASON_FORBIDDEN),
        (500, "InternalError", REASON_READ_FAILED),
    ] {
        let mut ms = microservice();
        ms.spec.env_from =
            serde_json::from_value(json!([{"configMapRef": {"name": "users-config"}}]))
                .expect("envFrom");
        let mut world = World::new(&ms);
        let said = format!("configmaps is refused ({code})");
        let refused = || {
            Expect::new(
                Method::GET,
                config_list,
                Reply::Refused(code, reason, said.clone()),
            )
        };
        // Not in the cache: read by a list of that one name. Refused, nothing is planned
        // nor applied, and the status says which read failed.
        let pass = world
            .reconcile(vec![vec![refused()], status_write(&ms)])
            .await;
        let list = &pass.played.seen[0];
        assert_eq!(
            list.query.get("fieldSelector").map(String::as_str),
            Some("metadata.name=users-config")
        );
        let failure = match &pass.result {
            Err(Error::Read(failure)) => failure.clone(),
            other => panic!("expected a read error, got {other:?}"),
        };
        assert_eq!(failure.reason(), expected);
        let status = pass.status();
        assert_eq!(verdict(&status, READY), pair("False", expected));
        assert_eq!(verdict(&status, DEGRADED), pair("True", expected));
        let message = message(&status, READY);
        let start = if code == 403 {
            "the operator may not list configmaps in namespace shop (reading ConfigMap users-config)"
        } else {
            "list configmaps in namespace shop failed (reading ConfigMap users-config)"
        };
        assert!(message.starts_with(start), "{message}");
        assert!(message.ends_with(&said), "{message}");

        // The same failure again: already said, not written again.
        let pass = world.reconcile(vec![vec![refused()]]).await;
        assert!(
            matches!(pass.result, Err(Error::Read(_))),
            "{:?}",
            pass.result
        );
        assert!(pass.statuses().is_empty());

        let error = Error::Read(failure);
        // Retried within READ_RETRY_MAX, and the reason goes to the event.
        assert_eq!(
            error_policy(world.cached(), &error, world.ctx.clone()),
            Action::requeue(Duration::from_secs(1))
        );
        let events = world.events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            (events[0].0, events[0].1.as_str()),
            (EventType::Warning, expected)
        );
    }
}

#[tokio::test]
async fn a_forbidden_watch_is_reported_a_passing_one_is_not() {
    let ms = microservice();
    let mut world = World::new(&ms);
    let watch_error = |code: u16, reason: &str| {
        watcher::Error::WatchFailed(kube::Error::Api(
            kube::core::Status::failure(&format!("deployments: {reason}"), reason)
                .with_code(code)
                .boxed(),
        ))
    };
    // A watch failing now and then after the caches listed: the reconcile goes on.
    world.ctx.caches.watch_failures.failed(
        "Pod",
        ReadFailure::of_watch("pods", Some(NAMESPACE), &watch_error(500, "InternalError")),
    );
    let pass = world.reconcile(create_script(&ms)).await;
    assert!(pass.result.is_ok(), "{:?}", pass.result);
    world.watch_sees(&pass.played.stored);

    // A watch refused: its cache no longer follows, so nothing is applied; the status
    // names the verb and the resource to grant.
    world.ctx.caches.watch_failures.failed(
        "Deployment",
        ReadFailure::of_watch(
            "deployments",
            Some(NAMESPACE),
            &watch_error(403, "Forbidden"),
        ),
    );
    let pass = world.reconcile(vec![status_write(&ms)]).await;
    assert_eq!(pass.requests(), [format!("PATCH {STATUS}")]);
    assert!(
        matches!(&pass.result, Err(Error::Read(f)) if f.forbidden),
        "{:?}",
        pass.result
    );
    let status = pass.status();
    assert_eq!(verdict(&status, READY), pair("False", REASON_FORBIDDEN));
    let message = message(&status, READY);
    assert!(
        message.starts_with("the operator may not watch deployments in namespace shop (reading the deployments cache)"),
        "{message}"
    );
}

#[tokio::test]
async fn progress_alone_waits_for_the_pace_a_verdict_is_written_at_once() {
    let ms = microservice();
    let mut world = World::new(&ms);
    world.created().await;
    let held = |world: &World| world.ctx.metrics.statuses_held.get();
    assert_eq!(held(&world), 0);

    // The Deployment exists, its controller has not caught up: RollingOut after
    // Creating, Kubernetes at work both times. Held, not written.
    let pass = world.reconcile(vec![]).await;
    assert_eq!(
        pass.result.as_ref().ok(),
        Some(&Action::requeue(WHILE_PROGRESSING)),
        "{:?}",
        pass.result
    );
    assert!(pass.requests().is_empty(), "{:?}", pass.requests());
    assert_eq!(held(&world), 1);

    // A pod the scheduler cannot place: news, but progress only (Ready stays False, and
    // it passes by itself, so not Degraded). It settles first: the reconcile comes back
    // when it is due.
    world.deployment_status(json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2}));
    world.pod_changed(
        "users-1",
        json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
        }]}),
    );
    let pass = world.reconcile(vec![]).await;
    assert_eq!(
        pass.result.as_ref().ok(),
        Some(&Action::requeue(SETTLE)),
        "{:?}",
        pass.result
    );
    assert!(pass.requests().is_empty(), "{:?}", pass.requests());
    assert_eq!(held(&world), 1);

    // Ready turns: written at once, whatever is held.
    world.deployment_status(json!({
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
        "readyReplicas": 2, "availableReplicas": 2,
    }));
    world.pod_changed(
        "users-1",
        json!({"phase": "Running", "conditions": [
            {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"},
        ]}),
    );
    let pass = world.reconcile(vec![status_write(&ms)]).await;
    assert!(pass.result.is_ok(), "{:?}", pass.result);
    assert_eq!(verdict(&pass.status(), READY), pair("True", "Available"));
    assert_eq!(held(&world), 0);
}

#[tokio::test]
async fn a_backing_service_secret_not_cached_is_read_by_name_and_holds_the_deployment() {
    let class: MicroserviceClass = serde_json::from_value(json!({
        "apiVersion": "flotilla.dev/v1alpha1", "kind": "MicroserviceClass",
        "metadata": {"name": "shop"},
        "spec": {"backingServices": {"postgres": {"secret": {"name": "{microservice}-{service}-app"}}}},
    }))
    .expect("a class");
    let mut ms = microservice();
    ms.spec.class = Some("shop".into());
    ms.spec.backing_services =
        serde_json::from_value(json!({"db": {"type": "postgres"}})).expect("backingServices");
    let mut world = World::new(&ms);
    world._kept.0.apply_watcher_event(&Event::Apply(class));
    let secret_list = "/api/v1/namespaces/shop/secrets";
    let none = json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": []});
    let mut script: Script = vec![vec![Expect::new(
        Method::GET,
        secret_list,
        Reply::Object(none),
    )]];
    script.push(create_stage(STAGES[0]));
    // Held by the plan: neither looked for nor applied; the stages after it go on.
    script.push(create_stage(STAGES[2]));
    script.push(status_write(&ms));
    let pass = world.reconcile(script).await;
    assert!(pass.result.is_ok(), "{:?}", pass.result);
    // The class names the Secret, so only the plan knows it: read by a list of that name.
    assert_eq!(
        pass.played.seen[0]
            .query
            .get("fieldSelector")
            .map(String::as_str),
        Some("metadata.name=users-db-app")
    );
    assert!(!child_applies(&pass).contains(&DEPLOYMENT));
    let status = pass.status();
    assert_eq!(
        verdict(&status, "BackingServicesReady"),
        pair("False", "BackingServiceNotFound")
    );
    assert_eq!(
        message(&status, "BackingServicesReady"),
        "db (postgres): Secret users-db-app not found"
    );
    assert_eq!(
        verdict(&status, READY),
        pair("False", "BackingServiceNotFound")
    );
    // The Secret watch now keeps it and wakes this Microservice when it appears.
    assert_eq!(
        world.ctx.indexes.config_users(
            NAMESPACE,
            crate::builders::ConfigKind::Secret,
            "users-db-app"
        ),
        [crate::graph::ObjectKey::new(NAMESPACE, NAME)]
    );
}

#[tokio::test]
async fn a_template_is_discovered_applied_as_an_owned_child_and_holds_the_deployment() {
    let class: MicroserviceClass = serde_json::from_value(json!({
        "apiVersion": "flotilla.dev/v1alpha1", "kind": "MicroserviceClass",
        "metadata": {"name": "shop"},
        "spec": {"backingServices": {"postgres": {"template": {
            "apiVersion": "e2e.flotilla.dev/v1", "kind": "Database",
            "spec": {"owner": "{microservice}", "database": "{service}"},
            "secret": {"name": "{microservice}-{service}-conn"},
        }}}},
    }))
    .expect("a class");
    let mut ms = microservice();
    ms.spec.class = Some("shop".into());
    ms.spec.backing_services =
        serde_json::from_value(json!({"db": {"type": "postgres"}})).expect("backingServices");
    let mut world = World::new(&ms);
    world._kept.0.apply_watcher_event(&Event::Apply(class));
    let none = json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": []});
    let resources = json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "e2e.flotilla.dev/v1",
        "resources": [{"name": "databases", "singularName": "database", "namespaced": true,
            "kind": "Database", "verbs": ["get", "create", "patch"]}],
    });
    let database = "/apis/e2e.flotilla.dev/v1/namespaces/shop/databases/users-db";
    let mut script: Script = vec![
        vec![Expect::new(
            Method::GET,
            "/api/v1/namespaces/shop/secrets",
            Reply::Object(none),
        )],
        // One discovery GET of the kind's group version, then the object by name.
        vec![Expect::new(
            Method::GET,
            "/apis/e2e.flotilla.dev/v1",
            Reply::Object(resources),
        )],
        vec![get_missing(database)],
        vec![apply(database)],
    ];
    script.push(create_stage(STAGES[0]));
    script.push(create_stage(STAGES[2]));
    script.push(status_write(&ms));
    let pass = world.reconcile(script).await;
    assert!(pass.result.is_ok(), "{:?}", pass.result);
    let applied = pass
        .played
        .seen
        .iter()
        .find(|seen| seen.method == Method::PATCH && seen.path == database)
        .expect("the Database applied");
    assert_eq!(
        applied.body["spec"],
        json!({"owner": "users", "database": "db"})
    );
    assert_eq!(applied.body["metadata"]["ownerReferences"][0]["uid"], UID);
    assert_eq!(
        applied.query.get("fieldManager").map(String::as_str),
        Some("flotilla")
    );
    assert!(!child_applies(&pass).contains(&DEPLOYMENT));
    let status = pass.status();
    assert_eq!(
        message(&status, "BackingServicesReady"),
        "db (postgres): Database users-db has no Ready condition yet"
    );
    assert_eq!(
        verdict(&status, READY),
        pair("False", "BackingServiceNotFound")
    );
}
