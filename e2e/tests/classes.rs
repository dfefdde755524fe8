//! MicroserviceClasses on a real cluster: policy, defaults, network mode, exposure and
//! class status. Each scenario runs its own `flotilla run --namespace` in its own
//! namespace. Classes are cluster-scoped and tests run two at a time, so each test names
//! its classes after its namespace and deletes them at the end; none is ever `default`
//! (a default class would apply to every other test's Microservices: the default-class
//! rules are unit-tested instead).

use std::collections::BTreeMap;

use flotilla::api::{Microservice, NetworkMode};
use flotilla_e2e::classes::{class_name, update_class, wait_class};
use flotilla_e2e::steps::{
    CONVERGE, condition, describe, names, sharded, start_sharded_operator, testapp, wait_gone,
    wait_microservice, wait_ready, wait_reason,
};
use flotilla_e2e::{Poll, Scenario, apply_class, apply_yaml, kubectl, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::Api;
use kube::api::DeleteParams;

const MANAGED: &str = "app.kubernetes.io/managed-by=flotilla";

/// The test app as a Microservice of `class`, with `extra` under `spec:`.
fn member(name: &str, class: &str, extra: &str) -> String {
    testapp(name, &format!("  class: {class}\n{extra}"))
}

/// The children Flotilla created for one Microservice, as `kind/name` lines.
fn children(ns: &str, name: &str) -> anyhow::Result<String> {
    kubectl(&[
        "get",
        "sa,deploy,svc,hpa,pdb,netpol,ingress",
        "-n",
        ns,
        "-l",
        &format!("app.kubernetes.io/instance={name}"),
        "-o",
        "name",
    ])
}

fn pod_template_labels(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// `requests.cpu`, `requests.memory`, `limits.cpu`, `limits.memory` of the container.
fn container_resources(deployment: &Deployment) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(resources) = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.resources.clone())
    else {
        return out;
    };
    for (kind, list) in [
        ("requests", resources.requests),
        ("limits", resources.limits),
    ] {
        for (key, quantity) in list.unwrap_or_default() {
            out.insert(format!("{kind}.{key}"), quantity.0);
        }
    }
    out
}

fn container_image(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

fn resources_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Waits until the Deployment satisfies `check`; returns it.
async fn wait_deployment(
    api: &Api<Deployment>,
    name: &str,
    what: &str,
    check: impl Fn(&Deployment) -> bool,
) -> anyhow::Result<Deployment> {
    wait_for(format!("Deployment {name}: {what}"), CONVERGE, || async {
        Ok(match api.get_opt(name).await? {
            Some(d) if check(&d) => Poll::Ready(d),
            Some(d) => Poll::Pending(format!(
                "generation {:?}, labels {:?}, resources {:?}",
                d.metadata.generation,
                pod_template_labels(&d),
                container_resources(&d)
            )),
            None => Poll::Pending("no Deployment".into()),
        })
    })
    .await
}

/// Waits until the pods of `instance` are all different from `before` (the rollout
/// replaced every one) and at least one runs.
async fn wait_pods_replaced(
    pods: &Api<Pod>,
    instance: &str,
    before: &[String],
) -> anyhow::Result<Vec<String>> {
    let selector = format!("app.kubernetes.io/instance={instance}");
    wait_for(
        format!("every pod of {instance} to be replaced"),
        CONVERGE,
        || async {
            let now = names(pods, &selector).await?;
            Ok(
                if !now.is_empty() && now.iter().all(|p| !before.contains(p)) {
                    Poll::Ready(now)
                } else {
                    Poll::Pending(format!("pods {now:?}, before {before:?}"))
                },
            )
        },
    )
    .await
}

/// The peers of a NetworkPolicy's ingress rules that select namespaces by their
/// `kubernetes.io/metadata.name` label, with the ports of their rule.
fn namespace_peers(policy: &NetworkPolicy) -> anyhow::Result<Vec<(String, String)>> {
    let spec = serde_json::to_value(&policy.spec)?;
    let mut found = Vec::new();
    for rule in spec["ingress"].as_array().into_iter().flatten() {
        for peer in rule["from"].as_array().into_iter().flatten() {
            if let Some(ns) =
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].as_str()
            {
                found.push((ns.to_string(), rule["ports"].to_string()));
            }
        }
    }
    Ok(found)
}

// a. A class's allowedImageRegistries refuses a Microservice from another registry:
//    Ready=False PolicyViolation naming the rule and the field, nothing created; a
//    compliant one converges; fixing the image converges the refused one. A running
//    Microservice that turns non-compliant keeps its children as they were.
#[tokio::test]
async fn policy_refuses_images_from_other_registries() -> anyhow::Result<()> {
    let s = Scenario::without_operator("cls-policy").await?;
    let (client, ns) = (s.client(), s.ns());
    let class = class_name(ns);
    let _class = apply_class(
        &class,
        "  policy:\n    allowedImageRegistries: [flotilla.local/]\n",
    )?;
    let _operator = s.start_operator(&[])?;

    apply_yaml(ns, &member("compliant", &class, ""))?;
    let rogue = member("rogue", &class, "")
        .replace("flotilla.local/testapp:v1", "ghcr.io/elsewhere/testapp:v1");
    apply_yaml(ns, &rogue)?;

    let ms = wait_ready(client, ns, "compliant").await?;
    assert_eq!(
        ms.status.and_then(|s| s.class_name).as_deref(),
        Some(class.as_str())
    );
    let refused = wait_reason(client, ns, "rogue", "False", "PolicyViolation").await?;
    let message = &condition(&refused, "Ready").unwrap().message;
    assert!(
        message.contains("allowedImageRegistries") && message.contains("spec.image"),
        "the message names the rule and the field: {message}"
    );
    assert_eq!(
        refused
            .status
            .as_ref()
            .and_then(|s| s.class_name.as_deref()),
        Some(class.as_str()),
        "{}",
        describe(&refused)
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    assert!(
        deployments.get_opt("rogue").await?.is_none(),
        "no Deployment for a refused Microservice"
    );
    let created = children(ns, "rogue")?;
    assert!(
        created.trim().is_empty(),
        "nothing created for it: {created}"
    );

    // The fix: an allowed image.
    apply_yaml(ns, &member("rogue", &class, ""))?;
    wait_ready(client, ns, "rogue").await?;

    // A running Microservice that breaks the policy is refused, and its Deployment is
    // left exactly as it was (its pods keep serving).
    let before = deployments.get("compliant").await?;
    apply_yaml(
        ns,
        &member("compliant", &class, "").replace("flotilla.local/testapp:v1", "nginx:1.27"),
    )?;
    let refused = wait_reason(client, ns, "compliant", "False", "PolicyViolation").await?;
    let message = &condition(&refused, "Ready").unwrap().message;
    assert!(message.contains("allowedImageRegistries"), "{message}");
    let after = deployments.get("compliant").await?;
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(
        container_image(&after).as_deref(),
        Some("flotilla.local/testapp:v1")
    );
    Ok(())
}

// b. Changing a class default rolls the pods of the Microservices using it, and a
//    Microservice's own fields win over the class's defaults, value by value.
#[tokio::test]
async fn class_defaults_apply_roll_and_yield_to_own_fields() -> anyhow::Result<()> {
    let s = Scenario::without_operator("cls-defaults").await?;
    let (client, ns) = (s.client(), s.ns());
    let class = class_name(ns);
    let defaults = |tier: &str, memory: &str| {
        format!(
            "  defaults:
    podLabels: {{tier: {tier}, team: e2e}}
    resources:
      requests: {{cpu: 30m, memory: {memory}}}
      limits: {{memory: 96Mi}}
"
        )
    };
    let _class = apply_class(&class, &defaults("gold", "40Mi"))?;
    let _operator = s.start_operator(&[])?;
    apply_yaml(ns, &member("plain", &class, ""))?;
    apply_yaml(
        ns,
        &member(
            "own",
            &class,
            "  resources:\n    requests: {cpu: 25m}\n  podTemplate:\n    labels: {tier: silver}\n",
        ),
    )?;
    wait_ready(client, ns, "plain").await?;
    wait_ready(client, ns, "own").await?;

    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let plain = deployments.get("plain").await?;
    let labels = pod_template_labels(&plain);
    assert_eq!(labels.get("tier").map(String::as_str), Some("gold"));
    assert_eq!(labels.get("team").map(String::as_str), Some("e2e"));
    assert_eq!(
        container_resources(&plain),
        resources_of(&[
            ("requests.cpu", "30m"),
            ("requests.memory", "40Mi"),
            ("limits.memory", "96Mi")
        ])
    );
    let own = deployments.get("own").await?;
    let labels = pod_template_labels(&own);
    assert_eq!(
        labels.get("tier").map(String::as_str),
        Some("silver"),
        "the Microservice's podTemplate label wins"
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("e2e"));
    assert_eq!(
        container_resources(&own),
        resources_of(&[
            ("requests.cpu", "25m"),
            ("requests.memory", "40Mi"),
            ("limits.memory", "96Mi")
        ]),
        "its own CPU request wins, the class fills the rest"
    );

    // A new default: the class's users roll, their own fields still win.
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let plain_pods = names(&pods, "app.kubernetes.io/instance=plain").await?;
    let own_generation = own.metadata.generation;
    update_class(&class, &defaults("platinum", "44Mi"))?;
    let plain = wait_deployment(&deployments, "plain", "the new class defaults", |d| {
        pod_template_labels(d).get("tier").map(String::as_str) == Some("platinum")
            && container_resources(d)
                .get("requests.memory")
                .map(String::as_str)
                == Some("44Mi")
    })
    .await?;
    assert!(plain.metadata.generation > Some(1), "a new pod template");
    let replaced = wait_pods_replaced(&pods, "plain", &plain_pods).await?;
    println!("plain rolled: pods {plain_pods:?} -> {replaced:?}");
    wait_ready(client, ns, "plain").await?;

    let own = wait_deployment(&deployments, "own", "the new memory default", |d| {
        container_resources(d)
            .get("requests.memory")
            .map(String::as_str)
            == Some("44Mi")
    })
    .await?;
    assert!(own.metadata.generation > own_generation);
    assert_eq!(
        pod_template_labels(&own).get("tier").map(String::as_str),
        Some("silver")
    );
    assert_eq!(
        container_resources(&own)
            .get("requests.cpu")
            .map(String::as_str),
        Some("25m")
    );
    wait_ready(client, ns, "own").await?;
    Ok(())
}

// c. networkMode: permissive deletes the NetworkPolicy, strict creates it again.
#[tokio::test]
async fn network_mode_permissive_deletes_and_strict_restores_the_policy() -> anyhow::Result<()> {
    let s = Scenario::without_operator("cls-network").await?;
    let (client, ns) = (s.client(), s.ns());
    let class = class_name(ns);
    let mode = |mode: &str| format!("  policy:\n    networkMode: {mode}\n");
    let _class = apply_class(&class, &mode("strict"))?;
    let _operator = s.start_operator(&[])?;
    apply_yaml(ns, &member("mesh", &class, ""))?;
    wait_ready(client, ns, "mesh").await?;
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    assert!(
        policies.get_opt("mesh").await?.is_some(),
        "strict: a policy"
    );

    update_class(&class, &mode("permissive"))?;
    wait_gone(&policies, "mesh").await?;
    wait_ready(client, ns, "mesh").await?;
    let left = names(&policies, MANAGED).await?;
    assert!(left.is_empty(), "permissive: no policy at all: {left:?}");

    update_class(&class, &mode("strict"))?;
    wait_for("the NetworkPolicy to be re-created", CONVERGE, || async {
        Ok(match policies.get_opt("mesh").await? {
            Some(p) => Poll::Ready(p),
            None => Poll::Pending("no NetworkPolicy".into()),
        })
    })
    .await?;
    wait_ready(client, ns, "mesh").await?;
    Ok(())
}

// d. spec.expose.http: an Ingress with the class's ingressClassName, host (prefix +
//    suffix, or <name>.<namespace>.<suffix>), annotations and TLS; status.externalUrl;
//    the NetworkPolicy admits the controller's namespace on the exposed port. Removing
//    expose deletes the Ingress.
#[tokio::test]
async fn exposed_microservice_gets_its_ingress() -> anyhow::Result<()> {
    let s = Scenario::without_operator("cls-expose").await?;
    let (client, ns) = (s.client(), s.ns());
    let class = class_name(ns);
    let suffix = "apps.e2e.test";
    let _class = apply_class(
        &class,
        &format!(
            "  expose:
    ingressClassName: nginx
    hostSuffix: {suffix}
    annotations:
      e2e.flotilla.dev/note: from-the-class
"
        ),
    )?;
    let _operator = s.start_operator(&[])?;
    let exposed = "  expose:
    http:
      hostPrefix: www
      paths: [{path: /, pathType: Prefix, port: http}]
      tls: {secretName: web-tls}
";
    apply_yaml(ns, &member("web", &class, exposed))?;
    apply_yaml(ns, &member("api", &class, "  expose:\n    http: {}\n"))?;

    let web = wait_ready(client, ns, "web").await?;
    let status = web.status.clone().unwrap_or_default();
    let host = format!("www.{suffix}");
    assert_eq!(
        status.external_url.as_deref(),
        Some(format!("https://{host}/").as_str()),
        "{}",
        describe(&web)
    );
    assert_eq!(status.class_name.as_deref(), Some(class.as_str()));

    let ingresses = Api::<Ingress>::namespaced(client.clone(), ns);
    let ingress = ingresses.get("web").await?;
    let annotations = ingress.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("e2e.flotilla.dev/note").map(String::as_str),
        Some("from-the-class")
    );
    let owner = ingress
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert!(
        owner
            .iter()
            .any(|o| o.kind == "Microservice" && o.name == "web" && o.controller == Some(true)),
        "{owner:?}"
    );
    let spec = serde_json::to_value(ingress.spec.clone())?;
    assert_eq!(spec["ingressClassName"], "nginx", "{spec}");
    assert_eq!(spec["rules"][0]["host"], host.as_str(), "{spec}");
    let path = &spec["rules"][0]["http"]["paths"][0];
    assert_eq!(path["path"], "/", "{spec}");
    assert_eq!(path["pathType"], "Prefix", "{spec}");
    let backend = &path["backend"]["service"];
    assert_eq!(backend["name"], "web", "{spec}");
    assert!(
        backend["port"]["name"] == "http" || backend["port"]["number"] == 80,
        "the backend is the Service's http port: {spec}"
    );
    assert_eq!(
        spec["tls"],
        serde_json::json!([{"hosts": [host], "secretName": "web-tls"}]),
        "{spec}"
    );

    // The default host, plain HTTP.
    let api = wait_microservice(client, ns, "api", "an external URL", |ms| {
        ms.status.as_ref().is_some_and(|s| s.external_url.is_some())
    })
    .await?;
    let api_host = format!("api.{ns}.{suffix}");
    assert_eq!(
        api.status.and_then(|s| s.external_url).as_deref(),
        Some(format!("http://{api_host}/").as_str())
    );
    let api_ingress = serde_json::to_value(ingresses.get("api").await?.spec)?;
    assert_eq!(api_ingress["rules"][0]["host"], api_host.as_str());
    assert!(api_ingress.get("tls").is_none(), "{api_ingress}");

    // The controller's namespace (default ingress-nginx) may reach the exposed port.
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    let peers = namespace_peers(&policies.get("web").await?)?;
    assert!(
        peers.iter().any(|(ns, ports)| ns == "ingress-nginx"
            && (ports.contains("8080") || ports.contains("\"http\""))),
        "the controller's namespace on the exposed port: {peers:?}"
    );

    // No more expose: no Ingress, no external URL, no controller rule.
    apply_yaml(ns, &member("web", &class, ""))?;
    wait_gone(&ingresses, "web").await?;
    let web = wait_microservice(client, ns, "web", "no external URL", |ms| {
        ms.status.as_ref().is_some_and(|s| s.external_url.is_none())
    })
    .await?;
    assert!(web.is_ready(), "{}", describe(&web));
    wait_for(
        "the controller rule to leave web's NetworkPolicy",
        CONVERGE,
        || async {
            let peers = namespace_peers(&policies.get("web").await?)?;
            Ok(if peers.iter().any(|(ns, _)| ns == "ingress-nginx") {
                Poll::Pending(format!("{peers:?}"))
            } else {
                Poll::Ready(())
            })
        },
    )
    .await?;
    assert!(
        ingresses.get_opt("api").await?.is_some(),
        "api keeps its Ingress"
    );
    Ok(())
}

// e. A class that does not exist: Ready=False ClassNotFound and nothing created; the
//    class appearing makes the Microservice converge.
#[tokio::test]
async fn missing_class_then_created() -> anyhow::Result<()> {
    let s = Scenario::new("cls-missing").await?;
    let (client, ns) = (s.client(), s.ns());
    let class = class_name(ns);
    apply_yaml(ns, &member("waiting", &class, ""))?;
    let ms = wait_reason(client, ns, "waiting", "False", "ClassNotFound").await?;
    let message = &condition(&ms, "Ready").unwrap().message;
    assert!(
        message.contains(&class),
        "the message names the class: {message}"
    );
    let created = children(ns, "waiting")?;
    assert!(created.trim().is_empty(), "nothing created: {created}");

    let _class = apply_class(&class, "  defaults:\n    podLabels: {arrived: \"yes\"}\n")?;
    let ms = wait_ready(client, ns, "waiting").await?;
    assert_eq!(
        ms.status.and_then(|s| s.class_name).as_deref(),
        Some(class.as_str())
    );
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("waiting")
        .await?;
    assert_eq!(
        pod_template_labels(&deployment)
            .get("arrived")
            .map(String::as_str),
        Some("yes")
    );
    Ok(())
}

// f. An operator started with --class-status=true counts the class's Microservices and
//    violations in its status, which `kubectl get msc` shows.
#[tokio::test]
async fn class_status_counts_services_and_violations() -> anyhow::Result<()> {
    let s = Scenario::without_operator("cls-status").await?;
    let (client, ns) = (s.client(), s.ns());
    let class = class_name(ns);
    let _class = apply_class(
        &class,
        "  policy:\n    allowedImageRegistries: [flotilla.local/]\n    maxReplicas: 3\n",
    )?;
    let _operator = s.start_operator(&["--class-status=true"])?;
    apply_yaml(ns, &member("one", &class, ""))?;
    apply_yaml(ns, &member("two", &class, ""))?;
    apply_yaml(ns, &member("greedy", &class, "  replicas: 5\n"))?;
    wait_reason(client, ns, "greedy", "False", "PolicyViolation").await?;

    let counted = wait_class(client, &class, "3 services, 1 violation", |c| {
        c.status.as_ref().is_some_and(|s| {
            s.services == 3 && s.violations == 1 && s.observed_generation == c.metadata.generation
        })
    })
    .await?;
    let status = counted.status.clone().unwrap_or_default();
    assert_eq!(status.network_mode, Some(NetworkMode::Strict));
    let accepted = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Accepted")
        .map(|c| c.status.as_str());
    assert_eq!(accepted, Some("True"), "{status:?}");

    let table = kubectl(&["get", "msc", &class, "-o", "wide"])?;
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "DEFAULT",
            "NETWORK",
            "MODE",
            "SERVICES",
            "VIOLATIONS",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..5],
        [class.as_str(), "false", "strict", "3", "1"],
        "{table}"
    );
    println!("{table}");

    // Fixed: no violation. Deleted: one service fewer.
    apply_yaml(ns, &member("greedy", &class, "  replicas: 2\n"))?;
    Api::<Microservice>::namespaced(client.clone(), ns)
        .delete("two", &DeleteParams::default())
        .await?;
    wait_class(client, &class, "2 services, no violation", |c| {
        c.status
            .as_ref()
            .is_some_and(|s| s.services == 2 && s.violations == 0)
    })
    .await?;
    wait_ready(client, ns, "greedy").await?;
    Ok(())
}

// 7. Classes bound to tenants, under a cluster-wide operator (the only kind that reads
//    namespace labels) that requires a class, sharded by a label so it leaves the other
//    tests alone: a class bound to another team's namespaces is refused (ClassNotAllowed,
//    nothing applied), a Microservice naming none is refused (ClassRequired), and
//    labelling the namespace for the team admits it within seconds.
#[tokio::test]
async fn a_team_uses_only_its_classes_and_a_class_is_required() -> anyhow::Result<()> {
    let s = Scenario::without_operator("cls-tenant").await?;
    let (client, n) = (s.client(), s.ns());
    let class = class_name(n);
    let _class = apply_class(
        &class,
        &format!("  namespaceSelector:\n    matchLabels: {{flotilla.dev/e2e-team: {n}}}\n"),
    )?;
    let _operator = start_sharded_operator(n, &["--require-class=true"])?;
    apply_yaml(n, &sharded(&member("alpha", &class, ""), "alpha", n))?;
    apply_yaml(n, &sharded(&testapp("bravo", ""), "bravo", n))?;

    let refused = wait_reason(client, n, "alpha", "False", "ClassNotAllowed").await?;
    let message = &condition(&refused, "Ready").expect("Ready").message;
    assert!(
        message.contains(&class) && message.contains(n) && message.contains("namespaceSelector"),
        "{message}"
    );
    let required = wait_reason(client, n, "bravo", "False", "ClassRequired").await?;
    let message = &condition(&required, "Ready").expect("Ready").message;
    assert!(message.contains("--require-class"), "{message}");
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    for name in ["alpha", "bravo"] {
        let applied = deployments.get_opt(name).await?;
        assert!(applied.is_none(), "{name}: a Deployment was applied");
    }

    // The namespace joins the team: alpha may use the class now.
    kubectl(&[
        "label",
        "namespace",
        n,
        &format!("flotilla.dev/e2e-team={n}"),
    ])?;
    let labelled = std::time::Instant::now();
    wait_ready(client, n, "alpha").await?;
    println!(
        "namespace labelled for the team: alpha Ready {:.1} s later",
        labelled.elapsed().as_secs_f64()
    );
    Ok(())
}

// 8. Egress under a strict class: a rule reaching the cloud metadata service
//    (169.254.169.254) is refused, the field and the address named, nothing applied; a
//    rule to a plain network is applied in the NetworkPolicy.
#[tokio::test]
async fn egress_to_the_metadata_service_is_refused_under_a_class() -> anyhow::Result<()> {
    let s = Scenario::without_operator("cls-egress").await?;
    let (client, n) = (s.client(), s.ns());
    let class = class_name(n);
    let _class = apply_class(&class, "  policy:\n    networkMode: strict\n")?;
    let _operator = s.start_operator(&[])?;
    let egress = |cidr: &str| format!("  network:\n    egress:\n    - cidrs: ['{cidr}']\n");
    apply_yaml(n, &member("leaky", &class, &egress("169.254.169.254/32")))?;
    apply_yaml(n, &member("tidy", &class, &egress("203.0.113.0/24")))?;

    let refused = wait_reason(client, n, "leaky", "False", "PolicyViolation").await?;
    let message = &condition(&refused, "Ready").expect("Ready").message;
    assert!(
        message.contains("spec.network.egress[0].cidrs[0]") && message.contains("169.254.169.254"),
        "{message}"
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    assert!(
        deployments.get_opt("leaky").await?.is_none(),
        "leaky was applied"
    );
    wait_ready(client, n, "tidy").await?;
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), n)
        .get("tidy")
        .await?;
    let egress = serde_json::to_string(&policy.spec.unwrap_or_default().egress)?;
    assert!(egress.contains("203.0.113.0/24"), "{egress}");
    Ok(())
}
