//! Edits first. kube-runtime's scheduler is one FIFO queue: while a bulk create keeps it
//! hundreds deep, a spec edit to an existing Microservice would wait behind the whole
//! backlog, for tens of seconds (`docs/benchmarks.md`). The
//! Microservice watch sends every new generation of a Microservice it had already seen
//! here too, and a few reconciles of those run at once, beside the queue. The queue still
//! gets the same event: its later pass finds nothing left to write.
//!
//! Two passes over one object must not overlap (the older one would apply the older
//! spec), so every reconcile, from either side, takes its object's [`Turn`] first and then
//! reads the newest version from the cache.

use std::sync::Arc;

use futures::StreamExt;
use tracing::debug;

use super::context::Context;
use super::pipeline as reconcile;
use super::queue::edits::EditReceiver;

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
