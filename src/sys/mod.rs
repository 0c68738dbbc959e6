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
