//! One reconciliation, as a pipeline: read the world, resolve the class (validate, merge
//! its defaults, check its policy), build the desired children (pure), apply them,
//! compute and write the status.
//!
//! A refused spec (InvalidSpec, ClassNotFound, AmbiguousDefaultClass, PolicyViolation)
//! stops the pipeline before anything is applied: the children keep running as they
//! were, the status says why, and nothing is retried until the spec or the class changes.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use crate::api::{Microservice, MicroserviceStatus};
use crate::builders::{self, ConfigKind, labels};
use crate::class::{self, Refusal};

use super::context::{Context, FIELD_MANAGER};
use super::error::{Error, Result};
use super::status::{self, Cause, Observed, READY};
use super::{apply, events, world};

/// How often a settled Microservice is looked at again even without any watch event.
/// Watches catch drift at once; this only bounds how long a missed event can last.
const RESYNC: Duration = Duration::from_secs(600);
/// Re-check sooner while pods are still coming up, for status that follows closely.
const WHILE_PROGRESSING: Duration = Duration::from_secs(30);

pub async fn reconcile(ms: Arc<Microservice>, ctx: Arc<Context>) -> Result<Action> {
    // Before every cache has listed once, a missing child may only be unlisted yet:
    // deciding on it would re-create or prune for nothing.
    if ctx.stores.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let _timer = ctx.metrics.reconcile_timer();
    let namespace = ms.namespace().ok_or(Error::MissingNamespace)?;
    let name = ms.name_any();
    debug!(%namespace, %name, "reconciling");

    let classes = ctx.stores.classes.state();
    let resolved = class::resolve(&ms, classes.iter().map(|c| c.as_ref()));
    let class_name = class::class_name(&ms, classes.iter().map(|c| c.as_ref()));
    // The world is read for the spec that would run: the class's defaults merged in.
    let effective = resolved.as_ref().map_or(ms.as_ref(), |r| &r.effective);
    let mut world = world::read(
        effective,
        ctx.capabilities,
        &ctx.stores.microservices,
        |config| match config.kind {
            ConfigKind::ConfigMap => {
                world::cached_version(&ctx.stores.config_maps, &config.name, &namespace)
            }
            ConfigKind::Secret => {
                world::cached_version(&ctx.stores.secrets, &config.name, &namespace)
            }
        },
    );

    let mut external_url = None;
    let mut refused = resolved.as_ref().err().cloned();
    if let Ok(resolved) = &resolved {
        world.build.class = resolved.settings.clone();
        external_url = builders::expose::external_url(&resolved.effective, &world.build);
        if !ms.spec.paused {
            match builders::build(&resolved.effective, &world.build) {
                Ok(children) => {
                    // Pods started without a dependency's `<NAME>_URL` would only crash
                    // and roll again once it appears: the rollout waits for every
                    // dependency.
                    let hold_rollout = !world.missing_dependencies.is_empty();
                    apply::apply_all(&ctx, &resolved.effective, &children, hold_rollout).await?;
                }
                // The builders only fail on what validation should have refused: treat
                // it the same way, as a spec to fix, not an error to retry.
                Err(error) => refused = Some(Refusal::InvalidSpec(error.to_string())),
            }
        }
    }

    let deployment = ctx
        .stores
        .deployments
        .get(&ObjectRef::new(&name).within(&namespace));
    let pods = ctx.stores.pods.state();
    let own_pods = pods
        .iter()
        .filter(|pod| pod.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|pod| pod.labels().get(labels::INSTANCE) == Some(&name))
        .map(|pod| pod.as_ref())
        .collect();
    let observed = Observed {
        deployment: deployment.as_deref(),
        pods: own_pods,
        missing_dependencies: &world.missing_dependencies,
        unready_dependencies: &world.unready_dependencies,
        missing_config: &world.missing_config,
        refused: refused
            .as_ref()
            .map(|refusal| Cause::new(refusal.reason(), refusal.to_string())),
        paused: ms.spec.paused,
        class_name,
        external_url,
    };
    let status = status::compute(&ms, &observed, Time(jiff::Timestamp::now()));
    if ms.status.as_ref() != Some(&status) {
        if let Some(refusal) = &refused
            && !already_reported(&ms, refusal)
        {
            let (reason, message) = (refusal.reason(), refusal.to_string());
            warn!(%namespace, %name, %reason, %message, "spec refused");
            ctx.metrics.error(match refusal {
                Refusal::InvalidSpec(_) => "invalid_spec",
                Refusal::ClassNotFound(_) => "class_not_found",
                Refusal::AmbiguousDefaultClass(_) => "ambiguous_default_class",
                Refusal::PolicyViolation(_) => "policy_violation",
            });
            events::refused(&ctx, &ms, reason, &message).await;
        }
        write_status(&ctx, &ms, &status).await?;
    }
    ctx.reset_backoff(&ObjectRef::from_obj(ms.as_ref()));

    // A refusal waits for a change to the spec (a watch event) or to its class (the
    // class index triggers every user).
    Ok(if refused.is_some() {
        Action::await_change()
    } else if status.is_ready() {
        Action::requeue(RESYNC)
    } else {
        Action::requeue(WHILE_PROGRESSING)
    })
}

/// Transient failures retry with a per-object exponential backoff.
pub fn error_policy(ms: Arc<Microservice>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(error.metric_label());
    let delay = ctx.next_backoff(&ObjectRef::from_obj(ms.as_ref()));
    warn!(namespace = ?ms.namespace(), name = %ms.name_any(), %error, retry_in = ?delay, "reconcile failed");
    let (ctx_for_event, ms_for_event, message) = (ctx.clone(), ms.clone(), error.to_string());
    let reason = match error {
        Error::Kube(_) => "ApplyFailed",
        _ => "ReconcileFailed",
    };
    tokio::spawn(async move {
        events::reconcile_failed(&ctx_for_event, &ms_for_event, reason, &message).await
    });
    Action::requeue(delay)
}

/// A refusal is announced once per generation, reason and message, not on every pass.
fn already_reported(ms: &Microservice, refusal: &Refusal) -> bool {
    let message = refusal.to_string();
    ms.status.as_ref().is_some_and(|status| {
        status.conditions.iter().any(|c| {
            c.type_ == READY
                && c.reason == refusal.reason()
                && c.message == message
                && c.observed_generation == ms.metadata.generation
        })
    })
}

async fn write_status(ctx: &Context, ms: &Microservice, status: &MicroserviceStatus) -> Result<()> {
    let namespace = ms.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<Microservice> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = json!({
        "apiVersion": Microservice::api_version(&()),
        "kind": Microservice::kind(&()),
        "status": status,
    });
    api.patch_status(
        &ms.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
