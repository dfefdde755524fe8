//! The operator's writes during a bulk create, from the audit log: per child, per status,
//! and everything else.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use flotilla_e2e::fault::Write;
use k8s_openapi::jiff::Timestamp;
use kube::discovery::ApiResource;

use crate::report::{Report, Target};

/// Writes by kind, verb and result, for the report's details.
pub fn summarize(writes: &[Write]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for w in writes {
        let resource = if w.subresource.is_empty() {
            w.resource.clone()
        } else {
            format!("{}/{}", w.resource, w.subresource)
        };
        *out.entry(format!("{} {resource} {}", w.verb, w.code))
            .or_default() += 1;
    }
    out
}

/// The names of the fleet, each Microservice's neighbours in the graph (its
/// dependencies and its dependents), and when each was first seen.
pub type Fleet<'a> = (
    &'a [String],
    &'a HashMap<String, Vec<String>>,
    &'a HashMap<String, Timestamp>,
);

/// How long after a neighbour appeared the operator may still have planned without it:
/// its caches lag the API server by a watch delivery.
const CACHE_LAG: std::time::Duration = Duration::from_millis(500);

/// The writes of the bulk create of `names`: children applied per kind, status writes
/// per Microservice, everything else.
pub fn count_writes(
    r: &mut Report,
    writes: &[Write],
    kinds: &[(&'static str, ApiResource)],
    (names, neighbours, created): Fleet<'_>,
    reconciles: f64,
) {
    let n = names.len() as f64;
    let s = "writes during the create of N (audit log)";
    for (kind, resource) in kinds {
        let mut per_child = HashMap::<&str, Vec<Timestamp>>::new();
        for w in writes {
            if w.resource == resource.plural && w.subresource.is_empty() && w.succeeded() {
                per_child
                    .entry(w.name.as_str())
                    .or_default()
                    .push(w.received);
            }
        }
        let total: usize = per_child.values().map(Vec::len).sum();
        // Exactly one write per child, except that a NetworkPolicy names its neighbours
        // (egress to its dependencies, ingress from its dependents): one that appears
        // after the policy was written changes it once more (issue 13: a dependency
        // appearing later changes the callee's policy), and nothing else may.
        let policy = *kind == "NetworkPolicy";
        let mut rewritten = 0;
        let wrong = names
            .iter()
            .filter(|name| {
                let times = per_child.get(name.as_str()).cloned().unwrap_or_default();
                let Some(first) = times.iter().min() else {
                    return true;
                };
                let late = if policy {
                    neighbours
                        .get(name.as_str())
                        .into_iter()
                        .flatten()
                        .filter(|other| {
                            created.get(other.as_str()).is_some_and(|at| {
                                at.duration_since(*first).as_secs_f64() > -CACHE_LAG.as_secs_f64()
                            })
                        })
                        .count()
                } else {
                    0
                };
                if times.len() > 1 {
                    rewritten += 1;
                }
                times.len() > 1 + late
            })
            .count();
        let mut note = if wrong == 0 {
            String::new()
        } else {
            format!("{wrong} not written exactly once")
        };
        if policy && rewritten > 0 {
            note = format!(
                "{note}{}{rewritten} written again for a neighbour that appeared later",
                if note.is_empty() { "" } else { "; " }
            );
        }
        // Every child once, not just once on average.
        r.push(
            s,
            format!("{kind} writes per Microservice"),
            Some(total as f64 / n),
            "",
            Some(if policy {
                Target::Rule("1 + late neighbours")
            } else {
                Target::Exactly(1.0)
            }),
            &note,
        )
        .pass = Some(wrong == 0);
    }
    let mut statuses = HashMap::<&str, usize>::new();
    for w in writes {
        if w.resource == "microservices" && w.subresource == "status" && w.succeeded() {
            *statuses.entry(w.name.as_str()).or_default() += 1;
        }
    }
    let total: usize = statuses.values().sum();
    let max = names
        .iter()
        .map(|name| statuses.get(name.as_str()).copied().unwrap_or(0))
        .max()
        .unwrap_or(0);
    // Every Microservice within the target, not just on average.
    r.push(
        s,
        "status writes per Microservice (mean)",
        Some(total as f64 / n),
        "",
        Some(Target::AtMost(2.0)),
        &format!("max {max}"),
    )
    .pass = Some(max <= 2);
    r.row(
        s,
        "reconciles per Microservice (flotilla_reconciles_total)",
        reconciles / n,
        "",
    );
    let children: Vec<&str> = kinds.iter().map(|(_, r)| r.plural.as_str()).collect();
    let others: Vec<Write> = writes
        .iter()
        .filter(|w| {
            !w.succeeded()
                || !((children.contains(&w.resource.as_str()) && w.subresource.is_empty())
                    || (w.resource == "microservices" && w.subresource == "status"))
        })
        .cloned()
        .collect();
    let failed = writes.iter().filter(|w| !w.succeeded()).count();
    r.row(
        s,
        "other writes (events, refused writes...) per Microservice",
        others.len() as f64 / n,
        "",
    );
    r.row(s, "refused writes (conflicts, errors)", failed as f64, "");
    r.row(s, "all operator writes", writes.len() as f64, "");
    r.details
        .insert("create_writes".into(), serde_json::json!(summarize(writes)));
}
