//! Pods as status reads them: the cache keeps a pod reduced to what is read, and the root
//! cause of a pod that will not become ready by itself. Pure: the controller's status, the
//! rollout's gates and `flotilla status` all read pods through here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::Cause;
use crate::builders::labels;

/// A pod the scheduler cannot place.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";

/// Waiting reasons that mean the pod will not become ready by itself, most telling first.
const FAILURE_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
];

/// Reduces a pod to what [`pod_failure`], the pod index and the rollout gates read: its
/// name, UID, version, instance, revision and track labels; of its status the
/// conditions (type, status, reason, message) and each container's name, state, last
/// state, restart count and readiness. The cache holds pods so.
pub fn keep_what_status_reads(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    let kept: BTreeMap<String, String> = meta
        .labels
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| {
            [labels::INSTANCE, labels::REVISION, labels::TRACK].contains(&key.as_str())
        })
        .collect();
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        // A pod on its way out is no failure of the service (`compute` skips it).
        deletion_timestamp: meta.deletion_timestamp.take(),
        labels: (!kept.is_empty()).then_some(kept),
        ..ObjectMeta::default()
    };
    pod.spec = None;
    let Some(status) = pod.status.take() else {
        return;
    };
    let containers = |statuses: Option<Vec<ContainerStatus>>| {
        statuses.map(|statuses| {
            statuses
                .into_iter()
                .map(|c| ContainerStatus {
                    name: c.name,
                    state: c.state,
                    last_state: c.last_state,
                    // The rollout's restart gate reads these.
                    restart_count: c.restart_count,
                    ready: c.ready,
                    ..ContainerStatus::default()
                })
                .collect()
        })
    };
    pod.status = Some(PodStatus {
        conditions: status.conditions.map(|conditions| {
            conditions
                .into_iter()
                .map(|c| PodCondition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    ..PodCondition::default()
                })
                .collect()
        }),
        init_container_statuses: containers(status.init_container_statuses),
        container_statuses: containers(status.container_statuses),
        ..PodStatus::default()
    });
}

/// Whether a cause seen on a pod ends without anyone acting: an Unschedulable pod runs
/// once there is room (the cluster autoscaler adds nodes for exactly these pods, a node is
/// uncordoned, other pods end). It is the root cause in `Ready`, and becomes `Degraded`
/// only at the progress deadline, as the Deployment's own `Progressing` condition does.
/// Pods waiting for capacity are a bulk create's normal state, not a failure to page on.
pub(super) fn passes_by_itself(cause: &Cause) -> bool {
    cause.reason == REASON_UNSCHEDULABLE
}

/// Why this pod is not running, if it is stuck in a way worth reporting.
pub fn pod_failure(pod: &Pod) -> Option<Cause> {
    let name = pod.name_any();
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    let mut found: Option<(usize, Cause)> = None;
    for container in containers {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.clone().unwrap_or_default();
        let Some(rank) = FAILURE_REASONS.iter().position(|r| *r == reason) else {
            continue;
        };
        let mut message = format!(
            "pod {name}, container {}: {}",
            container.name,
            waiting.message.clone().unwrap_or_default()
        );
        if let Some(terminated) = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
        {
            message.push_str(&format!(
                " (last exit code {}{})",
                terminated.exit_code,
                terminated
                    .reason
                    .as_ref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default()
            ));
        }
        if found.as_ref().is_none_or(|(best, _)| rank < *best) {
            found = Some((rank, Cause::new(reason, message)));
        }
    }
    if let Some((_, cause)) = found {
        return Some(cause);
    }
    status.conditions.iter().flatten().find_map(|c| {
        (c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable"))
        .then(|| {
            Cause::new(
                REASON_UNSCHEDULABLE,
                format!("pod {name}: {}", c.message.clone().unwrap_or_default()),
            )
        })
    })
}
