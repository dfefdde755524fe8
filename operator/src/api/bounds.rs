//! A bound on every array, string and map of both CRDs, and the operator's check of them.
//!
//! One tenant's object is cached and relisted by an operator every tenant shares, and CEL
//! rules on 1.25+ servers are priced by the size their inputs may reach: so nothing in a
//! Microservice or a class is unbounded. Bounds written on a field (`#[schemars(length)]`)
//! come first; [`RULES`] bounds the rest, the fields of embedded Kubernetes types included,
//! by the path of the field. A field no rule reaches is left unbounded, and the test
//! `every_field_is_bounded` names it. The operator checks a spec against the same schema
//! ([`check`]), so admission and the operator cannot disagree on a bound.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;

/// `(path suffix, bound)`: the bound of the first rule whose suffix ends the field's path
/// is its `maxItems`, `maxLength` or `maxProperties`, by the field's type. A path joins
/// property names with `.`; `[]` is an array's item and `{}` a map's value.
///
/// The figures follow Kubernetes' own limits where there is one (a label value is 63
/// characters, a qualified key 317, a condition message 32,768), and otherwise leave
/// room for any real service while keeping the largest object a few hundred KiB short
/// of what etcd stores.
pub const RULES: &[(&str, i64)] = &[
    // Container command line and variables.
    ("args", 64),
    ("args[]", 4096),
    ("command", 64),
    ("command[]", 4096),
    ("env", 256),
    ("env[].value", 32768),
    ("envFrom", 32),
    ("envFrom[].prefix", 63),
    ("imagePullSecrets", 16),
    ("imagePullSecrets[]", 253),
    // Quantities and percentages (int-or-string).
    ("cpu", 64),
    ("memory", 64),
    ("tolerance", 64),
    ("maxUnavailable", 16),
    ("minAvailable", 16),
    // Autoscaler behaviour.
    ("policies", 8),
    ("policies[].type", 16),
    ("selectPolicy", 16),
    // Probes and metrics.
    ("headers", 16),
    ("headers[].name", 256),
    ("headers[].value", 4096),
    ("http.path", 1024),
    ("grpc.service", 253),
    ("metrics.interval", 32),
    ("steps[].pause", 32),
    // Network.
    ("allowFrom", 32),
    ("allowFrom[].ports", 16),
    ("allowFrom[].ports[]", 15),
    ("egress", 32),
    ("egress[].cidrs", 64),
    ("egress[].ports", 16),
    // Backing services (a Microservice's by name, a class's by type).
    ("backingServices", 32),
    ("secret.env", 32),
    ("secret.env{}", 253),
    ("endpoint.cidrs", 64),
    ("endpoint.ports", 16),
    // Label selectors and affinity, wherever they are embedded.
    ("matchLabels", 64),
    ("matchLabels{}", 63),
    ("matchExpressions", 16),
    ("matchExpressions[].key", 317),
    ("matchExpressions[].operator", 16),
    ("matchExpressions[].values", 64),
    ("matchExpressions[].values[]", 253),
    ("matchFields", 16),
    ("matchFields[].key", 317),
    ("matchFields[].operator", 16),
    ("matchFields[].values", 64),
    ("matchFields[].values[]", 253),
    ("nodeSelectorTerms", 16),
    ("preferredDuringSchedulingIgnoredDuringExecution", 16),
    ("requiredDuringSchedulingIgnoredDuringExecution", 16),
    ("matchLabelKeys", 16),
    ("matchLabelKeys[]", 317),
    ("mismatchLabelKeys", 16),
    ("mismatchLabelKeys[]", 317),
    ("namespaces", 64),
    ("namespaces[]", 63),
    ("topologyKey", 317),
    ("topologySpreadConstraints", 16),
    ("nodeAffinityPolicy", 16),
    ("nodeTaintsPolicy", 16),
    ("whenUnsatisfiable", 32),
    // Pod placement and metadata.
    ("tolerations", 32),
    ("tolerations[].effect", 16),
    ("tolerations[].key", 317),
    ("tolerations[].operator", 16),
    ("tolerations[].value", 63),
    ("priorityClassName", 253),
    ("nodeSelector", 64),
    ("nodeSelector{}", 63),
    ("labels", 64),
    ("labels{}", 63),
    ("podLabels", 64),
    ("podLabels{}", 63),
    ("serviceMonitorLabels", 64),
    ("serviceMonitorLabels{}", 63),
    // Annotations: 64 of 4 KiB stay within the API server's 256 KiB for all of them.
    ("annotations", 64),
    ("annotations{}", 4096),
    ("podAnnotations", 64),
    ("podAnnotations{}", 4096),
    // Status, written by Flotilla: generous, and above what it writes.
    ("status.conditions", 32),
    ("status.conditions[].message", 32768),
    ("status.conditions[].reason", 1024),
    ("status.conditions[].status", 16),
    ("status.conditions[].type", 316),
    ("status.className", 253),
    ("status.image", 1024),
    ("status.url", 2048),
    ("status.externalUrl", 2048),
    ("status.replicaSummary", 256),
    ("status.selector", 4096),
    ("rollout.canaryImage", 1024),
    ("rollout.stableImage", 1024),
    ("rollout.revision", 253),
    ("rollout.stableRevision", 253),
    ("rollout.message", 32768),
    ("failed.cause", 32768),
    ("failed.image", 1024),
    ("failed.revision", 253),
    ("httpChecks.lastFailure", 32768),
    // The promote, abort and undo annotations' values, as handled: an annotation's own
    // bound.
    ("rollout.handledPromote", 262144),
    ("rollout.handledAbort", 262144),
    ("rollout.handledUndo", 262144),
];

/// The most bytes of JSON a `spec` may take. The schema bounds each field, but together
/// they still let an object reach what etcd stores (about 1.5 MB), and every replica keeps
/// each object in memory: a spec over this budget is kept out of the cache (a stand-in
/// takes its place) and refused with `InvalidSpec`. Real specs are a few KiB.
pub const SPEC_BUDGET_BYTES: usize = 256 * 1024;

/// Set on the stand-in of an object whose spec is over [`SPEC_BUDGET_BYTES`], to the
/// spec's size; only ever in the operator's memory, never written to the API server.
pub const SPEC_BYTES_ANNOTATION: &str = "internal.flotilla.dev/spec-bytes";

/// The size of a spec as JSON, when it is over [`SPEC_BUDGET_BYTES`].
pub fn spec_over_budget(spec: &Value) -> Option<usize> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, spec).ok()?;
    (count.0 > SPEC_BUDGET_BYTES).then_some(count.0)
}

/// What an object carries when its cached copy is a stand-in for a spec over budget.
pub fn stand_in_for(annotations: Option<&BTreeMap<String, String>>) -> Option<String> {
    let bytes = annotations?.get(SPEC_BYTES_ANNOTATION)?;
    Some(format!(
        "the spec takes {bytes} bytes of JSON; a spec may take at most {SPEC_BUDGET_BYTES}"
    ))
}

/// The bound [`RULES`] gives the field at `path`, if any.
fn rule_for(path: &str) -> Option<i64> {
    RULES.iter().find_map(|(suffix, bound)| {
        let boundary = path
            .strip_suffix(suffix)
            .is_some_and(|head| head.is_empty() || head.ends_with('.'));
        boundary.then_some(*bound)
    })
}

/// What a schema node holds, for its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Array,
    String,
    Map,
    Other,
}

fn shape(node: &serde_json::Map<String, Value>) -> Shape {
    let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    match node.get("type").and_then(Value::as_str) {
        Some("array") => Shape::Array,
        // An enum is bounded by its values.
        Some("string")
            if !node.contains_key("enum")
                && node.get("format").and_then(Value::as_str) != Some("date-time") =>
        {
            Shape::String
        }
        Some("object") if matches!(node.get("additionalProperties"), Some(Value::Object(_))) => {
            Shape::Map
        }
        None if int_or_string => Shape::String,
        _ => Shape::Other,
    }
}

fn bound_key(shape: Shape) -> Option<&'static str> {
    match shape {
        Shape::Array => Some("maxItems"),
        Shape::String => Some("maxLength"),
        Shape::Map => Some("maxProperties"),
        Shape::Other => None,
    }
}

/// Calls `f` with the path and node of every schema node under `schema`.
fn visit(
    schema: &mut Value,
    path: &str,
    f: &mut impl FnMut(&str, &mut serde_json::Map<String, Value>),
) {
    let Value::Object(node) = schema else { return };
    f(path, node);
    if let Some(Value::Object(properties)) = node.get_mut("properties") {
        for (name, child) in properties.iter_mut() {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            visit(child, &child_path, f);
        }
    }
    if let Some(items) = node.get_mut("items") {
        visit(items, &format!("{path}[]"), f);
    }
    if let Some(values) = node.get_mut("additionalProperties") {
        visit(values, &format!("{path}{{}}"), f);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = node.get_mut(key) {
            for branch in branches {
                visit(branch, path, f);
            }
        }
    }
}

/// Writes the bound of [`RULES`] on every array, string and map of `schema` (an
/// `openAPIV3Schema` as JSON) that has none.
pub fn apply(schema: &mut Value) {
    visit(schema, "", &mut |path, node| {
        let Some(key) = bound_key(shape(node)) else {
            return;
        };
        if !node.contains_key(key)
            && let Some(bound) = rule_for(path)
        {
            node.insert(key.to_string(), Value::from(bound));
        }
    });
}

/// The path of every array, string and map in `schema` without a bound.
pub fn unbounded(schema: &Value) -> Vec<String> {
    let mut schema = schema.clone();
    let mut found = Vec::new();
    visit(&mut schema, "", &mut |path, node| {
        if let Some(key) = bound_key(shape(node))
            && !node.contains_key(key)
        {
            found.push(path.to_string());
        }
    });
    found
}

/// The bounds of a schema, in the shape of the values they bound.
#[derive(Debug, Default)]
pub struct Bounds {
    max_items: Option<usize>,
    max_length: Option<usize>,
    max_properties: Option<usize>,
    properties: BTreeMap<String, Bounds>,
    items: Option<Box<Bounds>>,
    values: Option<Box<Bounds>>,
}

impl Bounds {
    /// The bounds of an `openAPIV3Schema` node as JSON.
    pub fn of(schema: &Value) -> Bounds {
        let Value::Object(node) = schema else {
            return Bounds::default();
        };
        let limit = |key: &str| node.get(key).and_then(Value::as_u64).map(|n| n as usize);
        let properties = match node.get("properties") {
            Some(Value::Object(properties)) => properties
                .iter()
                .map(|(name, child)| (name.clone(), Bounds::of(child)))
                .collect(),
            _ => BTreeMap::new(),
        };
        Bounds {
            max_items: limit("maxItems"),
            max_length: limit("maxLength"),
            max_properties: limit("maxProperties"),
            properties,
            items: node.get("items").map(|s| Box::new(Bounds::of(s))),
            values: match node.get("additionalProperties") {
                Some(s @ Value::Object(_)) => Some(Box::new(Bounds::of(s))),
                _ => None,
            },
        }
    }

    /// The bounds of the property `name`, the way the CRD's schema holds them.
    pub fn property(&self, name: &str) -> Option<&Bounds> {
        self.properties.get(name)
    }
}

/// One value over its bound: the field's path (`spec.env[3].value`,
/// `spec.podTemplate.labels.team`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverBound {
    pub field: String,
    pub message: String,
}

/// Every value in `value` (at `path`) over a bound of `bounds`.
pub fn check(value: &Value, bounds: &Bounds, path: &str) -> Vec<OverBound> {
    let mut found = Vec::new();
    check_into(value, bounds, path, &mut found);
    found
}

fn check_into(value: &Value, bounds: &Bounds, path: &str, found: &mut Vec<OverBound>) {
    let mut over = |message: String| {
        found.push(OverBound {
            field: path.to_string(),
            message,
        })
    };
    match value {
        Value::String(s) => {
            if let Some(max) = bounds.max_length {
                // Schema lengths count characters, as the API server does.
                let length = s.chars().count();
                if length > max {
                    over(format!("must be at most {max} characters, got {length}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = bounds.max_items
                && items.len() > max
            {
                over(format!(
                    "must have at most {max} items, got {}",
                    items.len()
                ));
            }
            if let Some(item_bounds) = &bounds.items {
                for (i, item) in items.iter().enumerate() {
                    check_into(item, item_bounds, &format!("{path}[{i}]"), found);
                }
            }
        }
        Value::Object(map) => {
            if let Some(value_bounds) = &bounds.values {
                if let Some(max) = bounds.max_properties
                    && map.len() > max
                {
                    over(format!(
                        "must have at most {max} entries, got {}",
                        map.len()
                    ));
                }
                // A map's value is named `map.key`, as the API server names it.
                for (key, item) in map {
                    check_into(item, value_bounds, &format!("{path}.{key}"), found);
                }
            } else {
                for (name, item) in map {
                    if let Some(child) = bounds.properties.get(name) {
                        check_into(item, child, &format!("{path}.{name}"), found);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The bounds of `spec` in the Microservice CRD and in the MicroserviceClass CRD, from the
/// very schema `flotilla crd` prints.
pub struct SpecBounds {
    pub microservice: Bounds,
    pub class: Bounds,
}

pub static SPEC_BOUNDS: LazyLock<SpecBounds> = LazyLock::new(|| {
    let spec_of = |crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .map(|s| serde_json::to_value(s).expect("a schema serializes"))
            .unwrap_or_default();
        Bounds::of(&schema["properties"]["spec"])
    };
    let crds = super::crds(super::KubeVersion::NEWEST);
    SpecBounds {
        microservice: spec_of(&crds[0]),
        class: spec_of(&crds[1]),
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_whole_segments() {
        assert_eq!(rule_for("spec.env[].value"), Some(32768));
        assert_eq!(rule_for("spec.podTemplate.labels{}"), Some(63));
        // `xlabels` is not `labels`.
        assert_eq!(rule_for("spec.xlabels"), None);
    }

    #[test]
    fn strings_are_counted_in_characters() {
        let bounds = Bounds::of(&serde_json::json!({"type": "string", "maxLength": 2}));
        assert!(check(&Value::from("éé"), &bounds, "f").is_empty());
        assert_eq!(
            check(&Value::from("ééé"), &bounds, "f")[0].message,
            "must be at most 2 characters, got 3"
        );
    }
}
