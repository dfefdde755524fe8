//! The `flotilla` command line: its clap types, the dispatch to one module per command,
//! and what the commands share (the cluster flags, the one Tokio runtime, stdout).

pub mod completion;
pub mod crd;
pub mod dashboard;
pub mod diff;
pub mod graph;
pub mod render;
pub mod rollout;
pub mod run;
pub mod status;
pub mod version;

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::api::KubeVersion;

#[derive(Parser)]
#[command(
    name = "flotilla",
    version,
    about = "Turns Microservice resources into production-ready Kubernetes services",
    long_about = "Flotilla turns each Microservice resource (flotilla.dev/v1alpha1) into its \
ServiceAccount, Deployment, Service, NetworkPolicy and, as asked, HorizontalPodAutoscaler, \
PodDisruptionBudget, Ingress or HTTPRoute and ServiceMonitor. `flotilla run` is the \
controller; the other commands help the people who run the services: what a change will \
do (diff, render), why a service is not ready (status), who calls whom (graph).\n\n\
Installed as `kubectl-flotilla` on the PATH (make install), the same binary is the kubectl \
plugin: `kubectl flotilla status users -n shop`.",
    after_help = "Examples:\n  \
flotilla status users -n shop          the health tree of shop/users\n  \
flotilla status users -n shop -o json  the same as JSON\n  \
flotilla diff -f users.yaml            what applying users.yaml would change (exit 1 if anything)\n  \
flotilla render -f users.yaml          the children, offline\n  \
flotilla graph -n shop                 the dependency graph with Ready states\n  \
source <(flotilla completion bash)     shell completion"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (in-cluster config, or KUBECONFIG).
    Run(RunArgs),
    /// Print the CRDs as YAML.
    Crd(CrdArgs),
    /// Print the children Flotilla would apply for the Microservices in the files, offline.
    /// A Microservice refused by its spec or its class's policy makes it exit non-zero
    /// with the reason.
    Render(RenderArgs),
    /// Draw the dependency graph of Microservices, from the cluster (with each one's
    /// Ready state) or from files.
    Graph(GraphArgs),
    /// Serve the live service graph as a web page on this machine: each Microservice's
    /// health, release and dependencies, updated as they change, with its status tree,
    /// events and the release commands a click away. Uses your kubeconfig.
    Dashboard(DashboardArgs),
    /// Show what applying the files would change in the cluster: per Microservice and
    /// MicroserviceClass in them, the object itself and every child Flotilla would
    /// create, change or prune, as unified diffs.
    #[command(
        long_about = "Show what applying the files would change in the cluster: per \
Microservice and MicroserviceClass in them, the object itself and every child Flotilla \
would create, change or prune, as unified diffs.\n\n\
Each object is planned as the controller plans it (class, dependencies, dependents, \
ConfigMaps, namespace labels: the live cluster's, with the file's objects in place of \
theirs) and dry-run applied by the API server (dryRun=All, the controller's field \
manager), so defaulting and admission are the server's. Microservices the file's changes \
reach are shown too: a new dependency changes the callee's NetworkPolicy, a class change \
reaches every user of the class. Server-kept fields (managedFields, resourceVersion, \
generation, uid, timestamps) and status are left out, as kubectl diff does.\n\n\
Exit status: 0 nothing would change, 1 something would, 2 an error (including a \
Microservice the controller would refuse)."
    )]
    Diff(DiffArgs),
    /// Show one Microservice as a tree: its conditions, class, rollout, dependencies
    /// with their Ready state, children and pods, each with its health and, where
    /// unhealthy, the root cause (e.g. a pod's ImagePullBackOff).
    Status(StatusArgs),
    /// Print a shell completion script: `source <(flotilla completion bash)`, or write it
    /// where your shell loads completions from (e.g. `flotilla completion fish >
    /// ~/.config/fish/completions/flotilla.fish`).
    Completion(CompletionArgs),
    /// Follow or steer the release of a Microservice's pods (`spec.rollout`).
    Rollout {
        #[command(subcommand)]
        action: RolloutCommand,
    },
    /// Print the version.
    Version,
}

// Each command's arguments, in the order of `Command`. Their help is the doc comments on
// the fields and on the `Command` variant: a doc comment here would be clap's too.

#[derive(Args)]
struct RunArgs {
    /// Watch and manage one namespace only (every namespace when unset).
    #[arg(long, env = "FLOTILLA_NAMESPACE")]
    namespace: Option<String>,
    /// Manage only the Microservices matching this label selector, e.g.
    /// `flotilla.dev/shard=b`, so that several operators share a cluster without
    /// overlapping (every Microservice when unset). Class status then defaults to off:
    /// this operator sees only part of each class's users.
    #[arg(long, env = "FLOTILLA_SELECTOR")]
    selector: Option<String>,
    /// Elect a leader through a Lease, so only one replica writes.
    #[arg(long, env = "FLOTILLA_LEADER_ELECT")]
    leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, default_value = "flotilla-leader")]
    lease_name: String,
    /// Namespace of the Lease (the pod's namespace in a cluster).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Seconds a leader holds the lease without renewing it: how long a standby waits
    /// after the leader died; 10 to 300. The leader renews every fifth of it and stops
    /// writing when it has not renewed for two thirds of it; a shorter lease leaves no
    /// room for a slow renewal.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(10..=300))]
    lease_duration_seconds: u64,
    /// Split the Microservices into this many shards by a stable hash of their namespace,
    /// each shard a Lease (`<lease-name>-shard-<i>`) held by one replica at a time and the
    /// shards spread evenly over the replicas alive; a replica reconciles only its
    /// shards' Microservices, and writes to a namespace only while it holds its shard.
    /// 1 (the default): no shards; `--leader-elect` decides who writes. 1 to 64.
    #[arg(long, env = "FLOTILLA_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    shards: u32,
    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Address of `/healthz` and `/readyz`.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Reconciliations running at once.
    #[arg(long, default_value_t = 8)]
    concurrency: u16,
    /// Write MicroserviceClass status (how many Microservices use each class, how many
    /// break its policy). Defaults to true when watching every namespace; a namespaced
    /// operator sees only part of a class's users, so it writes only when told to, and
    /// then only the classes used in its namespace.
    #[arg(long, env = "FLOTILLA_CLASS_STATUS", num_args = 0..=1, default_missing_value = "true")]
    class_status: Option<bool>,
    /// Watch Secrets (metadata only: names and versions, never their data), so editing a
    /// Secret a Microservice references rolls its pods. With false the operator needs no
    /// access to Secrets at all; then only ConfigMap edits roll pods, and a missing
    /// Secret shows up as the pods' CreateContainerConfigError instead of SecretNotFound.
    #[arg(long, env = "FLOTILLA_WATCH_SECRETS", default_value_t = true, action = clap::ArgAction::Set)]
    watch_secrets: bool,
    /// Let releases use HTTP gates (`spec.rollout.gates.http`), which GET a path on the new
    /// pods through the API server's pod proxy and so need `get` on `pods/proxy`. Off by
    /// default, like the chart's `httpGates`: a spec with an HTTP gate is then refused
    /// with GateUnavailable and nothing is applied.
    #[arg(long, env = "FLOTILLA_HTTP_GATES", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    http_gates: bool,
    /// Require a class: a Microservice governed by no MicroserviceClass (it names none
    /// and no default class selects its namespace) gets `Ready=False ClassRequired` and
    /// nothing applied, so no team runs outside the platform team's guardrails.
    #[arg(long, env = "FLOTILLA_REQUIRE_CLASS", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    require_class: bool,
    /// Take config snapshots: copy each ConfigMap a Microservice's pods reference into
    /// an immutable ConfigMap it owns (`rollout.snapshotConfig`), which needs `create`
    /// and `delete` on ConfigMaps, like the chart's `configSnapshots`. False: the pods
    /// read the ConfigMaps directly, whatever the spec says.
    #[arg(long, env = "FLOTILLA_CONFIG_SNAPSHOTS", num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    config_snapshots: bool,
    /// Seconds between looks at the kinds the server serves: when a CRD Flotilla writes
    /// (ServiceMonitor, HTTPRoute) is installed or removed, or an upgrade serves a newer
    /// version, the controller restarts on fresh caches to use it.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    rediscover_interval_seconds: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
struct CrdArgs {
    /// Kubernetes version of the target server; CEL rules are left out before 1.25.
    #[arg(long, default_value_t = KubeVersion::NEWEST)]
    kube_version: KubeVersion,
}

#[derive(Args)]
struct RenderArgs {
    /// YAML files with Microservices and MicroserviceClasses (several documents
    /// each, or `-` for stdin). Microservices in the input see each other as
    /// dependencies; classes apply as in a cluster (the default one to those naming
    /// no class).
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Kubernetes version to render for (API versions, probe kinds).
    #[arg(long, default_value_t = KubeVersion::NEWEST)]
    kube_version: KubeVersion,
    /// Render for a cluster serving the Gateway API (HTTPRoute v1): exposed
    /// Microservices whose class names a Gateway get an HTTPRoute instead of an
    /// Ingress.
    #[arg(long)]
    gateway_api: bool,
    /// Render for a cluster serving the Prometheus Operator's ServiceMonitor
    /// (monitoring.coreos.com/v1): Microservices with `spec.metrics` get one.
    #[arg(long)]
    prometheus_operator: bool,
}

#[derive(Args)]
struct GraphArgs {
    /// Read Microservices from these YAML files instead of the cluster.
    #[arg(short = 'f', long = "filename")]
    files: Vec<PathBuf>,
    /// Namespace to read from the cluster; every namespace when unset.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// text (a tree), dot (Graphviz) or mermaid.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    format: GraphFormat,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args)]
struct DashboardArgs {
    /// Namespace to show; the context's namespace when unset.
    #[arg(short = 'n', long, conflicts_with = "all_namespaces")]
    namespace: Option<String>,
    /// Show every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Where to listen. Keep it on loopback: the page acts with your credentials.
    #[arg(long, default_value = "127.0.0.1:8900")]
    addr: SocketAddr,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

#[derive(Args)]
struct DiffArgs {
    /// YAML files with Microservices and MicroserviceClasses (`-` for stdin).
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Namespace of the Microservices that name none; the context's namespace when
    /// unset.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// The field manager you apply the file with (`kubectl apply --server-side`:
    /// kubectl; Argo CD: argocd-controller): a field the file drops shows as removed
    /// only when that manager set it.
    #[arg(long, default_value = diff::KUBECTL_FIELD_MANAGER)]
    field_manager: String,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args)]
struct StatusArgs {
    /// Name of the Microservice.
    name: String,
    /// Its namespace; the context's namespace when unset.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// text (a tree) or json.
    #[arg(short = 'o', long, value_enum, default_value_t = StatusFormat::Text)]
    output: StatusFormat,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusFormat {
    Text,
    Json,
}

#[derive(Args)]
struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(Subcommand)]
enum RolloutCommand {
    /// Where the release stands: strategy, phase, canary step and weight, stable and new
    /// image, the last failed release, the conditions.
    Status(RolloutTarget),
    /// Skip the remaining pauses of the release under way (its steps and gates still run).
    Promote(RolloutTarget),
    /// Roll the release under way back to the last fully ready template now.
    Abort(RolloutTarget),
    /// The last releases (`status.rollout.history`, `rollout.revisionHistoryLimit` of
    /// them): revision, image, outcome, when, and why a failed one failed.
    History(RolloutTarget),
    /// Run an earlier release again, in place of the spec's, until the spec changes: a
    /// release like any other (steps and gates) without its pauses. The spec is left as
    /// it is; change it to make the undo lasting.
    Undo(UndoArgs),
}

#[derive(Args)]
struct UndoArgs {
    #[command(flatten)]
    target: RolloutTarget,
    /// The release to go back to: its number in `flotilla rollout history`. Default: the
    /// last release before the one running.
    #[arg(long, value_name = "N")]
    to_revision: Option<i64>,
}

#[derive(Args)]
struct RolloutTarget {
    /// The Microservice.
    name: String,
    /// Its namespace; the kubeconfig's namespace when unset.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
}

/// The cluster a command reads, as kubectl's flags of the same names pick it.
#[derive(Args, Clone, Debug, Default)]
struct TargetArgs {
    /// Path to the kubeconfig file; else $KUBECONFIG, else ~/.kube/config, else the
    /// in-cluster configuration.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; its current context when unset.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
}

impl TargetArgs {
    fn target(&self) -> crate::client::Target {
        crate::client::Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

/// The name the binary answers to: `kubectl flotilla` when run as the kubectl plugin
/// (`kubectl-flotilla` on the PATH, which kubectl runs for `kubectl flotilla ...`), so help
/// and errors show the command the user typed.
fn command_name() -> &'static str {
    if invoked_as().starts_with("kubectl-flotilla") {
        "kubectl flotilla"
    } else {
        "flotilla"
    }
}

/// The file name the binary was run under (a link's name when run through one).
fn invoked_as() -> String {
    let invoked = std::env::args_os().next().unwrap_or_default();
    std::path::Path::new(&invoked)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .to_owned()
}

/// The clap command under the name it was invoked by; completion scripts come from it.
fn cli_command() -> clap::Command {
    Cli::command().bin_name(command_name())
}

/// Parses the command line and runs the command; the exit code is the command's.
pub fn main() -> ExitCode {
    if invoked_as().starts_with(completion::KUBECTL_COMPLETER) {
        return completion::kubectl_plugin(std::env::args().skip(1).collect());
    }
    let matches = cli_command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command {
        Command::Run(args) => run::command(args),
        Command::Crd(args) => crd::command(args),
        Command::Render(args) => render::command(args),
        Command::Graph(args) => graph::command(args),
        Command::Diff(args) => diff::command(args),
        Command::Status(args) => status::command(args),
        Command::Completion(args) => completion::command(args),
        Command::Rollout { action } => rollout::command(action),
        Command::Dashboard(args) => dashboard::command(args),
        Command::Version => version::command(),
    }
}

/// Runs a command's cluster work to completion on the process's one Tokio runtime: each
/// command calls this at most once, so the offline commands never start its threads and
/// `run` can tune the allocator before they start.
fn block_on<F: Future>(work: F) -> F::Output {
    tokio::runtime::Runtime::new()
        .expect("a Tokio runtime starts")
        .block_on(work)
}

/// Writes a command's output. A reader that went away (`flotilla crd | head -1`) ends the
/// command quietly and successfully, as it does other Unix filters; `print!` would panic.
fn write_stdout(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: writing to stdout: {error}");
            ExitCode::FAILURE
        }
    }
}
