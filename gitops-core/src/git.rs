//! The git2 adapter (feature `git`): a repository holding the ledger tags, a remote to
//! fetch them from and push them to, and the file and commit operations write-back needs.
//!
//! What it guarantees beyond plain libgit2 calls:
//!
//! - **Fetch mirrors the remote's tags**: tags are fetched with a forced refspec
//!   (`+refs/tags/*:refs/tags/*`; libgit2 otherwise silently keeps a moved tag stale) and
//!   local tags the remote no longer has are removed.
//! - **Everything resolves to peeled commits** (annotated and lightweight alike).
//! - **Compare-and-swap everywhere**: locally through `reference_matching`; on the remote
//!   by listing its refs just before pushing (libgit2 has no `--force-with-lease`, so a
//!   push racing in between that check and the push itself is the residual window; protect
//!   the tags server-side to close it).
//! - **Per-ref push status**: libgit2 returns `Ok` from a push whose refs the server
//!   rejected; the adapter records the `push_update_reference` status of every ref and
//!   then lists the remote to report exactly which refs landed.
//! - **History before pointer**: the history tag is pushed first, then the pointer. If the
//!   history tag is refused nothing landed and the local refs are restored; if the pointer
//!   is refused after the history tag landed, [`GitError::PartialPush`] names both and the
//!   local pointer is restored to match the remote.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use git2::{
    AutotagOption, Direction, ErrorCode, FetchOptions, Index, IndexEntry, IndexTime, ObjectType,
    Oid, PushOptions, RemoteCallbacks, Repository, Signature, Time,
};

use crate::ledger::{Ledger, LedgerError, Plan, TagTarget};
use crate::tag::{CommitId, Stamp};

/// Why a git operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// libgit2 reported an error.
    #[error("git {op} failed on {target}: {message}")]
    Git {
        /// What was being done (`open`, `fetch`, `push`, ...).
        op: &'static str,
        /// The ref, path or URL involved.
        target: String,
        /// libgit2's message.
        message: String,
    },
    /// The ledger refused (compare-and-swap lost, history tag exists, ...).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A revision does not resolve to a commit.
    #[error("{rev} does not resolve to a commit")]
    NotACommit {
        /// The revision.
        rev: String,
    },
    /// A path does not exist (or is not a file) at a commit.
    #[error("{path} is not a file at {commit}")]
    PathNotFound {
        /// The commit.
        commit: CommitId,
        /// The path.
        path: String,
    },
    /// The repository has no remote URL configured.
    #[error("no remote configured")]
    NoRemote,
    /// The server refused every ref of the push: nothing landed.
    #[error("push rejected, nothing landed: {rejected:?}")]
    PushRejected {
        /// The refused refs and the server's reasons.
        rejected: Vec<Rejection>,
    },
    /// Some refs landed and others were refused.
    #[error("push partially applied: landed {landed:?}, rejected {rejected:?}")]
    PartialPush {
        /// The refs now on the remote at their intended targets.
        landed: Vec<String>,
        /// The refused refs and the server's reasons.
        rejected: Vec<Rejection>,
    },
}

/// One ref the server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The full refname.
    pub refname: String,
    /// The server's (or libgit2's) reason.
    pub reason: String,
}

fn git_err(op: &'static str, target: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let target = target.into();
    move |e| GitError::Git {
        op,
        target,
        message: e.message().to_string(),
    }
}

fn commit_id(oid: Oid) -> CommitId {
    // libgit2 always renders 40 (or 64) lowercase hex digits.
    CommitId::from_trusted_hex(oid.to_string())
}

fn oid(c: &CommitId) -> Result<Oid, GitError> {
    Oid::from_str(c.as_str()).map_err(git_err("parse oid", c.as_str()))
}

/// The identity the adapter writes tags and commits as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

impl Identity {
    /// An identity.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Self {
        Identity {
            name: name.into(),
            email: email.into(),
        }
    }

    fn signature(&self, now: Stamp) -> Result<Signature<'static>, GitError> {
        Signature::new(&self.name, &self.email, &Time::new(now.unix_secs(), 0))
            .map_err(git_err("signature", self.name.clone()))
    }
}

/// A repository (bare or not) holding the ledger, with an optional remote.
pub struct GitRepo {
    repo: Repository,
    remote: Option<String>,
    identity: Identity,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("path", &self.repo.path())
            .field("remote", &self.remote)
            .field("identity", &self.identity)
            .finish()
    }
}

/// What a successful push landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The refs now on the remote at their intended targets, in push order.
    pub landed: Vec<String>,
}

impl GitRepo {
    /// Opens an existing repository; `remote` is the URL to fetch from and push to
    /// (`file:///...`, a local path or `git://...`).
    pub fn open(path: &Path, remote: Option<&str>, identity: Identity) -> Result<Self, GitError> {
        let repo = Repository::open(path).map_err(git_err("open", path.display().to_string()))?;
        Ok(GitRepo {
            repo,
            remote: remote.map(str::to_string),
            identity,
        })
    }

    /// Creates an empty repository (bare or with a work tree).
    pub fn init(path: &Path, bare: bool, identity: Identity) -> Result<Self, GitError> {
        let repo = if bare {
            Repository::init_bare(path)
        } else {
            Repository::init(path)
        }
        .map_err(git_err("init", path.display().to_string()))?;
        Ok(GitRepo {
            repo,
            remote: None,
            identity,
        })
    }

    /// Creates a bare repository at `path` that mirrors `url` (heads into
    /// `refs/remotes/origin/*`, tags forced), with `url` as its remote.
    pub fn clone_from(url: &str, path: &Path, identity: Identity) -> Result<Self, GitError> {
        let repo =
            Repository::init_bare(path).map_err(git_err("init", path.display().to_string()))?;
        let me = GitRepo {
            repo,
            remote: Some(url.to_string()),
            identity,
        };
        me.fetch()?;
        Ok(me)
    }

    /// The remote URL.
    pub fn remote(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    /// Sets the remote URL.
    pub fn set_remote(&mut self, url: impl Into<String>) {
        self.remote = Some(url.into());
    }

    /// The underlying libgit2 repository.
    pub fn raw(&self) -> &Repository {
        &self.repo
    }

    fn remote_url(&self) -> Result<&str, GitError> {
        self.remote.as_deref().ok_or(GitError::NoRemote)
    }

    /// Lists the remote's refs with peeled targets (`refs/tags/x^{}` replaces the
    /// tag-object id of annotated tags).
    pub fn ls_remote(&self) -> Result<BTreeMap<String, CommitId>, GitError> {
        let url = self.remote_url()?;
        let mut remote = self
            .repo
            .remote_anonymous(url)
            .map_err(git_err("remote", url))?;
        remote
            .connect(Direction::Fetch)
            .map_err(git_err("connect", url))?;
        let mut direct = BTreeMap::new();
        let mut peeled = BTreeMap::new();
        for head in remote.list().map_err(git_err("ls-remote", url))? {
            let name = head.name();
            match name.strip_suffix("^{}") {
                Some(base) => peeled.insert(base.to_string(), commit_id(head.oid())),
                None => direct.insert(name.to_string(), commit_id(head.oid())),
            };
        }
        let _ = remote.disconnect();
        direct.extend(peeled);
        Ok(direct)
    }

    /// Fetches heads (into `refs/remotes/origin/*`) and tags (forced), then removes local
    /// tags the remote no longer has.
    pub fn fetch(&self) -> Result<(), GitError> {
        let url = self.remote_url()?;
        let remote_refs = self.ls_remote()?;
        let mut remote = self
            .repo
            .remote_anonymous(url)
            .map_err(git_err("remote", url))?;
        let mut opts = FetchOptions::new();
        opts.download_tags(AutotagOption::None);
        remote
            .fetch(
                &[
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                Some(&mut opts),
                None,
            )
            .map_err(git_err("fetch", url))?;
        let mut stale = Vec::new();
        for r in self
            .repo
            .references_glob("refs/tags/*")
            .map_err(git_err("list tags", "refs/tags/*"))?
        {
            let r = r.map_err(git_err("list tags", "refs/tags/*"))?;
            if let Ok(name) = r.name()
                && !remote_refs.contains_key(name)
            {
                stale.push(name.to_string());
            }
        }
        for name in stale {
            if let Ok(mut r) = self.repo.find_reference(&name) {
                r.delete().map_err(git_err("prune", name.clone()))?;
            }
        }
        Ok(())
    }

    /// Resolves a revision (a SHA, a tag, `refs/...`, `HEAD`) to its peeled commit.
    pub fn resolve(&self, rev: &str) -> Result<CommitId, GitError> {
        let obj = self
            .repo
            .revparse_single(&format!("{rev}^{{commit}}"))
            .map_err(|_| GitError::NotACommit {
                rev: rev.to_string(),
            })?;
        Ok(commit_id(obj.id()))
    }

    /// Reads every tag into a [`Ledger`] (non-ledger tags are skipped).
    pub fn ledger(&self) -> Result<Ledger, GitError> {
        let mut tags = Vec::new();
        for r in self
            .repo
            .references_glob("refs/tags/*")
            .map_err(git_err("list tags", "refs/tags/*"))?
        {
            let r = r.map_err(git_err("list tags", "refs/tags/*"))?;
            let Ok(name) = r.name() else { continue };
            let name = name.to_string();
            if crate::tag::LedgerTag::parse(&name).is_err() {
                continue;
            }
            if let Some(t) = self.read_tag(&name)? {
                tags.push((name, t));
            }
        }
        Ok(Ledger::from_tags(tags))
    }

    /// Reads one tag: its peeled commit and, if annotated, its message. `None` if absent.
    pub fn read_tag(&self, refname: &str) -> Result<Option<TagTarget>, GitError> {
        let r = match self.repo.find_reference(refname) {
            Ok(r) => r,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(git_err("read tag", refname)(e)),
        };
        let commit = r.peel_to_commit().map_err(|_| GitError::NotACommit {
            rev: refname.to_string(),
        })?;
        let message = match r.target().map(|o| self.repo.find_tag(o)) {
            Some(Ok(tag)) => Some(
                tag.message()
                    .map_err(git_err("read tag", refname))?
                    .unwrap_or_default()
                    .to_string(),
            ),
            _ => None,
        };
        Ok(Some(TagTarget {
            commit: commit_id(commit.id()),
            message,
        }))
    }

    /// Writes a plan to the local repository, compare-and-swap: the annotated history tag
    /// is created (refused if it exists), then the pointer is moved only if it still
    /// resolves to `plan.from`. On error nothing changed.
    pub fn apply_local(&self, plan: &Plan) -> Result<(), GitError> {
        let pointer = plan.pointer_tag.refname();
        let history = plan.history_tag.refname();
        let current = self.read_tag(&pointer)?.map(|t| t.commit);
        if current != plan.from {
            return Err(LedgerError::Conflict {
                tag: plan.pointer_tag.name(),
                expected: plan.from.clone(),
                actual: current,
            }
            .into());
        }
        let direct_old = self
            .repo
            .find_reference(&pointer)
            .ok()
            .and_then(|r| r.target());
        let target = self
            .repo
            .find_object(oid(&plan.to)?, Some(ObjectType::Commit))
            .map_err(|_| GitError::NotACommit {
                rev: plan.to.to_string(),
            })?;
        let sig = self.identity.signature(plan.at)?;
        match self.repo.tag(
            &plan.history_tag.name(),
            &target,
            &sig,
            &plan.message,
            false,
        ) {
            Ok(_) => {}
            Err(e) if e.code() == ErrorCode::Exists => {
                return Err(LedgerError::HistoryTagExists {
                    tag: plan.history_tag.name(),
                }
                .into());
            }
            Err(e) => return Err(git_err("tag", history)(e)),
        }
        let log = format!("gitops-core: {} {}", plan.action, plan.env);
        let moved = match direct_old {
            Some(old) => self
                .repo
                .reference_matching(&pointer, target.id(), true, old, &log),
            None => self.repo.reference(&pointer, target.id(), false, &log),
        };
        if let Err(e) = moved {
            // Undo the history tag we just created: nothing half-applied.
            if let Ok(mut r) = self.repo.find_reference(&history) {
                let _ = r.delete();
            }
            if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) {
                let actual = self.read_tag(&pointer)?.map(|t| t.commit);
                return Err(LedgerError::Conflict {
                    tag: plan.pointer_tag.name(),
                    expected: plan.from.clone(),
                    actual,
                }
                .into());
            }
            return Err(git_err("move pointer", pointer)(e));
        }
        Ok(())
    }

    /// Restores the local refs a plan wrote (used when a push fails).
    fn undo_local(&self, plan: &Plan, keep_history: bool) -> Result<(), GitError> {
        let pointer = plan.pointer_tag.refname();
        if !keep_history && let Ok(mut r) = self.repo.find_reference(&plan.history_tag.refname()) {
            r.delete()
                .map_err(git_err("undo", plan.history_tag.refname()))?;
        }
        let log = "gitops-core: undo after refused push";
        match &plan.from {
            Some(from) => {
                self.repo
                    .reference_matching(&pointer, oid(from)?, true, oid(&plan.to)?, log)
                    .map_err(git_err("undo", pointer.clone()))?;
            }
            None => {
                if let Ok(mut r) = self.repo.find_reference(&pointer) {
                    r.delete().map_err(git_err("undo", pointer.clone()))?;
                }
            }
        }
        Ok(())
    }

    /// Checks the plan's compare-and-swap preconditions against the remote (listed now).
    pub fn check_remote(&self, plan: &Plan) -> Result<(), GitError> {
        let refs = self.ls_remote()?;
        if refs.contains_key(&plan.history_tag.refname()) {
            return Err(LedgerError::HistoryTagExists {
                tag: plan.history_tag.name(),
            }
            .into());
        }
        let actual = refs.get(&plan.pointer_tag.refname()).cloned();
        if actual != plan.from {
            return Err(LedgerError::Conflict {
                tag: plan.pointer_tag.name(),
                expected: plan.from.clone(),
                actual,
            }
            .into());
        }
        Ok(())
    }

    /// Pushes refspecs one per call, each with its status taken from the
    /// `push_update_reference` callback. Returns the refusals.
    fn push_refspec(&self, refspec: &str, refname: &str) -> Result<Option<Rejection>, GitError> {
        let url = self.remote_url()?;
        let mut remote = self
            .repo
            .remote_anonymous(url)
            .map_err(git_err("remote", url))?;
        let mut statuses: Vec<(String, Option<String>)> = Vec::new();
        let result = {
            let mut cbs = RemoteCallbacks::new();
            cbs.push_update_reference(|name, status| {
                statuses.push((name.to_string(), status.map(str::to_string)));
                Ok(())
            });
            let mut opts = PushOptions::new();
            opts.remote_callbacks(cbs);
            remote.push(&[refspec], Some(&mut opts))
        };
        if let Err(e) = result {
            return Ok(Some(Rejection {
                refname: refname.to_string(),
                reason: e.message().to_string(),
            }));
        }
        for (name, status) in statuses {
            if name == refname
                && let Some(reason) = status
            {
                return Ok(Some(Rejection {
                    refname: name,
                    reason,
                }));
            }
        }
        Ok(None)
    }

    /// Pushes an applied plan: the history tag (create only), then the pointer (forced),
    /// after checking the remote still matches the plan. Local refs are restored to match
    /// the remote when a push is refused.
    pub fn push_plan(&self, plan: &Plan) -> Result<PushReport, GitError> {
        let history = plan.history_tag.refname();
        let pointer = plan.pointer_tag.refname();
        if let Err(e) = self.check_remote(plan) {
            self.undo_local(plan, false)?;
            return Err(e);
        }
        if let Some(rej) = self.push_refspec(&format!("{history}:{history}"), &history)? {
            let landed = self.landed(plan)?;
            if landed.is_empty() {
                self.undo_local(plan, false)?;
                return Err(GitError::PushRejected {
                    rejected: vec![rej],
                });
            }
            // Reported refused but present: trust the remote's state.
            return self.push_pointer(plan, &pointer, landed);
        }
        self.push_pointer(plan, &pointer, vec![history])
    }

    fn push_pointer(
        &self,
        plan: &Plan,
        pointer: &str,
        mut landed: Vec<String>,
    ) -> Result<PushReport, GitError> {
        let rej = self.push_refspec(&format!("+{pointer}:{pointer}"), pointer)?;
        let now_landed = self.landed(plan)?;
        if now_landed.iter().any(|r| r == pointer) {
            if !landed.iter().any(|r| r == pointer) {
                landed.push(pointer.to_string());
            }
            return Ok(PushReport { landed });
        }
        let rejected = vec![rej.unwrap_or(Rejection {
            refname: pointer.to_string(),
            reason: "not on the remote after the push".to_string(),
        })];
        let keep_history = now_landed.iter().any(|r| *r == plan.history_tag.refname());
        self.undo_local(plan, keep_history)?;
        if keep_history {
            Err(GitError::PartialPush {
                landed: now_landed,
                rejected,
            })
        } else {
            Err(GitError::PushRejected { rejected })
        }
    }

    /// Which of the plan's refs are on the remote at the plan's target.
    fn landed(&self, plan: &Plan) -> Result<Vec<String>, GitError> {
        let refs = self.ls_remote()?;
        Ok([plan.history_tag.refname(), plan.pointer_tag.refname()]
            .into_iter()
            .filter(|r| refs.get(r) == Some(&plan.to))
            .collect())
    }

    /// Applies a plan locally, then pushes it (see [`GitRepo::apply_local`] and
    /// [`GitRepo::push_plan`]). With no remote configured, only the local write happens.
    pub fn publish(&self, plan: &Plan) -> Result<PushReport, GitError> {
        if self.remote.is_some() {
            // Fail early, before writing anything locally.
            self.check_remote(plan)?;
        }
        self.apply_local(plan)?;
        if self.remote.is_none() {
            return Ok(PushReport { landed: Vec::new() });
        }
        self.push_plan(plan)
    }

    /// Reads a file at a commit without a checkout.
    pub fn read_file(&self, commit: &CommitId, path: &str) -> Result<Vec<u8>, GitError> {
        let not_found = || GitError::PathNotFound {
            commit: commit.clone(),
            path: path.to_string(),
        };
        let c = self
            .repo
            .find_commit(oid(commit)?)
            .map_err(|_| GitError::NotACommit {
                rev: commit.to_string(),
            })?;
        let tree = c.tree().map_err(git_err("read tree", commit.as_str()))?;
        let entry = tree.get_path(Path::new(path)).map_err(|_| not_found())?;
        let blob = self.repo.find_blob(entry.id()).map_err(|_| not_found())?;
        Ok(blob.content().to_vec())
    }

    /// Lists the paths (`/`-separated) of the regular files at a commit without a
    /// checkout, sorted. Symlinks, submodules and entries whose names are not UTF-8 (and
    /// everything under such a directory) are skipped.
    pub fn list_files(&self, commit: &CommitId) -> Result<Vec<String>, GitError> {
        let c = self
            .repo
            .find_commit(oid(commit)?)
            .map_err(|_| GitError::NotACommit {
                rev: commit.to_string(),
            })?;
        let tree = c.tree().map_err(git_err("read tree", commit.as_str()))?;
        let mut out = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            let Ok(name) = entry.name() else {
                return git2::TreeWalkResult::Skip;
            };
            // 0o120000 is a symlink; submodules are commits, not blobs.
            if entry.kind() == Some(ObjectType::Blob) && entry.filemode() != 0o120_000 {
                out.push(format!("{root}{name}"));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(git_err("list files", commit.as_str()))?;
        out.sort();
        Ok(out)
    }

    /// Commits `files` (path, new content) on top of `branch` (a full refname such as
    /// `refs/heads/main`) without a work tree, compare-and-swap on the branch's current
    /// commit `expected` (`None`: the branch must not exist). Files not listed keep their
    /// content.
    pub fn commit_files(
        &self,
        branch: &str,
        expected: Option<&CommitId>,
        files: &[(String, Vec<u8>)],
        message: &str,
        now: Stamp,
    ) -> Result<CommitId, GitError> {
        let mut index = Index::new().map_err(git_err("index", branch))?;
        let parent = match expected {
            Some(c) => Some(
                self.repo
                    .find_commit(oid(c)?)
                    .map_err(|_| GitError::NotACommit { rev: c.to_string() })?,
            ),
            None => None,
        };
        if let Some(p) = &parent {
            let tree = p.tree().map_err(git_err("read tree", branch))?;
            index
                .read_tree(&tree)
                .map_err(git_err("read tree", branch))?;
        }
        for (path, content) in files {
            let id = self
                .repo
                .blob(content)
                .map_err(git_err("write blob", path.clone()))?;
            let entry = IndexEntry {
                ctime: IndexTime::new(0, 0),
                mtime: IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: 0o100_644,
                uid: 0,
                gid: 0,
                file_size: u32::try_from(content.len()).unwrap_or(u32::MAX),
                id,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).map_err(git_err("stage", path.clone()))?;
        }
        self.commit_index(
            &mut index,
            branch,
            parent.as_ref(),
            expected,
            message,
            now,
            "gitops-core: commit",
        )
    }

    /// Writes `index` as a tree, commits it on `parent` and moves `branch` to the new
    /// commit, compare-and-swap on `expected` (`None`: the branch must not exist); a
    /// lost race is a [`LedgerError::Conflict`] naming the branch's actual commit.
    #[allow(clippy::too_many_arguments)]
    fn commit_index(
        &self,
        index: &mut Index,
        branch: &str,
        parent: Option<&git2::Commit<'_>>,
        expected: Option<&CommitId>,
        message: &str,
        now: Stamp,
        log: &str,
    ) -> Result<CommitId, GitError> {
        let tree_id = index
            .write_tree_to(&self.repo)
            .map_err(git_err("write tree", branch))?;
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(git_err("write tree", branch))?;
        let sig = self.identity.signature(now)?;
        let parents: Vec<&git2::Commit<'_>> = parent.into_iter().collect();
        let new = self
            .repo
            .commit(None, &sig, &sig, message, &tree, &parents)
            .map_err(git_err("commit", branch))?;
        let moved = match expected {
            Some(c) => self
                .repo
                .reference_matching(branch, new, true, oid(c)?, log),
            None => self.repo.reference(branch, new, false, log),
        };
        if let Err(e) = moved {
            if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) {
                let actual = self.resolve(branch).ok();
                return Err(LedgerError::Conflict {
                    tag: branch.to_string(),
                    expected: expected.cloned(),
                    actual,
                }
                .into());
            }
            return Err(git_err("update branch", branch)(e));
        }
        Ok(commit_id(new))
    }

    /// Commits the removal of `paths` on top of `branch` without a work tree,
    /// compare-and-swap on the branch's current commit `expected`. A path that is not a
    /// file at `expected` is [`GitError::PathNotFound`] and nothing is written.
    pub fn remove_files(
        &self,
        branch: &str,
        expected: &CommitId,
        paths: &[String],
        message: &str,
        now: Stamp,
    ) -> Result<CommitId, GitError> {
        let parent = self
            .repo
            .find_commit(oid(expected)?)
            .map_err(|_| GitError::NotACommit {
                rev: expected.to_string(),
            })?;
        let mut index = Index::new().map_err(git_err("index", branch))?;
        let tree = parent.tree().map_err(git_err("read tree", branch))?;
        index
            .read_tree(&tree)
            .map_err(git_err("read tree", branch))?;
        for path in paths {
            if index.get_path(Path::new(path), 0).is_none() {
                return Err(GitError::PathNotFound {
                    commit: expected.clone(),
                    path: path.clone(),
                });
            }
            index
                .remove_path(Path::new(path))
                .map_err(git_err("remove", path.clone()))?;
        }
        self.commit_index(
            &mut index,
            branch,
            Some(&parent),
            Some(expected),
            message,
            now,
            "gitops-core: remove",
        )
    }

    /// Points `refname` at `to` (a lightweight ref), compare-and-swap on its current
    /// direct target `expected` (`None`: the ref must not exist).
    pub fn move_ref(
        &self,
        refname: &str,
        to: &CommitId,
        expected: Option<&CommitId>,
    ) -> Result<(), GitError> {
        let current = match self.repo.find_reference(refname) {
            Ok(r) => r.target().map(commit_id),
            Err(e) if e.code() == ErrorCode::NotFound => None,
            Err(e) => return Err(git_err("read ref", refname)(e)),
        };
        let conflict = |actual| {
            GitError::from(LedgerError::Conflict {
                tag: refname.to_string(),
                expected: expected.cloned(),
                actual,
            })
        };
        if current.as_ref() != expected {
            return Err(conflict(current));
        }
        let log = "gitops-core: move";
        let moved = match expected {
            Some(old) => self
                .repo
                .reference_matching(refname, oid(to)?, true, oid(old)?, log),
            None => self.repo.reference(refname, oid(to)?, false, log),
        };
        match moved {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => {
                let actual = self
                    .repo
                    .find_reference(refname)
                    .ok()
                    .and_then(|r| r.target())
                    .map(commit_id);
                Err(conflict(actual))
            }
            Err(e) => Err(git_err("move ref", refname)(e)),
        }
    }

    /// Pushes a local ref to the same name on the remote (`force`: allow a
    /// non-fast-forward move) and checks it landed.
    pub fn push_ref(&self, refname: &str, force: bool) -> Result<PushReport, GitError> {
        let spec = format!("{}{refname}:{refname}", if force { "+" } else { "" });
        if let Some(rej) = self.push_refspec(&spec, refname)? {
            return Err(GitError::PushRejected {
                rejected: vec![rej],
            });
        }
        let refs = self.ls_remote()?;
        let local = self.resolve(refname)?;
        if refs.get(refname) == Some(&local) {
            Ok(PushReport {
                landed: vec![refname.to_string()],
            })
        } else {
            Err(GitError::PushRejected {
                rejected: vec![Rejection {
                    refname: refname.to_string(),
                    reason: "not on the remote after the push".to_string(),
                }],
            })
        }
    }

    /// Pushes a local branch (`refs/heads/x`) to the same name on the remote without
    /// forcing (a non-fast-forward is refused).
    pub fn push_branch(&self, branch: &str) -> Result<PushReport, GitError> {
        self.push_ref(branch, false)
    }

    /// The names of every tag, local.
    pub fn tag_names(&self) -> Result<BTreeSet<String>, GitError> {
        let names = self
            .repo
            .tag_names(None)
            .map_err(git_err("list tags", "*"))?;
        Ok(names
            .iter()
            .filter_map(|n| n.ok().flatten())
            .map(str::to_string)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::tag::{Env, LedgerTag, Stamp};

    proptest! {
        #[test]
        fn every_ledger_tag_is_a_valid_refname(
            env in "[A-Za-z0-9][A-Za-z0-9_.-]{0,30}",
            secs in 0i64..253_402_300_799,
        ) {
            let Ok(env) = Env::new(env) else { return Ok(()); };
            let history = env.history(Stamp::from_unix_secs(secs).unwrap());
            for tag in [env.pointer(), history] {
                prop_assert!(git2::Reference::is_valid_name(&tag.refname()), "{}", tag);
                prop_assert_eq!(LedgerTag::parse(&tag.refname()).unwrap(), tag);
            }
        }
    }
}
