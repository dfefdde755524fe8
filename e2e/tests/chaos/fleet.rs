//! What the scenarios share: many Microservices at once, operators with leader election,
//! the lease holder, and the check that every Microservice converged with nothing
//! missing, orphaned or duplicated.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla::api::Microservice;
use flotilla_e2e::steps::{env_value, run_args, testapp};
use flotilla_e2e::{Operator, Poll, apply_yaml, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Api, ResourceExt};

/// `count` Microservices named `{prefix}-{i}` with `VERSION=1`, applied in one request.
pub fn apply_fleet(namespace: &str, prefix: &str, count: usize, replicas: u32) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    let documents: Vec<String> = names
        .iter()
        .map(|name| {
            testapp(
                name,
                &format!("  - {{name: VERSION, value: \"1\"}}\n  replicas: {replicas}\n"),
            )
        })
        .collect();
    apply_yaml(namespace, &documents.join("---\n")).expect("applying the fleet");
    names
}

/// Waits until `count` Deployments exist in the namespace.
pub async fn wait_deployments(
    client: &kube::Client,
    namespace: &str,
    count: usize,
    deadline: Duration,
) -> anyhow::Result<()> {
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace);
    wait_for(format!("{count} Deployments"), deadline, || async {
        let found = deployments
            .list_metadata(&Default::default())
            .await?
            .items
            .len();
        Ok(if found == count {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("{found} of {count}"))
        })
    })
    .await
}

/// An operator for `namespace` with leader election on the Lease `lease` there, as the
/// identity `identity`, with `env` on top, authenticated as the chart's release
/// `release` (its ServiceAccount of that name).
pub fn elected_operator(
    namespace: &str,
    identity: &str,
    lease: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Operator> {
    elected_operator_as(
        namespace,
        identity,
        lease,
        env,
        flotilla_e2e::identity::RELEASE,
    )
}

/// [`elected_operator`] as the chart's release `release`.
pub fn elected_operator_as(
    namespace: &str,
    identity: &str,
    lease: &str,
    env: &[(&str, &str)],
    release: &str,
) -> anyhow::Result<Operator> {
    let mut args = run_args(namespace);
    args.extend([
        "--leader-elect",
        "--lease-namespace",
        namespace,
        "--lease-name",
        lease,
        "--lease-duration-seconds",
        "10",
    ]);
    let mut env = env.to_vec();
    env.push(("POD_NAME", identity));
    Operator::start_as_release(&format!("{namespace}-{identity}"), release, &args, &env)
}

/// Who holds the Lease now (None when nobody does or it does not exist yet).
pub async fn lease_holder(
    client: &kube::Client,
    namespace: &str,
    lease: &str,
) -> anyhow::Result<Option<String>> {
    let lease = Api::<Lease>::namespaced(client.clone(), namespace)
        .get_opt(lease)
        .await?;
    Ok(lease
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// Waits until `identity` holds the Lease.
pub async fn wait_holder(
    client: &kube::Client,
    namespace: &str,
    lease: &str,
    identity: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    wait_for(
        format!("{identity} to hold the lease {lease}"),
        deadline,
        || async {
            let holder = lease_holder(client, namespace, lease).await?;
            Ok(if holder.as_deref() == Some(identity) {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("holder {holder:?}"))
            })
        },
    )
    .await
}

/// What the cluster should hold once everything converged: every Microservice in
/// `expected` (name → its VERSION) Ready on its current generation with that VERSION in
/// its Deployment, and no child of any other (`gone`) Microservice.
pub struct Expected {
    pub versions: BTreeMap<String, String>,
    pub gone: Vec<String>,
}

/// The child kinds the fleet's Microservices get, to look for orphans and duplicates.
fn child_resources() -> [ApiResource; 4] {
    [
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<NetworkPolicy>(&()),
    ]
}

/// Sets the fleet's `VERSION` env var of the Microservice `name` to `version`.
pub async fn set_version(
    microservices: &Api<Microservice>,
    name: &str,
    version: &str,
) -> anyhow::Result<()> {
    let patch = serde_json::json!({"spec": {"env": [{"name": "VERSION", "value": version}]}});
    microservices
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Waits until the Deployment `name` carries `VERSION=version`.
pub async fn wait_version(
    deployments: &Api<Deployment>,
    name: &str,
    version: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    wait_for(
        format!("{name}'s Deployment to carry VERSION={version}"),
        deadline,
        || async {
            let seen = env_value(&deployments.get(name).await?, "VERSION");
            Ok(if seen.as_deref() == Some(version) {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("VERSION {seen:?}"))
            })
        },
    )
    .await
}

/// One pass of the convergence check: Ok(None) when converged, else what is not yet.
pub async fn divergence(
    client: &kube::Client,
    namespace: &str,
    expected: &Expected,
) -> anyhow::Result<Option<String>> {
    let mut problems = Vec::new();
    let microservices = Api::<Microservice>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let by_name: BTreeMap<String, &Microservice> =
        microservices.iter().map(|ms| (ms.name_any(), ms)).collect();
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let deployment_of: BTreeMap<String, &Deployment> =
        deployments.iter().map(|d| (d.name_any(), d)).collect();
    let mut missing = 0;
    let mut stale = 0;
    let mut not_current = 0;
    for (name, version) in &expected.versions {
        let Some(ms) = by_name.get(name) else {
            problems.push(format!("Microservice {name} missing"));
            continue;
        };
        let current = ms.status.as_ref().is_some_and(|s| {
            s.observed_generation == ms.metadata.generation
                && s.condition("Ready").is_some_and(|c| c.status == "True")
        });
        if !current {
            not_current += 1;
        }
        match deployment_of.get(name) {
            None => missing += 1,
            Some(d) if env_value(d, "VERSION").as_deref() != Some(version.as_str()) => stale += 1,
            Some(_) => {}
        }
    }
    for (what, count) in [
        ("Deployments missing", missing),
        ("Deployments with an old VERSION", stale),
        ("statuses not Ready on the current generation", not_current),
    ] {
        if count > 0 {
            problems.push(format!("{count} {what}"));
        }
    }
    // Orphans (children of deleted Microservices) and duplicates (two children of one
    // kind for one Microservice), over every child kind.
    let instance = flotilla::api::labels::INSTANCE;
    let mut orphans = 0;
    let mut duplicates = 0;
    for resource in child_resources() {
        let objects = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource)
            .list_metadata(&ListParams::default().labels(flotilla::api::labels::MANAGED_SELECTOR))
            .await?
            .items;
        let mut per_owner = BTreeMap::<String, usize>::new();
        for object in &objects {
            let owner = object.labels().get(instance).cloned().unwrap_or_default();
            *per_owner.entry(owner).or_default() += 1;
        }
        for (owner, count) in per_owner {
            if expected.gone.contains(&owner) {
                orphans += count;
            }
            if count > 1 {
                duplicates += count - 1;
            }
        }
    }
    if orphans > 0 {
        problems.push(format!("{orphans} orphaned children"));
    }
    if duplicates > 0 {
        problems.push(format!("{duplicates} duplicated children"));
    }
    Ok((!problems.is_empty()).then(|| problems.join(", ")))
}

/// Waits for [`divergence`] to find nothing.
pub async fn wait_converged(
    client: &kube::Client,
    namespace: &str,
    expected: &Expected,
    deadline: Duration,
) -> anyhow::Result<()> {
    wait_for("the fleet to converge", deadline, || async {
        Ok(match divergence(client, namespace, expected).await? {
            None => Poll::Ready(()),
            Some(problems) => Poll::Pending(problems),
        })
    })
    .await
}
