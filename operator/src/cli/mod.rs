//! The day-2 commands: `flotilla diff` (what a file would change, child by child),
//! `flotilla status` (one Microservice as a health tree), `flotilla rollout` (follow or
//! steer a release) and `flotilla graph` (who calls whom).

pub mod diff;
pub mod graph;
pub mod rollout;
pub mod status;
