//! The fixture's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while providing or using a test environment.
///
/// Display messages name what failed and, where it helps, the tail of the
/// failing process's log; the underlying cause is available through
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `kube-apiserver` or `etcd` is not in the binary directory, and building
    /// them was not allowed or did not produce them.
    #[error(
        "test environment binaries missing in {dir}: {reason}. Build them with testenv/build.sh \
         (needs Go and the Go module proxy; the first build takes a while), or point \
         ROLLOUT_TESTENV_BIN_DIR at a directory holding kube-apiserver and etcd"
    )]
    BinariesMissing {
        /// The directory that was searched.
        dir: PathBuf,
        /// Why the binaries are not there.
        reason: String,
    },

    /// `testenv/build.sh` ran and failed.
    #[error("testenv/build.sh failed ({status}); last lines of its output:\n{log_tail}")]
    Build {
        /// The exit status, as printed by the OS.
        status: String,
        /// The last lines of the script's output.
        log_tail: String,
    },

    /// A file-system or process-spawning operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Generating a certificate or key failed.
    #[error("generating {what}")]
    Certificate {
        /// Which certificate or key.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },

    /// A server process ended before the environment was ready.
    #[error("{name} exited early ({status}); last lines of {log}:\n{log_tail}")]
    ProcessExited {
        /// `etcd` or `kube-apiserver`.
        name: &'static str,
        /// The exit status, as printed by the OS.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        log_tail: String,
    },

    /// A server did not become ready within the bound.
    #[error(
        "{name} not ready after {waited:?} (last check: {last_error}); last lines of {log}:\n{log_tail}"
    )]
    NotReady {
        /// `etcd` or `kube-apiserver`.
        name: &'static str,
        /// How long the fixture waited.
        waited: Duration,
        /// The last readiness check's failure.
        last_error: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        log_tail: String,
    },

    /// The generated kubeconfig could not be turned into a client configuration.
    #[error("loading the generated kubeconfig {path}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: kube::config::KubeconfigError,
    },

    /// A request to the API server failed.
    #[error("{context}")]
    Kube {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },

    /// A YAML file (a CRD or a fixture manifest) could not be parsed.
    #[error("parsing {what}")]
    Yaml {
        /// The file or document.
        what: String,
        /// The underlying error.
        #[source]
        source: Box<serde_saphyr::Error>,
    },

    /// A manifest document could not be used (no kind, no name, bad shape).
    #[error("manifest {what}: {problem}")]
    Manifest {
        /// The file or document.
        what: String,
        /// What is wrong with it.
        problem: String,
    },

    /// A CRD was created but did not report `Established` in time.
    #[error("CRD {name} not Established after {waited:?}")]
    CrdNotEstablished {
        /// The CRD's name.
        name: String,
        /// How long the fixture waited.
        waited: Duration,
    },

    /// The shared environment of this test binary failed to start; every test
    /// that asks for it gets this error.
    #[error("the shared test environment failed to start")]
    Shared(#[source] std::sync::Arc<Error>),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub(crate) fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let context = context.into();
        move |source| Error::Kube { context, source }
    }

    /// The API server's status for a failed request, if this error is one.
    ///
    /// Lets tests check the HTTP code and reason of a rejected request, e.g.
    /// `err.api_status().map(|s| s.code) == Some(422)`.
    pub fn api_status(&self) -> Option<&kube::core::Status> {
        match self {
            Error::Kube {
                source: kube::Error::Api(status),
                ..
            } => Some(status),
            _ => None,
        }
    }
}
