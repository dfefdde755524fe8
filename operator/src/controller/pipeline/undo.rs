//! The template `flotilla rollout undo` asks for, read when the request is new: the
//! stable template when it is that revision, else the ReplicaSet the stable Deployment
//! kept of it (a list by label, once per request; nothing is cached for undos).

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::api::{Microservice, labels};
use crate::builders::{Children, deployment};
use crate::rollout::undo::{self, Request};

use crate::controller::context::Context;

/// The fresh undo request on `ms` and what was found of its revision; None without one.
pub async fn request(ctx: &Context, ms: &Microservice, children: &Children) -> Option<Request> {
    let previous = ms.status.as_ref().and_then(|s| s.rollout.as_ref());
    let asked = undo::asked(
        ms.annotations()
            .get(labels::UNDO_ANNOTATION)
            .map(String::as_str),
        previous,
    )?;
    let planned = children
        .get(&deployment::KIND)
        .and_then(|child| deployment::revision_of(&child.object));
    let found = if planned == Some(asked.revision.as_str()) {
        Ok(Value::Null)
    } else if let Some(template) = previous
        .filter(|p| p.stable_revision.as_deref() == Some(asked.revision.as_str()))
        .and_then(|p| p.stable_template.clone())
    {
        Ok(template)
    } else {
        kept_template(ctx, ms, &asked.revision).await
    };
    Some(Request { asked, found })
}

/// The pod template of the ReplicaSet the stable Deployment `ms` kept of `revision`.
async fn kept_template(ctx: &Context, ms: &Microservice, revision: &str) -> Result<Value, String> {
    let name = ms.name_any();
    let namespace = ms.namespace().unwrap_or_default();
    if revision.is_empty()
        || !revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(format!("`{revision}` is not a revision"));
    }
    let selector = format!(
        "{}={name},{}={revision}",
        labels::INSTANCE,
        labels::REVISION
    );
    let sets = Api::<ReplicaSet>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("listing ReplicaSets ({selector}): {e}"))?;
    let owned_by_stable = |set: &&ReplicaSet| {
        set.owner_references()
            .iter()
            .any(|o| o.kind == "Deployment" && o.name == name)
    };
    let set = sets
        .items
        .iter()
        .find(owned_by_stable)
        .ok_or_else(|| {
            format!(
                "the Deployment {name} kept no ReplicaSet of it (it keeps as many as rollout.revisionHistoryLimit)"
            )
        })?;
    let template = set
        .spec
        .as_ref()
        .and_then(|spec| spec.template.as_ref())
        .ok_or_else(|| format!("ReplicaSet {} has no pod template", set.name_any()))?;
    serde_json::to_value(template).map_err(|e| e.to_string())
}
