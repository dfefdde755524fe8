//! The dependency graph between Microservices: who calls whom, on which port. Pure
//! lookups over a set of Microservices (the controller's watches keep the reverse index,
//! `controller::indexes`).

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

mod admission;
mod backing;

pub use admission::{Admission, NamespaceLabels, labels_of};
pub use backing::{
    BackingResolution, BackingTarget, ResolvedBacking, backing_targets, resolve_backing,
};

use crate::api::labels::pod_selector;
use crate::api::{Microservice, Port};
use crate::validate::names;

/// The namespace of an object that has none, as `kubectl` assumes.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Namespace and name of a Microservice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn of(ms: &Microservice) -> Self {
        ObjectKey::new(namespace_of(ms), ms.name_any())
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A `dependsOn` entry that could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingDependency {
    pub name: String,
    pub namespace: String,
    pub reason: String,
}

/// A Microservice this one calls, looked up in the cluster (or in the render input).
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedDependency {
    /// Name of the dependency Microservice.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The port this one calls (the one named in `dependsOn`, or its primary port).
    pub port: Port,
    /// The labels that select its pods.
    pub pod_selector: BTreeMap<String, String>,
}

/// A Microservice whose `dependsOn` names this one.
#[derive(Clone, Debug, PartialEq)]
pub struct Dependent {
    /// Name of the calling Microservice.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The ports of *this* Microservice it calls (resolved from its `dependsOn` entry:
    /// the named port, or every declared port when it names none).
    pub ports: Vec<Port>,
    /// The labels that select its pods.
    pub pod_selector: BTreeMap<String, String>,
}

/// The neighbours of one Microservice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resolution {
    /// Dependencies that exist and declare the port called, in `dependsOn` order.
    pub dependencies: Vec<ResolvedDependency>,
    /// Microservices calling this one, sorted by namespace and name.
    pub dependents: Vec<Dependent>,
    /// Dependencies that do not resolve, in `dependsOn` order.
    pub missing: Vec<MissingDependency>,
    /// Dependencies that resolve but are not Ready, as `namespace/name`.
    pub unready: Vec<String>,
    /// Dependencies in other namespaces that do not admit this caller: no address, no
    /// traffic.
    pub refused: Vec<MissingDependency>,
}

fn namespace_of(ms: &Microservice) -> String {
    ms.namespace()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

/// The Microservices `ms` names in `dependsOn`, namespaces filled in.
pub fn dependency_keys(ms: &Microservice) -> BTreeSet<ObjectKey> {
    let namespace = namespace_of(ms);
    ms.spec
        .depends_on
        .iter()
        .map(|d| {
            ObjectKey::new(
                d.namespace.clone().unwrap_or_else(|| namespace.clone()),
                d.name.clone(),
            )
        })
        .collect()
}

/// Resolves the dependencies and dependents of `ms` among `all` (which may contain `ms`
/// itself); callers from other namespaces count only where `admission` lets them in.
/// One pass over `all`, so resolving every object of a set is O(n²) at worst but each
/// call stays linear.
pub fn resolve<'a, I>(ms: &Microservice, all: I, admission: &Admission<'_>) -> Resolution
where
    I: IntoIterator<Item = &'a Microservice>,
{
    let key = ObjectKey::of(ms);
    let wanted = dependency_keys(ms);
    let mut found: BTreeMap<ObjectKey, &'a Microservice> = BTreeMap::new();
    let mut dependents = Vec::new();

    for other in all {
        let other_key = ObjectKey::of(other);
        if wanted.contains(&other_key) {
            found.entry(other_key.clone()).or_insert(other);
        }
        if other_key == key {
            continue;
        }
        if let Some(dependent) = dependent_of(&key, &ms.spec.ports, other, &other_key, admission)
            && admission.admits(ms, &other_key.namespace).is_ok()
        {
            dependents.push(dependent);
        }
    }
    dependents.sort_by(|a: &Dependent, b: &Dependent| {
        (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name))
    });
    dependents.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);

    let mut resolution = Resolution {
        dependents,
        ..Resolution::default()
    };
    for entry in &ms.spec.depends_on {
        let dep_key = ObjectKey::new(
            entry
                .namespace
                .clone()
                .unwrap_or_else(|| key.namespace.clone()),
            entry.name.clone(),
        );
        let missing = |reason: String| MissingDependency {
            name: dep_key.name.clone(),
            namespace: dep_key.namespace.clone(),
            reason,
        };
        // `ms` itself is not necessarily in `all`, but may depend on itself in another
        // spelling (an explicit namespace).
        let target = found
            .get(&dep_key)
            .copied()
            .or_else(|| (dep_key == key).then_some(ms));
        let Some(target) = target else {
            resolution
                .missing
                .push(missing(format!("Microservice {dep_key} not found")));
            continue;
        };
        if let Err(reason) = admission.admits(target, &key.namespace) {
            resolution.refused.push(missing(reason));
            continue;
        }
        let port = match &entry.port {
            Some(name) => target.spec.ports.iter().find(|p| &p.name == name),
            None => target.spec.ports.first(),
        };
        if port.is_some() && !target.is_ready() {
            resolution.unready.push(dep_key.to_string());
        }
        match (port, &entry.port) {
            (Some(port), _) => resolution.dependencies.push(ResolvedDependency {
                name: dep_key.name.clone(),
                namespace: dep_key.namespace.clone(),
                port: port.clone(),
                pod_selector: pod_selector(&dep_key.name),
            }),
            (None, Some(name)) => resolution
                .missing
                .push(missing(format!("port {name} not declared by {dep_key}"))),
            (None, None) => resolution
                .missing
                .push(missing(format!("{dep_key} declares no ports"))),
        }
    }
    resolution
}

/// `other` as a dependent of the Microservice `key` (whose ports are `ports`), when one
/// of its `dependsOn` entries names it, or its class binds it to `key` as a backing
/// service: with the named ports, or the primary (first) port for an entry that names
/// none, the one its address points at. None when nothing it
/// names exists (then nothing is opened), and when its name cannot be a label value: it
/// has no pods (its Deployment would carry that label too), and a selector naming it
/// would get the NetworkPolicy refused.
fn dependent_of(
    key: &ObjectKey,
    ports: &[Port],
    other: &Microservice,
    other_key: &ObjectKey,
    admission: &Admission<'_>,
) -> Option<Dependent> {
    if names::label_value(&other_key.name).is_err() {
        return None;
    }
    let mut called = BTreeSet::new();
    backing::called_as_backing(key, ports, other, admission, &mut called);
    for entry in &other.spec.depends_on {
        let namespace = entry.namespace.as_deref().unwrap_or(&other_key.namespace);
        if entry.name != key.name || namespace != key.namespace {
            continue;
        }
        match &entry.port {
            Some(name) => {
                if let Some(index) = ports.iter().position(|p| &p.name == name) {
                    called.insert(index);
                }
            }
            None if !ports.is_empty() => {
                called.insert(0);
            }
            None => {}
        }
    }
    if called.is_empty() {
        return None;
    }
    Some(Dependent {
        name: other_key.name.clone(),
        namespace: other_key.namespace.clone(),
        // In this Microservice's port order, whatever order dependsOn used.
        ports: called.into_iter().map(|i| ports[i].clone()).collect(),
        pod_selector: pod_selector(&other_key.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Dependency, MicroserviceSpec};

    fn port(name: &str, number: i32) -> Port {
        Port {
            name: name.to_string(),
            port: number,
            ..Port::default()
        }
    }

    fn ms(
        namespace: &str,
        name: &str,
        ports: Vec<Port>,
        depends_on: Vec<Dependency>,
    ) -> Microservice {
        let mut ms = Microservice::new(
            name,
            MicroserviceSpec {
                image: "example/app:1".to_string(),
                ports,
                depends_on,
                ..MicroserviceSpec::default()
            },
        );
        ms.metadata.namespace = Some(namespace.to_string());
        ms
    }

    fn dep(name: &str, namespace: Option<&str>, port: Option<&str>) -> Dependency {
        Dependency {
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
            port: port.map(str::to_string),
            wait_for_release: None,
        }
    }

    #[test]
    fn resolve_finds_ports_and_reports_missing() {
        let users = ms(
            "shop",
            "users",
            vec![port("http", 80), port("admin", 9000)],
            vec![],
        );
        let empty = ms("shop", "empty", vec![], vec![]);
        let orders = ms(
            "shop",
            "orders",
            vec![port("grpc", 9090)],
            vec![
                dep("users", None, Some("admin")),
                dep("users", None, Some("nope")),
                dep("ghost", None, None),
                dep("empty", None, None),
            ],
        );
        let all = [users.clone(), empty, orders.clone()];
        let resolution = resolve(&orders, all.iter(), &Default::default());
        assert_eq!(resolution.dependencies.len(), 1);
        assert_eq!(resolution.dependencies[0].port.name, "admin");
        assert_eq!(
            resolution.dependencies[0].pod_selector,
            pod_selector("users")
        );
        let reasons: Vec<&str> = resolution
            .missing
            .iter()
            .map(|m| m.reason.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "port nope not declared by shop/users",
                "Microservice shop/ghost not found",
                "shop/empty declares no ports"
            ]
        );

        let resolution = resolve(&users, all.iter(), &Default::default());
        assert_eq!(resolution.dependents.len(), 1);
        let ports: Vec<&str> = resolution.dependents[0]
            .ports
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(ports, ["admin"]);
    }

    #[test]
    fn a_dependent_whose_name_cannot_be_a_label_value_is_left_out() {
        let users = ms("shop", "users", vec![port("http", 80)], vec![]);
        let long_name = format!("{}.{}", "a".repeat(40), "b".repeat(40));
        let legacy = ms("shop", &long_name, vec![], vec![dep("users", None, None)]);
        let orders = ms("shop", "orders", vec![], vec![dep("users", None, None)]);
        let resolution = resolve(
            &users,
            [users.clone(), legacy, orders].iter(),
            &Default::default(),
        );
        let names: Vec<&str> = resolution
            .dependents
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["orders"]);
    }

    #[test]
    fn callers_across_namespaces_need_the_target_s_consent_and_unnamed_ports_get_the_primary() {
        let closed = ms(
            "shop",
            "users",
            vec![port("http", 80), port("admin", 9000)],
            vec![],
        );
        let mut open_to_web = closed.clone();
        open_to_web.spec.network = Some(
            serde_saphyr::from_str(
                "{allowFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: web}}}]}",
            )
            .unwrap(),
        );
        let web = ms(
            "web",
            "frontend",
            vec![],
            vec![dep("users", Some("shop"), None)],
        );
        // Same name in another namespace does not count.
        let other = ms("web", "caller", vec![], vec![dep("users", None, None)]);

        let all = [open_to_web.clone(), web.clone(), other.clone()];
        let resolution = resolve(&open_to_web, all.iter(), &Default::default());
        assert_eq!(resolution.dependents.len(), 1);
        assert_eq!(resolution.dependents[0].namespace, "web");
        let ports: Vec<&str> = resolution.dependents[0]
            .ports
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(ports, ["http"], "no port named: the primary port only");
        let caller = resolve(&web, all.iter(), &Default::default());
        assert_eq!(caller.dependencies.len(), 1);
        assert!(caller.refused.is_empty());

        // Without consent: nothing opened on the target, the caller told why.
        let all = [closed.clone(), web.clone(), other];
        assert!(
            resolve(&closed, all.iter(), &Default::default())
                .dependents
                .is_empty()
        );
        let caller = resolve(&web, all.iter(), &Default::default());
        assert!(caller.dependencies.is_empty() && caller.missing.is_empty());
        assert_eq!(caller.refused.len(), 1);
        assert!(
            caller.refused[0]
                .reason
                .contains("does not admit callers from namespace web"),
            "{}",
            caller.refused[0].reason
        );
    }
}
