//! The HorizontalPodAutoscaler, when `spec.autoscaling` is set. Built with the
//! `autoscaling/v2` types; `builders::build` writes it in the version the server serves
//! (`v2beta2` before 1.23), whose field shapes are the same.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use kube::ResourceExt;

use super::kind::{ChildKind, KindVersion, to_child};
use super::labels;
use crate::api::Microservice;

/// The HorizontalPodAutoscaler kind: `autoscaling/v2`, or `v2beta2` before 1.23 (the
/// same fields for Resource metrics and behavior).
pub static KIND: ChildKind = ChildKind::new(
    "HorizontalPodAutoscaler",
    "autoscaling",
    "horizontalpodautoscalers",
    &[
        KindVersion::since("v2", 1, 23),
        KindVersion::since("v2beta2", 1, 12),
    ],
    |ms, _| to_child(KIND.kind, build(ms)),
);

pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

pub fn build(ms: &Microservice) -> Option<HorizontalPodAutoscaler> {
    let autoscaling = ms.spec.autoscaling.as_ref()?;
    let mut metrics = vec![utilization(
        "cpu",
        autoscaling
            .target_cpu_utilization_percentage
            .unwrap_or(DEFAULT_CPU_UTILIZATION),
    )];
    if let Some(memory) = autoscaling.target_memory_utilization_percentage {
        metrics.push(utilization("memory", memory));
    }
    Some(HorizontalPodAutoscaler {
        metadata: labels::child_meta(ms),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name: ms.name_any(),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(metrics),
            behavior: autoscaling.behavior.clone(),
        }),
        status: None,
    })
}

fn utilization(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".to_string(),
        resource: Some(ResourceMetricSource {
            name: resource.to_string(),
            target: MetricTarget {
                type_: "Utilization".to_string(),
                average_utilization: Some(percent),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}
