//! Ephemeral environments read from a real git repository: files committed with the git
//! CLI, read back through the git adapter (no checkout) at each commit, and planned.
#![cfg(feature = "git")]

use std::path::Path;
use std::process::Command;

use gitops_core::envs::{
    EnvError, EnvSet, EnvTemplate, FilesGenerator, diff, generate, plan, read_files,
};
use gitops_core::git::{GitError, GitRepo, Identity};
use gitops_core::tag::{CommitId, Stamp};
use serde_json::json;

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

fn write(dir: &Path, path: &str, content: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Stages everything and commits; returns the new HEAD.
fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

fn generator() -> FilesGenerator {
    FilesGenerator::glob("apps/staging/manifests/*.{json,yaml}").unwrap()
}

fn template() -> EnvTemplate {
    EnvTemplate::new(
        "staging-{{slug}}",
        vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "staging-{{slug}}"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "staging-{{slug}}",
                                "annotations": {"source": "{{path}}/{{path.filename}}"}},
                   "spec": {"replicas": 1, "template": {"spec": {"containers": [
                       {"name": "web", "image": "registry.example.invalid/web:{{version}}"}]}}}}),
        ],
    )
    .unwrap()
}

fn names(envs: &EnvSet) -> Vec<&str> {
    envs.keys().map(String::as_str).collect()
}

#[test]
fn environments_follow_files_added_changed_and_deleted_in_git() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let (g, t) = (generator(), template());

    // c0: one environment, plus files the generator must not select.
    write(
        &work,
        "apps/staging/manifests/1.0.0.json",
        r#"{"version": "1.0.0", "slug": "v1-0-0"}"#,
    );
    write(
        &work,
        "apps/staging/manifests/old/0.9.0.json",
        r#"{"slug": "v0-9-0"}"#,
    );
    write(&work, "apps/prod/values.json", r#"{"slug": "prod"}"#);
    write(&work, "README.md", "manifests\n");
    std::os::unix::fs::symlink("1.0.0.json", work.join("apps/staging/manifests/link.json"))
        .unwrap();
    let c0 = commit(&work, "one environment");

    let repo = GitRepo::open(&work, None, Identity::new("bot", "bot@example.invalid")).unwrap();
    let listed = repo.list_files(&CommitId::new(&c0).unwrap()).unwrap();
    assert_eq!(
        listed,
        [
            "README.md",
            "apps/prod/values.json",
            "apps/staging/manifests/1.0.0.json",
            "apps/staging/manifests/old/0.9.0.json",
        ],
        "sorted, symlink skipped"
    );
    let (id0, files0) = read_files(&repo, &c0, &g).unwrap();
    assert_eq!(id0.as_str(), c0);
    assert_eq!(
        files0.keys().collect::<Vec<_>>(),
        ["apps/staging/manifests/1.0.0.json"]
    );
    let envs0 = generate(&g, &t, &files0).unwrap();
    assert_eq!(names(&envs0), ["staging-v1-0-0"]);
    assert_eq!(
        envs0["staging-v1-0-0"].manifests[1]["metadata"]["annotations"]["source"],
        "apps/staging/manifests/1.0.0.json"
    );

    // c1: a file added -> create.
    write(
        &work,
        "apps/staging/manifests/1.1.0.yaml",
        "version: 1.1.0\nslug: v1-1-0\n",
    );
    let c1 = commit(&work, "add 1.1.0");
    let (_, files1) = read_files(&repo, &c1, &g).unwrap();
    let p = plan(&g, &t, &files0, &files1).unwrap();
    assert_eq!(
        p.create.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["staging-v1-1-0"]
    );
    assert!(p.update.is_empty() && p.delete.is_empty());
    assert_eq!(p.unchanged, ["staging-v1-0-0"]);
    assert_eq!(
        p.create[0].manifests[1]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.invalid/web:1.1.0"
    );

    // c2: a file changed -> update (read by branch name this time).
    write(
        &work,
        "apps/staging/manifests/1.0.0.json",
        r#"{"version": "1.0.1", "slug": "v1-0-0"}"#,
    );
    let c2 = commit(&work, "patch 1.0.0");
    let (id2, files2) = read_files(&repo, "refs/heads/main", &g).unwrap();
    assert_eq!(id2.as_str(), c2);
    let p = plan(&g, &t, &files1, &files2).unwrap();
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].after.name, "staging-v1-0-0");
    assert_eq!(p.update[0].changed, ["version"]);

    // c3: a file deleted -> delete.
    git(&work, &["rm", "-q", "apps/staging/manifests/1.1.0.yaml"]);
    let c3 = commit(&work, "remove 1.1.0");
    let (_, files3) = read_files(&repo, &c3, &g).unwrap();
    let p = plan(&g, &t, &files2, &files3).unwrap();
    assert_eq!(
        p.delete.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["staging-v1-1-0"]
    );
    assert!(p.create.is_empty() && p.update.is_empty());

    // Applying the plans in order from c0 reproduces every revision's set.
    let mut applied = envs0.clone();
    for (old, new) in [(&files0, &files1), (&files1, &files2), (&files2, &files3)] {
        plan(&g, &t, old, new).unwrap().apply(&mut applied);
        assert_eq!(applied, generate(&g, &t, new).unwrap());
    }

    // c4: a malformed file and a broken one: no plan, both named; the environments
    // stay as they were at c3.
    write(&work, "apps/staging/manifests/2.0.0.json", "{\"version\": ");
    write(
        &work,
        "apps/staging/manifests/1.0.0.json",
        r#"["not", "objects"]"#,
    );
    let c4 = commit(&work, "typos");
    let (_, files4) = read_files(&repo, &c4, &g).unwrap();
    let err = plan(&g, &t, &files3, &files4).unwrap_err();
    assert!(err.old.is_empty());
    assert_eq!(
        err.new
            .iter()
            .map(|e| (e.path(), matches!(e, EnvError::Parse { .. })))
            .collect::<Vec<_>>(),
        [
            ("apps/staging/manifests/1.0.0.json", false),
            ("apps/staging/manifests/2.0.0.json", true),
        ]
    );
    assert_eq!(
        err.new[0],
        EnvError::NotAnObject {
            path: "apps/staging/manifests/1.0.0.json".into(),
            element: Some(0),
            found: "string"
        }
    );
    assert_eq!(applied, generate(&g, &t, &files3).unwrap());

    // The same revisions from a bare mirror (no work tree at all).
    let mirror = GitRepo::clone_from(
        &format!("file://{}", work.display()),
        &tmp.path().join("mirror.git"),
        Identity::new("bot", "bot@example.invalid"),
    )
    .unwrap();
    let (head, files) = read_files(&mirror, "refs/remotes/origin/main", &g).unwrap();
    assert_eq!(head.as_str(), c4);
    assert_eq!(files, files4);
    let (_, files) = read_files(&mirror, &c1, &g).unwrap();
    assert_eq!(files, files1);
    let p = diff(
        &generate(&g, &t, &files0).unwrap(),
        &generate(&g, &t, &files).unwrap(),
    );
    assert_eq!(p.create.len(), 1);
    assert!(matches!(
        read_files(&mirror, "no-such-branch", &g),
        Err(GitError::NotACommit { .. })
    ));
}

#[test]
fn removing_files_through_the_adapter_tears_an_environment_down() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(
        &tmp.path().join("m.git"),
        true,
        Identity::new("bot", "bot@example.invalid"),
    )
    .unwrap();
    let now = Stamp::parse("20261122090000").unwrap();
    let (g, t) = (generator(), template());
    let path = "apps/staging/manifests/2.0.0.json".to_string();
    let c1 = repo
        .commit_files(
            "refs/heads/main",
            None,
            &[
                (
                    path.clone(),
                    br#"{"version": "2.0.0", "slug": "v2"}"#.to_vec(),
                ),
                ("README.md".into(), b"x\n".to_vec()),
            ],
            "add 2.0.0",
            now,
        )
        .unwrap();
    let c2 = repo
        .remove_files(
            "refs/heads/main",
            &c1,
            std::slice::from_ref(&path),
            "remove 2.0.0",
            now.add_secs(60),
        )
        .unwrap();
    assert_eq!(repo.list_files(&c2).unwrap(), ["README.md"]);
    let (_, before) = read_files(&repo, c1.as_str(), &g).unwrap();
    let (_, after) = read_files(&repo, "refs/heads/main", &g).unwrap();
    let p = plan(&g, &t, &before, &after).unwrap();
    assert_eq!(p.delete.len(), 1);
    assert_eq!(p.delete[0].name, "staging-v2");
    // Removing it again: not a file any more, nothing written; a stale expected commit
    // is a compare-and-swap conflict.
    assert!(matches!(
        repo.remove_files(
            "refs/heads/main",
            &c2,
            std::slice::from_ref(&path),
            "again",
            now
        ),
        Err(GitError::PathNotFound { .. })
    ));
    assert!(matches!(
        repo.remove_files(
            "refs/heads/main",
            &c1,
            &["README.md".to_string()],
            "stale",
            now
        ),
        Err(GitError::Ledger(_))
    ));
    assert_eq!(repo.resolve("refs/heads/main").unwrap(), c2);
}
