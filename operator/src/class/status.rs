//! A class's status, computed from the classes and the Microservices the operator sees.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use super::class_name;
use super::selection::default_classes;
use super::validate::validate_class_object;
use crate::api::{Microservice, MicroserviceClass, MicroserviceClassStatus};

pub const ACCEPTED: &str = "Accepted";

/// The Microservices each class governs, by class name, found in one pass: a class's
/// status needs only its own users, and picking the class of every Microservice once per
/// class would repeat the work for each class.
pub fn users_by_class<'a>(
    classes: &[&MicroserviceClass],
    microservices: impl IntoIterator<Item = &'a Microservice>,
) -> BTreeMap<String, Vec<&'a Microservice>> {
    let mut users: BTreeMap<String, Vec<&'a Microservice>> = BTreeMap::new();
    for ms in microservices {
        // The namespace by its name label: the class status writer has no namespace
        // labels, and counts a user of a class bound by other labels under that class.
        let namespace = ms.metadata.namespace.clone().unwrap_or_default();
        let labels = BTreeMap::from([(
            crate::api::labels::NAMESPACE_NAME_LABEL.to_string(),
            namespace,
        )]);
        if let Some(name) = class_name(ms, &labels, classes.iter().copied()) {
            users.entry(name).or_default().push(ms);
        }
    }
    users
}

/// The status of `class`: its users (the Microservices it governs, from
/// [`users_by_class`]) and how many of them its policy refuses (their `Ready` reason is
/// `PolicyViolation`), and whether it is usable at all. `lastTransitionTime` is kept
/// while the condition holds, so an unchanged world gives an equal status and no write.
pub fn compute(
    class: &MicroserviceClass,
    classes: &[&MicroserviceClass],
    users: &[&Microservice],
    now: Time,
) -> MicroserviceClassStatus {
    let name = class.name_any();
    let violations = users
        .iter()
        .filter(|ms| {
            ms.status
                .as_ref()
                .and_then(|s| s.condition("Ready"))
                .is_some_and(|c| c.status == "False" && c.reason == "PolicyViolation")
        })
        .count();

    let other_defaults: Vec<String> = default_classes(classes.iter().copied())
        .into_iter()
        .map(ResourceExt::name_any)
        .filter(|other| *other != name)
        .collect();
    let (status, reason, message) = if let Err(error) = validate_class_object(class) {
        ("False", "InvalidSpec", error.to_string())
    } else if class.spec.default && !other_defaults.is_empty() {
        (
            "False",
            "MultipleDefaults",
            format!(
                "also marked default: {}; Microservices naming no class are not reconciled until one default is left",
                other_defaults.join(", ")
            ),
        )
    } else {
        ("True", "Accepted", "the class is in use".to_string())
    };
    let previous = class.status.clone().unwrap_or_default();
    let last_transition_time = previous
        .conditions
        .iter()
        .find(|c| c.type_ == ACCEPTED && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(now);
    MicroserviceClassStatus {
        observed_generation: class.metadata.generation,
        conditions: vec![Condition {
            type_: ACCEPTED.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message,
            observed_generation: class.metadata.generation,
            last_transition_time,
        }],
        network_mode: Some(class.spec.network_mode()),
        services: users.len() as i32,
        violations: violations as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NetworkMode;

    fn class(name: &str, spec: &str) -> MicroserviceClass {
        let mut class: MicroserviceClass = serde_saphyr::from_str(&format!(
            "apiVersion: flotilla.dev/v1alpha1\nkind: MicroserviceClass\nmetadata: {{name: {name}, generation: 3}}\nspec: {spec}"
        ))
        .unwrap();
        class.metadata.name = Some(name.into());
        class
    }

    fn ms(name: &str, class: Option<&str>, ready_reason: Option<&str>) -> Microservice {
        let mut ms = Microservice::new(name, Default::default());
        ms.metadata.namespace = Some("shop".into());
        ms.spec.image = "a".into();
        ms.spec.class = class.map(Into::into);
        if let Some(reason) = ready_reason {
            ms.status = Some(crate::api::MicroserviceStatus {
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: "False".into(),
                    reason: reason.into(),
                    message: String::new(),
                    observed_generation: None,
                    last_transition_time: now(),
                }],
                ..Default::default()
            });
        }
        ms
    }

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000).unwrap())
    }

    #[test]
    fn counts_users_and_violations() {
        let golden = class(
            "golden",
            "{default: true, policy: {networkMode: permissive}}",
        );
        let other = class("other", "{}");
        let classes = [&golden, &other];
        let all = [
            ms("a", None, None),
            ms("b", Some("golden"), Some("PolicyViolation")),
            ms("c", Some("other"), Some("PolicyViolation")),
            ms("d", Some("golden"), Some("ImagePullBackOff")),
        ];
        let users = users_by_class(&classes, all.iter());
        let status = compute(&golden, &classes, &users["golden"], now());
        assert_eq!((status.services, status.violations), (3, 1));
        assert_eq!(status.network_mode, Some(NetworkMode::Permissive));
        assert_eq!(status.conditions[0].status, "True");
        assert_eq!(status.observed_generation, Some(3));
        let other_status = compute(&other, &classes, &users["other"], now());
        assert_eq!((other_status.services, other_status.violations), (1, 1));
    }

    #[test]
    fn two_defaults_are_reported_by_both_and_govern_nothing() {
        let a = class("a", "{default: true}");
        let b = class("b", "{default: true}");
        let classes = [&a, &b];
        let all = [ms("x", None, None)];
        let users = users_by_class(&classes, all.iter());
        assert!(users.is_empty(), "an ambiguous default governs nothing");
        for (this, other) in [(&a, "b"), (&b, "a")] {
            let status = compute(this, &classes, &[], now());
            let accepted = &status.conditions[0];
            assert_eq!(
                (accepted.status.as_str(), accepted.reason.as_str()),
                ("False", "MultipleDefaults")
            );
            assert!(accepted.message.contains(other), "{}", accepted.message);
            assert_eq!(status.services, 0);
        }
    }

    #[test]
    fn invalid_class_is_not_accepted() {
        let bad = class("bad", "{defaults: {securityProfile: baseline}}");
        let status = compute(&bad, &[&bad], &[], now());
        assert_eq!(status.conditions[0].reason, "InvalidSpec");
        assert!(
            status.conditions[0]
                .message
                .contains("spec.defaults.securityProfile")
        );
    }

    #[test]
    fn unchanged_world_keeps_the_transition_time() {
        let mut golden = class("golden", "{}");
        let first = compute(&golden, &[&golden.clone()], &[], now());
        golden.status = Some(first.clone());
        let later = Time(jiff::Timestamp::from_second(1_900_000_000).unwrap());
        let second = compute(&golden, &[&golden.clone()], &[], later);
        assert_eq!(first, second);
    }
}
