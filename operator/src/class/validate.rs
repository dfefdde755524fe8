//! The operator's own check of a MicroserviceClass: the schema's and CEL's rules again
//! (servers before 1.25 ignore CEL). Defaults that land in a Microservice's spec are
//! checked once more there, merged, by `crate::validate`.

use crate::api::bounds::{SPEC_BOUNDS, stand_in_for};
use crate::api::{
    ClassDefaults, ClassExpose, ClassMonitoring, ClassPolicy, MicroserviceClassSpec,
    SecurityProfile,
};
use std::collections::BTreeMap;

use crate::api::{BackingServiceProvisioner, ClassDns, MicroserviceClass};
use crate::validate::{
    FieldError, InvalidSpec, is_cidr, is_dns_subdomain, metrics_shape_errors, names, over_bounds,
};

/// Checks a class as cached: a stand-in for a spec over the budget is refused first.
pub fn validate_class_object(class: &MicroserviceClass) -> Result<(), InvalidSpec> {
    if let Some(message) = stand_in_for(class.metadata.annotations.as_ref()) {
        return Err(InvalidSpec(vec![error("spec", message)]));
    }
    validate_class(&class.spec)
}

/// Checks a class; `Ok` means Microservices may use it.
pub fn validate_class(spec: &MicroserviceClassSpec) -> Result<(), InvalidSpec> {
    let over = over_bounds(spec, &SPEC_BOUNDS.class);
    if !over.is_empty() {
        return Err(InvalidSpec(over));
    }
    let policy = spec.policy.clone().unwrap_or_default();
    let defaults = spec.defaults.clone().unwrap_or_default();
    let errors: Vec<FieldError> = [
        policy_errors(&policy),
        host_policy_errors(&policy, spec.expose.as_ref()),
        pod_template_policy_errors(&policy),
        default_replicas_errors(&defaults, &policy),
        default_autoscaling_errors(&defaults, &policy),
        default_disruption_errors(&defaults),
        default_security_errors(&defaults, &policy),
        expose_errors(spec.expose.as_ref()),
        pod_metadata_errors(&defaults),
        defaults
            .metrics
            .as_ref()
            .map(|m| metrics_shape_errors("spec.defaults.metrics", m))
            .unwrap_or_default(),
        monitoring_errors(spec.monitoring.as_ref()),
        spec.dns.as_ref().map(dns_errors).unwrap_or_default(),
        backing_errors(&spec.backing_services),
    ]
    .into_iter()
    .flatten()
    .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InvalidSpec(errors))
    }
}

fn error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Each type a DNS label; a Secret name template using only `{microservice}` and
/// `{service}`; variable suffixes that make valid names; endpoint addresses as CIDRs.
fn backing_errors(provisioners: &BTreeMap<String, BackingServiceProvisioner>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (type_, provisioner) in provisioners {
        let field = format!("spec.backingServices.{type_}");
        if names::dns1123_label(type_).is_err() {
            errors.push(error(field.clone(), "a type is a lowercase DNS label"));
        }
        if let Some(selector) = &provisioner.namespace_selector
            && kube::core::Selector::try_from(selector.clone()).is_err()
        {
            errors.push(error(
                format!("{field}.namespaceSelector"),
                "is not a valid label selector",
            ));
        }
        let (secret, secret_field) = match (
            &provisioner.secret,
            &provisioner.microservice,
            &provisioner.template,
        ) {
            (Some(secret), None, None) => (secret, format!("{field}.secret")),
            (None, None, Some(template)) => {
                if let Some(name) = &template.name {
                    let sample = name
                        .replace("{microservice}", "a")
                        .replace("{service}", "b");
                    if !is_dns_subdomain(&sample) {
                        errors.push(error(
                            format!("{field}.template.name"),
                            "must make an object name: lowercase letters, digits, '-' and '.', with {microservice} and {service} as the only placeholders",
                        ));
                    }
                }
                (&template.secret, format!("{field}.template.secret"))
            }
            (None, Some(target), None) => {
                if let Some(port) = &target.port
                    && names::port_name(port).is_err()
                {
                    errors.push(error(
                        format!("{field}.microservice.port"),
                        "must be a port name (an IANA service name)",
                    ));
                }
                continue;
            }
            _ => {
                errors.push(error(
                    field,
                    "needs exactly one provisioner: set secret, microservice or template",
                ));
                continue;
            }
        };
        if let Some(template) = &secret.name {
            let sample = template
                .replace("{microservice}", "a")
                .replace("{service}", "b");
            if !is_dns_subdomain(&sample) {
                errors.push(error(
                    format!("{secret_field}.name"),
                    "must make an object name: lowercase letters, digits, '-' and '.', with {microservice} and {service} as the only placeholders",
                ));
            }
        }
        for suffix in secret.env.keys() {
            let valid = !suffix.is_empty()
                && suffix.len() <= 32
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                errors.push(error(
                    format!("{secret_field}.env.{suffix}"),
                    "a variable suffix is at most 32 of A-Z, 0-9 and _",
                ));
            }
        }
        if let Some(endpoint) = &secret.endpoint {
            for (i, cidr) in endpoint.cidrs.iter().enumerate() {
                if !is_cidr(&cidr.0) {
                    errors.push(error(
                        format!("{secret_field}.endpoint.cidrs[{i}]"),
                        "must be an IPv4 or IPv6 network in CIDR notation",
                    ));
                }
            }
            if endpoint.namespace.is_none()
                && endpoint.pod_selector.is_none()
                && endpoint.cidrs.is_empty()
            {
                errors.push(error(
                    format!("{secret_field}.endpoint"),
                    "set namespace, podSelector or cidrs",
                ));
            }
            if endpoint.ports.is_empty() {
                errors.push(error(
                    format!("{secret_field}.endpoint.ports"),
                    "needs at least one port",
                ));
            }
        }
    }
    errors
}

fn dns_errors(dns: &ClassDns) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = dns
        .cidrs
        .iter()
        .enumerate()
        .filter(|(_, cidr)| !is_cidr(&cidr.0))
        .map(|(i, cidr)| {
            error(
                format!("spec.dns.cidrs[{i}]"),
                format!("`{}` is not a CIDR such as 169.254.20.10/32", cidr.0),
            )
        })
        .collect();
    if dns.cidrs_only && dns.cidrs.is_empty() {
        errors.push(error(
            "spec.dns.cidrsOnly",
            "needs at least one entry in spec.dns.cidrs, or no DNS lookup would pass",
        ));
    }
    errors
}

fn policy_errors(policy: &ClassPolicy) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(max) = policy.max_replicas
        && !(1..=1000).contains(&max)
    {
        errors.push(error(
            "spec.policy.maxReplicas",
            format!("must be between 1 and 1000, got {max}"),
        ));
    }
    for (i, prefix) in policy.allowed_image_registries.iter().enumerate() {
        if prefix.0.is_empty() || prefix.0.chars().any(char::is_whitespace) {
            errors.push(error(
                format!("spec.policy.allowedImageRegistries[{i}]"),
                format!("`{}` is not an image reference prefix", prefix.0),
            ));
        }
    }
    errors
}

fn host_policy_errors(policy: &ClassPolicy, expose: Option<&ClassExpose>) -> Vec<FieldError> {
    if policy.hosts_within_suffix == Some(true)
        && expose.and_then(|e| e.host_suffix.as_ref()).is_none()
    {
        vec![error(
            "spec.policy.hostsWithinSuffix",
            "needs spec.expose.hostSuffix, the domain hosts must lie within",
        )]
    } else {
        Vec::new()
    }
}

fn pod_template_policy_errors(policy: &ClassPolicy) -> Vec<FieldError> {
    let Some(limits) = &policy.pod_template else {
        return Vec::new();
    };
    let priority_classes = limits
        .priority_class_names
        .iter()
        .enumerate()
        .filter(|(_, name)| !is_dns_subdomain(name))
        .map(|(i, name)| {
            error(
                format!("spec.policy.podTemplate.priorityClassNames[{i}]"),
                format!("`{name}` is not a PriorityClass name (lowercase DNS subdomain)"),
            )
        });
    let prefixes = limits
        .annotation_prefixes
        .iter()
        .enumerate()
        .filter(|(_, prefix)| prefix.is_empty() || prefix.chars().any(char::is_whitespace))
        .map(|(i, prefix)| {
            error(
                format!("spec.policy.podTemplate.annotationPrefixes[{i}]"),
                format!("`{prefix}` is not an annotation key prefix"),
            )
        });
    priority_classes.chain(prefixes).collect()
}

fn default_replicas_errors(defaults: &ClassDefaults, policy: &ClassPolicy) -> Vec<FieldError> {
    let Some(replicas) = defaults.replicas else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    if !(0..=1000).contains(&replicas) {
        errors.push(error(
            "spec.defaults.replicas",
            format!("must be between 0 and 1000, got {replicas}"),
        ));
    }
    if let Some(max) = policy.max_replicas
        && replicas > max
    {
        errors.push(error(
            "spec.defaults.replicas",
            format!("{replicas} exceeds spec.policy.maxReplicas ({max})"),
        ));
    }
    errors
}

fn default_autoscaling_errors(defaults: &ClassDefaults, policy: &ClassPolicy) -> Vec<FieldError> {
    let Some(autoscaling) = &defaults.autoscaling else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    if autoscaling.min_replicas > autoscaling.max_replicas {
        errors.push(error(
            "spec.defaults.autoscaling.minReplicas",
            "must not exceed spec.defaults.autoscaling.maxReplicas",
        ));
    }
    if let Some(max) = policy.max_replicas
        && autoscaling.max_replicas > max
    {
        errors.push(error(
            "spec.defaults.autoscaling.maxReplicas",
            format!(
                "{} exceeds spec.policy.maxReplicas ({max})",
                autoscaling.max_replicas
            ),
        ));
    }
    if let Some(replicas) = defaults.replicas
        && (replicas < autoscaling.min_replicas || replicas > autoscaling.max_replicas)
    {
        errors.push(error(
            "spec.defaults.replicas",
            "must lie inside spec.defaults.autoscaling minReplicas..maxReplicas",
        ));
    }
    errors
}

fn default_disruption_errors(defaults: &ClassDefaults) -> Vec<FieldError> {
    match &defaults.disruption {
        Some(disruption)
            if disruption.min_available.is_some() == disruption.max_unavailable.is_some() =>
        {
            vec![error(
                "spec.defaults.disruption",
                "set exactly one of minAvailable or maxUnavailable",
            )]
        }
        _ => Vec::new(),
    }
}

fn default_security_errors(defaults: &ClassDefaults, policy: &ClassPolicy) -> Vec<FieldError> {
    if defaults.security_profile == Some(SecurityProfile::Baseline)
        && policy.allow_baseline_security != Some(true)
    {
        vec![error(
            "spec.defaults.securityProfile",
            "baseline needs spec.policy.allowBaselineSecurity: true",
        )]
    } else {
        Vec::new()
    }
}

fn expose_errors(expose: Option<&ClassExpose>) -> Vec<FieldError> {
    match expose.and_then(|e| e.gateway_ref.as_ref()) {
        Some(gateway) if gateway.name.is_empty() || gateway.namespace.is_empty() => {
            vec![error(
                "spec.expose.gatewayRef",
                "name and namespace must both be set",
            )]
        }
        _ => Vec::new(),
    }
}

/// The default pod labels and annotations reach every pod of the class's Microservices:
/// the API server's rules for them, reported against the class.
fn pod_metadata_errors(defaults: &ClassDefaults) -> Vec<FieldError> {
    let labels = names::labels(&defaults.pod_labels)
        .into_iter()
        .map(|message| ("spec.defaults.podLabels", message));
    let annotations = names::annotations(&defaults.pod_annotations)
        .into_iter()
        .map(|message| ("spec.defaults.podAnnotations", message));
    labels
        .chain(annotations)
        .map(|(field, message)| FieldError {
            field: field.to_string(),
            message,
        })
        .collect()
}

/// The ServiceMonitor labels and the scraper's namespace and selectors.
fn monitoring_errors(monitoring: Option<&ClassMonitoring>) -> Vec<FieldError> {
    let Some(monitoring) = monitoring else {
        return Vec::new();
    };
    let mut errors: Vec<FieldError> = names::labels(&monitoring.service_monitor_labels)
        .into_iter()
        .map(|message| error("spec.monitoring.serviceMonitorLabels", message))
        .collect();
    if let Some(namespace) = &monitoring.namespace
        && let Err(reason) = names::dns1123_label(namespace)
    {
        errors.push(error(
            "spec.monitoring.namespace",
            format!("`{namespace}`: {reason}"),
        ));
    }
    for (field, selector) in [
        (
            "spec.monitoring.namespaceSelector",
            &monitoring.namespace_selector,
        ),
        ("spec.monitoring.podSelector", &monitoring.pod_selector),
    ] {
        if let Some(labels) = selector.as_ref().and_then(|s| s.match_labels.as_ref()) {
            errors.extend(
                names::labels(labels)
                    .into_iter()
                    .map(|message| error(format!("{field}.matchLabels"), message)),
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(), String> {
        let spec: MicroserviceClassSpec = serde_saphyr::from_str(yaml).unwrap();
        validate_class(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_full_class() {
        check("{default: true, defaults: {replicas: 2, autoscaling: {minReplicas: 2, maxReplicas: 4}, disruption: {maxUnavailable: 1}, securityProfile: baseline}, policy: {maxReplicas: 4, allowBaselineSecurity: true, allowedImageRegistries: [a.io/]}}").unwrap();
    }

    #[test]
    fn refusals_name_their_field() {
        let cases = [
            ("{policy: {maxReplicas: 0}}", "spec.policy.maxReplicas"),
            (
                "{policy: {allowedImageRegistries: ['a b']}}",
                "spec.policy.allowedImageRegistries[0]",
            ),
            (
                "{defaults: {replicas: 5}, policy: {maxReplicas: 4}}",
                "spec.defaults.replicas",
            ),
            (
                "{defaults: {autoscaling: {minReplicas: 3, maxReplicas: 2}}}",
                "spec.defaults.autoscaling.minReplicas",
            ),
            (
                "{defaults: {autoscaling: {minReplicas: 1, maxReplicas: 9}}, policy: {maxReplicas: 4}}",
                "spec.defaults.autoscaling.maxReplicas",
            ),
            (
                "{defaults: {replicas: 1, autoscaling: {minReplicas: 2, maxReplicas: 3}}}",
                "spec.defaults.replicas",
            ),
            ("{defaults: {disruption: {}}}", "spec.defaults.disruption"),
            (
                "{defaults: {podLabels: {Example.com/team: a}}}",
                "spec.defaults.podLabels",
            ),
            (
                "{defaults: {podLabels: {team: a b}}}",
                "spec.defaults.podLabels",
            ),
            (
                "{defaults: {podAnnotations: {a/b/c: v}}}",
                "spec.defaults.podAnnotations",
            ),
            (
                "{defaults: {securityProfile: baseline}}",
                "spec.defaults.securityProfile",
            ),
            (
                "{policy: {hostsWithinSuffix: true}, expose: {ingressClassName: nginx}}",
                "spec.policy.hostsWithinSuffix",
            ),
            (
                "{policy: {podTemplate: {priorityClassNames: [High_Priority]}}}",
                "spec.policy.podTemplate.priorityClassNames[0]",
            ),
            (
                "{policy: {podTemplate: {annotationPrefixes: ['']}}}",
                "spec.policy.podTemplate.annotationPrefixes[0]",
            ),
        ];
        for (yaml, field) in cases {
            let error = check(yaml).expect_err(yaml);
            assert!(error.starts_with(field), "{yaml}: {error}");
        }
    }

    #[test]
    fn more_refusals_name_their_field() {
        let cases = [
            ("{policy: {maxReplicas: 1001}}", "spec.policy.maxReplicas"),
            (
                "{policy: {allowedImageRegistries: ['']}}",
                "spec.policy.allowedImageRegistries[0]",
            ),
            ("{defaults: {replicas: -1}}", "spec.defaults.replicas"),
            (
                "{defaults: {disruption: {minAvailable: 1, maxUnavailable: 1}}}",
                "spec.defaults.disruption",
            ),
            (
                "{expose: {gatewayRef: {name: '', namespace: gateways}}}",
                "spec.expose.gatewayRef",
            ),
            (
                "{expose: {gatewayRef: {name: public, namespace: ''}}}",
                "spec.expose.gatewayRef",
            ),
        ];
        for (yaml, field) in cases {
            let error = check(yaml).expect_err(yaml);
            assert!(error.starts_with(field), "{yaml}: {error}");
        }
        check("{expose: {gatewayRef: {name: public, namespace: gateways}}}").unwrap();
        check("{policy: {hostsWithinSuffix: true}, expose: {hostSuffix: apps.example.com}}")
            .unwrap();
        check("{policy: {podTemplate: {priorityClassNames: [batch, high.example.com], annotationPrefixes: [prometheus.io/]}}}")
            .unwrap();
    }

    #[test]
    fn errors_come_in_spec_order() {
        let spec: MicroserviceClassSpec = serde_saphyr::from_str(
            "{defaults: {replicas: 2000, autoscaling: {minReplicas: 5, maxReplicas: 2}, disruption: {}, securityProfile: baseline}, policy: {maxReplicas: 0, allowedImageRegistries: [''], hostsWithinSuffix: true}, expose: {gatewayRef: {name: '', namespace: ''}}}",
        )
        .unwrap();
        let fields: Vec<String> = validate_class(&spec)
            .unwrap_err()
            .0
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.policy.maxReplicas",
                "spec.policy.allowedImageRegistries[0]",
                "spec.policy.hostsWithinSuffix",
                "spec.defaults.replicas",
                "spec.defaults.replicas",
                "spec.defaults.autoscaling.minReplicas",
                "spec.defaults.autoscaling.maxReplicas",
                "spec.defaults.replicas",
                "spec.defaults.disruption",
                "spec.defaults.securityProfile",
                "spec.expose.gatewayRef",
            ]
        );
    }
}
