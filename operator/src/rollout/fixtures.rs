//! The state machine driven through scenarios in YAML (`tests/fixtures/rollout/*.yaml`):
//! each pass gives what the Deployments and pods show and what the decision must be; the
//! status a pass decides is the next pass's previous status, as the controller does.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{RolloutSpec, RolloutStatus};

use super::machine::{self, DeploymentView, HttpRound, MetricsRound, PodView, Replicas, Template};
use super::settings::Settings;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scenario {
    rollout: RolloutSpec,
    /// None: autoscaled.
    replicas: Option<i32>,
    desired: Revision,
    #[serde(default)]
    previous: Option<RolloutStatus>,
    passes: Vec<Pass>,
}

#[derive(Deserialize)]
struct Revision {
    revision: String,
    image: String,
    /// The config snapshots its template reads.
    #[serde(default)]
    config: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pass {
    /// Seconds since the scenario's start.
    at: i64,
    /// The desired template is an undo's (its pauses are skipped).
    #[serde(default)]
    fast: bool,
    #[serde(default)]
    stable: DeploymentView,
    /// The stable Deployment's template, as `template(revision)` builds it.
    #[serde(default)]
    stable_template: Option<String>,
    #[serde(default)]
    canary: DeploymentView,
    #[serde(default)]
    pods: Vec<PodView>,
    #[serde(default)]
    promote: Option<String>,
    #[serde(default)]
    abort: Option<String>,
    /// A round of HTTP checks run before this pass.
    #[serde(default)]
    http: Option<HttpRound>,
    /// A reading of the traffic gate taken before this pass.
    #[serde(default)]
    metrics: Option<MetricsRound>,
    /// A dependency's release under way (`waitForRelease`).
    #[serde(default)]
    waiting_for: Option<String>,
    /// The callers and their pods (`gates.dependents`).
    #[serde(default)]
    callers: Vec<machine::CallerView>,
    /// The desired revision changes from this pass on.
    #[serde(default)]
    desired: Option<Revision>,
    expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Expect {
    phase: Option<String>,
    #[serde(default, deserialize_with = "present")]
    step: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    weight: Option<Option<i32>>,
    /// `stable` or `desired`.
    stable_template: Option<String>,
    /// A count, or `desired`.
    stable_replicas: Option<Value>,
    /// A count, or null for no canary Deployment.
    #[serde(default, deserialize_with = "present")]
    canary_replicas: Option<Option<i32>>,
    /// The notice's reason, or null for none.
    #[serde(default, deserialize_with = "present")]
    notice: Option<Option<String>>,
    /// Text the notice must contain.
    notice_contains: Option<String>,
    /// The Ready verdict's reason, or null for the Deployment's own view.
    #[serde(default, deserialize_with = "present")]
    ready_reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    degraded_reason: Option<Option<String>>,
    stable_revision: Option<String>,
    #[serde(default, deserialize_with = "present")]
    failed_revision: Option<Option<String>>,
    /// Text the failed release's cause must contain.
    cause_contains: Option<String>,
    /// Seconds until the latest requeue.
    requeue: Option<u64>,
    /// Whether the controller is to run HTTP checks before the next pass.
    http_due: Option<bool>,
    /// Whether the traffic gate is to read the pods before the next pass.
    metrics_due: Option<bool>,
    /// The traffic gate's verdict (`Waiting`, `Passing`, `Failing`), or null for none.
    #[serde(default, deserialize_with = "present")]
    metrics_verdict: Option<Option<String>>,
    /// `status.rollout.history` as `revision outcome` lines, oldest first.
    history: Option<Vec<String>>,
}

/// A field given as `null` is `Some(None)`: expected absent, not unchecked.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(Option::deserialize(deserializer)?))
}

fn template(revision: &str) -> Value {
    json!({"metadata": {"labels": {"flotilla.dev/revision": revision}},
        "spec": {"containers": [{"name": "app", "image": format!("app:{revision}")}]}})
}

fn run(file: &str, text: &str) {
    let scenario: Scenario = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let spec = crate::api::MicroserviceSpec {
        image: scenario.desired.image.clone(),
        rollout: Some(scenario.rollout.clone()),
        ports: serde_saphyr::from_str("[{name: http, port: 80, targetPort: 8080}]").unwrap(),
        ..Default::default()
    };
    let settings = Settings::of(&spec);
    let start: Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
    let mut previous = scenario.previous.clone();
    let mut desired = scenario.desired;
    for (i, pass) in scenario.passes.into_iter().enumerate() {
        let at = format!("{file}, pass {i} (t={}s)", pass.at);
        if let Some(next) = pass.desired {
            desired = next;
        }
        let desired_template = template(&desired.revision);
        let live_template = pass.stable_template.as_deref().map(template);
        let input = machine::Input {
            settings: &settings,
            desired: machine::Desired {
                revision: &desired.revision,
                image: &desired.image,
                template: &desired_template,
                generation: Some(2),
                replicas: scenario.replicas,
                config: &desired.config,
            },
            previous: previous.as_ref(),
            stable: pass.stable,
            stable_template: live_template.as_ref(),
            canary: pass.canary,
            pods: &pass.pods,
            promote: pass.promote.as_deref(),
            abort: pass.abort.as_deref(),
            http: pass.http,
            metrics: pass.metrics,
            fast: pass.fast,
            waiting_for: pass.waiting_for,
            callers: &pass.callers,
            waits_for_dependencies: false,
            now: start + Duration::from_secs(pass.at as u64),
        };
        let decision = machine::decide(&input);
        let status = &decision.status;
        let e = pass.expect;
        let phase = status.phase.map(|p| format!("{p:?}"));
        let context = format!("{at}: {decision:#?}");
        if let Some(want) = &e.phase {
            assert_eq!(phase.as_deref(), Some(want.as_str()), "phase, {context}");
        }
        if let Some(want) = e.step {
            assert_eq!(status.step, want, "step, {context}");
        }
        if let Some(want) = e.weight {
            assert_eq!(status.weight, want, "weight, {context}");
        }
        if let Some(want) = &e.stable_template {
            let got = match &decision.workloads.stable_template {
                Template::Desired => "desired".to_string(),
                Template::Stable(t) => format!(
                    "stable:{}",
                    t["metadata"]["labels"]["flotilla.dev/revision"]
                        .as_str()
                        .unwrap_or_default()
                ),
            };
            assert!(
                got.starts_with(want.as_str()),
                "stable template {got}, {context}"
            );
        }
        if let Some(want) = &e.stable_replicas {
            let got = match decision.workloads.stable_replicas {
                Replicas::Desired => json!("desired"),
                Replicas::Fixed(n) => json!(n),
            };
            assert_eq!(&got, want, "stable replicas, {context}");
        }
        if let Some(want) = e.canary_replicas {
            assert_eq!(
                decision.workloads.canary_replicas, want,
                "canary, {context}"
            );
        }
        if let Some(want) = &e.notice {
            assert_eq!(
                decision.notice.as_ref().map(|n| n.reason.to_string()),
                *want,
                "notice, {context}"
            );
        }
        if let Some(text) = &e.notice_contains {
            let note = decision
                .notice
                .as_ref()
                .map(|n| n.note.clone())
                .unwrap_or_default();
            assert!(note.contains(text.as_str()), "notice {note:?}, {context}");
        }
        if let Some(want) = &e.ready_reason {
            assert_eq!(
                decision.verdicts.ready.as_ref().map(|v| v.reason.clone()),
                *want,
                "ready, {context}"
            );
        }
        if let Some(want) = &e.degraded_reason {
            assert_eq!(
                decision
                    .verdicts
                    .degraded
                    .as_ref()
                    .map(|v| v.reason.clone()),
                *want,
                "degraded, {context}"
            );
        }
        if let Some(want) = &e.stable_revision {
            assert_eq!(
                status.stable_revision.as_ref(),
                Some(want),
                "stable, {context}"
            );
        }
        if let Some(want) = &e.failed_revision {
            assert_eq!(
                status.failed.as_ref().map(|f| f.revision.clone()),
                *want,
                "failed, {context}"
            );
        }
        if let Some(text) = &e.cause_contains {
            let cause = status
                .failed
                .as_ref()
                .map(|f| f.cause.clone())
                .unwrap_or_default();
            assert!(cause.contains(text.as_str()), "cause {cause:?}, {context}");
        }
        if let Some(want) = e.requeue {
            assert_eq!(
                decision.requeue.map(|d| d.as_secs()),
                Some(want),
                "requeue, {context}"
            );
        }
        if let Some(want) = e.http_due {
            let next = input.now + Duration::from_secs(3);
            assert_eq!(
                machine::http_checks_due(&settings, Some(status), &desired.revision, next),
                want,
                "http checks due 3s later, {context}"
            );
        }
        if let Some(want) = e.metrics_due {
            let next = input.now + Duration::from_secs(3);
            assert_eq!(
                machine::metrics_due(&settings, Some(status), &desired.revision, next),
                want,
                "metrics due 3s later, {context}"
            );
        }
        if let Some(want) = &e.metrics_verdict {
            let seen = status
                .metrics_checks
                .as_ref()
                .and_then(|c| c.verdict)
                .map(|v| format!("{v:?}"));
            assert_eq!(&seen, want, "metrics verdict, {context}");
        }
        if let Some(want) = &e.history {
            let seen: Vec<String> = status
                .history
                .iter()
                .map(|r| format!("{} {}", r.revision, r.outcome))
                .collect();
            assert_eq!(&seen, want, "history, {context}");
        }
        // What the controller writes is what the next pass reads; it survives JSON.
        let written = serde_json::to_value(&decision.status).unwrap();
        previous = Some(serde_json::from_value(written).unwrap());
    }
}

#[test]
fn scenarios() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rollout");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        run(&path.file_name().unwrap().to_string_lossy(), &text);
    }
}
