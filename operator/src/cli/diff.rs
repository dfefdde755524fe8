//! `flotilla diff -f FILE`: what applying the file would change in the cluster, child by
//! child, as unified diffs, like `kubectl diff` but through Flotilla: the Microservices
//! and classes of the file are dry-run applied, planned with the same `crate::plan` the
//! controller runs (against the live cluster: classes, neighbours, ConfigMaps, namespace
//! labels), and every child is dry-run applied (`dryRun=All`) under the controller's
//! field manager, so defaulting, admission and the merge are the API server's own. What
//! the controller would prune is shown as removed.
//!
//! Besides the file's Microservices, their neighbours are planned too: a Microservice
//! that gains a dependency changes its callee's NetworkPolicy, and a class in the file
//! changes every Microservice using it.
//!
//! A field the controller hands over before it stops applying it (an autoscaled
//! Deployment's replica count, see `ChildKind::hand_over`) would be reset by the dry run
//! alone, which cannot be chained with the hand-over patch: its current value is laid
//! over the dry run's result, as the hand-over keeps it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::render::read_documents;
use super::{DiffArgs, block_on, write_stdout};
use crate::api::{Microservice, MicroserviceClass};
use crate::builders::{
    Capabilities, ConfigKind, ConfigRef, FIELD_MANAGER, KINDS, config_refs, labels,
};
use crate::class;
use crate::controller::{APPLIED_HASH_ANNOTATION, Ownership, content_hash, ownership};
use crate::graph::{ObjectKey, dependency_keys};
use crate::plan::{self, ConfigState, ConfigVersion, Inputs};

/// The field manager `kubectl apply --server-side` writes under: the default for the
/// dry runs of the file's own objects (the user's objects, not Flotilla's children).
/// The dry run is forced, as a `--force-conflicts` apply: it shows the file winning.
/// A field the file drops is shown removed only when this is the manager that set it.
pub const KUBECTL_FIELD_MANAGER: &str = "kubectl";

/// What `flotilla diff` found, section by section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub sections: Vec<Section>,
    /// What could not be computed (exit status 2).
    pub errors: Vec<String>,
}

/// One object of the file, or one Microservice its changes reach.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    /// e.g. `Microservice shop/orders`.
    pub heading: String,
    /// Why it is here when it is not in the file.
    pub because: Option<String>,
    /// Remarks: a held rollout, a conflict, a refusal.
    pub notes: Vec<String>,
    /// Unified diffs, one per changed object.
    pub diffs: Vec<String>,
}

impl Report {
    pub fn changed(&self) -> bool {
        self.sections.iter().any(|s| !s.diffs.is_empty())
    }

    /// The exit status `kubectl diff` would give: 0 no change, 1 changes, 2 an error.
    pub fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() {
            2
        } else if self.changed() {
            1
        } else {
            0
        }
    }

    /// The report as text: each section with something to say, its diffs, its notes.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for section in &self.sections {
            if section.diffs.is_empty() && section.notes.is_empty() {
                continue;
            }
            out.push_str(&format!("# {}", section.heading));
            if let Some(because) = &section.because {
                out.push_str(&format!(" ({because})"));
            }
            out.push('\n');
            for note in &section.notes {
                out.push_str(&format!("# {note}\n"));
            }
            for diff in &section.diffs {
                out.push_str(diff);
            }
        }
        out
    }
}

/// `flotilla diff`: exit 0 no change, 1 changes, 2 an error, as `kubectl diff`.
pub(super) fn command(args: DiffArgs) -> ExitCode {
    let documents = match read_documents(&args.files) {
        Ok(documents) => documents,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let target = args.target.target();
    let report = block_on(async {
        let (client, context_namespace) = crate::client::client_for(&target).await?;
        let namespace = args.namespace.unwrap_or(context_namespace);
        diff(&client, &documents, &namespace, &args.field_manager).await
    });
    match report {
        Ok(report) => {
            if write_stdout(&report.text()) != ExitCode::SUCCESS {
                return ExitCode::from(2);
            }
            for error in &report.errors {
                eprintln!("error: {error}");
            }
            ExitCode::from(report.exit_code())
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Diffs the Microservices and classes of `documents` against the cluster of `client`;
/// objects without a namespace go to `namespace`; the file's own objects are applied
/// (dry run) under `field_manager`, the manager the user applies them with.
pub async fn diff(
    client: &Client,
    documents: &[String],
    namespace: &str,
    field_manager: &str,
) -> Result<Report, String> {
    let input = crate::render::parse_input_in(documents, namespace).map_err(|e| e.to_string())?;
    let capabilities = crate::controller::discover_capabilities(client)
        .await
        .map_err(|e| format!("discovering the API server: {e}"))?;
    let mut report = Report::default();

    // The classes: live, then as the file would make them.
    let class_api: Api<MicroserviceClass> = Api::all(client.clone());
    let live_classes = class_api
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing MicroserviceClasses: {e}"))?
        .items;
    let mut classes: BTreeMap<String, MicroserviceClass> = live_classes
        .iter()
        .map(|c| (c.name_any(), c.clone()))
        .collect();
    let mut file_classes = Vec::new();
    for class in &input.classes {
        let name = class.name_any();
        let live = live_classes.iter().find(|c| c.name_any() == name);
        let mut section = Section {
            heading: format!("MicroserviceClass {name}"),
            ..Section::default()
        };
        match dry_run_own(&class_api, &name, class, field_manager).await {
            Ok(planned) => {
                let live_value = live.map(to_value).transpose()?;
                let planned_value = to_value(&planned)?;
                section.diffs.extend(unified(
                    &object_title(&planned_value),
                    live_value.as_ref(),
                    Some(&planned_value),
                ));
                classes.insert(name.clone(), planned);
                file_classes.push(name);
            }
            Err(error) => report
                .errors
                .push(format!("MicroserviceClass {name}: {error}")),
        }
        report.sections.push(section);
    }

    // The Microservices: every one the cluster has (a neighbour may live anywhere), the
    // file's replacing theirs.
    let live_microservices = list_microservices(client, &input.microservices).await?;
    let mut world: BTreeMap<ObjectKey, Microservice> = live_microservices
        .iter()
        .map(|ms| (ObjectKey::of(ms), ms.clone()))
        .collect();
    let mut file_keys = Vec::new();
    let mut own_sections = BTreeMap::new();
    for ms in &input.microservices {
        let key = ObjectKey::of(ms);
        let api: Api<Microservice> = Api::namespaced(client.clone(), &key.namespace);
        let mut section = Section {
            heading: format!("Microservice {key}"),
            ..Section::default()
        };
        match dry_run_own(&api, &key.name, ms, field_manager).await {
            Ok(planned) => {
                let live_value = world.get(&key).map(to_value).transpose()?;
                let planned_value = to_value(&planned)?;
                section.diffs.extend(unified(
                    &object_title(&planned_value),
                    live_value.as_ref(),
                    Some(&planned_value),
                ));
                world.insert(key.clone(), planned);
                file_keys.push(key.clone());
            }
            Err(error) => report.errors.push(format!("Microservice {key}: {error}")),
        }
        own_sections.insert(key, section);
    }

    let live_by_key: BTreeMap<ObjectKey, &Microservice> = live_microservices
        .iter()
        .map(|ms| (ObjectKey::of(ms), ms))
        .collect();
    let affected = affected(
        &file_keys,
        &file_classes,
        &world,
        &live_by_key,
        &classes,
        &live_classes,
    );
    let class_refs: Vec<&MicroserviceClass> = classes.values().collect();
    let all: Vec<&Microservice> = world.values().collect();
    let config = config_states(client, affected.iter().filter_map(|(k, _)| world.get(k))).await?;
    let namespace_labels = namespace_labels(client).await;
    for (key, because) in &affected {
        let Some(ms) = world.get(key) else { continue };
        let mut section = own_sections.remove(key).unwrap_or_else(|| Section {
            heading: format!("Microservice {key}"),
            because: because.clone(),
            ..Section::default()
        });
        let ns_lookup = |name: &str| namespace_labels.as_ref()?.get(name).cloned();
        let config_for_ns = |reference: &ConfigRef| {
            config
                .get(&(
                    reference.kind,
                    reference.name.clone(),
                    key.namespace.clone(),
                ))
                .cloned()
                .unwrap_or(ConfigState::Missing)
        };
        let plan = plan::plan(
            ms,
            &Inputs {
                capabilities: &capabilities,
                classes: &class_refs,
                microservices: &all,
                config: Some(&config_for_ns),
                namespace_labels: namespace_labels
                    .as_ref()
                    .map(|_| &ns_lookup as crate::graph::NamespaceLabels<'_>),
                // The install's flags are not known from outside the operator.
                install: plan::Install::default(),
            },
        );
        if let Err(error) = children(
            client,
            &capabilities,
            ms,
            live_by_key.get(key).copied(),
            &plan,
            &mut section,
        )
        .await
        {
            report.errors.push(format!("Microservice {key}: {error}"));
        }
        if let Err(refusal) = &plan.outcome {
            report.errors.push(format!(
                "Microservice {key} would be refused ({}): {refusal}",
                refusal.reason()
            ));
        }
        report.sections.push(section);
    }
    // Sections of file Microservices that could not be planned.
    report.sections.extend(own_sections.into_values());
    Ok(report)
}

/// The children of one planned Microservice, dry-run applied and compared with what
/// runs, then what the controller would prune.
async fn children(
    client: &Client,
    capabilities: &Capabilities,
    ms: &Microservice,
    live_ms: Option<&Microservice>,
    plan: &plan::Plan,
    section: &mut Section,
) -> Result<(), String> {
    let namespace = ms.namespace().unwrap_or_default();
    let build = match &plan.outcome {
        Ok(build) => build,
        Err(refusal) => {
            section.notes.push(format!(
                "refused ({}): {refusal}; the controller would leave its children as they are",
                refusal.reason()
            ));
            return Ok(());
        }
    };
    if ms.spec.paused {
        section
            .notes
            .push("spec.paused: the controller changes none of its children".to_string());
        return Ok(());
    }
    for missing in &plan.missing_dependencies {
        section.notes.push(format!(
            "dependency {}/{} not found ({}): the Deployment's rollout is held until it exists",
            missing.namespace, missing.name, missing.reason
        ));
    }
    for child in build.children.iter() {
        let name = child.name().to_string();
        let Some(resource) = capabilities.api_resource(child.kind) else {
            return Err(format!("the cluster does not serve {}", child.kind.kind));
        };
        if child.held {
            section.notes.push(format!(
                "{} {name} left as it is: its rollout waits for every dependency",
                child.kind.kind
            ));
            continue;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let live = api
            .get_opt(&name)
            .await
            .map_err(|e| format!("reading {} {name}: {e}", child.kind.kind))?;
        let live = live
            .map(|object| with_type(object, &resource))
            .transpose()?;
        if let Some(live) = &live
            && let Ownership::Foreign { managed_by } = ownership(live, &build.effective)
        {
            section.notes.push(format!(
                "{} {name} exists and is not this Microservice's ({managed_by}): the controller leaves it alone",
                child.kind.kind
            ));
            continue;
        }
        let mut desired = child.object.clone();
        let hash = content_hash(&desired);
        desired["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = Value::String(hash);
        if live.is_none() {
            (child.kind.on_create)(&build.effective, &mut desired);
        }
        let handover = live
            .as_ref()
            .and_then(|live| (child.kind.hand_over)(&desired, live));
        let planned = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force().dry_run(),
                &Patch::Apply(&desired),
            )
            .await
            .map_err(|e| format!("dry-run apply of {} {name}: {e}", child.kind.kind))?;
        let mut planned = with_type(planned, &resource)?;
        if let Some(handover) = &handover {
            kept_by_hand_over(&mut planned, &handover.patch);
            section.notes.push(format!(
                "{} {name}: fields handed to {} keep their values",
                child.kind.kind, handover.manager
            ));
        }
        section.diffs.extend(unified(
            &object_title(&planned),
            live.as_ref(),
            Some(&planned),
        ));
    }
    // Pruned: this Microservice's children of a kind it no longer wants.
    let Some(uid) = live_ms.and_then(|live| live.uid()) else {
        return Ok(());
    };
    let selector = format!(
        "{}={},{}",
        labels::INSTANCE,
        ms.name_any(),
        labels::MANAGED_SELECTOR
    );
    for kind in KINDS {
        let Some(resource) = capabilities.api_resource(kind) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let objects = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| format!("listing {}: {e}", kind.kind))?;
        for object in objects.items {
            let name = object.name_any();
            let owned = object.owner_references().iter().any(|o| o.uid == uid);
            let wanted = build
                .children
                .iter()
                .any(|child| child.kind == *kind && child.name() == name);
            if owned && !wanted {
                let live = with_type(object, &resource)?;
                section
                    .diffs
                    .extend(unified(&object_title(&live), Some(&live), None));
            }
        }
    }
    Ok(())
}

/// Which Microservices the file's changes reach, with why (None: it is in the file):
/// those in the file, what they depend on now or did before, what depends on them, and
/// the users of the file's classes (before or after).
fn affected(
    file_keys: &[ObjectKey],
    file_classes: &[String],
    world: &BTreeMap<ObjectKey, Microservice>,
    live: &BTreeMap<ObjectKey, &Microservice>,
    classes: &BTreeMap<String, MicroserviceClass>,
    live_classes: &[MicroserviceClass],
) -> Vec<(ObjectKey, Option<String>)> {
    let mut order: Vec<(ObjectKey, Option<String>)> =
        file_keys.iter().map(|k| (k.clone(), None)).collect();
    let mut seen: BTreeSet<ObjectKey> = file_keys.iter().cloned().collect();
    let mut add = |key: ObjectKey, because: String, order: &mut Vec<_>| {
        if world.contains_key(&key) && seen.insert(key.clone()) {
            order.push((key, Some(because)));
        }
    };
    for key in file_keys {
        let now = world.get(key).map(dependency_keys).unwrap_or_default();
        let before = live
            .get(key)
            .map(|ms| dependency_keys(ms))
            .unwrap_or_default();
        for dependency in now.union(&before) {
            add(
                dependency.clone(),
                format!("a dependency of {key}"),
                &mut order,
            );
        }
    }
    for (other, ms) in world {
        let before = live
            .get(other)
            .map(|ms| dependency_keys(ms))
            .unwrap_or_default();
        let calls = dependency_keys(ms);
        for key in file_keys {
            if calls.contains(key) || before.contains(key) {
                add(other.clone(), format!("depends on {key}"), &mut order);
            }
        }
    }
    for class_name in file_classes {
        for (other, ms) in world {
            // The class as chosen by name and default; namespace labels only narrow it.
            let namespace = ms.metadata.namespace.clone().unwrap_or_default();
            let labels = crate::graph::labels_of(None, &namespace);
            let now = class::class_name(ms, &labels, classes.values());
            let before = class::class_name(ms, &labels, live_classes.iter());
            if now.as_deref() == Some(class_name) || before.as_deref() == Some(class_name) {
                add(
                    other.clone(),
                    format!("uses MicroserviceClass {class_name}"),
                    &mut order,
                );
            }
        }
    }
    order
}

/// Dry-run applies one of the file's own objects (status left out: it is the
/// operator's).
async fn dry_run_own<K>(
    api: &Api<K>,
    name: &str,
    object: &K,
    field_manager: &str,
) -> Result<K, String>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut value {
        map.remove("status");
    }
    for field in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "managedFields",
    ] {
        if let Some(meta) = value["metadata"].as_object_mut() {
            meta.remove(field);
        }
    }
    api.patch(
        name,
        &PatchParams::apply(field_manager).force().dry_run(),
        &Patch::Apply(&value),
    )
    .await
    .map_err(|e| format!("dry-run apply: {e}"))
}

/// Every Microservice of the cluster; where listing them all is not allowed, those of
/// the file's namespaces.
async fn list_microservices(
    client: &Client,
    file: &[Microservice],
) -> Result<Vec<Microservice>, String> {
    match Api::<Microservice>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => return Ok(list.items),
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        Err(error) => return Err(format!("listing Microservices: {error}")),
    }
    let namespaces: BTreeSet<String> = file.iter().filter_map(|ms| ms.namespace()).collect();
    let mut all = Vec::new();
    for namespace in namespaces {
        let list = Api::<Microservice>::namespaced(client.clone(), &namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing Microservices in {namespace}: {e}"))?;
        all.extend(list.items);
    }
    Ok(all)
}

type ConfigKey = (ConfigKind, String, String);

/// The metadata of every ConfigMap and Secret the Microservices reference, keyed by kind,
/// name and namespace. A Secret the user may not read is `Unwatched`, as for an operator
/// run without access to Secrets.
async fn config_states<'a>(
    client: &Client,
    microservices: impl Iterator<Item = &'a Microservice>,
) -> Result<BTreeMap<ConfigKey, ConfigState>, String> {
    let mut states = BTreeMap::new();
    for ms in microservices {
        let namespace = ms.namespace().unwrap_or_default();
        for reference in config_refs(&ms.spec) {
            let key = (reference.kind, reference.name.clone(), namespace.clone());
            if states.contains_key(&key) {
                continue;
            }
            let meta = match reference.kind {
                ConfigKind::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), &namespace)
                    .get_metadata_opt(&reference.name)
                    .await
                    .map(|o| o.map(|o| o.metadata)),
                ConfigKind::Secret => Api::<Secret>::namespaced(client.clone(), &namespace)
                    .get_metadata_opt(&reference.name)
                    .await
                    .map(|o| o.map(|o| o.metadata)),
            };
            let state = match meta {
                Ok(Some(meta)) => ConfigState::Exists(ConfigVersion {
                    uid: meta.uid.unwrap_or_default(),
                    resource_version: meta.resource_version.unwrap_or_default(),
                }),
                Ok(None) => ConfigState::Missing,
                Err(kube::Error::Api(status)) if status.code == 403 => ConfigState::Unwatched,
                Err(error) => return Err(format!("reading {}: {error}", reference.name)),
            };
            states.insert(key, state);
        }
    }
    Ok(states)
}

/// The labels of every namespace; None when the user may not list namespaces (then a
/// namespace is known by its name label only, as for a namespaced operator).
async fn namespace_labels(client: &Client) -> Option<BTreeMap<String, BTreeMap<String, String>>> {
    let list = Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await
        .ok()?;
    Some(
        list.items
            .into_iter()
            .map(|ns| (ns.name_any(), ns.metadata.labels.unwrap_or_default()))
            .collect(),
    )
}

/// A typed object as JSON.
fn to_value<K: serde::Serialize>(object: &K) -> Result<Value, String> {
    serde_json::to_value(object).map_err(|e| e.to_string())
}

/// A dynamic object as JSON, with the apiVersion and kind of its resource (a list's
/// items carry none).
fn with_type(object: DynamicObject, resource: &kube::api::ApiResource) -> Result<Value, String> {
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    value["apiVersion"] = Value::String(resource.api_version.clone());
    value["kind"] = Value::String(resource.kind.clone());
    Ok(value)
}

/// `apiVersion Kind namespace/name`.
fn object_title(object: &Value) -> String {
    let meta = &object["metadata"];
    let name = match meta["namespace"].as_str() {
        Some(namespace) => format!("{namespace}/{}", meta["name"].as_str().unwrap_or("?")),
        None => meta["name"].as_str().unwrap_or("?").to_string(),
    };
    format!(
        "{} {} {name}",
        object["apiVersion"].as_str().unwrap_or("?"),
        object["kind"].as_str().unwrap_or("?")
    )
}

/// Lays the fields of a hand-over patch (its body, not its identity) over `planned`.
fn kept_by_hand_over(planned: &mut Value, patch: &Value) {
    fn overlay(target: &mut Value, patch: &Value) {
        match (target, patch) {
            (Value::Object(target), Value::Object(patch)) => {
                for (key, value) in patch {
                    let slot = target.entry(key.clone()).or_insert(Value::Null);
                    if value.is_object() && slot.is_object() {
                        overlay(slot, value);
                    } else {
                        *slot = value.clone();
                    }
                }
            }
            (target, patch) => *target = patch.clone(),
        }
    }
    if let Some(patch) = patch.as_object() {
        for (key, value) in patch {
            if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                overlay(&mut planned[key], value);
            }
        }
    }
}

/// What `kubectl diff` leaves out too: what the server keeps about the object rather
/// than in it (write history, versions, timestamps, identity) and the status.
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    if let Value::Object(map) = &mut object {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for field in [
                "managedFields",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "uid",
                "selfLink",
            ] {
                meta.remove(field);
            }
            if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
                if annotations.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    object
}

/// The unified diff of one object, `live` (None: it does not exist) against `planned`
/// (None: it would be deleted), as YAML after [`normalize`]; None when they are equal.
pub fn unified(title: &str, live: Option<&Value>, planned: Option<&Value>) -> Option<String> {
    let yaml = |value: Option<&Value>| -> String {
        value
            .map(|v| crate::yaml::to_string(&normalize(v)).unwrap_or_default())
            .unwrap_or_default()
    };
    let (old, new) = (yaml(live), yaml(planned));
    if old == new {
        return None;
    }
    let old_header = if live.is_some() {
        format!("live    {title}")
    } else {
        "/dev/null".to_string()
    };
    let new_header = if planned.is_some() {
        format!("planned {title}")
    } else {
        "/dev/null".to_string()
    };
    Some(
        similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(3)
            .header(&old_header, &new_header)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn noise_is_left_out_like_kubectl_diff() {
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "users", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "flotilla"}], "annotations": {"a": "1"}},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 2}});
        let planned = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "users", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                "generation": 4, "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "flotilla"}, {"manager": "x"}], "annotations": {"a": "1"}},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 1}});
        assert_eq!(unified("t", Some(&live), Some(&planned)), None);
    }

    #[test]
    fn a_change_is_a_unified_diff_naming_the_object() {
        let live =
            json!({"metadata": {"name": "users"}, "spec": {"image": "users:1", "replicas": 2}});
        let planned =
            json!({"metadata": {"name": "users"}, "spec": {"image": "users:2", "replicas": 2}});
        let diff = unified("apps/v1 Deployment shop/users", Some(&live), Some(&planned)).unwrap();
        assert!(diff.starts_with("--- live    apps/v1 Deployment shop/users\n+++ planned apps/v1 Deployment shop/users\n@@"), "{diff}");
        assert!(
            diff.contains("-  image: users:1\n+  image: users:2\n"),
            "{diff}"
        );
        assert!(diff.contains("   replicas: 2\n"), "{diff}");
    }

    #[test]
    fn creations_and_deletions_diff_against_nothing() {
        let object = json!({"metadata": {"name": "users"}, "spec": {"a": 1}});
        let created = unified("t", None, Some(&object)).unwrap();
        assert!(
            created.starts_with("--- /dev/null\n+++ planned t\n"),
            "{created}"
        );
        assert!(
            created.lines().skip(3).all(|l| l.starts_with('+')),
            "{created}"
        );
        let deleted = unified("t", Some(&object), None).unwrap();
        assert!(
            deleted.starts_with("--- live    t\n+++ /dev/null\n"),
            "{deleted}"
        );
        assert!(
            deleted.lines().skip(3).all(|l| l.starts_with('-')),
            "{deleted}"
        );
    }

    #[test]
    fn a_handed_over_field_keeps_its_value() {
        let mut planned = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "users"}, "spec": {"replicas": 1, "template": {"x": 1}}});
        let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "other"}, "spec": {"replicas": 4}});
        kept_by_hand_over(&mut planned, &patch);
        assert_eq!(
            planned,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "users"}, "spec": {"replicas": 4, "template": {"x": 1}}})
        );
    }

    #[test]
    fn the_text_shows_sections_with_something_to_say() {
        let report = Report {
            sections: vec![
                Section {
                    heading: "Microservice shop/orders".into(),
                    diffs: vec!["--- a\n+++ b\n".into()],
                    ..Section::default()
                },
                Section {
                    heading: "Microservice shop/quiet".into(),
                    ..Section::default()
                },
                Section {
                    heading: "Microservice shop/users".into(),
                    because: Some("a dependency of shop/orders".into()),
                    notes: vec!["Deployment users left as it is".into()],
                    ..Section::default()
                },
            ],
            errors: vec![],
        };
        assert_eq!(
            report.text(),
            "# Microservice shop/orders\n--- a\n+++ b\n\
             # Microservice shop/users (a dependency of shop/orders)\n\
             # Deployment users left as it is\n"
        );
    }

    #[test]
    fn exit_codes_follow_kubectl_diff() {
        let mut report = Report::default();
        assert_eq!(report.exit_code(), 0);
        report.sections.push(Section {
            heading: "Microservice shop/users".into(),
            notes: vec!["paused".into()],
            ..Section::default()
        });
        assert_eq!(report.exit_code(), 0, "a note is no change");
        report.sections[0].diffs.push("--- a\n+++ b\n".into());
        assert_eq!(report.exit_code(), 1);
        report.errors.push("boom".into());
        assert_eq!(report.exit_code(), 2);
    }

    fn ms(namespace: &str, name: &str, spec: &str) -> Microservice {
        let mut ms = Microservice::new(name, serde_saphyr::from_str(spec).unwrap());
        ms.metadata.namespace = Some(namespace.into());
        ms
    }

    #[test]
    fn a_change_reaches_old_and_new_dependencies_dependents_and_class_users() {
        let orders_before = ms("shop", "orders", "{image: a, dependsOn: [{name: carts}]}");
        let orders = ms("shop", "orders", "{image: a, dependsOn: [{name: users}]}");
        let users = ms("shop", "users", "{image: a}");
        let carts = ms("shop", "carts", "{image: a}");
        let web = ms(
            "shop",
            "web",
            "{image: a, dependsOn: [{name: orders}], class: golden}",
        );
        let lonely = ms("shop", "lonely", "{image: a}");
        let key = |ms: &Microservice| ObjectKey::of(ms);
        let world: BTreeMap<ObjectKey, Microservice> = [&orders, &users, &carts, &web, &lonely]
            .into_iter()
            .map(|ms| (key(ms), ms.clone()))
            .collect();
        let live: BTreeMap<ObjectKey, &Microservice> =
            [&orders_before, &users, &carts, &web, &lonely]
                .into_iter()
                .map(|ms| (key(ms), ms))
                .collect();
        let reached = affected(&[key(&orders)], &[], &world, &live, &BTreeMap::new(), &[]);
        let names: Vec<(&str, Option<&str>)> = reached
            .iter()
            .map(|(k, why)| (k.name.as_str(), why.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("orders", None),
                ("carts", Some("a dependency of shop/orders")),
                ("users", Some("a dependency of shop/orders")),
                ("web", Some("depends on shop/orders")),
            ]
        );
        let mut golden = MicroserviceClass::new("golden", Default::default());
        golden.metadata.name = Some("golden".into());
        let classes = BTreeMap::from([("golden".to_string(), golden.clone())]);
        let reached = affected(&[], &["golden".into()], &world, &live, &classes, &[golden]);
        assert_eq!(reached.len(), 1);
        assert_eq!(reached[0].0.name, "web");
    }
}
