//! The indexes the watches keep, so that an event re-reconciles exactly the Microservices
//! it affects without listing anything: who depends on whom, who references which
//! ConfigMap or Secret, who uses which class. Three [`ReverseIndex`]es behind one lock,
//! fed by [`MicroserviceWatch`] and read by [`ClassWatch`] and the ConfigMap and Secret
//! watch mappers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::mpsc::UnboundedSender;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

use crate::api::{Microservice, MicroserviceClass};
use crate::builders::{ConfigKind, config_refs};
use crate::graph::{ObjectKey, dependency_keys};

use super::reverse_index::{RelistTracker, ReverseIndex, Transition};
use crate::controller::queue::edits::Edits;

/// A ConfigMap or Secret: namespace, kind, name.
type ConfigKey = (String, ConfigKind, String);

#[derive(Debug, Default)]
pub struct Indexes {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    dependencies: ReverseIndex<ObjectKey>,
    configs: ReverseIndex<ConfigKey>,
    /// The Secrets of backing services, which the class names: recorded by the reconcile
    /// that resolved them, not read from the spec.
    backing: ReverseIndex<ConfigKey>,
    /// The Microservices that run backing services, which the class names: recorded
    /// like `backing`. A broker's users are its dependents.
    backing_microservices: ReverseIndex<ObjectKey>,
    /// The class each one names; `None` for those naming none (the default class's).
    classes: ReverseIndex<Option<String>>,
}

impl Indexes {
    /// A poisoned lock is recovered: every index stays consistent between statements.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records what `ms` names and returns the other Microservices whose children may
    /// change: its old and new dependencies (their ingress follows its dependsOn) and its
    /// dependents (their env and egress follow its ports).
    pub fn update(&self, ms: &Microservice) -> BTreeSet<ObjectKey> {
        let key = ObjectKey::of(ms);
        let configs = config_refs(&ms.spec)
            .into_iter()
            .map(|r| (key.namespace.clone(), r.kind, r.name))
            .collect();
        let dependencies = dependency_keys(ms);
        let mut inner = self.lock();
        inner.configs.set(&key, configs);
        inner
            .classes
            .set(&key, BTreeSet::from([ms.spec.class.clone()]));
        let mut affected = inner.dependencies.set(&key, dependencies.clone());
        affected.extend(dependencies);
        affected.extend(inner.dependencies.users(&key).cloned());
        // A broker's users wait for it and take its address: its edits reach them. (Its
        // own backing services are recorded by its reconcile, which triggers them.)
        affected.extend(inner.backing_microservices.users(&key).cloned());
        affected.remove(&key);
        affected
    }

    /// Forgets a deleted Microservice and returns the others whose children may change:
    /// its former dependencies and its dependents (theirs now miss it). Its dependents
    /// still name it: it may come back.
    pub fn remove(&self, key: &ObjectKey) -> BTreeSet<ObjectKey> {
        let mut inner = self.lock();
        inner.configs.remove(key);
        inner.backing.remove(key);
        inner.classes.remove(key);
        let mut affected = inner.dependencies.remove(key);
        affected.extend(inner.backing_microservices.remove(key));
        affected.extend(inner.dependencies.users(key).cloned());
        affected.extend(inner.backing_microservices.users(key).cloned());
        affected.remove(key);
        affected
    }

    /// The Microservices that name `key` in `dependsOn`, or that their class binds to
    /// it as a backing service.
    pub fn dependents_of(&self, key: &ObjectKey) -> BTreeSet<ObjectKey> {
        let inner = self.lock();
        inner
            .dependencies
            .users(key)
            .chain(inner.backing_microservices.users(key))
            .cloned()
            .collect()
    }

    /// Records the backing services of the Microservice `key` as its reconcile resolved
    /// them: the Secrets it reads and the Microservices that run the others. Returns the
    /// Microservices it binds or no longer binds, whose NetworkPolicies follow their
    /// users.
    pub fn record_backing(
        &self,
        key: &ObjectKey,
        secrets: &[String],
        microservices: &[(String, String)],
    ) -> BTreeSet<ObjectKey> {
        let secrets = secrets
            .iter()
            .map(|name| (key.namespace.clone(), ConfigKind::Secret, name.clone()))
            .collect();
        let now: BTreeSet<ObjectKey> = microservices
            .iter()
            .map(|(namespace, name)| ObjectKey::new(namespace.clone(), name.clone()))
            .collect();
        let mut inner = self.lock();
        inner.backing.set(key, secrets);
        let before = inner.backing_microservices.set(key, now.clone());
        let mut changed: BTreeSet<ObjectKey> = before.symmetric_difference(&now).cloned().collect();
        changed.remove(key);
        changed
    }

    /// The Microservices that reference this ConfigMap or Secret.
    pub fn config_users(&self, namespace: &str, kind: ConfigKind, name: &str) -> Vec<ObjectKey> {
        let key = (namespace.to_string(), kind, name.to_string());
        let inner = self.lock();
        let users: BTreeSet<ObjectKey> = inner
            .configs
            .users(&key)
            .chain(inner.backing.users(&key))
            .cloned()
            .collect();
        users.into_iter().collect()
    }

    /// Whether any Microservice references this ConfigMap or Secret.
    pub fn config_referenced(&self, namespace: &str, kind: ConfigKind, name: &str) -> bool {
        let key = (namespace.to_string(), kind, name.to_string());
        let inner = self.lock();
        inner.configs.users(&key).next().is_some() || inner.backing.users(&key).next().is_some()
    }

    /// The Microservices a change to `class` affects: those naming it, and with
    /// `default_involved` those naming no class.
    pub fn class_users(&self, class: &str, default_involved: bool) -> BTreeSet<ObjectKey> {
        let inner = self.lock();
        let named = inner.classes.users(&Some(class.to_string()));
        let unnamed = default_involved
            .then(|| inner.classes.users(&None))
            .into_iter()
            .flatten();
        named.chain(unnamed).cloned().collect()
    }
}

/// Sends Microservices to reconcile, next to their own watch events.
#[derive(Clone)]
pub struct Triggers(UnboundedSender<ObjectRef<Microservice>>);

impl Triggers {
    pub fn new(sender: UnboundedSender<ObjectRef<Microservice>>) -> Self {
        Triggers(sender)
    }

    pub fn send(&self, keys: impl IntoIterator<Item = ObjectKey>) {
        for key in keys {
            // The receiver lives as long as the controller; after it stops nobody listens.
            let _ = self
                .0
                .unbounded_send(ObjectRef::new(&key.name).within(&key.namespace));
        }
    }
}

/// What of a Microservice matters to the others: its spec (by generation) and whether
/// it is Ready (its callers' DependenciesReady follows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MicroserviceSeen {
    generation: Option<i64>,
    ready: bool,
}

/// Feeds the indexes from Microservice events and triggers the Microservices a change
/// affects.
pub struct MicroserviceWatch {
    indexes: Arc<Indexes>,
    triggers: Triggers,
    /// New generations of Microservices seen before: the edit lane takes them first.
    edits: Edits,
    seen: RelistTracker<ObjectKey, MicroserviceSeen>,
}

impl MicroserviceWatch {
    pub fn new(indexes: Arc<Indexes>, triggers: Triggers, edits: Edits) -> Self {
        MicroserviceWatch {
            indexes,
            triggers,
            edits,
            seen: RelistTracker::default(),
        }
    }

    pub fn observe(&mut self, event: &Event<Microservice>) {
        let summary = |ms: &Microservice| MicroserviceSeen {
            generation: ms.metadata.generation,
            ready: ms.is_ready(),
        };
        for transition in self.seen.observe(event, ObjectKey::of, summary) {
            match transition {
                // Only readiness changed: the callers' DependenciesReady follows it.
                Transition::Changed {
                    object,
                    before: Some(before),
                    now,
                } if before.generation == now.generation => {
                    self.triggers
                        .send(self.indexes.dependents_of(&ObjectKey::of(object)));
                }
                Transition::Changed { object, before, .. } => {
                    // An edit (not a creation, nor a relist's first sight): first in line.
                    if before.is_some() {
                        self.edits.send(ObjectRef::from_obj(object));
                    }
                    self.triggers.send(self.indexes.update(object));
                }
                Transition::Gone { key, .. } => self.triggers.send(self.indexes.remove(&key)),
            }
        }
    }
}

/// What of a class its users inherit: its spec (by generation) and its default flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ClassSeen {
    generation: Option<i64>,
    default: bool,
}

/// Triggers the users of a class whenever what they inherit from it changes: its spec,
/// its default flag, its creation or deletion (also while the watch was down). Status
/// writes to the class change neither and trigger nothing.
pub struct ClassWatch {
    indexes: Arc<Indexes>,
    triggers: Triggers,
    seen: RelistTracker<String, ClassSeen>,
}

impl ClassWatch {
    pub fn new(indexes: Arc<Indexes>, triggers: Triggers) -> Self {
        ClassWatch {
            indexes,
            triggers,
            seen: RelistTracker::default(),
        }
    }

    pub fn observe(&mut self, event: &Event<MicroserviceClass>) {
        let summary = |class: &MicroserviceClass| ClassSeen {
            generation: class.metadata.generation,
            default: class.spec.default,
        };
        for transition in self.seen.observe(event, ResourceExt::name_any, summary) {
            let was_default = |last: Option<ClassSeen>| last.is_some_and(|l| l.default);
            let (name, default_involved) = match transition {
                Transition::Changed {
                    object,
                    before,
                    now,
                } => (object.name_any(), now.default || was_default(before)),
                Transition::Gone { key, last, object } => {
                    let deleted_as_default = object.is_some_and(|c| c.spec.default);
                    (key, was_default(last) || deleted_as_default)
                }
            };
            self.triggers
                .send(self.indexes.class_users(&name, default_involved));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc::{UnboundedReceiver, unbounded};
    use serde_json::json;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("shop", name)
    }

    fn keys(names: &[&str]) -> BTreeSet<ObjectKey> {
        names.iter().map(|n| key(n)).collect()
    }

    fn ms(name: &str, generation: i64, depends_on: &[&str]) -> Microservice {
        ms_with(name, generation, depends_on, None)
    }

    fn ms_with(
        name: &str,
        generation: i64,
        depends_on: &[&str],
        class: Option<&str>,
    ) -> Microservice {
        let deps: Vec<_> = depends_on.iter().map(|d| json!({"name": d})).collect();
        serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": name, "namespace": "shop", "generation": generation},
            "spec": {"image": "x:1", "ports": [{"name": "http", "port": 80}], "dependsOn": deps,
                     "class": class,
                     "envFrom": [{"configMapRef": {"name": format!("{name}-config")}}]}
        }))
        .unwrap()
    }

    fn ready(mut ms: Microservice) -> Microservice {
        ms.status = Some(
            serde_json::from_value(json!({"conditions": [{"type": "Ready", "status": "True",
                "reason": "Available", "message": "", "lastTransitionTime": "2026-11-27T00:00:00Z"}]}))
            .unwrap(),
        );
        ms
    }

    fn class(name: &str, generation: i64, default: bool) -> MicroserviceClass {
        let mut class = MicroserviceClass::new(name, Default::default());
        class.metadata.generation = Some(generation);
        class.spec.default = default;
        class
    }

    fn triggers() -> (Triggers, UnboundedReceiver<ObjectRef<Microservice>>) {
        let (tx, rx) = unbounded();
        (Triggers::new(tx), rx)
    }

    fn drain(rx: &mut UnboundedReceiver<ObjectRef<Microservice>>) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        while let Ok(object) = rx.try_recv() {
            names.insert(object.name);
        }
        names
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn update_returns_old_and_new_dependencies_and_dependents() {
        let index = Indexes::default();
        assert_eq!(
            index.update(&ms("storefront", 1, &["users", "orders"])),
            keys(&["users", "orders"])
        );
        assert_eq!(
            index.update(&ms("orders", 1, &["users"])),
            keys(&["users", "storefront"])
        );
        // storefront drops users: users must lose its ingress rule, orders is still named.
        assert_eq!(
            index.update(&ms("storefront", 2, &["orders"])),
            keys(&["users", "orders"])
        );
        assert_eq!(index.dependents_of(&key("users")), keys(&["orders"]));
        // An event on users (e.g. a port change) reaches its callers only.
        assert_eq!(index.update(&ms("users", 1, &[])), keys(&["orders"]));
        // The key itself is never in the result.
        assert_eq!(
            index.update(&ms("loop", 1, &["loop", "other"])),
            keys(&["other"])
        );
    }

    #[test]
    fn remove_reaches_dependencies_and_dependents_and_keeps_their_edges() {
        let index = Indexes::default();
        index.update(&ms("storefront", 1, &["orders"]));
        index.update(&ms("orders", 1, &["users"]));
        assert_eq!(index.remove(&key("orders")), keys(&["users", "storefront"]));
        assert!(index.dependents_of(&key("users")).is_empty());
        assert_eq!(index.dependents_of(&key("orders")), keys(&["storefront"]));
        // Removing twice or removing the unknown is harmless.
        assert_eq!(index.remove(&key("orders")), keys(&["storefront"]));
        assert!(index.remove(&key("nobody")).is_empty());
        assert!(
            index
                .config_users("shop", ConfigKind::ConfigMap, "orders-config")
                .is_empty()
        );
    }

    #[test]
    fn config_and_class_users_follow_the_spec() {
        let index = Indexes::default();
        index.update(&ms_with("a", 1, &[], Some("golden")));
        index.update(&ms_with("b", 1, &[], None));
        assert_eq!(
            index.config_users("shop", ConfigKind::ConfigMap, "a-config"),
            [key("a")]
        );
        assert!(
            index
                .config_users("shop", ConfigKind::Secret, "a-config")
                .is_empty()
        );
        assert!(
            index
                .config_users("other", ConfigKind::ConfigMap, "a-config")
                .is_empty()
        );
        assert_eq!(index.class_users("golden", false), keys(&["a"]));
        assert_eq!(index.class_users("golden", true), keys(&["a", "b"]));
        index.update(&ms_with("a", 2, &[], Some("batch")));
        assert!(index.class_users("golden", false).is_empty());
        index.remove(&key("a"));
        assert!(index.class_users("batch", false).is_empty());
    }

    #[test]
    fn a_brokers_users_are_its_dependents_and_rebinding_names_the_brokers() {
        let index = Indexes::default();
        let shop = |name: &str| ("shop".to_string(), name.to_string());
        // orders starts using nats: nats must admit it.
        assert_eq!(
            index.record_backing(&key("orders"), &[], &[shop("nats")]),
            keys(&["nats"])
        );
        assert_eq!(index.dependents_of(&key("nats")), keys(&["orders"]));
        // The same binding again changes nothing.
        assert!(
            index
                .record_backing(&key("orders"), &[], &[shop("nats")])
                .is_empty()
        );
        // The class moves it to another broker: both change.
        assert_eq!(
            index.record_backing(&key("orders"), &[], &[shop("kafka")]),
            keys(&["nats", "kafka"])
        );
        assert!(index.dependents_of(&key("nats")).is_empty());
        // The broker itself edited or deleted: its users follow.
        assert!(index.update(&ms("kafka", 1, &[])).contains(&key("orders")));
        assert!(index.remove(&key("kafka")).contains(&key("orders")));
        // A user deleted: its broker's ingress loses it.
        assert!(index.remove(&key("orders")).contains(&key("kafka")));
        assert!(index.dependents_of(&key("kafka")).is_empty());
    }

    #[test]
    fn dependency_changes_trigger_old_and_new_targets() {
        let (triggers, mut rx) = triggers();
        let (edits, mut edited) = crate::controller::queue::edits::channel(16);
        let mut watch = MicroserviceWatch::new(Arc::default(), triggers, edits);
        watch.observe(&Event::Apply(ms("orders", 1, &["users"])));
        assert_eq!(drain(&mut rx), names(&["users"]));
        assert!(edited.try_next().is_none(), "a creation is not an edit");
        // A status-only update (same generation) changes nothing in the graph.
        watch.observe(&Event::Apply(ms("orders", 1, &["users"])));
        assert!(drain(&mut rx).is_empty());
        watch.observe(&Event::Apply(ms("orders", 2, &["payments"])));
        assert_eq!(drain(&mut rx), names(&["payments", "users"]));
        assert_eq!(
            edited.try_next().map(|key| key.name),
            Some("orders".to_string()),
            "a new generation goes first"
        );
        // users turning Ready re-reconciles its callers: none now, orders no longer calls it.
        watch.observe(&Event::Apply(ms("users", 1, &[])));
        drain(&mut rx);
        watch.observe(&Event::Apply(ready(ms("users", 1, &[]))));
        assert!(drain(&mut rx).is_empty());
        watch.observe(&Event::Apply(ms("payments", 1, &[])));
        drain(&mut rx);
        watch.observe(&Event::Apply(ready(ms("payments", 1, &[]))));
        assert_eq!(drain(&mut rx), names(&["orders"]));
        watch.observe(&Event::Delete(ms("orders", 2, &["payments"])));
        assert_eq!(drain(&mut rx), names(&["payments"]));
    }

    #[test]
    fn relist_forgets_microservices_deleted_while_away() {
        let (triggers, mut rx) = triggers();
        let (edits, _edited) = crate::controller::queue::edits::channel(16);
        let mut watch = MicroserviceWatch::new(Arc::default(), triggers, edits);
        watch.observe(&Event::Apply(ms("orders", 1, &["users"])));
        drain(&mut rx);
        watch.observe(&Event::Init);
        watch.observe(&Event::InitApply(ms("users", 1, &[])));
        watch.observe(&Event::InitDone);
        // orders vanished while the watch was down: users must drop its ingress rule.
        assert!(drain(&mut rx).contains("users"));
        // And orders is forgotten: a later change to users triggers nobody.
        watch.observe(&Event::Apply(ms("users", 2, &[])));
        assert!(drain(&mut rx).is_empty());
    }

    fn class_setup() -> (ClassWatch, UnboundedReceiver<ObjectRef<Microservice>>) {
        let indexes = Arc::new(Indexes::default());
        indexes.update(&ms_with("named", 1, &[], Some("golden")));
        indexes.update(&ms_with("unnamed", 1, &[], None));
        indexes.update(&ms_with("other", 1, &[], Some("batch")));
        let (triggers, rx) = triggers();
        (ClassWatch::new(indexes, triggers), rx)
    }

    #[test]
    fn class_changes_trigger_their_users_once() {
        let (mut watch, mut rx) = class_setup();
        watch.observe(&Event::Apply(class("golden", 1, false)));
        assert_eq!(drain(&mut rx), names(&["named"]));
        // A status write: same generation, same default flag.
        watch.observe(&Event::Apply(class("golden", 1, false)));
        assert!(drain(&mut rx).is_empty());
        // Becoming the default affects those naming no class.
        watch.observe(&Event::Apply(class("golden", 2, true)));
        assert_eq!(drain(&mut rx), names(&["named", "unnamed"]));
        // Ceasing to be the default too.
        watch.observe(&Event::Apply(class("golden", 3, false)));
        assert_eq!(drain(&mut rx), names(&["named", "unnamed"]));
        watch.observe(&Event::Delete(class("golden", 3, false)));
        assert_eq!(drain(&mut rx), names(&["named"]));
    }

    #[test]
    fn a_class_deleted_while_the_watch_was_down_triggers_its_users() {
        let (mut watch, mut rx) = class_setup();
        watch.observe(&Event::Apply(class("golden", 1, true)));
        watch.observe(&Event::Apply(class("batch", 1, false)));
        drain(&mut rx);

        // The relist after a disconnection holds batch only: golden is gone.
        watch.observe(&Event::Init);
        watch.observe(&Event::InitApply(class("batch", 1, false)));
        assert!(
            drain(&mut rx).is_empty(),
            "an unchanged class triggers nothing"
        );
        watch.observe(&Event::InitDone);
        assert_eq!(drain(&mut rx), names(&["named", "unnamed"]));
    }
}
