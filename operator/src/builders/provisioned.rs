//! The object a class's backing-service `template` provisions, as Flotilla applies it
//! per Microservice: the class's kind and spec (placeholders filled when bound), the
//! Microservice's labels, and the controller owner reference that deletes it with the
//! Microservice. Not one of the child kinds (`KINDS`): its kind is the class's to choose,
//! so it is discovered, applied and waited on by the controller's provision step.

use serde_json::{Value, json};

use crate::api::Microservice;
use crate::class::TemplateBinding;

use super::labels;

/// The object as Flotilla wants it.
pub fn object(ms: &Microservice, template: &TemplateBinding) -> Value {
    let meta = labels::child_meta(ms);
    let mut object = json!({
        "apiVersion": template.api_version,
        "kind": template.kind,
        "metadata": {
            "name": template.name,
            "namespace": meta.namespace,
            "labels": meta.labels,
        },
    });
    // Offline (`flotilla render`) the Microservice has no uid, so no owner yet.
    if let Some(owners) = meta.owner_references {
        object["metadata"]["ownerReferences"] = json!(owners);
    }
    if let Some(spec) = &template.spec {
        object["spec"] = spec.clone();
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_carries_the_spec_the_labels_and_the_owner() {
        let ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"},
            "spec": {"image": "a"}
        }))
        .unwrap();
        let template = TemplateBinding {
            api_version: "postgresql.cnpg.io/v1".into(),
            kind: "Cluster".into(),
            name: "orders-db".into(),
            spec: Some(json!({"instances": 1})),
            ready_condition: "Ready".into(),
            secret: crate::class::SecretBinding {
                secret: "orders-db-app".into(),
                env: Vec::new(),
                endpoint: None,
            },
        };
        let object = object(&ms, &template);
        assert_eq!(object["kind"], "Cluster");
        assert_eq!(object["metadata"]["namespace"], "shop");
        assert_eq!(object["spec"], json!({"instances": 1}));
        assert_eq!(object["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(object["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "flotilla"
        );
    }
}
