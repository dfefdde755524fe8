//! `flotilla status NAME`: one Microservice as a tree, each node with its health and, where
//! unhealthy, the root cause: its conditions, its class, its rollout, its dependencies
//! with their Ready state, its children and its pods. Read from the live cluster; the
//! tree is computed by pure functions from what was read, so it is tested offline.

use std::process::ExitCode;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde_json::Value;

use super::{StatusArgs, StatusFormat, block_on, write_stdout};
use crate::api::{Microservice, MicroserviceClass};
use crate::builders::{Capabilities, KINDS, deployment, labels};
use crate::graph::ObjectKey;
use crate::status::pod_failure;

/// `flotilla status`: exit 0 when the tree could be read, whatever its health.
pub(super) fn command(args: StatusArgs) -> ExitCode {
    let target = args.target.target();
    let tree = block_on(async {
        let (client, context_namespace) = crate::client::client_for(&target).await?;
        let namespace = args.namespace.unwrap_or(context_namespace);
        let capabilities = crate::controller::discover_capabilities(&client)
            .await
            .map_err(|e| format!("discovering the API server: {e}"))?;
        let observed = read(&client, &capabilities, &namespace, &args.name).await?;
        Ok::<_, String>(tree(&observed))
    });
    match tree {
        Ok(tree) => match args.output {
            StatusFormat::Text => write_stdout(&text(&tree)),
            StatusFormat::Json => write_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&tree).expect("the tree serializes")
            )),
        },
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The whole tree, as `-o json` prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tree {
    pub namespace: String,
    pub name: String,
    pub health: Health,
    /// Ready's reason and message.
    pub reason: String,
    pub message: String,
    /// Every condition as `Type=Status Reason`.
    pub conditions: Vec<String>,
    pub class: Option<Node>,
    pub rollout: Option<Rollout>,
    pub dependencies: Vec<Node>,
    /// Its backing services (`name (type)`, then whether they are there), and the
    /// subjects it publishes and consumes.
    pub backing_services: Vec<String>,
    pub children: Vec<Node>,
    pub pods: Vec<Node>,
}

/// Healthy, still on its way, or in trouble.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Health {
    Healthy,
    #[default]
    Progressing,
    Degraded,
    Missing,
}

impl Health {
    fn mark(self) -> &'static str {
        match self {
            Health::Healthy => "ok",
            Health::Progressing => "..",
            Health::Degraded => "!!",
            Health::Missing => "??",
        }
    }
}

/// One object of the tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub kind: String,
    pub name: String,
    pub health: Health,
    /// What is wrong (the root cause) or a short state.
    pub detail: String,
}

/// The Deployment's rollout of the current spec. Kept apart so that progressive rollouts
/// (canary steps) can add their state here.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub health: Health,
    /// `deployment.kubernetes.io/revision`.
    pub revision: Option<String>,
    pub image: Option<String>,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub detail: String,
}

/// Everything read from the cluster for one Microservice.
pub struct Observed {
    pub microservice: Microservice,
    /// The class named in its status, and whether it exists.
    pub class: Option<(String, bool)>,
    /// Each `dependsOn` entry and the Microservice it names, if it exists.
    pub dependencies: Vec<(ObjectKey, Option<Microservice>)>,
    /// Its children, by kind (JSON, as served), in apply order.
    pub children: Vec<Value>,
    pub deployment: Option<Deployment>,
    pub pods: Vec<Pod>,
}

/// Reads everything the tree shows.
pub async fn read(
    client: &Client,
    capabilities: &Capabilities,
    namespace: &str,
    name: &str,
) -> Result<Observed, String> {
    let microservice = Api::<Microservice>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| format!("reading Microservice {namespace}/{name}: {e}"))?
        .ok_or_else(|| format!("Microservice {namespace}/{name} not found"))?;
    let class_name = microservice
        .status
        .as_ref()
        .and_then(|s| s.class_name.clone())
        .or_else(|| microservice.spec.class.clone());
    let class = match class_name {
        Some(class) => {
            let exists = Api::<MicroserviceClass>::all(client.clone())
                .get_opt(&class)
                .await
                .map_err(|e| format!("reading MicroserviceClass {class}: {e}"))?
                .is_some();
            Some((class, exists))
        }
        None => None,
    };
    let mut dependencies = Vec::new();
    for dependency in &microservice.spec.depends_on {
        let key = ObjectKey::new(
            dependency
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.to_string()),
            dependency.name.clone(),
        );
        let found = Api::<Microservice>::namespaced(client.clone(), &key.namespace)
            .get_opt(&key.name)
            .await
            .unwrap_or(None);
        dependencies.push((key, found));
    }
    let mut children = Vec::new();
    for kind in KINDS {
        let Some(resource) = capabilities.api_resource(kind) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        if let Some(object) = api
            .get_opt(name)
            .await
            .map_err(|e| format!("reading {} {name}: {e}", kind.kind))?
        {
            let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
            value["apiVersion"] = Value::String(resource.api_version.clone());
            value["kind"] = Value::String(resource.kind.clone());
            children.push(value);
        }
    }
    let deployment = children
        .iter()
        .find(|c| c["kind"] == deployment::KIND.kind)
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let selector = format!("{}={name},{}", labels::INSTANCE, labels::MANAGED_SELECTOR);
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("listing the pods of {namespace}/{name}: {e}"))?
        .items;
    Ok(Observed {
        microservice,
        class,
        dependencies,
        children,
        deployment,
        pods,
    })
}

/// The tree of what was read.
pub fn tree(observed: &Observed) -> Tree {
    let ms = &observed.microservice;
    let status = ms.status.clone().unwrap_or_default();
    let ready = status.condition("Ready");
    let current = status.observed_generation.is_some()
        && status.observed_generation == ms.metadata.generation;
    let degraded = status
        .condition("Degraded")
        .is_some_and(|c| c.status == "True");
    let health = match ready {
        Some(c) if c.status == "True" && current => Health::Healthy,
        _ if degraded => Health::Degraded,
        _ => Health::Progressing,
    };
    Tree {
        namespace: ms.namespace().unwrap_or_default(),
        name: ms.name_any(),
        health,
        reason: ready
            .map(|c| c.reason.clone())
            .unwrap_or_else(|| "NoStatus".into()),
        message: ready
            .map(|c| c.message.clone())
            .unwrap_or_else(|| "the operator has not reported on it yet".into()),
        conditions: status
            .conditions
            .iter()
            .map(|c| format!("{}={} {}", c.type_, c.status, c.reason))
            .collect(),
        class: observed.class.as_ref().map(|(name, exists)| Node {
            kind: "MicroserviceClass".into(),
            name: name.clone(),
            health: if *exists {
                Health::Healthy
            } else {
                Health::Missing
            },
            detail: if *exists { "exists" } else { "not found" }.into(),
        }),
        rollout: rollout(ms, observed.deployment.as_ref()),
        dependencies: observed
            .dependencies
            .iter()
            .map(|(key, found)| dependency_node(key, found.as_ref()))
            .collect(),
        backing_services: backing_lines(ms),
        children: observed.children.iter().map(child_node).collect(),
        pods: observed.pods.iter().map(pod_node).collect(),
    }
}

/// One line per backing service and per subject, with `BackingServicesReady` as the
/// operator reported it.
fn backing_lines(ms: &Microservice) -> Vec<String> {
    let condition = ms.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "BackingServicesReady")
    });
    let mut lines: Vec<String> = ms
        .spec
        .backing_services
        .iter()
        .map(|(name, service)| {
            let state = match condition {
                Some(c) if c.status == "True" => "  [✓]".to_string(),
                Some(c) if c.message.contains(&format!("{name} (")) => {
                    format!("  [✗] {}", c.message)
                }
                _ => String::new(),
            };
            format!("{name} ({}){state}", service.type_)
        })
        .collect();
    for (verb, subjects) in [
        ("publishes", &ms.spec.publishes),
        ("consumes", &ms.spec.consumes),
    ] {
        for subject in subjects {
            lines.push(format!(
                "{verb} {} on {}",
                subject.subject, subject.backing_service
            ));
        }
    }
    lines
}

/// The Deployment's rollout: the revision, the image, how many pods run the current
/// template, and whether the Deployment controller gave up.
pub fn rollout(ms: &Microservice, deployment: Option<&Deployment>) -> Option<Rollout> {
    let deployment = deployment?;
    let status = deployment.status.clone().unwrap_or_default();
    let spec = deployment.spec.as_ref();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let image = spec
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone());
    let revision = deployment
        .annotations()
        .get("deployment.kubernetes.io/revision")
        .cloned();
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let seen = status.observed_generation >= deployment.metadata.generation
        && status.observed_generation.is_some();
    let stalled = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    let old = status.replicas.unwrap_or(0) - updated;
    let (health, detail) = if let Some(stalled) = stalled {
        (
            Health::Degraded,
            format!(
                "ProgressDeadlineExceeded: {}",
                stalled.message.clone().unwrap_or_default()
            ),
        )
    } else if ms.spec.paused {
        (
            Health::Progressing,
            "paused: Flotilla changes nothing".into(),
        )
    } else if !seen {
        (
            Health::Progressing,
            "the Deployment controller has not seen the latest template yet".into(),
        )
    } else if updated >= desired && ready >= desired && available >= desired && old == 0 {
        (Health::Healthy, "complete".into())
    } else {
        (
            Health::Progressing,
            format!("{updated}/{desired} updated, {ready} ready, {old} old pods remain"),
        )
    };
    let (health, detail) = release(ms).unwrap_or((health, detail));
    Some(Rollout {
        health,
        revision,
        image,
        desired,
        updated,
        ready,
        available,
        detail,
    })
}

/// The release under way or the one that failed (`status.rollout`), which says more
/// than the Deployment alone: the canary step and weight, the images, the cause of a
/// rollback. None when the last release completed (the Deployment tells the rest).
fn release(ms: &Microservice) -> Option<(Health, String)> {
    use crate::api::RolloutPhase;
    let rollout = ms.status.as_ref()?.rollout.as_ref()?;
    let images = match (&rollout.canary_image, &rollout.stable_image) {
        (Some(new), Some(stable)) => format!(" ({new}; stable {stable})"),
        (Some(new), None) => format!(" ({new})"),
        _ => String::new(),
    };
    let step = match (rollout.step, rollout.steps, rollout.weight) {
        (Some(step), Some(steps), _) if step > steps => "promoting".to_string(),
        (Some(step), Some(steps), Some(weight)) => format!("step {step}/{steps} at {weight}%"),
        _ => String::new(),
    };
    let failed = || {
        rollout
            .failed
            .as_ref()
            .map_or_else(String::new, |f| format!(": {}", f.cause))
    };
    match rollout.phase? {
        RolloutPhase::Healthy => None,
        RolloutPhase::Progressing | RolloutPhase::Promoting => {
            Some((Health::Progressing, format!("releasing {step}{images}")))
        }
        RolloutPhase::Paused => Some((Health::Progressing, format!("paused at {step}{images}"))),
        RolloutPhase::RolledBack => Some((Health::Degraded, format!("rolled back{}", failed()))),
        RolloutPhase::Failed => Some((Health::Degraded, format!("release failed{}", failed()))),
    }
}

fn dependency_node(key: &ObjectKey, found: Option<&Microservice>) -> Node {
    let Some(ms) = found else {
        return Node {
            kind: "Microservice".into(),
            name: key.to_string(),
            health: Health::Missing,
            detail: "not found: the rollout waits for it".into(),
        };
    };
    let ready = ms.status.as_ref().and_then(|s| s.condition("Ready"));
    let (health, detail) = match ready {
        Some(c) if c.status == "True" => (Health::Healthy, "Ready".to_string()),
        Some(c) => (
            Health::Progressing,
            format!("not Ready: {}: {}", c.reason, c.message),
        ),
        None => (Health::Progressing, "no status yet".to_string()),
    };
    Node {
        kind: "Microservice".into(),
        name: key.to_string(),
        health,
        detail,
    }
}

/// A child's health as its kind tells it.
pub fn child_node(child: &Value) -> Node {
    let kind = child["kind"].as_str().unwrap_or("?").to_string();
    let name = child["metadata"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let status = &child["status"];
    let (health, detail) = match kind.as_str() {
        "Deployment" => {
            let desired = child["spec"]["replicas"].as_i64().unwrap_or(1);
            let ready = status["readyReplicas"].as_i64().unwrap_or(0);
            let health = if ready >= desired {
                Health::Healthy
            } else {
                Health::Progressing
            };
            (health, format!("{ready}/{desired} ready"))
        }
        "HorizontalPodAutoscaler" => {
            let failing = conditions(status)
                .find(|c| c["status"] == "False" && c["type"] != "ScalingLimited");
            let current = status["currentReplicas"].as_i64().unwrap_or(0);
            match failing {
                Some(c) => (
                    Health::Degraded,
                    format!(
                        "{}: {}",
                        c["reason"].as_str().unwrap_or_default(),
                        c["message"].as_str().unwrap_or_default()
                    ),
                ),
                None => (Health::Healthy, format!("{current} replicas")),
            }
        }
        "PodDisruptionBudget" => {
            let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
            let wanted = status["desiredHealthy"].as_i64().unwrap_or(0);
            let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
            (
                if healthy >= wanted {
                    Health::Healthy
                } else {
                    Health::Progressing
                },
                format!("{healthy}/{wanted} healthy, {allowed} disruptions allowed"),
            )
        }
        "Service" if child["spec"]["type"] == "LoadBalancer" => {
            match status["loadBalancer"]["ingress"]
                .as_array()
                .filter(|i| !i.is_empty())
            {
                Some(ingress) => (
                    Health::Healthy,
                    format!(
                        "load balancer {}",
                        ingress[0]["ip"]
                            .as_str()
                            .or(ingress[0]["hostname"].as_str())
                            .unwrap_or("?")
                    ),
                ),
                None => (
                    Health::Progressing,
                    "waiting for a load balancer address".into(),
                ),
            }
        }
        "HTTPRoute" => {
            let refused = status["parents"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| conditions(&p.clone()).cloned().collect::<Vec<_>>())
                .find(|c| c["status"] == "False");
            match refused {
                Some(c) => (
                    Health::Degraded,
                    format!(
                        "{}={}: {}",
                        c["type"].as_str().unwrap_or_default(),
                        c["reason"].as_str().unwrap_or_default(),
                        c["message"].as_str().unwrap_or_default()
                    ),
                ),
                None => (Health::Healthy, "accepted".into()),
            }
        }
        _ => (Health::Healthy, "exists".into()),
    };
    Node {
        kind,
        name,
        health,
        detail,
    }
}

fn conditions(status: &Value) -> impl Iterator<Item = &Value> {
    status["conditions"].as_array().into_iter().flatten()
}

/// A pod: running and ready, on its way, or stuck, with the root cause the controller
/// reports for it (ImagePullBackOff, CrashLoopBackOff, Unschedulable...).
pub fn pod_node(pod: &Pod) -> Node {
    let name = pod.name_any();
    let status = pod.status.clone().unwrap_or_default();
    let restarts: i32 = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let (health, detail) = if let Some(cause) = pod_failure(pod) {
        (
            Health::Degraded,
            format!("{}: {}", cause.reason, cause.message),
        )
    } else if ready {
        (
            Health::Healthy,
            format!("Running, ready, {restarts} restarts"),
        )
    } else {
        let waiting = status
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
        (
            Health::Progressing,
            match waiting {
                Some(reason) => format!("{phase}, not ready: {reason}"),
                None => format!("{phase}, not ready, {restarts} restarts"),
            },
        )
    };
    Node {
        kind: "Pod".into(),
        name,
        health,
        detail,
    }
}

/// The tree as text.
pub fn text(tree: &Tree) -> String {
    let mut out = format!(
        "Microservice {}/{}  [{}] {}: {}\n",
        tree.namespace,
        tree.name,
        tree.health.mark(),
        tree.reason,
        tree.message
    );
    let mut branches: Vec<(String, Vec<String>)> = Vec::new();
    branches.push(("conditions".into(), tree.conditions.clone()));
    if let Some(class) = &tree.class {
        branches.push((
            format!(
                "class {}  [{}] {}",
                class.name,
                class.health.mark(),
                class.detail
            ),
            vec![],
        ));
    }
    if let Some(rollout) = &tree.rollout {
        let mut lines = vec![format!(
            "{}/{} updated, {} ready, {} available",
            rollout.updated, rollout.desired, rollout.ready, rollout.available
        )];
        if let Some(image) = &rollout.image {
            lines.push(format!("image {image}"));
        }
        branches.push((
            format!(
                "rollout{}  [{}] {}",
                rollout
                    .revision
                    .as_ref()
                    .map(|r| format!(" (revision {r})"))
                    .unwrap_or_default(),
                rollout.health.mark(),
                rollout.detail
            ),
            lines,
        ));
    }
    let nodes = |nodes: &[Node]| -> Vec<String> {
        nodes
            .iter()
            .map(|n| format!("{} {}  [{}] {}", n.kind, n.name, n.health.mark(), n.detail))
            .collect()
    };
    if !tree.dependencies.is_empty() {
        branches.push(("dependencies".into(), nodes(&tree.dependencies)));
    }
    if !tree.backing_services.is_empty() {
        branches.push(("backing services".into(), tree.backing_services.clone()));
    }
    branches.push(("children".into(), nodes(&tree.children)));
    branches.push(("pods".into(), nodes(&tree.pods)));
    let count = branches.len();
    for (i, (heading, lines)) in branches.into_iter().enumerate() {
        let last = i + 1 == count;
        out.push_str(&format!(
            "{}{heading}\n",
            if last { "└── " } else { "├── " }
        ));
        let prefix = if last { "    " } else { "│   " };
        let n = lines.len();
        for (j, line) in lines.into_iter().enumerate() {
            let branch = if j + 1 == n {
                "└── "
            } else {
                "├── "
            };
            out.push_str(&format!("{prefix}{branch}{line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_release_under_way_or_rolled_back_speaks_for_the_rollout() {
        let canary = microservice(json!({"rollout": {
            "strategy": "canary", "phase": "Paused", "step": 1, "steps": 2, "weight": 25,
            "canaryImage": "users:2", "stableImage": "users:1"}}));
        assert_eq!(
            release(&canary),
            Some((
                Health::Progressing,
                "paused at step 1/2 at 25% (users:2; stable users:1)".into()
            ))
        );
        let rolled_back = microservice(json!({"rollout": {
            "phase": "RolledBack",
            "failed": {"revision": "abc", "cause": "CrashLoopBackOff on pod users-canary-x"}}}));
        assert_eq!(
            release(&rolled_back),
            Some((
                Health::Degraded,
                "rolled back: CrashLoopBackOff on pod users-canary-x".into()
            ))
        );
        let done = microservice(json!({"rollout": {"phase": "Healthy"}}));
        assert_eq!(
            release(&done),
            None,
            "a finished release leaves the Deployment's account"
        );
    }

    fn microservice(status: Value) -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "users", "namespace": "shop", "generation": 2},
            "spec": {"image": "users:2", "dependsOn": [{"name": "db"}, {"name": "gone"}]},
            "status": status
        }))
        .unwrap()
    }

    fn stuck_pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "users-7d9f-abcde"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "app", "image": "users:2",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                    "message": "Back-off pulling image \"users:2\""}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_stuck_on_its_image_is_named_with_the_reason() {
        let ms = microservice(json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "False", "reason": "ImagePullBackOff",
             "message": "pod users-7d9f-abcde, container app: Back-off pulling image \"users:2\"",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Degraded", "status": "True", "reason": "ImagePullBackOff", "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}));
        let db = microservice(json!({"conditions": [{"type": "Ready", "status": "True",
            "reason": "Available", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}));
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "users", "generation": 4, "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "spec": {"replicas": 1, "selector": {}, "template": {"spec": {"containers": [{"name": "app", "image": "users:2"}]}}},
            "status": {"observedGeneration": 4, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}
        }))
        .unwrap();
        let observed = Observed {
            microservice: ms.clone(),
            class: Some(("golden".into(), false)),
            dependencies: vec![
                (ObjectKey::new("shop", "db"), Some(db)),
                (ObjectKey::new("shop", "gone"), None),
            ],
            children: vec![
                json!({"kind": "Deployment", "metadata": {"name": "users"}, "spec": {"replicas": 1}, "status": {"readyReplicas": 1}}),
                json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "users"}, "status": {"conditions": [
                    {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric", "message": "no metrics"}]}}),
            ],
            deployment: Some(deployment),
            pods: vec![stuck_pod()],
        };
        let tree = tree(&observed);
        assert_eq!(tree.health, Health::Degraded);
        assert_eq!(tree.reason, "ImagePullBackOff");
        let pod = &tree.pods[0];
        assert_eq!(pod.health, Health::Degraded);
        assert!(
            pod.detail
                .starts_with("ImagePullBackOff: pod users-7d9f-abcde, container app"),
            "{}",
            pod.detail
        );
        assert_eq!(tree.class.as_ref().unwrap().health, Health::Missing);
        assert_eq!(tree.dependencies[0].health, Health::Healthy);
        assert_eq!(tree.dependencies[1].health, Health::Missing);
        assert_eq!(tree.children[1].health, Health::Degraded);
        assert!(tree.children[1].detail.contains("FailedGetResourceMetric"));
        let rollout = tree.rollout.as_ref().unwrap();
        assert_eq!(
            (rollout.health, rollout.revision.as_deref()),
            (Health::Progressing, Some("2"))
        );
        assert_eq!(rollout.detail, "1/1 updated, 1 ready, 1 old pods remain");
        let text = text(&tree);
        assert!(
            text.starts_with(
                "Microservice shop/users  [!!] ImagePullBackOff: pod users-7d9f-abcde"
            ),
            "{text}"
        );
        assert!(
            text.contains("└── pods\n    └── Pod users-7d9f-abcde  [!!] ImagePullBackOff: "),
            "{text}"
        );
        assert!(
            text.contains("Microservice shop/gone  [??] not found"),
            "{text}"
        );
        let json = serde_json::to_value(&tree).unwrap();
        assert_eq!(json["pods"][0]["health"], "Degraded");
    }

    #[test]
    fn children_say_what_their_kind_tells() {
        let lb = child_node(&json!({"kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}}));
        assert_eq!(
            (lb.health, lb.detail.as_str()),
            (Health::Progressing, "waiting for a load balancer address")
        );
        let lb = child_node(&json!({"kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}));
        assert_eq!(
            (lb.health, lb.detail.as_str()),
            (Health::Healthy, "load balancer 203.0.113.7")
        );
        let pdb = child_node(
            &json!({"kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "status": {"currentHealthy": 1, "desiredHealthy": 2, "disruptionsAllowed": 0}}),
        );
        assert_eq!(
            (pdb.health, pdb.detail.as_str()),
            (Health::Progressing, "1/2 healthy, 0 disruptions allowed")
        );
        let route = child_node(&json!({"kind": "HTTPRoute", "metadata": {"name": "web"},
            "status": {"parents": [{"conditions": [{"type": "Accepted", "status": "False",
                "reason": "NotAllowedByListeners", "message": "namespace not allowed"}]}]}}));
        assert_eq!(route.health, Health::Degraded);
        assert_eq!(
            route.detail,
            "Accepted=NotAllowedByListeners: namespace not allowed"
        );
        let hpa = child_node(
            &json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "status": {"currentReplicas": 3, "conditions": [
                {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange"},
                {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]}}),
        );
        assert_eq!(
            (hpa.health, hpa.detail.as_str()),
            (Health::Healthy, "3 replicas")
        );
    }

    #[test]
    fn a_stale_status_is_not_healthy() {
        let mut ms = microservice(json!({"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Available", "message": "1/1 pods ready",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}));
        let observed = |ms: &Microservice| Observed {
            microservice: ms.clone(),
            class: None,
            dependencies: vec![],
            children: vec![],
            deployment: None,
            pods: vec![],
        };
        assert_eq!(tree(&observed(&ms)).health, Health::Progressing);
        ms.status.as_mut().unwrap().observed_generation = Some(2);
        assert_eq!(tree(&observed(&ms)).health, Health::Healthy);
    }

    #[test]
    fn backing_services_and_subjects_show_with_what_is_missing() {
        let ms: Microservice = serde_saphyr::from_str(
            "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: orders, namespace: shop}, spec: {image: a, backingServices: {db: {type: postgres}, events: {type: nats}}, publishes: [{backingService: events, subject: order.placed}]}, status: {conditions: [{type: BackingServicesReady, status: 'False', reason: BackingServiceNotFound, message: 'db (postgres): Secret orders-db not found', lastTransitionTime: '2026-12-07T00:00:00Z'}]}}",
        )
        .unwrap();
        assert_eq!(
            backing_lines(&ms),
            [
                "db (postgres)  [✗] db (postgres): Secret orders-db not found",
                "events (nats)",
                "publishes order.placed on events",
            ]
        );
    }
}
