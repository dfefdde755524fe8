//! A client pod inside the cluster that calls a Service every 50 ms for a whole scenario
//! (`testapp probe`) and counts failed requests and which version answered: releases and
//! rotations are judged by what a caller saw.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{LogParams, PostParams};

use crate::wait::{Poll, wait_for};

/// The label of the probe pods: a Microservice admits them with `network.allowFrom`.
pub const PROBE_LABEL: &str = "flotilla-e2e-probe";

/// What the probe pod has counted so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub ok: u64,
    pub failed: u64,
    pub versions: BTreeMap<String, u64>,
    /// Failed requests whose answer named a version (injected failures), by version.
    pub failed_versions: BTreeMap<String, u64>,
}

impl Counts {
    pub fn parse(line: &str) -> Option<(Counts, BTreeMap<String, u64>)> {
        let rest = line.strip_prefix("probe ok=")?;
        let field = |name: &str| -> Option<&str> {
            let start = rest.find(&format!("{name}="))? + name.len() + 1;
            Some(rest[start..].split_whitespace().next().unwrap_or(""))
        };
        let map = |text: &str| -> BTreeMap<String, u64> {
            text.split(',')
                .filter_map(|pair| pair.split_once(':'))
                .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
                .collect()
        };
        let counts = Counts {
            ok: rest.split_whitespace().next()?.parse().ok()?,
            failed: field("failed")?.parse().ok()?,
            versions: map(field("versions")?),
            failed_versions: map(field("failed_versions").unwrap_or("")),
        };
        Some((counts, map(field("window").unwrap_or(""))))
    }

    /// Answers by version since `earlier`.
    pub fn since(&self, earlier: &Counts) -> BTreeMap<String, u64> {
        self.versions
            .iter()
            .map(|(k, v)| (k.clone(), v - earlier.versions.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }
}

/// The share of `answers` that `version` gave.
pub fn share(answers: &BTreeMap<String, u64>, version: &str) -> f64 {
    let total: u64 = answers.values().sum();
    if total == 0 {
        return 0.0;
    }
    answers.get(version).copied().unwrap_or(0) as f64 / total as f64
}

/// The client pod: `testapp probe http://<ClusterIP>/`.
pub struct Probe {
    pods: Api<Pod>,
    name: String,
}

impl Probe {
    pub async fn start(client: &kube::Client, ns: &str, service: &str) -> anyhow::Result<Probe> {
        let ip = Api::<Service>::namespaced(client.clone(), ns)
            .get(service)
            .await?
            .spec
            .and_then(|s| s.cluster_ip)
            .unwrap_or_default();
        let name = format!("probe-{service}");
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"app": PROBE_LABEL}},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "probe",
                    "image": "flotilla.local/testapp:v1",
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["probe", format!("http://{ip}:80/")],
                    "resources": {"requests": {"cpu": "20m", "memory": "16Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
                }]
            }
        }))?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        pods.create(&PostParams::default(), &pod).await?;
        let probe = Probe { pods, name };
        probe
            .wait_until("the probe answers", |c| c.ok >= 10)
            .await?;
        Ok(probe)
    }

    /// The latest counts and the last second's answers.
    pub async fn read(&self) -> anyhow::Result<(Counts, BTreeMap<String, u64>)> {
        let log = self
            .pods
            .logs(
                &self.name,
                &LogParams {
                    tail_lines: Some(40),
                    ..LogParams::default()
                },
            )
            .await?;
        let failures: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("probe failure"))
            .collect();
        if !failures.is_empty() {
            eprintln!("probe saw: {}", failures.join(" | "));
        }
        log.lines()
            .rev()
            .find_map(Counts::parse)
            .ok_or_else(|| anyhow::anyhow!("no probe line yet: {log}"))
    }

    pub async fn counts(&self) -> anyhow::Result<Counts> {
        Ok(self.read().await?.0)
    }

    pub async fn wait_until(
        &self,
        what: &str,
        check: impl Fn(&Counts) -> bool,
    ) -> anyhow::Result<Counts> {
        wait_for(
            format!("probe {}: {what}", self.name),
            Duration::from_secs(120),
            || async {
                let counts = self.counts().await?;
                Ok(if check(&counts) {
                    Poll::Ready(counts)
                } else {
                    Poll::Pending(format!("{counts:?}"))
                })
            },
        )
        .await
    }

    /// Waits until a whole second of answers came from `version` alone.
    pub async fn wait_only(&self, version: &str) -> anyhow::Result<Counts> {
        wait_for(
            format!("probe {}: a second answered by {version} only", self.name),
            Duration::from_secs(120),
            || async {
                let (counts, window) = self.read().await?;
                Ok(if window.len() == 1 && window.contains_key(version) {
                    Poll::Ready(counts)
                } else {
                    Poll::Pending(format!("last second {window:?}, {counts:?}"))
                })
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lines_parse() {
        let (counts, window) =
            Counts::parse("probe ok=30 failed=1 versions=v1:20,v2:10 window=v2:5 window_failed=0 failed_versions=v2:1")
                .unwrap();
        assert_eq!((counts.ok, counts.failed), (30, 1));
        assert_eq!(counts.failed_versions["v2"], 1);
        assert_eq!(counts.versions["v2"], 10);
        assert_eq!(window["v2"], 5);
        let earlier = Counts {
            versions: BTreeMap::from([("v1".to_string(), 15)]),
            ..Counts::default()
        };
        assert_eq!(
            counts.since(&earlier),
            BTreeMap::from([("v1".to_string(), 5), ("v2".to_string(), 10)])
        );
        assert!(Counts::parse("probe failure: refused").is_none());
    }
}
