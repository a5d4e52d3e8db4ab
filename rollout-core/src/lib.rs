//! Argo Rollouts semantics as a sans-IO library (crate docs are completed at integration).

pub mod canary;
pub mod command;
pub mod duration;
pub mod hash;
pub mod intstr;
pub mod phase;
pub mod replicas;
#[cfg(any(test, feature = "test-util"))]
pub mod sim;
pub mod spec;
pub mod status;
pub mod time;

#[cfg(test)]
mod canary_tests;

pub use intstr::IntOrPercent;
pub use status::RolloutStatus;
pub use time::Timestamp;
