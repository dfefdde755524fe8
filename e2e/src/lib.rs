//! Helpers shared by the end-to-end tests: a [`Scenario`] (client, CRDs, namespace and
//! operator, the setup most tests start with), a client for `$KUBECONFIG`, throwaway
//! namespaces and cluster-scoped objects (MicroserviceClasses), condition waits with
//! deadlines, `kubectl`, server-side apply, the operator process, plain HTTP from the
//! host, and a headless Chromium over WebDriver ([`Browser`]).
//!
//! Tests never sleep: they wait on a condition with [`wait_for`], which reports the last
//! observed state when the deadline passes.

pub mod apply;
pub mod browser;
pub mod classes;
pub mod client;
pub mod fault;
pub mod helm;
pub mod http;
pub mod identity;
pub mod kubectl;
pub mod namespace;
pub mod operator;
pub mod probe;
pub mod scenario;
pub mod steps;
pub mod wait;

pub use apply::{apply_cluster_yaml, apply_yaml};
pub use browser::Browser;
pub use classes::{ClusterObject, apply_class};
pub use client::client;
pub use http::{HttpResponse, http_get, http_post_json, wait_http};
pub use kubectl::{kubectl, kubectl_with_stdin};
pub use namespace::TestNamespace;
pub use operator::Operator;
pub use scenario::{Scenario, crds_client};
pub use wait::{Poll, wait_for};
