//! A decision applied to the planned children: the stable Deployment's template and
//! pod count, and the canary Deployment.

use serde_json::{Value, json};

use crate::builders::{Child, Children, deployment, labels};

use super::machine::{Replicas, Template, Workloads};

/// The canary Deployment's name for a Microservice.
pub fn canary_name(name: &str) -> String {
    format!("{name}-canary")
}

/// Adjusts `children` (as planned from the spec) to `workloads`. Without a Deployment
/// among them (none planned) nothing changes.
pub fn apply(children: &mut Children, workloads: &Workloads) {
    let Some(stable) = children.get_mut(&deployment::KIND) else {
        return;
    };
    let desired = stable.object.clone();
    if let Template::Stable(template) = &workloads.stable_template {
        stable.object["spec"]["template"] = template.clone();
    }
    if let Replicas::Fixed(count) = workloads.stable_replicas {
        stable.object["spec"]["replicas"] = json!(count);
    }
    if let Some(count) = workloads.canary_replicas {
        let held = stable.held;
        let mut canary = Child::new(&deployment::KIND, canary_object(desired, count));
        canary.held = held;
        children.insert_after_kind(canary);
    }
}

/// The canary Deployment: the desired Deployment under its own name, its pods (and its
/// selector) labelled `flotilla.dev/track: canary`, so that the Service, which selects
/// both tracks, spreads requests over its pods and the stable ones.
pub fn canary_object(mut desired: Value, replicas: i32) -> Value {
    let name = desired["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    desired["metadata"]["name"] = json!(canary_name(&name));
    desired["metadata"]["labels"][labels::TRACK] = json!(labels::TRACK_CANARY);
    desired["spec"]["selector"]["matchLabels"][labels::TRACK] = json!(labels::TRACK_CANARY);
    desired["spec"]["template"]["metadata"]["labels"][labels::TRACK] = json!(labels::TRACK_CANARY);
    desired["spec"]["replicas"] = json!(replicas);
    desired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::{BuildContext, Capabilities};

    fn children() -> Children {
        let ms: crate::api::Microservice = serde_saphyr::from_str(
            "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: users, namespace: shop}, spec: {image: 'users:2', replicas: 4, ports: [{name: http, port: 80}]}}",
        )
        .unwrap();
        let context = BuildContext::standalone(Capabilities::newest());
        crate::builders::build(&ms, &context).unwrap()
    }

    #[test]
    fn a_canary_runs_the_new_template_next_to_the_stable_one() {
        let mut children = children();
        let desired_template =
            children.get(&deployment::KIND).unwrap().object["spec"]["template"].clone();
        let stable_template = json!({"metadata": {"labels": {labels::REVISION: "old"}}, "spec": {"containers": [{"name": "app", "image": "users:1"}]}});
        apply(
            &mut children,
            &Workloads {
                stable_template: Template::Stable(stable_template.clone()),
                stable_replicas: Replicas::Fixed(3),
                canary_replicas: Some(1),
            },
        );
        let deployments: Vec<&Child> = children
            .iter()
            .filter(|c| c.kind == &deployment::KIND)
            .collect();
        assert_eq!(deployments.len(), 2);
        let (stable, canary) = (&deployments[0].object, &deployments[1].object);
        assert_eq!(stable["metadata"]["name"], "users");
        assert_eq!(stable["spec"]["replicas"], 3);
        assert_eq!(stable["spec"]["template"], stable_template);
        assert_eq!(canary["metadata"]["name"], "users-canary");
        assert_eq!(canary["spec"]["replicas"], 1);
        assert_eq!(
            canary["spec"]["selector"]["matchLabels"][labels::TRACK],
            "canary"
        );
        let labels_of = |t: &Value| t["metadata"]["labels"].clone();
        let mut expected = labels_of(&desired_template);
        expected[labels::TRACK] = json!("canary");
        assert_eq!(labels_of(&canary["spec"]["template"]), expected);
        assert_eq!(
            canary["spec"]["template"]["spec"], desired_template["spec"],
            "the canary runs the desired pods"
        );
        // Right after the stable Deployment, before the Service.
        let kinds: Vec<&str> = children.iter().map(|c| c.kind.kind).collect();
        let at = kinds.iter().position(|k| *k == "Deployment").unwrap();
        assert_eq!(kinds[at + 1], "Deployment");
    }

    #[test]
    fn plain_workloads_leave_the_plan_as_it_is() {
        let mut children = children();
        let before = children.clone();
        apply(
            &mut children,
            &Workloads {
                stable_template: Template::Desired,
                stable_replicas: Replicas::Desired,
                canary_replicas: None,
            },
        );
        assert_eq!(children, before);
    }
}
