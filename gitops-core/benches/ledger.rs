//! The ledger against the git CLI on the same repositories:
//!
//! - `resolve`: every env's pointer and history (peeled commits and messages) on a
//!   repository with 50,000 ledger tags, `GitRepo::ledger` + replay vs
//!   `git for-each-ref` with the same fields;
//! - `release`: one release (history tag + pointer pushed to a local bare remote),
//!   `Ledger::release` + `GitRepo::publish` vs `git tag -a`, `git tag -f`, `git push`.
//!
//! Set `GITOPS_BENCH_TAGS` to change the tag count (default 50,000).

use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use gitops_core::git::{GitRepo, Identity};
use gitops_core::ledger::{Ledger, Outcome};
use gitops_core::record::Provenance;
use gitops_core::tag::{CommitId, Env, Stamp};

const ENVS: usize = 10;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bot() -> Identity {
    Identity::new("release-bot", "bot@example.invalid")
}

fn who() -> Provenance {
    Provenance {
        by: "release-bot".into(),
        approvals: vec!["alice".into()],
        pr: Some(1),
    }
}

fn commits(repo: &GitRepo, n: usize) -> Vec<CommitId> {
    let mut out: Vec<CommitId> = Vec::new();
    for i in 0..n {
        let c = repo
            .commit_files(
                "refs/heads/main",
                out.last(),
                &[("v.txt".into(), format!("{i}\n").into_bytes())],
                "c",
                Stamp::from_unix_secs(1_700_000_000 + i as i64).unwrap(),
            )
            .unwrap();
        out.push(c);
    }
    out
}

/// A repository with `tags` ledger tags over `ENVS` environments, refs packed.
fn big_repo(dir: &Path, tags: usize) -> GitRepo {
    let repo = GitRepo::init(dir, true, bot()).unwrap();
    let cs = commits(&repo, 64);
    let mut ledger = Ledger::new();
    let per_env = tags / ENVS;
    for e in 0..ENVS {
        let env = Env::new(format!("env{e}")).unwrap();
        for i in 0..per_env {
            let now = Stamp::from_unix_secs(1_700_000_000 + i as i64).unwrap();
            let commit = &cs[(i * 7 + e) % cs.len()];
            if let Outcome::Planned(plan) = ledger.release(&env, commit, &who(), now).unwrap() {
                repo.apply_local(&plan).unwrap();
                ledger.apply(&plan).unwrap();
            }
        }
    }
    git(dir, &["pack-refs", "--all"]);
    repo
}

fn resolve(c: &mut Criterion) {
    let tags: usize = std::env::var("GITOPS_BENCH_TAGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let tmp = tempfile::tempdir().unwrap();
    let repo = big_repo(tmp.path(), tags);
    let envs: Vec<Env> = (0..ENVS)
        .map(|e| Env::new(format!("env{e}")).unwrap())
        .collect();
    let mut g = c.benchmark_group(format!("resolve_{tags}_tags"));
    g.sample_size(10);
    g.bench_function("gitops_core", |b| {
        b.iter(|| {
            let ledger = repo.ledger().unwrap();
            let mut n = 0;
            for env in &envs {
                n += ledger.position(env).stack.len();
            }
            n
        })
    });
    g.bench_function("git_for_each_ref", |b| {
        b.iter(|| {
            git(
                tmp.path(),
                &[
                    "for-each-ref",
                    "--format=%(refname) %(objectname) %(*objectname) %(contents)",
                    "refs/tags/",
                ],
            )
        })
    });
    g.finish();
}

fn release(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let up = GitRepo::init(&origin, true, bot()).unwrap();
    let cs = commits(&up, 2);
    let url = format!("file://{}", origin.display());
    let work = GitRepo::clone_from(&url, &tmp.path().join("work.git"), bot()).unwrap();
    let cli = tmp.path().join("cli");
    git(
        tmp.path(),
        &["clone", "-q", "--bare", url.as_str(), cli.to_str().unwrap()],
    );
    let env = Env::new("prod").unwrap();
    let mut now = Stamp::from_unix_secs(1_800_000_000).unwrap();
    let mut g = c.benchmark_group("release_two_tags_to_local_remote");
    g.sample_size(20);
    g.bench_function("gitops_core", |b| {
        b.iter(|| {
            now = now.add_secs(1);
            let ledger = work.ledger().unwrap();
            let target = if ledger.pointer(&env) == Some(&cs[0]) {
                &cs[1]
            } else {
                &cs[0]
            };
            if let Outcome::Planned(plan) = ledger.release(&env, target, &who(), now).unwrap() {
                work.publish(&plan).unwrap();
            }
        })
    });
    let mut i = 0u64;
    g.bench_function("git_cli", |b| {
        b.iter(|| {
            i += 1;
            let target = cs[(i % 2) as usize].as_str();
            let history = format!("cli_{}", 20_000_000_000_000u64 + i);
            git(&cli, &["tag", "-a", "-m", "release", &history, target]);
            git(&cli, &["tag", "-f", "cli_release", target]);
            git(
                &cli,
                &[
                    "push",
                    "-q",
                    url.as_str(),
                    &format!("refs/tags/{history}"),
                    "+refs/tags/cli_release:refs/tags/cli_release",
                ],
            );
        })
    });
    g.finish();
}

criterion_group!(benches, resolve, release);
criterion_main!(benches);
