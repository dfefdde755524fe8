//! The chart's Argo CD health check (`charts/flotilla/files/argocd-health.lua`) run with
//! a Lua 5.4 interpreter against the statuses this operator writes: each fixture is made
//! by `status::compute` from an observed world, so the Lua reads the conditions, reasons
//! and generations exactly as they come, and a change to the status that the Lua does
//! not follow fails here.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::{Value, json};

use flotilla::api::Microservice;
use flotilla::graph::MissingDependency;
use flotilla::status::{self, Cause, DEGRADED, Observed, REASON_CHILD_CONFLICT};

const SCRIPT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/flotilla/files/argocd-health.lua"
));

/// Runs the health check on `object` as Argo CD does: the object as the global `obj`,
/// the script's return value read as `{status, message}`.
fn health(object: &Value) -> (String, String) {
    let lua = Lua::new();
    // Argo CD hands the script the object without JSON nulls (absent fields are nil).
    let object = lua
        .to_value(&without_nulls(object))
        .expect("the object converts");
    lua.globals().set("obj", object).expect("obj set");
    let hs: Table = lua.load(SCRIPT).eval().expect("the script returns a table");
    (
        hs.get::<String>("status").expect("hs.status"),
        hs.get::<String>("message").unwrap_or_default(),
    )
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn microservice(spec: Value) -> Microservice {
    serde_json::from_value(json!({
        "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
        "metadata": {"name": "users", "namespace": "shop", "generation": 3},
        "spec": spec
    }))
    .unwrap()
}

fn users() -> Microservice {
    microservice(json!({"image": "users:2", "replicas": 2,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "appProtocol": "http"}]}))
}

/// A Deployment at generation 5 with these replica counts.
fn deployment(replicas: i32, updated: i32, ready: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "users", "namespace": "shop", "generation": 5},
        "spec": {"replicas": 2, "selector": {}, "template": {}},
        "status": {"observedGeneration": 5, "replicas": replicas, "updatedReplicas": updated,
                   "readyReplicas": ready, "availableReplicas": ready}
    }))
    .unwrap()
}

fn observed<'a>(deployment: Option<&'a Deployment>, pods: Vec<&'a Pod>) -> Observed<'a> {
    Observed::nothing_but(deployment, pods)
}

/// The Microservice with the status the operator computes for `observed`, as JSON.
fn with_status(mut ms: Microservice, observed: &Observed<'_>) -> Value {
    let now = Time("2026-11-29T00:00:00Z".parse().unwrap());
    ms.status = Some(status::compute(&ms, observed, now));
    serde_json::to_value(ms).unwrap()
}

#[test]
fn ready_is_healthy() {
    let done = deployment(2, 2, 2);
    let (status, message) = health(&with_status(users(), &observed(Some(&done), vec![])));
    assert_eq!(
        (status.as_str(), message.as_str()),
        ("Healthy", "Available: 2/2 pods ready")
    );
}

#[test]
fn a_rollout_under_way_is_progressing() {
    let rolling = deployment(3, 1, 2);
    let (status, message) = health(&with_status(users(), &observed(Some(&rolling), vec![])));
    assert_eq!(status, "Progressing");
    assert!(
        message.starts_with("RollingOut: 1 of 2 pods updated"),
        "{message}"
    );
    // A Microservice just created: no Deployment yet.
    let (status, message) = health(&with_status(users(), &observed(None, vec![])));
    assert_eq!(status, "Progressing");
    assert!(message.starts_with("Creating"), "{message}");
}

#[test]
fn no_status_or_a_stale_one_is_progressing() {
    let (status, _) = health(&serde_json::to_value(users()).unwrap());
    assert_eq!(status, "Progressing");
    let done = deployment(2, 2, 2);
    let mut stale = with_status(users(), &observed(Some(&done), vec![]));
    stale["metadata"]["generation"] = json!(4);
    let (status, message) = health(&stale);
    assert_eq!(
        status, "Progressing",
        "Ready=True of generation 3 says nothing of 4"
    );
    assert_eq!(message, "Waiting for Flotilla to observe generation 4");
}

#[test]
fn a_refused_spec_is_degraded() {
    let done = deployment(2, 2, 2);
    for (reason, message) in [
        (
            "InvalidSpec",
            "spec.metrics.port: `admin` is not one of spec.ports",
        ),
        (
            "PolicyViolation",
            "spec.image: registry docker.io is not allowed",
        ),
        ("ClassNotFound", "MicroserviceClass golden does not exist"),
    ] {
        let mut observed = observed(Some(&done), vec![]);
        observed.refused = Some(Cause::new(reason, message));
        let (status, said) = health(&with_status(users(), &observed));
        assert_eq!(status, "Degraded", "{reason}");
        assert_eq!(said, format!("{reason}: {message}"));
    }
}

#[test]
fn a_child_conflict_is_degraded() {
    let done = deployment(2, 2, 2);
    let mut observed = observed(Some(&done), vec![]);
    observed.child_problem = Some(Cause::new(
        REASON_CHILD_CONFLICT,
        "Service users exists and is not this Microservice's (managed by helm)",
    ));
    let (status, message) = health(&with_status(users(), &observed));
    assert_eq!(status, "Degraded");
    assert!(
        message.starts_with("ChildConflict: Service users"),
        "{message}"
    );
}

#[test]
fn pods_that_cannot_start_are_degraded() {
    let rolling = deployment(3, 1, 2);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "users-7d9f-abcde"},
        "status": {"containerStatuses": [{"name": "app", "image": "users:2", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff",
            "message": "Back-off pulling image \"users:2\""}}}]}
    }))
    .unwrap();
    let (status, message) = health(&with_status(users(), &observed(Some(&rolling), vec![&pod])));
    assert_eq!(status, "Degraded");
    assert!(
        message.starts_with("ImagePullBackOff: pod users-7d9f-abcde"),
        "{message}"
    );
}

#[test]
fn a_rolled_back_rollout_is_degraded_though_the_old_pods_are_ready() {
    // The shape a progressive rollout reports after an automatic rollback: the previous
    // version serves again (Ready=True), Degraded=True with reason RolledBack.
    let done = deployment(2, 2, 2);
    let mut object = with_status(users(), &observed(Some(&done), vec![]));
    let conditions = object["status"]["conditions"].as_array_mut().unwrap();
    let degraded = conditions
        .iter_mut()
        .find(|c| c["type"] == DEGRADED)
        .unwrap();
    degraded["status"] = json!("True");
    degraded["reason"] = json!("RolledBack");
    degraded["message"] =
        json!("canary users:2 failed its analysis at step 2; users:1 serves again");
    let (status, message) = health(&object);
    assert_eq!(status, "Degraded");
    assert!(
        message.starts_with("RolledBack: canary users:2"),
        "{message}"
    );
}

#[test]
fn a_rollback_that_speaks_for_every_condition_is_degraded() {
    // The shape of a rollback by the release state machine of `spec.rollout`: Ready,
    // Progressing and Degraded all give reason RolledBack.
    let done = deployment(2, 2, 2);
    let mut object = with_status(users(), &observed(Some(&done), vec![]));
    for condition in object["status"]["conditions"].as_array_mut().unwrap() {
        let status = match condition["type"].as_str() {
            Some("Ready") | Some("Progressing") => "False",
            Some("Degraded") => "True",
            _ => continue,
        };
        condition["status"] = json!(status);
        condition["reason"] = json!("RolledBack");
        condition["message"] =
            json!("rolled back from users:2 to users:1: CrashLoopBackOff on pod users-canary-x");
    }
    object["status"]["rollout"] = json!({"phase": "RolledBack", "stableImage": "users:1"});
    let (status, message) = health(&object);
    assert_eq!(status, "Degraded");
    assert!(
        message.starts_with("RolledBack: rolled back from users:2"),
        "{message}"
    );
}

#[test]
fn a_canary_step_that_holds_is_suspended() {
    let rolling = deployment(3, 1, 3);
    let mut object = with_status(users(), &observed(Some(&rolling), vec![]));
    object["status"]["rollout"] =
        json!({"strategy": "canary", "phase": "Paused", "step": 1, "steps": 3, "weight": 20});
    let (status, message) = health(&object);
    assert_eq!(status, "Suspended");
    assert_eq!(
        message,
        "canary paused at step 1/3 (20% of the pods): it goes on when the pause ends or the release is promoted"
    );
    // A failure seen during the pause wins.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "users-canary-x"},
        "status": {"containerStatuses": [{"name": "app", "image": "users:2", "imageID": "",
            "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff",
            "message": "back-off 40s"}}}]}
    }))
    .unwrap();
    let mut failing = with_status(users(), &observed(Some(&rolling), vec![&pod]));
    failing["status"]["rollout"] = object["status"]["rollout"].clone();
    assert_eq!(health(&failing).0, "Degraded");
}

#[test]
fn a_stalled_rollout_is_degraded() {
    let mut stalled = deployment(3, 1, 2);
    stalled.status.as_mut().unwrap().conditions = Some(vec![
        serde_json::from_value(json!({"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"users-7d9f\" has timed out progressing."}))
        .unwrap(),
    ]);
    let (status, _) = health(&with_status(users(), &observed(Some(&stalled), vec![])));
    assert_eq!(status, "Degraded");
}

#[test]
fn waiting_for_a_dependency_is_progressing() {
    let done = deployment(2, 2, 2);
    let missing = [MissingDependency {
        name: "db".into(),
        namespace: "shop".into(),
        reason: "not found".into(),
    }];
    let mut observed = observed(Some(&done), vec![]);
    observed.missing_dependencies = &missing;
    let (status, message) = health(&with_status(users(), &observed));
    assert_eq!(status, "Progressing");
    assert!(message.starts_with("DependencyNotFound"), "{message}");
}

#[test]
fn paused_is_suspended() {
    let behind = deployment(3, 1, 1);
    let mut observed = observed(Some(&behind), vec![]);
    observed.paused = true;
    let mut ms = users();
    ms.spec.paused = true;
    let (status, _) = health(&with_status(ms, &observed));
    assert_eq!(status, "Suspended");
}

#[test]
fn statuses_read_back_from_the_cluster_decide_the_same() {
    // `kubectl get ms -o json` on the embedded 1.20 cluster (managed fields left out): a
    // Ready service with metrics on a cluster without ServiceMonitors, and one whose
    // image does not exist.
    for (file, expected) in [
        ("ready.json", "Healthy"),
        ("image-pull-backoff.json", "Degraded"),
    ] {
        let path = format!(
            "{}/tests/fixtures/argocd/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let object: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(health(&object).0, expected, "{file}");
    }
}
