//! Backing services (twelve-factor's "attached resources"): what a Microservice says it
//! needs (`spec.backingServices`) and how a MicroserviceClass provides each type
//! (`spec.backingServices`). App teams name a type; the platform team decides where an
//! instance of it comes from and how it is reached.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cidr, EgressPort};

/// A backing service this Microservice needs: a database, a cache, a message broker.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackingService {
    /// The kind of service, as the MicroserviceClass in effect names the types it
    /// provides: e.g. `postgres`, `redis`, `nats`. A type the class does not provide is
    /// refused (`Ready=False`, reason `BackingServiceUnavailable`) and nothing is applied.
    #[serde(rename = "type")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub type_: String,
    /// The pods may start without it: its variables are optional, and the Deployment is
    /// not held while it is missing. Required by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// How a class provides one type of backing service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.secret) ? 1 : 0) + (has(self.microservice) ? 1 : 0) + (has(self.template) ? 1 : 0) == 1").message("backingServices: a type needs exactly one provisioner: set secret, microservice or template"))]
pub struct BackingServiceProvisioner {
    /// An existing Secret per Microservice holds how to connect: one a platform pipeline
    /// writes, or an operator such as CloudNativePG (its `<cluster>-app` Secret with
    /// `uri`, `host`, `port`, `username`, `password`, `dbname`). Flotilla never reads its
    /// values: the container's variables refer to its keys, the Deployment is held until
    /// it exists, and the pods roll when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretProvisioner>,
    /// A Microservice provides it: a broker or a cache the platform team runs as a
    /// Microservice, named as in `dependsOn` (its namespace each user's own when unset).
    /// Its users get `<NAME>_URL` (the scheme is the port's `appProtocol`, else the
    /// type: `nats://…`), `<NAME>_HOST` and `<NAME>_PORT` as plain values (no Secret),
    /// egress to its pods on that port, and its NetworkPolicy admits exactly them; their
    /// Deployments are held until it exists. One in another namespace must admit them
    /// as it would a caller in `dependsOn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microservice: Option<super::Dependency>,
    /// An object Flotilla applies per Microservice and owns (a CloudNativePG `Cluster`, a
    /// Crossplane claim, a Redis resource), whose controller provisions the service and
    /// writes its connection Secret. Applied only where the cluster serves its kind
    /// (otherwise `BackingServicesReady=False` names it); the Deployment is held until
    /// its ready condition is True and its Secret exists. Deleted with the Microservice
    /// (owner reference), never when a binding goes away: a database outlives an edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateProvisioner>,
    /// The namespaces (by their labels) whose Microservices may ask for this type; every
    /// namespace the class serves when unset. Elsewhere the Microservice is refused with
    /// reason `BackingServiceUnavailable`: the platform team decides who gets a database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// A backing service provisioned from an object Flotilla applies.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateProvisioner {
    /// The object's apiVersion, e.g. `postgresql.cnpg.io/v1`.
    #[schemars(
        length(min = 1, max = 317),
        regex(pattern = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$")
    )]
    pub api_version: String,
    /// The object's kind, e.g. `Cluster`.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Z][A-Za-z0-9]*$"))]
    pub kind: String,
    /// The object's name in the Microservice's namespace, with `{microservice}` and
    /// `{service}` replaced; `{microservice}-{service}` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
    /// The object's spec. `{microservice}`, `{service}` and `{namespace}` are replaced in
    /// every string of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::rollout::preserved_object")]
    pub spec: Option<serde_json::Value>,
    /// The type of the condition in its `status.conditions` that says it is ready;
    /// `Ready` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 316))]
    pub ready_condition: Option<String>,
    /// The connection Secret its controller writes, as for an existing Secret: its name
    /// template, the variables and where the service answers.
    #[serde(default)]
    pub secret: SecretProvisioner,
}

/// A subject (or topic) of a backing message broker that a Microservice publishes to or
/// consumes from. Flotilla draws the asynchronous edges (publisher → subject → consumer)
/// in `flotilla graph`; the network follows the backing service itself.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageSubject {
    /// The name of the broker in `spec.backingServices`.
    #[schemars(length(min = 1, max = 32))]
    pub backing_service: String,
    /// The subject, topic or queue: `order.placed`. Wildcards as the broker knows them
    /// (`order.*`, `order.>`) match published subjects in the graph.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[A-Za-z0-9._*>:/-]+$"))]
    pub subject: String,
}

/// A backing service found in an existing Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretProvisioner {
    /// The Secret's name in the Microservice's namespace, with `{microservice}` and
    /// `{service}` replaced by the Microservice's name and the backing service's name
    /// in its `spec.backingServices`. `{microservice}-{service}` when unset; for
    /// CloudNativePG's Secret of a Cluster named that way, `{microservice}-{service}-app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
    /// The container's variables and the Secret keys they read, by variable suffix: `URL:
    /// uri` gives a backing service named `db` the variable `DB_URL` from the key `uri`. Each
    /// listed key must be in the Secret (the pod does not start otherwise). When empty,
    /// the type's usual keys, each optional: for `postgres` and `mysql` `URL` (uri),
    /// `HOST`, `PORT`, `USER` (username), `PASSWORD`, `DATABASE` (dbname); for `redis`
    /// `URL`, `HOST`, `PORT`, `PASSWORD`; for any other type `URL`, `HOST`, `PORT`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Where it answers, for the NetworkPolicy of a Microservice under a strict
    /// network mode: egress to these destinations and ports only. Without it the pods
    /// reach it only through what `spec.network.egress` allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<BackingServiceEndpoint>,
}

/// The destinations of a backing service: pods in the cluster, addresses, or both.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.namespace) || has(self.podSelector) || has(self.cidrs)").message("endpoint: set namespace, podSelector or cidrs"))]
pub struct BackingServiceEndpoint {
    /// The namespace of its pods, matched by its `kubernetes.io/metadata.name`
    /// label (which servers set from 1.21); the Microservice's own namespace when only
    /// `podSelector` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// Its pods; every pod of the namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Addresses of one outside the cluster (a managed database), in CIDR notation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<Cidr>,
    /// The ports it answers on, e.g. 5432.
    #[schemars(length(min = 1))]
    pub ports: Vec<EgressPort>,
}
