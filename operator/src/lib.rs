//! Flotilla: the Microservice operator.
//!
//! The reconcile is a pipeline, and the modules follow it: `api` (the resource types),
//! `validate` (the spec re-checked), `class` (the MicroserviceClass applied: defaults,
//! policy), `builders` (desired children, pure functions),
//! `controller` (read the world, apply, status).

pub mod api;
pub mod builders;
pub mod class;
pub mod controller;
pub mod diagram;
pub mod graph;
pub mod leader;
pub mod metrics;
pub mod render;
pub mod server;
pub mod validate;
