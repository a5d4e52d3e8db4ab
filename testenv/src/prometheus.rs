//! A real Prometheus server holding known samples, for tests of metric providers.
//!
//! # The model
//!
//! A test writes the samples it wants in the OpenMetrics text format (with explicit
//! timestamps, in seconds). [`Prometheus::start`] backfills them into a fresh TSDB with
//! `promtool tsdb create-blocks-from openmetrics`, then starts `prometheus` on a free
//! `127.0.0.1` port with that TSDB and no scrape targets (the data never change), and
//! waits until `/-/ready` answers 200. Queries at the sample times then see exactly the
//! samples written; backfilled blocks are only accepted for times older than the
//! server's head, so put the samples at least a couple of hours in the past.
//!
//! The server cannot outlive the test: it runs under `timeout` (at most
//! [`DEFAULT_LIFETIME`], or the lifetime given to [`Prometheus::start_with`]) with a
//! watchdog that stops it within seconds of the test process dying, and dropping the
//! [`Prometheus`] stops it at once (`SIGTERM`, then `SIGKILL`) and removes its data
//! directory.
//!
//! Needs `prometheus`, `promtool` and `timeout` on `PATH` (`./scripts/test.sh`
//! installs Prometheus); without them starting fails with [`Error::ToolMissing`], so a
//! test never passes silently.
//!
//! ```no_run
//! # fn demo() -> Result<(), rollout_testenv::prometheus::Error> {
//! let text = "# TYPE up gauge\nup{job=\"a\"} 1 1700000000\n# EOF\n";
//! let prom = rollout_testenv::prometheus::Prometheus::start(text)?;
//! let url = format!("{}/api/v1/query?query=up&time=1700000000", prom.address());
//! # let _ = url; Ok(()) }
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{ManagedProcess, free_ports, tail};

/// How long a server started with [`Prometheus::start`] may run at most.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How long [`Prometheus::start`] waits for `/-/ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a Prometheus server could not be provided.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A program the fixture needs is not on `PATH`.
    #[error(
        "`{tool}` is not on PATH: run ./scripts/test.sh, which installs Prometheus \
         (Debian package `prometheus`), or install it yourself"
    )]
    ToolMissing {
        /// `prometheus`, `promtool` or `timeout`.
        tool: &'static str,
    },
    /// A file-system or process operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `promtool` could not backfill the samples (usually malformed OpenMetrics text).
    #[error("promtool tsdb create-blocks-from openmetrics failed ({status}):\n{output}")]
    Backfill {
        /// The exit status, as printed by the OS.
        status: String,
        /// promtool's stdout and stderr.
        output: String,
    },
    /// The server exited early or did not become ready (the error carries the tail of
    /// its log).
    #[error("the prometheus server failed")]
    Server(#[source] crate::Error),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// A running Prometheus server; stopped (and its data removed) when dropped.
pub struct Prometheus {
    // Fields drop in order: the server stops before its directory is removed.
    process: ManagedProcess,
    port: u16,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("address", &self.address())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Prometheus {
    /// Backfills `openmetrics` (OpenMetrics text ending in `# EOF`) and starts a
    /// server on it, living at most [`DEFAULT_LIFETIME`]. Blocks until the server is
    /// ready (at most [`READY_TIMEOUT`]).
    pub fn start(openmetrics: &str) -> Result<Prometheus, Error> {
        Prometheus::start_with(openmetrics, DEFAULT_LIFETIME)
    }

    /// [`Prometheus::start`] with the server's maximum lifetime.
    pub fn start_with(openmetrics: &str, lifetime: Duration) -> Result<Prometheus, Error> {
        let mut tools = Vec::with_capacity(3);
        for tool in ["prometheus", "promtool", "timeout"] {
            tools.push(find_on_path(tool).ok_or(Error::ToolMissing { tool })?);
        }
        let dir = tempfile::Builder::new()
            .prefix("rollout-prometheus-")
            .tempdir()
            .map_err(io("creating the temporary directory"))?;
        let data = dir.path().join("data");
        let input = dir.path().join("samples.om");
        std::fs::write(&input, openmetrics).map_err(io(format!("writing {}", input.display())))?;
        let out = Command::new(&tools[1])
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&input)
            .arg(&data)
            .output()
            .map_err(io("running promtool"))?;
        if !out.status.success() {
            return Err(Error::Backfill {
                status: out.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n")
            .map_err(io(format!("writing {}", config.display())))?;

        // A port picked as free can be taken before the server binds it: retry.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let [port] = free_ports::<1>().map_err(Error::Server)?;
            let args = vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--storage.tsdb.retention.time=3650d".to_owned(),
            ];
            let mut process = ManagedProcess::spawn(
                "prometheus",
                &tools[0],
                &args,
                dir.path().join(format!("prometheus-{attempt}.log")),
                lifetime,
                Some(dir.path()),
            )
            .map_err(Error::Server)?;
            match wait_ready(&mut process, port) {
                Ok(()) => return Ok(Prometheus { process, port, dir }),
                Err(Error::Server(crate::Error::ProcessExited { log_tail, .. }))
                    if attempt < 3 && log_tail.contains("address already in use") =>
                {
                    drop(process);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file.
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// The last `lines` lines of the server's log (for assertion messages).
    pub fn log_tail(&self, lines: usize) -> String {
        tail(self.process.log(), lines)
    }
}

fn wait_ready(process: &mut ManagedProcess, port: u16) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        process.check_running().map_err(Error::Server)?;
        let last = match http_status_line(port, "/-/ready") {
            Some(line) if line.contains(" 200") => return Ok(()),
            Some(line) => line,
            None => "no answer".to_owned(),
        };
        if started.elapsed() > READY_TIMEOUT {
            return Err(Error::Server(process.not_ready(started.elapsed(), last)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn find_on_path(tool: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|p| p.join(tool))
        .find(|p| p.is_file())
}

/// One plain-HTTP GET; the status line of the answer.
fn http_status_line(port: u16, path: &str) -> Option<String> {
    let timeout = Duration::from_secs(2);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines().next().map(str::to_owned)
}
