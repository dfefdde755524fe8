//! The Service in front of the pods.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::kind::{ChildKind, KindVersion, to_child};
use super::{container_port, labels, protocol_name};
use crate::api::Microservice;

/// The Service kind.
pub static KIND: ChildKind = ChildKind::new(
    "Service",
    "",
    "services",
    &[KindVersion::since("v1", 1, 0)],
    |ms, _| to_child(KIND.kind, build(ms)),
);

/// None when the Microservice declares no ports: a Service without ports is invalid.
pub fn build(ms: &Microservice) -> Option<Service> {
    let spec = &ms.spec;
    if spec.ports.is_empty() {
        return None;
    }
    let settings = spec.service.clone().unwrap_or_default();
    let mut metadata = labels::child_meta(ms);
    if !settings.annotations.is_empty() {
        metadata.annotations = Some(settings.annotations);
    }
    let type_ = settings.type_.unwrap_or_default().as_str();
    Some(Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(type_.to_string()),
            selector: Some(labels::pod_selector(&ms.name_any())),
            ports: Some(
                spec.ports
                    .iter()
                    .map(|port| ServicePort {
                        name: Some(port.name.clone()),
                        port: port.port,
                        // The number, not the name: the Service works even for pods
                        // of an older template whose port names differ.
                        target_port: Some(IntOrString::Int(container_port(port))),
                        protocol: Some(protocol_name(port)),
                        app_protocol: port.app_protocol.clone(),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}
