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
//!
//! [`run`] is the list of phases, each a function below it. What they use is in the
//! modules beside this file: the report ([`report`]), the bench's own watches ([`watch`]),
//! the fleet ([`fleet`]), edit latency ([`edits`]), the audit log's writes ([`writes`]),
//! and the cluster and the operator process ([`cluster`]).

mod cluster;
mod edits;
mod fleet;
mod report;
mod watch;
mod writes;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use flotilla::api::Microservice;
use flotilla_e2e::fault::{
    AuditTail, metric, operator_rbac, service_account_kubeconfig, service_account_user,
};
use flotilla_e2e::steps::ensure_crds;
use flotilla_e2e::{
    ClusterObject, Operator, Poll, TestNamespace, apply_cluster_yaml, client, kubectl, wait_for,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::discovery::ApiResource;
use tokio::task::JoinHandle;

use crate::cluster::{
    Cordon, child_resources, deployment_generations, machine, rss_kib, start_operator, unrelated,
    wait_quiet,
};
use crate::edits::{
    EditPath, SentEdit, edit, edit_legs, edit_paths, latencies, percentiles, timed,
};
use crate::fleet::{
    apply_side_by_side, batch_names, fleet_neighbours, fleet_yaml, render, split_documents,
};
use crate::report::{Report, Target};
use crate::watch::{Shared, Tasks, spawn_watches, wait_children, wait_current};
use crate::writes::{count_writes, summarize};

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
// The run

/// The phases in order. Each phase fills in its rows of the report as it measures them
/// (`main` prints the report whatever becomes of the run), and returns what the later
/// phases need.
async fn run(n: usize, report: Arc<Mutex<Report>>) -> anyhow::Result<()> {
    let report = &*report;
    let bench = setup(n, report).await?;
    let kubectl_secs = kubectl_baseline(&bench, report).await?;
    let mut operator = start_watched_operator(&bench).await?;
    let created = bulk_create(&bench, &operator, kubectl_secs, report).await?;
    // The value of EDIT goes up by one with every edit, across both edit phases.
    let mut value = 0;
    let idle = idle_edits(&bench, &operator, &created, &mut value).await?;
    let load = edits_during_bulk_create(&bench, &operator, &created, &mut value).await?;
    record(report, |r| report_edits(r, n, &idle, &load));
    memory(&bench, &operator, &created, load.rss_2n, report).await?;
    idle_writes(&bench, &mut operator, report).await?;
    // Undone backwards: the operator dies, the watches stop, then the bench's roles and
    // namespaces go and the nodes are uncordoned.
    drop(operator);
    Ok(())
}

/// Adds to the report.
fn record(report: &Mutex<Report>, add: impl FnOnce(&mut Report)) {
    add(&mut report.lock().expect("report lock"));
}

/// What [`setup`] made, for every phase. Its guards undo the setup when it is dropped, in
/// field order: the operator's cluster roles go, then the namespaces, then the nodes are
/// uncordoned (once the namespaces are gone).
struct Bench {
    n: usize,
    client: kube::Client,
    /// The server's `major.minor`, for `flotilla render`.
    kube_version: String,
    /// The operator's namespace.
    ns: String,
    /// The operator's ServiceAccount: its kubeconfig, and its user in the audit log.
    kubeconfig: String,
    user: String,
    /// How long a bulk create of N may take.
    bulk_deadline: Duration,
    _roles: [ClusterObject; 2],
    _ns: TestNamespace,
    kubectl_ns: TestNamespace,
    _cordon: Cordon,
}

/// Setup: the machine and server versions, the CRDs, the cordon, a namespace for kubectl
/// and one for the operator, and the operator's ServiceAccount with the chart's RBAC.
async fn setup(n: usize, report: &Mutex<Report>) -> anyhow::Result<Bench> {
    let client = client().await?;
    let machine = machine(&client).await;
    record(report, |r| r.machine = machine);
    let server = client.apiserver_version().await?;
    let kube_version = format!("{}.{}", server.major, server.minor.trim_end_matches('+'));
    ensure_crds(&client).await?;

    // Guards, in the order their drops must run backwards: the namespaces go, then the
    // nodes are uncordoned (the operator, started later, dies before both).
    let mut cordon = Cordon::all_nodes(&client).await?;
    eprintln!("cordoned {:?}: the bench's pods stay Pending", cordon.nodes);
    let kubectl_ns = TestNamespace::new(&client, "bench-kubectl").await?;
    cordon.namespaces.push(kubectl_ns.name().to_string());
    let flotilla_ns = TestNamespace::new(&client, "bench-flotilla").await?;
    cordon.namespaces.push(flotilla_ns.name().to_string());
    let ns = flotilla_ns.name().to_string();
    let role = format!("{ns}-operator");
    let roles = [
        ClusterObject::new("clusterrole", &role),
        ClusterObject::new("clusterrolebinding", &role),
    ];
    apply_cluster_yaml(&operator_rbac(&role, &[(&ns, OPERATOR_ACCOUNT)]))?;
    let kubeconfig = service_account_kubeconfig(&client, &ns, OPERATOR_ACCOUNT).await?;
    let user = service_account_user(&ns, OPERATOR_ACCOUNT);
    Ok(Bench {
        n,
        client,
        kube_version,
        kubeconfig: kubeconfig.to_string_lossy().into_owned(),
        user,
        bulk_deadline: Duration::from_secs(180 + n as u64),
        ns,
        _roles: roles,
        _ns: flotilla_ns,
        kubectl_ns,
        _cordon: cordon,
    })
}

/// 1. kubectl alone: the children `flotilla render` gives for N Microservices, applied by
///    8 processes. Its namespace is gone before the operator starts, so that both runs
///    start from the same cluster. Returns how long the apply took, in seconds.
async fn kubectl_baseline(bench: &Bench, report: &Mutex<Report>) -> anyhow::Result<f64> {
    let Bench { n, kubectl_ns, .. } = bench;
    eprintln!("[1/6] kubectl: applying the rendered children of {n} Microservices");
    let children = render(&fleet_yaml(*n, 0, kubectl_ns.name()), &bench.kube_version)?;
    anyhow::ensure!(
        children.len() == n * CHILD_KINDS.len(),
        "flotilla render gave {} children for {n} Microservices, not {}",
        children.len(),
        n * CHILD_KINDS.len()
    );
    let started = Instant::now();
    apply_side_by_side(kubectl_ns.name(), "bench-kubectl", &children).await?;
    let kubectl_secs = started.elapsed().as_secs_f64();
    record(report, |r| {
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
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(bench.client.clone());
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
    Ok(kubectl_secs)
}

/// The operator under measurement, and the bench's watches of its namespace. Dropped in
/// field order: the operator dies, then the watches stop.
struct Watched {
    op: Operator,
    /// The operator's `/metrics` address.
    metrics: String,
    pid: u32,
    /// The served resource of each child kind.
    kinds: Vec<(&'static str, ApiResource)>,
    observed: Shared,
    _watches: Tasks,
}

/// 2. The bench's watches on the operator's empty namespace, then the operator, once they
///    have synced and until every cache of its own has (`/readyz`).
async fn start_watched_operator(bench: &Bench) -> anyhow::Result<Watched> {
    eprintln!(
        "[2/6] the operator: {} Microservices, {KUBECTL_PROCESSES} kubectl processes",
        bench.n
    );
    let kinds = child_resources(&bench.client).await?;
    let observed = Shared::default();
    let watches = spawn_watches(&bench.client, &bench.ns, &kinds, &observed);
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
    let (op, metrics) = start_operator(&bench.ns, &bench.kubeconfig).await?;
    let pid = op.pid().context("the operator has no pid")?;
    Ok(Watched {
        op,
        metrics,
        pid,
        kinds,
        observed,
        _watches: watches,
    })
}

/// What the bulk create of the first N leaves to the later phases.
struct Created {
    /// The Microservices of the first batch: the edits go to them.
    names: Vec<String>,
    /// From the first apply until every status was current.
    took: Duration,
    /// The operator's VmRSS (KiB) before the create and after it.
    rss_empty: f64,
    rss_n: f64,
}

/// 2. N Microservices applied by 8 kubectl processes: until every child exists, until
///    every status is current, and the operator's writes (the audit log) until it went
///    quiet, against kubectl's time.
async fn bulk_create(
    bench: &Bench,
    operator: &Watched,
    kubectl_secs: f64,
    report: &Mutex<Report>,
) -> anyhow::Result<Created> {
    let Bench { n, ns, .. } = bench;
    let n = *n;
    let Watched {
        metrics,
        pid,
        observed,
        ..
    } = operator;
    let rss_empty = rss_kib(*pid)?;

    let batch0 = batch_names(n, 0);
    let reconciles_before = metric(metrics, "flotilla_reconciles_total").await?;
    let mut tail = AuditTail::from_now(&[&bench.user])?;
    let since = Timestamp::now();
    let t0 = Instant::now();
    apply_side_by_side(ns, "bench", &split_documents(&fleet_yaml(n, 0, ns))).await?;
    let apply_secs = t0.elapsed().as_secs_f64();
    let children_at = wait_children(observed, &batch0, bench.bulk_deadline).await?;
    let current_at = wait_current(observed, &batch0, bench.bulk_deadline).await?;
    wait_quiet(&mut tail, since, bench.bulk_deadline).await?;
    let reconciles = metric(metrics, "flotilla_reconciles_total").await? - reconciles_before;
    let rss_n = rss_kib(*pid)?;
    // How often each Deployment's spec changed during the create (1: written once as
    // it stays), to tell spec changes from writes that changed nothing.
    let generations = deployment_generations(&bench.client, ns).await?;
    record(report, |r| {
        r.details.insert(
            "deployment_generations_after_create".into(),
            serde_json::json!(generations),
        );
    });
    let children_secs = children_at.duration_since(t0).as_secs_f64();
    let current_secs = current_at.duration_since(t0).as_secs_f64();
    let create_writes = std::mem::take(&mut tail.writes);
    record(report, |r| {
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
    record(report, |r| {
        count_writes(
            r,
            &create_writes,
            &operator.kinds,
            (&batch0, &neighbours, &created),
            reconciles,
        )
    });
    eprintln!(
        "  applied in {apply_secs:.2} s, children {children_secs:.2} s, current {current_secs:.2} s, {} writes",
        create_writes.len()
    );
    Ok(Created {
        names: batch0,
        took: current_at.duration_since(t0),
        rss_empty,
        rss_n,
    })
}

/// Edits measured: from each PATCH to its Deployment (ms), and where the time went.
struct EditRun {
    latencies: Vec<f64>,
    paths: Vec<EditPath>,
}

/// 3. Edit latency with the operator idle: [`IDLE_EDITS`] edits one after another, to the
///    first batch in turn.
async fn idle_edits(
    bench: &Bench,
    operator: &Watched,
    created: &Created,
    value: &mut u64,
) -> anyhow::Result<EditRun> {
    eprintln!("[3/6] edit latency: {IDLE_EDITS} edits with the operator idle");
    let microservices = Api::<Microservice>::namespaced(bench.client.clone(), &bench.ns);
    let mut idle_tail = AuditTail::from_now(&[&bench.user])?;
    let mut idle_edits = Vec::new();
    for i in 0..IDLE_EDITS {
        *value += 1;
        let name = created.names[i % bench.n].clone();
        let sent = edit(microservices.clone(), name, *value).await?;
        idle_edits.push(timed(&operator.observed, sent).await?);
    }
    idle_tail.read()?;
    Ok(EditRun {
        latencies: latencies(&idle_edits),
        paths: edit_paths(&idle_tail.writes, &idle_edits),
    })
}

/// What the second bulk create, with the edits running, measured.
struct UnderLoad {
    /// The edits sent while the bulk's statuses were not all current yet.
    edits: EditRun,
    /// The edits sent after that.
    after_bulk: usize,
    apply_secs: f64,
    children_secs: f64,
    current_secs: f64,
    /// The operator's writes meanwhile, edits included.
    writes: usize,
    /// The operator's VmRSS (KiB) at 2N.
    rss_2n: f64,
}

/// 4. Edit latency while another N Microservices are created (2N in all): edits paced
///    over the time the first create took, each to another Microservice of the first
///    batch, until the new batch's statuses are all current.
async fn edits_during_bulk_create(
    bench: &Bench,
    operator: &Watched,
    created: &Created,
    value: &mut u64,
) -> anyhow::Result<UnderLoad> {
    let n = bench.n;
    let observed = &operator.observed;
    eprintln!("[4/6] edit latency while {n} more Microservices are created (2N)");
    let microservices = Api::<Microservice>::namespaced(bench.client.clone(), &bench.ns);
    let batch1 = batch_names(n, 1);
    let mut tail = AuditTail::from_now(&[&bench.user])?;
    let since = Timestamp::now();
    let t1 = Instant::now();
    let bulk = tokio::spawn({
        let ns = bench.ns.clone();
        async move {
            let t = Instant::now();
            apply_side_by_side(&ns, "bench", &split_documents(&fleet_yaml(n, 1, &ns))).await?;
            anyhow::Ok(t.elapsed().as_secs_f64())
        }
    });
    // Paced, not one after another: each edit starts on time whatever the last one's
    // latency, and goes to another Microservice.
    let mut edits: Vec<JoinHandle<anyhow::Result<SentEdit>>> = Vec::new();
    let pace = created.took.div_f64(2.0 * EDITS as f64);
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
        *value += 1;
        let name = created.names[next % n].clone();
        next += 1;
        let api = microservices.clone();
        edits.push(tokio::spawn(edit(api, name, *value)));
    }
    let apply_secs = bulk.await??;
    let children_at = wait_children(observed, &batch1, bench.bulk_deadline).await?;
    let current_at = wait_current(observed, &batch1, bench.bulk_deadline).await?;
    let mut after_bulk = 0;
    let mut load_edits = Vec::new();
    for e in edits {
        let edit = timed(observed, e.await??).await?;
        // Only edits sent while the bulk's statuses were not all current yet count as
        // under load.
        if edit.sent.sent < current_at {
            load_edits.push(edit);
        } else {
            after_bulk += 1;
        }
    }
    wait_quiet(&mut tail, since, bench.bulk_deadline).await?;
    Ok(UnderLoad {
        edits: EditRun {
            latencies: latencies(&load_edits),
            paths: edit_paths(&tail.writes, &load_edits),
        },
        after_bulk,
        apply_secs,
        children_secs: children_at.duration_since(t1).as_secs_f64(),
        current_secs: current_at.duration_since(t1).as_secs_f64(),
        writes: tail.writes.len(),
        rss_2n: rss_kib(operator.pid)?,
    })
}

/// The rows of phases 3 and 4: edit latency idle and under load, and the second create.
fn report_edits(r: &mut Report, n: usize, idle: &EditRun, load: &UnderLoad) {
    let (idle_latencies, load_latencies) = (&idle.latencies, &load.edits.latencies);
    let s = "edit latency (spec env -> Deployment pod template)";
    let target = Target::AtMost(100.0);
    let idle_percentiles = percentiles(idle_latencies);
    r.row(
        s,
        format!("idle, p50 of {}", idle_latencies.len()),
        idle_percentiles.0,
        "ms",
    );
    r.push(
        s,
        format!("idle, p99 of {}", idle_latencies.len()),
        Some(idle_percentiles.1),
        "ms",
        Some(target),
        "",
    );
    edit_legs(r, s, "idle", &idle.paths);
    let load_percentiles = percentiles(load_latencies);
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
        Some(load_percentiles.0),
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
        Some(load_percentiles.1),
        "ms",
        Some(target),
        &note,
    );
    edit_legs(r, s, "under_load", &load.edits.paths);
    r.details.insert(
        "edit_latencies_idle_ms".into(),
        serde_json::json!(idle_latencies),
    );
    r.details.insert(
        "edit_latencies_under_load_ms".into(),
        serde_json::json!(load_latencies),
    );
    r.details.insert(
        "edits_after_the_bulk".into(),
        serde_json::json!(load.after_bulk),
    );
    let s = "Flotilla: N more (2N in all), with the edits running";
    r.row(
        s,
        format!("{KUBECTL_PROCESSES} x kubectl apply of the {n} Microservices"),
        load.apply_secs,
        "s",
    );
    r.row(s, "until every child exists", load.children_secs, "s");
    r.row(s, "until every status is current", load.current_secs, "s");
    r.row(
        s,
        "operator writes (children, statuses, events; edits included)",
        load.writes as f64,
        "",
    );
}

/// 5. Memory: the operator's VmRSS empty, at N and 2N, per Microservice, and what
///    [`UNRELATED`] unrelated ConfigMaps and as many Secrets add.
async fn memory(
    bench: &Bench,
    operator: &Watched,
    created: &Created,
    rss_2n: f64,
    report: &Mutex<Report>,
) -> anyhow::Result<()> {
    let Bench { n, client, ns, .. } = bench;
    let n = *n;
    let Watched { metrics, pid, .. } = operator;
    let Created {
        rss_empty, rss_n, ..
    } = *created;
    eprintln!("[5/6] {UNRELATED} unrelated ConfigMaps and {UNRELATED} Secrets");
    let (cm_secs, rss_cm) = unrelated::<ConfigMap>(client, ns, metrics, *pid, "ConfigMap").await?;
    let (secret_secs, rss_secret) =
        unrelated::<Secret>(client, ns, metrics, *pid, "Secret").await?;
    record(report, |r| {
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
    Ok(())
}

/// 6. Idle: once the operator has settled (no status held back: progress it writes once
///    it settles, up to minutes after the edits above, is news, not an idle write; then
///    nothing written for [`QUIET`]), its writes over [`IDLE`].
async fn idle_writes(
    bench: &Bench,
    operator: &mut Watched,
    report: &Mutex<Report>,
) -> anyhow::Result<()> {
    wait_for(
        "the operator to hold back no status (flotilla_statuses_held)",
        SETTLED_DEADLINE,
        || {
            let metrics = operator.metrics.clone();
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
    let mut tail = AuditTail::from_now(&[&bench.user])?;
    wait_quiet(&mut tail, Timestamp::now(), SETTLED_DEADLINE).await?;
    eprintln!("[6/6] idle: the operator's writes over {IDLE:?}");
    let mut tail = AuditTail::from_now(&[&bench.user])?;
    // A measurement window, not a wait for a condition.
    tokio::time::sleep(IDLE).await;
    tail.read()?;
    let op = &mut operator.op;
    anyhow::ensure!(op.is_running(), "the operator exited: {}", op.log_tail(20));
    record(report, |r| {
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
    Ok(())
}
