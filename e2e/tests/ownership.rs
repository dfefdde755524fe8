//! What Flotilla will not touch, on a real cluster: objects it did not create (kubectl's,
//! a Helm release's, the namespace's default ServiceAccount) are conflicts to report,
//! never children to take over; it adopts only when the owner asks; names and keys the
//! API server would refuse are refused first; a child the API server refuses stops the
//! rest of the order; callers from another namespace need the target's consent; and the
//! selectors of Flotilla's pods change without restarting any pod.

use std::collections::BTreeMap;

use flotilla::api::Microservice;
use flotilla_e2e::operator::binary;
use flotilla_e2e::steps::{
    CONVERGE, admitted_callers, condition, ensure_crds, names, sharded, start_sharded_operator,
    testapp, wait_gone, wait_microservice, wait_ready, wait_reason,
};
use flotilla_e2e::{
    Poll, Scenario, TestNamespace, apply_yaml, client, kubectl, kubectl_with_stdin, wait_for,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Pod, ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, ObjectMeta};
use kube::{Api, ResourceExt};
use serde_json::Value;

const ADOPT: &str = "flotilla.dev/adopt";

/// The Warning events published on a Microservice with this reason.
async fn warnings(
    client: &kube::Client,
    ns: &str,
    name: &str,
    reason: &str,
) -> anyhow::Result<Vec<Event>> {
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    Ok(events
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some(reason)
                && e.type_.as_deref() == Some("Warning")
        })
        .collect())
}

/// Waits for a Warning event of this reason on the Microservice, within the API's limits.
async fn wait_warning(
    client: &kube::Client,
    ns: &str,
    name: &str,
    reason: &str,
) -> anyhow::Result<Event> {
    wait_for(
        format!("a Warning event {reason} on {name}"),
        CONVERGE,
        || async {
            let found = warnings(client, ns, name, reason).await?;
            Ok(match found.into_iter().next() {
                Some(event) => Poll::Ready(event),
                None => Poll::Pending("no such event yet".into()),
            })
        },
    )
    .await
}

async fn delete_microservice(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let api = Api::<Microservice>::namespaced(client.clone(), ns);
    api.delete(name, &DeleteParams::background()).await?;
    wait_gone(&api, name).await
}

/// A PodDisruptionBudget as JSON, in whichever version the server serves (kubectl
/// picks it: policy/v1beta1 on 1.20, policy/v1 from 1.21).
fn budget(ns: &str, name: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&kubectl(&[
        "get", "pdb", name, "-n", ns, "-o", "json",
    ])?)?)
}

/// Flotilla never wrote to the object: no write under its field managers (the object's
/// other controllers, such as the token controller on a ServiceAccount, may have
/// written), no owner reference, none of its labels or annotations.
fn assert_untouched(meta: &ObjectMeta) {
    let name = meta.name.as_deref().unwrap_or("?");
    let managers: Vec<&str> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    assert!(
        !managers.iter().any(|m| m.starts_with("flotilla")),
        "{name} written by {managers:?}"
    );
    assert!(
        meta.owner_references.is_none(),
        "{name}: {:?}",
        meta.owner_references
    );
    let labels = meta.labels.clone().unwrap_or_default();
    assert_ne!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("flotilla"),
        "{name}: {labels:?}"
    );
    let annotations = meta.annotations.clone().unwrap_or_default();
    assert!(
        !annotations.keys().any(|k| k.starts_with("flotilla.dev/")),
        "{name}: {annotations:?}"
    );
}

fn ready_message(ms: &Microservice) -> String {
    condition(ms, "Ready").map_or_else(String::new, |c| c.message.clone())
}

// 1. Objects made by `kubectl create` with the Microservice's name are conflicts: no
//    write, no owner reference, a ChildConflict naming each, an event; the other
//    children are still reconciled, and deleting the Microservice leaves them.
#[tokio::test]
async fn namesakes_made_by_kubectl_are_reported_and_left_alone() -> anyhow::Result<()> {
    let s = Scenario::without_operator("namesake").await?;
    let (client, n) = (s.client(), s.ns());
    kubectl(&[
        "create",
        "deployment",
        "foo",
        "--image=flotilla.local/testapp:v1",
        "-n",
        n,
    ])?;
    kubectl(&[
        "create",
        "service",
        "clusterip",
        "foo",
        "--tcp=80:8080",
        "-n",
        n,
    ])?;
    kubectl(&["create", "serviceaccount", "foo", "-n", n])?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    let services = Api::<Service>::namespaced(client.clone(), n);
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), n);
    let _operator = s.start_operator(&[])?;
    apply_yaml(n, &testapp("foo", ""))?;
    let ms = wait_reason(client, n, "foo", "False", "ChildConflict").await?;
    let message = ready_message(&ms);
    for expected in [
        "ServiceAccount foo",
        "Deployment foo",
        "Service foo",
        "kubectl-create",
        ADOPT,
    ] {
        assert!(message.contains(expected), "{expected} in: {message}");
    }
    // The rest of the service is reconciled: its NetworkPolicy, owned by it.
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), n);
    let policy = policies.get("foo").await?;
    assert_eq!(policy.owner_references()[0].uid, ms.uid().unwrap());
    let event = wait_warning(client, n, "foo", "ChildConflict").await?;
    assert!(event.note.as_deref().is_some_and(|note| note.len() <= 1024));

    assert_untouched(&deployments.get("foo").await?.metadata);
    assert_untouched(&services.get("foo").await?.metadata);
    assert_untouched(&accounts.get("foo").await?.metadata);

    delete_microservice(client, n, "foo").await?;
    wait_gone(&policies, "foo").await?;
    deployments.get("foo").await?;
    services.get("foo").await?;
    accounts.get("foo").await?;
    Ok(())
}

/// A release as `helm create` makes it: name and instance labels on the pods, the
/// Deployment selecting by them, a Service in front.
fn helm_release(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app.kubernetes.io/name: {name}, app.kubernetes.io/instance: {name}, app.kubernetes.io/managed-by: Helm}}
  annotations: {{meta.helm.sh/release-name: {name}, meta.helm.sh/release-namespace: x}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app.kubernetes.io/name: {name}, app.kubernetes.io/instance: {name}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: {name}, app.kubernetes.io/instance: {name}, app.kubernetes.io/managed-by: Helm}}
    spec:
      containers:
      - name: app
        image: flotilla.local/testapp:v1
        imagePullPolicy: IfNotPresent
        env: [{{name: SERVICE_NAME, value: helm}}]
        ports: [{{name: http, containerPort: 8080, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels: {{app.kubernetes.io/name: {name}, app.kubernetes.io/instance: {name}, app.kubernetes.io/managed-by: Helm}}
spec:
  selector: {{app.kubernetes.io/name: {name}, app.kubernetes.io/instance: {name}}}
  ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
"
    )
}

async fn endpoint_ips(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<Vec<String>> {
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    let mut ips: Vec<String> = endpoints
        .subsets
        .unwrap_or_default()
        .into_iter()
        .flat_map(|s| s.addresses.unwrap_or_default())
        .map(|a| a.ip)
        .collect();
    ips.sort();
    Ok(ips)
}

// 2. A Helm release of the same name: its Deployment and Service are conflicts, its pods
//    keep their endpoints, Flotilla's policy and budget do not select them, and its
//    Deployment survives the Microservice's deletion.
#[tokio::test]
async fn a_helm_release_of_the_same_name_keeps_its_pods() -> anyhow::Result<()> {
    let s = Scenario::without_operator("helmsake").await?;
    let (client, n) = (s.client(), s.ns());
    kubectl_with_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=helm",
            "-n",
            n,
            "-f",
            "-",
        ],
        &helm_release("web"),
    )?;
    let endpoints = wait_for("the release's pod behind its Service", CONVERGE, || async {
        let ips = endpoint_ips(client, n, "web").await.unwrap_or_default();
        Ok(if ips.is_empty() {
            Poll::Pending("no endpoint yet".into())
        } else {
            Poll::Ready(ips)
        })
    })
    .await?;

    let _operator = s.start_operator(&[])?;
    apply_yaml(n, &testapp("web", "  replicas: 2\n"))?;
    let ms = wait_reason(client, n, "web", "False", "ChildConflict").await?;
    let message = ready_message(&ms);
    assert!(
        message.contains("Deployment web")
            && message.contains("Service web")
            && message.contains("helm"),
        "{message}"
    );
    // Flotilla's NetworkPolicy and PodDisruptionBudget select Flotilla's pods only.
    let helm_pod_labels: BTreeMap<String, String> = Api::<Pod>::namespaced(client.clone(), n)
        .list(&ListParams::default().labels("app.kubernetes.io/instance=web"))
        .await?
        .items
        .first()
        .and_then(|p| p.metadata.labels.clone())
        .unwrap_or_default();
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), n)
        .get("web")
        .await?;
    let selected = policy
        .spec
        .unwrap()
        .pod_selector
        .and_then(|s| s.match_labels)
        .unwrap_or_default();
    assert!(
        selected
            .iter()
            .any(|(k, v)| helm_pod_labels.get(k) != Some(v)),
        "the policy {selected:?} selects the release's pod {helm_pod_labels:?}"
    );
    wait_for(
        "the budget to count no pod of the release",
        CONVERGE,
        || async {
            let budget = budget(n, "web")?;
            let status = &budget["status"];
            Ok(
                if status["observedGeneration"].is_i64() && status["expectedPods"] == 0 {
                    Poll::Ready(())
                } else {
                    Poll::Pending(status.to_string())
                },
            )
        },
    )
    .await?;
    assert_eq!(
        endpoint_ips(client, n, "web").await?,
        endpoints,
        "endpoints unchanged"
    );

    delete_microservice(client, n, "web").await?;
    wait_gone(&Api::<NetworkPolicy>::namespaced(client.clone(), n), "web").await?;
    let deployment = Api::<Deployment>::namespaced(client.clone(), n)
        .get("web")
        .await?;
    assert!(deployment.owner_references().is_empty());
    assert_eq!(endpoint_ips(client, n, "web").await?, endpoints);
    Ok(())
}

// 3. A Microservice named `default` leaves the namespace's default ServiceAccount as it
//    is, and its deletion does not take it along. Its Deployment is held meanwhile: its
//    pods would run as the namespace's default ServiceAccount.
#[tokio::test]
async fn a_microservice_named_default_leaves_the_default_service_account() -> anyhow::Result<()> {
    let s = Scenario::without_operator("default-sa").await?;
    let (client, n) = (s.client(), s.ns());
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), n);
    let before = accounts.get("default").await?;
    let _operator = s.start_operator(&[])?;
    apply_yaml(n, &testapp("default", ""))?;
    let ms = wait_reason(client, n, "default", "False", "ChildConflict").await?;
    assert!(
        ready_message(&ms).contains("ServiceAccount default"),
        "{}",
        ready_message(&ms)
    );
    assert!(
        ready_message(&ms).contains("the Deployment and the children after it wait"),
        "{}",
        ready_message(&ms)
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    let held = deployments.get_opt("default").await?;
    assert!(held.is_none(), "a Deployment was applied: {held:?}");
    let after = accounts.get("default").await?;
    assert_untouched(&after.metadata);
    assert_eq!(
        after.automount_service_account_token,
        before.automount_service_account_token
    );

    delete_microservice(client, n, "default").await?;
    wait_gone(&deployments, "default").await?;
    accounts.get("default").await?;
    Ok(())
}

// 4. The adoption annotation hands an existing Deployment over: it gains the owner
//    reference, and its pods keep running (no new ReplicaSet, the same pods).
#[tokio::test]
async fn the_adoption_annotation_takes_over_without_restarting_pods() -> anyhow::Result<()> {
    let s = Scenario::without_operator("adopt").await?;
    let (client, n) = (s.client(), s.ns());
    let ms_yaml = testapp("adopted", "").replacen(
        "metadata:\n  name: adopted\n",
        &format!("metadata:\n  name: adopted\n  namespace: {n}\n"),
        1,
    );
    // The Deployment as Flotilla would build it, created by someone else.
    let file = std::env::temp_dir().join(format!("{n}-adopted.yaml"));
    std::fs::write(&file, &ms_yaml)?;
    let rendered = std::process::Command::new(binary())
        .args(["render", "--kube-version", "1.20", "-f"])
        .arg(&file)
        .output()?;
    anyhow::ensure!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    // Its ServiceAccount too: the pods cannot start without it.
    let existing: Vec<String> = String::from_utf8(rendered.stdout)?
        .split("---\n")
        .filter(|doc| doc.contains("kind: Deployment\n") || doc.contains("kind: ServiceAccount\n"))
        .map(str::to_string)
        .collect();
    assert_eq!(existing.len(), 2, "{existing:?}");
    let deployment_yaml = existing.join("---\n");
    kubectl_with_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=kubectl",
            "-n",
            n,
            "-f",
            "-",
        ],
        &deployment_yaml,
    )?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    let pods = Api::<Pod>::namespaced(client.clone(), n);
    let running = wait_for("the Deployment's pod to be ready", CONVERGE, || async {
        let deployment = deployments.get("adopted").await?;
        let ready = deployment
            .status
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        Ok(if ready == 1 {
            Poll::Ready(names(&pods, "app.kubernetes.io/instance=adopted").await?)
        } else {
            Poll::Pending(format!("{ready} ready"))
        })
    })
    .await?;
    for kind in ["deployment", "serviceaccount"] {
        kubectl(&[
            "annotate",
            kind,
            "adopted",
            &format!("{ADOPT}=adopted"),
            "-n",
            n,
        ])?;
    }

    let _operator = s.start_operator(&[])?;
    apply_yaml(n, &ms_yaml)?;
    let ms = wait_ready(client, n, "adopted").await?;
    let deployment = deployments.get("adopted").await?;
    let owner = &deployment.owner_references()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (ms.uid().unwrap().as_str(), Some(true))
    );
    assert_eq!(
        names(&pods, "app.kubernetes.io/instance=adopted").await?,
        running,
        "the same pods"
    );
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), n)
        .list(&ListParams::default().labels("app.kubernetes.io/instance=adopted"))
        .await?;
    assert_eq!(replica_sets.items.len(), 1, "no new ReplicaSet");
    Ok(())
}

// 5. A name and an annotation key the API server would refuse are refused before
//    anything is applied: the name at admission, the key by the operator.
#[tokio::test]
async fn names_and_keys_the_api_server_would_refuse_are_refused_first() -> anyhow::Result<()> {
    let s = Scenario::new("names").await?;
    let (client, n) = (s.client(), s.ns());
    let dotted = apply_yaml(n, &testapp("my.app", "")).expect_err("my.app is refused");
    assert!(dotted.to_string().contains("metadata.name"), "{dotted}");

    apply_yaml(
        n,
        &testapp(
            "badkey",
            "  podTemplate:\n    annotations: {\"bad key!\": x}\n",
        ),
    )?;
    let ms = wait_reason(client, n, "badkey", "False", "InvalidSpec").await?;
    assert!(
        ready_message(&ms).contains("spec.podTemplate.annotations"),
        "{}",
        ready_message(&ms)
    );
    for (kind, found) in [
        (
            "ServiceAccount",
            Api::<ServiceAccount>::namespaced(client.clone(), n)
                .get_opt("badkey")
                .await?
                .is_some(),
        ),
        (
            "NetworkPolicy",
            Api::<NetworkPolicy>::namespaced(client.clone(), n)
                .get_opt("badkey")
                .await?
                .is_some(),
        ),
        (
            "Deployment",
            Api::<Deployment>::namespaced(client.clone(), n)
                .get_opt("badkey")
                .await?
                .is_some(),
        ),
        (
            "Service",
            Api::<Service>::namespaced(client.clone(), n)
                .get_opt("badkey")
                .await?
                .is_some(),
        ),
    ] {
        assert!(!found, "{kind} badkey was applied");
    }
    Ok(())
}

// 6. A child the API server refuses (a quota allows no NetworkPolicy): ApplyFailed
//    naming it with the API's message, an event, and nothing after it in the order: the
//    pods never run without their policy. Lifting the quota converges.
#[tokio::test]
async fn a_refused_child_stops_the_order_and_says_why() -> anyhow::Result<()> {
    let s = Scenario::without_operator("refused").await?;
    let (client, n) = (s.client(), s.ns());
    kubectl(&[
        "create",
        "quota",
        "no-policies",
        "--hard=count/networkpolicies.networking.k8s.io=0",
        "-n",
        n,
    ])?;
    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), n);
    wait_for("the quota's usage to be counted", CONVERGE, || async {
        let quota = quotas.get("no-policies").await?;
        Ok(match quota.status.and_then(|s| s.used) {
            Some(used) if !used.is_empty() => Poll::Ready(()),
            other => Poll::Pending(format!("used {other:?}")),
        })
    })
    .await?;
    let _operator = s.start_operator(&[])?;
    apply_yaml(n, &testapp("guarded", ""))?;
    let ms = wait_reason(client, n, "guarded", "False", "ApplyFailed").await?;
    let message = ready_message(&ms);
    assert!(
        message.contains("NetworkPolicy guarded") && message.contains("quota"),
        "{message}"
    );
    wait_warning(client, n, "guarded", "ApplyFailed").await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    assert!(
        deployments.get_opt("guarded").await?.is_none(),
        "pods without their policy"
    );
    assert!(
        Api::<ServiceAccount>::namespaced(client.clone(), n)
            .get_opt("guarded")
            .await?
            .is_some(),
        "the ServiceAccount comes before the policy"
    );

    quotas
        .delete("no-policies", &DeleteParams::default())
        .await?;
    wait_ready(client, n, "guarded").await?;
    Ok(())
}

/// `yaml` with these labels on the Microservice.
fn env_names(deployment: &Deployment) -> Vec<String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map_or_else(Vec::new, |p| {
            p.containers[0]
                .env
                .iter()
                .flatten()
                .map(|e| e.name.clone())
                .collect()
        })
}

// 7. Callers from another namespace: admitted by the target's allowFrom, refused
//    otherwise (DependenciesReady=False DependencyNotAdmitted, no address, nothing
//    opened). One operator for the three namespaces, sharded by a label so it never
//    touches the other tests' Microservices.
#[tokio::test]
async fn callers_from_another_namespace_need_the_target_s_consent() -> anyhow::Result<()> {
    let client = client().await?;
    ensure_crds(&client).await?;
    let target = TestNamespace::new(&client, "xns-target").await?;
    let caller = TestNamespace::new(&client, "xns-caller").await?;
    let evil = TestNamespace::new(&client, "xns-evil").await?;
    // What the API server sets by itself from 1.21 on.
    for ns in [&target, &caller, &evil] {
        kubectl(&[
            "label",
            "--overwrite",
            "namespace",
            ns.name(),
            &format!("kubernetes.io/metadata.name={}", ns.name()),
        ])?;
    }
    // The consent label api's allowFrom asks for besides the name; taken off below.
    kubectl(&[
        "label",
        "namespace",
        caller.name(),
        "flotilla.dev/e2e-consent=granted",
    ])?;
    let _operator = start_sharded_operator(target.name(), &[])?;
    let api = testapp(
        "api",
        &format!(
            "  network:\n    allowFrom:\n    - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {}, flotilla.dev/e2e-consent: granted}}}}\n      ports: [http]\n",
            caller.name()
        ),
    );
    apply_yaml(target.name(), &sharded(&api, "api", target.name()))?;
    let calls_api = format!(
        "  dependsOn: [{{name: api, namespace: {}}}]\n",
        target.name()
    );
    apply_yaml(
        caller.name(),
        &sharded(&testapp("web", &calls_api), "web", target.name()),
    )?;
    apply_yaml(
        evil.name(),
        &sharded(&testapp("intruder", &calls_api), "intruder", target.name()),
    )?;

    wait_microservice(
        &client,
        caller.name(),
        "web",
        "DependenciesReady=True",
        |ms| condition(ms, "DependenciesReady").is_some_and(|c| c.status == "True"),
    )
    .await?;
    let refused = wait_microservice(
        &client,
        evil.name(),
        "intruder",
        "DependenciesReady=False DependencyNotAdmitted",
        |ms| {
            condition(ms, "DependenciesReady")
                .is_some_and(|c| c.status == "False" && c.reason == "DependencyNotAdmitted")
        },
    )
    .await?;
    let message = &condition(&refused, "DependenciesReady").unwrap().message;
    assert!(
        message.contains(&format!("namespace {}", evil.name())),
        "{message}"
    );

    let web = Api::<Deployment>::namespaced(client.clone(), caller.name())
        .get("web")
        .await?;
    assert!(
        env_names(&web).contains(&"API_URL".to_string()),
        "{:?}",
        env_names(&web)
    );
    let intruder = wait_for("the intruder's Deployment", CONVERGE, || async {
        Ok(
            match Api::<Deployment>::namespaced(client.clone(), evil.name())
                .get_opt("intruder")
                .await?
            {
                Some(d) => Poll::Ready(d),
                None => Poll::Pending("none yet".into()),
            },
        )
    })
    .await?;
    assert!(
        !env_names(&intruder).contains(&"API_URL".to_string()),
        "no address for a refused caller"
    );

    // api's policy lets web's namespace in, never the intruder's.
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), target.name())
        .get("api")
        .await?;
    let web_pods = (Some(caller.name().to_string()), "web".to_string());
    assert!(
        admitted_callers(&policy).contains(&web_pods),
        "{:?}",
        policy.spec
    );
    let ingress = serde_json::to_string(&policy.spec.unwrap().ingress)?;
    assert!(ingress.contains(caller.name()), "{ingress}");
    assert!(!ingress.contains(evil.name()), "{ingress}");

    // The caller's namespace loses a label api's allowFrom selects: its way in goes from
    // api's policy within 10 s, not at the next resync.
    kubectl(&[
        "label",
        "namespace",
        caller.name(),
        "flotilla.dev/e2e-consent-",
    ])?;
    let unlabelled = std::time::Instant::now();
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), target.name());
    wait_for(
        "web's rule gone from api's policy",
        std::time::Duration::from_secs(10),
        || async {
            let policy = policies.get("api").await?;
            // The rule for web's pods; api's own allowFrom rule, a selector, stays.
            Ok(if admitted_callers(&policy).contains(&web_pods) {
                Poll::Pending(format!("{:?}", policy.spec))
            } else {
                Poll::Ready(())
            })
        },
    )
    .await?;
    println!(
        "namespace label removed: the caller's rule left the target's policy after {:.1} s",
        unlabelled.elapsed().as_secs_f64()
    );
    wait_microservice(
        &client,
        caller.name(),
        "web",
        "DependenciesReady=False DependencyNotAdmitted",
        |ms| {
            condition(ms, "DependenciesReady")
                .is_some_and(|c| c.status == "False" && c.reason == "DependencyNotAdmitted")
        },
    )
    .await?;
    Ok(())
}

// 8. The selector migration: Service, NetworkPolicy and budget of a service made before
//    they selected by managed-by=flotilla are moved to the new selector by the next
//    operator, and no pod restarts (the Deployment and its pods are as they were).
#[tokio::test]
async fn selectors_move_to_flotilla_s_pods_without_restarting_any() -> anyhow::Result<()> {
    let s = Scenario::without_operator("migrate").await?;
    let (client, n) = (s.client(), s.ns());
    let mut operator = s.start_operator(&[])?;
    apply_yaml(n, &testapp("legacy", "  replicas: 2\n"))?;
    wait_ready(client, n, "legacy").await?;
    operator.kill9()?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    let generation = deployments.get("legacy").await?.metadata.generation;
    let pods = Api::<Pod>::namespaced(client.clone(), n);
    let pods_before = names(&pods, "app.kubernetes.io/instance=legacy").await?;

    // As the previous release left them: selectors by name and instance only (the
    // managed-by key removed, and the applied hash no longer current).
    for (kind, path) in [
        (
            "service",
            r#"{"spec": {"selector": {"app.kubernetes.io/managed-by": null}}}"#,
        ),
        (
            "networkpolicy",
            r#"{"spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": null}}}}"#,
        ),
        (
            "pdb",
            r#"{"spec": {"selector": {"matchLabels": {"app.kubernetes.io/managed-by": null}}}}"#,
        ),
    ] {
        kubectl(&["patch", kind, "legacy", "-n", n, "--type=merge", "-p", path])?;
        kubectl(&[
            "annotate",
            kind,
            "legacy",
            "-n",
            n,
            "--overwrite",
            "flotilla.dev/applied-hash=old",
        ])?;
    }
    let selector = Api::<Service>::namespaced(client.clone(), n)
        .get("legacy")
        .await?
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default();
    assert!(
        !selector.contains_key("app.kubernetes.io/managed-by"),
        "the old selector is in place: {selector:?}"
    );
    operator.restart()?;
    let services = Api::<Service>::namespaced(client.clone(), n);
    wait_for(
        "the Service to select Flotilla's pods only",
        CONVERGE,
        || async {
            let selector = services
                .get("legacy")
                .await?
                .spec
                .and_then(|s| s.selector)
                .unwrap_or_default();
            Ok(
                if selector
                    .get("app.kubernetes.io/managed-by")
                    .map(String::as_str)
                    == Some("flotilla")
                {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!("{selector:?}"))
                },
            )
        },
    )
    .await?;
    wait_for("the budget and the policy to follow", CONVERGE, || async {
        let budget = budget(n, "legacy")?;
        let policy = Api::<NetworkPolicy>::namespaced(client.clone(), n)
            .get("legacy")
            .await?;
        let policy_labels = policy
            .spec
            .and_then(|s| s.pod_selector)
            .and_then(|s| s.match_labels)
            .unwrap_or_default();
        let budget_label =
            &budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/managed-by"];
        Ok(
            if budget_label == "flotilla"
                && policy_labels
                    .get("app.kubernetes.io/managed-by")
                    .map(String::as_str)
                    == Some("flotilla")
            {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("budget {budget_label}, policy {policy_labels:?}"))
            },
        )
    })
    .await?;
    wait_ready(client, n, "legacy").await?;
    assert_eq!(
        deployments.get("legacy").await?.metadata.generation,
        generation
    );
    assert_eq!(
        names(&pods, "app.kubernetes.io/instance=legacy").await?,
        pods_before
    );
    assert!(!endpoint_ips(client, n, "legacy").await?.is_empty());
    Ok(())
}
