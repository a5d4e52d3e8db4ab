//! Git tags as a deployment ledger (work in progress: see issue 6).
