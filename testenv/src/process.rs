//! A server process that cannot outlive the test run.
//!
//! Each server runs as `timeout -k 5 <lifetime> sh -c <watchdog> ...`:
//! - `timeout` bounds its life even if nothing else works, and puts the whole
//!   tree into a process group of its own;
//! - the watchdog shell stops the server (and removes its scratch directory)
//!   within seconds once the test process is gone (it polls every second,
//!   then allows the server 5 s to exit), which covers a test
//!   binary killed by a signal and the shared environment, whose static is never
//!   dropped;
//! - [`Drop`] stops the group at once: `SIGTERM`, then `SIGKILL` after a grace
//!   period.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// Runs the server in the background, polls whether the test process (`$1`)
/// is still alive, and on its death stops the server and removes `$2`.
const WATCHDOG: &str = r#"
parent="$1"; cleanup="$2"; shift 2
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
while kill -0 "$child" 2>/dev/null; do
  if ! kill -0 "$parent" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    n=0
    while kill -0 "$child" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n+1)); done
    kill -KILL "$child" 2>/dev/null
    wait "$child" 2>/dev/null
    if [ -n "$cleanup" ]; then rm -rf -- "$cleanup"; fi
    exit 0
  fi
  sleep 1
done
wait "$child"
"#;

/// How long [`Drop`] waits after `SIGTERM` before `SIGKILL`.
const GRACE: Duration = Duration::from_secs(5);

/// A running server process; stopped when dropped.
#[derive(Debug)]
pub(crate) struct ManagedProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl ManagedProcess {
    /// Starts `program args...` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: PathBuf,
        lifetime: Duration,
        cleanup_on_orphan: Option<&Path>,
    ) -> Result<ManagedProcess, Error> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(Error::io(format!("opening {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(Error::io("duplicating a log handle"))?;
        let child = Command::new("timeout")
            .arg("-k")
            .arg("5")
            .arg(lifetime.as_secs().max(1).to_string())
            .arg("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(
                cleanup_on_orphan
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(Error::io(format!(
                "starting {name} ({}) under timeout",
                program.display()
            )))?;
        Ok(ManagedProcess { name, child, log })
    }

    /// The id of the `timeout` process, which leads the process group.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// `Err(ProcessExited)` if the process has ended.
    pub(crate) fn check_running(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status)),
            Err(source) => Err(Error::Io {
                context: format!("polling {}", self.name),
                source,
            }),
        }
    }

    fn exited(&self, status: ExitStatus) -> Error {
        Error::ProcessExited {
            name: self.name,
            status: status.to_string(),
            log: self.log.clone(),
            log_tail: tail(&self.log, 40),
        }
    }

    /// A [`Error::NotReady`] for this process.
    pub(crate) fn not_ready(&self, waited: Duration, last_error: String) -> Error {
        Error::NotReady {
            name: self.name,
            waited,
            last_error,
            log: self.log.clone(),
            log_tail: tail(&self.log, 40),
        }
    }

    /// Whether any process of the group is still there.
    fn group_alive(&self) -> bool {
        Command::new("kill")
            .arg("-0")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn signal_group(&self, signal: &str) {
        // `timeout` made itself a process group leader, so `-pid` names the
        // group: timeout, the watchdog shell and the server.
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.signal_group("TERM");
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            // Reap the leader when it ends, so that a zombie does not keep the
            // group looking alive.
            let _ = self.child.try_wait();
            if !self.group_alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(name = self.name, "did not stop on SIGTERM; sending SIGKILL");
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `lines` lines of a text file, or a note that it could not be read.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// `N` distinct ports on 127.0.0.1 that were free a moment ago (all are held
/// at once while picking, so they differ).
pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N], Error> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0; N];
    for port in &mut ports {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .map_err(Error::io("finding a free port on 127.0.0.1"))?;
        *port = listener
            .local_addr()
            .map_err(Error::io("reading a bound port"))?
            .port();
        listeners.push(listener);
    }
    Ok(ports)
}
