//! Desired children of a Microservice, built by pure functions: no client, no clock, no
//! randomness. The same code serves the controller and `flotilla render`.

mod context;
pub mod labels;

pub use context::{BuildContext, Capabilities, Dependent, ResolvedDependency};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

/// Every child of one Microservice. Consumers destructure it without `..`, so adding a
/// child kind and forgetting to apply, render or prune it is a compile error.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    pub service_account: ServiceAccount,
    pub deployment: Deployment,
    /// None when the Microservice declares no ports.
    pub service: Option<Service>,
    /// None unless `spec.autoscaling` is set.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    /// None unless `spec.disruption` is set or the minimum replica count is 2 or more.
    pub disruption_budget: Option<PodDisruptionBudget>,
    pub network_policy: NetworkPolicy,
}
