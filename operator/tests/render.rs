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

/// The rendered objects, parsed.
fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).unwrap())
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
            "NetworkPolicy",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget"
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
    assert!(
        matches!(
            err,
            RenderError::Refused {
                source: flotilla::class::Refusal::InvalidSpec(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("Microservice default/users: InvalidSpec: spec.autoscaling.minReplicas: "),
        "{err}"
    );
}

const CLASS: &str = "apiVersion: flotilla.dev/v1alpha1
kind: MicroserviceClass
metadata: {name: golden}
spec:
  default: true
  defaults:
    replicas: 3
    resources: {requests: {cpu: 100m, memory: 96Mi}}
    podLabels: {team: shop}
  policy:
    allowedImageRegistries: [registry.example.com/]
    requireResourceRequests: true
  expose:
    ingressClassName: nginx
    hostSuffix: apps.example.com
";

fn service(extra: &str) -> String {
    format!(
        "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {{name: users, namespace: shop}}\nspec:\n  ports: [{{name: http, port: 80, appProtocol: http}}]\n{extra}"
    )
}

#[test]
fn the_default_class_applies_offline() {
    let out = render(
        &[
            CLASS.to_string(),
            service("  image: registry.example.com/users:1\n  expose: {http: {}}\n"),
        ],
        KubeVersion::NEWEST,
    )
    .unwrap();
    let docs = documents(&out);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["team"],
        "shop"
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["resources"]["requests"]["memory"], "96Mi");
    let ingress = docs.iter().find(|d| d["kind"] == "Ingress").unwrap();
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "users.shop.apps.example.com"
    );
}

#[test]
fn a_policy_violation_fails_the_render_with_its_message() {
    let err = render(
        &[
            CLASS.to_string(),
            service("  image: docker.io/library/nginx:1\n"),
        ],
        KubeVersion::NEWEST,
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("Microservice shop/users: PolicyViolation: spec.image: "),
        "{message}"
    );
    assert!(
        message.contains("policy.allowedImageRegistries of MicroserviceClass golden"),
        "{message}"
    );
}

#[test]
fn a_named_class_must_be_in_the_input() {
    let err = render(
        &[service(
            "  image: registry.example.com/users:1\n  class: batch\n",
        )],
        KubeVersion::NEWEST,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("ClassNotFound: spec.class: MicroserviceClass batch does not exist"),
        "{err}"
    );
}

#[test]
fn a_dependency_missing_from_the_input_is_a_warning_naming_what_the_controller_would_do() {
    let text = "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {name: orders, namespace: shop}\nspec:\n  image: orders:1\n  ports: [{name: http, port: 80}]\n  dependsOn: [{name: payment-gateway}]\n";
    let rendered = flotilla::render::render_for(
        &[text.to_string()],
        &flotilla::builders::Capabilities::newest(),
    )
    .expect("renders: a missing dependency is not an error");
    assert_eq!(rendered.warnings.len(), 1, "{:?}", rendered.warnings);
    let warning = &rendered.warnings[0];
    for expected in [
        "Microservice shop/orders",
        "shop/payment-gateway",
        "PAYMENT_GATEWAY_URL",
        "PAYMENT_GATEWAY_ADDR",
        "hold the Deployment's rollout",
    ] {
        assert!(warning.contains(expected), "{expected} in {warning}");
    }
    // The YAML still holds every child, the Deployment without the variables.
    assert!(rendered.yaml.contains("kind: Deployment\n"));
    assert!(!rendered.yaml.contains("PAYMENT_GATEWAY_URL"));

    let complete = flotilla::render::render_for(
        &[fixture("graph.yaml")],
        &flotilla::builders::Capabilities::newest(),
    )
    .unwrap();
    assert!(complete.warnings.is_empty(), "{:?}", complete.warnings);
}

#[test]
fn backing_services_give_secret_references_and_egress_to_them_only() {
    let out = render(&[fixture("backing-services.yaml")], KubeVersion::NEWEST).unwrap();
    let docs = documents(&out);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {env:?}"))
    };
    // The type's usual keys, each optional, from CloudNativePG's Secret; never a value.
    assert_eq!(
        var("DB_URL")["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "orders-db-app", "key": "uri", "optional": true})
    );
    assert_eq!(
        var("DB_PASSWORD")["valueFrom"]["secretKeyRef"]["key"],
        "password"
    );
    // The class lists NATS's key: required by the pod unless the service is optional.
    assert_eq!(
        var("EVENTS_URL")["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "orders-events", "key": "url", "optional": true})
    );
    assert!(env.iter().all(|v| v.get("value").is_none()));
    let policy = docs.iter().find(|d| d["kind"] == "NetworkPolicy").unwrap();
    let egress = policy["spec"]["egress"].as_array().unwrap();
    let postgres = egress
        .iter()
        .find(|rule| rule["ports"][0]["port"] == 5432)
        .expect("egress to PostgreSQL");
    assert_eq!(
        postgres["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "databases"
    );
    assert_eq!(
        postgres["to"][0]["podSelector"]["matchLabels"]["cnpg.io/cluster"],
        "orders-db"
    );
    let nats = egress
        .iter()
        .find(|rule| rule["ports"][0]["port"] == 4222)
        .expect("egress to NATS");
    assert_eq!(nats["to"][0]["ipBlock"]["cidr"], "10.20.0.0/24");
}

#[test]
fn a_backing_service_the_class_does_not_provide_fails_the_render() {
    let input =
        fixture("backing-services.yaml").replace("{type: nats, optional: true}", "{type: redis}");
    let err = render(&[input], KubeVersion::NEWEST)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BackingServiceUnavailable: spec.backingServices.events: MicroserviceClass shop does not provide type redis (it provides: nats, postgres)"),
        "{err}"
    );
}

#[test]
fn a_broker_run_as_a_microservice_admits_exactly_its_users_on_its_client_port() {
    let out = render(&[fixture("broker.yaml")], KubeVersion::NEWEST).unwrap();
    let docs = documents(&out);
    let of = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
            .clone()
    };
    // The users get the broker's address as plain values, the scheme from its port.
    let env =
        of("Deployment", "orders")["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let var = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {env}"))["value"]
            .clone()
    };
    assert_eq!(var("EVENTS_URL"), "nats://nats.shop.svc.cluster.local:4222");
    assert_eq!(var("EVENTS_HOST"), "nats.shop.svc.cluster.local");
    assert_eq!(var("EVENTS_PORT"), "4222");
    // Each user's egress reaches the broker's pods on the client port only.
    for user in ["orders", "inventory"] {
        let egress = of("NetworkPolicy", user)["spec"]["egress"].clone();
        let to_broker = egress
            .as_array()
            .unwrap()
            .iter()
            .find(|rule| {
                rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "nats"
            })
            .unwrap_or_else(|| panic!("{user}'s egress to nats in {egress}"))
            .clone();
        assert_eq!(
            to_broker["ports"],
            serde_json::json!([{"port": 4222, "protocol": "TCP"}])
        );
    }
    // The broker admits exactly its users, on the client port; users is not one.
    let ingress = of("NetworkPolicy", "nats")["spec"]["ingress"].clone();
    let admitted: Vec<String> = ingress
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["from"].as_array().cloned().unwrap_or_default())
        .flat_map(|peer| {
            peer["podSelector"]["matchExpressions"][0]["values"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|name| name.as_str().map(str::to_string))
        .collect();
    assert_eq!(admitted, ["inventory", "orders"], "{ingress}");
    assert!(
        ingress
            .as_array()
            .unwrap()
            .iter()
            .all(|rule| rule["ports"] == serde_json::json!([{"port": 4222, "protocol": "TCP"}])),
        "{ingress}"
    );
}

#[test]
fn a_broker_that_does_not_exist_holds_its_users() {
    let input: String = fixture("broker.yaml")
        .split("\n---\n")
        .filter(|doc| !doc.contains("name: nats\n  namespace"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let rendered =
        flotilla::render::render_for(&[input], &flotilla::builders::Capabilities::newest())
            .unwrap();
    let held: Vec<&String> = rendered
        .warnings
        .iter()
        .filter(|w| w.contains("would hold the Deployment"))
        .collect();
    assert_eq!(
        held.len(),
        2,
        "orders and inventory: {:?}",
        rendered.warnings
    );
    assert!(
        held[0].contains("events (nats): Microservice shop/nats not found"),
        "{held:?}"
    );
}

#[test]
fn a_template_renders_the_object_it_provisions_and_binds_its_secret() {
    let out = render(&[fixture("provisioned.yaml")], KubeVersion::NEWEST).unwrap();
    let docs = documents(&out);
    let cluster = docs
        .iter()
        .find(|d| d["kind"] == "Cluster")
        .unwrap_or_else(|| panic!("the Cluster in {out}"));
    assert_eq!(cluster["apiVersion"], "postgresql.cnpg.io/v1");
    assert_eq!(cluster["metadata"]["name"], "orders-db");
    assert_eq!(cluster["metadata"]["namespace"], "shop");
    assert_eq!(
        cluster["spec"]["bootstrap"]["initdb"],
        serde_json::json!({"database": "db", "owner": "orders"})
    );
    assert!(
        out.contains("the Deployment waits for its Ready condition and Secret orders-db-app"),
        "{out}"
    );
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let db_url = env
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "DB_URL")
        .unwrap_or_else(|| panic!("DB_URL in {env}"))
        .clone();
    assert_eq!(
        db_url["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "orders-db-app", "key": "uri", "optional": true})
    );
}
