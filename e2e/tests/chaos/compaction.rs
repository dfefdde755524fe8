//! Scenario 4: etcd compacted while the operator's watches are away. The operator is
//! frozen (SIGSTOP) and the API server restarted under it, so its watches end; changes
//! are made while it has no watch at all, and etcd's history is compacted past every
//! version it knew. Resumed, each watch gets `410 Gone`, lists again, and nothing made
//! in between is missed: edits, deletions, creations and a child deleted by hand.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flotilla::api::Microservice;
use flotilla_e2e::fault::{component, metric};
use flotilla_e2e::steps::CONVERGE;
use flotilla_e2e::{Poll, Scenario, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::DeleteParams;

use crate::fleet::{Expected, apply_fleet, set_version, wait_converged, wait_deployments};

/// Changes made while the operator had no watch are acted on within this time.
const AFTER_RESUME: Duration = Duration::from_secs(30);

#[tokio::test]
#[cfg_attr(
    kind_cluster,
    ignore = "kind: component.sh restarts the embedded cluster's API server and compacts its etcd"
)]
async fn after_etcd_compaction_the_watches_relist_and_miss_nothing() -> anyhow::Result<()> {
    let s = Scenario::without_operator("chaos-compact").await?;
    let (client, n) = (s.client(), s.ns());
    let mut operator = s.start_operator(&[])?;
    let names = apply_fleet(n, "svc", 10, 0);
    wait_deployments(client, n, names.len(), CONVERGE).await?;
    let metrics = wait_for("the operator's metrics address", CONVERGE, || {
        let addr = operator.metrics_addr();
        async move { Ok(addr.map_or_else(|| Poll::Pending("not logged yet".into()), Poll::Ready)) }
    })
    .await?;
    let relists_before = metric(&metrics, "flotilla_watch_relists_total{").await?;

    operator.signal("STOP")?;
    component(&["outage", "kube-apiserver", "0"])?;
    // The operator has no watch now: everything below happens behind its back.
    let microservices = Api::<Microservice>::namespaced(client.clone(), n);
    let (edited, rest) = names.split_at(3);
    let (deleted, rest) = rest.split_at(3);
    for name in edited {
        set_version(&microservices, name, "2").await?;
    }
    for name in deleted {
        microservices
            .delete(name, &DeleteParams::background())
            .await?;
    }
    let created = apply_fleet(n, "late", 2, 0);
    let drifted = &rest[0];
    Api::<Deployment>::namespaced(client.clone(), n)
        .delete(drifted, &DeleteParams::background())
        .await?;
    let compacted_at = component(&["compact"])?;
    let resumed = Instant::now();
    operator.signal("CONT")?;

    let mut versions = BTreeMap::new();
    for name in names
        .iter()
        .filter(|n| !deleted.contains(n))
        .chain(&created)
    {
        let version = if edited.contains(name) { "2" } else { "1" };
        versions.insert(name.clone(), version.to_string());
    }
    let expected = Expected {
        versions,
        gone: deleted.to_vec(),
    };
    wait_converged(client, n, &expected, AFTER_RESUME).await?;
    let converged = resumed.elapsed();
    let relists = metric(&metrics, "flotilla_watch_relists_total{").await? - relists_before;
    assert!(operator.is_running(), "the operator died");
    println!(
        "chaos: etcd compacted at revision {} while the operator's watches were gone; on resuming, \
         {relists} watch relists (410 Gone), and {} edits, {} deletions, {} creations and a \
         Deployment deleted by hand were all acted on {:.1} s later",
        compacted_at.trim().lines().last().unwrap_or("?"),
        edited.len(),
        deleted.len(),
        created.len(),
        converged.as_secs_f64(),
    );
    assert!(relists > 0.0, "no watch relisted after the compaction");
    Ok(())
}
