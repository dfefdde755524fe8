//! The labels and metadata every child shares. The label and annotation keys are the
//! API's (`crate::api::labels`), re-exported here for the builders.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::Microservice;

pub use crate::api::labels::*;

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
