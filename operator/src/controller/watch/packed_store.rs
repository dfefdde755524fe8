//! The cache of one child kind, or of Flotilla's pods: fed by its watch, it holds each
//! object as its identity (namespace, name, UID, version, owners' UIDs) and one compact
//! JSON text of the rest, and indexes the objects by owner UID.
//!
//! kube-runtime's `Store<DynamicObject>` holds, per object, a whole `ObjectMeta` (about
//! 360 bytes before any string), a key carrying a copy of the kind's `ApiResource` (five
//! strings) and of the object's identity, and the body as a JSON tree. Here an object
//! costs a few hundred bytes besides its text, namespaces are shared, and pruning reads
//! only the objects its Microservice owns instead of scanning the kind.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

/// The reading side of a watch-fed cache; clones read the same objects.
#[derive(Clone)]
pub struct PackedStore {
    inner: Arc<RwLock<Inner>>,
    ready: watch::Receiver<bool>,
}

/// The side the watch feeds. When it is dropped before the first list completed, those
/// waiting for the store to be ready are told.
pub struct PackedWriter {
    inner: Arc<RwLock<Inner>>,
    ready: watch::Sender<bool>,
}

/// A new, empty cache: the writer for its watch and the store to read.
pub fn packed_store() -> (PackedWriter, PackedStore) {
    let inner = Arc::<RwLock<Inner>>::default();
    let (ready_tx, ready) = watch::channel(false);
    (
        PackedWriter {
            inner: inner.clone(),
            ready: ready_tx,
        },
        PackedStore { inner, ready },
    )
}

/// The watch feeding a cache ended before its first list completed.
#[derive(Debug, thiserror::Error)]
#[error("a cache's watch ended before its first list completed")]
pub struct CacheGone;

#[derive(Default)]
struct Inner {
    objects: HashMap<Key, Entry>,
    /// Owner UID → the objects it owns.
    owned: HashMap<Box<str>, Box<[Key]>>,
    /// Every namespace seen, shared by the keys.
    namespaces: HashSet<Arc<str>>,
    /// The objects of a list under way, which replace the cache when it completes.
    relisted: Option<Vec<(Key, Entry)>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    namespace: Arc<str>,
    name: Box<str>,
}

impl Key {
    /// A key to look an object up with (its namespace not shared with the stored ones).
    fn new(namespace: &str, name: &str) -> Self {
        Key {
            namespace: Arc::from(namespace),
            name: Box::from(name),
        }
    }
}

struct Entry {
    uid: Option<Box<str>>,
    resource_version: Option<Box<str>>,
    owners: Box<[Box<str>]>,
    /// The rest of the metadata and the body: a [`Packed`] as JSON.
    text: Box<str>,
}

/// What an object's text holds.
#[derive(Serialize, Deserialize)]
struct Packed {
    metadata: ObjectMeta,
    body: Value,
}

fn lock_read(inner: &RwLock<Inner>) -> RwLockReadGuard<'_, Inner> {
    inner
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_write(inner: &RwLock<Inner>) -> RwLockWriteGuard<'_, Inner> {
    inner
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PackedWriter {
    /// Applies one watch event, as kube-runtime's reflector does: a relist replaces the
    /// whole cache when it completes, and the cache is ready after the first one.
    pub fn apply(&self, event: &Event<DynamicObject>) {
        let mut inner = lock_write(&self.inner);
        match event {
            Event::Init => inner.relisted = Some(Vec::new()),
            Event::InitApply(object) => {
                if let Some(item) = inner.entry(object) {
                    inner.relisted.get_or_insert_with(Vec::new).push(item);
                }
            }
            Event::InitDone => {
                let relisted = inner.relisted.take().unwrap_or_default();
                inner.objects.clear();
                inner.owned.clear();
                for (key, entry) in relisted {
                    inner.insert(key, entry);
                }
                // Namespaces no object is in any more are not kept for ever.
                inner.namespaces = inner
                    .objects
                    .keys()
                    .map(|key| key.namespace.clone())
                    .collect();
                drop(inner);
                self.ready.send_replace(true);
            }
            Event::Apply(object) => {
                if let Some((key, entry)) = inner.entry(object) {
                    inner.insert(key, entry);
                }
            }
            Event::Delete(object) => {
                // Only the key: a deleted object's text is never read.
                if let Some(name) = object.metadata.name.as_deref() {
                    let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
                    inner.remove(&Key::new(namespace, name));
                }
            }
        }
    }
}

impl PackedStore {
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        lock_read(&self.inner)
    }

    /// The object `name` in `namespace`, unpacked (without apiVersion and kind).
    pub fn get(&self, name: &str, namespace: &str) -> Option<DynamicObject> {
        let inner = self.read();
        let key = Key::new(namespace, name);
        inner.objects.get(&key).map(|entry| unpack(&key, entry))
    }

    /// The objects owned by the object with UID `owner`, unpacked.
    pub fn owned_by(&self, owner: &str) -> Vec<DynamicObject> {
        let inner = self.read();
        inner
            .owned
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|key| Some(unpack(key, inner.objects.get(key)?)))
            .collect()
    }

    /// The number of objects held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// Whether no object is held.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once the first list has completed.
    pub async fn wait_until_ready(&self) -> Result<(), CacheGone> {
        let mut ready = self.ready.clone();
        ready
            .wait_for(|ready| *ready)
            .await
            .map(drop)
            .map_err(|_| CacheGone)
    }
}

impl Inner {
    /// The key and entry of `object`; None for an object without a name.
    fn entry(&mut self, object: &DynamicObject) -> Option<(Key, Entry)> {
        let meta = &object.metadata;
        let name = meta.name.as_deref()?;
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        let namespace = match self.namespaces.get(namespace) {
            Some(shared) => shared.clone(),
            None => {
                let shared: Arc<str> = Arc::from(namespace);
                self.namespaces.insert(shared.clone());
                shared
            }
        };
        let rest = ObjectMeta {
            name: None,
            namespace: None,
            uid: None,
            resource_version: None,
            ..meta.clone()
        };
        let packed = Packed {
            metadata: rest,
            body: object.data.clone(),
        };
        // Plain JSON values and metadata always serialize; were one not to, the object
        // is held with an empty text, which reads as drift and the next apply puts right.
        let text = serde_json::to_string(&packed).unwrap_or_default();
        let owners = meta
            .owner_references
            .iter()
            .flatten()
            .map(|owner| Box::from(owner.uid.as_str()))
            .collect();
        Some((
            Key {
                namespace,
                name: Box::from(name),
            },
            Entry {
                uid: meta.uid.as_deref().map(Box::from),
                resource_version: meta.resource_version.as_deref().map(Box::from),
                owners,
                text: text.into_boxed_str(),
            },
        ))
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        for owner in &entry.owners {
            match self.owned.get_mut(owner) {
                Some(keys) if keys.contains(&key) => {}
                // Sets are exact slices (most hold one object): rebuilt on the rare change
                // rather than kept with a vector's spare room.
                Some(keys) => {
                    let mut more = keys.to_vec();
                    more.push(key.clone());
                    *keys = more.into_boxed_slice();
                }
                None => {
                    self.owned.insert(owner.clone(), Box::new([key.clone()]));
                }
            }
        }
        let owners = entry.owners.clone();
        if let Some(old) = self.objects.insert(key.clone(), entry) {
            self.unindex(&key, old.owners.iter().filter(|uid| !owners.contains(uid)));
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.objects.remove(key) {
            self.unindex(key, old.owners.iter());
        }
    }

    fn unindex<'a>(&mut self, key: &Key, owners: impl Iterator<Item = &'a Box<str>>) {
        for owner in owners {
            if let Some(keys) = self.owned.get_mut(owner) {
                let rest: Box<[Key]> = keys.iter().filter(|k| *k != key).cloned().collect();
                if rest.is_empty() {
                    self.owned.remove(owner);
                } else {
                    *keys = rest;
                }
            }
        }
    }
}

fn unpack(key: &Key, entry: &Entry) -> DynamicObject {
    let Packed { mut metadata, body } = serde_json::from_str(&entry.text).unwrap_or(Packed {
        metadata: ObjectMeta::default(),
        body: Value::Object(serde_json::Map::new()),
    });
    metadata.name = Some(key.name.to_string());
    metadata.namespace = (!key.namespace.is_empty()).then(|| key.namespace.to_string());
    metadata.uid = entry.uid.as_deref().map(str::to_string);
    metadata.resource_version = entry.resource_version.as_deref().map(str::to_string);
    DynamicObject {
        types: None,
        metadata,
        data: body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(name: &str, owner: &str, version: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                "resourceVersion": version,
                "labels": {"app.kubernetes.io/instance": name},
                "annotations": {"flotilla.dev/applied-hash": "abc"},
                "ownerReferences": [{"apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
                                     "name": owner, "uid": owner, "controller": true}]
            },
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}
        }))
        .unwrap()
    }

    #[test]
    fn an_object_reads_back_as_it_was_applied() {
        let (writer, store) = packed_store();
        let users = object("users", "ms-users", "7");
        writer.apply(&Event::Apply(users.clone()));
        assert_eq!(store.get("users", "shop"), Some(users));
        assert_eq!(store.get("users", "other"), None);
    }

    #[test]
    fn the_owner_index_follows_updates_and_deletes() {
        let (writer, store) = packed_store();
        writer.apply(&Event::Apply(object("users", "a", "1")));
        writer.apply(&Event::Apply(object("orders", "a", "1")));
        let names = |owner: &str| {
            let mut names: Vec<String> = store
                .owned_by(owner)
                .iter()
                .filter_map(|o| o.metadata.name.clone())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names("a"), ["orders", "users"]);
        // Handed to another owner: it leaves the first one's set.
        writer.apply(&Event::Apply(object("users", "b", "2")));
        assert_eq!(names("a"), ["orders"]);
        assert_eq!(names("b"), ["users"]);
        writer.apply(&Event::Delete(object("orders", "a", "2")));
        assert!(names("a").is_empty());
        assert!(!store.read().owned.contains_key("a"), "no empty sets kept");
    }

    #[tokio::test]
    async fn a_relist_replaces_everything_when_it_completes() {
        let (writer, store) = packed_store();
        writer.apply(&Event::Init);
        writer.apply(&Event::InitApply(object("users", "a", "1")));
        assert!(store.is_empty(), "nothing shows before the list completes");
        writer.apply(&Event::InitDone);
        store.wait_until_ready().await.unwrap();
        assert_eq!(store.len(), 1);
        // A relist that no longer has it drops it, and its owner entry.
        writer.apply(&Event::Init);
        writer.apply(&Event::InitApply(object("orders", "b", "5")));
        writer.apply(&Event::InitDone);
        assert_eq!(store.get("users", "shop"), None);
        assert!(store.owned_by("a").is_empty());
        assert_eq!(store.owned_by("b").len(), 1);
    }

    #[tokio::test]
    async fn waiting_ends_when_the_watch_goes_before_its_first_list() {
        let (writer, store) = packed_store();
        drop(writer);
        assert!(store.wait_until_ready().await.is_err());
    }
}
