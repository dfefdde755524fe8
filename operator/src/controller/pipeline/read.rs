//! Read the world: what the plan and the status need, taken from the caches, never from
//! a list call.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{ListParams, ObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

use crate::api::{Microservice, MicroserviceClass};
use crate::builders::{ConfigKind, ConfigRef, config_refs, deployment};
use crate::class::Missing;
use crate::graph::{Admission, NamespaceLabels, ObjectKey, backing_targets, dependency_keys};
use crate::plan::{self, ConfigState, ConfigVersion, Inputs, Install, Plan};

use crate::controller::context::Context;
use crate::controller::read_failure::ReadFailure;
use crate::controller::watch::caches::Caches;

/// Plans `ms` against what the caches hold, reading from the API server only the
/// ConfigMaps and Secrets it references that the caches do not hold (see
/// `caches::metadata`).
pub async fn plan(ctx: &Context, ms: &Microservice, namespace: &str) -> Result<Plan, ReadFailure> {
    let mut uncached = Vec::new();
    for config in config_refs(&ms.spec) {
        if cached_config(&ctx.caches, &config, namespace) == ConfigState::Missing {
            let state = read_config(&ctx.client, &config, namespace).await?;
            uncached.push((config, state));
        }
    }
    let planned = plan_once(ctx, ms, namespace, &uncached);
    // A backing service's Secret is named by the class, so only the plan knows it; one
    // the cache does not hold is read like the spec's references, and the plan redone.
    let unread: Vec<ConfigRef> = planned
        .missing_backing
        .iter()
        .filter_map(|missing| match &missing.missing {
            Missing::Secret(secret) => Some(ConfigRef {
                kind: ConfigKind::Secret,
                name: secret.clone(),
                optional: false,
            }),
            Missing::Microservice(_) | Missing::Provisioner(_) => None,
        })
        .filter(|config| !uncached.iter().any(|(known, _)| same(known, config)))
        .collect();
    let mut found = false;
    for config in unread {
        let state = read_config(&ctx.client, &config, namespace).await?;
        found |= state != ConfigState::Missing;
        uncached.push((config, state));
    }
    if !found {
        return Ok(planned);
    }
    Ok(plan_once(ctx, ms, namespace, &uncached))
}

/// Plans `ms` from the caches, with `uncached` answering for what they do not hold.
fn plan_once(
    ctx: &Context,
    ms: &Microservice,
    namespace: &str,
    uncached: &[(ConfigRef, ConfigState)],
) -> Plan {
    let caches = &ctx.caches;
    let classes = caches.classes.state();
    let classes: Vec<&MicroserviceClass> = classes.iter().map(Arc::as_ref).collect();
    let config = |config: &ConfigRef| match cached_config(caches, config, namespace) {
        ConfigState::Missing => uncached
            .iter()
            .find(|(known, _)| same(known, config))
            .map_or(ConfigState::Missing, |(_, state)| state.clone()),
        state => state,
    };
    let lookup = |name: &str| {
        let namespace = caches.namespaces.as_ref()?.get(&ObjectRef::new(name))?;
        Some(namespace.metadata.labels.clone().unwrap_or_default())
    };
    let namespace_labels: Option<NamespaceLabels<'_>> = caches
        .namespaces
        .as_ref()
        .map(|_| &lookup as NamespaceLabels<'_>);
    let admission = Admission {
        classes: &classes,
        namespace_labels,
    };
    let microservices = neighbours(ctx, ms, &admission);
    let microservices: Vec<&Microservice> = microservices.iter().map(Arc::as_ref).collect();
    plan::plan(
        ms,
        &Inputs {
            capabilities: &ctx.capabilities,
            classes: &classes,
            microservices: &microservices,
            config: Some(&config),
            namespace_labels,
            install: Install {
                http_gates: ctx.http_gates,
                require_class: ctx.require_class,
                config_snapshots: ctx.config_snapshots,
            },
        },
    )
}

/// What the caches know of a referenced ConfigMap or Secret.
fn cached_config(caches: &Caches, config: &ConfigRef, namespace: &str) -> ConfigState {
    match (config.kind, &caches.secrets) {
        (ConfigKind::ConfigMap, _) => cached_state(&caches.config_maps, &config.name, namespace),
        (ConfigKind::Secret, Some(secrets)) => cached_state(secrets, &config.name, namespace),
        (ConfigKind::Secret, None) => ConfigState::Unwatched,
    }
}

/// The same object, whether or not the references are optional.
fn same(a: &ConfigRef, b: &ConfigRef) -> bool {
    a.kind == b.kind && a.name == b.name
}

/// The Microservices the graph of `ms` involves: those it depends on (by name), those
/// running its backing services (as its class says) and those that depend on it (by the
/// dependency index). A reconcile's cost does not grow with the
/// number of Microservices in the cluster.
fn neighbours(
    ctx: &Context,
    ms: &Microservice,
    admission: &Admission<'_>,
) -> Vec<Arc<Microservice>> {
    let key = ObjectKey::of(ms);
    let mut keys = dependency_keys(ms);
    keys.extend(backing_targets(ms, admission).into_iter().map(|t| t.key));
    keys.extend(ctx.indexes.dependents_of(&key));
    keys.remove(&key);
    keys.iter()
        .filter_map(|key| {
            ctx.caches
                .microservices
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
        })
        .collect()
}

/// A ConfigMap's or Secret's metadata, from the API server. A list by name, not a get:
/// the operator is granted list and watch on them (what its caches need) and no get, and
/// a list selecting one name is one key read for the API server, as a get is.
async fn read_config(
    client: &Client,
    config: &ConfigRef,
    namespace: &str,
) -> Result<ConfigState, ReadFailure> {
    let (resource, listed) = match config.kind {
        ConfigKind::ConfigMap => (
            "configmaps",
            metadata_by_name::<ConfigMap>(client, namespace, &config.name).await,
        ),
        ConfigKind::Secret => (
            "secrets",
            metadata_by_name::<Secret>(client, namespace, &config.name).await,
        ),
    };
    let meta = listed.map_err(|error| {
        let purpose = format!("{:?} {}", config.kind, config.name);
        ReadFailure::new("list", resource, Some(namespace), purpose, &error)
    })?;
    Ok(meta.map_or(ConfigState::Missing, |meta| {
        ConfigState::Exists(ConfigVersion {
            uid: meta.uid.unwrap_or_default(),
            resource_version: meta.resource_version.unwrap_or_default(),
        })
    }))
}

/// The metadata of the object of kind `K` named `name`, by a list selecting that name.
async fn metadata_by_name<K>(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<ObjectMeta>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let by_name = ListParams::default().fields(&format!("metadata.name={name}"));
    let list = Api::<K>::namespaced(client.clone(), namespace)
        .list_metadata(&by_name)
        .await?;
    Ok(list.items.into_iter().next().map(|object| object.metadata))
}

/// The Microservice's Deployment as the cache holds it.
pub fn deployment(caches: &Caches, name: &str, namespace: &str) -> Option<Deployment> {
    let object = caches.child(&deployment::KIND)?.get(name, namespace)?;
    object.try_parse().ok()
}

/// The pods of the Microservice `name` (by instance label), any ReplicaSet.
pub fn pods(caches: &Caches, name: &str, namespace: &str) -> Vec<Arc<Pod>> {
    caches
        .pod_index
        .pods_of(namespace, name)
        .into_iter()
        .filter_map(|pod| {
            // Cached with its metadata and status only (`caches::pods`).
            let object = caches.pods.get(&pod.name, &pod.namespace)?;
            let mut body = object.data;
            Some(Arc::new(Pod {
                metadata: object.metadata,
                spec: None,
                status: serde_json::from_value(body["status"].take()).ok(),
            }))
        })
        .collect()
}

/// A ConfigMap or Secret as the metadata caches know it.
fn cached_state<K>(store: &Store<K>, name: &str, namespace: &str) -> ConfigState
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    match store.get(&ObjectRef::new(name).within(namespace)) {
        Some(object) => ConfigState::Exists(ConfigVersion {
            uid: object.meta().uid.clone().unwrap_or_default(),
            resource_version: object.resource_version().unwrap_or_default(),
        }),
        None => ConfigState::Missing,
    }
}
