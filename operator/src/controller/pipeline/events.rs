//! Kubernetes events (events.k8s.io/v1) on the Microservice. Publishing is best effort
//! and happens in the background (`recorder`): an event never fails nor slows a
//! reconciliation.

use kube::Resource;
use tracing::warn;

use crate::api::Microservice;

use super::apply::{Action, Change};
use crate::controller::context::Context;
use crate::controller::report::recorder::{EventType, Queued};
use crate::status::truncate;

/// What one reconcile changed, as one event per kind of change ("Created ServiceAccount
/// users, Service users, Deployment users"), not one per child: a bulk create would
/// otherwise write more events than children.
pub fn children_changed(ctx: &Context, ms: &Microservice, changes: &[Change]) {
    for (action, reason, verb) in [
        (Action::Created, "Created", "Create"),
        (Action::Updated, "Updated", "Update"),
        (Action::Deleted, "Deleted", "Delete"),
    ] {
        let objects: Vec<String> = changes
            .iter()
            .filter(|change| change.action == action)
            .map(|Change { kind, name, .. }| format!("{kind} {name}"))
            .collect();
        if objects.is_empty() {
            continue;
        }
        let note = format!("{reason} {}", objects.join(", "));
        publish(ctx, ms, EventType::Normal, reason, verb, &note);
    }
}

/// An object provisioning a backing service was created or changed.
pub fn provisioned(ctx: &Context, ms: &Microservice, action: Action, kind: &str, name: &str) {
    let (reason, verb) = match action {
        Action::Created => ("Created", "Create"),
        Action::Updated => ("Updated", "Update"),
        Action::Deleted => ("Deleted", "Delete"),
    };
    let note = format!("{reason} {kind} {name} (a backing service)");
    publish(ctx, ms, EventType::Normal, reason, verb, &note);
}

/// A spec refused before anything was applied; `reason` is the Ready reason
/// (InvalidSpec, ClassNotFound, AmbiguousDefaultClass, PolicyViolation).
pub fn refused(ctx: &Context, ms: &Microservice, reason: &str, message: &str) {
    publish(ctx, ms, EventType::Warning, reason, "Validate", message);
}

pub fn reconcile_failed(ctx: &Context, ms: &Microservice, reason: &str, message: &str) {
    publish(ctx, ms, EventType::Warning, reason, "Reconcile", message);
}

/// A release reached an end: released, rolled back, failed.
pub fn rollout(ctx: &Context, ms: &Microservice, notice: &crate::rollout::machine::Notice) {
    let type_ = if notice.warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    publish(ctx, ms, type_, notice.reason, "Rollout", &notice.note);
}

/// The API server refuses an events.k8s.io/v1 note over 1 KiB, and the whole event with
/// it.
const MAX_NOTE_BYTES: usize = 1024;
/// The API server's limit on the reason.
const MAX_REASON_BYTES: usize = 128;

fn publish(
    ctx: &Context,
    ms: &Microservice,
    type_: EventType,
    reason: &str,
    action: &'static str,
    note: &str,
) {
    let (reason, note) = (
        truncate(reason, MAX_REASON_BYTES),
        truncate(note, MAX_NOTE_BYTES),
    );
    let queued = Queued {
        regarding: ms.object_ref(&()),
        type_,
        reason: reason.clone(),
        action,
        note,
    };
    if !ctx.events.send(queued) {
        ctx.metrics.event_not_published(&reason);
        warn!(%reason, "the event queue is full or closed: event dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_to_the_api_s_limit() {
        let long = "é".repeat(600); // 1,200 bytes
        assert!(truncate(&long, MAX_NOTE_BYTES).len() <= MAX_NOTE_BYTES);
    }
}
