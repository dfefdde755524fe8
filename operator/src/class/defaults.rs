//! A class's defaults merged under a Microservice's spec: the Microservice's own fields
//! always win.

use crate::api::{ClassDefaults, Metrics, MicroserviceSpec, ResourceAmounts, Resources};

/// The spec with every field it leaves unset taken from `defaults`.
///
/// - resources: value by value (`requests.cpu`, `requests.memory`, `limits.cpu`,
///   `limits.memory`), so asking for more CPU keeps the class's memory settings;
/// - `replicas` and `autoscaling` as one unit: a Microservice that sets either has
///   chosen how it scales, and the class's scaling would contradict it;
/// - probes, disruption, topology spread and the security profile as whole values;
/// - metrics field by field (port, path, interval), unless the spec disables them;
/// - pod labels and annotations key by key;
/// - rollout settings field by field (steps only for a canary).
pub fn apply_defaults(spec: &MicroserviceSpec, defaults: &ClassDefaults) -> MicroserviceSpec {
    let mut merged = spec.clone();
    merged.resources = merge_resources(spec.resources.as_ref(), defaults.resources.as_ref());
    if spec.replicas.is_none() && spec.autoscaling.is_none() {
        merged.replicas = defaults.replicas;
        merged.autoscaling = defaults.autoscaling.clone();
    }
    if merged.probes.is_none() {
        merged.probes = defaults.probes.clone();
    }
    if merged.disruption.is_none() {
        merged.disruption = defaults.disruption.clone();
    }
    merged.metrics = merge_metrics(spec.metrics.as_ref(), defaults.metrics.as_ref());
    if let Some(class) = &defaults.rollout {
        let own = merged.rollout.get_or_insert_with(Default::default);
        own.strategy = own.strategy.or(class.strategy);
        // The class's steps are for a canary: a Microservice choosing `rolling` for
        // itself does not inherit them.
        if own.steps.is_empty() && own.strategy == Some(crate::api::RolloutStrategy::Canary) {
            own.steps = class.steps.clone();
        }
        if own.gates.is_none() {
            own.gates = class.gates.clone();
        }
        own.progress_deadline_seconds = own
            .progress_deadline_seconds
            .or(class.progress_deadline_seconds);
        own.auto_rollback = own.auto_rollback.or(class.auto_rollback);
        own.revision_history_limit = own.revision_history_limit.or(class.revision_history_limit);
        own.snapshot_config = own.snapshot_config.or(class.snapshot_config);
    }
    if let Some(profile) = defaults.security_profile {
        let security = merged.security.get_or_insert_with(Default::default);
        security.profile.get_or_insert(profile);
    }
    let wants_pod_template = !defaults.topology_spread_constraints.is_empty()
        || !defaults.pod_labels.is_empty()
        || !defaults.pod_annotations.is_empty();
    if wants_pod_template {
        let template = merged.pod_template.get_or_insert_with(Default::default);
        if template.topology_spread_constraints.is_empty() {
            template.topology_spread_constraints = defaults.topology_spread_constraints.clone();
        }
        for (key, value) in &defaults.pod_labels {
            template
                .labels
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        for (key, value) in &defaults.pod_annotations {
            template
                .annotations
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
    }
    merged
}

fn merge_metrics(own: Option<&Metrics>, class: Option<&Metrics>) -> Option<Metrics> {
    match (own, class) {
        (own, None) => own.cloned(),
        (Some(own), _) if own.disabled => Some(own.clone()),
        (None, Some(class)) => Some(class.clone()),
        (Some(own), Some(class)) => Some(Metrics {
            disabled: class.disabled,
            port: own.port.clone().or_else(|| class.port.clone()),
            path: own.path.clone().or_else(|| class.path.clone()),
            interval: own.interval.clone().or_else(|| class.interval.clone()),
        }),
    }
}

fn merge_resources(own: Option<&Resources>, class: Option<&Resources>) -> Option<Resources> {
    let Some(class) = class else {
        return own.cloned();
    };
    let own = own.cloned().unwrap_or_default();
    let requests = merge_amounts(own.requests.as_ref(), class.requests.as_ref());
    let limits = merge_amounts(own.limits.as_ref(), class.limits.as_ref());
    Some(Resources { requests, limits })
}

fn merge_amounts(
    own: Option<&ResourceAmounts>,
    class: Option<&ResourceAmounts>,
) -> Option<ResourceAmounts> {
    match (own, class) {
        (None, None) => None,
        (Some(own), None) => Some(own.clone()),
        (None, Some(class)) => Some(class.clone()),
        (Some(own), Some(class)) => Some(ResourceAmounts {
            cpu: own.cpu.clone().or_else(|| class.cpu.clone()),
            memory: own.memory.clone().or_else(|| class.memory.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Autoscaling, SecurityProfile};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn spec(yaml: &str) -> MicroserviceSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn defaults(yaml: &str) -> ClassDefaults {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn q(s: &str) -> Option<Quantity> {
        Some(Quantity(s.to_string()))
    }

    #[test]
    fn resources_merge_value_by_value() {
        let merged = apply_defaults(
            &spec("{image: a, resources: {requests: {cpu: 500m}}}"),
            &defaults(
                "{resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}}",
            ),
        );
        let resources = merged.resources.unwrap();
        let requests = resources.requests.unwrap();
        assert_eq!(requests.cpu, q("500m"), "the Microservice's own value wins");
        assert_eq!(requests.memory, q("128Mi"), "the class fills the gap");
        assert_eq!(resources.limits.unwrap().memory, q("256Mi"));
    }

    #[test]
    fn scaling_is_one_unit() {
        let class = defaults("{replicas: 2, autoscaling: {minReplicas: 2, maxReplicas: 5}}");
        let bare = apply_defaults(&spec("{image: a}"), &class);
        assert_eq!(bare.replicas, Some(2));
        assert_eq!(bare.autoscaling.as_ref().map(|a| a.max_replicas), Some(5));

        let fixed = apply_defaults(&spec("{image: a, replicas: 3}"), &class);
        assert_eq!(fixed.replicas, Some(3));
        assert_eq!(fixed.autoscaling, None, "a fixed count is not autoscaled");

        let scaled = apply_defaults(
            &spec("{image: a, autoscaling: {minReplicas: 1, maxReplicas: 9}}"),
            &class,
        );
        assert_eq!(scaled.replicas, None);
        assert_eq!(
            scaled.autoscaling,
            Some(Autoscaling {
                min_replicas: 1,
                max_replicas: 9,
                ..Default::default()
            })
        );
    }

    #[test]
    fn whole_values_apply_only_when_unset() {
        let class = defaults(
            "{probes: {disabled: true}, disruption: {minAvailable: 1}, securityProfile: baseline}",
        );
        let bare = apply_defaults(&spec("{image: a}"), &class);
        assert!(bare.probes.unwrap().disabled);
        assert!(bare.disruption.is_some());
        assert_eq!(
            bare.security.unwrap().profile,
            Some(SecurityProfile::Baseline)
        );

        let own = apply_defaults(
            &spec(
                "{image: a, probes: {liveness: {tcp: {}}}, disruption: {maxUnavailable: 2}, security: {profile: restricted, readOnlyRootFilesystem: false}}",
            ),
            &class,
        );
        assert!(!own.probes.unwrap().disabled);
        assert!(own.disruption.unwrap().max_unavailable.is_some());
        let security = own.security.unwrap();
        assert_eq!(security.profile, Some(SecurityProfile::Restricted));
        assert_eq!(security.read_only_root_filesystem, Some(false));
    }

    #[test]
    fn pod_metadata_merges_key_by_key() {
        let class = defaults(
            "{podLabels: {team: platform, tier: web}, podAnnotations: {a: class}, topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: ScheduleAnyway}]}",
        );
        let merged = apply_defaults(
            &spec("{image: a, podTemplate: {labels: {tier: api}}}"),
            &class,
        );
        let template = merged.pod_template.unwrap();
        assert_eq!(template.labels["tier"], "api");
        assert_eq!(template.labels["team"], "platform");
        assert_eq!(template.annotations["a"], "class");
        assert_eq!(template.topology_spread_constraints.len(), 1);

        let own_spread = apply_defaults(
            &spec(
                "{image: a, podTemplate: {topologySpreadConstraints: [{maxSkew: 2, topologyKey: host, whenUnsatisfiable: DoNotSchedule}]}}",
            ),
            &class,
        );
        let constraints = own_spread.pod_template.unwrap().topology_spread_constraints;
        assert_eq!(constraints.len(), 1);
        assert_eq!(constraints[0].topology_key, "host");
    }

    #[test]
    fn metrics_merge_field_by_field_unless_disabled() {
        let class = defaults("{metrics: {port: admin, path: /prom, interval: 1m}}");
        let bare = apply_defaults(&spec("{image: a}"), &class);
        let metrics = bare.metrics.unwrap();
        assert_eq!(
            (metrics.port.as_deref(), metrics.path.as_deref()),
            (Some("admin"), Some("/prom"))
        );
        let own = apply_defaults(&spec("{image: a, metrics: {path: /m}}"), &class)
            .metrics
            .unwrap();
        assert_eq!(
            own.path.as_deref(),
            Some("/m"),
            "the Microservice's own value wins"
        );
        assert_eq!(
            own.interval.as_deref(),
            Some("1m"),
            "the class fills the gap"
        );
        let off = apply_defaults(&spec("{image: a, metrics: {disabled: true}}"), &class)
            .metrics
            .unwrap();
        assert!(off.disabled && off.port.is_none(), "{off:?}");
        // A class with a disabled default turns nothing on.
        let none = apply_defaults(
            &spec("{image: a}"),
            &defaults("{metrics: {disabled: true}}"),
        );
        assert!(none.metrics.unwrap().disabled);
    }

    #[test]
    fn rollout_settings_merge_field_by_field() {
        let class = defaults(
            "{rollout: {strategy: canary, steps: [{weight: 20, pause: 1m}], progressDeadlineSeconds: 120, autoRollback: false, gates: {maxRestarts: 1}}}",
        );
        let bare = apply_defaults(&spec("{image: a}"), &class).rollout.unwrap();
        assert_eq!(bare, class.rollout.clone().unwrap());

        let own = apply_defaults(
            &spec("{image: a, rollout: {steps: [{weight: 50}], autoRollback: true}}"),
            &class,
        )
        .rollout
        .unwrap();
        assert_eq!(own.steps.len(), 1);
        assert_eq!(own.steps[0].weight, 50, "its own steps win");
        assert_eq!(own.auto_rollback, Some(true));
        assert_eq!(own.progress_deadline_seconds, Some(120));
        assert_eq!(own.gates.unwrap().max_restarts, Some(1));

        let rolling = apply_defaults(&spec("{image: a, rollout: {strategy: rolling}}"), &class)
            .rollout
            .unwrap();
        assert!(
            rolling.steps.is_empty(),
            "a rolling service takes no canary steps"
        );
    }

    #[test]
    fn empty_defaults_change_nothing() {
        let own = spec("{image: a, replicas: 2, ports: [{name: http, port: 80}]}");
        assert_eq!(apply_defaults(&own, &ClassDefaults::default()), own);
    }
}
