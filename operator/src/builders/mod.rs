//! Desired children of a Microservice, built by pure functions: no client, no clock, no
//! randomness. The same code serves the controller and `flotilla render`.
//!
//! Builders assume a spec that `crate::validate` accepted, but they never panic: what a
//! validated spec cannot contain still comes back as a [`BuildError`].

pub mod autoscaler;
mod children;
pub mod config_snapshot;
mod context;
pub mod deployment;
pub mod disruption_budget;
pub mod env;
pub mod expose;
pub mod http_route;
pub mod ingress;
pub mod kind;
pub mod labels;
pub mod network_policy;
pub mod owned;
pub mod probes;
pub mod provisioned;
pub mod security;
pub mod service;
pub mod service_account;
pub mod service_monitor;

pub use children::{Child, Children};
pub use context::{BuildContext, Capabilities};
pub use http_route::HttpRoute;
pub use kind::ChildKind;

use crate::api::{Microservice, MicroserviceSpec, Port};

/// The name every write is made under (server-side apply field manager).
pub const FIELD_MANAGER: &str = "flotilla";

/// Every kind of child, in apply order, which never runs pods unprotected: the
/// ServiceAccount and the NetworkPolicy before the Deployment (its pods run as the one and
/// are isolated by the other from their first start), the Ingress or HTTPRoute last, once
/// the Service and the policy letting the ingress controller in exist; the ServiceMonitor
/// after everything that serves traffic, so that it never holds anything back. An apply
/// that fails stops the rest.
pub static KINDS: &[&ChildKind] = &[
    &service_account::KIND,
    &network_policy::KIND,
    &deployment::KIND,
    &service::KIND,
    &autoscaler::KIND,
    &disruption_budget::KIND,
    &ingress::KIND,
    &http_route::KIND,
    &service_monitor::KIND,
];

/// What a spec that passed validation cannot contain, reported instead of panicking.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("{field}: port `{port}` is not one of spec.ports")]
    UnknownPort { field: String, port: String },
    #[error("{field}: needs a port, but spec.ports is empty")]
    NoPorts { field: String },
    #[error("spec.security.writablePaths: `{path}` is not an absolute path below /")]
    InvalidWritablePath { path: String },
    #[error("spec.disruption: set exactly one of minAvailable or maxUnavailable")]
    InvalidDisruption,
    #[error("{field}: set namespaceSelector, podSelector or both")]
    EmptyPeer { field: String },
    #[error(
        "{field}: needs the class's expose.hostSuffix to complete the host ({}); or set spec.expose.http.host",
        expose::missing_suffix_reason(.class)
    )]
    MissingHostSuffix {
        field: String,
        /// The class in effect; None when no class applies.
        class: Option<String>,
    },
    #[error("{field}: the host `{host}` is longer than 253 characters")]
    HostTooLong { field: String, host: String },
    #[error(
        "spec.expose.http.paths: they reach {ports} different ports, but an HTTPRoute takes at most 16 rules (one per port)"
    )]
    TooManyRouteRules { ports: usize },
    #[error("serializing {kind}: {message}")]
    Serialize { kind: &'static str, message: String },
}

/// Builds every child of `ms`, in [`KINDS`] order, each in the version the server serves.
/// Children are named after the Microservice and live in its namespace. A kind whose
/// CRDs are not installed is left out; a built-in kind the server does not serve is
/// still built (in its preferred version) so that applying it fails loudly.
pub fn build(ms: &Microservice, ctx: &BuildContext) -> Result<Children, BuildError> {
    let mut children = Vec::new();
    for &kind in KINDS {
        let version = match ctx.capabilities.served_version(kind) {
            Some(version) => version,
            None if kind.is_installed_separately() => continue,
            None => kind.versions[0].version,
        };
        if let Some(mut object) = (kind.build)(ms, ctx)? {
            object["apiVersion"] = serde_json::Value::String(kind.api_version(version));
            children.push(Child::new(kind, object));
        }
    }
    Ok(Children::from(children))
}

/// Whether a ConfigMap or a Secret is referenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

/// A ConfigMap or Secret the pods reference, in the Microservice's namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigRef {
    pub kind: ConfigKind,
    pub name: String,
    /// True only when every reference to it is optional: the pods start without it.
    pub optional: bool,
}

/// Every ConfigMap and Secret the pod references (env `valueFrom`, `envFrom`), sorted by
/// kind and name, one entry per object. The controller hashes their metadata into the
/// config-hash annotation.
pub fn config_refs(spec: &MicroserviceSpec) -> Vec<ConfigRef> {
    let mut refs: Vec<ConfigRef> = Vec::new();
    let from_env = spec
        .env
        .iter()
        .filter_map(|var| var.value_from.as_ref())
        .flat_map(|source| {
            let config_map = source
                .config_map_key_ref
                .as_ref()
                .map(|r| (ConfigKind::ConfigMap, &r.name, r.optional));
            let secret = source
                .secret_key_ref
                .as_ref()
                .map(|r| (ConfigKind::Secret, &r.name, r.optional));
            config_map.into_iter().chain(secret)
        });
    let from_env_from = spec.env_from.iter().flat_map(|source| {
        let config_map = source
            .config_map_ref
            .as_ref()
            .map(|r| (ConfigKind::ConfigMap, &r.name, r.optional));
        let secret = source
            .secret_ref
            .as_ref()
            .map(|r| (ConfigKind::Secret, &r.name, r.optional));
        config_map.into_iter().chain(secret)
    });
    for (kind, name, optional) in from_env.chain(from_env_from) {
        let optional = optional.unwrap_or(false);
        match refs.iter_mut().find(|r| r.kind == kind && &r.name == name) {
            Some(existing) => existing.optional &= optional,
            None => refs.push(ConfigRef {
                kind,
                name: name.clone(),
                optional,
            }),
        }
    }
    refs.sort();
    refs
}

/// The port the container listens on: `targetPort`, or `port` when unset.
pub fn container_port(port: &Port) -> i32 {
    port.target_port.unwrap_or(port.port)
}

/// The protocol of a port as Kubernetes spells it. Always written out: server-side apply
/// on 1.20 rejects ports without it (the list is keyed by port and protocol).
pub fn protocol_name(port: &Port) -> String {
    protocol_str(port.protocol.unwrap_or_default()).to_string()
}

pub(crate) fn protocol_str(protocol: crate::api::Protocol) -> &'static str {
    match protocol {
        crate::api::Protocol::TCP => "TCP",
        crate::api::Protocol::UDP => "UDP",
        crate::api::Protocol::SCTP => "SCTP",
    }
}

/// Looks a port up by name in `spec.ports`; `field` names the referring field in errors.
pub(crate) fn find_port<'a>(
    spec: &'a MicroserviceSpec,
    name: &str,
    field: &str,
) -> Result<&'a Port, BuildError> {
    spec.ports
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| BuildError::UnknownPort {
            field: field.to_string(),
            port: name.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::KubeVersion;

    #[test]
    fn every_kind_is_registered_once_with_a_version() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert!(!kind.versions.is_empty(), "{kind:?} has no version");
            assert!(
                KINDS[..i].iter().all(|other| other.kind != kind.kind),
                "{kind:?} is registered twice"
            );
        }
    }

    #[test]
    fn the_oldest_supported_server_serves_every_built_in_kind() {
        let oldest = Capabilities::for_version(KubeVersion::new(1, 20));
        for kind in KINDS.iter().filter(|k| !k.is_installed_separately()) {
            assert!(oldest.serves(kind), "{kind:?} on 1.20");
        }
        assert_eq!(
            oldest.api_version(&autoscaler::KIND).as_deref(),
            Some("autoscaling/v2beta2")
        );
        assert!(!Capabilities::newest().serves(&http_route::KIND));
    }
}
