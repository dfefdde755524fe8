//! Publishes events.k8s.io/v1 Events as kube-runtime's `Recorder` does, keeping less. An
//! event repeated within [`SERIES_WINDOW`] (same object, type, reason, action and note)
//! becomes a series on the first one: one PATCH of its count, not one more object. For
//! that only a hash of the repeat's key, the first event's name and the count are kept,
//! where kube-runtime keeps every whole Event for six minutes (about 2 KB each, several
//! per Microservice during a bulk create) and scans them all on every publish.
//! The note is part of the key here: "Created Deployment a" and "Created Service a" are
//! two events, not a series that shows only the first note.
//!
//! Events go out from a queue, one at a time, as client-go's broadcaster sends them: a
//! reconcile never waits for its events, and under a bulk create they take one request
//! slot of the API server, not one per reconcile (500 Microservices created at once were
//! 500 event writes among 4,000 on the critical path). The queue holds [`QUEUED`], as
//! client-go's does, and drops what comes beyond, counted in the metrics.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::warn;

use crate::metrics::Metrics;

/// How long after its last occurrence a repeat still joins an event's series: kube-runtime's
/// and client-go's window.
pub const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// How often series older than the window are dropped.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

/// One event about an object.
#[derive(Clone, Debug, Hash)]
pub struct Note<'a> {
    pub type_: EventType,
    /// Short, CamelCase: why.
    pub reason: &'a str,
    /// What was done or failed: `Create`, `Reconcile`...
    pub action: &'a str,
    /// Human readable, at most 1 KiB (the API server refuses longer).
    pub note: &'a str,
}

/// Events waiting to be published, at most (client-go's `maxQueuedEvents`).
pub const QUEUED: usize = 1000;

/// An event about an object, waiting its turn.
pub struct Queued {
    pub regarding: ObjectReference,
    pub type_: EventType,
    pub reason: String,
    pub action: &'static str,
    pub note: String,
}

/// Where events are queued for the [`Recorder`] to publish.
#[derive(Clone)]
pub struct Outbox(mpsc::Sender<Queued>);

impl Outbox {
    /// An outbox and the queue a [`Recorder`] delivers from.
    pub fn new() -> (Outbox, mpsc::Receiver<Queued>) {
        let (sender, queue) = mpsc::channel(QUEUED);
        (Outbox(sender), queue)
    }

    /// Queues `event`; false when the queue is full or nobody delivers any more, and the
    /// event is dropped.
    pub fn send(&self, event: Queued) -> bool {
        self.0.try_send(event).is_ok()
    }
}

pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    series: HashMap<u64, Series>,
    swept: Option<Timestamp>,
}

struct Series {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

impl Recorder {
    /// Events reported by `controller` (the component) from `instance` (this replica).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Recorder {
            client,
            controller: controller.to_string(),
            instance: instance.to_string(),
            recent: Mutex::default(),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes the events of `queue` one at a time, until every [`Outbox`] is gone;
    /// one that cannot be published is counted and logged, never retried.
    pub async fn deliver(
        self,
        mut queue: mpsc::Receiver<Queued>,
        metrics: std::sync::Arc<Metrics>,
    ) {
        while let Some(event) = queue.recv().await {
            let note = Note {
                type_: event.type_,
                reason: &event.reason,
                action: event.action,
                note: &event.note,
            };
            if let Err(error) = self.publish(&event.regarding, &note).await {
                // Never silent: the metric shows what the log may lose.
                metrics.event_not_published(&event.reason);
                warn!(%error, reason = %event.reason, "could not publish an event");
            }
        }
    }

    /// Publishes `note` about `regarding`, in its namespace.
    async fn publish(&self, regarding: &ObjectReference, note: &Note<'_>) -> kube::Result<()> {
        let now = Timestamp::now();
        let key = series_key(regarding, note);
        let repeat = self.recent().repeat(key, now);
        if let Some((namespace, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.recent().observed(key, count, now);
                    return Ok(());
                }
                // The event expired (the API server keeps events for an hour by default):
                // a new one starts a new series.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let event = self.event(regarding, note, now);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let created = api.create(&PostParams::default(), &event).await?;
        self.recent().started(
            key,
            Series {
                namespace,
                name: created.metadata.name.unwrap_or_default(),
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    /// A new Event, named as kube-runtime and client-go name them.
    fn event(&self, regarding: &ObjectReference, note: &Note<'_>, now: Timestamp) -> Event {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            action: Some(note.action.to_string()),
            reason: Some(note.reason.to_string()),
            note: Some(note.note.to_string()),
            type_: Some(
                match note.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

impl Recent {
    /// The series `key` belongs to, with its next count, if it is still open.
    fn repeat(&mut self, key: u64, now: Timestamp) -> Option<(String, String, i32)> {
        if self.swept.is_none_or(|at| at + SWEEP_EVERY < now) {
            self.series
                .retain(|_, series| series.last + SERIES_WINDOW > now);
            self.swept = Some(now);
        }
        self.series
            .get(&key)
            .filter(|series| series.last + SERIES_WINDOW > now)
            .map(|series| {
                (
                    series.namespace.clone(),
                    series.name.clone(),
                    series.count + 1,
                )
            })
    }

    fn observed(&mut self, key: u64, count: i32, now: Timestamp) {
        if let Some(series) = self.series.get_mut(&key) {
            series.count = series.count.max(count);
            series.last = now;
        }
    }

    fn started(&mut self, key: u64, series: Series) {
        self.series.insert(key, series);
    }
}

/// What makes two events one series: the object (by UID when it has one), and the
/// event's type, reason, action and note.
fn series_key(regarding: &ObjectReference, note: &Note<'_>) -> u64 {
    let mut hasher = DefaultHasher::new();
    (
        &regarding.uid,
        &regarding.namespace,
        &regarding.name,
        &regarding.kind,
    )
        .hash(&mut hasher);
    note.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(uid: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Microservice".into()),
            namespace: Some("shop".into()),
            name: Some("users".into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    const FAILED: Note<'static> = Note {
        type_: EventType::Warning,
        reason: "ApplyFailed",
        action: "Reconcile",
        note: "applying Deployment users: timeout",
    };

    #[test]
    fn the_same_event_again_is_one_series_another_note_is_not() {
        let key = series_key(&reference("u1"), &FAILED);
        assert_eq!(key, series_key(&reference("u1"), &FAILED));
        let other = Note {
            note: "applying Service users: timeout",
            ..FAILED
        };
        assert_ne!(key, series_key(&reference("u1"), &other));
        assert_ne!(key, series_key(&reference("u2"), &FAILED), "another object");
    }

    #[test]
    fn a_full_queue_drops_what_comes_beyond_it() {
        let (outbox, mut queue) = Outbox::new();
        let event = || Queued {
            regarding: reference("u1"),
            type_: EventType::Normal,
            reason: "Created".into(),
            action: "Create",
            note: "Created Deployment users".into(),
        };
        assert!((0..QUEUED).all(|_| outbox.send(event())));
        assert!(!outbox.send(event()), "full");
        assert!(queue.try_recv().is_ok());
        assert!(outbox.send(event()), "room again");
        drop(queue);
        assert!(!outbox.send(event()), "nobody delivers");
    }

    #[test]
    fn a_series_counts_repeats_within_the_window_and_is_dropped_after_it() {
        let mut recent = Recent::default();
        let start = Timestamp::UNIX_EPOCH;
        assert_eq!(recent.repeat(7, start), None);
        recent.started(
            7,
            Series {
                namespace: "shop".into(),
                name: "users.1".into(),
                count: 1,
                last: start,
            },
        );
        let later = start + SignedDuration::from_mins(1);
        assert_eq!(
            recent.repeat(7, later),
            Some(("shop".into(), "users.1".into(), 2))
        );
        recent.observed(7, 2, later);
        let past = later + SERIES_WINDOW;
        assert_eq!(recent.repeat(7, past), None, "the window closed");
        assert!(recent.series.is_empty(), "and the series went");
    }
}
