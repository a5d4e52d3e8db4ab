//! The deployment ledger as a pure value: a snapshot of the ledger tags of a repository,
//! the release and rollback rules, and compare-and-swap application of their plans.
//!
//! # Positions
//!
//! The history of an environment is replayed in stamp order into a stack of released
//! commits and a position in it, like a browser history:
//!
//! - a **release** drops the entries above the position, pushes the commit and points at
//!   it;
//! - a **rollback** moves the position one entry down (rollbacks do not count as
//!   releases: a second rollback goes one more release back, and the commits rolled back
//!   from are never the target of a later rollback).
//!
//! The pointer `<env>_release` must sit on the commit at the position; when it does not
//! (it was moved outside the flow), rollbacks are refused with
//! [`LedgerError::PointerDiverged`] and the pre-sync guard refuses to sync.
//!
//! History tags carry a [`Record`]; a history tag whose record is missing (lightweight),
//! unreadable or inconsistent with the tag (other env, commit or time) replays as a
//! release of its commit, which is what the shell scripts this replaces wrote.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::{Action, Provenance, Record, RecordError};
use crate::tag::{CommitId, Env, LedgerTag, Stamp};

/// One tag as read from a repository: the peeled commit and, for annotated tags, the
/// message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagTarget {
    /// The peeled commit.
    pub commit: CommitId,
    /// The annotation message (`None` for a lightweight tag).
    pub message: Option<String>,
}

impl TagTarget {
    /// A lightweight tag.
    pub fn lightweight(commit: CommitId) -> Self {
        TagTarget {
            commit,
            message: None,
        }
    }
}

/// The ledger of one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvLedger {
    /// What `<env>_release` resolves to.
    pub pointer: Option<TagTarget>,
    /// The history tags by stamp.
    pub history: BTreeMap<Stamp, TagTarget>,
}

/// How a history tag was interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryRecord {
    /// A record consistent with its tag.
    Valid(Record),
    /// A lightweight tag (no message at all).
    Lightweight,
    /// A message that is not a valid record.
    Unreadable(RecordError),
    /// A valid record that does not describe this tag.
    Mismatch {
        /// The record.
        record: Box<Record>,
        /// Which field disagrees with the tag (`env`, `commit` or `at`).
        field: &'static str,
    },
}

/// One history entry, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The history tag.
    pub tag: LedgerTag,
    /// When.
    pub at: Stamp,
    /// The peeled commit of the tag.
    pub commit: CommitId,
    /// The record, or why there is none.
    pub record: EntryRecord,
}

impl HistoryEntry {
    /// The action this entry replays as.
    pub fn action(&self) -> Action {
        match &self.record {
            EntryRecord::Valid(r) => r.action,
            _ => Action::Release,
        }
    }
}

/// The replayed state of one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// Released commits still reachable by rollbacks, oldest first.
    pub stack: Vec<CommitId>,
    /// The index of the current release in `stack` (`None`: never released).
    pub index: Option<usize>,
}

impl Position {
    /// The commit the history says is deployed.
    pub fn current(&self) -> Option<&CommitId> {
        self.index.map(|i| &self.stack[i])
    }

    /// The commit a rollback would move to.
    pub fn previous(&self) -> Option<&CommitId> {
        self.index
            .and_then(|i| i.checked_sub(1))
            .map(|i| &self.stack[i])
    }
}

/// What a release or rollback must write: a new history tag, then the pointer moved by
/// compare-and-swap from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Release or rollback.
    pub action: Action,
    /// The environment.
    pub env: Env,
    /// When (the stamp of the history tag).
    pub at: Stamp,
    /// The history tag to create (must not exist).
    pub history_tag: LedgerTag,
    /// Its annotation (a rendered [`Record`]).
    pub message: String,
    /// The record the message renders.
    pub record: Record,
    /// The pointer tag.
    pub pointer_tag: LedgerTag,
    /// The commit the pointer must still resolve to (`None`: must not exist).
    pub from: Option<CommitId>,
    /// The commit the pointer and the history tag point at.
    pub to: CommitId,
}

/// The result of asking for a release.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum Outcome {
    /// The commit is already released to the environment: nothing to write.
    AlreadyReleased {
        /// The environment.
        env: Env,
        /// The commit.
        commit: CommitId,
    },
    /// Write this plan.
    Planned(Box<Plan>),
}

/// Why the ledger refuses a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A history tag for this second already exists; retry with a later `now`.
    #[error("history tag {tag} already exists")]
    HistoryTagExists {
        /// The tag name.
        tag: String,
    },
    /// `now` is not after the newest history entry of the environment (history order
    /// must follow time).
    #[error("clock {now} is not after the newest history entry of {env} ({latest})")]
    ClockBehind {
        /// The environment.
        env: Env,
        /// The `now` passed in.
        now: Stamp,
        /// The newest history stamp.
        latest: Stamp,
    },
    /// No earlier release to roll back to.
    #[error("{env} has no earlier release to roll back to")]
    NothingToRollBack {
        /// The environment.
        env: Env,
    },
    /// The pointer does not sit where the history says (it was moved outside the flow).
    #[error("{env}_release is at {pointer:?} but the history says {ledger:?}")]
    PointerDiverged {
        /// The environment.
        env: Env,
        /// What the pointer resolves to.
        pointer: Option<CommitId>,
        /// What the history says.
        ledger: Option<CommitId>,
    },
    /// Compare-and-swap failed: someone else moved the pointer first.
    #[error("{tag} moved concurrently: expected {expected:?}, found {actual:?}")]
    Conflict {
        /// The tag name.
        tag: String,
        /// The commit the plan expected.
        expected: Option<CommitId>,
        /// The commit found.
        actual: Option<CommitId>,
    },
    /// The provenance cannot be recorded.
    #[error(transparent)]
    Provenance(#[from] RecordError),
}

/// The ledger of a repository: every `<env>_release` and `<env>_<stamp>` tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    envs: BTreeMap<Env, EnvLedger>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    /// Builds the ledger from `(tag name, target)` pairs; tags that are not ledger tags are
    /// ignored (a repository has other tags too).
    pub fn from_tags<I, S>(tags: I) -> Self
    where
        I: IntoIterator<Item = (S, TagTarget)>,
        S: AsRef<str>,
    {
        let mut ledger = Ledger::new();
        for (name, target) in tags {
            if let Ok(tag) = LedgerTag::parse(name.as_ref()) {
                ledger.insert(tag, target);
            }
        }
        ledger
    }

    /// Sets one tag (replaces an existing one of the same name).
    pub fn insert(&mut self, tag: LedgerTag, target: TagTarget) {
        match tag {
            LedgerTag::Pointer(env) => self.envs.entry(env).or_default().pointer = Some(target),
            LedgerTag::History(env, at) => {
                self.envs.entry(env).or_default().history.insert(at, target);
            }
        }
    }

    /// The environments that have at least one ledger tag.
    pub fn envs(&self) -> impl Iterator<Item = &Env> {
        self.envs.keys()
    }

    /// The raw tags of an environment.
    pub fn env(&self, env: &Env) -> Option<&EnvLedger> {
        self.envs.get(env)
    }

    /// The commit `<env>_release` resolves to.
    pub fn pointer(&self, env: &Env) -> Option<&CommitId> {
        self.envs
            .get(env)
            .and_then(|e| e.pointer.as_ref())
            .map(|t| &t.commit)
    }

    /// Every ledger tag with its target, pointer first then history in order.
    pub fn tags(&self) -> impl Iterator<Item = (LedgerTag, &TagTarget)> {
        self.envs.iter().flat_map(|(env, l)| {
            l.pointer
                .iter()
                .map(move |p| (env.pointer(), p))
                .chain(l.history.iter().map(move |(at, t)| (env.history(*at), t)))
        })
    }

    /// The history of an environment, oldest first, interpreted.
    pub fn history(&self, env: &Env) -> Vec<HistoryEntry> {
        let Some(l) = self.envs.get(env) else {
            return Vec::new();
        };
        l.history
            .iter()
            .map(|(at, t)| HistoryEntry {
                tag: env.history(*at),
                at: *at,
                commit: t.commit.clone(),
                record: interpret(env, *at, t),
            })
            .collect()
    }

    /// Replays the history of an environment (see the module docs).
    pub fn position(&self, env: &Env) -> Position {
        let mut pos = Position::default();
        for entry in self.history(env) {
            match entry.action() {
                Action::Rollback => {
                    if let Some(i) = pos.index.and_then(|i| i.checked_sub(1)) {
                        pos.index = Some(i);
                    }
                }
                _ => {
                    let keep = pos.index.map_or(0, |i| i + 1);
                    pos.stack.truncate(keep);
                    pos.stack.push(entry.commit);
                    pos.index = Some(pos.stack.len() - 1);
                }
            }
        }
        pos
    }

    fn check_clock(&self, env: &Env, now: Stamp) -> Result<(), LedgerError> {
        let history = self.envs.get(env).map(|l| &l.history);
        if let Some((latest, _)) = history.and_then(|h| h.last_key_value()) {
            if now == *latest {
                return Err(LedgerError::HistoryTagExists {
                    tag: env.history(now).name(),
                });
            }
            if now < *latest {
                return Err(LedgerError::ClockBehind {
                    env: env.clone(),
                    now,
                    latest: *latest,
                });
            }
        }
        Ok(())
    }

    fn plan(
        &self,
        action: Action,
        env: &Env,
        to: CommitId,
        who: &Provenance,
        now: Stamp,
    ) -> Result<Plan, LedgerError> {
        who.validate()?;
        self.check_clock(env, now)?;
        let from = self.pointer(env).cloned();
        let record = Record {
            action,
            env: env.clone(),
            at: Some(now),
            commit: to.clone(),
            previous: from.clone(),
            provenance: who.clone(),
        };
        Ok(Plan {
            action,
            env: env.clone(),
            at: now,
            history_tag: env.history(now),
            message: record.render(),
            record,
            pointer_tag: env.pointer(),
            from,
            to,
        })
    }

    /// Plans releasing `commit` to `env` at `now`: move `<env>_release` to it and create
    /// `<env>_<now>`. Releasing the commit the pointer already resolves to is
    /// [`Outcome::AlreadyReleased`]. A history tag for `now` that already exists is
    /// [`LedgerError::HistoryTagExists`]; a `now` before the newest history entry is
    /// [`LedgerError::ClockBehind`]. Nothing is changed: apply the plan with
    /// [`Ledger::apply`] (in memory) or the git adapter.
    pub fn release(
        &self,
        env: &Env,
        commit: &CommitId,
        who: &Provenance,
        now: Stamp,
    ) -> Result<Outcome, LedgerError> {
        if self.pointer(env) == Some(commit) {
            who.validate()?;
            return Ok(Outcome::AlreadyReleased {
                env: env.clone(),
                commit: commit.clone(),
            });
        }
        let plan = self.plan(Action::Release, env, commit.clone(), who, now)?;
        Ok(Outcome::Planned(Box::new(plan)))
    }

    /// Plans rolling `env` back to the previous release at `now` (a history tag records
    /// the rollback; nothing is deleted).
    pub fn rollback(&self, env: &Env, who: &Provenance, now: Stamp) -> Result<Plan, LedgerError> {
        let pos = self.position(env);
        let pointer = self.pointer(env);
        if pointer != pos.current() {
            return Err(LedgerError::PointerDiverged {
                env: env.clone(),
                pointer: pointer.cloned(),
                ledger: pos.current().cloned(),
            });
        }
        let Some(target) = pos.previous() else {
            return Err(LedgerError::NothingToRollBack { env: env.clone() });
        };
        self.plan(Action::Rollback, env, target.clone(), who, now)
    }

    /// Checks the compare-and-swap preconditions of a plan against this ledger: the
    /// history tag is absent and the pointer resolves to `plan.from`.
    pub fn check(&self, plan: &Plan) -> Result<(), LedgerError> {
        let LedgerTag::History(_, at) = plan.history_tag else {
            return Err(LedgerError::HistoryTagExists {
                tag: plan.history_tag.name(),
            });
        };
        if self
            .envs
            .get(&plan.env)
            .is_some_and(|l| l.history.contains_key(&at))
        {
            return Err(LedgerError::HistoryTagExists {
                tag: plan.history_tag.name(),
            });
        }
        let actual = self.pointer(&plan.env);
        if actual != plan.from.as_ref() {
            return Err(LedgerError::Conflict {
                tag: plan.pointer_tag.name(),
                expected: plan.from.clone(),
                actual: actual.cloned(),
            });
        }
        Ok(())
    }

    /// Applies a plan in memory, compare-and-swap: on any error nothing changed.
    pub fn apply(&mut self, plan: &Plan) -> Result<(), LedgerError> {
        self.check(plan)?;
        self.insert(
            plan.history_tag.clone(),
            TagTarget {
                commit: plan.to.clone(),
                message: Some(plan.message.clone()),
            },
        );
        self.insert(
            plan.pointer_tag.clone(),
            TagTarget::lightweight(plan.to.clone()),
        );
        Ok(())
    }
}

fn interpret(env: &Env, at: Stamp, t: &TagTarget) -> EntryRecord {
    let Some(message) = &t.message else {
        return EntryRecord::Lightweight;
    };
    match Record::parse(message) {
        Err(e) => EntryRecord::Unreadable(e),
        Ok(r) => {
            let field = if &r.env != env {
                Some("env")
            } else if r.commit != t.commit {
                Some("commit")
            } else if r.at != Some(at) {
                Some("at")
            } else {
                None
            };
            match field {
                Some(field) => EntryRecord::Mismatch {
                    record: Box::new(r),
                    field,
                },
                None => EntryRecord::Valid(r),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(n: u8) -> CommitId {
        CommitId::new(&format!("{n:02x}").repeat(20)).unwrap()
    }
    fn prod() -> Env {
        Env::new("prod").unwrap()
    }
    fn t(s: i64) -> Stamp {
        Stamp::from_unix_secs(1_795_000_000 + s).unwrap()
    }
    fn who() -> Provenance {
        Provenance {
            by: "bot".into(),
            approvals: vec!["alice".into()],
            pr: Some(7),
        }
    }
    fn release(l: &mut Ledger, commit: u8, now: i64) {
        match l.release(&prod(), &c(commit), &who(), t(now)).unwrap() {
            Outcome::Planned(p) => l.apply(&p).unwrap(),
            other => panic!("{other:?}"),
        }
    }
    fn rollback(l: &mut Ledger, now: i64) -> CommitId {
        let p = l.rollback(&prod(), &who(), t(now)).unwrap();
        l.apply(&p).unwrap();
        p.to
    }

    #[test]
    fn release_moves_pointer_and_writes_history() {
        let mut l = Ledger::new();
        release(&mut l, 1, 0);
        assert_eq!(l.pointer(&prod()), Some(&c(1)));
        let h = l.history(&prod());
        assert_eq!(h.len(), 1);
        let EntryRecord::Valid(r) = &h[0].record else {
            panic!("{:?}", h[0].record)
        };
        assert_eq!((r.action, r.previous.clone()), (Action::Release, None));
        // Same commit again: no-op, no new tag.
        assert_eq!(
            l.release(&prod(), &c(1), &who(), t(5)).unwrap(),
            Outcome::AlreadyReleased {
                env: prod(),
                commit: c(1)
            }
        );
        // Same second: typed error, nothing changes.
        let before = l.clone();
        assert_eq!(
            l.release(&prod(), &c(2), &who(), t(0)),
            Err(LedgerError::HistoryTagExists {
                tag: format!("prod_{}", t(0))
            })
        );
        assert!(matches!(
            l.release(&prod(), &c(2), &who(), t(-1)),
            Err(LedgerError::ClockBehind { .. })
        ));
        assert_eq!(l, before);
    }

    #[test]
    fn rollbacks_walk_back_and_releases_move_forward() {
        let mut l = Ledger::new();
        release(&mut l, 1, 0);
        release(&mut l, 2, 1);
        release(&mut l, 3, 2);
        assert_eq!(rollback(&mut l, 3), c(2));
        assert_eq!(rollback(&mut l, 4), c(1));
        assert_eq!(
            l.rollback(&prod(), &who(), t(5)),
            Err(LedgerError::NothingToRollBack { env: prod() })
        );
        release(&mut l, 4, 6);
        // 2 and 3 were rolled back from: a rollback from 4 goes to 1.
        assert_eq!(rollback(&mut l, 7), c(1));
        assert_eq!(l.history(&prod()).len(), 7);
    }

    #[test]
    fn compare_and_swap() {
        let mut l = Ledger::new();
        release(&mut l, 1, 0);
        let Outcome::Planned(p) = l.release(&prod(), &c(2), &who(), t(1)).unwrap() else {
            panic!()
        };
        // Someone else releases 3 first.
        let mut other = l.clone();
        release(&mut other, 3, 2);
        let before = other.clone();
        assert_eq!(
            other.apply(&p),
            Err(LedgerError::Conflict {
                tag: "prod_release".into(),
                expected: Some(c(1)),
                actual: Some(c(3))
            })
        );
        assert_eq!(other, before);
    }

    #[test]
    fn out_of_flow_tags() {
        let mut l = Ledger::new();
        release(&mut l, 1, 0);
        release(&mut l, 2, 1);
        // A hand-moved pointer: rollbacks refused.
        l.insert(prod().pointer(), TagTarget::lightweight(c(9)));
        assert!(matches!(
            l.rollback(&prod(), &who(), t(2)),
            Err(LedgerError::PointerDiverged { .. })
        ));
        // A lightweight history tag replays as a release.
        l.insert(prod().history(t(3)), TagTarget::lightweight(c(9)));
        assert_eq!(l.position(&prod()).current(), Some(&c(9)));
        assert_eq!(l.history(&prod())[2].record, EntryRecord::Lightweight);
        // A record copied onto another commit is a mismatch.
        let msg = l.env(&prod()).unwrap().history[&t(0)].message.clone();
        l.insert(
            prod().history(t(4)),
            TagTarget {
                commit: c(9),
                message: msg,
            },
        );
        assert!(matches!(
            l.history(&prod())[3].record,
            EntryRecord::Mismatch {
                field: "commit",
                ..
            }
        ));
    }

    #[test]
    fn from_tags_ignores_other_tags() {
        let l = Ledger::from_tags([
            ("v1.0.0", TagTarget::lightweight(c(1))),
            ("prod_release", TagTarget::lightweight(c(2))),
        ]);
        assert_eq!(l.envs().count(), 1);
        assert_eq!(l.tags().count(), 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Release(u8),
        Rollback,
        SameSecond(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6).prop_map(Op::Release),
            Just(Op::Rollback),
            (0u8..6).prop_map(Op::SameSecond),
        ]
    }

    proptest! {
        #[test]
        fn any_sequence_keeps_the_invariants(ops in proptest::collection::vec(op(), 0..40)) {
            let mut l = Ledger::new();
            let mut now = 0;
            let mut written = 0usize;
            let mut last = 0;
            // A model: the browser-history stack.
            let mut stack: Vec<CommitId> = Vec::new();
            let mut idx: Option<usize> = None;
            for op in ops {
                let before = l.clone();
                match op {
                    Op::Release(n) => {
                        now += 1;
                        match l.release(&prod(), &c(n), &who(), t(now)).unwrap() {
                            Outcome::AlreadyReleased { .. } => {
                                prop_assert_eq!(idx.map(|i| &stack[i]), Some(&c(n)));
                            }
                            Outcome::Planned(p) => {
                                l.apply(&p).unwrap();
                                written += 1;
                                last = now;
                                stack.truncate(idx.map_or(0, |i| i + 1));
                                stack.push(c(n));
                                idx = Some(stack.len() - 1);
                            }
                        }
                    }
                    Op::Rollback => {
                        now += 1;
                        match l.rollback(&prod(), &who(), t(now)) {
                            Ok(p) => {
                                l.apply(&p).unwrap();
                                written += 1;
                                last = now;
                                idx = idx.map(|i| i - 1);
                            }
                            Err(LedgerError::NothingToRollBack { .. }) => {
                                prop_assert!(idx.is_none_or(|i| i == 0));
                                prop_assert_eq!(&l, &before);
                            }
                            Err(e) => prop_assert!(false, "{e}"),
                        }
                    }
                    Op::SameSecond(n) => {
                        if written > 0 {
                            let r = l.release(&prod(), &c(n), &who(), t(last));
                            prop_assert!(matches!(
                                r,
                                Ok(Outcome::AlreadyReleased { .. }) | Err(LedgerError::HistoryTagExists { .. })
                            ), "same-second release");
                        }
                    }
                }
                // Invariants: history tags are only ever added, unchanged.
                for (tag, target) in before.tags() {
                    if matches!(tag, LedgerTag::History(..)) {
                        let after = l.env(tag.env()).unwrap().history.values().find(|x| *x == target);
                        prop_assert!(after.is_some());
                    }
                }
                prop_assert_eq!(l.history(&prod()).len(), written);
                let pos = l.position(&prod());
                prop_assert_eq!(pos.current(), l.pointer(&prod()));
                prop_assert_eq!(pos.current(), idx.map(|i| &stack[i]));
                for e in l.history(&prod()) {
                    prop_assert!(matches!(e.record, EntryRecord::Valid(_)), "invalid record");
                }
            }
        }
    }
}
