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
