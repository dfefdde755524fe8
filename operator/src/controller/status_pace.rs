//! How often a Microservice's status is written. Ready and Degraded, a new generation, a
//! refused spec and a child conflict are written at once: tools (kstatus, Argo CD, Flux)
//! and people act on them. Progress in between (pods created, then Pending, then
//! Unschedulable; replica counts; which dependency is still missing) is written at most
//! once per [`PACE`] per Microservice, the newest state at the end of the pause. A bulk
//! create of 500 on the embedded cluster wrote 3.9 statuses per Microservice, each
//! describing a step that was already past by the time the next reconcile ran.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use crate::api::{Microservice, MicroserviceStatus};

use super::status::{DEGRADED, READY};

/// The longest a progress detail waits to be written.
pub const PACE: Duration = Duration::from_secs(5);

/// Whether `next` carries news that may not wait: a first status, another generation,
/// Ready or Degraded turning.
pub fn urgent(current: Option<&MicroserviceStatus>, next: &MicroserviceStatus) -> bool {
    let Some(current) = current else {
        return true;
    };
    let verdict = |status: &MicroserviceStatus, type_: &str| {
        status.condition(type_).map(|c| c.status.clone())
    };
    current.observed_generation != next.observed_generation
        || [READY, DEGRADED]
            .iter()
            .any(|type_| verdict(current, type_) != verdict(next, type_))
}

/// When each Microservice's status was last written, for those written within [`PACE`].
#[derive(Default)]
pub struct StatusPace(Mutex<HashMap<ObjectRef<Microservice>, Instant>>);

impl StatusPace {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<Microservice>, Instant>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long a non-urgent status of `key` must still wait; `None`: write it now.
    pub fn wait(&self, key: &ObjectRef<Microservice>, now: Instant) -> Option<Duration> {
        let mut map = self.map();
        let since = now.saturating_duration_since(*map.get(key)?);
        if since >= PACE {
            map.remove(key);
            return None;
        }
        Some(PACE - since)
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
}
