//! Scenario 5: graceful shutdown. The leader gets SIGTERM (a rollout or a drain): it
//! releases the lease, and the standby acts within 3 s, not after the lease duration.

use std::time::{Duration, Instant};

use flotilla::api::Microservice;
use flotilla_e2e::steps::{CONVERGE, env_value};
use flotilla_e2e::{Poll, Scenario, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::fleet::{
    apply_fleet, elected_operator, lease_holder, set_version, wait_deployments, wait_holder,
};

const LEASE: &str = "handover";
/// What the issue asks of a graceful handover, from SIGTERM to the successor's first act.
const SUCCESSOR_ACTS_WITHIN: Duration = Duration::from_secs(3);

#[tokio::test]
async fn on_sigterm_the_leader_releases_the_lease_and_the_standby_acts_within_3_s()
-> anyhow::Result<()> {
    let s = Scenario::without_operator("chaos-handover").await?;
    let (client, n) = (s.client(), s.ns());
    let mut a = elected_operator(n, "op-a", LEASE, &[])?;
    wait_holder(client, n, LEASE, "op-a", Duration::from_secs(30)).await?;
    let b = elected_operator(n, "op-b", LEASE, &[])?;
    let names = apply_fleet(n, "svc", 3, 0);
    wait_deployments(client, n, names.len(), CONVERGE).await?;
    // The standby has looked at the lease and found it held.
    wait_for("op-b to stand by", Duration::from_secs(30), || async {
        Ok(if b.log().contains("standing by") {
            Poll::Ready(())
        } else {
            Poll::Pending("no 'standing by' in its log yet".into())
        })
    })
    .await?;

    let terminated = Instant::now();
    a.signal("TERM")?;
    let exited = wait_for("op-a to exit", Duration::from_secs(30), || {
        let running = a.is_running();
        async move {
            Ok(if running {
                Poll::Pending("running".into())
            } else {
                Poll::Ready(terminated.elapsed())
            })
        }
    })
    .await?;
    anyhow::ensure!(
        a.log().contains("released the leader lease"),
        "op-a did not release the lease"
    );
    // Only the successor can act on an edit made after the leader exited.
    set_version(
        &Api::<Microservice>::namespaced(client.clone(), n),
        &names[0],
        "2",
    )
    .await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    let remaining = SUCCESSOR_ACTS_WITHIN.saturating_sub(terminated.elapsed());
    let acted = wait_for(
        "the successor to apply an edit made after the leader exited",
        remaining,
        || async {
            let deployment = deployments.get(&names[0]).await?;
            let seen = env_value(&deployment, "VERSION");
            Ok(if seen.as_deref() == Some("2") {
                Poll::Ready(terminated.elapsed())
            } else {
                let holder = lease_holder(client, n, LEASE).await?;
                Poll::Pending(format!("VERSION {seen:?}, lease holder {holder:?}"))
            })
        },
    )
    .await?;
    assert_eq!(
        lease_holder(client, n, LEASE).await?.as_deref(),
        Some("op-b")
    );
    println!(
        "chaos: graceful handover: the leader exited {:.2} s after SIGTERM, releasing the lease; \
         the successor applied an edit made after that {:.2} s after SIGTERM (bound {} s; the \
         lease lasts 10 s)",
        exited.as_secs_f64(),
        acted.as_secs_f64(),
        SUCCESSOR_ACTS_WITHIN.as_secs(),
    );
    Ok(())
}
