//! Git tags as a deployment ledger (work in progress: see issue 6).

pub mod flow;
pub mod ledger;
pub mod record;
pub mod tag;

#[cfg(feature = "git")]
pub mod git;
