//! The dashboard's HTTP side: the page and its assets (embedded in the binary), the stream of
//! snapshots (Server-Sent Events), one service's details, and the release buttons.
//!
//! It listens on loopback and acts with the user's own credentials, so any web page the
//! user visits could try to reach it: requests must name this server in `Host` (against
//! DNS rebinding), and a button's POST must carry `X-Flotilla-Dashboard`, a header a
//! cross-site form cannot set and a cross-site script cannot send without a preflight this
//! server never grants.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use k8s_openapi::api::core::v1::Event as CoreEvent;
use kube::Client;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

use super::watch::Model;
use crate::api::Microservice;
use crate::builders::Capabilities;
use crate::cli::rollout::{Steer, history, offered, steer_release};
use crate::cli::status;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
/// Events shown per service, newest first.
const EVENTS_SHOWN: usize = 20;
/// How soon a page reconnects after losing the stream.
const RECONNECT: Duration = Duration::from_secs(1);

/// What every handler shares.
pub struct App {
    pub model: Arc<Model>,
    pub client: Client,
    pub capabilities: Capabilities,
    /// The `Host` values this server answers to.
    pub hosts: Vec<String>,
}

/// The routes, behind the `Host` check.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/api/stream", get(stream))
        .route("/api/services/{namespace}/{name}", get(details))
        .route("/api/services/{namespace}/{name}/{action}", post(act))
        .layer(middleware::from_fn_with_state(app.clone(), only_this_host))
        .with_state(app)
}

/// The `Host` values a browser sends to a server on `addr`.
pub fn hosts_for(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        for host in [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ] {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    hosts
}

async fn only_this_host(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !app.hosts.iter().any(|h| h == host) {
        return error(
            StatusCode::FORBIDDEN,
            format!("this dashboard answers to {} only", app.hosts.join(", ")),
        );
    }
    next.run(request).await
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_string(value).expect("the reply serializes");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, message: String) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// Every snapshot from now on, the current one first.
async fn stream(State(app): State<Arc<App>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut receiver = app.model.subscribe();
    receiver.mark_changed();
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            receiver.changed().await.ok()?;
            let snapshot = receiver.borrow_and_update().clone();
            // Nothing to draw before the first list of Microservices.
            if !snapshot.is_empty() {
                let event = Event::default()
                    .event("snapshot")
                    .retry(RECONNECT)
                    .data(snapshot.as_str());
                return Some((Ok(event), receiver));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

/// One service's panel.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Details {
    namespace: String,
    name: String,
    tree: status::Tree,
    text: String,
    history: String,
    events: Vec<EventLine>,
    actions: Actions,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventLine {
    #[serde(rename = "type")]
    type_: String,
    reason: String,
    message: String,
    count: i32,
    last_seen: String,
}

#[derive(Serialize)]
struct Actions {
    promote: bool,
    abort: bool,
    undo: bool,
}

async fn details(
    State(app): State<Arc<App>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let observed = match status::read(&app.client, &app.capabilities, &namespace, &name).await {
        Ok(observed) => observed,
        Err(message) if message.ends_with("not found") => {
            return error(StatusCode::NOT_FOUND, message);
        }
        Err(message) => return error(StatusCode::BAD_GATEWAY, message),
    };
    let tree = status::tree(&observed);
    let ms = &observed.microservice;
    let (promote, abort, undo) = offered(ms);
    let events = match recent_events(&app.client, &namespace, &name).await {
        Ok(events) => events,
        Err(message) => vec![EventLine {
            type_: "Warning".into(),
            reason: "EventsUnavailable".into(),
            message,
            count: 1,
            last_seen: String::new(),
        }],
    };
    json(
        StatusCode::OK,
        &Details {
            namespace,
            name,
            text: status::text(&tree),
            history: history(ms),
            tree,
            events,
            actions: Actions {
                promote,
                abort,
                undo,
            },
        },
    )
}

/// The Microservice's events, newest first.
async fn recent_events(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<EventLine>, String> {
    let fields = format!("involvedObject.kind=Microservice,involvedObject.name={name}");
    let list = Api::<CoreEvent>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().fields(&fields))
        .await
        .map_err(|e| format!("listing the events of {namespace}/{name}: {e}"))?;
    let mut lines: Vec<EventLine> = list
        .items
        .into_iter()
        .map(|event| {
            let last_seen = event
                .last_timestamp
                .map(|t| t.0.to_string())
                .or_else(|| event.event_time.map(|t| t.0.to_string()))
                .or_else(|| event.metadata.creation_timestamp.map(|t| t.0.to_string()))
                .unwrap_or_default();
            EventLine {
                type_: event.type_.unwrap_or_default(),
                reason: event.reason.unwrap_or_default(),
                message: event.message.unwrap_or_default(),
                count: event
                    .series
                    .and_then(|s| s.count)
                    .or(event.count)
                    .unwrap_or(1),
                last_seen,
            }
        })
        .collect();
    // RFC 3339 in UTC sorts as text.
    lines.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
    lines.truncate(EVENTS_SHOWN);
    Ok(lines)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ActionBody {
    to_revision: Option<i64>,
}

async fn act(
    State(app): State<Arc<App>>,
    Path((namespace, name, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get("x-flotilla-dashboard").is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "a release action needs the X-Flotilla-Dashboard header the page sends".into(),
        );
    }
    let body: ActionBody = if body.is_empty() {
        ActionBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("the request body: {e}")),
        }
    };
    let steer = match action.as_str() {
        "promote" => Steer::Promote,
        "abort" => Steer::Abort,
        "undo" => Steer::Undo {
            to_revision: body.to_revision,
        },
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no action {other}: promote, abort or undo"),
            );
        }
    };
    let api: Api<Microservice> = Api::namespaced(app.client.clone(), &namespace);
    match steer_release(&api, &name, steer).await {
        Ok(message) => json(
            StatusCode::OK,
            &serde_json::json!({ "message": message.trim_end() }),
        ),
        Err(message) => error(StatusCode::CONFLICT, message),
    }
}
