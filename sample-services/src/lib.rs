//! Plumbing shared by the sample services: configuration from the environment, JSON
//! logs, Prometheus metrics, `/healthz` `/readyz` `/metrics`, graceful shutdown, the
//! client each service uses to call the services it depends on, and the NATS events
//! orders and inventory exchange.
//!
//! Every service is one binary in `src/bin/` whose `main` is [`run`]: it builds its
//! routes, and this crate does the rest the same way for all five.

pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod server;
pub mod telemetry;

pub use client::Upstream;
pub use config::{ConfigError, env_opt, env_or, env_parse, required_url};
pub use error::ApiError;
pub use server::{Health, Service, run};

pub mod inventory;
pub mod orders;
pub mod payments;
pub mod storefront;
pub mod users;

#[cfg(test)]
mod testing;
