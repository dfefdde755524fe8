//! What the builders need besides the Microservice itself: the server's capabilities and
//! the resolved dependency graph. The controller fills it from its caches; `flotilla
//! render` fills it from files. Builders never talk to the API server.

use std::collections::BTreeMap;

use crate::api::{ClassExpose, KubeVersion, NetworkMode, Port};

/// Which API versions and features the target server offers, found by discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `autoscaling/v2` is served (1.23+); otherwise `autoscaling/v2beta2`.
    pub autoscaling_v2: bool,
    /// `policy/v1` PodDisruptionBudget is served (1.21+); otherwise `policy/v1beta1`.
    pub policy_v1: bool,
    /// gRPC probes (1.24+).
    pub grpc_probes: bool,
    /// The native `sleep` lifecycle action (1.30+).
    pub sleep_action: bool,
    /// The Gateway API `HTTPRoute` kind, when the cluster serves it (its CRDs are
    /// installed separately): `gateway.networking.k8s.io/v1`, or `v1beta1` on older
    /// installs. None when not served; exposure then always uses an Ingress.
    pub http_route: Option<&'static str>,
}

impl Capabilities {
    /// What a server of this version serves, for offline rendering.
    pub fn for_version(version: KubeVersion) -> Self {
        Capabilities {
            autoscaling_v2: version >= KubeVersion::new(1, 23),
            policy_v1: version >= KubeVersion::new(1, 21),
            grpc_probes: version.supports_grpc_probes(),
            sleep_action: version.supports_sleep_action(),
            http_route: None,
        }
    }

    pub fn newest() -> Self {
        Self::for_version(KubeVersion::NEWEST)
    }

    pub fn autoscaling_api_version(&self) -> &'static str {
        if self.autoscaling_v2 {
            "autoscaling/v2"
        } else {
            "autoscaling/v2beta2"
        }
    }

    pub fn policy_api_version(&self) -> &'static str {
        if self.policy_v1 {
            "policy/v1"
        } else {
            "policy/v1beta1"
        }
    }
}

/// A Microservice this one calls, looked up in the cluster (or in the render input).
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedDependency {
    /// Name of the dependency Microservice.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The port this one calls (the one named in `dependsOn`, or its primary port).
    pub port: Port,
    /// The labels that select its pods.
    pub pod_selector: BTreeMap<String, String>,
}

/// A Microservice whose `dependsOn` names this one.
#[derive(Clone, Debug, PartialEq)]
pub struct Dependent {
    /// Name of the calling Microservice.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The ports of *this* Microservice it calls (resolved from its `dependsOn` entry:
    /// the named port, or every declared port when it names none).
    pub ports: Vec<Port>,
    /// The labels that select its pods.
    pub pod_selector: BTreeMap<String, String>,
}

/// Everything outside the Microservice that shapes its children.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildContext {
    pub capabilities: Capabilities,
    /// Dependencies that exist, in `dependsOn` order. Missing ones are left out (and
    /// reported in the `DependenciesReady` condition by the controller).
    pub dependencies: Vec<ResolvedDependency>,
    /// Microservices that call this one, sorted by namespace and name.
    pub dependents: Vec<Dependent>,
    /// Hash of the versions of every ConfigMap and Secret the pods reference; written as
    /// a pod-template annotation so a change rolls the pods.
    pub config_hash: String,
    /// What the MicroserviceClass in effect decides beyond the spec (its `defaults` are
    /// already merged into the spec the builders get).
    pub class: ClassSettings,
}

/// The settings of the MicroserviceClass in effect that shape children directly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassSettings {
    /// Name of the class; None when no class applies.
    pub name: Option<String>,
    /// `strict`: a NetworkPolicy; `permissive`: none.
    pub network_mode: NetworkMode,
    /// How exposed services are reached (ingress class, host suffix, Gateway, the
    /// controller's namespace).
    pub expose: ClassExpose,
}

impl BuildContext {
    /// A context with no neighbours, for tests and single-object rendering.
    pub fn standalone(capabilities: Capabilities) -> Self {
        BuildContext {
            capabilities,
            dependencies: Vec::new(),
            dependents: Vec::new(),
            config_hash: String::new(),
            class: ClassSettings::default(),
        }
    }
}
