//! Flotilla: the Microservice operator.
//!
//! The reconcile is a pipeline, and the modules follow it: `api` (the resource types);
//! the pure part, composed by `plan` and shared with `flotilla render`: `validate` (the
//! spec re-checked), `class` (the MicroserviceClass applied: defaults, policy), `graph`
//! (dependencies and dependents), `builders` (one file per child kind: its builder and
//! its `ChildKind`, listed in `builders::KINDS`); then `controller` (read the caches,
//! apply, status, wired to the watches); `rollout` (the release state machine between
//! the plan and the apply: canary steps, gates, rollback). On top of it all, `cli`: the
//! `flotilla` command, one file per command; nothing else imports it.

pub mod api;
pub mod builders;
pub mod class;
pub mod cli;
pub mod client;
pub mod controller;
pub mod graph;
pub mod health;
pub mod label_match;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod plan;
pub mod render;
pub mod rollout;
pub mod server;
pub mod status;
pub mod validate;
pub mod view;
pub mod yaml;
