//! The operator on a real cluster: each scenario runs its own `flotilla run --namespace`
//! against its own namespace, on real pods.

use std::collections::BTreeSet;
use std::time::Duration;

use flotilla::api::Microservice;
use flotilla_e2e::steps::{
    CONVERGE, admitted_callers, cluster_ip, condition, describe, env_value, names,
    template_annotation, testapp, wait_gone, wait_microservice, wait_ready,
};
use flotilla_e2e::{Poll, Scenario, apply_yaml, crds_client, kubectl, wait_for, wait_http};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};

const MANAGED: &str = "app.kubernetes.io/managed-by=flotilla";

// 1. CRDs install from crds/ and `kubectl explain` shows the field docs.
#[tokio::test]
async fn crds_install_and_explain_shows_docs() -> anyhow::Result<()> {
    crds_client().await?;
    let spec = wait_for(
        "kubectl explain microservice.spec",
        Duration::from_secs(60),
        || async {
            let out = kubectl(&["explain", "microservice.spec"])?;
            Ok(if out.contains("dependsOn") {
                Poll::Ready(out)
            } else {
                Poll::Pending(out)
            })
        },
    )
    .await?;
    assert!(spec.contains("The Microservices this one calls"), "{spec}");
    assert!(
        spec.contains("image") && spec.contains("-required-"),
        "{spec}"
    );
    let field = kubectl(&["explain", "microservice.spec.autoscaling.minReplicas"])?;
    assert!(field.contains("The fewest pods"), "{field}");
    Ok(())
}

// 2. A Microservice converges: children with the right fields, running pods, Ready with
//    readyReplicas right, and its Service answers from the node.
#[tokio::test]
async fn microservice_converges_and_serves() -> anyhow::Result<()> {
    let s = Scenario::new("converge").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(ns, &testapp("users", "  replicas: 2\n  partOf: shop\n"))?;

    let ms = wait_ready(client, ns, "users").await?;
    let status = ms.status.clone().unwrap_or_default();
    assert_eq!(
        (status.ready_replicas, status.replicas),
        (2, 2),
        "{}",
        describe(&ms)
    );
    assert_eq!(status.replica_summary.as_deref(), Some("2/2"));
    assert_eq!(
        status.url.as_deref(),
        Some(format!("http://users.{ns}.svc.cluster.local:80").as_str())
    );

    let sa = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .get("users")
        .await?;
    assert_eq!(sa.automount_service_account_token, Some(false));

    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("users")
        .await?;
    let labels = deployment.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("flotilla")
    );
    assert_eq!(
        labels.get("app.kubernetes.io/part-of").map(String::as_str),
        Some("shop")
    );
    let owner = &deployment
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Microservice", Some(true))
    );
    let spec = deployment.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let rolling = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(format!("{:?}", rolling.max_unavailable), "Some(Int(0))");
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.service_account_name.as_deref(), Some("users"));
    let pod_security = pod.security_context.unwrap();
    assert_eq!(
        (pod_security.run_as_non_root, pod_security.run_as_user),
        (Some(true), Some(65532))
    );
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        container
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/readyz")
    );
    assert!(
        pod.topology_spread_constraints
            .is_some_and(|t| !t.is_empty())
    );

    let service = Api::<Service>::namespaced(client.clone(), ns)
        .get("users")
        .await?;
    let port = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("http"), 80, Some("TCP"))
    );

    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .get("users")
        .await?;
    assert_eq!(
        policy.spec.unwrap().policy_types,
        Some(vec!["Ingress".to_string(), "Egress".to_string()])
    );
    // Two replicas: a disruption budget; no autoscaling: no autoscaler.
    let budgets = kubectl(&["get", "pdb", "-n", ns, "-o", "name"])?;
    assert!(budgets.contains("users"), "{budgets}");
    assert!(
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
            .get_opt("users")
            .await?
            .is_none()
    );

    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let running = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=users"))
        .await?;
    assert_eq!(running.items.len(), 2);

    let ip = cluster_ip(client, ns, "users").await?;
    let body = wait_http(&format!("http://{ip}:80/"), "the users service", |b| {
        b.contains("\"users\"")
    })
    .await?;
    assert!(body.contains("\"version\""), "{body}");
    Ok(())
}

// 3. A new image rolls the pods and status follows; a bad image gives Ready=False with
//    the pull failure as the reason, while the old pods keep serving.
#[tokio::test]
async fn new_image_rolls_and_bad_image_is_reported() -> anyhow::Result<()> {
    let s = Scenario::new("rollout").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(ns, &testapp("catalog", ""))?;
    wait_ready(client, ns, "catalog").await?;
    let ip = cluster_ip(client, ns, "catalog").await?;
    let url = format!("http://{ip}:80/");
    wait_http(&url, "version v1", |b| b.contains("\"v1\"")).await?;

    apply_yaml(
        ns,
        &testapp("catalog", "").replace("testapp:v1", "testapp:v2"),
    )?;
    let ms = wait_ready(client, ns, "catalog").await?;
    assert_eq!(
        ms.status.unwrap().image.as_deref(),
        Some("flotilla.local/testapp:v2")
    );
    wait_http(&url, "version v2", |b| b.contains("\"v2\"")).await?;

    apply_yaml(
        ns,
        &testapp("catalog", "").replace("testapp:v1", "does-not-exist:v1"),
    )?;
    let ms = wait_microservice(
        client,
        ns,
        "catalog",
        "Ready=False naming the pull failure",
        |ms| {
            condition(ms, "Ready").is_some_and(|c| {
                c.status == "False"
                    && ["ErrImagePull", "ImagePullBackOff"].contains(&c.reason.as_str())
            })
        },
    )
    .await?;
    let ready = condition(&ms, "Ready").unwrap();
    assert!(
        ready.message.contains("catalog-"),
        "the message names the pod: {}",
        ready.message
    );
    assert_eq!(
        condition(&ms, "Degraded").map(|c| c.status.as_str()),
        Some("True")
    );
    // maxUnavailable 0: the v2 pod still serves.
    wait_http(&url, "version v2 during the failed rollout", |b| {
        b.contains("\"v2\"")
    })
    .await?;
    Ok(())
}

// 4. Editing a referenced ConfigMap rolls the pods.
#[tokio::test]
async fn configmap_edit_rolls_pods() -> anyhow::Result<()> {
    let s = Scenario::new("config").await?;
    let (client, ns) = (s.client(), s.ns());
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let mut settings = ConfigMap {
        metadata: ObjectMeta {
            name: Some("settings".into()),
            ..ObjectMeta::default()
        },
        data: Some([("GREETING".to_string(), "hello".to_string())].into()),
        ..ConfigMap::default()
    };
    config_maps
        .create(&PostParams::default(), &settings)
        .await?;
    apply_yaml(
        ns,
        &testapp(
            "greeter",
            "  envFrom:\n  - configMapRef: {name: settings}\n",
        ),
    )?;
    wait_ready(client, ns, "greeter").await?;

    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let before = deployments.get("greeter").await?;
    let hash_before =
        template_annotation(&before, "flotilla.dev/config-hash").expect("a config hash");
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let pods_before = names(&pods, "app.kubernetes.io/instance=greeter").await?;

    settings.data = Some([("GREETING".to_string(), "bonjour".to_string())].into());
    config_maps
        .replace("settings", &PostParams::default(), &settings)
        .await?;

    let after = wait_for("the config hash to change", CONVERGE, || async {
        let deployment = deployments.get("greeter").await?;
        let hash = template_annotation(&deployment, "flotilla.dev/config-hash");
        Ok(if hash.as_deref() != Some(hash_before.as_str()) {
            Poll::Ready(deployment)
        } else {
            Poll::Pending(format!("hash still {hash:?}"))
        })
    })
    .await?;
    assert!(after.metadata.generation > before.metadata.generation);
    wait_ready(client, ns, "greeter").await?;
    wait_for("every old pod to be replaced", CONVERGE, || async {
        let now = names(&pods, "app.kubernetes.io/instance=greeter").await?;
        Ok(
            if now.iter().all(|p| !pods_before.contains(p)) && !now.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("pods {now:?}, before {pods_before:?}"))
            },
        )
    })
    .await?;
    Ok(())
}

// 5. A manual edit to an owned field is reverted; a field Flotilla does not own stays.
#[tokio::test]
async fn drift_on_owned_fields_is_reverted() -> anyhow::Result<()> {
    let s = Scenario::new("drift").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(ns, &testapp("ledger", ""))?;
    wait_ready(client, ns, "ledger").await?;

    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let edit = serde_json::json!({
        "metadata": {"labels": {"team": "payments"}},
        "spec": {"template": {"spec": {"terminationGracePeriodSeconds": 99}}}
    });
    deployments
        .patch("ledger", &PatchParams::default(), &Patch::Merge(&edit))
        .await?;
    let services = Api::<Service>::namespaced(client.clone(), ns);
    let service_edit = serde_json::json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9999, "protocol": "TCP"}]}});
    services
        .patch(
            "ledger",
            &PatchParams::default(),
            &Patch::Merge(&service_edit),
        )
        .await?;

    let reverted = wait_for("the Deployment edit to be reverted", CONVERGE, || async {
        let deployment = deployments.get("ledger").await?;
        let grace = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref()?.termination_grace_period_seconds);
        Ok(if grace == Some(30) {
            Poll::Ready(deployment)
        } else {
            Poll::Pending(format!("grace {grace:?}"))
        })
    })
    .await?;
    let labels = reverted.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("payments"),
        "a label Flotilla does not own stays"
    );
    wait_for("the Service edit to be reverted", CONVERGE, || async {
        let service = services.get("ledger").await?;
        let target = format!(
            "{:?}",
            service
                .spec
                .and_then(|s| s.ports)
                .map(|p| p[0].target_port.clone())
        );
        Ok(if target.contains("8080") {
            Poll::Ready(())
        } else {
            Poll::Pending(target)
        })
    })
    .await?;
    Ok(())
}

// 6. Removing autoscaling deletes the autoscaler and hands replicas back; `kubectl scale`
//    works through the scale subresource when autoscaling is off.
#[tokio::test]
async fn autoscaling_removal_and_scale_subresource() -> anyhow::Result<()> {
    let s = Scenario::new("scale").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(
        ns,
        &testapp(
            "search",
            "  autoscaling: {minReplicas: 2, maxReplicas: 3}\n",
        ),
    )?;
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns);
    wait_for("the autoscaler", CONVERGE, || async {
        Ok(match hpas.get_opt("search").await? {
            Some(_) => Poll::Ready(()),
            None => Poll::Pending("no autoscaler".into()),
        })
    })
    .await?;
    let ms = wait_ready(client, ns, "search").await?;
    assert_eq!(
        ms.status.as_ref().map(|s| s.ready_replicas),
        Some(2),
        "{}",
        describe(&ms)
    );
    // Flotilla creates an autoscaled Deployment at the autoscaler's minimum in its one
    // create apply, and hands the replica count over at its next change: after it, the
    // count is the autoscaler's alone, and no pod went away on the way.
    apply_yaml(
        ns,
        &testapp(
            "search",
            "  - {name: EDITED, value: \"1\"}\n  autoscaling: {minReplicas: 2, maxReplicas: 3}\n",
        ),
    )?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    wait_for("the edit to reach the Deployment", CONVERGE, || async {
        let deployment = deployments.get("search").await?;
        Ok(if env_value(&deployment, "EDITED").is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending("not yet".into())
        })
    })
    .await?;
    assert_eq!(
        deployments.get("search").await?.spec.unwrap().replicas,
        Some(2),
        "the hand-over kept the replica count"
    );
    let managed = kubectl(&[
        "get",
        "deployment",
        "search",
        "-n",
        ns,
        "-o",
        "json",
        "--show-managed-fields",
    ])?;
    let managed: serde_json::Value = serde_json::from_str(&managed)?;
    let flotilla_owns_replicas = managed["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["manager"] == "flotilla" && m["fieldsV1"]["f:spec"].get("f:replicas").is_some());
    assert!(
        !flotilla_owns_replicas,
        "flotilla must not own spec.replicas under autoscaling"
    );

    apply_yaml(ns, &testapp("search", ""))?;
    wait_gone(&hpas, "search").await?;
    kubectl(&["scale", "-n", ns, "microservice/search", "--replicas=3"])?;
    let ms = wait_microservice(client, ns, "search", "3 ready replicas", |ms| {
        ms.status.as_ref().is_some_and(|s| s.ready_replicas == 3)
            && condition(ms, "Ready").is_some_and(|c| c.status == "True")
    })
    .await?;
    assert_eq!(ms.spec.replicas, Some(3));
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("search")
        .await?;
    assert_eq!(deployment.spec.unwrap().replicas, Some(3));
    Ok(())
}

// 7. Deleting the Microservice removes every child.
#[tokio::test]
async fn deletion_garbage_collects_children() -> anyhow::Result<()> {
    let s = Scenario::new("gc").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(
        ns,
        &testapp(
            "reports",
            "  autoscaling: {minReplicas: 2, maxReplicas: 3}\n",
        ),
    )?;
    wait_ready(client, ns, "reports").await?;
    let before = kubectl(&[
        "get",
        "sa,deploy,svc,hpa,pdb,netpol",
        "-n",
        ns,
        "-l",
        MANAGED,
        "-o",
        "name",
    ])?;
    assert_eq!(
        before.lines().count(),
        6,
        "every child exists first: {before}"
    );

    Api::<Microservice>::namespaced(client.clone(), ns)
        .delete("reports", &DeleteParams::default())
        .await?;
    wait_for("every child to be garbage-collected", CONVERGE, || async {
        let left = kubectl(&[
            "get",
            "sa,deploy,svc,hpa,pdb,netpol,rs,pods",
            "-n",
            ns,
            "-l",
            MANAGED,
            "-o",
            "name",
        ])?;
        Ok(if left.trim().is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending(left)
        })
    })
    .await?;
    Ok(())
}

// 8. An invalid spec is refused at admission where the schema can, else reported as
//    InvalidSpec with no change to running children; other Microservices are served.
#[tokio::test]
async fn invalid_specs_are_refused_or_reported() -> anyhow::Result<()> {
    let s = Scenario::new("invalid").await?;
    let (client, ns) = (s.client(), s.ns());

    // The schema refuses an out-of-range port at admission, naming the field.
    let refused = apply_yaml(
        ns,
        &testapp("broken", "").replace("port: 80", "port: 70000"),
    );
    let message = format!(
        "{:#}",
        refused.expect_err("a port over 65535 must be refused")
    );
    assert!(message.contains("spec.ports"), "{message}");

    apply_yaml(ns, &testapp("billing", ""))?;
    wait_ready(client, ns, "billing").await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let before = deployments.get("billing").await?;

    // A cross-field rule: CEL refuses it on 1.25+, the operator on older servers.
    let cross_field = testapp(
        "billing",
        "  autoscaling: {minReplicas: 4, maxReplicas: 2}\n",
    );
    match apply_yaml(ns, &cross_field) {
        Err(error) => assert!(format!("{error:#}").contains("minReplicas"), "{error:#}"),
        Ok(_) => {
            let ms = wait_microservice(client, ns, "billing", "Ready=False InvalidSpec", |ms| {
                condition(ms, "Ready").is_some_and(|c| c.reason == "InvalidSpec")
            })
            .await?;
            let ready = condition(&ms, "Ready").unwrap();
            assert_eq!(ready.status, "False");
            assert!(
                ready.message.contains("spec.autoscaling.minReplicas"),
                "{}",
                ready.message
            );
            let events = kubectl(&[
                "get",
                "events",
                "-n",
                ns,
                "--field-selector",
                "reason=InvalidSpec",
            ])?;
            assert!(events.contains("billing"), "an InvalidSpec event: {events}");
        }
    }

    // The operator keeps serving: a new valid Microservice converges...
    apply_yaml(ns, &testapp("invoices", ""))?;
    wait_ready(client, ns, "invoices").await?;
    // ...and the invalid one's children were left exactly as they were.
    let after = deployments.get("billing").await?;
    assert_eq!(after.metadata.generation, before.metadata.generation);
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns);
    assert!(
        hpas.get_opt("billing").await?.is_none(),
        "nothing half-applied"
    );
    Ok(())
}

// 9. Three Microservices with dependsOn: the env and NetworkPolicies the graph implies,
//    and one pod reaches its dependency by DNS name.
#[tokio::test]
async fn dependency_graph_wires_env_and_policies() -> anyhow::Result<()> {
    let s = Scenario::new("graph").await?;
    let (client, ns) = (s.client(), s.ns());
    // storefront first: its rollout waits until both dependencies exist, rather than
    // starting pods without their URLs.
    apply_yaml(
        ns,
        &testapp(
            "storefront",
            "  dependsOn: [{name: orders}, {name: users, port: http}]\n",
        ),
    )?;
    let held = wait_microservice(
        client,
        ns,
        "storefront",
        "Ready=False DependencyNotFound",
        |ms| condition(ms, "Ready").is_some_and(|c| c.reason == "DependencyNotFound"),
    )
    .await?;
    assert!(
        condition(&held, "Ready")
            .unwrap()
            .message
            .contains("orders"),
        "{}",
        describe(&held)
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    assert!(
        deployments.get_opt("storefront").await?.is_none(),
        "no pods before the dependencies exist"
    );
    apply_yaml(ns, &testapp("users", ""))?;
    apply_yaml(ns, &testapp("orders", "  dependsOn: [{name: users}]\n"))?;
    for name in ["users", "orders", "storefront"] {
        wait_ready(client, ns, name).await?;
    }
    let storefront = wait_microservice(client, ns, "storefront", "DependenciesReady=True", |ms| {
        condition(ms, "DependenciesReady").is_some_and(|c| c.status == "True")
    })
    .await?;
    assert_eq!(
        condition(&storefront, "Ready").map(|c| c.status.as_str()),
        Some("True")
    );

    let front = deployments.get("storefront").await?;
    let domain = format!("{ns}.svc.cluster.local");
    assert_eq!(
        env_value(&front, "ORDERS_URL"),
        Some(format!("http://orders.{domain}:80"))
    );
    assert_eq!(
        env_value(&front, "USERS_ADDR"),
        Some(format!("users.{domain}:80"))
    );
    assert_eq!(
        env_value(&deployments.get("users").await?, "ORDERS_URL"),
        None
    );

    // users admits orders and storefront, on the container port 8080.
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    let users = policies.get("users").await?;
    let users_policy = serde_json::to_value(&users.spec)?;
    let callers: BTreeSet<String> = admitted_callers(&users)
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    assert_eq!(
        callers,
        BTreeSet::from(["orders".to_string(), "storefront".to_string()]),
        "{users_policy}"
    );
    assert!(users_policy.to_string().contains("8080"), "{users_policy}");
    // storefront may call both of its dependencies.
    let front_policy = serde_json::to_value(policies.get("storefront").await?.spec)?.to_string();
    assert!(
        front_policy.contains("\"orders\"") && front_policy.contains("\"users\""),
        "{front_policy}"
    );

    // A pod of storefront calls orders through ORDERS_URL, resolved by the cluster DNS.
    let ip = cluster_ip(client, ns, "storefront").await?;
    wait_http(
        &format!("http://{ip}:80/call/ORDERS_URL"),
        "the orders service via DNS",
        |b| b.contains("\"orders\""),
    )
    .await?;

    // Dropping a dependency updates the policy of the service it named.
    apply_yaml(
        ns,
        &testapp("storefront", "  dependsOn: [{name: orders}]\n"),
    )?;
    wait_for("users to stop admitting storefront", CONVERGE, || async {
        let policy = serde_json::to_value(policies.get("users").await?.spec)?.to_string();
        Ok(if policy.contains("\"storefront\"") {
            Poll::Pending(policy)
        } else {
            Poll::Ready(())
        })
    })
    .await?;
    Ok(())
}

// 10. The operator is killed mid-reconcile (SIGKILL) and converges with no duplicates.
#[tokio::test]
async fn operator_killed_mid_reconcile_converges_without_duplicates() -> anyhow::Result<()> {
    let s = Scenario::without_operator("restart").await?;
    let (client, ns) = (s.client(), s.ns());
    let names_wanted = ["alpha", "bravo", "charlie", "delta"];
    for name in names_wanted {
        apply_yaml(ns, &testapp(name, "  replicas: 2\n"))?;
    }
    let mut operator = s.start_operator(&[])?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    // Kill it as soon as it has started writing children, before it can finish.
    wait_for(
        "the operator to start writing children",
        CONVERGE,
        || async {
            let count = names(
                &Api::<ServiceAccount>::namespaced(client.clone(), ns),
                MANAGED,
            )
            .await?
            .len();
            Ok(if count > 0 {
                Poll::Ready(())
            } else {
                Poll::Pending("no child yet".into())
            })
        },
    )
    .await?;
    operator.kill9()?;
    let partial = names(&deployments, MANAGED).await?;
    operator.restart()?;
    for name in names_wanted {
        wait_ready(client, ns, name).await?;
    }
    assert_eq!(
        names(&deployments, MANAGED).await?,
        names_wanted.to_vec(),
        "one Deployment each (had {partial:?})"
    );
    let replica_sets = names(&Api::<ReplicaSet>::namespaced(client.clone(), ns), MANAGED).await?;
    assert_eq!(
        replica_sets.len(),
        names_wanted.len(),
        "one ReplicaSet each: {replica_sets:?}"
    );
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    wait_for("exactly two pods each", CONVERGE, || async {
        let all = names(&pods, MANAGED).await?;
        Ok(if all.len() == 2 * names_wanted.len() {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("{all:?}"))
        })
    })
    .await?;
    Ok(())
}
