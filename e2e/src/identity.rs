//! The operator's identity as the chart installs it. The suite runs the operator binary
//! on the host, but never with the admin kubeconfig: its ServiceAccount and RBAC are
//! rendered from `charts/flotilla` with the values that match its flags (`helm template
//! --show-only` of the ServiceAccount and RBAC templates), applied in the release's
//! namespace, and the operator authenticates with a token of that ServiceAccount. A verb
//! the chart lacks then fails the suite, as it fails a user.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::helm;
use crate::kubectl::{kubectl, kubectl_with_stdin};

/// The release name identities are rendered with unless a scenario needs two (leader
/// fencing): ServiceAccount `flotilla`, Role `flotilla`, ClusterRoles
/// `flotilla-<namespace>…`.
pub const RELEASE: &str = "flotilla";

/// A kubeconfig authenticating as the chart's ServiceAccount.
#[derive(Clone, Debug)]
pub struct ChartIdentity {
    /// `system:serviceaccount:<namespace>:flotilla`.
    pub user: String,
    /// The chart values the RBAC was rendered with.
    pub values: Vec<String>,
    pub kubeconfig: PathBuf,
}

impl ChartIdentity {
    /// One line for logs: who the operator is and from which values.
    pub fn describe(&self) -> String {
        format!("{} (chart {})", self.user, self.values.join(" "))
    }
}

/// What the operator's flags say about the chart values that install it.
#[derive(Debug, PartialEq, Eq)]
struct Install {
    release_namespace: String,
    values: Vec<String>,
}

/// The chart values matching `flotilla run` arguments, as `charts/flotilla/templates/
/// deployment.yaml` turns values into arguments: `--namespace` is `rbac.scope=namespace`
/// (else cluster), `--class-status`, `--watch-secrets`, `--http-gates`, `--leader-elect`
/// with its Lease.
/// `release_namespace` is where a cluster-wide operator's ServiceAccount lives.
fn install_for(args: &[String], release_namespace: Option<&str>) -> anyhow::Result<Install> {
    let flag = |name: &str| -> Option<String> {
        let prefix = format!("{name}=");
        args.iter().enumerate().find_map(|(i, arg)| {
            if arg == name {
                args.get(i + 1).cloned()
            } else {
                arg.strip_prefix(&prefix).map(str::to_string)
            }
        })
    };
    let mut values = vec![
        "crds.install=false".to_string(),
        "rbac.aggregateToDefaultRoles=false".to_string(),
    ];
    let namespace = flag("--namespace");
    let release_namespace = match (&namespace, release_namespace) {
        (Some(watched), _) => {
            values.push("rbac.scope=namespace".into());
            watched.clone()
        }
        (None, Some(release)) => {
            values.push("rbac.scope=cluster".into());
            release.to_string()
        }
        (None, None) => bail!("a cluster-wide operator needs a release namespace"),
    };
    if let Some(class_status) = flag("--class-status") {
        values.push(format!("classStatus={class_status}"));
    }
    if let Some(watch_secrets) = flag("--watch-secrets") {
        values.push(format!("watchSecrets={watch_secrets}"));
    }
    if let Some(required) = flag("--require-class") {
        values.push(format!("requireClass={required}"));
    }
    if let Some(gates) = flag("--http-gates") {
        values.push(format!("httpGates={gates}"));
    }
    let shards = flag("--shards").filter(|n| n != "1");
    if let Some(shards) = &shards {
        values.push(format!("shards={shards}"));
        if let Some(lease) = flag("--lease-name") {
            values.push(format!("leaderElection.leaseName={lease}"));
        }
    }
    if shards.is_none() && args.iter().any(|a| a == "--leader-elect") {
        values.push("leaderElection.enabled=true".into());
        if let Some(lease) = flag("--lease-name") {
            values.push(format!("leaderElection.leaseName={lease}"));
        }
        if let Some(lease_namespace) = flag("--lease-namespace")
            && lease_namespace != release_namespace
        {
            bail!(
                "the chart keeps the Lease in the release namespace {release_namespace}, not {lease_namespace}"
            );
        }
    }
    Ok(Install {
        release_namespace,
        values,
    })
}

/// Renders and applies the chart's ServiceAccount and RBAC (release `release`) for an
/// operator started with `args` (and the chart values no flag carries, `chart_values`,
/// e.g. `backingServiceKinds[0].resource=databases`), and writes a kubeconfig for it (`name`.kubeconfig in
/// `dir`). Cluster-scoped objects are owned by the release namespace, so they go with it.
pub fn chart_identity(
    name: &str,
    release: &str,
    args: &[String],
    chart_values: &[String],
    release_namespace: Option<&str>,
    dir: &std::path::Path,
) -> anyhow::Result<ChartIdentity> {
    let mut install = install_for(args, release_namespace)?;
    install.values.extend(chart_values.iter().cloned());
    let namespace = install.release_namespace.as_str();
    let mut render_args = vec![
        "--release-name",
        release,
        "-n",
        namespace,
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
    ];
    for value in &install.values {
        render_args.extend(["--set", value.as_str()]);
    }
    let mut docs = helm::render(&render_args).context("rendering the chart's RBAC")?;
    let uid = kubectl(&[
        "get",
        "namespace",
        namespace,
        "-o",
        "jsonpath={.metadata.uid}",
    ])?;
    for doc in &mut docs {
        if doc["metadata"]["namespace"].is_null() {
            doc["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": uid,
            }]);
        }
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
    kubectl_with_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "flotilla-e2e",
            "-f",
            "-",
        ],
        &list.to_string(),
    )
    .context("applying the chart's RBAC")?;
    let account = docs
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .context("the chart rendered no ServiceAccount")?
        .to_string();
    // TokenRequest, as the kubelet gets the operator pod's token; long enough for the
    // slowest scenario.
    let token = kubectl(&[
        "create",
        "token",
        &account,
        "-n",
        namespace,
        "--duration",
        "6h",
    ])
    .context("requesting a token for the chart's ServiceAccount")?;
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&kubeconfig, kubeconfig_for(token.trim(), namespace)?)?;
    let identity = ChartIdentity {
        user: format!("system:serviceaccount:{namespace}:{account}"),
        values: install.values,
        kubeconfig,
    };
    record(name, &identity.describe(), dir);
    Ok(identity)
}

/// Appends `who` to `identities.log` beside the operator logs: `e2e/run.sh` prints it,
/// one line per operator started.
pub fn record(name: &str, who: &str, dir: &std::path::Path) {
    if let Ok(mut file) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("identities.log"))
    {
        let _ = writeln!(file, "{name}: {who}");
    }
}

/// A kubeconfig for the cluster `$KUBECONFIG` points at, authenticating with `token`.
fn kubeconfig_for(token: &str, namespace: &str) -> anyhow::Result<String> {
    let admin: Value = serde_json::from_str(&kubectl(&[
        "config", "view", "--raw", "--minify", "-o", "json",
    ])?)?;
    let cluster = admin["clusters"][0]["cluster"].clone();
    if cluster.is_null() {
        bail!("no cluster in $KUBECONFIG");
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": "flotilla", "user": {"token": token}}],
        "contexts": [{"name": "flotilla", "context": {"cluster": "e2e", "user": "flotilla", "namespace": namespace}}],
        "current-context": "flotilla",
    });
    Ok(flotilla::yaml::to_string(&config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_become_the_values_that_install_them() {
        let install = install_for(
            &args(&[
                "run",
                "--namespace",
                "ns1",
                "--class-status=true",
                "--leader-elect",
                "--lease-namespace",
                "ns1",
                "--lease-name",
                "lease",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(install.release_namespace, "ns1");
        assert_eq!(
            install.values,
            [
                "crds.install=false",
                "rbac.aggregateToDefaultRoles=false",
                "rbac.scope=namespace",
                "classStatus=true",
                "leaderElection.enabled=true",
                "leaderElection.leaseName=lease",
            ]
        );
        let cluster = install_for(&args(&["run", "--selector", "a=b"]), Some("ns2")).unwrap();
        assert_eq!(cluster.release_namespace, "ns2");
        assert!(cluster.values.contains(&"rbac.scope=cluster".to_string()));
        assert!(install_for(&args(&["run"]), None).is_err());
        assert!(
            install_for(
                &args(&[
                    "run",
                    "--namespace=a",
                    "--leader-elect",
                    "--lease-namespace=b"
                ]),
                None
            )
            .is_err()
        );
    }
}
