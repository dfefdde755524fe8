//! How often a Microservice's status is written. Ready and Degraded, a new generation, a
//! refused spec and a child conflict are written at once: tools (kstatus, Argo CD, Flux)
//! and people act on them. Progress in between (pods created, then Pending, then
//! Unschedulable; replica counts; which dependency is still missing) is written at once
//! too, unless the same Microservice's status was written less than [`PACE`] ago or the
//! process has spent its [`ProgressBudget`]: then it waits, and the newest state is written
//! when it comes back. So a lone rollout shows every step, and a bulk create (500 at once
//! on the embedded cluster wrote 3.9 statuses per Microservice, each describing a step
//! already past by the next reconcile) leaves the API server to the children.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use crate::api::{Microservice, MicroserviceStatus};

use super::status::{DEGRADED, READY};

/// The shortest time between two progress-only writes of one Microservice's status, and
/// how long a deferred one waits before it is tried again.
pub const PACE: Duration = Duration::from_secs(5);
/// Progress-only status writes per second across the process, sustained...
const PROGRESS_RATE: f64 = 5.0;
/// ...and in a burst: a handful of rollouts at once never wait.
const PROGRESS_BURST: f64 = 20.0;

/// Whether `next` carries news that may not wait: a first status, another generation,
/// Ready or Degraded turning, or the release's state (`status.rollout`: the canary step
/// and its start, the stable template, a failed generation), which the next pass, maybe
/// in another process, resumes from.
pub fn urgent(current: Option<&MicroserviceStatus>, next: &MicroserviceStatus) -> bool {
    let Some(current) = current else {
        return true;
    };
    let verdict = |status: &MicroserviceStatus, type_: &str| {
        status.condition(type_).map(|c| c.status.clone())
    };
    current.observed_generation != next.observed_generation
        || current.rollout != next.rollout
        || [READY, DEGRADED]
            .iter()
            .any(|type_| verdict(current, type_) != verdict(next, type_))
}

/// When each Microservice's status was last written (for those written within [`PACE`]),
/// and the budget of progress-only writes.
#[derive(Default)]
pub struct StatusPace {
    last: Mutex<HashMap<ObjectRef<Microservice>, Instant>>,
    budget: ProgressBudget,
}

impl StatusPace {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<Microservice>, Instant>> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long a progress-only status of `key` must still wait; `None`: write it now
    /// (which takes one write from the budget).
    pub fn wait(&self, key: &ObjectRef<Microservice>, now: Instant) -> Option<Duration> {
        let mut map = self.map();
        if let Some(at) = map.get(key) {
            let since = now.saturating_duration_since(*at);
            if since < PACE {
                return Some(PACE - since);
            }
            map.remove(key);
        }
        if self.budget.take(now) {
            None
        } else {
            Some(PACE)
        }
    }

    /// Notes a status written now.
    pub fn wrote(&self, key: ObjectRef<Microservice>, now: Instant) {
        let mut map = self.map();
        // Entries older than the pace say nothing more; dropping them here keeps the map
        // as small as the set of Microservices written in the last few seconds.
        map.retain(|_, at| now.saturating_duration_since(*at) < PACE);
        map.insert(key, now);
    }
}

/// A token bucket of progress-only status writes: [`PROGRESS_RATE`] a second, up to
/// [`PROGRESS_BURST`] saved.
pub struct ProgressBudget(Mutex<(f64, Option<Instant>)>);

impl Default for ProgressBudget {
    fn default() -> Self {
        ProgressBudget(Mutex::new((PROGRESS_BURST, None)))
    }
}

impl ProgressBudget {
    /// Takes one write from the budget if there is one.
    fn take(&self, now: Instant) -> bool {
        let mut state = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = &mut *state;
        if let Some(last) = *last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * PROGRESS_RATE;
            *tokens = (*tokens + refill).min(PROGRESS_BURST);
        }
        *last = Some(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn status(generation: i64, conditions: &[(&str, &str, &str)]) -> MicroserviceStatus {
        MicroserviceStatus {
            observed_generation: Some(generation),
            conditions: conditions
                .iter()
                .map(|(type_, status, reason)| Condition {
                    type_: type_.to_string(),
                    status: status.to_string(),
                    reason: reason.to_string(),
                    message: String::new(),
                    observed_generation: Some(generation),
                    last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                })
                .collect(),
            ..MicroserviceStatus::default()
        }
    }

    #[test]
    fn verdicts_and_generations_are_urgent_progress_is_not() {
        let pending = status(
            1,
            &[(READY, "False", "PodsPending"), (DEGRADED, "False", "")],
        );
        assert!(urgent(None, &pending));
        assert!(urgent(
            Some(&pending),
            &status(2, &[(READY, "False", "PodsPending")])
        ));
        let ready = status(1, &[(READY, "True", "Ready"), (DEGRADED, "False", "")]);
        assert!(urgent(Some(&pending), &ready));
        let degraded = status(
            1,
            &[
                (READY, "False", "PodsPending"),
                (DEGRADED, "True", "RolledBack"),
            ],
        );
        assert!(urgent(Some(&pending), &degraded));
        let unschedulable = status(
            1,
            &[(READY, "False", "Unschedulable"), (DEGRADED, "False", "")],
        );
        assert!(!urgent(Some(&pending), &unschedulable));
    }

    #[test]
    fn progress_waits_out_the_pace_after_a_write() {
        let pace = StatusPace::default();
        let key = ObjectRef::new("users").within("shop");
        let start = Instant::now();
        assert_eq!(pace.wait(&key, start), None, "never written: write now");
        pace.wrote(key.clone(), start);
        assert_eq!(
            pace.wait(&key, start + Duration::from_secs(2)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(pace.wait(&key, start + PACE), None);
        // The entry went once the pace had passed.
        assert!(pace.map().is_empty());
    }

    #[test]
    fn a_burst_of_progress_spends_the_budget_then_waits_for_it_to_refill() {
        let pace = StatusPace::default();
        let start = Instant::now();
        let key = |i: usize| ObjectRef::new(&format!("ms-{i}")).within("shop");
        let written = (0..100)
            .filter(|i| pace.wait(&key(*i), start).is_none())
            .count();
        assert_eq!(written, PROGRESS_BURST as usize);
        assert_eq!(
            pace.wait(&key(100), start),
            Some(PACE),
            "deferred, not dropped"
        );
        // One second later the budget holds PROGRESS_RATE more.
        let later = start + Duration::from_secs(1);
        let written = (101..200)
            .filter(|i| pace.wait(&key(*i), later).is_none())
            .count();
        assert_eq!(written, PROGRESS_RATE as usize);
    }
}
