//! The release flow end to end on an in-memory ledger, every refusal, and the pre-sync
//! guard against tags made outside the flow.

use gitops_core::flow::{
    ApprovalPolicy, Command, Decision, Effect, FlowConfig, GuardRefusal, Input, IntegrationResult,
    PrState, Refusal, Stage, TestKind, guard, handle, stage,
};
use gitops_core::ledger::{Ledger, LedgerError, TagTarget};
use gitops_core::tag::{CommitId, Env, Stamp};

fn c(n: u8) -> CommitId {
    CommitId::new(&format!("{n:02x}").repeat(20)).unwrap()
}
fn env(s: &str) -> Env {
    Env::new(s).unwrap()
}
fn t(s: i64) -> Stamp {
    Stamp::from_unix_secs(1_795_300_000 + s).unwrap()
}

fn config() -> FlowConfig {
    FlowConfig {
        envs: vec![env("canary"), env("prod")],
        approval: ApprovalPolicy {
            tech_leads: ["alice", "bob"].iter().map(|s| s.to_string()).collect(),
            min_approvals: 1,
        },
        releasers: ["alice", "bob", "carol"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

struct World {
    ledger: Ledger,
    state: PrState,
    now: i64,
}

impl World {
    fn new(pr: u64, head: CommitId) -> Self {
        World {
            ledger: Ledger::new(),
            state: PrState::new(pr, head),
            now: 0,
        }
    }

    fn try_input(&mut self, input: Input) -> Result<Decision, Refusal> {
        self.now += 1;
        let d = handle(&self.state, &self.ledger, &config(), &input, t(self.now))?;
        for e in &d.effects {
            if let Effect::Publish(plan) = e {
                self.ledger.apply(plan).unwrap();
            }
        }
        self.state = d.state.clone();
        Ok(d)
    }

    fn input(&mut self, input: Input) {
        let _ = self.try_input(input).unwrap();
    }

    fn run(&mut self, actor: &str, command: Command) {
        let _ = self.cmd(actor, command).unwrap();
    }

    fn cmd(&mut self, actor: &str, command: Command) -> Result<Decision, Refusal> {
        self.try_input(Input::Command {
            actor: actor.into(),
            command,
        })
    }
}

fn release(e: &str) -> Command {
    Command::Release { env: env(e) }
}
fn rollback(e: &str) -> Command {
    Command::Rollback { env: env(e) }
}

/// Releases PR `pr` with head `head` through canary and prod.
fn ship(w: &mut World, head: CommitId) {
    w.state = PrState::new(w.state.pr + 1, head.clone());
    w.input(Input::Approved {
        reviewer: "alice".into(),
        commit: head.clone(),
    });
    w.run("carol", release("canary"));
    w.input(Input::Integration(IntegrationResult {
        commit: head.clone(),
        passed: true,
        link: "https://ci.example.invalid/1".into(),
    }));
    w.run(
        "dave",
        Command::ManualTest {
            passed: true,
            note: String::new(),
        },
    );
    w.run("carol", release("prod"));
}

#[test]
fn the_whole_flow_with_refusals() {
    let cfg = config();
    let mut w = World::new(7, c(1));
    let canary = env("canary");
    let prod = env("prod");
    assert_eq!(
        stage(&w.state, &w.ledger, &cfg),
        Stage::AwaitingApproval { have: 0, need: 1 }
    );
    // Not approved yet; an approval from outside the team does not count.
    w.input(Input::Approved {
        reviewer: "mallory".into(),
        commit: c(1),
    });
    assert_eq!(
        w.cmd("carol", release("canary")).unwrap_err(),
        Refusal::NotApproved {
            head: c(1),
            have: 0,
            need: 1
        }
    );
    // Not allowed to release.
    assert!(matches!(
        w.cmd("mallory", release("canary")),
        Err(Refusal::NotAllowed { .. })
    ));
    w.input(Input::Approved {
        reviewer: "alice".into(),
        commit: c(1),
    });
    // A new push makes the approval stale.
    w.input(Input::Pushed { head: c(2) });
    assert!(matches!(
        w.cmd("carol", release("canary")),
        Err(Refusal::NotApproved { have: 0, .. })
    ));
    w.input(Input::Approved {
        reviewer: "bob".into(),
        commit: c(2),
    });
    assert_eq!(stage(&w.state, &w.ledger, &cfg), Stage::Approved);
    // Prod before canary.
    assert_eq!(
        w.cmd("carol", release("prod")).unwrap_err(),
        Refusal::NotInPreviousEnv {
            env: prod.clone(),
            previous: canary.clone(),
            commit: c(2),
            released: None
        }
    );
    assert!(matches!(
        w.cmd("carol", release("staging")),
        Err(Refusal::UnknownEnv { .. })
    ));
    assert!(matches!(
        w.cmd(
            "dave",
            Command::ManualTest {
                passed: true,
                note: String::new()
            }
        ),
        Err(Refusal::NotDeployed { .. })
    ));
    // Canary release: publish, start tests, comment.
    let d = w.cmd("carol", release("canary")).unwrap();
    assert!(matches!(d.effects[0], Effect::Publish(_)));
    assert_eq!(
        d.effects[1],
        Effect::RunIntegrationTests {
            env: canary.clone(),
            commit: c(2)
        }
    );
    assert_eq!(w.ledger.pointer(&canary), Some(&c(2)));
    // Again: already released, nothing published.
    let d = w.cmd("carol", release("canary")).unwrap();
    assert!(d.effects.iter().all(|e| matches!(e, Effect::Comment(_))));
    // Prod without tests, then with failed integration tests.
    assert_eq!(
        w.cmd("carol", release("prod")).unwrap_err(),
        Refusal::TestsMissing {
            commit: c(2),
            kind: TestKind::Integration
        }
    );
    w.input(Input::Integration(IntegrationResult {
        commit: c(2),
        passed: false,
        link: "https://ci.example.invalid/1".into(),
    }));
    assert!(matches!(
        w.cmd("carol", release("prod")),
        Err(Refusal::TestsFailed {
            kind: TestKind::Integration,
            ..
        })
    ));
    w.input(Input::Integration(IntegrationResult {
        commit: c(2),
        passed: true,
        link: "https://ci.example.invalid/2".into(),
    }));
    assert_eq!(
        w.cmd("carol", release("prod")).unwrap_err(),
        Refusal::TestsMissing {
            commit: c(2),
            kind: TestKind::Manual
        }
    );
    w.run(
        "dave",
        Command::ManualTest {
            passed: true,
            note: "checkout works".into(),
        },
    );
    assert!(matches!(
        stage(&w.state, &w.ledger, &cfg),
        Stage::Released { ref env, .. } if *env == canary
    ));
    w.run("carol", release("prod"));
    assert_eq!(w.ledger.pointer(&prod), Some(&c(2)));
    guard(&prod, &c(2), &w.ledger, &cfg.approval).unwrap();
    guard(&canary, &c(2), &w.ledger, &cfg.approval).unwrap();

    // A second PR ships, then is rolled back: prod first, then canary.
    ship(&mut w, c(3));
    assert_eq!(w.ledger.pointer(&prod), Some(&c(3)));
    assert_eq!(
        w.cmd("bob", rollback("canary")).unwrap_err(),
        Refusal::RollbackOrder {
            env: canary.clone(),
            first: prod.clone(),
            commit: c(3)
        }
    );
    w.run("bob", rollback("prod"));
    assert_eq!(w.ledger.pointer(&prod), Some(&c(2)));
    guard(&prod, &c(2), &w.ledger, &cfg.approval).unwrap();
    w.run("bob", rollback("canary"));
    assert_eq!(w.ledger.pointer(&canary), Some(&c(2)));
    assert_eq!(stage(&w.state, &w.ledger, &cfg), Stage::RolledBack);
    // Both run c2 again: canary waits for prod, and prod has nothing older.
    assert!(matches!(
        w.cmd("bob", rollback("canary")),
        Err(Refusal::RollbackOrder { .. })
    ));
    assert_eq!(
        w.cmd("bob", rollback("prod")).unwrap_err(),
        Refusal::Ledger(LedgerError::NothingToRollBack { env: prod })
    );
}

#[test]
fn guard_refuses_tags_made_outside_the_flow() {
    let cfg = config();
    let mut w = World::new(1, c(1));
    ship(&mut w, c(1));
    let prod = env("prod");
    let good = w.ledger.clone();
    guard(&prod, &c(1), &good, &cfg.approval).unwrap();

    // Syncing something other than the pointer.
    assert!(matches!(
        guard(&prod, &c(9), &good, &cfg.approval),
        Err(GuardRefusal::NotThePointer { .. })
    ));
    assert!(matches!(
        guard(&env("dev"), &c(9), &good, &cfg.approval),
        Err(GuardRefusal::NoPointer { .. })
    ));
    // Pointer moved by hand.
    let mut l = good.clone();
    l.insert(prod.pointer(), TagTarget::lightweight(c(9)));
    assert!(matches!(
        guard(&prod, &c(9), &l, &cfg.approval),
        Err(GuardRefusal::Unrecorded { .. })
    ));
    // Plus a lightweight history tag.
    l.insert(prod.history(t(1000)), TagTarget::lightweight(c(9)));
    assert!(matches!(
        guard(&prod, &c(9), &l, &cfg.approval),
        Err(GuardRefusal::Lightweight { .. })
    ));
    // Plus an annotated tag with a free-form message.
    l.insert(
        prod.history(t(1001)),
        TagTarget {
            commit: c(9),
            message: Some("hotfix, trust me".into()),
        },
    );
    assert!(matches!(
        guard(&prod, &c(9), &l, &cfg.approval),
        Err(GuardRefusal::Unreadable { .. })
    ));
    // Plus a record copied from a real release (other commit and time).
    let copied = good
        .env(&prod)
        .unwrap()
        .history
        .values()
        .next()
        .unwrap()
        .message
        .clone();
    l.insert(
        prod.history(t(1002)),
        TagTarget {
            commit: c(9),
            message: copied.clone(),
        },
    );
    assert!(matches!(
        guard(&prod, &c(9), &l, &cfg.approval),
        Err(GuardRefusal::Forged {
            field: "commit",
            ..
        })
    ));
    // A well-formed record without tech-lead approvals.
    let forged = copied
        .unwrap()
        .replace(c(1).as_str(), c(9).as_str())
        .lines()
        .map(|line| {
            if line.starts_with("at: ") {
                format!("at: {}", t(1003))
            } else if line.starts_with("approvals: ") {
                "approvals: mallory".to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    l.insert(
        prod.history(t(1003)),
        TagTarget {
            commit: c(9),
            message: Some(forged),
        },
    );
    assert_eq!(
        guard(&prod, &c(9), &l, &cfg.approval),
        Err(GuardRefusal::Unapproved {
            tag: prod.history(t(1003)).name(),
            have: 0,
            need: 1
        })
    );
}
