//! What the controller knows of the cluster without asking: the watches and their caches
//! (trimmed to what is read), the indexes from a child, pod, class or namespace back to
//! the Microservices it concerns, what this process last wrote, and which kinds the
//! server serves. The reconcile pipeline reads here and never lists.

pub(super) mod caches;
pub(super) mod discovery;
pub(super) mod indexes;
pub(super) mod packed_store;
pub(super) mod pod_index;
pub(super) mod reverse_index;
pub(super) mod watches;
pub(super) mod written;
