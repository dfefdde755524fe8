//! The `Microservice` custom resource (`flotilla.dev/v1alpha1`).
//!
//! Every doc comment here becomes `kubectl explain` text. Schema constraints and CEL rules
//! reject what they can at admission; `crate::validate` re-checks all of it in the operator
//! because servers older than 1.25 ignore CEL.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Toleration, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The desired state of one domain service. Flotilla keeps a ServiceAccount, Deployment,
/// Service, NetworkPolicy and, when asked for, a HorizontalPodAutoscaler and
/// PodDisruptionBudget in step with it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "flotilla.dev",
    version = "v1alpha1",
    kind = "Microservice",
    plural = "microservices",
    singular = "microservice",
    namespaced,
    shortname = "ms",
    shortname = "msvc",
    category = "flotilla",
    status = "MicroserviceStatus",
    derive = "PartialEq",
    derive = "Default",
    scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas","labelSelectorPath":".status.selector"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Replicas","type":"string","description":"ready/desired replicas","jsonPath":".status.replicaSummary"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".status.image"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"URL","type":"string","priority":1,"jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"External URL","type":"string","priority":1,"jsonPath":".status.externalUrl"}"#,
    printcolumn = r#"{"name":"Class","type":"string","priority":1,"jsonPath":".status.className"}"#,
    printcolumn = r#"{"name":"Rollout","type":"string","priority":1,"description":"phase of the release","jsonPath":".status.rollout.phase"}"#,
    printcolumn = r#"{"name":"Step","type":"integer","priority":1,"description":"canary step under way","jsonPath":".status.rollout.step"}"#,
    printcolumn = r#"{"name":"Weight","type":"integer","priority":1,"description":"percent of pods on the new template","jsonPath":".status.rollout.weight"}"#,
    printcolumn = r#"{"name":"Stable","type":"string","priority":1,"description":"image of the last fully ready template","jsonPath":".status.rollout.stableImage"}"#,
    printcolumn = r#"{"name":"Canary","type":"string","priority":1,"description":"image being released","jsonPath":".status.rollout.canaryImage"}"#,
    validation = Rule::new("!has(self.spec.dependsOn) || self.spec.dependsOn.all(d, d.name != self.metadata.name || has(d.__namespace__))").message("spec.dependsOn: a Microservice cannot depend on itself").field_path(".spec.dependsOn"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.backingServices) || self.backingServices.all(k, k.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(k) <= 32)").message("spec.backingServices: a name is a lowercase DNS label of at most 32 characters, starting with a letter").field_path(".backingServices"),
    validation = Rule::new("!has(self.publishes) || self.publishes.all(s, has(self.backingServices) && s.backingService in self.backingServices)").message("spec.publishes[].backingService must name one of spec.backingServices").field_path(".publishes"),
    validation = Rule::new("!has(self.consumes) || self.consumes.all(s, has(self.backingServices) && s.backingService in self.backingServices)").message("spec.consumes[].backingService must name one of spec.backingServices").field_path(".consumes"),
    validation = Rule::new("!has(self.probes) || !has(self.probes.readiness) || !has(self.probes.readiness.port) || (has(self.ports) && self.ports.exists(p, p.name == self.probes.readiness.port))").message("spec.probes.readiness.port must name one of spec.ports").field_path(".probes.readiness.port"),
    validation = Rule::new("!has(self.probes) || !has(self.probes.liveness) || !has(self.probes.liveness.port) || (has(self.ports) && self.ports.exists(p, p.name == self.probes.liveness.port))").message("spec.probes.liveness.port must name one of spec.ports").field_path(".probes.liveness.port"),
    validation = Rule::new("!has(self.probes) || !has(self.probes.startup) || !has(self.probes.startup.port) || (has(self.ports) && self.ports.exists(p, p.name == self.probes.startup.port))").message("spec.probes.startup.port must name one of spec.ports").field_path(".probes.startup.port"),
    validation = Rule::new("!has(self.autoscaling) || !has(self.replicas) || self.replicas == 1 || (self.replicas >= self.autoscaling.minReplicas && self.replicas <= self.autoscaling.maxReplicas)").message("spec.replicas is ignored under spec.autoscaling; leave it unset or inside minReplicas..maxReplicas").field_path(".replicas"),
    validation = Rule::new("!has(self.metrics) || !has(self.metrics.port) || (has(self.ports) && self.ports.exists(p, p.name == self.metrics.port))").message("spec.metrics.port must name one of spec.ports").field_path(".metrics.port"),
    validation = Rule::new("!has(self.service) || !has(self.service.type) || self.service.type == 'ClusterIP' || (has(self.ports) && size(self.ports) > 0)").message("spec.service.type other than ClusterIP needs at least one entry in spec.ports").field_path(".service.type"),
    validation = Rule::new("!has(self.expose) || !has(self.expose.http) || (has(self.ports) && size(self.ports) > 0)").message("spec.expose.http needs at least one entry in spec.ports").field_path(".expose.http"),
    validation = Rule::new("!has(self.expose) || !has(self.expose.http) || !has(self.expose.http.paths) || self.expose.http.paths.all(p, !has(p.port) || (has(self.ports) && self.ports.exists(q, q.name == p.port)))").message("spec.expose.http.paths[].port must name one of spec.ports").field_path(".expose.http.paths"),
)]
pub struct MicroserviceSpec {
    /// The MicroserviceClass whose defaults and policy apply; the class marked default
    /// when unset (and none when no class is). A class that does not exist stops the
    /// reconcile with `Ready=False` reason `ClassNotFound`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub class: Option<String>,

    /// Container image, e.g. `registry.example.com/shop/users:1.4.2`.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("!self.contains(' ')").message("spec.image must not contain spaces"))]
    pub image: String,

    /// When the kubelet pulls the image: Always, IfNotPresent or Never. Defaults to the
    /// Kubernetes default (Always for `:latest`, IfNotPresent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Names of Secrets in this namespace holding registry credentials for the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub image_pull_secrets: Vec<String>,

    /// Entrypoint override; the image's ENTRYPOINT when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,

    /// Arguments to the entrypoint; the image's CMD when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// Environment variables of the container. An entry here wins over a variable of the
    /// same name that Flotilla derives from `dependsOn` (`<NAME>_URL`, `<NAME>_ADDR`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,

    /// ConfigMaps and Secrets whose every key becomes an environment variable. Editing
    /// one of them rolls the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,

    /// CPU and memory requests and limits. When empty, Flotilla requests 50m CPU and
    /// 64Mi memory and limits memory to 256Mi (no CPU limit, to avoid throttling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,

    /// Named ports. The first is the primary port: default probes use it and
    /// `status.url` points at it. Each becomes a Service port and a container port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(
        merge_strategy = ListMerge::Map(vec!["name".into()]),
        validation = Rule::new("self.all(p, self.exists_one(q, q.port == p.port))").message("spec.ports: each port number must be unique"),
        validation = Rule::new("self.all(p, self.exists_one(q, (has(q.targetPort) ? q.targetPort : q.port) == (has(p.targetPort) ? p.targetPort : p.port)))").message("spec.ports: each targetPort must be unique"),
    )]
    pub ports: Vec<Port>,

    /// How the Service is exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSettings>,

    /// Number of pods when autoscaling is off. Defaults to 1. Set through
    /// `kubectl scale ms/NAME --replicas=N` as well (the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,

    /// Scale the pods with a HorizontalPodAutoscaler. When set, the autoscaler alone owns
    /// the replica count and `replicas` is not applied to the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,

    /// Health probes. Defaults, on the primary port: HTTP GET `/healthz` (liveness) and
    /// `/readyz` (readiness) when its appProtocol is http; gRPC health checking when grpc
    /// (TCP on clusters older than 1.24); TCP otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Probes>,

    /// Prometheus scraping of the pods' metrics endpoint. Where the cluster serves the
    /// Prometheus Operator's `monitoring.coreos.com/v1` ServiceMonitor, Flotilla creates
    /// one selecting this Microservice's Service; elsewhere nothing is created and the
    /// `MetricsScraped` condition says scraping is not configured. Either way the
    /// NetworkPolicy lets the class's monitoring namespace in on the metrics port only.
    /// The class's `defaults.metrics` fills the fields left unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,

    /// The Microservices this one calls. Each gives the container `<NAME>_URL` and
    /// `<NAME>_ADDR` variables and opens the NetworkPolicies between the two.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub depends_on: Vec<Dependency>,

    /// The backing services this one needs (a database, a cache, a message broker), by a
    /// name of its choosing: `db: {type: postgres}`. The MicroserviceClass in effect
    /// decides how each type is provided; each gives the container `<NAME>_URL` and the
    /// like from its connection Secret (never read by Flotilla), egress to it only under a
    /// strict network mode, and the `BackingServicesReady` condition. The Deployment is
    /// held until every required one exists.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backing_services: BTreeMap<String, super::BackingService>,

    /// The subjects this one publishes to, each on a broker of `spec.backingServices`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub publishes: Vec<super::MessageSubject>,

    /// The subjects this one consumes, each on a broker of `spec.backingServices`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub consumes: Vec<super::MessageSubject>,

    /// Reach the service from outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,

    /// Network access beyond what `dependsOn` gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,

    /// The PodDisruptionBudget. When unset, one with `maxUnavailable: 1` is created only
    /// when the minimum replica count is 2 or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,

    /// Settings of the ServiceAccount the pods run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSettings>,

    /// The container's security settings. The defaults satisfy the restricted Pod
    /// Security Standard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,

    /// Scheduling and metadata of the pods: the escape hatch for what the fields above do
    /// not cover. Nothing else from the raw PodSpec is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,

    /// The application this service is part of; becomes the `app.kubernetes.io/part-of`
    /// label on every child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 63),
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
    )]
    pub part_of: Option<String>,

    /// How changes to the pods are released: a rolling update (the default) or a canary
    /// in steps, health gates, and the automatic rollback of a failed release. Promote
    /// or abort a release with `flotilla rollout promote|abort NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<super::RolloutSpec>,

    /// Stop reconciling this Microservice: its children are left as they are until it is
    /// unpaused. The `Ready` condition says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// When the kubelet pulls the image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// An environment variable: a literal `value`, or `valueFrom` a ConfigMap or Secret key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.value) && has(self.valueFrom))").message("env: set either value or valueFrom, not both"))]
pub struct EnvVar {
    /// Variable name, e.g. `LOG_LEVEL`.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    )]
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Take the value from a key of a ConfigMap or Secret in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// Exactly one of `configMapKeyRef` or `secretKeyRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapKeyRef) != has(self.secretKeyRef)").message("valueFrom: set exactly one of configMapKeyRef or secretKeyRef"))]
pub struct EnvVarSource {
    /// A key of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,
    /// A key of a Secret. Flotilla never reads the value; it only watches the Secret's
    /// metadata to roll the pods when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeyRef>,
}

/// A key of a ConfigMap or Secret in the Microservice's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    /// Name of the ConfigMap or Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key whose value is used.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// Start the pod even when the object or key is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// Exactly one of `configMapRef` or `secretRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapRef) != has(self.secretRef)").message("envFrom: set exactly one of configMapRef or secretRef"))]
pub struct EnvFromSource {
    /// Every key of this ConfigMap becomes a variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ObjectRef>,
    /// Every key of this Secret becomes a variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ObjectRef>,
    /// Prefix added to every variable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A ConfigMap or Secret in the Microservice's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Name of the ConfigMap or Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Start the pod even when the object is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// CPU and memory, as Kubernetes quantities (`250m`, `1`, `128Mi`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAmounts {
    /// CPU, e.g. `250m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory, e.g. `128Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
}

/// Requests and limits of the container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// What the scheduler reserves. Autoscaling targets are percentages of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceAmounts>,
    /// The most the container may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceAmounts>,
}

/// A named port of the service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    /// Port name, an IANA service name (lowercase, at most 15 characters), e.g. `http`.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The port the Service exposes.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The port the container listens on. Defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<i32>,
    /// TCP (default), UDP or SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// The application protocol: `http`, `grpc`, `tcp`, … It picks the default probes and
    /// the scheme of the `<NAME>_URL` variables of dependents. Defaults to `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub app_protocol: Option<String>,
}

/// Transport protocol of a port.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Protocol {
    #[default]
    TCP,
    UDP,
    SCTP,
}

/// How the Service is exposed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSettings {
    /// ClusterIP (default), NodePort or LoadBalancer. NodePort and LoadBalancer open the
    /// NetworkPolicy to any source on the service's ports.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ServiceType>,
    /// Annotations of the Service, e.g. for a cloud load balancer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The Service type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    /// The name the Service API and the CRD use.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// HorizontalPodAutoscaler settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("spec.autoscaling.minReplicas must not exceed spec.autoscaling.maxReplicas").field_path(".minReplicas"))]
pub struct Autoscaling {
    /// The fewest pods, at least 1.
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// The most pods.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Average CPU use to aim for, in percent of the CPU request. Defaults to 80.
    #[serde(
        default,
        rename = "targetCPUUtilizationPercentage",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu_utilization_percentage: Option<i32>,
    /// Average memory use to aim for, in percent of the memory request. No memory target
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_memory_utilization_percentage: Option<i32>,
    /// Scale-up and scale-down behaviour, as in `autoscaling/v2`
    /// HorizontalPodAutoscalerBehavior (served as `v2beta2` on older clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior>,
}

/// The three probes and a switch to turn them all off.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probes {
    /// No probes at all, not even the defaults.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// When the pod receives traffic. Default: `/readyz` over HTTP, gRPC health or TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    /// When the container is restarted. Default: `/healthz` over HTTP, gRPC health or TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    /// Holds the other probes back while the container starts. None by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
}

/// One probe: at most one of `http`, `grpc` or `tcp` (the default follows the port's
/// appProtocol), on `port`, with the usual timings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.http) ? 1 : 0) + (has(self.grpc) ? 1 : 0) + (has(self.tcp) ? 1 : 0) <= 1").message("a probe takes at most one of http, grpc or tcp"))]
pub struct Probe {
    /// Name of the port (one of `spec.ports`) to probe. Defaults to the primary port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub port: Option<String>,
    /// HTTP GET; success is a status from 200 to 399.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// gRPC health checking protocol (Kubernetes 1.24 and newer; TCP on older clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcProbe>,
    /// A TCP connection that opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    /// Seconds after the container starts before the first probe. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between probes. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub period_seconds: Option<i32>,
    /// Seconds before a probe times out. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<i32>,
    /// Failures in a row that count as failed. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: Option<i32>,
    /// Successes in a row that count as success after a failure. Default 1; must be 1
    /// for liveness and startup probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub success_threshold: Option<i32>,
}

/// An HTTP GET probe.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    /// Path to GET, e.g. `/readyz`. Defaults to `/readyz` for readiness and `/healthz`
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
}

/// One HTTP header.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeader {
    /// Header name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A gRPC health checking probe.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrpcProbe {
    /// The service name sent in the HealthCheckRequest; empty asks for the whole server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A TCP probe; it has no settings beyond the port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TcpProbe {}

/// Where Prometheus scrapes the pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// No scraping at all, not even the class's `defaults.metrics`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Name of the port (one of `spec.ports`) serving the metrics. Defaults to the
    /// primary port. Only this port is opened to the monitoring namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub port: Option<String>,
    /// HTTP path of the metrics, e.g. `/metrics` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[^\s]*$"))]
    pub path: Option<String>,
    /// How often Prometheus scrapes, as a Prometheus duration such as `30s` or `1m`.
    /// Defaults to Prometheus's own scrape interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub interval: Option<String>,
}

impl Metrics {
    /// The path scraped when none is set.
    pub const DEFAULT_PATH: &'static str = "/metrics";
}

/// A Microservice this one calls.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// Name of the Microservice.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Its namespace; this Microservice's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// The name of the port of that Microservice this one calls; its primary port when
    /// unset. Only this port is opened in the NetworkPolicies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub port: Option<String>,
    /// Release after it: a release of this Microservice does not start while one of
    /// that Microservice is under way (or its spec changed and it has not started yet),
    /// so a caller edited together with its callee goes out against the callee's new
    /// version, not a canary that may still roll back. `Progressing` says
    /// `WaitingForDependency`, naming it. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_release: Option<bool>,
}

/// Extra network access.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// More sources allowed in, beyond the Microservices that depend on this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<AllowFrom>,
    /// More destinations allowed out, beyond DNS and the dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
}

/// Pods (and namespaces) allowed to connect.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.namespaceSelector) || has(self.podSelector)").message("network.allowFrom: set namespaceSelector, podSelector or both"))]
pub struct AllowFrom {
    /// Namespaces whose pods may connect; only this namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Pods that may connect; all pods of the selected namespaces when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Names of this Microservice's ports they may use; all ports when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
}

/// A destination outside the dependency graph.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressRule {
    /// Destination networks in CIDR notation, e.g. `10.0.0.0/8`.
    #[schemars(length(min = 1))]
    pub cidrs: Vec<Cidr>,
    /// Destination ports; all ports when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EgressPort>,
}

/// An IPv4 or IPv6 network in CIDR notation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct Cidr(
    #[schemars(
        length(max = 64),
        regex(pattern = r"^([0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}|[0-9a-fA-F:]+/[0-9]{1,3})$")
    )]
    pub String,
);

/// A destination port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressPort {
    /// Port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// TCP (default), UDP or SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

/// The PodDisruptionBudget: exactly one of `minAvailable` or `maxUnavailable`, each a
/// number of pods or a percentage such as `50%`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.minAvailable) != has(self.maxUnavailable)").message("spec.disruption: set exactly one of minAvailable or maxUnavailable"))]
pub struct Disruption {
    /// Pods that must stay available during voluntary disruptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    /// Pods that may be unavailable during voluntary disruptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
}

/// Settings of the ServiceAccount.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSettings {
    /// Annotations, e.g. a cloud IAM role binding.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Container security. Defaults satisfy the restricted Pod Security Standard.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    /// The Pod Security profile: `restricted` (the default: non-root, no capabilities,
    /// RuntimeDefault seccomp) or `baseline` (the image's user and the runtime's default
    /// capabilities), which the class must allow with `policy.allowBaselineSecurity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<SecurityProfile>,
    /// Mount the root filesystem read-only. Default true; `/tmp` and `writablePaths` are
    /// writable emptyDirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// User ID of the container process. Default 65532; 0 (root) is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub run_as_user: Option<i64>,
    /// Group ID of the container process and of its volumes. Default 65532.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2147483647))]
    pub run_as_group: Option<i64>,
    /// Absolute paths that must be writable, each mounted as its own emptyDir.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub writable_paths: Vec<WritablePath>,
}

/// A Pod Security Standard profile.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecurityProfile {
    /// Non-root, no privilege escalation, all capabilities dropped, RuntimeDefault
    /// seccomp, read-only root filesystem.
    #[default]
    Restricted,
    /// No privileged containers or host access, but the image's user (root included)
    /// and the runtime's default capabilities.
    Baseline,
}

/// How the service is reached from outside the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Expose {
    /// HTTP routing through the cluster's ingress controller (an Ingress) or a Gateway
    /// (an HTTPRoute), as the class's `expose` settings say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpExpose>,
}

/// HTTP exposure: which host and paths lead to which port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.host) && has(self.hostPrefix))").message("spec.expose.http: set host or hostPrefix, not both").field_path(".hostPrefix"))]
pub struct HttpExpose {
    /// The full host name, e.g. `shop.example.com`. Under a class, a wildcard
    /// (`*.shop.example.com`) needs its `policy.allowWildcardHosts`, and its
    /// `policy.hostsWithinSuffix` may hold the host to its `expose.hostSuffix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(
            pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
        )
    )]
    pub host: Option<String>,
    /// The first label of the host, completed by the class's `expose.hostSuffix`:
    /// `shop` becomes `shop.apps.example.com`. With neither `host` nor `hostPrefix`,
    /// the host is `<name>.<namespace>.<hostSuffix>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub host_prefix: Option<String>,
    /// Paths routed to the service; everything (`/`, prefix match, primary port) when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub paths: Vec<HttpPath>,
    /// Serve HTTPS with this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<HttpTls>,
}

/// A path routed to the service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpPath {
    /// The request path, e.g. `/api`.
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[^\s]*$"))]
    pub path: String,
    /// `Prefix` (default) or `Exact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_type: Option<PathType>,
    /// Name of the port (one of `spec.ports`) requests go to; the primary port when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub port: Option<String>,
}

/// How a request path is matched.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PathType {
    /// Matches the path and everything below it, segment by segment.
    #[default]
    Prefix,
    /// Matches the path only.
    Exact,
}

/// TLS of the exposed host.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpTls {
    /// A `kubernetes.io/tls` Secret in this namespace holding the certificate (for an
    /// Ingress). Behind a Gateway, the Gateway's listener holds the certificate and this
    /// is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
}

/// An absolute path in the container, other than `/`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct WritablePath(
    #[schemars(length(min = 2, max = 4096), regex(pattern = r"^/[^\x00]+$"))] pub String,
);

/// Pod scheduling and metadata.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    /// Extra pod labels. They cannot replace the `app.kubernetes.io/*` labels Flotilla sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Node labels the pods require.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node and pod affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Replaces the default spread across nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// What Flotilla observed, written by the operator only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MicroserviceStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded and DependenciesReady.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Pods of the Deployment.
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods running the current pod template.
    #[serde(default)]
    pub updated_replicas: i32,
    /// `ready/desired`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_summary: Option<String>,
    /// The pods' label selector, for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// In-cluster URL of the primary port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The URL from outside the cluster, when `spec.expose.http` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// The MicroserviceClass in effect (named in `spec.class`, or the default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// The image the pods run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Where the release of the pod template stands: strategy, canary step and weight,
    /// the stable and the new image, the last failed release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<super::RolloutStatus>,
}

impl MicroserviceStatus {
    /// The condition of this type, if reported.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// `Ready=True`.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }
}

impl Microservice {
    /// `Ready=True` in its status.
    pub fn is_ready(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(MicroserviceStatus::is_ready)
    }
}

impl MicroserviceSpec {
    /// `rollout.snapshotConfig`, true when unset.
    pub fn snapshots_config(&self) -> bool {
        self.rollout
            .as_ref()
            .and_then(|r| r.snapshot_config)
            .unwrap_or(true)
    }
}
