//! Every validation rule, from YAML: each case is a spec that must be refused, and the
//! error must name the field at fault. The schema and CEL rules in the CRD say the same
//! at admission; the operator repeats them for servers without CEL.

use flotilla::api::Microservice;
use flotilla::validate::validate;

#[path = "fixtures/validation_cases.rs"]
mod validation_cases;

use validation_cases::{Case, ClassCase, cases, microservice_yaml};

fn microservice(spec: &str) -> Microservice {
    let yaml = microservice_yaml(spec);
    serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("fixture does not parse: {e}\n{yaml}"))
}

#[test]
fn a_valid_spec_passes() {
    assert_eq!(validate(&microservice(&cases().valid.microservice)), Ok(()));
}

#[test]
fn every_rule_refuses_and_names_its_field() {
    let mut failures = Vec::new();
    for Case {
        name, spec, field, ..
    } in &cases().microservices
    {
        match validate(&microservice(spec)) {
            Ok(()) => failures.push(format!("{name}: accepted")),
            Err(invalid) => {
                if !invalid.0.iter().any(|e| e.field == *field) {
                    failures.push(format!(
                        "{name}: expected an error on {field}, got: {invalid}"
                    ));
                }
                if !invalid.to_string().contains(field) {
                    failures.push(format!(
                        "{name}: the message does not name {field}: {invalid}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn names_keys_and_values_the_api_server_accepts_pass() {
    let spec = "image: x
ports: [{name: http, port: 80}, {name: 1a, port: 81}]
env: [{name: .a, value: v}, {name: B, valueFrom: {configMapKeyRef: {name: c.d, key: .k_1}}}]
envFrom: [{configMapRef: {name: c}, prefix: my.prefix_}]
probes: {readiness: {http: {headers: [{name: X-Token-1, value: v}]}}}
service: {annotations: {Example.COM/Key: v}}
serviceAccount: {annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::1:role/x'}}
podTemplate:
  labels: {example.com/Team: A_b.c, empty: ''}
  annotations: {A: any value at all}
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{operator: Exists}, {key: dedicated, operator: Equal, value: web}]
  topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}]
  priorityClassName: high.priority
network: {allowFrom: [{podSelector: {matchExpressions: [{key: app.kubernetes.io/name, operator: Exists}]}}]}
expose: {http: {host: '*.example.com'}}";
    assert_eq!(validate(&microservice(spec)), Ok(()));
}

/// Every child takes the Microservice's name, and its Service needs a DNS-1035 label.
#[test]
fn the_name_must_suit_every_child() {
    let named = |name: &str| {
        let mut ms = microservice(&cases().valid.microservice);
        ms.metadata.name = Some(name.to_string());
        ms
    };
    let longest = "a".repeat(63);
    for name in ["a", "users", "order-history", "a1", longest.as_str()] {
        assert_eq!(validate(&named(name)), Ok(()), "{name}");
    }
    let too_long = "a".repeat(64);
    for name in [
        "my.app",
        "1users",
        "Users",
        "users-",
        "-users",
        "a_b",
        too_long.as_str(),
    ] {
        let invalid = validate(&named(name)).expect_err(name);
        assert_eq!(invalid.0[0].field, "metadata.name", "{name}: {invalid}");
        assert!(
            invalid.to_string().contains("DNS-1035"),
            "{name}: {invalid}"
        );
    }
}

#[test]
fn pod_annotations_leave_room_for_the_config_hash() {
    // Annotations of `total` bytes in all, each value within its 4 KiB bound.
    let with_total_of = |total: usize| {
        let mut ms = microservice(&cases().valid.microservice);
        let template = ms.spec.pod_template.get_or_insert_default();
        let mut left = total;
        for i in 0.. {
            let key = format!("a{i:02}");
            let value = "v".repeat((left - key.len()).min(4096));
            left -= key.len() + value.len();
            template.annotations.insert(key, value);
            if left == 0 {
                break;
            }
        }
        ms
    };
    assert_eq!(validate(&with_total_of(200 * 1024)), Ok(()));
    // Alone the annotations fit exactly; with Flotilla's own they would not.
    let invalid = validate(&with_total_of(256 * 1024 - 1)).unwrap_err();
    assert_eq!(
        invalid.0[0].field, "spec.podTemplate.annotations",
        "{invalid}"
    );
}

#[test]
fn a_dependency_in_another_namespace_may_share_the_name() {
    let ms = microservice("image: x\ndependsOn: [{name: users, namespace: legacy}]");
    assert_eq!(validate(&ms), Ok(()));
}

#[test]
fn all_problems_are_reported_at_once() {
    let invalid = validate(&microservice(
        "image: ''\nreplicas: -1\nsecurity: {runAsUser: 0}",
    ))
    .unwrap_err();
    let fields: Vec<&str> = invalid.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["spec.image", "spec.replicas", "spec.security.runAsUser"]
    );
}

/// The cases the CRD's CEL rules must refuse too (`cel: true`; on servers from 1.25): the
/// cross-field checks a plain schema cannot express.
#[test]
fn cel_rules_agree_with_the_operator() {
    let cases = cases();
    let valid = microservice(&cases.valid.microservice);
    if let Err(errors) = kube::core::cel::validate_cel(&valid) {
        panic!("the CEL rules refuse a valid spec: {errors:?}");
    }
    let mut failures = Vec::new();
    let cel_cases: Vec<&Case> = cases.microservices.iter().filter(|c| c.cel).collect();
    assert!(cel_cases.len() >= 20, "only {} CEL cases", cel_cases.len());
    for Case { name, spec, .. } in cel_cases {
        if kube::core::cel::validate_cel(&microservice(spec)).is_ok() {
            failures.push(format!("{name}: CEL accepts what the operator refuses"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A coarser field recorded for the API server is only for a CEL case, is a parent of the
/// operator's field, and says why.
#[test]
fn server_fields_are_coarser_paths_with_a_reason() {
    let cases = cases();
    let recorded = cases
        .microservices
        .iter()
        .map(|c| (c.name.as_str(), c.cel, &c.field, &c.server))
        .chain(
            cases
                .classes
                .iter()
                .map(|c| (c.spec.as_str(), true, &c.field, &c.server)),
        );
    for (name, cel, field, server) in recorded {
        let Some(server) = server else { continue };
        assert!(cel, "{name}: a server field on a case CEL does not refuse");
        assert!(
            field.starts_with(&format!("{}.", server.field))
                || field.starts_with(&format!("{}[", server.field)),
            "{name}: {} is not a parent of {field}",
            server.field
        );
        assert!(!server.why.trim().is_empty(), "{name}: no reason given");
    }
}

fn class(spec: &str) -> flotilla::api::MicroserviceClass {
    let yaml = format!(
        "apiVersion: flotilla.dev/v1alpha1\nkind: MicroserviceClass\nmetadata: {{name: golden}}\nspec: {spec}"
    );
    serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("fixture does not parse: {e}\n{yaml}"))
}

#[test]
fn class_cel_rules_agree_with_the_operator() {
    let cases = cases();
    let valid = class(&cases.valid.class);
    kube::core::cel::validate_cel(&valid)
        .unwrap_or_else(|e| panic!("the CEL rules refuse a valid class: {e:?}"));
    flotilla::class::validate::validate_class(&valid.spec).expect("the operator accepts it");
    let mut failures = Vec::new();
    for ClassCase { spec, field, .. } in &cases.classes {
        let class = class(spec);
        if kube::core::cel::validate_cel(&class).is_ok() {
            failures.push(format!("{spec}: CEL accepts it"));
        }
        match flotilla::class::validate::validate_class(&class.spec) {
            Ok(()) => failures.push(format!("{spec}: the operator accepts it")),
            Err(error) if !error.to_string().contains(field) => {
                failures.push(format!("{spec}: {error} does not name {field}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn class_metrics_defaults_and_monitoring_name_their_field() {
    for (spec, field) in [
        (
            "{defaults: {metrics: {interval: soon}}}",
            "spec.defaults.metrics.interval",
        ),
        (
            "{defaults: {metrics: {path: metrics}}}",
            "spec.defaults.metrics.path",
        ),
        (
            "{monitoring: {serviceMonitorLabels: {'a b': x}}}",
            "spec.monitoring.serviceMonitorLabels",
        ),
        (
            "{monitoring: {namespace: Monitoring}}",
            "spec.monitoring.namespace",
        ),
    ] {
        let error = flotilla::class::validate::validate_class(&class(spec).spec)
            .expect_err(spec)
            .to_string();
        assert!(
            error.contains(field),
            "{spec}: {error} does not name {field}"
        );
    }
    let valid = class(
        "{defaults: {metrics: {port: http, path: /metrics, interval: 1m30s}}, monitoring: {namespace: monitoring, serviceMonitorLabels: {release: prom}}}",
    );
    flotilla::class::validate::validate_class(&valid.spec).expect("a valid class");
}

/// The cases a schema bound refuses (`schema: true`) are over a bound of the generated
/// schema itself, not only refused by some other check of the operator's.
#[test]
fn schema_cases_are_over_a_bound_of_the_schema() {
    use flotilla::api::bounds::{SPEC_BOUNDS, check};
    let schema_cases: Vec<Case> = cases()
        .microservices
        .into_iter()
        .filter(|c| c.schema)
        .collect();
    assert!(
        schema_cases.len() >= 3,
        "only {} schema cases",
        schema_cases.len()
    );
    for Case {
        name, spec, field, ..
    } in schema_cases
    {
        let value = serde_json::to_value(microservice(&spec).spec).unwrap();
        let over = check(&value, &SPEC_BOUNDS.microservice, "spec");
        assert!(
            over.iter().any(|o| o.field == field),
            "{name}: no bound of the schema refuses {field}: {over:?}"
        );
    }
}
