//! The fence: every write the controller makes goes through it, and passes only while
//! this process's hold on the lease is fresh. It sits in the client as a tower layer, so
//! no write (an apply, a delete, a status patch, an event) can forget to ask.
//!
//! The fence opens until `renewal start + renew deadline`, a time before any other
//! replica may consider the lease expired (they wait the whole lease duration from when
//! they saw the last renewal, which was sent after that start). A write still running at
//! the deadline is cancelled, and the margin between deadline and duration covers one
//! already on the wire.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::BoxFuture;
use http::{Method, Request};
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// Until when this process may write; shared by the elector, which moves it, and the
/// client, which asks it before every write.
#[derive(Clone, Debug, Default)]
pub struct Fence(Arc<Mutex<Option<Instant>>>);

impl Fence {
    /// Writes pass until `until` (a later renewal moves it on).
    pub fn open_until(&self, until: Instant) {
        *self.0.lock().expect("fence lock") = Some(until);
    }

    /// No write passes from now on.
    pub fn close(&self) {
        *self.0.lock().expect("fence lock") = None;
    }

    /// The time a write starting now must be done by; None when writes are refused.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline_at(Instant::now())
    }

    fn deadline_at(&self, now: Instant) -> Option<Instant> {
        self.0
            .lock()
            .expect("fence lock")
            .filter(|until| now < *until)
    }
}

/// A write refused or cut short by the fence.
#[derive(Debug, thiserror::Error)]
pub enum Fenced {
    #[error("not writing: this replica does not hold a fresh leader lease")]
    NotLeader,
    #[error("write cancelled: the leader lease's renewal deadline passed while it ran")]
    DeadlinePassed,
}

/// Puts [`Fence`] in front of a client's service.
#[derive(Clone, Debug)]
pub struct FenceLayer(pub Fence);

impl<S> Layer<S> for FenceLayer {
    type Service = FencedService<S>;

    fn layer(&self, inner: S) -> FencedService<S> {
        FencedService {
            inner,
            gate: Gate::One(self.0.clone()),
        }
    }
}

/// Puts one fence per shard in front of a client's service: a write to a namespace asks
/// the fence of that namespace's shard ([`super::shards::shard_of`]); a write to no
/// namespace passes while any shard is held.
#[derive(Clone, Debug)]
pub struct ShardFenceLayer(pub Arc<[Fence]>);

impl<S> Layer<S> for ShardFenceLayer {
    type Service = FencedService<S>;

    fn layer(&self, inner: S) -> FencedService<S> {
        FencedService {
            inner,
            gate: Gate::Shards(self.0.clone()),
        }
    }
}

#[derive(Clone, Debug)]
enum Gate {
    One(Fence),
    Shards(Arc<[Fence]>),
}

impl Gate {
    fn deadline_for(&self, path: &str) -> Option<Instant> {
        match self {
            Gate::One(fence) => fence.deadline(),
            Gate::Shards(fences) => match namespace_of(path) {
                Some(namespace) => fences
                    .get(super::shards::shard_of(namespace, fences.len() as u32) as usize)?
                    .deadline(),
                None => fences.iter().find_map(Fence::deadline),
            },
        }
    }
}

/// The namespace a request's path writes into (`/api/v1/namespaces/shop/services`,
/// `/apis/apps/v1/namespaces/shop/deployments/x`), if any.
fn namespace_of(path: &str) -> Option<&str> {
    let mut segments = path.split('/');
    segments.find(|s| *s == "namespaces")?;
    segments.next().filter(|s| !s.is_empty())
}

#[derive(Clone, Debug)]
pub struct FencedService<S> {
    inner: S,
    gate: Gate,
}

/// Reads (and watches) never change the cluster: they pass at any time, so a standby
/// or a leader that lost its lease can still read.
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl<S, B> Service<Request<B>> for FencedService<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !is_write(request.method()) {
            return self
                .inner
                .call(request)
                .map(|r| r.map_err(Into::into))
                .boxed();
        }
        let Some(deadline) = self.gate.deadline_for(request.uri().path()) else {
            return futures::future::ready(Err(Fenced::NotLeader.into())).boxed();
        };
        let response = self.inner.call(request);
        async move {
            match tokio::time::timeout_at(deadline, response).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Fenced::DeadlinePassed.into()),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Counts the requests that reach the server; answers after `delay`.
    #[derive(Clone)]
    struct Server {
        reached: Arc<AtomicUsize>,
        delay: Duration,
    }

    impl Service<Request<()>> for Server {
        type Response = ();
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<(), Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            self.reached.fetch_add(1, Ordering::SeqCst);
            let delay = self.delay;
            async move {
                tokio::time::sleep(delay).await;
                Ok(())
            }
            .boxed()
        }
    }

    fn fenced(fence: &Fence, delay: Duration) -> (FencedService<Server>, Arc<AtomicUsize>) {
        let reached = Arc::new(AtomicUsize::new(0));
        let server = Server {
            reached: reached.clone(),
            delay,
        };
        (FenceLayer(fence.clone()).layer(server), reached)
    }

    fn request(method: Method) -> Request<()> {
        Request::builder().method(method).body(()).unwrap()
    }

    #[tokio::test]
    async fn a_closed_fence_refuses_writes_before_they_reach_the_server_and_lets_reads_pass() {
        let fence = Fence::default();
        let (mut service, reached) = fenced(&fence, Duration::ZERO);
        for method in [Method::PATCH, Method::POST, Method::PUT, Method::DELETE] {
            let error = service.call(request(method)).await.unwrap_err();
            assert!(error.downcast_ref::<Fenced>().is_some(), "{error}");
        }
        assert_eq!(reached.load(Ordering::SeqCst), 0);
        service.call(request(Method::GET)).await.unwrap();
        assert_eq!(reached.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_open_fence_lets_writes_pass_until_its_deadline() {
        let fence = Fence::default();
        fence.open_until(Instant::now() + Duration::from_secs(60));
        let (mut service, reached) = fenced(&fence, Duration::ZERO);
        service.call(request(Method::PATCH)).await.unwrap();
        assert_eq!(reached.load(Ordering::SeqCst), 1);
        fence.close();
        assert!(service.call(request(Method::PATCH)).await.is_err());
        assert_eq!(reached.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_still_running_at_the_deadline_is_cancelled() {
        let fence = Fence::default();
        fence.open_until(Instant::now() + Duration::from_secs(2));
        let (mut service, _) = fenced(&fence, Duration::from_secs(5));
        let error = service.call(request(Method::PATCH)).await.unwrap_err();
        assert!(
            matches!(error.downcast_ref::<Fenced>(), Some(Fenced::DeadlinePassed)),
            "{error}"
        );
    }

    #[test]
    fn the_fence_shuts_by_itself_at_its_deadline() {
        let fence = Fence::default();
        let now = Instant::now();
        fence.open_until(now + Duration::from_secs(1));
        assert!(fence.deadline_at(now).is_some());
        assert!(fence.deadline_at(now + Duration::from_secs(1)).is_none());
    }

    #[tokio::test]
    async fn with_shards_a_write_asks_the_fence_of_its_namespaces_shard() {
        let fences: Arc<[Fence]> = (0..3).map(|_| Fence::default()).collect();
        let shop = crate::leader::shards::shard_of("shop", 3) as usize;
        fences[shop].open_until(Instant::now() + Duration::from_secs(60));
        let other = (0..)
            .map(|i| format!("team-{i}"))
            .find(|ns| crate::leader::shards::shard_of(ns, 3) as usize != shop)
            .unwrap();
        let reached = Arc::new(AtomicUsize::new(0));
        let mut service = ShardFenceLayer(fences.clone()).layer(Server {
            reached: reached.clone(),
            delay: Duration::ZERO,
        });
        let write = |path: String| {
            Request::builder()
                .method(Method::PATCH)
                .uri(path)
                .body(())
                .unwrap()
        };
        service
            .call(write(
                "/apis/apps/v1/namespaces/shop/deployments/users".into(),
            ))
            .await
            .unwrap();
        let refused = service
            .call(write(format!("/api/v1/namespaces/{other}/services/users")))
            .await
            .unwrap_err();
        assert!(refused.downcast_ref::<Fenced>().is_some(), "{refused}");
        // No namespace: passes while any shard is held.
        service
            .call(write(
                "/apis/flotilla.dev/v1alpha1/microserviceclasses/c/status".into(),
            ))
            .await
            .unwrap();
        fences[shop].close();
        assert!(
            service
                .call(write(
                    "/apis/flotilla.dev/v1alpha1/microserviceclasses/c/status".into()
                ))
                .await
                .is_err()
        );
        assert_eq!(reached.load(Ordering::SeqCst), 2);
        assert_eq!(namespace_of("/api/v1/namespaces/shop/pods/a"), Some("shop"));
        assert_eq!(namespace_of("/apis/x/v1/widgets"), None);
    }
}
