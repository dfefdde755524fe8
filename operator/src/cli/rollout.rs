//! `flotilla rollout status|history|promote|abort|undo NAME`.
//!
//! Promote, abort and undo are annotations on the Microservice (`flotilla.dev/promote`,
//! `flotilla.dev/abort` holding a fresh timestamp, `flotilla.dev/undo` the revision and
//! one); the controller acts on each new value
//! once and records the value it handled in `status.rollout`. Not the status: it is the
//! operator's alone (its forced server-side apply would race a client's write, and
//! write access to `microservices/status` is rightly the operator's). Not the spec:
//! a spec field would be a lasting desired state that GitOps tools revert or replay on
//! every sync, and it would bump the generation. An annotation is metadata: no new
//! generation, any user allowed to `patch` the Microservice may set it, and the
//! recorded value makes it idempotent and safe across operator restarts.

use std::process::ExitCode;

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{RolloutCommand, UndoArgs, block_on, write_stdout};
use crate::api::{Microservice, RevisionRecord, RolloutPhase};
use crate::builders::labels;

pub(super) fn command(command: RolloutCommand) -> ExitCode {
    match block_on(run(&command)) {
        Ok(text) => write_stdout(&text),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` on its Microservice; returns what to print.
async fn run(command: &RolloutCommand) -> Result<String, String> {
    let (RolloutCommand::Status(target)
    | RolloutCommand::History(target)
    | RolloutCommand::Promote(target)
    | RolloutCommand::Abort(target)
    | RolloutCommand::Undo(UndoArgs { target, .. })) = command;
    let name = &target.name;
    // The cluster and namespace as kubectl's flags pick them (kubectl flotilla rollout).
    let (client, context_namespace) = crate::client::client_for(&target.target.target()).await?;
    let namespace = target.namespace.clone().unwrap_or(context_namespace);
    let api: Api<Microservice> = Api::namespaced(client, &namespace);
    let steer = match command {
        RolloutCommand::Status(_) | RolloutCommand::History(_) => {
            let ms = api
                .get(name)
                .await
                .map_err(|e| format!("reading Microservice {namespace}/{name}: {e}"))?;
            return Ok(match command {
                RolloutCommand::Status(_) => describe(&ms),
                _ => history(&ms),
            });
        }
        RolloutCommand::Promote(_) => Steer::Promote,
        RolloutCommand::Abort(_) => Steer::Abort,
        RolloutCommand::Undo(args) => Steer::Undo {
            to_revision: args.to_revision,
        },
    };
    steer_release(&api, name, steer).await
}

/// A request to the controller about a release: what `flotilla rollout promote|abort|undo`
/// and the dashboard's buttons send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    Promote,
    Abort,
    Undo { to_revision: Option<i64> },
}

/// Sets the annotation that asks the controller for `steer` on Microservice `name`;
/// returns what happened, as one or two lines for a person.
pub async fn steer_release(
    api: &Api<Microservice>,
    name: &str,
    steer: Steer,
) -> Result<String, String> {
    let namespace = api.namespace().unwrap_or_default().to_string();
    let ms = api
        .get(name)
        .await
        .map_err(|e| format!("reading Microservice {namespace}/{name}: {e}"))?;
    let now = jiff::Timestamp::now().to_string();
    let (annotation, value, verb) = match steer {
        Steer::Promote => (
            labels::PROMOTE_ANNOTATION,
            now,
            "promote (skip the remaining pauses)",
        ),
        Steer::Abort => (labels::ABORT_ANNOTATION, now, "abort (roll back now)"),
        Steer::Undo { to_revision } => {
            let record = undo_target(&ms, to_revision)?;
            (
                labels::UNDO_ANNOTATION,
                format!("{}@{now}", record.revision),
                "undo (release it again, without pauses)",
            )
        }
    };
    let patch = json!({"metadata": {"annotations": {annotation: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("annotating Microservice {namespace}/{name}: {e}"))?;
    let mut out = format!("{namespace}/{name}: {verb} requested ({annotation}={value})\n");
    if matches!(steer, Steer::Undo { .. }) {
        out.push_str("note: the spec is unchanged; the undo lasts until the spec asks for another revision (`flotilla rollout status` follows it)\n");
    } else if !release_under_way(&ms) {
        out.push_str("note: no release is under way as of the last status; the request applies only to a release in progress when the operator sees it\n");
    }
    Ok(out)
}

/// Which of promote, abort and undo make sense for `ms` now: promote and abort while a
/// release is under way, undo when there is an earlier release to go back to.
pub fn offered(ms: &Microservice) -> (bool, bool, bool) {
    let under_way = release_under_way(ms);
    (under_way, under_way, undo_target(ms, None).is_ok())
}

/// The release an undo goes back to: number `to` of the history, else the last one
/// released before the one running. Only a release that was released (fully ready) is
/// one to go back to.
fn undo_target(ms: &Microservice, to: Option<i64>) -> Result<RevisionRecord, String> {
    let rollout = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    let history = rollout.map(|r| r.history.as_slice()).unwrap_or_default();
    let released = |r: &&RevisionRecord| r.outcome == "Released";
    match to {
        Some(number) => {
            let record = history.iter().find(|r| r.number == number).ok_or_else(|| {
                format!("no release number {number} in the history (`flotilla rollout history`)")
            })?;
            if !released(&record) {
                return Err(format!(
                    "release {number} ({}) was {}, never fully ready: pick a Released one",
                    record.revision, record.outcome
                ));
            }
            Ok(record.clone())
        }
        None => {
            let running = rollout.and_then(|r| r.stable_revision.as_deref());
            history
                .iter()
                .rev()
                .filter(released)
                .find(|r| Some(r.revision.as_str()) != running)
                .cloned()
                .ok_or_else(|| {
                    "no earlier release to go back to in the history (`flotilla rollout history`)"
                        .to_string()
                })
        }
    }
}

fn release_under_way(ms: &Microservice) -> bool {
    let rollout = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    let current = ms.status.as_ref().and_then(|s| s.observed_generation) == ms.metadata.generation;
    !current
        || rollout.and_then(|r| r.phase).is_some_and(|phase| {
            matches!(
                phase,
                RolloutPhase::Progressing | RolloutPhase::Paused | RolloutPhase::Promoting
            )
        })
}

/// The release history, oldest first, as a table; the running revision marked.
pub fn history(ms: &Microservice) -> String {
    let rollout = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    let records = rollout.map(|r| r.history.as_slice()).unwrap_or_default();
    if records.is_empty() {
        return format!(
            "{}: no release recorded yet (status.rollout.history)\n",
            ms.metadata.name.as_deref().unwrap_or_default()
        );
    }
    let stable = rollout.and_then(|r| r.stable_revision.as_deref());
    // The newest release of the stable revision: an undo may have released it before.
    let running_at = records
        .iter()
        .rposition(|r| stable == Some(r.revision.as_str()) && r.outcome == "Released");
    let rows: Vec<[String; 5]> = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let running = running_at == Some(i);
            // Entries from before releases were numbered count by position.
            let number = if record.number > 0 {
                record.number
            } else {
                i as i64 + 1
            };
            [
                number.to_string(),
                format!("{}{}", record.revision, if running { " *" } else { "" }),
                record.image.clone().unwrap_or_default(),
                record.outcome.clone(),
                record
                    .at
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["#", "REVISION", "IMAGE", "OUTCOME", "AT"].map(str::to_string);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String; 5]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    let mut out = line(&header);
    for (row, record) in rows.iter().zip(records) {
        out.push_str(&line(row));
        if let Some(cause) = &record.cause {
            out.push_str(&format!("   cause: {cause}\n"));
        }
    }
    out.push_str("(* the stable revision)\n");
    out
}

/// The rollout of a Microservice, as `flotilla rollout status` prints it.
pub fn describe(ms: &Microservice) -> String {
    use kube::ResourceExt;
    let mut out = format!(
        "Microservice {}/{}\n",
        ms.namespace().unwrap_or_default(),
        ms.name_any()
    );
    let Some(status) = &ms.status else {
        out.push_str("  no status yet: the operator has not seen it\n");
        return out;
    };
    let mut line = |key: &str, value: String| out.push_str(&format!("  {key:<10} {value}\n"));
    let rollout = status.rollout.clone().unwrap_or_default();
    line(
        "strategy",
        rollout
            .strategy
            .map_or("rolling".to_string(), |s| format!("{s:?}").to_lowercase()),
    );
    line(
        "phase",
        rollout
            .phase
            .map_or("unknown".to_string(), |p| format!("{p:?}")),
    );
    if let (Some(step), Some(steps)) = (rollout.step, rollout.steps) {
        let shown = if step > steps {
            "promoting".to_string()
        } else {
            format!("{step}/{steps}")
        };
        line(
            "step",
            format!("{shown} (weight {}%)", rollout.weight.unwrap_or_default()),
        );
    }
    if let Some(image) = &rollout.stable_image {
        line(
            "stable",
            format!(
                "{image} (revision {})",
                rollout.stable_revision.as_deref().unwrap_or("?")
            ),
        );
    }
    if let Some(image) = &rollout.canary_image {
        line(
            "new",
            format!(
                "{image} (revision {})",
                rollout.revision.as_deref().unwrap_or("?")
            ),
        );
    }
    if let Some(message) = &rollout.message {
        line("message", message.clone());
    }
    if let Some(undo) = &rollout.undo {
        line(
            "undo",
            format!(
                "revision {} runs in place of the spec's ({}) until the spec changes",
                undo.revision, undo.spec_revision
            ),
        );
    }
    if let Some(failed) = &rollout.failed {
        line(
            "failed",
            format!(
                "{} (revision {}, generation {}){}: {}",
                failed.image.as_deref().unwrap_or("?"),
                failed.revision,
                failed.generation.map_or("?".to_string(), |g| g.to_string()),
                failed
                    .at
                    .as_ref()
                    .map(|t| format!(" at {}", t.0))
                    .unwrap_or_default(),
                failed.cause
            ),
        );
    }
    for condition in &status.conditions {
        line(
            &condition.type_,
            format!(
                "{} {}: {}",
                condition.status, condition.reason, condition.message
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_paused_canary_and_its_last_failure() {
        let ms: Microservice = serde_saphyr::from_str(
            r#"
apiVersion: flotilla.dev/v1alpha1
kind: Microservice
metadata: {name: storefront, namespace: shop, generation: 4}
spec: {image: "storefront:2"}
status:
  observedGeneration: 4
  conditions:
  - {type: Ready, status: "False", reason: CanaryPaused, message: "step 1/2: 25%", lastTransitionTime: "2026-11-29T12:00:00Z"}
  rollout:
    strategy: canary
    phase: Paused
    step: 1
    steps: 2
    weight: 25
    revision: r2
    stableRevision: r1
    stableImage: "storefront:1"
    canaryImage: "storefront:2"
    message: "step 1/2: 25% (1 of 4 pods) on storefront:2; paused, 8s left"
    failed: {revision: r0, generation: 2, image: "storefront:bad", cause: "CrashLoopBackOff on pod storefront-canary-x"}
"#,
        )
        .unwrap();
        let text = describe(&ms);
        for expected in [
            "Microservice shop/storefront",
            "strategy   canary",
            "phase      Paused",
            "step       1/2 (weight 25%)",
            "stable     storefront:1 (revision r1)",
            "new        storefront:2 (revision r2)",
            "paused, 8s left",
            "failed     storefront:bad (revision r0, generation 2): CrashLoopBackOff on pod storefront-canary-x",
            "Ready      False CanaryPaused: step 1/2: 25%",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        assert!(release_under_way(&ms));
    }

    #[test]
    fn history_lists_releases_marks_the_stable_one_and_says_why_one_failed() {
        let ms: Microservice = serde_saphyr::from_str(
            r#"
apiVersion: flotilla.dev/v1alpha1
kind: Microservice
metadata: {name: users, namespace: shop}
spec: {image: "users:2"}
status:
  rollout:
    stableRevision: r1
    history:
    - {revision: r0, image: "users:0", outcome: Released, at: "2026-12-07T10:00:00Z"}
    - {revision: r1, image: "users:1", outcome: Released, at: "2026-12-07T11:00:00Z"}
    - {revision: r2, image: "users:2", outcome: RolledBack, at: "2026-12-07T12:00:00Z", cause: "CrashLoopBackOff on pod users-canary-x"}
"#,
        )
        .unwrap();
        assert_eq!(
            history(&ms),
            "\
#  REVISION  IMAGE    OUTCOME     AT
1  r0        users:0  Released    2026-12-07T10:00:00Z
2  r1 *      users:1  Released    2026-12-07T11:00:00Z
3  r2        users:2  RolledBack  2026-12-07T12:00:00Z
   cause: CrashLoopBackOff on pod users-canary-x
(* the stable revision)
"
        );
    }
}
