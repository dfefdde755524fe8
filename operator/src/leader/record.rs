//! The lease record and the decisions about it, without a client: who holds it, whether
//! it may be taken, and what each write (claim, renewal, release) puts in it.
//!
//! Expiry is judged on this process's own clock, as client-go does: a lease is free once
//! its record has not changed for its whole duration since this process first saw that
//! version. No two machines' clocks are compared.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use tokio::time::Instant;

/// The version of the lease last seen, and when it was first seen.
#[derive(Clone, Debug)]
struct Sighting {
    version: Option<String>,
    holder: Option<String>,
    duration: Duration,
    since: Instant,
}

/// What this process knows of the lease from reading it.
#[derive(Debug, Default)]
pub struct Observer {
    last: Option<Sighting>,
}

impl Observer {
    /// Notes a read of the lease at `now`; a new version restarts its clock.
    pub fn observe(&mut self, lease: &Lease, now: Instant) {
        let version = lease.metadata.resource_version.clone();
        if self.last.as_ref().is_some_and(|s| s.version == version) {
            return;
        }
        let spec = lease.spec.as_ref();
        self.last = Some(Sighting {
            version,
            holder: holder(lease).map(str::to_string),
            duration: Duration::from_secs(
                spec.and_then(|s| s.lease_duration_seconds)
                    .unwrap_or(0)
                    .max(0) as u64,
            ),
            since: now,
        });
    }

    /// Whether `identity` may take the lease at `now`: nobody holds it, it already does
    /// (a restarted container keeps its pod's name), or the holder has not renewed it for
    /// its whole duration.
    pub fn claimable(&self, identity: &str, now: Instant) -> bool {
        let Some(seen) = &self.last else {
            return false;
        };
        match seen.holder.as_deref() {
            None => true,
            Some(holder) if holder == identity => true,
            Some(_) => now.duration_since(seen.since) >= seen.duration,
        }
    }

    /// The holder last seen, for logs.
    pub fn holder(&self) -> Option<&str> {
        self.last.as_ref().and_then(|s| s.holder.as_deref())
    }
}

/// The holder a lease names; an empty name is nobody (what a release leaves).
pub fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// A new lease held by `identity`.
pub fn new_lease(name: &str, namespace: &str, identity: &str, duration: Duration) -> Lease {
    let empty = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        spec: None,
    };
    claim(&empty, identity, duration, Timestamp::now())
}

/// `lease` taken by `identity`: a change of holder counts a transition.
pub fn claim(lease: &Lease, identity: &str, duration: Duration, now: Timestamp) -> Lease {
    let previous = lease.spec.clone().unwrap_or_default();
    let transitions = previous.lease_transitions.unwrap_or(0);
    let same_holder = holder(lease) == Some(identity);
    Lease {
        metadata: lease.metadata.clone(),
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.to_string()),
            lease_duration_seconds: Some(duration.as_secs().min(i32::MAX as u64) as i32),
            acquire_time: if same_holder {
                previous.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if same_holder || lease.spec.is_none() {
                transitions
            } else {
                transitions.saturating_add(1)
            }),
            ..previous
        }),
    }
}

/// `lease` renewed now.
pub fn renewed(lease: &Lease, now: Timestamp) -> Lease {
    let mut lease = lease.clone();
    lease.spec.get_or_insert_with(LeaseSpec::default).renew_time = Some(MicroTime(now));
    lease
}

/// `lease` given up: no holder and a one-second duration, so a standby takes it at its
/// next look instead of waiting out the duration.
pub fn released(lease: &Lease, now: Timestamp) -> Lease {
    let mut lease = lease.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(now));
    lease
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(version: &str, holder: Option<&str>, seconds: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("flotilla-leader".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(seconds),
                lease_transitions: Some(3),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn a_held_lease_is_claimable_only_after_it_went_unrenewed_for_its_duration() {
        let start = Instant::now();
        let mut observer = Observer::default();
        observer.observe(&lease("1", Some("a"), 15), start);
        assert!(!observer.claimable("b", start + Duration::from_secs(14)));
        // A renewal (a new version) restarts the clock.
        observer.observe(&lease("2", Some("a"), 15), start + Duration::from_secs(14));
        assert!(!observer.claimable("b", start + Duration::from_secs(20)));
        // Reading the same version again does not.
        observer.observe(&lease("2", Some("a"), 15), start + Duration::from_secs(25));
        assert!(observer.claimable("b", start + Duration::from_secs(29)));
    }

    #[test]
    fn a_released_lease_and_ones_own_are_claimable_at_once() {
        let now = Instant::now();
        let mut observer = Observer::default();
        observer.observe(&lease("1", Some("a"), 15), now);
        assert!(observer.claimable("a", now));
        let released = released(&lease("2", Some("a"), 15), Timestamp::now());
        let mut observer = Observer::default();
        observer.observe(&released, now);
        assert!(observer.claimable("b", now));
        assert_eq!(holder(&released), None);
    }

    #[test]
    fn nothing_is_claimable_before_the_lease_was_read() {
        assert!(!Observer::default().claimable("a", Instant::now()));
    }

    #[test]
    fn a_claim_from_another_holder_counts_a_transition_and_a_reclaim_does_not() {
        let now = Timestamp::now();
        let taken = claim(
            &lease("1", Some("a"), 15),
            "b",
            Duration::from_secs(20),
            now,
        );
        let spec = taken.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.lease_duration_seconds, Some(20));
        assert_eq!(spec.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("1"));
        let kept = claim(&taken, "b", Duration::from_secs(20), now);
        assert_eq!(kept.spec.unwrap().lease_transitions, Some(4));
    }
}
