//! The chart grants what the operator sends, and only that. Run by `e2e/run.sh
//! rbac-audit` after the end-to-end and fault suites (`make test`): every request the
//! operators of those suites made (each as the chart's ServiceAccount `flotilla`, see
//! `flotilla_e2e::identity`) is in the embedded cluster's audit log; each verb on each
//! resource must be granted by the chart, and each grant must have been used, but for
//! the few the suite cannot exercise here, listed with the reason.

use std::collections::{BTreeMap, BTreeSet};

use flotilla_e2e::fault::{audited_requests, on_embedded_cluster};
use flotilla_e2e::helm;
use k8s_openapi::jiff::Timestamp;

/// (API group, resource[/subresource], verb).
type Grant = (String, String, String);

/// Grants the embedded cluster cannot exercise, and why.
const UNEXERCISED: &[(&str, &str, &str)] = &[(
    "gateway.networking.k8s.io",
    "httproutes",
    "the embedded cluster (1.20) serves no Gateway API: the operator neither watches nor writes HTTPRoutes there",
)];

/// Every rule of the chart's Roles and ClusterRoles with every feature that widens them
/// on: cluster scope, class status, Secrets, HTTP gates, leader election, and the kind the
/// suite's backing-service template provisions.
fn granted() -> anyhow::Result<BTreeSet<Grant>> {
    let [kind_group, kind_resource] = flotilla_e2e::steps::TEMPLATE_KIND_VALUES;
    let docs = helm::render(&[
        "-n",
        "flotilla-system",
        "--show-only",
        "templates/rbac.yaml",
        "--set",
        "rbac.scope=cluster",
        "--set",
        "classStatus=true",
        "--set",
        "watchSecrets=true",
        "--set",
        "httpGates=true",
        "--set",
        "leaderElection.enabled=true",
        "--set",
        "rbac.aggregateToDefaultRoles=false",
        "--set",
        kind_group,
        "--set",
        kind_resource,
    ])?;
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let mut grants = BTreeSet::new();
    for doc in docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        for rule in doc["rules"].as_array().into_iter().flatten() {
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        grants.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    Ok(grants)
}

/// The chart's ServiceAccount in any namespace: `system:serviceaccount:<ns>:flotilla`, or
/// `flotilla-a`/`flotilla-b` of the fencing scenario's two releases.
fn is_operator(user: &str) -> bool {
    user.strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(_, account)| account == "flotilla" || account.starts_with("flotilla-"))
}

#[test]
fn the_chart_grants_what_the_operator_sends_and_only_that() -> anyhow::Result<()> {
    // e2e/run.sh runs this file only on the embedded cluster and says so on kind.
    anyhow::ensure!(
        on_embedded_cluster(),
        "the RBAC audit reads the embedded cluster's audit log"
    );
    let since_file = std::env::var("RBAC_AUDIT_SINCE")
        .map_err(|_| anyhow::anyhow!("RBAC_AUDIT_SINCE is unset: run it through e2e/run.sh"))?;
    let since: Timestamp = std::fs::read_to_string(&since_file)
        .map_err(|e| anyhow::anyhow!("{since_file}: {e} (run make e2e first)"))?
        .trim()
        .parse()?;
    let requests = audited_requests(since, is_operator)?;
    anyhow::ensure!(
        requests.len() > 100,
        "only {} requests of the operator's ServiceAccount since {since}: did the suites run?",
        requests.len()
    );
    let mut used: BTreeMap<Grant, (usize, usize)> = BTreeMap::new();
    for request in &requests {
        // A server-side apply that creates its object (201) is authorized as create too.
        let created = request.verb == "patch" && request.code == 201;
        let verbs = std::iter::once(request.verb.as_str()).chain(created.then_some("create"));
        for verb in verbs {
            let entry = used
                .entry((
                    request.group.clone(),
                    request.resource.clone(),
                    verb.to_string(),
                ))
                .or_default();
            entry.0 += 1;
            if request.code == 403 {
                entry.1 += 1;
            }
        }
    }
    let granted = granted()?;
    println!(
        "{} requests of the chart's ServiceAccount since {since}:",
        requests.len()
    );
    println!(
        "{:<28} {:<28} {:<7} {:>8} {:>9}",
        "group", "resource", "verb", "requests", "forbidden"
    );
    for ((group, resource, verb), (count, forbidden)) in &used {
        let group = if group.is_empty() { "\"\"" } else { group };
        println!("{group:<28} {resource:<28} {verb:<7} {count:>8} {forbidden:>9}");
    }
    let mut problems = Vec::new();
    for (group, resource, verb) in used.keys() {
        if !granted.contains(&(group.clone(), resource.clone(), verb.clone())) {
            problems.push(format!(
                "the operator sent {verb} on {resource} (group {group:?}), which the chart does not grant"
            ));
        }
    }
    for grant in &granted {
        let (group, resource, verb) = grant;
        let exempt = UNEXERCISED
            .iter()
            .find(|(g, r, _)| g == group && r == resource);
        match (used.contains_key(grant), exempt) {
            (true, Some((_, _, why))) => problems.push(format!(
                "{verb} on {resource} is listed as unexercised ({why}) but was used: drop it from UNEXERCISED"
            )),
            (false, None) => problems.push(format!(
                "the chart grants {verb} on {resource} (group {group:?}), which the operator never sent in the suites"
            )),
            (false, Some((_, _, why))) => {
                println!("not exercised here: {verb} {resource} ({why})");
            }
            (true, None) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
