//! The read model of the service graph: what each Microservice looks like to someone asking
//! "what calls what, and what is broken right now?". Built by pure functions from the
//! Microservices and classes (live, or from files), so `flotilla graph` and `flotilla
//! dashboard` show the same thing from one code path.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::api::{MessageSubject, Microservice, RolloutPhase, RolloutStrategy};
use crate::graph::{Admission, ObjectKey, backing_targets, dependency_keys};
use crate::rollout::machine::REASON_WAITING_FOR_DEPENDENCY;
use crate::status::{DEGRADED, PROGRESSING, READY, REASON_DEPENDENCY_NOT_FOUND, REASON_PAUSED};

/// One word for a service's state. Colour on the page, but always said in words too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Health {
    /// Ready=True for the current generation.
    Ready,
    /// On its way: pods starting, a release under way, a status not yet current.
    Progressing,
    /// The operator says Degraded=True: the cause is Ready's message.
    Degraded,
    /// Deliberately not moving: reconciliation paused, a release paused at a step, or
    /// waiting for a dependency.
    Held,
    /// The operator has not reported on it (yet), or it was read from files.
    Unknown,
    /// Named in a `dependsOn` but not there.
    Missing,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ready => "Ready",
            Health::Progressing => "Progressing",
            Health::Degraded => "Degraded",
            Health::Held => "Held",
            Health::Unknown => "Unknown",
            Health::Missing => "Missing",
        }
    }
}

/// The release of new pods under way, as its status tells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseView {
    pub strategy: &'static str,
    pub phase: &'static str,
    pub step: i32,
    pub steps: i32,
    pub weight: i32,
    pub stable_image: Option<String>,
    pub canary_image: Option<String>,
    /// Short text: `canary step 1/2 25%`, `canary step 1/2 25%, paused`, `rolling`,
    /// `promoting`.
    pub text: String,
}

/// A backing service of a Microservice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackingView {
    pub name: String,
    pub type_: String,
    /// The Microservice running it, when its class says one does.
    pub run_by: Option<ObjectKey>,
}

/// One Microservice, as the graph shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub key: ObjectKey,
    pub health: Health,
    /// `Some(ready)` when the operator reported on it; None from files.
    pub ready: Option<bool>,
    /// Ready's reason and message: the root cause when it is failing.
    pub reason: String,
    pub message: String,
    /// The class in effect, as its status says (else as its spec names it).
    pub class: Option<String>,
    /// The image the pods run (the status's), else the spec's.
    pub image: String,
    pub ready_replicas: i32,
    pub desired_replicas: i32,
    pub release: Option<ReleaseView>,
    pub dependencies: BTreeSet<ObjectKey>,
    pub backing: Vec<BackingView>,
    /// Subjects it publishes to, as `(backing service, subject)`.
    pub publishes: Vec<(String, String)>,
    /// Subjects (or patterns) it consumes, as `(backing service, subject)`.
    pub consumes: Vec<(String, String)>,
}

impl ServiceView {
    pub fn of(ms: &Microservice, admission: &Admission<'_>) -> Self {
        let status = ms.status.as_ref();
        let ready = status.and_then(|s| s.condition(READY));
        let run_by = backing_targets(ms, admission);
        let subjects = |list: &[MessageSubject]| {
            list.iter()
                .map(|s| (s.backing_service.clone(), s.subject.clone()))
                .collect()
        };
        ServiceView {
            key: ObjectKey::of(ms),
            health: health(ms),
            ready: status.map(|s| s.is_ready()),
            reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
            message: ready.map(|c| c.message.clone()).unwrap_or_default(),
            class: status
                .and_then(|s| s.class_name.clone())
                .or_else(|| ms.spec.class.clone()),
            image: status
                .and_then(|s| s.image.clone())
                .unwrap_or_else(|| ms.spec.image.clone()),
            ready_replicas: status.map_or(0, |s| s.ready_replicas),
            desired_replicas: status.map_or(0, |s| s.replicas),
            release: release_under_way(ms),
            dependencies: dependency_keys(ms),
            backing: ms
                .spec
                .backing_services
                .iter()
                .map(|(name, service)| BackingView {
                    name: name.clone(),
                    type_: service.type_.clone(),
                    run_by: run_by
                        .iter()
                        .find(|t| &t.name == name)
                        .map(|t| t.key.clone()),
                })
                .collect(),
            publishes: subjects(&ms.spec.publishes),
            consumes: subjects(&ms.spec.consumes),
        }
    }

    /// Where a backing service of this one lives, to match publishers with consumers:
    /// the Microservice running it, else its type in this namespace.
    pub fn broker(&self, name: &str) -> Option<String> {
        let backing = self.backing.iter().find(|b| b.name == name)?;
        Some(match &backing.run_by {
            Some(key) => key.to_string(),
            None => format!("{}/{}", self.key.namespace, backing.type_),
        })
    }
}

/// The state of `ms` in one word, from the conditions the operator wrote: Degraded is
/// its verdict, Held a pause or a wait it reported, Ready only for the current
/// generation.
pub fn health(ms: &Microservice) -> Health {
    let Some(status) = ms.status.as_ref() else {
        return Health::Unknown;
    };
    let Some(ready) = status.condition(READY) else {
        return Health::Unknown;
    };
    let is = |type_: &str, value: &str| status.condition(type_).is_some_and(|c| c.status == value);
    let reason_of = |type_: &str| status.condition(type_).map(|c| c.reason.as_str());
    let current = status.observed_generation.is_some()
        && status.observed_generation == ms.metadata.generation;
    let paused_release = status
        .rollout
        .as_ref()
        .and_then(|r| r.phase)
        .is_some_and(|p| p == RolloutPhase::Paused);
    if is(DEGRADED, "True") {
        Health::Degraded
    } else if ready.reason == REASON_PAUSED
        || paused_release
        || [REASON_WAITING_FOR_DEPENDENCY, REASON_DEPENDENCY_NOT_FOUND]
            .contains(&reason_of(PROGRESSING).unwrap_or_default())
    {
        Health::Held
    } else if ready.status == "True" && current {
        Health::Ready
    } else {
        Health::Progressing
    }
}

/// The release under way, if any.
pub fn release_under_way(ms: &Microservice) -> Option<ReleaseView> {
    let rollout = ms.status.as_ref()?.rollout.as_ref()?;
    let phase = rollout.phase?;
    let phase_name = match phase {
        RolloutPhase::Progressing => "Progressing",
        RolloutPhase::Paused => "Paused",
        RolloutPhase::Promoting => "Promoting",
        _ => return None,
    };
    let canary = rollout.strategy == Some(RolloutStrategy::Canary);
    let (step, steps, weight) = (
        rollout.step.unwrap_or(0),
        rollout.steps.unwrap_or(0),
        rollout.weight.unwrap_or(0),
    );
    let text = match phase {
        RolloutPhase::Promoting => "promoting".to_string(),
        _ if canary => format!(
            "canary step {step}/{steps} {weight}%{}",
            if phase == RolloutPhase::Paused {
                ", paused"
            } else {
                ""
            }
        ),
        _ => "rolling".to_string(),
    };
    Some(ReleaseView {
        strategy: if canary { "canary" } else { "rolling" },
        phase: phase_name,
        step,
        steps,
        weight,
        stable_image: rollout.stable_image.clone(),
        canary_image: rollout.canary_image.clone(),
        text,
    })
}

/// How a `dependsOn` edge stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EdgeAdmission {
    /// Within one namespace: nothing to consent to.
    Local,
    /// Across namespaces, admitted by the callee (its allowFrom or its class).
    Admitted,
    /// Across namespaces, not admitted: no address, no traffic.
    Refused,
    /// The callee does not exist.
    Missing,
}

/// What an edge stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// A `dependsOn` entry: the caller calls the callee over HTTP.
    DependsOn,
    /// A backing service (e.g. a message broker) the class binds to the Microservice
    /// running it: `name (type)` as the user declares it.
    Backing(String),
}

/// One edge, caller to callee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeView {
    pub from: ObjectKey,
    pub to: ObjectKey,
    pub kind: EdgeKind,
    pub admission: EdgeAdmission,
    /// Why refused or missing.
    pub message: String,
}

/// The whole graph: every service, every `dependsOn` edge with the callee's consent, each
/// backing service run by a Microservice, and the callees named but missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphView {
    pub services: Vec<ServiceView>,
    pub edges: Vec<EdgeView>,
    /// Named in a `dependsOn`, not there.
    pub missing: BTreeSet<ObjectKey>,
}

impl GraphView {
    /// The graph of `microservices`; cross-namespace edges judged by `admission`.
    pub fn of<'a>(
        microservices: impl IntoIterator<Item = &'a Microservice>,
        admission: &Admission<'_>,
    ) -> Self {
        let by_key: BTreeMap<ObjectKey, &Microservice> = microservices
            .into_iter()
            .map(|ms| (ObjectKey::of(ms), ms))
            .collect();
        let services: Vec<ServiceView> = by_key
            .values()
            .map(|ms| ServiceView::of(ms, admission))
            .collect();
        let mut edges = Vec::new();
        let mut missing = BTreeSet::new();
        for service in &services {
            for to in &service.dependencies {
                let (admission, message) = match by_key.get(to) {
                    None => {
                        missing.insert(to.clone());
                        (
                            EdgeAdmission::Missing,
                            format!("Microservice {to} not found"),
                        )
                    }
                    Some(_) if to.namespace == service.key.namespace => {
                        (EdgeAdmission::Local, String::new())
                    }
                    Some(target) => match admission.admits(target, &service.key.namespace) {
                        Ok(()) => (EdgeAdmission::Admitted, String::new()),
                        Err(reason) => (EdgeAdmission::Refused, reason),
                    },
                };
                edges.push(EdgeView {
                    from: service.key.clone(),
                    to: to.clone(),
                    kind: EdgeKind::DependsOn,
                    admission,
                    message,
                });
            }
            // The class bound these, consent included (`backing_targets`).
            for backing in &service.backing {
                let Some(to) = &backing.run_by else { continue };
                edges.push(EdgeView {
                    from: service.key.clone(),
                    to: to.clone(),
                    kind: EdgeKind::Backing(format!("{} ({})", backing.name, backing.type_)),
                    admission: if to.namespace == service.key.namespace {
                        EdgeAdmission::Local
                    } else {
                        EdgeAdmission::Admitted
                    },
                    message: String::new(),
                });
            }
        }
        GraphView {
            services,
            edges,
            missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(yaml: &str) -> Microservice {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn with_status(status: &str) -> Microservice {
        ms(&format!(
            "{{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {{name: web, namespace: shop, generation: 2}}, spec: {{image: a}}, status: {status}}}"
        ))
    }

    #[test]
    fn health_follows_the_operators_conditions() {
        let cases = [
            ("{}", Health::Unknown),
            (
                "{observedGeneration: 2, conditions: [{lastTransitionTime: '2026-12-08T00:00:00Z', type: Ready, status: 'True', reason: PodsReady, message: ok}]}",
                Health::Ready,
            ),
            (
                "{observedGeneration: 1, conditions: [{lastTransitionTime: '2026-12-08T00:00:00Z', type: Ready, status: 'True', reason: PodsReady, message: ok}]}",
                Health::Progressing,
            ),
            (
                "{observedGeneration: 2, conditions: [{lastTransitionTime: '2026-12-08T00:00:00Z', type: Ready, status: 'False', reason: PodsNotReady, message: 'pod web-1: ImagePullBackOff'}, {lastTransitionTime: '2026-12-08T00:00:00Z', type: Degraded, status: 'True', reason: PodsFailing, message: x}]}",
                Health::Degraded,
            ),
            (
                "{observedGeneration: 2, conditions: [{lastTransitionTime: '2026-12-08T00:00:00Z', type: Ready, status: 'True', reason: PodsReady, message: ok}], rollout: {strategy: canary, phase: Paused, step: 1, steps: 2, weight: 25}}",
                Health::Held,
            ),
            (
                "{observedGeneration: 2, conditions: [{lastTransitionTime: '2026-12-08T00:00:00Z', type: Ready, status: 'True', reason: PodsReady, message: ok}, {lastTransitionTime: '2026-12-08T00:00:00Z', type: Progressing, status: 'True', reason: WaitingForDependency, message: users}]}",
                Health::Held,
            ),
            (
                "{observedGeneration: 2, conditions: [{lastTransitionTime: '2026-12-08T00:00:00Z', type: Ready, status: 'False', reason: Paused, message: paused}]}",
                Health::Held,
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(health(&with_status(status)), expected, "{status}");
        }
    }

    #[test]
    fn a_canary_release_is_described_with_both_images() {
        let service = with_status(
            "{rollout: {strategy: canary, phase: Progressing, step: 1, steps: 3, weight: 25, stableImage: 'a:1', canaryImage: 'a:2'}}",
        );
        let release = release_under_way(&service).unwrap();
        assert_eq!(release.text, "canary step 1/3 25%");
        assert_eq!(release.stable_image.as_deref(), Some("a:1"));
        assert_eq!(release.canary_image.as_deref(), Some("a:2"));
        assert!(release_under_way(&with_status("{rollout: {phase: Healthy}}")).is_none());
    }

    #[test]
    fn edges_say_whether_the_callee_consents_or_is_missing() {
        let services = [
            ms(
                "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: web, namespace: shop}, spec: {image: a, dependsOn: [{name: users}, {name: pay, namespace: bank}, {name: ledger, namespace: bank}, {name: ghost}]}}",
            ),
            ms(
                "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: users, namespace: shop}, spec: {image: a}}",
            ),
            ms(
                "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: pay, namespace: bank}, spec: {image: a, network: {allowFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}}]}}}",
            ),
            ms(
                "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: ledger, namespace: bank}, spec: {image: a}}",
            ),
        ];
        let graph = GraphView::of(&services, &Admission::default());
        let admission_of = |to: &str| {
            graph
                .edges
                .iter()
                .find(|e| e.to.to_string() == to)
                .map(|e| e.admission)
        };
        assert_eq!(admission_of("shop/users"), Some(EdgeAdmission::Local));
        assert_eq!(admission_of("bank/pay"), Some(EdgeAdmission::Admitted));
        assert_eq!(admission_of("bank/ledger"), Some(EdgeAdmission::Refused));
        assert_eq!(admission_of("shop/ghost"), Some(EdgeAdmission::Missing));
        assert_eq!(
            graph.missing,
            BTreeSet::from([ObjectKey::new("shop", "ghost")])
        );
        let refused = graph.edges.iter().find(|e| e.to.name == "ledger").unwrap();
        assert!(
            refused
                .message
                .contains("does not admit callers from namespace shop"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn a_broker_run_as_a_microservice_is_an_edge_of_its_users() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/broker.yaml"
        ))
        .unwrap();
        let input = crate::render::parse_input(&[text]).unwrap();
        let classes: Vec<&crate::api::MicroserviceClass> = input.classes.iter().collect();
        let admission = Admission {
            classes: &classes,
            namespace_labels: None,
        };
        let graph = GraphView::of(&input.microservices, &admission);
        let backing: Vec<String> = graph
            .edges
            .iter()
            .filter_map(|e| match &e.kind {
                EdgeKind::Backing(label) => Some(format!("{} -> {}: {label}", e.from, e.to)),
                EdgeKind::DependsOn => None,
            })
            .collect();
        assert!(
            backing.contains(&"shop/orders -> shop/nats: events (nats)".to_string()),
            "{backing:?}"
        );
    }
}
