//! The Microservice watch: objects that fail to deserialize are skipped (and reported),
//! never allowed to stop the watch; and the dependency and config indexes are kept up to
//! date from the same events, so a change to one Microservice re-reconciles the others it
//! affects without any list call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc::UnboundedSender;
use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::warn;

use crate::api::Microservice;
use crate::builders::config_refs;
use crate::graph::{DependencyIndex, ObjectKey, dependency_keys};

use super::class_index::ClassIndex;
use super::config_index::ConfigIndex;

/// Watches objects of a Flotilla kind (Microservices, MicroserviceClasses) untyped and
/// decodes each one on its own.
pub fn decoded<K>(
    api: Api<DynamicObject>,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static
where
    K: Resource + DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default()).filter_map(|event| async move {
        match event {
            Ok(event) => decode_event(event).map(Ok),
            Err(error) => Some(Err(error)),
        }
    })
}

/// The event with its object decoded, or None when the object does not decode.
pub fn decode_event<K: Resource + DeserializeOwned>(
    event: Event<DynamicObject>,
) -> Option<Event<K>> {
    Some(match event {
        Event::Apply(object) => Event::Apply(decode(object)?),
        Event::InitApply(object) => Event::InitApply(decode(object)?),
        Event::Delete(object) => Event::Delete(decode(object)?),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    })
}

/// Decodes one object, logging the path of the field at fault when it fails.
pub fn decode<K: Resource + DeserializeOwned>(object: DynamicObject) -> Option<K> {
    let kind = object
        .types
        .as_ref()
        .map_or_else(|| "object".to_string(), |t| t.kind.clone());
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let value = match serde_json::to_value(&object) {
        Ok(value) => value,
        Err(error) => {
            warn!(%kind, %namespace, %name, %error, "skipping an object that does not serialize");
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, K>(value) {
        Ok(object) => Some(object),
        Err(error) => {
            warn!(%kind, %namespace, %name, field = %error.path(), error = %error.inner(),
                "skipping an object that does not decode; the others are still served");
            None
        }
    }
}

/// Feeds the indexes from Microservice events and sends the Microservices whose
/// children a change affects: the old and new dependencies of the changed one (their
/// NetworkPolicy ingress) and its dependents (their env and egress follow its ports).
pub struct GraphWatch {
    dependencies: Arc<DependencyIndex>,
    configs: Arc<ConfigIndex>,
    classes: Arc<ClassIndex>,
    triggers: UnboundedSender<ObjectRef<Microservice>>,
    state: Mutex<SeenState>,
}

#[derive(Default)]
struct SeenState {
    /// Last generation and readiness seen per object: other status updates change
    /// nothing for its neighbours.
    seen: BTreeMap<ObjectKey, Seen>,
    /// Objects seen during a relist, to forget the ones deleted while the watch was down.
    relisted: Option<Vec<ObjectKey>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    generation: Option<i64>,
    ready: bool,
}

impl GraphWatch {
    pub fn new(
        dependencies: Arc<DependencyIndex>,
        configs: Arc<ConfigIndex>,
        classes: Arc<ClassIndex>,
        triggers: UnboundedSender<ObjectRef<Microservice>>,
    ) -> Self {
        GraphWatch {
            dependencies,
            configs,
            classes,
            triggers,
            state: Mutex::default(),
        }
    }

    pub fn observe(&self, event: &Event<Microservice>) {
        let mut state = self.state.lock().expect("graph watch lock");
        match event {
            Event::Init => state.relisted = Some(Vec::new()),
            Event::InitApply(ms) | Event::Apply(ms) => {
                let key = ObjectKey::of(ms);
                if let Some(relisted) = &mut state.relisted {
                    relisted.push(key.clone());
                }
                let now = Seen {
                    generation: ms.meta().generation,
                    ready: ms.is_ready(),
                };
                match state.seen.insert(key.clone(), now) {
                    Some(before) if before == now => {}
                    // Only readiness changed: the callers' DependenciesReady follows it.
                    Some(before) if before.generation == now.generation => {
                        self.send(&key, self.dependencies.dependents_of(&key));
                    }
                    _ => {
                        self.configs.update(&key, &config_refs(&ms.spec));
                        self.classes.set_user(&key, ms.spec.class.clone());
                        let affected = self.dependencies.update(key.clone(), dependency_keys(ms));
                        self.send(&key, affected);
                    }
                }
            }
            Event::Delete(ms) => {
                let key = ObjectKey::of(ms);
                state.seen.remove(&key);
                self.forget(&key);
            }
            Event::InitDone => {
                let seen = state.relisted.take().unwrap_or_default();
                let gone: Vec<ObjectKey> = state
                    .seen
                    .keys()
                    .filter(|key| !seen.contains(key))
                    .cloned()
                    .collect();
                for key in gone {
                    state.seen.remove(&key);
                    self.forget(&key);
                }
            }
        }
    }

    fn forget(&self, key: &ObjectKey) {
        self.configs.remove(key);
        self.classes.remove_user(key);
        let affected = self.dependencies.remove(key);
        self.send(key, affected);
    }

    fn send(&self, changed: &ObjectKey, affected: impl IntoIterator<Item = ObjectKey>) {
        for key in affected.into_iter().filter(|key| key != changed) {
            // The receiver lives as long as the controller; after it stops nobody listens.
            let _ = self
                .triggers
                .unbounded_send(ObjectRef::new(&key.name).within(&key.namespace));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(name: &str, generation: i64, depends_on: &[&str]) -> Microservice {
        let deps: Vec<_> = depends_on.iter().map(|d| json!({"name": d})).collect();
        serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": name, "namespace": "shop", "generation": generation},
            "spec": {"image": "x:1", "ports": [{"name": "http", "port": 80}], "dependsOn": deps}
        }))
        .unwrap()
    }

    fn flotilla_ready_status() -> crate::api::MicroserviceStatus {
        serde_json::from_value(
            json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Available",
            "message": "", "lastTransitionTime": "2026-11-27T00:00:00Z"}]}),
        )
        .unwrap()
    }

    fn graph_watch() -> (
        GraphWatch,
        futures::channel::mpsc::UnboundedReceiver<ObjectRef<Microservice>>,
    ) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let index = Arc::new(DependencyIndex::new());
        (
            GraphWatch::new(
                index,
                Arc::new(ConfigIndex::default()),
                Arc::new(ClassIndex::default()),
                tx,
            ),
            rx,
        )
    }

    fn drain(
        rx: &mut futures::channel::mpsc::UnboundedReceiver<ObjectRef<Microservice>>,
    ) -> Vec<String> {
        let mut names = Vec::new();
        while let Ok(object) = rx.try_recv() {
            names.push(object.name);
        }
        names.sort();
        names
    }

    #[test]
    fn dependency_changes_trigger_old_and_new_targets() {
        let (watch, mut rx) = graph_watch();
        watch.observe(&Event::Apply(ms("orders", 1, &["users"])));
        assert_eq!(drain(&mut rx), vec!["users"]);
        // A status-only update (same generation) changes nothing in the graph.
        watch.observe(&Event::Apply(ms("orders", 1, &["users"])));
        assert!(drain(&mut rx).is_empty());
        watch.observe(&Event::Apply(ms("orders", 2, &["payments"])));
        assert_eq!(drain(&mut rx), vec!["payments", "users"]);
        // users turning Ready re-reconciles its callers: none now, orders no longer calls it.
        let mut ready_users = ms("users", 1, &[]);
        ready_users.status = Some(flotilla_ready_status());
        watch.observe(&Event::Apply(ms("users", 1, &[])));
        drain(&mut rx);
        watch.observe(&Event::Apply(ready_users));
        assert!(drain(&mut rx).is_empty());
        let mut ready_payments = ms("payments", 1, &[]);
        watch.observe(&Event::Apply(ready_payments.clone()));
        drain(&mut rx);
        ready_payments.status = Some(flotilla_ready_status());
        watch.observe(&Event::Apply(ready_payments));
        assert_eq!(drain(&mut rx), vec!["orders"]);
        watch.observe(&Event::Delete(ms("orders", 2, &["payments"])));
        assert_eq!(drain(&mut rx), vec!["payments"]);
    }

    #[test]
    fn relist_forgets_objects_deleted_while_away() {
        let (watch, mut rx) = graph_watch();
        watch.observe(&Event::Apply(ms("orders", 1, &["users"])));
        drain(&mut rx);
        watch.observe(&Event::Init);
        watch.observe(&Event::InitApply(ms("users", 1, &[])));
        watch.observe(&Event::InitDone);
        // orders vanished while the watch was down: users must drop its ingress rule.
        assert!(drain(&mut rx).contains(&"users".to_string()));
        // And orders is forgotten: a later change to users triggers nobody.
        watch.observe(&Event::Apply(ms("users", 2, &[])));
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn undecodable_objects_are_skipped() {
        let bad: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "broken", "namespace": "shop"},
            "spec": {"image": "x:1", "replicas": "three"}
        }))
        .unwrap();
        assert!(decode_event::<Microservice>(Event::Apply(bad)).is_none());
        assert!(matches!(
            decode_event::<Microservice>(Event::InitDone),
            Some(Event::InitDone)
        ));
    }
}
