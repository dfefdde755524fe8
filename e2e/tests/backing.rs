//! Backing services (`spec.backingServices`) on the real cluster: a class provides
//! `postgres` from an existing Secret, a testapp Microservice stands in for the database
//! (it answers HTTP where a database would answer its protocol: what is proven is the
//! wiring, the Secret's keys reaching the container and the path through the network).

use std::collections::BTreeMap;

use flotilla::api::labels::CONFIG_HASH_ANNOTATION;
use flotilla_e2e::classes::class_name;
use flotilla_e2e::probe::{PROBE_LABEL, Probe};
use flotilla_e2e::steps::{
    CONVERGE, cluster_ip, condition, describe, template_annotation, testapp, wait_microservice,
    wait_ready, wait_reason,
};
use flotilla_e2e::{Poll, Scenario, apply_class, apply_yaml, wait_for, wait_http};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};

fn secret(name: &str, data: &[(&str, String)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    }
}

// A required backing service holds the Deployment until its Secret exists, then the pod
// reads the Secret's keys and reaches the service; a rotated Secret rolls the pods.
#[tokio::test]
async fn a_backing_service_holds_the_rollout_until_its_secret_exists() -> anyhow::Result<()> {
    let s = Scenario::without_operator("backing").await?;
    let (client, ns) = (s.client(), s.ns());
    let class = class_name(ns);
    let _class = apply_class(
        &class,
        "  backingServices:
    postgres:
      secret:
        name: \"{microservice}-{service}-app\"
        endpoint:
          podSelector: {matchLabels: {app.kubernetes.io/name: db}}
          ports: [{port: 8080}]
",
    )?;
    let _operator = s.start_operator(&[])?;
    apply_yaml(ns, &testapp("db", ""))?;
    apply_yaml(
        ns,
        &testapp(
            "orders",
            &format!(
                "  class: {class}\n  backingServices:\n    db: {{type: postgres}}\n  network:\n    allowFrom:\n    - podSelector: {{matchLabels: {{app: {PROBE_LABEL}}}}}\n"
            ),
        ),
    )?;

    // 1. No Secret: held, and the status names the missing piece.
    let held = wait_reason(client, ns, "orders", "False", "BackingServiceNotFound").await?;
    let backing = condition(&held, "BackingServicesReady")
        .ok_or_else(|| anyhow::anyhow!("no BackingServicesReady: {}", describe(&held)))?;
    assert_eq!(backing.status, "False");
    assert_eq!(
        backing.message,
        "db (postgres): Secret orders-db-app not found"
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    assert!(
        deployments.get_opt("orders").await?.is_none(),
        "the Deployment waits for the Secret"
    );

    // 2. The Secret appears: the pods start with its keys and reach the service.
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let host = format!("db.{ns}.svc.cluster.local");
    secrets
        .create(
            &PostParams::default(),
            &secret(
                "orders-db-app",
                &[
                    ("uri", format!("http://{host}:80/")),
                    ("host", host.clone()),
                    ("port", "80".to_string()),
                    ("password", "first".to_string()),
                ],
            ),
        )
        .await?;
    let ready = wait_ready(client, ns, "orders").await?;
    assert_eq!(
        condition(&ready, "BackingServicesReady").map(|c| c.status.as_str()),
        Some("True"),
        "{}",
        describe(&ready)
    );
    let deployment = deployments.get("orders").await?;
    let container = &deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let db_url = container
        .env
        .iter()
        .flatten()
        .find(|v| v.name == "DB_URL")
        .and_then(|v| v.value_from.as_ref()?.secret_key_ref.clone())
        .ok_or_else(|| anyhow::anyhow!("no DB_URL from a Secret: {:?}", container.env))?;
    assert_eq!(
        (db_url.name.as_str(), db_url.key.as_str()),
        ("orders-db-app", "uri")
    );
    let ip = cluster_ip(client, ns, "orders").await?;
    wait_http(
        &format!("http://{ip}:80/call/DB_URL"),
        "the database stand-in's answer through DB_URL",
        |body| body.contains("\"service\":\"db\""),
    )
    .await?;

    // Under the class's strict default, egress to the service's pods on its port.
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .get("orders")
        .await?;
    let egress = policy.spec.and_then(|s| s.egress).unwrap_or_default();
    let to_db = egress.iter().find(|rule| {
        rule.ports.iter().flatten().any(|p| {
            p.port == Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
        }) && rule.to.iter().flatten().any(|peer| {
            peer.pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .and_then(|l| l.get("app.kubernetes.io/name"))
                .is_some_and(|name| name == "db")
        })
    });
    assert!(to_db.is_some(), "egress to db:8080 in {egress:?}");

    // 3. The Secret rotated: the pods roll and come back Ready, and a caller calling
    // every 50 ms throughout sees no failed request.
    let probe = Probe::start(client, ns, "orders").await?;
    let before = template_annotation(&deployment, CONFIG_HASH_ANNOTATION);
    secrets
        .patch(
            "orders-db-app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"password": "second"}})),
        )
        .await?;
    wait_for(
        "the pod template to follow the rotated Secret",
        CONVERGE,
        || {
            let deployments = deployments.clone();
            let before = before.clone();
            async move {
                let now =
                    template_annotation(&deployments.get("orders").await?, CONFIG_HASH_ANNOTATION);
                Ok(if now != before {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!("config hash still {now:?}"))
                })
            }
        },
    )
    .await?;
    wait_microservice(
        client,
        ns,
        "orders",
        "Ready=True after the rotation",
        |ms| {
            ms.is_ready()
                && ms
                    .status
                    .as_ref()
                    .is_some_and(|s| s.updated_replicas == s.replicas)
        },
    )
    .await?;
    // Answers from after the roll too, so the count covers all of it.
    let rolled = probe.counts().await?;
    let seen = probe
        .wait_until("20 answers after the roll", |c| c.ok >= rolled.ok + 20)
        .await?;
    println!(
        "backing: password rotated, pods rolled; the probe saw {} ok, {} failed",
        seen.ok, seen.failed
    );
    assert_eq!(
        seen.failed, 0,
        "failed requests during the rotation: {seen:?}"
    );
    Ok(())
}

/// The Microservices of its own namespace a NetworkPolicy's ingress admits, by name
/// (`steps::admitted_callers`), and its ports.
fn admitted(policy: &NetworkPolicy) -> (Vec<String>, Vec<String>) {
    let names = flotilla_e2e::steps::admitted_callers(policy)
        .into_iter()
        .filter(|(namespace, _)| namespace.is_none())
        .map(|(_, name)| name)
        .collect();
    let ports = policy
        .spec
        .iter()
        .flat_map(|s| s.ingress.iter().flatten())
        .flat_map(|rule| rule.ports.iter().flatten())
        .map(|p| format!("{:?}", p.port))
        .collect();
    (names, ports)
}

// A broker the class says a Microservice runs: its users are held until it exists, then
// get its address; each gets egress to it, and it admits exactly its users, following
// them as they come and go.
#[tokio::test]
async fn a_broker_run_as_a_microservice_admits_exactly_its_users() -> anyhow::Result<()> {
    let s = Scenario::without_operator("broker").await?;
    let (client, ns) = (s.client(), s.ns());
    let class = class_name(ns);
    let _class = apply_class(
        &class,
        "  policy:
    networkMode: strict
  backingServices:
    nats:
      microservice: {name: broker, port: http}
",
    )?;
    let _operator = s.start_operator(&[])?;
    let user = |name: &str, verb: &str| {
        testapp(
            name,
            &format!(
                "  class: {class}\n  backingServices:\n    events: {{type: nats}}\n  {verb}:\n  - {{backingService: events, subject: order.placed}}\n"
            ),
        )
    };
    apply_yaml(ns, &user("orders", "publishes"))?;
    apply_yaml(ns, &user("inventory", "consumes"))?;
    apply_yaml(ns, &testapp("users", &format!("  class: {class}\n")))?;

    // 1. No broker: the users are held, the status names it.
    let held = wait_reason(client, ns, "orders", "False", "BackingServiceNotFound").await?;
    let backing = condition(&held, "BackingServicesReady")
        .ok_or_else(|| anyhow::anyhow!("no BackingServicesReady: {}", describe(&held)))?;
    assert_eq!(
        backing.message,
        format!("events (nats): Microservice {ns}/broker not found")
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    assert!(deployments.get_opt("orders").await?.is_none());

    // 2. The broker appears: the users start and reach it through EVENTS_URL.
    apply_yaml(ns, &testapp("broker", &format!("  class: {class}\n")))?;
    wait_ready(client, ns, "orders").await?;
    wait_ready(client, ns, "inventory").await?;
    let ip = cluster_ip(client, ns, "orders").await?;
    wait_http(
        &format!("http://{ip}:80/call/EVENTS_URL"),
        "the broker's answer through EVENTS_URL",
        |body| body.contains("\"service\":\"broker\""),
    )
    .await?;

    // 3. Each user's egress reaches the broker's pods on its port only; the broker
    // admits exactly the two users, not users.
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    for name in ["orders", "inventory"] {
        let policy = policies.get(name).await?;
        let egress = policy.spec.and_then(|s| s.egress).unwrap_or_default();
        let to_broker: Vec<_> = egress
            .iter()
            .filter(|rule| {
                rule.to.iter().flatten().any(|peer| {
                    peer.pod_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        .and_then(|l| l.get("app.kubernetes.io/name"))
                        .is_some_and(|n| n == "broker")
                })
            })
            .collect();
        assert_eq!(
            to_broker.len(),
            1,
            "{name}'s egress to the broker: {egress:?}"
        );
        let ports: Vec<_> = to_broker[0]
            .ports
            .iter()
            .flatten()
            .map(|p| p.port.clone())
            .collect();
        assert_eq!(
            ports,
            [Some(
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080)
            )],
            "{name}"
        );
    }
    let broker_admits = |want: &'static [&'static str]| {
        let policies = policies.clone();
        move || {
            let policies = policies.clone();
            async move {
                let (names, ports) = admitted(&policies.get("broker").await?);
                Ok(if names == want {
                    Poll::Ready(ports)
                } else {
                    Poll::Pending(format!("the broker admits {names:?} on {ports:?}"))
                })
            }
        }
    };
    let ports = wait_for(
        "the broker to admit orders and inventory",
        CONVERGE,
        broker_admits(&["inventory", "orders"]),
    )
    .await?;
    assert_eq!(ports, ["Some(Int(8080))"]);
    println!("broker: admits [inventory, orders] on {ports:?}; users is not admitted");

    // 4. inventory stops using it: the broker no longer admits it.
    apply_yaml(ns, &testapp("inventory", &format!("  class: {class}\n")))?;
    wait_for(
        "the broker to admit orders only",
        CONVERGE,
        broker_admits(&["orders"]),
    )
    .await?;
    Ok(())
}

/// A minimal CRD standing in for a database operator's (CloudNativePG's `Cluster`): the
/// test plays its controller, writing the Ready condition and the connection Secret.
const DATABASE_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: databases.e2e.flotilla.dev
spec:
  group: e2e.flotilla.dev
  scope: Namespaced
  names: {plural: databases, singular: database, kind: Database, listKind: DatabaseList}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

// A class provisions the database from a template: Flotilla applies the object as the
// Microservice's child (with the chart's RBAC for that kind only), holds the Deployment
// until the object is Ready and its Secret exists, and garbage collection removes it with
// the Microservice. A kind the cluster does not serve is named in the status.
#[tokio::test]
async fn a_template_provisions_the_backing_service_and_waits_for_it() -> anyhow::Result<()> {
    let s = Scenario::without_operator("provision").await?;
    let (client, ns) = (s.client(), s.ns());
    // The CRD stays installed (other runs share it); the test's objects go with its
    // namespace.
    flotilla_e2e::apply::apply_cluster_yaml(DATABASE_CRD)?;
    flotilla_e2e::kubectl::kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/databases.e2e.flotilla.dev",
    ])?;
    let class = class_name(ns);
    let _class = apply_class(
        &class,
        "  backingServices:
    postgres:
      template:
        apiVersion: e2e.flotilla.dev/v1
        kind: Database
        spec: {owner: '{microservice}', database: '{service}', namespace: '{namespace}'}
        secret: {name: '{microservice}-{service}-conn'}
    redis:
      template:
        apiVersion: e2e.flotilla.dev/v1
        kind: Cache
        secret: {}
",
    )?;
    let mut args = flotilla_e2e::steps::run_args(ns);
    args.push("--watch-secrets=true");
    let _operator = flotilla_e2e::Operator::start_with_chart_values(
        ns,
        &args,
        &flotilla_e2e::steps::TEMPLATE_KIND_VALUES,
    )?;
    apply_yaml(
        ns,
        &testapp(
            "orders",
            &format!("  class: {class}\n  backingServices:\n    db: {{type: postgres}}\n"),
        ),
    )?;
    apply_yaml(
        ns,
        &testapp(
            "sessions",
            &format!("  class: {class}\n  backingServices:\n    cache: {{type: redis}}\n"),
        ),
    )?;

    // 1. The object is applied as the Microservice's child; not Ready yet: held.
    let databases = Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("e2e.flotilla.dev", "v1", "Database"),
            "databases",
        ),
    );
    let waiting = wait_microservice(client, ns, "orders", "waiting on its Database", |ms| {
        condition(ms, "BackingServicesReady").is_some_and(|c| {
            c.message == "db (postgres): Database orders-db has no Ready condition yet"
        })
    })
    .await?;
    let database = databases.get("orders-db").await?;
    assert_eq!(
        database.data["spec"],
        serde_json::json!({"owner": "orders", "database": "db", "namespace": ns}),
    );
    let owner = &database
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Microservice", "orders", Some(true)),
        "{}",
        describe(&waiting)
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    assert!(deployments.get_opt("orders").await?.is_none());

    // A kind the cluster does not serve: named, nothing applied.
    let unserved = wait_microservice(client, ns, "sessions", "naming the unserved kind", |ms| {
        condition(ms, "BackingServicesReady").is_some_and(|c| {
            c.message
                .contains("kind Cache (e2e.flotilla.dev/v1) is not served by this cluster")
        })
    })
    .await?;
    assert_eq!(
        condition(&unserved, "Ready").map(|c| c.status.as_str()),
        Some("False")
    );

    // 2. The database's controller (the test) says Ready and writes the Secret.
    databases
        .patch_status(
            "orders-db",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "Provisioned", "message": ""}
            ]}})),
        )
        .await?;
    let host = format!("db.{ns}.svc.cluster.local");
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &secret(
                "orders-db-conn",
                &[
                    ("uri", format!("http://{host}:80/")),
                    ("host", host.clone()),
                ],
            ),
        )
        .await?;
    let ready = wait_ready(client, ns, "orders").await?;
    assert_eq!(
        condition(&ready, "BackingServicesReady").map(|c| c.status.as_str()),
        Some("True"),
        "{}",
        describe(&ready)
    );
    let deployment = deployments.get("orders").await?;
    let env = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(
        env.iter().any(|v| v.name == "DB_URL"
            && v.value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
                .is_some_and(|r| r.name == "orders-db-conn")),
        "DB_URL from the provisioned Secret: {env:?}"
    );

    // 3. Removed with the Microservice: garbage collection follows the owner reference.
    flotilla_e2e::kubectl::kubectl(&["delete", "microservice", "orders", "-n", ns, "--wait"])?;
    wait_for("the Database to go with its Microservice", CONVERGE, || {
        let databases = databases.clone();
        async move {
            Ok(match databases.get_opt("orders-db").await? {
                None => Poll::Ready(()),
                Some(db) => Poll::Pending(format!(
                    "Database orders-db still there (deletionTimestamp {:?})",
                    db.metadata.deletion_timestamp
                )),
            })
        }
    })
    .await?;
    println!(
        "provision: Database applied as the Microservice's child, Deployment held until Ready and its Secret, removed with it; an unserved kind named in the status"
    );
    Ok(())
}
