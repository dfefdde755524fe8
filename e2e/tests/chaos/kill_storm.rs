//! Scenario 1: the operator killed with SIGKILL every 5 s while a fleet rolls out, with
//! edits and deletions during the storm. Afterwards every Microservice converges: none
//! missing, no child orphaned or duplicated, every edit applied, every status current.
//!
//! The fleet runs no pods (`replicas: 0`): the single node takes 110 pods, and what is
//! under test is the operator's work (children, status), not the kubelet's. Scenario 2
//! has real pods.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flotilla::api::Microservice;
use flotilla_e2e::Scenario;
use kube::Api;
use kube::api::DeleteParams;

use crate::fleet::{Expected, apply_fleet, elected_operator, set_version, wait_converged};

/// Microservices in the fleet (`CHAOS_STORM_N` to change).
fn fleet_size() -> usize {
    std::env::var("CHAOS_STORM_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

const KILL_EVERY: Duration = Duration::from_secs(5);
const STORM: Duration = Duration::from_secs(60);
/// The bound on converging after the storm; the figure printed is what matters.
const AFTER_STORM: Duration = Duration::from_secs(180);

#[tokio::test]
async fn killed_every_5_s_during_a_rollout_the_operator_converges_with_nothing_lost()
-> anyhow::Result<()> {
    let s = Scenario::without_operator("chaos-kill").await?;
    let (client, n) = (s.client(), s.ns());
    // Leader election on, one identity: a restarted container keeps its pod's name and
    // takes its own lease back at once, as in a cluster.
    let mut operator = elected_operator(n, "op", "kill-storm", &[])?;
    let size = fleet_size();
    let started = Instant::now();
    let names = apply_fleet(n, "svc", size, 0);
    let (edited, rest) = names.split_at(size / 6);
    let (deleted, _) = rest.split_at(size / 6);
    let microservices = Api::<Microservice>::namespaced(client.clone(), n);

    let mut kills = 0;
    let mut ticks = tokio::time::interval(KILL_EVERY);
    ticks.tick().await;
    let storm = Instant::now();
    let (mut next_edit, mut next_delete) = (edited.iter(), deleted.iter());
    while storm.elapsed() < STORM {
        ticks.tick().await;
        operator.restart()?;
        kills += 1;
        // A share of the edits and deletions between each kill.
        let share = edited
            .len()
            .div_ceil((STORM.as_secs() / KILL_EVERY.as_secs()) as usize);
        for name in next_edit.by_ref().take(share) {
            set_version(&microservices, name, "2").await?;
        }
        for name in next_delete.by_ref().take(share) {
            microservices
                .delete(name, &DeleteParams::background())
                .await?;
        }
    }
    let storm_ended = Instant::now();
    anyhow::ensure!(
        next_edit.next().is_none() && next_delete.next().is_none(),
        "the storm ended before every edit and deletion was made"
    );

    let expected = Expected {
        versions: names
            .iter()
            .filter(|name| !deleted.contains(name))
            .map(|name| {
                let version = if edited.contains(name) { "2" } else { "1" };
                (name.clone(), version.to_string())
            })
            .collect::<BTreeMap<_, _>>(),
        gone: deleted.to_vec(),
    };
    wait_converged(client, n, &expected, AFTER_STORM).await?;
    let converged = storm_ended.elapsed();
    assert!(operator.is_running(), "the operator died after the storm");
    let panics = operator.log().matches("panicked").count();
    println!(
        "chaos: {size} Microservices applied, the operator killed {kills} times in {:.0} s \
         (every {} s) with {} edits and {} deletions during the storm; converged {:.1} s after \
         the storm ({:.1} s from the first apply): 0 missing, 0 orphaned, 0 duplicated, every \
         edit applied, every status current; {panics} panics",
        STORM.as_secs_f64(),
        KILL_EVERY.as_secs(),
        edited.len(),
        deleted.len(),
        converged.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert_eq!(panics, 0, "the operator panicked");
    Ok(())
}
