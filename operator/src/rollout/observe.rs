//! What the state machine reads, taken from the cached Deployments and pods.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::builders::labels;
use crate::status::pod_failure;

use super::machine::{DeploymentView, PodView};

/// A Deployment as the state machine reads it; the default (absent) when there is none.
pub fn deployment(deployment: Option<&Deployment>) -> DeploymentView {
    let Some(deployment) = deployment else {
        return DeploymentView::default();
    };
    let status = deployment.status.clone().unwrap_or_default();
    let spec = deployment.spec.as_ref();
    DeploymentView {
        exists: true,
        current: status.observed_generation.is_some()
            && status.observed_generation >= deployment.metadata.generation,
        spec_replicas: spec.and_then(|s| s.replicas),
        replicas: status.replicas.unwrap_or(0),
        updated: status.updated_replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
        revision: spec
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.as_ref())
            .and_then(|l| l.get(labels::REVISION))
            .cloned(),
    }
}

/// A pod as the gates read it.
pub fn pod(pod: &Pod) -> PodView {
    let status = pod.status.as_ref();
    let containers: Vec<_> = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .collect();
    let last_exit = containers.iter().find_map(|c| {
        let terminated = c.last_state.as_ref()?.terminated.as_ref()?;
        Some(format!(
            "exit code {}{}",
            terminated.exit_code,
            terminated
                .reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ))
    });
    PodView {
        name: pod.name_any(),
        revision: pod.labels().get(labels::REVISION).cloned(),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            }),
        restarts: containers.iter().map(|c| c.restart_count).sum(),
        failure: pod_failure(pod).map(|cause| (cause.reason, cause.message)),
        last_exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_crashing_pod() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "users-canary-abc", "labels": {labels::REVISION: "r2"}},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false,
                "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}
        }))
        .unwrap();
        let view = super::pod(&pod);
        assert_eq!(view.revision.as_deref(), Some("r2"));
        assert!(!view.ready);
        assert_eq!(view.restarts, 2);
        assert_eq!(view.failure.unwrap().0, "CrashLoopBackOff");
        assert_eq!(view.last_exit.as_deref(), Some("exit code 1 (Error)"));
    }

    #[test]
    fn reads_a_deployment() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "users", "generation": 4},
            "spec": {"replicas": 3, "selector": {}, "template": {"metadata": {"labels": {labels::REVISION: "r1"}}}},
            "status": {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
        }))
        .unwrap();
        let view = deployment(Some(&d));
        assert!(view.complete("r1", 3));
        assert!(!view.complete("r2", 3));
        assert!(!deployment(None).exists);
    }
}
