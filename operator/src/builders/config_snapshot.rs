//! Config snapshots (`rollout.snapshotConfig`): an immutable copy of each ConfigMap the
//! pods reference, named after the source's identity and version, owned by the
//! Microservice. The pod template reads the copy, so a ConfigMap edit is a new pod
//! template (a release), and the pods of an older template, stable ones restarting after
//! a rollback included, keep reading the content they were released with.
//!
//! Not one of the child kinds (`KINDS`): copies are created once (they never change) and
//! deleted when no kept release reads them, by the controller's snapshot step.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::Microservice;

use super::labels;

/// Marks a ConfigMap as a snapshot: the metadata cache keeps these (with their owner)
/// whether or not a spec names them, so the controller knows which exist.
pub const SNAPSHOT_LABEL: &str = "flotilla.dev/config-snapshot";
/// The ConfigMap a snapshot copies (an annotation: a ConfigMap's name may not fit a
/// label value).
pub const SOURCE_ANNOTATION: &str = "flotilla.dev/snapshot-of";
/// The source's resourceVersion the copy was taken at.
pub const SOURCE_VERSION_ANNOTATION: &str = "flotilla.dev/snapshot-of-version";

/// The longest ConfigMap name (a DNS subdomain).
const MAX_NAME: usize = 253;
const HASH_LEN: usize = 10;

/// The source ConfigMap name to the name of its copy, for the builders.
pub type Snapshots = BTreeMap<String, String>;

/// The copy of ConfigMap `source` of Microservice `ms` at this uid and resourceVersion:
/// `<ms>-<source>-<hash>`, the prefix shortened when the whole would not be a valid name
/// (the hash keeps it unique).
pub fn copy_name(ms: &str, source: &str, uid: &str, resource_version: &str) -> String {
    let digest = Sha256::digest(format!("{ms}\n{source}\n{uid}\n{resource_version}"));
    let hash: String = digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut prefix = format!("{ms}-{source}");
    prefix.truncate(MAX_NAME - HASH_LEN - 1);
    // A name must end with an alphanumeric character before the `-`.
    let prefix = prefix.trim_end_matches(['-', '.']);
    format!("{prefix}-{hash}")
}

/// The copy of `source` (as read from the API server) named `name`, for `ms`.
pub fn copy(ms: &Microservice, source: &ConfigMap, name: &str) -> ConfigMap {
    let meta = labels::child_meta(ms);
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(SNAPSHOT_LABEL.to_string(), "true".to_string());
    let annotations = BTreeMap::from([
        (
            SOURCE_ANNOTATION.to_string(),
            source.metadata.name.clone().unwrap_or_default(),
        ),
        (
            SOURCE_VERSION_ANNOTATION.to_string(),
            source.metadata.resource_version.clone().unwrap_or_default(),
        ),
    ]);
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: meta.namespace,
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: meta.owner_references,
            ..ObjectMeta::default()
        },
        data: source.data.clone(),
        binary_data: source.binary_data.clone(),
        // Served from 1.19 (beta) on; an older server drops the field and the copy is
        // merely never written again.
        immutable: Some(true),
    }
}

/// The ConfigMaps a pod template (as JSON) reads: env `configMapKeyRef`, `envFrom`
/// `configMapRef` and `configMap` volumes, in any container.
pub fn referenced_config_maps(template: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    collect(template, &mut names);
    names
}

fn collect(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, sub) in map {
                if matches!(
                    key.as_str(),
                    "configMapKeyRef" | "configMapRef" | "configMap"
                ) && let Some(name) = sub.get("name").and_then(Value::as_str)
                {
                    names.insert(name.to_string());
                }
                collect(sub, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect(item, names)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_copy_name_follows_the_source_version_and_fits() {
        let a = copy_name("users", "users-config", "uid-1", "100");
        assert!(a.starts_with("users-users-config-"), "{a}");
        assert_eq!(a.len(), "users-users-config-".len() + HASH_LEN);
        assert_ne!(a, copy_name("users", "users-config", "uid-1", "101"));
        assert_ne!(a, copy_name("users", "users-config", "uid-2", "100"));
        assert_ne!(a, copy_name("orders", "users-config", "uid-1", "100"));
        let long = copy_name(&"m".repeat(63), &format!("{}.x", "c".repeat(240)), "u", "1");
        assert_eq!(long.len(), MAX_NAME);
        let dotted = copy_name("m", &format!("{}.-a", "c".repeat(239)), "u", "1");
        assert!(!dotted.contains(".-"), "{dotted}");
        assert!(dotted.len() <= MAX_NAME);
    }

    #[test]
    fn the_copy_holds_the_data_the_labels_and_the_owner() {
        let ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "users", "namespace": "shop", "uid": "u-1"},
            "spec": {"image": "a"}
        }))
        .unwrap();
        let source: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "users-config", "namespace": "shop", "resourceVersion": "7",
                         "labels": {"team": "a"}},
            "data": {"MODE": "fast"},
            "binaryData": {"blob": "AAE="}
        }))
        .unwrap();
        let copy = copy(&ms, &source, "users-users-config-0123456789");
        let value = serde_json::to_value(&copy).unwrap();
        assert_eq!(value["data"], json!({"MODE": "fast"}));
        assert_eq!(value["binaryData"], json!({"blob": "AAE="}));
        assert_eq!(value["immutable"], json!(true));
        assert_eq!(value["metadata"]["labels"][SNAPSHOT_LABEL], json!("true"));
        assert_eq!(value["metadata"]["labels"].get("team"), None);
        assert_eq!(
            value["metadata"]["annotations"][SOURCE_ANNOTATION],
            json!("users-config")
        );
        assert_eq!(
            value["metadata"]["annotations"][SOURCE_VERSION_ANNOTATION],
            json!("7")
        );
        assert_eq!(value["metadata"]["ownerReferences"][0]["uid"], json!("u-1"));
        assert_eq!(value["metadata"]["namespace"], json!("shop"));
    }

    #[test]
    fn a_template_names_the_config_maps_it_reads() {
        let template = json!({"spec": {
            "containers": [{
                "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "a", "key": "k"}}},
                        {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "b"}}, {"secretRef": {"name": "t"}}]
            }],
            "volumes": [{"name": "v", "configMap": {"name": "c"}}]
        }});
        let names: Vec<String> = referenced_config_maps(&template).into_iter().collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
