//! Server-side apply of YAML, the way users and the operator write objects.

use crate::kubectl::kubectl_with_stdin;

/// Field manager of everything the tests apply.
pub const FIELD_MANAGER: &str = "flotilla-e2e";

/// Server-side applies `yaml` (one or more documents) in namespace `ns`.
///
/// Kubernetes 1.20 rejects applied ports without `protocol`: always write it.
pub fn apply_yaml(ns: &str, yaml: &str) -> anyhow::Result<String> {
    apply(Some(ns), yaml)
}

/// Server-side applies cluster-scoped YAML (no namespace): fields left out of a later
/// apply are removed, as with [`apply_yaml`].
pub fn apply_cluster_yaml(yaml: &str) -> anyhow::Result<String> {
    apply(None, yaml)
}

fn apply(namespace: Option<&str>, yaml: &str) -> anyhow::Result<String> {
    let mut args = vec![
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        FIELD_MANAGER,
        "-f",
        "-",
    ];
    if let Some(namespace) = namespace {
        args.extend(["-n", namespace]);
    }
    kubectl_with_stdin(&args, yaml)
}
