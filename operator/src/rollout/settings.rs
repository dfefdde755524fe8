//! `spec.rollout` (class defaults merged) with Flotilla's defaults filled in.

use std::time::Duration;

use crate::api::{self, MicroserviceSpec, Pause, RolloutStrategy, parse_pause};

use super::metrics_gate::{LabelMatch, LatencyLimit, Limits, Selector};

/// A release or canary step without a deadline of its own gets this long.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// One canary step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub weight: i32,
    pub pause: Pause,
}

/// The HTTP gate in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGate {
    pub path: String,
    /// The container port to call.
    pub port: i32,
    pub expected_status: u16,
    pub success_percent: i32,
}

/// The traffic gate in effect.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsGate {
    pub requests: String,
    pub errors: LabelMatch,
    pub histogram: Option<String>,
    pub limits: Limits,
    /// The container port serving the metrics.
    pub port: i32,
    pub path: String,
    /// Read from this Prometheus rather than from the pods.
    pub prometheus: Option<PrometheusSettings>,
}

/// The Prometheus the traffic gate queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusSettings {
    pub address: String,
    pub pod_label: String,
    pub namespace_label: String,
}

impl MetricsGate {
    /// What a scrape reads.
    pub fn selector(&self) -> Selector<'_> {
        Selector {
            requests: &self.requests,
            errors: &self.errors,
            histogram: self.histogram.as_deref(),
        }
    }
}

/// Requests the canary serves in a step before the traffic gate judges it, by default.
pub const DEFAULT_MIN_REQUESTS: i32 = 100;
/// Percentage points the canary's error ratio may exceed the stable pods', by default.
pub const DEFAULT_MAX_ERROR_INCREASE_PERCENT: f64 = 1.0;

/// Checks run at most this often on one Microservice.
pub const HTTP_CHECK_INTERVAL: Duration = Duration::from_secs(3);

/// The rollout settings in effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub strategy: RolloutStrategy,
    pub steps: Vec<Step>,
    pub max_restarts: i32,
    /// None without `gates.http` or without a port to call.
    pub http: Option<HttpGate>,
    /// None without `gates.metrics`, or without a port to read.
    pub metrics: Option<MetricsGate>,
    /// `gates.dependents`: the callers' pods judge the release too.
    pub dependents: bool,
    pub progress_deadline: Duration,
    pub auto_rollback: bool,
    /// How many releases `status.rollout.history` keeps.
    pub history_limit: usize,
}

/// Releases kept in `status.rollout.history` when the spec says nothing.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 5;

impl Settings {
    /// The settings of an (effective) spec. A pause that does not parse counts as none:
    /// validation refuses such a spec before it gets here.
    pub fn of(spec: &MicroserviceSpec) -> Settings {
        let rollout = spec.rollout.clone().unwrap_or_default();
        let strategy = rollout.strategy.unwrap_or(if rollout.steps.is_empty() {
            RolloutStrategy::Rolling
        } else {
            RolloutStrategy::Canary
        });
        Settings {
            strategy,
            steps: rollout
                .steps
                .iter()
                .map(|step| Step {
                    weight: step.weight,
                    pause: step
                        .pause
                        .as_deref()
                        .map_or(Ok(Pause::None), parse_pause)
                        .unwrap_or(Pause::None),
                })
                .collect(),
            max_restarts: rollout
                .gates
                .as_ref()
                .and_then(|g| g.max_restarts)
                .unwrap_or(0),
            progress_deadline: Duration::from_secs(
                rollout
                    .progress_deadline_seconds
                    .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
                    .max(1) as u64,
            ),
            auto_rollback: rollout.auto_rollback.unwrap_or(true),
            history_limit: rollout
                .revision_history_limit
                .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
                .clamp(1, 20) as usize,
            http: rollout
                .gates
                .as_ref()
                .and_then(|g| g.http.as_ref())
                .and_then(|gate| {
                    let port = match &gate.port {
                        Some(name) => spec.ports.iter().find(|p| &p.name == name),
                        None => spec.ports.first(),
                    }?;
                    Some(HttpGate {
                        path: gate.path.clone(),
                        port: port.target_port.unwrap_or(port.port),
                        expected_status: gate.expected_status.unwrap_or(200).clamp(100, 599) as u16,
                        success_percent: gate.success_percent.unwrap_or(100).clamp(1, 100),
                    })
                }),
            metrics: rollout
                .gates
                .as_ref()
                .and_then(|g| g.metrics.as_ref())
                .and_then(|gate| metrics_gate(spec, gate)),
            dependents: rollout
                .gates
                .as_ref()
                .and_then(|g| g.dependents)
                .unwrap_or(false),
        }
    }
}

/// The traffic gate of `spec`: the port from the gate, else `spec.metrics`, else the
/// primary port. None when its matcher does not parse (validation refuses that spec).
fn metrics_gate(spec: &MicroserviceSpec, gate: &api::MetricsGate) -> Option<MetricsGate> {
    let scraped = spec.metrics.as_ref();
    let port_name = gate
        .port
        .as_ref()
        .or_else(|| scraped.and_then(|m| m.port.as_ref()));
    let port = match port_name {
        Some(name) => spec.ports.iter().find(|p| &p.name == name),
        None => spec.ports.first(),
    }?;
    let path = gate
        .path
        .clone()
        .or_else(|| scraped.and_then(|m| m.path.clone()))
        .unwrap_or_else(|| api::Metrics::DEFAULT_PATH.to_string());
    Some(MetricsGate {
        requests: gate.requests.clone(),
        errors: LabelMatch::parse(&gate.errors).ok()?,
        histogram: gate.latency.as_ref().map(|l| l.histogram.clone()),
        limits: Limits {
            max_error_increase_percent: gate
                .max_error_increase_percent
                .unwrap_or(DEFAULT_MAX_ERROR_INCREASE_PERCENT)
                .clamp(0.0, 100.0),
            min_requests: gate.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS).max(1) as u64,
            latency: gate.latency.as_ref().map(|l| LatencyLimit {
                quantile: l.quantile.unwrap_or(0.99).clamp(0.5, 0.999),
                max_increase_ms: f64::from(l.max_increase_millis.max(0)),
            }),
        },
        port: port.target_port.unwrap_or(port.port),
        path,
        prometheus: gate
            .source
            .as_ref()
            .and_then(|s| s.prometheus.as_ref())
            .map(|p| PrometheusSettings {
                address: p.address.trim_end_matches('/').to_string(),
                pod_label: p.pod_label.clone().unwrap_or_else(|| "pod".to_string()),
                namespace_label: p
                    .namespace_label
                    .clone()
                    .unwrap_or_else(|| "namespace".to_string()),
            }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_steps_imply_canary() {
        let spec: MicroserviceSpec = serde_saphyr::from_str("{image: a}").unwrap();
        let settings = Settings::of(&spec);
        assert_eq!(settings.strategy, RolloutStrategy::Rolling);
        assert_eq!(settings.progress_deadline, Duration::from_secs(600));
        assert!(settings.auto_rollback);
        assert_eq!(settings.max_restarts, 0);
        let spec: MicroserviceSpec = serde_saphyr::from_str(
            "{image: a, rollout: {steps: [{weight: 25, pause: 10s}, {weight: 50, pause: manual}], progressDeadlineSeconds: 30, autoRollback: false, gates: {maxRestarts: 2}}}",
        )
        .unwrap();
        let settings = Settings::of(&spec);
        assert_eq!(settings.strategy, RolloutStrategy::Canary);
        assert_eq!(
            settings.steps,
            [
                Step {
                    weight: 25,
                    pause: Pause::For(Duration::from_secs(10))
                },
                Step {
                    weight: 50,
                    pause: Pause::Manual
                }
            ]
        );
        assert_eq!(settings.progress_deadline, Duration::from_secs(30));
        assert!(!settings.auto_rollback);
        assert_eq!(settings.max_restarts, 2);
        assert_eq!(settings.http, None);
    }

    #[test]
    fn the_http_gate_calls_the_container_port() {
        let spec: MicroserviceSpec = serde_saphyr::from_str(
            "{image: a, ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 9090}], rollout: {gates: {http: {path: /readyz}}}}",
        )
        .unwrap();
        assert_eq!(
            Settings::of(&spec).http,
            Some(HttpGate {
                path: "/readyz".into(),
                port: 8080,
                expected_status: 200,
                success_percent: 100
            })
        );
        let spec: MicroserviceSpec = serde_saphyr::from_str(
            "{image: a, ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 9090}], rollout: {gates: {http: {path: /deep, port: admin, expectedStatus: 204, successPercent: 90}}}}",
        )
        .unwrap();
        let gate = Settings::of(&spec).http.unwrap();
        assert_eq!(
            (gate.port, gate.expected_status, gate.success_percent),
            (9090, 204, 90)
        );
    }
}
