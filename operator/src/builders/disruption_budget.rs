//! The PodDisruptionBudget. Built with the `policy/v1` types; `builders::build` writes it
//! in the version the server serves (`v1beta1` on 1.20), whose field shapes are the same.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::kind::{ChildKind, KindVersion, to_child};
use super::{BuildError, deployment, labels};
use crate::api::Microservice;

/// The PodDisruptionBudget kind: `policy/v1`, or `v1beta1` before 1.21 (the same fields).
pub static KIND: ChildKind = ChildKind::new(
    "PodDisruptionBudget",
    "policy",
    "poddisruptionbudgets",
    &[
        KindVersion::since("v1", 1, 21),
        KindVersion::since("v1beta1", 1, 5),
    ],
    |ms, _| to_child(KIND.kind, build(ms)?),
);

/// `spec.disruption` as given; otherwise `maxUnavailable: 1` when at least two pods run,
/// and none for a single pod (a budget there would block every node drain).
pub fn build(ms: &Microservice) -> Result<Option<PodDisruptionBudget>, BuildError> {
    let (min_available, max_unavailable) = match &ms.spec.disruption {
        Some(disruption) => match (&disruption.min_available, &disruption.max_unavailable) {
            (Some(min), None) => (Some(min.clone()), None),
            (None, Some(max)) => (None, Some(max.clone())),
            _ => return Err(BuildError::InvalidDisruption),
        },
        None if deployment::min_replicas(&ms.spec) >= 2 => (None, Some(IntOrString::Int(1))),
        None => return Ok(None),
    };
    Ok(Some(PodDisruptionBudget {
        metadata: labels::child_meta(ms),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(labels::pod_selector(&ms.name_any())),
                match_expressions: None,
            }),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }))
}
