//! The Gateway API HTTPRoute of an exposed Microservice, when its class names a Gateway
//! and the cluster serves the kind. k8s-openapi has no Gateway API types, so the few
//! fields Flotilla writes are typed here; `v1` and `v1beta1` share their shapes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::expose::{self, RoutedPath};
use super::kind::{ChildKind, KindVersion, to_child};
use super::{BuildContext, BuildError, labels};
use crate::api::{Microservice, PathType, Port};

pub const GROUP: &str = "gateway.networking.k8s.io";
/// The Gateway API caps `spec.rules` at 16.
pub const MAX_RULES: usize = 16;

/// An HTTPRoute, as much of it as Flotilla sets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// `gateway.networking.k8s.io/v1` or `/v1beta1`, as the server serves it.
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: HttpRouteSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    pub parent_refs: Vec<ParentReference>,
    pub hostnames: Vec<String>,
    pub rules: Vec<HttpRouteRule>,
}

/// The Gateway (listener) the route attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// Requests matching any of `matches` go to `backend_refs`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    pub matches: Vec<HttpRouteMatch>,
    pub backend_refs: Vec<HttpBackendRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    pub path: HttpPathMatch,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathMatch {
    /// `PathPrefix` or `Exact`.
    #[serde(rename = "type")]
    pub type_: String,
    pub value: String,
}

/// A Service in the route's namespace (the API's defaults: group "", kind Service).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    pub name: String,
    /// The Service port number; the Gateway API has no port names.
    pub port: i32,
}

/// Whether exposure goes through the Gateway API: the class names a Gateway *and* the
/// cluster serves HTTPRoute. A class with a `gatewayRef` on a cluster without the
/// Gateway API CRDs still gets Ingresses, so the same class works on both.
pub fn uses_gateway(ctx: &BuildContext) -> bool {
    ctx.capabilities.serves(&KIND) && ctx.class.expose.gateway_ref.is_some()
}

/// The HTTPRoute kind, served where the Gateway API's CRDs are installed (`v1`, or
/// `v1beta1` on older installs; the same fields as far as Flotilla writes them).
pub static KIND: ChildKind = ChildKind::new(
    "HTTPRoute",
    GROUP,
    "httproutes",
    &[
        KindVersion::installed("v1"),
        KindVersion::installed("v1beta1"),
    ],
    |ms, ctx| to_child(KIND.kind, build(ms, ctx)?),
);

/// None unless `spec.expose.http` is set and [`uses_gateway`] holds.
///
/// Paths are grouped into one rule per port, in order of first use: a rule takes any
/// number of matches, the API allows at most 16 rules, and a spec may route 32 paths.
/// Merging changes nothing about which request goes where, because the Gateway picks
/// the most specific match across all rules, not the first rule.
pub fn build(ms: &Microservice, ctx: &BuildContext) -> Result<Option<HttpRoute>, BuildError> {
    let (Some(api_version), Some(gateway)) = (
        ctx.capabilities.api_version(&KIND),
        ctx.class.expose.gateway_ref.as_ref(),
    ) else {
        return Ok(None);
    };
    let Some(host) = expose::external_host(ms, &ctx.class)? else {
        return Ok(None);
    };
    let service = ms.name_any();
    let rules = rules(&expose::routed_paths(&ms.spec)?, &service);
    if rules.len() > MAX_RULES {
        return Err(BuildError::TooManyRouteRules { ports: rules.len() });
    }

    let mut metadata = labels::child_meta(ms);
    let annotations = &ctx.class.expose.annotations;
    if !annotations.is_empty() {
        metadata.annotations = Some(annotations.clone());
    }
    Ok(Some(HttpRoute {
        api_version,
        kind: KIND.kind.to_string(),
        metadata,
        spec: HttpRouteSpec {
            parent_refs: vec![ParentReference {
                group: GROUP.to_string(),
                kind: "Gateway".to_string(),
                name: gateway.name.clone(),
                namespace: Some(gateway.namespace.clone()),
                section_name: gateway.section_name.clone(),
            }],
            hostnames: vec![host],
            rules,
        },
    }))
}

fn rules(paths: &[RoutedPath<'_>], service: &str) -> Vec<HttpRouteRule> {
    let mut rules: Vec<(&Port, HttpRouteRule)> = Vec::new();
    for path in paths {
        let matched = HttpRouteMatch {
            path: HttpPathMatch {
                type_: match path.path_type {
                    PathType::Prefix => "PathPrefix",
                    PathType::Exact => "Exact",
                }
                .to_string(),
                value: path.path.clone(),
            },
        };
        match rules
            .iter_mut()
            .find(|(port, _)| port.name == path.port.name)
        {
            Some((_, rule)) => rule.matches.push(matched),
            None => rules.push((
                path.port,
                HttpRouteRule {
                    matches: vec![matched],
                    backend_refs: vec![HttpBackendRef {
                        name: service.to_string(),
                        port: path.port.port,
                    }],
                },
            )),
        }
    }
    rules.into_iter().map(|(_, rule)| rule).collect()
}
