//! Which cached pods belong to which Microservice (by instance label), so the status of
//! one Microservice reads its own pods instead of scanning every pod in the cache.

use std::collections::BTreeSet;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::builders::labels;
use crate::graph::ObjectKey;

use super::reverse_index::{RelistTracker, ReverseIndex, Transition};

#[derive(Default)]
pub struct PodIndex {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Pod → the Microservice it belongs to; a relist drops the pods gone meanwhile.
    seen: RelistTracker<ObjectKey, Option<ObjectKey>>,
    /// Microservice → its pods (the "users" of the Microservice's key are pods).
    pods: ReverseIndex<ObjectKey>,
}

fn pod_key(pod: &Pod) -> ObjectKey {
    ObjectKey {
        namespace: pod.namespace().unwrap_or_default(),
        name: pod.name_any(),
    }
}

fn owner_key(pod: &Pod) -> Option<ObjectKey> {
    Some(ObjectKey {
        namespace: pod.namespace()?,
        name: pod.labels().get(labels::INSTANCE)?.clone(),
    })
}

impl PodIndex {
    pub fn observe(&self, event: &Event<Pod>) {
        let mut inner = self.inner.lock().expect("pod index lock");
        let Inner { seen, pods } = &mut *inner;
        for transition in seen.observe(event, pod_key, owner_key) {
            match transition {
                Transition::Changed { object, now, .. } => {
                    pods.set(&pod_key(object), now.into_iter().collect::<BTreeSet<_>>());
                }
                Transition::Gone { key, .. } => {
                    pods.remove(&key);
                }
            }
        }
    }

    /// The pods of the Microservice `name` in `namespace`.
    pub fn pods_of(&self, namespace: &str, name: &str) -> Vec<ObjectKey> {
        let owner = ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let inner = self.inner.lock().expect("pod index lock");
        inner.pods.users(&owner).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, instance: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop",
                "labels": {labels::INSTANCE: instance}}
        }))
        .unwrap()
    }

    fn names(index: &PodIndex, owner: &str) -> Vec<String> {
        let mut names: Vec<String> = index
            .pods_of("shop", owner)
            .into_iter()
            .map(|k| k.name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn pods_are_found_by_their_microservice_and_forgotten_when_gone() {
        let index = PodIndex::default();
        index.observe(&Event::Apply(pod("users-1", "users")));
        index.observe(&Event::Apply(pod("users-2", "users")));
        index.observe(&Event::Apply(pod("orders-1", "orders")));
        assert_eq!(names(&index, "users"), ["users-1", "users-2"]);
        index.observe(&Event::Delete(pod("users-1", "users")));
        assert_eq!(names(&index, "users"), ["users-2"]);
        // A relist that no longer holds a pod drops it.
        index.observe(&Event::Init);
        index.observe(&Event::InitApply(pod("orders-1", "orders")));
        index.observe(&Event::InitDone);
        assert!(names(&index, "users").is_empty());
        assert_eq!(names(&index, "orders"), ["orders-1"]);
    }
}
