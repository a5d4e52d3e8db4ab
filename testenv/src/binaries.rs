//! Finding, and if need be building, the `kube-apiserver` and `etcd` binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Error;

/// `versions.env`, the one place the pinned versions are written down.
const VERSIONS_ENV: &str = include_str!("../versions.env");

/// Set to `1` to run `build.sh` before starting (it skips the build when the
/// cached binaries exist), to `0` to never build.
pub const BUILD_ENV: &str = "ROLLOUT_TESTENV_BUILD";
/// Overrides the directory that holds `kube-apiserver` and `etcd`.
pub const BIN_DIR_ENV: &str = "ROLLOUT_TESTENV_BIN_DIR";
/// Overrides the cache root (default `~/.cache/rollout-testenv`).
pub const CACHE_DIR_ENV: &str = "ROLLOUT_TESTENV_CACHE_DIR";

/// The pinned versions of the two binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The `k8s.io/kubernetes` release `kube-apiserver` is built from, e.g. `v1.36.3`.
    pub kube: String,
    /// The `go.etcd.io/etcd/server/v3` release, e.g. `v3.6.16`.
    pub etcd: String,
}

impl Versions {
    /// The versions pinned in `testenv/versions.env`.
    pub fn pinned() -> Versions {
        let mut kube = String::new();
        let mut etcd = String::new();
        for line in VERSIONS_ENV.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("KUBE_VERSION=") {
                kube = v.to_owned();
            } else if let Some(v) = line.strip_prefix("ETCD_VERSION=") {
                etcd = v.to_owned();
            }
        }
        Versions { kube, etcd }
    }
}

/// Paths of the two server binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The `kube-apiserver` executable.
    pub kube_apiserver: PathBuf,
    /// The `etcd` executable.
    pub etcd: PathBuf,
}

impl Binaries {
    fn in_dir(dir: &Path) -> Binaries {
        Binaries {
            kube_apiserver: dir.join("kube-apiserver"),
            etcd: dir.join("etcd"),
        }
    }

    fn missing(&self) -> Vec<&Path> {
        [&self.kube_apiserver, &self.etcd]
            .into_iter()
            .filter(|p| !p.is_file())
            .map(PathBuf::as_path)
            .collect()
    }
}

/// The `testenv/` directory of the source tree (where `build.sh` and `crds/` live).
pub fn testenv_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory the binaries are looked up in: `$ROLLOUT_TESTENV_BIN_DIR`, or
/// `<cache root>/k8s-<kube>_etcd-<etcd>/bin` (the same rule as `build.sh`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let root = std::env::var_os(CACHE_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            home.join(".cache").join("rollout-testenv")
        });
    let v = Versions::pinned();
    root.join(format!("k8s-{}_etcd-{}", v.kube, v.etcd))
        .join("bin")
}

/// When to run `build.sh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPolicy {
    /// Build only when a binary is missing (the default).
    IfMissing,
    /// Always run `build.sh`, which itself skips the build when the binaries
    /// of the pinned versions are cached (`ROLLOUT_TESTENV_BUILD=1`).
    Always,
    /// Never build; fail if a binary is missing (`ROLLOUT_TESTENV_BUILD=0`).
    Never,
}

impl BuildPolicy {
    /// The policy named by `$ROLLOUT_TESTENV_BUILD` (`1`: always, `0`: never,
    /// unset or anything else: if missing).
    pub fn from_env() -> BuildPolicy {
        match std::env::var(BUILD_ENV).as_deref() {
            Ok("1") => BuildPolicy::Always,
            Ok("0") => BuildPolicy::Never,
            _ => BuildPolicy::IfMissing,
        }
    }
}

/// Serialises builds within this process (`build.sh` also takes a file lock).
static BUILD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Returns the binaries in `dir`, running `build.sh` (into `dir`) first as
/// `policy` says.
///
/// Blocking: a first build takes many minutes. Call it from
/// `tokio::task::spawn_blocking` in async code.
pub fn ensure_binaries(dir: &Path, policy: BuildPolicy) -> Result<Binaries, Error> {
    let bins = Binaries::in_dir(dir);
    let missing = bins.missing();
    match policy {
        BuildPolicy::IfMissing if missing.is_empty() => return Ok(bins),
        BuildPolicy::Never if missing.is_empty() => return Ok(bins),
        BuildPolicy::Never => {
            return Err(Error::BinariesMissing {
                dir: dir.to_path_buf(),
                reason: format!(
                    "{} missing and building is disabled ({BUILD_ENV}=0)",
                    describe(&missing)
                ),
            });
        }
        BuildPolicy::IfMissing | BuildPolicy::Always => {}
    }
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    run_build_script(dir)?;
    let missing = bins.missing();
    if missing.is_empty() {
        Ok(bins)
    } else {
        Err(Error::BinariesMissing {
            dir: dir.to_path_buf(),
            reason: format!(
                "{} still missing after build.sh succeeded",
                describe(&missing)
            ),
        })
    }
}

fn describe(missing: &[&Path]) -> String {
    missing
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

fn run_build_script(dir: &Path) -> Result<(), Error> {
    let script = testenv_dir().join("build.sh");
    let log_path =
        std::env::temp_dir().join(format!("rollout-testenv-build-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path)
        .map_err(Error::io(format!("creating {}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(Error::io("duplicating the build log handle"))?;
    tracing::info!(script = %script.display(), log = %log_path.display(), "building kube-apiserver and etcd");
    let status = Command::new("bash")
        .arg(&script)
        .env(BIN_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .status()
        .map_err(|source| Error::BinariesMissing {
            dir: dir.to_path_buf(),
            reason: format!("could not run {}: {source}", script.display()),
        })?;
    let log_tail = crate::process::tail(&log_path, 30);
    if status.success() {
        // The log is only interesting on failure.
        let _ = std::fs::remove_file(&log_path);
        Ok(())
    } else {
        Err(Error::Build {
            status: status.to_string(),
            log_tail: format!("{log_tail}\n(full log: {})", log_path.display()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_versions_are_read_from_versions_env() {
        let v = Versions::pinned();
        assert!(v.kube.starts_with("v1."), "{v:?}");
        assert!(v.etcd.starts_with("v3."), "{v:?}");
    }

    #[test]
    fn go_mod_files_pin_the_same_versions() {
        let v = Versions::pinned();
        let kube_mod =
            std::fs::read_to_string(testenv_dir().join("go/kube-apiserver/go.mod")).unwrap();
        assert!(kube_mod.contains(&format!("k8s.io/kubernetes {}", v.kube)));
        let staging = format!("v0.{}", v.kube.trim_start_matches("v1."));
        assert!(
            kube_mod.contains(&format!("k8s.io/api => k8s.io/api {staging}")),
            "staging modules pinned to {staging}"
        );
        let etcd_mod = std::fs::read_to_string(testenv_dir().join("go/etcd/go.mod")).unwrap();
        assert!(etcd_mod.contains(&format!("go.etcd.io/etcd/server/v3 {}", v.etcd)));
    }
}
