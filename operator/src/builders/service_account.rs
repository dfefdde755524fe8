//! The ServiceAccount the pods run as.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::kind::{ChildKind, KindVersion, to_child};
use super::labels;
use crate::api::Microservice;

/// The ServiceAccount kind.
pub static KIND: ChildKind = ChildKind::new(
    "ServiceAccount",
    "",
    "serviceaccounts",
    &[KindVersion::since("v1", 1, 0)],
    |ms, _| to_child(KIND.kind, Some(build(ms))),
);

pub fn build(ms: &Microservice) -> ServiceAccount {
    let mut metadata = labels::child_meta(ms);
    if let Some(settings) = &ms.spec.service_account
        && !settings.annotations.is_empty()
    {
        metadata.annotations = Some(settings.annotations.clone());
    }
    ServiceAccount {
        metadata,
        // The pod spec says the same; here it also covers pods someone else starts with
        // this account. Services that need API access are not Flotilla's target.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
