//! Which Microservices reference which ConfigMaps and Secrets, so a change to one of them
//! re-reconciles exactly its users, without listing anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::builders::{ConfigKind, ConfigRef};
use crate::graph::ObjectKey;

type ConfigKey = (String, ConfigKind, String);

#[derive(Default)]
pub struct ConfigIndex {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    users: BTreeMap<ConfigKey, BTreeSet<ObjectKey>>,
    refs: BTreeMap<ObjectKey, BTreeSet<ConfigKey>>,
}

impl ConfigIndex {
    /// Records the references of one Microservice, replacing its previous ones.
    pub fn update(&self, key: &ObjectKey, refs: &[ConfigRef]) {
        let new: BTreeSet<ConfigKey> = refs
            .iter()
            .map(|r| (key.namespace.clone(), r.kind, r.name.clone()))
            .collect();
        let mut state = self.state.lock().expect("config index lock");
        state.forget(key);
        for config in &new {
            state
                .users
                .entry(config.clone())
                .or_default()
                .insert(key.clone());
        }
        state.refs.insert(key.clone(), new);
    }

    pub fn remove(&self, key: &ObjectKey) {
        self.state.lock().expect("config index lock").forget(key);
    }

    /// The Microservices that reference this ConfigMap or Secret.
    pub fn users(&self, namespace: &str, kind: ConfigKind, name: &str) -> BTreeSet<ObjectKey> {
        let state = self.state.lock().expect("config index lock");
        state
            .users
            .get(&(namespace.to_string(), kind, name.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

impl State {
    fn forget(&mut self, key: &ObjectKey) {
        for config in self.refs.remove(key).unwrap_or_default() {
            if let Some(users) = self.users.get_mut(&config) {
                users.remove(key);
                if users.is_empty() {
                    self.users.remove(&config);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_map(name: &str) -> ConfigRef {
        ConfigRef {
            kind: ConfigKind::ConfigMap,
            name: name.into(),
            optional: false,
        }
    }

    #[test]
    fn follows_reference_changes() {
        let index = ConfigIndex::default();
        let users = ObjectKey::new("shop", "users");
        index.update(&users, &[config_map("settings")]);
        assert_eq!(
            index.users("shop", ConfigKind::ConfigMap, "settings"),
            BTreeSet::from([users.clone()])
        );
        assert!(
            index
                .users("shop", ConfigKind::Secret, "settings")
                .is_empty()
        );
        assert!(
            index
                .users("other", ConfigKind::ConfigMap, "settings")
                .is_empty()
        );

        index.update(&users, &[config_map("flags")]);
        assert!(
            index
                .users("shop", ConfigKind::ConfigMap, "settings")
                .is_empty()
        );
        assert_eq!(index.users("shop", ConfigKind::ConfigMap, "flags").len(), 1);

        index.remove(&users);
        assert!(
            index
                .users("shop", ConfigKind::ConfigMap, "flags")
                .is_empty()
        );
    }
}
