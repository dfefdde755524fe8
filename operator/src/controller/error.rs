//! Errors of one reconciliation. Each has a metric label; invalid specs are not errors
//! here: they become a status, not a retry.

use crate::builders::BuildError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A child could not be applied; the status names it.
    #[error("applying {kind} {name}: {message}")]
    Apply {
        kind: &'static str,
        name: String,
        message: String,
    },
    /// A read the reconcile needs failed; the status names it.
    #[error("{0}")]
    Read(super::read_failure::ReadFailure),
    #[error("building children: {0}")]
    Build(#[from] BuildError),
    #[error("serializing {what}: {source}")]
    Serialize {
        what: String,
        source: serde_json::Error,
    },
    #[error("the Microservice has no namespace")]
    MissingNamespace,
}

impl Error {
    /// A short, bounded label for the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(status)) if status.code == 422 => "rejected",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "transport",
            Error::Apply { .. } => "apply_failed",
            Error::Read(failure) => failure.metric_label(),
            Error::Build(_) => "build",
            Error::Serialize { .. } => "serialize",
            Error::MissingNamespace => "missing_namespace",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
