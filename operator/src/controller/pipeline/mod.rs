//! One reconciliation, as a pipeline: read the caches and plan (validate, resolve the
//! class, resolve the graph, build the children: `crate::plan`, pure), apply, report the
//! changes as events, then compute and write the status. Each step is a module here.
//!
//! A refused spec (InvalidSpec, ClassNotFound, AmbiguousDefaultClass, PolicyViolation)
//! stops the pipeline before anything is applied: the children keep running as they
//! were, the status says why, and nothing is retried until the spec or the class changes.

pub mod apply;
mod events;
pub mod ownership;
mod provision;
mod read;
mod snapshot;
#[cfg(test)]
mod tests;
mod undo;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::api::{Microservice, MicroserviceStatus};
use crate::builders::{FIELD_MANAGER, labels, service_monitor};
use crate::class::Refusal;
use crate::graph::ObjectKey;
use crate::plan::Plan;
use crate::status::{
    self, Cause, Observed, READY, REASON_APPLY_FAILED, REASON_CHILD_CONFLICT, Scraping,
};

use crate::controller::context::Context;
use crate::controller::error::{Error, Result};
use crate::controller::read_failure::ReadFailure;
use crate::controller::report::status_pace;

use apply::Applied;

/// How often a settled Microservice is looked at again even without any watch event.
/// Watches catch drift at once; this only bounds how long a missed event can last.
const RESYNC: Duration = Duration::from_secs(600);
/// Re-check sooner while pods are still coming up, for status that follows closely.
const WHILE_PROGRESSING: Duration = Duration::from_secs(30);
/// How long a reconcile waits for the caches' first list before it looks for a watch to
/// blame (and else tries again).
const CACHE_PATIENCE: Duration = Duration::from_secs(10);
/// The longest wait before retrying a failed read: a permission granted is seen within it.
const READ_RETRY_MAX: Duration = Duration::from_secs(30);

pub async fn reconcile(ms: Arc<Microservice>, ctx: Arc<Context>) -> Result<Action> {
    // A Microservice being deleted gets no new children: garbage collection removes the
    // ones it has, and an apply now could only recreate what is going away.
    if ms.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // Another replica's shard: watched for the graph, reconciled there.
    if let Some(scope) = &ctx.shard
        && !scope.owns(ms.metadata.namespace.as_deref().unwrap_or_default())
    {
        return Ok(Action::await_change());
    }
    // The queue and the edit lane may both hold this object: one pass at a time, and
    // each on the newest version (the one waited for may have been edited meanwhile).
    let key = ObjectRef::from_obj(ms.as_ref());
    let _turn = ctx.turns.take(key.clone()).await;
    // Before every cache has listed once, a missing child may only be unlisted yet:
    // deciding on it would re-create or prune for nothing. A cache that cannot list (a
    // verb the operator lacks) is reported rather than waited on in silence.
    match ctx.caches.ready_within(CACHE_PATIENCE).await {
        Err(_gone) => return Ok(Action::await_change()),
        Ok(true) => {}
        Ok(false) => {
            return match ctx.caches.watch_failures.to_report(true) {
                Some(failure) => read_failed(&ctx, &ms, failure).await,
                None => Ok(Action::requeue(Duration::from_secs(1))),
            };
        }
    }
    let Some(ms) = ctx.caches.microservices.get(&key) else {
        // Deleted: nothing more will be written for it.
        ctx.forget(&key);
        return Ok(Action::await_change());
    };
    if ms.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // A watch refused after its first list: the caches it feeds no longer follow.
    if let Some(failure) = ctx.caches.watch_failures.to_report(false) {
        return read_failed(&ctx, &ms, failure).await;
    }
    let _timer = ctx.metrics.reconcile_timer();
    let namespace = ms.namespace().ok_or(Error::MissingNamespace)?;
    debug!(%namespace, name = %ms.name_any(), "reconciling");

    let mut plan = match read::plan(&ctx, &ms, &namespace).await {
        Ok(plan) => plan,
        Err(failure) => return read_failed(&ctx, &ms, failure).await,
    };
    // The watch on Secrets keeps, and reconciles this one on, a change of its backing
    // services' Secrets (their rotation rolls the pods, as for the spec's references).
    // A broker it starts or stops using admits it or not: that one's turn.
    let rebound = ctx.indexes.record_backing(
        &ObjectKey::of(ms.as_ref()),
        &plan.backing_secrets(),
        &plan.backing_microservices(),
    );
    ctx.triggers.send(rebound);
    let provisioned = provision::provision(&ctx, &ms, &mut plan).await;
    for (action, kind, name) in &provisioned.changes {
        events::provisioned(&ctx, &ms, *action, kind, name);
    }
    let snapshots = snapshot::take(&ctx, &ms, &mut plan).await;
    for copy in &snapshots.created {
        events::provisioned(&ctx, &ms, apply::Action::Created, "ConfigMap", copy);
    }
    let observed = observe(&ctx, &ms, &namespace);
    let rollout = decide_rollout(&ctx, &ms, &mut plan, &observed).await;
    let mut applied = match &plan.outcome {
        Ok(build) if !ms.spec.paused => {
            apply::apply(&ctx, &build.effective, &build.children).await?
        }
        _ => Applied::default(),
    };
    if applied.failure.is_none() {
        applied.failure = snapshots.failure.clone();
    }
    if let (Some(decision), Ok(build), None) = (&rollout, &plan.outcome, &applied.failure) {
        prune_snapshots(&ctx, &ms, build, decision, &observed, &snapshots).await;
    }
    for change in &applied.changes {
        info!(microservice = %ms.name_any(), %namespace, ?change, "child changed");
    }
    events::children_changed(&ctx, &ms, &applied.changes);
    if let Some(notice) = rollout.as_ref().and_then(|d| d.notice.as_ref())
        && applied.failure.is_none()
    {
        info!(microservice = %ms.name_any(), %namespace, reason = notice.reason, note = %notice.note, "rollout");
        events::rollout(&ctx, &ms, notice);
    }
    let (status, status_due) = update_status(
        &ctx,
        &ms,
        &plan,
        &applied,
        rollout.as_ref(),
        &namespace,
        &observed,
    )
    .await?;
    if let Some(failure) = applied.failure {
        // Status says it already; the error brings the backoff and the event.
        return Err(Error::Apply {
            kind: failure.kind,
            name: failure.name,
            message: failure.message,
        });
    }
    ctx.reset_backoff(&key);

    let next = if status.is_ready() {
        RESYNC
    } else {
        WHILE_PROGRESSING
    };
    // A canary pause ends, or a deadline passes, without any watch event.
    let next = rollout
        .and_then(|decision| decision.requeue)
        .map_or(next, |at| next.min(at.max(Duration::from_secs(1))));
    // A progress-only status held back (`status_pace`): come back to write it.
    let next = status_due.map_or(next, |due| next.min(due));
    // A source edited since the cache saw it: its watch event may have come already.
    let next = if snapshots.retry {
        next.min(Duration::from_secs(1))
    } else {
        next
    };
    // A provisioned backing service's progress triggers nothing: look again soon.
    let next = if provisioned.waiting {
        next.min(provision::WAIT_RECHECK)
    } else {
        next
    };
    // A refusal waits for a change to the spec (a watch event) or to its class (the
    // class index triggers every user).
    Ok(if plan.outcome.is_err() {
        Action::await_change()
    } else {
        Action::requeue(next)
    })
}

/// Deletes the config snapshots no kept release reads, when what is kept may have
/// changed: a release became stable or failed, or a copy was taken.
async fn prune_snapshots(
    ctx: &Context,
    ms: &Microservice,
    build: &crate::plan::Build,
    decision: &crate::rollout::Decision,
    observed: &Observation<'_>,
    taken: &snapshot::Taken,
) {
    let previous = observed
        .current
        .status
        .as_ref()
        .and_then(|s| s.rollout.as_ref());
    let now = &decision.status;
    let changed = previous
        .is_none_or(|p| p.history != now.history || p.stable_revision != now.stable_revision);
    if !changed && taken.created.is_empty() {
        return;
    }
    let live: Vec<serde_json::Value> = [&observed.stable, &observed.canary]
        .into_iter()
        .flatten()
        .filter_map(|d| serde_json::to_value(&d.spec.as_ref()?.template).ok())
        .collect();
    let live: Vec<&serde_json::Value> = live.iter().collect();
    let keep = snapshot::kept(&build.snapshots, now, &live);
    for copy in snapshot::prune(ctx, ms, &keep).await {
        events::provisioned(ctx, ms, apply::Action::Deleted, "ConfigMap", &copy);
    }
}

/// What a reconcile reads of the world besides the plan's inputs, read once for the
/// release decision and the status: the Microservice with the status this process last
/// wrote, its Deployments and its pods.
struct Observation<'a> {
    current: Cow<'a, Microservice>,
    stable: Option<Deployment>,
    canary: Option<Deployment>,
    pods: Vec<Arc<Pod>>,
}

impl Observation<'_> {
    fn pods(&self) -> Vec<&Pod> {
        self.pods.iter().map(Arc::as_ref).collect()
    }
}

fn observe<'a>(ctx: &Context, ms: &'a Microservice, namespace: &str) -> Observation<'a> {
    let name = ms.name_any();
    Observation {
        current: as_last_written(ctx, ms),
        stable: read::deployment(&ctx.caches, &name, namespace),
        canary: read::deployment(
            &ctx.caches,
            &crate::rollout::workloads::canary_name(&name),
            namespace,
        ),
        pods: read::pods(&ctx.caches, &name, namespace),
    }
}

/// `ms` with the status this process last wrote, while the cache has not caught up with
/// it; `ms` as cached otherwise.
fn as_last_written<'a>(ctx: &Context, ms: &'a Microservice) -> Cow<'a, Microservice> {
    let written = ctx.statuses.ahead_of(
        &ObjectRef::from_obj(ms),
        ms.metadata.resource_version.as_deref(),
    );
    match written {
        Some(status) => Cow::Owned(Microservice {
            status: Some(status),
            ..ms.clone()
        }),
        None => Cow::Borrowed(ms),
    }
}

/// A read the reconcile needs failed: nothing is planned or applied, the status says
/// which read (Ready=False, Forbidden or ReadFailed) and the error brings the event, the
/// metric and the retry.
async fn read_failed(ctx: &Context, ms: &Microservice, failure: ReadFailure) -> Result<Action> {
    let key = ObjectRef::from_obj(ms);
    let current = as_last_written(ctx, ms);
    let cause = Cause::new(failure.reason(), failure.to_string());
    let status = status::read_failed(&current, &cause, Time(jiff::Timestamp::now()));
    if current.status.as_ref() != Some(&status) {
        match write_status(ctx, &current, &status).await {
            Ok(version) => {
                ctx.status_pace.shown(&key, Instant::now());
                ctx.statuses.record(key, status, version.as_deref());
            }
            // The read failure stays the error to retry and report.
            Err(error) => {
                warn!(namespace = ?ms.namespace(), name = %ms.name_any(), %error, "writing the status of a failed read")
            }
        }
    }
    Err(Error::Read(failure))
}

/// Runs the release state machine on the planned children (see `crate::rollout`) and
/// adjusts them to its decision. Nothing is decided while the spec is refused or paused
/// or the Deployment is held for a dependency: no release can progress then, and its
/// deadline must not run out for it.
async fn decide_rollout(
    ctx: &Context,
    ms: &Microservice,
    plan: &mut Plan,
    observed: &Observation<'_>,
) -> Option<crate::rollout::Decision> {
    let build = plan.outcome.as_mut().ok()?;
    let held = build
        .children
        .get(&crate::builders::deployment::KIND)
        .is_none_or(|child| child.held);
    if ms.spec.paused || held {
        return None;
    }
    // The state machine must not step back to an older step: it reads the status as
    // last written.
    let current = &observed.current;
    let request = undo::request(ctx, current, &build.children).await;
    let undo = crate::rollout::undo_pass(current, &mut build.children, request)?;
    let pods = observed.pods();
    let now = jiff::Timestamp::now();
    let due = crate::rollout::http_checks_due(
        current.as_ref(),
        &build.effective,
        &build.children,
        &pods,
        now,
    );
    let config: Vec<String> = build.snapshots.iter().map(|s| s.copy.clone()).collect();
    let waiting_for = waiting_for(ctx, &build.effective);
    let callers = callers(ctx, build);
    let http = match due {
        Some((gate, ready)) => Some(crate::rollout::http::check(&ctx.client, &gate, &ready).await),
        None => None,
    };
    let metrics = match crate::rollout::metrics_due(
        current.as_ref(),
        &build.effective,
        &build.children,
        &pods,
        now,
    ) {
        Some((gate, canary, stable)) => Some(match &gate.prometheus {
            Some(source) => {
                let names = |pods: &[&Pod]| -> Vec<String> {
                    pods.iter().map(|pod| pod.name_any()).collect()
                };
                let window = crate::rollout::metrics_window(current.as_ref(), now);
                crate::rollout::prometheus::read(
                    &gate,
                    source,
                    &current.namespace().unwrap_or_default(),
                    [&names(&canary), &names(&stable)],
                    window,
                )
                .await
            }
            None => crate::rollout::http::scrape(&ctx.client, &gate, &canary, &stable).await,
        }),
        None => None,
    };
    crate::rollout::reconcile(
        current.as_ref(),
        &build.effective,
        &mut build.children,
        observed.stable.as_ref(),
        observed.canary.as_ref(),
        &pods,
        crate::rollout::Readings {
            http,
            metrics,
            waiting_for,
            callers,
        },
        &config,
        undo,
        now,
    )
}

/// The Microservices that call this one and their pods, from the caches, when its caller
/// gate (`gates.dependents`) is on.
fn callers(ctx: &Context, build: &crate::plan::Build) -> Vec<crate::rollout::machine::CallerView> {
    let gated = build
        .effective
        .spec
        .rollout
        .as_ref()
        .and_then(|r| r.gates.as_ref())
        .and_then(|g| g.dependents)
        .unwrap_or(false);
    if !gated {
        return Vec::new();
    }
    build
        .dependents
        .iter()
        .map(|(namespace, name)| crate::rollout::machine::CallerView {
            name: format!("{namespace}/{name}"),
            pods: read::pods(&ctx.caches, name, namespace)
                .iter()
                .filter(|pod| pod.metadata.deletion_timestamp.is_none())
                .map(|pod| crate::rollout::observe::pod(pod))
                .collect(),
        })
        .collect()
}

/// The first dependency `ms` waits for (`waitForRelease`) whose release is under way, as
/// `namespace/name`, from the cache.
fn waiting_for(ctx: &Context, ms: &Microservice) -> Option<String> {
    let own = ms.namespace().unwrap_or_default();
    ms.spec
        .depends_on
        .iter()
        .filter(|d| d.wait_for_release == Some(true))
        .find_map(|d| {
            let namespace = d.namespace.clone().unwrap_or_else(|| own.clone());
            let dependency = ctx
                .caches
                .microservices
                .get(&ObjectRef::new(&d.name).within(&namespace))?;
            crate::rollout::release_under_way(&dependency)
                .then(|| format!("{namespace}/{}", d.name))
        })
}

/// Computes the status from the plan, what applying did and the caches, and writes it
/// when it changed (announcing a refusal or a conflict once). Progress alone is written
/// at the pace of `status_pace`: then the status is returned unwritten, with when to
/// come back and write it.
async fn update_status(
    ctx: &Context,
    ms: &Microservice,
    plan: &Plan,
    applied: &Applied,
    rollout: Option<&crate::rollout::Decision>,
    namespace: &str,
    world: &Observation<'_>,
) -> Result<(MicroserviceStatus, Option<Duration>)> {
    let name = ms.name_any();
    let refused = plan.outcome.as_ref().err();
    let child_problem = child_problem(applied);
    let observed = Observed {
        deployment: world.stable.as_ref(),
        pods: world.pods(),
        missing_dependencies: &plan.missing_dependencies,
        missing_backing: &plan.missing_backing,
        refused_dependencies: &plan.refused_dependencies,
        unready_dependencies: &plan.unready_dependencies,
        missing_config: &plan.missing_config,
        refused: refused.map(|refusal| Cause::new(refusal.reason(), refusal.to_string())),
        child_problem: child_problem.clone(),
        paused: ms.spec.paused,
        class_name: plan.class_name.clone(),
        external_url: plan
            .outcome
            .as_ref()
            .ok()
            .and_then(|build| build.external_url.clone()),
        scraping: plan
            .outcome
            .as_ref()
            .ok()
            .and_then(|build| scraping(ctx.capabilities.serves(&service_monitor::KIND), build)),
        canary: world.canary.as_ref(),
        rollout: rollout.map(crate::rollout::Decision::release),
    };
    // The status to compare with (and to keep transition times from).
    let key = ObjectRef::from_obj(ms);
    let ms = world.current.as_ref();
    let status = status::compute(ms, &observed, Time(jiff::Timestamp::now()));
    let now = Instant::now();
    if ms.status.as_ref() == Some(&status) {
        ctx.status_pace.shown(&key, now);
        return Ok((status, None));
    }
    let urgent = refused.is_some()
        || child_problem.is_some()
        || status_pace::urgent(ms.status.as_ref(), &status);
    if !urgent && let Some(due) = ctx.status_pace.wait(&key, ms.status.as_ref(), &status, now) {
        return Ok((status, Some(due)));
    }
    if let Some(refusal) = refused
        && !already_reported(ms, refusal.reason(), &refusal.to_string())
    {
        let (reason, message) = (refusal.reason(), refusal.to_string());
        warn!(%namespace, %name, %reason, %message, "spec refused");
        ctx.metrics.error(match refusal {
            Refusal::InvalidSpec(_) => "invalid_spec",
            Refusal::ClassNotFound(_) => "class_not_found",
            Refusal::AmbiguousDefaultClass(_) => "ambiguous_default_class",
            Refusal::PolicyViolation(_) => "policy_violation",
            Refusal::GateUnavailable(_) => "gate_unavailable",
            Refusal::ClassNotAllowed(_) => "class_not_allowed",
            Refusal::ClassRequired(_) => "class_required",
            Refusal::BackingServiceUnavailable(_) => "backing_service_unavailable",
        });
        events::refused(ctx, ms, reason, &message);
    }
    if let Some(cause) = &child_problem
        && cause.reason == REASON_CHILD_CONFLICT
        && !already_reported(ms, &cause.reason, &cause.message)
    {
        warn!(%namespace, %name, message = %cause.message, "child conflict");
        ctx.metrics.error("child_conflict");
        events::reconcile_failed(ctx, ms, &cause.reason, &cause.message);
    }
    let version = write_status(ctx, ms, &status).await?;
    ctx.status_pace.shown(&key, now);
    ctx.statuses.record(key, status.clone(), version.as_deref());
    Ok((status, None))
}

/// How the pods are scraped, when the spec that runs asks for it: by the ServiceMonitor
/// the plan holds where the kind is served.
fn scraping(served: bool, build: &crate::plan::Build) -> Option<Scraping> {
    let spec = &build.effective.spec;
    let metrics = service_monitor::enabled(spec)?;
    if !served {
        return Some(Scraping::NotServed);
    }
    let port = service_monitor::metrics_port(spec, metrics).ok()?;
    Some(Scraping::ServiceMonitor {
        name: build.effective.name_any(),
        port: port.name.clone(),
        path: metrics
            .path
            .clone()
            .unwrap_or_else(|| crate::api::Metrics::DEFAULT_PATH.to_string()),
    })
}

/// Why the children are not as the spec says though it was accepted: a child the API
/// server refused (the rest of the order was not applied), else the objects Flotilla
/// left alone because it does not control them.
fn child_problem(applied: &Applied) -> Option<Cause> {
    if let Some(failure) = &applied.failure {
        return Some(Cause::new(
            REASON_APPLY_FAILED,
            format!(
                "applying {} {}: {}",
                failure.kind, failure.name, failure.message
            ),
        ));
    }
    if applied.conflicts.is_empty() {
        return None;
    }
    let all: Vec<String> = applied
        .conflicts
        .iter()
        .map(|c| {
            format!(
                "{} {} exists and is not this Microservice's ({}): Flotilla leaves it alone; delete or rename it, or annotate it {}={} to hand it over",
                c.kind, c.name, c.managed_by, labels::ADOPT_ANNOTATION, c.name
            )
        })
        .collect();
    let mut message = all.join("; ");
    if applied.held {
        message.push_str(
            "; the Deployment and the children after it wait until then: its pods would run as another's ServiceAccount or without their NetworkPolicy",
        );
    }
    Some(Cause::new(REASON_CHILD_CONFLICT, message))
}

/// Transient failures retry with a per-object exponential backoff.
pub fn error_policy(ms: Arc<Microservice>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(error.metric_label());
    let mut delay = ctx.next_backoff(&ObjectRef::from_obj(ms.as_ref()));
    if matches!(error, Error::Read(_)) {
        delay = delay.min(READ_RETRY_MAX);
    }
    warn!(namespace = ?ms.namespace(), name = %ms.name_any(), %error, retry_in = ?delay, "reconcile failed");
    let reason = match error {
        Error::Kube(_) | Error::Apply { .. } => REASON_APPLY_FAILED,
        Error::Read(failure) => failure.reason(),
        _ => "ReconcileFailed",
    };
    events::reconcile_failed(&ctx, &ms, reason, &error.to_string());
    Action::requeue(delay)
}

/// A refusal or a conflict is announced once per generation, reason and message, not on
/// every pass: the Ready condition already carries it.
fn already_reported(ms: &Microservice, reason: &str, message: &str) -> bool {
    ms.status.as_ref().is_some_and(|status| {
        status.conditions.iter().any(|c| {
            c.type_ == READY
                && c.reason == reason
                && c.message == message
                && c.observed_generation == ms.metadata.generation
        })
    })
}

/// Writes the status; returns the resource version the API server gave the object.
async fn write_status(
    ctx: &Context,
    ms: &Microservice,
    status: &MicroserviceStatus,
) -> Result<Option<String>> {
    let namespace = ms.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<Microservice> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = json!({
        "apiVersion": Microservice::api_version(&()),
        "kind": Microservice::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &ms.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(written.metadata.resource_version)
}
