//! `flotilla render` end to end on text input.

use flotilla::api::KubeVersion;
use flotilla::render::{RenderError, render};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kinds(yaml: &str) -> Vec<String> {
    yaml.split("\n---\n")
        .flat_map(|doc| {
            doc.lines()
                .filter(|l| l.starts_with("kind: "))
                .map(|l| l[6..].to_string())
        })
        .collect()
}

#[test]
fn renders_every_child_of_a_realistic_microservice() {
    let out = render(&[fixture("http-autoscaling.yaml")], KubeVersion::NEWEST).unwrap();
    print!("{out}");
    assert_eq!(
        kinds(&out),
        [
            "ServiceAccount",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "NetworkPolicy"
        ]
    );
    assert!(out.starts_with("---\n"));
    assert!(out.contains("apiVersion: autoscaling/v2\n"));
    assert!(!out.contains("status:"), "{out}");
    assert!(!out.contains("null"), "{out}");
}

#[test]
fn kube_version_picks_api_versions_and_probe_kinds() {
    let out = render(
        &[fixture("http-autoscaling.yaml"), fixture("grpc.yaml")],
        KubeVersion::new(1, 20),
    )
    .unwrap();
    assert!(out.contains("apiVersion: autoscaling/v2beta2\n"));
    assert!(out.contains("apiVersion: policy/v1beta1\n"));
    assert!(!out.contains("grpc:\n"), "no grpc probes on 1.20");
    assert!(!out.contains("sleep:"), "no sleep action on 1.20");
}

#[test]
fn microservices_in_the_input_see_each_other_and_the_rest_is_ignored() {
    let config_map =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  whatever: 1\n";
    let out = render(
        &[config_map.to_string(), fixture("graph.yaml")],
        KubeVersion::NEWEST,
    )
    .unwrap();
    assert_eq!(
        kinds(&out).iter().filter(|k| *k == "NetworkPolicy").count(),
        3
    );
    assert!(!out.contains("kind: ConfigMap"));
    assert!(out.contains("value: grpc://orders.shop.svc.cluster.local:9090"));
    assert!(!out.contains("left out"), "{out}");

    // Alone, storefront's dependencies are missing: reported, and left out of env.
    let storefront = fixture("graph.yaml")
        .split("\n---\n")
        .nth(2)
        .unwrap()
        .to_string();
    let out = render(&[storefront], KubeVersion::NEWEST).unwrap();
    assert!(out.contains("# Microservice web/storefront: dependency shop/orders left out: Microservice shop/orders not found"));
    assert!(!out.contains("ORDERS_ADDR"));
}

#[test]
fn namespace_defaults_to_default() {
    let text = "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata:\n  name: users\nspec:\n  image: example/users:1\n---\n";
    let out = render(&[text.to_string()], KubeVersion::NEWEST).unwrap();
    assert!(out.contains("namespace: default\n"));
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let text = "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata:\n  name: users\nspec:\n  image: example/users:1\n  ports:\n    - name: http\n      port: 80\n      tagetPort: 8080\n";
    let err = render(&[text.to_string()], KubeVersion::NEWEST).unwrap_err();
    assert!(matches!(err, RenderError::UnknownField { .. }));
    assert_eq!(
        err.to_string(),
        "Microservice default/users: spec.ports[0].tagetPort: unknown field"
    );
    // Fields at their default value are not unknown just because they serialize away.
    let text = "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata:\n  name: users\nspec:\n  image: example/users:1\n  paused: false\n  env: []\n";
    render(&[text.to_string()], KubeVersion::NEWEST).unwrap();
}

#[test]
fn duplicates_and_broken_yaml_are_errors() {
    let err = render(
        &[fixture("minimal.yaml"), fixture("minimal.yaml")],
        KubeVersion::NEWEST,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Microservice demo/hello: defined more than once in the input"
    );
    let err = render(&["a: [".to_string()], KubeVersion::NEWEST).unwrap_err();
    assert!(
        matches!(
            err,
            RenderError::Parse {
                input: 1,
                document: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_spec_names_the_object_and_the_field() {
    let text = "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata:\n  name: users\nspec:\n  image: example/users:1\n  autoscaling:\n    minReplicas: 5\n    maxReplicas: 2\n";
    let err = render(&[text.to_string()], KubeVersion::NEWEST).unwrap_err();
    assert!(matches!(err, RenderError::Invalid { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("Microservice default/users: spec.autoscaling.minReplicas: "),
        "{err}"
    );
}
