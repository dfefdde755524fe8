//! One reconcile of a Microservice at a time: the queue and the edit lane both take a
//! turn before they reconcile it. A leaf, so that the context holding the turns imports
//! nothing that imports the context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::ObjectRef;
use tokio::sync::OwnedMutexGuard;

use crate::api::Microservice;

/// One lock per Microservice being reconciled; entries go when nobody holds or awaits
/// them.
#[derive(Default)]
pub struct Turns(Mutex<HashMap<ObjectRef<Microservice>, Arc<tokio::sync::Mutex<()>>>>);

/// The right to reconcile one Microservice, until dropped.
pub struct Turn<'a> {
    turns: &'a Turns,
    key: ObjectRef<Microservice>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<Microservice>, Arc<tokio::sync::Mutex<()>>>>
    {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until no other pass is reconciling `key`.
    pub async fn take(&self, key: ObjectRef<Microservice>) -> Turn<'_> {
        let lock = self.map().entry(key.clone()).or_default().clone();
        let guard = lock.lock_owned().await;
        Turn {
            turns: self,
            key,
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.turns.map();
        // Only the map's own reference left: nobody waits for this one.
        if map
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(name: &str) -> ObjectRef<Microservice> {
        ObjectRef::new(name).within("shop")
    }

    #[tokio::test(start_paused = true)]
    async fn one_pass_per_object_at_a_time_and_none_kept_after() {
        let turns = Arc::new(Turns::default());
        let first = turns.take(key("users")).await;
        // Another object is not held up.
        drop(turns.take(key("orders")).await);
        let waiting = {
            let turns = turns.clone();
            tokio::spawn(async move {
                let _second = turns.take(key("users")).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "a second pass ran during the first");
        drop(first);
        waiting.await.expect("the second pass runs after the first");
        assert_eq!(turns.len(), 0, "locks outlived their passes");
    }
}
