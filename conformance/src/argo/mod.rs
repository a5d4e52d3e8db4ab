//! Adapters for the Argo Rollouts vectors (`argo/*.json`).

pub mod analysis_status;
pub mod conditions;
pub mod replica_counts;
pub mod rollout_phase;
