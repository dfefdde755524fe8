//! Prometheus metrics, served as text on `--metrics-addr`.

use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApplyLabels {
    pub kind: String,
    /// `applied` or `unchanged` (skipped: the live object already matches).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    /// The kind the watch is on, e.g. `Deployment`.
    pub watch: String,
}

/// Every metric Flotilla exports, under the `flotilla_` prefix.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub managed: Gauge,
    pub statuses_held: Gauge,
    pub applies: Family<ApplyLabels, Counter>,
    pub events_not_published: Family<ErrorLabels, Counter>,
    pub watch_errors: Family<WatchLabels, Counter>,
    pub watch_relists: Family<WatchLabels, Counter>,
    pub watch_last_event: Family<WatchLabels, Gauge>,
    pub leader: Gauge,
    pub lease_renewals: Family<ResultLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `failed`.
    pub result: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("flotilla");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        let managed = Gauge::default();
        let statuses_held = Gauge::default();
        let applies = Family::<ApplyLabels, Counter>::default();
        let events_not_published = Family::<ErrorLabels, Counter>::default();
        let watch_errors = Family::<WatchLabels, Counter>::default();
        let watch_relists = Family::<WatchLabels, Counter>::default();
        let watch_last_event = Family::<WatchLabels, Gauge>::default();
        let leader = Gauge::default();
        let lease_renewals = Family::<ResultLabels, Counter>::default();
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by reason",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            duration.clone(),
        );
        registry.register(
            "managed_microservices",
            "Microservices in the operator's cache",
            managed.clone(),
        );
        registry.register(
            "statuses_held",
            "Microservices whose progress is held back from their status until it settles",
            statuses_held.clone(),
        );
        registry.register(
            "child_applies",
            "Children applied or found unchanged, by kind",
            applies.clone(),
        );
        registry.register(
            "events_not_published",
            "Events the API server did not take, by event reason",
            events_not_published.clone(),
        );
        registry.register(
            "watch_errors",
            "Watch requests that failed, by watch (each is retried: a restart)",
            watch_errors.clone(),
        );
        registry.register(
            "watch_relists",
            "Full lists a watch made (start, expired versions after a compaction or an outage)",
            watch_relists.clone(),
        );
        registry.register(
            "watch_last_event_timestamp_seconds",
            "When a watch last delivered an object, in seconds since the epoch",
            watch_last_event.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds a fresh leader lease and may write, else 0",
            leader.clone(),
        );
        registry.register(
            "lease_renewals",
            "Renewals of the leader lease, by result (failed ones are retried until the renew deadline)",
            lease_renewals.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            duration,
            managed,
            statuses_held,
            applies,
            events_not_published,
            watch_errors,
            watch_relists,
            watch_last_event,
            leader,
            lease_renewals,
        }
    }
}

impl Metrics {
    /// Counts a reconciliation and records its duration when the guard drops.
    pub fn reconcile_timer(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer {
            histogram: &self.duration,
            start: Instant::now(),
        }
    }

    pub fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn event_not_published(&self, reason: &str) {
        self.events_not_published
            .get_or_create(&ErrorLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn watch_event(&self, watch: &str, relist: bool) {
        let labels = WatchLabels {
            watch: watch.to_string(),
        };
        if relist {
            self.watch_relists.get_or_create(&labels).inc();
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.watch_last_event.get_or_create(&labels).set(now);
    }

    pub fn watch_error(&self, watch: &str) {
        self.watch_errors
            .get_or_create(&WatchLabels {
                watch: watch.to_string(),
            })
            .inc();
    }

    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    pub fn lease_renewal(&self, ok: bool) {
        self.lease_renewals
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }

    pub fn apply(&self, kind: &str, applied: bool) {
        let result = if applied { "applied" } else { "unchanged" };
        self.applies
            .get_or_create(&ApplyLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Observes the reconcile duration when dropped, so early returns are measured too.
pub struct ReconcileTimer<'a> {
    histogram: &'a Histogram,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}
