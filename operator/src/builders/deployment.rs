//! The Deployment: one container as specified, hardened pod, safe rollouts.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Lifecycle, LifecycleHandler, LocalObjectReference, PodSpec,
    PodTemplateSpec, ResourceRequirements, SleepAction, TopologySpreadConstraint, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    FieldsV1, LabelSelector, ManagedFieldsEntry, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::kind::{ChildKind, Handover, KindVersion, to_child};
use super::{
    BuildContext, BuildError, FIELD_MANAGER, container_port, env, labels, probes, protocol_name,
    security,
};
use crate::api::{ImagePullPolicy, Microservice, MicroserviceSpec, PodTemplate, ResourceAmounts};

/// The container's name. Fixed rather than the Microservice's name, so that renaming a
/// service never changes what `kubectl logs -c` or a sidecar injector refers to.
pub const CONTAINER_NAME: &str = "app";
pub const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Long enough for endpoints to drop the pod before the process gets SIGTERM.
pub const PRE_STOP_SLEEP_SECONDS: i64 = 5;
pub const REVISION_HISTORY_LIMIT: i32 = 5;
pub const HOSTNAME_TOPOLOGY_KEY: &str = "kubernetes.io/hostname";

/// The Deployment kind. Its cache keeps what Flotilla applied, the status (readiness,
/// root causes) and, of the managed fields, only whether Flotilla's apply owns
/// `spec.replicas`: what the replica hand-over reads.
pub static KIND: ChildKind = ChildKind::new(
    "Deployment",
    "apps",
    "deployments",
    &[KindVersion::since("v1", 1, 9)],
    |ms, ctx| to_child(KIND.kind, Some(build(ms, ctx)?)),
)
.caching(|deployment| {
    super::owned::keep_owned(deployment, &["status"]);
    keep_replicas_ownership(deployment);
})
.with_hooks(start_at_minimum, hand_over_replicas)
.removing_dropped(drop_removed_probes);

const PROBES: [&str; 3] = ["livenessProbe", "readinessProbe", "startupProbe"];

/// The probes `live` has that `desired` no longer sets (no ports left, probes disabled),
/// as a strategic merge patch deleting them. Server-side apply removes only the fields
/// Flotilla owned and leaves those the API server defaulted in (the thresholds, the HTTP
/// scheme): a probe without a handler, which the API server then refuses ("must specify
/// a handler type"), seen on Kubernetes 1.20.
pub fn drop_removed_probes(desired: &Value, live: &Value) -> Option<Value> {
    let containers = |object: &Value| -> Vec<Value> {
        object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let wanted = containers(desired);
    let removals: Vec<Value> = containers(live)
        .iter()
        .filter_map(|running| {
            let name = running["name"].as_str()?;
            let want = wanted.iter().find(|c| c["name"] == running["name"])?;
            let mut removal = serde_json::Map::new();
            for probe in PROBES {
                if !running[probe].is_null() && want[probe].is_null() {
                    removal.insert(probe.to_string(), Value::Null);
                }
            }
            (!removal.is_empty()).then(|| {
                removal.insert("name".to_string(), Value::String(name.to_string()));
                Value::Object(removal)
            })
        })
        .collect();
    (!removals.is_empty())
        .then(|| serde_json::json!({"spec": {"template": {"spec": {"containers": removals}}}}))
}

/// Where `spec.replicas` sits in a managed fields entry.
const REPLICAS_FIELD: [&str; 2] = ["f:spec", "f:replicas"];

/// Reduces the managed fields to Flotilla's apply entry, holding `spec.replicas` alone,
/// when that entry owns it; drops them otherwise. The full list is most of a
/// Deployment's size.
pub fn keep_replicas_ownership(object: &mut DynamicObject) {
    let owns = object
        .metadata
        .managed_fields
        .take()
        .unwrap_or_default()
        .into_iter()
        .any(|entry| {
            entry.manager.as_deref() == Some(FIELD_MANAGER)
                && entry.operation.as_deref() == Some("Apply")
                && entry.fields_v1.is_some_and(|fields| {
                    REPLICAS_FIELD
                        .iter()
                        .try_fold(&fields.0, |node, key| node.get(*key))
                        .is_some()
                })
        });
    object.metadata.managed_fields = owns.then(|| {
        vec![ManagedFieldsEntry {
            manager: Some(FIELD_MANAGER.to_string()),
            operation: Some("Apply".to_string()),
            fields_v1: Some(FieldsV1(json!({ "f:spec": { "f:replicas": {} } }))),
            ..ManagedFieldsEntry::default()
        }]
    });
}

/// The field manager that holds only `spec.replicas` of a Deployment while the
/// HorizontalPodAutoscaler takes it over (see [`hand_over_replicas`]).
pub const HANDOVER_MANAGER: &str = "flotilla-replicas-handover";

/// A new autoscaled Deployment starts at the autoscaler's minimum rather than at one
/// pod; the next apply hands the field over (see [`hand_over_replicas`]).
fn start_at_minimum(ms: &Microservice, desired: &mut Value) {
    // The canary Deployment's count is the rollout's, autoscaled or not.
    let canary = desired["metadata"]["labels"][labels::TRACK].is_string();
    if let Some(autoscaling) = &ms.spec.autoscaling
        && !canary
    {
        desired["spec"]["replicas"] = json!(autoscaling.min_replicas);
    }
}

/// When autoscaling is switched on, the Deployment is applied without `spec.replicas`.
/// If Flotilla was the field's only owner, the API server would drop it and the
/// Deployment would fall back to one replica until the autoscaler reacts. Handing the
/// field to a separate manager first, at its current value, keeps the pods running.
pub fn hand_over_replicas(desired: &Value, live: &Value) -> Option<Handover> {
    let wants_replicas = desired["spec"].get("replicas").is_some();
    if wants_replicas || !owns_field(live, FIELD_MANAGER, &REPLICAS_FIELD) {
        return None;
    }
    let current = live["spec"]["replicas"].as_i64()?;
    Some(Handover {
        manager: HANDOVER_MANAGER,
        patch: json!({
            "apiVersion": desired["apiVersion"],
            "kind": KIND.kind,
            "metadata": { "name": desired["metadata"]["name"] },
            "spec": { "replicas": current },
        }),
    })
}

/// Whether `manager` holds `path` through server-side apply, by the live object's
/// managed fields.
fn owns_field(live: &Value, manager: &str, path: &[&str]) -> bool {
    live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|entry| {
            entry["manager"].as_str() == Some(manager)
                && entry["operation"].as_str() == Some("Apply")
                && path
                    .iter()
                    .try_fold(&entry["fieldsV1"], |node, key| node.get(*key))
                    .is_some()
        })
}

pub fn build(ms: &Microservice, ctx: &BuildContext) -> Result<Deployment, BuildError> {
    let spec = &ms.spec;
    let name = ms.name_any();
    let selector = labels::selector_labels(&name);
    Ok(Deployment {
        metadata: labels::child_meta(ms),
        spec: Some(DeploymentSpec {
            // Under autoscaling the field is left out entirely: server-side apply would
            // otherwise make Flotilla the owner of the count and fight the HPA.
            replicas: match spec.autoscaling {
                Some(_) => None,
                None => Some(spec.replicas.unwrap_or(1)),
            },
            // As many old ReplicaSets as releases in the history: an undo runs one of them.
            revision_history_limit: Some(
                spec.rollout
                    .as_ref()
                    .and_then(|r| r.revision_history_limit)
                    .unwrap_or(REVISION_HISTORY_LIMIT)
                    .clamp(1, 20),
            ),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    // Never below the desired count during a rollout.
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::String("25%".to_string())),
                }),
            }),
            // The release's deadline is the Deployment's too: its own condition (600 s by
            // default) would otherwise report a stall the spec allows for.
            progress_deadline_seconds: spec
                .rollout
                .as_ref()
                .and_then(|rollout| rollout.progress_deadline_seconds),
            template: pod_template(ms, ctx, &selector)?,
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

fn pod_template(
    ms: &Microservice,
    ctx: &BuildContext,
    selector: &BTreeMap<String, String>,
) -> Result<PodTemplateSpec, BuildError> {
    let spec = &ms.spec;
    let template = spec.pod_template.clone().unwrap_or_default();
    let (volumes, mounts) = security::writable_volumes(spec)?;
    let container = container(spec, ctx, mounts)?;
    let mut built = PodTemplateSpec {
        metadata: Some(pod_metadata(ms, &template, &ctx.config_hash)),
        spec: Some(pod_spec(ms, template, selector, container, volumes)),
    };
    let revision = template_revision(&built)?;
    if let Some(labels) = built.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.insert(labels::REVISION.to_string(), revision);
    }
    Ok(built)
}

/// The revision of a pod template: a hash of it as built, before the revision label is
/// added. Two specs that give the same pods give the same revision.
fn template_revision(template: &PodTemplateSpec) -> Result<String, BuildError> {
    let value = serde_json::to_value(template).map_err(|e| BuildError::Serialize {
        kind: KIND.kind,
        message: e.to_string(),
    })?;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(value.to_string().as_bytes());
    Ok(digest[..5].iter().map(|b| format!("{b:02x}")).collect())
}

/// The revision label of a Deployment's pod template, as built by [`build`].
pub fn revision_of(deployment: &Value) -> Option<&str> {
    deployment["spec"]["template"]["metadata"]["labels"][labels::REVISION].as_str()
}

/// The pod's labels and annotations: the template's, Flotilla's labels and the hash of
/// the configuration the pods read.
fn pod_metadata(ms: &Microservice, template: &PodTemplate, config_hash: &str) -> ObjectMeta {
    // Flotilla's labels are applied last so the selector labels cannot be replaced.
    let mut pod_labels = template.labels.clone();
    pod_labels.extend(labels::common_labels(ms));

    let mut annotations = template.annotations.clone();
    if !config_hash.is_empty() {
        annotations.insert(
            labels::CONFIG_HASH_ANNOTATION.to_string(),
            config_hash.to_string(),
        );
    }
    ObjectMeta {
        labels: Some(pod_labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    }
}

fn pod_spec(
    ms: &Microservice,
    template: PodTemplate,
    selector: &BTreeMap<String, String>,
    container: Container,
    volumes: Vec<Volume>,
) -> PodSpec {
    let spec = &ms.spec;
    let image_pull_secrets = image_pull_secrets(spec);
    PodSpec {
        containers: vec![container],
        service_account_name: Some(ms.name_any()),
        automount_service_account_token: Some(false),
        image_pull_secrets: (!image_pull_secrets.is_empty()).then_some(image_pull_secrets),
        security_context: Some(security::pod_security_context(spec)),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_PERIOD_SECONDS),
        volumes: Some(volumes),
        topology_spread_constraints: spread_constraints(
            spec,
            &template.topology_spread_constraints,
            selector,
        ),
        node_selector: (!template.node_selector.is_empty()).then_some(template.node_selector),
        tolerations: (!template.tolerations.is_empty()).then_some(template.tolerations),
        affinity: template.affinity,
        priority_class_name: template.priority_class_name,
        ..PodSpec::default()
    }
}

fn image_pull_secrets(spec: &MicroserviceSpec) -> Vec<LocalObjectReference> {
    spec.image_pull_secrets
        .iter()
        .map(|name| LocalObjectReference { name: name.clone() })
        .collect()
}

/// The template's constraints when it gives any; otherwise a spread across nodes once
/// there can be more than one pod. They select by the Deployment's selector, not by
/// `labels::pod_selector`: a changed constraint would roll every running pod, for a skew
/// only a namesake workload's pods could cause.
fn spread_constraints(
    spec: &MicroserviceSpec,
    given: &[TopologySpreadConstraint],
    selector: &BTreeMap<String, String>,
) -> Option<Vec<TopologySpreadConstraint>> {
    if !given.is_empty() {
        Some(own_pods_spread(given, selector))
    } else if max_replicas(spec) > 1 {
        Some(vec![hostname_spread(selector)])
    } else {
        None
    }
}

fn hostname_spread(selector: &BTreeMap<String, String>) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew: 1,
        topology_key: HOSTNAME_TOPOLOGY_KEY.to_string(),
        // A preference, not a rule: a one-node cluster must still run every pod.
        when_unsatisfiable: "ScheduleAnyway".to_string(),
        label_selector: Some(LabelSelector {
            match_labels: Some(selector.clone()),
            match_expressions: None,
        }),
        ..TopologySpreadConstraint::default()
    }
}

/// The pod's only container; `mounts` are its writable paths.
fn container(
    spec: &MicroserviceSpec,
    ctx: &BuildContext,
    mounts: Vec<VolumeMount>,
) -> Result<Container, BuildError> {
    let probes = probes::build(spec, &ctx.capabilities)?;
    let env = env::env_vars(
        spec,
        &ctx.dependencies,
        &ctx.backing,
        &ctx.backing_microservices,
        &ctx.snapshots,
    );
    let ports = container_ports(spec);
    Ok(Container {
        name: CONTAINER_NAME.to_string(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec
            .image_pull_policy
            .map(|policy| pull_policy_name(policy).to_string()),
        command: spec.command.clone(),
        args: spec.args.clone(),
        env: (!env.is_empty()).then_some(env),
        env_from: env::env_from(spec, &ctx.snapshots),
        resources: Some(resources(spec)),
        ports: (!ports.is_empty()).then_some(ports),
        readiness_probe: probes.readiness,
        liveness_probe: probes.liveness,
        startup_probe: probes.startup,
        lifecycle: ctx.capabilities.sleep_action.then(pre_stop_sleep),
        security_context: Some(security::container_security_context(spec)),
        volume_mounts: Some(mounts),
        ..Container::default()
    })
}

fn container_ports(spec: &MicroserviceSpec) -> Vec<ContainerPort> {
    spec.ports
        .iter()
        .map(|port| ContainerPort {
            name: Some(port.name.clone()),
            container_port: container_port(port),
            protocol: Some(protocol_name(port)),
            ..ContainerPort::default()
        })
        .collect()
}

fn pull_policy_name(policy: ImagePullPolicy) -> &'static str {
    match policy {
        ImagePullPolicy::Always => "Always",
        ImagePullPolicy::IfNotPresent => "IfNotPresent",
        ImagePullPolicy::Never => "Never",
    }
}

fn pre_stop_sleep() -> Lifecycle {
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: PRE_STOP_SLEEP_SECONDS,
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    }
}

/// The given constraints, each without a `labelSelector` selecting the Microservice's
/// own pods. A constraint without one counts no pods at all and so spreads nothing; a
/// class's default constraints cannot know the pods' labels and leave it out.
fn own_pods_spread(
    constraints: &[TopologySpreadConstraint],
    selector: &BTreeMap<String, String>,
) -> Vec<TopologySpreadConstraint> {
    constraints
        .iter()
        .cloned()
        .map(|mut constraint| {
            if constraint.label_selector.is_none() {
                constraint.label_selector = Some(LabelSelector {
                    match_labels: Some(selector.clone()),
                    match_expressions: None,
                });
            }
            constraint
        })
        .collect()
}

/// The most pods there can be: the autoscaler's maximum, or the fixed count.
pub fn max_replicas(spec: &MicroserviceSpec) -> i32 {
    match &spec.autoscaling {
        Some(autoscaling) => autoscaling.max_replicas,
        None => spec.replicas.unwrap_or(1),
    }
}

/// The fewest pods there can be: the autoscaler's minimum, or the fixed count.
pub fn min_replicas(spec: &MicroserviceSpec) -> i32 {
    match &spec.autoscaling {
        Some(autoscaling) => autoscaling.min_replicas,
        None => spec.replicas.unwrap_or(1),
    }
}

/// The container's resources: as given, or the defaults when nothing is given. No CPU
/// limit by default, to avoid throttling.
pub fn resources(spec: &MicroserviceSpec) -> ResourceRequirements {
    let given = spec.resources.clone().unwrap_or_default();
    let requests = given.requests.as_ref().and_then(amounts);
    let limits = given.limits.as_ref().and_then(amounts);
    if requests.is_none() && limits.is_none() {
        return ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("50m".to_string())),
                ("memory".to_string(), Quantity("64Mi".to_string())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("256Mi".to_string()),
            )])),
            ..ResourceRequirements::default()
        };
    }
    ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    }
}

fn amounts(amounts: &ResourceAmounts) -> Option<BTreeMap<String, Quantity>> {
    let map: BTreeMap<String, Quantity> = [("cpu", &amounts.cpu), ("memory", &amounts.memory)]
        .into_iter()
        .filter_map(|(name, quantity)| quantity.clone().map(|q| (name.to_string(), q)))
        .collect();
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {

    #[test]
    fn probes_dropped_from_the_spec_are_removed_by_name() {
        let live = serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "livenessProbe": {"httpGet": {"port": 8080}}, "readinessProbe": {"tcpSocket": {"port": 8080}}},
            {"name": "sidecar", "livenessProbe": {"tcpSocket": {"port": 9000}}}
        ]}}}});
        let desired = serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "readinessProbe": {"tcpSocket": {"port": 8080}}},
            {"name": "sidecar", "livenessProbe": {"tcpSocket": {"port": 9000}}}
        ]}}}});
        assert_eq!(
            drop_removed_probes(&desired, &live),
            Some(
                serde_json::json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "livenessProbe": null}
                ]}}}})
            )
        );
        assert_eq!(drop_removed_probes(&live, &live), None);
    }

    use super::*;

    fn live_with_replicas_owned_by(manager: &str) -> Value {
        json!({
            "metadata": {"name": "users", "managedFields": [
                {"manager": manager, "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}}
            ]},
            "spec": {"replicas": 3}
        })
    }

    fn microservice(spec: &str) -> Microservice {
        serde_saphyr::from_str(&format!(
            "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {{name: users, namespace: shop}}\nspec: {spec}"
        ))
        .unwrap()
    }

    #[test]
    fn every_pull_policy_has_its_kubernetes_name() {
        assert_eq!(pull_policy_name(ImagePullPolicy::Always), "Always");
        assert_eq!(
            pull_policy_name(ImagePullPolicy::IfNotPresent),
            "IfNotPresent"
        );
        assert_eq!(pull_policy_name(ImagePullPolicy::Never), "Never");
    }

    #[test]
    fn no_annotations_without_template_annotations_or_config_hash() {
        let ms = microservice("{image: a}");
        let metadata = pod_metadata(&ms, &PodTemplate::default(), "");
        assert_eq!(metadata.annotations, None);
        assert_eq!(metadata.labels, Some(labels::common_labels(&ms)));
    }

    #[test]
    fn the_release_deadline_is_the_deployment_s() {
        let ctx = BuildContext::standalone(crate::builders::Capabilities::newest());
        let deadline = |yaml: &str| {
            build(&microservice(yaml), &ctx)
                .unwrap()
                .spec
                .unwrap()
                .progress_deadline_seconds
        };
        assert_eq!(
            deadline("{image: a, rollout: {progressDeadlineSeconds: 3600}}"),
            Some(3600)
        );
        // Unset, the Deployment's default (600 s) is the release's default too.
        assert_eq!(deadline("{image: a}"), None);
    }

    #[test]
    fn a_pod_without_pull_secrets_or_ports_leaves_them_out() {
        let ms = microservice("{image: a, command: [serve]}");
        let ctx = BuildContext::standalone(crate::builders::Capabilities::newest());
        let selector = labels::selector_labels("users");
        let template = pod_template(&ms, &ctx, &selector).unwrap();
        let pod = template.spec.unwrap();
        assert_eq!(pod.image_pull_secrets, None);
        let container = &pod.containers[0];
        assert_eq!(container.ports, None);
        assert_eq!(container.image_pull_policy, None);
        assert_eq!(container.command, Some(vec!["serve".to_string()]));
    }

    #[test]
    fn replica_ownership_is_read_from_managed_fields() {
        let live = live_with_replicas_owned_by("flotilla");
        assert!(owns_field(&live, "flotilla", &["f:spec", "f:replicas"]));
        assert!(!owns_field(&live, "other", &["f:spec", "f:replicas"]));
        assert!(!owns_field(
            &json!({}),
            "flotilla",
            &["f:spec", "f:replicas"]
        ));
    }

    #[test]
    fn replicas_are_handed_over_only_when_flotilla_drops_a_field_it_owns() {
        let desired = json!({"apiVersion": "apps/v1", "metadata": {"name": "users"}, "spec": {}});
        let handover = hand_over_replicas(&desired, &live_with_replicas_owned_by("flotilla"))
            .expect("a hand-over");
        assert_eq!(handover.manager, HANDOVER_MANAGER);
        assert_eq!(handover.patch["spec"]["replicas"], 3);
        assert_eq!(handover.patch["kind"], "Deployment");
        // Someone else owns it already, or Flotilla still sets it: nothing to hand over.
        assert!(hand_over_replicas(&desired, &live_with_replicas_owned_by("hpa")).is_none());
        let fixed = json!({"spec": {"replicas": 2}});
        assert!(hand_over_replicas(&fixed, &live_with_replicas_owned_by("flotilla")).is_none());
    }

    #[test]
    fn the_cache_keeps_only_whether_flotilla_owns_replicas_and_the_hand_over_still_works() {
        let desired = json!({"apiVersion": "apps/v1", "metadata": {"name": "users"}, "spec": {}});
        for (manager, handed_over) in [("flotilla", true), ("hpa", false)] {
            let live = live_with_replicas_owned_by(manager);
            let mut cached: DynamicObject = serde_json::from_value(live).unwrap();
            keep_replicas_ownership(&mut cached);
            let entries = cached.metadata.managed_fields.clone().unwrap_or_default();
            assert!(entries.len() <= 1, "{entries:?}");
            let cached = serde_json::to_value(&cached).unwrap();
            assert_eq!(
                hand_over_replicas(&desired, &cached).is_some(),
                handed_over,
                "{manager}"
            );
        }
    }
}
