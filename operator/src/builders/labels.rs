//! The labels and names every child shares.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::Microservice;

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const PART_OF: &str = "app.kubernetes.io/part-of";
pub const MANAGER: &str = "flotilla";
/// The label selector of every watch on children: only objects Flotilla manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=flotilla";
/// Set on an existing object by its owner to hand it over to the Microservice it names
/// (`flotilla.dev/adopt: <microservice name>`): Flotilla then applies to it, taking it
/// over with its owner reference and labels. Without it Flotilla never touches an object
/// it did not create.
pub const ADOPT_ANNOTATION: &str = "flotilla.dev/adopt";
/// Pod label naming the revision of its template: a hash of the template without this
/// label. The rollout state machine tells the new pods from the stable ones by it.
pub const REVISION: &str = "flotilla.dev/revision";
/// Pod label, and selector label, of the canary Deployment's pods (`canary`).
pub const TRACK: &str = "flotilla.dev/track";
pub const TRACK_CANARY: &str = "canary";
/// Annotation on a Microservice asking to skip the remaining pauses of the release under
/// way; its value (any new one, e.g. a timestamp) is acted on once.
pub const PROMOTE_ANNOTATION: &str = "flotilla.dev/promote";
/// Annotation on a Microservice asking to roll the release under way back now; its value
/// is acted on once.
pub const ABORT_ANNOTATION: &str = "flotilla.dev/abort";
/// Pod-template annotation holding the hash of referenced ConfigMaps and Secrets.
pub const CONFIG_HASH_ANNOTATION: &str = "flotilla.dev/config-hash";

/// The Deployment's selector. Deployment selectors are immutable: never change this set.
pub fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_string(), name.to_string()),
        (INSTANCE.to_string(), name.to_string()),
    ])
}

/// The labels that select the pods of a Microservice and nothing else: the Service, the
/// NetworkPolicies (its own and its neighbours') and the PodDisruptionBudget use them. The
/// Deployment's selector alone would also match the pods of another workload labelled
/// the same way, such as a Helm release of that name (`helm create` labels pods with name
/// and instance); `managed-by=flotilla` is on Flotilla's pod template only (a spec cannot
/// replace it). Pods made before this selector existed already carry it, so switching to
/// it restarts nothing.
pub fn pod_selector(name: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(name);
    labels.insert(MANAGED_BY.to_string(), MANAGER.to_string());
    labels
}

/// The labels of every child and of the pods.
pub fn common_labels(ms: &Microservice) -> BTreeMap<String, String> {
    let mut labels = selector_labels(&ms.name_any());
    labels.insert(MANAGED_BY.to_string(), MANAGER.to_string());
    if let Some(part_of) = &ms.spec.part_of {
        labels.insert(PART_OF.to_string(), part_of.clone());
    }
    labels
}

/// Metadata of a child: same name and namespace as the Microservice, the common labels,
/// and a controller owner reference when the Microservice has a UID (offline renders
/// have none).
pub fn child_meta(ms: &Microservice) -> ObjectMeta {
    ObjectMeta {
        name: Some(ms.name_any()),
        namespace: ms.namespace(),
        labels: Some(common_labels(ms)),
        owner_references: owner_reference(ms).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

fn owner_reference(ms: &Microservice) -> Option<OwnerReference> {
    let mut owner = ms.controller_owner_ref(&())?;
    owner.block_owner_deletion = Some(true);
    Some(owner)
}
