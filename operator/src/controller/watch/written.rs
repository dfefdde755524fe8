//! What this process last wrote, until the caches show it. A watch delivers a write a
//! moment after the API server took it; a reconcile in that moment would see the old
//! object and write the same thing again (during a bulk create, a second apply of many
//! children and several status writes per Microservice). Each write is remembered with
//! the resource version the API server returned, and forgotten once the cache holds that
//! version or a later one.
//!
//! Resource versions are compared as numbers: the API server documents them as opaque,
//! but every server built on etcd issues increasing integers. One that does not parse
//! is treated as caught up, so the worst case is the extra write this module saves.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

pub struct Written<K, V> {
    entries: Mutex<HashMap<K, (V, u64)>>,
}

impl<K, V> Default for Written<K, V> {
    fn default() -> Self {
        Written {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

fn version(resource_version: Option<&str>) -> Option<u64> {
    resource_version?.parse().ok()
}

impl<K: Eq + Hash, V: Clone> Written<K, V> {
    /// Remembers that `value` was written to `key` and the API server answered with
    /// `resource_version`.
    pub fn record(&self, key: K, value: V, resource_version: Option<&str>) {
        let mut entries = self.entries.lock().expect("written lock");
        match version(resource_version) {
            Some(version) => {
                entries.insert(key, (value, version));
            }
            None => {
                entries.remove(&key);
            }
        }
    }

    /// Forgets every entry whose key `gone` says belongs to an object that no longer
    /// exists: a deleted object is never reconciled again to catch up.
    pub fn forget_where(&self, gone: impl Fn(&K) -> bool) {
        self.entries
            .lock()
            .expect("written lock")
            .retain(|key, _| !gone(key));
    }

    /// What was last written to `key` when the cache, at `cached_version`, does not show
    /// it yet; None once it does (and the entry is forgotten).
    pub fn ahead_of(&self, key: &K, cached_version: Option<&str>) -> Option<V> {
        let mut entries = self.entries.lock().expect("written lock");
        let (value, written) = entries.get(key)?;
        match version(cached_version) {
            Some(cached) if cached < *written => Some(value.clone()),
            _ => {
                entries.remove(key);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_known_until_the_cache_holds_its_version_or_a_later_one() {
        let written = Written::<&str, &str>::default();
        written.record("users", "hash-2", Some("120"));
        assert_eq!(written.ahead_of(&"users", Some("100")), Some("hash-2"));
        assert_eq!(written.ahead_of(&"users", Some("119")), Some("hash-2"));
        // The cache caught up: forgotten, so a later drift is judged on the cache alone.
        assert_eq!(written.ahead_of(&"users", Some("120")), None);
        assert!(written.entries.lock().unwrap().is_empty());
        written.record("users", "hash-3", Some("130"));
        assert_eq!(written.ahead_of(&"users", Some("131")), None);
    }

    #[test]
    fn the_entries_of_a_deleted_object_are_forgotten() {
        let written = Written::<(&str, &str), &str>::default();
        written.record(("shop", "users"), "a", Some("1"));
        written.record(("shop", "orders"), "b", Some("2"));
        written.forget_where(|(namespace, name)| *namespace == "shop" && *name == "users");
        assert_eq!(written.entries.lock().unwrap().len(), 1);
        assert_eq!(written.ahead_of(&("shop", "orders"), Some("1")), Some("b"));
    }

    #[test]
    fn versions_that_are_not_numbers_never_hold_a_write_back() {
        let written = Written::<&str, &str>::default();
        written.record("users", "hash", Some("opaque"));
        assert_eq!(written.ahead_of(&"users", Some("1")), None);
        written.record("users", "hash", Some("5"));
        assert_eq!(written.ahead_of(&"users", Some("opaque")), None);
        assert_eq!(written.ahead_of(&"orders", Some("1")), None);
    }
}
