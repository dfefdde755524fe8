//! The day-2 commands that read the live cluster: `flotilla diff` (what a file would
//! change, child by child), `flotilla status` (one Microservice as a health tree) and
//! `flotilla rollout` (follow or steer a release).

pub mod diff;
pub mod rollout;
pub mod status;
