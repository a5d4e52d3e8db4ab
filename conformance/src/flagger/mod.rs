//! Adapters for the Flagger vectors (`flagger/*.json`).

pub mod metric_checks;
pub mod weight_progression;
