//! Day-2 operability on a real cluster: the ServiceMonitor of `spec.metrics` as its CRD
//! comes and goes, `flotilla diff` against live objects, `flotilla status` of a service
//! stuck on its image, and the binary as the kubectl plugin.
//!
//! The ServiceMonitor CRD is cluster-scoped and other tests run side by side: the test
//! that installs it is the only one touching it, installs a minimal CRD of its own
//! (labelled `flotilla-e2e`) only where none is installed, and deletes it at the end
//! (even on failure). Each test runs its own `flotilla run --namespace` process; the
//! operators of other tests that run meanwhile re-discover the kinds too and restart
//! their controllers when the CRD appears or goes, which costs them a relist.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::Context;
use flotilla::api::Microservice;
use flotilla_e2e::steps::{
    CONVERGE, condition, describe, start_operator_with, testapp, wait_microservice, wait_ready,
};
use flotilla_e2e::{
    Poll, Scenario, TestNamespace, apply_yaml, client, kubectl, kubectl_with_stdin, wait_for,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

const SERVICE_MONITOR_CRD: &str = "servicemonitors.monitoring.coreos.com";

/// The smallest ServiceMonitor CRD the API server serves: the real group, version, kind
/// and plural, the spec kept whole (the Prometheus Operator's own schema is not needed to
/// test what Flotilla writes).
const MINIMAL_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
  labels:
    flotilla-e2e: "true"
spec:
  group: monitoring.coreos.com
  names:
    kind: ServiceMonitor
    listKind: ServiceMonitorList
    plural: servicemonitors
    singular: servicemonitor
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

/// Whose ServiceMonitor CRD the cluster has.
enum CrdOwner {
    None,
    /// A minimal CRD of this suite, left by an earlier run that was killed.
    Suite,
    /// The real Prometheus Operator's (or anyone else's): used, never removed.
    Foreign,
}

fn crd_owner() -> anyhow::Result<CrdOwner> {
    let out = kubectl(&[
        "get",
        "crd",
        SERVICE_MONITOR_CRD,
        "--ignore-not-found",
        "-o",
        "jsonpath={.metadata.labels.flotilla-e2e}",
    ])?;
    let exists = !kubectl(&[
        "get",
        "crd",
        SERVICE_MONITOR_CRD,
        "--ignore-not-found",
        "-o",
        "name",
    ])?
    .trim()
    .is_empty();
    Ok(match (exists, out.trim()) {
        (false, _) => CrdOwner::None,
        (true, "true") => CrdOwner::Suite,
        (true, _) => CrdOwner::Foreign,
    })
}

/// Deletes the suite's ServiceMonitor CRD when dropped, even when the test panics.
struct MinimalCrd;

impl MinimalCrd {
    fn install() -> anyhow::Result<Self> {
        let guard = MinimalCrd;
        kubectl_with_stdin(&["apply", "-f", "-"], MINIMAL_CRD)?;
        kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{SERVICE_MONITOR_CRD}"),
        ])?;
        Ok(guard)
    }

    fn remove() -> anyhow::Result<()> {
        kubectl(&[
            "delete",
            "crd",
            SERVICE_MONITOR_CRD,
            "--ignore-not-found",
            "--timeout=60s",
        ])
        .map(drop)
    }
}

impl Drop for MinimalCrd {
    fn drop(&mut self) {
        if let Err(error) = MinimalCrd::remove() {
            eprintln!("removing the ServiceMonitor CRD: {error:#}");
        }
    }
}

fn service_monitors(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    );
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Applies this commit's Microservice CRDs again, even though `ensure_crds` did once for
/// the binary: on a cluster shared with test runs of other commits, theirs may have
/// replaced it since (without `spec.metrics`). Then waits until `spec.metrics` is
/// documented.
async fn this_commits_crds(client: &kube::Client) -> anyhow::Result<()> {
    flotilla_e2e::steps::apply_crds(client).await?;
    served_field("microservice.spec.metrics").await
}

/// Waits until the API server's OpenAPI documents `field` (`kubectl explain` reads it):
/// it is published some seconds after a CRD changes, and kubectl validates against it.
async fn served_field(field: &str) -> anyhow::Result<()> {
    wait_for(
        format!("the API server to document {field}"),
        Duration::from_secs(90),
        || async {
            Ok(match kubectl(&["explain", field]) {
                Ok(_) => Poll::Ready(()),
                Err(error) => Poll::Pending(format!("{error:#}")),
            })
        },
    )
    .await
}

fn scraped(ms: &Microservice) -> Option<(String, String, String)> {
    condition(ms, "MetricsScraped").map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

// 1. spec.metrics: Ready and "not configured" without the CRD, the metrics port open to
//    the monitoring namespace only; a ServiceMonitor within seconds of the CRD's
//    installation (the operator re-discovers), pruned when metrics are turned off.
#[tokio::test]
async fn service_monitor_follows_its_crd() -> anyhow::Result<()> {
    let client = client().await?;
    this_commits_crds(&client).await?;
    let owner = crd_owner()?;
    if matches!(owner, CrdOwner::Suite) {
        MinimalCrd::remove()?;
    }
    let foreign = matches!(owner, CrdOwner::Foreign);
    let ns = TestNamespace::new(&client, "metrics").await?;
    let _operator = start_operator_with(ns.name(), &["--rediscover-interval-seconds", "2"])?;
    let metrics = "  metrics:\n    path: /metrics\n    interval: 15s\n";
    apply_yaml(ns.name(), &testapp("users", metrics))?;

    if foreign {
        eprintln!(
            "a ServiceMonitor CRD not of this suite is installed: the part without it is skipped"
        );
    } else {
        let ms = wait_ready(&client, ns.name(), "users").await?;
        let (status, reason, message) = scraped(&ms).context("a MetricsScraped condition")?;
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "ServiceMonitorNotServed"),
            "{}",
            describe(&ms)
        );
        assert!(message.contains("scraping is not configured"), "{message}");
    }

    // The NetworkPolicy admits the monitoring namespace on the metrics port (8080, the
    // primary port's container port) and nowhere else.
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), ns.name())
        .get("users")
        .await?;
    let rules = policy.spec.unwrap().ingress.unwrap_or_default();
    let monitoring: Vec<_> = rules
        .iter()
        .filter(|rule| {
            rule.from.iter().flatten().any(|peer| {
                peer.namespace_selector
                    .as_ref()
                    .and_then(|s| s.match_labels.as_ref())
                    .and_then(|l| l.get("kubernetes.io/metadata.name"))
                    .map(String::as_str)
                    == Some("monitoring")
            })
        })
        .collect();
    assert_eq!(monitoring.len(), 1, "{rules:?}");
    let ports = serde_json::to_value(&monitoring[0].ports)?;
    assert_eq!(
        ports,
        serde_json::json!([{"port": 8080, "protocol": "TCP"}])
    );

    let _crd = if foreign {
        None
    } else {
        Some(MinimalCrd::install()?)
    };
    let monitors = service_monitors(&client, ns.name());
    let monitor = wait_for("the ServiceMonitor users", CONVERGE, || async {
        Ok(match monitors.get_opt("users").await? {
            Some(monitor) => Poll::Ready(monitor),
            None => Poll::Pending("not created yet".into()),
        })
    })
    .await?;
    let spec = &monitor.data["spec"];
    assert_eq!(
        spec["endpoints"],
        serde_json::json!([{"port": "http", "path": "/metrics", "interval": "15s", "scheme": "http"}])
    );
    assert_eq!(
        spec["selector"]["matchLabels"]["app.kubernetes.io/instance"],
        "users"
    );
    assert_eq!(
        spec["selector"]["matchLabels"]["app.kubernetes.io/managed-by"],
        "flotilla"
    );
    let owner = &monitor
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Microservice", "users")
    );
    let ms = wait_microservice(&client, ns.name(), "users", "MetricsScraped=True", |ms| {
        scraped(ms).is_some_and(|(status, _, _)| status == "True")
    })
    .await?;
    assert!(ms.is_ready(), "{}", describe(&ms));

    // Metrics off: the ServiceMonitor is pruned and the condition goes.
    apply_yaml(ns.name(), &testapp("users", ""))?;
    wait_for("the ServiceMonitor to be pruned", CONVERGE, || async {
        Ok(match monitors.get_opt("users").await? {
            None => Poll::Ready(()),
            Some(_) => Poll::Pending("still there".into()),
        })
    })
    .await?;
    wait_microservice(&client, ns.name(), "users", "no MetricsScraped", |ms| {
        scraped(ms).is_none()
    })
    .await?;
    Ok(())
}

/// Runs the flotilla binary with `args` against the test's cluster.
fn flotilla(args: &[&str]) -> anyhow::Result<Output> {
    let bin = flotilla_e2e::operator::binary();
    Command::new(&bin)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The suite applies under its own field manager: the diff must apply as it does.
const FM: &str = "--field-manager=flotilla-e2e";

fn scratch_dir(ns: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("flotilla-e2e-{ns}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

// 2. `flotilla diff`: an unchanged file diffs to nothing (exit 0); a new image and a new
//    dependency show as the Deployment's image and env and the callee's NetworkPolicy
//    (exit 1), computed by dry runs that change nothing; a refused spec exits 2.
#[tokio::test]
async fn diff_shows_an_image_change_and_a_new_dependency() -> anyhow::Result<()> {
    let s = Scenario::new("diff").await?;
    let (client, n) = (s.client(), s.ns());
    let users = testapp("users", "");
    let orders = testapp("orders", "");
    let applied = format!("{users}---\n{orders}");
    apply_yaml(n, &applied)?;
    wait_ready(client, n, "users").await?;
    wait_ready(client, n, "orders").await?;
    let dir = scratch_dir(n)?;

    let unchanged = write(&dir, "unchanged.yaml", &applied)?;
    let out = flotilla(&["diff", "-f", &unchanged.to_string_lossy(), "-n", n, FM])?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), "", "an unchanged file diffs to nothing");

    let changed = testapp("orders", "  dependsOn:\n  - name: users\n")
        .replace("flotilla.local/testapp:v1", "flotilla.local/testapp:v2");
    let file = write(&dir, "changed.yaml", &changed)?;
    let out = flotilla(&["diff", "-f", &file.to_string_lossy(), "-n", n, FM])?;
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The Microservice itself, then its Deployment: the image and the new variables.
    assert!(
        text.contains(&format!("# Microservice {n}/orders\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("--- live    apps/v1 Deployment {n}/orders\n")),
        "{text}"
    );
    assert!(
        text.contains("-        image: flotilla.local/testapp:v1\n"),
        "{text}"
    );
    assert!(
        text.contains("+        image: flotilla.local/testapp:v2\n"),
        "{text}"
    );
    assert!(text.contains("+        - name: USERS_URL\n"), "{text}");
    assert!(
        text.contains(&format!(
            "+          value: http://users.{n}.svc.cluster.local:80\n"
        )),
        "{text}"
    );
    // The callee's NetworkPolicy lets orders in; orders' own lets it out to users.
    let callee = text
        .split(&format!(
            "# Microservice {n}/users (a dependency of {n}/orders)\n"
        ))
        .nth(1)
        .with_context(|| format!("no section for the callee in:\n{text}"))?;
    assert!(
        callee.starts_with(&format!(
            "--- live    networking.k8s.io/v1 NetworkPolicy {n}/users\n"
        )),
        "{callee}"
    );
    assert!(callee.contains("+  - from:\n"), "{callee}");
    assert!(
        callee.contains("app.kubernetes.io/instance") && callee.contains("- orders\n"),
        "{callee}"
    );
    // Dry runs only: nothing changed.
    let deployment = Api::<Deployment>::namespaced(client.clone(), n)
        .get("orders")
        .await?;
    let image = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("flotilla.local/testapp:v1"));

    // A spec the controller would refuse is an error.
    this_commits_crds(client).await?;
    let refused = write(
        &dir,
        "refused.yaml",
        &testapp("orders", "  metrics:\n    port: admin\n"),
    )?;
    let out = flotilla(&["diff", "-f", &refused.to_string_lossy(), "-n", n, FM])?;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

// 3. `flotilla status` (also as `kubectl flotilla`) of a Microservice whose image cannot
//    be pulled names the pod and the reason.
#[tokio::test]
async fn status_names_the_pod_stuck_on_a_bad_image() -> anyhow::Result<()> {
    let s = Scenario::new("status").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(
        ns,
        &testapp("broken", "").replace(
            "flotilla.local/testapp:v1",
            "flotilla.local/no-such-image:v1",
        ),
    )?;
    let pull_failures = ["ImagePullBackOff", "ErrImagePull"];
    wait_microservice(client, ns, "broken", "Ready=False for the image", |ms| {
        condition(ms, "Ready").is_some_and(|c| pull_failures.contains(&c.reason.as_str()))
    })
    .await?;

    let out = flotilla(&["status", "broken", "-n", ns, "-o", "json"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(tree["health"], "Degraded", "{tree:#}");
    let pod = &tree["pods"][0];
    let pod_name = pod["name"].as_str().unwrap_or_default();
    assert!(pod_name.starts_with("broken-"), "{tree:#}");
    let detail = pod["detail"].as_str().unwrap_or_default();
    assert!(
        pull_failures.iter().any(|r| detail.starts_with(r)) && detail.contains(pod_name),
        "{tree:#}"
    );

    // The same as the kubectl plugin: kubectl finds kubectl-flotilla on the PATH.
    let dir = scratch_dir(ns)?;
    let plugin = dir.join("kubectl-flotilla");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(flotilla_e2e::operator::binary(), &plugin)?;
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubeconfig = std::env::var("KUBECONFIG")?;
    let out = Command::new("kubectl")
        .args([
            "flotilla",
            "status",
            "broken",
            "-n",
            ns,
            "--kubeconfig",
            &kubeconfig,
        ])
        .env("PATH", &path)
        .env_remove("KUBECONFIG")
        .output()?;
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(&format!("Microservice {ns}/broken  [!!] ")),
        "{text}"
    );
    assert!(text.contains(&format!("Pod {pod_name}  [!!] ")), "{text}");
    let help = Command::new("kubectl")
        .args(["flotilla", "--help"])
        .env("PATH", &path)
        .output()?;
    assert!(
        stdout(&help).contains("Usage: kubectl flotilla <COMMAND>"),
        "{}",
        stdout(&help)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
