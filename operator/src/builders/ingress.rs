//! The Ingress of an exposed Microservice: one rule for its host, each routed path to a
//! port of its own Service.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::ResourceExt;

use super::expose::{self, RoutedPath};
use super::http_route;
use super::kind::{ChildKind, KindVersion, to_child};
use super::{BuildContext, BuildError, labels};
use crate::api::{Microservice, PathType};

/// The Ingress kind.
pub static KIND: ChildKind = ChildKind::new(
    "Ingress",
    "networking.k8s.io",
    "ingresses",
    &[KindVersion::since("v1", 1, 19)],
    |ms, ctx| to_child(KIND.kind, build(ms, ctx)?),
);

/// None when `spec.expose.http` is unset, or when the exposure goes through a Gateway
/// (an HTTPRoute replaces the Ingress, see [`http_route::uses_gateway`]).
pub fn build(ms: &Microservice, ctx: &BuildContext) -> Result<Option<Ingress>, BuildError> {
    let Some(http) = expose::http(&ms.spec) else {
        return Ok(None);
    };
    if http_route::uses_gateway(ctx) {
        return Ok(None);
    }
    let Some(host) = expose::external_host(ms, &ctx.class)? else {
        return Ok(None);
    };
    let service = ms.name_any();
    let paths = expose::routed_paths(&ms.spec)?
        .iter()
        .map(|path| ingress_path(path, &service))
        .collect();

    let mut metadata = labels::child_meta(ms);
    let annotations = &ctx.class.expose.annotations;
    if !annotations.is_empty() {
        metadata.annotations = Some(annotations.clone());
    }
    // A `tls` without a secret still lists the host: the controller then serves it with
    // its default certificate, and the external URL says https either way.
    let tls = http.tls.as_ref().map(|tls| {
        vec![IngressTLS {
            hosts: Some(vec![host.clone()]),
            secret_name: tls.secret_name.clone(),
        }]
    });

    Ok(Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            // Unset means the cluster's default IngressClass.
            ingress_class_name: ctx.class.expose.ingress_class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(host),
                http: Some(HTTPIngressRuleValue { paths }),
            }]),
            tls,
            default_backend: None,
        }),
        status: None,
    }))
}

fn ingress_path(path: &RoutedPath<'_>, service: &str) -> HTTPIngressPath {
    HTTPIngressPath {
        path: Some(path.path.clone()),
        path_type: match path.path_type {
            PathType::Prefix => "Prefix",
            PathType::Exact => "Exact",
        }
        .to_string(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: service.to_string(),
                // By name: the Service port keeps its name when its number changes.
                port: Some(ServiceBackendPort {
                    name: Some(path.port.name.clone()),
                    number: None,
                }),
            }),
            resource: None,
        },
    }
}
