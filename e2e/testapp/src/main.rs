//! `testapp`: the workload image of the end-to-end tests.
//!
//! `testapp` (or `testapp serve`) serves HTTP/1.1 on `$PORT` (default 8080):
//! `/healthz` and `/readyz` answer 200, `/` answers
//! `{"service": $SERVICE_NAME, "version": $APP_VERSION, "hostname": ...}`, and
//! `/call/<ENV_VAR>` GETs the URL held in that variable and returns the upstream body
//! (502 with the error otherwise). `testapp get <url>` is the same client as a command.
//!
//! SIGTERM first turns `/readyz` to 503 and keeps serving for `$SHUTDOWN_DELAY_SECONDS`
//! (default 5), so the endpoints controllers and kube-proxy drop the pod before it stops
//! accepting (what a `preStop` sleep does on 1.30+ servers, which older servers cannot
//! run in an image without a shell); then it stops accepting and lets in-flight requests
//! finish.
//!
//! `testapp crash` exits 1 at once (a release that crashes on start). `testapp probe <url>`
//! GETs the URL every `$PROBE_INTERVAL_MS` (default 50) and prints, every second, one
//! line `probe ok=N failed=N versions=v1:N,v2:N window=v1:N,v2:N window_failed=N
//! failed_versions=v2:N`: the totals since start, the last second's answers by
//! `version`, and the injected failures by the version that answered them, so a test
//! reads which release answered and which failed.

mod http;
mod metrics;
mod probe;
mod routes;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long in-flight requests may run after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => serve(),
        ["crash"] => {
            eprintln!("testapp crash: exiting at start, as asked");
            std::process::exit(1);
        }
        ["probe", url] => probe::run(url),
        ["get", url] => match http::get(url) {
            Ok(resp) if (200..300).contains(&resp.status) => {
                let _ = std::io::stdout().write_all(&resp.body);
            }
            Ok(resp) => {
                eprintln!("GET {url}: status {}", resp.status);
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("GET {url}: {e}");
                std::process::exit(1);
            }
        },
        _ => {
            eprintln!(
                "usage: testapp [serve] | testapp get <url> | testapp probe <url> | testapp crash"
            );
            std::process::exit(2);
        }
    }
}

fn serve() {
    // A config that crashes the app at start: what a bad ConfigMap edit does.
    if std::env::var("CONFIG_MODE").as_deref() == Ok("crash") {
        eprintln!("testapp: CONFIG_MODE=crash: exiting at start");
        std::process::exit(1);
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().unwrap_or_else(|_| {
            eprintln!("PORT={p} is not a port number");
            std::process::exit(2)
        }),
        Err(_) => 8080,
    };
    // Block SIGTERM before any thread starts so every thread inherits the mask and only
    // the waiting thread below receives it.
    let sigset = block_sigterm();
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| {
        eprintln!("cannot listen on port {port}: {e}");
        std::process::exit(1)
    });
    let local = listener.local_addr().expect("listener address");
    eprintln!("testapp listening on {local}");

    let stopping = Arc::new(AtomicBool::new(false));
    let draining = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let delay = Duration::from_secs(
        std::env::var("SHUTDOWN_DELAY_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );
    {
        let stopping = Arc::clone(&stopping);
        let draining = Arc::clone(&draining);
        thread::spawn(move || {
            wait_for_sigterm(&sigset);
            eprintln!("SIGTERM: not ready, serving {delay:?} more before draining");
            draining.store(true, Ordering::SeqCst);
            thread::sleep(delay);
            eprintln!("draining");
            stopping.store(true, Ordering::SeqCst);
            // Wake the blocking accept() so the loop sees the flag.
            let _ = TcpStream::connect(("127.0.0.1", local.port()));
        });
    }

    let env = |name: &str| std::env::var(name).ok();
    let metrics = Arc::new(metrics::Metrics::default());
    for conn in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let in_flight = Arc::clone(&in_flight);
        let metrics = Arc::clone(&metrics);
        let draining = draining.load(Ordering::SeqCst);
        in_flight.fetch_add(1, Ordering::SeqCst);
        thread::spawn(move || {
            handle(stream, &env, draining, &metrics);
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
    drop(listener);
    let deadline = Instant::now() + DRAIN;
    while in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!("testapp stopped");
}

fn handle(
    mut stream: TcpStream,
    env: &dyn Fn(&str) -> Option<String>,
    draining: bool,
    metrics: &metrics::Metrics,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let started = Instant::now();
    let request = http::read_request(&mut stream);
    let path = request
        .as_ref()
        .map(|req| req.path.split('?').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let response = match request {
        Ok(req) if draining && req.path.starts_with("/readyz") => {
            routes::Response::text(503, "shutting down\n")
        }
        Ok(_) if path == "/metrics" => metrics::exposition(metrics.render()),
        Ok(_) if path == "/" && metrics.next_fails(metrics::fail_percent(env)) => {
            // The version in the body lets the probe count failures by version.
            routes::Response::text(
                500,
                &format!(
                    "{{\"error\":\"injected failure (FAIL_PERCENT or CONFIG_MODE=fail)\",\"version\":{}}}\n",
                    routes::json_string(&env("APP_VERSION").unwrap_or_default())
                ),
            )
        }
        Ok(req) => routes::route(&req.method, &req.path, env, &|url| http::get(url)),
        Err(e) => routes::Response::text(400, &format!("bad request: {e}\n")),
    };
    // The app's own traffic: not the scrapes, not the kubelet's probes.
    if path != "/metrics" && path != "/healthz" && path != "/readyz" {
        metrics.record(response.status, started.elapsed());
    }
    let _ = stream.write_all(&response.to_bytes());
    let _ = stream.flush();
}

fn block_sigterm() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the calls only read and write the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_sigterm(set: &libc::sigset_t) {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is an initialised signal set and `sig` a valid out-pointer.
    while unsafe { libc::sigwait(set, &mut sig) } != 0 {}
}
