//! The Prometheus Operator's ServiceMonitor, when `spec.metrics` is on and the cluster
//! serves `monitoring.coreos.com/v1`. k8s-openapi has no Prometheus Operator types, so
//! the few fields Flotilla writes are typed here.
//!
//! It selects the Microservice's Service by the labels only Flotilla's Service of this
//! Microservice carries (those of its pod selector) and scrapes the metrics port by the
//! Service port's name, so Prometheus discovers every pod behind it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::kind::{ChildKind, KindVersion, to_child};
use super::{BuildContext, BuildError, labels};
use crate::api::{Metrics, Microservice, MicroserviceSpec, Port};

pub const GROUP: &str = "monitoring.coreos.com";

/// A ServiceMonitor, as much of it as Flotilla sets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitor {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ServiceMonitorSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// The Services to scrape, in the ServiceMonitor's own namespace (the default when
    /// `namespaceSelector` is unset).
    pub selector: LabelSelector,
    pub endpoints: Vec<Endpoint>,
}

/// One scraped port of the selected Services.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The Service port's name.
    pub port: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    pub scheme: String,
}

/// The ServiceMonitor kind, served where the Prometheus Operator's CRDs are installed.
pub static KIND: ChildKind = ChildKind::new(
    "ServiceMonitor",
    GROUP,
    "servicemonitors",
    &[KindVersion::installed("v1")],
    |ms, ctx| to_child(KIND.kind, build(ms, ctx)?),
);

/// The metrics settings in effect: None when `spec.metrics` is unset or disabled.
pub fn enabled(spec: &MicroserviceSpec) -> Option<&Metrics> {
    spec.metrics.as_ref().filter(|metrics| !metrics.disabled)
}

/// The port scraped: `spec.metrics.port`, else the primary port.
pub fn metrics_port<'a>(
    spec: &'a MicroserviceSpec,
    metrics: &Metrics,
) -> Result<&'a Port, BuildError> {
    match &metrics.port {
        Some(name) => super::find_port(spec, name, "spec.metrics.port"),
        None => spec.ports.first().ok_or_else(|| BuildError::NoPorts {
            field: "spec.metrics".to_string(),
        }),
    }
}

/// None unless metrics are on and the server serves the kind.
pub fn build(ms: &Microservice, ctx: &BuildContext) -> Result<Option<ServiceMonitor>, BuildError> {
    let (Some(api_version), Some(metrics)) =
        (ctx.capabilities.api_version(&KIND), enabled(&ms.spec))
    else {
        return Ok(None);
    };
    let port = metrics_port(&ms.spec, metrics)?;
    let mut metadata = labels::child_meta(ms);
    let extra = &ctx.class.monitoring.service_monitor_labels;
    if !extra.is_empty() {
        let own = metadata.labels.get_or_insert_with(BTreeMap::new);
        for (key, value) in extra {
            // Flotilla's own labels (the watch selects on managed-by) are never replaced.
            own.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Ok(Some(ServiceMonitor {
        api_version,
        kind: KIND.kind.to_string(),
        metadata,
        spec: ServiceMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(labels::pod_selector(&ms.name_any())),
                match_expressions: None,
            },
            endpoints: vec![Endpoint {
                port: port.name.clone(),
                path: metrics
                    .path
                    .clone()
                    .unwrap_or_else(|| Metrics::DEFAULT_PATH.to_string()),
                interval: metrics.interval.clone(),
                scheme: "http".to_string(),
            }],
        },
    }))
}
