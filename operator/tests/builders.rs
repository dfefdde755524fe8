//! Builder behaviour from YAML fixtures: targeted assertions on the fields that matter,
//! on the serialized JSON that server-side apply would send.

use flotilla::api::{KubeVersion, Microservice, NetworkMode, SecurityProfile};
use flotilla::builders::{
    self, BuildContext, BuildError, Capabilities, Children, ConfigKind, ConfigRef,
};
use flotilla::class::ClassSettings;
use flotilla::graph;
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<Microservice> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    flotilla::render::parse(&[text]).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn one(name: &str) -> Microservice {
    let mut all = fixture(name);
    assert_eq!(all.len(), 1, "{name} holds one Microservice");
    all.remove(0)
}

fn ctx_in(ms: &Microservice, all: &[Microservice], caps: Capabilities) -> BuildContext {
    let resolution = graph::resolve(ms, all.iter(), &Default::default());
    assert!(resolution.missing.is_empty(), "{:?}", resolution.missing);
    BuildContext::new(caps, resolution, String::new(), Default::default())
}

fn build(ms: &Microservice, caps: Capabilities) -> Children {
    builders::build(ms, &ctx_in(ms, std::slice::from_ref(ms), caps.clone())).expect("builds")
}

/// The serialized documents, in apply order.
fn docs(children: &Children) -> Vec<Value> {
    children.documents().into_iter().cloned().collect()
}

fn deployment(children: &Children) -> Deployment {
    children
        .typed(&builders::deployment::KIND)
        .expect("a Deployment")
}

fn doc<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {docs:#?}"))
}

fn has_kind(docs: &[Value], kind: &str) -> bool {
    docs.iter().any(|d| d["kind"] == kind)
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn graph_children(name: &str) -> Vec<Value> {
    let all = fixture("graph.yaml");
    let ms = all
        .iter()
        .find(|m| m.metadata.name.as_deref() == Some(name))
        .expect(name);
    let caps = Capabilities::newest();
    let children = builders::build(ms, &ctx_in(ms, &all, caps.clone())).expect("builds");
    docs(&children)
}

fn v1_20() -> Capabilities {
    Capabilities::for_version(KubeVersion::new(1, 20))
}

#[test]
fn every_document_has_api_version_kind_metadata_and_no_status() {
    let ms = one("http-autoscaling.yaml");
    let docs = docs(&build(&ms, Capabilities::newest()));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "NetworkPolicy",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget"
        ]
    );
    for d in &docs {
        assert!(d["apiVersion"].is_string(), "{d}");
        assert_eq!(d["metadata"]["name"], "catalog");
        assert_eq!(d["metadata"]["namespace"], "shop");
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "flotilla"
        );
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/part-of"], "shop");
        assert!(d.get("status").is_none(), "{d}");
    }
}

#[test]
fn api_versions_follow_the_server() {
    let ms = one("http-autoscaling.yaml");
    let newest = docs(&build(&ms, Capabilities::newest()));
    assert_eq!(
        doc(&newest, "HorizontalPodAutoscaler")["apiVersion"],
        "autoscaling/v2"
    );
    assert_eq!(
        doc(&newest, "PodDisruptionBudget")["apiVersion"],
        "policy/v1"
    );
    let old = docs(&build(&ms, v1_20()));
    assert_eq!(
        doc(&old, "HorizontalPodAutoscaler")["apiVersion"],
        "autoscaling/v2beta2"
    );
    assert_eq!(
        doc(&old, "PodDisruptionBudget")["apiVersion"],
        "policy/v1beta1"
    );
    assert_eq!(doc(&old, "Deployment")["apiVersion"], "apps/v1");
    assert_eq!(
        doc(&old, "NetworkPolicy")["apiVersion"],
        "networking.k8s.io/v1"
    );
}

#[test]
fn autoscaler_alone_owns_the_replica_count() {
    let ms = one("http-autoscaling.yaml");
    assert_eq!(ms.spec.replicas, Some(3), "the fixture sets replicas too");
    let children = build(&ms, Capabilities::newest());
    assert_eq!(deployment(&children).spec.as_ref().unwrap().replicas, None);
    let json = serde_json::to_string(&deployment(&children)).unwrap();
    assert!(!json.contains("\"replicas\""), "{json}");
    let docs = docs(&children);
    assert!(doc(&docs, "Deployment")["spec"].get("replicas").is_none());

    let hpa = &doc(&docs, "HorizontalPodAutoscaler")["spec"];
    assert_eq!(
        hpa["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "catalog"})
    );
    assert_eq!(hpa["minReplicas"], 2);
    assert_eq!(hpa["maxReplicas"], 10);
    assert_eq!(
        hpa["metrics"],
        json!([
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 75}}}
        ])
    );
    assert_eq!(
        hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        300
    );

    // Without autoscaling the count is applied, defaulting to 1.
    let mut fixed = ms.clone();
    fixed.spec.autoscaling = None;
    let children = build(&fixed, Capabilities::newest());
    assert_eq!(deployment(&children).spec.unwrap().replicas, Some(3));
    assert!(children.get(&builders::autoscaler::KIND).is_none());
    let minimal = build(&one("minimal.yaml"), Capabilities::newest());
    assert_eq!(deployment(&minimal).spec.unwrap().replicas, Some(1));
}

#[test]
fn deployment_runs_the_container_as_specified() {
    let ms = one("http-autoscaling.yaml");
    let docs = docs(&build(&ms, Capabilities::newest()));
    let deployment = doc(&docs, "Deployment");
    let spec = &deployment["spec"];
    assert_eq!(
        spec["selector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "catalog", "app.kubernetes.io/instance": "catalog"})
    );
    assert_eq!(spec["revisionHistoryLimit"], 5);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "catalog");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry-creds"}]));
    assert_eq!(
        pod["topologySpreadConstraints"],
        json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "catalog", "app.kubernetes.io/instance": "catalog"}}
        }])
    );
    let c = container(deployment);
    assert_eq!(c["image"], "registry.example.com/shop/catalog:2.3.1");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["args"], json!(["--listen", ":8080"]));
    assert!(c.get("command").is_none());
    assert_eq!(
        c["ports"],
        json!([
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
        ])
    );
    // Given resources are used as they are, without defaults mixed in.
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}})
    );
    assert_eq!(
        c["envFrom"],
        json!([{"configMapRef": {"name": "catalog-config"}}, {"secretRef": {"name": "catalog-db", "optional": true}}])
    );
    assert_eq!(
        c["env"][1],
        json!({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "catalog-db", "key": "password"}}})
    );
    // http appProtocol: HTTP probes on the container port of the primary port.
    assert_eq!(
        c["readinessProbe"],
        json!({"httpGet": {"path": "/readyz", "port": 8080}})
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": 8080}})
    );
    assert!(c.get("startupProbe").is_none());
}

#[test]
fn restricted_security_defaults() {
    let ms = one("minimal.yaml");
    let docs = docs(&build(&ms, Capabilities::newest()));
    let deployment = doc(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"],
        json!({
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(pod["volumes"], json!([{"name": "tmp", "emptyDir": {}}]));
    let c = container(deployment);
    assert_eq!(
        c["securityContext"],
        json!({
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true, "runAsNonRoot": true
        })
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "tmp", "mountPath": "/tmp"}])
    );
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}})
    );
    // No ports: no Service, no probes; one replica: no spread, no budget.
    assert!(!has_kind(&docs, "Service"));
    assert!(!has_kind(&docs, "PodDisruptionBudget"));
    assert!(!has_kind(&docs, "HorizontalPodAutoscaler"));
    assert!(
        c.get("ports").is_none()
            && c.get("readinessProbe").is_none()
            && c.get("livenessProbe").is_none()
    );
    assert!(pod.get("topologySpreadConstraints").is_none());
    assert_eq!(
        doc(&docs, "ServiceAccount")["automountServiceAccountToken"],
        false
    );
}

#[test]
fn custom_security_and_writable_paths() {
    let ms = one("security.yaml");
    let docs = docs(&build(&ms, Capabilities::newest()));
    let deployment = doc(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 1000);
    assert_eq!(pod["securityContext"]["runAsGroup"], 2000);
    assert_eq!(pod["securityContext"]["fsGroup"], 2000);
    let c = container(deployment);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    // /tmp and the repeated /var/run/ are mounted once each.
    let paths: Vec<&str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/tmp", "/var/cache/nginx", "/var/run"]);
    let mount_names: Vec<&Value> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["name"])
        .collect();
    let volume_names: Vec<&Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["name"])
        .collect();
    assert_eq!(mount_names, volume_names);
    for v in pod["volumes"].as_array().unwrap() {
        assert_eq!(v["emptyDir"], json!({}));
    }
    // Explicit HTTP readiness on the primary port with its timings; liveness names the
    // https port and gets the default kind for it, TCP.
    assert_eq!(
        c["readinessProbe"],
        json!({
            "httpGet": {"path": "/status", "port": 8080, "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
            "initialDelaySeconds": 5, "timeoutSeconds": 2
        })
    );
    assert_eq!(c["livenessProbe"], json!({"tcpSocket": {"port": 8080}}));
}

#[test]
fn grpc_probes_fall_back_to_tcp_before_1_24() {
    let ms = one("grpc.yaml");
    let newest = docs(&build(&ms, Capabilities::newest()));
    let c = container(doc(&newest, "Deployment"));
    assert_eq!(c["readinessProbe"], json!({"grpc": {"port": 50051}}));
    assert_eq!(c["livenessProbe"], json!({"grpc": {"port": 50051}}));
    assert_eq!(
        c["startupProbe"],
        json!({"grpc": {"port": 50051, "service": "pricing.v1.Pricing"}, "periodSeconds": 2, "failureThreshold": 30})
    );

    let caps = v1_20();
    let old = docs(&build(&ms, caps.clone()));
    let c = container(doc(&old, "Deployment"));
    assert_eq!(c["readinessProbe"], json!({"tcpSocket": {"port": 50051}}));
    assert_eq!(c["livenessProbe"], json!({"tcpSocket": {"port": 50051}}));
    assert_eq!(
        c["startupProbe"],
        json!({"tcpSocket": {"port": 50051}, "periodSeconds": 2, "failureThreshold": 30})
    );
    assert!(
        !serde_json::to_string(&old).unwrap().contains("grpc\":{"),
        "no grpc probe on 1.20"
    );
}

#[test]
fn pre_stop_sleep_only_with_the_sleep_action() {
    let ms = one("grpc.yaml");
    let newest = docs(&build(&ms, Capabilities::newest()));
    let deployment = doc(&newest, "Deployment");
    assert_eq!(
        container(deployment)["lifecycle"],
        json!({"preStop": {"sleep": {"seconds": 5}}})
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        30
    );

    for version in [KubeVersion::new(1, 20), KubeVersion::new(1, 29)] {
        let caps = Capabilities::for_version(version);
        let old = docs(&build(&ms, caps.clone()));
        let deployment = doc(&old, "Deployment");
        assert!(
            container(deployment).get("lifecycle").is_none(),
            "{version:?}"
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            30
        );
    }
}

#[test]
fn pod_template_escape_hatch() {
    let ms = one("pod-template.yaml");
    let docs = docs(&build(&ms, Capabilities::newest()));
    let template = &doc(&docs, "Deployment")["spec"]["template"];
    let labels = &template["metadata"]["labels"];
    assert_eq!(labels["team"], "data");
    assert_eq!(
        labels["app.kubernetes.io/name"], "worker",
        "Flotilla's labels cannot be replaced"
    );
    assert_eq!(
        template["metadata"]["annotations"],
        json!({"prometheus.io/scrape": "true"})
    );
    let pod = &template["spec"];
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/arch": "arm64"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["key"],
        "pool"
    );
    assert_eq!(pod["priorityClassName"], "batch-low");
    // The given spread replaces the default one instead of adding to it.
    let spread = pod["topologySpreadConstraints"].as_array().unwrap();
    assert_eq!(spread.len(), 1);
    assert_eq!(spread[0]["topologyKey"], "topology.kubernetes.io/zone");
    let c = container(doc(&docs, "Deployment"));
    assert!(
        c.get("readinessProbe").is_none() && c.get("livenessProbe").is_none(),
        "probes.disabled"
    );
}

#[test]
fn config_hash_annotation_follows_the_context() {
    let ms = one("pod-template.yaml");
    let mut ctx = BuildContext::standalone(Capabilities::newest());
    let annotations = |ctx: &BuildContext| {
        deployment(&builders::build(&ms, ctx).unwrap())
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap_or_default()
    };
    assert!(!annotations(&ctx).contains_key(flotilla::api::labels::CONFIG_HASH_ANNOTATION));
    ctx.config_hash = "sha256:aaaa".to_string();
    let first = annotations(&ctx);
    assert_eq!(
        first[flotilla::api::labels::CONFIG_HASH_ANNOTATION],
        "sha256:aaaa"
    );
    assert_eq!(
        first["prometheus.io/scrape"], "true",
        "user annotations are kept"
    );
    ctx.config_hash = "sha256:bbbb".to_string();
    let second = annotations(&ctx);
    assert_eq!(
        second[flotilla::api::labels::CONFIG_HASH_ANNOTATION],
        "sha256:bbbb"
    );
    assert_ne!(first, second);
}

#[test]
fn config_refs_lists_each_object_once() {
    let ms = one("http-autoscaling.yaml");
    assert_eq!(
        builders::config_refs(&ms.spec),
        [
            ConfigRef {
                kind: ConfigKind::ConfigMap,
                name: "catalog-config".into(),
                optional: false
            },
            // Referenced optionally by envFrom but required by env: required.
            ConfigRef {
                kind: ConfigKind::Secret,
                name: "catalog-db".into(),
                optional: false
            },
        ]
    );
    assert!(builders::config_refs(&one("minimal.yaml").spec).is_empty());
}

#[test]
fn disruption_budget_rules() {
    let caps = Capabilities::newest();
    let explicit = docs(&build(&one("disruption.yaml"), caps.clone()));
    let pdb = &doc(&explicit, "PodDisruptionBudget")["spec"];
    assert_eq!(pdb["minAvailable"], "50%");
    assert!(pdb.get("maxUnavailable").is_none());
    assert_eq!(
        pdb["selector"]["matchLabels"]["app.kubernetes.io/name"],
        "ledger"
    );

    // Two or more replicas: maxUnavailable 1. Autoscaling counts its minimum.
    let four = docs(&build(&one("pod-template.yaml"), caps.clone()));
    assert_eq!(
        doc(&four, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
    let scaled = docs(&build(&one("http-autoscaling.yaml"), caps.clone()));
    assert_eq!(
        doc(&scaled, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
    let mut low = one("http-autoscaling.yaml");
    low.spec.autoscaling.as_mut().unwrap().min_replicas = 1;
    low.spec.replicas = None;
    assert!(
        build(&low, caps.clone())
            .get(&builders::disruption_budget::KIND)
            .is_none(),
        "min 1 under autoscaling: no budget"
    );
    assert!(
        build(&one("minimal.yaml"), caps.clone())
            .get(&builders::disruption_budget::KIND)
            .is_none()
    );

    let mut both = one("disruption.yaml");
    both.spec.disruption.as_mut().unwrap().max_unavailable =
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1));
    assert_eq!(
        builders::build(&both, &BuildContext::standalone(caps.clone())),
        Err(BuildError::InvalidDisruption)
    );
}

#[test]
fn service_ports_always_carry_the_protocol() {
    let caps = Capabilities::newest();
    let docs = docs(&build(&one("nodeport.yaml"), caps.clone()));
    let service = doc(&docs, "Service");
    assert_eq!(
        service["metadata"]["annotations"],
        json!({"example.com/exposed": "true"})
    );
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(
        service["spec"]["selector"],
        json!({"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": "gateway",
               "app.kubernetes.io/managed-by": "flotilla"})
    );
    assert_eq!(
        service["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "appProtocol": "http"},
            {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}
        ])
    );
    let ports = &container(doc(&docs, "Deployment"))["ports"];
    assert_eq!(
        ports[1],
        json!({"name": "dns", "containerPort": 5353, "protocol": "UDP"})
    );
    // Exposed outside the cluster: ingress from anywhere, on the container ports.
    assert_eq!(
        doc(&docs, "NetworkPolicy")["spec"]["ingress"],
        json!([{"ports": [{"port": 8080, "protocol": "TCP"}, {"port": 5353, "protocol": "UDP"}]}])
    );
    let cluster_ip = docs_of_cluster_ip_service();
    assert_eq!(doc(&cluster_ip, "Service")["spec"]["type"], "ClusterIP");
}

fn docs_of_cluster_ip_service() -> Vec<Value> {
    let caps = Capabilities::newest();
    docs(&build(&one("disruption.yaml"), caps.clone()))
}

/// Port 53 to the cluster's DNS pods only, by default kube-system's `k8s-app: kube-dns`.
const DNS_EGRESS: &str = r#"{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]}"#;

fn dns() -> Value {
    serde_json::from_str(DNS_EGRESS).unwrap()
}

/// The selector of calling Microservices' pods in one namespace, merged into one rule:
/// their instances, and Flotilla's managed-by.
fn callers(names: &[&str]) -> Value {
    json!({"matchLabels": {"app.kubernetes.io/managed-by": "flotilla"},
           "matchExpressions": [{"key": "app.kubernetes.io/instance", "operator": "In", "values": names}]})
}

/// The selector of a Microservice's pods: its name and instance, and Flotilla's
/// managed-by, so a namesake workload's pods are never selected.
fn pods(name: &str) -> Value {
    json!({"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name,
                           "app.kubernetes.io/managed-by": "flotilla"}})
}

fn namespace(name: &str) -> Value {
    json!({"matchLabels": {"kubernetes.io/metadata.name": name}})
}

#[test]
fn network_policy_from_the_three_service_graph() {
    // users: called by orders (no port named: its primary port only) and by storefront
    // from namespace web (admin port only), which users admits by its allowFrom (that
    // rule comes last). Container ports, not Service ports.
    let users = graph_children("users");
    let np = &doc(&users, "NetworkPolicy")["spec"];
    assert_eq!(np["podSelector"], pods("users"));
    assert_eq!(np["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["ingress"],
        json!([
            {"from": [{"podSelector": callers(&["orders"])}],
             "ports": [{"port": 8080, "protocol": "TCP"}]},
            {"from": [{"podSelector": callers(&["storefront"]), "namespaceSelector": namespace("web")}],
             "ports": [{"port": 9001, "protocol": "TCP"}]},
            {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "storefront"}},
                       "namespaceSelector": namespace("web")}],
             "ports": [{"port": 9001, "protocol": "TCP"}]}
        ])
    );
    assert_eq!(np["egress"], json!([dns()]), "users calls nobody: DNS only");

    let orders = graph_children("orders");
    let np = &doc(&orders, "NetworkPolicy")["spec"];
    assert_eq!(
        np["ingress"],
        json!([{"from": [{"podSelector": callers(&["storefront"]), "namespaceSelector": namespace("web")}],
                "ports": [{"port": 50051, "protocol": "TCP"}]},
               {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "storefront"}},
                          "namespaceSelector": namespace("web")}],
                "ports": [{"port": 50051, "protocol": "TCP"}]}])
    );
    assert_eq!(
        np["egress"],
        json!([dns(), {"to": [{"podSelector": pods("users")}], "ports": [{"port": 8080, "protocol": "TCP"}]}])
    );

    let storefront = graph_children("storefront");
    let np = &doc(&storefront, "NetworkPolicy")["spec"];
    assert_eq!(
        np["ingress"],
        json!([{"ports": [{"port": 3000, "protocol": "TCP"}]}]),
        "LoadBalancer: from anywhere, nobody depends on it"
    );
    assert_eq!(
        np["egress"],
        json!([
            dns(),
            {"to": [{"podSelector": pods("orders"), "namespaceSelector": namespace("shop")}],
             "ports": [{"port": 50051, "protocol": "TCP"}]},
            {"to": [{"podSelector": pods("users"), "namespaceSelector": namespace("shop")}],
             "ports": [{"port": 9001, "protocol": "TCP"}]},
            {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}, {"ipBlock": {"cidr": "2001:db8::/32"}}],
             "ports": [{"port": 443, "protocol": "TCP"}]}
        ])
    );
}

#[test]
fn network_policy_allow_from() {
    let caps = Capabilities::newest();
    let docs = docs(&build(&one("disruption.yaml"), caps.clone()));
    assert_eq!(
        doc(&docs, "NetworkPolicy")["spec"]["ingress"],
        json!([
            {"from": [{"namespaceSelector": namespace("monitoring")}], "ports": [{"port": 8080, "protocol": "TCP"}]},
            {"from": [{"podSelector": {"matchLabels": {"role": "auditor"}}}], "ports": [{"port": 8080, "protocol": "TCP"}]}
        ])
    );
    let mut bad = one("disruption.yaml");
    bad.spec.network.as_mut().unwrap().allow_from[0].ports = vec!["nope".into()];
    assert_eq!(
        builders::build(&bad, &BuildContext::standalone(caps.clone())),
        Err(BuildError::UnknownPort {
            field: "spec.network.allowFrom[0].ports[0]".into(),
            port: "nope".into()
        })
    );
}

#[test]
fn dependency_env_and_explicit_wins() {
    let storefront = graph_children("storefront");
    let env = &container(doc(&storefront, "Deployment"))["env"];
    assert_eq!(
        env,
        &json!([
            {"name": "USERS_URL", "value": "http://users.example.internal"},
            {"name": "ORDERS_ADDR", "value": "orders.shop.svc.cluster.local:9090"},
            {"name": "ORDERS_URL", "value": "grpc://orders.shop.svc.cluster.local:9090"},
            {"name": "USERS_ADDR", "value": "users.shop.svc.cluster.local:9000"}
        ])
    );
    let orders = graph_children("orders");
    assert_eq!(
        container(doc(&orders, "Deployment"))["env"],
        json!([
            {"name": "USERS_ADDR", "value": "users.shop.svc.cluster.local:80"},
            {"name": "USERS_URL", "value": "http://users.shop.svc.cluster.local:80"}
        ])
    );
}

#[test]
fn service_account_annotations() {
    let caps = Capabilities::newest();
    let docs = docs(&build(&one("disruption.yaml"), caps.clone()));
    let sa = doc(&docs, "ServiceAccount");
    assert_eq!(sa["apiVersion"], "v1");
    assert_eq!(sa["automountServiceAccountToken"], false);
    assert_eq!(
        sa["metadata"]["annotations"],
        json!({"iam.example.com/role": "ledger-writer"})
    );
}

#[test]
fn probe_on_an_undeclared_port_is_an_error_not_a_panic() {
    let mut ms = one("grpc.yaml");
    ms.spec
        .probes
        .as_mut()
        .unwrap()
        .startup
        .as_mut()
        .unwrap()
        .port = Some("metrics".into());
    assert_eq!(
        builders::build(&ms, &BuildContext::standalone(Capabilities::newest())),
        Err(BuildError::UnknownPort {
            field: "spec.probes.startup.port".into(),
            port: "metrics".into()
        })
    );
}

// --- MicroserviceClass settings: exposure, network mode, security profile -------------

const GATEWAY_V1: &str = "gateway.networking.k8s.io/v1";
const GATEWAY_V1BETA1: &str = "gateway.networking.k8s.io/v1beta1";

/// Class settings named `name` with `expose` given as the class's `spec.expose` JSON.
fn class(name: &str, expose: Value) -> ClassSettings {
    ClassSettings {
        name: Some(name.to_string()),
        network_mode: NetworkMode::Strict,
        expose: serde_json::from_value(expose).expect("a ClassExpose"),
        monitoring: Default::default(),
        dns: Default::default(),
        allow_from_namespaces: None,
    }
}

fn web_class() -> ClassSettings {
    class(
        "web",
        json!({
            "ingressClassName": "nginx",
            "hostSuffix": "apps.example.com",
            "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}
        }),
    )
}

fn gateway_class() -> ClassSettings {
    class(
        "gateway",
        json!({
            "hostSuffix": "apps.example.com",
            "gatewayRef": {"name": "public", "namespace": "gateways", "sectionName": "https"},
            "annotations": {"example.com/team": "web"}
        }),
    )
}

fn with_class(ms: &Microservice, caps: Capabilities, class: ClassSettings) -> BuildContext {
    BuildContext {
        class,
        ..ctx_in(ms, std::slice::from_ref(ms), caps.clone())
    }
}

fn build_docs(ms: &Microservice, ctx: &BuildContext) -> Vec<Value> {
    let children = builders::build(ms, ctx).expect("builds");
    docs(&children)
}

fn with_http_route(api_version: &str) -> Capabilities {
    let version = api_version.rsplit('/').next().unwrap();
    Capabilities::newest().with_served(&builders::http_route::KIND, version)
}

fn kinds(docs: &[Value]) -> Vec<&str> {
    docs.iter().map(|d| d["kind"].as_str().unwrap()).collect()
}

#[test]
fn ingress_from_the_class_expose_settings() {
    let ms = one("exposed.yaml");
    let docs = build_docs(&ms, &with_class(&ms, Capabilities::newest(), web_class()));
    assert_eq!(
        kinds(&docs),
        [
            "ServiceAccount",
            "NetworkPolicy",
            "Deployment",
            "Service",
            "Ingress"
        ],
        "the Ingress comes last"
    );
    let ingress = doc(&docs, "Ingress");
    assert_eq!(ingress["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(ingress["metadata"]["name"], "storefront");
    assert_eq!(ingress["metadata"]["namespace"], "web");
    assert_eq!(
        ingress["metadata"]["labels"],
        json!({
            "app.kubernetes.io/name": "storefront", "app.kubernetes.io/instance": "storefront",
            "app.kubernetes.io/managed-by": "flotilla", "app.kubernetes.io/part-of": "shop"
        })
    );
    assert_eq!(
        ingress["metadata"]["annotations"],
        json!({"cert-manager.io/cluster-issuer": "letsencrypt"})
    );
    let backend = |port: &str| json!({"service": {"name": "storefront", "port": {"name": port}}});
    assert_eq!(
        ingress["spec"],
        json!({
            "ingressClassName": "nginx",
            "rules": [{
                "host": "shop.apps.example.com",
                "http": {"paths": [
                    {"path": "/api", "pathType": "Prefix", "backend": backend("http")},
                    {"path": "/admin", "pathType": "Exact", "backend": backend("admin")},
                    {"path": "/static", "pathType": "Prefix", "backend": backend("http")}
                ]}
            }]
        }),
        "no tls without spec.expose.http.tls"
    );
    assert!(!has_kind(&docs, "HTTPRoute"));
}

#[test]
fn ingress_default_host_and_tls() {
    let ms = one("exposed-tls.yaml");
    // A class with only a suffix: no ingressClassName, no annotations written.
    let suffix_only = class("plain", json!({"hostSuffix": "apps.example.com"}));
    let docs = build_docs(&ms, &with_class(&ms, Capabilities::newest(), suffix_only));
    let ingress = doc(&docs, "Ingress");
    assert!(
        ingress["metadata"].get("annotations").is_none(),
        "{ingress}"
    );
    assert_eq!(
        ingress["spec"],
        json!({
            "rules": [{
                "host": "users.shop.apps.example.com",
                "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "users", "port": {"name": "http"}}}
                }]}
            }],
            "tls": [{"hosts": ["users.shop.apps.example.com"], "secretName": "users-tls"}]
        })
    );

    // An explicit host needs no suffix, and no class at all.
    let mut explicit = ms.clone();
    explicit
        .spec
        .expose
        .as_mut()
        .unwrap()
        .http
        .as_mut()
        .unwrap()
        .host = Some("users.example.org".into());
    let docs = build_docs(&explicit, &BuildContext::standalone(Capabilities::newest()));
    let rule = &doc(&docs, "Ingress")["spec"]["rules"][0];
    assert_eq!(rule["host"], "users.example.org");
}

#[test]
fn not_exposed_means_no_ingress_and_no_route() {
    let ms = one("http-autoscaling.yaml");
    let ctx = with_class(&ms, with_http_route(GATEWAY_V1), gateway_class());
    let children = builders::build(&ms, &ctx).expect("builds");
    assert!(children.get(&builders::ingress::KIND).is_none());
    assert!(children.get(&builders::http_route::KIND).is_none());
    assert_eq!(builders::expose::external_url(&ms, &ctx), None);
}

#[test]
fn a_host_needing_a_suffix_names_the_field_and_the_class() {
    let prefixed = one("exposed.yaml");
    let no_class =
        builders::build(&prefixed, &BuildContext::standalone(Capabilities::newest())).unwrap_err();
    assert_eq!(
        no_class,
        BuildError::MissingHostSuffix {
            field: "spec.expose.http.hostPrefix".into(),
            class: None
        }
    );
    assert_eq!(
        no_class.to_string(),
        "spec.expose.http.hostPrefix: needs the class's expose.hostSuffix to complete the \
         host (no MicroserviceClass applies); or set spec.expose.http.host"
    );

    let default_host = one("exposed-tls.yaml");
    let ctx = with_class(
        &default_host,
        Capabilities::newest(),
        class("internal", json!({"ingressClassName": "nginx"})),
    );
    let err = builders::build(&default_host, &ctx).unwrap_err();
    assert_eq!(
        err,
        BuildError::MissingHostSuffix {
            field: "spec.expose.http".into(),
            class: Some("internal".into())
        }
    );
    assert!(
        err.to_string()
            .starts_with("spec.expose.http: needs the class's expose.hostSuffix"),
        "{err}"
    );
    assert!(
        err.to_string().contains("class `internal` has none"),
        "{err}"
    );
    assert_eq!(builders::expose::external_url(&default_host, &ctx), None);
}

#[test]
fn a_path_port_must_be_declared() {
    let mut ms = one("exposed.yaml");
    ms.spec
        .expose
        .as_mut()
        .unwrap()
        .http
        .as_mut()
        .unwrap()
        .paths[1]
        .port = Some("grpc".into());
    assert_eq!(
        builders::build(&ms, &with_class(&ms, Capabilities::newest(), web_class())),
        Err(BuildError::UnknownPort {
            field: "spec.expose.http.paths[1].port".into(),
            port: "grpc".into()
        })
    );
}

#[test]
fn http_route_when_the_class_names_a_gateway_and_the_kind_is_served() {
    let ms = one("exposed.yaml");
    let caps = with_http_route(GATEWAY_V1);
    let children =
        builders::build(&ms, &with_class(&ms, caps.clone(), gateway_class())).expect("builds");
    assert!(
        children.get(&builders::ingress::KIND).is_none(),
        "never both"
    );
    let docs = docs(&children);
    assert_eq!(
        kinds(&docs),
        [
            "ServiceAccount",
            "NetworkPolicy",
            "Deployment",
            "Service",
            "HTTPRoute"
        ]
    );
    let route = doc(&docs, "HTTPRoute");
    assert_eq!(route["apiVersion"], GATEWAY_V1);
    assert_eq!(route["metadata"]["name"], "storefront");
    assert_eq!(route["metadata"]["namespace"], "web");
    assert_eq!(
        route["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "flotilla"
    );
    assert_eq!(
        route["metadata"]["annotations"],
        json!({"example.com/team": "web"})
    );
    // One rule per port: /api and /static share the http port's rule. Service port
    // numbers, not container ports.
    assert_eq!(
        route["spec"],
        json!({
            "parentRefs": [{
                "group": "gateway.networking.k8s.io", "kind": "Gateway",
                "name": "public", "namespace": "gateways", "sectionName": "https"
            }],
            "hostnames": ["shop.apps.example.com"],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}},
                             {"path": {"type": "PathPrefix", "value": "/static"}}],
                 "backendRefs": [{"name": "storefront", "port": 80}]},
                {"matches": [{"path": {"type": "Exact", "value": "/admin"}}],
                 "backendRefs": [{"name": "storefront", "port": 9000}]}
            ]
        })
    );
    assert!(route.get("status").is_none());

    // Older Gateway API installs serve v1beta1 only.
    let old = with_http_route(GATEWAY_V1BETA1);
    let docs = build_docs(&ms, &with_class(&ms, old, gateway_class()));
    assert_eq!(doc(&docs, "HTTPRoute")["apiVersion"], GATEWAY_V1BETA1);
    assert_eq!(
        builders::http_route::KIND.api_resource("v1beta1"),
        kube::api::ApiResource {
            group: "gateway.networking.k8s.io".into(),
            version: "v1beta1".into(),
            api_version: GATEWAY_V1BETA1.into(),
            kind: "HTTPRoute".into(),
            plural: "httproutes".into(),
        }
    );

    // No sectionName: all listeners, and the field is left out.
    let mut any_listener = gateway_class();
    any_listener
        .expose
        .gateway_ref
        .as_mut()
        .unwrap()
        .section_name = None;
    let docs = build_docs(&ms, &with_class(&ms, caps.clone(), any_listener));
    assert_eq!(
        doc(&docs, "HTTPRoute")["spec"]["parentRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "namespace": "gateways"}])
    );
}

#[test]
fn ingress_when_the_route_kind_is_not_served_even_with_a_gateway() {
    let ms = one("exposed.yaml");
    let caps = Capabilities::newest();
    assert!(!caps.serves(&builders::http_route::KIND));
    let ctx = with_class(&ms, caps.clone(), gateway_class());
    assert!(!builders::http_route::uses_gateway(&ctx));
    let children = builders::build(&ms, &ctx).expect("builds");
    assert!(children.get(&builders::http_route::KIND).is_none());
    let ingress: k8s_openapi::api::networking::v1::Ingress = children
        .typed(&builders::ingress::KIND)
        .expect("an Ingress instead");
    let rules = ingress.spec.unwrap().rules.unwrap();
    assert_eq!(rules[0].host.as_deref(), Some("shop.apps.example.com"));

    // Served, but the class names no Gateway: an Ingress too.
    let ctx = with_class(&ms, with_http_route(GATEWAY_V1), web_class());
    assert!(!builders::http_route::uses_gateway(&ctx));
    let docs = build_docs(&ms, &ctx);
    assert!(has_kind(&docs, "Ingress") && !has_kind(&docs, "HTTPRoute"));
}

#[test]
fn permissive_mode_has_no_network_policy() {
    let ms = one("exposed.yaml");
    let mut permissive = web_class();
    permissive.network_mode = NetworkMode::Permissive;
    let ctx = with_class(&ms, Capabilities::newest(), permissive);
    let children = builders::build(&ms, &ctx).expect("builds");
    assert!(children.get(&builders::network_policy::KIND).is_none());
    let docs = docs(&children);
    assert_eq!(
        kinds(&docs),
        ["ServiceAccount", "Deployment", "Service", "Ingress"]
    );
    // Strict (the default) keeps it.
    let strict = build(&fixture("graph.yaml").remove(0), Capabilities::newest());
    assert!(strict.get(&builders::network_policy::KIND).is_some());
}

#[test]
fn the_ingress_controller_is_let_in_on_the_exposed_ports_only() {
    let ms = one("exposed.yaml");
    let docs = build_docs(&ms, &with_class(&ms, Capabilities::newest(), web_class()));
    // Container ports of http (3000) and admin (9001); metrics (9090) is not routed.
    assert_eq!(
        doc(&docs, "NetworkPolicy")["spec"]["ingress"],
        json!([{
            "from": [{"namespaceSelector": namespace("ingress-nginx")}],
            "ports": [{"port": 3000, "protocol": "TCP"}, {"port": 9001, "protocol": "TCP"}]
        }])
    );

    let named = class(
        "traefik",
        json!({"hostSuffix": "apps.example.com", "controller": {"namespace": "traefik"}}),
    );
    let docs = build_docs(&ms, &with_class(&ms, Capabilities::newest(), named));
    assert_eq!(
        doc(&docs, "NetworkPolicy")["spec"]["ingress"][0]["from"],
        json!([{"namespaceSelector": namespace("traefik")}])
    );

    // A namespaceSelector wins over namespace; the podSelector narrows to the proxies.
    let selected = class(
        "edge",
        json!({
            "hostSuffix": "apps.example.com",
            "controller": {
                "namespace": "ignored",
                "namespaceSelector": {"matchLabels": {"role": "edge"}},
                "podSelector": {"matchLabels": {"app": "envoy"}}
            }
        }),
    );
    let tls = one("exposed-tls.yaml");
    let docs = build_docs(&tls, &with_class(&tls, Capabilities::newest(), selected));
    assert_eq!(
        doc(&docs, "NetworkPolicy")["spec"]["ingress"],
        json!([{
            "from": [{
                "namespaceSelector": {"matchLabels": {"role": "edge"}},
                "podSelector": {"matchLabels": {"app": "envoy"}}
            }],
            "ports": [{"port": 8080, "protocol": "TCP"}]
        }])
    );
}

#[test]
fn baseline_profile_leaves_user_and_capabilities_to_the_image() {
    let ms = one("baseline.yaml");
    let docs = build_docs(&ms, &BuildContext::standalone(Capabilities::newest()));
    let deployment = doc(&docs, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"],
        json!({"seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        container(deployment)["securityContext"],
        json!({"readOnlyRootFilesystem": false})
    );

    // IDs and a read-only root only when the spec asks for them.
    let mut pinned = ms.clone();
    let security = pinned.spec.security.as_mut().unwrap();
    security.run_as_user = Some(33);
    security.run_as_group = Some(33);
    security.read_only_root_filesystem = Some(true);
    let docs = build_docs(&pinned, &BuildContext::standalone(Capabilities::newest()));
    let deployment = doc(&docs, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"],
        json!({"runAsUser": 33, "runAsGroup": 33, "fsGroup": 33, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        container(deployment)["securityContext"],
        json!({"readOnlyRootFilesystem": true})
    );

    // The same spec under restricted: the hardened defaults.
    let mut restricted = ms.clone();
    restricted.spec.security.as_mut().unwrap().profile = Some(SecurityProfile::Restricted);
    let docs = build_docs(
        &restricted,
        &BuildContext::standalone(Capabilities::newest()),
    );
    let deployment = doc(&docs, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"],
        json!({
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(
        container(deployment)["securityContext"],
        json!({
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true, "runAsNonRoot": true
        })
    );
}

#[test]
fn a_spread_constraint_without_selector_selects_the_own_pods() {
    let ms = one("baseline.yaml");
    let docs = build_docs(&ms, &BuildContext::standalone(Capabilities::newest()));
    assert_eq!(
        doc(&docs, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"],
        json!([
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
             "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "legacy-cms",
                                               "app.kubernetes.io/instance": "legacy-cms"}}},
            {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname",
             "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"tier": "web"}}}
        ]),
        "a given labelSelector is kept as it is"
    );
}

#[test]
fn external_url_scheme_host_and_path() {
    let exposed = one("exposed.yaml");
    let ctx = with_class(&exposed, Capabilities::newest(), web_class());
    assert_eq!(
        builders::expose::external_url(&exposed, &ctx).as_deref(),
        Some("http://shop.apps.example.com/api"),
        "the first routed path"
    );
    let tls = one("exposed-tls.yaml");
    let ctx = with_class(&tls, Capabilities::newest(), web_class());
    assert_eq!(
        builders::expose::external_url(&tls, &ctx).as_deref(),
        Some("https://users.shop.apps.example.com/")
    );
    assert_eq!(
        builders::expose::external_host(&tls, &ctx.class),
        Ok(Some("users.shop.apps.example.com".to_string()))
    );
    // A wildcard host is routed, but names no single URL.
    let mut wildcard = tls.clone();
    wildcard
        .spec
        .expose
        .as_mut()
        .unwrap()
        .http
        .as_mut()
        .unwrap()
        .host = Some("*.users.example.org".into());
    assert_eq!(builders::expose::external_url(&wildcard, &ctx), None);
    let docs = build_docs(&wildcard, &ctx);
    assert_eq!(
        doc(&docs, "Ingress")["spec"]["rules"][0]["host"],
        "*.users.example.org"
    );
}

// --- spec.metrics: the ServiceMonitor where its kind is served -------------------------

fn metrics_ms(metrics: &str) -> Microservice {
    let yaml = format!(
        "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {{name: users, namespace: shop}}\nspec:\n  image: users:1\n  ports: [{{name: http, port: 80, targetPort: 8080}}, {{name: admin, port: 9090}}]\n{metrics}"
    );
    flotilla::render::parse(&[yaml]).unwrap().remove(0)
}

fn with_service_monitors() -> Capabilities {
    Capabilities::newest().with_served(&builders::service_monitor::KIND, "v1")
}

#[test]
fn a_service_monitor_scrapes_the_metrics_port_where_the_kind_is_served() {
    let ms = metrics_ms("  metrics: {port: admin, path: /prom, interval: 30s}\n");
    let docs = docs(&build(&ms, with_service_monitors()));
    let monitor = doc(&docs, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        monitor["spec"],
        json!({
            "selector": {"matchLabels": {
                "app.kubernetes.io/instance": "users",
                "app.kubernetes.io/managed-by": "flotilla",
                "app.kubernetes.io/name": "users"}},
            "endpoints": [{"port": "admin", "path": "/prom", "interval": "30s", "scheme": "http"}]
        })
    );
    // It selects the Service by labels the Service carries, and names one of its ports.
    let service = doc(&docs, "Service");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][key], value, "{key}");
    }
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "admin")
    );
    assert_eq!(
        docs.last().unwrap()["kind"],
        "ServiceMonitor",
        "applied last"
    );
}

#[test]
fn no_service_monitor_without_the_kind_or_the_metrics() {
    let ms = metrics_ms("  metrics: {}\n");
    let without_kind = docs(&build(&ms, Capabilities::newest()));
    assert!(!has_kind(&without_kind, "ServiceMonitor"));
    // The NetworkPolicy still lets the scraper in on the primary port.
    let policy = doc(&without_kind, "NetworkPolicy");
    assert!(
        policy["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|rule| rule["ports"] == json!([{"port": 8080, "protocol": "TCP"}])
                && rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    == "monitoring")
    );
    for metrics in ["", "  metrics: {disabled: true}\n"] {
        let docs = docs(&build(&metrics_ms(metrics), with_service_monitors()));
        assert!(!has_kind(&docs, "ServiceMonitor"), "{metrics}");
    }
}

#[test]
fn the_class_labels_service_monitors_for_its_prometheus() {
    let ms = metrics_ms("  metrics: {}\n");
    let mut class = class("observed", json!({}));
    class.monitoring = serde_json::from_value(json!({
        "serviceMonitorLabels": {"release": "kube-prometheus", "app.kubernetes.io/managed-by": "someone"}
    }))
    .unwrap();
    let ctx = with_class(&ms, with_service_monitors(), class);
    let children = builders::build(&ms, &ctx).unwrap();
    let monitor = &children
        .get(&builders::service_monitor::KIND)
        .unwrap()
        .object;
    assert_eq!(monitor["metadata"]["labels"]["release"], "kube-prometheus");
    assert_eq!(
        monitor["metadata"]["labels"]["app.kubernetes.io/managed-by"], "flotilla",
        "Flotilla's own labels are never replaced"
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"], "http",
        "the primary port"
    );
}
