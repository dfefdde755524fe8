//! Plain HTTP GET and POST from the host (ClusterIPs are routed here by kube-proxy), std only.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::wait::{Poll, wait_for};

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// GETs `http://host[:port][/path]` with a 5 s budget per phase. Runs on a blocking
/// thread so waits can poll it.
pub async fn http_get(url: &str) -> anyhow::Result<HttpResponse> {
    request("GET", url, None).await
}

/// How long a Service may take to answer from the host once its pods are ready.
pub const HTTP_DEADLINE: Duration = Duration::from_secs(90);

/// GETs `url` from the host until it answers 200 with a body `accept` takes ([`wait_for`],
/// [`HTTP_DEADLINE`]); returns the body. `what` names the answer for the timeout message.
pub async fn wait_http(
    url: &str,
    what: &str,
    accept: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    wait_for(
        format!("GET {url} to answer {what}"),
        HTTP_DEADLINE,
        || async {
            let response = http_get(url).await?;
            Ok(if response.status == 200 && accept(&response.body) {
                Poll::Ready(response.body)
            } else {
                Poll::Pending(format!("HTTP {}: {}", response.status, response.body))
            })
        },
    )
    .await
}

/// POSTs a JSON body to `http://host[:port][/path]`, like [`http_get`].
pub async fn http_post_json(url: &str, body: &serde_json::Value) -> anyhow::Result<HttpResponse> {
    request("POST", url, Some(body.to_string())).await
}

async fn request(
    method: &'static str,
    url: &str,
    body: Option<String>,
) -> anyhow::Result<HttpResponse> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || request_blocking(method, &url, body.as_deref()))
        .await
        .context("HTTP client thread")?
}

fn request_blocking(method: &str, url: &str, body: Option<&str>) -> anyhow::Result<HttpResponse> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs: {url}"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .ok_or_else(|| anyhow!("{addr} resolved to nothing"))?;
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&sock, timeout)
        .with_context(|| format!("connecting to {sock}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let content = body.map_or(String::new(), |b| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        )
    });
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{content}Connection: close\r\n\r\n{}",
        body.unwrap_or_default()
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the response of {url}"))?;
    parse(&raw).with_context(|| format!("response of {url}"))
}

fn parse(raw: &[u8]) -> anyhow::Result<HttpResponse> {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no header end in {text:?}");
    };
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("chunked responses are not supported by this client");
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line in {head:?}"))?;
    Ok(HttpResponse {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_status_and_body() {
        let r = super::parse(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nno\n").unwrap();
        assert_eq!(r.status, 502);
        assert_eq!(r.body, "no\n");
    }
}
