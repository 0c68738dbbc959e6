//! Exit statuses and resource usage of reaped children.

use std::fmt;
use std::time::{Duration, Instant};

use crate::engine::ChildId;
use crate::signal::Signal;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It called `exit` with this code (0 to 255).
    Exited(i32),
    /// A signal ended it.
    Signaled {
        /// The signal.
        signal: Signal,
        /// Whether it dumped core.
        core_dumped: bool,
    },
    /// Something else in this process reaped it first (a `waitpid(-1)`
    /// elsewhere, or SIGCHLD set to `SIG_IGN`), so the status is lost.
    /// pidreap never does this itself; it is reported rather than hidden.
    Unknown,
}

impl ExitStatus {
    /// True for `Exited(0)`.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// The exit code, if the child exited normally.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(c) => Some(c),
            _ => None,
        }
    }

    /// The signal that ended the child, if one did.
    pub fn signal(self) -> Option<Signal> {
        match self {
            ExitStatus::Signaled { signal, .. } => Some(signal),
            _ => None,
        }
    }

    /// The status as a shell reports it: the code, or 128 + the signal
    /// number (the convention of shells, tini and container runtimes).
    /// `Unknown` maps to 255.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled { signal, .. } => 128 + signal.as_raw(),
            ExitStatus::Unknown => 255,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(c) => write!(f, "exit code {c}"),
            ExitStatus::Signaled {
                signal,
                core_dumped: true,
            } => write!(f, "killed by {signal} (core dumped)"),
            ExitStatus::Signaled { signal, .. } => write!(f, "killed by {signal}"),
            ExitStatus::Unknown => f.write_str("status unknown (reaped elsewhere)"),
        }
    }
}

/// From std's status, as
/// [`std::os::unix::process::ExitStatusExt`] reads it: a normal exit is
/// `Exited`, a death by signal `Signaled`; a wait status that is neither
/// (a stopped or continued child, which only `waitpid` with `WUNTRACED`
/// or `WCONTINUED` reports) is `Unknown`.
///
/// ```
/// use std::os::unix::process::ExitStatusExt;
/// use pidreap::{ExitStatus, Signal};
/// let std_status = std::process::ExitStatus::from_raw(9); // killed by SIGKILL
/// assert_eq!(ExitStatus::from(std_status).signal(), Some(Signal::KILL));
/// assert_eq!(ExitStatus::from(std::process::ExitStatus::from_raw(3 << 8)), ExitStatus::Exited(3));
/// ```
impl From<std::process::ExitStatus> for ExitStatus {
    fn from(status: std::process::ExitStatus) -> ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        if let Some(code) = status.code() {
            return ExitStatus::Exited(code);
        }
        match status.signal().and_then(Signal::from_raw) {
            Some(signal) => ExitStatus::Signaled {
                signal,
                core_dumped: status.core_dumped(),
            },
            None => ExitStatus::Unknown,
        }
    }
}

/// To std's status, built from the wait status the kernel would have
/// reported ([wait(2)](https://man7.org/linux/man-pages/man2/wait.2.html)):
/// `code << 8` for an exit, the signal number (with `0x80` for a core dump)
/// for a death by signal. [`ExitStatus::Unknown`] has no std equivalent
/// (the status was lost) and fails with [`StatusUnknown`].
///
/// ```
/// use pidreap::{ExitStatus, Signal};
/// let std_status = std::process::ExitStatus::try_from(ExitStatus::Exited(3)).unwrap();
/// assert_eq!(std_status.code(), Some(3));
/// let killed = ExitStatus::Signaled { signal: Signal::TERM, core_dumped: false };
/// let std_status = std::process::ExitStatus::try_from(killed).unwrap();
/// assert_eq!(ExitStatus::from(std_status), killed);
/// assert!(std::process::ExitStatus::try_from(ExitStatus::Unknown).is_err());
/// ```
impl TryFrom<ExitStatus> for std::process::ExitStatus {
    type Error = StatusUnknown;

    fn try_from(status: ExitStatus) -> Result<std::process::ExitStatus, StatusUnknown> {
        use std::os::unix::process::ExitStatusExt;
        let raw = match status {
            ExitStatus::Exited(code) => (code & 0xff) << 8,
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => signal.as_raw() | if core_dumped { 0x80 } else { 0 },
            ExitStatus::Unknown => return Err(StatusUnknown),
        };
        Ok(std::process::ExitStatus::from_raw(raw))
    }
}

/// [`ExitStatus::Unknown`] converted to [`std::process::ExitStatus`], which
/// has no value for a status that was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the exit status is unknown (the child was reaped elsewhere): std has no equivalent")]
pub struct StatusUnknown;

/// What a child used, from the kernel's accounting at reap time
/// (`waitid(2)`'s `rusage` argument).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceUsage {
    /// CPU time in user mode.
    pub user_time: Duration,
    /// CPU time in the kernel.
    pub system_time: Duration,
    /// Peak resident set size, in KiB.
    pub max_rss_kib: u64,
}

/// A reaped child.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Which child.
    pub id: ChildId,
    /// Its pid (no longer valid: it may already belong to another process).
    pub pid: u32,
    /// How it ended.
    pub status: ExitStatus,
    /// When the supervisor observed the exit (just after the reap).
    pub observed_at: Instant,
    /// Its resource usage (the child itself, and the descendants it
    /// waited for, as `waitid(2)` reports it).
    pub usage: ResourceUsage,
    /// What its whole tree used, for a child spawned with
    /// [`Containment::Cgroup`](crate::Containment::Cgroup), read from its
    /// cgroup just before the cgroup was removed; `None` otherwise.
    pub tree: Option<TreeUsage>,
}

/// What a contained tree used over its life, from its cgroup: `cpu.stat`,
/// and `memory.peak` where the memory controller is enabled for it.
/// [cgroup v2](https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeUsage {
    /// Total CPU time of every process that ran in the tree.
    pub cpu_time: Duration,
    /// Its user-mode part.
    pub user_time: Duration,
    /// Its kernel part.
    pub system_time: Duration,
    /// The highest memory use of the tree, in bytes, where the memory
    /// controller is enabled for its cgroup (Linux 5.19+).
    pub memory_peak: Option<u64>,
}
