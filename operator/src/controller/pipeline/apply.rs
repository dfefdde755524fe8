//! Apply the desired children with server-side apply (one field manager, forced), skip
//! the ones the cache shows already match, and delete the ones no longer wanted. Every
//! kind goes through the same code; what differs per kind is in its `ChildKind`.

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, GetParams, Patch, PatchParams};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::api::Microservice;
use crate::builders::{Child, ChildKind, Children, FIELD_MANAGER, KINDS, deployment, labels};

use super::ownership::{Ownership, ownership};
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};
use crate::controller::watch::caches::ChildCache;

/// Annotation holding a hash of what Flotilla last applied to a child. With the subset
/// check below it lets a reconcile with nothing to change send no write at all.
pub const APPLIED_HASH_ANNOTATION: &str = "flotilla.dev/applied-hash";

/// What happened to one child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    pub kind: &'static str,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Deleted,
}

/// An object with a child's kind and name that Flotilla does not control: left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub kind: &'static str,
    pub name: String,
    /// Who manages it, as far as the object tells.
    pub managed_by: String,
}

/// A child that could not be applied (the API server refused it, or does not serve its
/// kind): the children after it were not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: &'static str,
    pub name: String,
    /// The API server's message.
    pub message: String,
}

/// The outcome of applying a Microservice's children.
#[derive(Debug, Default)]
pub struct Applied {
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    pub failure: Option<Failure>,
    /// A child the pods need from their start (ServiceAccount, NetworkPolicy) is in
    /// conflict: the Deployment and the later stages were only looked at, not applied.
    pub held: bool,
}

/// Applies every child of `ms` (the Microservice as it runs, class defaults merged) but
/// the held ones, stage by stage ([`stage`]), then prunes what is no longer wanted. A
/// child whose name is taken by an object Flotilla does not control is skipped (a
/// conflict); a child the API server refuses stops the later stages, so the Deployment
/// never runs without its ServiceAccount and NetworkPolicy, and nothing is pruned. A
/// conflict in the first stage holds the later ones too (only their conflicts are
/// looked for): pods would otherwise run as someone else's ServiceAccount of that name,
/// or without their NetworkPolicy. Only transport errors, where nothing can be known, are
/// errors.
pub async fn apply(ctx: &Context, ms: &Microservice, children: &Children) -> Result<Applied> {
    let namespace = ms.namespace().ok_or(Error::MissingNamespace)?;
    let mut applied = Applied::default();
    let wanted: Vec<&Child> = children.iter().filter(|child| !child.held).collect();
    for together in wanted.chunk_by(|a, b| stage(a.kind) == stage(b.kind)) {
        let held = applied.held;
        let steps = futures::future::join_all(together.iter().map(|child| async {
            match ctx.caches.child(child.kind) {
                Some(cache) if held => foreign(ctx, ms, child, cache, &namespace).await,
                Some(cache) => apply_one(ctx, ms, child, cache, &namespace).await,
                None => Ok(Step::Unserved),
            }
        }))
        .await;
        for (child, step) in together.iter().zip(steps) {
            let failure = |message: String| Failure {
                kind: child.kind.kind,
                name: child.name().to_string(),
                message,
            };
            match step {
                Ok(Step::Unchanged) => {}
                Ok(Step::Changed(change)) => applied.changes.push(change),
                Ok(Step::Conflict(conflict)) => applied.conflicts.push(conflict),
                Err(Error::Kube(kube::Error::Api(status))) => {
                    applied.failure.get_or_insert(failure(status.message));
                }
                Ok(Step::Unserved) => {
                    let message = format!("the cluster does not serve {}", child.kind.kind);
                    applied.failure.get_or_insert(failure(message));
                }
                Err(error) => return Err(error),
            }
        }
        if applied.failure.is_some() {
            return Ok(applied);
        }
        if stage(together[0].kind) == 0 && !applied.conflicts.is_empty() {
            applied.held = true;
        }
    }
    if applied.held {
        return Ok(applied);
    }
    applied
        .changes
        .extend(prune(ctx, ms, children, &namespace).await?);
    Ok(applied)
}

/// A held child: only whether an object Flotilla does not control has its name.
async fn foreign(
    ctx: &Context,
    ms: &Microservice,
    child: &Child,
    cache: &ChildCache,
    namespace: &str,
) -> Result<Step> {
    let name = child.name().to_string();
    Ok(match live(ctx, &name, cache, namespace).await? {
        Some(live) => match ownership(&live, ms) {
            Ownership::Foreign { managed_by } => Step::Conflict(Conflict {
                kind: child.kind.kind,
                name,
                managed_by,
            }),
            _ => Step::Unchanged,
        },
        None => Step::Unchanged,
    })
}

/// The object of a child's kind and name: from the cache, else (someone else's, which
/// the cache does not hold) from the API server. The read is served from the API
/// server's watch cache (resourceVersion 0), not a quorum read of etcd: a bulk create
/// makes one per child. An object created elsewhere in the last instant may be missing
/// from it, as it may be created between any read and the apply that follows.
async fn live(
    ctx: &Context,
    name: &str,
    cache: &ChildCache,
    namespace: &str,
) -> Result<Option<Value>> {
    if let Some(object) = cache.get(name, namespace) {
        return Ok(Some(observed(object, cache)?));
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &cache.resource);
    match api.get_with(name, &GetParams::any()).await {
        Ok(object) => Ok(Some(observed(object, cache)?)),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// When a child of this kind is applied: what the pods need from their start (their
/// identity and their NetworkPolicy: kinds before the Deployment in `KINDS`) first, then
/// the workloads, then what points at them (Service, autoscaler, disruption budget,
/// routes, monitor). The children of a stage do not depend on each other and are applied
/// together: three round trips per Microservice instead of one per child.
fn stage(kind: &ChildKind) -> u8 {
    let position = |wanted: &ChildKind| KINDS.iter().position(|k| *k == wanted);
    match (position(kind), position(&deployment::KIND)) {
        (Some(at), Some(workload)) if at < workload => 0,
        _ if *kind == deployment::KIND => 1,
        _ => 2,
    }
}

enum Step {
    Unchanged,
    Changed(Change),
    Conflict(Conflict),
    /// The cluster does not serve the child's kind: nothing was sent.
    Unserved,
}

async fn apply_one(
    ctx: &Context,
    ms: &Microservice,
    child: &Child,
    cache: &ChildCache,
    namespace: &str,
) -> Result<Step> {
    let (kind, name) = (child.kind, child.name().to_string());
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &cache.resource);
    // The cache holds only what carries Flotilla's label: an object of that name may
    // still exist, made by someone else; one read before creating tells.
    let live = live(ctx, &name, cache, namespace).await?;
    if let Some(live) = &live
        && let Ownership::Foreign { managed_by } = ownership(live, ms)
    {
        return Ok(Step::Conflict(Conflict {
            kind: kind.kind,
            name,
            managed_by,
        }));
    }
    // The hash is of the object as built, before `on_create`: what a first apply adds
    // (an autoscaled Deployment's starting replicas) must not make the next pass see a
    // change and apply it all again. The field stays Flotilla's until a real change
    // comes, when the kind's hand-over runs.
    let mut desired = child.object.clone();
    let hash = content_hash(&desired);
    desired["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = Value::String(hash.clone());
    // This very content applied by this process, in a version the cache has not caught
    // up with: applying it again would change nothing.
    let key = (kind.kind, namespace.to_string(), name.clone());
    let in_flight = live
        .as_ref()
        .and_then(|live| {
            ctx.applied
                .ahead_of(&key, live["metadata"]["resourceVersion"].as_str())
        })
        .is_some_and(|applied| applied == hash);
    let unchanged = in_flight
        || live.as_ref().is_some_and(|live| {
            live["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].as_str() == Some(hash.as_str())
                && is_subset(&desired, live)
        });
    ctx.metrics.apply(kind.kind, !unchanged);
    if unchanged {
        return Ok(Step::Unchanged);
    }
    if let Some(live) = &live {
        debug!(kind = kind.kind, %name, live_hash = ?live["metadata"]["annotations"][APPLIED_HASH_ANNOTATION],
            %hash, subset = is_subset(&desired, live), "live object differs");
        if let Some(handover) = (kind.hand_over)(&desired, live) {
            debug!(kind = kind.kind, %name, manager = handover.manager, "handing a field over");
            api.patch(
                &name,
                &PatchParams::apply(handover.manager).force(),
                &Patch::Apply(&handover.patch),
            )
            .await?;
        }
    }
    if let Some(live) = &live
        && let Some(removal) = (kind.remove_dropped)(&desired, live)
    {
        debug!(kind = kind.kind, %name, "removing what the spec dropped");
        api.patch(
            &name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            },
            &Patch::Strategic(&removal),
        )
        .await?;
    }
    if live.is_none() {
        (kind.on_create)(ms, &mut desired);
    }
    debug!(kind = kind.kind, %name, "applying");
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await?;
    ctx.applied
        .record(key, hash, applied.metadata.resource_version.as_deref());
    let action = match live {
        None => Action::Created,
        Some(_) => Action::Updated,
    };
    Ok(Step::Changed(Change {
        action,
        kind: kind.kind,
        name,
    }))
}

/// Deletes this Microservice's children that are no longer wanted: an autoscaler after
/// `autoscaling` was removed, a Service after the last port went, a NetworkPolicy under
/// a `permissive` class, an Ingress replaced by an HTTPRoute… Only objects carrying this
/// Microservice's instance label and owner UID are touched; held children are kept.
async fn prune(
    ctx: &Context,
    ms: &Microservice,
    children: &Children,
    namespace: &str,
) -> Result<Vec<Change>> {
    let Some(uid) = ms.uid() else {
        return Ok(Vec::new());
    };
    let instance = ms.name_any();
    let mut changes = Vec::new();
    for cache in &ctx.caches.children {
        let wanted = |name: &str| {
            children
                .iter()
                .any(|child| child.kind == cache.kind && child.name() == name)
        };
        let unwanted: Vec<String> = cache
            .store
            .owned_by(&uid)
            .iter()
            .filter(|object| object.namespace().as_deref() == Some(namespace))
            .filter(|object| object.labels().get(labels::INSTANCE) == Some(&instance))
            .map(|object| object.name_any())
            .filter(|name| !wanted(name))
            .collect();
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), namespace, &cache.resource);
        for name in unwanted {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => changes.push(Change {
                    action: Action::Deleted,
                    kind: cache.kind.kind,
                    name,
                }),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(changes)
}

/// The cached child as JSON. Objects from a list carry no apiVersion or kind; the cache
/// they came from says it.
fn observed(object: DynamicObject, cache: &ChildCache) -> Result<Value> {
    let metadata = serde_json::to_value(&object.metadata).map_err(|source| Error::Serialize {
        what: format!("cached {} {}", cache.kind.kind, object.name_any()),
        source,
    })?;
    // The body is moved, not copied: this runs for every child on every reconcile.
    let mut value = match object.data {
        body @ Value::Object(_) => body,
        _ => Value::Object(Default::default()),
    };
    value["metadata"] = metadata;
    value["apiVersion"] = Value::String(cache.resource.api_version.clone());
    value["kind"] = Value::String(cache.resource.kind.clone());
    Ok(value)
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// A short, stable hash of a desired object.
pub fn content_hash(desired: &Value) -> String {
    let digest = Sha256::digest(desired.to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// True when every field set in `desired` has the same value in `live`. Fields the API
/// server defaults, or that other managers own, are ignored. A value the server rewrites
/// in another form (a quantity such as `0.5` stored as `500m`) makes this false, which
/// costs one unneeded, idempotent apply, never a missed one.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Null, _) => true,
        (Value::Object(want), Value::Object(have)) => {
            want.iter().all(|(key, value)| match have.get(key) {
                Some(h) => is_subset(value, h),
                // The API server drops empty lists and maps when it stores an object.
                None => is_empty(value),
            })
        }
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| is_subset(w, h))
        }
        (Value::Number(want), Value::Number(have)) => want.as_f64() == have.as_f64(),
        (want, have) => want == have,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_the_pods_need_goes_before_the_workload_and_the_rest_after() {
        use crate::builders::{autoscaler, network_policy, service, service_account};
        assert_eq!(stage(&service_account::KIND), 0);
        assert_eq!(stage(&network_policy::KIND), 0);
        assert_eq!(stage(&deployment::KIND), 1);
        assert_eq!(stage(&service::KIND), 2);
        assert_eq!(stage(&autoscaler::KIND), 2);
        // Every kind has a stage, and the stages follow the apply order.
        let stages: Vec<u8> = KINDS.iter().map(|kind| stage(kind)).collect();
        assert!(stages.is_sorted(), "{stages:?}");
    }

    #[test]
    fn subset_ignores_server_defaults_but_not_edits() {
        let desired = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}}});
        let live = json!({"spec": {"replicas": 2, "progressDeadlineSeconds": 600,
            "template": {"spec": {"containers": [{"name": "app", "image": "a:1", "terminationMessagePath": "/dev/termination-log"}]}}}});
        assert!(is_subset(&desired, &live));
        let edited = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}}});
        assert!(!is_subset(&desired, &edited));
        let extra_container = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "x"}]}}}});
        assert!(!is_subset(&desired, &extra_container));
        // An empty list the server does not store is no difference.
        assert!(is_subset(
            &json!({"spec": {"ingress": []}}),
            &json!({"spec": {}})
        ));
        assert!(!is_subset(
            &json!({"spec": {"ingress": [{}]}}),
            &json!({"spec": {}})
        ));
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(
            content_hash(&json!({"a": 1})),
            content_hash(&json!({"a": 1}))
        );
        assert_ne!(
            content_hash(&json!({"a": 1})),
            content_hash(&json!({"a": 2}))
        );
    }
}
