//! Reads a reconcile needs that the API server refused or did not answer: a direct read
//! of a ConfigMap or Secret, or a watch that feeds a cache. They are reported like a
//! failed apply (`Ready=False`, a Warning event, a metric) so that a missing RBAC verb
//! shows on the Microservice instead of leaving its status empty.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use kube::runtime::watcher;

/// `Ready=False` reason: the API server refused a read (HTTP 403), so the operator's
/// identity lacks a verb.
pub const REASON_FORBIDDEN: &str = "Forbidden";
/// `Ready=False` reason: any other failed read (timeout, server error).
pub const REASON_READ_FAILED: &str = "ReadFailed";

/// One failed read: the verb and resource the operator sent, where, and what the API
/// server said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadFailure {
    pub verb: &'static str,
    /// The plural resource, e.g. `configmaps`.
    pub resource: String,
    /// None for a cluster-wide read.
    pub namespace: Option<String>,
    /// What the read was for, e.g. `ConfigMap storefront-config`, or the cache it feeds.
    pub purpose: String,
    pub forbidden: bool,
    /// The API server's or the transport's own words.
    pub detail: String,
}

impl ReadFailure {
    pub fn new(
        verb: &'static str,
        resource: &str,
        namespace: Option<&str>,
        purpose: impl Into<String>,
        error: &kube::Error,
    ) -> Self {
        let (forbidden, detail) = match error {
            kube::Error::Api(status) => (status.is_forbidden(), status.message.clone()),
            other => (false, other.to_string()),
        };
        ReadFailure {
            verb,
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
            purpose: purpose.into(),
            forbidden,
            detail,
        }
    }

    /// The failure of a watch, with the verb of the request that failed (the first list,
    /// or the watch itself).
    pub fn of_watch(resource: &str, namespace: Option<&str>, error: &watcher::Error) -> Self {
        let purpose = format!("the {resource} cache");
        match error {
            watcher::Error::InitialListFailed(e) => {
                Self::new("list", resource, namespace, purpose, e)
            }
            watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
                Self::new("watch", resource, namespace, purpose, e)
            }
            watcher::Error::WatchError(status) => ReadFailure {
                verb: "watch",
                resource: resource.to_string(),
                namespace: namespace.map(str::to_string),
                purpose,
                forbidden: status.is_forbidden(),
                detail: status.message.clone(),
            },
            watcher::Error::NoResourceVersion => ReadFailure {
                verb: "watch",
                resource: resource.to_string(),
                namespace: namespace.map(str::to_string),
                purpose,
                forbidden: false,
                detail: error.to_string(),
            },
        }
    }

    pub fn reason(&self) -> &'static str {
        if self.forbidden {
            REASON_FORBIDDEN
        } else {
            REASON_READ_FAILED
        }
    }

    /// A short, bounded label for the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        if self.forbidden {
            "read_forbidden"
        } else {
            "read_failed"
        }
    }
}

impl fmt::Display for ReadFailure {
    /// E.g. "the operator may not list configmaps in namespace shop (reading ConfigMap
    /// storefront-config): grant it to the operator's ServiceAccount (the chart's Role);
    /// the API server said: …".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = match &self.namespace {
            Some(namespace) => format!("in namespace {namespace}"),
            None => "cluster-wide".to_string(),
        };
        if self.forbidden {
            write!(
                f,
                "the operator may not {} {} {place} (reading {}): grant it to the operator's ServiceAccount (the chart's rbac.yaml); the API server said: {}",
                self.verb, self.resource, self.purpose, self.detail
            )
        } else {
            write!(
                f,
                "{} {} {place} failed (reading {}): {}",
                self.verb, self.resource, self.purpose, self.detail
            )
        }
    }
}

/// The watches failing now, each with its latest failure; a watch leaves the set at its
/// next success.
#[derive(Default)]
pub struct WatchFailures {
    failing: Mutex<BTreeMap<&'static str, ReadFailure>>,
}

impl WatchFailures {
    pub fn failed(&self, watch: &'static str, failure: ReadFailure) {
        self.failing
            .lock()
            .expect("watch failures lock")
            .insert(watch, failure);
    }

    pub fn recovered(&self, watch: &'static str) {
        let mut failing = self.failing.lock().expect("watch failures lock");
        if !failing.is_empty() {
            failing.remove(watch);
        }
    }

    /// The failure to report on every Microservice: a forbidden watch first (it will not
    /// pass by itself), else any failing watch when `any` (the caches wait for it).
    pub fn to_report(&self, any: bool) -> Option<ReadFailure> {
        let failing = self.failing.lock().expect("watch failures lock");
        failing
            .values()
            .find(|failure| failure.forbidden)
            .or_else(|| failing.values().next().filter(|_| any))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn forbidden() -> kube::Error {
        kube::Error::Api(Box::new(
            Status::failure(
                "configmaps \"cfg\" is forbidden: User \"system:serviceaccount:shop:flotilla\" cannot list resource \"configmaps\"",
                "Forbidden",
            )
            .with_code(403),
        ))
    }

    #[test]
    fn a_forbidden_read_names_the_verb_the_resource_and_the_namespace() {
        let failure = ReadFailure::new(
            "list",
            "configmaps",
            Some("shop"),
            "ConfigMap storefront-config",
            &forbidden(),
        );
        assert_eq!(failure.reason(), REASON_FORBIDDEN);
        assert_eq!(failure.metric_label(), "read_forbidden");
        let message = failure.to_string();
        assert!(
            message.starts_with(
                "the operator may not list configmaps in namespace shop (reading ConfigMap storefront-config)"
            ),
            "{message}"
        );
        assert!(message.contains("cannot list resource"), "{message}");
    }

    #[test]
    fn other_failures_are_read_failed() {
        let error = kube::Error::Api(Box::new(
            Status::failure("etcdserver: request timed out", "InternalError").with_code(500),
        ));
        let failure = ReadFailure::new("list", "secrets", None, "Secret tls", &error);
        assert_eq!(failure.reason(), REASON_READ_FAILED);
        assert_eq!(
            failure.to_string(),
            "list secrets cluster-wide failed (reading Secret tls): etcdserver: request timed out"
        );
    }

    #[test]
    fn a_forbidden_watch_is_reported_first_and_leaves_on_success() {
        let failures = WatchFailures::default();
        let timeout = kube::Error::Api(Box::new(
            Status::failure("timeout", "Timeout").with_code(504),
        ));
        failures.failed(
            "ConfigMap",
            ReadFailure::of_watch(
                "configmaps",
                Some("shop"),
                &watcher::Error::WatchFailed(timeout),
            ),
        );
        assert_eq!(failures.to_report(false), None, "transient, caches synced");
        assert_eq!(
            failures.to_report(true).map(|f| f.verb),
            Some("watch"),
            "transient, caches waiting"
        );
        failures.failed(
            "Pod",
            ReadFailure::of_watch(
                "pods",
                Some("shop"),
                &watcher::Error::InitialListFailed(forbidden()),
            ),
        );
        let reported = failures.to_report(false).expect("forbidden is reported");
        assert_eq!(
            (reported.verb, reported.resource.as_str()),
            ("list", "pods")
        );
        failures.recovered("Pod");
        assert_eq!(failures.to_report(false), None);
    }
}
