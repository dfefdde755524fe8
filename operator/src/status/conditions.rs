//! Status, computed by a pure function from what the caches show: the Deployment, its
//! pods, the dependency graph and the outcome of validation. The root cause seen on the
//! pods (ImagePullBackOff, CrashLoopBackOff, Unschedulable, a missing ConfigMap) becomes
//! the reason of `Ready=False`, so "not ready" always says why.

use k8s_openapi::api::apps::v1::Deployment;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::api::{Microservice, MicroserviceStatus, RolloutStatus};
use crate::builders::{ConfigKind, ConfigRef, labels};
use crate::class::MissingBackingService;
use crate::graph::MissingDependency;

use super::Cause;
use super::message::truncate;
use super::pods::{passes_by_itself, pod_failure};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const DEPENDENCIES_READY: &str = "DependenciesReady";
/// Only on a Microservice with `spec.backingServices`.
pub const BACKING_SERVICES_READY: &str = "BackingServicesReady";
pub const REASON_BACKING_SERVICE_NOT_FOUND: &str = "BackingServiceNotFound";
/// Whether Prometheus is told to scrape the pods; only with `spec.metrics` on. It never
/// affects Ready: a service runs the same whether or not it is scraped.
pub const METRICS_SCRAPED: &str = "MetricsScraped";

pub const REASON_SERVICE_MONITOR: &str = "ServiceMonitor";
pub const REASON_SERVICE_MONITOR_NOT_SERVED: &str = "ServiceMonitorNotServed";

pub const REASON_PAUSED: &str = "Paused";
pub const REASON_DEPENDENCY_NOT_FOUND: &str = "DependencyNotFound";
pub const REASON_CHILD_CONFLICT: &str = "ChildConflict";
/// A dependency in another namespace does not admit this caller.
pub const REASON_DEPENDENCY_NOT_ADMITTED: &str = "DependencyNotAdmitted";
pub const REASON_APPLY_FAILED: &str = "ApplyFailed";
/// Ready reasons while Kubernetes is acting on the spec with no cause to report: the
/// Deployment is being created, its controller rolls it out, its pods start.
pub const REASON_CREATING: &str = "Creating";
pub const REASON_ROLLING_OUT: &str = "RollingOut";
pub const REASON_PODS_NOT_READY: &str = "PodsNotReady";

/// Everything the status is computed from.
pub struct Observed<'a> {
    pub deployment: Option<&'a Deployment>,
    /// Pods of this Microservice (by instance label), any ReplicaSet.
    pub pods: Vec<&'a Pod>,
    pub missing_dependencies: &'a [MissingDependency],
    /// Required backing services whose Secret does not exist: the rollout waits for them.
    pub missing_backing: &'a [MissingBackingService],
    /// Dependencies in other namespaces that do not admit this caller.
    pub refused_dependencies: &'a [MissingDependency],
    pub unready_dependencies: &'a [String],
    pub missing_config: &'a [ConfigRef],
    /// Why the spec was refused before anything was applied (InvalidSpec, ClassNotFound,
    /// AmbiguousDefaultClass, PolicyViolation): the children were left as they were.
    pub refused: Option<Cause>,
    /// Why an accepted spec's children are not as it says: a child the API server
    /// refused (ApplyFailed) or objects Flotilla does not control (ChildConflict).
    pub child_problem: Option<Cause>,
    pub paused: bool,
    /// The MicroserviceClass in effect.
    pub class_name: Option<String>,
    /// The URL from outside the cluster, when exposed.
    pub external_url: Option<String>,
    /// The canary Deployment, while a canary runs.
    pub canary: Option<&'a Deployment>,
    /// What the release state machine decided this pass: `status.rollout` and the
    /// conditions it speaks for (a canary step, a rollback). None keeps the last
    /// `status.rollout` (nothing was decided: paused, refused, held).
    pub rollout: Option<Release<'a>>,
    /// How the pods are scraped; None when `spec.metrics` is off (or the spec refused).
    pub scraping: Option<Scraping>,
}

impl<'a> Observed<'a> {
    /// What the status is computed from when only the Deployment and the pods are known:
    /// no dependencies, no refusal, no canary (the status tests and the Argo CD health
    /// check's start from this).
    pub fn nothing_but(deployment: Option<&'a Deployment>, pods: Vec<&'a Pod>) -> Self {
        Observed {
            deployment,
            pods,
            missing_dependencies: &[],
            missing_backing: &[],
            refused_dependencies: &[],
            unready_dependencies: &[],
            missing_config: &[],
            refused: None,
            child_problem: None,
            class_name: None,
            external_url: None,
            paused: false,
            scraping: None,
            canary: None,
            rollout: None,
        }
    }
}

/// What the release state machine (`crate::rollout`) decided this pass, as the status
/// reads it: `status.rollout` and the conditions it speaks for.
#[derive(Clone, Copy, Debug)]
pub struct Release<'a> {
    pub status: &'a RolloutStatus,
    pub verdicts: &'a Verdicts,
}

/// A condition the release decides instead of the Deployment's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    pub fn new(status: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Verdict {
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// Conditions the release decides; None leaves the condition to the Deployment's view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    pub ready: Option<Verdict>,
    pub progressing: Option<Verdict>,
    pub degraded: Option<Verdict>,
}

/// How the pods of a Microservice with `spec.metrics` are scraped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scraping {
    /// A ServiceMonitor of this name scrapes this port and path.
    ServiceMonitor {
        name: String,
        port: String,
        path: String,
    },
    /// The cluster serves no ServiceMonitor kind: nothing tells Prometheus.
    NotServed,
}

/// The new status of `ms`. Conditions keep their `lastTransitionTime` when their status
/// did not change, so an unchanged world yields an equal status and no write.
pub fn compute(ms: &Microservice, observed: &Observed<'_>, now: Time) -> MicroserviceStatus {
    let generation = ms.metadata.generation;
    let previous = ms.status.clone().unwrap_or_default();
    let rollout = Rollout::of(ms, observed.deployment);
    let missing = missing_dependencies(observed.missing_dependencies);
    let missing_backing = missing_backing(observed.missing_backing);
    let held = missing.as_deref().map(rollout_waits_for).or_else(|| {
        missing_backing
            .as_deref()
            .map(rollout_waits_for_backing_services)
    });
    let stalled = observed.deployment.and_then(progress_deadline_exceeded);
    // A pod being deleted (the failed pod of a release just fixed) says nothing of the
    // service any more, though it may linger for its grace period.
    let causes: Vec<Cause> = observed
        .pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| pod_failure(pod))
        .collect();
    let failure = causes.first().cloned().or_else(|| stalled.clone());
    // Degraded only for what will not pass by itself: a pod waiting for room is waiting,
    // not failed, until the progress deadline says otherwise.
    let lasting = causes
        .iter()
        .find(|cause| !passes_by_itself(cause))
        .cloned()
        .or_else(|| stalled.clone());

    let conditions = [
        (
            READY,
            ready(observed, &rollout, held.as_ref(), failure.as_ref()),
        ),
        (
            PROGRESSING,
            progressing(observed, &rollout, held.as_ref(), stalled.as_ref()),
        ),
        (
            DEGRADED,
            degraded(
                observed
                    .refused
                    .as_ref()
                    .or(observed.child_problem.as_ref()),
                lasting.as_ref(),
            ),
        ),
        (
            DEPENDENCIES_READY,
            dependencies_ready(
                missing.as_deref(),
                missing_dependencies(observed.refused_dependencies).as_deref(),
                observed.unready_dependencies,
                ms.spec.depends_on.is_empty(),
            ),
        ),
    ]
    .into_iter()
    .map(|(type_, verdict)| (type_, rollout_verdict(observed, type_).unwrap_or(verdict)))
    .chain((!ms.spec.backing_services.is_empty()).then(|| {
        (
            BACKING_SERVICES_READY,
            backing_ready(missing_backing.as_deref()),
        )
    }))
    .chain(
        observed
            .scraping
            .as_ref()
            .map(|s| (METRICS_SCRAPED, scraped(s))),
    )
    .map(|(type_, (status, cause))| condition(&previous, type_, status, cause, generation, &now))
    .collect();
    let rollout_status = observed
        .rollout
        .map(|release| release.status.clone())
        .or_else(|| previous.rollout.clone());
    // A canary's pods count with the stable ones: they serve behind the same Service.
    let (total, ready, updated, desired) = match observed.canary {
        Some(canary) => {
            let status = canary.status.clone().unwrap_or_default();
            let wanted = canary.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            (
                rollout.total + status.replicas.unwrap_or(0),
                rollout.ready + status.ready_replicas.unwrap_or(0),
                rollout.updated + status.updated_replicas.unwrap_or(0),
                rollout.desired + wanted,
            )
        }
        None => (
            rollout.total,
            rollout.ready,
            rollout.updated,
            rollout.desired,
        ),
    };
    // While rolled back, the pods run the stable image, not the spec's.
    let image = rollout_status
        .as_ref()
        .filter(|r| r.phase == Some(crate::api::RolloutPhase::RolledBack))
        .and_then(|r| r.stable_image.clone())
        .unwrap_or_else(|| ms.spec.image.clone());

    let name = ms.name_any();
    let namespace = ms.namespace().unwrap_or_default();
    MicroserviceStatus {
        observed_generation: generation,
        conditions,
        replicas: total,
        ready_replicas: ready,
        updated_replicas: updated,
        replica_summary: Some(format!("{ready}/{desired}")),
        selector: Some(
            labels::pod_selector(&name)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        url: ms
            .spec
            .ports
            .first()
            .map(|port| crate::builders::env::port_url(&name, &namespace, port)),
        // Never an empty string: older servers (1.20) read "" in an apply patch as null
        // and refuse the whole status (a stand-in for a spec over budget has no image).
        image: Some(image).filter(|image| !image.is_empty()),
        external_url: observed.external_url.clone(),
        class_name: observed.class_name.clone(),
        rollout: rollout_status,
    }
}

/// The status while a read the reconcile needs fails (`read_failure`): the last status
/// kept, as nothing new was seen, with Ready=False and Degraded=True naming the read. A
/// Microservice never seen before gets these two conditions, not an empty status.
pub fn read_failed(ms: &Microservice, cause: &Cause, now: Time) -> MicroserviceStatus {
    let generation = ms.metadata.generation;
    let previous = ms.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = generation;
    for (type_, verdict) in [(READY, "False"), (DEGRADED, "True")] {
        let new = condition(&previous, type_, verdict, cause.clone(), generation, &now);
        match status.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(old) => *old = new,
            None => status.conditions.push(new),
        }
    }
    status
}

/// The condition the release state machine decided, unless something deeper holds the
/// whole reconcile (a refused spec, a child that could not be applied, a missing
/// dependency, a pause), which the usual verdicts report.
fn rollout_verdict(observed: &Observed<'_>, type_: &str) -> Option<Judgement> {
    let release = observed.rollout?;
    if observed.refused.is_some()
        || observed.child_problem.is_some()
        || !observed.missing_dependencies.is_empty()
        || observed.paused
    {
        return None;
    }
    let verdict = match type_ {
        READY => release.verdicts.ready.as_ref(),
        PROGRESSING => release.verdicts.progressing.as_ref(),
        DEGRADED => release.verdicts.degraded.as_ref(),
        _ => None,
    }?;
    Some((
        verdict.status,
        Cause::new(verdict.reason.clone(), verdict.message.clone()),
    ))
}

/// A condition's status and why.
type Judgement = (&'static str, Cause);

/// Ready: every pod of the current spec is ready. Otherwise the deepest cause known: a
/// refused spec, then a child that could not be applied or is someone else's, then missing
/// dependencies (the rollout is held), then what the pods or
/// the Deployment report, then a missing ConfigMap or Secret.
fn ready(
    observed: &Observed<'_>,
    rollout: &Rollout,
    held: Option<&Cause>,
    failure: Option<&Cause>,
) -> Judgement {
    if let Some(refused) = &observed.refused {
        ("False", refused.clone())
    } else if let Some(problem) = &observed.child_problem {
        ("False", problem.clone())
    } else if let Some(held) = held {
        ("False", held.clone())
    } else if rollout.complete() {
        let cause = if observed.paused {
            Cause::new(
                REASON_PAUSED,
                "reconciliation is paused; every pod is ready",
            )
        } else {
            Cause::new(
                "Available",
                format!("{}/{} pods ready", rollout.ready, rollout.desired),
            )
        };
        ("True", cause)
    } else if let Some(cause) = failure {
        ("False", cause.clone())
    } else if let Some(config) = observed.missing_config.first() {
        ("False", config_not_found(config))
    } else if observed.paused {
        ("False", paused())
    } else {
        ("False", rollout.waiting_cause())
    }
}

/// Progressing: a rollout of the current spec is under way. Nothing progresses while the
/// spec is refused, a dependency is missing, reconciliation is paused or the Deployment
/// gave up.
fn progressing(
    observed: &Observed<'_>,
    rollout: &Rollout,
    held: Option<&Cause>,
    stalled: Option<&Cause>,
) -> Judgement {
    if let Some(refused) = &observed.refused {
        (
            "False",
            Cause::new(
                refused.reason.clone(),
                "nothing is rolled out until the spec is accepted",
            ),
        )
    } else if let Some(held) = held {
        ("False", held.clone())
    } else if observed.paused {
        ("False", paused())
    } else if let Some(cause) = stalled {
        ("False", cause.clone())
    } else if rollout.complete() {
        (
            "False",
            Cause::new("Complete", "the current spec is rolled out"),
        )
    } else {
        ("True", rollout.waiting_cause())
    }
}

/// Degraded: the spec is refused, or a failure is seen that will not pass by itself.
fn degraded(refused: Option<&Cause>, failure: Option<&Cause>) -> Judgement {
    match refused.or(failure) {
        Some(cause) => ("True", cause.clone()),
        None => ("False", Cause::new("AsExpected", "no failure seen")),
    }
}

/// MetricsScraped: a ServiceMonitor exists for the pods, or why none can.
fn scraped(scraping: &Scraping) -> Judgement {
    match scraping {
        Scraping::ServiceMonitor { name, port, path } => (
            "True",
            Cause::new(
                REASON_SERVICE_MONITOR,
                format!("ServiceMonitor {name} scrapes port {port} at {path}"),
            ),
        ),
        Scraping::NotServed => (
            "False",
            Cause::new(
                REASON_SERVICE_MONITOR_NOT_SERVED,
                "scraping is not configured: the cluster does not serve monitoring.coreos.com/v1 ServiceMonitor (the Prometheus Operator's CRDs); the operator looks for it again every minute and creates the ServiceMonitor once it is served",
            ),
        ),
    }
}

/// DependenciesReady: every Microservice named in `dependsOn` exists and is ready.
fn dependencies_ready(
    missing_dependencies: Option<&str>,
    not_admitted: Option<&str>,
    unready_dependencies: &[String],
    depends_on_nothing: bool,
) -> Judgement {
    if let Some(missing) = missing_dependencies {
        ("False", Cause::new(REASON_DEPENDENCY_NOT_FOUND, missing))
    } else if let Some(refused) = not_admitted {
        ("False", Cause::new(REASON_DEPENDENCY_NOT_ADMITTED, refused))
    } else if !unready_dependencies.is_empty() {
        (
            "False",
            Cause::new(
                "DependencyNotReady",
                format!("not ready: {}", unready_dependencies.join(", ")),
            ),
        )
    } else if depends_on_nothing {
        ("True", Cause::new("NoDependencies", "depends on nothing"))
    } else {
        ("True", Cause::new("AllReady", "every dependency is ready"))
    }
}

/// The dependencies that do not exist, each as `namespace/name: reason`; `None` when all
/// exist.
fn missing_dependencies(missing: &[MissingDependency]) -> Option<String> {
    (!missing.is_empty()).then(|| {
        missing
            .iter()
            .map(|m| format!("{}/{}: {}", m.namespace, m.name, m.reason))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Why Ready and Progressing are false while dependencies are missing.
fn rollout_waits_for(missing_dependencies: &str) -> Cause {
    Cause::new(
        REASON_DEPENDENCY_NOT_FOUND,
        format!("the rollout waits for every dependency; {missing_dependencies}"),
    )
}

/// The required backing services whose Secret is missing, `; `-separated; `None` when
/// every one exists.
fn missing_backing(missing: &[MissingBackingService]) -> Option<String> {
    (!missing.is_empty()).then(|| {
        missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Why Ready and Progressing are false while a backing service's Secret is missing.
fn rollout_waits_for_backing_services(missing: &str) -> Cause {
    Cause::new(
        REASON_BACKING_SERVICE_NOT_FOUND,
        format!("the rollout waits for every backing service; {missing}"),
    )
}

/// BackingServicesReady: the Secret of every required backing service exists. Whether
/// the service behind it answers is the pods' readiness to say.
fn backing_ready(missing: Option<&str>) -> Judgement {
    match missing {
        Some(missing) => (
            "False",
            Cause::new(REASON_BACKING_SERVICE_NOT_FOUND, missing),
        ),
        None => (
            "True",
            Cause::new("AllFound", "the Secret of every backing service exists"),
        ),
    }
}

fn config_not_found(config: &ConfigRef) -> Cause {
    let (reason, kind) = match config.kind {
        ConfigKind::ConfigMap => ("ConfigMapNotFound", "ConfigMap"),
        ConfigKind::Secret => ("SecretNotFound", "Secret"),
    };
    Cause::new(
        reason,
        format!(
            "{kind} {} referenced by the pods does not exist",
            config.name
        ),
    )
}

fn paused() -> Cause {
    Cause::new(REASON_PAUSED, "reconciliation is paused")
}

fn condition(
    previous: &MicroserviceStatus,
    type_: &str,
    status: &str,
    cause: Cause,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let last_transition_time = previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: cause.reason,
        message: truncate(&cause.message, 1024),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Replica counts of the Deployment and whether its rollout of the current spec is done.
struct Rollout {
    exists: bool,
    current: bool,
    desired: i32,
    total: i32,
    updated: i32,
    ready: i32,
    available: i32,
}

impl Rollout {
    fn of(ms: &Microservice, deployment: Option<&Deployment>) -> Self {
        let fallback = ms
            .spec
            .autoscaling
            .as_ref()
            .map_or(ms.spec.replicas.unwrap_or(1), |a| a.min_replicas);
        let Some(deployment) = deployment else {
            return Rollout {
                exists: false,
                current: false,
                desired: fallback,
                total: 0,
                updated: 0,
                ready: 0,
                available: 0,
            };
        };
        let status = deployment.status.clone().unwrap_or_default();
        let current = status.observed_generation.is_some()
            && status.observed_generation >= deployment.metadata.generation;
        Rollout {
            exists: true,
            current,
            // Under autoscaling, fewer pods than the minimum is not ready, whatever the
            // autoscaler has done so far.
            desired: deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(fallback)
                .max(ms.spec.autoscaling.as_ref().map_or(0, |a| a.min_replicas)),
            total: status.replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
        }
    }

    fn complete(&self) -> bool {
        self.exists
            && self.current
            && self.updated >= self.desired
            && self.ready >= self.desired
            && self.available >= self.desired
            && self.total == self.updated
    }

    fn waiting_cause(&self) -> Cause {
        if !self.exists {
            Cause::new(REASON_CREATING, "the Deployment does not exist yet")
        } else if !self.current {
            Cause::new(
                REASON_ROLLING_OUT,
                "the Deployment controller has not seen the latest spec yet",
            )
        } else if self.updated < self.desired || self.total > self.updated {
            Cause::new(
                REASON_ROLLING_OUT,
                format!(
                    "{} of {} pods updated, {} old pods remain",
                    self.updated,
                    self.desired,
                    self.total - self.updated
                ),
            )
        } else {
            Cause::new(
                REASON_PODS_NOT_READY,
                format!("{}/{} pods ready", self.ready, self.desired),
            )
        }
    }
}

fn progress_deadline_exceeded(deployment: &Deployment) -> Option<Cause> {
    let conditions = deployment.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
        .map(|c| {
            Cause::new(
                "ProgressDeadlineExceeded",
                c.message.clone().unwrap_or_default(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::pods::keep_what_status_reads;
    use serde_json::json;

    fn ms() -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "users", "namespace": "shop", "generation": 3},
            "spec": {"image": "users:1", "replicas": 2, "ports": [{"name": "http", "port": 80, "targetPort": 8080, "appProtocol": "http"}]}
        }))
        .unwrap()
    }

    fn deployment(
        generation: i64,
        observed: i64,
        replicas: i32,
        updated: i32,
        ready: i32,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "users", "namespace": "shop", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated,
                       "readyReplicas": ready, "availableReplicas": ready}
        }))
        .unwrap()
    }

    fn pod(waiting_reason: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "users-abc"},
            "status": {"containerStatuses": [{"name": "app", "image": "users:2", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": waiting_reason, "message": "Back-off pulling image \"users:2\""}}}]}
        }))
        .unwrap()
    }

    fn observed<'a>(deployment: Option<&'a Deployment>, pods: Vec<&'a Pod>) -> Observed<'a> {
        Observed::nothing_but(deployment, pods)
    }

    fn get<'a>(status: &'a MicroserviceStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    fn now() -> Time {
        Time("2026-11-27T00:00:00Z".parse().unwrap())
    }

    #[test]
    fn a_failed_read_is_a_status_even_before_the_first_one() {
        let cause = Cause::new(
            "Forbidden",
            "the operator may not list configmaps in namespace shop",
        );
        let fresh = read_failed(&ms(), &cause, now());
        assert_eq!(fresh.observed_generation, Some(3));
        let ready = get(&fresh, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Forbidden")
        );
        assert_eq!(get(&fresh, DEGRADED).status, "True");

        // A status already computed keeps what it said of the rest (nothing new was seen)
        // and changes only Ready and Degraded; an unchanged failure is an equal status.
        let mut seen = ms();
        let deployment = deployment(1, 1, 2, 2, 2);
        seen.status = Some(compute(&seen, &observed(Some(&deployment), vec![]), now()));
        let failed = read_failed(&seen, &cause, now());
        assert_eq!(failed.replicas, 2);
        assert_eq!(
            get(&failed, PROGRESSING),
            get(seen.status.as_ref().unwrap(), PROGRESSING)
        );
        assert_eq!(get(&failed, READY).reason, "Forbidden");
        seen.status = Some(failed.clone());
        assert_eq!(read_failed(&seen, &cause, now()), failed);
    }

    #[test]
    fn a_stand_in_without_an_image_writes_no_empty_image() {
        let mut stand_in = ms();
        stand_in.spec.image = String::new();
        let deployment = deployment(1, 1, 1, 1, 1);
        let status = compute(&stand_in, &observed(Some(&deployment), vec![]), now());
        assert_eq!(status.image, None);
    }

    #[test]
    fn ready_when_rolled_out() {
        let deployment = deployment(5, 5, 2, 2, 2);
        let status = compute(&ms(), &observed(Some(&deployment), vec![]), now());
        assert_eq!(get(&status, READY).status, "True");
        assert_eq!(get(&status, READY).observed_generation, Some(3));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.replica_summary.as_deref(), Some("2/2"));
        assert_eq!(
            status.url.as_deref(),
            Some("http://users.shop.svc.cluster.local:80")
        );
        assert_eq!(
            status.selector.as_deref(),
            Some(
                "app.kubernetes.io/instance=users,app.kubernetes.io/managed-by=flotilla,app.kubernetes.io/name=users"
            )
        );
    }

    #[test]
    fn image_pull_failure_is_the_reason() {
        let deployment = deployment(6, 6, 3, 1, 2);
        let pod = pod("ImagePullBackOff");
        let status = compute(&ms(), &observed(Some(&deployment), vec![&pod]), now());
        let ready = get(&status, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "ImagePullBackOff")
        );
        assert!(ready.message.contains("users-abc"), "{}", ready.message);
        assert_eq!(get(&status, DEGRADED).status, "True");
        assert_eq!(get(&status, PROGRESSING).status, "True");
    }

    #[test]
    fn a_failed_pod_being_deleted_no_longer_degrades_the_service() {
        // The release was fixed: the Deployment is rolled out, the pod that could not pull
        // its image is on its way out (it may linger for its grace period).
        let deployment = deployment(6, 6, 2, 2, 2);
        let mut leaving = pod("ErrImagePull");
        leaving.metadata.deletion_timestamp = Some(now());
        let status = compute(&ms(), &observed(Some(&deployment), vec![&leaving]), now());
        assert_eq!(get(&status, READY).status, "True");
        assert_eq!(
            (
                get(&status, DEGRADED).status.as_str(),
                get(&status, DEGRADED).reason.as_str()
            ),
            ("False", "AsExpected")
        );
        // And the cache keeps what says so.
        let mut cached = leaving.clone();
        crate::status::keep_what_status_reads(&mut cached);
        assert!(cached.metadata.deletion_timestamp.is_some());
    }

    #[test]
    fn an_unschedulable_pod_is_the_reason_but_not_degraded_until_the_deadline() {
        let deployment = deployment(6, 6, 2, 2, 0);
        let waiting: Pod = serde_json::from_value(json!({"metadata": {"name": "users-abc"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/1 nodes are available"}]}}))
        .unwrap();
        let status = compute(&ms(), &observed(Some(&deployment), vec![&waiting]), now());
        assert_eq!(get(&status, READY).reason, "Unschedulable");
        assert_eq!(get(&status, PROGRESSING).status, "True");
        assert_eq!(get(&status, DEGRADED).status, "False");
        // A crash beside it is a failure whatever pod comes first.
        let crashing = pod("CrashLoopBackOff");
        let both = observed(Some(&deployment), vec![&waiting, &crashing]);
        let degraded = compute(&ms(), &both, now());
        assert_eq!(
            (
                get(&degraded, DEGRADED).status.as_str(),
                get(&degraded, DEGRADED).reason.as_str()
            ),
            ("True", "CrashLoopBackOff")
        );
    }

    #[test]
    fn stale_deployment_is_not_ready() {
        let deployment = deployment(6, 5, 2, 2, 2);
        let status = compute(&ms(), &observed(Some(&deployment), vec![]), now());
        assert_eq!(get(&status, READY).reason, "RollingOut");
    }

    #[test]
    fn invalid_spec_wins() {
        let deployment = deployment(5, 5, 2, 2, 2);
        let mut observed = observed(Some(&deployment), vec![]);
        observed.refused = Some(Cause::new(
            "InvalidSpec",
            "spec.autoscaling.minReplicas: must not exceed",
        ));
        let status = compute(&ms(), &observed, now());
        let ready = get(&status, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(ready.message.contains("spec.autoscaling.minReplicas"));
    }

    #[test]
    fn transition_time_survives_an_unchanged_world() {
        let deployment = deployment(5, 5, 2, 2, 2);
        let mut ms = ms();
        ms.status = Some(compute(&ms, &observed(Some(&deployment), vec![]), now()));
        let later = Time("2026-11-28T00:00:00Z".parse().unwrap());
        let again = compute(&ms, &observed(Some(&deployment), vec![]), later);
        assert_eq!(ms.status.as_ref(), Some(&again));
    }

    #[test]
    fn missing_dependency_is_reported() {
        let deployment = deployment(5, 5, 2, 2, 2);
        let missing = [MissingDependency {
            name: "users".into(),
            namespace: "shop".into(),
            reason: "not found".into(),
        }];
        let mut observed = observed(Some(&deployment), vec![]);
        observed.missing_dependencies = &missing;
        let status = compute(&ms(), &observed, now());
        assert_eq!(
            get(&status, DEPENDENCIES_READY).reason,
            "DependencyNotFound"
        );
        // The rollout is held: not ready, and the reason says what it waits for.
        let ready = get(&status, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "DependencyNotFound")
        );
        assert!(ready.message.contains("shop/users"), "{}", ready.message);
    }

    fn rollout(deployment: &Deployment) -> Rollout {
        Rollout::of(&ms(), Some(deployment))
    }

    fn users_not_found() -> [MissingDependency; 1] {
        [MissingDependency {
            name: "users".into(),
            namespace: "shop".into(),
            reason: "not found".into(),
        }]
    }

    #[test]
    fn a_missing_backing_service_holds_the_rollout_and_says_which() {
        let mut users = ms();
        users.spec.backing_services =
            serde_json::from_value(json!({"db": {"type": "postgres"}})).unwrap();
        let missing = [MissingBackingService {
            name: "db".into(),
            type_: "postgres".into(),
            missing: crate::class::Missing::Secret("users-db-app".into()),
        }];
        let mut seen = observed(None, vec![]);
        seen.missing_backing = &missing;
        let status = compute(&users, &seen, now());
        let condition = |type_: &str| {
            status
                .conditions
                .iter()
                .find(|c| c.type_ == type_)
                .unwrap_or_else(|| panic!("{type_}"))
                .clone()
        };
        let backing = condition(BACKING_SERVICES_READY);
        assert_eq!(
            (
                backing.status.as_str(),
                backing.reason.as_str(),
                backing.message.as_str()
            ),
            (
                "False",
                REASON_BACKING_SERVICE_NOT_FOUND,
                "db (postgres): Secret users-db-app not found"
            )
        );
        let ready = condition(READY);
        assert_eq!(ready.reason, REASON_BACKING_SERVICE_NOT_FOUND);
        assert!(
            ready
                .message
                .starts_with("the rollout waits for every backing service"),
            "{}",
            ready.message
        );

        seen.missing_backing = &[];
        let status = compute(&users, &seen, now());
        let found = status
            .conditions
            .iter()
            .find(|c| c.type_ == BACKING_SERVICES_READY)
            .unwrap();
        assert_eq!(found.status, "True");
        // A Microservice without backing services has no such condition.
        let status = compute(&ms(), &seen, now());
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.type_ != BACKING_SERVICES_READY)
        );
    }

    #[test]
    fn paused_is_ready_only_once_rolled_out() {
        let done = deployment(5, 5, 2, 2, 2);
        let behind = deployment(6, 6, 2, 1, 1);
        let mut observed = observed(Some(&done), vec![]);
        observed.paused = true;
        let (status, cause) = ready(&observed, &rollout(&done), None, None);
        assert_eq!((status, cause.reason.as_str()), ("True", REASON_PAUSED));
        let (status, cause) = ready(&observed, &rollout(&behind), None, None);
        assert_eq!((status, cause.reason.as_str()), ("False", REASON_PAUSED));
    }

    #[test]
    fn missing_config_is_the_reason_when_no_pod_fails() {
        let behind = deployment(6, 6, 2, 2, 0);
        for (kind, reason, message) in [
            (
                ConfigKind::ConfigMap,
                "ConfigMapNotFound",
                "ConfigMap users-config referenced by the pods does not exist",
            ),
            (
                ConfigKind::Secret,
                "SecretNotFound",
                "Secret users-config referenced by the pods does not exist",
            ),
        ] {
            let missing = [ConfigRef {
                kind,
                name: "users-config".into(),
                optional: false,
            }];
            let mut observed = observed(Some(&behind), vec![]);
            observed.missing_config = &missing;
            let (status, cause) = ready(&observed, &rollout(&behind), None, None);
            assert_eq!((status, cause), ("False", Cause::new(reason, message)));
            // A pod's own failure says more than the missing reference.
            let crash = Cause::new("CrashLoopBackOff", "pod users-abc");
            let (_, cause) = ready(&observed, &rollout(&behind), None, Some(&crash));
            assert_eq!(cause, crash);
        }
    }

    #[test]
    fn progress_deadline_exceeded_stalls_the_rollout() {
        let mut stalled = deployment(6, 6, 2, 1, 1);
        stalled.status.as_mut().unwrap().conditions = Some(vec![
            serde_json::from_value(json!({
                "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"users-7f\" has timed out progressing."
            }))
            .unwrap(),
        ]);
        let status = compute(&ms(), &observed(Some(&stalled), vec![]), now());
        for type_ in [READY, PROGRESSING, DEGRADED] {
            let condition = get(&status, type_);
            assert_eq!(condition.reason, "ProgressDeadlineExceeded", "{type_}");
            assert!(condition.message.contains("timed out"), "{type_}");
        }
        assert_eq!(get(&status, READY).status, "False");
        assert_eq!(get(&status, PROGRESSING).status, "False");
        assert_eq!(get(&status, DEGRADED).status, "True");
    }

    #[test]
    fn progressing_stops_for_each_hold() {
        let behind = deployment(6, 6, 2, 1, 1);
        let done = deployment(5, 5, 2, 2, 2);
        let mut observed = observed(Some(&behind), vec![]);
        let missing = missing_dependencies(&users_not_found());
        let held = missing.as_deref().map(rollout_waits_for);

        assert_eq!(
            progressing(&observed, &rollout(&behind), None, None).0,
            "True"
        );
        assert_eq!(
            progressing(&observed, &rollout(&done), None, None),
            (
                "False",
                Cause::new("Complete", "the current spec is rolled out")
            )
        );
        assert_eq!(
            progressing(&observed, &rollout(&behind), held.as_ref(), None),
            (
                "False",
                Cause::new(
                    REASON_DEPENDENCY_NOT_FOUND,
                    "the rollout waits for every dependency; shop/users: not found"
                )
            )
        );
        observed.paused = true;
        assert_eq!(
            progressing(&observed, &rollout(&behind), None, None),
            ("False", paused())
        );
        observed.refused = Some(Cause::new("PolicyViolation", "registry not allowed"));
        assert_eq!(
            progressing(&observed, &rollout(&behind), held.as_ref(), None),
            (
                "False",
                Cause::new(
                    "PolicyViolation",
                    "nothing is rolled out until the spec is accepted"
                )
            )
        );
    }

    #[test]
    fn degraded_by_a_refusal_first_then_a_failure() {
        let refused = Cause::new("InvalidSpec", "spec.replicas: must be positive");
        let failure = Cause::new("ImagePullBackOff", "pod users-abc");
        assert_eq!(
            degraded(Some(&refused), Some(&failure)),
            ("True", refused.clone())
        );
        assert_eq!(degraded(None, Some(&failure)), ("True", failure));
        assert_eq!(
            degraded(None, None),
            ("False", Cause::new("AsExpected", "no failure seen"))
        );
    }

    #[test]
    fn dependencies_ready_names_a_dependency_that_does_not_admit_the_caller() {
        let refused = [MissingDependency {
            name: "payments".into(),
            namespace: "prod".into(),
            reason: "prod/payments does not admit callers from namespace evil".into(),
        }];
        let verdict =
            dependencies_ready(None, missing_dependencies(&refused).as_deref(), &[], false);
        assert_eq!(verdict.0, "False");
        assert_eq!(verdict.1.reason, REASON_DEPENDENCY_NOT_ADMITTED);
        assert!(verdict.1.message.contains("namespace evil"));
    }

    #[test]
    fn dependencies_ready_names_what_is_missing_or_unready() {
        let missing = missing_dependencies(&users_not_found());
        let unready = ["inventory".to_string(), "payments".to_string()];
        assert_eq!(
            dependencies_ready(missing.as_deref(), None, &unready, false),
            (
                "False",
                Cause::new(REASON_DEPENDENCY_NOT_FOUND, "shop/users: not found")
            )
        );
        assert_eq!(
            dependencies_ready(None, None, &unready, false),
            (
                "False",
                Cause::new("DependencyNotReady", "not ready: inventory, payments")
            )
        );
        assert_eq!(
            dependencies_ready(None, None, &[], false).1.reason,
            "AllReady"
        );
        assert_eq!(
            dependencies_ready(None, None, &[], true).1.reason,
            "NoDependencies"
        );
    }

    #[test]
    fn scraping_is_reported_without_touching_ready() {
        let done = deployment(5, 5, 2, 2, 2);
        let mut observed = observed(Some(&done), vec![]);
        let status = compute(&ms(), &observed, now());
        assert!(status.condition(METRICS_SCRAPED).is_none(), "not asked for");
        observed.scraping = Some(Scraping::NotServed);
        let status = compute(&ms(), &observed, now());
        let scraped = get(&status, METRICS_SCRAPED);
        assert_eq!(
            (scraped.status.as_str(), scraped.reason.as_str()),
            ("False", REASON_SERVICE_MONITOR_NOT_SERVED)
        );
        assert!(scraped.message.contains("scraping is not configured"));
        assert_eq!(get(&status, READY).status, "True");
        observed.scraping = Some(Scraping::ServiceMonitor {
            name: "users".into(),
            port: "http".into(),
            path: "/metrics".into(),
        });
        let status = compute(&ms(), &observed, now());
        assert_eq!(get(&status, METRICS_SCRAPED).status, "True");
        assert_eq!(
            get(&status, METRICS_SCRAPED).message,
            "ServiceMonitor users scrapes port http at /metrics"
        );
    }

    #[test]
    fn a_rollback_speaks_for_the_conditions_but_a_refusal_comes_first() {
        let deployment = deployment(5, 5, 2, 2, 2);
        let verdict = |status| Verdict {
            status,
            reason: "RolledBack".into(),
            message: "rolled back from users:2 to users:1: CrashLoopBackOff on pod users-canary-x"
                .into(),
        };
        let rollout = crate::api::RolloutStatus {
            phase: Some(crate::api::RolloutPhase::RolledBack),
            stable_image: Some("users:1".into()),
            ..Default::default()
        };
        let verdicts = Verdicts {
            ready: Some(verdict("False")),
            progressing: Some(verdict("False")),
            degraded: Some(verdict("True")),
        };
        let mut seen = observed(Some(&deployment), vec![]);
        seen.rollout = Some(Release {
            status: &rollout,
            verdicts: &verdicts,
        });
        let status = compute(&ms(), &seen, now());
        for (type_, expected) in [(READY, "False"), (PROGRESSING, "False"), (DEGRADED, "True")] {
            let condition = get(&status, type_);
            assert_eq!(
                (condition.status.as_str(), condition.reason.as_str()),
                (expected, "RolledBack"),
                "{type_}"
            );
            assert!(condition.message.contains("users-canary-x"));
        }
        assert_eq!(
            status.image.as_deref(),
            Some("users:1"),
            "the pods run the stable image"
        );
        assert_eq!(status.rollout, Some(rollout.clone()));

        seen.refused = Some(Cause::new(
            "InvalidSpec",
            "spec.image: must not contain spaces",
        ));
        let status = compute(&ms(), &seen, now());
        assert_eq!(get(&status, READY).reason, "InvalidSpec");
    }

    #[test]
    fn unschedulable_pod_is_reported() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}}))
        .unwrap();
        assert_eq!(pod_failure(&pod).unwrap().reason, "Unschedulable");
    }

    #[test]
    fn a_pod_slimmed_for_the_cache_tells_the_same_failure() {
        let unschedulable: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {labels::INSTANCE: "users", "x": "y"},
                "annotations": {"a": "b"}, "ownerReferences": [{"apiVersion": "apps/v1",
                "kind": "ReplicaSet", "name": "rs", "uid": "u"}]},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/1 nodes are available",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}], "hostIP": "10.0.0.1"}
        }))
        .unwrap();
        for original in [
            pod("ImagePullBackOff"),
            pod("CrashLoopBackOff"),
            unschedulable,
        ] {
            let mut slim = original.clone();
            keep_what_status_reads(&mut slim);
            assert_eq!(pod_failure(&slim), pod_failure(&original));
            assert!(slim.spec.is_none() && slim.metadata.annotations.is_none());
            assert_eq!(
                slim.labels().get(labels::INSTANCE),
                original.labels().get(labels::INSTANCE)
            );
        }
    }
}
