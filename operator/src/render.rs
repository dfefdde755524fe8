//! `flotilla render`: the children the controller would apply, computed offline from
//! YAML files with the same builders. Microservices in the input see each other as
//! dependencies, and MicroserviceClasses in the input apply to them as in a cluster (the
//! one marked default to those naming none); everything else in the input is ignored.

use std::collections::BTreeSet;

use kube::ResourceExt;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::api::{KubeVersion, Microservice, MicroserviceClass};
use crate::builders::Capabilities;
use crate::builders::env::env_prefix;
use crate::class::{Binding, Refusal};
use crate::graph::{DEFAULT_NAMESPACE, ObjectKey};
use crate::plan::{self, Inputs};
use crate::yaml::document_at;

const API_VERSION: &str = "flotilla.dev/v1alpha1";
const KIND: &str = "Microservice";
const CLASS_KIND: &str = "MicroserviceClass";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("input {input}, document {document}: {message}")]
    Parse {
        input: usize,
        document: usize,
        message: String,
    },
    #[error("Microservice {key}: {field}: unknown field")]
    UnknownField { key: ObjectKey, field: String },
    #[error("Microservice {key}: defined more than once in the input")]
    Duplicate { key: ObjectKey },
    #[error("MicroserviceClass {name}: defined more than once in the input")]
    DuplicateClass { name: String },
    #[error("Microservice {key}: {}: {source}", source.reason())]
    Refused { key: ObjectKey, source: Refusal },
    #[error("writing YAML: {0}")]
    Yaml(String),
}

/// What `flotilla render` prints: the YAML on stdout, the warnings on stderr.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    pub yaml: String,
    /// What the controller would do differently from applying the YAML as it is.
    pub warnings: Vec<String>,
}

/// Renders every Microservice found in `documents` (each a multi-document YAML text)
/// for a server of `version`, as `---`-separated YAML documents: per Microservice, in
/// input order, its children in apply order. Unresolved dependencies are reported as YAML
/// comments: the controller would still apply the rest.
pub fn render(documents: &[String], version: KubeVersion) -> Result<String, RenderError> {
    render_for(documents, &Capabilities::for_version(version)).map(|rendered| rendered.yaml)
}

/// [`render`] for a server with exactly these capabilities (e.g. one that serves the
/// Gateway API's HTTPRoute, which no version number implies), with the warnings.
pub fn render_for(
    documents: &[String],
    capabilities: &Capabilities,
) -> Result<Rendered, RenderError> {
    let Input {
        microservices,
        classes,
    } = parse_input(documents)?;
    let classes: Vec<&MicroserviceClass> = classes.iter().collect();
    let all: Vec<&Microservice> = microservices.iter().collect();
    let inputs = Inputs {
        capabilities,
        classes: &classes,
        microservices: &all,
        // Offline there are no ConfigMaps or Secrets to hash.
        config: None,
        namespace_labels: None,
        install: Default::default(),
    };
    let mut rendered = Rendered::default();
    for ms in &microservices {
        let key = ObjectKey::of(ms);
        let plan = plan::plan(ms, &inputs);
        let build = plan.outcome.map_err(|source| RenderError::Refused {
            key: key.clone(),
            source,
        })?;
        for missing in &plan.missing_dependencies {
            rendered.warnings.push(format!(
                "Microservice {key}: dependency {}/{} is not in the input ({}): its {}_URL and {}_ADDR variables are left out, and the controller would hold the Deployment's rollout until it exists",
                missing.namespace,
                missing.name,
                missing.reason,
                env_prefix(&missing.name),
                env_prefix(&missing.name),
            ));
        }
        for missing in &plan.missing_backing {
            rendered.warnings.push(format!(
                "Microservice {key}: backing service {missing}: the controller would hold the Deployment's rollout until it exists"
            ));
        }
        for (i, child) in build.children.iter().enumerate() {
            rendered.yaml.push_str("---\n");
            if i == 0 {
                for missing in &plan.missing_dependencies {
                    rendered.yaml.push_str(&format!(
                        "# Microservice {key}: dependency {}/{} left out: {}\n",
                        missing.namespace, missing.name, missing.reason
                    ));
                }
            }
            rendered.yaml.push_str(
                &crate::yaml::to_string(&child.object)
                    .map_err(|e| RenderError::Yaml(e.to_string()))?,
            );
        }
        // What a class's templates provision, which the controller applies where the
        // cluster serves the kind and holds the Deployment until it is ready.
        for template in plan.backing.iter().filter_map(Binding::template) {
            rendered.yaml.push_str(&format!(
                "---\n# Microservice {key}: provisions backing service {} (applied where the cluster serves {}; the Deployment waits for its {} condition and Secret {})\n",
                template.name, template.kind, template.ready_condition, template.secret.secret
            ));
            rendered.yaml.push_str(
                &crate::yaml::to_string(&crate::builders::provisioned::object(
                    &build.effective,
                    template,
                ))
                .map_err(|e| RenderError::Yaml(e.to_string()))?,
            );
        }
    }
    Ok(rendered)
}

/// The Flotilla objects of the input.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// Namespace defaulted, in input order.
    pub microservices: Vec<Microservice>,
    pub classes: Vec<MicroserviceClass>,
}

/// Every Microservice in the input, namespace defaulted, in input order.
pub fn parse(documents: &[String]) -> Result<Vec<Microservice>, RenderError> {
    parse_input(documents).map(|input| input.microservices)
}

/// Every Microservice and MicroserviceClass in the input.
pub fn parse_input(documents: &[String]) -> Result<Input, RenderError> {
    parse_input_in(documents, DEFAULT_NAMESPACE)
}

/// [`parse_input`], Microservices without a namespace placed in `namespace`.
pub fn parse_input_in(documents: &[String], namespace: &str) -> Result<Input, RenderError> {
    let mut microservices = Vec::new();
    let mut classes: Vec<MicroserviceClass> = Vec::new();
    let mut seen = BTreeSet::new();
    for (input, text) in documents.iter().enumerate() {
        let parse_error = |document: usize, message: String| RenderError::Parse {
            input: input + 1,
            document,
            message,
        };
        // Each document with where it starts, to number it in errors as a parser does
        // (empty documents included, which the parser skips).
        let values: Vec<Spanned<Value>> =
            serde_saphyr::from_multiple_with_options(text, crate::yaml::options()).map_err(
                |e| {
                    let line = e.location().map_or(0, |at| at.line());
                    parse_error(document_at(text, line), e.to_string())
                },
            )?;
        for Spanned {
            value, referenced, ..
        } in values
        {
            let document = document_at(text, referenced.line());
            let parse_error = |message: String| parse_error(document, message);
            if value.is_null() {
                continue;
            }
            if value.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION) {
                continue;
            }
            match value.get("kind").and_then(Value::as_str) {
                Some(KIND) => {}
                Some(CLASS_KIND) => {
                    let class: MicroserviceClass = serde_json::from_value(value.clone())
                        .map_err(|e| parse_error(e.to_string()))?;
                    let round_trip =
                        serde_json::to_value(&class).map_err(|e| parse_error(e.to_string()))?;
                    if let Some(field) = dropped_field(&value, &round_trip, "") {
                        return Err(parse_error(format!(
                            "MicroserviceClass {}: {field}: unknown field",
                            class.name_any()
                        )));
                    }
                    if classes.iter().any(|c| c.name_any() == class.name_any()) {
                        return Err(RenderError::DuplicateClass {
                            name: class.name_any(),
                        });
                    }
                    classes.push(class);
                    continue;
                }
                _ => continue,
            }
            let mut ms: Microservice =
                serde_json::from_value(value.clone()).map_err(|e| parse_error(e.to_string()))?;
            if ms.metadata.namespace.is_none() {
                ms.metadata.namespace = Some(namespace.to_string());
            }
            let key = ObjectKey::new(ms.namespace().unwrap_or_default(), ms.name_any());
            // The types do not deny unknown fields (the API server prunes them), so a
            // round trip shows what serde dropped: a typo must not vanish silently.
            let round_trip = serde_json::to_value(&ms).map_err(|e| parse_error(e.to_string()))?;
            if let Some(field) = dropped_field(&value, &round_trip, "") {
                return Err(RenderError::UnknownField { key, field });
            }
            if !seen.insert(key.clone()) {
                return Err(RenderError::Duplicate { key });
            }
            microservices.push(ms);
        }
    }
    Ok(Input {
        microservices,
        classes,
    })
}

/// The path of the first field of `input` that `output` lacks, ignoring fields whose
/// value is empty (null, false, 0-length) because serialization skips those.
fn dropped_field(input: &Value, output: &Value, path: &str) -> Option<String> {
    match (input, output) {
        (Value::Object(input), Value::Object(output)) => input.iter().find_map(|(name, value)| {
            let path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            match output.get(name) {
                Some(out) => dropped_field(value, out, &path),
                None if is_empty(value) => None,
                None => Some(path),
            }
        }),
        (Value::Array(input), Value::Array(output)) => input
            .iter()
            .zip(output)
            .enumerate()
            .find_map(|(i, (value, out))| dropped_field(value, out, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::String(_) | Value::Number(_) | Value::Bool(true) => false,
    }
}
