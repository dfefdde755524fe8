//! The setup almost every operator test starts with: a client, the CRDs, a namespace of
//! its own and `flotilla run --namespace` for it.
//!
//! ```ignore
//! let s = Scenario::new("converge").await?;
//! let (client, ns) = (s.client(), s.ns());
//! apply_yaml(ns, &testapp("users", ""))?;
//! wait_ready(client, ns, "users").await?;
//! ```
//!
//! When the test ends (or panics) the operator is killed first, then the namespace is
//! deleted: the order of the `let ns = …; let _operator = …;` the tests used to write.

use crate::namespace::TestNamespace;
use crate::operator::Operator;
use crate::steps::{ensure_crds, start_operator_with};

/// One test's client, namespace and (unless made [`Scenario::without_operator`]) its
/// operator, as the chart installs it for that namespace.
pub struct Scenario {
    // Fields drop in this order: the operator dies before its namespace goes.
    operator: Option<Operator>,
    namespace: TestNamespace,
    client: kube::Client,
}

impl Scenario {
    /// A client with the CRDs installed, the namespace `<prefix>-<unique suffix>`, and
    /// the operator for it ([`crate::steps::start_operator`]).
    pub async fn new(prefix: &str) -> anyhow::Result<Self> {
        Self::with_operator_args(prefix, &[]).await
    }

    /// [`Scenario::new`] with more operator arguments after the usual ones, e.g.
    /// `["--http-gates=true"]`.
    pub async fn with_operator_args(prefix: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let mut scenario = Self::without_operator(prefix).await?;
        scenario.operator = Some(start_operator_with(scenario.ns(), extra)?);
        Ok(scenario)
    }

    /// The client, the CRDs and the namespace, no operator yet: for a test that prepares
    /// the namespace first and then starts the operator ([`Scenario::start_operator`]),
    /// or runs another kind of operator (sharded, leader-elected, the chart's).
    pub async fn without_operator(prefix: &str) -> anyhow::Result<Self> {
        let client = crds_client().await?;
        let namespace = TestNamespace::new(&client, prefix).await?;
        Ok(Self {
            operator: None,
            namespace,
            client,
        })
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The namespace's name.
    pub fn ns(&self) -> &str {
        self.namespace.name()
    }

    /// The operator [`Scenario::new`] started. A test that kills or restarts its operator
    /// holds it instead: [`Scenario::without_operator`], then [`Scenario::start_operator`].
    pub fn operator(&self) -> &Operator {
        self.operator
            .as_ref()
            .expect("a Scenario made without_operator has no operator of its own")
    }

    /// Starts the operator for the namespace, `extra` after the usual arguments, once the
    /// test has prepared what it must find, or for a test that kills, signals or restarts
    /// it. The test holds it (`let _operator = …`, `let mut operator = …`): declared after
    /// the scenario, it is killed before the namespace is deleted, and before anything the
    /// test created in between (a class) is deleted.
    pub fn start_operator(&self, extra: &[&str]) -> anyhow::Result<Operator> {
        start_operator_with(self.ns(), extra)
    }
}

/// A client with the CRDs installed, for a test that needs no namespace of its own.
pub async fn crds_client() -> anyhow::Result<kube::Client> {
    let client = crate::client::client().await?;
    ensure_crds(&client).await?;
    Ok(client)
}
