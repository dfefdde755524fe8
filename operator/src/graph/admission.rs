//! Consent across namespaces: the target of a dependency decides who may call it from
//! another namespace, never the caller. A Microservice in namespace `evil` naming
//! `prod/payments` in `dependsOn` opens nothing and gets no address unless `payments`
//! admits callers from `evil`: by its own `network.allowFrom` (an entry whose
//! namespaceSelector matches the caller's namespace) or by its class's
//! `policy.callerNamespaces`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::api::labels::NAMESPACE_NAME_LABEL;
use crate::api::{Microservice, MicroserviceClass};
use crate::class::select;

use super::ObjectKey;

/// The labels of a namespace by name; None when it is not known.
pub type NamespaceLabels<'a> = &'a dyn Fn(&str) -> Option<BTreeMap<String, String>>;

/// What decides whether a target admits a caller from another namespace.
#[derive(Clone, Copy, Default)]
pub struct Admission<'a> {
    /// Every class, to find the target's.
    pub classes: &'a [&'a MicroserviceClass],
    /// Namespace labels from the cluster. Without them (offline, or an operator watching
    /// one namespace) a namespace is known by its name label only, which the API server
    /// sets on every namespace from 1.21.
    pub namespace_labels: Option<NamespaceLabels<'a>>,
}

impl Admission<'_> {
    /// Ok when `target` admits callers from `caller_namespace`; otherwise why not.
    pub fn admits(&self, target: &Microservice, caller_namespace: &str) -> Result<(), String> {
        let target_key = ObjectKey::of(target);
        if target_key.namespace == caller_namespace {
            return Ok(());
        }
        let labels = self.labels_of(caller_namespace);
        let class = select(target.spec.class.as_deref(), self.classes.iter().copied())
            .ok()
            .flatten();
        // The class may narrow what a Microservice's own allowFrom reaches.
        let within_class = class
            .and_then(|class| class.spec.policy.as_ref())
            .and_then(|policy| policy.allow_from_namespaces.as_ref())
            .is_none_or(|selector| matches(selector, &labels));
        let by_spec = within_class
            && target
                .spec
                .network
                .iter()
                .flat_map(|n| &n.allow_from)
                .any(|peer| {
                    peer.namespace_selector
                        .as_ref()
                        .is_some_and(|selector| matches(selector, &labels))
                });
        let by_class = class
            .and_then(|class| class.spec.policy.as_ref())
            .and_then(|policy| policy.caller_namespaces.as_ref())
            .is_some_and(|selector| matches(selector, &labels));
        if by_spec || by_class {
            return Ok(());
        }
        let class_part = match class {
            Some(class) => format!(
                " nor its MicroserviceClass {}'s policy.callerNamespaces",
                class.name_any()
            ),
            None => String::new(),
        };
        Err(format!(
            "{target_key} does not admit callers from namespace {caller_namespace}: neither its spec.network.allowFrom{class_part} selects that namespace"
        ))
    }

    fn labels_of(&self, namespace: &str) -> BTreeMap<String, String> {
        labels_of(self.namespace_labels, namespace)
    }
}

/// The labels of `namespace` from `lookup`; without one (offline, or an operator watching
/// one namespace) its name label only, which the API server sets on every namespace from
/// 1.21.
pub fn labels_of(lookup: Option<NamespaceLabels<'_>>, namespace: &str) -> BTreeMap<String, String> {
    let mut labels = lookup
        .and_then(|lookup| lookup(namespace))
        .unwrap_or_default();
    if lookup.is_none() {
        labels
            .entry(NAMESPACE_NAME_LABEL.to_string())
            .or_insert_with(|| namespace.to_string());
    }
    labels
}

/// Whether `selector` selects `labels`; an invalid selector selects nothing.
fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    Selector::try_from(selector.clone()).is_ok_and(|selector| selector.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(namespace: &str, name: &str, spec: &str) -> Microservice {
        let mut ms = Microservice::new(name, serde_saphyr::from_str(spec).unwrap());
        ms.metadata.namespace = Some(namespace.into());
        ms
    }

    fn class(name: &str, spec: &str) -> MicroserviceClass {
        MicroserviceClass::new(name, serde_saphyr::from_str(spec).unwrap())
    }

    #[test]
    fn the_same_namespace_needs_no_consent() {
        let payments = ms("prod", "payments", "{image: a}");
        assert!(Admission::default().admits(&payments, "prod").is_ok());
    }

    #[test]
    fn another_namespace_needs_the_target_s_consent() {
        let closed = ms("prod", "payments", "{image: a}");
        let refusal = Admission::default().admits(&closed, "evil").unwrap_err();
        assert!(
            refusal.contains("prod/payments") && refusal.contains("namespace evil"),
            "{refusal}"
        );
        let open_to_web = ms(
            "prod",
            "payments",
            "{image: a, network: {allowFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: web}}}]}}",
        );
        assert!(Admission::default().admits(&open_to_web, "web").is_ok());
        assert!(Admission::default().admits(&open_to_web, "evil").is_err());
        // A pod selector alone means this namespace's pods: no consent across namespaces.
        let pods_only = ms(
            "prod",
            "payments",
            "{image: a, network: {allowFrom: [{podSelector: {matchLabels: {app: x}}}]}}",
        );
        assert!(Admission::default().admits(&pods_only, "web").is_err());
    }

    #[test]
    fn namespace_labels_from_the_cluster_are_used_when_known() {
        let by_team = ms(
            "prod",
            "payments",
            "{image: a, network: {allowFrom: [{namespaceSelector: {matchLabels: {team: shop}}}]}}",
        );
        let lookup = |namespace: &str| {
            (namespace == "web").then(|| BTreeMap::from([("team".to_string(), "shop".to_string())]))
        };
        let admission = Admission {
            classes: &[],
            namespace_labels: Some(&lookup),
        };
        assert!(admission.admits(&by_team, "web").is_ok());
        assert!(admission.admits(&by_team, "evil").is_err());
    }

    #[test]
    fn the_target_s_class_may_admit_callers() {
        let golden = class(
            "golden",
            "{policy: {callerNamespaces: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [web, api]}]}}}",
        );
        let payments = ms("prod", "payments", "{image: a, class: golden}");
        let admission = Admission {
            classes: &[&golden],
            namespace_labels: None,
        };
        assert!(admission.admits(&payments, "api").is_ok());
        let refusal = admission.admits(&payments, "evil").unwrap_err();
        assert!(refusal.contains("MicroserviceClass golden"), "{refusal}");
        // The caller's own class has no say.
        let callers_class = class(
            "open",
            "{policy: {callerNamespaces: {matchLabels: {kubernetes.io/metadata.name: evil}}}}",
        );
        let admission = Admission {
            classes: &[&callers_class],
            namespace_labels: None,
        };
        assert!(
            admission
                .admits(&ms("prod", "payments", "{image: a}"), "evil")
                .is_err()
        );
    }

    #[test]
    fn the_target_s_class_narrows_its_own_allow_from() {
        let tenants = class(
            "tenants",
            "{policy: {allowFromNamespaces: {matchLabels: {tenant: shop}}}}",
        );
        let open_to_all = ms(
            "prod",
            "payments",
            "{image: a, class: tenants, network: {allowFrom: [{namespaceSelector: {}}]}}",
        );
        let lookup = |namespace: &str| {
            Some(BTreeMap::from([(
                "tenant".to_string(),
                if namespace == "web" { "shop" } else { "other" }.to_string(),
            )]))
        };
        let admission = Admission {
            classes: &[&tenants],
            namespace_labels: Some(&lookup),
        };
        assert!(admission.admits(&open_to_all, "web").is_ok());
        assert!(admission.admits(&open_to_all, "evil").is_err());
    }
}
