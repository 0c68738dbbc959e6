//! The system layer: every `unsafe` block of the crate lives below here, each
//! with the man page it follows and a `// SAFETY:` line.
//!
//! - [`raw`]: raw system calls by inline assembly, for the child between
//!   clone and exec.
//! - [`spawn`]: `clone(2)` with `CLONE_PIDFD`, vfork-class, and the child's
//!   setup.
//! - [`pidfd`]: `pidfd_send_signal(2)` and the raw `waitid(2)`.
//! - [`signals`]: masks, the signalfd, the SIGCHLD disposition.
//! - [`fd`]: eventfds, timerfds, pipes, and the high floor for long-lived fds.
//! - [`cgroup`]: cgroup v2 leaf cgroups, `cgroup.kill`, `populated`, usage.
//! - [`sentinel`]: the process that kills a cgroup subtree once the
//!   supervisor is gone.

pub(crate) mod cgroup;
pub(crate) mod fd;
pub(crate) mod pidfd;
pub(crate) mod raw;
pub(crate) mod sentinel;
pub(crate) mod signals;
pub(crate) mod spawn;
