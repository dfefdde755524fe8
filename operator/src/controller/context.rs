//! What every reconciliation shares: the client, the server's capabilities, the caches
//! fed by the watches, metrics, the events' outbox and the per-object backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::reflector::ObjectRef;

use crate::api::{Microservice, MicroserviceStatus};
use crate::builders::Capabilities;
use crate::metrics::Metrics;

use super::queue::turns::Turns;
use super::report::recorder::Outbox;
use super::report::status_pace::StatusPace;
use super::watch::caches::Caches;
use super::watch::discovery::TemplateKinds;
use super::watch::indexes::{Indexes, Triggers};
use super::watch::written::Written;

pub struct Context {
    pub client: Client,
    pub capabilities: Capabilities,
    pub caches: Caches,
    /// Who depends on whom: a reconcile looks at its own neighbours, never at every
    /// Microservice.
    pub indexes: Arc<Indexes>,
    /// Reconciles other Microservices a reconcile finds affected (a broker its user
    /// starts or stops using).
    pub triggers: Triggers,
    pub metrics: Arc<Metrics>,
    /// Events to publish (`recorder`).
    pub events: Outbox,
    /// Children applied (by kind, namespace, name: the content hash) and statuses
    /// written, until the caches show them.
    pub applied: Written<(&'static str, String, String), String>,
    pub statuses: Written<ObjectRef<Microservice>, MicroserviceStatus>,
    /// One reconcile per Microservice at a time, across the queue and the edit lane.
    pub turns: Turns,
    /// When progress-only statuses may be written.
    pub status_pace: StatusPace,
    /// The kinds backing-service templates name, as discovered.
    pub template_kinds: TemplateKinds,
    /// Whether releases may use HTTP gates (`Settings::http_gates`).
    pub http_gates: bool,
    /// Whether a Microservice must be governed by a class (`Settings::require_class`).
    pub require_class: bool,
    /// Whether config snapshots may be taken (`Settings::config_snapshots`).
    pub config_snapshots: bool,
    /// The shards this replica holds; None without `--shards`.
    pub shard: Option<crate::leader::shards::ShardScope>,
    failures: Mutex<HashMap<ObjectRef<Microservice>, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        capabilities: Capabilities,
        caches: Caches,
        indexes: Arc<Indexes>,
        triggers: Triggers,
        metrics: Arc<Metrics>,
        events: Outbox,
    ) -> Self {
        let status_pace = StatusPace::reporting_to(metrics.statuses_held.clone());
        Context {
            client,
            capabilities,
            caches,
            indexes,
            triggers,
            metrics,
            events,
            applied: Written::default(),
            statuses: Written::default(),
            turns: Turns::default(),
            status_pace,
            template_kinds: TemplateKinds::default(),
            http_gates: false,
            require_class: false,
            config_snapshots: false,
            shard: None,
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

    /// Forgets what this process keeps per Microservice once it is gone (its backoff, the
    /// status and children it last wrote): keyed by user-chosen names, these maps would
    /// otherwise grow with every Microservice ever deleted.
    pub fn forget(&self, object: &ObjectRef<Microservice>) {
        self.reset_backoff(object);
        self.statuses.forget_where(|key| key == object);
        let namespace = object.namespace.clone().unwrap_or_default();
        let canary = crate::rollout::workloads::canary_name(&object.name);
        self.applied.forget_where(|(_, child_namespace, child)| {
            *child_namespace == namespace && (*child == object.name || *child == canary)
        });
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
