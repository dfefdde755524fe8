//! The day-2 commands that read the live cluster: `flotilla diff` (what a file would
//! change, child by child) and `flotilla status` (one Microservice as a health tree).

pub mod diff;
pub mod status;
