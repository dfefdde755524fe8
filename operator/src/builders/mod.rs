//! Desired children of a Microservice, built by pure functions: no client, no clock, no
//! randomness. The same code serves the controller and `flotilla render`.
//!
//! Builders assume a spec that `crate::validate` accepted, but they never panic: what a
//! validated spec cannot contain still comes back as a [`BuildError`].

pub mod autoscaler;
mod context;
pub mod deployment;
pub mod disruption_budget;
pub mod env;
pub mod expose;
pub mod http_route;
pub mod ingress;
pub mod labels;
pub mod network_policy;
pub mod probes;
pub mod security;
pub mod service;
pub mod service_account;

pub use context::{BuildContext, Capabilities, ClassSettings, Dependent, ResolvedDependency};
pub use http_route::HttpRoute;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::Value;

use crate::api::{Microservice, MicroserviceSpec, Port};

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
    /// None when the class's network mode is `permissive`.
    pub network_policy: Option<NetworkPolicy>,
    /// None unless `spec.expose.http` is set and the exposure does not go through a
    /// Gateway (see [`expose::uses_gateway`]).
    pub ingress: Option<Ingress>,
    /// None unless `spec.expose.http` is set, the class names a Gateway and the cluster
    /// serves HTTPRoute. Never set together with `ingress`.
    pub http_route: Option<HttpRoute>,
}

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

/// Builds every child of `ms`. Children are named after the Microservice and live in its
/// namespace.
pub fn build(ms: &Microservice, ctx: &BuildContext) -> Result<Children, BuildError> {
    Ok(Children {
        service_account: service_account::build(ms),
        deployment: deployment::build(ms, ctx)?,
        service: service::build(ms),
        autoscaler: autoscaler::build(ms),
        disruption_budget: disruption_budget::build(ms)?,
        network_policy: network_policy::build(ms, ctx)?,
        ingress: ingress::build(ms, ctx)?,
        http_route: http_route::build(ms, ctx)?,
    })
}

impl Children {
    /// The children as JSON objects ready for server-side apply, in apply order
    /// (ServiceAccount, Deployment, Service, HorizontalPodAutoscaler,
    /// PodDisruptionBudget, NetworkPolicy, then Ingress or HTTPRoute: the route comes
    /// last, once the Service and the policy letting the controller in exist), with
    /// `apiVersion` set to what the server serves: the typed structs always say
    /// `autoscaling/v2` and `policy/v1`, and the older `v2beta2`/`v1beta1` versions take
    /// the same field shapes; the HTTPRoute says what `caps.http_route` says.
    pub fn to_documents(&self, caps: &Capabilities) -> Result<Vec<Value>, BuildError> {
        let Children {
            service_account,
            deployment,
            service,
            autoscaler,
            disruption_budget,
            network_policy,
            ingress,
            http_route,
        } = self;
        let mut documents = vec![
            to_value("ServiceAccount", service_account)?,
            to_value("Deployment", deployment)?,
        ];
        if let Some(service) = service {
            documents.push(to_value("Service", service)?);
        }
        if let Some(autoscaler) = autoscaler {
            let mut value = to_value("HorizontalPodAutoscaler", autoscaler)?;
            set_api_version(&mut value, caps.autoscaling_api_version());
            documents.push(value);
        }
        if let Some(budget) = disruption_budget {
            let mut value = to_value("PodDisruptionBudget", budget)?;
            set_api_version(&mut value, caps.policy_api_version());
            documents.push(value);
        }
        if let Some(policy) = network_policy {
            documents.push(to_value("NetworkPolicy", policy)?);
        }
        if let Some(ingress) = ingress {
            documents.push(to_value("Ingress", ingress)?);
        }
        if let Some(route) = http_route {
            let mut value = to_value("HTTPRoute", route)?;
            if let Some(api_version) = caps.http_route {
                set_api_version(&mut value, api_version);
            }
            documents.push(value);
        }
        Ok(documents)
    }
}

fn to_value<T: serde::Serialize>(kind: &'static str, object: &T) -> Result<Value, BuildError> {
    let mut value = serde_json::to_value(object).map_err(|e| BuildError::Serialize {
        kind,
        message: e.to_string(),
    })?;
    if let Value::Object(map) = &mut value {
        // Flotilla never writes status; an empty one would only be noise in renders and
        // a claim on the field under server-side apply.
        map.remove("status");
    }
    Ok(value)
}

fn set_api_version(value: &mut Value, api_version: &str) {
    if let Value::Object(map) = value {
        map.insert(
            "apiVersion".to_string(),
            Value::String(api_version.to_string()),
        );
    }
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
