//! Every array, string and map of both CRDs has a bound, and the operator's own check
//! reports a value over each of them at the field's path: admission and the operator
//! agree because both read the one generated schema.

use flotilla::api::bounds::{Bounds, SPEC_BOUNDS, check, unbounded};
use flotilla::api::{KubeVersion, crds};
use serde_json::{Value, json};

fn schemas(version: KubeVersion) -> Vec<(String, Value)> {
    crds(version)
        .into_iter()
        .flat_map(|crd| {
            let kind = crd.spec.names.kind.clone();
            crd.spec.versions.into_iter().map(move |served| {
                let schema = served.schema.and_then(|s| s.open_api_v3_schema);
                (
                    format!("{kind} {}", served.name),
                    serde_json::to_value(schema).unwrap(),
                )
            })
        })
        .collect()
}

#[test]
fn every_field_is_bounded() {
    for version in [KubeVersion::NEWEST, KubeVersion::new(1, 24)] {
        for (name, schema) in schemas(version) {
            let missing = unbounded(&schema);
            assert!(
                missing.is_empty(),
                "{name} for {version}: no bound on {missing:#?}; add one to the field \
                 (#[schemars(length(max = N))]) or a rule to flotilla::api::bounds::RULES"
            );
        }
    }
}

/// Every bounded node of `schema` (the `spec` of a CRD): its path as the operator names
/// it (`shown`), and a value one over the bound there.
fn over_each_bound(schema: &Value, shown: &str, out: &mut Vec<(String, Value)>) {
    let Value::Object(node) = schema else { return };
    let bound = |key: &str| {
        node.get(key)
            .and_then(Value::as_u64)
            .map(|n| n as usize + 1)
    };
    if let Some(n) = bound("maxLength") {
        out.push((shown.to_string(), Value::from("é".repeat(n))));
    }
    if let Some(n) = bound("maxItems") {
        out.push((shown.to_string(), Value::Array(vec![Value::Null; n])));
    }
    if let Some(n) = bound("maxProperties") {
        let map = (0..n).map(|i| (format!("k{i}"), Value::Null)).collect();
        out.push((shown.to_string(), Value::Object(map)));
    }
    let mut nested = Vec::new();
    if let Some(Value::Object(properties)) = node.get("properties") {
        for (name, child) in properties {
            let mut inner = Vec::new();
            over_each_bound(child, &format!("{shown}.{name}"), &mut inner);
            nested.extend(inner.into_iter().map(|(p, v)| (p, json!({ name: v }))));
        }
    }
    if let Some(items) = node.get("items") {
        let mut inner = Vec::new();
        over_each_bound(items, &format!("{shown}[0]"), &mut inner);
        nested.extend(inner.into_iter().map(|(p, v)| (p, json!([v]))));
    }
    if let Some(values @ Value::Object(_)) = node.get("additionalProperties") {
        let mut inner = Vec::new();
        over_each_bound(values, &format!("{shown}.k"), &mut inner);
        nested.extend(inner.into_iter().map(|(p, v)| (p, json!({ "k": v }))));
    }
    out.extend(nested);
}

fn operator_reports_every_bound(kind: &str, bounds: &Bounds) {
    let crds = crds(KubeVersion::NEWEST);
    let crd = crds.iter().find(|c| c.spec.names.kind == kind).unwrap();
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let mut cases = Vec::new();
    over_each_bound(&schema["properties"]["spec"], "spec", &mut cases);
    assert!(
        cases.len() > 50,
        "{kind}: only {} bounds found",
        cases.len()
    );
    for (field, value) in &cases {
        let found = check(value, bounds, "spec");
        assert!(
            found.iter().any(|over| &over.field == field),
            "{kind}: a value over the bound of {field} is not reported; found {found:?}"
        );
    }
    println!(
        "{kind}: the operator reports a value over each of {} bounds",
        cases.len()
    );
}

#[test]
fn the_operator_reports_a_value_over_any_microservice_bound() {
    operator_reports_every_bound("Microservice", &SPEC_BOUNDS.microservice);
}

#[test]
fn the_operator_reports_a_value_over_any_class_bound() {
    operator_reports_every_bound("MicroserviceClass", &SPEC_BOUNDS.class);
}
