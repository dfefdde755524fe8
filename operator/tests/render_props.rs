//! Properties: no spec makes the builders panic; every spec the operator's validation
//! accepts builds; and every child built from an accepted spec passes the API server's
//! rules for names, labels and annotations. Specs are schema-shaped but deliberately
//! include cross-field mistakes (unknown port names, min > max, duplicate ports) that
//! only validation catches, and names, keys and values the API server would refuse.

use flotilla::api::*;
use flotilla::builders::{self, BuildContext, Capabilities};
use flotilla::graph;
use flotilla::validate::names;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

const NAMES: &[&str] = &["users", "orders", "storefront", "order-history", "a"];
const NAMESPACES: &[&str] = &["shop", "web"];
const PORT_NAMES: &[&str] = &["http", "grpc", "admin", "metrics", "nope"];
/// Port names the schema's pattern lets through but a container port cannot take.
const BAD_PORT_NAMES: &[&str] = &["80", "a--b", "1-2"];
const HEADER_NAMES: &[&str] = &["X-Token", "Accept", "x-1"];
/// Header names the API server refuses, the first two although they are RFC 7230 tokens.
const BAD_HEADER_NAMES: &[&str] = &["X_Token", "X.Token", "X Token", ""];
/// A config hash as the controller writes it (12 bytes in hex).
const CONFIG_HASH: &str = "0123456789abcdef01234567";

/// Microservice names: mostly the ones the graph links, sometimes one the CRD once
/// accepted but a child cannot take (a dot, uppercase, a leading digit, too long for a
/// label value), sometimes anything.
fn ms_name() -> BoxedStrategy<String> {
    let refused = vec![
        "my.app".to_string(),
        "1users".to_string(),
        "Users".to_string(),
        "users-".to_string(),
        "a_b".to_string(),
        "a".repeat(64),
        format!("{}.{}", "a".repeat(60), "b".repeat(60)),
    ];
    prop_oneof![
        24 => prop::sample::select(NAMES).prop_map(str::to_string),
        2 => prop::sample::select(refused),
        1 => "[a-z0-9.-]{1,70}",
    ]
    .boxed()
}

fn label_key() -> BoxedStrategy<String> {
    let accepted = vec![
        "team".to_string(),
        "Tier".to_string(),
        "example.com/team".to_string(),
        "app.kubernetes.io/component".to_string(),
        // Flotilla's own label wins over it.
        "app.kubernetes.io/name".to_string(),
        "a".repeat(63),
    ];
    let refused = vec![
        // Fine as an annotation key: the server lowercases those first.
        "Example.com/team".to_string(),
        "a/b/c".to_string(),
        "/x".to_string(),
        "x/".to_string(),
        "-x".to_string(),
        "ex_ample.com/x".to_string(),
        String::new(),
        "a".repeat(64),
    ];
    prop_oneof![
        30 => prop::sample::select(accepted),
        1 => prop::sample::select(refused),
        1 => "[a-zA-Z0-9._/-]{0,16}",
    ]
    .boxed()
}

fn label_value() -> BoxedStrategy<String> {
    let accepted = vec![
        String::new(),
        "a".to_string(),
        "A_b.c-1".to_string(),
        "v".repeat(63),
    ];
    let refused = vec![
        "a b".to_string(),
        "-x".to_string(),
        "x/".to_string(),
        "v".repeat(64),
    ];
    prop_oneof![
        30 => prop::sample::select(accepted),
        1 => prop::sample::select(refused),
        1 => "[a-zA-Z0-9._ /-]{0,16}",
    ]
    .boxed()
}

fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(label_key(), label_value(), 0..3)
}

/// Annotations, now and then large enough to reach the API server's size limit.
fn annotation_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let limit = names::ANNOTATIONS_SIZE_MAX;
    let value = prop_oneof![
        40 => "[ -~]{0,12}",
        1 => prop::sample::select(vec![limit - 200, limit - 60, limit])
            .prop_map(|length| "v".repeat(length)),
    ];
    prop::collection::btree_map(label_key(), value, 0..3)
}

fn part_of() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::sample::select(vec!["shop", "Shop_2", "a.b-c"]).prop_map(str::to_string),
        1 => prop::sample::select(vec!["", "-shop", "a b"]).prop_map(str::to_string),
        1 => "[a-zA-Z0-9._ -]{0,70}",
    ]
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop::option::of(s).boxed()
}

fn port() -> impl Strategy<Value = Port> {
    (
        prop_oneof![
            24 => prop::sample::select(PORT_NAMES),
            1 => prop::sample::select(BAD_PORT_NAMES),
        ],
        prop_oneof![1..=65535i32, Just(80), Just(8080)],
        opt(prop_oneof![1..=65535i32, Just(8080)]),
        opt(prop::sample::select(vec![
            Protocol::TCP,
            Protocol::UDP,
            Protocol::SCTP,
        ])),
        opt(prop::sample::select(vec![
            "http", "https", "grpc", "h2c", "tcp", "redis",
        ])),
    )
        .prop_map(|(name, port, target_port, protocol, app_protocol)| Port {
            name: name.to_string(),
            port,
            target_port,
            protocol,
            app_protocol: app_protocol.map(str::to_string),
        })
}

fn probe() -> impl Strategy<Value = Probe> {
    (
        opt(prop::sample::select(PORT_NAMES)),
        0..5u8,
        opt(0..100i32),
        opt(1..100i32),
        opt(prop::sample::select(vec!["/healthz", "/ready/z"])),
        prop::collection::vec(
            prop_oneof![
                9 => prop::sample::select(HEADER_NAMES),
                1 => prop::sample::select(BAD_HEADER_NAMES),
            ],
            0..2,
        ),
    )
        .prop_map(|(port, kind, delay, period, path, headers)| Probe {
            port: port.map(str::to_string),
            http: (kind == 1 || kind == 4).then(|| HttpProbe {
                path: path.map(str::to_string),
                headers: headers
                    .into_iter()
                    .map(|name| HttpHeader {
                        name: name.to_string(),
                        value: "v".to_string(),
                    })
                    .collect(),
            }),
            grpc: (kind == 2 || kind == 4).then(GrpcProbe::default),
            tcp: (kind == 3).then(TcpProbe::default),
            initial_delay_seconds: delay,
            period_seconds: period,
            ..Probe::default()
        })
}

fn selector() -> impl Strategy<Value = Option<LabelSelector>> {
    opt(
        prop::sample::select(vec!["team", "role"]).prop_map(|key| LabelSelector {
            match_labels: Some(BTreeMap::from([(key.to_string(), "x".to_string())])),
            match_expressions: None,
        }),
    )
}

fn network() -> impl Strategy<Value = Network> {
    (
        prop::collection::vec(
            (
                selector(),
                selector(),
                prop::collection::vec(prop::sample::select(PORT_NAMES), 0..2),
            ),
            0..3,
        ),
        prop::collection::vec(
            (
                prop::collection::vec(
                    prop::sample::select(vec!["10.0.0.0/8", "2001:db8::/32"]),
                    1..3,
                ),
                prop::collection::vec((1..=65535i32, opt(Just(Protocol::UDP))), 0..2),
            ),
            0..2,
        ),
    )
        .prop_map(|(allow, egress)| Network {
            allow_from: allow
                .into_iter()
                .map(|(namespace_selector, pod_selector, ports)| AllowFrom {
                    namespace_selector,
                    pod_selector,
                    ports: ports.into_iter().map(str::to_string).collect(),
                })
                .collect(),
            egress: egress
                .into_iter()
                .map(|(cidrs, ports)| EgressRule {
                    cidrs: cidrs.into_iter().map(|c| Cidr(c.to_string())).collect(),
                    ports: ports
                        .into_iter()
                        .map(|(port, protocol)| EgressPort { port, protocol })
                        .collect(),
                })
                .collect(),
        })
}

fn security() -> impl Strategy<Value = Security> {
    (
        opt(any::<bool>()),
        opt(prop_oneof![1..=2147483647i64, Just(1000)]),
        opt(0..=2147483647i64),
        prop::collection::vec(
            prop::sample::select(vec![
                "/tmp",
                "/data",
                "/data/",
                "/var/cache/nginx",
                "/ÜBER",
                "/a_b",
                "/a-b",
            ]),
            0..5,
        ),
    )
        .prop_map(
            |(read_only_root_filesystem, run_as_user, run_as_group, paths)| Security {
                profile: None,
                read_only_root_filesystem,
                run_as_user,
                run_as_group,
                writable_paths: paths
                    .into_iter()
                    .map(|p| WritablePath(p.to_string()))
                    .collect(),
            },
        )
}

fn int_or_string() -> impl Strategy<Value = IntOrString> {
    prop_oneof![
        (0..5i32).prop_map(IntOrString::Int),
        Just(IntOrString::String("50%".into()))
    ]
}

fn spec() -> impl Strategy<Value = MicroserviceSpec> {
    let head = (
        prop_oneof![1 => Just(Vec::new()), 9 => prop::collection::vec(port(), 1..4)],
        prop_oneof![3 => Just(None), 1 => (0..=6i32).prop_map(Some)],
        // Mostly min <= max; the occasional inversion exercises the invalid path.
        opt((
            1..=10i32,
            prop_oneof![9 => 0..=10i32, 1 => -3..0i32],
            opt(1..=200i32),
            opt(1..=200i32),
        )),
        opt((any::<bool>(), opt(probe()), opt(probe()), opt(probe()))),
        prop::collection::vec(
            (
                prop::sample::select(NAMES),
                opt(prop::sample::select(NAMESPACES)),
                opt(prop::sample::select(PORT_NAMES)),
            ),
            0..4,
        ),
    );
    let tail = (
        opt(network()),
        opt(prop_oneof![
            4 => int_or_string().prop_map(|v| (Some(v), None)),
            4 => int_or_string().prop_map(|v| (None, Some(v))),
            1 => (opt(int_or_string()), opt(int_or_string())),
        ]),
        opt(security()),
        opt(prop_oneof![
            3 => Just(ServiceType::ClusterIP),
            1 => Just(ServiceType::NodePort),
            1 => Just(ServiceType::LoadBalancer),
        ]),
        prop::collection::vec(
            prop_oneof![
                19 => prop::sample::select(vec!["LOG_LEVEL", "USERS_URL", "ORDERS_ADDR", "my.env-name"]),
                1 => prop::sample::select(vec!["1BAD", "..X", "A=B"]),
            ],
            0..3,
        ),
    );
    let metadata = (
        opt(part_of()),
        opt((label_map(), annotation_map())),
        annotation_map(),
        opt(annotation_map()),
    );
    (head, tail, metadata).prop_map(
        |(
            (ports, replicas, autoscaling, probes, depends_on),
            (network, disruption, security, service_type, env),
            (part_of, pod_metadata, service_annotations, account_annotations),
        )| {
            // Mostly unique names and numbers, as the schema and CEL demand.
            let mut ports: Vec<Port> = ports;
            let mut seen = std::collections::BTreeSet::new();
            ports.retain(|p| seen.insert(p.name.clone()));
            let mut seen = std::collections::BTreeSet::new();
            ports.retain(|p| seen.insert(p.port) && seen.insert(p.target_port.unwrap_or(p.port)));
            let mut env = env;
            env.dedup();
            MicroserviceSpec {
                image: "registry.example.com/app:1".to_string(),
                ports,
                replicas,
                autoscaling: autoscaling.map(|(min, max, cpu, memory)| Autoscaling {
                    min_replicas: min,
                    max_replicas: min + max,
                    target_cpu_utilization_percentage: cpu,
                    target_memory_utilization_percentage: memory,
                    behavior: None,
                }),
                probes: probes.map(|(disabled, readiness, liveness, startup)| Probes {
                    disabled,
                    readiness,
                    liveness,
                    startup,
                }),
                depends_on: depends_on
                    .into_iter()
                    .map(|(name, namespace, port)| Dependency {
                        name: name.to_string(),
                        namespace: namespace.map(str::to_string),
                        port: port.map(str::to_string),
                        wait_for_release: None,
                    })
                    .collect(),
                network,
                disruption: disruption.map(|(min_available, max_unavailable)| Disruption {
                    min_available,
                    max_unavailable,
                }),
                security,
                service: service_type.map(|type_| ServiceSettings {
                    type_: Some(type_),
                    annotations: service_annotations,
                }),
                service_account: account_annotations
                    .map(|annotations| ServiceAccountSettings { annotations }),
                pod_template: pod_metadata.map(|(labels, annotations)| PodTemplate {
                    labels,
                    annotations,
                    ..PodTemplate::default()
                }),
                part_of,
                env: env
                    .into_iter()
                    .map(|name| EnvVar {
                        name: name.to_string(),
                        value: Some("v".to_string()),
                        value_from: None,
                    })
                    .collect(),
                ..MicroserviceSpec::default()
            }
        },
    )
}

fn microservices() -> impl Strategy<Value = Vec<Microservice>> {
    prop::collection::vec((ms_name(), prop::sample::select(NAMESPACES), spec()), 1..4).prop_map(
        |items| {
            items
                .into_iter()
                .map(|(name, namespace, spec)| {
                    let mut ms = Microservice::new(&name, spec);
                    ms.metadata.namespace = Some(namespace.to_string());
                    ms
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn build_never_panics_and_valid_specs_build(all in microservices(), newest in any::<bool>()) {
        let caps = if newest { Capabilities::newest() } else { Capabilities::for_version(KubeVersion::new(1, 20)) };
        for ms in &all {
            let resolution = graph::resolve(ms, all.iter(), &Default::default());
            let ctx = BuildContext::new(caps.clone(), resolution, "h".to_string(), Default::default());
            let built = builders::build(ms, &ctx);
            if flotilla::validate::validate(ms).is_ok() {
                let children = built.map_err(|e| TestCaseError::fail(format!("valid spec failed to build: {e}\n{:#?}", ms.spec)))?;
                let docs = children.documents();
                prop_assert!(docs.iter().all(|d| d["apiVersion"].is_string() && d["kind"].is_string()));
                let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
                prop_assert_eq!(deployment["spec"].get("replicas").is_none(), ms.spec.autoscaling.is_some());
            }
        }
    }
}

/// Every way `doc`, a child as it would be applied, breaks the API server's rules for
/// names, labels and annotations, found by the rules themselves rather than by
/// comparing with what the builders meant to write.
fn api_server_problems(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let mut problems = Vec::new();
    let mut check = |what: String, outcome: Result<(), String>| {
        if let Err(reason) = outcome {
            problems.push(format!("{kind} {what}: {reason}"));
        }
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    check(format!("name `{name}`"), names::dns1123_subdomain(name));
    if kind == "Service" {
        check(format!("name `{name}`"), names::dns1035_label(name));
        for port in doc["spec"]["ports"].as_array().into_iter().flatten() {
            let port_name = port["name"].as_str().unwrap_or_default();
            check(
                format!("port `{port_name}`"),
                names::dns1123_label(port_name),
            );
        }
        for problem in names::labels(&string_map(&doc["spec"]["selector"])) {
            check("spec.selector".to_string(), Err(problem));
        }
    }
    if kind == "Deployment" {
        let containers = doc["spec"]["template"]["spec"]["containers"].as_array();
        for container in containers.into_iter().flatten() {
            for port in container["ports"].as_array().into_iter().flatten() {
                let port_name = port["name"].as_str().unwrap_or_default();
                check(
                    format!("container port `{port_name}`"),
                    names::port_name(port_name),
                );
            }
            for var in container["env"].as_array().into_iter().flatten() {
                let var_name = var["name"].as_str().unwrap_or_default();
                check(format!("env `{var_name}`"), names::env_var_name(var_name));
            }
            for source in container["envFrom"].as_array().into_iter().flatten() {
                if let Some(prefix) = source["prefix"].as_str() {
                    check(
                        format!("envFrom prefix `{prefix}`"),
                        names::env_var_name(prefix),
                    );
                }
            }
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                let headers = container[probe]["httpGet"]["httpHeaders"].as_array();
                for header in headers.into_iter().flatten() {
                    let header_name = header["name"].as_str().unwrap_or_default();
                    check(
                        format!("{probe} header `{header_name}`"),
                        names::http_header_name(header_name),
                    );
                }
            }
        }
    }
    let mut maps = Vec::new();
    collect_metadata_maps(doc, &mut maps);
    for (key, map) in maps {
        let found = if key == "annotations" {
            names::annotations(&map)
        } else {
            names::labels(&map)
        };
        for problem in found {
            check(key.to_string(), Err(problem));
        }
    }
    problems
}

/// Every label map (`labels`, `matchLabels`, `nodeSelector`) and annotation map anywhere
/// in `value`: the metadata of the object and of its pod template, and its selectors.
fn collect_metadata_maps(value: &Value, found: &mut Vec<(&'static str, BTreeMap<String, String>)>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let known = ["labels", "matchLabels", "nodeSelector", "annotations"];
                match known.iter().find(|k| *k == key) {
                    Some(key) => found.push((key, string_map(child))),
                    None => collect_metadata_maps(child, found),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_metadata_maps(item, found)),
        _ => {}
    }
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn children_of_valid_specs_pass_the_api_servers_rules(all in microservices(), newest in any::<bool>()) {
        let caps = if newest { Capabilities::newest() } else { Capabilities::for_version(KubeVersion::new(1, 20)) };
        for ms in all.iter().filter(|ms| flotilla::validate::validate(ms).is_ok()) {
            let resolution = graph::resolve(ms, all.iter(), &Default::default());
            let ctx = BuildContext::new(caps.clone(), resolution, CONFIG_HASH.to_string(), Default::default());
            let children = builders::build(ms, &ctx)
                .map_err(|e| TestCaseError::fail(format!("valid spec failed to build: {e}")))?;
            for doc in children.documents() {
                let problems = api_server_problems(doc);
                prop_assert!(problems.is_empty(), "{} would refuse:\n{}\n{:#?}", doc["kind"], problems.join("\n"), ms);
            }
        }
    }
}
