//! Read the world: everything outside the Microservice that its children depend on,
//! taken from the caches, never from a list call.

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use sha2::{Digest, Sha256};

use crate::api::Microservice;
use crate::builders::{BuildContext, Capabilities, ConfigKind, ConfigRef, config_refs};
use crate::graph::{self, MissingDependency};

/// The build context of one Microservice, and what could not be resolved.
pub struct World {
    pub build: BuildContext,
    pub missing_dependencies: Vec<MissingDependency>,
    /// Referenced ConfigMaps and Secrets that do not exist and are not optional.
    pub missing_config: Vec<ConfigRef>,
    /// Dependencies that exist but whose `Ready` condition is not True.
    pub unready_dependencies: Vec<String>,
}

/// Metadata of a ConfigMap or Secret that matters for a rollout.
pub struct ConfigVersion {
    pub uid: String,
    pub resource_version: String,
}

pub fn read(
    ms: &Microservice,
    capabilities: Capabilities,
    microservices: &Store<Microservice>,
    config_version: impl Fn(&ConfigRef) -> Option<ConfigVersion>,
) -> World {
    let all = microservices.state();
    let resolution = graph::resolve(ms, all.iter().map(|m| m.as_ref()));
    let unready_dependencies = resolution
        .dependencies
        .iter()
        .filter(|dep| {
            let key = ObjectRef::<Microservice>::new(&dep.name).within(&dep.namespace);
            !microservices.get(&key).is_some_and(|d| d.is_ready())
        })
        .map(|dep| format!("{}/{}", dep.namespace, dep.name))
        .collect();
    let refs = config_refs(&ms.spec);
    let versions: Vec<(ConfigRef, Option<ConfigVersion>)> = refs
        .into_iter()
        .map(|r| {
            let v = config_version(&r);
            (r, v)
        })
        .collect();
    let missing_config = versions
        .iter()
        .filter(|(r, v)| v.is_none() && !r.optional)
        .map(|(r, _)| r.clone())
        .collect();
    World {
        build: BuildContext {
            capabilities,
            dependencies: resolution.dependencies,
            dependents: resolution.dependents,
            config_hash: config_hash(&versions),
            class: Default::default(),
        },
        missing_dependencies: resolution.missing,
        missing_config,
        unready_dependencies,
    }
}

/// A hash of the identity and version of every referenced ConfigMap and Secret: any edit
/// changes the resourceVersion, so the pod template changes and the pods roll. Values are
/// never read, so no secret material is copied anywhere. Empty when nothing is referenced.
pub fn config_hash(versions: &[(ConfigRef, Option<ConfigVersion>)]) -> String {
    if versions.is_empty() {
        return String::new();
    }
    let mut hasher = Sha256::new();
    for (config, version) in versions {
        let kind = match config.kind {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
        };
        let (uid, resource_version) = version.as_ref().map_or(("missing", "missing"), |v| {
            (v.uid.as_str(), v.resource_version.as_str())
        });
        hasher.update(format!("{kind}/{}={uid}@{resource_version}\n", config.name));
    }
    let digest = hasher.finalize();
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The version of a ConfigMap or Secret as the metadata caches know it.
pub fn cached_version<K>(store: &Store<K>, name: &str, namespace: &str) -> Option<ConfigVersion>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let object = store.get(&ObjectRef::new(name).within(namespace))?;
    Some(ConfigVersion {
        uid: object.meta().uid.clone().unwrap_or_default(),
        resource_version: object.resource_version().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(rv: &str) -> Option<ConfigVersion> {
        Some(ConfigVersion {
            uid: "u1".into(),
            resource_version: rv.into(),
        })
    }

    #[test]
    fn hash_follows_config_versions() {
        let settings = ConfigRef {
            kind: ConfigKind::ConfigMap,
            name: "settings".into(),
            optional: false,
        };
        let first = config_hash(&[(settings.clone(), version("10"))]);
        assert_eq!(first, config_hash(&[(settings.clone(), version("10"))]));
        assert_ne!(first, config_hash(&[(settings.clone(), version("11"))]));
        assert_ne!(first, config_hash(&[(settings, None)]));
        assert_eq!(config_hash(&[]), "");
    }
}
