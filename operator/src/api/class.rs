//! The `MicroserviceClass` custom resource (`flotilla.dev/v1alpha1`, cluster-scoped).
//!
//! The platform team's golden path, on the pattern of StorageClass and IngressClass:
//! `defaults` fill what a Microservice leaves unset, `policy` holds guardrails no
//! Microservice can override, `expose` says how services are reached from outside.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::microservice::{
    Autoscaling, Cidr, Disruption, Metrics, Probes, Resources, SecurityProfile, ServiceType,
};

/// A class of Microservices: defaults, guardrails and exposure settings shared by every
/// Microservice that names it in `spec.class` (or, for the class marked `default`, by
/// every Microservice that names none).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "flotilla.dev",
    version = "v1alpha1",
    kind = "MicroserviceClass",
    plural = "microserviceclasses",
    singular = "microserviceclass",
    shortname = "msc",
    category = "flotilla",
    status = "MicroserviceClassStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"Default","type":"boolean","jsonPath":".spec.default"}"#,
    printcolumn = r#"{"name":"Network mode","type":"string","jsonPath":".status.networkMode"}"#,
    printcolumn = r#"{"name":"Services","type":"integer","description":"Microservices using this class","jsonPath":".status.services"}"#,
    printcolumn = r#"{"name":"Violations","type":"integer","priority":1,"description":"Microservices refused by its policy","jsonPath":".status.violations"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.defaults) || !has(self.defaults.securityProfile) || self.defaults.securityProfile != 'baseline' || (has(self.policy) && has(self.policy.allowBaselineSecurity) && self.policy.allowBaselineSecurity)").message("spec.defaults.securityProfile: baseline needs spec.policy.allowBaselineSecurity: true").field_path(".defaults.securityProfile"),
    validation = Rule::new("!has(self.defaults) || !has(self.defaults.replicas) || !has(self.policy) || !has(self.policy.maxReplicas) || self.defaults.replicas <= self.policy.maxReplicas").message("spec.defaults.replicas exceeds spec.policy.maxReplicas").field_path(".defaults.replicas"),
    validation = Rule::new("!has(self.defaults) || !has(self.defaults.autoscaling) || !has(self.policy) || !has(self.policy.maxReplicas) || self.defaults.autoscaling.maxReplicas <= self.policy.maxReplicas").message("spec.defaults.autoscaling.maxReplicas exceeds spec.policy.maxReplicas").field_path(".defaults.autoscaling.maxReplicas"),
    validation = Rule::new("!has(self.policy) || !has(self.policy.hostsWithinSuffix) || !self.policy.hostsWithinSuffix || (has(self.expose) && has(self.expose.hostSuffix))").message("spec.policy.hostsWithinSuffix needs spec.expose.hostSuffix").field_path(".policy.hostsWithinSuffix"),
    validation = Rule::new("!has(self.backingServices) || self.backingServices.all(k, k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(k) <= 63)").message("spec.backingServices: a type is a lowercase DNS label").field_path(".backingServices"),
    validation = Rule::new("!has(self.dns) || !has(self.dns.cidrsOnly) || !self.dns.cidrsOnly || (has(self.dns.cidrs) && size(self.dns.cidrs) > 0)").message("spec.dns.cidrsOnly needs at least one entry in spec.dns.cidrs").field_path(".dns.cidrsOnly"),
)]
pub struct MicroserviceClassSpec {
    /// This class applies to every Microservice that names no class in `spec.class`.
    /// At most one class may be the default; with two or more, none applies and both
    /// report it in their status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    // Defaulted by the API server too, so `kubectl get msc` shows false, not blank.
    #[schemars(extend("default" = false))]
    pub default: bool,

    /// Values for what a Microservice leaves unset. A Microservice's own fields win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<ClassDefaults>,

    /// The namespaces whose Microservices may use this class, by their labels (e.g.
    /// `matchLabels: {team: payments}`, or `kubernetes.io/metadata.name`). A Microservice
    /// of another namespace naming it gets `Ready=False` with reason `ClassNotAllowed`
    /// and nothing applied; a default class is the default only in the namespaces it
    /// selects, so each team can have its own. Every namespace when unset. An operator
    /// watching one namespace knows it by its name label only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Guardrails a Microservice cannot override. A Microservice that breaks one is
    /// `Ready=False` with reason `PolicyViolation`, and its running children are left as
    /// they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ClassPolicy>,

    /// How Microservices with `spec.expose.http` are reached from outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<ClassExpose>,

    /// How Microservices with `spec.metrics` are scraped: where Prometheus runs and how
    /// it finds their ServiceMonitors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<ClassMonitoring>,

    /// Where the cluster's DNS answers. Under a strict network mode the NetworkPolicy
    /// lets pods out on port 53 (UDP and TCP) to these destinations only. By default,
    /// the `k8s-app: kube-dns` pods (CoreDNS carries this label too) in `kube-system`,
    /// matched by its `kubernetes.io/metadata.name` label, which servers set from 1.21
    /// (label `kube-system` yourself on 1.20). With NodeLocal DNSCache, list its
    /// link-local address in `cidrs` (`169.254.20.10/32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<ClassDns>,

    /// The types of backing service this class provides, and how: `postgres: {secret:
    /// {name: "{microservice}-{service}-app", endpoint: {...}}}`. A Microservice may ask
    /// only for the types listed here (`spec.backingServices`); binding a class to
    /// namespaces (`namespaceSelector`) therefore decides which teams may use which.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backing_services: BTreeMap<String, super::BackingServiceProvisioner>,
}

/// The destinations of DNS lookups: pods, addresses, or both.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassDns {
    /// The namespace of the DNS pods, matched by its `kubernetes.io/metadata.name` label.
    /// `kube-system` when neither this nor `namespaceSelector` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// The namespaces of the DNS pods, by label; wins over `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The DNS pods; `k8s-app: kube-dns` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Addresses DNS answers on besides pods, e.g. NodeLocal DNSCache's
    /// `169.254.20.10/32` or a resolver outside the cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub cidrs: Vec<Cidr>,
    /// No DNS pods at all: only `cidrs` (a cluster whose resolver runs on the nodes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cidrs_only: bool,
}

/// Where the scraper runs, and the labels its ServiceMonitor selector wants.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassMonitoring {
    /// The namespace Prometheus runs in, let in on each Microservice's metrics port by
    /// `strict` NetworkPolicies. Defaults to `monitoring` (matched by its
    /// `kubernetes.io/metadata.name` label, which clusters older than 1.21 do not set on
    /// their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// The scraper's namespaces, by label; wins over `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The scraper's pods in those namespaces, e.g.
    /// `{matchLabels: {app.kubernetes.io/name: prometheus}}`; all of their pods when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Labels added to every ServiceMonitor, for a Prometheus whose
    /// `serviceMonitorSelector` wants them (kube-prometheus-stack selects
    /// `release: <its release name>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_monitor_labels: BTreeMap<String, String>,
}

/// Defaults for the fields a Microservice leaves unset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.autoscaling) || !has(self.replicas) || (self.replicas >= self.autoscaling.minReplicas && self.replicas <= self.autoscaling.maxReplicas)").message("spec.defaults.replicas must lie inside spec.defaults.autoscaling minReplicas..maxReplicas").field_path(".replicas"))]
pub struct ClassDefaults {
    /// Requests and limits, value by value: a Microservice setting only
    /// `resources.requests.cpu` still gets the class's memory request and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,

    /// Pod count for Microservices that set neither `replicas` nor `autoscaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,

    /// Autoscaling for Microservices that set neither `replicas` nor `autoscaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,

    /// Probes for Microservices that set no `probes`. Named ports must exist in every
    /// Microservice of the class; leave `port` unset to probe each one's primary port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Probes>,

    /// Spread of the pods, for Microservices that set no
    /// `podTemplate.topologySpreadConstraints`. A constraint without `labelSelector`
    /// selects the Microservice's own pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,

    /// Metrics scraping for every Microservice of the class: a Microservice's own
    /// `metrics` fields win field by field, and its `metrics.disabled` turns it off. A
    /// named `port` must exist in every Microservice; leave it unset to scrape each
    /// one's primary port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,

    /// The PodDisruptionBudget for Microservices that set no `disruption`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,

    /// The Pod Security profile the containers follow: `restricted` (the default) or
    /// `baseline`, which needs `policy.allowBaselineSecurity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_profile: Option<SecurityProfile>,

    /// Labels added to every pod. A Microservice's `podTemplate.labels` win key by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,

    /// Annotations added to every pod. A Microservice's `podTemplate.annotations` win
    /// key by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,

    /// How releases go, field by field: a Microservice's own `rollout.strategy`,
    /// `steps`, `gates`, `progressDeadlineSeconds` and `autoRollback` win each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<super::RolloutSpec>,
}

/// Guardrails. Unset rules allow everything.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassPolicy {
    /// Image reference prefixes allowed in `spec.image`, e.g. `registry.example.com/shop/`.
    /// A prefix matches whole path segments; images without a registry are read as
    /// Docker Hub's (`nginx` is `docker.io/library/nginx`). Any image when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allowed_image_registries: Vec<RegistryPrefix>,

    /// The most pods a Microservice may ask for: `replicas` and
    /// `autoscaling.maxReplicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: Option<i32>,

    /// Every Microservice must request CPU and memory (after the class's defaults are
    /// applied), so the scheduler and the autoscaler have something to work with.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_resource_requests: bool,

    /// The Service types Microservices may ask for in `spec.service.type` (ClusterIP when
    /// they leave it unset), e.g. `[ClusterIP]` to keep every service inside the
    /// cluster: NodePort and LoadBalancer open it to any source. Any type when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3), extend("x-kubernetes-list-type" = "set"))]
    pub allowed_service_types: Vec<ServiceType>,

    /// Whether an explicit `spec.expose.http.host` must lie within the class's
    /// `expose.hostSuffix`: be the suffix itself or end with `.` and the suffix, so no
    /// Microservice claims a host of another domain. Hosts made from `hostPrefix`, or
    /// the default host, always do. `true` needs `expose.hostSuffix`. When unset, held
    /// whenever the class sets a `hostSuffix`, so that a tenant's Microservice cannot
    /// claim a host of another domain unless the class says `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_within_suffix: Option<bool>,

    /// Whether `spec.expose.http.host` may be a wildcard such as `*.shop.example.com`,
    /// which claims every host of that subdomain at the ingress controller. Refused when
    /// unset.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_wildcard_hosts: bool,

    /// Whether Microservices may use the `podTemplate` escape hatch (node selectors,
    /// tolerations, affinity, extra labels...). Allowed when unset; `podTemplate` limits
    /// single fields of it instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_pod_template: Option<bool>,

    /// Limits on the `spec.podTemplate` fields that change a pod's isolation: its
    /// priority, the nodes it runs on and its annotations. Judged on what the
    /// Microservice sets, not on the class's own `defaults.podAnnotations`. Once set,
    /// what it does not allow is refused; no limit when unset. `allowPodTemplate: false`
    /// still forbids the whole podTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplatePolicy>,

    /// The networks Microservices may reach outside the cluster: each CIDR of
    /// `spec.network.egress` must lie within one of these (e.g. `10.20.0.0/16` for the
    /// databases). Any network when empty, but for the cloud metadata service
    /// (169.254.169.254, fd00:ec2::254), which a Microservice may reach only when one of
    /// these covers it: a `0.0.0.0/0` rule is refused under every class.
    #[serde(default, rename = "egressCIDRs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub egress_cidrs: Vec<Cidr>,

    /// `strict` (default): a NetworkPolicy per Microservice denies all traffic but DNS,
    /// the dependency graph, `network` rules and the ingress controller.
    /// `permissive`: no NetworkPolicy at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,

    /// Whether `dependsOn` may name Microservices of other namespaces. Allowed when unset.
    /// This is the caller's side; the target still has to admit the caller (see
    /// `callerNamespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_cross_namespace_dependencies: Option<bool>,

    /// Namespaces whose Microservices may call this class's services across namespaces:
    /// a `dependsOn` from a selected namespace gets the address and is let in on the port
    /// it calls. A caller from any other namespace is admitted only by the target's own
    /// `spec.network.allowFrom`; otherwise it is refused (its `DependenciesReady` says so)
    /// and nothing is opened. Only the service's own namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_namespaces: Option<LabelSelector>,

    /// The namespaces a Microservice's own `spec.network.allowFrom` may let callers in
    /// from, by label. Each entry's namespaceSelector is narrowed to these namespaces in
    /// the NetworkPolicy (both selectors must match) and in the consent a cross-namespace
    /// `dependsOn` needs; an entry that can select none of them (the same label with
    /// another value) is a `PolicyViolation`. Entries without a namespaceSelector (the
    /// Microservice's own namespace) are not affected. Any namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_from_namespaces: Option<LabelSelector>,

    /// Whether Microservices may run under the `baseline` Pod Security profile
    /// (`security.profile: baseline`). Only `restricted` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_baseline_security: Option<bool>,
}

/// What `spec.podTemplate` may set. Each field refuses what it does not name, so
/// `podTemplate: {}` leaves only labels and topology spread constraints.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplatePolicy {
    /// PriorityClasses `spec.podTemplate.priorityClassName` may name: a higher priority
    /// can preempt other teams' pods. No priorityClassName when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 64),
        inner(
            length(min = 1, max = 253),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        )
    )]
    pub priority_class_names: Vec<String>,

    /// Whether `spec.podTemplate.tolerations` may be set: tolerations let pods onto
    /// tainted nodes, such as nodes set aside for another team. Refused when unset.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_tolerations: bool,

    /// Whether `spec.podTemplate.nodeSelector` and `spec.podTemplate.affinity` (node, pod
    /// and pod anti-affinity) may be set: they choose the pods' nodes and neighbours.
    /// Refused when unset.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_node_placement: bool,

    /// Prefixes every key of `spec.podTemplate.annotations` must start with, e.g.
    /// `prometheus.io/`: some annotations change how a pod is treated (a service mesh's
    /// `sidecar.istio.io/inject`, AppArmor profiles). No pod annotations when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 253), regex(pattern = r"^[^\s]+$"))
    )]
    pub annotation_prefixes: Vec<String>,
}

/// An image reference prefix such as `registry.example.com/` or `ghcr.io/acme/`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct RegistryPrefix(
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[^\s]+$"))] pub String,
);

/// Whether Microservices get NetworkPolicies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Default deny, plus what the dependency graph and `network` open.
    #[default]
    Strict,
    /// No NetworkPolicy: any pod may connect.
    Permissive,
}

/// How exposed Microservices are reached from outside.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassExpose {
    /// The IngressClass of the Ingresses; the cluster's default IngressClass when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub ingress_class_name: Option<String>,

    /// DNS suffix that completes `expose.http.hostPrefix` (and the default host
    /// `<name>.<namespace>`), e.g. `apps.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub host_suffix: Option<String>,

    /// A Gateway API Gateway to attach to. When set and the cluster serves `HTTPRoute`,
    /// Flotilla creates an HTTPRoute instead of an Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ref: Option<GatewayRef>,

    /// Where the ingress controller (or Gateway) pods run, so `strict` NetworkPolicies
    /// let them in on the exposed ports. Defaults to the namespace named
    /// `ingress-nginx` (matched by its `kubernetes.io/metadata.name` label, which
    /// clusters older than 1.21 do not set on their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<ControllerPeer>,

    /// Annotations added to every Ingress or HTTPRoute, e.g. for cert-manager.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A Gateway, by name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Gateway. It must allow routes from the Microservices' namespaces.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// The listener of the Gateway to attach to; all of its listeners when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub section_name: Option<String>,
}

/// The pods allowed in to exposed ports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControllerPeer {
    /// The namespace the controller runs in, e.g. `ingress-nginx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// Namespaces of the controller, by label; wins over `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The controller's pods in those namespaces; all of their pods when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

/// What Flotilla observed about the class, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MicroserviceClassStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`: False with reason `MultipleDefaults` when another class is default
    /// too, or `InvalidSpec`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The network mode in effect, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    /// Microservices using this class.
    #[serde(default)]
    pub services: i32,
    /// Microservices using this class that break its policy.
    #[serde(default)]
    pub violations: i32,
}

impl MicroserviceClassSpec {
    /// The network mode in effect: `strict` unless the policy says otherwise.
    /// Whether explicit hosts are held to the class's `expose.hostSuffix`:
    /// `policy.hostsWithinSuffix`, by default whenever a suffix is set.
    pub fn hosts_within_suffix(&self) -> bool {
        let has_suffix = self
            .expose
            .as_ref()
            .is_some_and(|e| e.host_suffix.is_some());
        self.policy
            .as_ref()
            .and_then(|p| p.hosts_within_suffix)
            .unwrap_or(has_suffix)
    }

    pub fn network_mode(&self) -> NetworkMode {
        self.policy
            .as_ref()
            .and_then(|p| p.network_mode)
            .unwrap_or_default()
    }
}
