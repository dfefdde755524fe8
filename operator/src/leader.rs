//! Leader election on a coordination.k8s.io/v1 Lease. Only the holder runs the
//! controller, so only one replica ever writes; losing the lease ends the process, and
//! the Deployment restarts it as a standby.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tracing::info;

pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
}

/// Holds the lease: `acquired` resolves once this process leads; the returned receiver
/// turns false if the lease is lost.
pub struct Leadership {
    state: watch::Receiver<bool>,
    _task: tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Leadership {
    pub async fn start(client: Client, settings: LeaseSettings) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, &settings.name)
            .with_namespace(&settings.namespace)
            .with_identity(&settings.identity)
            .with_duration(settings.duration.as_secs().max(2))
            .with_grace(2)
            .build()
            .await?;
        info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity,
            "waiting for the leader lease");
        let (state, task) = manager.watch().await;
        Ok(Leadership { state, _task: task })
    }

    /// Resolves once this process holds the lease.
    pub async fn acquired(&mut self) {
        while !*self.state.borrow_and_update() {
            if self.state.changed().await.is_err() {
                return;
            }
        }
        info!("acquired the leader lease");
    }

    /// Resolves when the lease is lost (or the lease task ends).
    pub async fn lost(mut self) {
        while *self.state.borrow_and_update() {
            if self.state.changed().await.is_err() {
                return;
            }
        }
    }
}
