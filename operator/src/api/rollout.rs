//! `spec.rollout` and `status.rollout`: how a new pod template is released, and where a
//! release stands. The state machine that reads and writes them is `crate::rollout`.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::traffic::Tally;

/// How a change to the pods (image, env, config, anything in the pod template) is
/// released. Every field left unset takes the class's `defaults.rollout` value, then
/// Flotilla's default.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.steps) || size(self.steps) == 0 || !has(self.strategy) || self.strategy == 'canary'").message("spec.rollout.steps: steps are for strategy canary, not rolling").field_path(".steps"))]
pub struct RolloutSpec {
    /// `rolling` (the default without `steps`): the Deployment replaces the pods a few at a time, never
    /// below the desired count. `canary`: a second Deployment, `<name>-canary`, runs the
    /// new pods behind the same Service at the share of each of `steps`, then the new
    /// template replaces the stable one. `steps` without a strategy mean `canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,

    /// The canary's steps, in order: the share of the pods running the new template and
    /// how long to hold it. After the last step the new template takes all the pods.
    /// Without steps a canary goes straight to all pods (after its gates hold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub steps: Vec<CanaryStep>,

    /// Health gates checked on the new pods throughout a release. A gate failing, or a
    /// step not reaching its pods within `progressDeadlineSeconds`, fails the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Gates>,

    /// How long a release (rolling) or each canary step may take to have all its new pods
    /// ready. Default 600. Image pull failures, unschedulable pods and missing ConfigMaps
    /// may pass by themselves, so they fail a release only when this deadline passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 86400))]
    pub progress_deadline_seconds: Option<i32>,

    /// On a failed release, go back to the last pod template that was fully ready and
    /// remove the new pods. Default true. When false, a failed release stays where it
    /// failed (reported in `Degraded`) until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_rollback: Option<bool>,

    /// How many releases `status.rollout.history` keeps (the newest), released or rolled
    /// back. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub revision_history_limit: Option<i32>,

    /// Release config with the pods. Default true: each ConfigMap the pods reference is
    /// copied into an immutable `<name>-<configmap>-<hash>` ConfigMap that the
    /// Microservice owns, and the pod template reads the copy. A ConfigMap edit is then a
    /// release like an image change (gated, rolled back when it fails), and stable pods
    /// keep reading the config they were released with, even when they restart after a
    /// rollback. Copies are deleted once no kept release uses them. Secrets are never
    /// copied nor read: their pods reference them directly. False references the
    /// ConfigMaps themselves (an edit still rolls the pods, but a rollback restores only
    /// the pod template, not the old content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_config: Option<bool>,
}

/// How a new pod template is released.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RolloutStrategy {
    /// The Deployment's rolling update: one surge pod at a time, none unavailable.
    #[default]
    Rolling,
    /// A Flotilla-owned `<name>-canary` Deployment takes a share of the pods, step by
    /// step, before the new template replaces the stable one.
    Canary,
}

/// One canary step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// Percentage of the pods that run the new template (at least one pod). The
    /// Service spreads requests over ready pods, so this is the share of traffic as far
    /// as the pod counts allow: with 4 replicas, 25 is 1 pod, 50 is 2.
    #[schemars(range(min = 1, max = 99))]
    pub weight: i32,

    /// How long to hold this step once its pods are ready: a duration such as `30s`,
    /// `5m` or `1h`, or `manual` to wait for `flotilla rollout promote`. Unset moves on
    /// as soon as the step's pods are ready and the gates hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(manual|[0-9]+(s|m|h))$"))]
    pub pause: Option<String>,
}

/// How long a canary step holds once its pods are ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// Move on as soon as the step's pods are ready.
    None,
    For(Duration),
    /// Until `flotilla rollout promote`.
    Manual,
}

/// Reads a step's `pause`: `30s`, `5m`, `1h` or `manual`.
pub fn parse_pause(text: &str) -> Result<Pause, String> {
    if text == "manual" {
        return Ok(Pause::Manual);
    }
    let invalid = || format!("`{text}`: a duration such as 30s, 5m or 1h, or manual");
    // The unit is the last character, whatever its width: the text is the user's.
    let mut chars = text.chars();
    let unit = chars.next_back().ok_or_else(invalid)?;
    let seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return Err(invalid()),
    };
    let value: u64 = chars.as_str().parse().map_err(|_| invalid())?;
    let total = value
        .checked_mul(seconds)
        .ok_or_else(|| format!("`{text}`: too long a pause"))?;
    Ok(Pause::For(Duration::from_secs(total)))
}

/// Health gates on the new pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gates {
    /// Container restarts the new pods may have in all before the release fails.
    /// Default 0: any restart fails it. CrashLoopBackOff always fails it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub max_restarts: Option<i32>,

    /// An HTTP check of the new pods: every few seconds while a release is under way,
    /// Flotilla GETs `path` on each ready new pod (through the API server's pod proxy,
    /// so where NetworkPolicies are enforced the pods must admit the API server). A
    /// canary step moves on, and a rolling release completes, only when at least one
    /// check ran and `successPercent` of them answered `expectedStatus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGate>,

    /// Judge a canary by its traffic, compared to the stable pods': every few seconds
    /// Flotilla reads the Prometheus metrics of each ready pod of both (through the API
    /// server's pod proxy, as the HTTP gate: no Prometheus needed) and compares what
    /// each side served since the step began. A step moves on only once the canary has
    /// served `minRequests` and its error ratio (and latency, when set) is within the
    /// limits of the stable pods'; beyond them the release fails at once. Canary
    /// releases only: a rolling update has no stable pods to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsGate>,

    /// Judge a release by its callers too: while it is under way, the pods of every
    /// Microservice that depends on this one (`dependsOn`, as the graph resolves it) must
    /// stay as ready as they were when it began and must not restart. A caller's pod
    /// turning unready or restarting fails the release, naming the caller and the pod.
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependents: Option<bool>,
}

/// The traffic gate: the canary's pods against the stable pods, from their metrics.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsGate {
    /// The counter of requests served, e.g. `http_requests_total`: every series of it
    /// is summed over the pods.
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    )]
    pub requests: String,
    /// Which series of `requests` are errors: one label matcher in PromQL syntax, e.g.
    /// `code=~"5.."` or `outcome="error"`.
    #[schemars(length(min = 1, max = 256))]
    pub errors: String,
    /// How many percentage points the canary's error ratio may exceed the stable pods'.
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub max_error_increase_percent: Option<f64>,
    /// Requests the canary must have served in the step before it is judged. Default
    /// 100. A step whose canary does not reach them within `progressDeadlineSeconds`
    /// fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub min_requests: Option<i32>,
    /// A latency limit from a histogram of request durations in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyGate>,
    /// The port (one of `spec.ports`) serving the metrics: `spec.metrics.port`, else the
    /// primary port, when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub port: Option<String>,
    /// The path of the metrics: `spec.metrics.path`, else `/metrics`, when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[^\s]*$"))]
    pub path: Option<String>,
    /// Where the metrics are read: from the pods themselves (the default), or from a
    /// Prometheus that scrapes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MetricsSource>,
}

/// Where the traffic gate reads the metrics.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSource {
    /// Query a Prometheus that scrapes the pods: each reading asks it what each side's
    /// pods served since the step's pods were ready (`increase` over that window), so
    /// nothing is kept between readings and the pods are not called by Flotilla.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
}

/// A Prometheus the traffic gate queries.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSource {
    /// Its HTTP API, e.g. `http://prometheus.monitoring:9090` (plain HTTP, reached from
    /// the operator's pod).
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^https?://[^\s]+$"))]
    pub address: String,
    /// The label of the scraped series that names the pod. Default `pod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    )]
    pub pod_label: Option<String>,
    /// The label that names the namespace. Default `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    )]
    pub namespace_label: Option<String>,
}

/// A latency limit of the traffic gate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyGate {
    /// The histogram's name, without `_bucket`, e.g. `http_request_duration_seconds`.
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    )]
    pub histogram: String,
    /// The quantile compared, e.g. 0.99 (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.5, max = 0.999))]
    pub quantile: Option<f64>,
    /// How many milliseconds the canary's quantile may exceed the stable pods'.
    #[schemars(range(min = 0, max = 600000))]
    pub max_increase_millis: i32,
}

/// The HTTP check of the health gates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpGate {
    /// The path to GET, e.g. `/readyz` or `/api/health?deep=1`.
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[^\s]*$"))]
    pub path: String,
    /// Name of the port (one of `spec.ports`) to call; the primary port when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub port: Option<String>,
    /// The status a passing check answers. Default 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub expected_status: Option<i32>,
    /// The share of checks over a step (or a rolling release) that must pass, in
    /// percent. Default 100: any failed check fails the release at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub success_percent: Option<i32>,
}

/// Where the release of the current pod template stands.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// `rolling` or `canary`: the strategy in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,
    /// `Healthy` (the current template runs everywhere), `Progressing`, `Paused` (a
    /// canary step holds), `Promoting` (the new template replaces the stable one),
    /// `RolledBack` or `Failed` (a failed release left where it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RolloutPhase>,
    /// The revision (hash of the pod template) being released, or running when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The canary step under way, from 1; `steps + 1` while promoting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i32>,
    /// The number of canary steps of this release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<i32>,
    /// The share of the pods, in percent, that run the new template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// When this release started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_started_at: Option<Time>,
    /// When the current step started: its pods have `progressDeadlineSeconds` from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Time>,
    /// When the current step's pods were all ready: its pause counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<Time>,
    /// The image of the last pod template that was fully ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_image: Option<String>,
    /// The revision of the last pod template that was fully ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,
    /// The image of the new pods, while a release is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_image: Option<String>,
    /// The last pod template that was fully ready: what a rollback goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub stable_template: Option<serde_json::Value>,
    /// The last release that failed. Its revision is not released again until the pod
    /// template changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedRelease>,
    /// The HTTP gate's checks of the current step (of the release, when rolling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_checks: Option<HttpChecks>,
    /// The traffic gate's reading of the current step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_checks: Option<MetricsChecks>,
    /// A release that has not started yet, held for its dependencies
    /// (`dependsOn[].waitForRelease`): the revision and since when it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingRelease>,
    /// The callers as they were when the release began (`gates.dependents`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub callers: Vec<CallerBaseline>,
    /// `flotilla rollout promote` was asked during this release: its remaining pauses
    /// are skipped (its steps and gates still run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promoted: bool,
    /// The value of the `flotilla.dev/promote` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_promote: Option<String>,
    /// The value of the `flotilla.dev/abort` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_abort: Option<String>,
    /// The value of the `flotilla.dev/undo` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_undo: Option<String>,
    /// An undo in effect (`flotilla rollout undo`): the earlier release that runs in
    /// place of the spec's pod template until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<UndoTarget>,
    /// One line on where the release stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last releases, oldest first, at most `rollout.revisionHistoryLimit`: each
    /// revision that became stable, and each that failed. `flotilla rollout history`
    /// shows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub history: Vec<RevisionRecord>,
}

/// The release an undo went back to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UndoTarget {
    /// Its revision.
    #[schemars(length(max = 253))]
    pub revision: String,
    /// The revision the spec asked for when the undo was asked: a spec that asks for
    /// another one ends the undo.
    #[schemars(length(max = 253))]
    pub spec_revision: String,
    /// Its pod template, as its ReplicaSet kept it.
    #[schemars(schema_with = "preserved_object")]
    pub template: serde_json::Value,
}

/// One release in `status.rollout.history`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRecord {
    /// Its number: one more than the release before it. `flotilla rollout undo
    /// --to-revision` takes it.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub number: i64,
    /// The pod template's revision (its hash).
    #[schemars(length(max = 253))]
    pub revision: String,
    /// Its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub image: Option<String>,
    /// `Released` (it became the stable template), `RolledBack` or `ReleaseFailed`.
    #[schemars(length(max = 32))]
    pub outcome: String,
    /// When it became stable, or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub cause: Option<String>,
    /// The config snapshots (ConfigMap copies) its pods read: kept while this entry is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub config: Vec<String>,
}

/// The traffic gate's reading of a step: what each side had served when the step began
/// (or when its counters last went back: a pod gone or restarted), and the last verdict.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsChecks {
    /// The canary pods' sums at the baseline.
    #[serde(default)]
    pub canary_baseline: Tally,
    /// The stable pods' sums at the baseline.
    #[serde(default)]
    pub stable_baseline: Tally,
    /// When the metrics were last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Time>,
    /// When the baselines were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_at: Option<Time>,
    /// The last verdict, e.g. `gate metrics: canary 0.0% errors vs stable 0.0% (max +1%)
    /// over 120 requests`, or why the pods could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub last: Option<String>,
    /// What the last verdict says: `Waiting` (too few canary requests yet), `Passing`
    /// or `Failing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<GateVerdict>,
}

/// A release held for its dependencies.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitingRelease {
    /// The revision waiting.
    #[schemars(length(max = 253))]
    pub revision: String,
    /// When it began to wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// A caller of a Microservice when its release began.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallerBaseline {
    /// `namespace/name`.
    #[schemars(length(max = 127))]
    pub name: String,
    /// Its ready pods.
    #[serde(default)]
    pub ready: i32,
    /// Its pods' container restarts in all.
    #[serde(default)]
    pub restarts: i32,
}

/// What a gate says of a step so far.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum GateVerdict {
    Waiting,
    Passing,
    Failing,
}

/// The HTTP gate's tally.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpChecks {
    /// Checks that answered the expected status.
    #[serde(default)]
    pub passed: i32,
    /// Checks that did not.
    #[serde(default)]
    pub failed: i32,
    /// When the last round of checks ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Time>,
    /// The last failed check, e.g. `pod shop-canary-x answered 503`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// The phase of a release.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RolloutPhase {
    Healthy,
    Progressing,
    Paused,
    Promoting,
    RolledBack,
    Failed,
}

/// A release that failed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedRelease {
    /// The revision (pod template hash) that failed.
    pub revision: String,
    /// The `metadata.generation` of the spec that asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Why it failed, e.g. `CrashLoopBackOff on pod users-canary-7d9f-x2x`.
    pub cause: String,
    /// When it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
}

/// An object schema that keeps whatever it holds (a pod template, another kind's spec).
pub(crate) fn preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_parse() {
        assert_eq!(parse_pause("30s"), Ok(Pause::For(Duration::from_secs(30))));
        assert_eq!(parse_pause("2m"), Ok(Pause::For(Duration::from_secs(120))));
        assert_eq!(parse_pause("1h"), Ok(Pause::For(Duration::from_secs(3600))));
        assert_eq!(parse_pause("manual"), Ok(Pause::Manual));
        for bad in [
            "",
            "s",
            "10",
            "1d",
            "-1s",
            "1.5m",
            "5é",
            "é",
            "5ms",
            "99999999999999999999h",
            "18446744073709551615h",
        ] {
            assert!(parse_pause(bad).is_err(), "{bad}");
        }
    }
}
