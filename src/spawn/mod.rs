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
//! 3. [`start`] (here): the child's ends of its stdio are closed, the pidfd
//!    is moved to a high fd number, and a failure becomes an [`Error`]
//!    naming the program and what failed.
//!
//! A spawn that fails leaves nothing behind: a child that was created and
//! failed before exec has been reaped by the sys layer, and every fd of the
//! attempt is closed.
//!
//! Two callers share that one path: [`Reaper::spawn`](crate::Reaper::spawn)
//! and the public primitive [`spawn()`], for runtimes that bring their own
//! event loop.
//!
//! [`SpawnRequest`]: crate::sys::spawn::SpawnRequest

pub(crate) mod plan;

use std::cell::RefCell;
use std::io::{PipeReader, PipeWriter};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::command::{Command, Containment};
use crate::error::{Error, Result};
use crate::pidfd::PidFd;
use crate::sys::fd;
use crate::sys::pidfd::{kill_and_reap, ChildHandle, KILLED_REAP_BOUND};
use crate::sys::signals;
use crate::sys::spawn::{SpawnError, Spawner, Stage};

/// A child started by [`spawn()`]: its pidfd, its pid and the parent's ends
/// of its stdio pipes.
#[derive(Debug)]
pub struct Spawned {
    /// The child's pidfd: register it in your reactor, reap through it.
    /// Dropping it kills and reaps a child that is still unreaped (see
    /// [`PidFd`]).
    pub pidfd: PidFd,
    /// The write end of the child's stdin, with [`Stdio::piped`](crate::Stdio::piped).
    pub stdin: Option<PipeWriter>,
    /// The read end of the child's stdout, with [`Stdio::piped`](crate::Stdio::piped).
    pub stdout: Option<PipeReader>,
    /// The read end of the child's stderr, with [`Stdio::piped`](crate::Stdio::piped).
    pub stderr: Option<PipeReader>,
}

impl Spawned {
    /// The child's pid (see [`PidFd::pid`]).
    pub fn pid(&self) -> u32 {
        self.pidfd.pid()
    }
}

thread_local! {
    /// Each thread's spawner (the stack its vfork children run on), made on
    /// its first [`spawn()`].
    static SPAWNER: RefCell<Option<Spawner>> = const { RefCell::new(None) };
}

/// Spawns `cmd` and hands the child over as a [`PidFd`], with no
/// [`Reaper`](crate::Reaper): the primitive for runtimes that bring their
/// own event loop. This is the spawn path the `Reaper` uses: vfork-class,
/// with the pidfd from the first instant (`CLONE_PIDFD`), the parent-death
/// signal set and the parent-died check done before exec, and an exec
/// failure reported here rather than later.
///
/// Returns once the child has called `execve` successfully. On error
/// nothing is left behind: a child that was created but failed before exec
/// has been reaped, and no fd of the attempt stays open.
///
/// What only a `Reaper` does is not done here: no stop ladder runs (the
/// command's [`stop_ladder`](Command::stop_ladder) and
/// [`group`](Command::group) are ignored), and a child with
/// [`Containment::Cgroup`] is refused with
/// [`Error::ContainmentUnavailable`] (the cgroup, its sentinel and its
/// removal belong to a `Reaper`). [`Containment::PidNamespace`] works.
///
/// The first call on a thread makes that thread's spawner, which keeps a
/// stack mapping and six fds for the thread's life (the low fd slots a
/// [`Reaper`](crate::Reaper) keeps too: see its "File descriptors").
///
/// # The parent-death signal is per thread
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits,
/// not when the process does
/// ([PR_SET_PDEATHSIG](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html)).
/// A child spawned from a worker thread of a pool is killed when that
/// worker exits, which pools do when idle. Call `spawn` from a thread that
/// lives as long as the children should: the process's main thread, or one
/// dedicated spawning thread that the others send their commands to. The
/// returned [`PidFd`] itself may move to any thread.
///
/// # Example
///
/// ```
/// use pidreap::{Command, ExitStatus};
/// # if std::env::var("PIDREAP_TEST_SPAWN_MODE").as_deref() == Ok("no-pidfd")
/// #     || std::env::var("PIDREAP_TEST_SANDBOX").as_deref() == Ok("no-pidfd")
/// # {
/// #     return Ok(()); // no PidFd without pidfds (pidreap's own test runs)
/// # }
///
/// let mut child = pidreap::spawn(Command::new("sh").args(["-c", "exit 3"]))?;
/// // Register `child.pidfd` in a reactor; it is readable once the child
/// // exited. Here, just block:
/// assert_eq!(child.pidfd.wait()?.status, ExitStatus::Exited(3));
/// # Ok::<(), pidreap::Error>(())
/// ```
pub fn spawn(cmd: &Command) -> Result<Spawned> {
    if cmd.get_containment() == Containment::Cgroup {
        return Err(Error::ContainmentUnavailable {
            mechanism: Containment::Cgroup.name(),
            reason: "only a Reaper contains children in cgroups; pidreap::spawn cannot".into(),
        });
    }
    if signals::children_auto_reaped() {
        return Err(Error::ChildrenAutoReaped);
    }
    if crate::sys::spawn::no_pidfd() {
        return Err(no_pidfd_error());
    }
    let started = SPAWNER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Spawner::new().map_err(|source| Error::Os {
                op: "mapping the spawn stack",
                source,
            })?);
        }
        let spawner = slot.as_mut().expect("just made");
        start(spawner, cmd, fd::high_floor(), None)
    })?;
    let [stdin, stdout, stderr] = started.stdio;
    let Some(pidfd) = started.child.pidfd else {
        // The kernel refused every pidfd at this very spawn.
        kill_and_reap(started.child, false, KILLED_REAP_BOUND);
        return Err(no_pidfd_error());
    };
    Ok(Spawned {
        pidfd: PidFd::new(pidfd, started.child.pid),
        stdin: stdin.map(PipeWriter::from),
        stdout: stdout.map(PipeReader::from),
        stderr: stderr.map(PipeReader::from),
    })
}

/// What [`spawn()`] returns where the kernel gives no pidfd.
fn no_pidfd_error() -> Error {
    Error::Unsupported {
        what: "a pidfd for the child, which pidreap::spawn hands out (the kernel or a seccomp filter refuses CLONE_PIDFD and pidfd_open; a Reaper works without one)",
        source: std::io::Error::from_raw_os_error(libc::ENOSYS),
    }
}

/// A child that exec'd, with the parent's ends of its stdio pipes.
#[derive(Debug)]
pub(crate) struct Started {
    /// The child: its pidfd at or above the floor given to [`start`], or
    /// its pid alone in no-pidfd mode.
    pub(crate) child: ChildHandle,
    pub(crate) stdio: [Option<OwnedFd>; 3],
}

/// Spawns `cmd` with `spawner`; returns once the child has exec'd. The one
/// spawn path, under [`spawn()`] and [`Reaper::spawn`](crate::Reaper::spawn).
///
/// `fd_floor` is where long-lived fds are kept (see
/// [`fd::high_floor`]): the pidfd is moved there, so that the next
/// child's fd-table copy stays small however many children are alive.
/// `cgroup`, a cgroup v2 directory, is where the child is born.
pub(crate) fn start(
    spawner: &mut Spawner,
    cmd: &Command,
    fd_floor: i32,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<Started> {
    crate::containment::check_spawnable(cmd.get_containment())?;
    let mut plan = plan::plan(cmd, fd::original_nofile())?;
    plan.request.cgroup = cgroup.map(|fd| fd.as_raw_fd());
    let spawned = spawner
        .spawn(&plan.request)
        .map_err(|e| spawn_error(e, cmd))?;
    drop(plan.child_ends);
    let mut child = spawned.child;
    child.pidfd = child.pidfd.map(|fd| fd::move_high(fd, fd_floor));
    Ok(Started {
        child,
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
