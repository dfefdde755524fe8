//! The Kubernetes client of the tests.

use anyhow::Context;

/// A client for the cluster `$KUBECONFIG` points at (as `e2e/run.sh` sets it).
pub async fn client() -> anyhow::Result<kube::Client> {
    if std::env::var_os("KUBECONFIG").is_none() {
        anyhow::bail!("KUBECONFIG is not set: run the suite through `make e2e`");
    }
    kube::Client::try_default()
        .await
        .context("building a client from KUBECONFIG")
}
