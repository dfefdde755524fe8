//! What `/healthz` and `/readyz` say, and why. Ready once every cache has listed (or
//! while standing by for the lease), and while no watch's errors have kept coming for
//! longer than [`STUCK_AFTER`] without a success in between: an API server away for long
//! shows there, on every replica. Live unless the process itself is stuck: caches that
//! have not synced [`SYNC_DEADLINE`] after the controller started while no watch was
//! failing. Watch errors never fail liveness: they come from the API server, which a
//! restart does not bring back, and a long outage must not crash-loop every replica at
//! once. A watch that failed once and then went quiet has reconnected (kube's watcher
//! says nothing when it resumes an idle watch): it counts as recovered once no error has
//! come for [`QUIET_AFTER`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// A watch failing for this long has not reconnected through its backoff: not ready.
pub const STUCK_AFTER: Duration = Duration::from_secs(120);
/// A watch that has not failed for this long (longer than a watch lives, so a watch still
/// failing fails again within it) has recovered.
pub const QUIET_AFTER: Duration = Duration::from_secs(60);
/// Caches not synced this long after the controller started will not sync by themselves.
pub const SYNC_DEADLINE: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
    /// When the controller started waiting for its caches; None while standing by.
    syncing_since: Mutex<Option<Instant>>,
    watches: Mutex<BTreeMap<&'static str, WatchState>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct WatchState {
    /// The first error of the current run of errors; None after any success.
    failing_since: Option<Instant>,
    /// The latest error.
    last_error: Option<Instant>,
}

impl Health {
    /// Ready: the caches have synced, or the process stands by for the lease.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Standing by for the lease (again, after losing it): ready, nothing to sync, and
    /// the watches of a stopped controller forgotten.
    pub fn standing_by(&self) {
        *self.syncing_since.lock().expect("health lock") = None;
        self.watches.lock().expect("health lock").clear();
        self.set_ready(true);
    }

    /// The controller starts: its caches must sync within [`SYNC_DEADLINE`].
    pub fn controller_started(&self) {
        *self.syncing_since.lock().expect("health lock") = Some(Instant::now());
        self.set_ready(false);
    }

    /// Every cache has listed once.
    pub fn synced(&self) {
        *self.syncing_since.lock().expect("health lock") = None;
        self.set_ready(true);
    }

    /// A watch delivered something: it works.
    pub fn watch_event(&self, watch: &'static str, relist: bool, metrics: &Metrics) {
        self.watches
            .lock()
            .expect("health lock")
            .entry(watch)
            .or_default()
            .failing_since = None;
        metrics.watch_event(watch, relist);
    }

    /// A watch failed; it retries through its backoff.
    pub fn watch_error(&self, watch: &'static str, metrics: &Metrics) {
        let mut watches = self.watches.lock().expect("health lock");
        let state = watches.entry(watch).or_default();
        let now = Instant::now();
        if state
            .last_error
            .is_some_and(|last| now.duration_since(last) > QUIET_AFTER)
        {
            // The previous run of errors ended in a quiet reconnect: a new run starts.
            state.failing_since = None;
        }
        state.failing_since.get_or_insert(now);
        state.last_error = Some(now);
        metrics.watch_error(watch);
    }

    /// Ok while the process can make progress; otherwise why not (the kubelet restarts
    /// it).
    pub fn live(&self) -> Result<(), String> {
        self.live_at(Instant::now())
    }

    /// Ok once the caches have synced (or standing by) and no watch is stuck failing;
    /// otherwise why not.
    pub fn ready(&self) -> Result<(), String> {
        self.ready_at(Instant::now())
    }

    fn ready_at(&self, now: Instant) -> Result<(), String> {
        let stuck = self.stuck_watches(now);
        if !stuck.is_empty() {
            return Err(stuck.join("; "));
        }
        if !self.is_ready() {
            return Err("caches are syncing".to_string());
        }
        Ok(())
    }

    fn live_at(&self, now: Instant) -> Result<(), String> {
        let waiting_for_the_server =
            self.watches
                .lock()
                .expect("health lock")
                .values()
                .any(|state| {
                    state
                        .last_error
                        .is_some_and(|last| now.duration_since(last) <= QUIET_AFTER)
                });
        if let Some(since) = *self.syncing_since.lock().expect("health lock")
            && now.duration_since(since) > SYNC_DEADLINE
            && !waiting_for_the_server
        {
            return Err(format!(
                "the caches have not synced in {}s",
                now.duration_since(since).as_secs()
            ));
        }
        Ok(())
    }

    /// The watches whose errors have kept coming for longer than [`STUCK_AFTER`].
    fn stuck_watches(&self, now: Instant) -> Vec<String> {
        self.watches
            .lock()
            .expect("health lock")
            .iter()
            .filter_map(|(watch, state)| {
                let since = state.failing_since?;
                let still_failing = state
                    .last_error
                    .is_some_and(|last| now.duration_since(last) <= QUIET_AFTER);
                (still_failing && now.duration_since(since) > STUCK_AFTER).then(|| {
                    format!(
                        "the {watch} watch has failed for {}s",
                        now.duration_since(since).as_secs()
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_failing_past_the_bound_is_not_ready_until_it_recovers_and_stays_live() {
        let health = Health::default();
        let metrics = Metrics::default();
        let start = Instant::now();
        let failing = |seconds: u64| {
            let mut watches = health.watches.lock().unwrap();
            let state = watches.entry("Deployment").or_default();
            state.failing_since = Some(start);
            state.last_error = Some(start + Duration::from_secs(seconds));
        };
        health.set_ready(true);
        health.watch_error("Deployment", &metrics);
        assert!(
            health.ready_at(start + Duration::from_secs(30)).is_ok(),
            "a short outage is fine"
        );
        // Errors kept coming for longer than the bound: not ready, yet live (the API
        // server is away; a restart would not bring it back).
        failing(STUCK_AFTER.as_secs());
        let later = start + STUCK_AFTER + Duration::from_secs(5);
        let stuck = health.ready_at(later).unwrap_err();
        assert!(stuck.contains("Deployment"), "{stuck}");
        assert!(health.live_at(later).is_ok());
        // The errors stopped long ago: it reconnected quietly.
        failing(10);
        assert!(health.ready_at(start + STUCK_AFTER * 2).is_ok());
        // Or it delivered something.
        failing(STUCK_AFTER.as_secs());
        health.watch_event("Deployment", false, &metrics);
        assert!(health.ready_at(later).is_ok());
        assert!(
            metrics
                .render()
                .contains("flotilla_watch_errors_total{watch=\"Deployment\"} 1")
        );
    }

    #[test]
    fn caches_that_never_sync_are_not_live() {
        let health = Health::default();
        health.controller_started();
        assert!(!health.is_ready());
        let now = Instant::now();
        assert!(health.live_at(now).is_ok());
        assert!(
            health
                .live_at(now + SYNC_DEADLINE + Duration::from_secs(1))
                .is_err()
        );
        health.synced();
        assert!(health.is_ready());
        assert!(health.live_at(now + SYNC_DEADLINE * 2).is_ok());
    }

    #[test]
    fn caches_waiting_for_an_absent_api_server_stay_live() {
        let health = Health::default();
        let metrics = Metrics::default();
        health.controller_started();
        let start = Instant::now();
        health.watch_error("Pod", &metrics);
        // Past the deadline, but the watch fails now: the server is away, not the process.
        let past = start + SYNC_DEADLINE + Duration::from_secs(1);
        health
            .watches
            .lock()
            .unwrap()
            .get_mut("Pod")
            .unwrap()
            .last_error = Some(past);
        assert!(health.live_at(past).is_ok());
        assert!(health.ready_at(past).is_err());
        // Quiet watches and still no sync: stuck.
        assert!(health.live_at(past + QUIET_AFTER * 2).is_err());
    }
}
