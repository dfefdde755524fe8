//! Environment of the container: `spec.env`, `spec.envFrom`, the `<NAME>_ADDR` /
//! `<NAME>_URL` variables derived from the resolved dependencies, and the variables of
//! the backing services, read from their Secrets.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, SecretEnvSource,
    SecretKeySelector,
};

use crate::api::{self, MicroserviceSpec, Port};
use crate::class::Binding;

use super::config_snapshot::Snapshots;
pub use crate::class::backing::env_prefix;
use crate::graph::{ResolvedBacking, ResolvedDependency};

/// `spec.env` first, then per dependency (in `dependsOn` order) `<NAME>_ADDR` and
/// `<NAME>_URL`, then each backing service's variables (by name): a reference to a key of
/// its Secret for one found in a Secret (the values never pass through Flotilla), the
/// address of the Microservice for one a Microservice runs (`run_by`). A name already present is
/// not added again, so an explicit entry wins and two dependencies with the same name in
/// different namespaces do not produce duplicate variables (the first one listed wins).
pub fn env_vars(
    spec: &MicroserviceSpec,
    dependencies: &[ResolvedDependency],
    backing: &[Binding],
    run_by: &[ResolvedBacking],
    snapshots: &Snapshots,
) -> Vec<EnvVar> {
    let mut seen = BTreeSet::new();
    let mut vars = Vec::with_capacity(spec.env.len() + 2 * dependencies.len());
    for var in &spec.env {
        if seen.insert(var.name.clone()) {
            vars.push(explicit_var(var, snapshots));
        }
    }
    for dependency in dependencies {
        let prefix = env_prefix(&dependency.name);
        let addr = dependency_addr(dependency);
        let url = format!(
            "{}{addr}",
            url_scheme(dependency.port.app_protocol.as_deref())
        );
        for (name, value) in [
            (format!("{prefix}_ADDR"), addr),
            (format!("{prefix}_URL"), url),
        ] {
            if seen.insert(name.clone()) {
                vars.push(EnvVar {
                    name,
                    value: Some(value),
                    value_from: None,
                });
            }
        }
    }
    for binding in backing {
        let Some(found_in) = binding.secret() else {
            let resolved = run_by.iter().find(|r| r.name == binding.name);
            for (name, value) in resolved.map(microservice_vars).into_iter().flatten() {
                if seen.insert(name.clone()) {
                    vars.push(EnvVar {
                        name,
                        value: Some(value),
                        value_from: None,
                    });
                }
            }
            continue;
        };
        for var in &found_in.env {
            if seen.insert(var.name.clone()) {
                vars.push(EnvVar {
                    name: var.name.clone(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: found_in.secret.clone(),
                            key: var.key.clone(),
                            optional: var.optional.then_some(true),
                        }),
                        ..EnvVarSource::default()
                    }),
                });
            }
        }
    }
    vars
}

/// `<NAME>_URL`, `<NAME>_HOST` and `<NAME>_PORT` of a backing service a Microservice
/// runs: its Service's name and port, the scheme its port's `appProtocol` (a URI scheme
/// such as `nats`), else its type.
fn microservice_vars(resolved: &ResolvedBacking) -> [(String, String); 3] {
    let prefix = env_prefix(&resolved.name);
    let target = &resolved.target;
    let host = format!("{}.{}.svc.cluster.local", target.name, target.namespace);
    let scheme = match target.port.app_protocol.as_deref() {
        Some(protocol) if is_uri_scheme(protocol) => protocol,
        _ => resolved.type_.as_str(),
    };
    [
        (
            format!("{prefix}_URL"),
            format!("{scheme}://{host}:{}", target.port.port),
        ),
        (format!("{prefix}_HOST"), host),
        (format!("{prefix}_PORT"), target.port.port.to_string()),
    ]
}

/// RFC 3986's scheme: a letter, then letters, digits, `+`, `-` and `.` (an appProtocol
/// such as `kubernetes.io/h2c` is none).
fn is_uri_scheme(value: &str) -> bool {
    value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `<name>.<namespace>.svc.cluster.local:<port>`: the Service port, not the container
/// port, because callers go through the Service.
pub fn dependency_addr(dependency: &ResolvedDependency) -> String {
    format!(
        "{}.{}.svc.cluster.local:{}",
        dependency.name, dependency.namespace, dependency.port.port
    )
}

/// URL scheme for a port's appProtocol.
pub fn url_scheme(app_protocol: Option<&str>) -> &'static str {
    match app_protocol {
        Some("http" | "http2" | "h2c") => "http://",
        Some("https") => "https://",
        Some("grpc") => "grpc://",
        _ => "tcp://",
    }
}

/// The URL of a port of a Microservice, e.g. for `status.url`.
pub fn port_url(name: &str, namespace: &str, port: &Port) -> String {
    format!(
        "{}{name}.{namespace}.svc.cluster.local:{}",
        url_scheme(port.app_protocol.as_deref()),
        port.port
    )
}

/// A ConfigMap's name as the pods read it: its snapshot's, when there is one.
fn config_map_name(name: &str, snapshots: &Snapshots) -> String {
    snapshots.get(name).map_or(name, String::as_str).to_string()
}

fn explicit_var(var: &api::EnvVar, snapshots: &Snapshots) -> EnvVar {
    EnvVar {
        name: var.name.clone(),
        value: var.value.clone(),
        value_from: var.value_from.as_ref().map(|source| EnvVarSource {
            config_map_key_ref: source
                .config_map_key_ref
                .as_ref()
                .map(|r| ConfigMapKeySelector {
                    name: config_map_name(&r.name, snapshots),
                    key: r.key.clone(),
                    optional: r.optional,
                }),
            secret_key_ref: source.secret_key_ref.as_ref().map(|r| SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: r.optional,
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// `spec.envFrom` in the container's shape; None when empty so no `envFrom: []` is applied.
pub fn env_from(spec: &MicroserviceSpec, snapshots: &Snapshots) -> Option<Vec<EnvFromSource>> {
    if spec.env_from.is_empty() {
        return None;
    }
    Some(
        spec.env_from
            .iter()
            .map(|source| EnvFromSource {
                config_map_ref: source.config_map_ref.as_ref().map(|r| ConfigMapEnvSource {
                    name: config_map_name(&r.name, snapshots),
                    optional: r.optional,
                }),
                secret_ref: source.secret_ref.as_ref().map(|r| SecretEnvSource {
                    name: r.name.clone(),
                    optional: r.optional,
                }),
                prefix: source.prefix.clone(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_upper_snake_case() {
        assert_eq!(env_prefix("order-history"), "ORDER_HISTORY");
        assert_eq!(env_prefix("a.b-c9"), "A_B_C9");
    }

    #[test]
    fn scheme_follows_app_protocol() {
        assert_eq!(url_scheme(Some("h2c")), "http://");
        assert_eq!(url_scheme(Some("https")), "https://");
        assert_eq!(url_scheme(Some("grpc")), "grpc://");
        assert_eq!(url_scheme(Some("redis")), "tcp://");
        assert_eq!(url_scheme(None), "tcp://");
    }
}
