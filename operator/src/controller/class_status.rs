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
        loop {
            self.wake.notified().await;
            tokio::time::sleep(COALESCE).await;
            if self.classes.wait_until_ready().await.is_err()
                || self.microservices.wait_until_ready().await.is_err()
            {
                return;
            }
            self.write_all(&mut reported).await;
        }
    }

    async fn write_all(&self, reported: &mut BTreeSet<String>) {
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
                    self.wake.notify_one();
                }
            }
        }
    }
}
