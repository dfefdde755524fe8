//! What the server offers: for each child kind, the first of its versions the server
//! serves (by discovery, never by assumption); features by the server's version (features
//! have no API group to discover).
//!
//! Found at start-up, then looked at again every `Settings::rediscover_every` (a minute
//! by default, a handful of discovery GETs): kinds come and go while the operator runs.
//! The Prometheus Operator's or the Gateway API's CRDs get installed after Flotilla, and
//! a cluster upgrade serves a newer autoscaling version. When what is served changes,
//! [`watch_for_changes`] says so and the controller restarts on fresh caches and watches
//! for the new set (`controller::run`), without restarting the process: the
//! ServiceMonitor of a Microservice with `spec.metrics` then appears within a minute of
//! its CRD, and `MetricsScraped` turns True.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{ApiResource, GroupVersionKind};
use kube::discovery::{Discovery, verbs};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::api::KubeVersion;
use crate::builders::{Capabilities, KINDS};

/// Discovers the server and logs what it found.
pub async fn capabilities(client: &Client) -> Result<Capabilities, kube::Error> {
    let (capabilities, server) = discover(client).await?;
    for kind in KINDS {
        match capabilities.api_version(kind) {
            Some(api_version) => info!(kind = kind.kind, %api_version, "served"),
            None if kind.is_installed_separately() => {
                info!(
                    kind = kind.kind,
                    "not installed: Microservices go without it"
                )
            }
            None => warn!(
                kind = kind.kind,
                "not served in any version Flotilla writes: Microservices that need one will fail to apply"
            ),
        }
    }
    info!(
        %server,
        grpc_probes = capabilities.grpc_probes,
        sleep_action = capabilities.sleep_action,
        "discovered the API server"
    );
    Ok(capabilities)
}

/// What the server serves, for the command-line tools; no logging.
pub async fn served(client: &Client) -> Result<Capabilities, kube::Error> {
    Ok(discover(client).await?.0)
}

/// What the server serves, and its version string; no logging.
async fn discover(client: &Client) -> Result<(Capabilities, String), kube::Error> {
    let groups: BTreeSet<&str> = KINDS.iter().map(|kind| kind.group).collect();
    let groups: Vec<&str> = groups.into_iter().collect();
    let discovery = Discovery::new(client.clone()).filter(&groups).run().await?;
    let serves = |group: &str, version: &str, kind: &str| {
        discovery.get(group).is_some_and(|g| {
            g.versioned_resources(version)
                .iter()
                .any(|(ar, caps)| ar.kind == kind && caps.supports_operation(verbs::PATCH))
        })
    };
    let info = client.apiserver_version().await?;
    let server = format!("{}.{}", info.major, info.minor)
        .parse::<KubeVersion>()
        .unwrap_or(KubeVersion::NEWEST);
    let mut capabilities = Capabilities::features_of(server);
    for kind in KINDS {
        if let Some(found) = kind
            .versions
            .iter()
            .find(|v| serves(kind.group, v.version, kind.kind))
        {
            capabilities = capabilities.with_served(kind, found.version);
        }
    }
    Ok((capabilities, info.git_version))
}

/// Discovers the server every `every` and sets `changed` once what it serves differs
/// from `current`. A failed discovery (the API server away) changes nothing: it is
/// tried again at the next tick.
pub async fn watch_for_changes(
    client: Client,
    current: Capabilities,
    every: Duration,
    changed: watch::Sender<bool>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match discover(&client).await {
            Ok((found, _)) if found != current => {
                for kind in KINDS {
                    let (was, now) = (current.api_version(kind), found.api_version(kind));
                    if was != now {
                        info!(
                            kind = kind.kind,
                            was = was.as_deref().unwrap_or("not served"),
                            now = now.as_deref().unwrap_or("not served"),
                            "the server's kinds changed: restarting the controller to watch and write what it serves now"
                        );
                    }
                }
                let _ = changed.send(true);
                return;
            }
            Ok(_) => debug!("discovery: nothing changed"),
            Err(error) => debug!(%error, "discovery failed; trying again at the next tick"),
        }
    }
}

/// How long an answer about a provisioned kind is trusted: a CRD installed after a
/// Microservice asked for it is found within this.
const KIND_ANSWER_TTL: Duration = Duration::from_secs(30);

/// The kinds backing-service templates name, looked up on first use (one discovery GET
/// of their group version) and remembered a while: the classes decide them at run time,
/// so they cannot be among the child kinds discovered at start-up.
#[derive(Default)]
pub struct TemplateKinds {
    known: Mutex<KindAnswers>,
}

/// By apiVersion and kind: when it was asked, and the answer.
type KindAnswers = HashMap<(String, String), (Instant, Option<ApiResource>)>;

impl TemplateKinds {
    /// The resource serving `kind` in `api_version`; None when the server does not serve
    /// it.
    pub async fn resource(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ApiResource>, kube::Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some((at, known)) = self.lock().get(&key)
            && at.elapsed() < KIND_ANSWER_TTL
        {
            return Ok(known.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = match kube::discovery::pinned_kind(client, &gvk).await {
            Ok((resource, _)) => Some(resource),
            Err(kube::Error::Discovery(_)) => None,
            Err(kube::Error::Api(status)) if status.code == 404 => None,
            Err(error) => return Err(error),
        };
        self.lock().insert(key, (Instant::now(), found.clone()));
        Ok(found)
    }

    fn lock(&self) -> MutexGuard<'_, KindAnswers> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
