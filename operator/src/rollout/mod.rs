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
pub mod settings;
pub mod traffic;
pub mod workloads;

pub use machine::{Decision, DeploymentView, HttpRound, PodView, decide};
pub use settings::Settings;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::api::Microservice;
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
    let ready: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|pod| {
            let view = observe::pod(pod);
            view.ready && view.revision.as_deref() == Some(revision)
        })
        .collect();
    let gate = settings.http?;
    (!ready.is_empty()).then_some((gate, ready))
}

/// Decides the release of `ms` (`effective`: with its class defaults) and adjusts the
/// planned `children` to it; `http` holds the checks just run, if any, and `config` the
/// config snapshots the planned template reads. None when no Deployment is planned.
#[allow(clippy::too_many_arguments)]
pub fn reconcile(
    ms: &Microservice,
    effective: &Microservice,
    children: &mut Children,
    stable: Option<&Deployment>,
    canary: Option<&Deployment>,
    pods: &[&Pod],
    http: Option<HttpRound>,
    config: &[String],
    now: Timestamp,
) -> Option<Decision> {
    let planned = children.get(&deployment::KIND)?.object.clone();
    let revision = deployment::revision_of(&planned)?.to_string();
    let settings = Settings::of(&effective.spec);
    let pods: Vec<PodView> = pods.iter().map(|pod| observe::pod(pod)).collect();
    let annotations = ms.annotations();
    let stable_template = stable
        .and_then(|d| d.spec.as_ref())
        .and_then(|spec| serde_json::to_value(&spec.template).ok());
    let input = machine::Input {
        settings: &settings,
        desired: machine::Desired {
            revision: &revision,
            image: &effective.spec.image,
            template: &planned["spec"]["template"],
            generation: ms.metadata.generation,
            replicas: match effective.spec.autoscaling {
                Some(_) => None,
                None => Some(effective.spec.replicas.unwrap_or(1)),
            },
            config,
        },
        previous: ms.status.as_ref().and_then(|s| s.rollout.as_ref()),
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
        http,
        now,
    };
    let decision = decide(&input);
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
