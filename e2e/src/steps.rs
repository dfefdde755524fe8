//! Flotilla-specific steps shared by the operator scenarios: installing the CRDs, running
//! the operator for one namespace, and waiting on Microservice conditions.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use flotilla::api::{KubeVersion, Microservice, crd_file_name};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::ListParams;
use tokio::sync::OnceCell;

use crate::kubectl::kubectl;
use crate::operator::Operator;
use crate::wait::{Poll, wait_for};

/// The chart values granting the operator the kind the backing-service template scenario
/// provisions (`e2e/tests/backing.rs`'s `Database` CRD); the RBAC audit renders the chart
/// with them too.
pub const TEMPLATE_KIND_VALUES: [&str; 2] = [
    "backingServiceKinds[0].apiGroup=e2e.flotilla.dev",
    "backingServiceKinds[0].resource=databases",
];

/// Long enough for a pod to be scheduled, started and probed on a 2-core node.
pub const CONVERGE: Duration = Duration::from_secs(150);

static CRDS: OnceCell<()> = OnceCell::const_new();

/// The CRDs of the committed files (`crds/`), each of which holds both.
pub const CRD_NAMES: [&str; 2] = [
    "microservices.flotilla.dev",
    "microserviceclasses.flotilla.dev",
];

/// Installs the committed CRDs (Microservice and MicroserviceClass), the variant the
/// server accepts (servers before 1.25 refuse CEL rules), and waits until both are
/// served. Once per test binary.
pub async fn ensure_crds(client: &kube::Client) -> anyhow::Result<()> {
    CRDS.get_or_try_init(|| apply_crds(client)).await.copied()
}

/// Applies the committed CRDs for the server's version now, whatever was applied before
/// (a cluster shared with other commits' test runs may hold theirs), and waits until both
/// are established.
pub async fn apply_crds(client: &kube::Client) -> anyhow::Result<()> {
    let version = client
        .apiserver_version()
        .await
        .context("reading the server version")?;
    let version: KubeVersion = format!("{}.{}", version.major, version.minor)
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let file = crd_file(version);
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &file.to_string_lossy(),
    ])?;
    let crds: Vec<String> = CRD_NAMES.iter().map(|n| format!("crd/{n}")).collect();
    let mut wait = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    wait.extend(crds.iter().map(String::as_str));
    kubectl(&wait)?;
    wait_published(&file).await
}

/// Waits until the API server's OpenAPI shows every spec field of the CRDs in `file`:
/// it publishes a changed schema a few seconds after the CRD is Established, and until
/// then kubectl's validation refuses a new field as unknown.
async fn wait_published(file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)?;
    let mut wanted = Vec::new();
    for crd in crate::helm::parse_documents(&text)? {
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
        for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let reversed: Vec<&str> = group.split('.').rev().collect();
            let definition = format!(
                "{}.{}.{kind}",
                reversed.join("."),
                version["name"].as_str().unwrap_or_default()
            );
            let fields = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
            let fields: Vec<String> = fields
                .as_object()
                .map(|f| f.keys().cloned().collect())
                .unwrap_or_default();
            wanted.push((definition, fields));
        }
    }
    wait_for(
        "the CRDs' schemas in the API server's OpenAPI",
        Duration::from_secs(60),
        || async {
            let published: serde_json::Value =
                serde_json::from_str(&kubectl(&["get", "--raw", "/openapi/v2"])?)?;
            let missing: Vec<String> = wanted
                .iter()
                .flat_map(|(definition, fields)| {
                    let spec = &published["definitions"][definition]["properties"]["spec"];
                    fields
                        .iter()
                        .filter(|field| spec["properties"][field.as_str()].is_null())
                        .map(move |field| format!("{definition}.spec.{field}"))
                })
                .collect();
            Ok(if missing.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("not published yet: {}", missing.join(", ")))
            })
        },
    )
    .await
}

/// The committed CRD file for a server version.
pub fn crd_file(version: KubeVersion) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crds")
        .join(crd_file_name(version))
}

/// Runs `flotilla run` for one namespace: each test has its own operator, so tests run
/// side by side and a test may kill its operator.
pub fn start_operator(namespace: &str) -> anyhow::Result<Operator> {
    start_operator_with(namespace, &[])
}

/// [`start_operator`] with more arguments after the usual ones, e.g.
/// `["--class-status=true"]`.
pub fn start_operator_with(namespace: &str, extra: &[&str]) -> anyhow::Result<Operator> {
    let mut args = run_args(namespace);
    args.extend_from_slice(extra);
    Operator::start(namespace, &args)
}

/// A cluster-wide operator (the chart's `rbac.scope=cluster`, its ServiceAccount in
/// `namespace`) that reconciles only the Microservices [`sharded`] for `namespace`, so
/// that it leaves the other tests alone; `extra` after the usual arguments. Its class
/// status is off: it sees only its shard of each class's users.
pub fn start_sharded_operator(namespace: &str, extra: &[&str]) -> anyhow::Result<Operator> {
    let selector = format!("{SHARD_LABEL}={namespace}");
    let mut args = vec![
        "run",
        "--selector",
        &selector,
        "--class-status=false",
        "--metrics-addr",
        "127.0.0.1:0",
        "--health-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Operator::start_cluster_wide(namespace, namespace, &args)
}

/// The label [`start_sharded_operator`] selects its Microservices by.
pub const SHARD_LABEL: &str = "flotilla.dev/e2e-shard";

/// `yaml`, a Microservice named `name` as [`testapp`] writes it, labelled for the
/// operator [`start_sharded_operator`] started for `namespace`.
pub fn sharded(yaml: &str, name: &str, namespace: &str) -> String {
    yaml.replacen(
        &format!("metadata:\n  name: {name}\n"),
        &format!("metadata:\n  name: {name}\n  labels: {{{SHARD_LABEL}: {namespace}}}\n"),
        1,
    )
}

/// `flotilla run` for one namespace, its endpoints on free loopback ports (the log says
/// which: [`Operator::logged_addr`]).
pub fn run_args(namespace: &str) -> Vec<&str> {
    vec![
        "run",
        "--namespace",
        namespace,
        "--metrics-addr",
        "127.0.0.1:0",
        "--health-addr",
        "127.0.0.1:0",
    ]
}

/// A condition of a Microservice's status.
pub fn condition<'a>(ms: &'a Microservice, type_: &str) -> Option<&'a Condition> {
    ms.status.as_ref()?.condition(type_)
}

/// One line describing the conditions, for timeout messages.
pub fn describe(ms: &Microservice) -> String {
    let Some(status) = &ms.status else {
        return "no status yet".into();
    };
    let conditions: Vec<String> = status
        .conditions
        .iter()
        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect();
    format!(
        "generation {:?}, observedGeneration {:?}, replicas {}/{} ready, {}",
        ms.metadata.generation,
        status.observed_generation,
        status.ready_replicas,
        status.replicas,
        conditions.join("; ")
    )
}

/// Waits until `check` holds on the Microservice's current generation.
pub async fn wait_microservice(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Microservice) -> bool,
) -> anyhow::Result<Microservice> {
    let api: Api<Microservice> = Api::namespaced(client.clone(), namespace);
    wait_for(
        format!("Microservice {namespace}/{name}: {what}"),
        CONVERGE,
        || {
            let api = api.clone();
            let check = &check;
            async move {
                let ms = api.get(name).await?;
                let current = ms.status.as_ref().and_then(|s| s.observed_generation)
                    == ms.metadata.generation;
                Ok(if current && check(&ms) {
                    Poll::Ready(ms)
                } else {
                    Poll::Pending(describe(&ms))
                })
            }
        },
    )
    .await
}

/// Waits for `Ready` with this reason (e.g. `PolicyViolation`) on the current generation.
pub async fn wait_reason(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    status: &str,
    reason: &str,
) -> anyhow::Result<Microservice> {
    wait_microservice(
        client,
        namespace,
        name,
        &format!("Ready={status} reason {reason}"),
        |ms| condition(ms, "Ready").is_some_and(|c| c.status == status && c.reason == reason),
    )
    .await
}

/// Waits for `Ready=True` on the current generation.
pub async fn wait_ready(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Microservice> {
    wait_microservice(
        client,
        namespace,
        name,
        "Ready=True",
        Microservice::is_ready,
    )
    .await
}

/// Waits until no object of kind `K` named `name` exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(format!("{name} to be deleted"), CONVERGE, || async {
        Ok(match api.get_opt(name).await? {
            None => Poll::Ready(()),
            Some(_) => Poll::Pending(format!("{name} still exists")),
        })
    })
    .await
}

/// Names of the objects of kind `K` in the namespace carrying a label selector.
pub async fn names<K>(api: &Api<K>, selector: &str) -> anyhow::Result<Vec<String>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = api.list(&ListParams::default().labels(selector)).await?;
    let mut names: Vec<String> = list
        .items
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect();
    names.sort();
    Ok(names)
}

/// A Microservice of the test app image: `extra` is appended under `spec:` (indented
/// two spaces by the caller's YAML).
pub fn testapp(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: flotilla.dev/v1alpha1
kind: Microservice
metadata:
  name: {name}
spec:
  image: flotilla.local/testapp:v1
  imagePullPolicy: IfNotPresent
  ports:
  - name: http
    port: 80
    targetPort: 8080
    protocol: TCP
    appProtocol: http
  env:
  - name: SERVICE_NAME
    value: {name}
{extra}"
    )
}

/// The ClusterIP of a Service.
pub async fn cluster_ip(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<String> {
    let svc = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    Ok(svc.spec.and_then(|s| s.cluster_ip).unwrap_or_default())
}

/// An annotation of a Deployment's pod template.
pub fn template_annotation(deployment: &Deployment, key: &str) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

/// The literal value of an env var of a Deployment's (only) container.
pub fn env_value(deployment: &Deployment, name: &str) -> Option<String> {
    deployment.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// The Microservices a NetworkPolicy's ingress admits as callers (Flotilla merges the
/// callers of one namespace and ports into one rule, `app.kubernetes.io/instance In
/// [...]`), each with the namespace its peer names (None: the policy's own).
pub fn admitted_callers(policy: &NetworkPolicy) -> BTreeSet<(Option<String>, String)> {
    let spec = serde_json::to_value(&policy.spec).unwrap_or_default();
    let mut callers = BTreeSet::new();
    for peer in spec["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["from"].as_array().cloned().unwrap_or_default())
    {
        let namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            .as_str()
            .map(String::from);
        let expressions = peer["podSelector"]["matchExpressions"].as_array().cloned();
        for expression in expressions.into_iter().flatten() {
            if expression["key"] == "app.kubernetes.io/instance" && expression["operator"] == "In" {
                for name in expression["values"].as_array().into_iter().flatten() {
                    if let Some(name) = name.as_str() {
                        callers.insert((namespace.clone(), name.to_string()));
                    }
                }
            }
        }
    }
    callers
}
