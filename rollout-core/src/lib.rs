//! Argo Rollouts semantics as a sans-IO library (crate docs are completed at integration).

pub mod canary;
pub mod command;
pub mod duration;
pub mod intstr;
pub mod phase;
pub mod replicas;
pub mod spec;
pub mod status;
pub mod time;

pub use intstr::IntOrPercent;
pub use status::RolloutStatus;
pub use time::Timestamp;
