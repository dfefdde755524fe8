//! The `flotilla` command: the controller (`run`) and its offline tools.

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use flotilla::api::{KubeVersion, Microservice, crds_yaml};
use flotilla::controller::{self, Scope, Settings};
use flotilla::cli::graph::{Format, Node, draw};
use flotilla::health::Health;
use flotilla::leader::{Elector, LeaseSettings};
use flotilla::metrics::Metrics;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

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
    Crd {
        /// Kubernetes version of the target server; CEL rules are left out before 1.25.
        #[arg(long, default_value_t = KubeVersion::NEWEST)]
        kube_version: KubeVersion,
    },
    /// Print the children Flotilla would apply for the Microservices in the files, offline.
    /// A Microservice refused by its spec or its class's policy makes it exit non-zero
    /// with the reason.
    Render {
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
    },
    /// Draw the dependency graph of Microservices, from the cluster (with each one's
    /// Ready state) or from files.
    Graph {
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
    },
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
    Diff {
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
        #[arg(long, default_value = flotilla::cli::diff::KUBECTL_FIELD_MANAGER)]
        field_manager: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Show one Microservice as a tree: its conditions, class, rollout, dependencies
    /// with their Ready state, children and pods, each with its health and, where
    /// unhealthy, the root cause (e.g. a pod's ImagePullBackOff).
    Status {
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
    },
    /// Print a shell completion script: `source <(flotilla completion bash)`, or write it
    /// where your shell loads completions from (e.g. `flotilla completion fish >
    /// ~/.config/fish/completions/flotilla.fish`).
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Follow or steer the release of a Microservice's pods (`spec.rollout`).
    Rollout {
        #[command(subcommand)]
        action: RolloutCommand,
    },
    /// Print the version.
    Version,
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
    fn target(&self) -> flotilla::client::Target {
        flotilla::client::Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusFormat {
    Text,
    Json,
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
}

#[derive(clap::Args)]
struct RolloutTarget {
    /// The Microservice.
    name: String,
    /// Its namespace; the kubeconfig's namespace when unset.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

#[derive(clap::Args)]
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

/// The name the binary answers to: `kubectl flotilla` when run as the kubectl plugin
/// (`kubectl-flotilla` on the PATH, which kubectl runs for `kubectl flotilla ...`), so help
/// and errors show the command the user typed.
fn command_name() -> &'static str {
    let invoked = std::env::args_os().next().unwrap_or_default();
    let file = std::path::Path::new(&invoked)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    if file.starts_with("kubectl-flotilla") {
        "kubectl flotilla"
    } else {
        "flotilla"
    }
}

fn cli_command() -> clap::Command {
    Cli::command().bin_name(command_name())
}

fn main() -> ExitCode {
    let matches = cli_command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command {
        Command::Crd { kube_version } => write_stdout(&crds_yaml(kube_version)),
        Command::Render {
            files,
            kube_version,
            gateway_api,
            prometheus_operator,
        } => render(&files, kube_version, gateway_api, prometheus_operator),
        Command::Graph {
            files,
            namespace,
            format,
            target,
        } => graph(&files, namespace, format, &target.target()),
        Command::Diff {
            files,
            namespace,
            field_manager,
            target,
        } => diff(&files, namespace, &field_manager, &target.target()),
        Command::Status {
            name,
            namespace,
            output,
            target,
        } => status(&name, namespace, output, &target.target()),
        Command::Completion { shell } => {
            let mut command = cli_command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, command_name(), &mut script);
            write_stdout(&String::from_utf8_lossy(&script))
        }
        Command::Rollout { action } => rollout(action),
        Command::Version => write_stdout(&format!("flotilla {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Run(args) => {
            init_logging(args.log_format);
            flotilla::memory::tune_allocator();
            let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
            runtime.spawn(flotilla::memory::return_freed_memory());
            match runtime.block_on(run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    error!("{message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `flotilla diff`: exit 0 no change, 1 changes, 2 an error, as `kubectl diff`.
fn diff(
    files: &[PathBuf],
    namespace: Option<String>,
    field_manager: &str,
    target: &flotilla::client::Target,
) -> ExitCode {
    let documents = match read_documents(files) {
        Ok(documents) => documents,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
    let report = runtime.block_on(async {
        let (client, context_namespace) = flotilla::client::client_for(target).await?;
        let namespace = namespace.unwrap_or(context_namespace);
        flotilla::cli::diff::diff(&client, &documents, &namespace, field_manager).await
    });
    match report {
        Ok(report) => {
            if write_stdout(&report.text()) != ExitCode::SUCCESS {
                return ExitCode::from(2);
            }
            for error in &report.errors {
                eprintln!("error: {error}");
            }
            ExitCode::from(report.exit_code())
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// `flotilla status`: exit 0 when the tree could be read, whatever its health.
fn status(
    name: &str,
    namespace: Option<String>,
    output: StatusFormat,
    target: &flotilla::client::Target,
) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
    let tree = runtime.block_on(async {
        let (client, context_namespace) = flotilla::client::client_for(target).await?;
        let namespace = namespace.unwrap_or(context_namespace);
        let capabilities = flotilla::controller::discover_capabilities(&client)
            .await
            .map_err(|e| format!("discovering the API server: {e}"))?;
        let observed =
            flotilla::cli::status::read(&client, &capabilities, &namespace, name).await?;
        Ok::<_, String>(flotilla::cli::status::tree(&observed))
    });
    match tree {
        Ok(tree) => match output {
            StatusFormat::Text => write_stdout(&flotilla::cli::status::text(&tree)),
            StatusFormat::Json => write_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&tree).expect("the tree serializes")
            )),
        },
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn rollout(command: RolloutCommand) -> ExitCode {
    use flotilla::cli::rollout::{Action, run};
    let (action, target) = match command {
        RolloutCommand::Status(target) => (Action::Status, target),
        RolloutCommand::Promote(target) => (Action::Promote, target),
        RolloutCommand::Abort(target) => (Action::Abort, target),
    };
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
    let cluster = target.target.target();
    match runtime.block_on(run(
        action,
        &target.name,
        target.namespace.as_deref(),
        &cluster,
    )) {
        Ok(text) => write_stdout(&text),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn graph(
    files: &[PathBuf],
    namespace: Option<String>,
    format: GraphFormat,
    target: &flotilla::client::Target,
) -> ExitCode {
    let microservices = if files.is_empty() {
        let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
        runtime.block_on(live_microservices(namespace, target))
    } else {
        read_documents(files)
            .and_then(|docs| flotilla::render::parse(&docs).map_err(|e| e.to_string()))
    };
    let microservices = match microservices {
        Ok(list) => list,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let nodes: Vec<Node> = microservices.iter().map(Node::of).collect();
    let format = match format {
        GraphFormat::Text => Format::Text,
        GraphFormat::Dot => Format::Dot,
        GraphFormat::Mermaid => Format::Mermaid,
    };
    write_stdout(&draw(&nodes, format))
}

async fn live_microservices(
    namespace: Option<String>,
    target: &flotilla::client::Target,
) -> Result<Vec<Microservice>, String> {
    let (client, _) = flotilla::client::client_for(target).await?;
    let api: kube::Api<Microservice> = match namespace {
        Some(namespace) => kube::Api::namespaced(client, &namespace),
        None => kube::Api::all(client),
    };
    let list = api
        .list(&Default::default())
        .await
        .map_err(|e| format!("listing Microservices: {e}"))?;
    Ok(list.items)
}

fn read_documents(files: &[PathBuf]) -> Result<Vec<String>, String> {
    files
        .iter()
        .map(|file| {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(file)
            };
            text.map_err(|e| format!("reading {}: {e}", file.display()))
        })
        .collect()
}

fn render(
    files: &[PathBuf],
    version: KubeVersion,
    gateway_api: bool,
    prometheus_operator: bool,
) -> ExitCode {
    let mut capabilities = flotilla::builders::Capabilities::for_version(version);
    if gateway_api {
        capabilities = capabilities.with_served(&flotilla::builders::http_route::KIND, "v1");
    }
    if prometheus_operator {
        capabilities = capabilities.with_served(&flotilla::builders::service_monitor::KIND, "v1");
    }
    let rendered = read_documents(files).and_then(|documents| {
        flotilla::render::render_for(&documents, &capabilities).map_err(|e| e.to_string())
    });
    match rendered {
        Ok(rendered) => {
            for warning in &rendered.warnings {
                eprintln!("warning: {warning}");
            }
            write_stdout(&rendered.yaml)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
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

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    // Colour codes only on a terminal: pod logs and log collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
    let client = flotilla::client::client().await?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let (health_bound, metrics_bound) = flotilla::server::serve(
        args.health_addr,
        args.metrics_addr,
        metrics.clone(),
        health.clone(),
    )
    .await
    .map_err(|e| format!("binding the HTTP endpoints: {e}"))?;
    flotilla::server::log_bound(health_bound, metrics_bound);

    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("flotilla-{}", std::process::id()));
    let sees_every_microservice = args.namespace.is_none() && args.selector.is_none();
    let settings = Settings {
        scope: Scope {
            namespace: args.namespace,
            selector: args.selector,
            watch_secrets: args.watch_secrets,
        },
        concurrency: args.concurrency,
        instance: identity.clone(),
        class_status: args.class_status.unwrap_or(sees_every_microservice),
        rediscover_every: Duration::from_secs(args.rediscover_interval_seconds),
        http_gates: args.http_gates,
        require_class: args.require_class,
    };

    if !args.leader_elect {
        return controller::run(client, settings, metrics, health, shutdown_signal())
            .await
            .map_err(|e| format!("controller: {e}"));
    }
    let lease = LeaseSettings {
        name: args.lease_name,
        namespace: args.lease_namespace,
        identity,
        duration: Duration::from_secs(args.lease_duration_seconds),
    };
    lead_when_elected(client, lease, settings, metrics, health).await
}

/// Stands by until this process holds the lease, runs the controller while it does, and
/// stands by again when it loses it: each term starts a new controller on fresh caches.
/// On shutdown the lease is released once the controller has stopped.
async fn lead_when_elected(
    client: kube::Client,
    lease: LeaseSettings,
    settings: Settings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<(), String> {
    let mut elector = Elector::new(client, lease, metrics.clone());
    // Every write the controller makes passes the elector's fence.
    let fenced = flotilla::client::fenced_client(elector.fence()).await?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let shutdown = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    };
    loop {
        // A standby has no caches to wait for: it reports ready while it waits.
        health.standing_by();
        tokio::select! {
            () = elector.acquire() => {}
            () = shutdown() => return Ok(()),
        }
        let controller = controller::run(
            fenced.clone(),
            settings.clone(),
            metrics.clone(),
            health.clone(),
            shutdown(),
        );
        tokio::select! {
            result = controller => {
                elector.release().await;
                return result.map_err(|e| format!("controller: {e}"));
            }
            () = elector.hold() => {
                warn!("lost the leader lease: the controller stopped; standing by to re-acquire it");
            }
        }
    }
}

/// SIGTERM (the kubelet) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    info!("shutting down");
}
