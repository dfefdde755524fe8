//! The operator's own HTTP endpoints: `/healthz` and `/readyz` on the health address,
//! `/metrics` on the metrics address (both on one listener when the addresses match).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tracing::info;

use crate::health::Health;
use crate::metrics::Metrics;

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Binds both listeners and serves them in the background. Returns the bound addresses
/// (useful with port 0).
pub async fn serve(
    health_addr: SocketAddr,
    metrics_addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<(SocketAddr, SocketAddr)> {
    let shared = Shared { metrics, health };
    let health = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let metrics_routes = Router::new().route("/metrics", get(metrics_text));
    if health_addr == metrics_addr {
        let bound = spawn(health_addr, health.merge(metrics_routes).with_state(shared)).await?;
        return Ok((bound, bound));
    }
    let health_bound = spawn(health_addr, health.with_state(shared.clone())).await?;
    let metrics_bound = spawn(metrics_addr, metrics_routes.with_state(shared)).await?;
    Ok((health_bound, metrics_bound))
}

async fn spawn(addr: SocketAddr, router: Router) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "HTTP server stopped");
        }
    });
    Ok(bound)
}

/// Fails when the controller cannot make progress (see `crate::health`), so the kubelet
/// restarts it.
async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    match shared.health.live() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// Ready once every watch has finished its first list (or while standing by for the
/// leader lease, when there are no caches to wait for).
async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.health.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches are syncing")
    }
}

async fn metrics_text(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}

pub fn log_bound(health: SocketAddr, metrics: SocketAddr) {
    info!(%health, %metrics, "serving /healthz, /readyz and /metrics");
}
