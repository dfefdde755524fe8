//! Helm as a subprocess, for the chart's tests: `$HELM` (set by `e2e/run.sh` and
//! `make unit`), else the repository's `.tools/bin/helm` (`make tools`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::kubectl::kubectl;
use crate::wait::{Poll, wait_for};

/// The Lease the chart's operator elects its leader through, by default
/// (`leaderElection.leaseName`).
pub const LEASE: &str = "flotilla-leader";

/// The values of a namespaced release with two replicas, the CRDs left to the suite
/// (`ensure_crds`): two releases adopting the same cluster-wide CRD in parallel would
/// take it from each other.
pub const TWO_REPLICAS_IN_NAMESPACE: &[&str] = &[
    "--set",
    "rbac.scope=namespace",
    "--set",
    "replicas=2",
    "--set",
    "crds.install=false",
];

/// The chart under test.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/flotilla")
}

fn binary() -> PathBuf {
    std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/helm"))
}

/// Runs `helm ARGS` against `$KUBECONFIG`; returns stdout, or fails with stderr.
pub fn helm(args: &[&str]) -> anyhow::Result<String> {
    let bin = binary();
    let out = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {} (run `make tools`)", bin.display()))?;
    if !out.status.success() {
        bail!(
            "helm {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `helm template` of the chart with `args` (e.g. `--set`, `--kube-version`), parsed into
/// one JSON value per document.
pub fn render(args: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    // `--release-name NAME` among `args` names the release; "flotilla" otherwise.
    let (release, args) = match args {
        ["--release-name", name, rest @ ..] => (*name, rest),
        _ => ("flotilla", args),
    };
    let mut all = vec!["template", release, chart.as_ref()];
    all.extend_from_slice(args);
    parse_documents(&helm(&all)?)
}

/// The documents of a multi-document YAML stream, empty ones left out.
pub fn parse_documents(yaml: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple_with_options(yaml, flotilla::yaml::options())
            .context("parsing helm's output")?;
    Ok(docs.into_iter().filter(|doc| !doc.is_null()).collect())
}

/// An installed release of the chart. Dropping it uninstalls the release unless the test
/// did (cluster-scoped objects such as the aggregated ClusterRoles outlive the
/// namespace); when the test is panicking it first prints the operator pods' logs.
pub struct Release {
    name: String,
    namespace: String,
    installed: bool,
}

impl Release {
    /// `helm install NAME CHART -n NAMESPACE --wait ARGS`.
    pub fn install(name: &str, namespace: &str, args: &[&str]) -> anyhow::Result<Self> {
        let chart = chart_dir();
        let chart = chart.to_string_lossy();
        let mut all = vec![
            "install",
            name,
            chart.as_ref(),
            "-n",
            namespace,
            "--wait",
            "--timeout",
            "150s",
        ];
        all.extend_from_slice(args);
        helm(&all)?;
        Ok(Self {
            name: name.to_string(),
            namespace: namespace.to_string(),
            installed: true,
        })
    }

    /// `helm upgrade NAME CHART --reuse-values --wait ARGS`.
    pub fn upgrade(&self, args: &[&str]) -> anyhow::Result<String> {
        let chart = chart_dir();
        let chart = chart.to_string_lossy();
        let mut all = vec![
            "upgrade",
            &self.name,
            chart.as_ref(),
            "-n",
            &self.namespace,
            "--reuse-values",
            "--wait",
            "--timeout",
            "150s",
        ];
        all.extend_from_slice(args);
        helm(&all)
    }

    /// `helm uninstall --wait`.
    pub fn uninstall(&mut self) -> anyhow::Result<String> {
        let out = helm(&[
            "uninstall",
            &self.name,
            "-n",
            &self.namespace,
            "--wait",
            "--timeout",
            "120s",
        ])?;
        self.installed = false;
        Ok(out)
    }

    /// The release's manifest as installed, one JSON value per document.
    pub fn manifest(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        parse_documents(&helm(&[
            "get",
            "manifest",
            &self.name,
            "-n",
            &self.namespace,
        ])?)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The release's operator pods, those being deleted left out.
    pub async fn pods(&self, client: &kube::Client) -> anyhow::Result<Vec<Pod>> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        Ok(pods
            .list(&ListParams::default().labels(&self.selector()))
            .await?
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect())
    }

    /// Waits until `count` operator pods run and are ready; returns their names.
    pub async fn wait_ready_pods(
        &self,
        client: &kube::Client,
        count: usize,
    ) -> anyhow::Result<Vec<String>> {
        wait_for(
            format!("{count} ready operator pods in {}", self.namespace),
            Duration::from_secs(120),
            || async {
                let pods = self.pods(client).await?;
                let ready: Vec<String> = pods
                    .iter()
                    .filter(|p| pod_ready(p))
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                Ok(if pods.len() == count && ready.len() == count {
                    Poll::Ready(ready)
                } else {
                    Poll::Pending(format!("{} pods, ready: {ready:?}", pods.len()))
                })
            },
        )
        .await
    }

    /// Label selector of the release's operator pods.
    pub fn selector(&self) -> String {
        format!(
            "app.kubernetes.io/name=flotilla,app.kubernetes.io/instance={}",
            self.name
        )
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = kubectl(&[
                "logs",
                "-n",
                &self.namespace,
                "-l",
                &self.selector(),
                "--prefix",
                "--all-containers",
                "--tail=40",
            ])
            .unwrap_or_else(|e| format!("{e:#}"));
            eprintln!(
                "---- release {}/{}: operator logs ----\n{logs}",
                self.namespace, self.name
            );
        }
        if self.installed
            && let Err(e) = helm(&["uninstall", &self.name, "-n", &self.namespace])
        {
            eprintln!("uninstalling {}: {e:#}", self.name);
        }
    }
}

/// Whether a pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The holder of the chart's leader Lease in `namespace` ("" when none).
pub fn lease_holder(namespace: &str) -> anyhow::Result<String> {
    Ok(kubectl(&[
        "get",
        "lease",
        "-n",
        namespace,
        LEASE,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?
    .trim()
    .to_string())
}

/// The rules of every Role and ClusterRole among `docs`, as `(object name, rule)`.
pub fn rbac_rules(docs: &[serde_json::Value]) -> Vec<(String, serde_json::Value)> {
    docs.iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("Role" | "ClusterRole")))
        .flat_map(|d| {
            let name = d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            d["rules"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |r| (name.clone(), r))
        })
        .collect()
}

/// Rules holding a `*` in any field: none may.
pub fn wildcard_rules(docs: &[serde_json::Value]) -> Vec<String> {
    rbac_rules(docs)
        .into_iter()
        .filter(|(_, rule)| {
            [
                "apiGroups",
                "resources",
                "verbs",
                "resourceNames",
                "nonResourceURLs",
            ]
            .iter()
            .any(|field| {
                rule[*field].as_array().is_some_and(|v| {
                    v.iter()
                        .any(|s| s.as_str().is_some_and(|s| s.contains('*')))
                })
            })
        })
        .map(|(name, rule)| format!("{name}: {rule}"))
        .collect()
}
