//! The channel from the Microservice watch to the edit lane (`edit_lane`): bounded and
//! de-duplicated. An edit already waiting is not queued twice, and when the lane is full
//! the edit is left to the queue, which has the same watch event: a flood of edits costs
//! a fixed amount of memory, not one entry per event.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;

use crate::api::Microservice;

/// Edits waiting for the lane at most.
pub const CAPACITY: usize = 1024;

type Key = ObjectRef<Microservice>;

/// The sending side, held by the Microservice watch.
#[derive(Clone)]
pub struct Edits {
    sender: mpsc::Sender<Key>,
    waiting: Arc<Mutex<HashSet<Key>>>,
}

/// The receiving side, held by the edit lane.
pub struct EditReceiver {
    receiver: mpsc::Receiver<Key>,
    waiting: Arc<Mutex<HashSet<Key>>>,
}

/// A lane of at most `capacity` waiting edits.
pub fn channel(capacity: usize) -> (Edits, EditReceiver) {
    let (sender, receiver) = mpsc::channel(capacity);
    let waiting = Arc::new(Mutex::new(HashSet::new()));
    (
        Edits {
            sender,
            waiting: waiting.clone(),
        },
        EditReceiver { receiver, waiting },
    )
}

fn lock(waiting: &Mutex<HashSet<Key>>) -> std::sync::MutexGuard<'_, HashSet<Key>> {
    waiting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Edits {
    /// Queues `key` unless it waits already; drops it when the lane is full (or gone).
    pub fn send(&self, key: Key) {
        let mut waiting = lock(&self.waiting);
        if waiting.contains(&key) {
            return;
        }
        if self.sender.try_send(key.clone()).is_ok() {
            waiting.insert(key);
        }
    }
}

impl EditReceiver {
    /// The next edit; None once every sender is gone. Taken off the waiting set first,
    /// so an edit made during its reconcile is queued again.
    pub async fn next(&mut self) -> Option<Key> {
        let key = self.receiver.recv().await?;
        lock(&self.waiting).remove(&key);
        Some(key)
    }

    /// The next edit if one waits now.
    #[cfg(test)]
    pub fn try_next(&mut self) -> Option<Key> {
        let key = self.receiver.try_recv().ok()?;
        lock(&self.waiting).remove(&key);
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        ObjectRef::new(name).within("shop")
    }

    #[test]
    fn an_edit_waits_once_and_a_full_lane_drops_the_rest() {
        let (edits, mut lane) = channel(2);
        edits.send(key("users"));
        edits.send(key("users"));
        edits.send(key("orders"));
        edits.send(key("payments"));
        assert_eq!(lane.try_next(), Some(key("users")));
        assert_eq!(lane.try_next(), Some(key("orders")));
        assert_eq!(
            lane.try_next(),
            None,
            "a full lane left payments to the queue"
        );
        // Taken: queued again by the next edit.
        edits.send(key("users"));
        assert_eq!(lane.try_next(), Some(key("users")));
        assert!(lock(&edits.waiting).is_empty());
    }
}
