//! The CRDs on a modern API server: the Kubernetes 1.36 apiextensions-apiserver that
//! `make crd-server` (`e2e/crd-server/run.sh`) builds from Debian sid and starts, with
//! `CRD_SERVER_KUBECONFIG` pointing at it. It serves CRDs and custom resources only (no
//! Namespaces, no Deployments, no operator): these tests prove the API surface users on
//! 1.25+ get from `crds/microservices.yaml` — the CEL rules compile within the cost budget,
//! the samples and fixtures are accepted, every CEL agreement case of
//! `operator/tests/fixtures/validation-cases.yaml` is refused naming the operator's field,
//! the status and scale subresources, printer columns and `kubectl explain`.
//!
//! Not part of `make e2e` (`e2e/run.sh` skips this file): it needs that server, not the
//! embedded cluster. Each test prints what it saw.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use flotilla::api::{Microservice, MicroserviceClass};
use flotilla_e2e::{Poll, wait_for};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

const FIELD_MANAGER: &str = "flotilla-crd-server";
const CRD_NAMES: [&str; 2] = [
    "microservices.flotilla.dev",
    "microserviceclasses.flotilla.dev",
];
/// Where the validation cases are tried (dry runs: nothing is stored).
const CASES_NAMESPACE: &str = "validation-cases";
/// How long the server may take to establish the CRDs and publish their OpenAPI.
const DEADLINE: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ sits in the repo")
        .to_path_buf()
}

fn kubeconfig() -> String {
    std::env::var("CRD_SERVER_KUBECONFIG").unwrap_or_else(|_| {
        panic!("CRD_SERVER_KUBECONFIG is not set: run these tests through `make crd-server`")
    })
}

async fn client() -> anyhow::Result<Client> {
    let path = kubeconfig();
    let kubeconfig = Kubeconfig::read_from(&path).with_context(|| format!("reading {path}"))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("a client config from {path}"))?;
    Ok(Client::try_from(config)?)
}

/// `kubectl` (the 1.36 one `run.sh` puts first on PATH) against the modern server.
fn kubectl(args: &[&str]) -> anyhow::Result<String> {
    let kubeconfig = kubeconfig();
    let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
    all.extend_from_slice(args);
    flotilla_e2e::kubectl(&all)
}

/// Applies `crds/microservices.yaml` (server-side, as users do) and waits until both CRDs
/// are Established. Every test starts here; a second apply changes nothing.
async fn ensure_crds(client: &Client) -> anyhow::Result<Vec<CustomResourceDefinition>> {
    let file = repo().join("crds/microservices.yaml");
    let out = kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        FIELD_MANAGER,
        "-f",
        file.to_str().expect("a UTF-8 path"),
    ])
    .context("applying crds/microservices.yaml: a CEL rule that does not compile or exceeds the cost budget is refused here")?;
    println!(
        "kubectl apply --server-side -f crds/microservices.yaml:\n{}",
        out.trim_end()
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut established = Vec::new();
    for name in CRD_NAMES {
        let crd = wait_for(format!("CRD {name} to be Established"), DEADLINE, || {
            let crds = crds.clone();
            async move {
                let crd = crds.get(name).await?;
                let conditions = conditions(&crd);
                Ok(if conditions.contains("Established=True") {
                    Poll::Ready(crd)
                } else {
                    Poll::Pending(conditions)
                })
            }
        })
        .await?;
        established.push(crd);
    }
    Ok(established)
}

fn conditions(crd: &CustomResourceDefinition) -> String {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={} ({})",
                        c.type_,
                        c.status,
                        c.reason.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "no conditions".to_string())
}

/// Every `rule` under an `x-kubernetes-validations` in this JSON.
fn cel_rules(value: &Value, rules: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
                rules.extend(
                    list.iter()
                        .filter_map(|r| r["rule"].as_str().map(String::from)),
                );
            }
            map.values().for_each(|v| cel_rules(v, rules));
        }
        Value::Array(items) => items.iter().for_each(|v| cel_rules(v, rules)),
        _ => {}
    }
}

fn crd_documents() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("crds/microservices.yaml"))
        .expect("crds/microservices.yaml");
    serde_saphyr::from_multiple_with_options(&text, flotilla::yaml::options())
        .expect("CRD documents")
}

#[tokio::test]
async fn the_crds_are_established_with_every_cel_rule() -> anyhow::Result<()> {
    let client = client().await?;
    let served = ensure_crds(&client).await?;
    let mut failures = Vec::new();
    for (file_crd, served_crd) in crd_documents().iter().zip(&served) {
        let name = served_crd.metadata.name.as_deref().unwrap_or("?");
        let conditions = conditions(served_crd);
        let (mut in_file, mut on_server) = (Vec::new(), Vec::new());
        cel_rules(file_crd, &mut in_file);
        cel_rules(&serde_json::to_value(served_crd)?, &mut on_server);
        println!(
            "{name}: {conditions}; {} CEL rules served ({} in the file)",
            on_server.len(),
            in_file.len()
        );
        for wanted in ["Established=True", "NamesAccepted=True"] {
            if !conditions.contains(wanted) {
                failures.push(format!("{name}: not {wanted}: {conditions}"));
            }
        }
        if conditions.contains("NonStructuralSchema") {
            failures.push(format!("{name}: {conditions}"));
        }
        if in_file.is_empty() || in_file != on_server {
            failures.push(format!(
                "{name}: the server holds other CEL rules than the file: {on_server:?} vs {in_file:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// A deliberately expensive rule (a triple loop over an unbounded list of unbounded
/// strings) is refused: the server does check the cost budget, so the CRDs' acceptance
/// above means their rules fit in it.
#[tokio::test]
async fn an_expensive_rule_is_refused_by_the_cost_budget() -> anyhow::Result<()> {
    let client = client().await?;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "costs.crd-server.flotilla.dev"},
        "spec": {
            "group": "crd-server.flotilla.dev",
            "names": {"kind": "Cost", "plural": "costs"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "properties": {"items": {"type": "array", "items": {"type": "string"}}},
                        "x-kubernetes-validations": [{
                            "rule": "self.items.all(a, self.items.all(b, self.items.all(c, a + b + c != '')))"
                        }]
                    }}
                }}
            }]
        }
    }))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match crds.create(&dry_run, &crd).await {
        Ok(_) => panic!("the server accepted a rule far over the CEL cost budget"),
        Err(kube::Error::Api(status)) => {
            println!("refused as expected: {}", status.message);
            assert!(
                status.message.contains("exceeds budget"),
                "refused, but not for its cost: {status:?}"
            );
        }
        Err(other) => return Err(other.into()),
    }
    Ok(())
}

/// Server-side applies `object` (with strict field validation: an unknown field is an
/// error, not silently dropped), in `namespace` unless it is cluster-scoped.
async fn apply(
    client: &Client,
    object: &Value,
    namespace: Option<&str>,
    dry_run: bool,
) -> kube::Result<DynamicObject> {
    let (resource, name) = resource_of(object);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut object = object.clone();
    if let Some(ns) = namespace {
        object["metadata"]["namespace"] = json!(ns);
    }
    let mut params = PatchParams::apply(FIELD_MANAGER)
        .force()
        .validation_strict();
    params.dry_run = dry_run;
    api.patch(&name, &params, &Patch::Apply(&object)).await
}

fn resource_of(object: &Value) -> (ApiResource, String) {
    let resource = match object["kind"].as_str() {
        Some("Microservice") => ApiResource::erase::<Microservice>(&()),
        Some("MicroserviceClass") => ApiResource::erase::<MicroserviceClass>(&()),
        other => panic!("not a Flotilla object: {other:?}"),
    };
    let name = object["metadata"]["name"]
        .as_str()
        .expect("a named object")
        .to_string();
    (resource, name)
}

/// The Microservices and MicroserviceClasses of a YAML stream (other documents and files,
/// such as the rollout tables, are not objects).
fn flotilla_objects(yaml: &str) -> Vec<Value> {
    // Document by document: one that does not parse is skipped, not the stream.
    serde_saphyr::read_with_options::<_, Value>(&mut yaml.as_bytes(), flotilla::yaml::options())
        .filter_map(Result::ok)
        .filter(|doc| {
            doc["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("flotilla.dev/"))
                && matches!(
                    doc["kind"].as_str(),
                    Some("Microservice" | "MicroserviceClass")
                )
        })
        .collect()
}

fn yaml_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
}

/// A DNS label for a fixture's namespace: each file gets its own, so fixtures sharing a
/// name do not meet (the server has no Namespace API; no namespace needs creating).
fn namespace_for(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
    let label: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("fixture-{}", label.trim_matches('-'))
}

#[tokio::test]
async fn samples_and_fixtures_are_accepted() -> anyhow::Result<()> {
    let client = client().await?;
    ensure_crds(&client).await?;
    let repo = repo();
    // (where from, namespace, object)
    let mut objects: Vec<(String, String, Value)> = Vec::new();
    let samples = kubectl(&[
        "kustomize",
        repo.join("sample-services/manifests")
            .to_str()
            .expect("a UTF-8 path"),
    ])?;
    for object in flotilla_objects(&samples) {
        objects.push(("sample-services/manifests".into(), "shop".into(), object));
    }
    let samples_count = objects.len();
    let mut files = Vec::new();
    yaml_files(&repo.join("operator/tests/fixtures"), &mut files);
    let mut without_objects = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&repo)
            .unwrap_or(file)
            .display()
            .to_string();
        let found = flotilla_objects(&std::fs::read_to_string(file)?);
        if found.is_empty() {
            without_objects.push(relative);
            continue;
        }
        for object in found {
            objects.push((relative.clone(), namespace_for(file), object));
        }
    }
    assert!(samples_count >= 6, "only {samples_count} sample objects");

    let mut failures = Vec::new();
    for (source, namespace, object) in &objects {
        let (resource, name) = resource_of(object);
        let namespaced = resource.kind == "Microservice";
        let shown = if namespaced {
            format!("{} {namespace}/{name}", resource.kind)
        } else {
            format!("{} {name}", resource.kind)
        };
        match apply(
            &client,
            object,
            namespaced.then_some(namespace.as_str()),
            false,
        )
        .await
        {
            Ok(_) => println!("accepted  {shown}  ({source})"),
            Err(e) => {
                println!("REFUSED   {shown}  ({source}): {e}");
                failures.push(format!("{shown} ({source}): {e}"));
            }
        }
    }
    println!(
        "{} objects: {} from the samples, {} from {} fixture files; {} files hold no Microservice or class: {}",
        objects.len(),
        samples_count,
        objects.len() - samples_count,
        files.len() - without_objects.len(),
        without_objects.len(),
        without_objects.join(", ")
    );
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
    Ok(())
}

// The cases' types and reader, shared with `operator/tests/validation.rs`.
#[path = "../../operator/tests/fixtures/validation_cases.rs"]
mod validation_cases;

use validation_cases::{Case, ServerField, cases, microservice_yaml};

fn class_yaml(spec: &str) -> String {
    format!(
        "apiVersion: flotilla.dev/v1alpha1\nkind: MicroserviceClass\nmetadata: {{name: golden}}\nspec: {spec}"
    )
}

/// What the server refused, and why.
struct Refusal {
    code: u16,
    /// The fields its causes name.
    fields: Vec<String>,
    message: String,
}

/// What the server says to a dry-run create of `object`: `Ok` when it accepts it. A
/// create rather than an apply: admission and validation alone, as for every way of
/// writing (a server-side apply of a list with a duplicate key fails earlier, building
/// the patch, with a 500 that names no field).
async fn server_verdict(
    client: &Client,
    object: &Value,
    namespace: Option<&str>,
) -> anyhow::Result<Result<(), Refusal>> {
    let (resource, _) = resource_of(object);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut object = object.clone();
    if let Some(ns) = namespace {
        object["metadata"]["namespace"] = json!(ns);
    }
    let object: DynamicObject = serde_json::from_value(object)?;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&dry_run, &object).await {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Api(status)) => Ok(Err(Refusal {
            code: status.code,
            fields: status
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .map(|c| c.field.clone())
                .collect(),
            message: status.message,
        })),
        Err(other) => bail!("no answer from the server: {other}"),
    }
}

/// Compares the server's refusal with the field the operator names; returns the line to
/// print, or the failure.
fn judge(
    name: &str,
    field: &str,
    server: Option<&ServerField>,
    verdict: Result<(), Refusal>,
) -> Result<String, String> {
    let Refusal {
        code,
        fields,
        message,
    } = match verdict {
        Ok(()) => {
            return Err(format!(
                "{name}: accepted by the server (the operator refuses it, naming {field})"
            ));
        }
        Err(refusal) => refusal,
    };
    let seen = fields.join(", ");
    if code != 422 {
        return Err(format!(
            "{name}: refused with {code}, not as invalid (422): {message}"
        ));
    }
    match server {
        None if fields.iter().any(|f| f == field) => Ok(format!("refused  {name}: {field}")),
        None => Err(format!(
            "{name}: the server names [{seen}], the operator {field}: {message}"
        )),
        Some(server) if fields.iter().any(|f| f == field) => Err(format!(
            "{name}: the server now names the operator's field {field}: drop its `server:` entry ({})",
            server.why
        )),
        Some(server) if fields.contains(&server.field) => Ok(format!(
            "refused  {name}: {} (coarser than the operator's {field}: {})",
            server.field, server.why
        )),
        Some(server) => Err(format!(
            "{name}: the server names [{seen}], not the recorded {} nor the operator's {field}: {message}",
            server.field
        )),
    }
}

#[tokio::test]
async fn every_cel_case_is_refused_naming_the_operators_field() -> anyhow::Result<()> {
    let client = client().await?;
    ensure_crds(&client).await?;
    let cases = cases();
    let mut failures = Vec::new();

    let valid: Value = serde_saphyr::from_str(&microservice_yaml(&cases.valid.microservice))?;
    if let Err(refused) = server_verdict(&client, &valid, Some(CASES_NAMESPACE)).await? {
        failures.push(format!(
            "the valid Microservice is refused: {}",
            refused.message
        ));
    }
    let valid_class: Value = serde_saphyr::from_str(&class_yaml(&cases.valid.class))?;
    if let Err(refused) = server_verdict(&client, &valid_class, None).await? {
        failures.push(format!("the valid class is refused: {}", refused.message));
    }

    let (mut refused, mut coarser) = (0, 0);
    let (mut schema_refused, mut operator_only) = (0, Vec::new());
    let cel_cases: Vec<&Case> = cases.microservices.iter().filter(|c| c.cel).collect();
    for case in &cases.microservices {
        let yaml = microservice_yaml(&case.spec);
        // The field the operator names, from flotilla::validate itself.
        let ms: Microservice = serde_saphyr::from_str(&yaml)?;
        let operator_fields: Vec<String> = match flotilla::validate::validate(&ms) {
            Ok(()) => Vec::new(),
            Err(invalid) => invalid.0.iter().map(|e| e.field.clone()).collect(),
        };
        let verdict = server_verdict(
            &client,
            &serde_saphyr::from_str(&yaml)?,
            Some(CASES_NAMESPACE),
        )
        .await?;
        if !case.cel && !case.schema {
            // The operator's alone, or the schema's too: counted, not required.
            match verdict {
                Err(refusal) if refusal.code == 422 => schema_refused += 1,
                Err(refusal) => failures.push(format!(
                    "{}: refused with {}, not as invalid (422): {}",
                    case.name, refusal.code, refusal.message
                )),
                Ok(()) => operator_only.push(case.name.as_str()),
            }
            continue;
        }
        if !operator_fields.contains(&case.field) {
            failures.push(format!(
                "{}: the operator names {operator_fields:?}, the case file {}",
                case.name, case.field
            ));
        }
        match judge(&case.name, &case.field, case.server.as_ref(), verdict) {
            Ok(line) => {
                refused += 1;
                coarser += usize::from(case.server.is_some());
                println!("{line}");
            }
            Err(failure) => {
                println!("FAILED   {failure}");
                failures.push(failure);
            }
        }
    }
    for case in &cases.classes {
        let yaml = class_yaml(&case.spec);
        let class: MicroserviceClass = serde_saphyr::from_str(&yaml)?;
        match flotilla::class::validate::validate_class(&class.spec) {
            Err(error) if error.to_string().contains(&case.field) => {}
            other => failures.push(format!(
                "class {}: the operator says {other:?}, the case file {}",
                case.spec, case.field
            )),
        }
        let verdict = server_verdict(&client, &serde_saphyr::from_str(&yaml)?, None).await?;
        let name = format!("class {}", case.spec);
        match judge(&name, &case.field, case.server.as_ref(), verdict) {
            Ok(line) => {
                refused += 1;
                coarser += usize::from(case.server.is_some());
                println!("{line}");
            }
            Err(failure) => {
                println!("FAILED   {failure}");
                failures.push(failure);
            }
        }
    }
    let total = cel_cases.len() + cases.classes.len();
    println!(
        "{refused} of {total} CEL cases refused by the server naming the operator's field ({coarser} of them a recorded coarser one)"
    );
    println!(
        "of the {} cases without CEL, the schema refuses {schema_refused}; only the operator refuses {}: {}",
        cases.microservices.len() - cel_cases.len(),
        operator_only.len(),
        operator_only.join(", ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// A Microservice's status and scale subresources: status is written only through
/// `/status`, `/scale` reads spec.replicas, status.replicas and status.selector, and
/// `kubectl scale` writes spec.replicas.
#[tokio::test]
async fn status_and_scale_subresources_work() -> anyhow::Result<()> {
    let client = client().await?;
    ensure_crds(&client).await?;
    let ns = "subresources";
    let object: Value = serde_saphyr::from_str(
        "apiVersion: flotilla.dev/v1alpha1
kind: Microservice
metadata: {name: users}
spec:
  image: registry.example.com/users:1.0
  replicas: 2
  ports: [{name: http, port: 80, targetPort: 8080}]",
    )?;
    apply(&client, &object, Some(ns), false).await?;
    let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
    let status = json!({"status": {
        "observedGeneration": 1,
        "replicas": 2,
        "readyReplicas": 2,
        "updatedReplicas": 2,
        "replicaSummary": "2/2",
        "selector": "app.kubernetes.io/name=users",
        "image": "registry.example.com/users:1.0",
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "Available",
            "message": "2/2 replicas ready", "lastTransitionTime": "2026-01-01T00:00:00Z"
        }]
    }});
    let patched = api
        .patch_status("users", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .context("patching /status")?;
    let got = serde_json::to_value(&patched)?;
    println!(
        "after PATCH /status: generation {}, status {}",
        got["metadata"]["generation"], got["status"]
    );
    assert_eq!(got["status"]["replicaSummary"], "2/2", "{got}");
    assert_eq!(
        got["metadata"]["generation"], 1,
        "a status write bumped the generation"
    );

    // Through the main resource, status is ignored (and spec changes count).
    let ignored = json!({"status": {"replicaSummary": "9/9"}});
    let main = api
        .patch("users", &PatchParams::default(), &Patch::Merge(&ignored))
        .await?;
    let main = serde_json::to_value(&main)?;
    println!(
        "after a status PATCH on the main resource: {}",
        main["status"]["replicaSummary"]
    );
    assert_eq!(
        main["status"]["replicaSummary"], "2/2",
        "status written through the main resource"
    );

    let scale = api.get_scale("users").await.context("GET /scale")?;
    println!("GET /scale: {}", serde_json::to_string(&scale)?);
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let scale_status = scale.status.as_ref().expect("a scale status");
    assert_eq!(scale_status.replicas, 2);
    assert_eq!(
        scale_status.selector.as_deref(),
        Some("app.kubernetes.io/name=users")
    );

    let out = kubectl(&["scale", "microservice/users", "-n", ns, "--replicas=3"])?;
    println!("kubectl scale: {}", out.trim());
    let scaled = api.get("users").await?;
    let scale = api.get_scale("users").await?;
    println!(
        "after kubectl scale: spec.replicas {:?}, generation {:?}, /scale spec.replicas {:?}",
        scaled.spec.replicas,
        scaled.metadata.generation,
        scale.spec.as_ref().and_then(|s| s.replicas)
    );
    assert_eq!(scaled.spec.replicas, Some(3));
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(3));
    Ok(())
}

/// The printer columns of a CRD from the file: (name in capitals, priority).
fn printer_columns(crd: &Value) -> Vec<(String, i64)> {
    crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("a column name").to_uppercase(),
                c["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// The header line's columns: kubectl pads them with two or more spaces.
fn header_columns(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn printer_columns_show_in_kubectl_get() -> anyhow::Result<()> {
    let client = client().await?;
    ensure_crds(&client).await?;
    let ns = "printer";
    let ms: Value = serde_saphyr::from_str(
        "apiVersion: flotilla.dev/v1alpha1
kind: Microservice
metadata: {name: users}
spec: {image: registry.example.com/users:1.0}",
    )?;
    apply(&client, &ms, Some(ns), false).await?;
    let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
    let status = json!({"status": {
        "replicaSummary": "1/1", "image": "registry.example.com/users:1.0",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Available",
            "message": "ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    }});
    api.patch_status("users", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let class: Value = serde_saphyr::from_str(
        "apiVersion: flotilla.dev/v1alpha1
kind: MicroserviceClass
metadata: {name: printer}
spec: {}",
    )?;
    apply(&client, &class, None, false).await?;

    let crds = crd_documents();
    let mut failures = Vec::new();
    for (crd, args) in [
        (&crds[0], vec!["get", "ms", "-n", ns]),
        (&crds[0], vec!["get", "ms", "-n", ns, "-o", "wide"]),
        (&crds[1], vec!["get", "msc", "printer"]),
        (&crds[1], vec!["get", "msc", "printer", "-o", "wide"]),
    ] {
        let wide = args.contains(&"wide");
        let table = kubectl(&args)?;
        println!("$ kubectl {}\n{}", args.join(" "), table.trim_end());
        let header = header_columns(&table);
        let mut wanted = vec!["NAME".to_string()];
        wanted.extend(
            printer_columns(crd)
                .into_iter()
                .filter(|(_, priority)| wide || *priority == 0)
                .map(|(name, _)| name),
        );
        if header != wanted {
            failures.push(format!(
                "kubectl {}: columns {header:?}, the CRD's {wanted:?}",
                args.join(" ")
            ));
        }
    }
    let rows = kubectl(&["get", "ms", "users", "-n", ns, "--no-headers"])?;
    for value in ["True", "1/1", "registry.example.com/users:1.0", "Available"] {
        if !rows.split_whitespace().any(|cell| cell == value) {
            failures.push(format!("kubectl get ms: no {value} in {rows:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `kubectl explain` prints the CRDs' documentation, down to nested fields: the server
/// publishes their schemas in OpenAPI (which the stock standalone server does not; see
/// e2e/crd-server/apiserver/main.go).
#[tokio::test]
async fn kubectl_explain_prints_the_documentation() -> anyhow::Result<()> {
    let client = client().await?;
    ensure_crds(&client).await?;
    let crds = crd_documents();
    let schema = |crd: usize| &crds[crd]["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let ms_spec = &schema(0)["properties"]["spec"];
    let class_spec = &schema(1)["properties"]["spec"];
    let checks = [
        ("microservice.spec", ms_spec),
        (
            "microservice.spec.rollout",
            &ms_spec["properties"]["rollout"],
        ),
        ("microservice.spec.image", &ms_spec["properties"]["image"]),
        ("microserviceclass.spec", class_spec),
    ];
    let mut failures = Vec::new();
    for (path, field) in checks {
        let description = words(
            field["description"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: no description in the CRD")),
        );
        // The controller publishes a CRD's schema shortly after it is Established.
        let explained = wait_for(format!("kubectl explain {path}"), DEADLINE, || async {
            let out = kubectl(&["explain", path])?;
            Ok(if words(&out).contains(&description) {
                Poll::Ready(out)
            } else {
                Poll::Pending(out)
            })
        })
        .await;
        match explained {
            Ok(out) => {
                // The description and the first field or two.
                let shown: Vec<&str> = out
                    .lines()
                    .skip_while(|l| !l.starts_with("DESCRIPTION"))
                    .take(10)
                    .collect();
                println!("$ kubectl explain {path}\n{}\n…", shown.join("\n"));
            }
            Err(e) => failures.push(format!("{e}\n(wanted the description: {description})")),
        }
    }
    // Every field of spec is listed.
    let out = kubectl(&["explain", "microservice.spec"])?;
    let missing: Vec<&str> = ms_spec["properties"]
        .as_object()
        .expect("spec properties")
        .keys()
        .map(String::as_str)
        .filter(|field| {
            !out.lines()
                .any(|l| l.trim_start().starts_with(&format!("{field}\t")))
        })
        .collect();
    if !missing.is_empty() {
        failures.push(format!(
            "kubectl explain microservice.spec does not list {missing:?}:\n{out}"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}
