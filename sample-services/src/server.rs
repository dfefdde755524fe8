//! The HTTP server around a service's routes: `/healthz`, `/readyz`, `/metrics`, request
//! metrics, and graceful shutdown on SIGTERM.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::config::{ConfigError, env_parse};
use crate::telemetry::{HttpMetrics, init_logs, track};

/// The longest one readiness check may take: under the kubelet's default probe timeout
/// (1 s), so a hanging dependency reads as a named failure, not as a probe timeout.
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// Readiness of the process: ready from start until shutdown begins, while every check a
/// service added (its database, its event subscription) passes.
#[derive(Clone, Default)]
pub struct Health {
    shutting_down: Arc<AtomicBool>,
    checks: Arc<Mutex<Vec<(&'static str, Check)>>>,
}

impl Health {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// From now on `/readyz` answers 503, so the Service stops sending new requests.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// `/readyz` fails, naming `name` and the reason, while `check` returns an error.
    pub fn add_check<F, Fut>(&self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: Check = Arc::new(move || Box::pin(check()));
        self.checks.lock().expect("checks lock").push((name, check));
    }

    /// The failing checks by name; empty when ready. Checks run concurrently.
    pub async fn failing(&self) -> BTreeMap<&'static str, String> {
        let checks = self.checks.lock().expect("checks lock").clone();
        let runs = checks.into_iter().map(|(name, check)| {
            tokio::spawn(async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                (name, outcome)
            })
        });
        let mut failing = BTreeMap::new();
        for run in runs.collect::<Vec<_>>() {
            match run.await {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(why))) => {
                    failing.insert(name, why);
                }
                Err(e) => {
                    failing.insert("check", format!("a readiness check panicked: {e}"));
                }
            }
        }
        failing
    }
}

/// One service being assembled: its name, metrics registry and health.
pub struct Service {
    name: &'static str,
    registry: Registry,
    health: Health,
}

impl Service {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            registry: Registry::default(),
            health: Health::default(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where a service registers its own metrics (e.g. orders by outcome).
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Adds a readiness check ([`Health::add_check`]): e.g. orders is not ready while its
    /// database cannot be reached.
    pub fn ready_when<F, Fut>(&self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.health.add_check(name, check);
    }

    /// The service's routes plus `/healthz`, `/readyz` and `/metrics`, every route
    /// counted and timed.
    pub fn into_router(mut self, routes: Router) -> Router {
        let metrics = HttpMetrics::register(&mut self.registry);
        let registry = Arc::new(self.registry);
        let probes = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz).with_state(self.health))
            .route("/metrics", get(metrics_text).with_state(registry));
        // route_layer: it runs after routing, when the matched route pattern is known.
        routes
            .merge(probes)
            .route_layer(axum::middleware::from_fn_with_state(metrics, track))
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.is_shutting_down() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "shutting down"})),
        );
    }
    let failing = health.failing().await;
    if failing.is_empty() {
        (StatusCode::OK, axum::Json(json!({"status": "ready"})))
    } else {
        for (name, why) in &failing {
            tracing::debug!(check = name, reason = %why, "not ready");
        }
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not ready", "failing": failing})),
        )
    }
}

async fn metrics_text(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding metrics: {e}"),
        ),
    }
}

/// The `main` of every sample: JSON logs, then `build` adds the service's routes (and
/// fails on missing configuration), then the server listens on `PORT` (default 8080)
/// until SIGTERM or Ctrl-C.
///
/// On SIGTERM `/readyz` turns 503 at once while requests are still served for
/// `SHUTDOWN_DRAIN_SECONDS` (default 5), so endpoints drop the pod before it stops
/// listening; then in-flight requests finish and the process exits 0. A configuration
/// error exits 2 with one log line saying what to set.
pub fn run(
    name: &'static str,
    build: impl FnOnce(&mut Service) -> Result<Router, ConfigError>,
) -> ExitCode {
    init_logs(name);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(service = name, error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let settings = (|| {
            let port: u16 = env_parse("PORT", 8080)?;
            let drain: u64 = env_parse("SHUTDOWN_DRAIN_SECONDS", 5)?;
            let mut service = Service::new(name);
            let routes = build(&mut service)?;
            Ok::<_, ConfigError>((port, Duration::from_secs(drain), service, routes))
        })();
        let (port, drain, service, routes) = match settings {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(service = name, error = %e, "invalid configuration, exiting");
                return ExitCode::from(2);
            }
        };
        let health = service.health();
        let app = service.into_router(routes);
        let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(service = name, port, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            service = name,
            port,
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal(name, health, drain))
            .await;
        match served {
            Ok(()) => {
                tracing::info!(service = name, "stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(service = name, error = %e, "server failed");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal(name: &'static str, health: Health, drain: Duration) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler only Ctrl-C stops the server.
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    health.begin_shutdown();
    tracing::info!(
        service = name,
        drain_seconds = drain.as_secs(),
        "shutting down: not ready, draining"
    );
    tokio::time::sleep(drain).await;
    tracing::info!(
        service = name,
        "no longer accepting connections; finishing in-flight requests"
    );
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get_text(app: &Router, path: &str) -> (StatusCode, String) {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readiness_turns_false_on_shutdown_while_health_stays_ok() {
        let service = Service::new("test");
        let health = service.health();
        let app = service.into_router(Router::new());
        assert_eq!(get_text(&app, "/readyz").await.0, StatusCode::OK);
        health.begin_shutdown();
        assert_eq!(
            get_text(&app, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get_text(&app, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn readiness_fails_while_a_check_fails_and_names_it() {
        let service = Service::new("test");
        let up = Arc::new(AtomicBool::new(false));
        let flag = up.clone();
        service.ready_when("database", move || {
            let up = flag.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err("connection refused".to_string())
                }
            }
        });
        service.ready_when("slow", || async { Ok(()) });
        let app = service.into_router(Router::new());
        let (status, body) = get_text(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains(r#""database":"connection refused""#),
            "{body}"
        );
        assert!(!body.contains("slow"), "{body}");
        up.store(true, Ordering::SeqCst);
        assert_eq!(get_text(&app, "/readyz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_check_that_hangs_fails_readiness_in_time() {
        let service = Service::new("test");
        service.ready_when("events", std::future::pending::<Result<(), String>>);
        let app = service.into_router(Router::new());
        let (status, body) = get_text(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("no answer within"), "{body}");
    }

    #[tokio::test]
    async fn metrics_count_requests_by_route_pattern() {
        let routes = Router::new().route("/things/{id}", get(|| async { "thing" }));
        let app = Service::new("test").into_router(routes);
        get_text(&app, "/things/1").await;
        get_text(&app, "/things/2").await;
        let (status, text) = get_text(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="/things/{id}",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
