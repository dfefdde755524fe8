//! `flotilla run`: the operator itself: logging, the HTTP endpoints, and the controller,
//! alone or behind leader election.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use super::{LogFormat, RunArgs, block_on};
use crate::controller::{self, Scope, Settings};
use crate::health::Health;
use crate::leader::sharded::Sharder;
use crate::leader::shards::ShardScope;
use crate::leader::{Elector, LeaseSettings};
use crate::metrics::Metrics;

pub(super) fn command(args: RunArgs) -> ExitCode {
    init_logging(args.log_format);
    crate::memory::tune_allocator();
    let result = block_on(async {
        tokio::spawn(crate::memory::return_freed_memory());
        run(args).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
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
    let client = crate::client::client().await?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let (health_bound, metrics_bound) = crate::server::serve(
        args.health_addr,
        args.metrics_addr,
        metrics.clone(),
        health.clone(),
    )
    .await
    .map_err(|e| format!("binding the HTTP endpoints: {e}"))?;
    crate::server::log_bound(health_bound, metrics_bound);

    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("flotilla-{}", std::process::id()));
    // A class's users span shards: no replica sees them all to count them.
    let sees_every_microservice =
        args.namespace.is_none() && args.selector.is_none() && args.shards == 1;
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
        config_snapshots: args.config_snapshots,
        shard: None,
    };

    let lease = LeaseSettings {
        name: args.lease_name,
        namespace: args.lease_namespace,
        identity,
        duration: Duration::from_secs(args.lease_duration_seconds),
    };
    if args.shards > 1 {
        return run_shards(client, lease, args.shards, settings, metrics, health).await;
    }
    if !args.leader_elect {
        return controller::run(client, settings, metrics, health, shutdown_signal())
            .await
            .map_err(|e| format!("controller: {e}"));
    }
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
    let fenced = crate::client::fenced_client(elector.fence()).await?;
    let shutdown = shutdown_any_number_of_times();
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

/// Holds shards as the sharder decides, and runs the controller over the shards held:
/// each change of the set starts a new controller on fresh caches (as a new leader term
/// does), and none runs while no shard is held. On shutdown the controller stops first,
/// then every shard is released.
async fn run_shards(
    client: kube::Client,
    lease: LeaseSettings,
    shards: u32,
    settings: Settings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<(), String> {
    let sharder = Sharder::new(client, lease, shards, metrics.clone());
    // Every write the controller makes passes its namespace's shard fence.
    let fenced = crate::client::fenced_shard_client(sharder.fences()).await?;
    let mut owned = sharder.owned();
    let (release, released_on) = tokio::sync::watch::channel(false);
    let sharder = tokio::spawn(sharder.run(released_on));
    let shutdown = shutdown_any_number_of_times();
    let result = loop {
        health.standing_by();
        let held = tokio::select! {
            held = owned.wait_for(|held| !held.is_empty()) => match held {
                Ok(held) => held.clone(),
                Err(_) => break Err("the sharder stopped".to_string()),
            },
            () = shutdown() => break Ok(()),
        };
        info!(shards = ?held, "reconciling the Microservices of these shards");
        let mut settings = settings.clone();
        settings.shard = Some(ShardScope {
            shards,
            owned: held,
        });
        let controller = controller::run(
            fenced.clone(),
            settings,
            metrics.clone(),
            health.clone(),
            shutdown(),
        );
        tokio::select! {
            result = controller => break result.map_err(|e| format!("controller: {e}")),
            _ = owned.changed() => {
                warn!("the shards held changed: restarting the controller on them");
            }
        }
    };
    let _ = release.send(true);
    let _ = sharder.await;
    result
}

/// A future for [`shutdown_signal`] that can be made again and again (each term of a
/// controller waits on its own), all resolving on the one signal.
fn shutdown_any_number_of_times()
-> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    move || {
        let mut stopping = stopping.clone();
        Box::pin(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        })
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
