//! MicroserviceClasses in the tests. Classes are cluster-scoped and the suite runs tests
//! side by side, so each test names its classes after its own namespace
//! ([`class_name`]), deletes them when it ends ([`ClusterObject`]), and never marks one
//! `default` (a default class would apply to every other test's Microservices).

use flotilla::api::MicroserviceClass;
use kube::Api;

use crate::apply::apply_cluster_yaml;
use crate::kubectl::kubectl;
use crate::steps::CONVERGE;
use crate::wait::{Poll, wait_for};

/// A class name unique to the test that owns `namespace` (a unique name itself).
pub fn class_name(namespace: &str) -> String {
    namespace.to_string()
}

/// A MicroserviceClass manifest: `spec` is the YAML under `spec:`, indented two spaces
/// by the caller (`"  policy:\n    maxReplicas: 3\n"`). Refuses `default: true`.
pub fn class_yaml(name: &str, spec: &str) -> String {
    assert!(
        !spec.contains("default: true"),
        "the e2e suite never creates a default class: it would apply to every other \
         test's Microservices"
    );
    let spec = if spec.trim().is_empty() {
        "  {}\n"
    } else {
        spec
    };
    format!(
        "apiVersion: flotilla.dev/v1alpha1
kind: MicroserviceClass
metadata:
  name: {name}
  labels:
    flotilla-e2e: \"true\"
spec:
{spec}"
    )
}

/// Applies the class `name` with this spec and returns a guard that deletes it.
pub fn apply_class(name: &str, spec: &str) -> anyhow::Result<ClusterObject> {
    // The guard first: a class the server took before an error is still deleted.
    let guard = ClusterObject::new("microserviceclass.flotilla.dev", name);
    apply_cluster_yaml(&class_yaml(name, spec))?;
    Ok(guard)
}

/// Applies the class `name` again with this spec (it is already owned by a guard).
pub fn update_class(name: &str, spec: &str) -> anyhow::Result<()> {
    apply_cluster_yaml(&class_yaml(name, spec)).map(drop)
}

/// A cluster-scoped object the test created. Dropping it deletes the object (without
/// waiting); when the test is panicking it first prints it. `FLOTILLA_E2E_KEEP=1` keeps
/// it, as it keeps the namespace.
pub struct ClusterObject {
    kind: String,
    name: String,
}

impl ClusterObject {
    /// Owns `kind/name` (e.g. `microserviceclass.flotilla.dev`, `shop`) from now on.
    pub fn new(kind: &str, name: &str) -> Self {
        Self {
            kind: kind.to_string(),
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

impl Drop for ClusterObject {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let yaml = kubectl(&["get", &self.reference(), "-o", "yaml"])
                .unwrap_or_else(|e| format!("{e:#}"));
            eprintln!("---- {} at failure ----\n{yaml}", self.reference());
            if std::env::var_os("FLOTILLA_E2E_KEEP").is_some() {
                eprintln!("FLOTILLA_E2E_KEEP set: keeping {}", self.reference());
                return;
            }
        }
        if let Err(e) = kubectl(&[
            "delete",
            &self.reference(),
            "--ignore-not-found",
            "--wait=false",
        ]) {
            eprintln!("deleting {}: {e:#}", self.reference());
        }
    }
}

/// One line describing a class's status, for timeout messages.
pub fn describe_class(class: &MicroserviceClass) -> String {
    let Some(status) = &class.status else {
        return format!("generation {:?}, no status yet", class.metadata.generation);
    };
    let conditions: Vec<String> = status
        .conditions
        .iter()
        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect();
    format!(
        "generation {:?}, observedGeneration {:?}, networkMode {:?}, services {}, violations {}, {}",
        class.metadata.generation,
        status.observed_generation,
        status.network_mode,
        status.services,
        status.violations,
        conditions.join("; ")
    )
}

/// Waits until `check` holds on the class.
pub async fn wait_class(
    client: &kube::Client,
    name: &str,
    what: &str,
    check: impl Fn(&MicroserviceClass) -> bool,
) -> anyhow::Result<MicroserviceClass> {
    let api: Api<MicroserviceClass> = Api::all(client.clone());
    wait_for(
        format!("MicroserviceClass {name}: {what}"),
        CONVERGE,
        || {
            let api = api.clone();
            let check = &check;
            async move {
                let class = api.get(name).await?;
                Ok(if check(&class) {
                    Poll::Ready(class)
                } else {
                    Poll::Pending(describe_class(&class))
                })
            }
        },
    )
    .await
}
