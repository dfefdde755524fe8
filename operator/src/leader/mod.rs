//! Leader election on a coordination.k8s.io/v1 Lease, with fencing: only the holder of a
//! fresh lease writes, at every write.
//!
//! The leader renews every fifth of the lease duration, each renewal bounded by that
//! interval (a renewal that hangs has failed). The [`Fence`] stays open until two thirds
//! of the duration after the start of the last renewal that succeeded: a leader that
//! cannot renew stops writing a third of the duration before any standby may take over.
//! Losing the lease ends the controller (its caches with it); the process stands by again
//! and, on re-acquiring, starts a new controller on fresh caches. On shutdown the lease
//! is released, so a standby, which looks every second, takes over at once.
//!
//! kube-lease-manager, used before, kept reporting leadership while renewals failed and
//! renewed only two seconds before expiry; this is the client-go algorithm instead.

mod fence;
mod record;
pub mod sharded;
pub mod shards;

pub use fence::{Fence, FenceLayer, Fenced, ShardFenceLayer};

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use record::Observer;

/// How often a standby reads the lease: the most a graceful handover waits.
const STANDBY_POLL: Duration = Duration::from_secs(1);

pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
}

impl LeaseSettings {
    pub(crate) fn renew_every(&self) -> Duration {
        self.duration / 5
    }

    /// How long after a renewal's start writes may go on without another renewal.
    pub(crate) fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// Why a renewal did not extend the lease.
enum RenewFailure {
    /// Another replica holds the lease now.
    Lost(String),
    /// The API server refused or did not answer in time: retried until the deadline.
    Failed(String),
}

pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    fence: Fence,
    metrics: Arc<Metrics>,
    observer: Observer,
    /// The lease as this process last wrote it, while it holds it.
    held: Option<Lease>,
}

impl Elector {
    /// `client` must be unfenced: the elector's own writes make the fence.
    pub fn new(client: Client, settings: LeaseSettings, metrics: Arc<Metrics>) -> Self {
        info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity,
            duration = ?settings.duration, "leader election");
        Elector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            fence: Fence::default(),
            metrics,
            observer: Observer::default(),
            held: None,
        }
    }

    /// The fence this elector opens while it holds the lease.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Resolves once this process holds the lease (and the fence is open).
    pub async fn acquire(&mut self) {
        let mut waiting_for = None::<String>;
        loop {
            let started = Instant::now();
            match timeout(self.settings.renew_every(), self.try_acquire()).await {
                Ok(Ok(Some(lease))) => {
                    self.hold_from(lease, started);
                    info!(lease = %self.settings.name, "acquired the leader lease");
                    return;
                }
                Ok(Ok(None)) => {
                    let holder = self.observer.holder().map(str::to_string);
                    if holder != waiting_for {
                        info!(holder = ?holder, "standing by: another replica holds the lease");
                        waiting_for = holder;
                    }
                }
                Ok(Err(error)) => debug!(%error, "reading or claiming the lease"),
                Err(_) => debug!("reading or claiming the lease timed out"),
            }
            sleep(STANDBY_POLL).await;
        }
    }

    /// Renews the lease until it is lost; then the fence is closed.
    pub async fn hold(&mut self) {
        let mut next = Instant::now() + self.settings.renew_every();
        while let Some(deadline) = self.fence.deadline() {
            tokio::select! {
                () = sleep_until(next) => {}
                () = sleep_until(deadline) => {
                    warn!(lease = %self.settings.name, deadline = ?self.settings.renew_deadline(),
                        "no renewal of the leader lease succeeded in time: stopped writing");
                    break;
                }
            }
            let started = Instant::now();
            next = started + self.settings.renew_every();
            let outcome = match timeout(self.settings.renew_every(), self.renew()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(RenewFailure::Failed("no answer in time".into())),
            };
            match outcome {
                Ok(lease) => {
                    self.metrics.lease_renewal(true);
                    self.hold_from(lease, started);
                }
                Err(RenewFailure::Failed(why)) => {
                    self.metrics.lease_renewal(false);
                    warn!(lease = %self.settings.name, %why, "renewing the leader lease failed; retrying");
                }
                Err(RenewFailure::Lost(holder)) => {
                    self.metrics.lease_renewal(false);
                    warn!(lease = %self.settings.name, %holder, "another replica took the leader lease");
                    break;
                }
            }
        }
        self.let_go();
    }

    /// Gives the lease up (after the controller stopped), so a standby need not wait
    /// for it to expire.
    pub async fn release(&mut self) {
        let Some(lease) = self.held.take() else {
            return;
        };
        let still_valid = self.fence.deadline().is_some();
        self.let_go();
        if !still_valid {
            return;
        }
        let name = self.settings.name.clone();
        let released = record::released(&lease, Timestamp::now());
        match timeout(
            self.settings.renew_every(),
            self.api.replace(&name, &PostParams::default(), &released),
        )
        .await
        {
            Ok(Ok(_)) => info!(lease = %name, "released the leader lease"),
            Ok(Err(error)) => warn!(lease = %name, %error, "releasing the leader lease"),
            Err(_) => warn!(lease = %name, "releasing the leader lease timed out"),
        }
    }

    fn hold_from(&mut self, lease: Lease, renewal_started: Instant) {
        self.held = Some(lease);
        self.fence
            .open_until(renewal_started + self.settings.renew_deadline());
        self.metrics.leading(true);
    }

    fn let_go(&mut self) {
        self.fence.close();
        self.held = None;
        self.metrics.leading(false);
    }

    /// Reads the lease and takes it if it is free: Some(lease) when this process holds it.
    async fn try_acquire(&mut self) -> Result<Option<Lease>, kube::Error> {
        let LeaseSettings {
            name,
            namespace,
            identity,
            duration,
        } = &self.settings;
        let Some(current) = self.api.get_opt(name).await? else {
            let lease = record::new_lease(name, namespace, identity, *duration);
            return conflict_is_none(self.api.create(&PostParams::default(), &lease).await);
        };
        let now = Instant::now();
        self.observer.observe(&current, now);
        if !self.observer.claimable(identity, now) {
            return Ok(None);
        }
        let claimed = record::claim(&current, identity, *duration, Timestamp::now());
        // The resource version makes this a compare-and-swap: of two standbys, one wins.
        conflict_is_none(
            self.api
                .replace(name, &PostParams::default(), &claimed)
                .await,
        )
    }

    async fn renew(&mut self) -> Result<Lease, RenewFailure> {
        let failed = |error: kube::Error| RenewFailure::Failed(error.to_string());
        let name = self.settings.name.clone();
        let held = self
            .held
            .clone()
            .ok_or_else(|| RenewFailure::Lost("nobody".into()))?;
        match self
            .api
            .replace(
                &name,
                &PostParams::default(),
                &record::renewed(&held, Timestamp::now()),
            )
            .await
        {
            Ok(lease) => return Ok(lease),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(failed(error)),
        }
        // Someone else wrote the lease: still ours (an edit to its labels), or taken.
        let current = self.api.get(&name).await.map_err(failed)?;
        match record::holder(&current) {
            Some(holder) if holder == self.settings.identity => self
                .api
                .replace(
                    &name,
                    &PostParams::default(),
                    &record::renewed(&current, Timestamp::now()),
                )
                .await
                .map_err(failed),
            other => Err(RenewFailure::Lost(other.unwrap_or("nobody").to_string())),
        }
    }
}

fn conflict_is_none(result: Result<Lease, kube::Error>) -> Result<Option<Lease>, kube::Error> {
    match result {
        Ok(lease) => Ok(Some(lease)),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(error) => Err(error),
    }
}
