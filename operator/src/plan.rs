//! The pure part of a reconcile, shared by the controller and `flotilla render`: from one
//! Microservice and what surrounds it, decide every child to apply, or why none is.
//!
//! validate (its own spec) → class (pick, merge defaults, re-check, policy) → graph
//! (dependencies and dependents) → build (one object per child kind). No client, no clock.

use sha2::{Digest, Sha256};

use crate::api::{Microservice, MicroserviceClass};
use crate::builders::{
    self, BuildContext, Capabilities, Children, ConfigKind, ConfigRef, config_refs,
    config_snapshot, deployment,
};
use crate::class::{self, Binding, Missing, MissingBackingService, Refusal, Resolved};
use crate::graph::{self, Admission, MissingDependency, NamespaceLabels};
use crate::validate::validate;

/// What surrounds one Microservice: the controller reads it from its caches, `flotilla
/// render` from its input files.
pub struct Inputs<'a> {
    pub capabilities: &'a Capabilities,
    /// Every MicroserviceClass (they are cluster-scoped).
    pub classes: &'a [&'a MicroserviceClass],
    /// The Microservices it may call or be called by; it may be among them.
    pub microservices: &'a [&'a Microservice],
    /// What the caches know of each referenced ConfigMap and Secret. Without a lookup
    /// (offline) nothing is hashed and nothing is reported missing.
    pub config: Option<ConfigLookup<'a>>,
    /// The labels of a namespace, for consent across namespaces; without a lookup a
    /// namespace is known by its name label only.
    pub namespace_labels: Option<NamespaceLabels<'a>>,
    /// How the operator is installed, where it refuses what the install cannot serve.
    pub install: Install,
}

/// What the operator's install allows, beyond the cluster: its flags (chart values).
/// The default is an install that refuses nothing (offline, `flotilla render`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Install {
    /// `--http-gates`: the operator may read pods through `pods/proxy`, so HTTP gates run.
    pub http_gates: bool,
    /// `--require-class`: every Microservice must be governed by a class.
    pub require_class: bool,
    /// `--config-snapshots`: the operator may create and delete ConfigMaps, so
    /// `rollout.snapshotConfig` copies them; without it the pods read them directly.
    pub config_snapshots: bool,
}

impl Default for Install {
    fn default() -> Self {
        Install {
            http_gates: true,
            require_class: false,
            config_snapshots: true,
        }
    }
}

/// What the caches know of a ConfigMap or Secret by reference.
pub type ConfigLookup<'a> = &'a dyn Fn(&ConfigRef) -> ConfigState;

/// A referenced ConfigMap or Secret as the caches know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigState {
    Exists(ConfigVersion),
    Missing,
    /// Not watched (Secrets, when the operator runs without access to them): it neither
    /// rolls the pods nor is reported missing.
    Unwatched,
}

/// Metadata of a ConfigMap or Secret that matters for a rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigVersion {
    pub uid: String,
    pub resource_version: String,
}

/// Everything decided for one Microservice.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The class that governs it, even one that refuses it.
    pub class_name: Option<String>,
    /// `dependsOn` entries that do not resolve: the rollout waits for them.
    pub missing_dependencies: Vec<MissingDependency>,
    /// Dependencies in other namespaces that do not admit this caller: left out of the
    /// env and the NetworkPolicy, reported in `DependenciesReady`.
    pub refused_dependencies: Vec<MissingDependency>,
    /// Dependencies that exist but are not Ready, as `namespace/name`.
    pub unready_dependencies: Vec<String>,
    /// Referenced ConfigMaps and Secrets that do not exist and are not optional.
    pub missing_config: Vec<ConfigRef>,
    /// Required backing services whose Secret does not exist: the rollout waits for them.
    pub missing_backing: Vec<MissingBackingService>,
    /// Its backing services as the class binds them (none when it is refused). Those
    /// provisioned from a template are applied by the controller's step after the plan:
    /// the server decides whether their kinds are served.
    pub backing: Vec<Binding>,
    /// The children, or why nothing is applied (the children keep running as they are).
    pub outcome: Result<Build, Refusal>,
}

/// The children of an accepted Microservice.
#[derive(Clone, Debug, PartialEq)]
pub struct Build {
    /// The Microservice with its class's defaults merged in: what actually runs.
    pub effective: Microservice,
    /// In apply order; the Deployment is held while a dependency is missing.
    pub children: Children,
    /// The URL from outside the cluster, when exposed.
    pub external_url: Option<String>,
    /// The config snapshots its pod template reads, to be created before it is applied.
    pub snapshots: Vec<Snapshot>,
    /// The Microservices that call it, as `(namespace, name)`.
    pub dependents: Vec<(String, String)>,
}

/// A ConfigMap the pods reference, and the copy they read (`rollout.snapshotConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub source: String,
    /// The source's resourceVersion the copy is named after: the copy is taken only
    /// from that version of it.
    pub resource_version: String,
    pub copy: String,
}

impl Plan {
    /// The Secrets of its backing services, as the class names them: watched for it.
    pub fn backing_secrets(&self) -> Vec<String> {
        self.backing
            .iter()
            .filter_map(|b| Some(b.secret()?.secret.clone()))
            .collect()
    }

    /// The Microservices that run its backing services, as `(namespace, name)`: their
    /// NetworkPolicies admit it, so they are reconciled when it binds or unbinds them.
    pub fn backing_microservices(&self) -> Vec<(String, String)> {
        self.backing
            .iter()
            .filter_map(Binding::microservice)
            .map(|target| (target.namespace.clone(), target.name.clone()))
            .collect()
    }

    /// Whether the rollout waits for a missing dependency.
    pub fn rollout_held(&self) -> bool {
        !self.missing_dependencies.is_empty() || !self.missing_backing.is_empty()
    }
}

/// Plans `ms` among `inputs`.
pub fn plan(ms: &Microservice, inputs: &Inputs<'_>) -> Plan {
    let classes = inputs.classes.iter().copied();
    let namespace = ms.metadata.namespace.clone().unwrap_or_default();
    let namespace_labels = graph::labels_of(inputs.namespace_labels, &namespace);
    let resolved = validate(ms)
        .map_err(|error| Refusal::InvalidSpec(error.to_string()))
        .and_then(|()| class::resolve(ms, &namespace_labels, classes.clone()));
    // Neighbours are resolved for the spec that would run, or the refused one as written:
    // status reports missing dependencies either way.
    let effective = resolved.as_ref().map_or(ms, |r| &r.effective);
    let admission = Admission {
        classes: inputs.classes,
        namespace_labels: inputs.namespace_labels,
    };
    let mut neighbours =
        graph::resolve(effective, inputs.microservices.iter().copied(), &admission);
    let missing_dependencies = std::mem::take(&mut neighbours.missing);
    let unready_dependencies = std::mem::take(&mut neighbours.unready);
    let refused_dependencies = std::mem::take(&mut neighbours.refused);
    let backing: &[Binding] = resolved.as_ref().map_or(&[], |r| &r.backing);
    let bound = backing.to_vec();
    let mut run_by_microservices = graph::resolve_backing(
        &namespace,
        backing,
        inputs.microservices.iter().copied(),
        &admission,
    );
    let mut unready_dependencies = unready_dependencies;
    unready_dependencies.append(&mut run_by_microservices.unready);
    let (config_hash, missing_config, mut missing_backing, snapshots) = match inputs.config {
        Some(lookup) => {
            let by_spec = config_refs(&effective.spec);
            let refs = with_backing_secrets(by_spec.clone(), backing);
            let state = config_state(&refs, lookup);
            let (missing_config, missing_backing) = split_missing(state.missing, backing, &by_spec);
            let snapshots = if inputs.install.config_snapshots && effective.spec.snapshots_config()
            {
                snapshots_of(effective, &state.config_maps)
            } else {
                Vec::new()
            };
            (state.hash, missing_config, missing_backing, snapshots)
        }
        None => (String::new(), Vec::new(), Vec::new(), Vec::new()),
    };
    missing_backing.append(&mut run_by_microservices.missing);
    let outcome = resolved.and_then(
        |Resolved {
             effective,
             settings,
             backing,
         }| {
            let mut ctx = BuildContext::new(
                inputs.capabilities.clone(),
                neighbours,
                config_hash,
                settings,
            );
            ctx.backing = backing;
            ctx.backing_microservices = run_by_microservices.resolved;
            ctx.snapshots = snapshots
                .iter()
                .map(|s| (s.source.clone(), s.copy.clone()))
                .collect();
            let mut children = builders::build(&effective, &ctx)
                // The builders only fail on what validation should have refused: a spec to
                // fix, not an error to retry.
                .map_err(|error| Refusal::InvalidSpec(error.to_string()))?;
            if !missing_dependencies.is_empty() || !missing_backing.is_empty() {
                // Pods started without a dependency's `<NAME>_URL`, or a backing service's
                // Secret, would only crash and roll again once it appears: the rollout
                // waits for every one.
                children.hold(&deployment::KIND);
            }
            let external_url = builders::expose::external_url(&effective, &ctx);
            let dependents = ctx
                .dependents
                .iter()
                .map(|d| (d.namespace.clone(), d.name.clone()))
                .collect();
            Ok(Build {
                effective,
                children,
                external_url,
                snapshots,
                dependents,
            })
        },
    );
    let class_name = class::class_name(ms, &namespace_labels, classes);
    let outcome = outcome
        .and_then(|build| refuse_unavailable_gates(inputs.install, build))
        .and_then(|build| require_class(inputs.install, class_name.as_deref(), build));
    Plan {
        class_name,
        missing_dependencies,
        refused_dependencies,
        unready_dependencies,
        missing_config,
        missing_backing,
        backing: bound,
        outcome,
    }
}

/// The ConfigMaps and Secrets the pods reference: the spec's (`refs`), and each backing
/// service's Secret (optional when the backing service is).
fn with_backing_secrets(mut refs: Vec<ConfigRef>, backing: &[Binding]) -> Vec<ConfigRef> {
    for binding in backing {
        let Some(found_in) = binding.secret() else {
            continue;
        };
        match refs
            .iter_mut()
            .find(|r| r.kind == ConfigKind::Secret && r.name == found_in.secret)
        {
            Some(existing) => existing.optional &= binding.optional,
            None => refs.push(ConfigRef {
                kind: ConfigKind::Secret,
                name: found_in.secret.clone(),
                optional: binding.optional,
            }),
        }
    }
    refs.sort();
    refs
}

/// Splits the missing references: a backing service's Secret is reported as that backing
/// service, and as missing config only when the spec references it too.
fn split_missing(
    missing: Vec<ConfigRef>,
    backing: &[Binding],
    by_spec: &[ConfigRef],
) -> (Vec<ConfigRef>, Vec<MissingBackingService>) {
    let missing_backing = backing
        .iter()
        .filter(|b| !b.optional)
        .filter_map(|b| Some((b, &b.secret()?.secret)))
        .filter(|(_, secret)| {
            missing
                .iter()
                .any(|r| r.kind == ConfigKind::Secret && &&r.name == secret)
        })
        .map(|(b, secret)| MissingBackingService {
            name: b.name.clone(),
            type_: b.type_.clone(),
            missing: Missing::Secret(secret.clone()),
        })
        .collect();
    let missing_config = missing
        .into_iter()
        .filter(|r| by_spec.iter().any(|s| s.kind == r.kind && s.name == r.name))
        .collect();
    (missing_config, missing_backing)
}

/// An HTTP gate needs `get` on `pods/proxy`, which the chart grants only with
/// `httpGates=true` (`--http-gates`): without it the spec is refused before anything is
/// applied, rather than a release judged by checks that can only be forbidden.
/// The traffic gate reads pods the same way, and compares a canary's pods to the stable
/// ones, so it needs canary steps (the spec's or its class's).
fn refuse_unavailable_gates(install: Install, build: Build) -> Result<Build, Refusal> {
    let rollout = build.effective.spec.rollout.as_ref();
    let gates = rollout.and_then(|r| r.gates.as_ref());
    // A traffic gate reading a Prometheus calls no pod.
    let reads_pods = |g: &crate::api::Gates| {
        g.metrics.as_ref().is_some_and(|m| {
            m.source
                .as_ref()
                .and_then(|s| s.prometheus.as_ref())
                .is_none()
        })
    };
    for (gated, field) in [
        (gates.is_some_and(|g| g.http.is_some()), "http"),
        (gates.is_some_and(reads_pods), "metrics"),
    ] {
        if gated && !install.http_gates {
            return Err(Refusal::GateUnavailable(format!(
                "spec.rollout.gates.{field}: this operator runs without HTTP gates (--http-gates=false: no access to pods/proxy); the platform team enables them with the chart value httpGates=true, or remove the gate"
            )));
        }
    }
    let canary = rollout.is_some_and(|r| {
        !r.steps.is_empty() && r.strategy != Some(crate::api::RolloutStrategy::Rolling)
    });
    if gates.is_some_and(|g| g.metrics.is_some()) && !canary {
        return Err(Refusal::InvalidSpec(
            "spec.rollout.gates.metrics: compares the canary's pods to the stable pods during canary steps; add spec.rollout.steps (strategy canary), or remove the gate".to_string(),
        ));
    }
    Ok(build)
}

/// With `--require-class`, a Microservice no class governs is refused before anything
/// is applied.
fn require_class(
    install: Install,
    class_name: Option<&str>,
    build: Build,
) -> Result<Build, Refusal> {
    if install.require_class && class_name.is_none() {
        return Err(Refusal::ClassRequired(
            "spec.class: this cluster requires a MicroserviceClass (--require-class), and none governs this Microservice: name one in spec.class that your namespace may use, or ask your platform team for a default class that selects your namespace".to_string(),
        ));
    }
    Ok(build)
}

/// What the caches know of the referenced ConfigMaps and Secrets.
struct ReferencedConfig {
    /// The hash of their versions.
    hash: String,
    /// Those missing and not optional.
    missing: Vec<ConfigRef>,
    /// The ConfigMaps that exist, by name, with their versions.
    config_maps: Vec<(String, ConfigVersion)>,
}

/// The snapshot of each existing ConfigMap `ms` references.
fn snapshots_of(ms: &Microservice, config_maps: &[(String, ConfigVersion)]) -> Vec<Snapshot> {
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    config_maps
        .iter()
        .map(|(source, version)| Snapshot {
            source: source.clone(),
            resource_version: version.resource_version.clone(),
            copy: config_snapshot::copy_name(name, source, &version.uid, &version.resource_version),
        })
        .collect()
}

/// The config hash of the referenced ConfigMaps and Secrets, the ones missing and the
/// ConfigMaps' versions.
fn config_state(refs: &[ConfigRef], lookup: ConfigLookup<'_>) -> ReferencedConfig {
    let mut versions: Vec<(&ConfigRef, Option<ConfigVersion>)> = Vec::new();
    let mut missing = Vec::new();
    let mut config_maps = Vec::new();
    for config in refs {
        match lookup(config) {
            ConfigState::Exists(version) => {
                if config.kind == ConfigKind::ConfigMap {
                    config_maps.push((config.name.clone(), version.clone()));
                }
                versions.push((config, Some(version)))
            }
            ConfigState::Missing => {
                versions.push((config, None));
                if !config.optional {
                    missing.push(config.clone());
                }
            }
            ConfigState::Unwatched => {}
        }
    }
    ReferencedConfig {
        hash: config_hash(&versions),
        missing,
        config_maps,
    }
}

/// A hash of the identity and version of every referenced ConfigMap and Secret: any edit
/// changes the resourceVersion, so the pod template changes and the pods roll. Values are
/// never read, so no secret material is copied anywhere. Empty when nothing is referenced.
pub fn config_hash(versions: &[(&ConfigRef, Option<ConfigVersion>)]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(name: &str, spec: &str) -> Microservice {
        let mut ms = Microservice::new(name, serde_saphyr::from_str(spec).unwrap());
        ms.metadata.namespace = Some("shop".into());
        ms
    }

    fn plan_among(target: &Microservice, all: &[&Microservice]) -> Plan {
        plan_with(target, all, None)
    }

    /// Plans `target` among `all`, no class, on the newest server, with `config`.
    fn plan_with(
        target: &Microservice,
        all: &[&Microservice],
        config: Option<ConfigLookup<'_>>,
    ) -> Plan {
        let capabilities = Capabilities::newest();
        plan(
            target,
            &Inputs {
                capabilities: &capabilities,
                classes: &[],
                microservices: all,
                config,
                namespace_labels: None,
                install: Default::default(),
            },
        )
    }

    fn plan_installed(target: &Microservice, install: Install) -> Plan {
        let capabilities = Capabilities::newest();
        plan(
            target,
            &Inputs {
                capabilities: &capabilities,
                classes: &[],
                microservices: &[target],
                config: None,
                namespace_labels: None,
                install,
            },
        )
    }

    #[test]
    fn the_install_refuses_what_it_cannot_serve_before_anything_is_applied() {
        let gated = ms(
            "users",
            "{image: a, ports: [{name: http, port: 80}], rollout: {gates: {http: {path: /healthz}}}}",
        );
        let plain = ms("users", "{image: a}");
        let no_gates = Install {
            http_gates: false,
            ..Install::default()
        };
        assert!(matches!(
            plan_installed(&gated, no_gates).outcome,
            Err(Refusal::GateUnavailable(_))
        ));
        assert!(plan_installed(&plain, no_gates).outcome.is_ok());
        let classes_required = Install {
            require_class: true,
            ..Install::default()
        };
        assert!(matches!(
            plan_installed(&plain, classes_required).outcome,
            Err(Refusal::ClassRequired(_))
        ));
        // Offline (render, diff) nothing is refused for the install.
        assert!(plan_installed(&gated, Install::default()).outcome.is_ok());
    }

    fn version(rv: &str) -> Option<ConfigVersion> {
        Some(ConfigVersion {
            uid: "u1".into(),
            resource_version: rv.into(),
        })
    }

    #[test]
    fn the_own_spec_is_validated_before_the_class() {
        // The class does not exist either, but the spec's own error comes first.
        let bad = ms("users", "{image: 'a b', class: gone}");
        let refusal = plan_among(&bad, &[]).outcome.unwrap_err();
        assert_eq!(refusal.reason(), "InvalidSpec", "{refusal}");
    }

    #[test]
    fn a_missing_backing_service_secret_holds_the_deployment_and_rolls_it_when_changed() {
        let class: MicroserviceClass = serde_saphyr::from_str(
            "{apiVersion: flotilla.dev/v1alpha1, kind: MicroserviceClass, metadata: {name: shop}, spec: {default: true, backingServices: {postgres: {secret: {name: '{microservice}-{service}-app'}}}}}",
        )
        .unwrap();
        let orders = ms(
            "orders",
            "{image: a, backingServices: {db: {type: postgres}, cache: {type: postgres, optional: true}}}",
        );
        let capabilities = Capabilities::newest();
        let plan_seeing = |secret: ConfigState| {
            let lookup = move |config: &ConfigRef| match config.name.as_str() {
                "orders-db-app" => secret.clone(),
                _ => ConfigState::Missing,
            };
            plan(
                &orders,
                &Inputs {
                    capabilities: &capabilities,
                    classes: &[&class],
                    microservices: &[&orders],
                    config: Some(&lookup),
                    namespace_labels: None,
                    install: Default::default(),
                },
            )
        };
        let held = plan_seeing(ConfigState::Missing);
        assert!(held.rollout_held());
        // The optional one is missing too, and holds nothing.
        assert_eq!(
            held.missing_backing,
            [MissingBackingService {
                name: "db".into(),
                type_: "postgres".into(),
                missing: Missing::Secret("orders-db-app".into())
            }]
        );
        assert!(
            held.missing_config.is_empty(),
            "reported as a backing service only"
        );
        assert_eq!(
            held.backing_secrets(),
            ["orders-cache-app", "orders-db-app"]
        );
        let children = held.outcome.unwrap().children;
        assert!(
            children
                .iter()
                .any(|c| c.held && c.kind.kind == "Deployment")
        );

        let hash = |plan: Plan| {
            let build = plan.outcome.unwrap();
            let deployment = build
                .children
                .iter()
                .find(|c| c.kind.kind == "Deployment")
                .unwrap();
            assert!(!deployment.held);
            deployment.object["spec"]["template"]["metadata"]["annotations"]
                [crate::api::labels::CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let first = hash(plan_seeing(
            version("1").map_or(ConfigState::Missing, ConfigState::Exists),
        ));
        let rotated = hash(plan_seeing(
            version("2").map_or(ConfigState::Missing, ConfigState::Exists),
        ));
        assert_ne!(first, rotated, "a rotated Secret rolls the pods");
    }

    #[test]
    fn a_missing_dependency_holds_the_deployment_only() {
        let orders = ms(
            "orders",
            "{image: a, ports: [{name: http, port: 80}], dependsOn: [{name: users}]}",
        );
        let held = plan_among(&orders, &[&orders]);
        assert!(held.rollout_held());
        let children = held.outcome.unwrap().children;
        let held_kinds: Vec<&str> = children
            .iter()
            .filter(|c| c.held)
            .map(|c| c.kind.kind)
            .collect();
        assert_eq!(held_kinds, ["Deployment"]);

        let users = ms("users", "{image: a, ports: [{name: http, port: 80}]}");
        let free = plan_among(&orders, &[&orders, &users]);
        assert!(!free.rollout_held());
        assert_eq!(free.unready_dependencies, ["shop/users"]);
        assert!(free.outcome.unwrap().children.iter().all(|c| !c.held));
    }

    #[test]
    fn config_hash_follows_config_versions() {
        let settings = ConfigRef {
            kind: ConfigKind::ConfigMap,
            name: "settings".into(),
            optional: false,
        };
        let first = config_hash(&[(&settings, version("10"))]);
        assert_eq!(first, config_hash(&[(&settings, version("10"))]));
        assert_ne!(first, config_hash(&[(&settings, version("11"))]));
        assert_ne!(first, config_hash(&[(&settings, None)]));
        assert_eq!(config_hash(&[]), "");
    }

    #[test]
    fn unwatched_config_neither_rolls_nor_is_missing() {
        let users = ms(
            "users",
            "{image: a, envFrom: [{configMapRef: {name: settings}}, {secretRef: {name: token}}]}",
        );
        let lookup = |config: &ConfigRef| match config.kind {
            ConfigKind::ConfigMap => ConfigState::Exists(version("1").unwrap()),
            ConfigKind::Secret => ConfigState::Unwatched,
        };
        let plan = plan_with(&users, &[], Some(&lookup));
        assert!(plan.missing_config.is_empty());
        let settings = ConfigRef {
            kind: ConfigKind::ConfigMap,
            name: "settings".into(),
            optional: false,
        };
        let hash = config_hash(&[(&settings, version("1"))]);
        let deployment: k8s_openapi::api::apps::v1::Deployment = plan
            .outcome
            .unwrap()
            .children
            .typed(&deployment::KIND)
            .unwrap();
        let annotations = deployment
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations;
        assert_eq!(
            annotations.unwrap()[crate::builders::labels::CONFIG_HASH_ANNOTATION],
            hash,
            "the hash covers the ConfigMap only"
        );
    }

    #[test]
    fn missing_config_is_reported_unless_optional() {
        let users = ms(
            "users",
            "{image: a, envFrom: [{configMapRef: {name: settings}}, {secretRef: {name: extra, optional: true}}]}",
        );
        let plan = plan_with(&users, &[], Some(&|_| ConfigState::Missing));
        let missing: Vec<&str> = plan
            .missing_config
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(missing, ["settings"]);
    }
}
