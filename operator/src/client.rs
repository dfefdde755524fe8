//! The Kubernetes client every command uses, and how its watches behave, so that an API
//! server that goes away is noticed in seconds, not at the end of a five-minute watch.

use std::path::PathBuf;
use std::time::Duration;

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;
use kube::{Client, Config};

use crate::leader::{Fence, FenceLayer, ShardFenceLayer};

/// A server that does not accept the connection in this time is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may take to be sent.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server keeps a watch open before ending it (kube's watcher then
/// resumes from the last version seen). Bounded, so a watch on a connection the server
/// forgot is replaced within this time plus [`READ_TIMEOUT`]'s margin.
pub const WATCH_TIMEOUT_SECS: u32 = 30;
/// No byte of a response for this long means the connection is dead. Longer than a
/// watch's lifetime: an idle watch may say nothing until the server ends it.
const READ_TIMEOUT: Duration = Duration::from_secs(WATCH_TIMEOUT_SECS as u64 + 15);

/// A client from the kubeconfig or the in-cluster config, with every request timed out.
pub async fn client() -> Result<Client, String> {
    Client::try_from(config().await?).map_err(|e| format!("connecting to Kubernetes: {e}"))
}

/// Where a command-line tool connects, as kubectl picks it: `--kubeconfig` (else
/// `$KUBECONFIG`, else `~/.kube/config`, else the in-cluster config) and `--context`
/// (else the current context).
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// A client for `target`, and the namespace its context names (`default` when none):
/// the namespace of a command given no `-n`.
pub async fn client_for(target: &Target) -> Result<(Client, String), String> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match (&target.kubeconfig, &target.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("reading the kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        (None, Some(_)) => Config::from_kubeconfig(&options).await,
        (None, None) => return infer_with_namespace().await,
    }
    .map_err(|e| format!("reading the Kubernetes configuration: {e}"))?;
    timed(&mut config);
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    Ok((client, namespace))
}

async fn infer_with_namespace() -> Result<(Client, String), String> {
    let config = config().await?;
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    Ok((client, namespace))
}

/// The same client behind a [`Fence`]: its writes pass only while the fence is open.
pub async fn fenced_client(fence: Fence) -> Result<Client, String> {
    let builder = ClientBuilder::try_from(config().await?)
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    Ok(builder.with_layer(&FenceLayer(fence)).build())
}

/// The same client behind one fence per shard ([`ShardFenceLayer`]): a write to a
/// namespace passes only while its shard is held.
pub async fn fenced_shard_client(fences: std::sync::Arc<[Fence]>) -> Result<Client, String> {
    let builder = ClientBuilder::try_from(config().await?)
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    Ok(builder.with_layer(&ShardFenceLayer(fences)).build())
}

async fn config() -> Result<Config, String> {
    let mut config = Config::infer()
        .await
        .map_err(|e| format!("reading the Kubernetes configuration: {e}"))?;
    timed(&mut config);
    Ok(config)
}

/// Every request timed out.
fn timed(config: &mut Config) {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    // Count the read timeout from each request, not from when a pooled connection went
    // idle.
    config.reset_reader_on_write = true;
}

/// Objects per page of a watch's list. Each page is decoded whole, managed fields and
/// all, before the caches trim it: small pages keep that peak (which the allocator tends
/// to keep) small, at the cost of more requests on a relist.
const LIST_PAGE_SIZE: u32 = 100;

/// The configuration of every watch: bounded in time, listing in small pages.
pub fn watch_config() -> watcher::Config {
    watcher::Config::default()
        .timeout(WATCH_TIMEOUT_SECS)
        .page_size(LIST_PAGE_SIZE)
}

/// How watches retry after an error: from half a second, doubling up to five seconds,
/// so a watch is back within seconds of the API server's return (kube's default grows to
/// 30 s). Reset once the watch has run without error for a minute.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
    last: Option<tokio::time::Instant>,
}

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(5);
const HEALTHY_FOR: Duration = Duration::from_secs(60);

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff {
            next: FIRST_RETRY,
            last: None,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|last| now - last > HEALTHY_FOR) {
            self.next = FIRST_RETRY;
        }
        self.last = Some(now);
        let delay = self.next;
        self.next = (self.next * 2).min(LAST_RETRY);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_retries_double_up_to_five_seconds_and_start_over_after_a_quiet_minute() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<u128> = (0..6)
            .map(|_| backoff.next().unwrap().as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000]);
        // The last retry was over a minute ago: the watch has been healthy since.
        backoff.last = Some(tokio::time::Instant::now() - Duration::from_secs(61));
        assert_eq!(backoff.next(), Some(FIRST_RETRY));
        backoff.next();
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST_RETRY));
    }

    #[tokio::test]
    async fn the_command_line_picks_the_kubeconfig_and_context_as_kubectl_does() {
        let dir = std::env::temp_dir().join(format!("flotilla-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            "apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster: {server: 'https://dev.example.com:6443'}
- name: prod
  cluster: {server: 'https://prod.example.com:6443'}
users:
- name: me
  user: {token: t}
contexts:
- name: dev
  context: {cluster: dev, user: me, namespace: team-a}
- name: prod
  context: {cluster: prod, user: me}
",
        )
        .unwrap();
        let target = |context: Option<&str>| Target {
            kubeconfig: Some(path.clone()),
            context: context.map(str::to_string),
        };
        let (_, namespace) = client_for(&target(None)).await.unwrap();
        assert_eq!(namespace, "team-a", "the current context's namespace");
        let (_, namespace) = client_for(&target(Some("prod"))).await.unwrap();
        assert_eq!(namespace, "default", "a context without one: default");
        match client_for(&target(Some("staging"))).await {
            Ok(_) => panic!("an unknown context is refused"),
            Err(error) => assert!(error.contains("staging"), "{error}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dead_watch_is_noticed_before_the_read_timeout_would_cut_a_live_one() {
        assert!(READ_TIMEOUT > Duration::from_secs(WATCH_TIMEOUT_SECS.into()));
        assert_eq!(watch_config().timeout, Some(WATCH_TIMEOUT_SECS));
    }
}
