//! The git2 adapter against real repositories in temp dirs: a bare remote over `file://`
//! and over `git daemon` on 127.0.0.1 (with server hooks refusing refs).
#![cfg(feature = "git")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gitops_core::git::{GitError, GitRepo, Identity};
use gitops_core::ledger::{EntryRecord, Ledger, LedgerError, Outcome, Plan};
use gitops_core::record::{Action, Provenance};
use gitops_core::tag::{CommitId, Env, Stamp};

fn bot() -> Identity {
    Identity::new("release-bot", "bot@example.invalid")
}

fn t(s: i64) -> Stamp {
    Stamp::from_unix_secs(1_795_300_000 + s).unwrap()
}

fn prod() -> Env {
    Env::new("prod").unwrap()
}

fn who() -> Provenance {
    Provenance {
        by: "release-bot".into(),
        approvals: vec!["alice".into()],
        pr: Some(12),
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.invalid")
        .env("GIT_COMMITTER_NAME", "tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A bare upstream with `n` commits on main, each changing `app/version.txt`.
fn upstream(dir: &Path, n: usize) -> (GitRepo, Vec<CommitId>) {
    let up = GitRepo::init(dir, true, bot()).unwrap();
    let mut commits: Vec<CommitId> = Vec::new();
    for i in 0..n {
        let c = up
            .commit_files(
                "refs/heads/main",
                commits.last(),
                &[("app/version.txt".into(), format!("v{i}\n").into_bytes())],
                &format!("version {i}"),
                t(i as i64),
            )
            .unwrap();
        commits.push(c);
    }
    (up, commits)
}

fn url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn release(repo: &GitRepo, env: &Env, c: &CommitId, now: Stamp) -> Result<Plan, GitError> {
    let ledger = repo.ledger()?;
    match ledger.release(env, c, &who(), now)? {
        Outcome::Planned(p) => {
            repo.publish(&p)?;
            Ok(*p)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn release_and_rollback_over_a_file_remote() {
    let tmp = tempfile::tempdir().unwrap();
    let (_up, c) = upstream(&tmp.path().join("origin.git"), 4);
    let a = GitRepo::clone_from(
        &url(&tmp.path().join("origin.git")),
        &tmp.path().join("a"),
        bot(),
    )
    .unwrap();
    assert_eq!(a.resolve("refs/remotes/origin/main").unwrap(), c[3]);

    for (i, commit) in c.iter().enumerate().skip(1) {
        let report = release(&a, &prod(), commit, t(100 + i as i64)).unwrap();
        assert_eq!(report.to, *commit);
    }
    // Already released: no-op, no tag.
    assert!(matches!(
        a.ledger()
            .unwrap()
            .release(&prod(), &c[3], &who(), t(200))
            .unwrap(),
        Outcome::AlreadyReleased { .. }
    ));
    // Roll back twice: 3 -> 2 -> 1.
    for (i, expected) in [&c[2], &c[1]].into_iter().enumerate() {
        let plan = a
            .ledger()
            .unwrap()
            .rollback(&prod(), &Provenance::by("oncall"), t(300 + i as i64))
            .unwrap();
        assert_eq!(&plan.to, expected);
        let report = a.publish(&plan).unwrap();
        assert_eq!(
            report.landed,
            vec![plan.history_tag.refname(), plan.pointer_tag.refname()]
        );
    }
    // The remote, seen by a fresh clone and by the git CLI.
    let b = GitRepo::clone_from(
        &url(&tmp.path().join("origin.git")),
        &tmp.path().join("b"),
        bot(),
    )
    .unwrap();
    let ledger = b.ledger().unwrap();
    assert_eq!(ledger.pointer(&prod()), Some(&c[1]));
    let history = ledger.history(&prod());
    assert_eq!(history.len(), 5);
    assert!(
        history
            .iter()
            .all(|e| matches!(e.record, EntryRecord::Valid(_)))
    );
    assert_eq!(history[4].action(), Action::Rollback);
    let origin = tmp.path().join("origin.git");
    let kind = git(&origin, &["cat-file", "-t", &history[0].tag.name()]);
    assert_eq!(kind.trim(), "tag", "history tags are annotated");
    let shown = git(
        &origin,
        &[
            "rev-parse",
            &format!("{}^{{commit}}", history[4].tag.name()),
        ],
    );
    assert_eq!(shown.trim(), c[1].as_str());
    // Reading a file at the released commit, no checkout.
    let content = b
        .read_file(ledger.pointer(&prod()).unwrap(), "app/version.txt")
        .unwrap();
    assert_eq!(content, b"v1\n");
    assert!(matches!(
        b.read_file(&c[1], "app/missing.txt"),
        Err(GitError::PathNotFound { .. })
    ));
}

#[test]
fn losing_a_race_is_a_typed_conflict_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let (_up, c) = upstream(&origin, 3);
    let a = GitRepo::clone_from(&url(&origin), &tmp.path().join("a"), bot()).unwrap();
    let b = GitRepo::clone_from(&url(&origin), &tmp.path().join("b"), bot()).unwrap();
    release(&a, &prod(), &c[0], t(1)).unwrap();
    b.fetch().unwrap();
    // A releases c1; B, not having fetched, tries c2 from c0.
    release(&a, &prod(), &c[1], t(2)).unwrap();
    let before = b.ledger().unwrap();
    let err = release(&b, &prod(), &c[2], t(3)).unwrap_err();
    assert_eq!(
        err,
        GitError::Ledger(LedgerError::Conflict {
            tag: "prod_release".into(),
            expected: Some(c[0].clone()),
            actual: Some(c[1].clone()),
        })
    );
    assert_eq!(b.ledger().unwrap(), before, "nothing written locally");
    // After a fetch B sees A's release and can go on.
    b.fetch().unwrap();
    assert_eq!(b.ledger().unwrap().pointer(&prod()), Some(&c[1]));
    release(&b, &prod(), &c[2], t(3)).unwrap();
    // A local compare-and-swap loss (the ref moved under a plan) is typed too.
    let plan = match b
        .ledger()
        .unwrap()
        .release(&prod(), &c[0], &who(), t(10))
        .unwrap()
    {
        Outcome::Planned(p) => p,
        o => panic!("{o:?}"),
    };
    git(
        tmp.path().join("b").as_path(),
        &["tag", "-f", "prod_release", c[1].as_str()],
    );
    assert!(matches!(
        b.apply_local(&plan),
        Err(GitError::Ledger(LedgerError::Conflict { .. }))
    ));
    assert!(b.read_tag(&plan.history_tag.refname()).unwrap().is_none());
}

#[test]
fn same_second_history_tag_on_the_remote_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let (_up, c) = upstream(&origin, 2);
    let a = GitRepo::clone_from(&url(&origin), &tmp.path().join("a"), bot()).unwrap();
    let b = GitRepo::clone_from(&url(&origin), &tmp.path().join("b"), bot()).unwrap();
    // Someone pushed a prod history tag for t(5) (and nothing else).
    git(&origin, &["tag", &format!("prod_{}", t(5)), c[0].as_str()]);
    let _ = a;
    let err = release(&b, &prod(), &c[1], t(5)).unwrap_err();
    assert_eq!(
        err,
        GitError::Ledger(LedgerError::HistoryTagExists {
            tag: format!("prod_{}", t(5))
        })
    );
    assert!(b.ledger().unwrap().pointer(&prod()).is_none());
}

#[test]
fn fetch_forces_moved_tags_and_prunes_deleted_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let (_up, c) = upstream(&origin, 3);
    git(&origin, &["tag", "prod_release", c[2].as_str()]);
    git(
        &origin,
        &[
            "tag",
            "-a",
            "-m",
            "hand made",
            "canary_release",
            c[2].as_str(),
        ],
    );
    git(&origin, &["tag", "old_release", c[0].as_str()]);
    let b = GitRepo::clone_from(&url(&origin), &tmp.path().join("b"), bot()).unwrap();
    let ledger = b.ledger().unwrap();
    // Annotated and lightweight resolve to the same peeled commit.
    assert_eq!(ledger.pointer(&prod()), Some(&c[2]));
    assert_eq!(ledger.pointer(&Env::new("canary").unwrap()), Some(&c[2]));
    // Move backwards (non fast-forward) and delete upstream.
    git(&origin, &["tag", "-f", "prod_release", c[0].as_str()]);
    git(
        &origin,
        &[
            "tag",
            "-f",
            "-a",
            "-m",
            "moved",
            "canary_release",
            c[1].as_str(),
        ],
    );
    git(&origin, &["tag", "-d", "old_release"]);
    b.fetch().unwrap();
    let ledger = b.ledger().unwrap();
    assert_eq!(ledger.pointer(&prod()), Some(&c[0]));
    assert_eq!(ledger.pointer(&Env::new("canary").unwrap()), Some(&c[1]));
    assert!(ledger.pointer(&Env::new("old").unwrap()).is_none());
    let remote = b.ls_remote().unwrap();
    assert_eq!(
        remote.get("refs/tags/canary_release"),
        Some(&c[1]),
        "peeled"
    );
}

#[test]
fn write_back_commit_is_compare_and_swap() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let (_up, c) = upstream(&origin, 2);
    let a = GitRepo::clone_from(&url(&origin), &tmp.path().join("a"), bot()).unwrap();
    // Branch off the fetched main, commit a nested file, push.
    git(
        &tmp.path().join("a"),
        &["update-ref", "refs/heads/main", c[1].as_str()],
    );
    // "Must not exist" on an existing branch is a conflict.
    assert!(matches!(
        a.commit_files("refs/heads/main", None, &[], "x", t(1)),
        Err(GitError::Ledger(LedgerError::Conflict { .. }))
    ));
    let new = a
        .commit_files(
            "refs/heads/main",
            Some(&c[1]),
            &[("apps/web/values.yaml".into(), b"tag: 2\n".to_vec())],
            "bump web",
            t(2),
        )
        .unwrap();
    assert_eq!(
        a.read_file(&new, "apps/web/values.yaml").unwrap(),
        b"tag: 2\n"
    );
    assert_eq!(a.read_file(&new, "app/version.txt").unwrap(), b"v1\n");
    let err = a
        .commit_files("refs/heads/main", Some(&c[1]), &[], "stale", t(3))
        .unwrap_err();
    assert!(
        matches!(err, GitError::Ledger(LedgerError::Conflict { .. })),
        "{err:?}"
    );
    assert_eq!(
        a.push_branch("refs/heads/main").unwrap().landed,
        vec!["refs/heads/main".to_string()]
    );
    assert_eq!(git(&origin, &["rev-parse", "main"]).trim(), new.as_str());
}

/// `git daemon` on 127.0.0.1, a free port, exporting `base` with receive-pack enabled;
/// stops by itself after 120 s and is terminated on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        // The port is free when probed; if another process takes it before the daemon
        // binds, the daemon exits and we try another one.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("timeout")
                .args(["120", "git", "daemon", "--listen=127.0.0.1"])
                .arg(format!("--port={port}"))
                .arg("--export-all")
                .arg("--reuseaddr")
                .arg("--enable=receive-pack")
                .arg(format!("--base-path={}", base.display()))
                .arg(base)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("git daemon starts");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Daemon { child, port };
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    // SIGTERM to `timeout`, which forwards it to the daemon.
                    let _ = Command::new("kill").arg(child.id().to_string()).status();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("git daemon did not start on 127.0.0.1");
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM to `timeout`, which forwards it to the daemon.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn hook(repo: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path: PathBuf = repo.join("hooks").join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn git_daemon_push_statuses_are_checked_per_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("srv");
    std::fs::create_dir(&base).unwrap();
    let origin = base.join("manifests.git");
    let (_up, c) = upstream(&origin, 3);
    let daemon = Daemon::start(&base);
    let a =
        GitRepo::clone_from(&daemon.url("manifests.git"), &tmp.path().join("a"), bot()).unwrap();

    // A plain release over git://.
    let plan = release(&a, &prod(), &c[0], t(1)).unwrap();
    assert_eq!(
        git(&origin, &["rev-parse", "prod_release"]).trim(),
        c[0].as_str()
    );
    assert_eq!(
        git(&origin, &["cat-file", "-t", &plan.history_tag.name()]).trim(),
        "tag"
    );

    // An update hook protecting the pointer: the history tag lands, the pointer does not.
    hook(
        &origin,
        "update",
        r#"case "$1" in refs/tags/*_release) echo "pointer is protected" >&2; exit 1;; esac; exit 0"#,
    );
    let plan = match a
        .ledger()
        .unwrap()
        .release(&prod(), &c[1], &who(), t(2))
        .unwrap()
    {
        Outcome::Planned(p) => p,
        o => panic!("{o:?}"),
    };
    match a.publish(&plan).unwrap_err() {
        GitError::PartialPush { landed, rejected } => {
            assert_eq!(landed, vec![plan.history_tag.refname()]);
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].refname, "refs/tags/prod_release");
        }
        other => panic!("{other:?}"),
    }
    // The local clone mirrors the remote: history kept, pointer restored.
    let local: Ledger = a.ledger().unwrap();
    assert_eq!(local.pointer(&prod()), Some(&c[0]));
    assert!(local.env(&prod()).unwrap().history.contains_key(&t(2)));
    assert_eq!(
        git(&origin, &["rev-parse", "prod_release"]).trim(),
        c[0].as_str()
    );

    // A pre-receive hook refusing everything: nothing lands, nothing stays locally.
    std::fs::remove_file(origin.join("hooks/update")).unwrap();
    hook(&origin, "pre-receive", "echo 'frozen' >&2; exit 1");
    a.fetch().unwrap();
    let before = a.ledger().unwrap();
    let plan = match before.release(&prod(), &c[2], &who(), t(3)).unwrap() {
        Outcome::Planned(p) => p,
        o => panic!("{o:?}"),
    };
    match a.publish(&plan).unwrap_err() {
        GitError::PushRejected { rejected } => {
            assert_eq!(rejected[0].refname, plan.history_tag.refname());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.ledger().unwrap(), before);
    let remote = a.ls_remote().unwrap();
    assert!(!remote.contains_key(&plan.history_tag.refname()));

    // Hooks gone: the same plan goes through.
    std::fs::remove_file(origin.join("hooks/pre-receive")).unwrap();
    let report = a.publish(&plan).unwrap();
    assert_eq!(report.landed.len(), 2);
    assert_eq!(
        git(&origin, &["rev-parse", "prod_release"]).trim(),
        c[2].as_str()
    );
}

#[test]
fn image_write_back_commits_once_and_pushes() {
    use gitops_core::writeback::{DEFAULT_TEMPLATE, ImageUpdate, set_kustomize_image, write_back};
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let up = GitRepo::init(&origin, true, bot()).unwrap();
    let kust = "resources:\n  - deployment.yaml\nimages:\n  - name: web # frontend\n    newTag: \"1.0.0\"\n";
    let base = up
        .commit_files(
            "refs/heads/main",
            None,
            &[(
                "apps/web/kustomization.yaml".into(),
                kust.as_bytes().to_vec(),
            )],
            "init",
            t(0),
        )
        .unwrap();
    let a = GitRepo::clone_from(&url(&origin), &tmp.path().join("a"), bot()).unwrap();
    git(
        &tmp.path().join("a"),
        &["update-ref", "refs/heads/main", base.as_str()],
    );
    let bump = |tag: &str| ImageUpdate {
        name: "web".into(),
        new_tag: Some(tag.into()),
        ..ImageUpdate::default()
    };
    let file = "apps/web/kustomization.yaml";
    let commit = write_back(
        &a,
        "refs/heads/main",
        file,
        |text| set_kustomize_image(file, text, &bump("1.1.0")),
        DEFAULT_TEMPLATE,
        "web",
        t(1),
    )
    .unwrap()
    .expect("a commit");
    assert_eq!(git(&origin, &["rev-parse", "main"]).trim(), commit.as_str());
    let content = String::from_utf8(a.read_file(&commit, file).unwrap()).unwrap();
    assert_eq!(content, kust.replace("1.0.0", "1.1.0"));
    let msg = git(&origin, &["log", "-1", "--format=%B", "main"]);
    assert!(msg.contains("images[web].newTag 1.0.0 -> 1.1.0"), "{msg}");
    // The same bump again: no commit, nothing pushed.
    let again = write_back(
        &a,
        "refs/heads/main",
        file,
        |text| set_kustomize_image(file, text, &bump("1.1.0")),
        DEFAULT_TEMPLATE,
        "web",
        t(2),
    )
    .unwrap();
    assert_eq!(again, None);
    assert_eq!(git(&origin, &["rev-parse", "main"]).trim(), commit.as_str());
}
