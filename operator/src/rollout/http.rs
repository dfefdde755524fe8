//! The HTTP gate's checks: a GET of the gate's path on each ready new pod, through the
//! API server's pod proxy (`/api/v1/namespaces/NS/pods/NAME:PORT/proxy/PATH`), so the
//! operator needs no route to the pod network, only `get` on `pods/proxy`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::{Client, ResourceExt};

use super::machine::{HttpRound, MetricsRound};
use super::metrics_gate::{MAX_SCRAPE_BYTES, Tally};
use super::settings::{HttpGate, MetricsGate};

/// One check may take this long.
const TIMEOUT: Duration = Duration::from_secs(3);
/// At most this many pods are checked per round.
const MAX_PODS: usize = 5;

/// Checks each of `pods` (at most [`MAX_PODS`]) once.
pub async fn check(client: &Client, gate: &HttpGate, pods: &[&Pod]) -> HttpRound {
    let mut round = HttpRound::default();
    for pod in pods.iter().take(MAX_PODS) {
        match check_one(client, gate, pod).await {
            Ok(()) => round.passed += 1,
            Err(failure) => {
                round.failed += 1;
                round.failure = Some(failure);
            }
        }
    }
    round
}

/// The traffic gate's reading: each pod's metrics, summed per side. A pod that cannot be
/// read spoils the reading (a sum without it would look like a reset).
pub async fn scrape(
    client: &Client,
    gate: &MetricsGate,
    canary: &[&Pod],
    stable: &[&Pod],
) -> MetricsRound {
    let mut sums = [Tally::default(), Tally::default()];
    for (pods, sum) in [canary, stable].into_iter().zip(&mut sums) {
        for pod in pods {
            match scrape_one(client, gate, pod).await {
                Ok(tally) => sum.add(&tally),
                Err(failure) => {
                    return MetricsRound {
                        failure: Some(failure),
                        ..MetricsRound::default()
                    };
                }
            }
        }
    }
    let [canary, stable] = sums;
    MetricsRound {
        canary,
        stable,
        failure: None,
        deltas: false,
    }
}

async fn scrape_one(client: &Client, gate: &MetricsGate, pod: &Pod) -> Result<Tally, String> {
    use http_body_util::BodyExt;
    let name = pod.name_any();
    let request = proxied_get(pod, gate.port, &gate.path)?;
    let read = async {
        let response = client
            .send(request)
            .await
            .map_err(|e| format!("pod {name}: {e}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(format!("pod {name} answered {status} to GET {}", gate.path));
        }
        // Bounded: a pod's answer is the pod's to choose.
        let limited = http_body_util::Limited::new(response.into_body(), MAX_SCRAPE_BYTES);
        let bytes = limited
            .collect()
            .await
            .map_err(|e| format!("pod {name}: reading {}: {e}", gate.path))?
            .to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let text = tokio::time::timeout(TIMEOUT, read)
        .await
        .map_err(|_| format!("pod {name}: no answer in {}s", TIMEOUT.as_secs()))??;
    Tally::read(&text, &gate.selector()).map_err(|e| format!("pod {name}: {e}"))
}

/// A GET of `path` on `port` of `pod` through the API server's proxy.
fn proxied_get(pod: &Pod, port: i32, path: &str) -> Result<http::Request<Body>, String> {
    let name = pod.name_any();
    let uri = proxy_path(&pod.namespace().unwrap_or_default(), &name, port, path);
    http::Request::get(uri)
        .body(Body::from(Vec::new()))
        .map_err(|e| format!("pod {name}: {e}"))
}

/// The URL of `path` on `port` of a pod through the API server's proxy.
pub fn proxy_path(namespace: &str, pod: &str, port: i32, path: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}")
}

async fn check_one(client: &Client, gate: &HttpGate, pod: &Pod) -> Result<(), String> {
    let name = pod.name_any();
    let request = proxied_get(pod, gate.port, &gate.path)?;
    let response = tokio::time::timeout(TIMEOUT, client.send(request))
        .await
        .map_err(|_| format!("pod {name}: no answer in {}s", TIMEOUT.as_secs()))?
        .map_err(|e| format!("pod {name}: {e}"))?;
    let status = response.status().as_u16();
    if status == gate.expected_status {
        Ok(())
    } else {
        Err(format!(
            "pod {name} answered {status} to GET {} (expected {})",
            gate.path, gate.expected_status
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_through_the_pod_proxy() {
        assert_eq!(
            proxy_path("shop", "cart-canary-7d-x", 8080, "/readyz?deep=1"),
            "/api/v1/namespaces/shop/pods/cart-canary-7d-x:8080/proxy/readyz?deep=1"
        );
    }
}
