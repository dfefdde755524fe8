//! Which class governs a Microservice: the one it names, else the single default class,
//! else none (Flotilla's built-in defaults, no guardrails). A class bound to namespaces
//! (`spec.namespaceSelector`) governs only Microservices of those.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::api::MicroserviceClass;

/// A class that cannot be settled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    #[error("spec.class: MicroserviceClass {0} does not exist")]
    NotFound(String),
    #[error(
        "spec.class is unset and {} MicroserviceClasses are marked default ({}): name one in spec.class, or leave a single default",
        .0.len(),
        .0.join(", ")
    )]
    AmbiguousDefault(Vec<String>),
    #[error(
        "spec.class: MicroserviceClass {class} is not for namespace {namespace}: its spec.namespaceSelector does not select it; name a class your platform team allows here"
    )]
    NotAllowed { class: String, namespace: String },
}

/// Whether `class` may be used by Microservices of a namespace with these labels.
pub fn admits_namespace(class: &MicroserviceClass, labels: &BTreeMap<String, String>) -> bool {
    class
        .spec
        .namespace_selector
        .as_ref()
        .is_none_or(|selector| {
            Selector::try_from(selector.clone()).is_ok_and(|selector| selector.matches(labels))
        })
}

/// [`select`] for a Microservice of `namespace` (with `labels`): a named class must
/// admit the namespace, and the default is the one default class that does.
pub fn select_in<'a>(
    wanted: Option<&str>,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    classes: impl IntoIterator<Item = &'a MicroserviceClass>,
) -> Result<Option<&'a MicroserviceClass>, ClassError> {
    let classes: Vec<&MicroserviceClass> = classes.into_iter().collect();
    if wanted.is_some() {
        let class = select(wanted, classes)?;
        return match class {
            Some(class) if !admits_namespace(class, labels) => Err(ClassError::NotAllowed {
                class: class.name_any(),
                namespace: namespace.to_string(),
            }),
            class => Ok(class),
        };
    }
    select(
        None,
        classes
            .into_iter()
            .filter(|class| !class.spec.default || admits_namespace(class, labels)),
    )
}

/// The class named `wanted`, or the default class when `wanted` is None.
pub fn select<'a>(
    wanted: Option<&str>,
    classes: impl IntoIterator<Item = &'a MicroserviceClass>,
) -> Result<Option<&'a MicroserviceClass>, ClassError> {
    let classes: Vec<&MicroserviceClass> = classes.into_iter().collect();
    if let Some(wanted) = wanted {
        return classes
            .into_iter()
            .find(|class| class.name_any() == wanted)
            .map(Some)
            .ok_or_else(|| ClassError::NotFound(wanted.to_string()));
    }
    let defaults = default_classes(classes.iter().copied());
    match defaults.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some(*only)),
        several => Err(ClassError::AmbiguousDefault(
            several.iter().map(|c| c.name_any()).collect(),
        )),
    }
}

/// The classes marked default, sorted by name. More than one is a conflict that every
/// one of them reports, and that leaves Microservices naming no class unreconciled: a
/// guess could apply the wrong guardrails.
pub fn default_classes<'a>(
    classes: impl IntoIterator<Item = &'a MicroserviceClass>,
) -> Vec<&'a MicroserviceClass> {
    let mut defaults: Vec<&MicroserviceClass> =
        classes.into_iter().filter(|c| c.spec.default).collect();
    defaults.sort_by_key(|c| c.name_any());
    defaults
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, default: bool) -> MicroserviceClass {
        let mut class = MicroserviceClass::new(name, Default::default());
        class.spec.default = default;
        class
    }

    fn picked(
        wanted: Option<&str>,
        classes: &[MicroserviceClass],
    ) -> Result<Option<String>, ClassError> {
        select(wanted, classes).map(|c| c.map(ResourceExt::name_any))
    }

    #[test]
    fn a_named_class_wins_over_the_default() {
        let classes = [class("golden", true), class("batch", false)];
        assert_eq!(picked(Some("batch"), &classes), Ok(Some("batch".into())));
        assert_eq!(picked(None, &classes), Ok(Some("golden".into())));
    }

    /// A class bound to the namespaces labelled `team: <team>`.
    fn for_team(name: &str, default: bool, team: &str) -> MicroserviceClass {
        let mut class = class(name, default);
        class.spec.namespace_selector = Some(
            serde_json::from_value(serde_json::json!({"matchLabels": {"team": team}})).unwrap(),
        );
        class
    }

    fn picked_in(
        wanted: Option<&str>,
        team: &str,
        classes: &[MicroserviceClass],
    ) -> Result<Option<String>, ClassError> {
        let labels = BTreeMap::from([("team".to_string(), team.to_string())]);
        select_in(wanted, "ns", &labels, classes).map(|c| c.map(ResourceExt::name_any))
    }

    #[test]
    fn a_class_bound_to_namespaces_serves_only_those() {
        let classes = [
            for_team("payments-golden", true, "payments"),
            for_team("web-golden", true, "web"),
            class("shared", false),
        ];
        // Each team's default is its own; two defaults are no longer ambiguous.
        assert_eq!(
            picked_in(None, "payments", &classes),
            Ok(Some("payments-golden".into()))
        );
        assert_eq!(
            picked_in(None, "web", &classes),
            Ok(Some("web-golden".into()))
        );
        assert_eq!(picked_in(None, "search", &classes), Ok(None));
        // Another team's class, named: refused, naming the class and the namespace.
        let refused = picked_in(Some("payments-golden"), "web", &classes).unwrap_err();
        assert_eq!(
            refused,
            ClassError::NotAllowed {
                class: "payments-golden".into(),
                namespace: "ns".into()
            }
        );
        assert!(refused.to_string().starts_with("spec.class: "), "{refused}");
        // An unbound class serves every namespace.
        assert_eq!(
            picked_in(Some("shared"), "web", &classes),
            Ok(Some("shared".into()))
        );
    }

    #[test]
    fn no_default_means_no_class() {
        assert_eq!(picked(None, &[class("batch", false)]), Ok(None));
        assert_eq!(picked(None, &[]), Ok(None));
    }

    #[test]
    fn a_missing_class_is_not_replaced_by_the_default() {
        let error = picked(Some("gone"), &[class("golden", true)]).unwrap_err();
        assert_eq!(error, ClassError::NotFound("gone".into()));
        assert_eq!(
            error.to_string(),
            "spec.class: MicroserviceClass gone does not exist"
        );
    }

    #[test]
    fn two_defaults_settle_nothing_but_named_classes_still_work() {
        let classes = [class("b", true), class("a", true), class("c", false)];
        let error = picked(None, &classes).unwrap_err();
        assert_eq!(
            error,
            ClassError::AmbiguousDefault(vec!["a".into(), "b".into()])
        );
        assert!(
            error
                .to_string()
                .contains("2 MicroserviceClasses are marked default (a, b)")
        );
        assert_eq!(picked(Some("a"), &classes), Ok(Some("a".into())));
    }
}
