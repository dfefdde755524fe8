//! The operator's own check of a Microservice spec. It repeats every schema and CEL rule
//! (servers before 1.25 ignore CEL; objects may predate a schema change) and adds the
//! checks a schema cannot express. Every problem names its field. Whatever reaches a
//! child (its name, label, annotation, port, header and variable names) is held to the
//! API server's rules in [`names`], so that no child is refused after the others applied.

pub mod names;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::api::bounds::{self, Bounds, SPEC_BOUNDS};
use crate::api::labels::CONFIG_HASH_ANNOTATION;
use crate::api::{Metrics, Microservice, MicroserviceSpec, Probe, Protocol, ServiceType};

/// One problem with a spec, with the path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a spec, in field order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidSpec(pub Vec<FieldError>);

/// Checks a Microservice; `Ok` means the builders may run.
pub fn validate(ms: &Microservice) -> Result<(), InvalidSpec> {
    if let Some(message) = bounds::stand_in_for(ms.metadata.annotations.as_ref()) {
        return Err(InvalidSpec(vec![FieldError {
            field: "spec".to_string(),
            message,
        }]));
    }
    // A value over a schema bound is reported alone: the other checks would only repeat
    // it, and need not run over more input than admission lets through.
    let over = over_bounds(&ms.spec, &SPEC_BOUNDS.microservice);
    if !over.is_empty() {
        return Err(InvalidSpec(over));
    }
    let mut errors = Errors::default();
    check_name(ms, &mut errors);
    check_spec(&ms.spec, &mut errors);
    check_self_dependency(ms, &mut errors);
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(InvalidSpec(errors.0))
    }
}

/// Every value of `spec` over a bound of its CRD's schema ([`crate::api::bounds`]).
pub(crate) fn over_bounds(spec: &impl serde::Serialize, bounds: &Bounds) -> Vec<FieldError> {
    let Ok(value) = serde_json::to_value(spec) else {
        return Vec::new();
    };
    bounds::check(&value, bounds, "spec")
        .into_iter()
        .map(|over| FieldError {
            field: over.field,
            message: over.message,
        })
        .collect()
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn range(&mut self, field: impl Into<String>, value: i64, min: i64, max: i64) {
        if value < min || value > max {
            self.add(
                field,
                format!("must be between {min} and {max}, got {value}"),
            );
        }
    }

    /// Reports `value` at `field` with the API server's reason when `rule` refuses it.
    fn rule(
        &mut self,
        field: impl Into<String>,
        value: &str,
        rule: fn(&str) -> Result<(), String>,
    ) {
        if let Err(reason) = rule(value) {
            self.add(field, format!("`{value}`: {reason}"));
        }
    }

    /// Reports every problem of a label map at `field`.
    fn labels(&mut self, field: &str, labels: &BTreeMap<String, String>) {
        for problem in names::labels(labels) {
            self.add(field, problem);
        }
    }

    /// Reports every problem of an annotation map at `field`.
    fn annotations(&mut self, field: &str, annotations: &BTreeMap<String, String>) {
        for problem in names::annotations(annotations) {
            self.add(field, problem);
        }
    }

    /// Reports the label keys and values of a selector at `field`.
    fn selector(&mut self, field: &str, selector: &LabelSelector) {
        if let Some(match_labels) = &selector.match_labels {
            self.labels(&format!("{field}.matchLabels"), match_labels);
        }
        for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
            let field = format!("{field}.matchExpressions[{i}]");
            self.rule(format!("{field}.key"), &requirement.key, names::label_key);
            for (j, value) in requirement.values.iter().flatten().enumerate() {
                self.rule(format!("{field}.values[{j}]"), value, names::label_value);
            }
        }
    }
}

/// Every child takes the Microservice's name, and a Service's name must be a DNS-1035
/// label: the strictest of the rules for the names of the children.
fn check_name(ms: &Microservice, errors: &mut Errors) {
    let name = ms.name_any();
    if let Err(reason) = names::dns1035_label(&name) {
        errors.add(
            "metadata.name",
            format!(
                "`{name}` cannot name the children (its Service needs a DNS-1035 label): {reason}"
            ),
        );
    }
}

const DNS_LABEL_MAX: usize = 63;

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'-' || b == b'.' || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

fn check_spec(spec: &MicroserviceSpec, errors: &mut Errors) {
    check_class(spec, errors);
    check_image(spec, errors);
    check_env(spec, errors);
    let port_names = check_ports(spec, errors);
    check_service(spec, errors);
    check_replicas(spec, errors);
    check_probes(spec, &port_names, errors);
    check_metrics(spec, errors);
    check_dependencies(spec, errors);
    check_backing_services(spec, errors);
    check_network(spec, &port_names, errors);
    check_expose(spec, &port_names, errors);
    check_disruption(spec, errors);
    check_service_account(spec, errors);
    check_security(spec, errors);
    check_pod_template(spec, errors);
    check_part_of(spec, errors);
    check_rollout(spec, errors);
}

/// A backing service's name makes its variables' prefix: a DNS label starting with a
/// letter, short enough that `<NAME>_PASSWORD` stays readable.
fn check_backing_services(spec: &MicroserviceSpec, errors: &mut Errors) {
    for (name, service) in &spec.backing_services {
        let field = format!("spec.backingServices.{name}");
        if !is_dns_label(name, 32) || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            errors.add(
                field.clone(),
                "a name is a lowercase DNS label of at most 32 characters, starting with a letter",
            );
        }
        if !is_dns_label(&service.type_, DNS_LABEL_MAX) {
            errors.add(format!("{field}.type"), "must be a lowercase DNS label");
        }
    }
    for (list, subjects) in [("publishes", &spec.publishes), ("consumes", &spec.consumes)] {
        for (i, subject) in subjects.iter().enumerate() {
            if !spec.backing_services.contains_key(&subject.backing_service) {
                errors.add(
                    format!("spec.{list}[{i}].backingService"),
                    format!(
                        "`{}` is not one of spec.backingServices",
                        subject.backing_service
                    ),
                );
            }
            let valid = !subject.subject.is_empty()
                && subject.subject.len() <= 249
                && subject.subject.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'_' | b'*' | b'>' | b':' | b'/' | b'-')
                });
            if !valid {
                errors.add(
                    format!("spec.{list}[{i}].subject"),
                    "at most 249 of letters, digits and . _ * > : / -",
                );
            }
        }
    }
}

fn check_rollout(spec: &MicroserviceSpec, errors: &mut Errors) {
    let Some(rollout) = &spec.rollout else { return };
    if rollout.strategy == Some(crate::api::RolloutStrategy::Rolling) && !rollout.steps.is_empty() {
        errors.add(
            "spec.rollout.steps",
            "steps are for strategy canary, not rolling",
        );
    }
    if rollout.steps.len() > 20 {
        errors.add(
            "spec.rollout.steps",
            format!("at most 20 steps, got {}", rollout.steps.len()),
        );
    }
    for (i, step) in rollout.steps.iter().enumerate() {
        errors.range(
            format!("spec.rollout.steps[{i}].weight"),
            step.weight.into(),
            1,
            99,
        );
        if let Some(pause) = &step.pause
            && let Err(reason) = crate::api::parse_pause(pause)
        {
            errors.add(format!("spec.rollout.steps[{i}].pause"), reason);
        }
    }
    if let Some(seconds) = rollout.progress_deadline_seconds {
        errors.range(
            "spec.rollout.progressDeadlineSeconds",
            seconds.into(),
            5,
            86400,
        );
    }
    if let Some(restarts) = rollout.gates.as_ref().and_then(|g| g.max_restarts) {
        errors.range("spec.rollout.gates.maxRestarts", restarts.into(), 0, 100);
    }
    if let Some(http) = rollout.gates.as_ref().and_then(|g| g.http.as_ref()) {
        if !http.path.starts_with('/') || http.path.chars().any(char::is_whitespace) {
            errors.add(
                "spec.rollout.gates.http.path",
                format!("`{}`: an absolute path without spaces", http.path),
            );
        }
        match &http.port {
            Some(name) if !spec.ports.iter().any(|p| &p.name == name) => errors.add(
                "spec.rollout.gates.http.port",
                format!("`{name}` is not one of spec.ports"),
            ),
            None if spec.ports.is_empty() => errors.add(
                "spec.rollout.gates.http",
                "needs a port to call: spec.ports is empty",
            ),
            _ => {}
        }
        if let Some(status) = http.expected_status {
            errors.range(
                "spec.rollout.gates.http.expectedStatus",
                status.into(),
                100,
                599,
            );
        }
        if let Some(percent) = http.success_percent {
            errors.range(
                "spec.rollout.gates.http.successPercent",
                percent.into(),
                1,
                100,
            );
        }
    }
    if let Some(gate) = rollout.gates.as_ref().and_then(|g| g.metrics.as_ref()) {
        check_metrics_gate(spec, gate, errors);
    }
}

fn check_metrics_gate(
    spec: &MicroserviceSpec,
    gate: &crate::api::MetricsGate,
    errors: &mut Errors,
) {
    if let Err(reason) = crate::label_match::LabelMatch::parse(&gate.errors) {
        errors.add("spec.rollout.gates.metrics.errors", reason);
    }
    match &gate.port {
        Some(name) if !spec.ports.iter().any(|p| &p.name == name) => errors.add(
            "spec.rollout.gates.metrics.port",
            format!("`{name}` is not one of spec.ports"),
        ),
        None if spec.ports.is_empty() => errors.add(
            "spec.rollout.gates.metrics",
            "needs a port to read the metrics from: spec.ports is empty",
        ),
        _ => {}
    }
    if let Some(percent) = gate.max_error_increase_percent
        && !(0.0..=100.0).contains(&percent)
    {
        errors.add(
            "spec.rollout.gates.metrics.maxErrorIncreasePercent",
            format!("{percent}: between 0 and 100"),
        );
    }
    if let Some(quantile) = gate.latency.as_ref().and_then(|l| l.quantile)
        && !(0.5..=0.999).contains(&quantile)
    {
        errors.add(
            "spec.rollout.gates.metrics.latency.quantile",
            format!("{quantile}: between 0.5 and 0.999"),
        );
    }
}

fn check_class(spec: &MicroserviceSpec, errors: &mut Errors) {
    if let Some(class) = &spec.class
        && !is_dns_subdomain(class)
    {
        errors.add(
            "spec.class",
            format!("`{class}` is not a MicroserviceClass name (lowercase DNS subdomain)"),
        );
    }
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|label| is_dns_label(label, DNS_LABEL_MAX))
}

fn check_expose(spec: &MicroserviceSpec, port_names: &BTreeSet<String>, errors: &mut Errors) {
    let Some(http) = spec.expose.as_ref().and_then(|e| e.http.as_ref()) else {
        return;
    };
    if spec.ports.is_empty() {
        errors.add("spec.expose.http", "needs at least one entry in spec.ports");
    }
    if http.host.is_some() && http.host_prefix.is_some() {
        errors.add(
            "spec.expose.http.hostPrefix",
            "set host or hostPrefix, not both",
        );
    }
    if let Some(host) = &http.host {
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if !is_dns_subdomain(bare) {
            errors.add(
                "spec.expose.http.host",
                format!("`{host}` is not a DNS name such as shop.example.com"),
            );
        } else {
            // What remains is the Ingress's own rule: no IP addresses.
            errors.rule("spec.expose.http.host", host, names::ingress_host);
        }
    }
    if let Some(prefix) = &http.host_prefix
        && !is_dns_label(prefix, DNS_LABEL_MAX)
    {
        errors.add(
            "spec.expose.http.hostPrefix",
            format!("`{prefix}` is not a DNS label (lowercase letters, digits and -)"),
        );
    }
    for (i, path) in http.paths.iter().enumerate() {
        if !path.path.starts_with('/') || path.path.contains(char::is_whitespace) {
            errors.add(
                format!("spec.expose.http.paths[{i}].path"),
                format!("`{}` must start with / and hold no spaces", path.path),
            );
        }
        if let Some(port) = &path.port
            && !port_names.contains(port)
        {
            errors.add(
                format!("spec.expose.http.paths[{i}].port"),
                format!("`{port}` must name one of spec.ports"),
            );
        }
    }
    if let Some(secret) = http.tls.as_ref().and_then(|t| t.secret_name.as_ref())
        && !is_dns_subdomain(secret)
    {
        errors.add(
            "spec.expose.http.tls.secretName",
            format!("`{secret}` is not a Secret name"),
        );
    }
}

fn check_image(spec: &MicroserviceSpec, errors: &mut Errors) {
    if spec.image.trim().is_empty() {
        errors.add("spec.image", "is required");
    } else if spec.image.contains(char::is_whitespace) {
        errors.add("spec.image", "must not contain spaces");
    } else if spec.image.len() > 1024 {
        errors.add("spec.image", "must be at most 1024 characters");
    }
}

fn check_env(spec: &MicroserviceSpec, errors: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (i, env) in spec.env.iter().enumerate() {
        let field = format!("spec.env[{i}]");
        if !is_env_name(&env.name) || env.name.len() > 256 {
            errors.add(
                format!("{field}.name"),
                format!("`{}` is not a valid variable name", env.name),
            );
        } else {
            errors.rule(format!("{field}.name"), &env.name, names::env_var_name);
        }
        if !seen.insert(env.name.as_str()) {
            errors.add(
                format!("{field}.name"),
                format!("`{}` is set twice", env.name),
            );
        }
        if env.value.is_some() && env.value_from.is_some() {
            errors.add(field.clone(), "set either value or valueFrom, not both");
        }
        if let Some(source) = &env.value_from {
            let refs = [&source.config_map_key_ref, &source.secret_key_ref];
            if refs.iter().filter(|r| r.is_some()).count() != 1 {
                errors.add(
                    format!("{field}.valueFrom"),
                    "set exactly one of configMapKeyRef or secretKeyRef",
                );
            }
            let named_refs = [
                ("configMapKeyRef", &source.config_map_key_ref),
                ("secretKeyRef", &source.secret_key_ref),
            ];
            for (ref_field, key_ref) in named_refs {
                let Some(key_ref) = key_ref else { continue };
                if key_ref.name.is_empty() || key_ref.key.is_empty() {
                    errors.add(format!("{field}.valueFrom"), "name and key are required");
                    continue;
                }
                let ref_field = format!("{field}.valueFrom.{ref_field}");
                errors.rule(
                    format!("{ref_field}.name"),
                    &key_ref.name,
                    names::dns1123_subdomain,
                );
                errors.rule(format!("{ref_field}.key"), &key_ref.key, names::config_key);
            }
        }
    }
    for (i, source) in spec.env_from.iter().enumerate() {
        let refs = [&source.config_map_ref, &source.secret_ref];
        if refs.iter().filter(|r| r.is_some()).count() != 1 {
            errors.add(
                format!("spec.envFrom[{i}]"),
                "set exactly one of configMapRef or secretRef",
            );
        }
        if refs.into_iter().flatten().any(|r| r.name.is_empty()) {
            errors.add(format!("spec.envFrom[{i}]"), "name is required");
        }
        let named_refs = [
            ("configMapRef", &source.config_map_ref),
            ("secretRef", &source.secret_ref),
        ];
        for (ref_field, object_ref) in named_refs {
            if let Some(object_ref) = object_ref
                && !object_ref.name.is_empty()
            {
                errors.rule(
                    format!("spec.envFrom[{i}].{ref_field}.name"),
                    &object_ref.name,
                    names::dns1123_subdomain,
                );
            }
        }
        if let Some(prefix) = source.prefix.as_deref().filter(|p| !p.is_empty()) {
            errors.rule(
                format!("spec.envFrom[{i}].prefix"),
                prefix,
                names::env_var_name,
            );
        }
    }
}

/// Checks the ports and returns the names declared.
fn check_ports(spec: &MicroserviceSpec, errors: &mut Errors) -> BTreeSet<String> {
    let mut port_names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    let mut target_numbers = BTreeSet::new();
    if spec.ports.len() > 32 {
        errors.add("spec.ports", "at most 32 ports");
    }
    for (i, port) in spec.ports.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        if !is_dns_label(&port.name, 15) {
            errors.add(
                format!("{field}.name"),
                format!(
                    "`{}` must be lowercase letters, digits and '-', at most 15 characters",
                    port.name
                ),
            );
        } else {
            // Container ports take IANA service names: a letter, and no `--`.
            errors.rule(format!("{field}.name"), &port.name, names::port_name);
        }
        if !port_names.insert(port.name.clone()) {
            errors.add(
                format!("{field}.name"),
                format!("`{}` is declared twice", port.name),
            );
        }
        errors.range(format!("{field}.port"), port.port.into(), 1, 65535);
        if !numbers.insert(port.port) {
            errors.add(
                format!("{field}.port"),
                format!("{} is declared twice", port.port),
            );
        }
        let target = port.target_port.unwrap_or(port.port);
        if let Some(target_port) = port.target_port {
            errors.range(format!("{field}.targetPort"), target_port.into(), 1, 65535);
        }
        if !target_numbers.insert(target) {
            errors.add(
                format!("{field}.targetPort"),
                format!("{target} is used by another port"),
            );
        }
        if let Some(app_protocol) = &port.app_protocol {
            let valid = !app_protocol.is_empty()
                && app_protocol.len() <= 63
                && app_protocol.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !valid {
                errors.add(
                    format!("{field}.appProtocol"),
                    format!("`{app_protocol}` is not a valid protocol name"),
                );
            }
        }
    }
    let exposed = spec
        .service
        .as_ref()
        .and_then(|s| s.type_)
        .unwrap_or_default();
    if exposed != ServiceType::ClusterIP && spec.ports.is_empty() {
        errors.add(
            "spec.service.type",
            format!("{exposed:?} needs at least one entry in spec.ports"),
        );
    }
    port_names
}

fn check_service(spec: &MicroserviceSpec, errors: &mut Errors) {
    if let Some(service) = &spec.service {
        errors.annotations("spec.service.annotations", &service.annotations);
    }
}

fn check_service_account(spec: &MicroserviceSpec, errors: &mut Errors) {
    if let Some(account) = &spec.service_account {
        errors.annotations("spec.serviceAccount.annotations", &account.annotations);
    }
}

/// The longest config-hash annotation value the pods can get: a SHA-256 in hex.
const CONFIG_HASH_MAX_LEN: usize = 64;

fn check_pod_template(spec: &MicroserviceSpec, errors: &mut Errors) {
    let Some(template) = &spec.pod_template else {
        return;
    };
    errors.labels("spec.podTemplate.labels", &template.labels);
    // The pods carry Flotilla's config-hash annotation as well; it counts towards the
    // size limit, so the check sees it at its largest.
    let mut annotations = template.annotations.clone();
    annotations.insert(
        CONFIG_HASH_ANNOTATION.to_string(),
        "0".repeat(CONFIG_HASH_MAX_LEN),
    );
    errors.annotations("spec.podTemplate.annotations", &annotations);
    errors.labels("spec.podTemplate.nodeSelector", &template.node_selector);
    for (i, toleration) in template.tolerations.iter().enumerate() {
        let field = format!("spec.podTemplate.tolerations[{i}]");
        if let Some(key) = toleration.key.as_deref().filter(|k| !k.is_empty()) {
            errors.rule(format!("{field}.key"), key, names::label_key);
        }
        if toleration.operator.as_deref() != Some("Exists") {
            let value = toleration.value.as_deref().unwrap_or_default();
            errors.rule(format!("{field}.value"), value, names::label_value);
        }
    }
    for (i, constraint) in template.topology_spread_constraints.iter().enumerate() {
        let field = format!("spec.podTemplate.topologySpreadConstraints[{i}]");
        errors.rule(
            format!("{field}.topologyKey"),
            &constraint.topology_key,
            names::label_key,
        );
        if let Some(selector) = &constraint.label_selector {
            errors.selector(&format!("{field}.labelSelector"), selector);
        }
    }
    if let Some(priority_class) = &template.priority_class_name {
        errors.rule(
            "spec.podTemplate.priorityClassName",
            priority_class,
            names::dns1123_subdomain,
        );
    }
}

fn check_replicas(spec: &MicroserviceSpec, errors: &mut Errors) {
    if let Some(replicas) = spec.replicas {
        errors.range("spec.replicas", replicas.into(), 0, 1000);
    }
    let Some(autoscaling) = &spec.autoscaling else {
        return;
    };
    errors.range(
        "spec.autoscaling.minReplicas",
        autoscaling.min_replicas.into(),
        1,
        1000,
    );
    errors.range(
        "spec.autoscaling.maxReplicas",
        autoscaling.max_replicas.into(),
        1,
        1000,
    );
    if autoscaling.min_replicas > autoscaling.max_replicas {
        errors.add(
            "spec.autoscaling.minReplicas",
            format!(
                "must not exceed spec.autoscaling.maxReplicas ({} > {})",
                autoscaling.min_replicas, autoscaling.max_replicas
            ),
        );
    }
    if let Some(cpu) = autoscaling.target_cpu_utilization_percentage {
        errors.range(
            "spec.autoscaling.targetCPUUtilizationPercentage",
            cpu.into(),
            1,
            1000,
        );
    }
    if let Some(memory) = autoscaling.target_memory_utilization_percentage {
        errors.range(
            "spec.autoscaling.targetMemoryUtilizationPercentage",
            memory.into(),
            1,
            1000,
        );
    }
    if let Some(replicas) = spec.replicas
        && replicas != 1
        && !(autoscaling.min_replicas..=autoscaling.max_replicas).contains(&replicas)
    {
        errors.add(
            "spec.replicas",
            "is ignored under spec.autoscaling; leave it unset or inside minReplicas..maxReplicas",
        );
    }
}

/// `spec.metrics`: a shape Prometheus accepts, on a declared TCP port.
fn check_metrics(spec: &MicroserviceSpec, errors: &mut Errors) {
    let Some(metrics) = spec.metrics.as_ref().filter(|m| !m.disabled) else {
        return;
    };
    for error in metrics_shape_errors("spec.metrics", metrics) {
        errors.0.push(error);
    }
    let port = match &metrics.port {
        Some(name) => match spec.ports.iter().find(|p| &p.name == name) {
            Some(port) => port,
            None => {
                errors.add(
                    "spec.metrics.port",
                    format!("`{name}` is not one of spec.ports"),
                );
                return;
            }
        },
        None => match spec.ports.first() {
            Some(port) => port,
            None => {
                errors.add(
                    "spec.metrics",
                    "needs a port to scrape, but spec.ports is empty",
                );
                return;
            }
        },
    };
    if port.protocol.unwrap_or_default() != Protocol::TCP {
        let field = if metrics.port.is_some() {
            "spec.metrics.port"
        } else {
            "spec.metrics"
        };
        errors.add(
            field,
            format!(
                "port `{}` is not TCP: Prometheus scrapes over HTTP",
                port.name
            ),
        );
    }
}

/// The checks of a metrics block that need no ports (the class's defaults get them
/// too): the path, the interval and the port name's form. `field` is the block's path.
pub(crate) fn metrics_shape_errors(field: &str, metrics: &Metrics) -> Vec<FieldError> {
    let mut errors = Errors::default();
    if let Some(port) = &metrics.port {
        errors.rule(format!("{field}.port"), port, names::port_name);
    }
    if let Some(path) = &metrics.path
        && (!path.starts_with('/') || path.len() > 1024 || path.chars().any(char::is_whitespace))
    {
        errors.add(
            format!("{field}.path"),
            format!("`{path}` is not an absolute HTTP path such as /metrics"),
        );
    }
    if let Some(interval) = &metrics.interval
        && !is_prometheus_duration(interval)
    {
        errors.add(
            format!("{field}.interval"),
            format!("`{interval}` is not a Prometheus duration such as 30s or 1m30s"),
        );
    }
    errors.0
}

/// One or more `<number><unit>` with units ms, s, m, h, none zero overall (the
/// ServiceMonitor CRD's own pattern, minus days and weeks, which no scrape wants).
fn is_prometheus_duration(value: &str) -> bool {
    let mut rest = value;
    let mut total_nonzero = false;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        let (number, tail) = rest.split_at(digits);
        let unit = ["ms", "s", "m", "h"]
            .into_iter()
            .find(|unit| tail.starts_with(unit));
        let Some(unit) = unit else {
            return false;
        };
        total_nonzero |= number.bytes().any(|b| b != b'0');
        rest = &tail[unit.len()..];
    }
    total_nonzero
}

fn check_probes(spec: &MicroserviceSpec, port_names: &BTreeSet<String>, errors: &mut Errors) {
    let Some(probes) = &spec.probes else { return };
    let all = [
        ("readiness", &probes.readiness),
        ("liveness", &probes.liveness),
        ("startup", &probes.startup),
    ];
    for (kind, probe) in all {
        if let Some(probe) = probe {
            check_probe(
                &format!("spec.probes.{kind}"),
                kind,
                probe,
                port_names,
                errors,
            );
        }
    }
    let needs_port = all
        .iter()
        .any(|(_, p)| p.as_ref().is_some_and(|p| p.port.is_none()));
    if !probes.disabled && needs_port && spec.ports.is_empty() {
        errors.add(
            "spec.probes",
            "a probe without a port needs at least one entry in spec.ports",
        );
    }
}

fn check_probe(
    field: &str,
    kind: &str,
    probe: &Probe,
    port_names: &BTreeSet<String>,
    errors: &mut Errors,
) {
    if let Some(port) = &probe.port
        && !port_names.contains(port)
    {
        errors.add(
            format!("{field}.port"),
            format!("`{port}` must name one of spec.ports"),
        );
    }
    let actions = [
        probe.http.is_some(),
        probe.grpc.is_some(),
        probe.tcp.is_some(),
    ];
    if actions.iter().filter(|set| **set).count() > 1 {
        errors.add(field, "takes at most one of http, grpc or tcp");
    }
    if let Some(http) = &probe.http
        && let Some(path) = &http.path
        && !path.starts_with('/')
    {
        errors.add(
            format!("{field}.http.path"),
            format!("`{path}` must start with '/'"),
        );
    }
    for (i, header) in probe.http.iter().flat_map(|h| &h.headers).enumerate() {
        errors.rule(
            format!("{field}.http.headers[{i}].name"),
            &header.name,
            names::http_header_name,
        );
    }
    let timings = [
        ("initialDelaySeconds", probe.initial_delay_seconds, 0, 3600),
        ("periodSeconds", probe.period_seconds, 1, 3600),
        ("timeoutSeconds", probe.timeout_seconds, 1, 3600),
        ("failureThreshold", probe.failure_threshold, 1, 100),
        ("successThreshold", probe.success_threshold, 1, 100),
    ];
    for (name, value, min, max) in timings {
        if let Some(value) = value {
            errors.range(format!("{field}.{name}"), value.into(), min, max);
        }
    }
    if kind != "readiness" && probe.success_threshold.is_some_and(|s| s != 1) {
        errors.add(
            format!("{field}.successThreshold"),
            format!("must be 1 for a {kind} probe"),
        );
    }
}

fn check_dependencies(spec: &MicroserviceSpec, errors: &mut Errors) {
    if spec.depends_on.len() > 64 {
        errors.add("spec.dependsOn", "at most 64 dependencies");
    }
    let mut seen = BTreeSet::new();
    for (i, dependency) in spec.depends_on.iter().enumerate() {
        let field = format!("spec.dependsOn[{i}]");
        if !is_dns_label(&dependency.name, DNS_LABEL_MAX) {
            errors.add(
                format!("{field}.name"),
                format!("`{}` is not a valid Microservice name", dependency.name),
            );
        }
        if let Some(namespace) = &dependency.namespace
            && !is_dns_label(namespace, DNS_LABEL_MAX)
        {
            errors.add(
                format!("{field}.namespace"),
                format!("`{namespace}` is not a valid namespace"),
            );
        }
        if let Some(port) = &dependency.port
            && !is_dns_label(port, 15)
        {
            errors.add(
                format!("{field}.port"),
                format!("`{port}` is not a valid port name"),
            );
        }
        // Two entries for the same service would derive the same env variable twice.
        if !seen.insert((dependency.name.as_str(), dependency.namespace.as_deref())) {
            errors.add(field, format!("`{}` is listed twice", dependency.name));
        }
    }
}

fn check_self_dependency(ms: &Microservice, errors: &mut Errors) {
    let namespace = ms.namespace();
    for (i, dependency) in ms.spec.depends_on.iter().enumerate() {
        let same_namespace = dependency.namespace.is_none() || dependency.namespace == namespace;
        if same_namespace && dependency.name == ms.name_any() {
            errors.add(
                format!("spec.dependsOn[{i}]"),
                "a Microservice cannot depend on itself",
            );
        }
    }
}

fn check_network(spec: &MicroserviceSpec, port_names: &BTreeSet<String>, errors: &mut Errors) {
    let Some(network) = &spec.network else { return };
    for (i, allow) in network.allow_from.iter().enumerate() {
        let field = format!("spec.network.allowFrom[{i}]");
        if allow.namespace_selector.is_none() && allow.pod_selector.is_none() {
            errors.add(field.clone(), "set namespaceSelector, podSelector or both");
        }
        if let Some(selector) = &allow.namespace_selector {
            errors.selector(&format!("{field}.namespaceSelector"), selector);
        }
        if let Some(selector) = &allow.pod_selector {
            errors.selector(&format!("{field}.podSelector"), selector);
        }
        for (j, port) in allow.ports.iter().enumerate() {
            if !port_names.contains(port) {
                errors.add(
                    format!("{field}.ports[{j}]"),
                    format!("`{port}` must name one of spec.ports"),
                );
            }
        }
    }
    for (i, rule) in network.egress.iter().enumerate() {
        let field = format!("spec.network.egress[{i}]");
        if rule.cidrs.is_empty() {
            errors.add(format!("{field}.cidrs"), "at least one CIDR is required");
        }
        for (j, cidr) in rule.cidrs.iter().enumerate() {
            if !is_cidr(&cidr.0) {
                errors.add(
                    format!("{field}.cidrs[{j}]"),
                    format!("`{}` is not a CIDR such as 10.0.0.0/8", cidr.0),
                );
            }
        }
        for (j, port) in rule.ports.iter().enumerate() {
            errors.range(
                format!("{field}.ports[{j}].port"),
                port.port.into(),
                1,
                65535,
            );
        }
    }
}

/// A CIDR as NetworkPolicy's ipBlock takes it: an address and a prefix length that fits.
pub(crate) fn is_cidr(s: &str) -> bool {
    let Some((address, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

fn check_disruption(spec: &MicroserviceSpec, errors: &mut Errors) {
    let Some(disruption) = &spec.disruption else {
        return;
    };
    match (&disruption.min_available, &disruption.max_unavailable) {
        (Some(value), None) => check_int_or_percent("spec.disruption.minAvailable", value, errors),
        (None, Some(value)) => {
            check_int_or_percent("spec.disruption.maxUnavailable", value, errors)
        }
        _ => errors.add(
            "spec.disruption",
            "set exactly one of minAvailable or maxUnavailable",
        ),
    }
}

fn check_int_or_percent(field: &str, value: &IntOrString, errors: &mut Errors) {
    match value {
        IntOrString::Int(n) if *n < 0 => {
            errors.add(field, format!("must not be negative, got {n}"))
        }
        IntOrString::Int(_) => {}
        IntOrString::String(s) => {
            let percent = s.strip_suffix('%').and_then(|n| n.parse::<u32>().ok());
            if percent.is_none_or(|p| p > 100) {
                errors.add(
                    field,
                    format!("`{s}` must be a number of pods or a percentage such as 50%"),
                );
            }
        }
    }
}

fn check_security(spec: &MicroserviceSpec, errors: &mut Errors) {
    let Some(security) = &spec.security else {
        return;
    };
    if let Some(user) = security.run_as_user
        && user < 1
    {
        errors.add(
            "spec.security.runAsUser",
            "must be a non-root user ID (1 or more)",
        );
    }
    if let Some(group) = security.run_as_group {
        errors.range("spec.security.runAsGroup", group, 0, i64::from(i32::MAX));
    }
    let mut seen = BTreeSet::new();
    for (i, path) in security.writable_paths.iter().enumerate() {
        let field = format!("spec.security.writablePaths[{i}]");
        if !path.0.starts_with('/') || path.0.len() < 2 || path.0.contains('\0') {
            errors.add(
                field.clone(),
                format!("`{}` must be an absolute path other than /", path.0),
            );
        }
        if path.0.trim_end_matches('/') == "/tmp" {
            errors.add(field.clone(), "/tmp is always writable; leave it out");
        }
        if !seen.insert(path.0.trim_end_matches('/')) {
            errors.add(field, format!("`{}` is listed twice", path.0));
        }
    }
}

fn check_part_of(spec: &MicroserviceSpec, errors: &mut Errors) {
    let Some(part_of) = &spec.part_of else { return };
    // A label value may be empty; an empty application name is still a mistake.
    let reason = match names::label_value(part_of) {
        Err(reason) => reason,
        Ok(()) if part_of.is_empty() => "must be non-empty".to_string(),
        Ok(()) => return,
    };
    errors.add(
        "spec.partOf",
        format!("`{part_of}` is not a valid label value: {reason}"),
    );
}
