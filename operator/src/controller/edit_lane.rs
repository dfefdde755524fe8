//! Edits first. kube-runtime's scheduler is one FIFO queue: while a bulk create keeps it
//! hundreds deep, a spec edit to an existing Microservice waited behind the whole backlog
//! (p99 54 s from edit to Deployment at 500 Microservices on the embedded cluster). The
//! Microservice watch sends every new generation of a Microservice it had already seen
//! here too, and a few reconciles of those run at once, beside the queue. The queue still
//! gets the same event: its later pass finds nothing left to write.
//!
//! Two passes over one object must not overlap (the older one would apply the older
//! spec), so every reconcile, from either side, takes its object's [`Turn`] first and then
//! reads the newest version from the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::OwnedMutexGuard;
use tracing::debug;

use crate::api::Microservice;

use super::context::Context;
use super::edits::EditReceiver;
use super::reconcile;

/// Edits reconciled at once ahead of the queue: edits are rare next to a bulk create's
/// fan-out, and each takes a share of the API server's attention from the backlog.
const CONCURRENCY: usize = 4;

/// Runs the edits sent by the Microservice watch until the controller stops.
pub async fn run(edits: EditReceiver, ctx: Arc<Context>) {
    futures::stream::unfold(edits, |mut edits| async move {
        edits.next().await.map(|key| (key, edits))
    })
    .for_each_concurrent(CONCURRENCY, |key| {
        let ctx = ctx.clone();
        async move {
            let Some(ms) = ctx.caches.microservices.get(&key) else {
                return;
            };
            // A failure is the queue's to retry (it has the same event) and already in
            // the status.
            if let Err(error) = reconcile::reconcile(ms, ctx).await {
                debug!(%key, %error, "edit reconcile failed; the queue retries it");
            }
        }
    })
    .await;
}

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
