//! Flagger's `Canary` (`flagger.app/v1beta1`): spec types and the Flagger machine.
//!
//! - [`spec`]: the `Canary` read unchanged from real YAML, with field-path validation.
//! - [`status`]: the persisted status with Flagger's JSON names and phases.
//! - [`machine`]: one tick of Flagger's per-canary loop as a pure function.

pub mod machine;
pub mod spec;
pub mod status;
