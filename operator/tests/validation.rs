//! Every validation rule, from YAML: each case is a spec that must be refused, and the
//! error must name the field at fault. The schema and CEL rules in the CRD say the same
//! at admission; the operator repeats them for servers without CEL.

use flotilla::api::Microservice;
use flotilla::validate::validate;

fn microservice(spec: &str) -> Microservice {
    let yaml = format!(
        "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {{name: users, namespace: shop}}\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("fixture does not parse: {e}\n{yaml}"))
}

const VALID: &str = "image: registry.example.com/users:1.0\nports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]";

/// (spec extra lines appended to a valid spec, field the error must name)
const CASES: &[(&str, &str, &str)] = &[
    (
        "empty image",
        "image: ''\nports: [{name: http, port: 80}]",
        "spec.image",
    ),
    ("image with spaces", "image: 'a b'", "spec.image"),
    (
        "bad env name",
        "image: x\nenv: [{name: '1ABC', value: v}]",
        "spec.env[0].name",
    ),
    (
        "env twice",
        "image: x\nenv: [{name: A, value: v}, {name: A, value: w}]",
        "spec.env[1].name",
    ),
    (
        "env value and valueFrom",
        "image: x\nenv: [{name: A, value: v, valueFrom: {configMapKeyRef: {name: c, key: k}}}]",
        "spec.env[0]",
    ),
    (
        "valueFrom with both refs",
        "image: x\nenv: [{name: A, valueFrom: {configMapKeyRef: {name: c, key: k}, secretKeyRef: {name: s, key: k}}}]",
        "spec.env[0].valueFrom",
    ),
    (
        "valueFrom with no ref",
        "image: x\nenv: [{name: A, valueFrom: {}}]",
        "spec.env[0].valueFrom",
    ),
    (
        "envFrom with both",
        "image: x\nenvFrom: [{configMapRef: {name: c}, secretRef: {name: s}}]",
        "spec.envFrom[0]",
    ),
    (
        "port name uppercase",
        "image: x\nports: [{name: HTTP, port: 80}]",
        "spec.ports[0].name",
    ),
    (
        "port name too long",
        "image: x\nports: [{name: abcdefghijklmnop, port: 80}]",
        "spec.ports[0].name",
    ),
    (
        "duplicate port name",
        "image: x\nports: [{name: http, port: 80}, {name: http, port: 81}]",
        "spec.ports[1].name",
    ),
    (
        "duplicate port number",
        "image: x\nports: [{name: a, port: 80}, {name: b, port: 80}]",
        "spec.ports[1].port",
    ),
    (
        "duplicate target port",
        "image: x\nports: [{name: a, port: 80, targetPort: 9000}, {name: b, port: 81, targetPort: 9000}]",
        "spec.ports[1].targetPort",
    ),
    (
        "port out of range",
        "image: x\nports: [{name: a, port: 70000}]",
        "spec.ports[0].port",
    ),
    (
        "target port out of range",
        "image: x\nports: [{name: a, port: 80, targetPort: 0}]",
        "spec.ports[0].targetPort",
    ),
    (
        "bad appProtocol",
        "image: x\nports: [{name: a, port: 80, appProtocol: 'HTTP/2'}]",
        "spec.ports[0].appProtocol",
    ),
    (
        "exposed without ports",
        "image: x\nservice: {type: NodePort}",
        "spec.service.type",
    ),
    (
        "negative replicas",
        "image: x\nreplicas: -1",
        "spec.replicas",
    ),
    (
        "min over max",
        "image: x\nautoscaling: {minReplicas: 5, maxReplicas: 2}",
        "spec.autoscaling.minReplicas",
    ),
    (
        "min zero",
        "image: x\nautoscaling: {minReplicas: 0, maxReplicas: 2}",
        "spec.autoscaling.minReplicas",
    ),
    (
        "cpu target zero",
        "image: x\nautoscaling: {minReplicas: 1, maxReplicas: 2, targetCPUUtilizationPercentage: 0}",
        "spec.autoscaling.targetCPUUtilizationPercentage",
    ),
    (
        "replicas outside autoscaling range",
        "image: x\nreplicas: 9\nautoscaling: {minReplicas: 1, maxReplicas: 2}",
        "spec.replicas",
    ),
    (
        "probe port unknown",
        "image: x\nports: [{name: http, port: 80}]\nprobes: {readiness: {port: admin}}",
        "spec.probes.readiness.port",
    ),
    (
        "probe with two actions",
        "image: x\nports: [{name: http, port: 80}]\nprobes: {liveness: {http: {}, tcp: {}}}",
        "spec.probes.liveness",
    ),
    (
        "probe path relative",
        "image: x\nports: [{name: http, port: 80}]\nprobes: {readiness: {http: {path: healthz}}}",
        "spec.probes.readiness.http.path",
    ),
    (
        "probe period zero",
        "image: x\nports: [{name: http, port: 80}]\nprobes: {readiness: {periodSeconds: 0}}",
        "spec.probes.readiness.periodSeconds",
    ),
    (
        "liveness success threshold",
        "image: x\nports: [{name: http, port: 80}]\nprobes: {liveness: {successThreshold: 2}}",
        "spec.probes.liveness.successThreshold",
    ),
    (
        "probe without any port",
        "image: x\nprobes: {startup: {tcp: {}}}",
        "spec.probes",
    ),
    (
        "dependency bad name",
        "image: x\ndependsOn: [{name: Users_DB}]",
        "spec.dependsOn[0].name",
    ),
    (
        "dependency bad namespace",
        "image: x\ndependsOn: [{name: users-db, namespace: 'Bad NS'}]",
        "spec.dependsOn[0].namespace",
    ),
    (
        "dependency twice",
        "image: x\ndependsOn: [{name: a}, {name: a}]",
        "spec.dependsOn[1]",
    ),
    (
        "depends on itself",
        "image: x\ndependsOn: [{name: users}]",
        "spec.dependsOn[0]",
    ),
    (
        "allowFrom without selector",
        "image: x\nports: [{name: http, port: 80}]\nnetwork: {allowFrom: [{ports: [http]}]}",
        "spec.network.allowFrom[0]",
    ),
    (
        "allowFrom unknown port",
        "image: x\nports: [{name: http, port: 80}]\nnetwork: {allowFrom: [{podSelector: {}, ports: [admin]}]}",
        "spec.network.allowFrom[0].ports[0]",
    ),
    (
        "egress bad CIDR",
        "image: x\nnetwork: {egress: [{cidrs: ['10.0.0.0/33']}]}",
        "spec.network.egress[0].cidrs[0]",
    ),
    (
        "egress no CIDR",
        "image: x\nnetwork: {egress: [{cidrs: []}]}",
        "spec.network.egress[0].cidrs",
    ),
    (
        "egress bad port",
        "image: x\nnetwork: {egress: [{cidrs: ['10.0.0.0/8'], ports: [{port: 0}]}]}",
        "spec.network.egress[0].ports[0].port",
    ),
    (
        "disruption both",
        "image: x\ndisruption: {minAvailable: 1, maxUnavailable: 1}",
        "spec.disruption",
    ),
    (
        "disruption neither",
        "image: x\ndisruption: {}",
        "spec.disruption",
    ),
    (
        "disruption bad percent",
        "image: x\ndisruption: {maxUnavailable: '150%'}",
        "spec.disruption.maxUnavailable",
    ),
    (
        "disruption negative",
        "image: x\ndisruption: {minAvailable: -1}",
        "spec.disruption.minAvailable",
    ),
    (
        "root user",
        "image: x\nsecurity: {runAsUser: 0}",
        "spec.security.runAsUser",
    ),
    (
        "negative group",
        "image: x\nsecurity: {runAsGroup: -5}",
        "spec.security.runAsGroup",
    ),
    (
        "relative writable path",
        "image: x\nsecurity: {writablePaths: [var/cache]}",
        "spec.security.writablePaths[0]",
    ),
    (
        "tmp as writable path",
        "image: x\nsecurity: {writablePaths: [/tmp]}",
        "spec.security.writablePaths[0]",
    ),
    (
        "writable path twice",
        "image: x\nsecurity: {writablePaths: [/data, /data/]}",
        "spec.security.writablePaths[1]",
    ),
    ("bad partOf", "image: x\npartOf: '-shop'", "spec.partOf"),
    (
        "bad class name",
        "image: x\nclass: Golden_Path",
        "spec.class",
    ),
    (
        "http exposure without ports",
        "image: x\nexpose: {http: {host: shop.example.com}}",
        "spec.expose.http",
    ),
    (
        "host and hostPrefix",
        "image: x\nports: [{name: http, port: 80}]\nexpose: {http: {host: shop.example.com, hostPrefix: shop}}",
        "spec.expose.http.hostPrefix",
    ),
    (
        "bad host",
        "image: x\nports: [{name: http, port: 80}]\nexpose: {http: {host: 'Shop!'}}",
        "spec.expose.http.host",
    ),
    (
        "hostPrefix with a dot",
        "image: x\nports: [{name: http, port: 80}]\nexpose: {http: {hostPrefix: a.b}}",
        "spec.expose.http.hostPrefix",
    ),
    (
        "exposed path without slash",
        "image: x\nports: [{name: http, port: 80}]\nexpose: {http: {paths: [{path: api}]}}",
        "spec.expose.http.paths[0].path",
    ),
    (
        "exposed path on unknown port",
        "image: x\nports: [{name: http, port: 80}]\nexpose: {http: {paths: [{path: /, port: admin}]}}",
        "spec.expose.http.paths[0].port",
    ),
    // What the API server would refuse in a child, caught first.
    (
        "port name of digits only",
        "image: x\nports: [{name: '8080', port: 80}]",
        "spec.ports[0].name",
    ),
    (
        "port name with two hyphens in a row",
        "image: x\nports: [{name: a--b, port: 80}]",
        "spec.ports[0].name",
    ),
    (
        "env name under ..",
        "image: x\nenv: [{name: ..A, value: v}]",
        "spec.env[0].name",
    ),
    (
        "env key with a slash",
        "image: x\nenv: [{name: A, valueFrom: {configMapKeyRef: {name: c, key: a/b}}}]",
        "spec.env[0].valueFrom.configMapKeyRef.key",
    ),
    (
        "env Secret name uppercase",
        "image: x\nenv: [{name: A, valueFrom: {secretKeyRef: {name: Creds, key: k}}}]",
        "spec.env[0].valueFrom.secretKeyRef.name",
    ),
    (
        "envFrom name uppercase",
        "image: x\nenvFrom: [{configMapRef: {name: Config}}]",
        "spec.envFrom[0].configMapRef.name",
    ),
    (
        "envFrom prefix with a leading digit",
        "image: x\nenvFrom: [{configMapRef: {name: c}, prefix: 1X_}]",
        "spec.envFrom[0].prefix",
    ),
    (
        "probe header with an underscore",
        "image: x\nports: [{name: http, port: 80}]\nprobes: {readiness: {http: {headers: [{name: X_Token, value: v}]}}}",
        "spec.probes.readiness.http.headers[0].name",
    ),
    (
        "Service annotation key with two slashes",
        "image: x\nports: [{name: http, port: 80}]\nservice: {annotations: {a/b/c: v}}",
        "spec.service.annotations",
    ),
    (
        "ServiceAccount annotation key with a leading hyphen",
        "image: x\nserviceAccount: {annotations: {-x: v}}",
        "spec.serviceAccount.annotations",
    ),
    (
        "pod label key with an uppercase prefix",
        "image: x\npodTemplate: {labels: {Example.com/team: a}}",
        "spec.podTemplate.labels",
    ),
    (
        "pod label value with a space",
        "image: x\npodTemplate: {labels: {team: a b}}",
        "spec.podTemplate.labels",
    ),
    (
        "pod label value too long",
        "image: x\npodTemplate: {labels: {team: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}",
        "spec.podTemplate.labels",
    ),
    (
        "pod annotation key with an underscore in the prefix",
        "image: x\npodTemplate: {annotations: {ex_ample.com/a: v}}",
        "spec.podTemplate.annotations",
    ),
    (
        "node selector value with a slash",
        "image: x\npodTemplate: {nodeSelector: {zone: a/b}}",
        "spec.podTemplate.nodeSelector",
    ),
    (
        "toleration key with a space",
        "image: x\npodTemplate: {tolerations: [{key: a b, operator: Exists}]}",
        "spec.podTemplate.tolerations[0].key",
    ),
    (
        "topology key empty",
        "image: x\npodTemplate: {topologySpreadConstraints: [{maxSkew: 1, topologyKey: '', whenUnsatisfiable: DoNotSchedule}]}",
        "spec.podTemplate.topologySpreadConstraints[0].topologyKey",
    ),
    (
        "topology selector value with a space",
        "image: x\npodTemplate: {topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {a: b c}}}]}",
        "spec.podTemplate.topologySpreadConstraints[0].labelSelector.matchLabels",
    ),
    (
        "priority class uppercase",
        "image: x\npodTemplate: {priorityClassName: High}",
        "spec.podTemplate.priorityClassName",
    ),
    (
        "allowFrom label key with two slashes",
        "image: x\nnetwork: {allowFrom: [{podSelector: {matchLabels: {a/b/c: x}}}]}",
        "spec.network.allowFrom[0].podSelector.matchLabels",
    ),
    (
        "allowFrom expression value with a space",
        "image: x\nnetwork: {allowFrom: [{namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [a b]}]}}]}",
        "spec.network.allowFrom[0].namespaceSelector.matchExpressions[0].values[0]",
    ),
    (
        "metrics on an unknown port",
        "image: x\nports: [{name: http, port: 80}]\nmetrics: {port: admin}",
        "spec.metrics.port",
    ),
    (
        "metrics without any port",
        "image: x\nmetrics: {path: /metrics}",
        "spec.metrics",
    ),
    (
        "metrics on a UDP port",
        "image: x\nports: [{name: dns, port: 53, protocol: UDP}]\nmetrics: {port: dns}",
        "spec.metrics.port",
    ),
    (
        "metrics path not absolute",
        "image: x\nports: [{name: http, port: 80}]\nmetrics: {path: metrics}",
        "spec.metrics.path",
    ),
    (
        "metrics interval not a duration",
        "image: x\nports: [{name: http, port: 80}]\nmetrics: {interval: 30}",
        "spec.metrics.interval",
    ),
    (
        "metrics interval of zero",
        "image: x\nports: [{name: http, port: 80}]\nmetrics: {interval: 0s}",
        "spec.metrics.interval",
    ),
    (
        "host that is an IP address",
        "image: x\nports: [{name: http, port: 80}]\nexpose: {http: {host: 10.0.0.1}}",
        "spec.expose.http.host",
    ),
    (
        "rolling with steps",
        "image: x\nrollout: {strategy: rolling, steps: [{weight: 10}]}",
        "spec.rollout.steps",
    ),
    (
        "canary weight of 100",
        "image: x\nrollout: {strategy: canary, steps: [{weight: 10}, {weight: 100}]}",
        "spec.rollout.steps[1].weight",
    ),
    (
        "canary pause in days",
        "image: x\nrollout: {steps: [{weight: 10, pause: 2d}]}",
        "spec.rollout.steps[0].pause",
    ),
    (
        "progress deadline too short",
        "image: x\nrollout: {progressDeadlineSeconds: 1}",
        "spec.rollout.progressDeadlineSeconds",
    ),
    (
        "http gate on an unknown port",
        "image: x\nports: [{name: http, port: 80}]\nrollout: {gates: {http: {path: /readyz, port: admin}}}",
        "spec.rollout.gates.http.port",
    ),
    (
        "http gate without ports",
        "image: x\nrollout: {gates: {http: {path: /readyz}}}",
        "spec.rollout.gates.http",
    ),
    (
        "http gate success over 100%",
        "image: x\nports: [{name: http, port: 80}]\nrollout: {gates: {http: {path: /readyz, successPercent: 101}}}",
        "spec.rollout.gates.http.successPercent",
    ),
    (
        "negative restarts",
        "image: x\nrollout: {gates: {maxRestarts: -1}}",
        "spec.rollout.gates.maxRestarts",
    ),
];

#[test]
fn a_valid_spec_passes() {
    assert_eq!(validate(&microservice(VALID)), Ok(()));
}

#[test]
fn every_rule_refuses_and_names_its_field() {
    let mut failures = Vec::new();
    for (name, spec, field) in CASES {
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
        let mut ms = microservice(VALID);
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
    let with_value_of = |length: usize| {
        let mut ms = microservice(VALID);
        let template = ms.spec.pod_template.get_or_insert_default();
        template
            .annotations
            .insert("a".to_string(), "v".repeat(length));
        ms
    };
    assert_eq!(validate(&with_value_of(200 * 1024)), Ok(()));
    // Alone the annotation fits exactly; with Flotilla's own it would not.
    let invalid = validate(&with_value_of(256 * 1024 - 1)).unwrap_err();
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

/// Cases the CRD's CEL rules must refuse too (on servers from 1.25): the cross-field
/// checks a plain schema cannot express.
const CEL_CASES: &[&str] = &[
    "min over max",
    "env value and valueFrom",
    "valueFrom with both refs",
    "valueFrom with no ref",
    "envFrom with both",
    "duplicate port number",
    "duplicate target port",
    "exposed without ports",
    "replicas outside autoscaling range",
    "probe port unknown",
    "probe with two actions",
    "depends on itself",
    "allowFrom without selector",
    "disruption both",
    "disruption neither",
    "image with spaces",
    "http exposure without ports",
    "host and hostPrefix",
    "exposed path on unknown port",
    "metrics on an unknown port",
];

#[test]
fn cel_rules_agree_with_the_operator() {
    let valid = microservice(VALID);
    if let Err(errors) = kube::core::cel::validate_cel(&valid) {
        panic!("the CEL rules refuse a valid spec: {errors:?}");
    }
    let mut failures = Vec::new();
    for name in CEL_CASES {
        let (_, spec, _) = CASES
            .iter()
            .find(|(n, _, _)| n == name)
            .expect("a known case");
        if kube::core::cel::validate_cel(&microservice(spec)).is_ok() {
            failures.push(format!("{name}: CEL accepts what the operator refuses"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn class(spec: &str) -> flotilla::api::MicroserviceClass {
    let yaml = format!(
        "apiVersion: flotilla.dev/v1alpha1\nkind: MicroserviceClass\nmetadata: {{name: golden}}\nspec: {spec}"
    );
    serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("fixture does not parse: {e}\n{yaml}"))
}

/// Class specs both the MicroserviceClass CRD's CEL rules and the operator refuse.
const CLASS_CEL_CASES: &[(&str, &str)] = &[
    (
        "{defaults: {securityProfile: baseline}}",
        "spec.defaults.securityProfile",
    ),
    (
        "{defaults: {replicas: 5}, policy: {maxReplicas: 4}}",
        "spec.defaults.replicas",
    ),
    (
        "{defaults: {autoscaling: {minReplicas: 1, maxReplicas: 9}}, policy: {maxReplicas: 4}}",
        "spec.defaults.autoscaling.maxReplicas",
    ),
    (
        "{defaults: {replicas: 1, autoscaling: {minReplicas: 2, maxReplicas: 3}}}",
        "spec.defaults.replicas",
    ),
    (
        "{policy: {hostsWithinSuffix: true}}",
        "spec.policy.hostsWithinSuffix",
    ),
    (
        "{policy: {hostsWithinSuffix: true}, expose: {ingressClassName: nginx}}",
        "spec.policy.hostsWithinSuffix",
    ),
];

#[test]
fn class_cel_rules_agree_with_the_operator() {
    let valid = class(
        "{default: true, defaults: {replicas: 2, autoscaling: {minReplicas: 2, maxReplicas: 4}, securityProfile: baseline}, policy: {maxReplicas: 4, allowBaselineSecurity: true, hostsWithinSuffix: true}, expose: {hostSuffix: apps.example.com}}",
    );
    kube::core::cel::validate_cel(&valid)
        .unwrap_or_else(|e| panic!("the CEL rules refuse a valid class: {e:?}"));
    flotilla::class::validate::validate_class(&valid.spec).expect("the operator accepts it");
    let mut failures = Vec::new();
    for (spec, field) in CLASS_CEL_CASES {
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
