//! Releases on a real cluster (issue 14): a client pod inside the cluster calls the
//! Service every 50 ms for the whole scenario (`testapp probe`) and counts failed
//! requests and which version answered; each scenario asserts on those counts.
//!
//! Pauses and deadlines are short (10-20 s) so the file stays within a few minutes.

use std::time::{Duration, Instant};

use flotilla::api::{Microservice, RolloutPhase, RolloutStatus};
use flotilla_e2e::probe::{PROBE_LABEL, Probe, share};
use flotilla_e2e::steps::{condition, describe, testapp, wait_microservice};
use flotilla_e2e::{Poll, Scenario, apply_yaml, kubectl, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

fn rollout_of(ms: &Microservice) -> RolloutStatus {
    ms.status
        .as_ref()
        .and_then(|s| s.rollout.clone())
        .unwrap_or_default()
}

fn phase(ms: &Microservice) -> Option<RolloutPhase> {
    rollout_of(ms).phase
}

fn describe_rollout(ms: &Microservice) -> String {
    let r = rollout_of(ms);
    format!(
        "{}; rollout {:?} step {:?}/{:?} weight {:?}: {}",
        describe(ms),
        r.phase,
        r.step,
        r.steps,
        r.weight,
        r.message.unwrap_or_default()
    )
}

/// A service of `replicas` testapp pods reachable from the probe pod, and its manifest
/// with `image` and extra spec lines.
fn service(name: &str, image: &str, replicas: i32, extra: &str) -> String {
    testapp(
        name,
        &format!(
            "  replicas: {replicas}\n  network:\n    allowFrom:\n    - podSelector:\n        matchLabels:\n          app: {PROBE_LABEL}\n{extra}"
        ),
    )
    .replace("flotilla.local/testapp:v1", image)
}

const V1: &str = "flotilla.local/testapp:v1";
const V2: &str = "flotilla.local/testapp:v2";

/// Waits until the release of the current spec is done (phase Healthy, Ready).
async fn wait_released(
    client: &kube::Client,
    ns: &str,
    name: &str,
    image: &str,
) -> anyhow::Result<Microservice> {
    wait_microservice(client, ns, name, &format!("{image} released"), |ms| {
        ms.is_ready()
            && phase(ms) == Some(RolloutPhase::Healthy)
            && rollout_of(ms).stable_image.as_deref() == Some(image)
    })
    .await
}

async fn wait_rolled_back(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> anyhow::Result<Microservice> {
    wait_microservice(client, ns, name, "Degraded=True RolledBack", |ms| {
        condition(ms, "Degraded").is_some_and(|c| c.status == "True" && c.reason == "RolledBack")
    })
    .await
}

async fn pods_with(client: &kube::Client, ns: &str, selector: &str) -> anyhow::Result<Vec<Pod>> {
    Ok(Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

fn image_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// Waits until the Microservice's pods are exactly `count` pods of `image`, none of the
/// canary, none terminating: nothing left behind.
async fn wait_pods_only(
    client: &kube::Client,
    ns: &str,
    name: &str,
    image: &str,
    count: usize,
) -> anyhow::Result<()> {
    let selector = format!("app.kubernetes.io/instance={name}");
    wait_for(
        format!("{count} pods of {image} only"),
        Duration::from_secs(120),
        || async {
            let pods = pods_with(client, ns, &selector).await?;
            let seen: Vec<String> = pods
                .iter()
                .map(|p| {
                    format!(
                        "{} {}{}",
                        p.metadata.name.clone().unwrap_or_default(),
                        image_of(p),
                        if p.metadata.deletion_timestamp.is_some() {
                            " (terminating)"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            let clean = pods.len() == count
                && pods.iter().all(|p| {
                    image_of(p) == image
                        && p.metadata.deletion_timestamp.is_none()
                        && !p
                            .metadata
                            .labels
                            .as_ref()
                            .is_some_and(|l| l.contains_key("flotilla.dev/track"))
                });
            Ok(if clean {
                Poll::Ready(())
            } else {
                Poll::Pending(seen.join(", "))
            })
        },
    )
    .await?;
    let canary = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&format!("{name}-canary"))
        .await?;
    anyhow::ensure!(canary.is_none(), "the canary Deployment is left behind");
    Ok(())
}

fn flotilla(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(flotilla_e2e::operator::binary())
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "flotilla {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

// 1. A rolling update v1 → v2 of a 2-replica service: no request fails.
#[tokio::test]
async fn rolling_update_fails_no_request() -> anyhow::Result<()> {
    let s = Scenario::new("roll").await?;
    let (client, ns) = (s.client(), s.ns());
    apply_yaml(ns, &service("web", V1, 2, ""))?;
    wait_released(client, ns, "web", V1).await?;
    let probe = Probe::start(client, ns, "web").await?;
    probe.wait_only("v1").await?;

    let started = Instant::now();
    apply_yaml(ns, &service("web", V2, 2, ""))?;
    wait_released(client, ns, "web", V2).await?;
    let took = started.elapsed();
    probe.wait_only("v2").await?;
    wait_pods_only(client, ns, "web", V2, 2).await?;
    let end = probe.counts().await?;
    println!(
        "rolling v1→v2: released in {:.1}s; probe {} ok, {} failed, answers {:?}",
        took.as_secs_f64(),
        end.ok,
        end.failed,
        end.versions
    );
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    Ok(())
}

// 2. A canary v1 → v2 in steps of 25% and 50% of 4 pods: the share of answers from v2
//    follows the steps, then all answers are v2; no request fails.
#[tokio::test]
async fn canary_follows_its_steps() -> anyhow::Result<()> {
    let s = Scenario::new("canary").await?;
    let (client, ns) = (s.client(), s.ns());
    let rollout = "  rollout:\n    strategy: canary\n    steps:\n    - {weight: 25, pause: 10s}\n    - {weight: 50, pause: 10s}\n    progressDeadlineSeconds: 120\n";
    apply_yaml(ns, &service("shop", V1, 4, rollout))?;
    wait_released(client, ns, "shop", V1).await?;
    let probe = Probe::start(client, ns, "shop").await?;
    probe.wait_only("v1").await?;

    let started = Instant::now();
    apply_yaml(ns, &service("shop", V2, 4, rollout))?;
    let mut shares = Vec::new();
    for (step, weight) in [(1, 25), (2, 50)] {
        let paused = wait_microservice(
            client,
            ns,
            "shop",
            &format!("paused at step {step}"),
            |ms| phase(ms) == Some(RolloutPhase::Paused) && rollout_of(ms).step == Some(step),
        )
        .await?;
        let at_pause = probe.counts().await?;
        let columns = kubectl(&["get", "ms", "shop", "-n", ns, "-o", "wide"])?;
        println!("{columns}");
        assert!(
            columns.contains(&format!("{weight}")) && columns.contains(V2) && columns.contains(V1),
            "the wide columns show step, weight, stable and canary image: {columns}"
        );
        let ready = condition(&paused, "Ready").unwrap();
        assert_eq!(
            ready.reason,
            "CanaryPaused",
            "{}",
            describe_rollout(&paused)
        );
        wait_microservice(client, ns, "shop", "the pause to end", |ms| {
            rollout_of(ms).step.is_some_and(|s| s > step)
                || phase(ms) == Some(RolloutPhase::Healthy)
        })
        .await?;
        let answers = probe.counts().await?.since(&at_pause);
        let v2 = share(&answers, "v2");
        println!(
            "canary step {step} ({weight}%): {answers:?} → v2 share {:.0}% at {:.1}s",
            v2 * 100.0,
            started.elapsed().as_secs_f64()
        );
        shares.push((weight, v2, answers));
    }
    wait_released(client, ns, "shop", V2).await?;
    let took = started.elapsed();
    probe.wait_only("v2").await?;
    wait_pods_only(client, ns, "shop", V2, 4).await?;
    let end = probe.counts().await?;
    println!(
        "canary 25%/50%: released in {:.1}s; probe {} ok, {} failed, answers {:?}",
        took.as_secs_f64(),
        end.ok,
        end.failed,
        end.versions
    );
    for (weight, v2, answers) in &shares {
        let expected = *weight as f64 / 100.0;
        assert!(
            (v2 - expected).abs() <= 0.15,
            "step at {weight}%: v2 answered {:.0}% ({answers:?})",
            v2 * 100.0
        );
    }
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    Ok(())
}

// 3. A canary of an image that crashes on start is rolled back by itself: RolledBack
//    naming the pod, an event, the failed generation in status; v1 answers throughout
//    and no request fails.
#[tokio::test]
async fn crashing_canary_is_rolled_back() -> anyhow::Result<()> {
    let s = Scenario::new("crash").await?;
    let (client, ns) = (s.client(), s.ns());
    let rollout = "  rollout:\n    steps:\n    - {weight: 50, pause: 10s}\n    progressDeadlineSeconds: 120\n";
    apply_yaml(ns, &service("cart", V1, 2, rollout))?;
    wait_released(client, ns, "cart", V1).await?;
    let probe = Probe::start(client, ns, "cart").await?;
    probe.wait_only("v1").await?;

    let started = Instant::now();
    apply_yaml(
        ns,
        &service("cart", V2, 2, &format!("  args: [crash]\n{rollout}")),
    )?;
    let ms = wait_rolled_back(client, ns, "cart").await?;
    let took = started.elapsed();
    let degraded = condition(&ms, "Degraded").unwrap().message.clone();
    println!("rolled back after {:.1}s: {degraded}", took.as_secs_f64());
    assert!(
        degraded.contains("cart-canary-"),
        "the cause names the pod: {degraded}"
    );
    assert!(
        degraded.contains("CrashLoopBackOff") || degraded.contains("restarted"),
        "{degraded}"
    );
    let rollout_status = rollout_of(&ms);
    let failed = rollout_status.failed.clone().expect("the failed release");
    assert_eq!(failed.generation, ms.metadata.generation, "{failed:?}");
    assert_eq!(condition(&ms, "Ready").unwrap().reason, "RolledBack");
    assert_eq!(ms.status.as_ref().unwrap().image.as_deref(), Some(V1));
    let events = kubectl(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        "reason=RolledBack",
    ])?;
    assert!(events.contains("cart"), "a RolledBack event: {events}");
    wait_pods_only(client, ns, "cart", V1, 2).await?;
    // Not retried: the failed revision stays rolled back.
    let later = wait_microservice(client, ns, "cart", "still rolled back", |ms| {
        phase(ms) == Some(RolloutPhase::RolledBack)
    })
    .await?;
    assert_eq!(rollout_of(&later).failed, Some(failed));
    // The history: v1 released, then the crashing revision rolled back, and `flotilla
    // rollout history` says so.
    let history: Vec<(String, Option<String>)> = rollout_of(&later)
        .history
        .iter()
        .map(|r| (r.outcome.clone(), r.image.clone()))
        .collect();
    assert_eq!(
        history,
        [
            ("Released".to_string(), Some(V1.to_string())),
            ("RolledBack".to_string(), Some(V2.to_string()))
        ],
        "status.rollout.history"
    );
    let printed = flotilla(&["rollout", "history", "cart", "-n", ns])?;
    assert!(
        printed.contains("RolledBack") && printed.contains("cause: "),
        "{printed}"
    );
    println!("rollout history:\n{printed}");
    let end = probe.counts().await?;
    println!(
        "crashing canary: probe {} ok, {} failed, answers {:?}",
        end.ok, end.failed, end.versions
    );
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    assert_eq!(
        end.versions.keys().collect::<Vec<_>>(),
        ["v1"],
        "v1 answered throughout"
    );
    Ok(())
}

// 4. A rolling update to an image that does not exist: a pull failure may pass, so it
//    is rolled back when the progress deadline passes, not before.
#[tokio::test]
async fn missing_image_is_rolled_back_at_the_deadline() -> anyhow::Result<()> {
    let s = Scenario::new("pull").await?;
    let (client, ns) = (s.client(), s.ns());
    let rollout = "  rollout:\n    progressDeadlineSeconds: 20\n";
    apply_yaml(ns, &service("api", V1, 2, rollout))?;
    wait_released(client, ns, "api", V1).await?;
    let probe = Probe::start(client, ns, "api").await?;
    probe.wait_only("v1").await?;

    let started = Instant::now();
    let missing = "flotilla.local/does-not-exist:v9";
    apply_yaml(ns, &service("api", missing, 2, rollout))?;
    let ms = wait_rolled_back(client, ns, "api").await?;
    let took = started.elapsed();
    let degraded = condition(&ms, "Degraded").unwrap().message.clone();
    println!("rolled back after {:.1}s: {degraded}", took.as_secs_f64());
    assert!(
        took >= Duration::from_secs(20),
        "not before the deadline: {took:?}"
    );
    assert!(
        degraded.contains("progress deadline 20s exceeded") && degraded.contains("on pod api-"),
        "{degraded}"
    );
    wait_pods_only(client, ns, "api", V1, 2).await?;
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("api")
        .await?;
    let image = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some(V1), "the Deployment is back on v1");
    let end = probe.counts().await?;
    println!(
        "missing image: probe {} ok, {} failed, answers {:?}",
        end.ok, end.failed, end.versions
    );
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    assert_eq!(end.versions.keys().collect::<Vec<_>>(), ["v1"]);
    Ok(())
}

// 5. `flotilla rollout promote` ends a manual pause; `flotilla rollout abort` during a
//    pause rolls back at once.
#[tokio::test]
async fn promote_skips_a_pause_and_abort_rolls_back() -> anyhow::Result<()> {
    let s = Scenario::new("steer").await?;
    let (client, ns) = (s.client(), s.ns());
    let rollout = "  rollout:\n    steps:\n    - {weight: 50, pause: manual}\n    progressDeadlineSeconds: 120\n";
    apply_yaml(ns, &service("feed", V1, 2, rollout))?;
    wait_released(client, ns, "feed", V1).await?;
    let probe = Probe::start(client, ns, "feed").await?;
    probe.wait_only("v1").await?;

    apply_yaml(ns, &service("feed", V2, 2, rollout))?;
    wait_microservice(client, ns, "feed", "paused at step 1", |ms| {
        phase(ms) == Some(RolloutPhase::Paused)
    })
    .await?;
    let status = flotilla(&["rollout", "status", "feed", "-n", ns])?;
    println!("{status}");
    assert!(
        status.contains("phase      Paused") && status.contains("flotilla rollout promote"),
        "{status}"
    );
    let promoted_at = Instant::now();
    println!("{}", flotilla(&["rollout", "promote", "feed", "-n", ns])?);
    wait_released(client, ns, "feed", V2).await?;
    println!(
        "promote: released {:.1}s after the promote of a manual pause",
        promoted_at.elapsed().as_secs_f64()
    );
    probe.wait_only("v2").await?;

    // v3: the same image told to say v3.
    let sets_name = "    value: feed\n";
    let v3 = service("feed", V2, 2, rollout).replace(
        sets_name,
        &format!("{sets_name}  - name: APP_VERSION\n    value: v3\n"),
    );
    apply_yaml(ns, &v3)?;
    wait_microservice(client, ns, "feed", "v3 paused at step 1", |ms| {
        phase(ms) == Some(RolloutPhase::Paused)
    })
    .await?;
    probe
        .wait_until("v3 answers", |c| c.versions.contains_key("v3"))
        .await?;
    let aborted_at = Instant::now();
    println!("{}", flotilla(&["rollout", "abort", "feed", "-n", ns])?);
    let ms = wait_rolled_back(client, ns, "feed").await?;
    let degraded = condition(&ms, "Degraded").unwrap().message.clone();
    println!(
        "abort: rolled back {:.1}s after the abort: {degraded}",
        aborted_at.elapsed().as_secs_f64()
    );
    assert!(
        degraded.contains("aborted by `flotilla rollout abort`"),
        "{degraded}"
    );
    wait_pods_only(client, ns, "feed", V2, 2).await?;
    probe.wait_only("v2").await?;
    let end = probe.counts().await?;
    println!(
        "promote/abort: probe {} ok, {} failed, answers {:?}",
        end.ok, end.failed, end.versions
    );
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    Ok(())
}

// 6. The operator killed mid-canary: started again, it resumes at the step it was at
//    (the release's start and the step never go back), and leaves nothing behind.
#[tokio::test]
async fn killed_operator_resumes_the_canary_at_its_step() -> anyhow::Result<()> {
    let s = Scenario::without_operator("resume").await?;
    let (client, ns) = (s.client(), s.ns());
    let mut operator = s.start_operator(&[])?;
    let rollout = "  rollout:\n    steps:\n    - {weight: 25, pause: 5s}\n    - {weight: 50, pause: 20s}\n    progressDeadlineSeconds: 120\n";
    apply_yaml(ns, &service("pay", V1, 4, rollout))?;
    wait_released(client, ns, "pay", V1).await?;
    let probe = Probe::start(client, ns, "pay").await?;
    probe.wait_only("v1").await?;

    apply_yaml(ns, &service("pay", V2, 4, rollout))?;
    let before = wait_microservice(client, ns, "pay", "paused at step 2", |ms| {
        phase(ms) == Some(RolloutPhase::Paused) && rollout_of(ms).step == Some(2)
    })
    .await?;
    operator.kill9()?;
    let at_kill = rollout_of(&before);
    println!("killed at {}", describe_rollout(&before));
    operator.restart()?;

    let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
    let steps_seen = std::sync::Mutex::new(Vec::new());
    let after = wait_for("the canary to finish", Duration::from_secs(150), || async {
        let ms = api.get("pay").await?;
        let rollout = rollout_of(&ms);
        if rollout.phase != Some(RolloutPhase::Healthy) {
            let seen = (
                rollout.phase,
                rollout.step,
                rollout.release_started_at.clone(),
            );
            let mut steps_seen = steps_seen.lock().unwrap();
            if steps_seen.last() != Some(&seen) {
                steps_seen.push(seen);
            }
        }
        Ok(
            if ms.is_ready() && rollout.phase == Some(RolloutPhase::Healthy) {
                Poll::Ready(ms)
            } else {
                Poll::Pending(describe_rollout(&ms))
            },
        )
    })
    .await?;
    let steps_seen = steps_seen.into_inner().unwrap();
    println!(
        "seen after the restart (phase, step): {:?}",
        steps_seen.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>()
    );
    for (phase, step, started) in &steps_seen {
        assert!(
            step.unwrap_or(0) >= 2,
            "went back to step {step:?} ({phase:?})"
        );
        assert_eq!(
            started, &at_kill.release_started_at,
            "the release started again"
        );
    }
    assert_eq!(rollout_of(&after).stable_image.as_deref(), Some(V2));
    wait_pods_only(client, ns, "pay", V2, 4).await?;
    probe.wait_only("v2").await?;
    let end = probe.counts().await?;
    println!(
        "operator killed mid-canary: probe {} ok, {} failed, answers {:?}",
        end.ok, end.failed, end.versions
    );
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    Ok(())
}

// 7. The HTTP gate: a canary whose pods answer the gate's path with 502 is rolled back,
//    the cause naming the gate, the pod and the status (the checks go through the API
//    server's pod proxy); no request fails.
#[tokio::test]
async fn http_gate_failure_rolls_back() -> anyhow::Result<()> {
    // The chart's httpGates=true: get on pods/proxy.
    let s = Scenario::with_operator_args("gate", &["--http-gates=true"]).await?;
    let (client, ns) = (s.client(), s.ns());
    // `/call/UNSET` answers 502: the variable it would call is not set.
    let rollout = "  rollout:\n    steps:\n    - {weight: 50, pause: 5s}\n    gates:\n      http: {path: /call/UNSET, successPercent: 90}\n    progressDeadlineSeconds: 120\n";
    apply_yaml(ns, &service("search", V1, 2, rollout))?;
    wait_released(client, ns, "search", V1).await?;
    let probe = Probe::start(client, ns, "search").await?;
    probe.wait_only("v1").await?;

    let started = Instant::now();
    apply_yaml(ns, &service("search", V2, 2, rollout))?;
    let ms = wait_rolled_back(client, ns, "search").await?;
    let degraded = condition(&ms, "Degraded").unwrap().message.clone();
    println!(
        "http gate: rolled back after {:.1}s: {degraded}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        degraded.contains("gate http /call/UNSET:")
            && degraded.contains("answered 502")
            && degraded.contains("search-canary-"),
        "{degraded}"
    );
    wait_pods_only(client, ns, "search", V1, 2).await?;
    let end = probe.counts().await?;
    println!(
        "http gate: probe {} ok, {} failed, answers {:?}",
        end.ok, end.failed, end.versions
    );
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    Ok(())
}

/// The ConfigMap the pod template reads through `envFrom`.
fn env_from_config_map(template: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Option<String> {
    template?
        .containers
        .first()?
        .env_from
        .as_ref()?
        .first()?
        .config_map_ref
        .as_ref()
        .map(|r| r.name.clone())
}

// 8. Config released with the pods (issue 27): a ConfigMap edit that makes the app crash
//    is a release, rolled back by itself; the stable pods read a snapshot of the old
//    content, so a stable pod deleted afterwards comes back on the old config (without
//    snapshots it would read the bad edit and crash). No request fails.
#[tokio::test]
async fn a_bad_config_edit_is_rolled_back_with_its_content() -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{DeleteParams, PostParams};
    let s = Scenario::new("config-release").await?;
    let (client, ns) = (s.client(), s.ns());
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let config = |mode: &str| ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("cart-config".into()),
            ..Default::default()
        },
        data: Some([("CONFIG_MODE".to_string(), mode.to_string())].into()),
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &config("ok"))
        .await?;
    // One release kept: the snapshots of the others are deleted once nothing reads them.
    let extra = "  envFrom:\n  - configMapRef: {name: cart-config}\n  rollout:\n    steps:\n    - {weight: 50, pause: 10s}\n    progressDeadlineSeconds: 120\n    revisionHistoryLimit: 1\n";
    apply_yaml(ns, &service("cart", V1, 2, extra))?;
    let released = wait_released(client, ns, "cart", V1).await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let good = env_from_config_map(
        deployments
            .get("cart")
            .await?
            .spec
            .and_then(|s| s.template.spec)
            .as_ref(),
    )
    .expect("the Deployment reads a ConfigMap");
    assert!(
        good.starts_with("cart-cart-config-"),
        "the pods read a snapshot, not the ConfigMap: {good}"
    );
    let copy = config_maps.get(&good).await?;
    assert_eq!(copy.immutable, Some(true), "the snapshot is immutable");
    assert_eq!(
        copy.data
            .as_ref()
            .and_then(|d| d.get("CONFIG_MODE"))
            .map(String::as_str),
        Some("ok")
    );
    assert_eq!(
        rollout_of(&released)
            .history
            .last()
            .map(|r| r.config.clone()),
        Some(vec![good.clone()]),
        "the release records its snapshot"
    );
    let probe = Probe::start(client, ns, "cart").await?;
    probe.wait_only("v1").await?;

    let edited = Instant::now();
    config_maps
        .replace("cart-config", &PostParams::default(), &{
            let mut bad = config("crash");
            bad.metadata.resource_version = config_maps
                .get("cart-config")
                .await?
                .metadata
                .resource_version;
            bad
        })
        .await?;
    let ms = wait_rolled_back(client, ns, "cart").await?;
    let degraded = condition(&ms, "Degraded").unwrap().message.clone();
    println!(
        "bad config edit rolled back after {:.1}s: {degraded}",
        edited.elapsed().as_secs_f64()
    );
    assert!(degraded.contains("cart-canary-"), "{degraded}");
    let history = rollout_of(&ms).history;
    let bad = history
        .last()
        .filter(|r| r.outcome == "RolledBack")
        .and_then(|r| r.config.first().cloned())
        .unwrap_or_else(|| panic!("the rolled back release and its snapshot: {history:?}"));
    assert_ne!(bad, good);
    wait_pods_only(client, ns, "cart", V1, 2).await?;

    // A stable pod restarted after the rollback reads the old content.
    let selector = "app.kubernetes.io/instance=cart";
    let victim = pods_with(client, ns, selector).await?[0]
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    Api::<Pod>::namespaced(client.clone(), ns)
        .delete(&victim, &DeleteParams::default())
        .await?;
    let pods = wait_for(
        "a new stable pod, ready",
        Duration::from_secs(120),
        || async {
            let pods = pods_with(client, ns, selector).await?;
            let ready = |p: &Pod| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            };
            let fresh = pods
                .iter()
                .any(|p| p.metadata.name.as_deref() != Some(victim.as_str()));
            Ok(
                if pods.len() == 2
                    && fresh
                    && pods
                        .iter()
                        .all(|p| ready(p) && p.metadata.deletion_timestamp.is_none())
                    && pods
                        .iter()
                        .all(|p| p.metadata.name.as_deref() != Some(victim.as_str()))
                {
                    Poll::Ready(pods)
                } else {
                    Poll::Pending(format!(
                        "{:?}",
                        pods.iter()
                            .map(|p| (p.metadata.name.clone(), ready(p)))
                            .collect::<Vec<_>>()
                    ))
                },
            )
        },
    )
    .await?;
    for pod in &pods {
        assert_eq!(
            env_from_config_map(pod.spec.as_ref()).as_deref(),
            Some(good.as_str()),
            "pod {:?} reads the released config",
            pod.metadata.name
        );
    }
    let still = wait_microservice(client, ns, "cart", "still rolled back", |ms| {
        phase(ms) == Some(RolloutPhase::RolledBack)
    })
    .await?;
    assert_eq!(
        rollout_of(&still).stable_revision,
        rollout_of(&released).stable_revision
    );
    println!("a stable pod restarted after the rollback reads {good} (the bad edit is in {bad})");
    // The config fixed: released, and the snapshots no kept release reads are deleted.
    let fixed_rv = config_maps
        .get("cart-config")
        .await?
        .metadata
        .resource_version;
    config_maps
        .replace("cart-config", &PostParams::default(), &{
            let mut fixed = config("ok-again");
            fixed.metadata.resource_version = fixed_rv;
            fixed
        })
        .await?;
    let fixed_release = wait_microservice(client, ns, "cart", "the fixed config released", |ms| {
        ms.is_ready()
            && phase(ms) == Some(RolloutPhase::Healthy)
            && rollout_of(ms).stable_revision != rollout_of(&released).stable_revision
    })
    .await?;
    let kept = rollout_of(&fixed_release).history[0].config.clone();
    let snapshots = wait_for(
        "only the released snapshot left",
        Duration::from_secs(60),
        || async {
            let names: Vec<String> = config_maps
                .list(&ListParams::default().labels("flotilla.dev/config-snapshot"))
                .await?
                .items
                .into_iter()
                .filter_map(|cm| cm.metadata.name)
                .collect();
            Ok(if names == kept {
                Poll::Ready(names)
            } else {
                Poll::Pending(format!("snapshots {names:?}, kept {kept:?}"))
            })
        },
    )
    .await?;
    println!("after the fix, snapshots left: {snapshots:?} ({good} and {bad} deleted)");
    let end = probe.counts().await?;
    println!(
        "bad config edit: probe {} ok, {} failed, answers {:?}",
        end.ok, end.failed, end.versions
    );
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    Ok(())
}

/// `basket`, 2 replicas of `image` failing `fail_percent`% of its requests, released by a
/// canary under the traffic gate, reading the pods or, with `prometheus`, that address.
fn basket(image: &str, fail_percent: u32, prometheus: Option<&str>) -> String {
    let source = prometheus
        .map(|address| format!("        source: {{prometheus: {{address: \"{address}\"}}}}\n"))
        .unwrap_or_default();
    testapp(
        "basket",
        &format!(
            "  - name: FAIL_PERCENT\n    value: \"{fail_percent}\"\n  replicas: 2\n  network:\n    allowFrom:\n    - podSelector:\n        matchLabels:\n          app: {PROBE_LABEL}\n  rollout:\n    steps:\n    - {{weight: 50, pause: 5s}}\n    progressDeadlineSeconds: 120\n    gates:\n      metrics:\n        requests: testapp_http_requests_total\n        errors: 'code=~\"5..\"'\n        minRequests: 50\n        maxErrorIncreasePercent: 1\n        latency: {{histogram: testapp_http_request_duration_seconds, quantile: 0.99, maxIncreaseMillis: 250}}\n{source}"
        ),
    )
    .replace(V1, image)
}

// 9. The traffic gate (issue 27): a canary failing 20% of its requests is rolled back by
//    the comparison with the stable pods' metrics, read through the pod proxy, the cause
//    naming both ratios; then a canary failing none passes the same gate. The only
//    failed requests are the canary's injected ones.
#[tokio::test]
async fn the_traffic_gate_judges_the_canary_against_the_stable_pods() -> anyhow::Result<()> {
    // Metrics are read through the pod proxy: the chart's httpGates=true.
    let s = Scenario::with_operator_args("traffic-gate", &["--http-gates=true"]).await?;
    let (client, ns) = (s.client(), s.ns());
    let manifest = |image: &str, fail_percent: u32| basket(image, fail_percent, None);
    apply_yaml(ns, &manifest(V1, 0))?;
    wait_released(client, ns, "basket", V1).await?;
    let probe = Probe::start(client, ns, "basket").await?;
    probe.wait_only("v1").await?;

    let started = Instant::now();
    apply_yaml(ns, &manifest(V2, 20))?;
    let ms = wait_rolled_back(client, ns, "basket").await?;
    let degraded = condition(&ms, "Degraded").unwrap().message.clone();
    println!(
        "traffic gate: a 20% canary rolled back after {:.1}s: {degraded}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        degraded.contains("gate metrics: canary ")
            && degraded.contains("% errors vs stable 0.0% (max +1%) over "),
        "{degraded}"
    );
    let canary_percent: f64 = degraded
        .split("gate metrics: canary ")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the canary's ratio in {degraded}"));
    assert!(
        (15.0..=25.0).contains(&canary_percent),
        "the canary failed about 20%: {canary_percent}"
    );
    wait_pods_only(client, ns, "basket", V1, 2).await?;
    let after_rollback = probe.counts().await?;
    println!(
        "traffic gate, 20% canary: probe {} ok, {} failed, answers {:?}, failures by version {:?}",
        after_rollback.ok,
        after_rollback.failed,
        after_rollback.versions,
        after_rollback.failed_versions
    );
    assert_eq!(
        after_rollback.failed_versions.keys().collect::<Vec<_>>(),
        ["v2"],
        "only the canary failed requests: {after_rollback:?}"
    );
    assert_eq!(
        after_rollback.failed, after_rollback.failed_versions["v2"],
        "every failed request is an injected one of the canary: {after_rollback:?}"
    );

    // The same gate passes a canary that fails nothing.
    let started = Instant::now();
    apply_yaml(ns, &manifest(V2, 0))?;
    let released = wait_released(client, ns, "basket", V2).await?;
    println!(
        "traffic gate: a 0% canary released after {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        rollout_of(&released).message.unwrap_or_default()
    );
    wait_pods_only(client, ns, "basket", V2, 2).await?;
    let end = probe.counts().await?;
    println!(
        "traffic gate, 0% canary: probe {} ok, {} failed, answers {:?}",
        end.ok, end.failed, end.versions
    );
    assert_eq!(
        end.failed, after_rollback.failed,
        "no request failed during the second release: {end:?}"
    );
    Ok(())
}

// 10. `flotilla rollout undo` (issue 27): back to release 1 while the spec still asks for
//     v2, the operator SIGKILLed mid-undo and started again (it resumes from the status:
//     nothing left behind), then forward to release 2 again; each undo skips the canary's
//     pause, and no request fails throughout.
#[tokio::test]
async fn undo_goes_back_and_forth_and_survives_a_kill() -> anyhow::Result<()> {
    let s = Scenario::without_operator("undo").await?;
    let (client, ns) = (s.client(), s.ns());
    let mut operator = s.start_operator(&[])?;
    let rollout = "  rollout:\n    steps:\n    - {weight: 50, pause: 30s}\n    progressDeadlineSeconds: 120\n";
    apply_yaml(ns, &service("ledger", V1, 2, rollout))?;
    wait_released(client, ns, "ledger", V1).await?;
    let probe = Probe::start(client, ns, "ledger").await?;
    probe.wait_only("v1").await?;
    apply_yaml(ns, &service("ledger", V2, 2, rollout))?;
    let released = wait_released(client, ns, "ledger", V2).await?;
    let numbers: Vec<(i64, Option<String>)> = rollout_of(&released)
        .history
        .iter()
        .map(|r| (r.number, r.image.clone()))
        .collect();
    assert_eq!(
        numbers,
        [(1, Some(V1.to_string())), (2, Some(V2.to_string()))],
        "numbered history"
    );
    wait_pods_only(client, ns, "ledger", V2, 2).await?;

    // Back to release 1; killed while the undo's canary is under way.
    let started = Instant::now();
    let said = flotilla(&["rollout", "undo", "ledger", "-n", ns, "--to-revision", "1"])?;
    println!("{}", said.trim_end());
    let under_way = wait_microservice(client, ns, "ledger", "the undo under way", |ms| {
        let r = rollout_of(ms);
        r.undo.is_some() && r.phase != Some(RolloutPhase::Healthy)
    })
    .await?;
    operator.kill9()?;
    println!("killed mid-undo: {}", describe_rollout(&under_way));
    operator.restart()?;
    let undone = wait_released(client, ns, "ledger", V1).await?;
    let took = started.elapsed();
    let undo = rollout_of(&undone).undo.expect("the undo in effect");
    println!(
        "undo to release 1 done in {:.1}s (its canary's 30 s pause skipped), across a SIGKILL: revision {} in place of {}",
        took.as_secs_f64(),
        undo.revision,
        undo.spec_revision
    );
    assert!(
        took < Duration::from_secs(30),
        "the pause was skipped: {took:?}"
    );
    assert_eq!(
        undone.spec.image, V2,
        "the spec is left as it is: {:?}",
        undone.spec.image
    );
    let status = flotilla(&["rollout", "status", "ledger", "-n", ns])?;
    assert!(status.contains("runs in place of the spec's"), "{status}");
    wait_pods_only(client, ns, "ledger", V1, 2).await?;
    probe.wait_only("v1").await?;

    // Forward to release 2: the spec's own revision, which ends the undo.
    let started = Instant::now();
    flotilla(&["rollout", "undo", "ledger", "-n", ns, "--to-revision", "2"])?;
    let forward = wait_microservice(client, ns, "ledger", "v2 again, no undo", |ms| {
        let r = rollout_of(ms);
        ms.is_ready()
            && r.phase == Some(RolloutPhase::Healthy)
            && r.stable_image.as_deref() == Some(V2)
            && r.undo.is_none()
    })
    .await?;
    println!(
        "undo to release 2 (the spec's) done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    wait_pods_only(client, ns, "ledger", V2, 2).await?;
    probe.wait_only("v2").await?;
    let printed = flotilla(&["rollout", "history", "ledger", "-n", ns])?;
    println!("rollout history:\n{printed}");
    let images: Vec<Option<String>> = rollout_of(&forward)
        .history
        .iter()
        .map(|r| r.image.clone())
        .collect();
    assert_eq!(
        images,
        [V1, V2, V1, V2].map(|i| Some(i.to_string())),
        "each undo is a release in the history"
    );
    let end = probe.counts().await?;
    println!(
        "undo back and forth: probe {} ok, {} failed, answers {:?}",
        end.ok, end.failed, end.versions
    );
    assert_eq!(end.failed, 0, "failed requests: {end:?}");
    Ok(())
}

// 11. `dependsOn[].waitForRelease` (issue 27): a caller and its callee edited in one
//     apply; the caller's release waits (Progressing WaitingForDependency, naming the
//     callee) while the callee's canary runs, and starts once the callee is released.
#[tokio::test]
async fn a_caller_waits_for_its_dependency_release() -> anyhow::Result<()> {
    let s = Scenario::new("wait-release").await?;
    let (client, ns) = (s.client(), s.ns());
    let callee = |image: &str| {
        service(
            "users",
            image,
            2,
            "  rollout:\n    steps:\n    - {weight: 50, pause: 15s}\n    progressDeadlineSeconds: 120\n",
        )
    };
    let caller = |image: &str| {
        service(
            "frontend",
            image,
            1,
            "  dependsOn:\n  - {name: users, waitForRelease: true}\n",
        )
    };
    apply_yaml(ns, &format!("{}\n---\n{}", callee(V1), caller(V1)))?;
    wait_released(client, ns, "users", V1).await?;
    wait_released(client, ns, "frontend", V1).await?;

    let edited = Instant::now();
    apply_yaml(ns, &format!("{}\n---\n{}", caller(V2), callee(V2)))?;
    let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
    // Every WaitingForDependency message seen: first the settling wait, then the one
    // naming users while its canary runs.
    let waited = std::sync::Mutex::new(Vec::<String>::new());
    let started_while = std::sync::Mutex::new(None::<(Option<String>, Option<RolloutPhase>)>);
    wait_for(
        "frontend released after users",
        Duration::from_secs(150),
        || async {
            let frontend = api.get("frontend").await?;
            let users = api.get("users").await?;
            if let Some(progressing) =
                condition(&frontend, "Progressing").filter(|c| c.reason == "WaitingForDependency")
            {
                let mut waited = waited.lock().unwrap();
                if !waited.contains(&progressing.message) {
                    waited.push(progressing.message.clone());
                }
            }
            let f = rollout_of(&frontend);
            let starting = f.revision.is_some()
                && f.revision != f.stable_revision
                && f.release_started_at.is_some();
            if starting || f.stable_image.as_deref() == Some(V2) {
                let u = rollout_of(&users);
                started_while
                    .lock()
                    .unwrap()
                    .get_or_insert((u.stable_image.clone(), u.phase));
            }
            Ok(
                if frontend.is_ready() && f.stable_image.as_deref() == Some(V2) {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!(
                        "frontend: {}; users: {}",
                        describe_rollout(&frontend),
                        describe_rollout(&users)
                    ))
                },
            )
        },
    )
    .await?;
    let waited = waited.into_inner().unwrap();
    let started_while = started_while.into_inner().unwrap();
    println!(
        "waitForRelease: frontend released {:.1}s after the apply; it waited: {waited:?}; users when frontend's release started: {started_while:?}",
        edited.elapsed().as_secs_f64()
    );
    assert!(
        waited
            .iter()
            .any(|message| message.contains(&format!("{ns}/users"))),
        "Progressing=WaitingForDependency naming users seen on frontend: {waited:?}"
    );
    assert_eq!(
        started_while,
        Some((Some(V2.to_string()), Some(RolloutPhase::Healthy))),
        "frontend's release started only once users' was done"
    );
    wait_released(client, ns, "users", V2).await?;
    Ok(())
}

// 12. The caller gate (issue 27): a callee whose canary breaks its caller (the caller's
//     readiness calls it) is rolled back by `gates.dependents`, naming the caller, though
//     its own pods stay ready; the caller is ready again after. The only failed requests
//     are the canary's injected ones.
#[tokio::test]
async fn a_canary_that_breaks_its_caller_is_rolled_back() -> anyhow::Result<()> {
    let s = Scenario::new("caller-gate").await?;
    let (client, ns) = (s.client(), s.ns());
    let callee = |image: &str, fail_percent: u32| {
        testapp(
            "users",
            &format!(
                "  - name: FAIL_PERCENT\n    value: \"{fail_percent}\"\n  replicas: 2\n  network:\n    allowFrom:\n    - podSelector:\n        matchLabels:\n          app: {PROBE_LABEL}\n  rollout:\n    steps:\n    - {{weight: 50, pause: 30s}}\n    progressDeadlineSeconds: 120\n    gates:\n      dependents: true\n"
            ),
        )
        .replace(V1, image)
    };
    // Ready only while its calls to users succeed.
    let caller = testapp(
        "frontend",
        "  replicas: 2\n  dependsOn:\n  - name: users\n  probes:\n    readiness:\n      http: {path: /call/USERS_URL}\n      periodSeconds: 1\n      failureThreshold: 2\n",
    );
    apply_yaml(ns, &format!("{}\n---\n{caller}", callee(V1, 0)))?;
    wait_released(client, ns, "users", V1).await?;
    wait_released(client, ns, "frontend", V1).await?;
    let probe = Probe::start(client, ns, "users").await?;
    probe.wait_only("v1").await?;

    let started = Instant::now();
    apply_yaml(ns, &callee(V2, 100))?;
    let ms = wait_rolled_back(client, ns, "users").await?;
    let degraded = condition(&ms, "Degraded").unwrap().message.clone();
    println!(
        "caller gate: rolled back after {:.1}s: {degraded}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        degraded.contains(&format!("gate dependents: caller {ns}/frontend")),
        "{degraded}"
    );
    wait_pods_only(client, ns, "users", V1, 2).await?;
    wait_released(client, ns, "frontend", V1).await?;
    let end = probe.counts().await?;
    println!(
        "caller gate: probe {} ok, {} failed, answers {:?}, failures by version {:?}",
        end.ok, end.failed, end.versions, end.failed_versions
    );
    assert_eq!(
        end.failed,
        end.failed_versions.get("v2").copied().unwrap_or(0),
        "only the canary's injected failures: {end:?}"
    );
    Ok(())
}

/// A Prometheus (Debian's package, installed by `e2e/cluster/install.sh`) scraping the
/// pods of one namespace every second; stopped on drop. Debian builds it without
/// Kubernetes discovery, so the pods are its file-based targets, which a task rewrites
/// every second from the API (as a ServiceMonitor's discovery would find them).
struct Prometheus {
    child: std::process::Child,
    address: String,
    dir: std::path::PathBuf,
    targets: tokio::task::JoinHandle<()>,
}

/// The running pods of `ns` serving port 8080, as Prometheus file targets.
async fn write_targets(
    client: &kube::Client,
    ns: &str,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let pods = pods_with(client, ns, "app.kubernetes.io/managed-by=flotilla").await?;
    let targets: Vec<serde_json::Value> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            Some(serde_json::json!({
                "targets": [format!("{ip}:8080")],
                "labels": {"pod": p.metadata.name.clone()?, "namespace": ns},
            }))
        })
        .collect();
    let staged = path.with_extension("tmp");
    std::fs::write(&staged, serde_json::to_vec(&targets)?)?;
    std::fs::rename(&staged, path)?;
    Ok(())
}

impl Prometheus {
    async fn start(client: &kube::Client, ns: &str) -> anyhow::Result<Prometheus> {
        // Named after the test's namespace: unique, and removed on drop.
        let dir = std::env::temp_dir().join(format!("flotilla-e2e-prometheus-{ns}"));
        std::fs::create_dir_all(&dir)?;
        let targets_path = dir.join("targets.json");
        write_targets(client, ns, &targets_path).await?;
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 5s}}
scrape_configs:
- job_name: flotilla-e2e
  file_sd_configs:
  - files: ['{}']
    refresh_interval: 1s
",
            targets_path.display()
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("prometheus.log"))?;
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("starting prometheus (Debian's package; e2e/cluster/install.sh installs it): {e}")
            })?;
        let targets = {
            let (client, ns) = (client.clone(), ns.to_string());
            // Discovery's cadence, not a wait: the targets follow the pods each second.
            let mut every_second = tokio::time::interval(Duration::from_secs(1));
            tokio::spawn(async move {
                loop {
                    every_second.tick().await;
                    if let Err(error) = write_targets(&client, &ns, &targets_path).await {
                        eprintln!("Prometheus targets: {error}");
                    }
                }
            })
        };
        let prometheus = Prometheus {
            child,
            address,
            dir,
            targets,
        };
        let ready = format!("{}/-/ready", prometheus.address);
        wait_for("Prometheus ready", Duration::from_secs(60), || async {
            let out = std::process::Command::new("curl")
                .args(["-sf", "-o", "/dev/null", &ready])
                .status()?;
            Ok(if out.success() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{ready} not ready"))
            })
        })
        .await?;
        Ok(prometheus)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.targets.abort();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// 13. The traffic gate's Prometheus source (issue 27), against a real Prometheus that
//     scrapes the pods: a canary failing 20% of its requests is rolled back, the cause
//     naming both ratios as Prometheus counted them. The operator calls no pod (no
//     --http-gates).
#[tokio::test]
async fn the_traffic_gate_reads_a_real_prometheus() -> anyhow::Result<()> {
    let s = Scenario::new("prom-gate").await?;
    let (client, ns) = (s.client(), s.ns());
    let prometheus = Prometheus::start(client, ns).await?;
    let manifest =
        |image: &str, fail_percent: u32| basket(image, fail_percent, Some(&prometheus.address));
    apply_yaml(ns, &manifest(V1, 0))?;
    wait_released(client, ns, "basket", V1).await?;
    let probe = Probe::start(client, ns, "basket").await?;
    probe.wait_only("v1").await?;

    let started = Instant::now();
    apply_yaml(ns, &manifest(V2, 20))?;
    let ms = wait_rolled_back(client, ns, "basket").await?;
    let degraded = condition(&ms, "Degraded").unwrap().message.clone();
    println!(
        "Prometheus source: a 20% canary rolled back after {:.1}s: {degraded}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        degraded.contains("gate metrics: canary ")
            && degraded.contains("% errors vs stable 0.0% (max +1%) over "),
        "{degraded}"
    );
    wait_pods_only(client, ns, "basket", V1, 2).await?;
    let end = probe.counts().await?;
    println!(
        "Prometheus source: probe {} ok, {} failed, failures by version {:?}",
        end.ok, end.failed, end.failed_versions
    );
    assert_eq!(
        end.failed,
        end.failed_versions.get("v2").copied().unwrap_or(0),
        "only the canary's injected failures: {end:?}"
    );
    Ok(())
}
