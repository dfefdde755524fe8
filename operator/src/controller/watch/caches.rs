//! Every cache the controller reads and the watch that feeds it: Microservices and
//! classes (decoded one by one, feeding the indexes), one cache per child kind the server
//! serves (only objects labelled managed-by=flotilla, trimmed as the kind says), pods
//! (status only) and ConfigMaps and Secrets (metadata only, for config-hash rollouts).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, PartialObjectMeta};
use kube::runtime::reflector::Store;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::api::{Microservice, MicroserviceClass};
use crate::builders::{Capabilities, ChildKind, ConfigKind, KINDS, config_snapshot, labels};
use crate::client::{WatchBackoff, watch_config};
use crate::health::Health;
use crate::metrics::Metrics;

use super::indexes::{ClassWatch, Indexes, MicroserviceWatch};
use super::packed_store::{CacheGone, PackedStore, PackedWriter, packed_store};
use super::pod_index::PodIndex;
use super::watches::decoded;
use crate::controller::read_failure::{ReadFailure, WatchFailures};

/// Read-only caches of everything a reconciliation looks at.
#[derive(Clone)]
pub struct Caches {
    pub microservices: Store<Microservice>,
    /// Every MicroserviceClass of the cluster (they are cluster-scoped).
    pub classes: Store<MicroserviceClass>,
    /// One per child kind the server serves, in `KINDS` order.
    pub children: Vec<ChildCache>,
    /// Flotilla's pods, slimmed to what the status reads and packed as text (a typed
    /// Pod is 2.2 KB before any of its strings; `pipeline::read::pods` unpacks them).
    pub pods: PackedStore,
    /// The cached pods by Microservice.
    pub pod_index: Arc<PodIndex>,
    pub config_maps: Store<PartialObjectMeta<ConfigMap>>,
    /// None when the operator runs without access to Secrets (`--watch-secrets=false`).
    pub secrets: Option<Store<PartialObjectMeta<Secret>>>,
    /// Namespace labels, for consent across namespaces; only when watching every
    /// namespace (an operator of one namespace sees no caller from another).
    pub namespaces: Option<Store<PartialObjectMeta<Namespace>>>,
    /// The watches failing now: what a reconcile reports when it cannot trust a cache.
    pub watch_failures: Arc<WatchFailures>,
}

/// The cache of one child kind, in the version the server serves.
#[derive(Clone)]
pub struct ChildCache {
    pub kind: &'static ChildKind,
    pub resource: ApiResource,
    pub store: PackedStore,
}

/// The streams that feed the caches, each yielding the objects it touched: polled by
/// the controller, which reconciles the Microservices they concern.
pub struct Watches {
    pub microservices: BoxStream<'static, watcher::Result<Microservice>>,
    pub classes: BoxStream<'static, watcher::Result<MicroserviceClass>>,
    pub children: Vec<(
        ApiResource,
        BoxStream<'static, watcher::Result<DynamicObject>>,
    )>,
    pub pods: BoxStream<'static, watcher::Result<Pod>>,
    pub config_maps: BoxStream<'static, watcher::Result<PartialObjectMeta<ConfigMap>>>,
    pub secrets: Option<BoxStream<'static, watcher::Result<PartialObjectMeta<Secret>>>>,
    pub namespaces: Option<BoxStream<'static, watcher::Result<PartialObjectMeta<Namespace>>>>,
}

/// The touched objects of one child kind's watch.
pub type ChildStream = BoxStream<'static, watcher::Result<DynamicObject>>;

/// What the operator watches.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// One namespace; every namespace when None.
    pub namespace: Option<String>,
    /// Only the Microservices with these labels (a label selector), so several operators
    /// can share a cluster by shard; every Microservice when None.
    pub selector: Option<String>,
    /// Watch Secrets' metadata (see `Settings::watch_secrets`).
    pub watch_secrets: bool,
}

/// Who hears the Microservice and class events besides the caches.
pub struct Observers {
    /// Which ConfigMaps and Secrets are referenced: only those are cached.
    pub indexes: Arc<Indexes>,
    pub microservices: MicroserviceWatch,
    pub classes: ClassWatch,
    /// The class status writer, woken by any class or Microservice change.
    pub class_status: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// Told what each watch does, for `/healthz`.
    pub health: Arc<Health>,
}

/// Reports every watch's events and errors to the health, the metrics and the failing
/// watches a reconcile reports (`read_failure`), before the backoff hides the errors.
#[derive(Clone)]
struct WatchProbe {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    failures: Arc<WatchFailures>,
}

impl WatchProbe {
    /// `resource` (plural) and `namespace` (None: cluster-wide) say what a failure could
    /// not read.
    fn observe<K>(
        &self,
        watch: &'static str,
        resource: &str,
        namespace: Option<&str>,
        events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    ) -> impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static {
        let probe = self.clone();
        let resource = resource.to_string();
        let namespace = namespace.map(str::to_string);
        events.inspect(move |item| match item {
            Ok(event) => {
                let relist = matches!(event, watcher::Event::Init);
                probe.health.watch_event(watch, relist, &probe.metrics);
                probe.failures.recovered(watch);
            }
            Err(error) => {
                tracing::warn!(watch, %error, "watch failed; retrying");
                probe.health.watch_error(watch, &probe.metrics);
                probe.failures.failed(
                    watch,
                    ReadFailure::of_watch(&resource, namespace.as_deref(), error),
                );
            }
        })
    }
}

/// Sets up every watch (nothing runs until the streams are polled).
pub fn watch(
    client: &Client,
    scope: &Scope,
    capabilities: &Capabilities,
    observers: Observers,
) -> (Caches, Watches) {
    let namespace = scope.namespace.as_deref();
    let Observers {
        indexes,
        microservices: microservice_watch,
        classes: class_watch,
        class_status,
        metrics,
        health,
    } = observers;
    let failures = Arc::new(WatchFailures::default());
    let probe = WatchProbe {
        health,
        metrics: metrics.clone(),
        failures: failures.clone(),
    };
    let (microservices, microservice_stream) = microservices(
        client,
        scope,
        microservice_watch,
        class_status.clone(),
        &probe,
    );
    let (classes, class_stream) = classes(client, class_watch, class_status, &probe);
    let (children, child_streams) = children(client, namespace, capabilities, &probe);
    // Pods: only Flotilla's, like the children.
    let pod_index = Arc::new(PodIndex::default());
    let (pods, pod_stream) = pods(client, namespace, pod_index.clone(), &probe);
    let (config_maps, config_map_stream) = metadata(
        client,
        namespace,
        ConfigKind::ConfigMap,
        indexes.clone(),
        &probe,
    );
    let (secrets, secret_stream) = if scope.watch_secrets {
        let (store, stream) = metadata(client, namespace, ConfigKind::Secret, indexes, &probe);
        (Some(store), Some(stream))
    } else {
        (None, None)
    };
    let (namespaces, namespace_stream) = match namespace {
        Some(_) => (None, None),
        None => {
            let (store, stream) = cached(
                probe.observe(
                    "Namespace",
                    "namespaces",
                    None,
                    watcher(
                        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
                        watch_config(),
                    ),
                ),
                without_managed_fields,
                (),
            );
            (Some(store), Some(stream))
        }
    };
    let caches = Caches {
        microservices,
        classes,
        children,
        pods,
        pod_index,
        config_maps,
        secrets,
        namespaces,
        watch_failures: failures,
    };
    let watches = Watches {
        microservices: microservice_stream,
        classes: class_stream,
        children: child_streams,
        pods: pod_stream,
        config_maps: config_map_stream,
        secrets: secret_stream,
        namespaces: namespace_stream,
    };
    (caches, watches)
}

/// Children and pods: only what Flotilla manages, so memory follows the number of
/// Microservices, not the size of the cluster.
fn managed() -> watcher::Config {
    watch_config().labels(labels::MANAGED_SELECTOR)
}

const MICROSERVICE_PAGE_SIZE: u32 = 25;

fn microservices(
    client: &Client,
    scope: &Scope,
    mut observer: MicroserviceWatch,
    class_status: Arc<Notify>,
    probe: &WatchProbe,
) -> (
    Store<Microservice>,
    BoxStream<'static, watcher::Result<Microservice>>,
) {
    let writer = Writer::default();
    let store = writer.as_reader();
    let gauge_store = store.clone();
    let metrics = probe.metrics.clone();
    let resource = ApiResource::erase::<Microservice>(&());
    // A Microservice may be a thousand times the size of a child (up to what etcd
    // stores): smaller pages keep a relist's peak, one page decoded whole, in bounds.
    let mut config = watch_config().page_size(MICROSERVICE_PAGE_SIZE);
    if let Some(selector) = &scope.selector {
        config = config.labels(selector);
    }
    let api = scoped_dynamic(client, scope.namespace.as_deref(), &resource);
    let stream = probe
        .observe(
            "Microservice",
            "microservices",
            scope.namespace.as_deref(),
            decoded::<Microservice>(api, config),
        )
        .backoff(WatchBackoff::default())
        .modify(as_the_controller_reads)
        .reflect(writer)
        .inspect_ok(move |event| {
            observer.observe(event);
            class_status.notify_one();
            metrics.managed.set(gauge_store.len() as i64);
        })
        .touched_objects()
        .filter(objects_only)
        .boxed();
    (store, stream)
}

/// Classes are cluster-scoped: every operator reads them all, whatever its namespace.
fn classes(
    client: &Client,
    mut observer: ClassWatch,
    class_status: Arc<Notify>,
    probe: &WatchProbe,
) -> (
    Store<MicroserviceClass>,
    BoxStream<'static, watcher::Result<MicroserviceClass>>,
) {
    let writer = Writer::default();
    let store = writer.as_reader();
    let resource = ApiResource::erase::<MicroserviceClass>(&());
    let api = Api::all_with(client.clone(), &resource);
    let stream = probe
        .observe(
            "MicroserviceClass",
            "microserviceclasses",
            None,
            decoded::<MicroserviceClass>(api, watch_config()),
        )
        .backoff(WatchBackoff::default())
        .modify(without_write_history)
        .reflect(writer)
        .inspect_ok(move |event| {
            observer.observe(event);
            class_status.notify_one();
        })
        .touched_objects()
        .filter(objects_only)
        .boxed();
    (store, stream)
}

/// One cache per child kind the server serves, each trimmed as its kind says.
fn children(
    client: &Client,
    namespace: Option<&str>,
    capabilities: &Capabilities,
    probe: &WatchProbe,
) -> (Vec<ChildCache>, Vec<(ApiResource, ChildStream)>) {
    KINDS
        .iter()
        .filter_map(|&kind| {
            let resource = capabilities.api_resource(kind)?;
            let events = probe.observe(
                kind.kind,
                &resource.plural,
                namespace,
                watcher(scoped_dynamic(client, namespace, &resource), managed()),
            );
            let (store, stream) = packed(events, kind.cache);
            let cache = ChildCache {
                kind,
                resource: resource.clone(),
                store,
            };
            Some((cache, (resource, stream)))
        })
        .unzip()
}

/// Metadata only, and no annotations (kubectl's last-applied annotation copies the whole
/// object): the uid and resourceVersion are all the config hash needs.
/// Flotilla's pods (by label), status only, indexed by Microservice.
fn pods(
    client: &Client,
    namespace: Option<&str>,
    index: Arc<PodIndex>,
    probe: &WatchProbe,
) -> (PackedStore, BoxStream<'static, watcher::Result<Pod>>) {
    let (writer, store) = packed_store();
    let stream = probe
        .observe(
            "Pod",
            "pods",
            namespace,
            watcher(scoped::<Pod>(client, namespace), managed()),
        )
        .backoff(WatchBackoff::default())
        .modify(crate::status::keep_what_status_reads)
        // The cache holds the packed form; the stream goes on with the typed pods, which
        // the index and the trigger read.
        .inspect_ok(move |event| {
            writer.apply(&untyped(event));
            index.observe(event);
        })
        .touched_objects()
        .filter(objects_only)
        .boxed();
    (store, stream)
}

/// A pod event with each pod as the cache takes it: its metadata and its status.
fn untyped(event: &watcher::Event<Pod>) -> watcher::Event<DynamicObject> {
    use watcher::Event;
    let pack = |pod: &Pod| DynamicObject {
        types: None,
        metadata: pod.metadata.clone(),
        data: serde_json::json!({ "status": pod.status }),
    };
    match event {
        Event::Apply(pod) => Event::Apply(pack(pod)),
        Event::Delete(pod) => Event::Delete(pack(pod)),
        Event::Init => Event::Init,
        Event::InitApply(pod) => Event::InitApply(pack(pod)),
        Event::InitDone => Event::InitDone,
    }
}

/// The metadata of the ConfigMaps or Secrets that some Microservice references, for
/// config-hash rollouts. The watch sees them all, but the cache keeps only the referenced
/// ones, and of those only name, UID and version: unrelated objects cost nothing but
/// their passage. One referenced after its last change is not cached until it changes
/// again; `read::plan` reads it from the API server meanwhile.
fn metadata<K>(
    client: &Client,
    namespace: Option<&str>,
    kind: ConfigKind,
    indexes: Arc<Indexes>,
    probe: &WatchProbe,
) -> (
    Store<PartialObjectMeta<K>>,
    BoxStream<'static, watcher::Result<PartialObjectMeta<K>>>,
)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let events = watcher(
        scoped::<PartialObjectMeta<K>>(client, namespace),
        watch_config(),
    );
    let (watch, resource) = match kind {
        ConfigKind::ConfigMap => ("ConfigMap", "configmaps"),
        ConfigKind::Secret => ("Secret", "secrets"),
    };
    let referenced = move |item: &watcher::Result<watcher::Event<PartialObjectMeta<K>>>| {
        let keep = match item {
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                let meta = object.meta();
                is_snapshot(meta)
                    || indexes.config_referenced(
                        meta.namespace.as_deref().unwrap_or_default(),
                        kind,
                        meta.name.as_deref().unwrap_or_default(),
                    )
            }
            _ => true,
        };
        std::future::ready(keep)
    };
    cached(
        probe
            .observe(watch, resource, namespace, events)
            .filter(referenced),
        name_and_version_only,
        (),
    )
}

impl Caches {
    /// The cache of a child kind; None when the server does not serve the kind.
    pub fn child(&self, kind: &ChildKind) -> Option<&ChildCache> {
        self.children.iter().find(|cache| cache.kind == kind)
    }

    /// Whether every cache has finished its first list within `patience`.
    pub async fn ready_within(&self, patience: Duration) -> Result<bool, CacheGone> {
        match tokio::time::timeout(patience, self.wait_until_ready()).await {
            Ok(result) => result.map(|()| true),
            Err(_elapsed) => Ok(false),
        }
    }

    /// Resolves once every cache has finished its first list.
    pub async fn wait_until_ready(&self) -> Result<(), CacheGone> {
        synced(&self.microservices).await?;
        synced(&self.classes).await?;
        for child in &self.children {
            child.store.wait_until_ready().await?;
        }
        self.pods.wait_until_ready().await?;
        synced(&self.config_maps).await?;
        if let Some(namespaces) = &self.namespaces {
            synced(namespaces).await?;
        }
        if let Some(secrets) = &self.secrets {
            synced(secrets).await?;
        }
        Ok(())
    }
}

impl ChildCache {
    /// The cached object of this kind named `name` in `namespace`, unpacked.
    pub fn get(&self, name: &str, namespace: &str) -> Option<DynamicObject> {
        self.store.get(name, namespace)
    }
}

async fn synced<K>(store: &Store<K>) -> Result<(), CacheGone>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    // kube-runtime's readiness signal keeps one waker per store: with several tasks
    // waiting (the controller waits too), all but the last can miss the wake-up. Waiting
    // in short rounds re-registers each time, so no waiter hangs.
    loop {
        if let Ok(result) =
            tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await
        {
            return result.map_err(|_| CacheGone);
        }
    }
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

/// A packed cache fed by `events`, each object trimmed first, and the stream of touched
/// objects.
fn packed(
    events: impl Stream<Item = watcher::Result<watcher::Event<DynamicObject>>> + Send + 'static,
    trim: fn(&mut DynamicObject),
) -> (PackedStore, ChildStream) {
    let (writer, store): (PackedWriter, PackedStore) = packed_store();
    let stream = events
        .backoff(WatchBackoff::default())
        .modify(trim)
        .inspect_ok(move |event| writer.apply(event))
        .touched_objects()
        .filter(objects_only)
        .boxed();
    (store, stream)
}

/// A cache fed by `events`, each object trimmed first, and the stream of touched objects.
fn cached<K>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    trim: impl FnMut(&mut K) + Send + 'static,
    dyntype: K::DynamicType,
) -> (Store<K>, BoxStream<'static, watcher::Result<K>>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let writer = Writer::new(dyntype);
    let store = writer.as_reader();
    let stream = events
        .backoff(WatchBackoff::default())
        .modify(trim)
        .reflect(writer)
        .touched_objects()
        .filter(objects_only)
        .boxed();
    (store, stream)
}

/// Keeps watch errors away from the controller: they are retried by the backoff, and
/// counted and logged by the [`WatchProbe`]. Passed on, they stalled kube-runtime's
/// applier: after a 20 s API server outage on the embedded cluster, the watches that had
/// failed were no longer polled and an edit made after the server's return was not acted
/// on for over 10 minutes; without them it is acted on about 15 s after the return.
fn objects_only<K>(item: &watcher::Result<K>) -> std::future::Ready<bool> {
    std::future::ready(item.is_ok())
}

/// What `kubectl apply` and server-side apply record of past writes (the managed fields,
/// and a copy of the whole object in an annotation): often more than the object itself,
/// and never read.
fn without_write_history<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// A Microservice as the controller reads it: no write history, and of its annotations
/// only Flotilla's own (promote, abort; the stand-in's size). Others may take 256 KiB
/// each object and are never read.
fn as_the_controller_reads(ms: &mut Microservice) {
    without_write_history(ms);
    if let Some(annotations) = ms.metadata.annotations.as_mut() {
        annotations.retain(|key, _| is_flotillas(key));
        if annotations.is_empty() {
            ms.metadata.annotations = None;
        }
    }
}

fn is_flotillas(annotation: &str) -> bool {
    annotation
        .split_once('/')
        .is_some_and(|(prefix, _)| prefix == "flotilla.dev" || prefix.ends_with(".flotilla.dev"))
}

fn without_managed_fields<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// All a config hash needs: which object (name, UID) at which version.
/// Keeps name, uid and version; of a config snapshot also its label and owners, which
/// say whose it is (the snapshot step prunes by them).
fn name_and_version_only<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    let snapshot = is_snapshot(meta);
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        labels: snapshot.then(|| {
            [(
                config_snapshot::SNAPSHOT_LABEL.to_string(),
                "true".to_string(),
            )]
            .into()
        }),
        owner_references: if snapshot {
            meta.owner_references.take()
        } else {
            None
        },
        ..ObjectMeta::default()
    };
}

/// A ConfigMap Flotilla copied (`builders::config_snapshot`).
fn is_snapshot(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(config_snapshot::SNAPSHOT_LABEL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    #[test]
    fn a_cached_microservice_keeps_flotillas_annotations_only() {
        let mut ms: Microservice = serde_json::from_value(serde_json::json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "users", "namespace": "shop", "annotations": {
                "flotilla.dev/promote": "now",
                "internal.flotilla.dev/spec-bytes": "300000",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "team.example.com/notes": "x".repeat(4096),
                "evilflotilla.dev/x": "y",
            }, "managedFields": [{"manager": "kubectl"}]},
            "spec": {"image": "users:1"}
        }))
        .unwrap();
        as_the_controller_reads(&mut ms);
        let kept: Vec<&String> = ms.annotations().keys().collect();
        assert_eq!(
            kept,
            ["flotilla.dev/promote", "internal.flotilla.dev/spec-bytes"]
        );
        assert_eq!(ms.metadata.managed_fields, None);
    }
}
