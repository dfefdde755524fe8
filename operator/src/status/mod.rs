//! A Microservice's status, computed from what is observed: its conditions
//! ([`conditions`]), the pods as status reads them ([`pods`]) and text within the API's
//! limits ([`message`]). Pure: the controller writes what this computes, and the rollout
//! and the CLI read pods through it.

mod conditions;
mod message;
mod pods;

pub use conditions::*;
pub use message::truncate;
pub use pods::{REASON_UNSCHEDULABLE, keep_what_status_reads, pod_failure};

/// A reason and a human message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
}

impl Cause {
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Cause {
            reason: reason.into(),
            message: message.into(),
        }
    }
}
