//! Config snapshots (`builders::config_snapshot`): before the apply, create the copies the
//! planned pod template reads that do not exist yet; after it, delete this Microservice's
//! copies that no kept release reads.
//!
//! A copy is named after its source's uid and resourceVersion, so it is taken only from
//! that version: a source edited since the cache saw it waits for the watch event that
//! plans the next copy. Which copies exist is read from the ConfigMap metadata cache,
//! which keeps every snapshot: a settled Microservice sends nothing.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{Microservice, RolloutStatus};
use crate::builders::{FIELD_MANAGER, config_snapshot, deployment};
use crate::plan::{Plan, Snapshot};

use super::apply::Failure;
use crate::controller::context::Context;

/// What taking the snapshots did.
#[derive(Debug, Default)]
pub struct Taken {
    pub created: Vec<String>,
    /// A copy the API server refused: the Deployment is held and the status says why.
    pub failure: Option<Failure>,
    /// A source changed since the cache saw it: look again soon.
    pub retry: bool,
}

/// Creates the missing copies of an accepted, unpaused Microservice's plan. Until every
/// copy exists the Deployment is held: its pods would not start without them.
pub async fn take(ctx: &Context, ms: &Microservice, plan: &mut Plan) -> Taken {
    let mut taken = Taken::default();
    let Ok(build) = &mut plan.outcome else {
        return taken;
    };
    if ms.spec.paused {
        return taken;
    }
    let namespace = ms.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    for snapshot in &build.snapshots {
        if exists(ctx, &namespace, &snapshot.copy) {
            continue;
        }
        match take_one(&api, ms, snapshot).await {
            Ok(true) => taken.created.push(snapshot.copy.clone()),
            Ok(false) => taken.retry = true,
            Err(message) => {
                taken.failure.get_or_insert(Failure {
                    kind: "ConfigMap",
                    name: snapshot.copy.clone(),
                    message,
                });
            }
        }
    }
    if taken.retry || taken.failure.is_some() {
        build.children.hold(&deployment::KIND);
    }
    taken
}

/// Copies one source; false when the source is not at the version the copy is named
/// after (or is gone): the plan is outdated.
async fn take_one(
    api: &Api<ConfigMap>,
    ms: &Microservice,
    snapshot: &Snapshot,
) -> Result<bool, String> {
    // A list selecting one name, not a get: the operator reads ConfigMaps with the list
    // and watch its caches already need.
    let by_name = ListParams::default().fields(&format!("metadata.name={}", snapshot.source));
    let listed = api
        .list(&by_name)
        .await
        .map_err(|error| format!("reading ConfigMap {}: {error}", snapshot.source))?;
    let Some(source) = listed.items.into_iter().next() else {
        return Ok(false);
    };
    if source.resource_version().as_deref() != Some(snapshot.resource_version.as_str()) {
        return Ok(false);
    }
    let copy = config_snapshot::copy(ms, &source, &snapshot.copy);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    match api.create(&params, &copy).await {
        Ok(_) => {
            info!(namespace = ?ms.namespace(), microservice = %ms.name_any(), copy = %snapshot.copy, "config snapshot taken");
            Ok(true)
        }
        // Taken by an earlier pass the cache has not shown yet: the same content.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(true),
        Err(error) => Err(error.to_string()),
    }
}

fn exists(ctx: &Context, namespace: &str, name: &str) -> bool {
    ctx.caches
        .config_maps
        .get(&ObjectRef::new(name).within(namespace))
        .is_some()
}

/// The copies a Microservice's releases read: the planned template's, those of the
/// releases its history keeps, of its stable template and of an undo in effect, and
/// those its Deployments' live templates name (a pod of theirs may restart at any time).
pub fn kept(
    planned: &[Snapshot],
    rollout: &RolloutStatus,
    live: &[&serde_json::Value],
) -> BTreeSet<String> {
    let mut keep: BTreeSet<String> = planned.iter().map(|s| s.copy.clone()).collect();
    for record in &rollout.history {
        keep.extend(record.config.iter().cloned());
    }
    let templates = rollout
        .stable_template
        .iter()
        .chain(rollout.undo.iter().map(|undo| &undo.template))
        .chain(live.iter().copied());
    for template in templates {
        keep.extend(config_snapshot::referenced_config_maps(template));
    }
    keep
}

/// Deletes the copies `ms` owns that are not in `keep`; returns those deleted. A copy
/// that cannot be deleted now is left for a later pass.
pub async fn prune(ctx: &Context, ms: &Microservice, keep: &BTreeSet<String>) -> Vec<String> {
    let (Some(namespace), Some(uid)) = (ms.namespace(), ms.meta().uid.as_deref()) else {
        return Vec::new();
    };
    let stale: Vec<String> = ctx
        .caches
        .config_maps
        .state()
        .iter()
        .filter(|cm| cm.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|cm| {
            cm.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(config_snapshot::SNAPSHOT_LABEL))
        })
        .filter(|cm| cm.owner_references().iter().any(|o| o.uid == uid))
        .map(|cm| cm.name_any())
        .filter(|name| !keep.contains(name))
        .collect();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut deleted = Vec::new();
    for name in stale {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(name),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => {
                warn!(%namespace, microservice = %ms.name_any(), copy = %name, %error, "deleting a config snapshot");
            }
        }
    }
    deleted
}
