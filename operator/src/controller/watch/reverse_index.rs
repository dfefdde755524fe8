//! The two generic pieces behind every index the watches keep: a reverse index (who
//! names a key) and a relist tracker (what a watch has seen, so a relist can tell what
//! went away while it was down). Pure data structures, no locks: their owner decides.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

use kube::runtime::watcher::Event;

use crate::graph::ObjectKey;

/// Which Microservices name which keys, both ways, so an event on a key finds its users
/// without listing. The sets are sorted vectors: most hold one or two keys, where a
/// `BTreeSet` allocates a node for eleven (over 500 bytes for a namespace and a name).
#[derive(Debug)]
pub struct ReverseIndex<K> {
    named: HashMap<ObjectKey, Box<[K]>>,
    users: HashMap<K, Vec<ObjectKey>>,
}

impl<K> Default for ReverseIndex<K> {
    fn default() -> Self {
        ReverseIndex {
            named: HashMap::new(),
            users: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> ReverseIndex<K> {
    /// Records the keys `user` names now; returns the ones it named before.
    pub fn set(&mut self, user: &ObjectKey, keys: BTreeSet<K>) -> BTreeSet<K> {
        let before = self.remove(user);
        for key in &keys {
            let users = self.users.entry(key.clone()).or_default();
            if let Err(at) = users.binary_search(user) {
                users.insert(at, user.clone());
            }
        }
        if !keys.is_empty() {
            // A BTreeSet iterates in order: the slice is sorted.
            self.named.insert(
                user.clone(),
                keys.into_iter().collect::<Vec<K>>().into_boxed_slice(),
            );
        }
        before
    }

    /// Forgets what `user` names (others naming `user` are kept: their specs still do);
    /// returns the keys it named.
    pub fn remove(&mut self, user: &ObjectKey) -> BTreeSet<K> {
        let before = self.named.remove(user).unwrap_or_default();
        for key in before.iter() {
            if let Some(users) = self.users.get_mut(key) {
                if let Ok(at) = users.binary_search(user) {
                    users.remove(at);
                }
                if users.is_empty() {
                    self.users.remove(key);
                }
            }
        }
        before.into_vec().into_iter().collect()
    }

    /// The Microservices that name `key`.
    pub fn users<'a>(&'a self, key: &K) -> impl Iterator<Item = &'a ObjectKey> + use<'a, K> {
        self.users.get(key).into_iter().flatten()
    }
}

/// What changed for one object, as a watch tells it.
#[derive(Debug, PartialEq)]
pub enum Transition<'a, T, K, V> {
    /// Created, or changed in what `V` summarises.
    Changed {
        object: &'a T,
        before: Option<V>,
        now: V,
    },
    /// Deleted, or missing from a relist (then there is no object).
    Gone {
        key: K,
        last: Option<V>,
        object: Option<&'a T>,
    },
}

/// What a watch has seen of each object: a small summary `V` of what matters to its
/// users (a generation, a flag). Updates that leave the summary as it was (status writes)
/// are no transition; a relist (`Init` … `InitDone`) reports the objects it no longer
/// holds as gone.
#[derive(Debug)]
pub struct RelistTracker<K, V> {
    seen: BTreeMap<K, V>,
    /// Objects seen since the relist began; None outside a relist.
    relisted: Option<BTreeSet<K>>,
}

impl<K, V> Default for RelistTracker<K, V> {
    fn default() -> Self {
        RelistTracker {
            seen: BTreeMap::new(),
            relisted: None,
        }
    }
}

impl<K: Clone + Ord, V: Clone + PartialEq> RelistTracker<K, V> {
    /// The transitions `event` makes, keying objects with `key` and summarising them with
    /// `summary`.
    pub fn observe<'a, T>(
        &mut self,
        event: &'a Event<T>,
        key: impl Fn(&T) -> K,
        summary: impl Fn(&T) -> V,
    ) -> Vec<Transition<'a, T, K, V>> {
        match event {
            Event::Init => {
                self.relisted = Some(BTreeSet::new());
                Vec::new()
            }
            Event::InitApply(object) | Event::Apply(object) => {
                let key = key(object);
                if let Some(relisted) = &mut self.relisted {
                    relisted.insert(key.clone());
                }
                let now = summary(object);
                let before = self.seen.insert(key, now.clone());
                if before.as_ref() == Some(&now) {
                    return Vec::new();
                }
                vec![Transition::Changed {
                    object,
                    before,
                    now,
                }]
            }
            Event::Delete(object) => {
                let key = key(object);
                let last = self.seen.remove(&key);
                vec![Transition::Gone {
                    key,
                    last,
                    object: Some(object),
                }]
            }
            Event::InitDone => {
                // Only a relist that began here can say what is gone.
                let Some(relisted) = self.relisted.take() else {
                    return Vec::new();
                };
                let gone: Vec<K> = self
                    .seen
                    .keys()
                    .filter(|key| !relisted.contains(*key))
                    .cloned()
                    .collect();
                gone.into_iter()
                    .map(|key| {
                        let last = self.seen.remove(&key);
                        Transition::Gone {
                            key,
                            last,
                            object: None,
                        }
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> ObjectKey {
        ObjectKey::new("shop", name)
    }

    fn users(index: &ReverseIndex<&'static str>, key: &'static str) -> Vec<String> {
        index.users(&key).map(|u| u.name.clone()).collect()
    }

    #[test]
    fn reverse_index_follows_what_each_user_names() {
        let mut index = ReverseIndex::default();
        assert!(index.set(&user("a"), BTreeSet::from(["x", "y"])).is_empty());
        index.set(&user("b"), BTreeSet::from(["x"]));
        assert_eq!(users(&index, "x"), ["a", "b"]);
        assert_eq!(
            index.set(&user("a"), BTreeSet::from(["y"])),
            BTreeSet::from(["x", "y"])
        );
        assert_eq!(users(&index, "x"), ["b"]);
        assert_eq!(index.remove(&user("b")), BTreeSet::from(["x"]));
        assert!(users(&index, "x").is_empty());
        assert!(index.remove(&user("nobody")).is_empty());
        // Nothing is kept for keys nobody names any more.
        index.remove(&user("a"));
        assert!(index.users.is_empty() && index.named.is_empty());
    }

    type Object = (&'static str, i64);

    fn track(tracker: &mut RelistTracker<&'static str, i64>, event: &Event<Object>) -> Vec<String> {
        tracker
            .observe(event, |o| o.0, |o| o.1)
            .into_iter()
            .map(|t| match t {
                Transition::Changed {
                    object,
                    before,
                    now,
                } => {
                    format!("changed {} {before:?}->{now}", object.0)
                }
                Transition::Gone { key, last, object } => {
                    format!("gone {key} {last:?} {}", object.is_some())
                }
            })
            .collect()
    }

    #[test]
    fn relist_tracker_reports_changes_and_what_a_relist_lost() {
        let mut tracker = RelistTracker::default();
        assert_eq!(
            track(&mut tracker, &Event::Apply(("a", 1))),
            ["changed a None->1"]
        );
        track(&mut tracker, &Event::Apply(("b", 1)));
        // The same summary (a status write): no transition.
        assert!(track(&mut tracker, &Event::Apply(("a", 1))).is_empty());
        assert_eq!(
            track(&mut tracker, &Event::Apply(("a", 2))),
            ["changed a Some(1)->2"]
        );
        assert_eq!(
            track(&mut tracker, &Event::Delete(("b", 1))),
            ["gone b Some(1) true"]
        );
        track(&mut tracker, &Event::Apply(("c", 1)));
        // A relist that holds `a` only: `c` went while the watch was down.
        assert!(track(&mut tracker, &Event::Init).is_empty());
        assert!(track(&mut tracker, &Event::InitApply(("a", 2))).is_empty());
        assert_eq!(
            track(&mut tracker, &Event::InitDone),
            ["gone c Some(1) false"]
        );
        assert!(track(&mut tracker, &Event::InitDone).is_empty());
    }
}
