//! The release flow of one pull request as a pure machine.
//!
//! ```text
//! PR opened ──approvals (>= N tech leads on the head commit)──▶ Approved
//!   ──/canary_release──▶ in canary ──integration result + manual results──▶ verified
//!   ──/prod_release──▶ live ──/rollback prod──▶ ──/rollback canary──▶ rolled back
//! ```
//!
//! The caller keeps a [`PrState`] per pull request (serde, store it anywhere) and feeds
//! [`Input`]s to [`handle`] together with the current [`Ledger`] and `now`. The answer is
//! a [`Decision`]: the new state and the [`Effect`]s to carry out in order (publish a
//! ledger plan through the git adapter, start the integration tests, post a comment), or
//! a [`Refusal`] whose `Display` is the comment a bot posts back. A refused input changes
//! nothing.
//!
//! Environments are ordered ([`FlowConfig::envs`], e.g. `canary` then `prod`): releasing
//! to an environment other than the first requires the commit currently released to the
//! one before it, with passing integration and manual test results for that commit.
//! Rolling back goes in the other direction: an environment cannot be rolled back while
//! the next one still runs the same commit.
//!
//! [`guard`] is the pre-sync check: it decides from the ledger alone whether the commit
//! `<env>_release` resolves to may be synced (a tag made outside the flow is refused).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ledger::{EntryRecord, Ledger, LedgerError, Outcome, Plan};
use crate::record::{Action, Provenance, RecordError};
use crate::tag::{CommitId, Env, Stamp};

/// Who must approve and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    /// The tech-lead team: only their approvals count.
    pub tech_leads: BTreeSet<String>,
    /// How many distinct tech-lead approvals a release needs (at least 1).
    pub min_approvals: usize,
}

impl ApprovalPolicy {
    /// The approvers of `approvals` that count under this policy, sorted.
    pub fn counted<'a>(&self, approvals: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let set: BTreeSet<&String> = approvals
            .into_iter()
            .filter(|a| self.tech_leads.contains(*a))
            .collect();
        set.into_iter().cloned().collect()
    }

    /// How many approvals are needed (never less than one).
    pub fn needed(&self) -> usize {
        self.min_approvals.max(1)
    }
}

/// The flow's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowConfig {
    /// Environments in release order (e.g. `canary`, `prod`); at least one.
    pub envs: Vec<Env>,
    /// The approval policy.
    pub approval: ApprovalPolicy,
    /// Who may issue release and rollback commands (empty: anyone). The actor is the
    /// `by` of the records the commands write.
    pub releasers: BTreeSet<String>,
}

impl FlowConfig {
    fn index(&self, env: &Env) -> Option<usize> {
        self.envs.iter().position(|e| e == env)
    }
}

/// An integration-test result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationResult {
    /// The commit tested.
    pub commit: CommitId,
    /// Whether the tests passed.
    pub passed: bool,
    /// Where to see the run.
    pub link: String,
}

/// A manual-test result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualResult {
    /// The commit tested.
    pub commit: CommitId,
    /// Who tested.
    pub who: String,
    /// Whether it passed.
    pub passed: bool,
    /// Free text.
    pub note: String,
}

/// What the flow remembers about one pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrState {
    /// The pull request number.
    pub pr: u64,
    /// Its head commit.
    pub head: CommitId,
    /// Approvals: reviewer -> the commit they approved.
    pub approvals: BTreeMap<String, CommitId>,
    /// Integration results, newest last.
    pub integration: Vec<IntegrationResult>,
    /// Manual results, newest last.
    pub manual: Vec<ManualResult>,
}

impl PrState {
    /// A freshly opened pull request.
    pub fn new(pr: u64, head: CommitId) -> Self {
        PrState {
            pr,
            head,
            approvals: BTreeMap::new(),
            integration: Vec::new(),
            manual: Vec::new(),
        }
    }

    /// The counted approvers of the head commit.
    pub fn approvers(&self, policy: &ApprovalPolicy) -> Vec<String> {
        policy.counted(
            self.approvals
                .iter()
                .filter(|(_, c)| **c == self.head)
                .map(|(r, _)| r),
        )
    }

    /// The test verdict for `commit`: the newest integration result, and the manual
    /// results (all must pass, at least one).
    pub fn tests(&self, commit: &CommitId) -> TestStatus {
        let integration = self
            .integration
            .iter()
            .rev()
            .find(|r| &r.commit == commit)
            .map(|r| r.passed);
        let manual: Vec<&ManualResult> =
            self.manual.iter().filter(|m| &m.commit == commit).collect();
        let manual = if manual.is_empty() {
            None
        } else {
            Some(manual.iter().all(|m| m.passed))
        };
        TestStatus {
            integration,
            manual,
        }
    }
}

/// Test verdicts for one commit (`None`: no result yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestStatus {
    /// The newest integration result.
    pub integration: Option<bool>,
    /// All manual results passed (`Some(false)` if any failed).
    pub manual: Option<bool>,
}

/// A command from a comment (or a label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Command {
    /// `/<env>_release`: release the pull request to `env`.
    Release {
        /// The environment.
        env: Env,
    },
    /// `/rollback <env>`.
    Rollback {
        /// The environment.
        env: Env,
    },
    /// `/test pass|fail [note]`: a manual test result for the commit in the first
    /// environment.
    ManualTest {
        /// Whether it passed.
        passed: bool,
        /// Free text.
        note: String,
    },
}

/// One input to the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// New commits were pushed to the pull request: approvals and results of older
    /// commits no longer count.
    Pushed {
        /// The new head.
        head: CommitId,
    },
    /// A review approved `commit`.
    Approved {
        /// The reviewer.
        reviewer: String,
        /// The commit reviewed.
        commit: CommitId,
    },
    /// A review approval was dismissed.
    Dismissed {
        /// The reviewer.
        reviewer: String,
    },
    /// The automated integration tests finished.
    Integration(IntegrationResult),
    /// A command from `actor`.
    Command {
        /// Who commented.
        actor: String,
        /// What they asked for.
        command: Command,
    },
}

/// Something for the caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Write this plan to the repository (`GitRepo::publish`).
    Publish(Box<Plan>),
    /// Start the integration tests against `env` running `commit`.
    RunIntegrationTests {
        /// The environment.
        env: Env,
        /// The commit.
        commit: CommitId,
    },
    /// Post this comment on the pull request.
    Comment(String),
}

/// The result of a handled input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Decision {
    /// The new state.
    pub state: PrState,
    /// What to do, in order.
    pub effects: Vec<Effect>,
}

/// Which kind of test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TestKind {
    /// The automated integration tests.
    Integration,
    /// Registered manual tests.
    Manual,
}

impl fmt::Display for TestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestKind::Integration => "integration",
            TestKind::Manual => "manual",
        })
    }
}

/// Why the flow refuses an input; `Display` is the comment a bot posts back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The configuration lists no environment.
    #[error("the flow has no environments configured")]
    NoEnvironments,
    /// The environment is not part of the flow.
    #[error("unknown environment `{env}`")]
    UnknownEnv {
        /// The environment.
        env: Env,
    },
    /// The actor may not release or roll back.
    #[error("@{actor} may not run `{command}`")]
    NotAllowed {
        /// Who asked.
        actor: String,
        /// What they asked for.
        command: String,
    },
    /// Not enough tech-lead approvals on the head commit.
    #[error("needs {need} tech-lead approval(s) of {head}, has {have}")]
    NotApproved {
        /// The head commit.
        head: CommitId,
        /// Counted approvals.
        have: usize,
        /// Required approvals.
        need: usize,
    },
    /// The commit is not what the previous environment runs.
    #[error("{env} takes only the commit released to {previous} ({released:?}), not {commit}")]
    NotInPreviousEnv {
        /// The target environment.
        env: Env,
        /// The environment before it.
        previous: Env,
        /// The commit asked for.
        commit: CommitId,
        /// What the previous environment runs.
        released: Option<CommitId>,
    },
    /// Tests for the commit have not reported.
    #[error("{kind} tests of {commit} have no result yet")]
    TestsMissing {
        /// The commit.
        commit: CommitId,
        /// Which tests.
        kind: TestKind,
    },
    /// Tests for the commit failed.
    #[error("{kind} tests of {commit} failed")]
    TestsFailed {
        /// The commit.
        commit: CommitId,
        /// Which tests.
        kind: TestKind,
    },
    /// The next environment still runs the same commit: roll it back first.
    #[error("roll back {first} before {env}: it still runs {commit}")]
    RollbackOrder {
        /// The environment asked for.
        env: Env,
        /// The environment to roll back first.
        first: Env,
        /// The commit both run.
        commit: CommitId,
    },
    /// A manual result for a commit that is not in the first environment.
    #[error("{head} is not running in {env}: nothing to test")]
    NotDeployed {
        /// The first environment.
        env: Env,
        /// The head commit.
        head: CommitId,
    },
    /// The ledger refused.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Where a pull request stands (derived from its state and the ledger).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Waiting for approvals.
    AwaitingApproval {
        /// Counted approvals.
        have: usize,
        /// Required.
        need: usize,
    },
    /// Approved, not released anywhere.
    Approved,
    /// Running in `env` (the furthest environment that runs the head).
    Released {
        /// The environment.
        env: Env,
        /// The tests of the head.
        tests: TestStatus,
    },
    /// Released before, rolled back everywhere.
    RolledBack,
}

/// Where the pull request stands.
pub fn stage(state: &PrState, ledger: &Ledger, config: &FlowConfig) -> Stage {
    if let Some(env) = config
        .envs
        .iter()
        .rev()
        .find(|e| ledger.pointer(e) == Some(&state.head))
    {
        return Stage::Released {
            env: env.clone(),
            tests: state.tests(&state.head),
        };
    }
    let released_before = config
        .envs
        .iter()
        .any(|e| ledger.history(e).iter().any(|h| h.commit == state.head));
    if released_before {
        return Stage::RolledBack;
    }
    let have = state.approvers(&config.approval).len();
    let need = config.approval.needed();
    if have >= need {
        Stage::Approved
    } else {
        Stage::AwaitingApproval { have, need }
    }
}

fn command_name(c: &Command) -> String {
    match c {
        Command::Release { env } => format!("/{env}_release"),
        Command::Rollback { env } => format!("/rollback {env}"),
        Command::ManualTest { passed, .. } => {
            format!("/test {}", if *passed { "pass" } else { "fail" })
        }
    }
}

/// Handles one input. A refusal changes nothing.
pub fn handle(
    state: &PrState,
    ledger: &Ledger,
    config: &FlowConfig,
    input: &Input,
    now: Stamp,
) -> Result<Decision, Refusal> {
    let mut next = state.clone();
    let mut effects = Vec::new();
    match input {
        Input::Pushed { head } => next.head = head.clone(),
        Input::Approved { reviewer, commit } => {
            next.approvals.insert(reviewer.clone(), commit.clone());
        }
        Input::Dismissed { reviewer } => {
            next.approvals.remove(reviewer);
        }
        Input::Integration(r) => {
            next.integration.push(r.clone());
            effects.push(Effect::Comment(format!(
                "integration tests of {} {}: {}",
                r.commit.short(),
                if r.passed { "passed" } else { "failed" },
                r.link
            )));
        }
        Input::Command { actor, command } => {
            let gated = matches!(command, Command::Release { .. } | Command::Rollback { .. });
            if gated && !config.releasers.is_empty() && !config.releasers.contains(actor) {
                return Err(Refusal::NotAllowed {
                    actor: actor.clone(),
                    command: command_name(command),
                });
            }
            match command {
                Command::Release { env } => {
                    release(&mut effects, state, ledger, config, actor, env, now)?
                }
                Command::Rollback { env } => {
                    rollback(&mut effects, ledger, config, actor, env, now)?
                }
                Command::ManualTest { passed, note } => {
                    let Some(first) = config.envs.first() else {
                        return Err(Refusal::NoEnvironments);
                    };
                    if ledger.pointer(first) != Some(&state.head) {
                        return Err(Refusal::NotDeployed {
                            env: first.clone(),
                            head: state.head.clone(),
                        });
                    }
                    next.manual.push(ManualResult {
                        commit: state.head.clone(),
                        who: actor.clone(),
                        passed: *passed,
                        note: note.clone(),
                    });
                    effects.push(Effect::Comment(format!(
                        "manual test of {} by @{actor}: {}",
                        state.head.short(),
                        if *passed { "pass" } else { "fail" }
                    )));
                }
            }
        }
    }
    Ok(Decision {
        state: next,
        effects,
    })
}

fn release(
    effects: &mut Vec<Effect>,
    state: &PrState,
    ledger: &Ledger,
    config: &FlowConfig,
    actor: &str,
    env: &Env,
    now: Stamp,
) -> Result<(), Refusal> {
    let i = config
        .index(env)
        .ok_or_else(|| Refusal::UnknownEnv { env: env.clone() })?;
    let commit = &state.head;
    let approvers = state.approvers(&config.approval);
    if approvers.len() < config.approval.needed() {
        return Err(Refusal::NotApproved {
            head: commit.clone(),
            have: approvers.len(),
            need: config.approval.needed(),
        });
    }
    if let Some(previous) = i.checked_sub(1).map(|p| &config.envs[p]) {
        let released = ledger.pointer(previous);
        if released != Some(commit) {
            return Err(Refusal::NotInPreviousEnv {
                env: env.clone(),
                previous: previous.clone(),
                commit: commit.clone(),
                released: released.cloned(),
            });
        }
        let tests = state.tests(commit);
        for (kind, verdict) in [
            (TestKind::Integration, tests.integration),
            (TestKind::Manual, tests.manual),
        ] {
            match verdict {
                None => {
                    return Err(Refusal::TestsMissing {
                        commit: commit.clone(),
                        kind,
                    });
                }
                Some(false) => {
                    return Err(Refusal::TestsFailed {
                        commit: commit.clone(),
                        kind,
                    });
                }
                Some(true) => {}
            }
        }
    }
    let who = Provenance {
        by: actor.to_string(),
        approvals: approvers,
        pr: Some(state.pr),
    };
    match ledger.release(env, commit, &who, now)? {
        Outcome::AlreadyReleased { env, commit } => {
            effects.push(Effect::Comment(format!(
                "{} is already released to {env}",
                commit.short()
            )));
        }
        Outcome::Planned(plan) => {
            effects.push(Effect::Publish(plan));
            if i + 1 < config.envs.len() {
                effects.push(Effect::RunIntegrationTests {
                    env: env.clone(),
                    commit: commit.clone(),
                });
            }
            effects.push(Effect::Comment(format!(
                "released {} to {env}",
                commit.short()
            )));
        }
    }
    Ok(())
}

fn rollback(
    effects: &mut Vec<Effect>,
    ledger: &Ledger,
    config: &FlowConfig,
    actor: &str,
    env: &Env,
    now: Stamp,
) -> Result<(), Refusal> {
    let i = config
        .index(env)
        .ok_or_else(|| Refusal::UnknownEnv { env: env.clone() })?;
    if let (Some(next), Some(here)) = (config.envs.get(i + 1), ledger.pointer(env))
        && ledger.pointer(next) == Some(here)
    {
        return Err(Refusal::RollbackOrder {
            env: env.clone(),
            first: next.clone(),
            commit: here.clone(),
        });
    }
    let plan = ledger.rollback(env, &Provenance::by(actor), now)?;
    effects.push(Effect::Comment(format!(
        "rolled {env} back to {}",
        plan.to.short()
    )));
    effects.insert(0, Effect::Publish(Box::new(plan)));
    Ok(())
}

/// Why the pre-sync guard refuses a sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardRefusal {
    /// `<env>_release` does not exist in the ledger.
    #[error("{env}_release does not exist")]
    NoPointer {
        /// The environment.
        env: Env,
    },
    /// The commit to sync is not what `<env>_release` resolves to in the ledger.
    #[error("{env}_release is {pointer}, not {resolved}")]
    NotThePointer {
        /// The environment.
        env: Env,
        /// The pointer's commit in the ledger.
        pointer: CommitId,
        /// The commit about to be synced.
        resolved: CommitId,
    },
    /// No history tag records the move to this commit.
    #[error("no history tag of {env} records {commit}: the pointer was moved outside the flow")]
    Unrecorded {
        /// The environment.
        env: Env,
        /// The commit.
        commit: CommitId,
    },
    /// The recording history tag is lightweight.
    #[error("{tag} is a lightweight tag: not written by the flow")]
    Lightweight {
        /// The tag name.
        tag: String,
    },
    /// The recording history tag's message is not a record.
    #[error("{tag} has no valid record: {error}")]
    Unreadable {
        /// The tag name.
        tag: String,
        /// Why.
        error: RecordError,
    },
    /// The record does not describe its tag (copied or forged).
    #[error("{tag} carries a record whose {field} does not match the tag")]
    Forged {
        /// The tag name.
        tag: String,
        /// The field that disagrees.
        field: &'static str,
    },
    /// The release record has too few counted approvals.
    #[error("{tag} records {have} tech-lead approval(s), {need} needed")]
    Unapproved {
        /// The tag name.
        tag: String,
        /// Counted approvals.
        have: usize,
        /// Required.
        need: usize,
    },
}

/// The pre-sync guard: may `env` sync `resolved` (the commit `<env>_release` resolves
/// to)? Yes only if the ledger's newest history entry of `env` moved the pointer to
/// exactly this commit with a valid, consistent record, and the release it stands for
/// (the entry itself, or for a rollback the release it returns to) was approved under
/// the policy.
pub fn guard(
    env: &Env,
    resolved: &CommitId,
    ledger: &Ledger,
    policy: &ApprovalPolicy,
) -> Result<(), GuardRefusal> {
    let Some(pointer) = ledger.pointer(env) else {
        return Err(GuardRefusal::NoPointer { env: env.clone() });
    };
    if pointer != resolved {
        return Err(GuardRefusal::NotThePointer {
            env: env.clone(),
            pointer: pointer.clone(),
            resolved: resolved.clone(),
        });
    }
    let history = ledger.history(env);
    let unrecorded = || GuardRefusal::Unrecorded {
        env: env.clone(),
        commit: resolved.clone(),
    };
    let last = history.last().ok_or_else(unrecorded)?;
    if &last.commit != resolved {
        return Err(unrecorded());
    }
    let check = |entry: &crate::ledger::HistoryEntry| -> Result<Action, GuardRefusal> {
        let tag = entry.tag.name();
        match &entry.record {
            EntryRecord::Valid(r) => {
                if r.action == Action::Release {
                    let have = policy.counted(&r.provenance.approvals).len();
                    if have < policy.needed() {
                        return Err(GuardRefusal::Unapproved {
                            tag,
                            have,
                            need: policy.needed(),
                        });
                    }
                }
                Ok(r.action)
            }
            EntryRecord::Lightweight => Err(GuardRefusal::Lightweight { tag }),
            EntryRecord::Unreadable(error) => Err(GuardRefusal::Unreadable {
                tag,
                error: error.clone(),
            }),
            EntryRecord::Mismatch { field, .. } => Err(GuardRefusal::Forged { tag, field }),
        }
    };
    if check(last)? == Action::Rollback {
        // The release this rollback returns to must itself have been approved.
        let release = history
            .iter()
            .rev()
            .skip(1)
            .find(|e| &e.commit == resolved && e.action() == Action::Release)
            .ok_or_else(unrecorded)?;
        check(release)?;
    }
    if ledger.position(env).current() != Some(resolved) {
        return Err(unrecorded());
    }
    Ok(())
}
