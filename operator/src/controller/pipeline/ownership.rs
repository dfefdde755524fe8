//! Whose object is it? Flotilla writes only to the children it controls (a controller
//! owner reference carrying the Microservice's UID), or to an object whose owner hands it
//! over explicitly with the adoption annotation, the way Helm adopts only objects that
//! carry its release annotations. Anything else with the child's name is a conflict to
//! report, never a child to take over: applying to it would change it, and garbage
//! collection would later delete it with the Microservice.

use kube::ResourceExt;
use serde_json::Value;

use crate::api::Microservice;
use crate::builders::FIELD_MANAGER;
use crate::builders::labels::ADOPT_ANNOTATION;

/// What Flotilla may do with an existing object that has a child's kind and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Controlled by this Microservice: apply.
    Controlled,
    /// Handed over by its owner (`flotilla.dev/adopt: <microservice>`): apply, which adds
    /// the owner reference and Flotilla's labels.
    Adopted,
    /// Someone else's: leave it alone. Says who manages it, as far as the object tells.
    Foreign { managed_by: String },
}

/// The ownership of `live` (the object as JSON) with respect to `ms`.
pub fn ownership(live: &Value, ms: &Microservice) -> Ownership {
    let owners = live["metadata"]["ownerReferences"].as_array();
    let controller = owners
        .into_iter()
        .flatten()
        .find(|owner| owner["controller"].as_bool() == Some(true));
    if let Some(controller) = controller {
        if ms.uid().is_some() && controller["uid"].as_str() == ms.uid().as_deref() {
            return Ownership::Controlled;
        }
        // Another controller owns it: an adoption would leave two controllers, which the
        // API server refuses, so the annotation cannot help.
        return Ownership::Foreign {
            managed_by: format!(
                "controlled by {} {} (uid {})",
                controller["kind"].as_str().unwrap_or("?"),
                controller["name"].as_str().unwrap_or("?"),
                controller["uid"].as_str().unwrap_or("?"),
            ),
        };
    }
    if live["metadata"]["annotations"][ADOPT_ANNOTATION].as_str() == Some(ms.name_any().as_str()) {
        return Ownership::Adopted;
    }
    Ownership::Foreign {
        managed_by: managers(live),
    }
}

/// Who has written the object, from its managed fields: the field managers, Flotilla's
/// own left out (an object Flotilla once applied and lost the owner reference of is still
/// not proven to be its own).
fn managers(live: &Value) -> String {
    let mut names: Vec<&str> = live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["manager"].as_str())
        .filter(|manager| *manager != FIELD_MANAGER)
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        "not created by Flotilla for this Microservice (no owner reference to it)".to_string()
    } else {
        format!("managed by {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms() -> Microservice {
        let mut ms = Microservice::new("users", Default::default());
        ms.metadata.uid = Some("uid-1".into());
        ms
    }

    #[test]
    fn controlled_by_this_microservice() {
        let live = json!({"metadata": {"ownerReferences": [
            {"kind": "Microservice", "name": "users", "uid": "uid-1", "controller": true}]}});
        assert_eq!(ownership(&live, &ms()), Ownership::Controlled);
    }

    #[test]
    fn a_namesake_from_an_earlier_microservice_is_not_ours() {
        let live = json!({"metadata": {"ownerReferences": [
            {"kind": "Microservice", "name": "users", "uid": "uid-0", "controller": true}]}});
        let Ownership::Foreign { managed_by } = ownership(&live, &ms()) else {
            panic!("foreign");
        };
        assert!(managed_by.contains("uid-0"), "{managed_by}");
    }

    #[test]
    fn created_by_someone_else_names_the_field_managers() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-create", "operation": "Update"},
            {"manager": "helm", "operation": "Update"},
            {"manager": "kubectl-create", "operation": "Update"}]}});
        assert_eq!(
            ownership(&live, &ms()),
            Ownership::Foreign {
                managed_by: "managed by helm, kubectl-create".into()
            }
        );
        // The namespace's default ServiceAccount: no owner, no managed fields kept.
        assert!(matches!(
            ownership(&json!({"metadata": {}}), &ms()),
            Ownership::Foreign { .. }
        ));
    }

    #[test]
    fn the_adoption_annotation_hands_it_over_unless_another_controller_owns_it() {
        let annotated = json!({"metadata": {"annotations": {ADOPT_ANNOTATION: "users"}}});
        assert_eq!(ownership(&annotated, &ms()), Ownership::Adopted);
        let for_another = json!({"metadata": {"annotations": {ADOPT_ANNOTATION: "orders"}}});
        assert!(matches!(
            ownership(&for_another, &ms()),
            Ownership::Foreign { .. }
        ));
        let owned = json!({"metadata": {"annotations": {ADOPT_ANNOTATION: "users"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "x", "uid": "u", "controller": true}]}});
        assert!(matches!(
            ownership(&owned, &ms()),
            Ownership::Foreign { .. }
        ));
    }
}
