//! Property: no spec makes the builders panic, and every spec the operator's validation
//! accepts builds. Specs are schema-shaped but deliberately include cross-field mistakes
//! (unknown port names, min > max, duplicate ports) that only validation catches.

use flotilla::api::*;
use flotilla::builders::{self, BuildContext, Capabilities};
use flotilla::graph;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use std::collections::BTreeMap;

const NAMES: &[&str] = &["users", "orders", "storefront", "order-history", "a"];
const NAMESPACES: &[&str] = &["shop", "web"];
const PORT_NAMES: &[&str] = &["http", "grpc", "admin", "metrics", "nope"];

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop::option::of(s).boxed()
}

fn port() -> impl Strategy<Value = Port> {
    (
        prop::sample::select(PORT_NAMES),
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
    )
        .prop_map(|(port, kind, delay, period, path)| Probe {
            port: port.map(str::to_string),
            http: (kind == 1 || kind == 4).then(|| HttpProbe {
                path: path.map(str::to_string),
                headers: vec![],
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
            prop::sample::select(vec!["LOG_LEVEL", "USERS_URL", "ORDERS_ADDR"]),
            0..3,
        ),
    );
    (head, tail).prop_map(
        |(
            (ports, replicas, autoscaling, probes, depends_on),
            (network, disruption, security, service_type, env),
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
                    annotations: BTreeMap::new(),
                }),
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
    prop::collection::vec(
        (
            prop::sample::select(NAMES),
            prop::sample::select(NAMESPACES),
            spec(),
        ),
        1..4,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .map(|(name, namespace, spec)| {
                let mut ms = Microservice::new(name, spec);
                ms.metadata.namespace = Some(namespace.to_string());
                ms
            })
            .collect()
    })
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
