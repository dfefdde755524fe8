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
#[x_kube(validation = Rule::new("has(self.secret)").message("backingServices: a type needs a provisioner: set secret"))]
pub struct BackingServiceProvisioner {
    /// An existing Secret per Microservice holds how to connect: one a platform pipeline
    /// writes, or an operator such as CloudNativePG (its `<cluster>-app` Secret with
    /// `uri`, `host`, `port`, `username`, `password`, `dbname`). Flotilla never reads its
    /// values: the container's variables refer to its keys, the Deployment is held until
    /// it exists, and the pods roll when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretProvisioner>,
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
