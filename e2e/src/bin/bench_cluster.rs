//! `make bench-cluster` (issue 13): the operator measured on a real cluster, next to
//! kubectl applying the same children.
//!
//! In order, on a cordoned cluster (pods stay Pending: the figures are the control
//! plane's, not the node's):
//! 1. kubectl: 8 parallel `kubectl apply --server-side` of exactly the children
//!    `flotilla render` gives for N Microservices, in a namespace of its own, deleted
//!    before the operator starts so both runs start from the same cluster;
//! 2. the operator (as its own ServiceAccount, so the audit log tells its writes apart)
//!    on an empty namespace, then N Microservices applied the same way (8 processes):
//!    time to all children,
//!    to every status current, writes per Microservice, reconciles, memory;
//! 3. edit latency with the operator idle, then while another N are created (2N);
//! 4. memory added by 10,000 unrelated ConfigMaps and 10,000 unrelated Secrets;
//! 5. writes over 2 minutes of idle.
//!
//! Prints one table (and writes it as JSON to `target/bench-cluster.json`), then exits 1
//! when a target was missed, 2 when the run itself failed. Namespaces, cluster roles and
//! the cordon are undone on every exit, also on failure and Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flotilla::api::Microservice;
use flotilla::builders::labels::MANAGED_SELECTOR;
use flotilla_e2e::fault::{
    AuditTail, Write, metric, operator_rbac, service_account_kubeconfig, service_account_user,
};
use flotilla_e2e::steps::{ensure_crds, run_args};
use flotilla_e2e::{
    ClusterObject, Operator, Poll, TestNamespace, apply_cluster_yaml, client, http_get, kubectl,
    kubectl_with_stdin, wait_for,
};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde::Serialize;
use tokio::task::JoinHandle;

/// kubectl processes applying the rendered children side by side.
const KUBECTL_PROCESSES: usize = 8;
/// Edits paced over the bulk create (about 2 x EDITS land while it runs), and the fewest
/// that make a figure under load.
const EDITS: usize = 50;
/// Edits measured one after another with the operator idle: with 50 the p99 would be the
/// single slowest edit; with 200 it is the second slowest.
const IDLE_EDITS: usize = 200;
/// The fastest pace of the edits during the second bulk create. They are spread over
/// the time the first one took, so that about 2 x EDITS land while it runs (it may go
/// faster) without the edits themselves becoming the load.
const MIN_EDIT_PACE: Duration = Duration::from_millis(20);
/// The env var the edits change.
const EDIT_VAR: &str = "EDIT";
/// Unrelated ConfigMaps, and as many Secrets.
const UNRELATED: usize = 10_000;
/// Requests in flight while creating them.
const CREATE_CONCURRENCY: usize = 32;
/// The idle window.
const IDLE: Duration = Duration::from_secs(120);
/// How long the operator may take to settle before the idle window: its longest hold of
/// progress (3 min) and then some.
const SETTLED_DEADLINE: Duration = Duration::from_secs(300);
/// No write by the operator for this long: it has settled.
const QUIET: Duration = Duration::from_secs(10);
/// The operator's ServiceAccount.
const OPERATOR_ACCOUNT: &str = "flotilla-bench";
/// The child kinds each bench Microservice gets: (API group, kind).
const CHILD_KINDS: [(&str, &str); 6] = [
    ("", "ServiceAccount"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("apps", "Deployment"),
    ("", "Service"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("policy", "PodDisruptionBudget"),
];

// ---------------------------------------------------------------------------------------
// The report

#[derive(Clone, Copy, Serialize)]
#[serde(tag = "op", content = "value")]
enum Target {
    #[serde(rename = "<=")]
    AtMost(f64),
    #[serde(rename = "==")]
    Exactly(f64),
    /// A rule the row checks itself (it sets `pass`).
    #[serde(rename = "rule")]
    Rule(&'static str),
}

#[derive(Serialize)]
struct Row {
    section: &'static str,
    figure: String,
    /// None: not measured (the run failed before).
    value: Option<f64>,
    unit: &'static str,
    target: Option<Target>,
    pass: Option<bool>,
    note: String,
}

#[derive(Serialize, Default)]
struct Report {
    n: usize,
    started: String,
    duration_seconds: f64,
    machine: BTreeMap<String, String>,
    rows: Vec<Row>,
    /// What the audit log shows beyond children and statuses, edit samples and the like.
    details: BTreeMap<String, serde_json::Value>,
    error: Option<String>,
}

impl Report {
    fn row(
        &mut self,
        section: &'static str,
        figure: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) {
        self.push(section, figure, Some(value), unit, None, "");
    }

    fn push(
        &mut self,
        section: &'static str,
        figure: impl Into<String>,
        value: Option<f64>,
        unit: &'static str,
        target: Option<Target>,
        note: &str,
    ) -> &mut Row {
        let pass = match (value, target) {
            (Some(v), Some(Target::AtMost(t))) => Some(v <= t + 1e-9),
            (Some(v), Some(Target::Exactly(t))) => Some((v - t).abs() < 1e-9),
            (None, Some(_)) => Some(false),
            _ => None,
        };
        self.rows.push(Row {
            section,
            figure: figure.into(),
            value,
            unit,
            target,
            pass,
            note: note.to_string(),
        });
        self.rows.last_mut().expect("just pushed")
    }

    fn missed(&self) -> usize {
        self.rows.iter().filter(|r| r.pass == Some(false)).count()
    }

    fn table(&self) -> String {
        let header = ["figure", "measured", "target", "result"];
        let mut lines: Vec<[String; 4]> = Vec::new();
        let mut sections: Vec<(usize, &str)> = Vec::new();
        for row in &self.rows {
            if sections.last().map(|s| s.1) != Some(row.section) {
                sections.push((lines.len(), row.section));
            }
            let value = row
                .value
                .map_or_else(|| "not measured".to_string(), |v| format_value(v, row.unit));
            let target = match row.target {
                None => String::new(),
                Some(Target::AtMost(t)) => format!("<= {}", format_value(t, row.unit)),
                Some(Target::Exactly(t)) => format!("== {}", format_value(t, row.unit)),
                Some(Target::Rule(rule)) => rule.to_string(),
            };
            let result = match row.pass {
                None => String::new(),
                Some(true) => "pass".into(),
                Some(false) => "FAIL".into(),
            };
            let figure = if row.note.is_empty() {
                row.figure.clone()
            } else {
                format!("{} ({})", row.figure, row.note)
            };
            lines.push([figure, value, target, result]);
        }
        let mut widths = header.map(str::len);
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let rule = format!(
            "+{}+\n",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("+")
        );
        let fmt_line = |cells: &[String; 4]| {
            format!(
                "| {:<w0$} | {:>w1$} | {:<w2$} | {:<w3$} |\n",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            )
        };
        out.push_str(&rule);
        out.push_str(&fmt_line(&header.map(String::from)));
        out.push_str(&rule);
        let mut next_section = sections.iter().peekable();
        for (i, line) in lines.iter().enumerate() {
            if let Some((_, name)) = next_section.next_if(|(start, _)| *start == i) {
                let title = format!("[{name}]");
                out.push_str(&fmt_line(&[
                    title,
                    String::new(),
                    String::new(),
                    String::new(),
                ]));
            }
            out.push_str(&fmt_line(line));
        }
        out.push_str(&rule);
        out
    }
}

fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "s" => format!("{v:.2} s"),
        "ms" => format!("{v:.1} ms"),
        "MiB" => format!("{v:.1} MiB"),
        "KiB" => format!("{v:.1} KiB"),
        "x" => format!("{v:.2}x"),
        "/s" => format!("{v:.0}/s"),
        _ if v.fract() == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

// ---------------------------------------------------------------------------------------
// Entry point

#[tokio::main]
async fn main() -> ExitCode {
    let n = match fleet_size() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("bench-cluster: {e:#}");
            return ExitCode::from(2);
        }
    };
    let report = Arc::new(Mutex::new(Report {
        n,
        started: Timestamp::now().to_string(),
        ..Report::default()
    }));
    let start = Instant::now();
    // Dropping the run (Ctrl-C) runs its guards: the cordon, namespaces and roles are
    // undone before the table is printed.
    let result = tokio::select! {
        result = run(n, report.clone()) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let mut report = report.lock().expect("report lock");
    report.duration_seconds = start.elapsed().as_secs_f64();
    if let Err(e) = &result {
        report.error = Some(format!("{e:#}"));
        // The targets after the last row were never measured: the run fails them all.
        report.push(
            "run",
            "every phase ran (the error is below the table)",
            None,
            "",
            Some(Target::Exactly(1.0)),
            "",
        );
    }
    println!(
        "\nbench-cluster: N={n}, {:.0} s, on {}\n{}",
        report.duration_seconds,
        report.machine.get("summary").map_or("?", String::as_str),
        report.table()
    );
    let path = json_path();
    match serde_json::to_string_pretty(&*report)
        .map_err(anyhow::Error::from)
        .and_then(|json| Ok(std::fs::write(&path, json)?))
    {
        Ok(()) => println!("JSON: {}", path.display()),
        Err(e) => eprintln!("writing {}: {e:#}", path.display()),
    }
    if let Err(e) = result {
        eprintln!("bench-cluster failed: {e:#}");
        return ExitCode::from(2);
    }
    match report.missed() {
        0 => {
            println!("every target met");
            ExitCode::SUCCESS
        }
        missed => {
            println!("{missed} target(s) missed");
            ExitCode::from(1)
        }
    }
}

/// N: the first argument, else `$N`, else 500.
fn fleet_size() -> anyhow::Result<usize> {
    let raw = std::env::args().nth(1).or_else(|| std::env::var("N").ok());
    let n = match raw {
        Some(raw) => raw
            .parse::<usize>()
            .with_context(|| format!("N must be a number, not {raw:?}"))?,
        None => 500,
    };
    // Each Microservice depends on the next two of its batch.
    anyhow::ensure!(n >= EDITS.max(3), "N must be at least {}", EDITS.max(3));
    Ok(n)
}

fn json_path() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bench-cluster.json")
}

// ---------------------------------------------------------------------------------------
// Cluster hygiene

/// Undoes what the bench did to the cluster when dropped: waits for its namespaces to be
/// gone (their TestNamespace guards delete them), then uncordons the nodes, so no
/// Pending pod of the bench is ever scheduled.
#[derive(Default)]
struct Cordon {
    nodes: Vec<String>,
    namespaces: Vec<String>,
}

impl Cordon {
    /// Cordons every schedulable node.
    async fn all_nodes(client: &kube::Client) -> anyhow::Result<Self> {
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

/// Background tasks, aborted when dropped.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------
// What the watches saw, with when

#[derive(Default)]
struct Observed {
    /// Watches that finished their initial list.
    synced: usize,
    /// When each child was first seen, by (kind, name).
    children: HashMap<(&'static str, String), Instant>,
    /// Per Microservice, since when its status has been current (None: not current).
    current_since: HashMap<String, Option<Instant>>,
    /// Per Deployment, each value of EDIT it carried, with when it was first seen.
    edits: HashMap<String, Vec<(u64, Instant)>>,
    /// Per Microservice, each value of EDIT in its spec, with when the watch saw it: when
    /// a watcher, the operator's as the bench's, could first hear of an edit.
    spec_edits: HashMap<String, Vec<(u64, Instant)>>,
    /// When each Microservice was first seen (the audit log's clock: this machine's).
    created: HashMap<String, Timestamp>,
}

type Shared = Arc<Mutex<Observed>>;

/// Status written for the current generation: observedGeneration and the Ready
/// condition's both current.
fn status_current(ms: &Microservice) -> bool {
    let generation = ms.metadata.generation;
    ms.status.as_ref().is_some_and(|s| {
        s.observed_generation == generation
            && s.condition("Ready")
                .is_some_and(|c| c.observed_generation == generation)
    })
}

/// The value of EDIT in a Deployment's first container.
fn edit_value(object: &DynamicObject) -> Option<u64> {
    object.data["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == EDIT_VAR)?["value"]
        .as_str()?
        .parse()
        .ok()
}

fn spawn_watches(
    client: &kube::Client,
    namespace: &str,
    kinds: &[(&'static str, ApiResource)],
    observed: &Shared,
) -> Tasks {
    let mut tasks = Vec::new();
    let microservices = Api::<Microservice>::namespaced(client.clone(), namespace);
    let seen = observed.clone();
    tasks.push(tokio::spawn(async move {
        let mut events = watcher(microservices, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let now = Instant::now();
            let mut seen = seen.lock().expect("observed lock");
            match event {
                Ok(watcher::Event::Apply(ms) | watcher::Event::InitApply(ms)) => {
                    seen.created
                        .entry(ms.name_any())
                        .or_insert_with(Timestamp::now);
                    if let Some(value) = ms
                        .spec
                        .env
                        .iter()
                        .find(|e| e.name == EDIT_VAR)
                        .and_then(|e| e.value.as_deref()?.parse().ok())
                    {
                        let history = seen.spec_edits.entry(ms.name_any()).or_default();
                        if history.last().map(|(v, _)| *v) != Some(value) {
                            history.push((value, now));
                        }
                    }
                    let current = status_current(&ms);
                    let since = seen.current_since.entry(ms.name_any()).or_default();
                    match (current, *since) {
                        (true, None) => *since = Some(now),
                        (false, _) => *since = None,
                        (true, Some(_)) => {}
                    }
                }
                Ok(watcher::Event::Delete(ms)) => {
                    seen.current_since.remove(&ms.name_any());
                }
                Ok(watcher::Event::InitDone) => seen.synced += 1,
                Ok(watcher::Event::Init) | Err(_) => {}
            }
        }
    }));
    for (kind, resource) in kinds {
        let kind: &'static str = kind;
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource);
        let seen = observed.clone();
        tasks.push(tokio::spawn(async move {
            let config = watcher::Config::default().labels(MANAGED_SELECTOR);
            let mut events = watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let now = Instant::now();
                let mut seen = seen.lock().expect("observed lock");
                match event {
                    Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                        let name = object.name_any();
                        if kind == "Deployment"
                            && let Some(value) = edit_value(&object)
                        {
                            let history = seen.edits.entry(name.clone()).or_default();
                            if history.last().map(|(v, _)| *v) != Some(value) {
                                history.push((value, now));
                            }
                        }
                        seen.children.entry((kind, name)).or_insert(now);
                    }
                    Ok(watcher::Event::InitDone) => seen.synced += 1,
                    Ok(_) | Err(_) => {}
                }
            }
        }));
    }
    Tasks(tasks)
}

/// Waits until every child of `names` exists; returns when the last one appeared.
async fn wait_children(
    observed: &Shared,
    names: &[String],
    deadline: Duration,
) -> anyhow::Result<Instant> {
    wait_for(
        format!("the children of {} Microservices", names.len()),
        deadline,
        || {
            let seen = observed.lock().expect("observed lock");
            let mut missing = BTreeMap::<&str, usize>::new();
            let mut last = None::<Instant>;
            for (_, kind) in CHILD_KINDS {
                for name in names {
                    match seen.children.get(&(kind, name.clone())) {
                        Some(at) => last = last.max(Some(*at)),
                        None => *missing.entry(kind).or_default() += 1,
                    }
                }
            }
            let poll = match last {
                Some(last) if missing.is_empty() => Poll::Ready(last),
                _ => Poll::Pending(format!("missing: {missing:?}")),
            };
            std::future::ready(Ok(poll))
        },
    )
    .await
}

/// Waits until every status of `names` is current at once; returns since when.
async fn wait_current(
    observed: &Shared,
    names: &[String],
    deadline: Duration,
) -> anyhow::Result<Instant> {
    wait_for(
        format!(
            "the statuses of {} Microservices to be current",
            names.len()
        ),
        deadline,
        || {
            let seen = observed.lock().expect("observed lock");
            let mut not_current = Vec::new();
            let mut last = None::<Instant>;
            for name in names {
                match seen.current_since.get(name).copied().flatten() {
                    Some(at) => last = last.max(Some(at)),
                    None => not_current.push(name.as_str()),
                }
            }
            let poll = match last {
                Some(last) if not_current.is_empty() => Poll::Ready(last),
                _ => Poll::Pending(format!(
                    "{} not current, e.g. {:?}",
                    not_current.len(),
                    &not_current[..not_current.len().min(5)]
                )),
            };
            std::future::ready(Ok(poll))
        },
    )
    .await
}

/// Waits until `name`'s Deployment carries EDIT >= `value`; returns when it first did.
async fn wait_edit(observed: &Shared, name: &str, value: u64) -> anyhow::Result<Instant> {
    wait_for(
        format!("Deployment {name} to carry {EDIT_VAR}={value}"),
        Duration::from_secs(60),
        || {
            let seen = observed.lock().expect("observed lock");
            let history = seen.edits.get(name);
            let poll = match history.and_then(|h| h.iter().find(|(v, _)| *v >= value)) {
                Some((_, at)) => Poll::Ready(*at),
                None => Poll::Pending(format!(
                    "{EDIT_VAR} values seen: {:?}",
                    history.map(|h| h.iter().map(|(v, _)| *v).collect::<Vec<_>>())
                )),
            };
            std::future::ready(Ok(poll))
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------
// The fleet

/// Batch `batch` of the fleet: N Microservices named `ms-<index>`, each autoscaled 2..4
/// with one port, an env var, resources and two `dependsOn` on the next two of its batch
/// (within the batch, so a later batch changes nothing of an earlier one).
fn batch_names(n: usize, batch: usize) -> Vec<String> {
    (batch * n..(batch + 1) * n)
        .map(|i| format!("ms-{i}"))
        .collect()
}

/// The indexes of the two Microservices that `first + i` depends on.
fn dependencies(n: usize, first: usize, i: usize) -> [usize; 2] {
    [first + (i + 1) % n, first + (i + 2) % n]
}

/// Each Microservice of batch `batch` with its dependencies and dependents.
fn fleet_neighbours(n: usize, batch: usize) -> HashMap<String, Vec<String>> {
    let first = batch * n;
    let mut neighbours = HashMap::<String, Vec<String>>::new();
    for i in 0..n {
        for dep in dependencies(n, first, i) {
            let (caller, callee) = (format!("ms-{}", first + i), format!("ms-{dep}"));
            neighbours
                .entry(caller.clone())
                .or_default()
                .push(callee.clone());
            neighbours.entry(callee).or_default().push(caller);
        }
    }
    neighbours
}

/// The Microservices of one batch. Their release deadline is an hour: the node is
/// cordoned, so with the default 10 minutes every release would fail during the run, a
/// real change the operator reports (Degraded) while the idle window counts its writes.
fn fleet_yaml(n: usize, batch: usize, namespace: &str) -> String {
    let first = batch * n;
    (0..n)
        .map(|i| {
            let [a, b] = dependencies(n, first, i);
            format!(
                "apiVersion: flotilla.dev/v1alpha1
kind: Microservice
metadata:
  name: ms-{index}
  namespace: {namespace}
spec:
  image: flotilla.local/testapp:v1
  imagePullPolicy: IfNotPresent
  ports:
  - {{name: http, port: 80, targetPort: 8080, protocol: TCP, appProtocol: http}}
  env:
  - {{name: {EDIT_VAR}, value: \"0\"}}
  resources:
    requests: {{cpu: 10m, memory: 16Mi}}
    limits: {{memory: 64Mi}}
  autoscaling: {{minReplicas: 2, maxReplicas: 4, targetCPUUtilizationPercentage: 70}}
  rollout: {{progressDeadlineSeconds: 3600}}
  dependsOn:
  - name: ms-{a}
  - name: ms-{b}
",
                index = first + i,
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn split_documents(yaml: &str) -> Vec<String> {
    yaml.split("\n---")
        .map(|d| d.trim_start_matches("---").trim().to_string())
        .filter(|d| !d.is_empty() && d.lines().any(|l| l.starts_with("kind:")))
        .collect()
}

/// `documents` applied by [`KUBECTL_PROCESSES`] `kubectl apply --server-side` at once,
/// each taking a contiguous share. The Microservices go the same way as the children in
/// step 1: the ratio compares the same tool at the same parallelism, and the floor
/// of about 1.3x counts the Microservices as writes at the children's pace.
async fn apply_side_by_side(
    namespace: &str,
    manager: &str,
    documents: &[String],
) -> anyhow::Result<()> {
    let chunk = documents.len().div_ceil(KUBECTL_PROCESSES).max(1);
    let applies = documents
        .chunks(chunk)
        .map(|docs| kubectl_apply(namespace, manager, docs.join("\n---\n")));
    futures::future::try_join_all(applies).await?;
    Ok(())
}

/// `kubectl apply --server-side` of `yaml` into `namespace` on a blocking thread.
async fn kubectl_apply(namespace: &str, manager: &str, yaml: String) -> anyhow::Result<()> {
    let namespace = namespace.to_string();
    let manager = manager.to_string();
    tokio::task::spawn_blocking(move || {
        kubectl_with_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager",
                &manager,
                "-n",
                &namespace,
                "-f",
                "-",
            ],
            &yaml,
        )
        .map(drop)
    })
    .await?
}

// ---------------------------------------------------------------------------------------
// The operator

fn rss_kib(pid: u32) -> anyhow::Result<f64> {
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
async fn start_operator(namespace: &str, kubeconfig: &str) -> anyhow::Result<(Operator, String)> {
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
async fn wait_quiet(
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

// ---------------------------------------------------------------------------------------
// The run

async fn run(n: usize, report: Arc<Mutex<Report>>) -> anyhow::Result<()> {
    let report = |f: &mut dyn FnMut(&mut Report)| f(&mut report.lock().expect("report lock"));
    let client = client().await?;
    let machine = machine(&client).await;
    report(&mut |r| r.machine = machine.clone());
    let server = client.apiserver_version().await?;
    let kube_version = format!("{}.{}", server.major, server.minor.trim_end_matches('+'));
    ensure_crds(&client).await?;

    // Guards, in the order their drops must run backwards: the operator dies first, then
    // the namespaces go, then the nodes are uncordoned.
    let mut cordon = Cordon::all_nodes(&client).await?;
    eprintln!("cordoned {:?}: the bench's pods stay Pending", cordon.nodes);
    let kubectl_ns = TestNamespace::new(&client, "bench-kubectl").await?;
    cordon.namespaces.push(kubectl_ns.name().to_string());
    let ns = TestNamespace::new(&client, "bench-flotilla").await?;
    cordon.namespaces.push(ns.name().to_string());
    let ns = ns.name().to_string();
    let role = format!("{ns}-operator");
    let _role_guards = [
        ClusterObject::new("clusterrole", &role),
        ClusterObject::new("clusterrolebinding", &role),
    ];
    apply_cluster_yaml(&operator_rbac(&role, &[(&ns, OPERATOR_ACCOUNT)]))?;
    let kubeconfig = service_account_kubeconfig(&client, &ns, OPERATOR_ACCOUNT).await?;
    let user = service_account_user(&ns, OPERATOR_ACCOUNT);
    let bulk_deadline = Duration::from_secs(180 + n as u64);

    // 1. kubectl alone: the same children, 8 processes.
    eprintln!("[1/6] kubectl: applying the rendered children of {n} Microservices");
    let children = render(&fleet_yaml(n, 0, kubectl_ns.name()), &kube_version)?;
    anyhow::ensure!(
        children.len() == n * CHILD_KINDS.len(),
        "flotilla render gave {} children for {n} Microservices, not {}",
        children.len(),
        n * CHILD_KINDS.len()
    );
    let started = Instant::now();
    apply_side_by_side(kubectl_ns.name(), "bench-kubectl", &children).await?;
    let kubectl_secs = started.elapsed().as_secs_f64();
    report(&mut |r| {
        r.row(
            "kubectl",
            format!(
                "{KUBECTL_PROCESSES} x kubectl apply --server-side of the {} rendered children",
                children.len()
            ),
            kubectl_secs,
            "s",
        );
    });
    // Gone before the operator starts: both runs start from the same cluster.
    let deleting = Instant::now();
    kubectl(&["delete", "namespace", kubectl_ns.name(), "--wait=false"])?;
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    wait_for(
        format!("namespace {} to be gone", kubectl_ns.name()),
        Duration::from_secs(600),
        || async {
            Ok(match namespaces.get_opt(kubectl_ns.name()).await? {
                None => Poll::Ready(()),
                Some(_) => Poll::Pending("still terminating".into()),
            })
        },
    )
    .await?;
    eprintln!(
        "  (its namespace took {:.0} s to delete)",
        deleting.elapsed().as_secs_f64()
    );

    // 2. The operator on an empty namespace, then N Microservices.
    eprintln!("[2/6] the operator: {n} Microservices, {KUBECTL_PROCESSES} kubectl processes");
    let kinds = child_resources(&client).await?;
    let observed = Shared::default();
    let _watches = spawn_watches(&client, &ns, &kinds, &observed);
    wait_for(
        "the bench's watches to sync",
        Duration::from_secs(60),
        || {
            let synced = observed.lock().expect("observed lock").synced;
            std::future::ready(Ok(if synced == kinds.len() + 1 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{synced} synced"))
            }))
        },
    )
    .await?;
    let (mut op, metrics) = start_operator(&ns, &kubeconfig.to_string_lossy()).await?;
    let pid = op.pid().context("the operator has no pid")?;
    let rss_empty = rss_kib(pid)?;

    let batch0 = batch_names(n, 0);
    let reconciles_before = metric(&metrics, "flotilla_reconciles_total").await?;
    let mut tail = AuditTail::from_now(&[&user])?;
    let since = Timestamp::now();
    let t0 = Instant::now();
    apply_side_by_side(&ns, "bench", &split_documents(&fleet_yaml(n, 0, &ns))).await?;
    let apply_secs = t0.elapsed().as_secs_f64();
    let children_at = wait_children(&observed, &batch0, bulk_deadline).await?;
    let current_at = wait_current(&observed, &batch0, bulk_deadline).await?;
    wait_quiet(&mut tail, since, bulk_deadline).await?;
    let reconciles = metric(&metrics, "flotilla_reconciles_total").await? - reconciles_before;
    let rss_n = rss_kib(pid)?;
    // How often each Deployment's spec changed during the create (1: written once as
    // it stays), to tell spec changes from writes that changed nothing.
    let generations = deployment_generations(&client, &ns).await?;
    report(&mut |r| {
        r.details.insert(
            "deployment_generations_after_create".into(),
            serde_json::json!(generations),
        );
    });
    let children_secs = children_at.duration_since(t0).as_secs_f64();
    let current_secs = current_at.duration_since(t0).as_secs_f64();
    let create_writes = std::mem::take(&mut tail.writes);
    report(&mut |r| {
        let s = "Flotilla: N Microservices";
        r.row(
            s,
            format!("{KUBECTL_PROCESSES} x kubectl apply of the {n} Microservices"),
            apply_secs,
            "s",
        );
        r.row(s, "until every child exists", children_secs, "s");
        r.push(
            s,
            "until every status is current",
            Some(current_secs),
            "s",
            Some(Target::AtMost(1.5 * kubectl_secs)),
            "1.5 x kubectl",
        );
        let s = "ratios (Flotilla / kubectl)";
        r.row(
            s,
            "apply of the Microservices / kubectl",
            apply_secs / kubectl_secs,
            "x",
        );
        r.row(
            s,
            "every child exists / kubectl",
            children_secs / kubectl_secs,
            "x",
        );
        r.push(
            s,
            "every status current / kubectl",
            Some(current_secs / kubectl_secs),
            "x",
            Some(Target::AtMost(1.5)),
            "",
        );
    });
    let created = observed.lock().expect("observed lock").created.clone();
    let neighbours = fleet_neighbours(n, 0);
    report(&mut |r| {
        count_writes(
            r,
            &create_writes,
            &kinds,
            (&batch0, &neighbours, &created),
            reconciles,
        )
    });
    eprintln!(
        "  applied in {apply_secs:.2} s, children {children_secs:.2} s, current {current_secs:.2} s, {} writes",
        create_writes.len()
    );

    // 3. Edit latency: idle, then while another N are created.
    eprintln!("[3/6] edit latency: {IDLE_EDITS} edits with the operator idle");
    let microservices = Api::<Microservice>::namespaced(client.clone(), &ns);
    let mut value = 0u64;
    let mut idle_tail = AuditTail::from_now(&[&user])?;
    let mut idle_edits = Vec::new();
    for i in 0..IDLE_EDITS {
        value += 1;
        let sent = edit(microservices.clone(), batch0[i % n].clone(), value).await?;
        idle_edits.push(timed(&observed, sent).await?);
    }
    idle_tail.read()?;
    let idle_latencies = latencies(&idle_edits);
    let idle_paths = edit_paths(&idle_tail.writes, &idle_edits);

    eprintln!("[4/6] edit latency while {n} more Microservices are created (2N)");
    let batch1 = batch_names(n, 1);
    let mut tail = AuditTail::from_now(&[&user])?;
    let since = Timestamp::now();
    let t1 = Instant::now();
    let bulk = tokio::spawn({
        let ns = ns.clone();
        async move {
            let t = Instant::now();
            apply_side_by_side(&ns, "bench", &split_documents(&fleet_yaml(n, 1, &ns))).await?;
            anyhow::Ok(t.elapsed().as_secs_f64())
        }
    });
    // Paced, not one after another: each edit starts on time whatever the last one's
    // latency, and goes to another Microservice.
    let mut edits: Vec<JoinHandle<anyhow::Result<SentEdit>>> = Vec::new();
    let pace = current_at.duration_since(t0).div_f64(2.0 * EDITS as f64);
    let mut pace = tokio::time::interval(pace.max(MIN_EDIT_PACE));
    let mut next = 0;
    loop {
        pace.tick().await;
        let done = {
            let seen = observed.lock().expect("observed lock");
            batch1
                .iter()
                .all(|name| seen.current_since.get(name).copied().flatten().is_some())
        };
        // Stop once the bulk is current; a cap in case it never gets there (the wait
        // below reports that).
        if done || edits.len() >= 40 * EDITS {
            break;
        }
        value += 1;
        let name = batch0[next % n].clone();
        next += 1;
        let api = microservices.clone();
        edits.push(tokio::spawn(edit(api, name, value)));
    }
    let apply1_secs = bulk.await??;
    let children1_at = wait_children(&observed, &batch1, bulk_deadline).await?;
    let current1_at = wait_current(&observed, &batch1, bulk_deadline).await?;
    let mut after_bulk = 0;
    let mut load_edits = Vec::new();
    for e in edits {
        let edit = timed(&observed, e.await??).await?;
        // Only edits sent while the bulk's statuses were not all current yet count as
        // under load.
        if edit.sent.sent < current1_at {
            load_edits.push(edit);
        } else {
            after_bulk += 1;
        }
    }
    wait_quiet(&mut tail, since, bulk_deadline).await?;
    let load_latencies = latencies(&load_edits);
    let load_paths = edit_paths(&tail.writes, &load_edits);
    let rss_2n = rss_kib(pid)?;
    report(&mut |r| {
        let s = "edit latency (spec env -> Deployment pod template)";
        let target = Target::AtMost(100.0);
        let idle = percentiles(&idle_latencies);
        r.row(
            s,
            format!("idle, p50 of {}", idle_latencies.len()),
            idle.0,
            "ms",
        );
        r.push(
            s,
            format!("idle, p99 of {}", idle_latencies.len()),
            Some(idle.1),
            "ms",
            Some(target),
            "",
        );
        edit_legs(r, s, "idle", &idle_paths);
        let load = percentiles(&load_latencies);
        let note = if load_latencies.len() < EDITS {
            format!("only {} edits landed during the bulk", load_latencies.len())
        } else {
            String::new()
        };
        r.push(
            s,
            format!(
                "during the bulk create of {n} more, p50 of {}",
                load_latencies.len()
            ),
            Some(load.0),
            "ms",
            None,
            &note,
        );
        r.push(
            s,
            format!(
                "during the bulk create of {n} more, p99 of {}",
                load_latencies.len()
            ),
            Some(load.1),
            "ms",
            Some(target),
            &note,
        );
        edit_legs(r, s, "under_load", &load_paths);
        r.details.insert(
            "edit_latencies_idle_ms".into(),
            serde_json::json!(idle_latencies),
        );
        r.details.insert(
            "edit_latencies_under_load_ms".into(),
            serde_json::json!(load_latencies),
        );
        r.details
            .insert("edits_after_the_bulk".into(), serde_json::json!(after_bulk));
        let s = "Flotilla: N more (2N in all), with the edits running";
        r.row(
            s,
            format!("{KUBECTL_PROCESSES} x kubectl apply of the {n} Microservices"),
            apply1_secs,
            "s",
        );
        r.row(
            s,
            "until every child exists",
            children1_at.duration_since(t1).as_secs_f64(),
            "s",
        );
        r.row(
            s,
            "until every status is current",
            current1_at.duration_since(t1).as_secs_f64(),
            "s",
        );
        r.row(
            s,
            "operator writes (children, statuses, events; edits included)",
            tail.writes.len() as f64,
            "",
        );
    });

    // 4. Memory.
    eprintln!("[5/6] {UNRELATED} unrelated ConfigMaps and {UNRELATED} Secrets");
    let (cm_secs, rss_cm) =
        unrelated::<ConfigMap>(&client, &ns, &metrics, pid, "ConfigMap").await?;
    let (secret_secs, rss_secret) =
        unrelated::<Secret>(&client, &ns, &metrics, pid, "Secret").await?;
    report(&mut |r| {
        let s = "operator memory (VmRSS)";
        let mib = |kib: f64| kib / 1024.0;
        r.row(s, "empty", mib(rss_empty), "MiB");
        r.row(s, format!("at N = {n}"), mib(rss_n), "MiB");
        r.row(s, format!("at 2N = {}", 2 * n), mib(rss_2n), "MiB");
        let per_ms = (rss_2n - rss_empty) / (2 * n) as f64;
        r.row(s, "per Microservice (2N - empty) / 2N", per_ms, "KiB");
        let at_1000 = if 2 * n == 1000 {
            (rss_2n, String::new())
        } else {
            (
                rss_empty + per_ms * 1000.0,
                format!("extrapolated from 2N = {}", 2 * n),
            )
        };
        r.push(
            s,
            "at 1,000 Microservices",
            Some(mib(at_1000.0)),
            "MiB",
            Some(Target::AtMost(40.0)),
            &at_1000.1,
        );
        r.push(
            s,
            format!("added by {UNRELATED} unrelated ConfigMaps"),
            Some(mib(rss_cm - rss_2n)),
            "MiB",
            Some(Target::AtMost(1.0)),
            "",
        );
        r.push(
            s,
            format!("added by {UNRELATED} unrelated Secrets"),
            Some(mib(rss_secret - rss_cm)),
            "MiB",
            Some(Target::AtMost(1.0)),
            "",
        );
        r.row(
            "cluster",
            format!("creating {UNRELATED} ConfigMaps ({CREATE_CONCURRENCY} in flight)"),
            UNRELATED as f64 / cm_secs,
            "/s",
        );
        r.row(
            "cluster",
            format!("creating {UNRELATED} Secrets ({CREATE_CONCURRENCY} in flight)"),
            UNRELATED as f64 / secret_secs,
            "/s",
        );
    });

    // 5. Idle. Settled: no status held back (progress the operator writes once it
    // settles, up to minutes after the edits above, is news, not an idle write), then
    // nothing written for QUIET.
    wait_for(
        "the operator to hold back no status (flotilla_statuses_held)",
        SETTLED_DEADLINE,
        || {
            let metrics = metrics.clone();
            async move {
                let held = metric(&metrics, "flotilla_statuses_held").await?;
                Ok(if held == 0.0 {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!("{held} held"))
                })
            }
        },
    )
    .await?;
    let mut tail = AuditTail::from_now(&[&user])?;
    wait_quiet(&mut tail, Timestamp::now(), SETTLED_DEADLINE).await?;
    eprintln!("[6/6] idle: the operator's writes over {IDLE:?}");
    let mut tail = AuditTail::from_now(&[&user])?;
    // A measurement window, not a wait for a condition.
    tokio::time::sleep(IDLE).await;
    tail.read()?;
    anyhow::ensure!(op.is_running(), "the operator exited: {}", op.log_tail(20));
    report(&mut |r| {
        r.push(
            "idle",
            format!("operator writes over {} s", IDLE.as_secs()),
            Some(tail.writes.len() as f64),
            "",
            Some(Target::Exactly(0.0)),
            "",
        );
        if !tail.writes.is_empty() {
            r.details.insert(
                "idle_writes".into(),
                serde_json::json!(summarize(&tail.writes)),
            );
        }
    });
    drop(op);
    Ok(())
}

/// How many Deployments are at each `metadata.generation`.
async fn deployment_generations(
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

/// Milliseconds from `from` to `to`.
fn millis(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

fn percentiles(samples: &[f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    // Nearest rank.
    let rank =
        |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    (rank(0.50), rank(0.99))
}

/// An edit: when it was sent (on the bench's clock and the wall clock the audit log
/// uses), and when its PATCH returned.
struct SentEdit {
    name: String,
    value: u64,
    sent: Instant,
    sent_at: Timestamp,
    patched: Instant,
}

/// The legs of an edit, in order: their keys in the JSON and their labels in the table.
const LEGS: [(&str, &str); 5] = [
    ("patch", "the edit's own PATCH (the API server alone)"),
    // The API server's watch delivery, which the operator's watch waits for as well.
    (
        "watch_to_operator",
        "then until a watch of Microservices (the bench's) sees the edit",
    ),
    // The operator's own work, give or take the two watches' difference.
    (
        "operator_work",
        "then until the operator's Deployment apply reaches the API server",
    ),
    (
        "deployment_apply",
        "then the API server's handling of that apply",
    ),
    (
        "watch_back",
        "then until the bench's watch sees the Deployment",
    ),
];

/// How long each of [`LEGS`] took for one edit, in ms.
struct EditPath([f64; LEGS.len()]);

/// Finds the operator's first Deployment write for the edit in the audit log. The bench
/// runs on the API server's machine: the wall clocks are one.
fn edit_path(writes: &[Write], timed: &TimedEdit) -> Option<EditPath> {
    let edit = &timed.sent;
    let apply = writes
        .iter()
        .filter(|w| w.resource == "deployments" && w.subresource.is_empty())
        .filter(|w| w.name == edit.name && w.received >= edit.sent_at)
        .min_by_key(|w| w.received)?;
    let since_sent =
        |t: Timestamp| (t.as_microsecond() - edit.sent_at.as_microsecond()) as f64 / 1e3;
    let patched = millis(edit.sent, edit.patched);
    let (received, completed) = (since_sent(apply.received), since_sent(apply.completed));
    let heard = millis(edit.sent, timed.heard?);
    Some(EditPath([
        patched,
        heard - patched,
        received - heard,
        completed - received,
        millis(edit.sent, timed.seen) - completed,
    ]))
}

/// Sets EDIT to `value` in the Microservice `name`'s spec.
async fn edit(api: Api<Microservice>, name: String, value: u64) -> anyhow::Result<SentEdit> {
    let patch =
        serde_json::json!({"spec": {"env": [{"name": EDIT_VAR, "value": value.to_string()}]}});
    let (sent, sent_at) = (Instant::now(), Timestamp::now());
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("editing {name}"))?;
    Ok(SentEdit {
        name,
        value,
        sent,
        sent_at,
        patched: Instant::now(),
    })
}

/// An edit and when the bench's watches saw it: on the Microservice (None if the watch
/// skipped that version) and on its Deployment.
struct TimedEdit {
    sent: SentEdit,
    heard: Option<Instant>,
    seen: Instant,
}

/// Waits for the edit to reach its Deployment.
async fn timed(observed: &Shared, sent: SentEdit) -> anyhow::Result<TimedEdit> {
    let seen = wait_edit(observed, &sent.name, sent.value).await?;
    let heard = observed
        .lock()
        .expect("observed lock")
        .spec_edits
        .get(&sent.name)
        .and_then(|history| history.iter().find(|(value, _)| *value == sent.value))
        .map(|(_, at)| *at);
    Ok(TimedEdit { sent, heard, seen })
}

/// From each edit's PATCH to its Deployment seen, in ms.
fn latencies(edits: &[TimedEdit]) -> Vec<f64> {
    edits
        .iter()
        .map(|edit| millis(edit.sent.sent, edit.seen))
        .collect()
}

/// The legs of each edit whose Deployment apply is in the audit log's `writes`.
fn edit_paths(writes: &[Write], edits: &[TimedEdit]) -> Vec<EditPath> {
    edits
        .iter()
        .filter_map(|edit| edit_path(writes, edit))
        .collect()
}

/// Rows for where the edits' time went, leg by leg (p50 and p99 under load, p99 idle),
/// and the samples in the details (`edit_<leg>_<when>_ms`).
fn edit_legs(r: &mut Report, section: &'static str, when: &str, paths: &[EditPath]) {
    let label = when.replace('_', " ");
    for (leg, (key, what)) in LEGS.iter().enumerate() {
        let samples: Vec<f64> = paths.iter().map(|path| path.0[leg]).collect();
        let (p50, p99) = percentiles(&samples);
        if when != "idle" {
            r.row(
                section,
                format!("{label}: {what}, p50 of {}", samples.len()),
                p50,
                "ms",
            );
        }
        r.row(
            section,
            format!("{label}: {what}, p99 of {}", samples.len()),
            p99,
            "ms",
        );
        r.details
            .insert(format!("edit_{key}_{when}_ms"), serde_json::json!(samples));
    }
}

/// Writes by kind, verb and result, for the report's details.
fn summarize(writes: &[Write]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for w in writes {
        let resource = if w.subresource.is_empty() {
            w.resource.clone()
        } else {
            format!("{}/{}", w.resource, w.subresource)
        };
        *out.entry(format!("{} {resource} {}", w.verb, w.code))
            .or_default() += 1;
    }
    out
}

/// The writes of the bulk create of `names`: children applied per kind, status writes
/// per Microservice, everything else.
/// The names of the fleet, each Microservice's neighbours in the graph (its
/// dependencies and its dependents), and when each was first seen.
type Fleet<'a> = (
    &'a [String],
    &'a HashMap<String, Vec<String>>,
    &'a HashMap<String, Timestamp>,
);

/// How long after a neighbour appeared the operator may still have planned without it:
/// its caches lag the API server by a watch delivery.
const CACHE_LAG: std::time::Duration = Duration::from_millis(500);

fn count_writes(
    r: &mut Report,
    writes: &[Write],
    kinds: &[(&'static str, ApiResource)],
    (names, neighbours, created): Fleet<'_>,
    reconciles: f64,
) {
    let n = names.len() as f64;
    let s = "writes during the create of N (audit log)";
    for (kind, resource) in kinds {
        let mut per_child = HashMap::<&str, Vec<Timestamp>>::new();
        for w in writes {
            if w.resource == resource.plural && w.subresource.is_empty() && w.succeeded() {
                per_child
                    .entry(w.name.as_str())
                    .or_default()
                    .push(w.received);
            }
        }
        let total: usize = per_child.values().map(Vec::len).sum();
        // Exactly one write per child, except that a NetworkPolicy names its neighbours
        // (egress to its dependencies, ingress from its dependents): one that appears
        // after the policy was written changes it once more (issue 13: a dependency
        // appearing later changes the callee's policy), and nothing else may.
        let policy = *kind == "NetworkPolicy";
        let mut rewritten = 0;
        let wrong = names
            .iter()
            .filter(|name| {
                let times = per_child.get(name.as_str()).cloned().unwrap_or_default();
                let Some(first) = times.iter().min() else {
                    return true;
                };
                let late = if policy {
                    neighbours
                        .get(name.as_str())
                        .into_iter()
                        .flatten()
                        .filter(|other| {
                            created.get(other.as_str()).is_some_and(|at| {
                                at.duration_since(*first).as_secs_f64() > -CACHE_LAG.as_secs_f64()
                            })
                        })
                        .count()
                } else {
                    0
                };
                if times.len() > 1 {
                    rewritten += 1;
                }
                times.len() > 1 + late
            })
            .count();
        let mut note = if wrong == 0 {
            String::new()
        } else {
            format!("{wrong} not written exactly once")
        };
        if policy && rewritten > 0 {
            note = format!(
                "{note}{}{rewritten} written again for a neighbour that appeared later",
                if note.is_empty() { "" } else { "; " }
            );
        }
        // Every child once, not just once on average.
        r.push(
            s,
            format!("{kind} writes per Microservice"),
            Some(total as f64 / n),
            "",
            Some(if policy {
                Target::Rule("1 + late neighbours")
            } else {
                Target::Exactly(1.0)
            }),
            &note,
        )
        .pass = Some(wrong == 0);
    }
    let mut statuses = HashMap::<&str, usize>::new();
    for w in writes {
        if w.resource == "microservices" && w.subresource == "status" && w.succeeded() {
            *statuses.entry(w.name.as_str()).or_default() += 1;
        }
    }
    let total: usize = statuses.values().sum();
    let max = names
        .iter()
        .map(|name| statuses.get(name.as_str()).copied().unwrap_or(0))
        .max()
        .unwrap_or(0);
    // Every Microservice within the target, not just on average.
    r.push(
        s,
        "status writes per Microservice (mean)",
        Some(total as f64 / n),
        "",
        Some(Target::AtMost(2.0)),
        &format!("max {max}"),
    )
    .pass = Some(max <= 2);
    r.row(
        s,
        "reconciles per Microservice (flotilla_reconciles_total)",
        reconciles / n,
        "",
    );
    let children: Vec<&str> = kinds.iter().map(|(_, r)| r.plural.as_str()).collect();
    let others: Vec<Write> = writes
        .iter()
        .filter(|w| {
            !w.succeeded()
                || !((children.contains(&w.resource.as_str()) && w.subresource.is_empty())
                    || (w.resource == "microservices" && w.subresource == "status"))
        })
        .cloned()
        .collect();
    let failed = writes.iter().filter(|w| !w.succeeded()).count();
    r.row(
        s,
        "other writes (events, refused writes...) per Microservice",
        others.len() as f64 / n,
        "",
    );
    r.row(s, "refused writes (conflicts, errors)", failed as f64, "");
    r.row(s, "all operator writes", writes.len() as f64, "");
    r.details
        .insert("create_writes".into(), serde_json::json!(summarize(writes)));
}

/// Creates [`UNRELATED`] objects of kind K (no label the operator selects), waits until
/// the operator's watch of that kind has delivered them and gone quiet; returns the
/// creation time and the operator's RSS then.
async fn unrelated<K>(
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

/// `flotilla render` of `yaml` for this Kubernetes version: the children, one YAML
/// document each.
fn render(yaml: &str, kube_version: &str) -> anyhow::Result<Vec<String>> {
    let file = std::env::temp_dir().join(format!("bench-cluster-{}.yaml", std::process::id()));
    std::fs::write(&file, yaml)?;
    let output = std::process::Command::new(flotilla_e2e::operator::binary())
        .args(["render", "-f"])
        .arg(&file)
        .args(["--kube-version", kube_version])
        .output()
        .context("running flotilla render (set FLOTILLA_BIN?)")?;
    let _ = std::fs::remove_file(&file);
    if !output.status.success() {
        bail!(
            "flotilla render failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(split_documents(&String::from_utf8(output.stdout)?))
}

/// The served resource of each child kind (autoscaling and policy versions differ
/// between servers).
async fn child_resources(
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
async fn machine(client: &kube::Client) -> BTreeMap<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(&samples), (50.0, 99.0));
        let fifty: Vec<f64> = (1..=50).map(f64::from).collect();
        // With 50 samples the p99 is the slowest.
        assert_eq!(percentiles(&fifty), (25.0, 50.0));
    }

    #[test]
    fn the_fleet_depends_within_its_batch() {
        let docs = split_documents(&fleet_yaml(5, 1, "x"));
        assert_eq!(docs.len(), 5);
        let last: Microservice = serde_saphyr::from_str(&docs[4]).unwrap();
        assert_eq!(last.name_any(), "ms-9");
        let deps: Vec<&str> = last
            .spec
            .depends_on
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(deps, ["ms-5", "ms-6"]);
    }

    #[test]
    fn a_missed_target_fails_the_row() {
        let mut r = Report::default();
        r.push("s", "a", Some(2.0), "s", Some(Target::AtMost(1.0)), "");
        r.push("s", "b", Some(0.0), "", Some(Target::Exactly(0.0)), "");
        r.push("s", "c", None, "", Some(Target::AtMost(1.0)), "");
        assert_eq!(r.missed(), 2);
        assert!(r.table().contains("FAIL"));
    }
}
