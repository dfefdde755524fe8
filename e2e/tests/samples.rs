//! The sample shop (sample-services/) on real pods: the six Microservices of
//! sample-services/manifests, deployed by their own operator under the class `shop`,
//! take real orders, keep them in a PostgreSQL database of their own on this machine
//! (e2e/cluster/postgres.sh) across new orders pods, commit the stock through NATS
//! (order.placed), storefront is exposed through an Ingress, and the NetworkPolicies
//! admit exactly the callers the dependency graph declares (and the ingress controller).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use flotilla::api::MicroserviceClass;
use flotilla_e2e::steps::{admitted_callers, wait_microservice, wait_ready};
use flotilla_e2e::{
    ClusterObject, HttpResponse, Poll, Scenario, apply_yaml, http_get, http_post_json, kubectl,
    wait_for,
};
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use serde_json::{Value, json};

const SERVICES: [&str; 6] = [
    "users",
    "inventory",
    "payments",
    "orders",
    "storefront",
    "nats",
];
/// The class of sample-services/manifests/class.yaml, and its host suffix.
const CLASS: &str = "shop";
const HOST_SUFFIX: &str = "127.0.0.1.nip.io";
/// The database address class.yaml carries until it is replaced with the real one.
const CIDR_PLACEHOLDER: &str = r#"cidrs: ["127.0.0.1/32"]"#;
/// The pods of orders.
const ORDERS_PODS: &str = "app.kubernetes.io/name=orders";

/// e2e/cluster/postgres.sh with `args`; its stdout.
fn postgres(args: &[&str]) -> anyhow::Result<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cluster/postgres.sh");
    let out = Command::new(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "postgres.sh {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The test's own database on this machine's PostgreSQL (e2e/cluster/postgres.sh: started
/// if it is not running, and left running), named after the namespace; dropped with it.
struct Database {
    name: String,
    /// uri, host, port, username, password, dbname.
    connection: BTreeMap<String, String>,
}

impl Database {
    fn provision(ns: &str) -> anyhow::Result<Self> {
        postgres(&["up"])?;
        let name = ns.replace('-', "_");
        let printed = postgres(&["database", &name])?;
        let connection: BTreeMap<String, String> = serde_json::from_str(&printed)
            .with_context(|| format!("postgres.sh database printed {printed:?}"))?;
        let database = Self { name, connection };
        anyhow::ensure!(
            database.host() != "127.0.0.1",
            "PostgreSQL does not listen on an address pods reach (postgres.sh status)"
        );
        Ok(database)
    }

    fn host(&self) -> &str {
        self.connection.get("host").map_or("", String::as_str)
    }

    /// The Secret the class `shop` gives orders as its `db` ("{microservice}-{service}").
    fn secret(&self) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("orders-db".into()),
                ..ObjectMeta::default()
            },
            string_data: Some(self.connection.clone()),
            ..Secret::default()
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = postgres(&["drop", &self.name]) {
            eprintln!("dropping database {}: {e:#}", self.name);
        }
    }
}

/// Every document of sample-services/manifests, as a user would apply them (the
/// Kustomization file is not a .yaml file and is left out, as `kubectl apply -f` does),
/// the class's database address set to `db_host`, as `make demo` sets it.
fn manifests(db_host: &str) -> anyhow::Result<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sample-services/manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    let mut all = String::new();
    for file in files {
        all.push_str("---\n");
        all.push_str(&std::fs::read_to_string(&file)?);
        all.push('\n');
    }
    anyhow::ensure!(
        all.matches(CIDR_PLACEHOLDER).count() == 1,
        "class.yaml's postgres endpoint no longer reads {CIDR_PLACEHOLDER}"
    );
    Ok(all.replace(CIDR_PLACEHOLDER, &format!(r#"cidrs: ["{db_host}/32"]"#)))
}

/// POSTs an order through storefront, again while orders answers 503: it refuses orders,
/// before taking stock or money, until it has reached the broker, which may take it a
/// few seconds after the broker is Ready.
async fn place_order(ip: &str, body: &Value) -> anyhow::Result<HttpResponse> {
    wait_for(
        "orders to take an order (not 503)",
        Duration::from_secs(60),
        || async {
            // Only a 503 is tried again: after anything else the order may have been taken.
            Ok(match http_post(ip, "/api/orders", body).await {
                Ok(r) if r.status == 503 => Poll::Pending(format!("HTTP 503: {}", r.body)),
                other => Poll::Ready(other),
            })
        },
    )
    .await?
}

/// POSTs JSON to `http://ip:80{path}` from the host.
async fn http_post(ip: &str, path: &str, body: &Value) -> anyhow::Result<HttpResponse> {
    http_post_json(&format!("http://{ip}:80{path}"), body).await
}

fn json_of(response: &HttpResponse) -> anyhow::Result<Value> {
    serde_json::from_str(&response.body).with_context(|| {
        format!(
            "HTTP {} body is not JSON: {}",
            response.status, response.body
        )
    })
}

/// Per SKU as storefront reports it (storefront -> inventory, through the graph): units
/// available to order and units on the shelf (`stock`, down once a sale is committed).
async fn stock(ip: &str) -> anyhow::Result<BTreeMap<String, (u64, u64)>> {
    let response = http_get(&format!("http://{ip}:80/api/products")).await?;
    if response.status != 200 {
        bail!(
            "GET /api/products: HTTP {}: {}",
            response.status,
            response.body
        );
    }
    Ok(json_of(&response)?
        .as_array()
        .ok_or_else(|| anyhow!("not a list: {}", response.body))?
        .iter()
        .filter_map(|p| {
            let units = (p["available"].as_u64()?, p["stock"].as_u64()?);
            Some((p["sku"].as_str()?.to_string(), units))
        })
        .collect())
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The Microservices whose pods a NetworkPolicy's ingress admits by instance label, and
/// whether some rule admits other sources (namespace selectors, CIDRs).
fn admitted(policy: &NetworkPolicy) -> anyhow::Result<(BTreeSet<String>, Vec<Value>)> {
    let spec = serde_json::to_value(&policy.spec)?;
    let mut callers = BTreeSet::new();
    let mut other = Vec::new();
    for peer in spec["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["from"].as_array().cloned().unwrap_or_default())
    {
        // Callers of this namespace: Flotilla's merged `instance In [...]` rules.
        let merged = peer.get("namespaceSelector").is_none()
            && peer["podSelector"]["matchExpressions"][0]["key"] == "app.kubernetes.io/instance";
        if !merged {
            other.push(peer);
        }
    }
    callers.extend(
        admitted_callers(policy)
            .into_iter()
            .filter(|(namespace, _)| namespace.is_none())
            .map(|(_, name)| name),
    );
    Ok((callers, other))
}

#[tokio::test]
async fn sample_shop_takes_orders_and_its_policies_follow_the_graph() -> anyhow::Result<()> {
    let s = Scenario::without_operator("samples").await?;
    let (client, ns) = (s.client(), s.ns());
    // The class is cluster-scoped and shared with `make demo` on the same cluster: deleted
    // at the end only when this test created it.
    let classes: Api<MicroserviceClass> = Api::all(client.clone());
    let _class = match classes.get_opt(CLASS).await? {
        Some(_) => None,
        None => Some(ClusterObject::new("microserviceclass.flotilla.dev", CLASS)),
    };
    // Its own database, and the Secret the class points orders at.
    let database = Database::provision(ns)?;
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &database.secret())
        .await?;
    eprintln!("database {} at {}:55432", database.name, database.host());
    let _operator = s.start_operator(&[])?;
    apply_yaml(ns, &manifests(database.host())?)?;
    for name in SERVICES {
        let ms = wait_ready(client, ns, name).await?;
        let status = ms.status.unwrap_or_default();
        eprintln!(
            "{name} Ready: {} (class {:?})",
            status.replica_summary.unwrap_or_default(),
            status.class_name
        );
        assert_eq!(status.class_name.as_deref(), Some(CLASS), "{name}");
    }

    // The class: cluster-scoped (no namespace stamped on it by `apply -n`), not default.
    let class = classes.get(CLASS).await?;
    assert_eq!(class.metadata.namespace, None);
    assert!(
        !class.spec.default,
        "the sample class must not be the default"
    );
    let table = kubectl(&["get", "msc", CLASS])?;
    eprintln!("{table}");

    // Its defaults: the team label on every pod.
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=flotilla"))
        .await?;
    assert!(!pods.items.is_empty());
    for pod in &pods.items {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("team").map(String::as_str),
            Some("shop"),
            "pod {:?}",
            pod.metadata.name
        );
    }

    // storefront is exposed: an Ingress of class nginx for its default host, and its
    // external URL.
    let host = format!("storefront.{ns}.{HOST_SUFFIX}");
    let storefront = wait_microservice(client, ns, "storefront", "an external URL", |ms| {
        ms.status.as_ref().is_some_and(|s| s.external_url.is_some())
    })
    .await?;
    assert_eq!(
        storefront.status.and_then(|s| s.external_url).as_deref(),
        Some(format!("http://{host}/").as_str())
    );
    let ingress = Api::<Ingress>::namespaced(client.clone(), ns)
        .get("storefront")
        .await?;
    let annotations = ingress.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("nginx.ingress.kubernetes.io/proxy-body-size")
            .map(String::as_str),
        Some("64k")
    );
    let spec = serde_json::to_value(ingress.spec)?;
    assert_eq!(spec["ingressClassName"], "nginx", "{spec}");
    assert_eq!(spec["rules"][0]["host"], host.as_str(), "{spec}");
    assert_eq!(
        spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"], "storefront",
        "{spec}"
    );
    let others = kubectl(&["get", "ingress", "-n", ns, "-o", "name"])?;
    assert_eq!(
        others.trim(),
        "ingress.networking.k8s.io/storefront",
        "only storefront is exposed"
    );

    let ip = Api::<Service>::namespaced(client.clone(), ns)
        .get("storefront")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("storefront has no ClusterIP")?;
    // Ready pods are in the endpoints; kube-proxy's rules on the host may trail a moment.
    let before = wait_for(
        "storefront to list the products from inventory",
        Duration::from_secs(60),
        || async {
            Ok(match stock(&ip).await {
                Ok(s) if s.len() == 5 => Poll::Ready(s),
                Ok(s) => Poll::Pending(format!("{s:?}")),
                Err(e) => Poll::Pending(format!("{e:#}")),
            })
        },
    )
    .await?;

    let user = http_post(
        &ip,
        "/api/users",
        &json!({"name": "E2E Customer", "email": "e2e@example.com"}),
    )
    .await?;
    assert_eq!(user.status, 201, "{}", user.body);
    let user_id = json_of(&user)?["id"].as_str().context("no id")?.to_string();

    // 2 mugs (12.00) and 1 tea (6.50): well under the payments limit.
    let ordered = Instant::now();
    let paid = place_order(
        &ip,
        &json!({"userId": user_id, "items": [
            {"sku": "mug-enamel", "quantity": 2}, {"sku": "tea-earl-grey", "quantity": 1}]}),
    )
    .await?;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let paid = json_of(&paid)?;
    assert_eq!(paid["status"], "confirmed", "{paid}");
    assert_eq!(paid["totalCents"], 3050, "{paid}");

    // 4 grinders at 129.00: over the 500.00 limit, declined, and the stock released.
    let declined = http_post(
        &ip,
        "/api/orders",
        &json!({"userId": user_id, "items": [{"sku": "grinder-burr", "quantity": 4}]}),
    )
    .await?;
    assert_eq!(declined.status, 402, "{}", declined.body);
    assert_eq!(
        json_of(&declined)?["status"],
        "declined",
        "{}",
        declined.body
    );

    // Reserved at once (available), sold once inventory has order.placed from NATS
    // (stock).
    let mut expected = before.clone();
    for (sku, quantity) in [("mug-enamel", 2), ("tea-earl-grey", 1)] {
        let units = expected.get_mut(sku).context("a sku")?;
        units.0 -= quantity;
        units.1 -= quantity;
    }
    let after = wait_for(
        "the stock to drop through order.placed",
        Duration::from_secs(30),
        || async {
            let after = stock(&ip).await?;
            Ok(if after == expected {
                Poll::Ready(after)
            } else {
                Poll::Pending(format!("{after:?}, want {expected:?}"))
            })
        },
    )
    .await?;
    eprintln!(
        "order -> stock through NATS: {} ms after the order was sent",
        ordered.elapsed().as_millis()
    );
    assert_eq!(after, expected, "before: {before:?}");

    // Each policy admits exactly the Microservices that declare it in dependsOn.
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    let expected_callers: [(&str, &[&str]); 6] = [
        ("users", &["orders", "storefront"]),
        ("inventory", &["orders", "storefront"]),
        ("payments", &["orders"]),
        ("orders", &["storefront"]),
        ("storefront", &[]),
        // Its backing-service users.
        ("nats", &["inventory", "orders"]),
    ];
    for (name, callers) in expected_callers {
        let policy = policies.get(name).await?;
        let (seen, other) = admitted(&policy)?;
        let want: BTreeSet<String> = callers.iter().map(|c| c.to_string()).collect();
        assert_eq!(seen, want, "callers admitted by {name}'s NetworkPolicy");
        // Only the edge is open beyond the graph: by its network.allowFrom, and to the
        // ingress controller's namespace (the class's expose.controller), as exposed.
        if name == "storefront" {
            assert_eq!(other.len(), 2, "storefront's extra sources: {other:?}");
            assert!(
                other.contains(&json!({"namespaceSelector": {}})),
                "storefront's extra sources: {other:?}"
            );
            assert!(
                other.iter().any(
                    |p| p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                        == "ingress-nginx"
                ),
                "storefront admits the ingress controller: {other:?}"
            );
        } else {
            assert!(
                other.is_empty(),
                "{name} admits more than its dependents: {other:?}"
            );
        }
    }

    // The orders live in the database: new orders pods serve the same order.
    let order_id = paid["orderId"].as_str().context("no orderId")?.to_string();
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let old: BTreeSet<String> = pods
        .list(&ListParams::default().labels(ORDERS_PODS))
        .await?
        .items
        .into_iter()
        .map(|p| pod_name(&p))
        .collect();
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels(ORDERS_PODS),
    )
    .await?;
    wait_for(
        "new orders pods, Ready",
        Duration::from_secs(150),
        || async {
            let now = pods
                .list(&ListParams::default().labels(ORDERS_PODS))
                .await?;
            let fresh_and_ready = !now.items.is_empty()
                && now
                    .items
                    .iter()
                    .all(|p| !old.contains(&pod_name(p)) && pod_ready(p));
            Ok(if fresh_and_ready {
                Poll::Ready(())
            } else {
                let seen: Vec<String> = now
                    .items
                    .iter()
                    .map(|p| format!("{}(ready={})", pod_name(p), pod_ready(p)))
                    .collect();
                Poll::Pending(format!("pods {seen:?} (deleted: {old:?})"))
            })
        },
    )
    .await?;
    let survived = wait_for(
        format!("order {order_id} from the new orders pods"),
        Duration::from_secs(60),
        || async {
            let response = http_get(&format!("http://{ip}:80/api/orders/{order_id}")).await?;
            Ok(if response.status == 200 {
                Poll::Ready(json_of(&response)?)
            } else {
                Poll::Pending(format!("HTTP {}: {}", response.status, response.body))
            })
        },
    )
    .await?;
    assert_eq!(survived, paid, "the order read back after new orders pods");

    // storefront releases as a canary: a banner edit (a new pod template through the
    // config hash) goes to a share of its pods first, next to the stable ones; a
    // promote skips the pauses, and the canary is gone once the new pods are stable.
    let rollout = |ms: &flotilla::api::Microservice| {
        ms.status
            .as_ref()
            .and_then(|s| s.rollout.clone())
            .unwrap_or_default()
    };
    let before = rollout(&wait_ready(client, ns, "storefront").await?);
    kubectl(&[
        "patch",
        "configmap",
        "storefront-config",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"banner":"Canary week"}}"#,
    ])?;
    let canary = wait_microservice(client, ns, "storefront", "a canary step", |ms| {
        let r = rollout(ms);
        r.strategy == Some(flotilla::api::RolloutStrategy::Canary)
            && r.step == Some(1)
            && r.revision != before.revision
    })
    .await?;
    eprintln!(
        "storefront canary: {}",
        rollout(&canary).message.unwrap_or_default()
    );
    let deployments = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), ns);
    wait_for(
        "the storefront-canary Deployment",
        Duration::from_secs(60),
        || async {
            Ok(match deployments.get_opt("storefront-canary").await? {
                Some(_) => Poll::Ready(()),
                None => Poll::Pending("not yet".into()),
            })
        },
    )
    .await?;
    let out = std::process::Command::new(flotilla_e2e::operator::binary())
        .args(["rollout", "promote", "storefront", "-n", ns])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let released = wait_microservice(client, ns, "storefront", "the banner released", |ms| {
        let r = rollout(ms);
        ms.is_ready()
            && r.phase == Some(flotilla::api::RolloutPhase::Healthy)
            && r.stable_revision == rollout(&canary).revision
    })
    .await?;
    eprintln!(
        "storefront released: {}",
        rollout(&released).message.unwrap_or_default()
    );
    wait_for("the canary to be gone", Duration::from_secs(90), || async {
        Ok(match deployments.get_opt("storefront-canary").await? {
            None => Poll::Ready(()),
            Some(_) => Poll::Pending("storefront-canary still exists".into()),
        })
    })
    .await?;
    Ok(())
}
