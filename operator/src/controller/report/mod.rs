//! What the controller writes besides the children: the pace of status writes, the
//! events' publisher and the MicroserviceClass status.

pub mod class_status;
pub mod recorder;
pub mod status_pace;
