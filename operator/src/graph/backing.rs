//! Backing services a Microservice runs (a broker, a cache): its users resolve it like a
//! dependency, and it counts them among its dependents, so its NetworkPolicy admits
//! exactly the Microservices its class binds to it.

use std::collections::BTreeSet;

use crate::api::labels::pod_selector;
use crate::api::{Microservice, Port};
use crate::class::{self, Binding, Missing, MissingBackingService};

use super::{Admission, ObjectKey, ResolvedDependency, labels_of};

/// A backing service run by a Microservice that exists, with the port its users call.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedBacking {
    /// Its name in the user's `spec.backingServices`: the prefix of its variables.
    pub name: String,
    /// Its type, e.g. `nats`: the scheme of its URL when the port names no protocol.
    pub type_: String,
    /// The Microservice and port.
    pub target: ResolvedDependency,
}

/// The backing services of one Microservice that Microservices run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackingResolution {
    pub resolved: Vec<ResolvedBacking>,
    /// Required ones that do not resolve (optional ones are left out silently).
    pub missing: Vec<MissingBackingService>,
    /// Ones that resolve but are not Ready, as `namespace/name`.
    pub unready: Vec<String>,
}

/// Resolves the bindings of a Microservice of `namespace` that name a Microservice,
/// among `all`; one in another namespace must admit the user as it would a caller.
pub fn resolve_backing<'a>(
    namespace: &str,
    bindings: &[Binding],
    all: impl IntoIterator<Item = &'a Microservice> + Clone,
    admission: &Admission<'_>,
) -> BackingResolution {
    let mut resolution = BackingResolution::default();
    for binding in bindings {
        let Some(wanted) = binding.microservice() else {
            continue;
        };
        let key = ObjectKey::new(wanted.namespace.clone(), wanted.name.clone());
        let found = all.clone().into_iter().find(|ms| ObjectKey::of(ms) == key);
        let port = found
            .ok_or_else(|| format!("Microservice {key} not found"))
            .and_then(|target| {
                admission.admits(target, namespace)?;
                let port = match &wanted.port {
                    Some(name) => target.spec.ports.iter().find(|p| &p.name == name),
                    None => target.spec.ports.first(),
                };
                let port = port.ok_or_else(|| match &wanted.port {
                    Some(name) => format!("port {name} not declared by Microservice {key}"),
                    None => format!("Microservice {key} declares no ports"),
                })?;
                Ok((target, port))
            });
        match port {
            Ok((target, port)) => {
                if !target.is_ready() {
                    resolution.unready.push(key.to_string());
                }
                resolution.resolved.push(ResolvedBacking {
                    name: binding.name.clone(),
                    type_: binding.type_.clone(),
                    target: ResolvedDependency {
                        name: key.name.clone(),
                        namespace: key.namespace.clone(),
                        port: port.clone(),
                        pod_selector: pod_selector(&key.name),
                    },
                });
            }
            Err(_) if binding.optional => {}
            Err(reason) => resolution.missing.push(MissingBackingService {
                name: binding.name.clone(),
                type_: binding.type_.clone(),
                missing: Missing::Microservice(reason),
            }),
        }
    }
    resolution
}

/// A backing service of a Microservice that another Microservice runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackingTarget {
    /// Its name in the user's `spec.backingServices`.
    pub name: String,
    pub key: ObjectKey,
    /// The port called; the first when None.
    pub port: Option<String>,
}

/// The Microservices `ms`'s class binds it to as backing services (an unreadable class,
/// or one refusing it, binds none).
pub fn backing_targets(ms: &Microservice, admission: &Admission<'_>) -> Vec<BackingTarget> {
    if ms.spec.backing_services.is_empty() {
        return Vec::new();
    }
    let key = ObjectKey::of(ms);
    let labels = labels_of(admission.namespace_labels, &key.namespace);
    let Some(class) = class::governing(ms, &labels, admission.classes.iter().copied()) else {
        return Vec::new();
    };
    let class_name = kube::ResourceExt::name_any(class);
    class::backing::bind(ms, Some(&class_name), &class.spec.backing_services, &labels)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|binding| {
            let target = binding.microservice()?;
            Some(BackingTarget {
                name: binding.name.clone(),
                key: ObjectKey::new(target.namespace.clone(), target.name.clone()),
                port: target.port.clone(),
            })
        })
        .collect()
}

/// Adds to `called` the indexes in `ports` (those of the Microservice `key`) that `other`
/// calls as a backing service: the named port, or the first.
pub(super) fn called_as_backing(
    key: &ObjectKey,
    ports: &[Port],
    other: &Microservice,
    admission: &Admission<'_>,
    called: &mut BTreeSet<usize>,
) {
    for target in backing_targets(other, admission) {
        if &target.key != key {
            continue;
        }
        let index = match &target.port {
            Some(name) => ports.iter().position(|p| &p.name == name),
            None => (!ports.is_empty()).then_some(0),
        };
        called.extend(index);
    }
}
