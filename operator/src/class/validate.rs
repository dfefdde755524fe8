//! The operator's own check of a MicroserviceClass: the schema's and CEL's rules again
//! (servers before 1.25 ignore CEL). Defaults that land in a Microservice's spec are
//! checked once more there, merged, by `crate::validate`.

use crate::api::{ClassDefaults, MicroserviceClassSpec, SecurityProfile};
use crate::validate::{FieldError, InvalidSpec, names};

/// Checks a class; `Ok` means Microservices may use it.
pub fn validate_class(spec: &MicroserviceClassSpec) -> Result<(), InvalidSpec> {
    let mut errors = Vec::new();
    let mut add = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.to_string(),
            message,
        })
    };
    let policy = spec.policy.clone().unwrap_or_default();
    let defaults = spec.defaults.clone().unwrap_or_default();

    if let Some(max) = policy.max_replicas
        && !(1..=1000).contains(&max)
    {
        add(
            "spec.policy.maxReplicas",
            format!("must be between 1 and 1000, got {max}"),
        );
    }
    for (i, prefix) in policy.allowed_image_registries.iter().enumerate() {
        if prefix.0.is_empty() || prefix.0.chars().any(char::is_whitespace) {
            add(
                &format!("spec.policy.allowedImageRegistries[{i}]"),
                format!("`{}` is not an image reference prefix", prefix.0),
            );
        }
    }
    if let Some(replicas) = defaults.replicas {
        if !(0..=1000).contains(&replicas) {
            add(
                "spec.defaults.replicas",
                format!("must be between 0 and 1000, got {replicas}"),
            );
        }
        if let Some(max) = policy.max_replicas
            && replicas > max
        {
            add(
                "spec.defaults.replicas",
                format!("{replicas} exceeds spec.policy.maxReplicas ({max})"),
            );
        }
    }
    if let Some(autoscaling) = &defaults.autoscaling {
        if autoscaling.min_replicas > autoscaling.max_replicas {
            add(
                "spec.defaults.autoscaling.minReplicas",
                "must not exceed spec.defaults.autoscaling.maxReplicas".to_string(),
            );
        }
        if let Some(max) = policy.max_replicas
            && autoscaling.max_replicas > max
        {
            add(
                "spec.defaults.autoscaling.maxReplicas",
                format!(
                    "{} exceeds spec.policy.maxReplicas ({max})",
                    autoscaling.max_replicas
                ),
            );
        }
        if let Some(replicas) = defaults.replicas
            && (replicas < autoscaling.min_replicas || replicas > autoscaling.max_replicas)
        {
            add(
                "spec.defaults.replicas",
                "must lie inside spec.defaults.autoscaling minReplicas..maxReplicas".to_string(),
            );
        }
    }
    if let Some(disruption) = &defaults.disruption
        && disruption.min_available.is_some() == disruption.max_unavailable.is_some()
    {
        add(
            "spec.defaults.disruption",
            "set exactly one of minAvailable or maxUnavailable".to_string(),
        );
    }
    if defaults.security_profile == Some(SecurityProfile::Baseline)
        && policy.allow_baseline_security != Some(true)
    {
        add(
            "spec.defaults.securityProfile",
            "baseline needs spec.policy.allowBaselineSecurity: true".to_string(),
        );
    }
    if let Some(gateway) = spec.expose.as_ref().and_then(|e| e.gateway_ref.as_ref())
        && (gateway.name.is_empty() || gateway.namespace.is_empty())
    {
        add(
            "spec.expose.gatewayRef",
            "name and namespace must both be set".to_string(),
        );
    }
    errors.extend(pod_metadata_errors(&defaults));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InvalidSpec(errors))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(), String> {
        let spec: MicroserviceClassSpec = serde_yaml::from_str(yaml).unwrap();
        validate_class(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_full_class() {
        check("{default: true, defaults: {replicas: 2, autoscaling: {minReplicas: 2, maxReplicas: 4}, disruption: {maxUnavailable: 1}, securityProfile: baseline, podLabels: {example.com/team: A_1, empty: ''}, podAnnotations: {Example.COM/note: any value}}, policy: {maxReplicas: 4, allowBaselineSecurity: true, allowedImageRegistries: [a.io/]}}").unwrap();
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
                "{defaults: {securityProfile: baseline}}",
                "spec.defaults.securityProfile",
            ),
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
        ];
        for (yaml, field) in cases {
            let error = check(yaml).expect_err(yaml);
            assert!(error.starts_with(field), "{yaml}: {error}");
        }
    }
}
