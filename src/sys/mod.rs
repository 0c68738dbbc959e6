//! The system layer: every `unsafe` block of the crate lives below here
//! (the crate root denies `unsafe_code` everywhere else), each with a
//! `// SAFETY:` line; every function names the man page it follows.
//!
//! - [`raw`]: raw system calls by inline assembly, for the child between
//!   clone and exec.
//! - [`spawn`]: `clone(2)` with `CLONE_PIDFD`, vfork-class: the child's
//!   steps up to exec, and the parent's fallback ladder.
//! - [`pidfd`]: `pidfd_send_signal(2)` and the raw `waitid(2)`.
//! - [`signals`]: masks, the signalfd, the SIGCHLD disposition.
//! - [`stack`]: private stacks with a guard page for `CLONE_VM` children.
//! - [`fd`]: eventfds, timerfds, pipes, and the high floor for long-lived fds.
//! - [`clone3`]: `clone3(2)` with an assembly trampoline, for
//!   `CLONE_INTO_CGROUP` (not used by the spawn path yet).
//! - [`cgroup`]: cgroup v2 leaf cgroups, `cgroup.kill`, `populated`, usage.
//! - [`sentinel`]: the process that kills a cgroup subtree once the
//!   supervisor is gone.
//! - [`terminal`]: the controlling terminal's foreground process group.
//! - `tokio` (feature `tokio`): registering a `Reaper` or a `PidFd` in
//!   tokio's reactor.

pub(crate) mod cgroup;
pub(crate) mod clone3;
pub(crate) mod fd;
pub(crate) mod pidfd;
pub(crate) mod raw;
pub(crate) mod sentinel;
pub(crate) mod signals;
pub(crate) mod spawn;
pub(crate) mod stack;
pub(crate) mod terminal;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;

/// Under `reaper_isolated --sandbox` (the test suite run under a seccomp
/// filter that refuses `clone3` and `pidfd_open`, as a locked-down
/// container does), unit tests that call those directly skip, saying so:
/// the fallbacks pidreap takes there are what that run tests.
#[cfg(test)]
pub(crate) fn sandbox_skip(test: &str) -> bool {
    if std::env::var_os("PIDREAP_TEST_SANDBOX").is_some() {
        eprintln!("SKIPPED {test}: it calls clone3 or pidfd_open itself, which the run's seccomp sandbox refuses");
        return true;
    }
    false
}
