//! Writes MicroserviceClass status: how many Microservices use each class and how many
//! its policy refuses. One task, woken by any change to a class or a Microservice, that
//! recomputes every class from the caches (classes are few) and writes only what changed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::api::{Microservice, MicroserviceClass};
use crate::class::status::{compute, users_by_class};

use crate::builders::FIELD_MANAGER;

/// Changes arriving within this window are written once: a rollout of many
/// Microservices moves the counts many times in a second.
const COALESCE: Duration = Duration::from_secs(1);
/// The longest wait before retrying a round whose writes failed.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The wait before the next round after `failed` failed rounds in a row: 1 s doubling up
/// to [`RETRY_MAX`], so an API server that refuses the writes is not asked every second.
fn retry_delay(failed: u32) -> Duration {
    let exponent = failed.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exponent).min(RETRY_MAX)
}

/// Who writes the status of which class.
pub struct ClassStatusWriter {
    pub client: Client,
    pub classes: Store<MicroserviceClass>,
    pub microservices: Store<Microservice>,
    pub wake: Arc<Notify>,
    /// The operator sees every namespace, so its counts are the cluster's. A namespaced
    /// operator (enabled explicitly) writes only the classes used in its namespace, and
    /// a zero once after its last user left: it never overwrites another scope's counts
    /// with its own zeros.
    pub all_namespaces: bool,
}

impl ClassStatusWriter {
    pub async fn run(self) {
        let mut reported: BTreeSet<String> = BTreeSet::new();
        let mut failed: u32 = 0;
        loop {
            self.wake.notified().await;
            tokio::time::sleep(COALESCE).await;
            if self.classes.wait_until_ready().await.is_err()
                || self.microservices.wait_until_ready().await.is_err()
            {
                return;
            }
            if self.write_all(&mut reported).await {
                failed = 0;
            } else {
                failed = failed.saturating_add(1);
                tokio::time::sleep(retry_delay(failed)).await;
                self.wake.notify_one();
            }
        }
    }

    /// Writes every class status that changed; false when a write failed.
    async fn write_all(&self, reported: &mut BTreeSet<String>) -> bool {
        let mut all_written = true;
        let classes = self.classes.state();
        let all: Vec<&MicroserviceClass> = classes.iter().map(|c| c.as_ref()).collect();
        let microservices = self.microservices.state();
        let users = users_by_class(&all, microservices.iter().map(|m| m.as_ref()));
        let now = Time(jiff::Timestamp::now());
        for class in &all {
            let name = class.name_any();
            let status = compute(
                class,
                &all,
                users.get(&name).map_or(&[][..], Vec::as_slice),
                now.clone(),
            );
            if !self.all_namespaces && status.services == 0 && !reported.contains(&name) {
                continue;
            }
            if class.status.as_ref() == Some(&status) {
                continue;
            }
            let api: Api<MicroserviceClass> = Api::all(self.client.clone());
            let patch = json!({
                "apiVersion": MicroserviceClass::api_version(&()),
                "kind": MicroserviceClass::kind(&()),
                "status": status,
            });
            match api
                .patch_status(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await
            {
                Ok(_) => {
                    debug!(class = %name, services = status.services, violations = status.violations, "class status written");
                    if status.services > 0 {
                        reported.insert(name);
                    } else {
                        reported.remove(&name);
                    }
                }
                Err(error) => {
                    warn!(class = %name, %error, "writing class status failed; retrying");
                    all_written = false;
                }
            }
        }
        all_written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_rounds_back_off_to_a_minute() {
        let delays: Vec<u64> = [1, 2, 3, 6, 7, 40, u32::MAX]
            .into_iter()
            .map(|n| retry_delay(n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 32, 60, 60, 60]);
    }
}
