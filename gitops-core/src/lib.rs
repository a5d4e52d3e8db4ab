//! Git tags as a deployment ledger, the release flow around it, GitHub webhook events,
//! image write-back, and sync status and health, as pure functions with a git2 adapter
//! at the edge.
//!
//! # The model
//!
//! A manifests repository records what runs where with two kinds of tags per
//! environment ([`tag`]):
//!
//! - `<env>_release`, the **pointer**: the commit deployed in `env` (what Argo CD tracks);
//! - `<env>_<YYYYMMDDhhmmss>` (UTC), the **history**: one annotated tag per change, never
//!   moved and never deleted, whose message is a structured [`record::Record`] (action,
//!   env, time, commit, previous commit, who, approvals, pull request).
//!
//! The [`ledger::Ledger`] is a snapshot of those tags resolved to peeled commit ids. It
//! plans changes without doing them: [`ledger::Ledger::release`] and
//! [`ledger::Ledger::rollback`] take `now` (no clock is read anywhere in the crate) and
//! return a [`ledger::Plan`]: create this history tag, then move the pointer from this
//! commit to that one. Every move is compare-and-swap on the expected old commit; losing
//! a race is [`ledger::LedgerError::Conflict`], never an overwrite. Rollbacks walk back
//! through the releases like a browser history (see [`ledger`]).
//!
//! The [`flow`] machine drives one pull request through approvals, the canary release,
//! integration and manual tests, the prod release and rollbacks, and refuses anything
//! else with a typed [`flow::Refusal`] a bot can post back. [`flow::guard`] is the
//! pre-sync check: a pointer moved outside the flow (lightweight or forged history tag,
//! missing approvals) is refused.
//!
//! [`events`] verifies and parses GitHub webhooks into flow inputs; [`writeback`] edits
//! Kustomize `images:` and Helm values in place; [`sync`] compares desired and live
//! objects, computes health and plans hooks and waves. [`image`] picks the tag an image
//! should run (Image Updater's strategies and filters) and turns it into a write-back
//! commit; `registry` (feature `registry`) reads tags, manifests, digests and build
//! times from an OCI distribution registry.
//!
//! [`envs`] gives changes ephemeral environments from files in git (ApplicationSet's
//! git-files generator): the create / update / delete plan between two revisions, the
//! manifests of each environment, and a wait-for-ready gate over sync and health.
//!
//! ```
//! use gitops_core::ledger::{Ledger, Outcome};
//! use gitops_core::record::Provenance;
//! use gitops_core::tag::{CommitId, Env, Stamp};
//!
//! let prod = Env::new("prod")?;
//! let who = Provenance { by: "carol".into(), approvals: vec!["alice".into()], pr: Some(7) };
//! let (a, b) = (CommitId::new(&"a".repeat(40))?, CommitId::new(&"b".repeat(40))?);
//! let mut ledger = Ledger::new();
//! for (commit, at) in [(&a, "20261122090000"), (&b, "20261122100000")] {
//!     if let Outcome::Planned(plan) = ledger.release(&prod, commit, &who, Stamp::parse(at)?)? {
//!         assert_eq!(plan.from.as_ref(), ledger.pointer(&prod)); // the compare-and-swap
//!         ledger.apply(&plan)?;
//!     }
//! }
//! let plan = ledger.rollback(&prod, &Provenance::by("bob"), Stamp::parse("20261122110000")?)?;
//! assert_eq!(plan.history_tag.name(), "prod_20261122110000");
//! assert_eq!(plan.to, a);
//! ledger.apply(&plan)?;
//! assert_eq!(ledger.history(&prod).len(), 3); // nothing deleted
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The adapter
//!
//! With the `git` feature (default), [`git::GitRepo`] executes plans on a real
//! repository with libgit2: forced tag fetches, annotated history tags, local
//! compare-and-swap, a remote check just before pushing, the history tag pushed before
//! the pointer, and per-ref push statuses (libgit2 reports refused refs only through a
//! callback). A partially applied push is reported as
//! [`git::GitError::PartialPush`] naming the refs that landed.
//!
//! # Calling order for a release
//!
//! ```text
//! repo.fetch()                         // mirror the remote's tags
//! ledger = repo.ledger()               // snapshot
//! decision = flow::handle(&pr, &ledger, &config, &input, now)?   // or Refusal
//! for effect in decision.effects:      // in order
//!     Publish(plan)  => repo.publish(&plan)?   // CAS locally and remotely, push
//!     RunIntegrationTests { .. } / Comment(..) => the caller's CI and bot
//! store decision.state
//! ```

pub mod envs;
pub mod events;
pub mod flow;
pub mod image;
pub mod ledger;
pub mod record;
pub mod sync;
pub mod tag;
pub mod writeback;

#[cfg(feature = "git")]
pub mod git;
#[cfg(feature = "registry")]
pub mod registry;
