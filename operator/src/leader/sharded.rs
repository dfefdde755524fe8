//! The shard leases at work: one poll a second reads every shard's Lease, renews the
//! ones this replica holds, and claims, releases or asks as [`shards::plan`] says. Each
//! shard has its own [`Fence`], opened and closed exactly as the single leader's: a write
//! to a namespace passes only while this replica's hold on that namespace's shard is
//! fresh.
//!
//! Freshness is judged on this process's clock from the holder and renew time it saw
//! change, not from the object's version: an ask rewrites the object, and must not keep a
//! dead holder's lease looking alive.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};
use tracing::{info, warn};

use super::record;
use super::shards::{SeenLease, Step, plan};
use super::{Fence, LeaseSettings, conflict_is_none};
use crate::metrics::Metrics;

/// The annotation a replica short of shards puts on a lease it asks for:
/// `<identity>@<RFC 3339 time>`.
pub const WANTED_BY: &str = "flotilla.dev/wanted-by";
/// How often every replica reads the shard leases.
const POLL: Duration = Duration::from_secs(1);

/// The Lease of `shard`.
pub fn lease_name(prefix: &str, shard: u32) -> String {
    format!("{prefix}-shard-{shard}")
}

/// A hold of this replica.
struct Held {
    lease: Lease,
    /// When the last renewal that succeeded started.
    renewed: Instant,
}

/// Another replica's hold, as last seen changing.
#[derive(Clone)]
struct Sighting {
    holder: Option<String>,
    renew_time: Option<String>,
    duration: Duration,
    since: Instant,
}

pub struct Sharder {
    api: Api<Lease>,
    /// Name prefix, namespace, identity and duration, as for the single lease.
    settings: LeaseSettings,
    shards: u32,
    fences: Arc<[Fence]>,
    held: BTreeMap<u32, Held>,
    sightings: BTreeMap<u32, Sighting>,
    owned: watch::Sender<BTreeSet<u32>>,
    metrics: Arc<Metrics>,
}

impl Sharder {
    /// `client` must be unfenced: the sharder's own writes make the fences.
    pub fn new(
        client: Client,
        settings: LeaseSettings,
        shards: u32,
        metrics: Arc<Metrics>,
    ) -> Self {
        info!(leases = %lease_name(&settings.name, 0), shards, namespace = %settings.namespace,
            identity = %settings.identity, "sharding: one lease per shard");
        Sharder {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            shards,
            fences: (0..shards).map(|_| Fence::default()).collect(),
            held: BTreeMap::new(),
            sightings: BTreeMap::new(),
            owned: watch::channel(BTreeSet::new()).0,
            metrics,
        }
    }

    /// One fence per shard, by shard number.
    pub fn fences(&self) -> Arc<[Fence]> {
        self.fences.clone()
    }

    /// The shards this replica holds, as they change.
    pub fn owned(&self) -> watch::Receiver<BTreeSet<u32>> {
        self.owned.subscribe()
    }

    /// Polls until `stop` turns true, then releases every held shard.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            self.poll().await;
            tokio::select! {
                () = sleep(POLL) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
        for shard in self.held.keys().copied().collect::<Vec<_>>() {
            self.release(shard).await;
        }
    }

    async fn poll(&mut self) {
        self.renew_due().await;
        let Some(seen) = self.read().await else {
            self.publish();
            return;
        };
        for step in plan(&self.settings.identity, self.shards, &seen) {
            match step {
                Step::Claim(shard) => self.claim(shard).await,
                Step::Release(shard) => {
                    info!(
                        shard,
                        "releasing a shard another replica asked for, or one above the even share"
                    );
                    self.release(shard).await;
                }
                Step::Ask(shard) => self.ask(shard).await,
            }
        }
        self.publish();
    }

    /// Renews each held lease at its time; a lease lost or past its deadline is let go.
    async fn renew_due(&mut self) {
        let every = self.settings.renew_every();
        let deadline = self.settings.renew_deadline();
        for shard in self.held.keys().copied().collect::<Vec<_>>() {
            let held = &self.held[&shard];
            if held.renewed.elapsed() < every {
                continue;
            }
            let started = Instant::now();
            let renewal = record::renewed(&held.lease, Timestamp::now());
            let name = lease_name(&self.settings.name, shard);
            let outcome = timeout(
                every,
                self.api.replace(&name, &PostParams::default(), &renewal),
            )
            .await;
            match outcome {
                Ok(Ok(lease)) => {
                    self.metrics.lease_renewal(true);
                    self.fences[shard as usize].open_until(started + deadline);
                    self.held.insert(
                        shard,
                        Held {
                            lease,
                            renewed: started,
                        },
                    );
                }
                Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
                    // Rewritten by someone: an ask (still ours: renewed from what is
                    // there at the next poll) or a claim (lost).
                    self.metrics.lease_renewal(false);
                    match self.api.get(&name).await {
                        Ok(current)
                            if record::holder(&current)
                                == Some(self.settings.identity.as_str()) =>
                        {
                            if let Some(held) = self.held.get_mut(&shard) {
                                held.lease = current;
                                held.renewed = Instant::now() - every;
                            }
                        }
                        Ok(current) => {
                            warn!(shard, holder = ?record::holder(&current), "another replica took the shard");
                            self.let_go(shard);
                        }
                        Err(error) => {
                            warn!(shard, %error, "reading the shard lease after a conflict")
                        }
                    }
                }
                failed => {
                    self.metrics.lease_renewal(false);
                    let why = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => "no answer in time".to_string(),
                    };
                    warn!(shard, %why, "renewing the shard lease failed; retrying");
                }
            }
            if self.fences[shard as usize].deadline().is_none() {
                warn!(
                    shard,
                    "no renewal of the shard lease succeeded in time: stopped writing to it"
                );
                self.let_go(shard);
            }
        }
    }

    /// Every shard's lease as this replica sees it; None when one could not be read.
    async fn read(&mut self) -> Option<BTreeMap<u32, SeenLease>> {
        let now = Instant::now();
        let mut seen = BTreeMap::new();
        for shard in 0..self.shards {
            let name = lease_name(&self.settings.name, shard);
            let lease = match timeout(POLL, self.api.get_opt(&name)).await {
                Ok(Ok(lease)) => lease,
                _ => return None,
            };
            let Some(lease) = lease else {
                self.sightings.remove(&shard);
                continue;
            };
            if let Some(held) = self.held.get_mut(&shard) {
                // Keep what others wrote beside the hold (an ask) for the next renewal.
                if record::holder(&lease) == Some(self.settings.identity.as_str()) {
                    held.lease = lease.clone();
                }
            }
            let holder = if self.held.contains_key(&shard) {
                Some(self.settings.identity.clone())
            } else {
                self.fresh_holder(shard, &lease, now)
            };
            seen.insert(
                shard,
                SeenLease {
                    holder,
                    wanted_by: fresh_ask(&lease, self.settings.duration),
                },
            );
        }
        Some(seen)
    }

    fn fresh_holder(&mut self, shard: u32, lease: &Lease, now: Instant) -> Option<String> {
        let spec = lease.spec.as_ref();
        let holder = record::holder(lease).map(str::to_string);
        let renew_time = spec
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.to_string());
        let duration = Duration::from_secs(
            spec.and_then(|s| s.lease_duration_seconds)
                .unwrap_or(0)
                .max(0) as u64,
        );
        let sighting = self.sightings.entry(shard).or_insert(Sighting {
            holder: None,
            renew_time: None,
            duration,
            since: now,
        });
        if sighting.holder != holder || sighting.renew_time != renew_time {
            *sighting = Sighting {
                holder: holder.clone(),
                renew_time,
                duration,
                since: now,
            };
        }
        holder.filter(|_| now.duration_since(sighting.since) < sighting.duration)
    }

    async fn claim(&mut self, shard: u32) {
        let name = lease_name(&self.settings.name, shard);
        let started = Instant::now();
        let current = match timeout(self.settings.renew_every(), self.api.get_opt(&name)).await {
            Ok(Ok(current)) => current,
            Ok(Err(error)) => return warn!(shard, %error, "reading a shard lease to claim it"),
            Err(_) => return warn!(shard, "reading a shard lease to claim it timed out"),
        };
        // Renewed since the poll read it: still its holder's.
        if let Some(lease) = &current
            && self
                .fresh_holder(shard, lease, Instant::now())
                .is_some_and(|holder| holder != self.settings.identity)
        {
            return;
        }
        let attempt = async {
            match current {
                None => {
                    let lease = record::new_lease(
                        &name,
                        &self.settings.namespace,
                        &self.settings.identity,
                        self.settings.duration,
                    );
                    conflict_is_none(self.api.create(&PostParams::default(), &lease).await)
                }
                Some(current) => {
                    let mut claimed = record::claim(
                        &current,
                        &self.settings.identity,
                        self.settings.duration,
                        Timestamp::now(),
                    );
                    // The ask is answered by this claim, whoever made it.
                    if let Some(annotations) = claimed.metadata.annotations.as_mut() {
                        annotations.remove(WANTED_BY);
                    }
                    // Compare-and-swap on the version read: of two claimants, one wins.
                    conflict_is_none(
                        self.api
                            .replace(&name, &PostParams::default(), &claimed)
                            .await,
                    )
                }
            }
        };
        match timeout(self.settings.renew_every(), attempt).await {
            Ok(Ok(Some(lease))) => {
                info!(shard, "claimed a shard");
                self.fences[shard as usize].open_until(started + self.settings.renew_deadline());
                self.held.insert(
                    shard,
                    Held {
                        lease,
                        renewed: started,
                    },
                );
            }
            Ok(Ok(None)) => {}
            Ok(Err(error)) => warn!(shard, %error, "claiming a shard"),
            Err(_) => warn!(shard, "claiming a shard timed out"),
        }
    }

    /// Stops writing to `shard`, then gives its lease up so another replica takes it at
    /// its next poll.
    async fn release(&mut self, shard: u32) {
        let Some(held) = self.held.remove(&shard) else {
            return;
        };
        let fresh = self.fences[shard as usize].deadline().is_some();
        self.fences[shard as usize].close();
        self.publish();
        if !fresh {
            return;
        }
        let name = lease_name(&self.settings.name, shard);
        let released = record::released(&held.lease, Timestamp::now());
        match timeout(
            self.settings.renew_every(),
            self.api.replace(&name, &PostParams::default(), &released),
        )
        .await
        {
            Ok(Ok(_)) => info!(shard, "released a shard"),
            Ok(Err(error)) => warn!(shard, %error, "releasing a shard"),
            Err(_) => warn!(shard, "releasing a shard timed out"),
        }
    }

    /// Marks `shard`'s lease as wanted by this replica (a compare-and-swap: lost to a
    /// renewal, it is asked again at the next poll).
    async fn ask(&mut self, shard: u32) {
        let name = lease_name(&self.settings.name, shard);
        let attempt = async {
            let Some(mut lease) = self.api.get_opt(&name).await? else {
                return Ok(());
            };
            lease.metadata.annotations.get_or_insert_default().insert(
                WANTED_BY.to_string(),
                format!("{}@{}", self.settings.identity, Timestamp::now()),
            );
            conflict_is_none(
                self.api
                    .replace(&name, &PostParams::default(), &lease)
                    .await,
            )
            .map(|_| ())
        };
        match timeout(self.settings.renew_every(), attempt).await {
            Ok(Ok(())) => info!(
                shard,
                "asked for a shard: this replica holds less than its share"
            ),
            Ok(Err(error)) => warn!(shard, %error, "asking for a shard"),
            Err(_) => warn!(shard, "asking for a shard timed out"),
        }
    }

    fn let_go(&mut self, shard: u32) {
        self.fences[shard as usize].close();
        self.held.remove(&shard);
    }

    /// Tells the controller which shards are this replica's now.
    fn publish(&self) {
        let owned: BTreeSet<u32> = self
            .held
            .keys()
            .copied()
            .filter(|&shard| self.fences[shard as usize].deadline().is_some())
            .collect();
        self.metrics.leading(!owned.is_empty());
        self.owned.send_if_modified(|current| {
            let changed = *current != owned;
            *current = owned;
            changed
        });
    }
}

/// The replica asking for `lease`, while its ask is younger than `duration` (by the wall
/// clock: an ask only moves shares, never safety).
fn fresh_ask(lease: &Lease, duration: Duration) -> Option<String> {
    let value = lease.metadata.annotations.as_ref()?.get(WANTED_BY)?;
    let (identity, at) = value.rsplit_once('@')?;
    let at: Timestamp = at.parse().ok()?;
    let age = Timestamp::now().duration_since(at);
    (age.as_secs() >= 0 && (age.as_secs() as u64) < duration.as_secs().max(1))
        .then(|| identity.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    #[test]
    fn an_ask_counts_while_it_is_younger_than_the_lease() {
        let lease = |value: String| Lease {
            metadata: ObjectMeta {
                annotations: Some([(WANTED_BY.to_string(), value)].into()),
                ..ObjectMeta::default()
            },
            spec: None,
        };
        let now = Timestamp::now();
        assert_eq!(
            fresh_ask(&lease(format!("b@{now}")), Duration::from_secs(15)).as_deref(),
            Some("b")
        );
        let old = now - jiff::SignedDuration::from_secs(60);
        assert_eq!(
            fresh_ask(&lease(format!("b@{old}")), Duration::from_secs(15)),
            None
        );
        assert_eq!(
            fresh_ask(&lease("garbage".into()), Duration::from_secs(15)),
            None
        );
        assert_eq!(lease_name("flotilla-leader", 2), "flotilla-leader-shard-2");
    }
}
