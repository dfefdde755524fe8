//! What every reconciliation shares: the client, the server's capabilities, the caches
//! fed by the watches, the indexes, metrics and the event recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::Client;
use kube::api::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::store::WriterDropped;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{Microservice, MicroserviceClass};
use crate::builders::Capabilities;
use crate::metrics::Metrics;

/// The name every write is made under (server-side apply field manager).
pub const FIELD_MANAGER: &str = "flotilla";

/// Read-only caches of everything a reconciliation looks at. Children and pods are
/// watched through the `managed-by=flotilla` label; ConfigMaps and Secrets through
/// metadata-only watches, so their contents are never held in memory.
#[derive(Clone)]
pub struct Stores {
    pub microservices: Store<Microservice>,
    /// Every MicroserviceClass of the cluster (they are cluster-scoped).
    pub classes: Store<MicroserviceClass>,
    pub service_accounts: Store<ServiceAccount>,
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub autoscalers: Store<DynamicObject>,
    pub disruption_budgets: Store<DynamicObject>,
    pub network_policies: Store<NetworkPolicy>,
    pub ingresses: Store<Ingress>,
    /// Gateway API HTTPRoutes; None when the cluster does not serve the kind.
    pub http_routes: Option<Store<DynamicObject>>,
    pub pods: Store<Pod>,
    pub config_maps: Store<PartialObjectMeta<ConfigMap>>,
    pub secrets: Store<PartialObjectMeta<Secret>>,
}

impl Stores {
    /// Resolves once every cache has finished its first list.
    pub async fn wait_until_ready(&self) -> Result<(), WriterDropped> {
        let Stores {
            microservices,
            classes,
            service_accounts,
            deployments,
            services,
            autoscalers,
            disruption_budgets,
            network_policies,
            ingresses,
            http_routes,
            pods,
            config_maps,
            secrets,
        } = self;
        synced("Microservice", microservices).await?;
        synced("MicroserviceClass", classes).await?;
        synced("ServiceAccount", service_accounts).await?;
        synced("Deployment", deployments).await?;
        synced("Service", services).await?;
        synced("HorizontalPodAutoscaler", autoscalers).await?;
        synced("PodDisruptionBudget", disruption_budgets).await?;
        synced("NetworkPolicy", network_policies).await?;
        synced("Ingress", ingresses).await?;
        if let Some(http_routes) = http_routes {
            synced("HTTPRoute", http_routes).await?;
        }
        synced("Pod", pods).await?;
        synced("ConfigMap", config_maps).await?;
        synced("Secret", secrets).await
    }
}

async fn synced<K>(kind: &str, store: &Store<K>) -> Result<(), WriterDropped>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    // kube-runtime's readiness signal keeps one waker per store: with several tasks
    // waiting (the controller waits too), all but the last can miss the wake-up. Waiting
    // in short rounds re-registers each time, so no waiter hangs.
    loop {
        match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
            Ok(result) => {
                result?;
                tracing::debug!(kind, "cache synced");
                return Ok(());
            }
            Err(_elapsed) => continue,
        }
    }
}

/// Child kinds whose version discovery picked.
#[derive(Clone)]
pub struct ChildResources {
    /// HorizontalPodAutoscaler: `autoscaling/v2` or `v2beta2`.
    pub autoscaler: ApiResource,
    /// PodDisruptionBudget: `policy/v1` or `v1beta1`.
    pub budget: ApiResource,
    /// HTTPRoute, when the cluster serves the Gateway API.
    pub http_route: Option<ApiResource>,
}

pub struct Context {
    pub client: Client,
    pub capabilities: Capabilities,
    /// The versions of the child kinds that vary between servers.
    pub resources: ChildResources,
    pub stores: Stores,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    failures: Mutex<HashMap<ObjectRef<Microservice>, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        capabilities: Capabilities,
        resources: ChildResources,
        stores: Stores,
        metrics: Arc<Metrics>,
        recorder: Recorder,
    ) -> Self {
        Context {
            client,
            capabilities,
            resources,
            stores,
            metrics,
            recorder,
            failures: Mutex::default(),
        }
    }

    /// The delay before retrying an object after its n-th failure in a row: 1 s doubling
    /// up to 5 minutes. Kept per object, so one object's failures never slow another.
    pub fn next_backoff(&self, object: &ObjectRef<Microservice>) -> Duration {
        let mut failures = self.failures.lock().expect("backoff lock");
        let count = failures.entry(object.clone()).or_insert(0);
        *count = count.saturating_add(1);
        backoff_delay(*count)
    }

    pub fn reset_backoff(&self, object: &ObjectRef<Microservice>) {
        self.failures.lock().expect("backoff lock").remove(object);
    }
}

fn backoff_delay(failures: u32) -> Duration {
    const MAX: Duration = Duration::from_secs(300);
    let exponent = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exponent).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_delay(1), Duration::from_secs(1));
        assert_eq!(backoff_delay(2), Duration::from_secs(2));
        assert_eq!(backoff_delay(5), Duration::from_secs(16));
        assert_eq!(backoff_delay(40), Duration::from_secs(300));
    }
}
