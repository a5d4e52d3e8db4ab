//! Adapters for the Flagger vectors (`flagger/*.json`).

pub mod weight_progression;
