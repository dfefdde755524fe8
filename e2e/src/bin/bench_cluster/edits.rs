//! Edit latency: an edit's PATCH, when the bench's watches saw it reach the Microservice
//! and its Deployment, and the legs in between from the audit log.

use std::time::Instant;

use anyhow::Context;
use flotilla::api::Microservice;
use flotilla_e2e::fault::Write;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::EDIT_VAR;
use crate::report::Report;
use crate::watch::{Shared, wait_edit};

/// Milliseconds from `from` to `to`.
fn millis(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

pub fn percentiles(samples: &[f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    // Nearest rank.
    let rank =
        |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    (rank(0.50), rank(0.99))
}

/// An edit: when it was sent (on the bench's clock and the wall clock the audit log
/// uses), and when its PATCH returned.
pub struct SentEdit {
    pub name: String,
    pub value: u64,
    pub sent: Instant,
    pub sent_at: Timestamp,
    pub patched: Instant,
}

/// The legs of an edit, in order: their keys in the JSON and their labels in the table.
const LEGS: [(&str, &str); 5] = [
    ("patch", "the edit's own PATCH (the API server alone)"),
    // The API server's watch delivery, which the operator's watch waits for as well.
    (
        "watch_to_operator",
        "then until a watch of Microservices (the bench's) sees the edit",
    ),
    // The operator's own work, give or take the two watches' difference.
    (
        "operator_work",
        "then until the operator's Deployment apply reaches the API server",
    ),
    (
        "deployment_apply",
        "then the API server's handling of that apply",
    ),
    (
        "watch_back",
        "then until the bench's watch sees the Deployment",
    ),
];

/// How long each of [`LEGS`] took for one edit, in ms.
pub struct EditPath([f64; LEGS.len()]);

/// Finds the operator's first Deployment write for the edit in the audit log. The bench
/// runs on the API server's machine: the wall clocks are one.
fn edit_path(writes: &[Write], timed: &TimedEdit) -> Option<EditPath> {
    let edit = &timed.sent;
    let apply = writes
        .iter()
        .filter(|w| w.resource == "deployments" && w.subresource.is_empty())
        .filter(|w| w.name == edit.name && w.received >= edit.sent_at)
        .min_by_key(|w| w.received)?;
    let since_sent =
        |t: Timestamp| (t.as_microsecond() - edit.sent_at.as_microsecond()) as f64 / 1e3;
    let patched = millis(edit.sent, edit.patched);
    let (received, completed) = (since_sent(apply.received), since_sent(apply.completed));
    let heard = millis(edit.sent, timed.heard?);
    Some(EditPath([
        patched,
        heard - patched,
        received - heard,
        completed - received,
        millis(edit.sent, timed.seen) - completed,
    ]))
}

/// Sets EDIT to `value` in the Microservice `name`'s spec.
pub async fn edit(api: Api<Microservice>, name: String, value: u64) -> anyhow::Result<SentEdit> {
    let patch =
        serde_json::json!({"spec": {"env": [{"name": EDIT_VAR, "value": value.to_string()}]}});
    let (sent, sent_at) = (Instant::now(), Timestamp::now());
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("editing {name}"))?;
    Ok(SentEdit {
        name,
        value,
        sent,
        sent_at,
        patched: Instant::now(),
    })
}

/// An edit and when the bench's watches saw it: on the Microservice (None if the watch
/// skipped that version) and on its Deployment.
pub struct TimedEdit {
    pub sent: SentEdit,
    pub heard: Option<Instant>,
    pub seen: Instant,
}

/// Waits for the edit to reach its Deployment.
pub async fn timed(observed: &Shared, sent: SentEdit) -> anyhow::Result<TimedEdit> {
    let seen = wait_edit(observed, &sent.name, sent.value).await?;
    let heard = observed
        .lock()
        .expect("observed lock")
        .spec_edits
        .get(&sent.name)
        .and_then(|history| history.iter().find(|(value, _)| *value == sent.value))
        .map(|(_, at)| *at);
    Ok(TimedEdit { sent, heard, seen })
}

/// From each edit's PATCH to its Deployment seen, in ms.
pub fn latencies(edits: &[TimedEdit]) -> Vec<f64> {
    edits
        .iter()
        .map(|edit| millis(edit.sent.sent, edit.seen))
        .collect()
}

/// The legs of each edit whose Deployment apply is in the audit log's `writes`.
pub fn edit_paths(writes: &[Write], edits: &[TimedEdit]) -> Vec<EditPath> {
    edits
        .iter()
        .filter_map(|edit| edit_path(writes, edit))
        .collect()
}

/// Rows for where the edits' time went, leg by leg (p50 and p99 under load, p99 idle),
/// and the samples in the details (`edit_<leg>_<when>_ms`).
pub fn edit_legs(r: &mut Report, section: &'static str, when: &str, paths: &[EditPath]) {
    let label = when.replace('_', " ");
    for (leg, (key, what)) in LEGS.iter().enumerate() {
        let samples: Vec<f64> = paths.iter().map(|path| path.0[leg]).collect();
        let (p50, p99) = percentiles(&samples);
        if when != "idle" {
            r.row(
                section,
                format!("{label}: {what}, p50 of {}", samples.len()),
                p50,
                "ms",
            );
        }
        r.row(
            section,
            format!("{label}: {what}, p99 of {}", samples.len()),
            p99,
            "ms",
        );
        r.details
            .insert(format!("edit_{key}_{when}_ms"), serde_json::json!(samples));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(&samples), (50.0, 99.0));
        let fifty: Vec<f64> = (1..=50).map(f64::from).collect();
        // With 50 samples the p99 is the slowest.
        assert_eq!(percentiles(&fifty), (25.0, 50.0));
    }
}
