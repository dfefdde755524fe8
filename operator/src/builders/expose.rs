//! What `spec.expose.http` resolves to, shared by the Ingress, the HTTPRoute, the
//! NetworkPolicy and the controller's `status.externalUrl`: the host, the routed paths
//! with their defaults, and the ports those paths reach.

use kube::ResourceExt;

use super::{BuildContext, BuildError, find_port};
use crate::api::{HttpExpose, Microservice, MicroserviceSpec, PathType, Port};
use crate::class::ClassSettings;

/// The longest host name DNS (and the Ingress and HTTPRoute schemas) accept.
pub const MAX_HOST_LENGTH: usize = 253;

/// One path routed to the service, with the defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutedPath<'a> {
    /// The request path, e.g. `/api`.
    pub path: String,
    pub path_type: PathType,
    /// The port of `spec.ports` the requests go to.
    pub port: &'a Port,
}

/// The HTTP exposure of `spec`, if any.
pub fn http(spec: &MicroserviceSpec) -> Option<&HttpExpose> {
    spec.expose.as_ref().and_then(|e| e.http.as_ref())
}

/// The host the service is reached at: None when `spec.expose.http` is unset; else
/// `host`; else `hostPrefix` + `.` + the class's `expose.hostSuffix`; else
/// `<name>.<namespace>.<hostSuffix>`. The last two need a suffix, and the error says
/// which field asked for one and whether a class applies at all.
///
/// Takes the whole [`ClassSettings`] rather than only its `expose`, so that the error
/// can name the class.
pub fn external_host(
    ms: &Microservice,
    class: &ClassSettings,
) -> Result<Option<String>, BuildError> {
    let Some(http) = http(&ms.spec) else {
        return Ok(None);
    };
    if let Some(host) = &http.host {
        return checked_length("spec.expose.http.host", host.clone()).map(Some);
    }
    let (field, first) = match &http.host_prefix {
        Some(prefix) => ("spec.expose.http.hostPrefix", prefix.clone()),
        None => (
            "spec.expose.http",
            format!("{}.{}", ms.name_any(), ms.namespace().unwrap_or_default()),
        ),
    };
    let Some(suffix) = &class.expose.host_suffix else {
        return Err(BuildError::MissingHostSuffix {
            field: field.to_string(),
            class: class.name.clone(),
        });
    };
    checked_length(field, format!("{first}.{suffix}")).map(Some)
}

/// A host longer than DNS allows would only be rejected by the API server later, with a
/// message about the Ingress rather than the Microservice field that made it.
fn checked_length(field: &str, host: String) -> Result<String, BuildError> {
    if host.len() > MAX_HOST_LENGTH {
        return Err(BuildError::HostTooLong {
            field: field.to_string(),
            host,
        });
    }
    Ok(host)
}

/// The routed paths, in `spec.expose.http.paths` order; one `/` prefix path on the
/// primary port when none are given. Empty when the service is not exposed. A path's
/// port must name one of `spec.ports`.
pub fn routed_paths(spec: &MicroserviceSpec) -> Result<Vec<RoutedPath<'_>>, BuildError> {
    let Some(http) = http(spec) else {
        return Ok(Vec::new());
    };
    if http.paths.is_empty() {
        return Ok(vec![RoutedPath {
            path: "/".to_string(),
            path_type: PathType::Prefix,
            port: primary_port(spec)?,
        }]);
    }
    http.paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let port = match &path.port {
                Some(name) => find_port(spec, name, &format!("spec.expose.http.paths[{i}].port"))?,
                None => primary_port(spec)?,
            };
            Ok(RoutedPath {
                path: path.path.clone(),
                path_type: path.path_type.unwrap_or_default(),
                port,
            })
        })
        .collect()
}

fn primary_port(spec: &MicroserviceSpec) -> Result<&Port, BuildError> {
    spec.ports.first().ok_or_else(|| BuildError::NoPorts {
        field: "spec.expose.http".to_string(),
    })
}

/// The distinct ports the routed paths reach, in order of first use. Empty when the
/// service is not exposed.
pub fn exposed_ports(spec: &MicroserviceSpec) -> Result<Vec<&Port>, BuildError> {
    let mut ports: Vec<&Port> = Vec::new();
    for path in routed_paths(spec)? {
        if !ports.iter().any(|p| p.name == path.port.name) {
            ports.push(path.port);
        }
    }
    Ok(ports)
}

/// The URL the service is reached at from outside, for `status.externalUrl`:
/// `https://` when `spec.expose.http.tls` is set (with or without a secret: behind a
/// Gateway the listener holds the certificate), `http://` otherwise; then the host and
/// the first routed path, so the URL leads to the service even when it does not own `/`
/// (`/` when no paths are given).
///
/// None when not exposed, when the host cannot be resolved (building the children
/// reports that error), and for a wildcard host, which names no single URL.
pub fn external_url(ms: &Microservice, ctx: &BuildContext) -> Option<String> {
    let http = http(&ms.spec)?;
    let host = external_host(ms, &ctx.class).ok()??;
    if host.starts_with('*') {
        return None;
    }
    let path = routed_paths(&ms.spec)
        .ok()?
        .into_iter()
        .next()
        .map_or_else(|| "/".to_string(), |p| p.path);
    let scheme = if http.tls.is_some() { "https" } else { "http" };
    Some(format!("{scheme}://{host}{path}"))
}

/// How a `MissingHostSuffix` error explains the missing suffix.
pub(crate) fn missing_suffix_reason(class: &Option<String>) -> String {
    match class {
        Some(name) => format!("class `{name}` has none"),
        None => "no MicroserviceClass applies".to_string(),
    }
}
