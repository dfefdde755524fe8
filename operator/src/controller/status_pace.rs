//! How often a Microservice's status is written. Ready and Degraded, a new generation, a
//! refused spec, a child conflict and a step of a release are written at once: tools
//! (kstatus, Argo CD, Flux) and people act on them, and a restarted operator resumes a
//! release from its status. Progress in between (the Deployment created, pods Pending,
//! then Unschedulable; replica counts; which dependency is still missing; the first record
//! of a release) waits: at most one progress write per Microservice every [`PACE`], each
//! in its own slot of a process-wide budget, and the newest state is written when the slot
//! comes. So a lone rollout shows every step, and a bulk create (500 at once on the
//! embedded cluster wrote 3.9 statuses per Microservice, each describing a step already
//! past by the next reconcile) leaves the API server to the children: a first status, and
//! the newest progress or the verdict.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use crate::api::{Microservice, MicroserviceStatus, RolloutStatus};

use super::status::{DEGRADED, READY};

/// The shortest time between two progress-only writes of one Microservice's status.
pub const PACE: Duration = Duration::from_secs(5);
/// Progress-only status writes per second across the process, sustained...
const PROGRESS_RATE: f64 = 10.0;
/// ...and in a burst: a handful of rollouts at once never wait.
const PROGRESS_BURST: f64 = 20.0;

/// Whether `next` carries news that may not wait: a first status, another generation,
/// Ready or Degraded turning, or a change to the release a later pass resumes from.
pub fn urgent(current: Option<&MicroserviceStatus>, next: &MicroserviceStatus) -> bool {
    let Some(current) = current else {
        return true;
    };
    let verdict = |status: &MicroserviceStatus, type_: &str| {
        status.condition(type_).map(|c| c.status.clone())
    };
    current.observed_generation != next.observed_generation
        || release_moved(current.rollout.as_ref(), next.rollout.as_ref())
        || [READY, DEGRADED]
            .iter()
            .any(|type_| verdict(current, type_) != verdict(next, type_))
}

/// Whether the release state moved in a way a later pass, maybe in another process, must
/// find written: its phase or step and when they started, a gate's checks, a failed
/// release, a handled promote or abort. Neither the one-line message is, nor a release's
/// first record: with none written, the next pass records it again from the same spec and
/// children, so it can wait for the next write.
fn release_moved(current: Option<&RolloutStatus>, next: Option<&RolloutStatus>) -> bool {
    let Some(current) = current else {
        return false;
    };
    let Some(next) = next else {
        return true;
    };
    let without_message = |status: &RolloutStatus| RolloutStatus {
        message: None,
        ..status.clone()
    };
    without_message(current) != without_message(next)
}

/// Per Microservice, when its status was last written (for those written within
/// [`PACE`]) and the slot its next progress write has in the budget.
#[derive(Default)]
pub struct StatusPace {
    state: Mutex<PaceState>,
}

#[derive(Default)]
struct PaceState {
    last: HashMap<ObjectRef<Microservice>, Instant>,
    slots: HashMap<ObjectRef<Microservice>, Instant>,
    budget: ProgressBudget,
}

impl StatusPace {
    fn state(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long a progress-only status of `key` must still wait; `None`: write it now.
    /// A wait for the budget reserves a slot, so the pass that comes back when it is due
    /// writes, and a bulk of deferred statuses comes back spread at the budget's rate
    /// instead of all at once.
    pub fn wait(&self, key: &ObjectRef<Microservice>, now: Instant) -> Option<Duration> {
        let mut state = self.state();
        if let Some(at) = state.last.get(key) {
            let since = now.saturating_duration_since(*at);
            if since < PACE {
                return Some(PACE - since);
            }
            state.last.remove(key);
        }
        if let Some(slot) = state.slots.get(key) {
            if *slot <= now {
                state.slots.remove(key);
                return None;
            }
            return Some(slot.saturating_duration_since(now));
        }
        let wait = state.budget.reserve(now);
        if wait.is_zero() {
            return None;
        }
        state.slots.insert(key.clone(), now + wait);
        Some(wait)
    }

    /// Notes a status written now (which also ends a reservation: it was written).
    pub fn wrote(&self, key: ObjectRef<Microservice>, now: Instant) {
        let mut state = self.state();
        // Entries older than the pace say nothing more, and a slot long past belongs to a
        // Microservice that went away before it came: dropping them here keeps both maps
        // as small as the set of Microservices written or waiting in the last seconds.
        state
            .last
            .retain(|_, at| now.saturating_duration_since(*at) < PACE);
        state
            .slots
            .retain(|_, slot| now.saturating_duration_since(*slot) < PACE);
        state.slots.remove(&key);
        state.last.insert(key, now);
    }
}

/// A token bucket of progress-only status writes: [`PROGRESS_RATE`] a second, up to
/// [`PROGRESS_BURST`] saved; a write that finds it empty takes the next free slot.
struct ProgressBudget {
    tokens: f64,
    last: Option<Instant>,
}

impl Default for ProgressBudget {
    fn default() -> Self {
        ProgressBudget {
            tokens: PROGRESS_BURST,
            last: None,
        }
    }
}

impl ProgressBudget {
    /// Takes one write from the budget: zero when it can be written now, else how long
    /// until its slot.
    fn reserve(&mut self, now: Instant) -> Duration {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * PROGRESS_RATE;
            self.tokens = (self.tokens + refill).min(PROGRESS_BURST);
        }
        self.last = Some(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / PROGRESS_RATE)
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
    fn a_first_record_of_a_release_and_its_message_can_wait_its_steps_cannot() {
        let pending = status(1, &[(READY, "False", "RollingOut")]);
        let release = RolloutStatus {
            phase: Some(crate::api::RolloutPhase::Progressing),
            revision: Some("abc".into()),
            message: Some("0/2 new pods ready".into()),
            ..RolloutStatus::default()
        };
        let with = |rollout: &RolloutStatus| MicroserviceStatus {
            rollout: Some(rollout.clone()),
            ..pending.clone()
        };
        assert!(!urgent(Some(&pending), &with(&release)), "first record");
        let message = RolloutStatus {
            message: Some("1/2 new pods ready".into()),
            ..release.clone()
        };
        assert!(!urgent(Some(&with(&release)), &with(&message)));
        let step = RolloutStatus {
            step: Some(2),
            ..release.clone()
        };
        assert!(urgent(Some(&with(&release)), &with(&step)));
        assert!(
            urgent(Some(&with(&release)), &pending),
            "release state dropped"
        );
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
        assert!(pace.state().last.is_empty());
    }

    #[test]
    fn a_burst_of_progress_spends_the_budget_then_takes_slots_at_its_rate() {
        let pace = StatusPace::default();
        let start = Instant::now();
        let key = |i: usize| ObjectRef::new(&format!("ms-{i}")).within("shop");
        let waits: Vec<Option<Duration>> = (0..100).map(|i| pace.wait(&key(i), start)).collect();
        let now = waits.iter().filter(|w| w.is_none()).count();
        assert_eq!(now, PROGRESS_BURST as usize);
        // The rest come back one slot apart, in the order they asked.
        let slots: Vec<Duration> = waits.into_iter().flatten().collect();
        let gap = Duration::from_secs_f64(1.0 / PROGRESS_RATE);
        assert_eq!(slots[0], gap);
        assert!(slots.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(slots.len(), 100 - PROGRESS_BURST as usize);
        // Asking again before the slot changes nothing; at the slot, it is written.
        let last = *slots.last().unwrap();
        assert_eq!(pace.wait(&key(99), start + gap), Some(last - gap));
        assert_eq!(pace.wait(&key(99), start + last), None);
        // A write at once (urgent) ends a reservation.
        pace.wrote(key(98), start + gap);
        assert!(!pace.state().slots.contains_key(&key(98)));
    }
}
