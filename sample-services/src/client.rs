//! Calls to the services a service depends on, at the base URL Flotilla injects as
//! `<NAME>_URL`. Plain HTTP/1.1 with pooled connections and a deadline per call.

use std::fmt;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::config::{ConfigError, required_url};

/// The longest one call to a dependency may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A dependency: its name (for messages) and where to reach it.
#[derive(Clone)]
pub struct Upstream {
    name: String,
    base: String,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Http(Client<HttpConnector, Body>),
    /// The dependency's router called in the same process: unit tests wire real services
    /// together this way without a network.
    InProcess(Router),
}

/// A dependency's answer: any status, with its body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A call that got no usable answer.
#[derive(Debug, Clone)]
pub struct UpstreamError {
    pub upstream: String,
    pub message: String,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "calling {}: {}", self.upstream, self.message)
    }
}

impl std::error::Error for UpstreamError {}

impl Upstream {
    /// `dependency` at `<DEPENDENCY>_URL`, which must be set (`caller` is named in the
    /// error).
    pub fn from_env(caller: &str, dependency: &str) -> Result<Self, ConfigError> {
        Ok(Self::http(dependency, &required_url(caller, dependency)?))
    }

    /// `name` at `base_url` (`http://host:port`).
    pub fn http(name: &str, base_url: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            name: name.to_string(),
            base: base_url.trim_end_matches('/').to_string(),
            transport: Transport::Http(client),
        }
    }

    /// `name` served by `router` in this process.
    pub fn in_process(name: &str, router: Router) -> Self {
        Self {
            name: name.to_string(),
            base: format!("http://{name}"),
            transport: Transport::InProcess(router),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> Result<Reply, UpstreamError> {
        self.send(Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Result<Reply, UpstreamError> {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Reply, UpstreamError> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.error(format!("encoding: {e}")))?;
        self.send(Method::POST, path, Some(bytes)).await
    }

    /// Forwards raw bytes (a proxied request body) as JSON.
    pub async fn post_raw(&self, path: &str, body: Bytes) -> Result<Reply, UpstreamError> {
        self.send(Method::POST, path, Some(body.to_vec())).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, UpstreamError> {
        let uri = format!("{}{path}", self.base);
        let mut request = Request::builder().method(method.clone()).uri(&uri);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .map_err(|e| self.error(format!("{method} {uri}: {e}")))?;
        let call = async {
            match &self.transport {
                Transport::Http(client) => {
                    let response = client
                        .request(request)
                        .await
                        .map_err(|e| self.error(format!("{method} {uri}: {}", chain(&e))))?;
                    self.reply(&method, &uri, response).await
                }
                Transport::InProcess(router) => {
                    let response = router
                        .clone()
                        .oneshot(request)
                        .await
                        .map_err(|e| self.error(format!("{method} {uri}: {e}")))?;
                    self.reply(&method, &uri, response).await
                }
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| self.error(format!("{method} {uri}: no answer within {CALL_TIMEOUT:?}")))?
    }

    /// Reads a response of either transport into a [`Reply`].
    async fn reply<B>(
        &self,
        method: &Method,
        uri: &str,
        response: axum::http::Response<B>,
    ) -> Result<Reply, UpstreamError>
    where
        B: axum::body::HttpBody,
        B::Error: fmt::Display,
    {
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.error(format!("{method} {uri}: reading the body: {e}")))?;
        Ok(Reply {
            status,
            body: body.to_bytes(),
        })
    }

    fn error(&self, message: String) -> UpstreamError {
        UpstreamError {
            upstream: self.name.clone(),
            message,
        }
    }
}

impl Reply {
    /// The body as `T`; `upstream` names the dependency in the error.
    pub fn json<T: DeserializeOwned>(&self, upstream: &Upstream) -> Result<T, UpstreamError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            upstream.error(format!(
                "unexpected answer (HTTP {}): {e}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            ))
        })
    }

    /// The body as JSON, or `null` when it is not JSON.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// An error and its sources on one line: hyper's top-level message alone ("client
/// error (Connect)") hides the cause.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
