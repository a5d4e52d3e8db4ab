//! The git tag deployment ledger end to end, on a real repository in a temp dir.
//!
//! ```text
//! cargo run -p rollout-examples --example gitops_flow
//! ```
//!
//! A bare `manifests.git` plays the remote; the release bot works in its own clone. Two
//! pull requests go through the flow: approval (a signed `pull_request_review` webhook),
//! `/canary_release`, the integration and manual test results, `/prod_release`. The second
//! one bumps the web image through a Kustomize write-back commit, and is then rolled back,
//! prod first, then canary. The ledger (`<env>_release` pointers and the annotated
//! `<env>_<YYYYMMDDhhmmss>` history) is printed after each step, and a refusal of the flow
//! and one of the pre-sync guard (a pointer moved by hand) are shown. Nothing is installed
//! (libgit2 is built in) and the clock is a parameter: the output is the same on every run
//! apart from commit ids, which depend on nothing but the content and the fixed times.
//!
//! Before PR #2 is approved it gets a staging environment: the bot commits
//! `apps/staging/manifests/1.1.0.json`, the git-files generator plans its creation
//! (`gitops_core::envs`), a simulated Argo CD syncs it, the wait-for-ready gate polls
//! until its application is synced and healthy, the smoke tests run, and deleting the
//! file plans its teardown.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use gitops_core::envs::{
    AppObservation, EnvPlan, EnvTemplate, Environment, FilesGenerator, Gate, Observation,
    Readiness, plan, read_files, wait_until_ready,
};
use gitops_core::events::{flow_input, receive, sign};
use gitops_core::flow::{
    ApprovalPolicy, Effect, FlowConfig, Input, IntegrationResult, PrState, guard, handle,
};
use gitops_core::git::{GitRepo, Identity};
use gitops_core::ledger::{EntryRecord, Ledger};
use gitops_core::tag::{CommitId, Env, Stamp};
use gitops_core::writeback::{DEFAULT_TEMPLATE, ImageUpdate, set_kustomize_image, write_back};
use serde_json::{Value, json};

/// What the run produced, for the test.
#[allow(dead_code)] // Read by examples/tests/gitops.rs.
pub(crate) struct Outcome {
    /// Every printed line.
    pub(crate) lines: Vec<String>,
    /// The two pull requests' head commits.
    pub(crate) heads: Vec<CommitId>,
    /// The final ledger as the bot sees it.
    pub(crate) ledger: Ledger,
    /// The guard's refusal of the hand-moved pointer.
    pub(crate) guard_refusal: String,
    /// The flow's refusal of an early `/prod_release`.
    pub(crate) flow_refusal: String,
    /// PR #2's staging environment.
    pub(crate) staging: Staging,
}

/// What the staging section did.
#[allow(dead_code)] // Read by examples/tests/gitops.rs.
pub(crate) struct Staging {
    /// The environments the added file created.
    pub(crate) created: Vec<String>,
    /// The gate's verdict.
    pub(crate) readiness: Readiness,
    /// How many times the gate observed the environment.
    pub(crate) polls: usize,
    /// Whether the smoke tests ran.
    pub(crate) tested: bool,
    /// The environments the deletion tore down.
    pub(crate) deleted: Vec<String>,
    /// Environments still in the simulated cluster at the end.
    pub(crate) left: usize,
}

/// The files that give a change its staging environment.
const STAGING_GLOB: &str = "apps/staging/manifests/*.json";

/// A namespace with the web Deployment and Service at the file's version.
fn staging_template() -> Res<EnvTemplate> {
    Ok(EnvTemplate::new(
        "staging-{{slug}}",
        vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "staging-{{slug}}"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "staging-{{slug}}"},
                   "spec": {"replicas": 2, "template": {"spec": {"containers": [
                       {"name": "web", "image": "registry.example.invalid/shop/web:{{version}}"}]}}}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "web", "namespace": "staging-{{slug}}"},
                   "spec": {"ports": [{"port": 80}]}}),
        ],
    )?)
}

/// A simulated cluster: Argo CD syncs an environment's manifests at once, and its
/// Deployments become available over two observations.
#[derive(Default)]
struct StagingCluster {
    live: BTreeMap<String, (Vec<Value>, u32)>,
}

impl StagingCluster {
    fn apply(&mut self, plan: &EnvPlan) {
        for env in &plan.delete {
            self.live.remove(&env.name);
        }
        for env in plan
            .create
            .iter()
            .chain(plan.update.iter().map(|u| &u.after))
        {
            self.live
                .insert(env.name.clone(), (env.manifests.clone(), 0));
        }
    }

    fn observe(&mut self, env: &Environment) -> AppObservation {
        let Some((live, ticks)) = self.live.get_mut(&env.name) else {
            return AppObservation::from_objects(env.name.clone(), &env.manifests, &[]);
        };
        for obj in live.iter_mut().filter(|o| o["kind"] == "Deployment") {
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (updated, available) = match *ticks {
                0 => (0, 0),
                1 => (want, want - 1),
                _ => (want, want),
            };
            obj["status"] = json!({"replicas": updated, "updatedReplicas": updated, "availableReplicas": available});
        }
        *ticks += 1;
        AppObservation::from_objects(env.name.clone(), &env.manifests, live)
    }
}

/// Drives a future whose awaits are all immediately ready (the gate's observe and sleep
/// run on the virtual clock here).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

const SECRET: &[u8] = b"example-webhook-secret";
const KUSTOMIZATION: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  # the web frontend, bumped by the release bot
  - name: web
    newName: registry.example.invalid/shop/web
    newTag: \"1.0.0\"
";

fn env(name: &str) -> Env {
    Env::new(name).expect("valid env")
}

struct Run {
    bot: GitRepo,
    config: FlowConfig,
    now: Stamp,
    lines: Vec<String>,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

impl Run {
    fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    fn tick(&mut self) -> Stamp {
        self.now = self.now.add_secs(60);
        self.now
    }

    /// Feeds one input, executes the effects, returns the new state or the refusal text.
    fn step(&mut self, pr: &PrState, input: Input) -> Res<Result<PrState, String>> {
        self.bot.fetch()?;
        let ledger = self.bot.ledger()?;
        let now = self.tick();
        let decision = match handle(pr, &ledger, &self.config, &input, now) {
            Ok(d) => d,
            Err(refusal) => return Ok(Err(refusal.to_string())),
        };
        for effect in &decision.effects {
            match effect {
                Effect::Publish(plan) => {
                    let report = self.bot.publish(plan)?;
                    self.say(format!("    pushed {}", report.landed.join(", ")));
                }
                Effect::RunIntegrationTests { env, commit } => self.say(format!(
                    "    CI: integration tests of {} in {env}",
                    commit.short()
                )),
                Effect::Comment(text) => self.say(format!("    bot: {text}")),
                _ => {}
            }
        }
        Ok(Ok(decision.state))
    }

    fn comment(&mut self, pr: &PrState, actor: &str, body: &str) -> Res<Result<PrState, String>> {
        self.say(format!("@{actor}: {body}"));
        let payload = serde_json::json!({
            "action": "created",
            "issue": {"number": pr.pr, "pull_request": {}},
            "comment": {"body": body, "user": {"login": actor}}
        });
        let body = serde_json::to_vec(&payload)?;
        let sig = sign(SECRET, &body);
        let event = receive(
            SECRET,
            &[
                ("X-GitHub-Event", "issue_comment"),
                ("X-Hub-Signature-256", &sig),
            ],
            &body,
        )?;
        let input = flow_input(&event)?.ok_or("not a command")?;
        self.step(pr, input.input)
    }

    fn approve(&mut self, pr: &PrState, reviewer: &str) -> Res<PrState> {
        self.say(format!("@{reviewer} approves {}", pr.head.short()));
        let payload = serde_json::json!({
            "action": "submitted",
            "review": {"state": "approved", "user": {"login": reviewer}, "commit_id": pr.head.as_str()},
            "pull_request": {
                "number": pr.pr,
                "head": {"ref": "feature", "sha": pr.head.as_str()},
                "base": {"ref": "main", "sha": pr.head.as_str()}
            }
        });
        let body = serde_json::to_vec(&payload)?;
        let sig = sign(SECRET, &body);
        let event = receive(
            SECRET,
            &[
                ("X-GitHub-Event", "pull_request_review"),
                ("X-Hub-Signature-256", &sig),
            ],
            &body,
        )?;
        let input = flow_input(&event)?.ok_or("not an approval")?;
        Ok(self.step(pr, input.input)?.map_err(|r| r.to_string())?)
    }

    fn print_ledger(&mut self) -> Res<()> {
        let ledger = self.bot.ledger()?;
        for e in ["canary", "prod"].map(env) {
            let pointer = ledger
                .pointer(&e)
                .map_or("-".to_string(), |c| c.short().to_string());
            let history: Vec<String> = ledger
                .history(&e)
                .iter()
                .map(|h| {
                    let what = match &h.record {
                        EntryRecord::Valid(r) => r.action.to_string(),
                        _ => "?".to_string(),
                    };
                    format!("{}={what}:{}", h.tag, h.commit.short())
                })
                .collect();
            self.say(format!(
                "    ledger {e}_release={pointer}  [{}]",
                history.join(" ")
            ));
        }
        Ok(())
    }

    fn ship(&mut self, pr: PrState) -> Res<PrState> {
        let pr = self.approve(&pr, "alice")?;
        let pr = self
            .comment(&pr, "carol", "/canary_release")?
            .map_err(|r| r.to_string())?;
        self.print_ledger()?;
        let pr = self
            .step(
                &pr,
                Input::Integration(IntegrationResult {
                    commit: pr.head.clone(),
                    passed: true,
                    link: format!("https://ci.example.invalid/runs/{}", pr.pr),
                }),
            )?
            .map_err(|r| r.to_string())?;
        let pr = self
            .comment(&pr, "dave", "/test pass checkout and search work")?
            .map_err(|r| r.to_string())?;
        let pr = self
            .comment(&pr, "carol", "/prod_release")?
            .map_err(|r| r.to_string())?;
        self.print_ledger()?;
        Ok(pr)
    }
}

/// Runs the whole flow in `dir` (created if needed).
pub(crate) fn run(dir: &Path) -> Res<Outcome> {
    std::fs::create_dir_all(dir)?;
    let identity = Identity::new("release-bot", "release-bot@example.invalid");
    let start = Stamp::parse("20261122090000")?;
    let origin_path = dir.join("manifests.git");
    let origin = GitRepo::init(&origin_path, true, identity.clone())?;
    let c1 = origin.commit_files(
        "refs/heads/main",
        None,
        &[
            (
                "apps/web/kustomization.yaml".into(),
                KUSTOMIZATION.as_bytes().to_vec(),
            ),
            (
                "apps/web/deployment.yaml".into(),
                b"# the web Deployment\n".to_vec(),
            ),
        ],
        "web 1.0.0",
        start,
    )?;
    let url = format!("file://{}", origin_path.display());
    let bot = GitRepo::clone_from(&url, &dir.join("bot.git"), identity.clone())?;
    let config = FlowConfig {
        envs: vec![env("canary"), env("prod")],
        approval: ApprovalPolicy {
            tech_leads: ["alice".to_string(), "bob".to_string()].into(),
            min_approvals: 1,
        },
        releasers: ["carol".to_string(), "bob".to_string()].into(),
    };
    let mut run = Run {
        bot,
        config,
        now: start,
        lines: Vec::new(),
    };

    run.say(format!("== PR #1: web 1.0.0 ({})", c1.short()));
    run.ship(PrState::new(1, c1.clone()))?;

    // PR #2: the image bump, written back as a commit on its branch.
    let branch = "refs/heads/bump-web-1.1.0";
    run.bot.move_ref(branch, &c1, None)?;
    let file = "apps/web/kustomization.yaml";
    let update = ImageUpdate {
        name: "web".into(),
        new_tag: Some("1.1.0".into()),
        ..ImageUpdate::default()
    };
    let now = run.tick();
    let c2 = write_back(
        &run.bot,
        branch,
        file,
        |text| set_kustomize_image(file, text, &update),
        DEFAULT_TEMPLATE,
        "web",
        now,
    )?
    .ok_or("the bump changed nothing")?;
    run.say(format!(
        "== PR #2: web 1.1.0 ({}), written back to {branch}",
        c2.short()
    ));
    let staging = run.staging("1.1.0", "v1-1-0")?;
    let pr2 = run.approve(&PrState::new(2, c2.clone()), "bob")?;
    let pr2 = run
        .comment(&pr2, "carol", "/canary_release")?
        .map_err(|r| r.to_string())?;
    let flow_refusal = run
        .comment(&pr2, "carol", "/prod_release")?
        .expect_err("prod before tests is refused");
    run.say(format!("    refused: {flow_refusal}"));
    let pr2 = run.ship_tests_and_prod(pr2)?;

    run.say("== rollback: prod first, then canary");
    let refused = run
        .comment(&pr2, "bob", "/rollback canary")?
        .expect_err("order");
    run.say(format!("    refused: {refused}"));
    let pr2 = run
        .comment(&pr2, "bob", "/rollback prod")?
        .map_err(|r| r.to_string())?;
    run.print_ledger()?;
    let _ = run
        .comment(&pr2, "bob", "/rollback canary")?
        .map_err(|r| r.to_string())?;
    run.print_ledger()?;

    // Someone moves prod_release by hand, outside the flow.
    run.say("== a pointer moved by hand to 1.1.0, outside the flow");
    let human = GitRepo::clone_from(&url, &dir.join("human.git"), identity)?;
    human.move_ref("refs/tags/prod_release", &c2, Some(&c1))?;
    human.push_ref("refs/tags/prod_release", true)?;
    run.bot.fetch()?;
    let ledger = run.bot.ledger()?;
    let resolved = run.bot.resolve("refs/tags/prod_release")?;
    let guard_refusal = guard(&env("prod"), &resolved, &ledger, &run.config.approval)
        .expect_err("out-of-flow pointer is refused")
        .to_string();
    run.say(format!("    pre-sync guard refuses: {guard_refusal}"));
    let content = String::from_utf8(run.bot.read_file(&resolved, file)?)?;
    let tag_line = content
        .lines()
        .find(|l| l.contains("newTag"))
        .unwrap_or("")
        .trim();
    run.say(format!("    (it would have deployed {tag_line})"));

    Ok(Outcome {
        lines: run.lines,
        heads: vec![c1, c2],
        ledger,
        guard_refusal,
        flow_refusal,
        staging,
    })
}

impl Run {
    /// A staging environment for web `version`: add its file on main, plan, sync, wait
    /// until ready, test, delete the file, plan the teardown. Runs on its own clock (the
    /// ledger's is left alone).
    fn staging(&mut self, version: &str, slug: &str) -> Res<Staging> {
        self.say(format!("== staging environment for web {version}"));
        let generator = FilesGenerator::glob(STAGING_GLOB)?;
        let template = staging_template()?;
        let file = format!("apps/staging/manifests/{version}.json");
        let main = "refs/heads/main";
        self.bot.fetch()?;
        let before = self.bot.resolve("refs/remotes/origin/main")?;
        let local = self.bot.resolve(main).ok();
        self.bot.move_ref(main, &before, local.as_ref())?;
        let clock = self.now;
        let params = json!({"version": version, "slug": slug});
        let added = self.bot.commit_files(
            main,
            Some(&before),
            &[(file.clone(), serde_json::to_vec_pretty(&params)?)],
            &format!("staging: web {version}"),
            clock.add_secs(10),
        )?;
        self.bot.push_branch(main)?;
        self.say(format!("    commit {}: add {file}", added.short()));
        let (_, old) = read_files(&self.bot, before.as_str(), &generator)?;
        let (_, new) = read_files(&self.bot, added.as_str(), &generator)?;
        let created = plan(&generator, &template, &old, &new)?;
        for env in &created.create {
            let kinds: Vec<String> = env
                .manifests
                .iter()
                .map(|m| {
                    format!(
                        "{}/{}",
                        m["kind"].as_str().unwrap_or("?"),
                        m["metadata"]["name"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            self.say(format!(
                "    plan: create {} from {}: {}",
                env.name,
                env.source,
                kinds.join(", ")
            ));
        }
        let env = created
            .create
            .first()
            .ok_or("the new file created no environment")?
            .clone();
        let mut cluster = StagingCluster::default();
        cluster.apply(&created);

        // The gate: poll every 30 s, give up after 5 minutes.
        let start = clock.add_secs(20);
        let gate = Gate::new([env.name.clone()], start.add_secs(300));
        let now = Cell::new(start);
        let cluster = RefCell::new(cluster);
        let seen = RefCell::new(Vec::new());
        let readiness = block_on(wait_until_ready(
            &gate,
            Duration::from_secs(30),
            || {
                let app = cluster.borrow_mut().observe(&env);
                let elapsed = now.get().unix_secs() - start.unix_secs();
                let state = match (app.sync, app.health) {
                    (Some(s), Some(h)) => format!("{s:?}/{h:?}"),
                    _ => "unknown".to_string(),
                };
                let why = if app.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", app.message)
                };
                seen.borrow_mut()
                    .push(format!("    gate +{elapsed}s: {} {state}{why}", app.app));
                let observed = Observation {
                    at: now.get(),
                    apps: vec![app],
                };
                async move { Ok::<_, std::convert::Infallible>(observed) }
            },
            |d| {
                now.set(
                    now.get()
                        .add_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                );
                async {}
            },
        ))?;
        let seen = seen.into_inner();
        let polls = seen.len();
        for line in seen {
            self.say(line);
        }
        let tested = readiness == Readiness::Ready;
        if tested {
            self.say(format!(
                "    ready: CI runs the smoke tests of web {version} in {}: passed",
                env.name
            ));
        } else {
            self.say(format!("    not ready ({readiness:?}): tests skipped"));
        }

        // Deleting the file tears the environment down.
        let removed = self.bot.remove_files(
            main,
            &added,
            std::slice::from_ref(&file),
            &format!("staging: remove web {version}"),
            clock.add_secs(400),
        )?;
        self.bot.push_branch(main)?;
        self.say(format!("    commit {}: remove {file}", removed.short()));
        let (_, gone) = read_files(&self.bot, removed.as_str(), &generator)?;
        let teardown = plan(&generator, &template, &new, &gone)?;
        let mut cluster = cluster.into_inner();
        cluster.apply(&teardown);
        let deleted: Vec<String> = teardown.delete.iter().map(|e| e.name.clone()).collect();
        self.say(format!(
            "    plan: delete {}; {} staging environment(s) left",
            deleted.join(", "),
            cluster.live.len()
        ));
        Ok(Staging {
            created: created.create.iter().map(|e| e.name.clone()).collect(),
            readiness,
            polls,
            tested,
            deleted,
            left: cluster.live.len(),
        })
    }

    fn ship_tests_and_prod(&mut self, pr: PrState) -> Res<PrState> {
        let pr = self
            .step(
                &pr,
                Input::Integration(IntegrationResult {
                    commit: pr.head.clone(),
                    passed: true,
                    link: format!("https://ci.example.invalid/runs/{}", pr.pr),
                }),
            )?
            .map_err(|r| r.to_string())?;
        let pr = self
            .comment(&pr, "dave", "/test pass")?
            .map_err(|r| r.to_string())?;
        let pr = self
            .comment(&pr, "carol", "/prod_release")?
            .map_err(|r| r.to_string())?;
        self.print_ledger()?;
        Ok(pr)
    }
}

#[allow(dead_code)] // Unused when this file is included by the test.
fn main() -> Res<()> {
    let dir = std::env::temp_dir().join(format!("gitops-example-{}", std::process::id()));
    let result = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    for line in result?.lines {
        println!("{line}");
    }
    Ok(())
}
