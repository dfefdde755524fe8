//! The operator with exactly the chart's RBAC (as every scenario runs it: see
//! `flotilla_e2e::identity`): what a user's install must do with it, and what it says when
//! a verb is missing. Each scenario has its own namespace and operator.

use std::time::{Duration, Instant};

use flotilla::api::Microservice;
use flotilla_e2e::fault::metric;
use flotilla_e2e::steps::{
    CONVERGE, condition, describe, sharded, start_sharded_operator, testapp, wait_microservice,
    wait_ready, wait_reason,
};
use flotilla_e2e::{Operator, Poll, Scenario, apply_yaml, kubectl, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::Value;

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                format!("KEY_{}", name.replace('-', "_").to_uppercase()),
                "v".into(),
            )]
            .into(),
        ),
        ..ConfigMap::default()
    }
}

// 1. A ConfigMap applied before its Microservice (the demo's storefront): the operator
//    reads it with the verbs the chart grants, and the Microservice becomes Ready.
#[tokio::test]
async fn env_from_a_config_map_applied_before_the_microservice() -> anyhow::Result<()> {
    let s = Scenario::without_operator("rbac-before").await?;
    let (client, ns) = (s.client(), s.ns());
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &config_map("shop-config"))
        .await?;
    let _operator = s.start_operator(&[])?;
    apply_yaml(
        ns,
        &testapp(
            "shop",
            "  envFrom:\n  - configMapRef: {name: shop-config}\n",
        ),
    )?;
    wait_ready(client, ns, "shop").await?;
    Ok(())
}

// 2. A Secret referenced before it exists: SecretNotFound, then Ready once it is created
//    (the metadata watch sees it; no get on Secrets is granted or needed).
#[tokio::test]
async fn a_secret_referenced_before_it_exists() -> anyhow::Result<()> {
    let s = Scenario::new("rbac-secret").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(
        ns,
        &testapp(
            "vault",
            "  - name: TOKEN\n    valueFrom:\n      secretKeyRef: {name: vault-token, key: token}\n",
        ),
    )?;
    wait_reason(client, ns, "vault", "False", "SecretNotFound").await?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("vault-token".into()),
            ..ObjectMeta::default()
        },
        string_data: Some([("token".to_string(), "s3cret".to_string())].into()),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await?;
    wait_ready(client, ns, "vault").await?;
    Ok(())
}

// 3. A restart with 20 referenced ConfigMaps: the new process's caches hold none of them
//    until they change, so each is read by name; every Microservice stays Ready and no
//    pod is rolled (the config hash is the same).
#[tokio::test]
async fn a_restart_with_twenty_referenced_config_maps() -> anyhow::Result<()> {
    let s = Scenario::without_operator("rbac-restart").await?;
    let (client, ns) = (s.client(), s.ns());
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let services = ["alpha", "beta"];
    for service in services {
        let mut refs = String::from("  envFrom:\n");
        for i in 0..10 {
            let name = format!("{service}-{i}");
            config_maps
                .create(&PostParams::default(), &config_map(&name))
                .await?;
            refs.push_str(&format!("  - configMapRef: {{name: {name}}}\n"));
        }
        apply_yaml(ns, &testapp(service, &refs))?;
    }
    let mut operator = s.start_operator(&[])?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let mut generations = Vec::new();
    for service in services {
        wait_ready(client, ns, service).await?;
        generations.push(deployments.get(service).await?.metadata.generation);
    }
    operator.restart()?;
    // The restarted process has reconciled both when its reconcile counter covers them.
    let addr = wait_for("the restarted operator's metrics", CONVERGE, || async {
        Ok(match operator.metrics_addr() {
            Some(addr)
                if metric(&addr, "flotilla_reconcile_duration_seconds_count").await? >= 2.0 =>
            {
                Poll::Ready(addr)
            }
            other => Poll::Pending(format!("metrics at {other:?}")),
        })
    })
    .await?;
    for (service, before) in services.iter().zip(&generations) {
        let ms = wait_ready(client, ns, service).await?;
        let after = deployments.get(service).await?.metadata.generation;
        assert_eq!(
            after,
            *before,
            "{service}: the Deployment changed after a restart: {}",
            describe(&ms)
        );
    }
    let forbidden = metric(
        &addr,
        "flotilla_reconcile_errors_total{reason=\"read_forbidden\"}",
    )
    .await?;
    assert_eq!(forbidden, 0.0, "{}", operator.log_tail(40));
    Ok(())
}

/// The rules of the chart's Role or ClusterRole, with `list` taken off ConfigMaps.
fn without_config_map_list(role: &Value) -> Value {
    let mut role = role.clone();
    for rule in role["rules"].as_array_mut().into_iter().flatten() {
        let config_maps = rule["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r == "configmaps"));
        if config_maps && let Some(verbs) = rule["verbs"].as_array_mut() {
            verbs.retain(|v| v != "list");
        }
    }
    role
}

/// Replaces a Role or ClusterRole with `role` (as `kubectl get -o json` gave it, less
/// its resourceVersion, so a later restore is not refused).
fn put_role(role: &Value) -> anyhow::Result<()> {
    let mut role = role.clone();
    role["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    flotilla_e2e::kubectl_with_stdin(&["replace", "-f", "-"], &role.to_string())?;
    Ok(())
}

/// The Warning events with `reason` on the Microservice `name`.
fn warnings(namespace: &str, name: &str, reason: &str) -> anyhow::Result<Vec<String>> {
    let selector = format!("involvedObject.name={name},reason={reason},type=Warning");
    let events: Value = serde_json::from_str(&kubectl(&[
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        &selector,
        "-o",
        "json",
    ])?)?;
    Ok(events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect())
}

/// The chart's role loses `list` on ConfigMaps: a Microservice whose ConfigMap the caches
/// do not hold shows Ready=False Forbidden naming the verb, the resource and the
/// namespace within 30 s, with a Warning event and a metric; restoring the role recovers
/// it without a restart.
async fn a_missing_verb_is_reported_and_recovers(
    s: &Scenario,
    role: &[&str],
    operator: &Operator,
    shard: Option<&str>,
) -> anyhow::Result<()> {
    let (client, ns) = (s.client(), s.ns());
    let original: Value = serde_json::from_str(&kubectl(&[role, &["-o", "json"]].concat())?)?;
    put_role(&without_config_map_list(&original))?;
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &config_map("late-config"))
        .await?;
    let applied = Instant::now();
    let late = testapp(
        "late",
        "  envFrom:\n  - configMapRef: {name: late-config}\n",
    );
    let late = match shard {
        Some(shard) => sharded(&late, "late", shard),
        None => late,
    };
    apply_yaml(ns, &late)?;
    let refused = wait_for(
        "Ready=False Forbidden on late",
        Duration::from_secs(30),
        || async {
            let ms = Api::<Microservice>::namespaced(client.clone(), ns)
                .get("late")
                .await?;
            Ok(
                match condition(&ms, "Ready").filter(|c| c.reason == "Forbidden") {
                    Some(ready) => Poll::Ready(ready.message.clone()),
                    None => Poll::Pending(describe(&ms)),
                },
            )
        },
    )
    .await?;
    eprintln!(
        "Ready=False Forbidden {:.1} s after the apply: {refused}",
        applied.elapsed().as_secs_f64()
    );
    let wanted = format!("may not list configmaps in namespace {ns}");
    assert!(refused.contains(&wanted), "{refused}");
    assert!(refused.contains("ConfigMap late-config"), "{refused}");
    let events = wait_for("a Warning event Forbidden", CONVERGE, || async {
        let found = warnings(ns, "late", "Forbidden")?;
        Ok(if found.is_empty() {
            Poll::Pending("none yet".into())
        } else {
            Poll::Ready(found)
        })
    })
    .await?;
    assert!(events[0].contains(&wanted), "{events:?}");
    let addr = operator.metrics_addr().expect("metrics address logged");
    let counted = metric(
        &addr,
        "flotilla_reconcile_errors_total{reason=\"read_forbidden\"}",
    )
    .await?;
    assert!(counted >= 1.0, "read_forbidden counted {counted}");

    put_role(&original)?;
    let restored = Instant::now();
    wait_microservice(
        client,
        ns,
        "late",
        "Ready=True after the role is restored",
        Microservice::is_ready,
    )
    .await?;
    eprintln!(
        "Ready=True {:.1} s after the role was restored (no restart)",
        restored.elapsed().as_secs_f64()
    );
    Ok(())
}

// 4. rbac.scope=namespace: the Role `flotilla` in the namespace.
#[tokio::test]
async fn a_verb_missing_from_the_role_is_reported_then_recovered() -> anyhow::Result<()> {
    let s = Scenario::new("rbac-role").await?;
    let role = ["get", "role", "flotilla", "-n", s.ns()];
    a_missing_verb_is_reported_and_recovers(&s, &role, s.operator(), None).await
}

// 5. rbac.scope=cluster: the ClusterRole `flotilla-<namespace>`, for an operator of every
//    namespace, sharded by a label so that it leaves the other tests alone.
#[tokio::test]
async fn a_verb_missing_from_the_cluster_role_is_reported_then_recovered() -> anyhow::Result<()> {
    let s = Scenario::without_operator("rbac-cluster").await?;
    let operator = start_sharded_operator(s.ns(), &[])?;
    let role_name = format!("flotilla-{}", s.ns());
    let role = ["get", "clusterrole", role_name.as_str()];
    a_missing_verb_is_reported_and_recovers(&s, &role, &operator, Some(s.ns())).await
}

// 6. An HTTP gate where the chart grants no pods/proxy (httpGates=false, the default):
//    Ready=False GateUnavailable naming the field and the value, and nothing applied.
#[tokio::test]
async fn an_http_gate_without_pods_proxy_is_refused_before_anything_is_applied()
-> anyhow::Result<()> {
    let s = Scenario::new("rbac-gate").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(
        ns,
        &testapp(
            "gated",
            "  rollout:\n    gates:\n      http: {path: /healthz}\n",
        ),
    )?;
    let ms = wait_reason(client, ns, "gated", "False", "GateUnavailable").await?;
    let message = &condition(&ms, "Ready").expect("Ready").message;
    assert!(
        message.contains("spec.rollout.gates.http") && message.contains("httpGates=true"),
        "{message}"
    );
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt("gated")
        .await?;
    assert!(
        deployment.is_none(),
        "a Deployment was applied: {deployment:?}"
    );
    Ok(())
}

// 7. A child no longer wanted is deleted with the chart's verbs: the Service, once the
//    Microservice has no ports left (the RBAC audit holds every granted verb to a use);
//    the Deployment's default probes on those ports go too, and it is applied again.
#[tokio::test]
async fn a_service_no_longer_wanted_is_deleted() -> anyhow::Result<()> {
    let s = Scenario::new("rbac-prune").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(ns, &testapp("worker", ""))?;
    let services = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), ns);
    wait_for("the Service worker", CONVERGE, || async {
        Ok(match services.get_opt("worker").await? {
            Some(_) => Poll::Ready(()),
            None => Poll::Pending("no Service yet".into()),
        })
    })
    .await?;
    kubectl(&[
        "patch",
        "microservice",
        "worker",
        "-n",
        ns,
        "--type",
        "json",
        "-p",
        r#"[{"op": "remove", "path": "/spec/ports"}]"#,
    ])?;
    flotilla_e2e::steps::wait_gone(&services, "worker").await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    wait_for("the Deployment without probes", CONVERGE, || async {
        let deployment = serde_json::to_value(deployments.get("worker").await?)?;
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        Ok(
            if container["livenessProbe"].is_null() && container["readinessProbe"].is_null() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!(
                    "probes: {} {}",
                    container["livenessProbe"], container["readinessProbe"]
                ))
            },
        )
    })
    .await?;
    wait_ready(client, ns, "worker").await?;
    Ok(())
}
