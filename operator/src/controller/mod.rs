//! The controller: watches, caches and the reconcile loop, wired together.

mod apply;
mod class_index;
mod class_status;
mod config_index;
mod context;
mod discovery;
mod error;
mod events;
mod reconcile;
mod status;
mod watches;
mod world;

pub use apply::{content_hash, is_subset};
pub use context::FIELD_MANAGER;
pub use error::Error;
pub use status::pod_failure;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::api::{Microservice, MicroserviceClass};
use crate::builders::{ConfigKind, labels};
use crate::graph::DependencyIndex;
use crate::metrics::Metrics;

use class_index::{ClassIndex, ClassWatch};
use class_status::ClassStatusWriter;
use config_index::ConfigIndex;
use context::{ChildResources, Context, Stores};

/// How the controller runs.
pub struct Settings {
    /// Watch one namespace only; every namespace when None.
    pub namespace: Option<String>,
    /// Reconciliations running at once.
    pub concurrency: u16,
    /// Name of this instance in events (the pod name in a cluster).
    pub instance: String,
    /// Write MicroserviceClass status (users and violations per class).
    pub class_status: bool,
}

/// Runs the controller until `shutdown` resolves. `ready` turns true once every cache
/// has finished its first list.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), kube::Error> {
    let capabilities = discovery::capabilities(&client).await?;
    let autoscaler_resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "autoscaling",
        capabilities
            .autoscaling_api_version()
            .trim_start_matches("autoscaling/"),
        "HorizontalPodAutoscaler",
    ));
    let budget_resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "policy",
        capabilities
            .policy_api_version()
            .trim_start_matches("policy/"),
        "PodDisruptionBudget",
    ));
    let namespace = settings.namespace.as_deref();
    // Children and pods: only what Flotilla manages, so memory follows the number of
    // Microservices, not the size of the cluster.
    let managed = watcher::Config::default().labels(labels::MANAGED_SELECTOR);

    let http_route_resource = capabilities.http_route.map(|api_version| {
        let version = api_version.rsplit('/').next().unwrap_or("v1");
        ApiResource::from_gvk(&GroupVersionKind::gvk(
            "gateway.networking.k8s.io",
            version,
            "HTTPRoute",
        ))
    });
    let config_index = Arc::new(ConfigIndex::default());
    let class_index = Arc::new(ClassIndex::default());
    let dependency_index = Arc::new(DependencyIndex::new());
    let (graph_triggers, graph_trigger_stream) = futures::channel::mpsc::unbounded();
    let class_watch = ClassWatch::new(class_index.clone(), graph_triggers.clone());
    let graph_watch = watches::GraphWatch::new(
        dependency_index,
        config_index.clone(),
        class_index,
        graph_triggers,
    );
    // Wakes the class status writer on any change to a class or a Microservice.
    let class_status_wake = Arc::new(tokio::sync::Notify::new());

    let (microservices, writer) = reflector::store();
    let managed_gauge = metrics.clone();
    let microservice_store = microservices.clone();
    let wake = class_status_wake.clone();
    let microservice_stream = watches::decoded::<Microservice>(scoped_dynamic(
        &client,
        namespace,
        &ApiResource::erase::<Microservice>(&()),
    ))
    .default_backoff()
    .reflect(writer)
    .inspect_ok(move |event| {
        graph_watch.observe(event);
        wake.notify_one();
        managed_gauge
            .managed
            .set(microservice_store.state().len() as i64);
    })
    .touched_objects();

    // Classes are cluster-scoped: every operator reads them all, whatever its namespace.
    let (classes, class_writer) = reflector::store();
    let wake = class_status_wake.clone();
    let class_stream = watches::decoded::<MicroserviceClass>(Api::all_with(
        client.clone(),
        &ApiResource::erase::<MicroserviceClass>(&()),
    ))
    .default_backoff()
    .modify(strip)
    .reflect(class_writer)
    .inspect_ok(move |event| {
        class_watch.observe(event);
        wake.notify_one();
    })
    .touched_objects();

    let (service_accounts, sa_stream) = cached(
        watcher(
            scoped::<ServiceAccount>(&client, namespace),
            managed.clone(),
        ),
        strip,
    );
    let (deployments, deployment_stream) = cached(
        watcher(scoped::<Deployment>(&client, namespace), managed.clone()),
        |_: &mut Deployment| {
            // managedFields are kept: the replica handover reads them.
        },
    );
    let (services, service_stream) = cached(
        watcher(scoped::<Service>(&client, namespace), managed.clone()),
        strip,
    );
    let (network_policies, policy_stream) = cached(
        watcher(scoped::<NetworkPolicy>(&client, namespace), managed.clone()),
        strip,
    );
    let (autoscalers, autoscaler_stream) = cached_with(
        watcher(
            scoped_dynamic(&client, namespace, &autoscaler_resource),
            managed.clone(),
        ),
        strip,
        autoscaler_resource.clone(),
    );
    let (disruption_budgets, budget_stream) = cached_with(
        watcher(
            scoped_dynamic(&client, namespace, &budget_resource),
            managed.clone(),
        ),
        strip,
        budget_resource.clone(),
    );
    let (ingresses, ingress_stream) = cached(
        watcher(scoped::<Ingress>(&client, namespace), managed.clone()),
        strip,
    );
    let (http_routes, http_route_stream) = match &http_route_resource {
        Some(resource) => {
            let (store, stream) = cached_with(
                watcher(
                    scoped_dynamic(&client, namespace, resource),
                    managed.clone(),
                ),
                strip,
                resource.clone(),
            );
            (Some(store), Some(stream))
        }
        None => (None, None),
    };
    let (pods, pod_stream) = cached(
        watcher(scoped::<Pod>(&client, namespace), managed.clone()),
        |pod: &mut Pod| {
            // Status decides readiness and root causes; the spec is never read.
            pod.managed_fields_mut().clear();
            pod.spec = None;
        },
    );
    // Metadata only, and no annotations (kubectl's last-applied annotation copies the
    // whole object): the uid and resourceVersion are all the config hash needs.
    let (config_maps, config_map_stream) = cached(
        watcher(
            scoped::<PartialObjectMeta<ConfigMap>>(&client, namespace),
            watcher::Config::default(),
        ),
        strip_metadata,
    );
    let (secrets, secret_stream) = cached(
        watcher(
            scoped::<PartialObjectMeta<Secret>>(&client, namespace),
            watcher::Config::default(),
        ),
        strip_metadata,
    );

    let stores = Stores {
        microservices: microservices.clone(),
        classes: classes.clone(),
        service_accounts,
        deployments,
        services,
        autoscalers,
        disruption_budgets,
        network_policies,
        ingresses,
        http_routes,
        pods,
        config_maps,
        secrets,
    };
    spawn_readiness(stores.clone(), ready);
    if settings.class_status {
        tokio::spawn(
            ClassStatusWriter {
                client: client.clone(),
                classes,
                microservices: microservices.clone(),
                wake: class_status_wake,
                all_namespaces: namespace.is_none(),
            }
            .run(),
        );
    }

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "flotilla".into(),
            instance: Some(settings.instance.clone()),
        },
    );
    let context = Arc::new(Context::new(
        client.clone(),
        capabilities,
        ChildResources {
            autoscaler: autoscaler_resource.clone(),
            budget: budget_resource.clone(),
            http_route: http_route_resource.clone(),
        },
        stores,
        metrics,
        recorder,
    ));

    let (cm_index, secret_index) = (config_index.clone(), config_index);
    info!(
        namespace = namespace.unwrap_or("<all>"),
        "starting the controller"
    );
    let mut controller = Controller::for_stream(microservice_stream, microservices)
        .owns_stream(sa_stream)
        .owns_stream(deployment_stream)
        .owns_stream(service_stream)
        .owns_stream(policy_stream)
        .owns_stream(ingress_stream)
        .owns_stream_with(autoscaler_stream, autoscaler_resource)
        .owns_stream_with(budget_stream, budget_resource)
        .watches_stream(pod_stream, |pod: Pod| {
            let name = pod.labels().get(labels::INSTANCE).cloned();
            name.zip(pod.namespace())
                .map(|(name, ns)| ObjectRef::new(&name).within(&ns))
        })
        .watches_stream(config_map_stream, move |cm| {
            users(&cm_index, ConfigKind::ConfigMap, &cm)
        })
        .watches_stream(secret_stream, move |secret| {
            users(&secret_index, ConfigKind::Secret, &secret)
        })
        // Class changes reach their users through the class index (graph triggers); the
        // stream itself only has to be polled to keep the class cache fed.
        .watches_stream(class_stream, |_class| Vec::<ObjectRef<Microservice>>::new())
        .reconcile_on(graph_trigger_stream);
    if let (Some(stream), Some(resource)) = (http_route_stream, http_route_resource) {
        controller = controller.owns_stream_with(stream, resource);
    }
    controller
        .with_config(controller::Config::default().concurrency(settings.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                match error {
                    controller::Error::ReconcilerFailed(..) => {} // logged by error_policy
                    other => warn!(error = %other, "controller"),
                }
            }
        })
        .await;
    info!("controller stopped");
    Ok(())
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

fn scoped_dynamic(
    client: &Client,
    namespace: Option<&str>,
    resource: &ApiResource,
) -> Api<DynamicObject> {
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// A cache fed by `events`, and the stream of touched objects that triggers reconciles.
fn cached<K>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    trim: impl FnMut(&mut K) + Send + 'static,
) -> (
    Store<K>,
    impl Stream<Item = watcher::Result<K>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    cached_with(events, trim, Default::default())
}

/// [`cached`] for dynamic kinds, whose type information is only known at run time.
fn cached_with<K>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    trim: impl FnMut(&mut K) + Send + 'static,
    dyntype: K::DynamicType,
) -> (
    Store<K>,
    impl Stream<Item = watcher::Result<K>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let writer = reflector::store::Writer::new(dyntype);
    let store = writer.as_reader();
    let stream = events
        .default_backoff()
        .modify(trim)
        .reflect(writer)
        .touched_objects();
    (store, stream)
}

fn strip<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

fn strip_metadata<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
}

fn users<K: Resource>(
    index: &ConfigIndex,
    kind: ConfigKind,
    object: &K,
) -> Vec<ObjectRef<Microservice>> {
    let (Some(namespace), Some(name)) = (
        object.meta().namespace.as_deref(),
        object.meta().name.as_deref(),
    ) else {
        return Vec::new();
    };
    index
        .users(namespace, kind, name)
        .into_iter()
        .map(|key| ObjectRef::new(&key.name).within(&key.namespace))
        .collect()
}

fn spawn_readiness(stores: Stores, ready: Arc<AtomicBool>) {
    tokio::spawn(async move {
        match stores.wait_until_ready().await {
            Ok(()) => {
                info!("every cache has synced");
                ready.store(true, Ordering::SeqCst);
            }
            Err(error) => warn!(%error, "a cache stopped before its first list completed"),
        }
    });
}
