//! What of a live child Flotilla's own apply set: the object projected onto the fields
//! its managed fields entry lists. The cache keeps only that, which is what drift is
//! judged on (desired ⊆ live): the server's defaults, other managers' fields and the
//! managed fields themselves, most of a stored object, are dropped. A field another
//! writer changed moves to that writer's entry, leaves the projection, and so reads as
//! drift, which the next apply reverts.
//!
//! The managed fields format (structured-merge-diff's `FieldsV1`): `f:NAME` a map field,
//! `k:{...}` a list item by its key fields, `v:VALUE` an item of a set, `i:N` an item by
//! index, `.` the node itself; an empty set owns the whole value below it.

use kube::api::DynamicObject;
use serde_json::{Map, Value};

use super::FIELD_MANAGER;

/// `value` reduced to the parts `fields` names.
pub fn project(value: &Value, fields: &Value) -> Value {
    let Some(fields) = fields.as_object().filter(|f| f.keys().any(|k| k != ".")) else {
        return value.clone();
    };
    match value {
        Value::Object(map) => {
            let mut kept = Map::new();
            for (key, sub) in fields {
                if let Some(name) = key.strip_prefix("f:")
                    && let Some(child) = map.get(name)
                {
                    kept.insert(name.to_string(), project(child, sub));
                }
            }
            Value::Object(kept)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    let sub = fields
                        .iter()
                        .find(|(key, _)| item_matches(key, index, item))?
                        .1;
                    Some(project(item, sub))
                })
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

fn item_matches(key: &str, index: usize, item: &Value) -> bool {
    if let Some(keys) = key.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(keys) else {
            return false;
        };
        return keys
            .iter()
            .all(|(name, value)| item.get(name) == Some(value));
    }
    if let Some(set_value) = key.strip_prefix("v:") {
        return serde_json::from_str::<Value>(set_value).is_ok_and(|v| &v == item);
    }
    key.strip_prefix("i:")
        .and_then(|i| i.parse::<usize>().ok())
        .is_some_and(|i| i == index)
}

/// Flotilla's apply entry among the object's managed fields.
pub fn flotilla_fields(object: &DynamicObject) -> Option<&Value> {
    object
        .metadata
        .managed_fields
        .as_ref()?
        .iter()
        .find(|entry| {
            entry.manager.as_deref() == Some(FIELD_MANAGER)
                && entry.operation.as_deref() == Some("Apply")
        })?
        .fields_v1
        .as_ref()
        .map(|fields| &fields.0)
}

/// Keeps of the object's body (all but its metadata) what Flotilla's apply set, and the
/// fields in `also` (e.g. `status`) whole. Nothing of the body when Flotilla never
/// applied it: the next apply, which that calls for, sets it.
pub fn keep_owned(object: &mut DynamicObject, also: &[&str]) {
    let owned = flotilla_fields(object).cloned();
    let Some(body) = object.data.as_object_mut() else {
        return;
    };
    let mut kept = Map::new();
    for name in also {
        if let Some(value) = body.remove(*name) {
            kept.insert(name.to_string(), value);
        }
    }
    if let Some(Value::Object(owned)) = owned {
        for (key, sub) in &owned {
            let Some(name) = key.strip_prefix("f:").filter(|n| *n != "metadata") else {
                continue;
            };
            if let Some(value) = body.get(name) {
                kept.insert(name.to_string(), project(value, sub));
            }
        }
    }
    *body = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_owned_map_fields_and_list_items_by_key_and_drops_the_rest() {
        let live = json!({"spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "template": {"spec": {
                "dnsPolicy": "ClusterFirst",
                "containers": [
                    {"name": "app", "image": "a:1", "terminationMessagePath": "/dev/x",
                     "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}]},
                    {"name": "sidecar", "image": "s:1"}
                ]
            }}
        }});
        let fields = json!({"f:spec": {
            "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"app\"}": {
                    ".": {}, "f:name": {}, "f:image": {},
                    "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {
                        ".": {}, "f:containerPort": {}, "f:protocol": {}, "f:name": {}}}
                }
            }}}
        }});
        assert_eq!(
            project(&live, &fields),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "a:1",
                 "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}]}
            ]}}}})
        );
    }

    #[test]
    fn an_empty_set_owns_the_whole_value_and_sets_match_by_value() {
        let live = json!({"args": ["a", "b"], "finalizers": ["x", "y"], "sel": {"k": "v"}});
        let fields = json!({"f:args": {}, "f:finalizers": {"v:\"y\"": {}}, "f:sel": {}});
        assert_eq!(
            project(&live, &fields),
            json!({"args": ["a", "b"], "finalizers": ["y"], "sel": {"k": "v"}})
        );
    }

    #[test]
    fn the_cache_keeps_what_flotilla_applied_and_the_fields_asked_for() {
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "users", "managedFields": [
                {"manager": "flotilla", "operation": "Apply",
                 "fieldsV1": {"f:metadata": {"f:labels": {}}, "f:spec": {"f:type": {}}}},
                {"manager": "kubectl", "operation": "Update",
                 "fieldsV1": {"f:spec": {"f:sessionAffinity": {}}}}
            ]},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "sessionAffinity": "None"},
            "status": {"loadBalancer": {}}
        }))
        .unwrap();
        keep_owned(&mut object, &["status"]);
        assert_eq!(
            object.data,
            json!({"spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {}}})
        );
        // Never applied by Flotilla: nothing of the body is kept.
        let mut foreign: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
            "spec": {"type": "ClusterIP"}
        }))
        .unwrap();
        keep_owned(&mut foreign, &[]);
        assert_eq!(foreign.data, json!({}));
    }
}
