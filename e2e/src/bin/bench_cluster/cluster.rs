//! The cluster and the operator process: the cordon, the operator's start and memory,
//! its quiet in the audit log, unrelated objects, and what machine the figures come from.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use flotilla_e2e::fault::{AuditTail, metric};
use flotilla_e2e::steps::run_args;
use flotilla_e2e::{Operator, Poll, http_get, kubectl, wait_for};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, PostParams};
use kube::discovery::ApiResource;
use kube::{Api, ResourceExt};
use serde::Serialize;

use crate::{CHILD_KINDS, CREATE_CONCURRENCY, QUIET, UNRELATED};

/// Undoes what the bench did to the cluster when dropped: waits for its namespaces to be
/// gone (their TestNamespace guards delete them), then uncordons the nodes, so no
/// Pending pod of the bench is ever scheduled.
#[derive(Default)]
pub struct Cordon {
    pub nodes: Vec<String>,
    pub namespaces: Vec<String>,
}

impl Cordon {
    /// Cordons every schedulable node.
    pub async fn all_nodes(client: &kube::Client) -> anyhow::Result<Self> {
        let mut this = Self::default();
        for node in Api::<Node>::all(client.clone())
            .list(&ListParams::default())
            .await?
        {
            if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
                continue;
            }
            let name = node.name_any();
            // Owned before cordoning: a failure below still uncordons it.
            this.nodes.push(name.clone());
            kubectl(&["cordon", &name])?;
        }
        Ok(this)
    }
}

impl Drop for Cordon {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = kubectl(&[
                "delete",
                "namespace",
                ns,
                "--wait=false",
                "--ignore-not-found",
            ]);
        }
        for ns in &self.namespaces {
            eprintln!("cleanup: waiting for namespace {ns} to be gone");
            let object = format!("namespace/{ns}");
            if let Err(e) = kubectl(&["wait", "--for=delete", &object, "--timeout=600s"]) {
                eprintln!("cleanup: {e:#}");
            }
        }
        for node in &self.nodes {
            match kubectl(&["uncordon", node]) {
                Ok(_) => eprintln!("cleanup: uncordoned {node}"),
                Err(e) => {
                    eprintln!("cleanup: uncordoning {node}: {e:#} (run: kubectl uncordon {node})")
                }
            }
        }
    }
}

pub fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS without a value")?
        .parse()?)
}

/// Runs the operator for `namespace` as the ServiceAccount of `kubeconfig`; returns it
/// with its metrics address once `/readyz` says every cache synced.
pub async fn start_operator(
    namespace: &str,
    kubeconfig: &str,
) -> anyhow::Result<(Operator, String)> {
    let mut op = Operator::start_with_env(
        &format!("{namespace}-operator"),
        &run_args(namespace),
        &[("KUBECONFIG", kubeconfig)],
    )?;
    let (health, metrics) = wait_for(
        "the operator to log its addresses",
        Duration::from_secs(30),
        || {
            let addrs = op.logged_addr("health").zip(op.logged_addr("metrics"));
            let poll = match addrs {
                Some(addrs) => Poll::Ready(addrs),
                None => Poll::Pending(op.log_tail(5)),
            };
            std::future::ready(Ok(poll))
        },
    )
    .await?;
    wait_for(
        "the operator's /readyz",
        Duration::from_secs(60),
        || async {
            let response = http_get(&format!("http://{health}/readyz")).await?;
            Ok(if response.status == 200 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{}: {}", response.status, response.body.trim()))
            })
        },
    )
    .await?;
    anyhow::ensure!(op.is_running(), "the operator exited: {}", op.log_tail(20));
    Ok((op, metrics))
}

/// Reads the audit log until the operator has written nothing for [`QUIET`] (and at
/// least [`QUIET`] after `since`).
pub async fn wait_quiet(
    tail: &mut AuditTail,
    since: Timestamp,
    deadline: Duration,
) -> anyhow::Result<()> {
    wait_for(
        format!("the operator to write nothing for {QUIET:?}"),
        deadline,
        || {
            let poll = tail.read().map(|_| {
                let last = tail
                    .writes
                    .iter()
                    .map(|w| w.completed)
                    .max()
                    .map_or(since, |w| w.max(since));
                let idle = Timestamp::now().duration_since(last).as_secs_f64();
                if idle >= QUIET.as_secs_f64() {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!(
                        "{} writes so far, the last {idle:.1} s ago",
                        tail.writes.len()
                    ))
                }
            });
            std::future::ready(poll)
        },
    )
    .await
}

/// How many Deployments are at each `metadata.generation`.
pub async fn deployment_generations(
    client: &kube::Client,
    namespace: &str,
) -> anyhow::Result<BTreeMap<i64, usize>> {
    let deployments =
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), namespace)
            .list_metadata(&ListParams::default())
            .await?;
    let mut out = BTreeMap::new();
    for d in deployments {
        *out.entry(d.metadata.generation.unwrap_or(0)).or_default() += 1;
    }
    Ok(out)
}

/// Creates [`UNRELATED`] objects of kind K (no label the operator selects), waits until
/// the operator's watch of that kind has delivered them and gone quiet; returns the
/// creation time and the operator's RSS then.
pub async fn unrelated<K>(
    client: &kube::Client,
    namespace: &str,
    metrics: &str,
    pid: u32,
    kind: &str,
) -> anyhow::Result<(f64, f64)>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let started = Instant::now();
    let prefix = format!("unrelated-{}", kind.to_lowercase());
    futures::stream::iter(0..UNRELATED)
        .map(|i| {
            let api = api.clone();
            let prefix = &prefix;
            async move {
                let object: K = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("{prefix}-{i}")},
                    "data": {"key": "dmFsdWU="},
                }))?;
                api.create(&PostParams::default(), &object).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let created = Timestamp::now().as_millisecond() as f64 / 1e3;
    // Its watch delivered something once the last create was answered (the gauge holds
    // whole seconds: 2 s of slack), then nothing for 3 s.
    let last_event = format!("flotilla_watch_last_event_timestamp_seconds{{watch=\"{kind}\"}}");
    wait_for(
        format!("the operator's {kind} watch to go quiet"),
        Duration::from_secs(300),
        || async {
            let last = metric(metrics, &last_event).await?;
            let now = Timestamp::now().as_millisecond() as f64 / 1e3;
            Ok(if last >= created - 2.0 && now - last >= 3.0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!(
                    "last {kind} event at {last:.1}, created by {created:.1}, now {now:.1}"
                ))
            })
        },
    )
    .await?;
    Ok((secs, rss_kib(pid)?))
}

/// The served resource of each child kind (autoscaling and policy versions differ
/// between servers).
pub async fn child_resources(
    client: &kube::Client,
) -> anyhow::Result<Vec<(&'static str, ApiResource)>> {
    let mut out = Vec::new();
    for (group, kind) in CHILD_KINDS {
        let (resource, _) = kube::discovery::group(client, group)
            .await?
            .recommended_kind(kind)
            .with_context(|| format!("the server does not serve {kind}"))?;
        out.push((kind, resource));
    }
    Ok(out)
}

/// Where the figures come from: CPU, memory, kernel, server and operator versions.
pub async fn machine(client: &kube::Client) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let server = client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .unwrap_or_else(|e| format!("? ({e})"));
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    m.insert(
        "summary".into(),
        format!(
            "{cores} cores ({model}), {mem_gib:.0} GiB, Kubernetes {server}, flotilla {commit}"
        ),
    );
    m.insert("cpu".into(), model);
    m.insert("cores".into(), cores.to_string());
    m.insert("memory_gib".into(), format!("{mem_gib:.1}"));
    m.insert("kernel".into(), kernel.trim().to_string());
    m.insert("kubernetes".into(), server);
    m.insert("commit".into(), commit);
    m.insert(
        "flotilla_bin".into(),
        flotilla_e2e::operator::binary().display().to_string(),
    );
    m
}
