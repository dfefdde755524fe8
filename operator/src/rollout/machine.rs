//! The release state machine: from the rollout settings, the pod template the spec asks
//! for, what the last pass left in `status.rollout` and what the Deployments and pods
//! show, decide which template the stable Deployment runs at how many pods, how many
//! pods the canary Deployment runs, and the next `status.rollout`. Pure: no client, no
//! clock (`now` is an input), so an operator restart resumes from the status it wrote.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use crate::api::{
    CallerBaseline, FailedRelease, GateVerdict, HttpChecks, MetricsChecks, RevisionRecord,
    RolloutPhase, RolloutStatus, RolloutStrategy, Tally, WaitingRelease,
};

use super::metrics_gate;
use super::settings::{HTTP_CHECK_INTERVAL, MetricsGate, Settings};
use crate::api::Pause;
use crate::status::{Release, Verdict, Verdicts};

/// Pod failures that mean the new template is broken: the release fails at once. Others
/// (image pulls, scheduling, missing configuration) may pass by themselves and fail a
/// release only at the progress deadline.
pub const FAILS_AT_ONCE: &[&str] = &["CrashLoopBackOff", "RunContainerError"];

/// What a Deployment's cached object and status show.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentView {
    pub exists: bool,
    /// The Deployment controller has seen its latest spec.
    pub current: bool,
    /// `spec.replicas` (an autoscaler's count when it owns it).
    pub spec_replicas: Option<i32>,
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// The revision label of its pod template.
    pub revision: Option<String>,
}

impl DeploymentView {
    /// Every pod of `revision`, `want` of them ready and available, no other pod left.
    pub fn complete(&self, revision: &str, want: i32) -> bool {
        self.exists
            && self.current
            && self.revision.as_deref() == Some(revision)
            && self.updated >= want
            && self.ready >= want
            && self.available >= want
            && self.replicas == self.updated
    }
}

/// What the gates read of one pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodView {
    pub name: String,
    pub revision: Option<String>,
    pub ready: bool,
    /// Container restarts in all.
    pub restarts: i32,
    /// Why it does not run, if stuck (`status::pod_failure`): reason and message.
    pub failure: Option<(String, String)>,
    /// The last termination, e.g. `exit code 1 (Error)`.
    pub last_exit: Option<String>,
}

/// A caller and its pods, as the caller gate reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CallerView {
    /// `namespace/name`.
    pub name: String,
    pub pods: Vec<PodView>,
}

impl CallerView {
    fn ready(&self) -> i32 {
        self.pods.iter().filter(|p| p.ready).count() as i32
    }

    fn restarts(&self) -> i32 {
        self.pods
            .iter()
            .map(|p| p.restarts.max(0))
            .fold(0, i32::saturating_add)
    }
}

/// The pod template the spec asks for.
#[derive(Clone, Debug)]
pub struct Desired<'a> {
    pub revision: &'a str,
    pub image: &'a str,
    /// The Deployment's `spec.template` as built.
    pub template: &'a Value,
    pub generation: Option<i64>,
    /// The pod count; None when an autoscaler owns it.
    pub replicas: Option<i32>,
    /// The config snapshots the template reads.
    pub config: &'a [String],
}

/// Everything one decision reads.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub settings: &'a Settings,
    pub desired: Desired<'a>,
    pub previous: Option<&'a RolloutStatus>,
    pub stable: DeploymentView,
    /// The stable Deployment's pod template as Flotilla last applied it.
    pub stable_template: Option<&'a Value>,
    pub canary: DeploymentView,
    /// Pods of the Microservice, both Deployments.
    pub pods: &'a [PodView],
    /// The `flotilla.dev/promote` and `flotilla.dev/abort` annotations.
    pub promote: Option<&'a str>,
    pub abort: Option<&'a str>,
    /// The HTTP gate's checks run this pass (see [`http_checks_due`]).
    pub http: Option<HttpRound>,
    /// The traffic gate's reading this pass (see [`metrics_due`]).
    pub metrics: Option<MetricsRound>,
    /// The desired template is an undo's: its release skips every pause (its steps and
    /// gates still run), as after `flotilla rollout promote`.
    pub fast: bool,
    /// A dependency (`waitForRelease`) whose release is under way, as `namespace/name`:
    /// a new release does not start until it is done.
    pub waiting_for: Option<String>,
    /// The Microservices that call this one, with their pods (`gates.dependents`).
    pub callers: &'a [CallerView],
    /// Some `dependsOn` entry has `waitForRelease`: a new release first waits
    /// [`DEPENDENCY_SETTLE`], so that a dependency edited in the same change is seen.
    pub waits_for_dependencies: bool,
    pub now: Timestamp,
}

/// One reading of the traffic gate: the sums of the ready canary pods' metrics and of
/// the ready stable pods', or why a pod could not be read (the reading is then skipped).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MetricsRound {
    pub canary: Tally,
    pub stable: Tally,
    pub failure: Option<String>,
    /// The tallies are what each side served over the step already (a Prometheus
    /// source), not counters since the pods started: judged as they are.
    pub deltas: bool,
}

/// One round of HTTP checks of the ready new pods.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRound {
    pub passed: i32,
    pub failed: i32,
    /// The last failure, e.g. `pod shop-canary-x answered 503`.
    pub failure: Option<String>,
}

/// Whether the controller should run a round of HTTP checks on the ready pods of
/// `desired` now: the gate is set, a release of it is under way, and the last round is
/// older than [`HTTP_CHECK_INTERVAL`].
pub fn http_checks_due(
    settings: &Settings,
    previous: Option<&RolloutStatus>,
    desired: &str,
    now: Timestamp,
) -> bool {
    let Some(previous) = previous else {
        return false;
    };
    let last = previous
        .http_checks
        .as_ref()
        .filter(|_| previous.revision.as_deref() == Some(desired))
        .and_then(|c| c.last_at.as_ref());
    settings.http.is_some()
        && previous.stable_revision.is_some()
        && releasing(previous, desired)
        && round_due(last, now)
}

/// Whether the traffic gate should read the pods now: the gate is set, a canary step
/// of `desired` is under way (not promoting), and the last reading is older than
/// [`HTTP_CHECK_INTERVAL`].
pub fn metrics_due(
    settings: &Settings,
    previous: Option<&RolloutStatus>,
    desired: &str,
    now: Timestamp,
) -> bool {
    let Some(previous) = previous else {
        return false;
    };
    let stepping = previous
        .step
        .is_some_and(|step| step >= 1 && step as usize <= settings.steps.len());
    let last = previous
        .metrics_checks
        .as_ref()
        .and_then(|c| c.last_at.as_ref());
    settings.metrics.is_some()
        && settings.strategy == RolloutStrategy::Canary
        && stepping
        && previous.revision.as_deref() == Some(desired)
        && releasing(previous, desired)
        && round_due(last, now)
}

/// Whether the status shows a release of `desired` that a gate judges: not the stable
/// revision, and not one that failed.
fn releasing(previous: &RolloutStatus, desired: &str) -> bool {
    previous.stable_revision.as_deref() != Some(desired)
        && previous
            .failed
            .as_ref()
            .is_none_or(|f| f.revision != desired)
}

/// Whether a gate's last round, if any, is older than [`HTTP_CHECK_INTERVAL`].
fn round_due(last: Option<&Time>, now: Timestamp) -> bool {
    last.is_none_or(|Time(at)| {
        now.as_millisecond() - at.as_millisecond() >= HTTP_CHECK_INTERVAL.as_millis() as i64
    })
}

/// Takes a reading into the step's tally: the first sets the baselines; later ones are
/// judged on what each side served since (a side whose counters went back, a pod gone or
/// restarted, starts again from this reading).
fn read_metrics(checks: &mut MetricsChecks, round: &MetricsRound, gate: &MetricsGate, now: Time) {
    checks.last_at = Some(now.clone());
    if let Some(failure) = &round.failure {
        checks.last = Some(format!("gate metrics: {}", shorten(failure, 900)));
        return;
    }
    if !round.canary.is_valid() || !round.stable.is_valid() {
        checks.last = Some("gate metrics: a sum over the pods is out of range".to_string());
        return;
    }
    if round.deltas {
        checks.baseline_at.get_or_insert(now);
        judge_into(checks, &round.canary, &round.stable, gate);
        return;
    }
    if checks.baseline_at.is_none() {
        checks.canary_baseline = round.canary.clone();
        checks.stable_baseline = round.stable.clone();
        checks.baseline_at = Some(now);
        checks.verdict = Some(GateVerdict::Waiting);
        checks.last = Some("gate metrics: baseline read".to_string());
        return;
    }
    let since = |current: &Tally, baseline: &mut Tally| {
        current.since(baseline).unwrap_or_else(|| {
            *baseline = current.clone();
            Tally::default()
        })
    };
    let canary = since(&round.canary, &mut checks.canary_baseline);
    let stable = since(&round.stable, &mut checks.stable_baseline);
    judge_into(checks, &canary, &stable, gate);
}

/// Judges what each side served and records the verdict.
fn judge_into(checks: &mut MetricsChecks, canary: &Tally, stable: &Tally, gate: &MetricsGate) {
    let verdict = metrics_gate::judge(canary, stable, &gate.limits);
    checks.last = Some(shorten(verdict.message(), 1000));
    checks.verdict = Some(match verdict {
        metrics_gate::Verdict::Wait(_) => GateVerdict::Waiting,
        metrics_gate::Verdict::Pass(_) => GateVerdict::Passing,
        metrics_gate::Verdict::Fail(_) => GateVerdict::Failing,
    });
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// What the HTTP gate says of a step.
enum HttpVerdict {
    Pass,
    /// No check has run yet.
    Wait,
    Fail(String),
}

/// Which pod template the stable Deployment runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Template {
    /// The one the spec asks for.
    Desired,
    /// The last one that was fully ready (a rollback, or a canary under way).
    Stable(Value),
}

/// The stable Deployment's pod count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replicas {
    /// As the spec says (or the autoscaler).
    Desired,
    Fixed(i32),
}

/// What the children are to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Workloads {
    pub stable_template: Template,
    pub stable_replicas: Replicas,
    /// The canary Deployment's pod count; None: no canary Deployment.
    pub canary_replicas: Option<i32>,
}

/// An event to publish once, at a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// The outcome of one decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: RolloutStatus,
    pub workloads: Workloads,
    pub verdicts: Verdicts,
    pub notice: Option<Notice>,
    /// Look again after this long at the latest (a pause ending, a deadline).
    pub requeue: Option<Duration>,
}

impl Decision {
    /// What the status reports of this decision.
    pub fn release(&self) -> Release<'_> {
        Release {
            status: &self.status,
            verdicts: &self.verdicts,
        }
    }
}

pub const REASON_ROLLED_BACK: &str = "RolledBack";
pub const REASON_RELEASE_FAILED: &str = "ReleaseFailed";
pub const REASON_CANARY: &str = "Canary";
pub const REASON_CANARY_PAUSED: &str = "CanaryPaused";
pub const REASON_PROMOTING: &str = "Promoting";
pub const REASON_WAITING_FOR_DEPENDENCY: &str = "WaitingForDependency";
/// How soon a release waiting for a dependency's looks again: the dependency's progress
/// is not a watch event of this Microservice.
pub const DEPENDENCY_RECHECK: Duration = Duration::from_secs(5);
/// How long a new release with `waitForRelease` dependencies waits before it starts: a
/// dependency edited in the same apply may reach the operator after this Microservice.
pub const DEPENDENCY_SETTLE: Duration = Duration::from_secs(3);

/// Decides one pass. See the module documentation.
pub fn decide(input: &Input<'_>) -> Decision {
    let mut decision = decide_release(input);
    // A canary that is no longer wanted is first scaled to zero, so that its pods go
    // now (terminating gracefully, as any scale-down) rather than whenever the garbage
    // collector gets to its ReplicaSet; the Deployment is deleted once it has no pod.
    let canary = &input.canary;
    if decision.workloads.canary_replicas.is_none()
        && canary.exists
        && (canary.replicas > 0 || canary.spec_replicas != Some(0))
    {
        decision.workloads.canary_replicas = Some(0);
    }
    decision
}

fn decide_release(input: &Input<'_>) -> Decision {
    let mut machine = Machine::new(input);
    machine.adopt_running_template();
    let desired = input.desired.revision;
    match machine.status.stable_revision.clone() {
        // Nothing known to be good yet (a first release, or pods from before rollouts
        // were tracked): the template goes out as a rolling update, with nothing to go
        // back to.
        None => machine.first_release(),
        Some(stable) if stable == desired => machine.steady(),
        Some(_) => {
            let failed = machine.status.failed.as_ref();
            if failed.is_some_and(|f| f.revision == desired)
                && machine.status.revision.as_deref() == Some(desired)
            {
                machine.held()
            } else {
                if machine.status.revision.as_deref() != Some(desired) {
                    if let Some(dependency) = &input.waiting_for {
                        return machine.wait_for(Some(dependency));
                    }
                    if input.waits_for_dependencies && !machine.settled() {
                        return machine.wait_for(None);
                    }
                    machine.start();
                }
                if machine.abort {
                    machine.fail("aborted by `flotilla rollout abort`".to_string())
                } else {
                    match input.settings.strategy {
                        RolloutStrategy::Rolling => machine.rolling(),
                        RolloutStrategy::Canary => machine.canary(),
                    }
                }
            }
        }
    }
}

struct Machine<'a, 'i> {
    input: &'a Input<'i>,
    status: RolloutStatus,
    promote: bool,
    abort: bool,
    total: i32,
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

impl<'a, 'i> Machine<'a, 'i> {
    fn new(input: &'a Input<'i>) -> Self {
        let mut status = input.previous.cloned().unwrap_or_default();
        status.strategy = Some(input.settings.strategy);
        // A promote or abort is acted on once per annotation value.
        let fresh = |value: Option<&str>, handled: &Option<String>| {
            value.is_some_and(|v| handled.as_deref() != Some(v))
        };
        let promote = fresh(input.promote, &status.handled_promote) || input.fast;
        let abort = fresh(input.abort, &status.handled_abort);
        if let Some(value) = input.promote {
            status.handled_promote = Some(value.to_string());
        }
        if let Some(value) = input.abort {
            status.handled_abort = Some(value.to_string());
        }
        if let Some(round) = &input.http
            && status.revision.as_deref() == Some(input.desired.revision)
        {
            let checks = status.http_checks.get_or_insert_with(HttpChecks::default);
            checks.passed += round.passed;
            checks.failed += round.failed;
            checks.last_at = Some(Time(input.now));
            if round.failure.is_some() {
                checks.last_failure = round.failure.clone();
            }
        }
        if let (Some(round), Some(gate)) = (&input.metrics, &input.settings.metrics)
            && status.revision.as_deref() == Some(input.desired.revision)
        {
            let checks = status
                .metrics_checks
                .get_or_insert_with(MetricsChecks::default);
            read_metrics(checks, round, gate, Time(input.now));
        }
        let total = input
            .desired
            .replicas
            .or(input.stable.spec_replicas)
            .unwrap_or(1)
            .max(0);
        Machine {
            input,
            status,
            promote,
            abort,
            total,
        }
    }

    /// Without a stable template on record (the status was lost: restored from a backup
    /// without status, or pruned by an older CRD), a stable Deployment whose every pod
    /// is ready on another revision than the spec's runs a template that was fully
    /// ready: it becomes the stable one, so the release under way can still be rolled
    /// back rather than going out unguarded.
    fn adopt_running_template(&mut self) {
        let stable = &self.input.stable;
        let (None, Some(template), Some(revision)) = (
            &self.status.stable_revision,
            self.input.stable_template,
            stable.revision.as_deref(),
        ) else {
            return;
        };
        let want = stable.spec_replicas.unwrap_or(1);
        if revision == self.input.desired.revision || want < 1 || !stable.complete(revision, want) {
            return;
        }
        self.status.stable_revision = Some(revision.to_string());
        self.status.stable_template = Some(template.clone());
        self.status.stable_image = template["spec"]["containers"][0]["image"]
            .as_str()
            .map(str::to_string);
    }

    fn now(&self) -> Time {
        Time(self.input.now)
    }

    fn since(&self, time: &Option<Time>) -> Duration {
        let Some(Time(then)) = time else {
            return Duration::ZERO;
        };
        let millis = self.input.now.as_millisecond() - then.as_millisecond();
        Duration::from_millis(millis.max(0) as u64)
    }

    fn decision(self, workloads: Workloads, verdicts: Verdicts) -> Decision {
        Decision {
            status: self.status,
            workloads,
            verdicts,
            notice: None,
            requeue: None,
        }
    }

    fn plain() -> Workloads {
        Workloads {
            stable_template: Template::Desired,
            stable_replicas: Replicas::Desired,
            canary_replicas: None,
        }
    }

    fn clear_release(&mut self) {
        let status = &mut self.status;
        status.step = None;
        status.steps = None;
        status.weight = None;
        status.canary_image = None;
        status.release_started_at = None;
        status.step_started_at = None;
        status.paused_since = None;
        status.promoted = false;
        status.http_checks = None;
        status.metrics_checks = None;
        status.callers = Vec::new();
        status.waiting = None;
    }

    /// Adds a release to the history, newest last, forgetting the oldest beyond the
    /// limit. A revision is `Released` once: the passes that find it still stable, or
    /// stable again after a rollback to it, add nothing.
    fn remember(&mut self, outcome: &str, cause: Option<String>) {
        let now = self.now();
        let limit = self.input.settings.history_limit;
        let desired = &self.input.desired;
        let history = &mut self.status.history;
        let repeated = match outcome {
            "Released" => history
                .iter()
                .rev()
                .find(|r| r.outcome == "Released")
                .is_some_and(|r| r.revision == desired.revision),
            _ => history
                .last()
                .is_some_and(|r| r.revision == desired.revision && r.outcome == outcome),
        };
        if repeated {
            return;
        }
        let number = history
            .last()
            .map_or(0, |r| r.number.max(0))
            .saturating_add(1);
        history.push(RevisionRecord {
            number,
            revision: desired.revision.to_string(),
            image: Some(desired.image.to_string()),
            outcome: outcome.to_string(),
            at: Some(now),
            cause,
            config: desired.config.to_vec(),
        });
        let excess = history.len().saturating_sub(limit);
        history.drain(..excess);
    }

    /// Records the desired template as the stable one.
    fn record_stable(&mut self) {
        self.remember("Released", None);
        let desired = &self.input.desired;
        self.status.stable_revision = Some(desired.revision.to_string());
        self.status.stable_image = Some(desired.image.to_string());
        self.status.stable_template = Some(desired.template.clone());
        self.status.revision = Some(desired.revision.to_string());
        self.status.phase = Some(RolloutPhase::Healthy);
    }

    fn first_release(mut self) -> Decision {
        let desired = self.input.desired.revision;
        self.status.revision = Some(desired.to_string());
        self.clear_release();
        if self.input.stable.complete(desired, self.total) {
            self.record_stable();
            self.status.message = Some(format!("{} runs on every pod", self.input.desired.image));
        } else {
            self.status.phase = Some(RolloutPhase::Progressing);
            self.status.message =
                Some("first release: no earlier fully ready template to go back to".to_string());
        }
        self.decision(Self::plain(), Verdicts::default())
    }

    fn steady(mut self) -> Decision {
        self.clear_release();
        let image = self.input.desired.image;
        self.record_stable();
        self.status.message = Some(format!("{image} runs on every pod"));
        self.decision(Self::plain(), Verdicts::default())
    }

    /// A release that failed before and has not changed since.
    fn held(mut self) -> Decision {
        let failed = self.status.failed.clone().unwrap_or_default();
        match self.status.phase {
            Some(RolloutPhase::Failed) => {
                let workloads = self.frozen();
                let verdicts =
                    failed_verdicts(REASON_RELEASE_FAILED, &self.release_failed(&failed));
                self.decision(workloads, verdicts)
            }
            _ => {
                self.status.phase = Some(RolloutPhase::RolledBack);
                let message = self.rolled_back(&failed);
                self.status.message = Some(message.clone());
                let workloads = self.back_to_stable();
                self.decision(workloads, failed_verdicts(REASON_ROLLED_BACK, &message))
            }
        }
    }

    fn rolled_back(&self, failed: &FailedRelease) -> String {
        let new = failed.image.as_deref().unwrap_or("the new template");
        let stable = self
            .status
            .stable_image
            .as_deref()
            .unwrap_or("the stable template");
        // The same image with other settings: the revisions tell them apart.
        let (new, stable) = if new == stable {
            (
                format!("{new} (revision {})", failed.revision),
                format!(
                    "{stable} (revision {})",
                    self.status.stable_revision.as_deref().unwrap_or("?")
                ),
            )
        } else {
            (new.to_string(), stable.to_string())
        };
        format!(
            "rolled back from {new} to {stable}: {}; change the spec or its config to release again",
            failed.cause
        )
    }

    fn release_failed(&self, failed: &FailedRelease) -> String {
        format!(
            "the release of {} failed and is left as it is (autoRollback is off): {}",
            failed.image.as_deref().unwrap_or("the new template"),
            failed.cause
        )
    }

    fn back_to_stable(&self) -> Workloads {
        Workloads {
            stable_template: match &self.status.stable_template {
                Some(template) => Template::Stable(template.clone()),
                None => Template::Desired,
            },
            stable_replicas: Replicas::Desired,
            canary_replicas: None,
        }
    }

    /// Where a failed release without rollback stays: as it was when it failed.
    fn frozen(&self) -> Workloads {
        match (self.input.settings.strategy, self.status.step) {
            (RolloutStrategy::Canary, Some(step))
                if step >= 1 && (step as usize) <= self.input.settings.steps.len() =>
            {
                let weight = self.input.settings.steps[step as usize - 1].weight;
                self.canary_workloads(canary_count(self.total, weight))
            }
            _ => Self::plain(),
        }
    }

    /// Whether the release of the desired revision has waited [`DEPENDENCY_SETTLE`].
    fn settled(&self) -> bool {
        self.status
            .waiting
            .as_ref()
            .filter(|w| w.revision == self.input.desired.revision)
            .is_some_and(|w| self.since(&w.since) >= DEPENDENCY_SETTLE)
    }

    /// A release that may not start yet: the stable template keeps running, and the
    /// release starts once `dependency`'s is done (None: once its dependencies had time
    /// to be seen).
    fn wait_for(mut self, dependency: Option<&str>) -> Decision {
        let desired = self.input.desired.revision;
        if self.status.waiting.as_ref().map(|w| w.revision.as_str()) != Some(desired) {
            self.status.waiting = Some(WaitingRelease {
                revision: desired.to_string(),
                since: Some(self.now()),
            });
        }
        let (message, requeue) = match dependency {
            Some(dependency) => (
                format!(
                    "{} waits for the release of {dependency} (waitForRelease) before its own starts",
                    self.input.desired.image
                ),
                DEPENDENCY_RECHECK,
            ),
            None => (
                format!(
                    "{} waits {}s for its dependencies' releases (waitForRelease) before its own starts",
                    self.input.desired.image,
                    DEPENDENCY_SETTLE.as_secs()
                ),
                DEPENDENCY_SETTLE.saturating_sub(
                    self.since(&self.status.waiting.as_ref().and_then(|w| w.since.clone())),
                ),
            ),
        };
        let workloads = self.back_to_stable();
        self.status.message = Some(message.clone());
        let mut decision = self.decision(
            workloads,
            in_progress(REASON_WAITING_FOR_DEPENDENCY, &message),
        );
        decision.requeue = Some(requeue.max(Duration::from_secs(1)));
        decision
    }

    fn start(&mut self) {
        let settings = self.input.settings;
        let now = self.now();
        let status = &mut self.status;
        status.waiting = None;
        status.revision = Some(self.input.desired.revision.to_string());
        status.phase = Some(RolloutPhase::Progressing);
        status.canary_image = Some(self.input.desired.image.to_string());
        status.release_started_at = Some(now.clone());
        status.step_started_at = Some(now);
        status.paused_since = None;
        status.promoted = false;
        // A round run for another revision says nothing of this one.
        status.http_checks = None;
        status.metrics_checks = None;
        status.callers = if settings.dependents {
            self.input
                .callers
                .iter()
                .take(100)
                .map(|caller| CallerBaseline {
                    name: caller.name.clone(),
                    ready: caller.ready(),
                    restarts: caller.restarts(),
                })
                .collect()
        } else {
            Vec::new()
        };
        match settings.strategy {
            RolloutStrategy::Rolling => {
                status.step = None;
                status.steps = None;
                status.weight = None;
            }
            RolloutStrategy::Canary => {
                status.step = Some(1);
                status.steps = Some(settings.steps.len() as i32);
                status.weight = settings.steps.first().map(|s| s.weight).or(Some(100));
            }
        }
    }

    /// The first gate that fails on the new pods, as a cause naming the pod.
    fn gate_failure(&self) -> Option<String> {
        let revision = self.input.desired.revision;
        let new: Vec<&PodView> = self
            .input
            .pods
            .iter()
            .filter(|pod| pod.revision.as_deref() == Some(revision))
            .collect();
        for pod in &new {
            if let Some((reason, _)) = &pod.failure
                && FAILS_AT_ONCE.contains(&reason.as_str())
            {
                return Some(describe_pod_failure(pod));
            }
        }
        if let (Some(gate), Some(checks)) = (&self.input.settings.http, &self.status.http_checks)
            && gate.success_percent == 100
            && checks.failed > 0
        {
            return Some(self.http_cause(checks));
        }
        if let Some(checks) = &self.status.metrics_checks
            && checks.verdict == Some(GateVerdict::Failing)
        {
            return Some(checks.last.clone().unwrap_or_default());
        }
        if let Some(cause) = self.caller_failure() {
            return Some(cause);
        }
        let restarts: i32 = new.iter().map(|pod| pod.restarts).sum();
        if restarts > self.input.settings.max_restarts {
            let pod = new
                .iter()
                .filter(|pod| pod.restarts > 0)
                .max_by_key(|pod| pod.restarts)?;
            return Some(format!(
                "gate restarts: {restarts} restart(s) of the new pods (at most {} allowed): pod {} restarted {} time(s){}",
                self.input.settings.max_restarts,
                pod.name,
                pod.restarts,
                pod.last_exit
                    .as_ref()
                    .map(|e| format!(", last {e}"))
                    .unwrap_or_default()
            ));
        }
        None
    }

    /// A caller whose pods are less ready than when the release began, or restarted.
    fn caller_failure(&self) -> Option<String> {
        if !self.input.settings.dependents {
            return None;
        }
        for baseline in &self.status.callers {
            let Some(caller) = self.input.callers.iter().find(|c| c.name == baseline.name) else {
                continue;
            };
            let ready = caller.ready();
            if ready < baseline.ready {
                let pod = caller
                    .pods
                    .iter()
                    .find(|p| !p.ready)
                    .map(|p| match &p.failure {
                        Some((reason, _)) => format!("; pod {} not ready ({reason})", p.name),
                        None => format!("; pod {} not ready", p.name),
                    })
                    .unwrap_or_default();
                return Some(format!(
                    "gate dependents: caller {} has {ready}/{} pods ready since the release began{pod}",
                    caller.name, baseline.ready
                ));
            }
            let restarts = caller.restarts();
            if restarts > baseline.restarts {
                let pod = caller
                    .pods
                    .iter()
                    .filter(|p| p.restarts > 0)
                    .max_by_key(|p| p.restarts)
                    .map(|p| format!("; pod {} restarted {} time(s)", p.name, p.restarts))
                    .unwrap_or_default();
                return Some(format!(
                    "gate dependents: caller {}: {} restart(s) since the release began{pod}",
                    caller.name,
                    restarts - baseline.restarts
                ));
            }
        }
        None
    }

    fn http_cause(&self, checks: &HttpChecks) -> String {
        let gate = self.input.settings.http.as_ref();
        format!(
            "gate http {}: {}/{} checks failed ({}% must answer {}){}",
            gate.map_or("", |g| g.path.as_str()),
            checks.failed,
            checks.passed + checks.failed,
            gate.map_or(100, |g| g.success_percent),
            gate.map_or(200, |g| g.expected_status),
            checks
                .last_failure
                .as_ref()
                .map(|f| format!("; last: {f}"))
                .unwrap_or_default()
        )
    }

    /// The HTTP gate over the checks of the current step (or rolling release).
    fn http_verdict(&self) -> HttpVerdict {
        let Some(gate) = &self.input.settings.http else {
            return HttpVerdict::Pass;
        };
        let checks = self.status.http_checks.clone().unwrap_or_default();
        // Read back from the status, which anyone may write: no overflow, no negatives.
        let passed = i64::from(checks.passed.max(0));
        let total = passed + i64::from(checks.failed.max(0));
        if total == 0 {
            HttpVerdict::Wait
        } else if passed * 100 >= i64::from(gate.success_percent) * total {
            HttpVerdict::Pass
        } else {
            HttpVerdict::Fail(self.http_cause(&checks))
        }
    }

    /// The traffic gate over the current step: passing once the canary served enough
    /// requests within the limits; still waiting at the progress deadline fails it.
    fn metrics_verdict(&self) -> HttpVerdict {
        if self.input.settings.metrics.is_none() {
            return HttpVerdict::Pass;
        }
        let checks = self.status.metrics_checks.clone().unwrap_or_default();
        match checks.verdict {
            Some(GateVerdict::Passing) => HttpVerdict::Pass,
            Some(GateVerdict::Failing) => HttpVerdict::Fail(checks.last.unwrap_or_default()),
            _ if self.deadline_passed().is_none() => HttpVerdict::Fail(format!(
                "gate metrics: no verdict within the progress deadline {}: {}",
                seconds(self.input.settings.progress_deadline),
                checks
                    .last
                    .as_deref()
                    .unwrap_or("the pods' metrics were never read")
            )),
            _ => HttpVerdict::Wait,
        }
    }

    /// Why the new pods are not ready yet, for a deadline's cause.
    fn waiting_for(&self, want: i32, ready: i32) -> String {
        let revision = self.input.desired.revision;
        self.input
            .pods
            .iter()
            .filter(|pod| pod.revision.as_deref() == Some(revision) && pod.failure.is_some())
            .map(describe_pod_failure)
            .next()
            .unwrap_or_else(|| format!("{ready}/{want} new pods ready"))
    }

    fn deadline_passed(&self) -> Option<Duration> {
        let deadline = self.input.settings.progress_deadline;
        let elapsed = self.since(&self.status.step_started_at);
        if elapsed > deadline {
            None
        } else {
            Some(deadline - elapsed)
        }
    }

    fn rolling(mut self) -> Decision {
        let desired = self.input.desired.revision;
        if let Some(cause) = self.gate_failure() {
            return self.fail(cause);
        }
        if self.input.stable.complete(desired, self.total) {
            match self.http_verdict() {
                HttpVerdict::Pass => return self.succeed(),
                HttpVerdict::Fail(cause) => return self.fail(cause),
                HttpVerdict::Wait => {}
            }
        }
        let Some(left) = self.deadline_passed() else {
            let cause = format!(
                "progress deadline {} exceeded: {}",
                seconds(self.input.settings.progress_deadline),
                self.waiting_for(self.total, self.input.stable.ready)
            );
            return self.fail(cause);
        };
        self.status.phase = Some(RolloutPhase::Progressing);
        self.status.message = Some(format!(
            "rolling update to {}: {}/{} pods updated",
            self.input.desired.image, self.input.stable.updated, self.total
        ));
        let gated = self.input.settings.http.is_some();
        let mut decision = self.decision(Self::plain(), Verdicts::default());
        decision.requeue = Some(if gated {
            HTTP_CHECK_INTERVAL.min(left + Duration::from_secs(1))
        } else {
            left + Duration::from_secs(1)
        });
        decision
    }

    fn canary_workloads(&self, canary: i32) -> Workloads {
        let canary_ready =
            if self.input.canary.revision.as_deref() == Some(self.input.desired.revision) {
                self.input.canary.ready
            } else {
                0
            };
        let autoscaled = self.input.desired.replicas.is_none();
        Workloads {
            stable_template: match &self.status.stable_template {
                Some(template) => Template::Stable(template.clone()),
                None => Template::Desired,
            },
            // The stable pods go only as the canary's come up ready: never fewer ready
            // pods than asked for. Under an autoscaler the stable count stays its own.
            stable_replicas: if autoscaled {
                Replicas::Desired
            } else {
                Replicas::Fixed(stable_count(self.total, canary, canary_ready))
            },
            canary_replicas: Some(canary),
        }
    }

    fn canary(mut self) -> Decision {
        if self.promote {
            self.status.promoted = true;
        }
        let steps = &self.input.settings.steps;
        let n = steps.len() as i32;
        let desired = self.input.desired.revision;
        if let Some(cause) = self.gate_failure() {
            return self.fail(cause);
        }
        loop {
            let step = self.status.step.unwrap_or(1).clamp(1, n + 1);
            self.status.step = Some(step);
            self.status.steps = Some(n);
            if step > n {
                return self.promoting();
            }
            let weight = steps[step as usize - 1].weight;
            let pause = steps[step as usize - 1].pause;
            self.status.weight = Some(weight);
            let canary = canary_count(self.total, weight);
            let workloads = self.canary_workloads(canary);
            let stable_left = match workloads.stable_replicas {
                Replicas::Fixed(count) => self.input.stable.replicas <= count,
                Replicas::Desired => true,
            };
            let ready = self.input.canary.complete(desired, canary)
                && self.input.stable.current
                && stable_left;
            let what = format!(
                "step {step}/{n}: {weight}% ({canary} of {} pods) on {}",
                self.total, self.input.desired.image
            );
            if !ready {
                let Some(left) = self.deadline_passed() else {
                    let cause = format!(
                        "progress deadline {} exceeded at step {step}/{n} ({weight}%): {}",
                        seconds(self.input.settings.progress_deadline),
                        self.waiting_for(canary, self.input.canary.ready)
                    );
                    return self.fail(cause);
                };
                self.status.phase = Some(RolloutPhase::Progressing);
                let message = format!(
                    "{what}; {}/{canary} new pods ready",
                    self.input.canary.ready.min(canary)
                );
                self.status.message = Some(message.clone());
                let mut decision = self.decision(workloads, in_progress(REASON_CANARY, &message));
                decision.requeue = Some(left + Duration::from_secs(1));
                return decision;
            }
            if self.status.paused_since.is_none() {
                self.status.paused_since = Some(self.now());
            }
            let held_for = self.since(&self.status.paused_since);
            let left = match pause {
                _ if self.status.promoted => None,
                Pause::None => None,
                Pause::For(duration) => duration.checked_sub(held_for).filter(|d| !d.is_zero()),
                Pause::Manual => Some(Duration::MAX),
            };
            // The HTTP gate is judged over the whole step, when it would move on.
            let left = match left {
                Some(left) => Some(left),
                None => match (self.http_verdict(), self.metrics_verdict()) {
                    (HttpVerdict::Fail(cause), _) | (_, HttpVerdict::Fail(cause)) => {
                        return self.fail(cause);
                    }
                    (HttpVerdict::Wait, _) | (_, HttpVerdict::Wait) => Some(HTTP_CHECK_INTERVAL),
                    (HttpVerdict::Pass, HttpVerdict::Pass) => None,
                },
            };
            let Some(left) = left else {
                // On to the next step.
                self.status.step = Some(step + 1);
                self.status.step_started_at = Some(self.now());
                self.status.paused_since = None;
                self.status.http_checks = None;
                self.status.metrics_checks = None;
                continue;
            };
            self.status.phase = Some(RolloutPhase::Paused);
            let message = if left == Duration::MAX {
                format!("{what}; paused until `flotilla rollout promote`")
            } else {
                format!("{what}; paused, {}s left", left.as_secs_f64().ceil() as u64)
            };
            self.status.message = Some(message.clone());
            let gated = self.input.settings.http.is_some() || self.input.settings.metrics.is_some();
            let mut decision =
                self.decision(workloads, in_progress(REASON_CANARY_PAUSED, &message));
            decision.requeue = if gated {
                Some(left.min(HTTP_CHECK_INTERVAL))
            } else {
                (left != Duration::MAX).then_some(left)
            };
            return decision;
        }
    }

    /// After the last step: the stable Deployment takes the new template (a rolling
    /// update, none unavailable) while the canary keeps serving; then the canary goes.
    fn promoting(mut self) -> Decision {
        let desired = self.input.desired.revision;
        self.status.weight = Some(100);
        if self.input.stable.complete(desired, self.total) {
            return self.succeed();
        }
        let Some(left) = self.deadline_passed() else {
            let cause = format!(
                "progress deadline {} exceeded while promoting: {}",
                seconds(self.input.settings.progress_deadline),
                self.waiting_for(self.total, self.input.stable.ready)
            );
            return self.fail(cause);
        };
        let last = self.input.settings.steps.last().map(|step| step.weight);
        let workloads = Workloads {
            stable_template: Template::Desired,
            stable_replicas: Replicas::Desired,
            canary_replicas: last.map(|weight| canary_count(self.total, weight)),
        };
        self.status.phase = Some(RolloutPhase::Promoting);
        let message = format!(
            "promoting {}: {}/{} stable pods updated",
            self.input.desired.image, self.input.stable.updated, self.total
        );
        self.status.message = Some(message.clone());
        let mut decision = self.decision(workloads, in_progress(REASON_PROMOTING, &message));
        decision.requeue = Some(left + Duration::from_secs(1));
        decision
    }

    fn succeed(mut self) -> Decision {
        let took = self.since(&self.status.release_started_at);
        let image = self.input.desired.image.to_string();
        let from = self.status.stable_image.clone().unwrap_or_default();
        self.clear_release();
        self.record_stable();
        self.status.message = Some(format!("{image} runs on every pod"));
        let mut decision = self.decision(Self::plain(), Verdicts::default());
        decision.notice = Some(Notice {
            warning: false,
            reason: "Released",
            note: format!("released {image} (was {from}) in {}", seconds(took)),
        });
        decision
    }

    fn fail(mut self, cause: String) -> Decision {
        let desired = &self.input.desired;
        let failed = FailedRelease {
            revision: desired.revision.to_string(),
            generation: desired.generation,
            image: Some(desired.image.to_string()),
            cause,
            at: Some(self.now()),
        };
        self.status.failed = Some(failed.clone());
        let outcome = if self.input.settings.auto_rollback {
            REASON_ROLLED_BACK
        } else {
            REASON_RELEASE_FAILED
        };
        self.remember(outcome, Some(failed.cause.clone()));
        if self.input.settings.auto_rollback {
            self.status.phase = Some(RolloutPhase::RolledBack);
            let message = self.rolled_back(&failed);
            self.status.message = Some(message.clone());
            self.status.weight = None;
            self.status.paused_since = None;
            let workloads = self.back_to_stable();
            let mut decision =
                self.decision(workloads, failed_verdicts(REASON_ROLLED_BACK, &message));
            decision.notice = Some(Notice {
                warning: true,
                reason: REASON_ROLLED_BACK,
                note: message,
            });
            decision
        } else {
            self.status.phase = Some(RolloutPhase::Failed);
            let message = self.release_failed(&failed);
            self.status.message = Some(message.clone());
            let workloads = self.frozen();
            let mut decision =
                self.decision(workloads, failed_verdicts(REASON_RELEASE_FAILED, &message));
            decision.notice = Some(Notice {
                warning: true,
                reason: REASON_RELEASE_FAILED,
                note: message,
            });
            decision
        }
    }
}

fn describe_pod_failure(pod: &PodView) -> String {
    let (reason, message) = pod.failure.clone().unwrap_or_default();
    let mut text = format!("{reason} on pod {}", pod.name);
    // The message from `pod_failure` starts with the pod's name; keep what follows.
    let detail = message
        .split_once(": ")
        .map_or(message.as_str(), |(_, rest)| rest)
        .trim();
    if !detail.is_empty() {
        text.push_str(&format!(": {detail}"));
    }
    text
}

/// Ready=False, Progressing=True with the step's reason and message.
fn in_progress(reason: &str, message: &str) -> Verdicts {
    Verdicts {
        ready: Some(Verdict::new("False", reason, message)),
        progressing: Some(Verdict::new("True", reason, message)),
        degraded: None,
    }
}

/// A failed release: not ready (the spec as written does not run), not progressing,
/// degraded.
fn failed_verdicts(reason: &str, message: &str) -> Verdicts {
    Verdicts {
        ready: Some(Verdict::new("False", reason, message)),
        progressing: Some(Verdict::new("False", reason, message)),
        degraded: Some(Verdict::new("True", reason, message)),
    }
}

/// The canary's pods at `weight` percent of `total`: at least one, at most all.
pub fn canary_count(total: i32, weight: i32) -> i32 {
    if total <= 0 {
        return 0;
    }
    let count = (i64::from(total) * i64::from(weight.clamp(0, 100)) + 99) / 100;
    (count as i32).clamp(1, total)
}

/// The stable pods while `canary` are wanted and `canary_ready` of them are ready: the
/// stable ones go only as canary ones are ready, and at least one stays while a step
/// holds, so a step never sends all traffic to the new template.
pub fn stable_count(total: i32, canary: i32, canary_ready: i32) -> i32 {
    if total <= 0 {
        return 0;
    }
    (total - canary.min(canary_ready).max(0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MicroserviceSpec, RolloutSpec};
    use serde_json::json;

    /// A thousand releases, every third rolled back: the history stays within its limit,
    /// newest last, numbered on.
    #[test]
    fn the_history_stays_bounded_over_a_thousand_releases() {
        let spec = MicroserviceSpec {
            rollout: Some(RolloutSpec {
                revision_history_limit: Some(7),
                ..RolloutSpec::default()
            }),
            ..MicroserviceSpec::default()
        };
        let settings = Settings::of(&spec);
        let start: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        let mut previous: Option<RolloutStatus> = None;
        for release in 0..1000u64 {
            let revision = format!("r{release}");
            let template = json!({"metadata": {"labels": {"flotilla.dev/revision": revision}}});
            let crash = release % 3 == 2;
            let stable = DeploymentView {
                exists: true,
                current: true,
                spec_replicas: Some(1),
                replicas: 1,
                updated: 1,
                ready: 1,
                available: 1,
                revision: Some(if crash {
                    previous
                        .as_ref()
                        .and_then(|p| p.stable_revision.clone())
                        .unwrap_or_default()
                } else {
                    revision.clone()
                }),
            };
            let pods = if crash {
                vec![PodView {
                    name: format!("app-{release}"),
                    revision: Some(revision.clone()),
                    failure: Some(("CrashLoopBackOff".into(), "app: back-off".into())),
                    ..PodView::default()
                }]
            } else {
                Vec::new()
            };
            let input = Input {
                settings: &settings,
                desired: Desired {
                    revision: &revision,
                    image: "app",
                    template: &template,
                    generation: Some(release as i64),
                    replicas: Some(1),
                    config: &[],
                },
                previous: previous.as_ref(),
                stable,
                stable_template: None,
                canary: DeploymentView::default(),
                pods: &pods,
                promote: None,
                abort: None,
                http: None,
                metrics: None,
                fast: false,
                waiting_for: None,
                callers: &[],
                waits_for_dependencies: false,
                now: start + Duration::from_secs(release * 60),
            };
            let status = decide(&input).status;
            assert!(status.history.len() <= 7, "{}", status.history.len());
            previous = Some(status);
        }
        let history = previous.unwrap().history;
        assert_eq!(history.len(), 7);
        assert_eq!(history.last().unwrap().revision, "r999");
        let numbers: Vec<i64> = history.iter().map(|r| r.number).collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert_eq!(*numbers.last().unwrap(), 1000);
        assert!(history.iter().any(|r| r.outcome == REASON_ROLLED_BACK));
    }

    #[test]
    fn canary_count_takes_any_total_and_weight() {
        assert_eq!(canary_count(4, 25), 1);
        assert_eq!(canary_count(3, 50), 2);
        assert_eq!(canary_count(i32::MAX, 100), i32::MAX);
        assert_eq!(canary_count(i32::MAX, i32::MAX), i32::MAX);
        assert_eq!(canary_count(5, -7), 1);
        assert_eq!(canary_count(0, 50), 0);
    }
}
