//! Errors of one reconciliation. Each has a metric label; invalid specs are not errors
//! here: they become a status, not a retry.

use crate::builders::BuildError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The API server refused a child; the status names it.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("building children: {0}")]
    Build(#[from] BuildError),
    #[error("serializing {what}: {source}")]
    Serialize {
        what: String,
        source: serde_json::Error,
    },
    #[error("the Microservice has no namespace")]
    MissingNamespace,
    /// A child kind the server does not serve in any version Flotilla writes.
    #[error("{0} is not served by this cluster")]
    NotServed(&'static str),
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
            Error::Build(_) => "build",
            Error::Serialize { .. } => "serialize",
            Error::MissingNamespace => "missing_namespace",
            Error::NotServed(_) => "not_served",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
