//! `flotilla dashboard`: the live service graph as a web page, served on loopback with the
//! user's kubeconfig (like `argo rollouts dashboard`), so it needs no RBAC of its own and
//! never runs inside the operator. The page draws the same read model as `flotilla graph`
//! (`crate::view`), laid out here; its assets are embedded in the binary.

mod layout;
mod server;
mod snapshot;
mod watch;

use std::process::ExitCode;
use std::sync::Arc;

use super::{DashboardArgs, block_on};

pub(super) fn command(args: DashboardArgs) -> ExitCode {
    match block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: DashboardArgs) -> Result<(), String> {
    let (client, context_namespace) = crate::client::client_for(&args.target.target()).await?;
    let namespace = match (args.all_namespaces, args.namespace) {
        (true, _) => None,
        (false, Some(namespace)) => Some(namespace),
        (false, None) => Some(context_namespace),
    };
    let capabilities = crate::controller::discover_capabilities(&client)
        .await
        .map_err(|e| format!("discovering the API server: {e}"))?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("listening on {}: {e}", args.addr))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listening on {}: {e}", args.addr))?;
    let scope = match &namespace {
        Some(namespace) => format!("namespace {namespace}"),
        None => "every namespace".to_string(),
    };
    let model = watch::Model::start(client.clone(), namespace).await;
    let app = Arc::new(server::App {
        model,
        client,
        capabilities,
        hosts: server::hosts_for(addr),
    });
    // The line a script waits for; with --addr 127.0.0.1:0 it names the port picked.
    println!("flotilla dashboard: http://{addr}/ (Microservices in {scope}); Ctrl-C stops it");
    axum::serve(listener, server::router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("serving on {addr}: {e}"))
}
