//! Kubernetes events (events.k8s.io/v1) on the Microservice. Publishing is best effort:
//! a failed event never fails a reconciliation.

use kube::Resource;
use kube::runtime::events::{Event, EventType};
use tracing::warn;

use crate::api::Microservice;

use super::apply::{Action, Change};
use super::context::Context;

pub async fn child_changed(ctx: &Context, ms: &Microservice, change: &Change) {
    let (reason, action) = match change.action {
        Action::Created => ("Created", "Create"),
        Action::Updated => ("Updated", "Update"),
        Action::Deleted => ("Deleted", "Delete"),
    };
    let Change { kind, name, .. } = change;
    publish(
        ctx,
        ms,
        EventType::Normal,
        reason,
        action,
        format!("{reason} {kind} {name}"),
    )
    .await;
}

/// A spec refused before anything was applied; `reason` is the Ready reason
/// (InvalidSpec, ClassNotFound, AmbiguousDefaultClass, PolicyViolation).
pub async fn refused(ctx: &Context, ms: &Microservice, reason: &str, message: &str) {
    publish(
        ctx,
        ms,
        EventType::Warning,
        reason,
        "Validate",
        message.to_string(),
    )
    .await;
}

pub async fn reconcile_failed(ctx: &Context, ms: &Microservice, reason: &str, message: &str) {
    publish(
        ctx,
        ms,
        EventType::Warning,
        reason,
        "Reconcile",
        message.to_string(),
    )
    .await;
}

async fn publish(
    ctx: &Context,
    ms: &Microservice,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &ms.object_ref(&())).await {
        warn!(%error, reason, "could not publish an event");
    }
}
