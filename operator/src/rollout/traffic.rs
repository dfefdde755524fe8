//! The canary's share of a Microservice exposed through a Gateway API HTTPRoute. Behind
//! the one Service, the canary's share is that of the ready pods (one canary pod in four
//! is 25%, whatever the step asks). A Gateway splits by weight exactly, so while a canary
//! runs the route sends each request to one of two Services Flotilla adds for the
//! release: `<name>-stable` (the pods of the stable revision) and `<name>-canary` (the
//! canary Deployment's pods), weighted as the step says. In-cluster callers still use the
//! main Service, which selects both. When the release ends the plan no longer holds the
//! two Services, and they are pruned like any child no longer wanted.

use serde_json::{Value, json};

use crate::api::{RolloutPhase, RolloutStatus};
use crate::builders::{Child, Children, http_route, labels, service};

use super::workloads::canary_name;

/// The Service for the stable pods during a release.
pub fn stable_name(name: &str) -> String {
    format!("{name}-stable")
}

/// Splits the HTTPRoute between the stable and the canary pods at the step's weight,
/// while a canary step runs (not while promoting: the stable pods are changing revision
/// then) with at least one canary pod ready (`canary_ready`: a Gateway sending a share
/// to a Service without endpoints fails it), the route and the Service planned, and the
/// stable revision known. Otherwise the children stay as they are: the route sends
/// everything to the main Service.
pub fn split_route(children: &mut Children, release: &RolloutStatus, canary_ready: bool) {
    let (Some(weight), Some(stable_revision)) = (release.weight, &release.stable_revision) else {
        return;
    };
    let stepping = matches!(
        release.phase,
        Some(RolloutPhase::Progressing | RolloutPhase::Paused)
    ) && matches!((release.step, release.steps), (Some(step), Some(steps)) if step <= steps);
    if !canary_ready || !stepping || children.get(&http_route::KIND).is_none() {
        return;
    }
    let Some(main) = children.get(&service::KIND).cloned() else {
        return;
    };
    let Some(name) = main.object["metadata"]["name"].as_str().map(str::to_string) else {
        return;
    };
    let weight = weight.clamp(0, 100);
    let track = |suffix_name: String, selector: (&str, &str)| {
        let mut object = main.object.clone();
        object["metadata"]["name"] = json!(suffix_name);
        object["spec"]["selector"][selector.0] = json!(selector.1);
        let mut child = Child::new(&service::KIND, object);
        child.held = main.held;
        child
    };
    children.insert_after_kind(track(
        stable_name(&name),
        (labels::REVISION, stable_revision),
    ));
    children.insert_after_kind(track(
        canary_name(&name),
        (labels::TRACK, labels::TRACK_CANARY),
    ));
    let Some(route) = children.get_mut(&http_route::KIND) else {
        return;
    };
    for rule in route.object["spec"]["rules"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let refs = rule["backendRefs"].as_array().cloned().unwrap_or_default();
        let split: Vec<Value> = refs
            .iter()
            .flat_map(|backend| {
                if backend["name"].as_str() != Some(name.as_str()) {
                    return vec![backend.clone()];
                }
                let port = backend["port"].clone();
                vec![
                    json!({"name": stable_name(&name), "port": port, "weight": 100 - weight}),
                    json!({"name": canary_name(&name), "port": port, "weight": weight}),
                ]
            })
            .collect();
        rule["backendRefs"] = Value::Array(split);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn children() -> Children {
        let mut children = Children::default();
        children.insert_after_kind(Child::new(
            &service::KIND,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "storefront"},
                   "spec": {"selector": {"app.kubernetes.io/name": "storefront"},
                            "ports": [{"name": "http", "port": 80}]}}),
        ));
        children.insert_after_kind(Child::new(
            &http_route::KIND,
            json!({"kind": "HTTPRoute", "metadata": {"name": "storefront"},
                   "spec": {"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                       "backendRefs": [{"name": "storefront", "port": 80}]}]}}),
        ));
        children
    }

    fn release(weight: i32) -> RolloutStatus {
        RolloutStatus {
            phase: Some(RolloutPhase::Paused),
            step: Some(1),
            steps: Some(2),
            weight: Some(weight),
            stable_revision: Some("abc123".into()),
            ..RolloutStatus::default()
        }
    }

    #[test]
    fn a_running_canary_splits_the_route_at_the_step_s_weight() {
        let mut children = children();
        split_route(&mut children, &release(25), true);
        let route = &children.get(&http_route::KIND).unwrap().object;
        assert_eq!(
            route["spec"]["rules"][0]["backendRefs"],
            json!([{"name": "storefront-stable", "port": 80, "weight": 75},
                   {"name": "storefront-canary", "port": 80, "weight": 25}])
        );
        let services: Vec<(String, Value)> = children
            .iter()
            .filter(|c| c.kind == &service::KIND)
            .map(|c| {
                (
                    c.object["metadata"]["name"].as_str().unwrap().to_string(),
                    c.object["spec"]["selector"].clone(),
                )
            })
            .collect();
        assert_eq!(
            services,
            [
                (
                    "storefront".into(),
                    json!({"app.kubernetes.io/name": "storefront"})
                ),
                (
                    "storefront-stable".into(),
                    json!({"app.kubernetes.io/name": "storefront", labels::REVISION: "abc123"})
                ),
                (
                    "storefront-canary".into(),
                    json!({"app.kubernetes.io/name": "storefront", labels::TRACK: "canary"})
                ),
            ]
        );
    }

    #[test]
    fn no_canary_or_no_route_leaves_the_children_alone() {
        let before = children();
        let mut children = before.clone();
        split_route(&mut children, &release(25), false);
        assert_eq!(children, before, "no canary pod ready");
        let promoting = RolloutStatus {
            phase: Some(RolloutPhase::Promoting),
            step: Some(3),
            ..release(100)
        };
        split_route(&mut children, &promoting, true);
        assert_eq!(
            children, before,
            "promoting: the stable pods change revision"
        );

        let mut without_route = Children::default();
        without_route.insert_after_kind(before.get(&service::KIND).unwrap().clone());
        let alone = without_route.clone();
        split_route(&mut without_route, &release(25), true);
        assert_eq!(without_route, alone, "no HTTPRoute planned");
    }
}
