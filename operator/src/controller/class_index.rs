//! Which Microservices use which MicroserviceClass, so a change to a class re-reconciles
//! exactly its users (those naming it, and those naming none while it is or was the
//! default), without listing anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use futures::channel::mpsc::UnboundedSender;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

use crate::api::{Microservice, MicroserviceClass};
use crate::graph::ObjectKey;

#[derive(Default)]
pub struct ClassIndex {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Users by the class they name; `None` holds those naming no class.
    users: BTreeMap<Option<String>, BTreeSet<ObjectKey>>,
    wanted: BTreeMap<ObjectKey, Option<String>>,
}

impl ClassIndex {
    /// Records the class a Microservice names (None: the default class).
    pub fn set_user(&self, key: &ObjectKey, class: Option<String>) {
        let mut state = self.state.lock().expect("class index lock");
        state.forget(key);
        state
            .users
            .entry(class.clone())
            .or_default()
            .insert(key.clone());
        state.wanted.insert(key.clone(), class);
    }

    pub fn remove_user(&self, key: &ObjectKey) {
        self.state.lock().expect("class index lock").forget(key);
    }

    /// The Microservices a change to `class` affects: those naming it, and with
    /// `default_involved` those naming no class.
    pub fn users(&self, class: &str, default_involved: bool) -> BTreeSet<ObjectKey> {
        let state = self.state.lock().expect("class index lock");
        let named = state.users.get(&Some(class.to_string())).into_iter();
        let unnamed = state
            .users
            .get(&None)
            .filter(|_| default_involved)
            .into_iter();
        named.chain(unnamed).flatten().cloned().collect()
    }
}

impl State {
    fn forget(&mut self, key: &ObjectKey) {
        if let Some(class) = self.wanted.remove(key)
            && let Some(users) = self.users.get_mut(&class)
        {
            users.remove(key);
            if users.is_empty() {
                self.users.remove(&class);
            }
        }
    }
}

/// Sends the users of a class whenever what they inherit from it changes: its spec
/// (generation), its default flag, its creation or deletion. Status writes to the
/// class change neither and trigger nothing.
pub struct ClassWatch {
    index: std::sync::Arc<ClassIndex>,
    triggers: UnboundedSender<ObjectRef<Microservice>>,
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    seen: BTreeMap<String, Seen>,
    /// Classes seen during a relist, to notice the ones deleted while the watch was down.
    relisted: Option<BTreeSet<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    generation: Option<i64>,
    default: bool,
}

impl ClassWatch {
    pub fn new(
        index: std::sync::Arc<ClassIndex>,
        triggers: UnboundedSender<ObjectRef<Microservice>>,
    ) -> Self {
        ClassWatch {
            index,
            triggers,
            state: Mutex::default(),
        }
    }

    pub fn observe(&self, event: &Event<MicroserviceClass>) {
        let mut state = self.state.lock().expect("class watch lock");
        match event {
            Event::Init => state.relisted = Some(BTreeSet::new()),
            Event::Apply(class) | Event::InitApply(class) => {
                let name = class.name_any();
                if let Some(relisted) = &mut state.relisted {
                    relisted.insert(name.clone());
                }
                let now = Seen {
                    generation: class.metadata.generation,
                    default: class.spec.default,
                };
                let before = state.seen.insert(name.clone(), now);
                if before != Some(now) {
                    let was_default = before.is_some_and(|b| b.default);
                    self.send(&name, now.default || was_default);
                }
            }
            Event::Delete(class) => {
                let before = state.seen.remove(&class.name_any());
                let was_default = before.is_some_and(|b| b.default) || class.spec.default;
                self.send(&class.name_any(), was_default);
            }
            // Classes deleted while the watch was down are missing from the relist.
            Event::InitDone => {
                let relisted = state.relisted.take().unwrap_or_default();
                let gone: Vec<(String, Seen)> = state
                    .seen
                    .iter()
                    .filter(|(name, _)| !relisted.contains(*name))
                    .map(|(name, seen)| (name.clone(), *seen))
                    .collect();
                for (name, seen) in gone {
                    state.seen.remove(&name);
                    self.send(&name, seen.default);
                }
            }
        }
    }

    fn send(&self, class: &str, default_involved: bool) {
        for key in self.index.users(class, default_involved) {
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
    use std::sync::Arc;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("shop", name)
    }

    fn class(name: &str, generation: i64, default: bool) -> MicroserviceClass {
        let mut class = MicroserviceClass::new(name, Default::default());
        class.metadata.generation = Some(generation);
        class.spec.default = default;
        class
    }

    fn drain(
        rx: &mut futures::channel::mpsc::UnboundedReceiver<ObjectRef<Microservice>>,
    ) -> BTreeSet<String> {
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
    fn users_follow_the_class_they_name() {
        let index = ClassIndex::default();
        index.set_user(&key("a"), Some("golden".into()));
        index.set_user(&key("b"), None);
        index.set_user(&key("c"), Some("batch".into()));
        assert_eq!(index.users("golden", false), BTreeSet::from([key("a")]));
        assert_eq!(
            index.users("golden", true),
            BTreeSet::from([key("a"), key("b")])
        );
        index.set_user(&key("a"), Some("batch".into()));
        assert!(index.users("golden", false).is_empty());
        index.remove_user(&key("c"));
        assert_eq!(index.users("batch", false), BTreeSet::from([key("a")]));
    }

    #[test]
    fn class_changes_trigger_their_users_once() {
        let index = Arc::new(ClassIndex::default());
        index.set_user(&key("named"), Some("golden".into()));
        index.set_user(&key("unnamed"), None);
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let watch = ClassWatch::new(index, tx);

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
        let index = Arc::new(ClassIndex::default());
        index.set_user(&key("named"), Some("golden".into()));
        index.set_user(&key("unnamed"), None);
        index.set_user(&key("other"), Some("batch".into()));
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let watch = ClassWatch::new(index, tx);
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
