//! The traffic gate's Prometheus source: instead of reading the pods, ask a Prometheus
//! that scrapes them what each side's pods served over the step so far, as `increase`
//! over that window of the requests counter, of its error series and of the histogram's
//! buckets. The queries are built from the gate's fields (pure, below); the answers are
//! the tallies the gate judges.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::api::{Bucket, Tally};

use super::machine::MetricsRound;
use super::metrics_gate::MAX_SCRAPE_BYTES;
use super::settings::{MetricsGate, PrometheusSettings};

/// One query may take this long.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The three queries of one side: requests, errors, and the histogram's buckets by `le`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queries {
    pub requests: String,
    pub errors: String,
    pub buckets: Option<String>,
}

/// The queries for the pods `pods` of `namespace` over the last `window` seconds.
pub fn queries(
    gate: &MetricsGate,
    source: &PrometheusSettings,
    namespace: &str,
    pods: &[String],
    window: u64,
) -> Queries {
    // Pod names are DNS subdomains: `.` is their only regex metacharacter, escaped for
    // the regex and its backslash again for the PromQL string.
    let pods: Vec<String> = pods
        .iter()
        .map(|pod| {
            pod.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
                .collect::<String>()
                .replace('.', "\\\\.")
        })
        .collect();
    let selector = format!(
        "{}=\"{}\",{}=~\"{}\"",
        source.namespace_label,
        namespace,
        source.pod_label,
        pods.join("|")
    );
    let errors = gate.errors.to_string();
    Queries {
        requests: format!("sum(increase({}{{{selector}}}[{window}s]))", gate.requests),
        errors: format!(
            "sum(increase({}{{{selector},{errors}}}[{window}s]))",
            gate.requests
        ),
        buckets: gate.histogram.as_ref().map(|histogram| {
            format!("sum by (le) (increase({histogram}_bucket{{{selector}}}[{window}s]))")
        }),
    }
}

/// What each side's ready pods served over the last `window` seconds, from Prometheus.
pub async fn read(
    gate: &MetricsGate,
    source: &PrometheusSettings,
    namespace: &str,
    sides: [&[String]; 2],
    window: u64,
) -> MetricsRound {
    let mut tallies = [Tally::default(), Tally::default()];
    for (pods, tally) in sides.into_iter().zip(&mut tallies) {
        if pods.is_empty() {
            continue;
        }
        match read_side(gate, source, namespace, pods, window).await {
            Ok(read) => *tally = read,
            Err(failure) => {
                return MetricsRound {
                    failure: Some(format!("Prometheus {}: {failure}", source.address)),
                    deltas: true,
                    ..MetricsRound::default()
                };
            }
        }
    }
    let [canary, stable] = tallies;
    MetricsRound {
        canary,
        stable,
        failure: None,
        deltas: true,
    }
}

async fn read_side(
    gate: &MetricsGate,
    source: &PrometheusSettings,
    namespace: &str,
    pods: &[String],
    window: u64,
) -> Result<Tally, String> {
    let queries = queries(gate, source, namespace, pods, window);
    let scalar = |result: &[(Option<String>, f64)]| result.first().map_or(0.0, |(_, v)| *v);
    let requests = scalar(&query(&source.address, &queries.requests).await?);
    let errors = scalar(&query(&source.address, &queries.errors).await?);
    let mut buckets = Vec::new();
    if let Some(text) = &queries.buckets {
        for (le, count) in query(&source.address, text).await? {
            let Some(le) = le.and_then(|le| le.parse::<f64>().ok()) else {
                continue;
            };
            buckets.push(Bucket { le, count });
        }
        buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
    }
    let tally = Tally {
        requests,
        errors: errors.min(requests),
        buckets,
    };
    if !tally.is_valid() {
        return Err(format!("out-of-range answer to {}", queries.requests));
    }
    Ok(tally)
}

/// An instant query: each sample's `le` label (if any) and value.
async fn query(address: &str, promql: &str) -> Result<Vec<(Option<String>, f64)>, String> {
    let encoded: String = url_encode(promql);
    let uri = format!("{address}/api/v1/query?query={encoded}");
    let request = http::Request::get(&uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("{uri}: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let limited = http_body_util::Limited::new(response.into_body(), MAX_SCRAPE_BYTES);
        let body = limited
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "answered {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
        Ok(body)
    };
    let body = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer in {}s", TIMEOUT.as_secs()))??;
    parse(&body).map_err(|e| format!("{promql}: {e}"))
}

/// The samples of an instant-vector answer.
pub fn parse(body: &[u8]) -> Result<Vec<(Option<String>, f64)>, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if answer["status"] != "success" {
        return Err(format!(
            "query failed: {}",
            answer["error"].as_str().unwrap_or("no error given")
        ));
    }
    let Some(result) = answer["data"]["result"].as_array() else {
        return Err("no data.result in the answer".to_string());
    };
    Ok(result
        .iter()
        .filter_map(|sample| {
            let value = sample["value"][1].as_str()?.parse::<f64>().ok()?;
            let le = sample["metric"]["le"].as_str().map(str::to_string);
            Some((le, value))
        })
        .collect())
}

/// Percent-encodes a query string value.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::metrics_gate::{LabelMatch, Limits};

    fn gate() -> MetricsGate {
        MetricsGate {
            requests: "http_requests_total".into(),
            errors: LabelMatch::parse(r#"code=~"5..""#).unwrap(),
            histogram: Some("http_request_duration_seconds".into()),
            limits: Limits {
                max_error_increase_percent: 1.0,
                min_requests: 100,
                latency: None,
            },
            port: 8080,
            path: "/metrics".into(),
            prometheus: None,
        }
    }

    #[test]
    fn queries_select_the_pods_of_each_side_over_the_window() {
        let source = PrometheusSettings {
            address: "http://prometheus:9090".into(),
            pod_label: "pod".into(),
            namespace_label: "namespace".into(),
        };
        let q = queries(
            &gate(),
            &source,
            "shop",
            &["cart-canary-7d.x".into(), "cart-canary-8e".into()],
            45,
        );
        let selector = r#"namespace="shop",pod=~"cart-canary-7d\\.x|cart-canary-8e""#;
        assert_eq!(
            q.requests,
            format!("sum(increase(http_requests_total{{{selector}}}[45s]))")
        );
        assert_eq!(
            q.errors,
            format!("sum(increase(http_requests_total{{{selector},code=~\"5..\"}}[45s]))")
        );
        assert_eq!(
            q.buckets.unwrap(),
            format!(
                "sum by (le) (increase(http_request_duration_seconds_bucket{{{selector}}}[45s]))"
            )
        );
    }

    #[test]
    fn answers_parse() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"le":"0.1"},"value":[1700000000.1,"12.5"]},
            {"metric":{"le":"+Inf"},"value":[1700000000.1,"20"]}]}}"#;
        assert_eq!(
            parse(body).unwrap(),
            [(Some("0.1".into()), 12.5), (Some("+Inf".into()), 20.0)]
        );
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse(empty).unwrap().is_empty());
        let failed = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(parse(failed).unwrap_err().contains("parse error"));
        assert!(parse(b"<html>").is_err());
        assert_eq!(url_encode(r#"a{b="c"} d"#), "a%7Bb%3D%22c%22%7D%20d");
    }
}
