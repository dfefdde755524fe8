//! Scenario 9: shards (issue 29). Three replicas, cluster-wide with the chart's identity,
//! split the Microservices of several namespaces into three shards by namespace: each
//! holds one shard's lease and reconciles only its namespaces. One is SIGKILLed: its
//! shard's lease expires and another replica takes it, and an edit made in that shard
//! after the kill is applied within the lease duration plus 10 s. The killed replica comes
//! back: the shards spread out again, one each.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use flotilla::api::Microservice;
use flotilla::leader::sharded::lease_name;
use flotilla::leader::shards::shard_of;
use flotilla_e2e::steps::{CONVERGE, SHARD_LABEL, sharded, testapp};
use flotilla_e2e::{Operator, Poll, Scenario, TestNamespace, apply_yaml, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::fleet::{lease_holder, set_version, wait_version};

const SHARDS: u32 = 3;
const LEASE: &str = "shards";
const LEASE_SECONDS: u64 = 10;
/// Microservices per namespace.
const PER_NAMESPACE: usize = 2;
const REPLICAS: [&str; 3] = ["op-a", "op-b", "op-c"];

/// A replica: cluster-wide, its Microservices those labelled for `release_ns`, its
/// leases in `release_ns`, its identity `identity`.
fn replica(release_ns: &str, identity: &str) -> anyhow::Result<Operator> {
    let selector = format!("{SHARD_LABEL}={release_ns}");
    let shards = SHARDS.to_string();
    let seconds = LEASE_SECONDS.to_string();
    Operator::start_cluster_wide_with_env(
        &format!("{release_ns}-{identity}"),
        release_ns,
        &[
            "run",
            "--selector",
            &selector,
            "--shards",
            &shards,
            "--lease-namespace",
            release_ns,
            "--lease-name",
            LEASE,
            "--lease-duration-seconds",
            &seconds,
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
        ],
        &[("POD_NAME", identity)],
    )
}

/// Holder of each shard's lease.
async fn holders(client: &kube::Client, ns: &str) -> anyhow::Result<BTreeMap<u32, Option<String>>> {
    let mut holders = BTreeMap::new();
    for shard in 0..SHARDS {
        holders.insert(
            shard,
            lease_holder(client, ns, &lease_name(LEASE, shard)).await?,
        );
    }
    Ok(holders)
}

/// Waits until every shard is held and each of `replicas` holds exactly one.
async fn wait_one_each(
    client: &kube::Client,
    ns: &str,
    replicas: &[&str],
    deadline: Duration,
) -> anyhow::Result<BTreeMap<u32, String>> {
    wait_for(
        format!("each of {replicas:?} to hold one shard"),
        deadline,
        || async {
            let holders = holders(client, ns).await?;
            let held: BTreeMap<u32, String> = holders
                .iter()
                .filter_map(|(s, h)| Some((*s, h.clone()?)))
                .collect();
            let distinct: BTreeSet<&String> = held.values().collect();
            Ok(
                if held.len() == SHARDS as usize
                    && distinct.len() == replicas.len()
                    && replicas.iter().all(|r| distinct.contains(&r.to_string()))
                {
                    Poll::Ready(held)
                } else {
                    Poll::Pending(format!("{holders:?}"))
                },
            )
        },
    )
    .await
}

#[tokio::test]
async fn three_replicas_share_the_shards_and_take_over_a_killed_ones() -> anyhow::Result<()> {
    let s = Scenario::without_operator("chaos-shards").await?;
    let (client, ns) = (s.client(), s.ns());
    // Namespaces until each shard has two.
    let mut namespaces: Vec<TestNamespace> = Vec::new();
    let mut per_shard: BTreeMap<u32, usize> = BTreeMap::new();
    while per_shard.len() < SHARDS as usize || per_shard.values().any(|&c| c < 2) {
        anyhow::ensure!(
            namespaces.len() < 40,
            "namespaces do not spread: {per_shard:?}"
        );
        let namespace = TestNamespace::new(client, "chaos-shard").await?;
        let shard = shard_of(namespace.name(), SHARDS);
        if per_shard.get(&shard).copied().unwrap_or(0) >= 2 {
            continue;
        }
        *per_shard.entry(shard).or_default() += 1;
        namespaces.push(namespace);
    }
    for namespace in &namespaces {
        let documents: Vec<String> = (0..PER_NAMESPACE)
            .map(|i| {
                let name = format!("svc-{i}");
                sharded(
                    &testapp(&name, "  - {name: VERSION, value: \"1\"}\n  replicas: 0\n"),
                    &name,
                    ns,
                )
            })
            .collect();
        apply_yaml(namespace.name(), &documents.join("---\n"))?;
    }

    let mut replicas: BTreeMap<String, Operator> = BTreeMap::new();
    for identity in REPLICAS {
        replicas.insert(identity.to_string(), replica(ns, identity)?);
    }
    let started = Instant::now();
    let held = wait_one_each(client, ns, &REPLICAS, Duration::from_secs(60)).await?;
    println!(
        "chaos: shards: {} held one each after {:.1} s: {held:?}",
        held.len(),
        started.elapsed().as_secs_f64()
    );
    for namespace in &namespaces {
        let deployments = Api::<Deployment>::namespaced(client.clone(), namespace.name());
        for i in 0..PER_NAMESPACE {
            wait_version(&deployments, &format!("svc-{i}"), "1", CONVERGE).await?;
        }
    }
    // Which namespaces each replica's shard holds.
    for (shard, holder) in &held {
        let own: Vec<&str> = namespaces
            .iter()
            .map(|n| n.name())
            .filter(|n| shard_of(n, SHARDS) == *shard)
            .collect();
        println!("chaos: shards: {holder} holds shard {shard}: namespaces {own:?}");
    }

    // Kill the holder of some namespace's shard; edit that namespace at once.
    let victim_ns = namespaces[0].name().to_string();
    let victim_shard = shard_of(&victim_ns, SHARDS);
    let victim = held[&victim_shard].clone();
    let killed = Instant::now();
    replicas
        .get_mut(&victim)
        .expect("a replica holds it")
        .kill9()?;
    set_version(
        &Api::<Microservice>::namespaced(client.clone(), &victim_ns),
        "svc-0",
        "2",
    )
    .await?;
    let bound = Duration::from_secs(LEASE_SECONDS + 10);
    wait_version(
        &Api::<Deployment>::namespaced(client.clone(), &victim_ns),
        "svc-0",
        "2",
        bound,
    )
    .await?;
    let applied = killed.elapsed();
    let holders_after = holders(client, ns).await?;
    let successor = holders_after[&victim_shard].clone();
    anyhow::ensure!(
        successor.as_deref().is_some_and(|s| s != victim),
        "shard {victim_shard} is held by {successor:?} after {victim} was killed"
    );
    println!(
        "chaos: shards: {victim} SIGKILLed; its shard {victim_shard} taken by {successor:?}, an edit \
         in {victim_ns} made after the kill applied {:.1} s later (bound: lease {LEASE_SECONDS} s + 10 s); \
         holders now {holders_after:?}",
        applied.as_secs_f64()
    );

    // It comes back: the shards spread out again.
    let back = Instant::now();
    replicas.insert(victim.clone(), replica(ns, &victim)?);
    let rebalanced = wait_one_each(client, ns, &REPLICAS, Duration::from_secs(60)).await?;
    println!(
        "chaos: shards: {victim} back; one shard each again {:.1} s later: {rebalanced:?}",
        back.elapsed().as_secs_f64()
    );
    // And an edit in every shard is applied by its holder.
    for namespace in &namespaces {
        set_version(
            &Api::<Microservice>::namespaced(client.clone(), namespace.name()),
            "svc-1",
            "3",
        )
        .await?;
    }
    for namespace in &namespaces {
        wait_version(
            &Api::<Deployment>::namespaced(client.clone(), namespace.name()),
            "svc-1",
            "3",
            CONVERGE,
        )
        .await?;
    }
    Ok(())
}
