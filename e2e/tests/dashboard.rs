//! `flotilla dashboard` in a real headless Chromium (issue 28), against the operator run
//! with the chart's identity. The dashboard itself runs as users run it: on this machine,
//! with the user's kubeconfig (here the admin's), through a TCP proxy the test can cut to
//! take its watch away. The test asserts on the page's DOM and saves a screenshot of each
//! state under `target/e2e-artifacts/dashboard/`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use fantoccini::Locator;
use flotilla::api::Microservice;
use flotilla_e2e::steps::{testapp, wait_ready};
use flotilla_e2e::{Browser, Scenario, TestNamespace, apply_yaml, kubectl};
use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The sample shop's services (sample-services/manifests), whose `dependsOn` edges the
/// test reproduces on the testapp image.
const SHOP: [&str; 5] = ["users", "inventory", "payments", "orders", "storefront"];
const V1: &str = "flotilla.local/testapp:v1";
const V2: &str = "flotilla.local/testapp:v2";
const PAGE: Duration = Duration::from_secs(30);

/// `dependsOn` names of a sample service, as its manifest declares them.
fn sample_dependencies(name: &str) -> anyhow::Result<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sample-services/manifests")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(&text)?;
    let manifest = documents
        .into_iter()
        .find(|d| d["kind"] == "Microservice")
        .ok_or_else(|| anyhow!("no Microservice in {}", path.display()))?;
    Ok(manifest["spec"]["dependsOn"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|d| d["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// A testapp Microservice standing in for sample service `name`, with its edges.
fn shop_service(name: &str, image: &str, extra: &str) -> anyhow::Result<String> {
    let mut spec = String::from("  replicas: 1\n");
    let dependencies = sample_dependencies(name)?;
    if !dependencies.is_empty() {
        spec.push_str("  dependsOn:\n");
        for dependency in dependencies {
            spec.push_str(&format!("  - name: {dependency}\n"));
        }
    }
    spec.push_str(extra);
    Ok(testapp(name, &spec).replace(V1, image))
}

/// storefront releases by canary: 25% for 5 s, then 50% until promoted.
const CANARY: &str = "  rollout:\n    strategy: canary\n    steps:\n    - {weight: 25, pause: 5s}\n    - {weight: 50, pause: manual}\n    progressDeadlineSeconds: 180\n";

fn storefront(image: &str) -> anyhow::Result<String> {
    Ok(shop_service("storefront", image, CANARY)?.replace("replicas: 1", "replicas: 2"))
}

/// A TCP proxy in front of the API server that the test can cut: while cut, open
/// connections are dropped and new ones closed at once, as an API server gone away.
struct CutProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl CutProxy {
    async fn start(upstream: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (cut_flag, open_list) = (cut.clone(), open.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut_flag.load(Ordering::SeqCst) {
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open_list.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Ok(Self {
            addr,
            cut,
            open,
            accept,
        })
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// The admin kubeconfig (`$KUBECONFIG`), and its API server's `host:port`.
fn admin_kubeconfig() -> anyhow::Result<(Value, String)> {
    let config: Value = serde_json::from_str(&kubectl(&[
        "config", "view", "--raw", "--minify", "-o", "json",
    ])?)?;
    let server = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .ok_or_else(|| anyhow!("no server in $KUBECONFIG"))?;
    let upstream = server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    Ok((config, upstream))
}

/// `config` with its server replaced by `proxy`, written into `dir`.
fn kubeconfig_through(mut config: Value, proxy: SocketAddr, dir: &Path) -> anyhow::Result<PathBuf> {
    config["clusters"][0]["cluster"]["server"] = json!(format!("https://{proxy}"));
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_json::to_string(&config)?)?;
    Ok(path)
}

/// `flotilla dashboard` as a child process; killed on drop.
struct Dashboard {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Dashboard {
    fn start(args: &[&str], kubeconfig: &Path, log: PathBuf) -> anyhow::Result<Self> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut child = Command::new(flotilla_e2e::operator::binary())
            .arg("dashboard")
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("starting flotilla dashboard")?;
        let stdout = child.stdout.take().expect("piped");
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = send.send(line);
        });
        let line = receive.recv_timeout(Duration::from_secs(60)).map_err(|_| {
            anyhow!(
                "flotilla dashboard printed no address in 60 s (log {})",
                log.display()
            )
        })?;
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .ok_or_else(|| {
                anyhow!(
                    "flotilla dashboard printed {line:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })?
            .to_string();
        eprintln!("dashboard: {url} (log {})", log.display());
        Ok(Self { child, url, log })
    }

    /// host:port it listens on.
    fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_path(name: &str) -> PathBuf {
    let dir = flotilla_e2e::browser::artifacts_dir();
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{name}.log"))
}

/// JavaScript: the node of `id` (namespace/name).
fn node(id: &str) -> String {
    format!("document.querySelector('#graph g.node[data-id=\"{id}\"]')")
}

/// JavaScript: the release text shown on node `id`, or ''.
fn release_text(id: &str) -> String {
    format!(
        "(({n}) && {n}.querySelector('text.release')) ? {n}.querySelector('text.release').textContent : ''",
        n = node(id)
    )
}

/// Clicks a node the way a person does, with the pointer.
async fn click(browser: &Browser, css: &str) -> anyhow::Result<()> {
    browser
        .client()
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("finding {css}"))?
        .click()
        .await
        .with_context(|| format!("clicking {css}"))?;
    Ok(())
}

/// Each release text the API showed, with when the test first saw it.
type Seen = Arc<Mutex<Vec<(String, Instant)>>>;

/// Records when the API first showed each release text of `name`, to say how far behind
/// the page was.
fn follow_releases(client: kube::Client, ns: &str, name: &str) -> (Seen, AbortHandle) {
    let seen: Seen = Arc::default();
    let api: Api<Microservice> = Api::namespaced(client, ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, config).applied_objects());
        while let Ok(Some(ms)) = stream.try_next().await {
            let text = flotilla::view::release_under_way(&ms)
                .map(|r| r.text)
                .unwrap_or_default();
            let mut seen = record.lock().unwrap();
            if seen.last().is_none_or(|(last, _)| last != &text) {
                seen.push((text, Instant::now()));
            }
        }
    });
    (seen, task.abort_handle())
}

fn api_saw(seen: &Mutex<Vec<(String, Instant)>>, text: &str) -> Option<Instant> {
    seen.lock()
        .unwrap()
        .iter()
        .find(|(t, _)| t == text)
        .map(|(_, at)| *at)
}

// The shop on the page; a canary shown step by step and promoted from the page; a
// service made to fail shown degraded with its cause; the page through a cut watch and a
// restarted dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_live_on_the_page() -> anyhow::Result<()> {
    let s = Scenario::new("dashboard").await?;
    let (client, ns) = (s.client(), s.ns());
    for name in SHOP {
        let manifest = if name == "storefront" {
            storefront(V1)?
        } else {
            shop_service(name, V1, "")?
        };
        apply_yaml(ns, &manifest)?;
    }
    for name in SHOP {
        wait_ready(client, ns, name).await?;
    }

    let (admin, upstream) = admin_kubeconfig()?;
    let proxy = CutProxy::start(upstream).await?;
    let work = tempdir(ns)?;
    let kubeconfig = kubeconfig_through(admin, proxy.addr, &work)?;
    let mut dashboard = Dashboard::start(
        &["-n", ns, "--addr", "127.0.0.1:0"],
        &kubeconfig,
        log_path(&format!("{ns}-dashboard")),
    )?;
    let browser = Browser::start().await?;
    let opened = Instant::now();
    browser.goto(&dashboard.url).await?;

    // 0. Only this server's own Host, and a button's POST only with the page's header.
    let addr = dashboard.addr();
    for (request, expected) in [
        (
            "GET / HTTP/1.1\r\nHost: attacker.example:80\r\nConnection: close\r\n\r\n".to_string(),
            "403",
        ),
        (
            format!(
                "POST /api/services/{ns}/storefront/promote HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            "403",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
            "200",
        ),
    ] {
        let status = raw_status(&addr, &request).await?;
        assert_eq!(status, expected, "{request:?}");
    }

    // 1. The five services and their edges, all Ready.
    let expected_edges: BTreeSet<String> = SHOP
        .iter()
        .flat_map(|name| {
            sample_dependencies(name)
                .unwrap_or_default()
                .into_iter()
                .map(move |d| format!("{ns}/{name}>{ns}/{d}:local"))
        })
        .collect();
    anyhow::ensure!(
        expected_edges.len() >= 5,
        "the sample shop has its edges: {expected_edges:?}"
    );
    browser
        .wait_for(
            "the five shop services Ready on the page",
            PAGE,
            "(() => { const nodes = [...document.querySelectorAll('#graph g.node')]; return nodes.length === 5 && nodes.every(n => n.dataset.health === 'Ready' && n.dataset.ghost === 'false') ? nodes.map(n => n.dataset.id) : false })()",
        )
        .await?;
    let first_render: f64 = browser.eval("window.flotillaFirstRender").await?;
    eprintln!(
        "the shop drawn {:?} after the page was opened (first render at {first_render:.0} ms of the page's clock)",
        opened.elapsed()
    );
    let edges: BTreeSet<String> = browser
        .eval::<Vec<String>>("[...document.querySelectorAll('#graph path.edge')].map(e => `${e.dataset.from}>${e.dataset.to}:${e.dataset.admission}`)")
        .await?
        .into_iter()
        .collect();
    assert_eq!(edges, expected_edges, "the page draws every dependsOn edge");
    let label: String = browser
        .eval(&format!(
            "{}.getAttribute('aria-label')",
            node(&format!("{ns}/orders"))
        ))
        .await?;
    assert!(
        label.contains("orders") && label.contains("Ready"),
        "a text alternative: {label}"
    );
    browser.screenshot("1-shop").await?;

    // 2. A canary release, step by step, on the page.
    let storefront_id = format!("{ns}/storefront");
    let (api_seen, follower) = follow_releases(client.clone(), ns, "storefront");
    apply_yaml(ns, &storefront(V2)?)?;
    for (text, health, shot) in [
        ("canary step 1/2 25%", None, "2-canary-step-1"),
        (
            "canary step 2/2 50%, paused",
            Some("Held"),
            "3-canary-paused",
        ),
    ] {
        let condition = match health {
            Some(health) => format!(
                "({}) === '{text}' && {}.dataset.health === '{health}'",
                release_text(&storefront_id),
                node(&storefront_id)
            ),
            None => format!("({}) === '{text}'", release_text(&storefront_id)),
        };
        browser
            .wait_for(
                format!("storefront shows `{text}`"),
                Duration::from_secs(120),
                &condition,
            )
            .await?;
        let page_at = Instant::now();
        match api_saw(&api_seen, text) {
            Some(api_at) => eprintln!(
                "page showed `{text}` {:?} after the API (poll every 250 ms included)",
                page_at.saturating_duration_since(api_at)
            ),
            None => eprintln!("page showed `{text}`; the test's watch had not seen it yet"),
        }
        browser.screenshot(shot).await?;
    }
    let seen_by_api: Vec<String> = api_seen
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    follower.abort();
    eprintln!("release texts in the API: {seen_by_api:?}");

    // 3. The panel, and promote behind a confirmation.
    click(
        &browser,
        &format!("#graph g.node[data-id=\"{storefront_id}\"]"),
    )
    .await?;
    browser
        .wait_for(
            "the panel of storefront with promote offered",
            PAGE,
            &format!("!document.getElementById('panel').hidden && document.getElementById('panel-title').textContent.includes('{storefront_id}') && !document.getElementById('action-promote').disabled && document.getElementById('panel-tree').textContent.length > 0"),
        )
        .await?;
    click(&browser, "#action-promote").await?;
    browser
        .wait_for("the confirmation", PAGE, "document.getElementById('confirm').open && document.getElementById('confirm-text').textContent")
        .await?;
    browser.screenshot("4-confirm-promote").await?;
    click(&browser, "#confirm-no").await?;
    browser
        .wait_for(
            "the confirmation closed",
            PAGE,
            "!document.getElementById('confirm').open",
        )
        .await?;
    let annotations = Api::<Microservice>::namespaced(client.clone(), ns)
        .get("storefront")
        .await?
        .metadata
        .annotations
        .unwrap_or_default();
    assert!(
        !annotations.contains_key("flotilla.dev/promote"),
        "declining sends nothing: {annotations:?}"
    );
    click(&browser, "#action-promote").await?;
    browser
        .wait_for(
            "the confirmation",
            PAGE,
            "document.getElementById('confirm').open",
        )
        .await?;
    click(&browser, "#confirm-yes").await?;
    let result = browser
        .wait_for(
            "the promote's answer",
            PAGE,
            "document.getElementById('action-result').textContent.includes('promote') && document.getElementById('action-result').textContent",
        )
        .await?;
    eprintln!("promote: {result}");
    browser
        .wait_for(
            "storefront released on v2",
            Duration::from_secs(120),
            &format!(
                "{n}.dataset.health === 'Ready' && ({r}) === '' && {n}.textContent.includes('testapp:v2')",
                n = node(&storefront_id),
                r = release_text(&storefront_id)
            ),
        )
        .await?;
    browser.screenshot("5-released").await?;

    // 4. A service made to fail: degraded, the cause in its panel.
    let users_id = format!("{ns}/users");
    apply_yaml(
        ns,
        &shop_service("users", "flotilla.local/does-not-exist:v1", "")?,
    )?;
    browser
        .wait_for(
            "users Degraded on the page",
            Duration::from_secs(120),
            &format!("{}.dataset.health === 'Degraded'", node(&users_id)),
        )
        .await?;
    // This time from the keyboard: the node focused (as Tab reaches it), then Enter.
    browser
        .eval::<Value>(&format!("{}.focus()", node(&users_id)))
        .await?;
    let focused: String = browser
        .eval("document.activeElement.dataset.id || ''")
        .await?;
    assert_eq!(focused, users_id, "a node takes the keyboard focus");
    browser
        .client()
        .active_element()
        .await?
        .send_keys(&fantoccini::key::Key::Enter.to_string())
        .await?;
    let cause = match browser
        .wait_for(
            "the pull failure in users' panel",
            PAGE,
            &format!("document.getElementById('panel-title').textContent.includes('{users_id}') && /Degraded.*(ErrImagePull|ImagePullBackOff)/.test(document.getElementById('panel-health').textContent) && document.getElementById('panel-message').textContent.includes('does-not-exist') && /Pod users-.*(ErrImagePull|ImagePullBackOff)/.test(document.getElementById('panel-tree').textContent) && document.getElementById('panel-message').textContent"),
        )
        .await
    {
        Ok(cause) => cause,
        Err(error) => {
            let panel: Value = browser
                .eval("['panel-title', 'panel-health', 'panel-message', 'panel-error', 'panel-tree'].map(id => document.getElementById(id).textContent)")
                .await?;
            anyhow::bail!("{error}; the panel shows {panel}");
        }
    };
    eprintln!("users' panel says: {cause}");
    browser.screenshot("6-degraded").await?;

    // 5. The dashboard's watch cut: shown, then resumed with what changed meanwhile.
    proxy.cut();
    let cut_at = Instant::now();
    let banner = browser
        .wait_for(
            "the page saying the cluster is lost",
            PAGE,
            "document.getElementById('connection').dataset.state === 'cluster-lost' && document.getElementById('connection').textContent",
        )
        .await?;
    eprintln!("{:?} after the cut: {banner}", cut_at.elapsed());
    browser.screenshot("7-cluster-lost").await?;
    apply_yaml(ns, &shop_service("users", V1, "")?)?;
    wait_ready(client, ns, "users").await?;
    proxy.restore();
    let restored = Instant::now();
    browser
        .wait_for(
            "the page live again, users Ready",
            Duration::from_secs(60),
            &format!(
                "document.getElementById('connection').dataset.state === 'live' && {}.dataset.health === 'Ready'",
                node(&users_id)
            ),
        )
        .await?;
    eprintln!(
        "live again {:?} after the watch came back",
        restored.elapsed()
    );
    browser.screenshot("8-resumed").await?;

    // 6. The dashboard itself restarted on the same address: the page reconnects.
    let addr = dashboard.addr();
    dashboard.stop();
    browser
        .wait_for(
            "the page saying the dashboard is unreachable",
            PAGE,
            "document.getElementById('connection').dataset.state === 'dashboard-lost'",
        )
        .await?;
    browser.screenshot("9-dashboard-lost").await?;
    let log = dashboard.log.clone();
    let dashboard = Dashboard::start(&["-n", ns, "--addr", &addr], &kubeconfig, log)?;
    let back = Instant::now();
    browser
        .wait_for(
            "the page live again with the shop",
            PAGE,
            "document.getElementById('connection').dataset.state === 'live' && document.querySelectorAll('#graph g.node').length === 5",
        )
        .await?;
    eprintln!(
        "page reconnected {:?} after the dashboard was back",
        back.elapsed()
    );
    browser.screenshot("10-reconnected").await?;
    drop(dashboard);
    // The kubeconfig holds the admin's credentials: not an artifact to keep.
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The status code the dashboard answers `request` with, sent as is.
async fn raw_status(addr: &str, request: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    Ok(reply
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string())
}

/// A directory for the test's files, under the artifacts.
fn tempdir(ns: &str) -> anyhow::Result<PathBuf> {
    let dir = flotilla_e2e::browser::artifacts_dir().join(ns);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

const THOUSAND: usize = 1000;

// A thousand Microservices (a hundred chains of ten) on the page: the time to first
// render and the time to draw an update, as the browser measures them; the filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_services_on_the_page() -> anyhow::Result<()> {
    let client = flotilla_e2e::client().await?;
    let namespace = TestNamespace::new(&client, "dashboard-1k").await?;
    let ns = namespace.name().to_string();
    let api: Api<Microservice> = Api::namespaced(client.clone(), &ns);
    let created = Instant::now();
    futures::stream::iter(0..THOUSAND)
        .map(|i| {
            let api = api.clone();
            async move {
                let (chain, link) = (i / 10, i % 10);
                let mut spec = json!({"image": V1, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
                if link < 9 {
                    spec["dependsOn"] = json!([{"name": format!("c{chain:02}-s{}", link + 1)}]);
                }
                let ms: Microservice = serde_json::from_value(json!({
                    "apiVersion": "flotilla.dev/v1alpha1",
                    "kind": "Microservice",
                    "metadata": {"name": format!("c{chain:02}-s{link}")},
                    "spec": spec,
                }))?;
                api.create(&PostParams::default(), &ms).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!(
        "{THOUSAND} Microservices created in {:?}",
        created.elapsed()
    );

    let kubeconfig = PathBuf::from(std::env::var("KUBECONFIG")?);
    let dashboard = Dashboard::start(
        &["-n", &ns, "--addr", "127.0.0.1:0"],
        &kubeconfig,
        log_path(&format!("{ns}-dashboard")),
    )?;
    let browser = Browser::start().await?;
    browser.goto(&dashboard.url).await?;
    browser
        .wait_for(
            format!("{THOUSAND} nodes on the page"),
            Duration::from_secs(60),
            &format!("document.querySelectorAll('#graph g.node').length === {THOUSAND}"),
        )
        .await?;
    let figures: Value = browser
        .eval("(() => { const nav = performance.getEntriesByType('navigation')[0]; return {firstRender: window.flotillaFirstRender, domContentLoaded: nav ? nav.domContentLoadedEventEnd : null, renders: window.flotillaRenderTimes}; })()")
        .await?;
    eprintln!(
        "{THOUSAND} services: first render {:.0} ms after navigation start (DOMContentLoaded at {:.0} ms); renders {}",
        figures["firstRender"].as_f64().unwrap_or(-1.0),
        figures["domContentLoaded"].as_f64().unwrap_or(-1.0),
        figures["renders"]
    );
    browser.screenshot("1k-first-render").await?;

    // An update to one of a thousand: drawn, and timed by the page.
    let renders_before: usize = browser.eval("window.flotillaRenderTimes.length").await?;
    api.patch(
        "c42-s0",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"dependsOn": [{"name": "c42-s1"}, {"name": "nowhere"}]}})),
    )
    .await?;
    browser
        .wait_for(
            "the ghost of c42-s0's new dependency",
            Duration::from_secs(30),
            &node(&format!("{ns}/nowhere")),
        )
        .await?;
    let update: Value = browser
        .eval(&format!(
            "window.flotillaRenderTimes.slice({renders_before})"
        ))
        .await?;
    eprintln!("an update among {THOUSAND} services drawn in (ms): {update}");
    let ghost: String = browser
        .eval(&format!(
            "{}.dataset.health",
            node(&format!("{ns}/nowhere"))
        ))
        .await?;
    assert_eq!(ghost, "Missing");

    // The filters: a name search leaves one chain.
    browser
        .client()
        .find(Locator::Css("#filter-search"))
        .await?
        .send_keys("c42-")
        .await?;
    let visible = browser
        .wait_for(
            "one chain left by the search",
            PAGE,
            "(() => { const shown = [...document.querySelectorAll('#graph g.node')].filter(n => !n.classList.contains('hidden') && n.dataset.ghost === 'false'); return shown.length === 10 ? shown.length : false; })()",
        )
        .await?;
    eprintln!("search c42-: {visible} services shown");
    let stats: String = browser
        .eval("document.getElementById('stats').textContent")
        .await?;
    assert!(stats.contains("10 services"), "{stats}");
    browser.screenshot("1k-search").await?;
    Ok(())
}
