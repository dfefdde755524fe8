//! Edits first at the API server too. The edit lane takes a spec edit past the queue,
//! but its Deployment apply then waits in the API server beside every request of the
//! bulk: on a saturated server each request's latency grows with the number in flight.
//! So the queue's requests go through two gates the edit lane's skip:
//!
//! - at most [`QUEUE_REQUESTS`] in flight at once, as many as the 8 `kubectl` processes
//!   the benchmark compares with: enough to keep a busy server busy, few enough that a
//!   request arriving beside them is not queued behind dozens;
//! - none starts while an edit is being reconciled, for at most [`MAX_YIELD`] each, so
//!   a stream of edits slows the queue without ever stopping it.
//!
//! The edit lane's own requests and the events (one at a time, from `recorder`) pass
//! freely.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit, watch};

/// Requests of the queue in flight at once.
pub const QUEUE_REQUESTS: usize = 8;
/// The longest a queue request waits for edits to finish.
pub const MAX_YIELD: Duration = Duration::from_millis(500);

/// Which side of the controller a reconcile runs on (`edit_lane`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// The work queue: creations, drift, pods, dependencies, resyncs.
    Queue,
    /// A spec edit, reconciled ahead of the queue.
    Edit,
}

pub struct Priority {
    edits: watch::Sender<usize>,
    queue: Semaphore,
}

impl Default for Priority {
    fn default() -> Self {
        Priority {
            edits: watch::Sender::new(0),
            queue: Semaphore::new(QUEUE_REQUESTS),
        }
    }
}

/// An edit being reconciled, until dropped.
pub struct Editing<'a>(&'a watch::Sender<usize>);

impl Drop for Editing<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|edits| *edits -= 1);
    }
}

/// The right to send one request, until dropped.
pub struct Slot<'a> {
    _permit: Option<SemaphorePermit<'a>>,
}

impl Priority {
    /// Marks an edit in progress: queue requests hold back until it ends.
    pub fn editing(&self) -> Editing<'_> {
        self.edits.send_modify(|edits| *edits += 1);
        Editing(&self.edits)
    }

    /// Waits until a request of `lane` may go: at once for an edit; for the queue, when
    /// no edit is in progress (or [`MAX_YIELD`] has passed) and fewer than
    /// [`QUEUE_REQUESTS`] of its requests are in flight.
    pub async fn slot(&self, lane: Lane) -> Slot<'_> {
        if lane == Lane::Edit {
            return Slot { _permit: None };
        }
        let mut edits = self.edits.subscribe();
        // A timeout is no error: the queue goes on beside the edits.
        let _ = tokio::time::timeout(MAX_YIELD, edits.wait_for(|edits| *edits == 0)).await;
        // The semaphore is never closed.
        Slot {
            _permit: self.queue.acquire().await.ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn the_queue_yields_to_an_edit_for_a_bounded_time() {
        let priority = Arc::new(Priority::default());
        // Nothing in progress: the queue goes at once.
        drop(priority.slot(Lane::Queue).await);
        let edit = priority.editing();
        // An edit's own requests pass.
        drop(priority.slot(Lane::Edit).await);
        let queued = {
            let priority = priority.clone();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                drop(priority.slot(Lane::Queue).await);
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!queued.is_finished(), "a queue request went during an edit");
        drop(edit);
        let waited = queued
            .await
            .expect("the queue request goes once the edit ends");
        assert_eq!(waited, Duration::from_millis(100));

        // An edit that never ends holds the queue back MAX_YIELD per request, no more.
        let _endless = priority.editing();
        let started = tokio::time::Instant::now();
        drop(priority.slot(Lane::Queue).await);
        assert_eq!(started.elapsed(), MAX_YIELD);
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_has_a_bounded_number_of_requests_in_flight() {
        let priority = Priority::default();
        let mut held = Vec::new();
        for _ in 0..QUEUE_REQUESTS {
            held.push(priority.slot(Lane::Queue).await);
        }
        let next = priority.slot(Lane::Queue);
        tokio::pin!(next);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), &mut next)
                .await
                .is_err(),
            "more than {QUEUE_REQUESTS} queue requests in flight"
        );
        // Edits are not counted against the queue's share.
        drop(priority.slot(Lane::Edit).await);
        held.pop();
        drop(next.await);
    }
}
