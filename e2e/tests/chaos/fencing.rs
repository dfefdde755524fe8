//! Scenario 3: two replicas with leader election; the leader's lease renewals are refused
//! while it can still write everything else (the chart's Lease RoleBinding of its
//! release is taken away: each replica runs as its own release of the chart).
//! The old leader must stop writing before the new one starts: the API server's audit
//! log shows every write of both, and their spans must not overlap.

use std::time::{Duration, Instant};

use flotilla::api::Microservice;
use flotilla_e2e::Scenario;
use flotilla_e2e::fault::{audited_writes, service_account_user};
use flotilla_e2e::steps::CONVERGE;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::DeleteParams;

use crate::fleet::{
    apply_fleet, elected_operator_as, lease_holder, set_version, wait_deployments, wait_holder,
    wait_version,
};

const LEASE: &str = "fence";

/// The chart's releases the two replicas run as: each its own ServiceAccount and
/// RoleBindings, so one of them can lose its Lease grant.
const RELEASE_A: &str = "flotilla-a";
const RELEASE_B: &str = "flotilla-b";
/// The chart's RoleBinding of release A to its Lease Role.
const LEASE_BINDING_A: &str = "flotilla-a-leader-election";

#[tokio::test]
#[cfg_attr(
    kind_cluster,
    ignore = "kind: the check reads the embedded cluster's audit log"
)]
async fn a_leader_whose_renewals_are_refused_stops_writing_before_another_starts()
-> anyhow::Result<()> {
    let s = Scenario::without_operator("chaos-fence").await?;
    let (client, n) = (s.client(), s.ns());
    let op_a = elected_operator_as(n, "op-a", LEASE, &[], RELEASE_A)?;
    wait_holder(client, n, LEASE, "op-a", Duration::from_secs(30)).await?;
    let op_b = elected_operator_as(n, "op-b", LEASE, &[], RELEASE_B)?;
    let names = apply_fleet(n, "svc", 3, 0);
    wait_deployments(client, n, names.len(), CONVERGE).await?;

    // From here on the leader cannot renew, yet could still write its children; edits
    // keep coming, so a leader that kept writing would show in the audit log.
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), n);
    let mut lease_binding = bindings.get(LEASE_BINDING_A).await?;
    bindings
        .delete(LEASE_BINDING_A, &DeleteParams::default())
        .await?;
    let refused = Instant::now();
    let refused_at = Timestamp::now();
    let microservices = Api::<Microservice>::namespaced(client.clone(), n);
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    let mut version = 1;
    let mut edits = tokio::time::interval(Duration::from_millis(500));
    let taken_over = loop {
        edits.tick().await;
        version += 1;
        set_version(&microservices, &names[0], &version.to_string()).await?;
        let holder = lease_holder(client, n, LEASE).await?;
        if holder.as_deref() == Some("op-b") {
            break refused.elapsed();
        }
        anyhow::ensure!(
            refused.elapsed() < Duration::from_secs(60),
            "op-b did not take the lease within 60 s (holder {holder:?})"
        );
    };
    // The new leader acts on the edits.
    wait_version(&deployments, &names[0], &version.to_string(), CONVERGE).await?;

    let (a, b) = (
        service_account_user(n, RELEASE_A),
        service_account_user(n, RELEASE_B),
    );
    let writes = audited_writes(&[&a, &b])?;
    let accepted = |user: &str| {
        writes
            .iter()
            .filter(|w| w.user == user && w.succeeded())
            .collect::<Vec<_>>()
    };
    let (by_a, by_b) = (accepted(&a), accepted(&b));
    let a_last = by_a
        .iter()
        .map(|w| w.completed)
        .max()
        .ok_or_else(|| anyhow::anyhow!("no write by op-a in the audit log"))?;
    let b_first = by_b
        .iter()
        .map(|w| w.received)
        .min()
        .ok_or_else(|| anyhow::anyhow!("no write by op-b in the audit log"))?;
    let a_after_refusal: Vec<_> = by_a
        .iter()
        .filter(|w| w.resource != "leases" && w.received > refused_at)
        .collect();
    let a_wrote_for = a_after_refusal
        .iter()
        .map(|w| w.completed.duration_since(refused_at).as_secs_f64())
        .fold(0.0, f64::max);
    let refused_renewals = writes
        .iter()
        .filter(|w| w.user == a && w.resource == "leases" && w.code == 403)
        .count();
    let gap = b_first.duration_since(a_last);
    println!(
        "chaos: leader's lease renewals refused (403) {refused_renewals} times; \
         the old leader made {} writes in the {:.1} s after the refusals began, then stopped; \
         the new leader took the lease {:.1} s after the refusals began and made {} writes; the \
         old leader's last write ended {:.2} s before the new leader's first began",
        a_after_refusal.len(),
        a_wrote_for,
        taken_over.as_secs_f64(),
        by_b.len(),
        gap.as_secs_f64(),
    );
    assert!(
        a_last < b_first,
        "the old leader wrote at {a_last} after the new leader began at {b_first}"
    );
    assert!(refused_renewals > 0, "the old leader never tried to renew");

    // The old leader, still running, stood by: given its grant back, it takes over when
    // the new leader shuts down, on new caches, and acts.
    assert!(
        op_a.log().contains("standing by to re-acquire"),
        "op-a did not stand by"
    );
    lease_binding.metadata.resource_version = None;
    lease_binding.metadata.uid = None;
    bindings.create(&Default::default(), &lease_binding).await?;
    op_b.signal("TERM")?;
    wait_holder(client, n, LEASE, "op-a", Duration::from_secs(30)).await?;
    set_version(&microservices, &names[1], "final").await?;
    wait_version(&deployments, &names[1], "final", CONVERGE).await?;
    assert_eq!(
        op_a.log().matches("acquired the leader lease").count(),
        2,
        "op-a should have led twice"
    );
    Ok(())
}
