//! The fleet: N Microservices per batch, each depending on the next two of its batch,
//! applied by kubectl processes side by side, and what `flotilla render` makes of them.

use std::collections::HashMap;

use anyhow::{Context, bail};
use flotilla_e2e::kubectl_with_stdin;

use crate::{EDIT_VAR, KUBECTL_PROCESSES};

/// Batch `batch` of the fleet: N Microservices named `ms-<index>`, each autoscaled 2..4
/// with one port, an env var, resources and two `dependsOn` on the next two of its batch
/// (within the batch, so a later batch changes nothing of an earlier one).
pub fn batch_names(n: usize, batch: usize) -> Vec<String> {
    (batch * n..(batch + 1) * n)
        .map(|i| format!("ms-{i}"))
        .collect()
}

/// The indexes of the two Microservices that `first + i` depends on.
fn dependencies(n: usize, first: usize, i: usize) -> [usize; 2] {
    [first + (i + 1) % n, first + (i + 2) % n]
}

/// Each Microservice of batch `batch` with its dependencies and dependents.
pub fn fleet_neighbours(n: usize, batch: usize) -> HashMap<String, Vec<String>> {
    let first = batch * n;
    let mut neighbours = HashMap::<String, Vec<String>>::new();
    for i in 0..n {
        for dep in dependencies(n, first, i) {
            let (caller, callee) = (format!("ms-{}", first + i), format!("ms-{dep}"));
            neighbours
                .entry(caller.clone())
                .or_default()
                .push(callee.clone());
            neighbours.entry(callee).or_default().push(caller);
        }
    }
    neighbours
}

/// The Microservices of one batch. Their release deadline is an hour: the node is
/// cordoned, so with the default 10 minutes every release would fail during the run, a
/// real change the operator reports (Degraded) while the idle window counts its writes.
pub fn fleet_yaml(n: usize, batch: usize, namespace: &str) -> String {
    let first = batch * n;
    (0..n)
        .map(|i| {
            let [a, b] = dependencies(n, first, i);
            format!(
                "apiVersion: flotilla.dev/v1alpha1
kind: Microservice
metadata:
  name: ms-{index}
  namespace: {namespace}
spec:
  image: flotilla.local/testapp:v1
  imagePullPolicy: IfNotPresent
  ports:
  - {{name: http, port: 80, targetPort: 8080, protocol: TCP, appProtocol: http}}
  env:
  - {{name: {EDIT_VAR}, value: \"0\"}}
  resources:
    requests: {{cpu: 10m, memory: 16Mi}}
    limits: {{memory: 64Mi}}
  autoscaling: {{minReplicas: 2, maxReplicas: 4, targetCPUUtilizationPercentage: 70}}
  rollout: {{progressDeadlineSeconds: 3600}}
  dependsOn:
  - name: ms-{a}
  - name: ms-{b}
",
                index = first + i,
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

pub fn split_documents(yaml: &str) -> Vec<String> {
    yaml.split("\n---")
        .map(|d| d.trim_start_matches("---").trim().to_string())
        .filter(|d| !d.is_empty() && d.lines().any(|l| l.starts_with("kind:")))
        .collect()
}

/// `documents` applied by [`KUBECTL_PROCESSES`] `kubectl apply --server-side` at once,
/// each taking a contiguous share. The Microservices go the same way as the children in
/// step 1: the ratio compares the same tool at the same parallelism, and the floor
/// of about 1.3x counts the Microservices as writes at the children's pace.
pub async fn apply_side_by_side(
    namespace: &str,
    manager: &str,
    documents: &[String],
) -> anyhow::Result<()> {
    let chunk = documents.len().div_ceil(KUBECTL_PROCESSES).max(1);
    let applies = documents
        .chunks(chunk)
        .map(|docs| kubectl_apply(namespace, manager, docs.join("\n---\n")));
    futures::future::try_join_all(applies).await?;
    Ok(())
}

/// `kubectl apply --server-side` of `yaml` into `namespace` on a blocking thread.
async fn kubectl_apply(namespace: &str, manager: &str, yaml: String) -> anyhow::Result<()> {
    let namespace = namespace.to_string();
    let manager = manager.to_string();
    tokio::task::spawn_blocking(move || {
        kubectl_with_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager",
                &manager,
                "-n",
                &namespace,
                "-f",
                "-",
            ],
            &yaml,
        )
        .map(drop)
    })
    .await?
}

/// `flotilla render` of `yaml` for this Kubernetes version: the children, one YAML
/// document each.
pub fn render(yaml: &str, kube_version: &str) -> anyhow::Result<Vec<String>> {
    let file = std::env::temp_dir().join(format!("bench-cluster-{}.yaml", std::process::id()));
    std::fs::write(&file, yaml)?;
    let output = std::process::Command::new(flotilla_e2e::operator::binary())
        .args(["render", "-f"])
        .arg(&file)
        .args(["--kube-version", kube_version])
        .output()
        .context("running flotilla render (set FLOTILLA_BIN?)")?;
    let _ = std::fs::remove_file(&file);
    if !output.status.success() {
        bail!(
            "flotilla render failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(split_documents(&String::from_utf8(output.stdout)?))
}

#[cfg(test)]
mod tests {
    use flotilla::api::Microservice;
    use kube::ResourceExt;

    use super::*;

    #[test]
    fn the_fleet_depends_within_its_batch() {
        let docs = split_documents(&fleet_yaml(5, 1, "x"));
        assert_eq!(docs.len(), 5);
        let last: Microservice = serde_saphyr::from_str(&docs[4]).unwrap();
        assert_eq!(last.name_any(), "ms-9");
        let deps: Vec<&str> = last
            .spec
            .depends_on
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(deps, ["ms-5", "ms-6"]);
    }
}
