//! What the builders need besides the Microservice itself: the server's capabilities and
//! the resolved dependency graph. `crate::plan` fills it, from the controller's caches or
//! from `flotilla render`'s files. Builders never talk to the API server.

use std::collections::BTreeMap;

use kube::api::ApiResource;

use super::config_snapshot::Snapshots;
use super::{ChildKind, KINDS};

use crate::api::KubeVersion;
use crate::class::{Binding, ClassSettings};
use crate::graph::{Dependent, Resolution, ResolvedBacking, ResolvedDependency};

/// What the target server offers: the version it serves of each child kind (found by
/// discovery, or assumed from a version number offline) and the features a version
/// number implies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// gRPC probes (1.24+).
    pub grpc_probes: bool,
    /// The native `sleep` lifecycle action (1.30+).
    pub sleep_action: bool,
    /// The served version of each child kind, by kind; a kind missing is not served.
    served: BTreeMap<&'static str, &'static str>,
}

impl Capabilities {
    /// What a server of this version serves, for offline rendering: every built-in kind
    /// in the first of its versions the server has, and no separately installed kind.
    pub fn for_version(version: KubeVersion) -> Self {
        let served = KINDS
            .iter()
            .filter_map(|kind| Some((kind.kind, kind.built_in_version(version)?)))
            .collect();
        Capabilities {
            grpc_probes: version.supports_grpc_probes(),
            sleep_action: version.supports_sleep_action(),
            served,
        }
    }

    pub fn newest() -> Self {
        Self::for_version(KubeVersion::NEWEST)
    }

    /// No child kind served yet; discovery adds what it finds.
    pub fn features_of(version: KubeVersion) -> Self {
        Capabilities {
            served: BTreeMap::new(),
            ..Self::for_version(version)
        }
    }

    /// These capabilities with `kind` served in `version` (one of its
    /// [`ChildKind::versions`]).
    pub fn with_served(mut self, kind: &ChildKind, version: &str) -> Self {
        if let Some(known) = kind.versions.iter().find(|v| v.version == version) {
            self.served.insert(kind.kind, known.version);
        }
        self
    }

    /// The version of `kind` the server serves.
    pub fn served_version(&self, kind: &ChildKind) -> Option<&'static str> {
        self.served.get(kind.kind).copied()
    }

    pub fn serves(&self, kind: &ChildKind) -> bool {
        self.served.contains_key(kind.kind)
    }

    /// The `apiVersion` to write `kind` in.
    pub fn api_version(&self, kind: &ChildKind) -> Option<String> {
        Some(kind.api_version(self.served_version(kind)?))
    }

    /// The API resource of `kind` in the served version.
    pub fn api_resource(&self, kind: &ChildKind) -> Option<ApiResource> {
        Some(kind.api_resource(self.served_version(kind)?))
    }
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
    /// The backing services, as the class provides them.
    pub backing: Vec<Binding>,
    /// Those of them run by Microservices that exist, with the port called.
    pub backing_microservices: Vec<ResolvedBacking>,
    /// The config snapshot the pods read in place of each referenced ConfigMap
    /// (`rollout.snapshotConfig`); a ConfigMap without one is read directly.
    pub snapshots: Snapshots,
}

impl BuildContext {
    /// The context of one Microservice: the server, its resolved neighbours, the hash of
    /// its configuration and its class's settings.
    pub fn new(
        capabilities: Capabilities,
        neighbours: Resolution,
        config_hash: String,
        class: ClassSettings,
    ) -> Self {
        BuildContext {
            capabilities,
            dependencies: neighbours.dependencies,
            dependents: neighbours.dependents,
            config_hash,
            class,
            backing: Vec::new(),
            backing_microservices: Vec::new(),
            snapshots: Snapshots::new(),
        }
    }

    /// A context with no neighbours and no class, for tests and single-object rendering.
    pub fn standalone(capabilities: Capabilities) -> Self {
        Self::new(
            capabilities,
            Resolution::default(),
            String::new(),
            ClassSettings::default(),
        )
    }
}
