//! The fault suite (`make chaos`): what the operator does when the cluster or the
//! operator itself misbehaves, each scenario measured and printed. It takes parts of the
//! embedded cluster down, so it runs alone, one test at a time, after the end-to-end
//! suite. On kind (`CLUSTER=kind`) the scenarios that stop a control-plane component or
//! read the audit log are ignored with their reason (`e2e/build.rs`), and counted so.

mod compaction;
mod fencing;
mod fleet;
mod flood;
mod handover;
mod kill_storm;
mod outage;
mod shards;
