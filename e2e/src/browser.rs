//! A real headless Chromium for the dashboard's e2e, driven over W3C WebDriver: Debian's
//! `chromedriver` as a child process and a [`fantoccini`] session to it (`chromium` and
//! `chromium-driver` come from `e2e/cluster/install.sh`).
//!
//! Like the rest of the suite it never sleeps to wait: [`Browser::wait_for`] polls a
//! JavaScript expression with a deadline and reports the last value it saw.

use std::fmt::Display;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::operator::workspace_target;
use crate::wait::{Poll, wait_for};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Headless, as root (`--no-sandbox`), and quiet on a closed network: without the
/// background-networking flags Chromium keeps dialling Google services and logging the
/// refused connections. `--user-data-dir` (a fresh directory) is added per browser.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
];

/// How long chromedriver may take to answer `/status` (it is up in well under a second).
const DRIVER_DEADLINE: Duration = Duration::from_secs(20);
/// How long opening the session (starting Chromium) may take.
const SESSION_DEADLINE: Duration = Duration::from_secs(60);
const DRIVER_POLL: Duration = Duration::from_millis(50);
/// Attempts at starting chromedriver: the free port is picked before it binds it, so
/// another process may take it in between.
const DRIVER_ATTEMPTS: u32 = 3;
const LAST_VALUE_CHARS: usize = 2000;

static BROWSERS: AtomicU32 = AtomicU32::new(0);

/// Where screenshots go: `target/e2e-artifacts/dashboard` (`$CARGO_TARGET_DIR` if set).
pub fn artifacts_dir() -> PathBuf {
    workspace_target().join("e2e-artifacts/dashboard")
}

/// A headless Chromium with a WebDriver session, on a fresh profile. Dropping it ends the
/// session, kills chromedriver and what it started, and removes the profile.
pub struct Browser {
    client: fantoccini::Client,
    session_id: Option<String>,
    // Dropped after `Browser::drop` has ended the session.
    driver: Driver,
}

impl Browser {
    /// Starts `chromedriver --port=<free port>`, waits for it to answer, and opens a
    /// session running `/usr/bin/chromium` headless.
    pub async fn start() -> anyhow::Result<Self> {
        let start = Instant::now();
        let driver = Driver::start().await?;
        let ready = start.elapsed();
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", driver.profile.display()));
        let Value::Object(capabilities) = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }) else {
            unreachable!("an object literal")
        };
        let url = driver.url();
        let mut builder = fantoccini::ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let client = tokio::time::timeout(SESSION_DEADLINE, builder.connect(&url))
            .await
            .with_context(|| {
                format!(
                    "opening a Chromium session took over {SESSION_DEADLINE:?}; {}",
                    driver.describe()
                )
            })?
            .with_context(|| {
                format!(
                    "opening a Chromium session ({CHROMIUM}); {}",
                    driver.describe()
                )
            })?;
        let session_id = client.session_id().await.ok().flatten();
        eprintln!(
            "browser: {CHROMEDRIVER} answered on {url} in {ready:?}, Chromium session after {:?} (log {})",
            start.elapsed(),
            driver.log_path.display()
        );
        Ok(Self {
            client,
            session_id,
            driver,
        })
    }

    /// The WebDriver client, for what this type does not wrap (finding elements, clicks).
    pub fn client(&self) -> &fantoccini::Client {
        &self.client
    }

    /// Navigates to `url` and waits for the page to load (WebDriver's "normal" strategy).
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("loading {url}"))
    }

    /// Saves a PNG of the viewport as `<artifacts_dir>/<name>.png`, prints its path and
    /// returns it.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self
            .client
            .screenshot()
            .await
            .context("taking a screenshot")?;
        let dir = artifacts_dir();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.png"));
        fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("browser: screenshot {}", path.display());
        Ok(path)
    }

    /// Evaluates the JavaScript expression `expression` in the page (WebDriver's
    /// execute, as `return (<expression>);`) and deserializes its value. For statements,
    /// wrap them: `(() => { ...; return x; })()`.
    pub async fn eval<T: DeserializeOwned>(&self, expression: &str) -> anyhow::Result<T> {
        let value = self
            .client
            .execute(&return_script(expression), vec![])
            .await
            .with_context(|| format!("evaluating `{expression}`"))?;
        serde_json::from_value(value.clone())
            .with_context(|| format!("deserializing {value} from `{expression}`"))
    }

    /// Evaluates the JavaScript expression `condition` every 250 ms ([`wait_for`]) until
    /// its value is truthy and returns that value. A script error (the page still
    /// loading) counts as "not yet"; on timeout the error names `description` and the
    /// last value or error seen.
    pub async fn wait_for(
        &self,
        description: impl Display,
        deadline: Duration,
        condition: &str,
    ) -> anyhow::Result<Value> {
        let script = format!(
            "const value = (\n{}\n);\nreturn [!!value, value];",
            trim_expression(condition)
        );
        let script = &script;
        wait_for(description, deadline, || async move {
            let observed = self.client.execute(script, vec![]).await?;
            Ok(match observed {
                Value::Array(mut pair) if pair.len() == 2 => {
                    let value = pair.pop().unwrap_or_default();
                    if pair[0] == Value::Bool(true) {
                        Poll::Ready(value)
                    } else {
                        Poll::Pending(truncate(value.to_string()))
                    }
                }
                other => {
                    Poll::Pending(format!("unexpected result {}", truncate(other.to_string())))
                }
            })
        })
        .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session so chromedriver quits Chromium cleanly. fantoccini would send
        // this from a runtime task once its last handle is gone, which a finished test no
        // longer polls; the driver is killed right after anyway.
        if let Some(id) = &self.session_id {
            let _ = driver_request(self.driver.port, "DELETE", &format!("/session/{id}"));
        }
    }
}

/// The chromedriver process, in its own process group with the Chromium it starts, and
/// the profile directory given to Chromium.
struct Driver {
    child: Child,
    port: u16,
    log_path: PathBuf,
    profile: PathBuf,
}

impl Driver {
    async fn start() -> anyhow::Result<Self> {
        let n = BROWSERS.fetch_add(1, Ordering::Relaxed);
        let profile =
            std::env::temp_dir().join(format!("flotilla-chromium-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&profile);
        fs::create_dir_all(&profile).with_context(|| format!("creating {}", profile.display()))?;
        let logs = workspace_target().join("e2e-logs");
        fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let log_path = logs.join(format!("chromedriver-{}-{n}.log", std::process::id()));
        let mut attempt = 1;
        loop {
            let driver = Self::spawn(profile.clone(), log_path.clone())?;
            match driver.wait_ready().await {
                Ok(driver) => return Ok(driver),
                Err(e) if attempt < DRIVER_ATTEMPTS && e.to_string().contains("exited") => {
                    eprintln!("browser: attempt {attempt}: {e:#}; retrying on another port");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn(profile: PathBuf, log_path: PathBuf) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so Drop can kill the Chromium processes with it.
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!("starting {CHROMEDRIVER} (Debian package chromium-driver; e2e/cluster/install.sh)")
            })?;
        Ok(Self {
            child,
            port,
            log_path,
            profile,
        })
    }

    /// Polls `/status` until it reports ready; fails at once if chromedriver exits.
    async fn wait_ready(mut self) -> anyhow::Result<Self> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{CHROMEDRIVER} exited ({status}) before answering; {}",
                    self.describe()
                );
            }
            let port = self.port;
            let status =
                tokio::task::spawn_blocking(move || driver_request(port, "GET", "/status")).await?;
            let last = match status {
                Ok((200, body)) if driver_ready(&body) => return Ok(self),
                Ok((code, body)) => format!("HTTP {code}: {}", body.trim()),
                Err(e) => format!("error: {e:#}"),
            };
            if start.elapsed() >= DRIVER_DEADLINE {
                bail!(
                    "timed out after {DRIVER_DEADLINE:?} waiting for {}/status to report ready; last observed: {last}; {}",
                    self.url(),
                    self.describe()
                );
            }
            tokio::time::sleep(DRIVER_POLL).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The log's path and tail, for errors.
    fn describe(&self) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "chromedriver log {}:\n{}",
            self.log_path.display(),
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium process still running.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// One request to chromedriver on 127.0.0.1:`port`, returning status and body. Reads up
/// to the `Content-Length`: chromedriver keeps the connection open after answering, even
/// to `Connection: close`, so [`crate::http`]'s read-to-the-end client would time out.
fn driver_request(port: u16, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut chunk)
            .with_context(|| format!("reading the response to {method} {path}"))?;
        raw.extend_from_slice(&chunk[..n]);
        if let Some(response) = complete_response(&raw)? {
            return Ok(response);
        }
        if n == 0 {
            bail!(
                "connection closed mid-response: {:?}",
                String::from_utf8_lossy(&raw)
            );
        }
    }
}

/// Status and body once `raw` holds the headers and `Content-Length` bytes of body.
fn complete_response(raw: &[u8]) -> anyhow::Result<Option<(u16, String)>> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line in {head:?}"))?;
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .ok_or_else(|| anyhow!("no Content-Length in {head:?}"))?;
    let body = &raw[end + 4..];
    Ok((body.len() >= length).then(|| {
        (
            status,
            String::from_utf8_lossy(&body[..length]).into_owned(),
        )
    }))
}

/// Whether chromedriver's `/status` body says `"ready": true`.
fn driver_ready(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/value/ready").and_then(Value::as_bool))
        == Some(true)
}

/// An expression without trailing semicolons, to go inside parentheses.
fn trim_expression(expression: &str) -> &str {
    expression.trim().trim_end_matches(';')
}

fn return_script(expression: &str) -> String {
    format!("return (\n{}\n);", trim_expression(expression))
}

fn truncate(mut text: String) -> String {
    if text.len() > LAST_VALUE_CHARS {
        let mut end = LAST_VALUE_CHARS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chromedriver_status() {
        assert!(driver_ready(
            r#"{"value":{"build":{"version":"1"},"message":"ChromeDriver ready for new sessions.","ready":true}}"#
        ));
        assert!(!driver_ready(r#"{"value":{"ready":false}}"#));
        assert!(!driver_ready("not json"));
    }

    #[test]
    fn reads_a_response_up_to_its_content_length() {
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(complete_response(head).unwrap(), None);
        let partial = [&head[..], b"{\"a\""].concat();
        assert_eq!(complete_response(&partial).unwrap(), None);
        let full = [&head[..], b"{\"a\"}"].concat();
        assert_eq!(
            complete_response(&full).unwrap(),
            Some((200, "{\"a\"}".to_string()))
        );
        assert!(complete_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn wraps_expressions() {
        assert_eq!(
            return_script(" document.title; "),
            "return (\ndocument.title\n);"
        );
    }
}
