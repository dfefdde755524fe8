//! How often a Microservice's status is written. Ready and Degraded, a new generation, a
//! refused spec, a child conflict and a step of a release are written at once: tools
//! (kstatus, Argo CD, Flux) and people act on them, and a restarted operator resumes a
//! release from its status. Progress in between (the Deployment created, its pods
//! created, Pending, then Unschedulable; replica counts; which dependency is still
//! missing; the first record of a release) is written once it has stayed the same for
//! [`SETTLE`], or after [`MAX_WAIT`] while it keeps changing, each write in its own slot of
//! a process-wide budget.
//!
//! Progress that only says Kubernetes is at work ([`in_passing`]: the Deployment being
//! created or rolled out, pods starting), when the status already written says the same,
//! is no news: it waits for what comes next, at most [`AT_WORK_WAIT`]. Under a bulk create
//! the ReplicaSet controller and the scheduler (20 and 50 requests a second by default)
//! take one to two minutes to reach every pod, and each step they take would otherwise be
//! one more write, each describing a step already past by the next reconcile (500 at once
//! on the embedded cluster wrote 3.9 statuses per Microservice with no pacing, 2.15 with
//! a one-minute bound). So a create is two writes: the first status, then the pods'
//! verdict (Ready, or the cause that keeps them from it). A cause that goes away is news,
//! and settles as any other progress; a rollout that takes many minutes still shows how
//! far it got every [`AT_WORK_WAIT`], and one that stalls turns Degraded at its progress
//! deadline, which is written at once.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::ObjectRef;
use prometheus_client::metrics::gauge::Gauge;

use crate::api::{Microservice, MicroserviceStatus, RolloutStatus};

use crate::status::{
    DEGRADED, PROGRESSING, READY, REASON_CREATING, REASON_PODS_NOT_READY, REASON_ROLLING_OUT,
};

/// How long progress must stay the same before it is written.
pub const SETTLE: Duration = Duration::from_secs(5);
/// The longest progress waits while it keeps changing.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The longest progress [`in_passing`] waits after a status that was in passing too.
pub const AT_WORK_WAIT: Duration = Duration::from_secs(180);
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

/// Whether `status` shows Kubernetes still at work on the spec: `Ready` waits with no
/// cause to report, or the Deployment is still being created or rolled out (its pods may
/// already show a cause, but the counts and the cause are about to move again). What
/// comes next follows without anyone acting.
fn in_passing(status: &MicroserviceStatus) -> bool {
    let reason = |type_: &str| status.condition(type_).map(|c| c.reason.as_str());
    let at_work = [REASON_CREATING, REASON_ROLLING_OUT];
    reason(READY).is_some_and(|r| at_work.contains(&r) || r == REASON_PODS_NOT_READY)
        || reason(PROGRESSING).is_some_and(|r| at_work.contains(&r))
}

/// What a progress status shows, without the times that a pass recomputes (transition
/// times of conditions not yet written, the start of a release not yet recorded): two
/// passes that saw the same progress give the same digest.
fn progress_digest(status: &MicroserviceStatus) -> u64 {
    let mut shown = status.clone();
    for condition in &mut shown.conditions {
        condition.last_transition_time = Time(jiff::Timestamp::UNIX_EPOCH);
    }
    if let Some(rollout) = shown.rollout.as_mut() {
        rollout.release_started_at = None;
        rollout.step_started_at = None;
        rollout.paused_since = None;
    }
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&shown)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// Per Microservice, the progress waiting to be written and the slot it has in the
/// budget.
#[derive(Default)]
pub struct StatusPace {
    state: Mutex<PaceState>,
    /// How many Microservices have progress held back (`flotilla_statuses_held`).
    held: Gauge,
}

#[derive(Default)]
struct PaceState {
    deferred: HashMap<ObjectRef<Microservice>, Deferred>,
    slots: HashMap<ObjectRef<Microservice>, Instant>,
    budget: ProgressBudget,
    /// When stale entries were last dropped.
    pruned: Option<Instant>,
}

/// What a progress status waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// To stay the same for [`SETTLE`] (at most [`MAX_WAIT`]).
    Settle,
    /// Kubernetes still at work after a status that said so: for what comes next (at most
    /// [`AT_WORK_WAIT`]).
    AtWork,
}

/// Progress seen and not written.
struct Deferred {
    /// When progress was first held back since the last write, or since it started to
    /// wait for something else.
    since: Instant,
    /// When what it shows last changed.
    changed: Instant,
    digest: u64,
    hold: Hold,
}

impl StatusPace {
    /// A pace that reports how many statuses it holds back to `held`.
    pub fn reporting_to(held: Gauge) -> Self {
        StatusPace {
            held,
            ..StatusPace::default()
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long the progress in `next` must still wait, `written` being the status on the
    /// object; `None`: write it now. Once due, a wait for the budget reserves a slot, so
    /// the pass that comes back when it is due writes, and a bulk of deferred statuses
    /// comes back spread at the budget's rate instead of all at once.
    pub fn wait(
        &self,
        key: &ObjectRef<Microservice>,
        written: Option<&MicroserviceStatus>,
        next: &MicroserviceStatus,
        now: Instant,
    ) -> Option<Duration> {
        let at_work = in_passing(next) && written.is_some_and(in_passing);
        let hold = if at_work { Hold::AtWork } else { Hold::Settle };
        self.hold(key, progress_digest(next), hold, now)
    }

    /// [`Self::wait`] for progress showing `digest` ([`progress_digest`]).
    fn hold(
        &self,
        key: &ObjectRef<Microservice>,
        digest: u64,
        hold: Hold,
        now: Instant,
    ) -> Option<Duration> {
        let mut state = self.state();
        let deferred = state.deferred.entry(key.clone()).or_insert(Deferred {
            since: now,
            changed: now,
            digest,
            hold,
        });
        if deferred.digest != digest {
            deferred.digest = digest;
            deferred.changed = now;
        }
        // Kubernetes at work no more: what comes next, a cause, settles from now on, not
        // from when the work began (it would be written at once, and the next pod's
        // cause a moment later once more).
        if deferred.hold != hold {
            deferred.hold = hold;
            deferred.since = now;
        }
        let due = match hold {
            Hold::AtWork => deferred.since + AT_WORK_WAIT,
            Hold::Settle => (deferred.changed + SETTLE).min(deferred.since + MAX_WAIT),
        };
        self.report(&mut state, now);
        if now < due {
            return Some(due - now);
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

    /// Notes that the status on the object shows what a pass found, because it was just
    /// written or already said so: nothing is held back for it.
    pub fn shown(&self, key: &ObjectRef<Microservice>, now: Instant) {
        let mut state = self.state();
        state.deferred.remove(key);
        state.slots.remove(key);
        self.report(&mut state, now);
    }

    /// How many Microservices have progress held back.
    #[cfg(test)]
    fn held(&self) -> i64 {
        self.held.get()
    }

    fn report(&self, state: &mut PaceState, now: Instant) {
        state.prune(now);
        self.held.set(state.deferred.len() as i64);
    }
}

impl PaceState {
    /// Drops progress held back long past its due, and slots long past: they belong to
    /// Microservices that went away before they came. This keeps both maps as small as
    /// the set of Microservices waiting in the last minutes. At most once per [`SETTLE`]:
    /// every pass comes here, and the maps hold up to every Microservice in a bulk.
    fn prune(&mut self, now: Instant) {
        if self.pruned.is_some_and(|at| now < at + SETTLE) {
            return;
        }
        self.pruned = Some(now);
        let stale = AT_WORK_WAIT + SETTLE;
        self.deferred
            .retain(|_, d| now.saturating_duration_since(d.since) < stale);
        self.slots
            .retain(|_, slot| now.saturating_duration_since(*slot) < stale);
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
    fn progress_is_written_once_it_settles_or_after_the_longest_wait() {
        let pace = StatusPace::default();
        let key = ObjectRef::new("users").within("shop");
        let start = Instant::now();
        let secs = Duration::from_secs;
        assert_eq!(pace.hold(&key, 1, Hold::Settle, start), Some(SETTLE));
        // It changed: the settling starts again.
        assert_eq!(
            pace.hold(&key, 2, Hold::Settle, start + secs(3)),
            Some(SETTLE)
        );
        assert_eq!(
            pace.hold(&key, 2, Hold::Settle, start + secs(6)),
            Some(secs(2))
        );
        assert_eq!(
            pace.hold(&key, 2, Hold::Settle, start + secs(8)),
            None,
            "settled"
        );
        pace.shown(&key, start + secs(8));
        assert_eq!(pace.held(), 0);
        // Progress that went back to what is written is held no more.
        pace.hold(&key, 3, Hold::Settle, start + secs(9));
        assert_eq!(pace.held(), 1);
        pace.shown(&key, start + secs(9));
        assert_eq!(pace.held(), 0);
        // Progress that never settles is written after the longest wait.
        let t = start + secs(10);
        let mut written_at = None;
        for s in 0..90 {
            if pace.hold(&key, s, Hold::Settle, t + secs(s)).is_none() {
                written_at = Some(s);
                break;
            }
        }
        assert_eq!(written_at, Some(MAX_WAIT.as_secs()));
    }

    #[test]
    fn a_first_status_bulk_spends_the_budget_then_takes_slots_at_its_rate() {
        let pace = StatusPace::default();
        let start = Instant::now();
        let key = |i: u64| ObjectRef::new(&format!("ms-{i}")).within("shop");
        for i in 0..100 {
            pace.hold(&key(i), i, Hold::Settle, start);
        }
        let settled = start + SETTLE;
        let waits: Vec<Option<Duration>> = (0..100)
            .map(|i| pace.hold(&key(i), i, Hold::Settle, settled))
            .collect();
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
        assert_eq!(
            pace.hold(&key(99), 99, Hold::Settle, settled + gap),
            Some(last - gap)
        );
        assert_eq!(pace.hold(&key(99), 99, Hold::Settle, settled + last), None);
        // A write at once (urgent) ends a reservation.
        pace.shown(&key(98), settled + gap);
        assert!(!pace.state().slots.contains_key(&key(98)));
    }

    #[test]
    fn kubernetes_at_work_after_a_status_that_said_so_waits_for_what_comes_next() {
        let pace = StatusPace::default();
        let key = ObjectRef::new("users").within("shop");
        let start = Instant::now();
        let creating = status(1, &[(READY, "False", REASON_CREATING)]);
        let rolling = status(1, &[(READY, "False", REASON_ROLLING_OUT)]);
        let pending = status(1, &[(READY, "False", REASON_PODS_NOT_READY)]);
        assert_eq!(
            pace.wait(&key, Some(&creating), &rolling, start),
            Some(AT_WORK_WAIT)
        );
        // Still at work, another step: no news, the same deadline.
        let later = start + Duration::from_secs(50);
        assert_eq!(
            pace.wait(&key, Some(&creating), &pending, later),
            Some(AT_WORK_WAIT - Duration::from_secs(50))
        );
        // The pods' verdict: it settles as usual.
        let unschedulable = status(
            1,
            &[
                (READY, "False", "Unschedulable"),
                (PROGRESSING, "True", REASON_PODS_NOT_READY),
            ],
        );
        let verdict = start + Duration::from_secs(100);
        assert_eq!(
            pace.wait(&key, Some(&creating), &unschedulable, verdict),
            Some(SETTLE)
        );
        assert_eq!(
            pace.wait(&key, Some(&creating), &unschedulable, verdict + SETTLE),
            None
        );
        pace.shown(&key, verdict + SETTLE);
        // A cause that goes away is news: it settles as usual too.
        let back = verdict + Duration::from_secs(30);
        assert_eq!(
            pace.wait(&key, Some(&unschedulable), &pending, back),
            Some(SETTLE)
        );
        // At work for longer than the longest wait: written then, to show how far it got.
        let pace = StatusPace::default();
        let mut written_at = None;
        for s in 0..300 {
            let mut step = pending.clone();
            step.conditions[0].message = format!("{s} of 300 pods ready");
            let now = start + Duration::from_secs(s);
            if pace.wait(&key, Some(&creating), &step, now).is_none() {
                written_at = Some(s);
                break;
            }
        }
        assert_eq!(written_at, Some(AT_WORK_WAIT.as_secs()));
    }

    #[test]
    fn what_is_in_passing() {
        let rolling = status(1, &[(READY, "False", REASON_ROLLING_OUT)]);
        assert!(in_passing(&rolling));
        assert!(!in_passing(&status(
            1,
            &[
                (READY, "False", "Unschedulable"),
                (PROGRESSING, "True", "PodsNotReady")
            ]
        )));
        // The pods show a cause while the Deployment is still rolled out: more to come.
        assert!(in_passing(&status(
            1,
            &[
                (READY, "False", "Unschedulable"),
                (PROGRESSING, "True", REASON_ROLLING_OUT)
            ]
        )));
    }

    #[test]
    fn the_digest_ignores_recomputed_times_but_not_what_is_shown() {
        let pending = status(1, &[(READY, "False", "RollingOut")]);
        let mut later = pending.clone();
        later.conditions[0].last_transition_time = Time("2026-11-30T00:00:00Z".parse().unwrap());
        assert_eq!(progress_digest(&pending), progress_digest(&later));
        later.conditions[0].reason = "Unschedulable".into();
        assert_ne!(progress_digest(&pending), progress_digest(&later));
    }
}
