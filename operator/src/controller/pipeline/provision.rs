//! Backing services provisioned from objects (a class's `template`): each applied as a
//! child the Microservice owns, where the server serves its kind, then waited on until
//! its ready condition is True. Until then the backing service counts as missing: the
//! Deployment is held and `BackingServicesReady` names what it waits for.
//!
//! The object is read once per reconcile (a GET, no watch: the kinds are the classes'
//! to choose at run time), and applied only when what Flotilla wants of it changed. A
//! binding that goes away leaves the object in place: a database outlives an edit, and
//! the owner reference deletes it with the Microservice.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;
use tracing::info;

use crate::api::Microservice;
use crate::builders::{FIELD_MANAGER, deployment, provisioned};
use crate::class::{Binding, Missing, MissingBackingService, TemplateBinding};
use crate::plan::Plan;

use super::apply::{APPLIED_HASH_ANNOTATION, Action, content_hash};
use super::ownership::{Ownership, ownership};
use crate::controller::context::Context;

/// How soon a reconcile waiting on a provisioned object looks again: its controller's
/// progress triggers nothing here (no watch on a kind only the class names).
pub const WAIT_RECHECK: Duration = Duration::from_secs(5);

/// What provisioning did: objects created or changed, and whether it waits on one.
#[derive(Debug, Default)]
pub struct Provisioned {
    pub changes: Vec<(Action, String, String)>,
    pub waiting: bool,
}

/// Applies the provisioned backing services of an accepted, unpaused Microservice and
/// adds those not ready to the plan's missing backing services, holding its Deployment.
pub async fn provision(ctx: &Context, ms: &Microservice, plan: &mut Plan) -> Provisioned {
    let mut done = Provisioned::default();
    if plan.outcome.is_err() || ms.spec.paused {
        return done;
    }
    let namespace = ms.namespace().unwrap_or_default();
    for binding in plan.backing.clone() {
        let Some(template) = binding.template() else {
            continue;
        };
        let missing = match provision_one(ctx, ms, &namespace, template).await {
            Ok((change, None)) => {
                done.changes.extend(change);
                continue;
            }
            Ok((change, Some(reason))) => {
                done.changes.extend(change);
                reason
            }
            Err(reason) => reason,
        };
        done.waiting = true;
        if !binding.optional {
            hold(plan, &binding, missing);
        }
    }
    done
}

/// Holds the Deployment for a backing service whose object is not ready.
fn hold(plan: &mut Plan, binding: &Binding, reason: String) {
    // Its Secret is missing too, most likely: the object not ready is the cause to name.
    plan.missing_backing.retain(|m| m.name != binding.name);
    plan.missing_backing.push(MissingBackingService {
        name: binding.name.clone(),
        type_: binding.type_.clone(),
        missing: Missing::Provisioner(reason),
    });
    if let Ok(build) = &mut plan.outcome {
        build.children.hold(&deployment::KIND);
    }
}

/// Applies one object if needed. Ok with what changed and, when it is not ready yet,
/// why; Err with why it cannot be applied or read (all of them end up in the status).
async fn provision_one(
    ctx: &Context,
    ms: &Microservice,
    namespace: &str,
    template: &TemplateBinding,
) -> Result<(Option<(Action, String, String)>, Option<String>), String> {
    let TemplateBinding {
        api_version,
        kind,
        name,
        ..
    } = template;
    let resource = ctx
        .template_kinds
        .resource(&ctx.client, api_version, kind)
        .await
        .map_err(|e| format!("discovering {kind} ({api_version}): {e}"))?
        .ok_or_else(|| {
            format!("kind {kind} ({api_version}) is not served by this cluster: install its CRD, or ask the platform team to change the class")
        })?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let forbidden = |verb: &str| {
        format!(
            "the operator may not {verb} {kind} {name}: the chart value backingServiceKinds grants it"
        )
    };
    let live = match api.get_opt(name).await {
        Ok(live) => live.map(|o| serde_json::to_value(o).unwrap_or_default()),
        Err(kube::Error::Api(status)) if status.code == 403 => return Err(forbidden("read")),
        Err(e) => return Err(format!("reading {kind} {name}: {e}")),
    };
    if let Some(live) = &live
        && let Ownership::Foreign { managed_by } = ownership(live, ms)
    {
        return Err(format!(
            "{kind} {name} exists and is not this Microservice's ({managed_by}): Flotilla leaves it alone"
        ));
    }
    let mut desired = provisioned::object(ms, template);
    let hash = content_hash(&desired);
    desired["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = Value::String(hash.clone());
    let unchanged = live.as_ref().is_some_and(|live| {
        live["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].as_str() == Some(hash.as_str())
    });
    ctx.metrics.apply(kind, !unchanged);
    let (object, change) = match live {
        Some(live) if unchanged => (live, None),
        live => {
            let applied = api
                .patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&desired),
                )
                .await
                .map_err(|e| match e {
                    kube::Error::Api(status) if status.code == 403 => forbidden("apply"),
                    e => format!("applying {kind} {name}: {e}"),
                })?;
            let action = if live.is_some() {
                Action::Updated
            } else {
                Action::Created
            };
            info!(microservice = %ms.name_any(), %namespace, %kind, %name, ?action, "provisioned");
            (
                serde_json::to_value(applied).unwrap_or_default(),
                Some((action, kind.clone(), name.clone())),
            )
        }
    };
    Ok((change, not_ready(&object, template)))
}

/// Why the object is not ready, from its ready condition; None when it is.
fn not_ready(object: &Value, template: &TemplateBinding) -> Option<String> {
    let conditions = object["status"]["conditions"].as_array();
    let condition = conditions
        .into_iter()
        .flatten()
        .find(|c| c["type"].as_str() == Some(template.ready_condition.as_str()));
    match condition {
        Some(c) if c["status"] == "True" => None,
        Some(c) => Some(format!(
            "{} {} is not {} yet ({}: {})",
            template.kind,
            template.name,
            template.ready_condition,
            c["reason"].as_str().unwrap_or("no reason"),
            c["message"].as_str().unwrap_or("")
        )),
        None => Some(format!(
            "{} {} has no {} condition yet",
            template.kind, template.name, template.ready_condition
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> TemplateBinding {
        serde_json::from_value::<crate::api::TemplateProvisioner>(json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "spec": {"instances": 1}
        }))
        .map(|t| TemplateBinding {
            api_version: t.api_version,
            kind: t.kind,
            name: "orders-db".into(),
            spec: t.spec,
            ready_condition: "Ready".into(),
            secret: crate::class::SecretBinding {
                secret: "orders-db-app".into(),
                env: Vec::new(),
                endpoint: None,
            },
        })
        .unwrap()
    }

    #[test]
    fn the_ready_condition_decides_and_its_reason_is_quoted() {
        let t = template();
        assert_eq!(
            not_ready(&json!({"status": {}}), &t).as_deref(),
            Some("Cluster orders-db has no Ready condition yet")
        );
        assert_eq!(
            not_ready(
                &json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Bootstrapping", "message": "1 of 1 instances starting"}]}}),
                &t
            )
            .as_deref(),
            Some("Cluster orders-db is not Ready yet (Bootstrapping: 1 of 1 instances starting)")
        );
        assert_eq!(
            not_ready(
                &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                &t
            ),
            None
        );
    }
}
