//! Which class governs a Microservice: the one it names, else the single default class,
//! else none (Flotilla's built-in defaults, no guardrails).

use kube::ResourceExt;

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
