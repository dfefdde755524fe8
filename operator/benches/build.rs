//! How long the pure parts of a reconcile take: building one realistic Microservice
//! with five dependencies and five dependents, and resolving the graph among 1,000.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flotilla::api::*;
use flotilla::builders::{self, BuildContext, Capabilities};
use flotilla::graph;
use flotilla::plan::{Inputs, plan};

fn port(name: &str, port: i32, target: i32, app_protocol: &str) -> Port {
    Port {
        name: name.to_string(),
        port,
        target_port: Some(target),
        protocol: None,
        app_protocol: Some(app_protocol.to_string()),
    }
}

fn microservice(namespace: &str, name: &str, depends_on: Vec<Dependency>) -> Microservice {
    let mut ms = Microservice::new(
        name,
        MicroserviceSpec {
            image: format!("registry.example.com/{namespace}/{name}:1.0.0"),
            ports: vec![
                port("http", 80, 8080, "http"),
                port("grpc", 9090, 50051, "grpc"),
            ],
            autoscaling: Some(Autoscaling {
                min_replicas: 2,
                max_replicas: 10,
                ..Autoscaling::default()
            }),
            env: vec![EnvVar {
                name: "LOG_LEVEL".into(),
                value: Some("info".into()),
                value_from: None,
            }],
            security: Some(Security {
                writable_paths: vec![WritablePath("/var/cache".into())],
                ..Security::default()
            }),
            depends_on,
            ..MicroserviceSpec::default()
        },
    );
    ms.metadata.namespace = Some(namespace.to_string());
    ms
}

fn dep(name: &str, port: Option<&str>) -> Dependency {
    Dependency {
        name: name.to_string(),
        namespace: None,
        port: port.map(str::to_string),
        wait_for_release: None,
    }
}

/// A plan's inputs with no class, ConfigMap or namespace to look up.
fn without_classes<'a>(caps: &'a Capabilities, neighbours: &'a [&'a Microservice]) -> Inputs<'a> {
    Inputs {
        capabilities: caps,
        classes: &[],
        microservices: neighbours,
        config: None,
        namespace_labels: None,
        install: Default::default(),
    }
}

fn bench_build(c: &mut Criterion) {
    // "hub" calls five services and is called by five others.
    let mut all: Vec<Microservice> = (0..5)
        .map(|i| microservice("shop", &format!("backend-{i}"), vec![]))
        .collect();
    let hub = microservice(
        "shop",
        "hub",
        (0..5)
            .map(|i| dep(&format!("backend-{i}"), (i % 2 == 0).then_some("grpc")))
            .collect(),
    );
    all.push(hub.clone());
    all.extend(
        (0..5).map(|i| microservice("shop", &format!("frontend-{i}"), vec![dep("hub", None)])),
    );
    let resolution = graph::resolve(&hub, all.iter(), &Default::default());
    assert_eq!(
        (resolution.dependencies.len(), resolution.dependents.len()),
        (5, 5)
    );
    let caps = Capabilities::newest();
    let ctx = BuildContext::new(
        caps.clone(),
        resolution,
        "sha256:0123456789abcdef".into(),
        Default::default(),
    );
    c.bench_function("build hub (5 dependencies, 5 dependents)", |b| {
        b.iter(|| builders::build(black_box(&hub), black_box(&ctx)).expect("builds"))
    });
    // The whole pure pipeline a reconcile runs: validate, class, graph, build.
    let neighbours: Vec<&Microservice> = all.iter().collect();
    let inputs = without_classes(&caps, &neighbours);
    assert!(plan(&hub, &inputs).outcome.is_ok());
    c.bench_function("plan hub (validate, class, graph, build)", |b| {
        b.iter(|| plan(black_box(&hub), black_box(&inputs)))
    });
}

fn bench_resolve(c: &mut Criterion) {
    // 1,000 Microservices in 10 namespaces, each calling the next three in its namespace.
    let all: Vec<Microservice> = (0..1000)
        .map(|i| {
            let namespace = format!("team-{}", i % 10);
            let deps = (1..=3)
                .map(|d| dep(&format!("svc-{}", (i + 10 * d) % 1000), None))
                .collect();
            microservice(&namespace, &format!("svc-{i}"), deps)
        })
        .collect();
    let target = &all[500];
    let resolution = graph::resolve(target, all.iter(), &Default::default());
    assert_eq!(
        (resolution.dependencies.len(), resolution.dependents.len()),
        (3, 3)
    );
    c.bench_function("resolve among 1,000 Microservices", |b| {
        b.iter(|| {
            graph::resolve(
                black_box(target),
                black_box(&all).iter(),
                &Default::default(),
            )
        })
    });
}

fn bench_class(c: &mut Criterion) {
    // Applying a class runs on every reconcile: pick among 50 classes, merge the
    // defaults, validate the merged spec, check the policy.
    let classes: Vec<flotilla::api::MicroserviceClass> = (0..50)
        .map(|i| {
            let spec = serde_saphyr::from_str(&format!(
                "{{default: {}, defaults: {{replicas: 2, resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}, podLabels: {{team: t{i}}}}}, policy: {{allowedImageRegistries: [registry.example.com/], maxReplicas: 10, requireResourceRequests: true}}}}",
                i == 0
            ))
            .expect("a class");
            flotilla::api::MicroserviceClass::new(&format!("class-{i}"), spec)
        })
        .collect();
    let ms = microservice("team-0", "svc-0", Vec::new());
    flotilla::validate::validate(&ms).expect("valid");
    flotilla::class::resolve(&ms, &Default::default(), &classes).expect("resolves");
    c.bench_function("apply the default class among 50", |b| {
        b.iter(|| {
            flotilla::class::resolve(black_box(&ms), &Default::default(), black_box(&classes))
        })
    });
}

/// `count` Microservices in 10 namespaces, each calling the next two in its namespace.
fn fleet(count: usize) -> Vec<Microservice> {
    (0..count)
        .map(|i| {
            let namespace = format!("team-{}", i % 10);
            let deps = (1..=2)
                .map(|d| dep(&format!("svc-{}", (i + 10 * d) % count), None))
                .collect();
            microservice(&namespace, &format!("svc-{i}"), deps)
        })
        .collect()
}

fn bench_at_scale(c: &mut Criterion) {
    for count in [1_000, 10_000] {
        let all = fleet(count);
        // What a watch event costs the indexes with `count` Microservices indexed: must
        // not grow with the count.
        let indexes = flotilla::controller::Indexes::default();
        for ms in &all {
            indexes.update(ms);
        }
        let edited = &all[count / 2];
        c.bench_function(&format!("index update among {count} Microservices"), |b| {
            b.iter(|| indexes.update(black_box(edited)))
        });
        // A reconcile plans against its graph neighbours only: the same cost at any count.
        let neighbours: Vec<&Microservice> = all
            .iter()
            .filter(|other| {
                graph::dependency_keys(edited).contains(&graph::ObjectKey::of(other))
                    || graph::dependency_keys(other).contains(&graph::ObjectKey::of(edited))
            })
            .collect();
        let caps = Capabilities::newest();
        let inputs = without_classes(&caps, &neighbours);
        c.bench_function(&format!("plan one among {count} Microservices"), |b| {
            b.iter(|| plan(black_box(edited), black_box(&inputs)))
        });
    }
    // `flotilla render` of a whole fleet, as the benchmark beside kubectl uses it.
    let yaml: Vec<String> = fleet(1_000)
        .iter()
        .map(|ms| flotilla::yaml::to_string(ms).expect("yaml"))
        .collect();
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.bench_function("render 1,000 Microservices", |b| {
        b.iter(|| {
            flotilla::render::render(black_box(&yaml), flotilla::api::KubeVersion::new(1, 20))
                .expect("renders")
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_build,
    bench_resolve,
    bench_class,
    bench_at_scale
);
criterion_main!(benches);
