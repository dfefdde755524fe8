//! A child kind as one unit: everything the generic machinery (build, discovery, watch,
//! cache, apply, prune) needs to know about one kind of object Flotilla creates. Each
//! builder file defines its kind's [`ChildKind`] next to its builder, and
//! [`super::KINDS`] lists them; nothing else names a child kind.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Serialize;
use serde_json::Value;

use super::{BuildContext, BuildError};
use crate::api::{KubeVersion, Microservice};

/// When a version of a kind is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Built into Kubernetes from this version on (until a newer version replaces it:
    /// the first version in [`ChildKind::versions`] a server serves wins).
    Since(KubeVersion),
    /// Served only where its CRDs are installed (e.g. the Gateway API): discovery finds
    /// it; an offline render assumes it only when asked to.
    Installed,
}

/// One version Flotilla can write a kind in. Versions of one kind share their field
/// shapes as far as Flotilla writes them, so one builder serves them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindVersion {
    pub version: &'static str,
    pub available: Availability,
}

impl KindVersion {
    pub const fn since(version: &'static str, major: u32, minor: u32) -> Self {
        KindVersion {
            version,
            available: Availability::Since(KubeVersion::new(major, minor)),
        }
    }

    pub const fn installed(version: &'static str) -> Self {
        KindVersion {
            version,
            available: Availability::Installed,
        }
    }
}

/// Everything Flotilla knows about one kind of child. Adding a kind means: its builder
/// file with its `KIND`, one line in [`super::KINDS`], its RBAC rule in the chart, and
/// its tests.
pub struct ChildKind {
    /// The kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The resource name in URLs and RBAC rules, e.g. `deployments`.
    pub plural: &'static str,
    /// The versions Flotilla writes, preferred first: discovery picks the first one the
    /// server serves.
    pub versions: &'static [KindVersion],
    /// The desired object as JSON (`apiVersion` is set afterwards, from what the server
    /// serves); None when the spec asks for none of this kind.
    pub build: Builder,
    /// What the cache keeps of a live object: [`without_managed_fields`] unless the kind
    /// reads its managed fields (see `ChildKind::caching`).
    pub cache: fn(&mut DynamicObject),
    /// Adjusts the desired object before it is first created (never on later applies).
    pub on_create: fn(&Microservice, &mut Value),
    /// A patch to apply under a separate field manager before `desired` replaces `live`,
    /// when dropping a field Flotilla owned would otherwise reset it.
    pub hand_over: fn(desired: &Value, live: &Value) -> Option<Handover>,
    /// A strategic merge patch removing what `live` has and `desired` dropped, where
    /// server-side apply alone would leave part of it behind (see
    /// `deployment::drop_removed_probes`).
    pub remove_dropped: fn(desired: &Value, live: &Value) -> Option<Value>,
}

/// A field handed to another field manager, so that Flotilla can stop managing it
/// without the API server removing it.
#[derive(Clone, Debug, PartialEq)]
pub struct Handover {
    /// The field manager that takes the field over.
    pub manager: &'static str,
    /// The server-side apply patch holding only that field at its current value.
    pub patch: Value,
}

/// How a kind's builder returns its object (see [`ChildKind::build`]).
pub type Builder = fn(&Microservice, &BuildContext) -> Result<Option<Value>, BuildError>;

impl ChildKind {
    /// A kind with the default cache policy and no hooks.
    pub const fn new(
        kind: &'static str,
        group: &'static str,
        plural: &'static str,
        versions: &'static [KindVersion],
        build: Builder,
    ) -> Self {
        ChildKind {
            kind,
            group,
            plural,
            versions,
            build,
            cache: without_managed_fields,
            on_create: as_built,
            hand_over: no_hand_over,
            remove_dropped: nothing_left_behind,
        }
    }

    /// This kind, removing what `desired` dropped with `remove` before each apply.
    pub const fn removing_dropped(self, remove: fn(&Value, &Value) -> Option<Value>) -> Self {
        ChildKind {
            remove_dropped: remove,
            ..self
        }
    }

    /// This kind, caching live objects with `cache` instead.
    pub const fn caching(self, cache: fn(&mut DynamicObject)) -> Self {
        ChildKind { cache, ..self }
    }

    /// This kind, with hooks for its first creation and for handing fields over.
    pub const fn with_hooks(
        self,
        on_create: fn(&Microservice, &mut Value),
        hand_over: fn(&Value, &Value) -> Option<Handover>,
    ) -> Self {
        ChildKind {
            on_create,
            hand_over,
            ..self
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The API resource of this kind in `version`, for dynamic clients and watches.
    pub fn api_resource(&self, version: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, version, self.kind),
            self.plural,
        )
    }

    /// The version a server of `version` serves, built-in kinds only.
    pub fn built_in_version(&self, server: KubeVersion) -> Option<&'static str> {
        self.versions
            .iter()
            .find(|v| matches!(v.available, Availability::Since(since) if since <= server))
            .map(|v| v.version)
    }

    /// Whether the kind comes from CRDs installed separately, so that a cluster without
    /// them simply goes without it.
    pub fn is_installed_separately(&self) -> bool {
        self.versions
            .iter()
            .all(|v| v.available == Availability::Installed)
    }
}

impl std::fmt::Debug for ChildKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind)
    }
}

impl PartialEq for ChildKind {
    fn eq(&self, other: &Self) -> bool {
        (self.group, self.kind) == (other.group, other.kind)
    }
}

impl Eq for ChildKind {}

/// The default cache policy: of the body, only what Flotilla's apply set (drift is
/// judged on it, see [`super::owned`]); no status (only the Deployment's is read) and no
/// managed fields.
fn without_managed_fields(object: &mut DynamicObject) {
    super::owned::keep_owned(object, &[]);
    object.metadata.managed_fields = None;
}

/// The default `on_create`: the first apply is like any other.
fn as_built(_: &Microservice, _: &mut Value) {}

/// The default `remove_dropped`: server-side apply removes what Flotilla stops setting.
fn nothing_left_behind(_: &Value, _: &Value) -> Option<Value> {
    None
}

/// The default `hand_over`: Flotilla never gives a field away.
fn no_hand_over(_: &Value, _: &Value) -> Option<Handover> {
    None
}

/// A typed builder's result as the JSON [`ChildKind::build`] returns. The status is
/// dropped: Flotilla never writes it, and an empty one would be a claim on the field under
/// server-side apply.
pub fn to_child<T: Serialize>(
    kind: &'static str,
    object: Option<T>,
) -> Result<Option<Value>, BuildError> {
    let Some(object) = object else {
        return Ok(None);
    };
    let mut value = serde_json::to_value(object).map_err(|e| BuildError::Serialize {
        kind,
        message: e.to_string(),
    })?;
    if let Value::Object(map) = &mut value {
        map.remove("status");
        map.insert("kind".to_string(), Value::String(kind.to_string()));
    }
    Ok(Some(value))
}
