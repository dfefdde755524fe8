//! The dashboard's view of the cluster: watches on Microservices, classes and (with the
//! right to list them) namespaces, and the snapshot the page draws, rebuilt when any of
//! them changed and handed to every open page.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::sync::{Notify, watch};

use super::snapshot::{Connection, snapshot};
use crate::api::{Microservice, MicroserviceClass};
use crate::client::{WatchBackoff, watch_config};
use crate::graph::Admission;
use crate::view::GraphView;

/// Changes closer together than this are drawn once: a release touches a status several
/// times a second, and a thousand-service page need not be rebuilt for each.
const SETTLE: Duration = Duration::from_millis(150);

/// The snapshot as sent (JSON), shared by every page.
pub type Published = Arc<String>;

/// What the dashboard watches, and the latest snapshot.
pub struct Model {
    microservices: Store<Microservice>,
    classes: Store<MicroserviceClass>,
    namespaces: Option<Store<PartialObjectMeta<Namespace>>>,
    /// Each watch's last error, by what it watches; empty while all are up.
    errors: Mutex<BTreeMap<&'static str, String>>,
    changed: Notify,
    published: watch::Sender<Published>,
    /// What is watched, for the page's banner: `namespace shop` or `every namespace`.
    scope: String,
}

impl Model {
    /// Starts the watches (in `namespace`, or every namespace) and the task that rebuilds
    /// the snapshot; returns the model.
    pub async fn start(client: Client, namespace: Option<String>) -> Arc<Model> {
        let (microservices, ms_writer) = reflector::store();
        let (classes, class_writer) = reflector::store();
        // Namespace labels decide cross-namespace consent; without the right to list
        // namespaces a namespace is known by its name label, as the operator does when
        // it watches one namespace.
        let namespace_api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        let can_list_namespaces = namespace.is_none()
            && namespace_api
                .list(&ListParams::default().limit(1))
                .await
                .is_ok();
        let (namespaces, namespace_writer) = if can_list_namespaces {
            let (store, writer) = reflector::store();
            (Some(store), Some(writer))
        } else {
            (None, None)
        };
        let (published, _) = watch::channel(Arc::new(String::new()));
        let model = Arc::new(Model {
            microservices,
            classes,
            namespaces,
            errors: Mutex::new(BTreeMap::new()),
            changed: Notify::new(),
            published,
            scope: match &namespace {
                Some(namespace) => format!("namespace {namespace}"),
                None => "every namespace".to_string(),
            },
        });
        let ms_api: Api<Microservice> = match &namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        };
        tokio::spawn(follow(model.clone(), "Microservices", ms_api, ms_writer));
        let class_api: Api<MicroserviceClass> = Api::all(client.clone());
        tokio::spawn(follow(
            model.clone(),
            "MicroserviceClasses",
            class_api,
            class_writer,
        ));
        if let Some(writer) = namespace_writer {
            tokio::spawn(follow(model.clone(), "Namespaces", namespace_api, writer));
        }
        tokio::spawn(publish(model.clone()));
        model
    }

    /// The latest snapshot, and the changes to come.
    pub fn subscribe(&self) -> watch::Receiver<Published> {
        self.published.subscribe()
    }

    fn connection(&self) -> Connection {
        let errors = self.errors.lock().expect("not poisoned");
        if errors.is_empty() {
            Connection {
                connected: true,
                message: format!("watching Microservices in {}", self.scope),
            }
        } else {
            Connection {
                connected: false,
                message: errors
                    .iter()
                    .map(|(what, error)| format!("watching {what}: {error}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        }
    }

    fn graph(&self) -> GraphView {
        let classes = self.classes.state();
        let classes: Vec<&MicroserviceClass> = classes.iter().map(|c| c.as_ref()).collect();
        let lookup = |name: &str| -> Option<BTreeMap<String, String>> {
            let store = self.namespaces.as_ref()?;
            store
                .get(&ObjectRef::new(name))
                .map(|ns| ns.labels().clone())
        };
        let admission = Admission {
            classes: &classes,
            namespace_labels: self.namespaces.as_ref().map(|_| &lookup as _),
        };
        let microservices = self.microservices.state();
        GraphView::of(microservices.iter().map(|ms| ms.as_ref()), &admission)
    }
}

/// Runs one watch into its store for as long as the process lives. After an error it
/// starts over with a fresh list once the backoff has passed: kube's watcher resumes
/// silently, so only a list that succeeds tells the page the watch is back (and a fresh
/// list of a few thousand objects is cheap for one person's page).
async fn follow<K>(model: Arc<Model>, what: &'static str, api: Api<K>, mut writer: Writer<K>)
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let mut backoff = WatchBackoff::default();
    loop {
        let mut events = std::pin::pin!(watcher(api.clone(), watch_config()));
        while let Some(event) = events.next().await {
            let mut errors = model.errors.lock().expect("not poisoned");
            match event {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    errors.remove(what);
                }
                Err(error) => {
                    errors.insert(what, error.to_string());
                    drop(errors);
                    model.changed.notify_one();
                    break;
                }
            }
            drop(errors);
            model.changed.notify_one();
        }
        let delay = backoff.next().unwrap_or(Duration::from_secs(5));
        tokio::time::sleep(delay).await;
    }
}

/// Rebuilds the snapshot after each settled burst of changes; sends it only when what the
/// page shows changed.
async fn publish(model: Arc<Model>) {
    let mut version = 0;
    let mut last = None;
    loop {
        model.changed.notified().await;
        tokio::time::sleep(SETTLE).await;
        let (graph, connection) = (model.graph(), model.connection());
        if last.as_ref() == Some(&(graph.clone(), connection.clone())) {
            continue;
        }
        version += 1;
        let json = serde_json::to_string(&snapshot(&graph, &connection, version))
            .expect("a snapshot serializes");
        model.published.send_replace(Arc::new(json));
        last = Some((graph, connection));
    }
}
