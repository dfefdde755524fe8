//! The labels and annotations Flotilla puts on what it makes and reads back: part of its
//! contract with users and tools (selectors, `kubectl flotilla rollout`, adoption).

use std::collections::BTreeMap;

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
/// `flotilla rollout undo`: `<revision>@<timestamp>`, the revision to run in place of the
/// spec's until the spec changes.
pub const UNDO_ANNOTATION: &str = "flotilla.dev/undo";
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

/// The namespace label a namespaceSelector matches on. The API server sets it on every
/// namespace only from 1.21; on 1.20 cluster admins must label namespaces themselves for
/// cross-namespace dependencies to be allowed.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
