//! What the testapp counts of its own requests, in Prometheus' text format at `/metrics`:
//! requests by status code and a latency histogram, so release scenarios can judge a
//! version by its traffic. And the failures it injects on request (`FAIL_PERCENT`,
//! `CONFIG_MODE=fail`) to give them something to judge.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus' defaults).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
pub struct Metrics {
    by_code: Mutex<BTreeMap<u16, u64>>,
    /// Requests at or under each bucket's bound (cumulative, as exposed).
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
    /// Requests to `/` so far: the injected failures are every n-th of them.
    served: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, code: u16, took: Duration) {
        *self
            .by_code
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(code)
            .or_default() += 1;
        let seconds = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the next request to `/` fails, `percent` of them failing, spread evenly.
    pub fn next_fails(&self, percent: u64) -> bool {
        fails(self.served.fetch_add(1, Ordering::Relaxed), percent)
    }

    /// The text `/metrics` answers.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP testapp_http_requests_total Requests answered, by status code.\n# TYPE testapp_http_requests_total counter\n",
        );
        for (code, n) in self
            .by_code
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "testapp_http_requests_total{{code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP testapp_http_request_duration_seconds Time to answer.\n# TYPE testapp_http_request_duration_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "testapp_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "testapp_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "testapp_http_request_duration_seconds_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "testapp_http_request_duration_seconds_count {count}");
        out
    }
}

/// The `/metrics` answer.
pub fn exposition(text: String) -> crate::routes::Response {
    crate::routes::Response {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: text.into_bytes(),
    }
}

/// Whether request number `n` (from 0) is one of the `percent` in each hundred that fail,
/// spread evenly (20%: every fifth), so any window of requests sees about that share.
fn fails(n: u64, percent: u64) -> bool {
    let percent = percent.min(100);
    (n + 1) * percent / 100 > n * percent / 100
}

/// The share of requests to `/` to fail: 100 with `CONFIG_MODE=fail`, else
/// `FAIL_PERCENT` (0 when unset or not a number).
pub fn fail_percent(env: &dyn Fn(&str) -> Option<String>) -> u64 {
    if env("CONFIG_MODE").as_deref() == Some("fail") {
        return 100;
    }
    env("FAIL_PERCENT")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentage_fails_that_many_of_each_hundred() {
        let failed = (0..1000).filter(|n| fails(*n, 20)).count();
        assert_eq!(failed, 200);
        // Spread: every fifth of the first ten, not the first two.
        let first: Vec<u64> = (0..10).filter(|n| fails(*n, 20)).collect();
        assert_eq!(first, [4, 9]);
        assert_eq!((0..100).filter(|n| fails(*n, 1)).count(), 1);
        assert!((0..100).all(|n| !fails(n, 0)));
        assert!((0..100).all(|n| fails(n, 100)));
    }

    #[test]
    fn the_mode_or_the_percentage_decides() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(fail_percent(&env(&[("FAIL_PERCENT", "20")])), 20);
        assert_eq!(
            fail_percent(&env(&[("CONFIG_MODE", "fail"), ("FAIL_PERCENT", "5")])),
            100
        );
        assert_eq!(fail_percent(&env(&[("FAIL_PERCENT", "x")])), 0);
        assert_eq!(fail_percent(&env(&[])), 0);
    }

    #[test]
    fn the_text_format_has_codes_buckets_sum_and_count() {
        let metrics = Metrics::default();
        metrics.record(200, Duration::from_millis(3));
        metrics.record(200, Duration::from_millis(30));
        metrics.record(500, Duration::from_millis(300));
        let text = metrics.render();
        for line in [
            "testapp_http_requests_total{code=\"200\"} 2",
            "testapp_http_requests_total{code=\"500\"} 1",
            "testapp_http_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "testapp_http_request_duration_seconds_bucket{le=\"0.05\"} 2",
            "testapp_http_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "testapp_http_request_duration_seconds_sum 0.333",
            "testapp_http_request_duration_seconds_count 3",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
