//! Releases: rolling or canary, health gates, automatic rollback (`spec.rollout`).
//!
//! The controller plans the children from the spec as always; this module then decides,
//! from `status.rollout` and what the Deployments and pods show, which pod template the
//! stable Deployment runs and at how many pods, and whether a `<name>-canary`
//! Deployment runs the new template next to it:
//!
//! - `rolling`: the Deployment takes the new template (maxUnavailable 0, maxSurge 25%).
//! - `canary`: step by step, the canary Deployment runs `weight`% of the pods with the
//!   new template and the stable one gives up as many pods as the canary has ready;
//!   the Service selects both, so requests spread over ready pods by these shares. After
//!   the last step the stable Deployment takes the new template (a rolling update while
//!   the canary keeps serving) and the canary is deleted.
//! - gates, on the new pods only (told apart by their `flotilla.dev/revision` label):
//!   CrashLoopBackOff or more restarts than `gates.maxRestarts` fail a release at once;
//!   a step (or a rolling release) whose pods are not all ready within
//!   `progressDeadlineSeconds` fails it then, naming what the pods show.
//! - a failed release goes back to the last template that was fully ready (kept in
//!   `status.rollout.stableTemplate`), the canary is deleted, and `Degraded=True` reason
//!   `RolledBack` names the cause; the failed revision is not released again until the
//!   pod template changes.
//! - `flotilla rollout promote|abort` set an annotation; each new value is acted on once
//!   (the status records the last one handled).
//!
//! Every bit of state is in `status.rollout`, so a restarted operator resumes a canary
//! at its step, with its pause counted from when it began.

pub mod http;
pub mod machine;
pub mod metrics_gate;
pub mod observe;
pub mod prometheus;
pub mod settings;
pub mod traffic;
pub mod undo;
pub mod workloads;

pub use machine::{Decision, DeploymentView, HttpRound, MetricsRound, PodView, decide};
pub use settings::Settings;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::api::{Microservice, RolloutPhase};
use crate::builders::{Children, deployment, labels};

/// The planned revision of the pods and, when the HTTP gate wants a round of checks now,
/// the ready new pods to check with the gate.
pub fn http_checks_due<'p>(
    ms: &Microservice,
    effective: &Microservice,
    children: &Children,
    pods: &[&'p Pod],
    now: Timestamp,
) -> Option<(settings::HttpGate, Vec<&'p Pod>)> {
    let planned = children.get(&deployment::KIND)?;
    let revision = deployment::revision_of(&planned.object)?;
    let settings = Settings::of(&effective.spec);
    let previous = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    if !machine::http_checks_due(&settings, previous, revision, now) {
        return None;
    }
    let ready = ready_of(pods, revision);
    let gate = settings.http?;
    (!ready.is_empty()).then_some((gate, ready))
}

/// The ready pods the traffic gate reads now, when it wants a reading: the canary's (of
/// the planned revision) and the stable ones (of the stable revision), at most
/// [`MAX_SCRAPED_PODS`] of each, by name, so that successive readings sum the same pods.
pub fn metrics_due<'p>(
    ms: &Microservice,
    effective: &Microservice,
    children: &Children,
    pods: &[&'p Pod],
    now: Timestamp,
) -> Option<(settings::MetricsGate, Vec<&'p Pod>, Vec<&'p Pod>)> {
    let planned = children.get(&deployment::KIND)?;
    let revision = deployment::revision_of(&planned.object)?;
    let settings = Settings::of(&effective.spec);
    let previous = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    if !machine::metrics_due(&settings, previous, revision, now) {
        return None;
    }
    let stable = previous?.stable_revision.as_deref()?;
    let side = |wanted: &str| {
        let mut ready = ready_of(pods, wanted);
        ready.sort_by_key(|pod| pod.name_any());
        ready.truncate(MAX_SCRAPED_PODS);
        ready
    };
    let canary = side(revision);
    if canary.is_empty() {
        return None;
    }
    Some((settings.metrics?, canary, side(stable)))
}

/// The ready pods of `revision`.
fn ready_of<'p>(pods: &[&'p Pod], revision: &str) -> Vec<&'p Pod> {
    pods.iter()
        .copied()
        .filter(|pod| {
            let view = observe::pod(pod);
            view.ready && view.revision.as_deref() == Some(revision)
        })
        .collect()
}

/// The window, in seconds, a Prometheus source is asked about: since the step's pods were
/// all ready (else since the step began), at least 10 s (a scrape or two).
pub fn metrics_window(ms: &Microservice, now: Timestamp) -> u64 {
    let rollout = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    let since = rollout.and_then(|r| r.paused_since.as_ref().or(r.step_started_at.as_ref()));
    let seconds = since.map_or(0, |t| (now.as_second() - t.0.as_second()).max(0) as u64);
    seconds.max(10)
}

/// The traffic gate reads at most this many pods of each side.
pub const MAX_SCRAPED_PODS: usize = 10;

/// What the controller read for the release this pass: the gates' checks, and a
/// dependency whose release it waits for.
#[derive(Clone, Debug, Default)]
pub struct Readings {
    pub http: Option<HttpRound>,
    pub metrics: Option<MetricsRound>,
    /// See [`machine::Input::waiting_for`].
    pub waiting_for: Option<String>,
    /// See [`machine::Input::callers`].
    pub callers: Vec<machine::CallerView>,
}

/// Whether a release of `ms` is under way, or its spec changed and its operator has
/// not looked at it yet (edited together with a caller that waits for it).
pub fn release_under_way(ms: &Microservice) -> bool {
    let Some(status) = &ms.status else {
        return false;
    };
    let behind =
        status.observed_generation.is_some() && status.observed_generation < ms.metadata.generation;
    let releasing = status
        .rollout
        .as_ref()
        .and_then(|r| r.phase)
        .is_some_and(|phase| {
            matches!(
                phase,
                RolloutPhase::Progressing | RolloutPhase::Paused | RolloutPhase::Promoting
            )
        });
    behind || releasing
}

/// The undo in effect (see [`undo`]), its template put in place of the planned one: the
/// gates' checks and the release then go by it. None when no Deployment is planned.
pub fn undo_pass(
    ms: &Microservice,
    children: &mut Children,
    request: Option<undo::Request>,
) -> Option<undo::Resolved> {
    let child = children.get_mut(&deployment::KIND)?;
    let planned = deployment::revision_of(&child.object)?.to_string();
    let previous = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    let resolved = undo::resolve(previous, &planned, request);
    if let Some(target) = &resolved.target {
        child.object["spec"]["template"] = target.template.clone();
    }
    Some(resolved)
}

/// Decides the release of `ms` (`effective`: with its class defaults) and adjusts the
/// planned `children` to it; `readings` holds the gates' checks just run, and `config` the
/// config snapshots the planned template reads; `undo` is what [`undo_pass`] decided.
/// None when no Deployment is planned.
#[allow(clippy::too_many_arguments)]
pub fn reconcile(
    ms: &Microservice,
    effective: &Microservice,
    children: &mut Children,
    stable: Option<&Deployment>,
    canary: Option<&Deployment>,
    pods: &[&Pod],
    readings: Readings,
    config: &[String],
    undo: undo::Resolved,
    now: Timestamp,
) -> Option<Decision> {
    let planned = children.get(&deployment::KIND)?.object.clone();
    let revision = deployment::revision_of(&planned)?.to_string();
    let settings = Settings::of(&effective.spec);
    let previous = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    // An undo's release is of its template: its image, and the snapshots its release
    // read, as the history recorded them.
    let (image, config) = match &undo.target {
        Some(target) => (
            undo::image_of(&target.template).unwrap_or(&effective.spec.image),
            previous
                .and_then(|p| {
                    p.history
                        .iter()
                        .rev()
                        .find(|r| r.revision == target.revision)
                })
                .map_or(&[][..], |r| r.config.as_slice()),
        ),
        None => (effective.spec.image.as_str(), config),
    };
    let pods: Vec<PodView> = pods.iter().map(|pod| observe::pod(pod)).collect();
    let annotations = ms.annotations();
    let stable_template = stable
        .and_then(|d| d.spec.as_ref())
        .and_then(|spec| serde_json::to_value(&spec.template).ok());
    let input = machine::Input {
        settings: &settings,
        desired: machine::Desired {
            revision: &revision,
            image,
            template: &planned["spec"]["template"],
            generation: ms.metadata.generation,
            replicas: match effective.spec.autoscaling {
                Some(_) => None,
                None => Some(effective.spec.replicas.unwrap_or(1)),
            },
            config,
        },
        previous,
        stable: observe::deployment(stable),
        stable_template: stable_template.as_ref(),
        canary: observe::deployment(canary),
        pods: &pods,
        promote: annotations
            .get(labels::PROMOTE_ANNOTATION)
            .map(String::as_str),
        abort: annotations
            .get(labels::ABORT_ANNOTATION)
            .map(String::as_str),
        http: readings.http,
        metrics: readings.metrics,
        fast: undo.fast,
        waiting_for: readings.waiting_for,
        callers: &readings.callers,
        waits_for_dependencies: effective
            .spec
            .depends_on
            .iter()
            .any(|d| d.wait_for_release == Some(true)),
        now,
    };
    let mut decision = decide(&input);
    decision.status.undo = undo.target;
    decision.status.handled_undo = undo.handled;
    if decision.notice.is_none() {
        decision.notice = undo.notice;
    }
    workloads::apply(children, &decision.workloads);
    let canary_ready = decision.workloads.canary_replicas.is_some_and(|n| n > 0)
        && canary
            .and_then(|d| d.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .is_some_and(|n| n > 0);
    traffic::split_route(children, &decision.status, canary_ready);
    Some(decision)
}

#[cfg(test)]
mod fixtures;
