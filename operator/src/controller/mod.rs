//! The controller: watches, caches and the reconcile loop, wired together.

mod context;
mod edit_lane;
mod error;
mod pipeline;
mod queue;
mod read_failure;
mod report;
mod watch;

pub use error::Error;
pub use pipeline::apply::{APPLIED_HASH_ANNOTATION, content_hash, is_subset};
pub use pipeline::ownership::{Ownership, ownership};
pub use watch::discovery::served as discover_capabilities;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, controller};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::api::Microservice;
use crate::builders::{ConfigKind, labels};
use crate::health::Health;
use crate::metrics::Metrics;

pub use watch::caches::Scope;
/// The watches' reverse indexes; public for the benchmarks.
pub use watch::indexes::Indexes;

use context::Context;
use report::class_status::ClassStatusWriter;
use report::recorder::{Outbox, Recorder};
use watch::caches::{Caches, Observers, Watches};
use watch::indexes::{ClassWatch, MicroserviceWatch, Triggers};

/// How long the queue waits for a Microservice's triggers to stop before reconciling it.
/// Creating one sets off a burst (six children written back, the Deployment's status,
/// ReplicaSet, pods created, then Pending): without a pause each event runs a whole
/// reconcile that plans and compares every child for nothing new. Edits do not wait: a new generation goes
/// through the edit lane (`edit_lane`).
const DEBOUNCE: Duration = Duration::from_secs(1);

/// How the controller runs.
#[derive(Clone)]
pub struct Settings {
    /// What it watches: a namespace or all, a label selector on Microservices, Secrets.
    pub scope: Scope,
    /// Reconciliations running at once.
    pub concurrency: u16,
    /// Name of this instance in events (the pod name in a cluster).
    pub instance: String,
    /// Write MicroserviceClass status (users and violations per class).
    pub class_status: bool,
    /// How often the server's kinds are discovered again (see `discovery`).
    pub rediscover_every: Duration,
    /// Releases may use HTTP gates, which call pods through the API server's pod proxy
    /// (`get` on `pods/proxy`); without, a spec with one is refused (GateUnavailable).
    pub http_gates: bool,
    /// Every Microservice must be governed by a class (`ClassRequired` otherwise).
    pub require_class: bool,
    /// Config snapshots may be taken (`create`/`delete` on ConfigMaps); without, the
    /// pods read the ConfigMaps they reference directly.
    pub config_snapshots: bool,
    /// With `--shards`: the shards this replica holds; it reconciles only their
    /// Microservices (it watches them all: dependencies cross shards).
    pub shard: Option<crate::leader::shards::ShardScope>,
}

/// Runs the controller until `shutdown` resolves. `health` turns ready once every cache
/// has finished its first list, and hears what every watch does. When the kinds the
/// server serves change (a CRD installed or removed, see `discovery`), the controller
/// stops gracefully and starts again on fresh caches and watches for what is served now.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), kube::Error> {
    let shutdown = shutdown.boxed().shared();
    let mut restart = false;
    loop {
        health.controller_started();
        let capabilities = if restart {
            // The server answered discovery a moment ago: a failure now is transient
            // and is retried, not a reason to end the process.
            loop {
                match watch::discovery::capabilities(&client).await {
                    Ok(capabilities) => break capabilities,
                    Err(error) => {
                        warn!(%error, "discovery failed; retrying in 2 s");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(2)) => {}
                            () = shutdown.clone() => return Ok(()),
                        }
                    }
                }
            }
        } else {
            watch::discovery::capabilities(&client).await?
        };
        restart = true;
        let stopped = run_on(
            client.clone(),
            &settings,
            capabilities,
            metrics.clone(),
            health.clone(),
            shutdown.clone(),
        )
        .await;
        if shutdown.peek().is_some() || !stopped.kinds_changed {
            info!("controller stopped");
            return Ok(());
        }
        info!("restarting the controller for the kinds the server serves now");
    }
}

/// Why a controller run ended.
struct Stopped {
    /// Discovery found other kinds served than at the start: run again.
    kinds_changed: bool,
}

/// One run of the controller on the capabilities found at its start, until `shutdown`
/// or until the served kinds change.
async fn run_on(
    client: Client,
    settings: &Settings,
    capabilities: crate::builders::Capabilities,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) -> Stopped {
    let namespace = settings.scope.namespace.as_deref();
    let indexes = Arc::new(Indexes::default());
    let (triggers, trigger_stream) = futures::channel::mpsc::unbounded();
    let triggers = Triggers::new(triggers);
    let (edits, edit_stream) = queue::edits::channel(queue::edits::CAPACITY);
    let class_status_wake = Arc::new(Notify::new());
    let (caches, watches) = watch::caches::watch(
        &client,
        &settings.scope,
        &capabilities,
        Observers {
            indexes: indexes.clone(),
            microservices: MicroserviceWatch::new(indexes.clone(), triggers.clone(), edits),
            classes: ClassWatch::new(indexes.clone(), triggers.clone()),
            class_status: class_status_wake.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
        },
    );
    // Tasks that live as long as this controller: dropping `run` (a lost lease) ends them.
    let mut tasks = JoinSet::new();
    tasks.spawn(readiness(caches.clone(), health));
    let (kinds_changed, kinds_changed_rx) = tokio::sync::watch::channel(false);
    tasks.spawn(watch::discovery::watch_for_changes(
        client.clone(),
        capabilities.clone(),
        settings.rediscover_every,
        kinds_changed,
    ));
    if settings.class_status {
        let sees_every_microservice = namespace.is_none() && settings.scope.selector.is_none();
        tasks.spawn(
            ClassStatusWriter {
                client: client.clone(),
                classes: caches.classes.clone(),
                microservices: caches.microservices.clone(),
                wake: class_status_wake,
                all_namespaces: sees_every_microservice,
            }
            .run(),
        );
    }
    let (events, queue) = Outbox::new();
    tasks.spawn(
        Recorder::new(client.clone(), "flotilla", &settings.instance)
            .deliver(queue, metrics.clone()),
    );
    let controller = wire(watches, &caches, indexes.clone()).reconcile_on(trigger_stream);
    let mut context = Context::new(
        client,
        capabilities,
        caches,
        indexes,
        triggers,
        metrics,
        events,
    );
    context.http_gates = settings.http_gates;
    context.require_class = settings.require_class;
    context.config_snapshots = settings.config_snapshots;
    context.shard = settings.shard.clone();
    let context = Arc::new(context);
    tasks.spawn(edit_lane::run(edit_stream, context.clone()));
    info!(
        namespace = namespace.unwrap_or("<all>"),
        "starting the controller"
    );
    let mut changed = kinds_changed_rx.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            _ = changed.wait_for(|changed| *changed) => {}
        }
    };
    controller
        .with_config(
            controller::Config::default()
                .concurrency(settings.concurrency)
                .debounce(DEBOUNCE),
        )
        .graceful_shutdown_on(stop)
        .run(pipeline::reconcile, pipeline::error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                match error {
                    controller::Error::ReconcilerFailed(..) => {} // logged by error_policy
                    other => warn!(error = %other, "controller"),
                }
            }
        })
        .await;
    tasks.shutdown().await;
    let kinds_changed = *kinds_changed_rx.borrow();
    Stopped { kinds_changed }
}

/// The controller over every watch: a child event reconciles its owner, a pod event its
/// Microservice (by instance label), a ConfigMap or Secret event the Microservices that
/// reference it (by index).
fn wire(watches: Watches, caches: &Caches, indexes: Arc<Indexes>) -> Controller<Microservice> {
    let Watches {
        microservices,
        classes,
        children,
        pods,
        config_maps,
        secrets,
        namespaces,
    } = watches;
    let mut controller = Controller::for_stream(microservices, caches.microservices.clone());
    for (resource, stream) in children {
        controller = controller.owns_stream_with(stream, resource);
    }
    let config_indexes = indexes.clone();
    let microservices_by_namespace = caches.microservices.clone();
    let bound_classes = caches.classes.clone();
    controller
        .watches_stream(pods, |pod| {
            let name = pod.labels().get(labels::INSTANCE).cloned();
            name.zip(pod.namespace())
                .map(|(name, ns)| ObjectRef::new(&name).within(&ns))
        })
        .watches_stream(config_maps, move |cm| {
            users(&config_indexes, ConfigKind::ConfigMap, &cm)
        })
        .watches_stream(
            secrets.unwrap_or_else(|| futures::stream::empty().boxed()),
            move |secret| users(&indexes, ConfigKind::Secret, &secret),
        )
        // Classes reach their users through the class index (the triggers).
        .watches_stream(classes, |_| Vec::<ObjectRef<Microservice>>::new())
        .watches_stream(
            namespaces.unwrap_or_else(|| futures::stream::empty().boxed()),
            move |namespace| {
                let bound = bound_classes
                    .state()
                    .iter()
                    .any(|class| class.spec.namespace_selector.is_some());
                affected_by_labels_of(
                    &microservices_by_namespace.state(),
                    &namespace.name_any(),
                    bound,
                )
            },
        )
}

/// What a namespace's labels decide: whether its Microservices, as callers, are admitted
/// by targets in other namespaces (their allowFrom, their class's callerNamespaces), and,
/// when some class is bound to namespaces (`classes_bound`), which classes they may use.
/// So a label change reconciles those callers (DependenciesReady) and their targets (the
/// NetworkPolicy rule that lets them in), or every Microservice of the namespace, at once
/// rather than at the next resync.
fn affected_by_labels_of(
    microservices: &[Arc<Microservice>],
    namespace: &str,
    classes_bound: bool,
) -> Vec<ObjectRef<Microservice>> {
    let mut keys = std::collections::BTreeSet::new();
    for ms in microservices
        .iter()
        .filter(|ms| ms.namespace().as_deref() == Some(namespace))
    {
        if classes_bound {
            keys.insert(crate::graph::ObjectKey::of(ms.as_ref()));
        }
        let targets: Vec<_> = crate::graph::dependency_keys(ms)
            .into_iter()
            .filter(|target| target.namespace != namespace)
            .collect();
        if targets.is_empty() {
            continue;
        }
        keys.insert(crate::graph::ObjectKey::of(ms.as_ref()));
        keys.extend(targets);
    }
    keys.into_iter()
        .map(|key| ObjectRef::new(&key.name).within(&key.namespace))
        .collect()
}

fn users<K: Resource>(
    indexes: &Indexes,
    kind: ConfigKind,
    object: &K,
) -> Vec<ObjectRef<Microservice>> {
    let (Some(namespace), Some(name)) = (
        object.meta().namespace.as_deref(),
        object.meta().name.as_deref(),
    ) else {
        return Vec::new();
    };
    indexes
        .config_users(namespace, kind, name)
        .into_iter()
        .map(|key| ObjectRef::new(&key.name).within(&key.namespace))
        .collect()
}

async fn readiness(caches: Caches, health: Arc<Health>) {
    match caches.wait_until_ready().await {
        Ok(()) => {
            info!("every cache has synced");
            health.synced();
        }
        Err(error) => warn!(%error, "a cache stopped before its first list completed"),
    }
}

#[cfg(test)]
mod namespace_tests {
    use super::*;

    fn ms(namespace: &str, name: &str, depends_on: &str) -> Arc<Microservice> {
        Arc::new(
            serde_saphyr::from_str(&format!(
                "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {{image: a, dependsOn: {depends_on}}}"
            ))
            .expect("a Microservice"),
        )
    }

    #[test]
    fn a_namespace_s_labels_reach_its_callers_across_namespaces_and_their_targets() {
        let all = [
            ms(
                "web",
                "shop",
                "[{name: api, namespace: backend}, {name: cache}]",
            ),
            ms("web", "static", "[{name: cache}]"),
            ms("backend", "api", "[]"),
            ms("other", "batch", "[{name: api, namespace: backend}]"),
        ];
        let names = |keys: Vec<ObjectRef<Microservice>>| -> Vec<String> {
            keys.into_iter()
                .map(|key| format!("{}/{}", key.namespace.unwrap_or_default(), key.name))
                .collect()
        };
        assert_eq!(
            names(affected_by_labels_of(&all, "web", false)),
            ["backend/api", "web/shop"]
        );
        assert!(
            affected_by_labels_of(&all, "backend", false).is_empty(),
            "api calls no one elsewhere"
        );
        // With a class bound to namespaces, every Microservice of the namespace.
        assert_eq!(
            names(affected_by_labels_of(&all, "web", true)),
            ["backend/api", "web/shop", "web/static"]
        );
    }
}
