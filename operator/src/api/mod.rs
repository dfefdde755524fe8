//! The resource types Flotilla serves, and the one place that names the Kubernetes types
//! the rest of the crate uses.

mod backing;
pub mod bounds;
mod class;
mod crd;
pub mod labels;
mod microservice;
mod rollout;
pub(crate) mod traffic;

pub use backing::*;
pub use class::*;
pub use crd::{KubeVersion, crd_file_name, crds, crds_yaml};
pub use microservice::*;
pub use rollout::*;
pub use traffic::{Bucket, Tally};
