//! Spawning a child, in one place.
//!
//! A spawn goes through three steps, each in its own file:
//!
//! 1. [`plan`]: the [`Command`] becomes a [`SpawnRequest`]: argv,
//!    environment and the `PATH` candidates as C strings, stdio as fd
//!    numbers (pipes and `/dev/null` opened here), all before the clone,
//!    since the child may not allocate.
//! 2. [`crate::sys::spawn`]: the clone and the child's side up to exec
//!    (`sys/spawn/child.rs`, a list of named steps), and the parent's
//!    fallback ladder when the kernel refuses a flag
//!    (`sys/spawn/parent.rs`).
//! 3. [`spawn`] (here): the child's ends of its stdio are closed, the pidfd
//!    is moved to a high fd number, and a failure becomes an [`Error`]
//!    naming the program and what failed.
//!
//! A spawn that fails leaves nothing behind: a child that was created and
//! failed before exec has been reaped by the sys layer, and every fd of the
//! attempt is closed.
//!
//! [`SpawnRequest`]: crate::sys::spawn::SpawnRequest

pub(crate) mod plan;

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::command::Command;
use crate::error::{Error, Result};
use crate::sys::fd;
use crate::sys::spawn::{SpawnError, Spawner, Stage};

/// A child that exec'd, with the parent's ends of its stdio pipes.
#[derive(Debug)]
pub(crate) struct Started {
    /// The child's pidfd, at or above the floor given to [`spawn`].
    pub(crate) pidfd: OwnedFd,
    pub(crate) pid: i32,
    pub(crate) stdio: [Option<OwnedFd>; 3],
}

/// Spawns `cmd` with `spawner`; returns once the child has exec'd.
///
/// `fd_floor` is where long-lived fds are kept (see
/// [`fd::high_floor`]): the pidfd is moved there, so that the next
/// child's fd-table copy stays small however many children are alive.
/// `cgroup`, a cgroup v2 directory, is where the child is born.
pub(crate) fn spawn(
    spawner: &mut Spawner,
    cmd: &Command,
    fd_floor: i32,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<Started> {
    let mut plan = plan::plan(cmd, fd::original_nofile())?;
    plan.request.cgroup = cgroup.map(|fd| fd.as_raw_fd());
    let spawned = spawner
        .spawn(&plan.request)
        .map_err(|e| spawn_error(e, cmd))?;
    drop(plan.child_ends);
    Ok(Started {
        pidfd: fd::move_high(spawned.pidfd, fd_floor),
        pid: spawned.pid,
        stdio: plan.parent_ends,
    })
}

/// Turns the sys layer's error into the crate's, naming the program.
fn spawn_error(e: SpawnError, cmd: &Command) -> Error {
    let program = cmd.get_program().to_owned();
    match e {
        SpawnError::Os { op, source } => Error::Os { op, source },
        SpawnError::Unsupported { what, source } => Error::Unsupported { what, source },
        SpawnError::Child {
            stage: Stage::Exec,
            source,
        } => Error::Exec { program, source },
        SpawnError::Child {
            stage: Stage::Chdir,
            source,
        } => Error::Chdir {
            program,
            dir: cmd.get_current_dir().map(Into::into).unwrap_or_default(),
            source,
        },
        SpawnError::Child { stage, source } => Error::ChildSetup {
            program,
            step: stage.describe(),
            source,
        },
    }
}
