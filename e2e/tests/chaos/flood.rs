//! Scenario: one tenant floods the shared operator with Microservices at the largest size
//! the API server stores, while another tenant ships a normal one.

use std::time::{Duration, Instant};

use flotilla::api::Microservice;
use flotilla_e2e::steps::{
    CONVERGE, SHARD_LABEL, condition, describe, ensure_crds, sharded, start_sharded_operator,
    testapp, wait_microservice, wait_ready,
};
use flotilla_e2e::{Operator, Poll, TestNamespace, apply_yaml, client, wait_for};
use futures::{StreamExt, TryStreamExt, stream};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

/// Microservices in the flood: half at the operator's spec budget (valid, applied), half
/// as large as etcd stores (refused, never cached whole).
const FLOOD: usize = 100;
/// Env values per Microservice and their length, for each half.
const AT_BUDGET: (usize, usize) = (60, 4_000);
const AT_ETCD_LIMIT: (usize, usize) = (256, 5_300);

/// A Microservice of `vars` env values of `length` characters each, labelled for the
/// sharded operator of `shard`, with no pods (the node is not what is tested).
fn large(name: &str, shard: &str, (vars, length): (usize, usize)) -> anyhow::Result<Microservice> {
    let env: Vec<_> = (0..vars)
        .map(|i| json!({"name": format!("FILL_{i:03}"), "value": "x".repeat(length)}))
        .collect();
    Ok(serde_json::from_value(json!({
        "apiVersion": "flotilla.dev/v1alpha1",
        "kind": "Microservice",
        "metadata": {"name": name, "labels": {SHARD_LABEL: shard}},
        "spec": {
            "image": "flotilla.local/testapp:v1",
            "imagePullPolicy": "IfNotPresent",
            "replicas": 0,
            "env": env,
        },
    }))?)
}

/// The memory limit the chart gives each replica, in bytes.
fn chart_memory_limit() -> anyhow::Result<u64> {
    let docs = flotilla_e2e::helm::render(&[])?;
    let limit = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].as_str()
        })
        .ok_or_else(|| anyhow::anyhow!("the chart's Deployment has no memory limit"))?
        .to_string();
    let mebibytes: u64 = limit
        .strip_suffix("Mi")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("memory limit {limit} is not in Mi"))?;
    Ok(mebibytes << 20)
}

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss(operator: &Operator) -> anyhow::Result<u64> {
    let pid = operator
        .pid()
        .ok_or_else(|| anyhow::anyhow!("the operator is not running"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))?;
    Ok(kib << 10)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// Waits until every flood Microservice has a status for its generation: the half at the
/// budget reconciled, the half over it refused with the spec's size named.
async fn wait_flood_handled(api: &Api<Microservice>, names: &[String]) -> anyhow::Result<()> {
    wait_for(
        "every flood Microservice to get its status",
        CONVERGE,
        || async {
            let mut waiting = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let ms = api.get(name).await?;
                let current = ms.status.as_ref().and_then(|s| s.observed_generation)
                    == ms.metadata.generation;
                let ready = condition(&ms, "Ready");
                let handled = if i % 2 == 0 {
                    current && ready.is_some_and(|c| c.reason != "InvalidSpec")
                } else {
                    current
                        && ready.is_some_and(|c| {
                            c.reason == "InvalidSpec" && c.message.contains("bytes of JSON")
                        })
                };
                if !handled {
                    waiting.push(format!("{name}: {}", describe(&ms)));
                }
            }
            Ok(if waiting.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} waiting, first: {}", waiting.len(), waiting[0]))
            })
        },
    )
    .await
}

#[tokio::test]
async fn a_flood_of_the_largest_microservices_leaves_the_operator_and_other_tenants_alone()
-> anyhow::Result<()> {
    let client = client().await?;
    ensure_crds(&client).await?;
    let flood_ns = TestNamespace::new(&client, "chaos-flood").await?;
    let tenant_ns = TestNamespace::new(&client, "chaos-tenant").await?;
    let (flood, tenant) = (flood_ns.name(), tenant_ns.name());
    let limit = chart_memory_limit()?;
    // One cluster-wide operator, as the chart installs it, serving both tenants.
    let mut operator = start_sharded_operator(flood, &[])?;
    let calm = |name: &str| sharded(&testapp(name, ""), name, flood);

    let before = Instant::now();
    apply_yaml(tenant, &calm("calm-before"))?;
    wait_ready(&client, tenant, "calm-before").await?;
    let ready_before = before.elapsed();

    let names: Vec<String> = (0..FLOOD).map(|i| format!("flood-{i:03}")).collect();
    let objects: Vec<Microservice> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            large(
                name,
                flood,
                if i % 2 == 0 { AT_BUDGET } else { AT_ETCD_LIMIT },
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let sent_bytes: usize = objects
        .iter()
        .map(|ms| serde_json::to_vec(ms).map_or(0, |b| b.len()))
        .sum();
    let flood_api: Api<Microservice> = Api::namespaced(client.clone(), flood);
    let started = Instant::now();
    let sending = {
        let api = flood_api.clone();
        tokio::spawn(async move {
            stream::iter(objects)
                .map(|ms| {
                    let api = api.clone();
                    async move { api.create(&PostParams::default(), &ms).await }
                })
                .buffer_unordered(8)
                .try_collect::<Vec<_>>()
                .await
        })
    };
    // The other tenant ships while the flood is on its way.
    let during = Instant::now();
    apply_yaml(tenant, &calm("calm-during"))?;
    wait_ready(&client, tenant, "calm-during").await?;
    let ready_during = during.elapsed();
    sending.await??;
    let sent = started.elapsed();
    wait_flood_handled(&flood_api, &names).await?;
    let handled = started.elapsed();
    assert!(operator.is_running(), "the operator died during the flood");
    let peak = peak_rss(&operator)?;

    // A restart lists everything again, the flood included, in pages.
    operator.restart()?;
    let relisted = Instant::now();
    apply_yaml(
        tenant,
        &calm("calm-during").replace("value: calm-during", "value: calm-after"),
    )?;
    wait_microservice(
        &client,
        tenant,
        "calm-during",
        "the edit after the restart",
        Microservice::is_ready,
    )
    .await?;
    wait_flood_handled(&flood_api, &names).await?;
    let relist_time = relisted.elapsed();
    assert!(
        operator.is_running(),
        "the operator died relisting the flood"
    );
    let relist_peak = peak_rss(&operator)?;

    println!(
        "chaos: flood of {FLOOD} Microservices ({:.0} MB: {} at the 256 KiB spec budget, {} of \
         {:.2} MB each) sent in {:.1} s, all handled at {:.1} s; operator peak RSS {:.0} MiB \
         (chart limit {:.0} MiB), {:.0} MiB after a restart's relist ({:.1} s); 0 restarts; \
         another tenant's Microservice Ready in {:.1} s during the flood ({:.1} s before it)",
        sent_bytes as f64 / 1e6,
        FLOOD / 2,
        FLOOD / 2,
        (AT_ETCD_LIMIT.0 * AT_ETCD_LIMIT.1) as f64 / 1e6,
        sent.as_secs_f64(),
        handled.as_secs_f64(),
        mib(peak),
        mib(limit),
        mib(relist_peak),
        relist_time.as_secs_f64(),
        ready_during.as_secs_f64(),
        ready_before.as_secs_f64(),
    );
    assert!(
        peak < limit && relist_peak < limit,
        "the operator's peak RSS ({:.0} / {:.0} MiB) passed the chart's limit ({:.0} MiB)",
        mib(peak),
        mib(relist_peak),
        mib(limit)
    );
    assert!(
        ready_during < Duration::from_secs(60),
        "the other tenant waited {ready_during:?} during the flood"
    );
    Ok(())
}
