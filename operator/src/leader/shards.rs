//! Shards: the Microservices split into `N` shards by a stable hash of their namespace,
//! each shard a Lease that one replica holds at a time, the shards spread evenly over the
//! replicas alive. This file is the decision, without a client: which shard a namespace
//! is in, and what one replica should do about the shard leases it sees.
//!
//! The protocol, every poll of every replica:
//! - the replicas alive are the fresh holders, the fresh askers (a `wanted-by` mark on a
//!   lease, below) and this replica; each should hold between `floor(N / alive)` and
//!   `ceil(N / alive)` shards;
//! - below the ceiling, it claims free shards (the claim is a compare-and-swap: of two
//!   claimants one wins);
//! - above the ceiling, it releases its highest shards; at or below the ceiling but above
//!   the floor, it releases a shard someone asked for;
//! - below the floor with nothing free, it asks: it marks a lease of the replica holding
//!   the most shards as wanted, and that holder releases it at its next poll.
//!
//! A replica that dies stops renewing; its leases go free after their duration, the
//! others' ceiling rises and they claim them. One that joins is seen once it asks.

use std::collections::{BTreeMap, BTreeSet};

/// The shard of `namespace` among `shards`: FNV-1a (64 bits) of its name, modulo the
/// count. Stable across versions, processes and machines (Rust's own hasher is seeded
/// per process), so every replica agrees without talking.
pub fn shard_of(namespace: &str, shards: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let hash = namespace.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    (hash % u64::from(shards.max(1))) as u32
}

/// The Microservices one replica reconciles: those whose namespace falls in a shard it
/// holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardScope {
    pub shards: u32,
    pub owned: BTreeSet<u32>,
}

impl ShardScope {
    pub fn owns(&self, namespace: &str) -> bool {
        self.owned.contains(&shard_of(namespace, self.shards))
    }
}

/// One shard lease as this replica last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeenLease {
    /// Its holder while its hold is fresh (renewed within its duration, by this
    /// replica's clock); None when free, released or expired.
    pub holder: Option<String>,
    /// A replica that asked for it, while its ask is fresh.
    pub wanted_by: Option<String>,
}

/// What to do about one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Claim this free shard.
    Claim(u32),
    /// Let go of this held shard.
    Release(u32),
    /// Ask the holder of this shard to let it go.
    Ask(u32),
}

/// The steps `me` should take given `leases` (by shard, `0..shards`; a shard missing from
/// the map has no lease yet: free).
pub fn plan(me: &str, shards: u32, leases: &BTreeMap<u32, SeenLease>) -> Vec<Step> {
    let seen = |shard: u32| leases.get(&shard).cloned().unwrap_or_default();
    let mut alive: BTreeSet<&str> = leases
        .values()
        .flat_map(|l| {
            l.holder
                .as_deref()
                .into_iter()
                .chain(l.wanted_by.as_deref())
        })
        .collect();
    alive.insert(me);
    let alive = alive.len() as u32;
    let ceiling = shards.div_ceil(alive);
    let floor = shards / alive;

    let mine: Vec<u32> = (0..shards)
        .filter(|&s| seen(s).holder.as_deref() == Some(me))
        .collect();
    let held = mine.len() as u32;
    let free: Vec<u32> = (0..shards).filter(|&s| seen(s).holder.is_none()).collect();

    if held > ceiling {
        return mine
            .iter()
            .rev()
            .take((held - ceiling) as usize)
            .map(|&s| Step::Release(s))
            .collect();
    }
    if held < ceiling && !free.is_empty() {
        // Claim from a place of its own in the list, so that replicas starting together
        // mostly reach for different shards.
        let start = shard_of(me, free.len() as u32) as usize;
        return free
            .iter()
            .cycle()
            .skip(start)
            .take(free.len().min((ceiling - held) as usize))
            .map(|&s| Step::Claim(s))
            .collect();
    }
    if held > floor
        && let Some(&asked) = mine.iter().find(|&&s| {
            seen(s)
                .wanted_by
                .as_deref()
                .is_some_and(|asker| asker != me)
        })
    {
        return vec![Step::Release(asked)];
    }
    if held < floor && free.is_empty() {
        // The replica holding the most (above the floor) gives one up: its highest.
        let mut counts: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for s in 0..shards {
            if let Some(holder) = leases.get(&s).and_then(|l| l.holder.as_deref()) {
                counts.entry(holder).or_default().push(s);
            }
        }
        let richest = counts
            .iter()
            .filter(|(holder, held)| **holder != me && held.len() as u32 > floor)
            .max_by_key(|(holder, held)| (held.len(), std::cmp::Reverse(**holder)));
        if let Some((_, held)) = richest {
            let shard = *held.last().expect("a holder holds a shard");
            if seen(shard).wanted_by.as_deref() != Some(me) {
                return vec![Step::Ask(shard)];
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(pairs: &[(u32, &str)]) -> BTreeMap<u32, SeenLease> {
        pairs
            .iter()
            .map(|&(s, holder)| {
                (
                    s,
                    SeenLease {
                        holder: Some(holder.to_string()),
                        wanted_by: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_namespace_always_lands_in_the_same_shard() {
        // Fixed values: a change here re-shards every cluster on upgrade.
        assert_eq!(shard_of("shop", 3), shard_of("shop", 3));
        assert_eq!(
            [
                shard_of("", 3),
                shard_of("shop", 3),
                shard_of("payments", 7)
            ],
            [
                (0xcbf2_9ce4_8422_2325u64 % 3) as u32,
                shard_of("shop", 3),
                shard_of("payments", 7)
            ]
        );
        assert_eq!(shard_of("shop", 1), 0);
        assert_eq!(shard_of("anything", 0), 0);
        // Spread: 3,000 namespaces over 3 shards, none far from a third.
        let mut counts = [0; 3];
        for i in 0..3000 {
            counts[shard_of(&format!("team-{i}"), 3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..=1100).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn alone_a_replica_claims_every_shard() {
        let steps = plan("a", 3, &BTreeMap::new());
        let mut claimed: Vec<u32> = steps
            .iter()
            .map(|s| match s {
                Step::Claim(s) => *s,
                other => panic!("{other:?}"),
            })
            .collect();
        claimed.sort();
        assert_eq!(claimed, vec![0, 1, 2]);
    }

    #[test]
    fn a_newcomer_asks_and_the_richest_lets_go() {
        let leases = held(&[(0, "a"), (1, "a"), (2, "a")]);
        // b holds nothing, nothing is free: it asks a for its highest shard.
        assert_eq!(plan("b", 3, &leases), vec![Step::Ask(2)]);
        // a sees the ask: with two alive its ceiling is 2, it holds 3: it lets go of 2.
        let mut asked = leases.clone();
        asked.get_mut(&2).unwrap().wanted_by = Some("b".into());
        assert_eq!(plan("a", 3, &asked), vec![Step::Release(2)]);
        // Once 2 is free (the ask stays on it until claimed), b claims it and a claims
        // nothing.
        let mut released = asked.clone();
        released.get_mut(&2).unwrap().holder = None;
        assert_eq!(plan("b", 3, &released), vec![Step::Claim(2)]);
        assert_eq!(plan("a", 3, &released), vec![]);
    }

    #[test]
    fn a_dead_replicas_shards_are_taken_by_the_others() {
        // c died: its lease (2) is no longer fresh.
        let leases = held(&[(0, "a"), (1, "b")]);
        // Two alive: ceiling 2, each holds 1, so either may claim 2; the lease's
        // compare-and-swap lets one of them have it.
        assert_eq!(plan("a", 3, &leases), vec![Step::Claim(2)]);
        assert_eq!(plan("b", 3, &leases), vec![Step::Claim(2)]);
        let after = held(&[(0, "a"), (1, "b"), (2, "a")]);
        assert_eq!(plan("a", 3, &after), vec![]);
        assert_eq!(plan("b", 3, &after), vec![]);
    }

    #[test]
    fn a_balanced_set_stays_put() {
        let leases = held(&[(0, "a"), (1, "b"), (2, "c")]);
        for me in ["a", "b", "c"] {
            assert_eq!(plan(me, 3, &leases), vec![], "{me}");
        }
        // More shards than replicas: 7 over 3 is 3, 2, 2 and stays.
        let leases = held(&[
            (0, "a"),
            (1, "a"),
            (2, "a"),
            (3, "b"),
            (4, "b"),
            (5, "c"),
            (6, "c"),
        ]);
        for me in ["a", "b", "c"] {
            assert_eq!(plan(me, 7, &leases), vec![], "{me}");
        }
    }

    /// Replicas polling in turn, each applying its steps to the shared leases (claims of
    /// free shards only, as the compare-and-swap ensures), converge to every shard held by
    /// one replica and shares within one of each other, whatever joins and dies.
    #[test]
    fn replicas_polling_in_turn_converge() {
        fn settle(replicas: &[&str], shards: u32, leases: &mut BTreeMap<u32, SeenLease>) {
            for _round in 0..20 {
                let mut changed = false;
                for me in replicas {
                    for step in plan(me, shards, leases) {
                        changed = true;
                        match step {
                            Step::Claim(s) => {
                                let lease = leases.entry(s).or_default();
                                if lease.holder.is_none() {
                                    lease.holder = Some(me.to_string());
                                    lease.wanted_by = None;
                                }
                            }
                            Step::Release(s) => {
                                let lease = leases.get_mut(&s).unwrap();
                                lease.holder = None;
                            }
                            Step::Ask(s) => {
                                leases.get_mut(&s).unwrap().wanted_by = Some(me.to_string());
                            }
                        }
                    }
                }
                if !changed {
                    return;
                }
            }
            panic!("no rest after 20 rounds: {leases:?}");
        }
        fn check(replicas: &[&str], shards: u32, leases: &BTreeMap<u32, SeenLease>) {
            let mut counts: BTreeMap<&str, u32> = replicas.iter().map(|r| (*r, 0)).collect();
            for s in 0..shards {
                let holder = leases[&s].holder.as_deref().expect("every shard held");
                *counts.get_mut(holder).expect("held by a live replica") += 1;
            }
            let (min, max) = (
                counts.values().min().unwrap(),
                counts.values().max().unwrap(),
            );
            assert!(max - min <= 1, "{counts:?}");
        }
        for shards in [1, 3, 7, 10] {
            let mut leases = BTreeMap::new();
            settle(&["a"], shards, &mut leases);
            check(&["a"], shards, &leases);
            settle(&["a", "b", "c"], shards, &mut leases);
            check(&["a", "b", "c"], shards, &leases);
            // b dies: its holds expire, its asks with them.
            for lease in leases.values_mut() {
                if lease.holder.as_deref() == Some("b") {
                    lease.holder = None;
                }
                if lease.wanted_by.as_deref() == Some("b") {
                    lease.wanted_by = None;
                }
            }
            settle(&["a", "c"], shards, &mut leases);
            check(&["a", "c"], shards, &leases);
            settle(&["a", "c", "d"], shards, &mut leases);
            check(&["a", "c", "d"], shards, &leases);
        }
    }
}
