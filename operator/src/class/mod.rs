//! MicroserviceClasses, applied before the build: pick the class of a Microservice,
//! check the class itself, merge its defaults under the spec, then hold the result to the
//! class's policy. Pure functions, shared by the controller and `flotilla render`.
//!
//! Order matters: the Microservice's own spec has been validated before (`crate::plan`
//! does it first: its errors are its own); here the class is checked, then the merged
//! spec (a class default can still clash with it, e.g. a probe on a port it lacks), then
//! the policy (which judges what would actually run).

pub mod backing;
pub mod defaults;
pub mod policy;
pub mod selection;
pub mod status;
pub mod validate;

pub use backing::{
    Binding, BoundVar, MicroserviceTarget, Missing, MissingBackingService, Provider, SecretBinding,
    TemplateBinding,
};
pub use defaults::apply_defaults;
pub use policy::{Violation, check_policy};
pub use selection::{ClassError, admits_namespace, default_classes, select, select_in};

use std::collections::BTreeMap;

use kube::ResourceExt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::{
    ClassDns, ClassExpose, ClassMonitoring, Microservice, MicroserviceClass, NetworkMode,
};
use crate::validate::validate;

/// A Microservice with its class applied, ready for the builders.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The Microservice with the class's defaults merged into its spec.
    pub effective: Microservice,
    /// What the class decides beyond the spec (network mode, exposure).
    pub settings: ClassSettings,
    /// The backing services it asks for, as the class provides them.
    pub backing: Vec<Binding>,
}

/// The settings of the MicroserviceClass in effect that shape children directly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassSettings {
    /// Name of the class; None when no class applies.
    pub name: Option<String>,
    /// `strict`: a NetworkPolicy; `permissive`: none.
    pub network_mode: NetworkMode,
    /// How exposed services are reached (ingress class, host suffix, Gateway, the
    /// controller's namespace).
    pub expose: ClassExpose,
    /// Where the scraper runs and the labels ServiceMonitors carry.
    pub monitoring: ClassMonitoring,
    /// Where the cluster's DNS answers.
    pub dns: ClassDns,
    /// The namespaces `spec.network.allowFrom` may reach (`policy.allowFromNamespaces`).
    pub allow_from_namespaces: Option<LabelSelector>,
}

/// Why a Microservice is not built, as a `Ready=False` reason and message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    InvalidSpec(String),
    #[error("{0}")]
    ClassNotFound(String),
    #[error("{0}")]
    AmbiguousDefaultClass(String),
    #[error("{0}")]
    PolicyViolation(String),
    /// The spec asks for what this install of the operator may not do (an HTTP gate
    /// without access to the pod proxy).
    #[error("{0}")]
    GateUnavailable(String),
    /// The class named is bound to other namespaces.
    #[error("{0}")]
    ClassNotAllowed(String),
    /// The cluster requires a class and none governs the Microservice.
    #[error("{0}")]
    ClassRequired(String),
    /// A backing service of a type the class in effect does not provide.
    #[error("{0}")]
    BackingServiceUnavailable(String),
}

impl Refusal {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidSpec(_) => "InvalidSpec",
            Refusal::ClassNotFound(_) => "ClassNotFound",
            Refusal::AmbiguousDefaultClass(_) => "AmbiguousDefaultClass",
            Refusal::PolicyViolation(_) => "PolicyViolation",
            Refusal::GateUnavailable(_) => "GateUnavailable",
            Refusal::ClassNotAllowed(_) => "ClassNotAllowed",
            Refusal::ClassRequired(_) => "ClassRequired",
            Refusal::BackingServiceUnavailable(_) => "BackingServiceUnavailable",
        }
    }
}

/// Applies the class that governs `ms` (from `classes`, every class of the cluster; the
/// labels of its namespace decide which it may use) to a Microservice whose own spec
/// passed validation, and checks the result. Nothing is built from a refused
/// Microservice.
pub fn resolve<'a>(
    ms: &Microservice,
    namespace_labels: &BTreeMap<String, String>,
    classes: impl IntoIterator<Item = &'a MicroserviceClass>,
) -> Result<Resolved, Refusal> {
    let namespace = ms.namespace().unwrap_or_default();
    let class = select_in(
        ms.spec.class.as_deref(),
        &namespace,
        namespace_labels,
        classes,
    )
    .map_err(|error| match error {
        ClassError::NotFound(_) => Refusal::ClassNotFound(error.to_string()),
        ClassError::AmbiguousDefault(_) => Refusal::AmbiguousDefaultClass(error.to_string()),
        ClassError::NotAllowed { .. } => Refusal::ClassNotAllowed(error.to_string()),
    })?;
    let Some(class) = class else {
        let violations = policy::classless_violations(&ms.spec);
        if !violations.is_empty() {
            return Err(Refusal::PolicyViolation(violations.join("; ")));
        }
        return Ok(Resolved {
            effective: ms.clone(),
            settings: ClassSettings::default(),
            backing: backing::bind(ms, None, &BTreeMap::new(), namespace_labels)?,
        });
    };
    let class_name = class.name_any();
    validate::validate_class_object(class).map_err(|e| {
        Refusal::InvalidSpec(format!(
            "MicroserviceClass {class_name} is invalid, so nothing using it is rolled out: {e}"
        ))
    })?;
    let mut effective = ms.clone();
    if let Some(defaults) = &class.spec.defaults {
        effective.spec = apply_defaults(&ms.spec, defaults);
    }
    validate(&effective).map_err(|e| {
        Refusal::InvalidSpec(format!(
            "with the defaults of MicroserviceClass {class_name}: {e}"
        ))
    })?;
    let violations = check_policy(&ms.spec, &effective.spec, &namespace, class);
    if !violations.is_empty() {
        let all: Vec<String> = violations.iter().map(ToString::to_string).collect();
        return Err(Refusal::PolicyViolation(all.join("; ")));
    }
    let backing = backing::bind(
        &effective,
        Some(&class_name),
        &class.spec.backing_services,
        namespace_labels,
    )?;
    Ok(Resolved {
        effective,
        backing,
        settings: ClassSettings {
            name: Some(class_name),
            network_mode: class.spec.network_mode(),
            expose: class.spec.expose.clone().unwrap_or_default(),
            monitoring: class.spec.monitoring.clone().unwrap_or_default(),
            dns: class.spec.dns.clone().unwrap_or_default(),
            allow_from_namespaces: class
                .spec
                .policy
                .as_ref()
                .and_then(|p| p.allow_from_namespaces.clone()),
        },
    })
}

/// The class that governs `ms`, when one does and admits its namespace.
pub fn governing<'a>(
    ms: &Microservice,
    namespace_labels: &BTreeMap<String, String>,
    classes: impl IntoIterator<Item = &'a MicroserviceClass>,
) -> Option<&'a MicroserviceClass> {
    let namespace = ms.namespace().unwrap_or_default();
    select_in(
        ms.spec.class.as_deref(),
        &namespace,
        namespace_labels,
        classes,
    )
    .ok()
    .flatten()
}

/// The name of the class that governs `ms`, when one does (for status), even if the
/// Microservice is refused by it.
pub fn class_name<'a>(
    ms: &Microservice,
    namespace_labels: &BTreeMap<String, String>,
    classes: impl IntoIterator<Item = &'a MicroserviceClass>,
) -> Option<String> {
    governing(ms, namespace_labels, classes).map(ResourceExt::name_any)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `resolve` for a namespace with no labels.
    fn resolve_in<'a>(
        ms: &Microservice,
        classes: impl IntoIterator<Item = &'a MicroserviceClass>,
    ) -> Result<Resolved, Refusal> {
        resolve(ms, &BTreeMap::new(), classes)
    }
    use crate::api::NetworkMode;

    fn class(name: &str, spec: &str) -> MicroserviceClass {
        let mut class = MicroserviceClass::new(name, serde_saphyr::from_str(spec).unwrap());
        class.metadata.name = Some(name.into());
        class
    }

    fn ms(spec: &str) -> Microservice {
        let mut ms = Microservice::new("users", serde_saphyr::from_str(spec).unwrap());
        ms.metadata.namespace = Some("shop".into());
        ms
    }

    #[test]
    fn no_class_keeps_the_spec() {
        let own = ms("{image: a}");
        let resolved = resolve_in(&own, &[]).unwrap();
        assert_eq!(resolved.effective, own);
        assert_eq!(resolved.settings, ClassSettings::default());
    }

    #[test]
    fn the_default_class_applies_its_defaults_and_settings() {
        let golden = class(
            "golden",
            "{default: true, defaults: {replicas: 3}, policy: {networkMode: permissive}, expose: {hostSuffix: apps.example.com}}",
        );
        let resolved = resolve_in(&ms("{image: a}"), [&golden]).unwrap();
        assert_eq!(resolved.effective.spec.replicas, Some(3));
        assert_eq!(resolved.settings.name.as_deref(), Some("golden"));
        assert_eq!(resolved.settings.network_mode, NetworkMode::Permissive);
        assert_eq!(
            resolved.settings.expose.host_suffix.as_deref(),
            Some("apps.example.com")
        );
    }

    #[test]
    fn refusals_carry_their_reason() {
        let golden = class(
            "golden",
            "{policy: {allowedImageRegistries: [flotilla.local/]}}",
        );
        let cases = [
            ("{image: a, class: gone}", "ClassNotFound"),
            ("{image: docker.io/x, class: golden}", "PolicyViolation"),
            (
                "{image: a, security: {profile: baseline}}",
                "PolicyViolation",
            ),
        ];
        for (spec, reason) in cases {
            let refusal = resolve_in(&ms(spec), [&golden]).unwrap_err();
            assert_eq!(refusal.reason(), reason, "{spec}: {refusal}");
        }
        let two = [class("a", "{default: true}"), class("b", "{default: true}")];
        assert_eq!(
            resolve_in(&ms("{image: a}"), &two).unwrap_err().reason(),
            "AmbiguousDefaultClass"
        );
    }

    #[test]
    fn wildcard_hosts_are_refused_under_a_class_only() {
        let wildcard =
            "{image: a, ports: [{name: http, port: 80}], expose: {http: {host: '*.example.com'}}}";
        resolve_in(&ms(wildcard), &[]).expect("a classless Microservice may claim a wildcard");
        let golden = class("golden", "{default: true}");
        let refusal = resolve_in(&ms(wildcard), [&golden]).unwrap_err();
        assert_eq!(refusal.reason(), "PolicyViolation");
        assert!(
            refusal
                .to_string()
                .contains("policy.allowWildcardHosts of MicroserviceClass golden"),
            "{refusal}"
        );
    }

    #[test]
    fn class_defaults_are_validated_with_the_spec() {
        // The class probes a port the Microservice does not have.
        let golden = class("golden", "{defaults: {probes: {readiness: {port: admin}}}}");
        let refusal = resolve_in(
            &ms("{image: a, class: golden, ports: [{name: http, port: 80}]}"),
            [&golden],
        )
        .unwrap_err();
        assert_eq!(refusal.reason(), "InvalidSpec");
        assert!(
            refusal.to_string().contains("MicroserviceClass golden")
                && refusal.to_string().contains("spec.probes.readiness.port"),
            "{refusal}"
        );
    }

    #[test]
    fn an_invalid_class_refuses_its_users() {
        let bad = class("bad", "{defaults: {securityProfile: baseline}}");
        let refusal = resolve_in(&ms("{image: a, class: bad}"), [&bad]).unwrap_err();
        assert_eq!(refusal.reason(), "InvalidSpec");
        assert!(
            refusal
                .to_string()
                .contains("MicroserviceClass bad is invalid")
        );
    }
}
