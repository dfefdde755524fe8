//! Apply the desired children with server-side apply (one field manager, forced), skip
//! the ones the cache shows already match, and delete the ones no longer wanted.

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use crate::api::Microservice;
use crate::builders::Children;

use super::context::{Context, FIELD_MANAGER};
use super::error::{Error, Result};
use super::events;

/// Annotation holding a hash of what Flotilla last applied to a child. With the subset
/// check below it lets a reconcile with nothing to change send no write at all.
pub const APPLIED_HASH_ANNOTATION: &str = "flotilla.dev/applied-hash";

/// A field manager that only ever holds `spec.replicas` of a Deployment, while the
/// HorizontalPodAutoscaler takes it over (see `hand_over_replicas`).
const HANDOVER_MANAGER: &str = "flotilla-replicas-handover";

/// What happened to one child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Created { kind: String, name: String },
    Updated { kind: String, name: String },
    Deleted { kind: String, name: String },
}

/// Applies every child; with `hold_rollout`, every child but the Deployment, which is left
/// as it is (or not created yet).
pub async fn apply_all(
    ctx: &Context,
    ms: &Microservice,
    children: &Children,
    hold_rollout: bool,
) -> Result<Vec<Change>> {
    let namespace = ms.namespace().ok_or(Error::MissingNamespace)?;
    let mut changes = Vec::new();
    for mut desired in children.to_documents(&ctx.capabilities)? {
        let kind = desired["kind"].as_str().unwrap_or_default().to_string();
        if hold_rollout && kind == "Deployment" {
            continue;
        }
        let name = desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let observed = observed(ctx, &kind, &name, &namespace)?;
        if kind == "Deployment"
            && observed.is_none()
            && let Some(autoscaling) = &ms.spec.autoscaling
        {
            // A new Deployment starts at the autoscaler's minimum rather than at one pod;
            // the next apply hands the field over (see `hand_over_replicas`).
            desired["spec"]["replicas"] = json!(autoscaling.min_replicas);
        }
        let hash = content_hash(&desired);
        desired["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = Value::String(hash.clone());
        let unchanged = observed.as_ref().is_some_and(|live| {
            live["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].as_str() == Some(hash.as_str())
                && is_subset(&desired, live)
        });
        if !unchanged && let Some(live) = &observed {
            debug!(%kind, %name, live_hash = ?live["metadata"]["annotations"][APPLIED_HASH_ANNOTATION], %hash,
                subset = is_subset(&desired, live), "live object differs");
        }
        ctx.metrics.apply(&kind, !unchanged);
        if unchanged {
            continue;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &namespace, &resource(ctx, &kind)?);
        if kind == "Deployment"
            && let Some(live) = &observed
        {
            hand_over_replicas(&api, &name, &desired, live).await?;
        }
        debug!(%kind, %name, "applying");
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await?;
        changes.push(match observed {
            None => Change::Created { kind, name },
            Some(_) => Change::Updated { kind, name },
        });
    }
    changes.extend(prune(ctx, ms, children, &namespace).await?);
    for change in &changes {
        info!(microservice = %ms.name_any(), namespace = %namespace, ?change, "child changed");
        events::child_changed(ctx, ms, change).await;
    }
    Ok(changes)
}

/// When autoscaling is switched on, the Deployment is applied without `spec.replicas`.
/// If Flotilla was the field's only owner, the API server would drop it and the
/// Deployment would fall back to one replica until the autoscaler reacts. Handing the
/// field to a separate manager first, at its current value, keeps the pods running.
async fn hand_over_replicas(
    api: &Api<DynamicObject>,
    name: &str,
    desired: &Value,
    live: &Value,
) -> Result<()> {
    let wants_replicas = desired["spec"].get("replicas").is_some();
    if wants_replicas || !owns_field(live, FIELD_MANAGER, &["f:spec", "f:replicas"]) {
        return Ok(());
    }
    let Some(current) = live["spec"]["replicas"].as_i64() else {
        return Ok(());
    };
    let handover = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": { "replicas": current },
    });
    info!(%name, replicas = current, "handing spec.replicas over to the autoscaler");
    api.patch(
        name,
        &PatchParams::apply(HANDOVER_MANAGER).force(),
        &Patch::Apply(&handover),
    )
    .await?;
    Ok(())
}

fn owns_field(live: &Value, manager: &str, path: &[&str]) -> bool {
    live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|entry| {
            entry["manager"].as_str() == Some(manager)
                && entry["operation"].as_str() == Some("Apply")
                && path
                    .iter()
                    .try_fold(&entry["fieldsV1"], |node, key| node.get(*key))
                    .is_some()
        })
}

/// Deletes children that are no longer wanted: an autoscaler after `autoscaling` was
/// removed, a budget after `disruption` was unset, a Service after the last port went,
/// a NetworkPolicy under a `permissive` class, an Ingress or HTTPRoute after `expose`
/// went (or when one replaces the other).
/// Only objects carrying this Microservice's instance label and owner UID are touched.
async fn prune(
    ctx: &Context,
    ms: &Microservice,
    children: &Children,
    namespace: &str,
) -> Result<Vec<Change>> {
    let Children {
        service_account: _,
        deployment: _,
        service,
        autoscaler,
        disruption_budget,
        network_policy,
        ingress,
        http_route,
    } = children;
    let mut unwanted = Vec::new();
    if network_policy.is_none() {
        unwanted.extend(owned_by(ms, &ctx.stores.network_policies, "NetworkPolicy"));
    }
    if ingress.is_none() {
        unwanted.extend(owned_by(ms, &ctx.stores.ingresses, "Ingress"));
    }
    if http_route.is_none()
        && let Some(routes) = &ctx.stores.http_routes
    {
        unwanted.extend(owned_by(ms, routes, "HTTPRoute"));
    }
    if service.is_none() {
        unwanted.extend(owned_by(ms, &ctx.stores.services, "Service"));
    }
    if autoscaler.is_none() {
        unwanted.extend(owned_by(
            ms,
            &ctx.stores.autoscalers,
            "HorizontalPodAutoscaler",
        ));
    }
    if disruption_budget.is_none() {
        unwanted.extend(owned_by(
            ms,
            &ctx.stores.disruption_budgets,
            "PodDisruptionBudget",
        ));
    }
    let mut changes = Vec::new();
    for (kind, name) in unwanted {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), namespace, &resource(ctx, &kind)?);
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => changes.push(Change::Deleted { kind, name }),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(changes)
}

fn owned_by<K>(ms: &Microservice, store: &Store<K>, kind: &str) -> Vec<(String, String)>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let (Some(uid), Some(namespace)) = (ms.uid(), ms.namespace()) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|object| object.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|object| {
            object.labels().get(crate::builders::labels::INSTANCE) == Some(&ms.name_any())
        })
        .filter(|object| {
            object
                .owner_references()
                .iter()
                .any(|owner| owner.uid == uid)
        })
        .map(|object| (kind.to_string(), object.name_any()))
        .collect()
}

/// The API resource of a child kind, in the version the server serves.
fn resource(ctx: &Context, kind: &str) -> Result<ApiResource> {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, networking::v1 as networking};
    Ok(match kind {
        "ServiceAccount" => ApiResource::erase::<core::ServiceAccount>(&()),
        "Deployment" => ApiResource::erase::<apps::Deployment>(&()),
        "Service" => ApiResource::erase::<core::Service>(&()),
        "HorizontalPodAutoscaler" => ctx.resources.autoscaler.clone(),
        "PodDisruptionBudget" => ctx.resources.budget.clone(),
        "NetworkPolicy" => ApiResource::erase::<networking::NetworkPolicy>(&()),
        "Ingress" => ApiResource::erase::<networking::Ingress>(&()),
        "HTTPRoute" => ctx
            .resources
            .http_route
            .clone()
            .ok_or_else(|| Error::UnknownKind(kind.to_string()))?,
        other => return Err(Error::UnknownKind(other.to_string())),
    })
}

/// The child as the cache holds it, as JSON.
fn observed(ctx: &Context, kind: &str, name: &str, namespace: &str) -> Result<Option<Value>> {
    fn lookup<K>(store: &Store<K>, name: &str, namespace: &str) -> Result<Option<Value>>
    where
        K: Resource + Clone + serde::Serialize + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        store
            .get(&ObjectRef::new(name).within(namespace))
            .map(|object| serde_json::to_value(object.as_ref()))
            .transpose()
            .map_err(|source| Error::Serialize {
                what: format!("cached {name}"),
                source,
            })
    }
    fn lookup_dynamic(
        store: &Store<DynamicObject>,
        ar: &ApiResource,
        name: &str,
        namespace: &str,
    ) -> Result<Option<Value>> {
        let Some(object) = store.get(&ObjectRef::new_with(name, ar.clone()).within(namespace))
        else {
            return Ok(None);
        };
        let mut value =
            serde_json::to_value(object.as_ref()).map_err(|source| Error::Serialize {
                what: format!("cached {name}"),
                source,
            })?;
        // Objects from a list carry no apiVersion or kind; the cache they came from says it.
        value["apiVersion"] = Value::String(ar.api_version.clone());
        value["kind"] = Value::String(ar.kind.clone());
        Ok(Some(value))
    }
    let stores = &ctx.stores;
    match kind {
        "ServiceAccount" => lookup(&stores.service_accounts, name, namespace),
        "Deployment" => lookup(&stores.deployments, name, namespace),
        "Service" => lookup(&stores.services, name, namespace),
        "HorizontalPodAutoscaler" => lookup_dynamic(
            &stores.autoscalers,
            &ctx.resources.autoscaler,
            name,
            namespace,
        ),
        "PodDisruptionBudget" => lookup_dynamic(
            &stores.disruption_budgets,
            &ctx.resources.budget,
            name,
            namespace,
        ),
        "NetworkPolicy" => lookup(&stores.network_policies, name, namespace),
        "Ingress" => lookup(&stores.ingresses, name, namespace),
        "HTTPRoute" => match (&stores.http_routes, &ctx.resources.http_route) {
            (Some(store), Some(ar)) => lookup_dynamic(store, ar, name, namespace),
            _ => Err(Error::UnknownKind(kind.to_string())),
        },
        other => Err(Error::UnknownKind(other.to_string())),
    }
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
    fn replica_ownership_is_read_from_managed_fields() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "flotilla", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}}
        ]}});
        assert!(owns_field(&live, "flotilla", &["f:spec", "f:replicas"]));
        assert!(!owns_field(&live, "other", &["f:spec", "f:replicas"]));
        assert!(!owns_field(
            &json!({}),
            "flotilla",
            &["f:spec", "f:replicas"]
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
