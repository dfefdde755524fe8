//! Backing services bound: each one a Microservice asks for (`spec.backingServices`),
//! matched with how its class provides the type, into the Secret and variables the
//! builders use. Pure: whether the Secret exists is the plan's question.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::api::{BackingServiceEndpoint, BackingServiceProvisioner, Microservice};
use crate::validate::is_dns_subdomain;

use super::Refusal;

/// A backing service of one Microservice, as its class provides it.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// Its name in `spec.backingServices`.
    pub name: String,
    /// Its type, e.g. `postgres`.
    pub type_: String,
    /// The pods may start without it.
    pub optional: bool,
    /// Where it comes from.
    pub provider: Provider,
}

/// How one backing service is provided.
#[derive(Clone, Debug, PartialEq)]
pub enum Provider {
    /// An existing Secret says how to connect.
    Secret(SecretBinding),
    /// A Microservice runs it.
    Microservice(MicroserviceTarget),
    /// An object Flotilla applies provisions it and writes its Secret.
    Template(TemplateBinding),
}

/// A backing service provisioned from an object Flotilla applies.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateBinding {
    pub api_version: String,
    pub kind: String,
    /// Its name, in the Microservice's namespace.
    pub name: String,
    /// Its spec, placeholders replaced; None for an object with none.
    pub spec: Option<serde_json::Value>,
    /// The condition type that says it is ready.
    pub ready_condition: String,
    /// The connection Secret its controller writes.
    pub secret: SecretBinding,
}

/// A backing service found in a Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretBinding {
    /// The Secret that says how to connect, in the Microservice's namespace.
    pub secret: String,
    /// The container's variables, each reading one key of the Secret.
    pub env: Vec<BoundVar>,
    /// Where it answers, for the NetworkPolicy's egress.
    pub endpoint: Option<BackingServiceEndpoint>,
}

/// The Microservice that runs a backing service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicroserviceTarget {
    pub namespace: String,
    pub name: String,
    /// The port its users call; its first when None.
    pub port: Option<String>,
}

impl Binding {
    /// The Secret binding, when a Secret provides it.
    /// (A provisioned one's too: the one its object's controller writes.)
    pub fn secret(&self) -> Option<&SecretBinding> {
        match &self.provider {
            Provider::Secret(secret) => Some(secret),
            Provider::Template(template) => Some(&template.secret),
            Provider::Microservice(_) => None,
        }
    }

    /// The Microservice that runs it, when one does.
    pub fn microservice(&self) -> Option<&MicroserviceTarget> {
        match &self.provider {
            Provider::Microservice(target) => Some(target),
            _ => None,
        }
    }

    /// The object that provisions it, when one does.
    pub fn template(&self) -> Option<&TemplateBinding> {
        match &self.provider {
            Provider::Template(template) => Some(template),
            _ => None,
        }
    }
}

/// One variable read from a backing service's Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundVar {
    /// `DB_URL` for the suffix `URL` of a backing service named `db`.
    pub name: String,
    /// The key of the Secret it reads.
    pub key: String,
    /// The type's usual keys are optional (a Secret may lack one); keys the class lists
    /// are required.
    pub optional: bool,
}

/// A required backing service that is not there (yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingBackingService {
    pub name: String,
    pub type_: String,
    pub missing: Missing,
}

/// What a missing backing service lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Its Secret, by name, does not exist.
    Secret(String),
    /// The Microservice that runs it does not resolve: why.
    Microservice(String),
    /// The object that provisions it is not there or not ready: why.
    Provisioner(String),
}

impl std::fmt::Display for MissingBackingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.missing {
            Missing::Secret(secret) => write!(
                f,
                "{} ({}): Secret {secret} not found",
                self.name, self.type_
            ),
            Missing::Microservice(reason) | Missing::Provisioner(reason) => {
                write!(f, "{} ({}): {reason}", self.name, self.type_)
            }
        }
    }
}

/// The Secret name of a backing service when the class names none.
pub const DEFAULT_SECRET_NAME: &str = "{microservice}-{service}";

/// Binds every backing service `ms` asks for with the class's provisioners (`class`
/// names the class, None when no class governs it; `namespace_labels` are those of its
/// namespace, which a provisioner may be limited to). A type the class does not provide
/// refuses the whole Microservice: nothing would run as its team expects.
pub fn bind(
    ms: &Microservice,
    class: Option<&str>,
    provisioners: &BTreeMap<String, BackingServiceProvisioner>,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<Vec<Binding>, Refusal> {
    let microservice = ms.name_any();
    let namespace = ms.namespace().unwrap_or_default();
    let mut bindings = Vec::new();
    for (name, wanted) in &ms.spec.backing_services {
        let field = format!("spec.backingServices.{name}");
        let class_name = class.unwrap_or_default();
        let provisioner = provisioners.get(&wanted.type_).ok_or_else(|| {
            Refusal::BackingServiceUnavailable(unavailable(
                &field,
                &wanted.type_,
                class,
                provisioners,
            ))
        })?;
        if !offered_to(provisioner, namespace_labels) {
            return Err(Refusal::BackingServiceUnavailable(format!(
                "{field}: MicroserviceClass {class_name} provides type {} only to the namespaces its spec.backingServices.{}.namespaceSelector selects, and not to {namespace}",
                wanted.type_, wanted.type_
            )));
        }
        let named = |template: Option<&str>, what: &str| {
            let template = template.unwrap_or(DEFAULT_SECRET_NAME);
            let made = template
                .replace("{microservice}", &microservice)
                .replace("{service}", name);
            if is_dns_subdomain(&made) {
                Ok(made)
            } else {
                Err(Refusal::BackingServiceUnavailable(format!(
                    "{field}: the {what} name `{made}` made from MicroserviceClass {class_name}'s template `{template}` is not a valid object name"
                )))
            }
        };
        let secret_binding =
            |secret: &crate::api::SecretProvisioner| -> Result<SecretBinding, Refusal> {
                Ok(SecretBinding {
                    secret: named(secret.name.as_deref(), "Secret")?,
                    env: secret_vars(name, &wanted.type_, wanted.optional, &secret.env),
                    endpoint: secret.endpoint.clone(),
                })
            };
        let provider = match (
            &provisioner.secret,
            &provisioner.microservice,
            &provisioner.template,
        ) {
            (None, Some(target), None) => Provider::Microservice(MicroserviceTarget {
                namespace: target
                    .namespace
                    .clone()
                    .unwrap_or_else(|| namespace.clone()),
                name: target.name.clone(),
                port: target.port.clone(),
            }),
            (Some(secret), None, None) => Provider::Secret(secret_binding(secret)?),
            (None, None, Some(template)) => Provider::Template(TemplateBinding {
                api_version: template.api_version.clone(),
                kind: template.kind.clone(),
                name: named(template.name.as_deref(), &template.kind)?,
                spec: template.spec.as_ref().map(|spec| {
                    placeholders(
                        spec,
                        &[
                            ("{microservice}", &microservice),
                            ("{service}", name),
                            ("{namespace}", &namespace),
                        ],
                    )
                }),
                ready_condition: template
                    .ready_condition
                    .clone()
                    .unwrap_or_else(|| "Ready".to_string()),
                secret: secret_binding(&template.secret)?,
            }),
            _ => {
                return Err(Refusal::BackingServiceUnavailable(format!(
                    "{field}: MicroserviceClass {class_name} gives type {} no single provisioner (set one of secret, microservice and template)",
                    wanted.type_
                )));
            }
        };
        bindings.push(Binding {
            name: name.clone(),
            type_: wanted.type_.clone(),
            optional: wanted.optional,
            provider,
        });
    }
    Ok(bindings)
}

/// `value` with each placeholder replaced in every string it holds.
fn placeholders(value: &serde_json::Value, pairs: &[(&str, &str)]) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(
            pairs
                .iter()
                .fold(text.clone(), |text, (from, to)| text.replace(from, to)),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| placeholders(v, pairs)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), placeholders(v, pairs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether a provisioner serves a namespace with these labels.
fn offered_to(
    provisioner: &BackingServiceProvisioner,
    namespace_labels: &BTreeMap<String, String>,
) -> bool {
    provisioner
        .namespace_selector
        .as_ref()
        .is_none_or(|selector| {
            Selector::try_from(selector.clone())
                .is_ok_and(|selector| selector.matches(namespace_labels))
        })
}

/// The variables of a backing service found in a Secret: the keys the class lists
/// (required unless the backing service is optional), else the type's usual ones (each
/// optional).
fn secret_vars(
    name: &str,
    type_: &str,
    optional: bool,
    listed: &BTreeMap<String, String>,
) -> Vec<BoundVar> {
    let prefix = env_prefix(name);
    if listed.is_empty() {
        return usual_keys(type_)
            .iter()
            .map(|(suffix, key)| BoundVar {
                name: format!("{prefix}_{suffix}"),
                key: (*key).to_string(),
                optional: true,
            })
            .collect();
    }
    listed
        .iter()
        .map(|(suffix, key)| BoundVar {
            name: format!("{prefix}_{suffix}"),
            key: key.clone(),
            optional,
        })
        .collect()
}

fn unavailable(
    field: &str,
    type_: &str,
    class: Option<&str>,
    provisioners: &BTreeMap<String, BackingServiceProvisioner>,
) -> String {
    match class {
        None => format!(
            "{field}: type {type_} is provided by a MicroserviceClass, and none governs this Microservice"
        ),
        Some(class) if provisioners.is_empty() => {
            format!(
                "{field}: MicroserviceClass {class} provides no backing service (asked for {type_})"
            )
        }
        Some(class) => format!(
            "{field}: MicroserviceClass {class} does not provide type {type_} (it provides: {})",
            provisioners.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Upper snake case of a name, the prefix of the variables it gives: `order-history` →
/// `ORDER_HISTORY` (a dependency's `<NAME>_URL`, a backing service's `<NAME>_HOST`).
pub fn env_prefix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The keys a type's connection Secret usually has (CloudNativePG's names for SQL
/// databases), by variable suffix.
fn usual_keys(type_: &str) -> &'static [(&'static str, &'static str)] {
    match type_ {
        "postgres" | "postgresql" | "mysql" | "mariadb" => &[
            ("URL", "uri"),
            ("HOST", "host"),
            ("PORT", "port"),
            ("USER", "username"),
            ("PASSWORD", "password"),
            ("DATABASE", "dbname"),
        ],
        "redis" | "valkey" => &[
            ("URL", "uri"),
            ("HOST", "host"),
            ("PORT", "port"),
            ("PASSWORD", "password"),
        ],
        _ => &[("URL", "uri"), ("HOST", "host"), ("PORT", "port")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(backing: &str) -> Microservice {
        serde_saphyr::from_str(&format!(
            "{{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {{name: orders, namespace: shop}}, spec: {{image: a, backingServices: {backing}}}}}"
        ))
        .unwrap()
    }

    fn provisioners(yaml: &str) -> BTreeMap<String, BackingServiceProvisioner> {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn bind(
        ms: &Microservice,
        class: Option<&str>,
        provisioners: &BTreeMap<String, BackingServiceProvisioner>,
    ) -> Result<Vec<Binding>, Refusal> {
        super::bind(ms, class, provisioners, &BTreeMap::new())
    }

    #[test]
    fn the_usual_keys_of_a_type_are_optional_variables() {
        let bound = bind(
            &ms("{db: {type: postgres}}"),
            Some("shop"),
            &provisioners("{postgres: {secret: {name: '{microservice}-{service}-app'}}}"),
        )
        .unwrap();
        assert_eq!(bound.len(), 1);
        let secret = bound[0].secret().unwrap();
        assert_eq!(secret.secret, "orders-db-app");
        let names: Vec<&str> = secret.env.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "DB_URL",
                "DB_HOST",
                "DB_PORT",
                "DB_USER",
                "DB_PASSWORD",
                "DB_DATABASE"
            ]
        );
        assert!(secret.env.iter().all(|v| v.optional));
    }

    #[test]
    fn keys_the_class_lists_are_required_and_the_default_name_is_used() {
        let bound = bind(
            &ms("{order-events: {type: nats}}"),
            Some("shop"),
            &provisioners("{nats: {secret: {env: {URL: url}}}}"),
        )
        .unwrap();
        let secret = bound[0].secret().unwrap();
        assert_eq!(secret.secret, "orders-order-events");
        assert_eq!(
            secret.env,
            [BoundVar {
                name: "ORDER_EVENTS_URL".into(),
                key: "url".into(),
                optional: false
            }]
        );
    }

    #[test]
    fn a_type_the_class_does_not_provide_is_refused_naming_the_field() {
        let refusal = bind(
            &ms("{cache: {type: redis}}"),
            Some("shop"),
            &provisioners("{postgres: {secret: {}}}"),
        )
        .unwrap_err();
        assert_eq!(refusal.reason(), "BackingServiceUnavailable");
        assert_eq!(
            refusal.to_string(),
            "spec.backingServices.cache: MicroserviceClass shop does not provide type redis (it provides: postgres)"
        );
        let classless = bind(&ms("{cache: {type: redis}}"), None, &BTreeMap::new()).unwrap_err();
        assert!(
            classless.to_string().contains("none governs"),
            "{classless}"
        );
    }

    #[test]
    fn a_template_making_an_invalid_name_is_refused() {
        let refusal = bind(
            &ms("{db: {type: postgres}}"),
            Some("shop"),
            &provisioners("{postgres: {secret: {name: 'DB_{service}'}}}"),
        )
        .unwrap_err();
        assert!(refusal.to_string().contains("`DB_db`"), "{refusal}");
    }

    #[test]
    fn a_microservice_provides_a_broker_in_the_users_namespace_unless_named() {
        let bound = bind(
            &ms("{events: {type: nats}}"),
            Some("shop"),
            &provisioners("{nats: {microservice: {name: nats, port: client}}}"),
        )
        .unwrap();
        assert_eq!(
            bound[0].microservice(),
            Some(&MicroserviceTarget {
                namespace: "shop".into(),
                name: "nats".into(),
                port: Some("client".into())
            })
        );
        let elsewhere = bind(
            &ms("{events: {type: nats}}"),
            Some("shop"),
            &provisioners("{nats: {microservice: {name: nats, namespace: messaging}}}"),
        )
        .unwrap();
        assert_eq!(elsewhere[0].microservice().unwrap().namespace, "messaging");
    }

    #[test]
    fn a_type_limited_to_some_namespaces_is_refused_elsewhere() {
        let offered = provisioners(
            "{postgres: {secret: {}, namespaceSelector: {matchLabels: {databases: allowed}}}}",
        );
        let refusal = bind(&ms("{db: {type: postgres}}"), Some("shop"), &offered).unwrap_err();
        assert_eq!(refusal.reason(), "BackingServiceUnavailable");
        assert!(refusal.to_string().contains("not to shop"), "{refusal}");
        let labels = BTreeMap::from([("databases".to_string(), "allowed".to_string())]);
        assert!(
            super::bind(
                &ms("{db: {type: postgres}}"),
                Some("shop"),
                &offered,
                &labels
            )
            .is_ok()
        );
    }

    #[test]
    fn a_template_names_its_object_and_its_secret_and_fills_its_spec() {
        let bound = bind(
            &ms("{db: {type: postgres}}"),
            Some("shop"),
            &provisioners(
                "{postgres: {template: {apiVersion: postgresql.cnpg.io/v1, kind: Cluster, spec: {instances: 1, bootstrap: {initdb: {database: '{service}', owner: '{microservice}'}}}, secret: {name: '{microservice}-{service}-app'}}}}",
            ),
        )
        .unwrap();
        let template = bound[0].template().unwrap();
        assert_eq!(template.name, "orders-db");
        assert_eq!(template.ready_condition, "Ready");
        assert_eq!(
            template.spec.as_ref().unwrap()["bootstrap"]["initdb"],
            serde_json::json!({"database": "db", "owner": "orders"})
        );
        assert_eq!(bound[0].secret().unwrap().secret, "orders-db-app");
    }
}
