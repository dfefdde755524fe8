//! The Helm chart on a real cluster: the operator it installs reconciles under the chart's
//! RBAC and nothing more, fails over between replicas, upgrades and uninstalls without
//! disturbing the services it runs. Every install is namespaced (`rbac.scope=namespace`):
//! a cluster-wide operator would fight the per-test operators of the other scenarios.
//! What the chart renders, which needs no cluster, is tested in `chart_render.rs`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use flotilla_e2e::helm::{LEASE, Release, TWO_REPLICAS_IN_NAMESPACE, lease_holder, wildcard_rules};
use flotilla_e2e::steps::{testapp, wait_microservice, wait_ready};
use flotilla_e2e::{Poll, Scenario, TestNamespace, apply_yaml, client, kubectl, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::Value;

const LEASE_SECONDS: u64 = 15;

/// `kubectl auth can-i` as the operator's ServiceAccount: true for "yes".
fn can_i(ns: &str, sa: &str, what: &[&str]) -> anyhow::Result<bool> {
    let user = format!("--as=system:serviceaccount:{ns}:{sa}");
    let mut all = vec!["auth", "can-i", user.as_str(), "-n", ns];
    all.extend_from_slice(what);
    // can-i exits 1 for "no": read the answer, not the status.
    match kubectl(&all) {
        Ok(out) => Ok(out.trim() == "yes"),
        Err(e) if e.to_string().contains("failed (exit status: 1)") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the ServiceAccount may `verb` `group`/`resource` in `ns`, by a
/// SubjectAccessReview: `kubectl auth can-i` cannot name a resource the server does not
/// serve (it then asks about a resource literally named `httproutes.gateway...` in the
/// core group), and HTTPRoutes are granted whether or not the Gateway API is installed.
async fn review(
    client: &kube::Client,
    ns: &str,
    sa: &str,
    verb: &str,
    group: &str,
    resource: &str,
) -> anyhow::Result<bool> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{ns}:{sa}")),
            groups: Some(vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".to_string(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_string()),
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

fn pod_log(ns: &str, pod: &str) -> anyhow::Result<String> {
    kubectl(&["logs", "-n", ns, pod])
}

/// Names and uids of a Microservice's pods, and its Deployment's generation.
async fn workload_fingerprint(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> anyhow::Result<(i64, BTreeSet<String>)> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    let generation = deployment.metadata.generation.unwrap_or_default();
    let selector = deployment
        .spec
        .and_then(|s| s.selector.match_labels)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await?;
    let uids = pods
        .items
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    Ok((generation, uids))
}

// 1. Installed in namespaced mode, the operator runs as the chart's ServiceAccount and
//    reconciles a Microservice to Ready (the RBAC suffices), holds nothing more, then
//    upgrades without touching the running service and uninstalls keeping CRD and data.
#[tokio::test]
async fn chart_install_least_privilege_upgrade_uninstall() -> anyhow::Result<()> {
    let client = client().await?;
    let ns = TestNamespace::new(&client, "chart").await?;
    // The CRD exists already when the other scenarios ran (applied from crds/ by kubectl):
    // --take-ownership adopts it; equal values under server-side apply never conflict.
    let mut release = Release::install(
        "flotilla",
        ns.name(),
        &[
            "--take-ownership",
            "--set",
            "rbac.scope=namespace",
            "--set",
            "networkPolicy.enabled=true",
        ],
    )?;
    let pods = release.wait_ready_pods(&client, 1).await?;
    let pod = Api::<Pod>::namespaced(client.clone(), ns.name())
        .get(&pods[0])
        .await?;
    let spec = pod.spec.clone().unwrap_or_default();
    assert_eq!(spec.service_account_name.as_deref(), Some("flotilla"));

    apply_yaml(ns.name(), &testapp("users", ""))?;
    let started = Instant::now();
    wait_ready(&client, ns.name(), "users").await?;
    println!(
        "Microservice users Ready under the chart's RBAC after {:?}",
        started.elapsed()
    );
    let log = pod_log(ns.name(), &pods[0])?;
    for denied in ["forbidden", "Forbidden", " 403"] {
        assert!(
            !log.contains(denied),
            "the operator was denied something:\n{log}"
        );
    }

    // What the ServiceAccount may and may not do.
    let sa = "flotilla";
    for what in [
        &["patch", "deployments"][..],
        &[
            "patch",
            "microservices.flotilla.dev",
            "--subresource=status",
        ],
        &["list", "secrets"],
        &["watch", "configmaps"],
        &["create", "events.events.k8s.io"],
        &["patch", "ingresses.networking.k8s.io"],
        &["delete", "ingresses.networking.k8s.io"],
        // Classes are cluster-scoped: read cluster-wide even in namespace mode.
        &["list", "microserviceclasses.flotilla.dev"],
        &["watch", "microserviceclasses.flotilla.dev"],
    ] {
        assert!(can_i(ns.name(), sa, what)?, "expected yes: {what:?}");
    }
    for what in [
        &["get", "secrets"][..],
        &["get", "configmaps"],
        &["create", "secrets"],
        &["delete", "pods"],
        &["create", "daemonsets"],
        &["create", "clusterroles"],
        &["delete", "nodes"],
        &[
            "update",
            "microservices.flotilla.dev",
            "--subresource=scale",
        ],
        &["get", "leases"],
        &["patch", "deployments", "-n", "default"],
        &["list", "microservices.flotilla.dev", "--all-namespaces"],
        &["patch", "ingresses.networking.k8s.io", "-n", "default"],
        // Classes are the platform team's: never written by the operator, and their
        // status only when classStatus is on (off by default in namespace mode).
        &["create", "microserviceclasses.flotilla.dev"],
        &["patch", "microserviceclasses.flotilla.dev"],
        &[
            "patch",
            "microserviceclasses.flotilla.dev",
            "--subresource=status",
        ],
    ] {
        assert!(!can_i(ns.name(), sa, what)?, "expected no: {what:?}");
    }
    for verb in ["watch", "patch", "delete"] {
        assert!(
            review(
                &client,
                ns.name(),
                sa,
                verb,
                "gateway.networking.k8s.io",
                "httproutes"
            )
            .await?,
            "expected yes: {verb} httproutes"
        );
        assert!(
            review(
                &client,
                ns.name(),
                sa,
                verb,
                "monitoring.coreos.com",
                "servicemonitors"
            )
            .await?,
            "expected yes: {verb} servicemonitors"
        );
    }
    assert!(
        !review(
            &client,
            ns.name(),
            sa,
            "patch",
            "gateway.networking.k8s.io",
            "gateways"
        )
        .await?,
        "expected no: patch gateways (only routes attach to them)"
    );
    let wild = wildcard_rules(&release.manifest()?);
    assert!(wild.is_empty(), "wildcard rules installed: {wild:?}");

    // Upgrade: JSON logs and class status on. The operator pod is replaced; the
    // service's Deployment and pods are not.
    let before = workload_fingerprint(&client, ns.name(), "users").await?;
    release.upgrade(&["--set", "logFormat=json", "--set", "classStatus=true"])?;
    let new_pods = release.wait_ready_pods(&client, 1).await?;
    assert_ne!(new_pods, pods, "helm upgrade did not roll the operator");
    assert!(
        can_i(
            ns.name(),
            sa,
            &[
                "patch",
                "microserviceclasses.flotilla.dev",
                "--subresource=status"
            ]
        )?,
        "classStatus=true grants patch on microserviceclasses/status"
    );
    assert!(!can_i(
        ns.name(),
        sa,
        &["update", "microserviceclasses.flotilla.dev"]
    )?);
    // The new operator works: it takes a new Microservice to Ready.
    apply_yaml(ns.name(), &testapp("orders", ""))?;
    wait_ready(&client, ns.name(), "orders").await?;
    let log = pod_log(ns.name(), &new_pods[0])?;
    for denied in ["forbidden", "Forbidden", " 403"] {
        assert!(
            !log.contains(denied),
            "the upgraded operator was denied something:\n{log}"
        );
    }
    let first = log.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<Value>(first).is_ok(),
        "not a JSON log line: {first}"
    );
    wait_ready(&client, ns.name(), "users").await?;
    let after = workload_fingerprint(&client, ns.name(), "users").await?;
    assert_eq!(
        before, after,
        "the upgrade disturbed users' Deployment generation or pods"
    );

    // Uninstall: the operator goes, the CRD and the Microservices stay.
    release.uninstall()?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    assert!(
        deployments.get_opt("flotilla").await?.is_none(),
        "operator Deployment left"
    );
    kubectl(&["get", "crd", "microservices.flotilla.dev"])?;
    kubectl(&["get", "crd", "microserviceclasses.flotilla.dev"])?;
    let left = kubectl(&["get", "microservices", "-n", ns.name(), "-o", "name"])?;
    assert!(left.contains("users") && left.contains("orders"), "{left}");
    assert!(
        deployments.get_opt("users").await?.is_some(),
        "users' Deployment went with the operator"
    );
    Ok(())
}

// 2. Two replicas: one holds the Lease; deleting it hands over to another replica, which
//    reconciles a change. The handover is measured.
#[tokio::test]
async fn chart_ha_leader_failover() -> anyhow::Result<()> {
    // The CRD from crds/, not from this release: two releases adopting the same
    // cluster-wide CRD in parallel would take it from each other.
    let s = Scenario::without_operator("chart-ha").await?;
    let (client, ns) = (s.client(), s.ns());
    let release = Release::install("flotilla", ns, TWO_REPLICAS_IN_NAMESPACE)?;
    let pods = release.wait_ready_pods(client, 2).await?;
    let leader = wait_for(
        "a leader among the operator pods",
        Duration::from_secs(60),
        || async {
            let holder = lease_holder(ns).unwrap_or_default();
            Ok(if pods.contains(&holder) {
                Poll::Ready(holder)
            } else {
                Poll::Pending(format!("holder {holder:?}, pods {pods:?}"))
            })
        },
    )
    .await?;
    assert!(can_i(ns, "flotilla", &["get", &format!("leases/{LEASE}")])?);
    assert!(!can_i(ns, "flotilla", &["get", "leases/someone-elses"])?);
    apply_yaml(ns, &testapp("users", ""))?;
    wait_ready(client, ns, "users").await?;
    // Only the leader runs the controller.
    let standby = pods.iter().find(|p| **p != leader).unwrap().clone();
    let standby_log = pod_log(ns, &standby)?;
    assert!(
        !standby_log.contains("starting the controller"),
        "the standby runs a controller:\n{standby_log}"
    );
    assert!(pod_log(ns, &leader)?.contains("acquired the leader lease"));

    // Graceful: a drain or rollout deletes the leader (SIGTERM). Hard: the leader is
    // killed without a word (grace period 0, as a node loss or OOM kill), so the standby
    // must wait for the Lease to expire.
    let (leader, _) = failover(client, ns, &leader, "orders", false).await?;
    release.wait_ready_pods(client, 2).await?;
    failover(client, ns, &leader, "payments", true).await?;
    Ok(())
}

/// Deletes the leading pod, applies a new Microservice at once, and measures until another
/// pod holds the Lease and has reconciled it; fails past the lease duration plus 5s.
/// Returns the new leader and the time to reconcile.
async fn failover(
    client: &kube::Client,
    ns: &str,
    leader: &str,
    microservice: &str,
    hard: bool,
) -> anyhow::Result<(String, Duration)> {
    let deleted = Instant::now();
    let mut delete = vec!["delete", "pod", "-n", ns, leader, "--wait=false"];
    if hard {
        delete.extend_from_slice(&["--grace-period=0", "--force"]);
    }
    kubectl(&delete)?;
    apply_yaml(ns, &testapp(microservice, ""))?;
    let new_leader = wait_for(
        "another pod to take the Lease",
        Duration::from_secs(LEASE_SECONDS + 30),
        || async {
            let holder = lease_holder(ns).unwrap_or_default();
            Ok(if !holder.is_empty() && holder != leader {
                Poll::Ready(holder)
            } else {
                Poll::Pending(format!("holder {holder:?}"))
            })
        },
    )
    .await?;
    let takeover = deleted.elapsed();
    wait_microservice(
        client,
        ns,
        microservice,
        "reconciled (status written)",
        |ms| ms.status.is_some(),
    )
    .await?;
    let reconciled = deleted.elapsed();
    wait_ready(client, ns, microservice).await?;
    let ready = deleted.elapsed();
    println!(
        "failover ({}): leader {leader} deleted; {new_leader} took the Lease after {:.1}s, \
         reconciled the new Microservice {microservice} after {:.1}s, Ready after {:.1}s \
         (lease duration {LEASE_SECONDS}s)",
        if hard {
            "hard, grace period 0"
        } else {
            "graceful"
        },
        takeover.as_secs_f64(),
        reconciled.as_secs_f64(),
        ready.as_secs_f64()
    );
    let bound = Duration::from_secs(LEASE_SECONDS + 5);
    assert!(
        reconciled <= bound,
        "the change was reconciled {reconciled:?} after the leader went (bound {bound:?})"
    );
    Ok((new_leader, reconciled))
}
