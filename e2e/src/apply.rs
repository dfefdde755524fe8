//! Server-side apply of YAML, the way users and the operator write objects.

use crate::kubectl::kubectl_with_stdin;

/// Field manager of everything the tests apply.
pub const FIELD_MANAGER: &str = "flotilla-e2e";

/// Server-side applies `yaml` (one or more documents) in namespace `ns`.
///
/// Kubernetes 1.20 rejects applied ports without `protocol`: always write it.
pub fn apply_yaml(ns: &str, yaml: &str) -> anyhow::Result<String> {
    kubectl_with_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            FIELD_MANAGER,
            "-n",
            ns,
            "-f",
            "-",
        ],
        yaml,
    )
}
