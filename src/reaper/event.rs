//! What the reaper hands out: [`Event`]s, spawned [`Child`]ren and
//! [`Shutdown`] reports.

use std::io::{PipeReader, PipeWriter};

use crate::engine::ChildId;
use crate::signal::Signal;
use crate::status::{Exit, ExitStatus};

/// Something the reaper observed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A supervised child was reaped.
    Exited(Exit),
    /// A child was sent SIGKILL and is still there after its ladder's kill
    /// timeout (uninterruptible sleep). It stays supervised: if it ever
    /// exits, an [`Event::Exited`] follows.
    Stuck {
        /// Which child.
        id: ChildId,
        /// Its pid.
        pid: u32,
    },
    /// A signal arrived on the reaper's signalfd (see
    /// [`ReaperBuilder::handle_signals`](crate::ReaperBuilder::handle_signals)).
    Signal {
        /// The signal.
        signal: Signal,
        /// The sender's pid (0 for the kernel).
        sender_pid: i32,
    },
    /// The cgroup sentinel, the process that kills every
    /// [`Containment::Cgroup`](crate::Containment::Cgroup) tree of this
    /// reaper if the reaper's process dies, has itself ended (someone
    /// killed it). Graceful stops still reach the trees, but they would now
    /// outlive a SIGKILL of this process.
    ContainmentLost {
        /// The sentinel's pid.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
    },
    /// An orphan that was reparented to this process (as PID 1 or a child
    /// subreaper) exited and was reaped (see
    /// [`ReaperBuilder::reap_orphans`](crate::ReaperBuilder::reap_orphans)).
    OrphanReaped {
        /// Its pid.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
    },
}

/// A spawned child: its id, its pid, and the supervisor's ends of any
/// piped stdio. The reaper keeps the pidfd; stop or signal the child
/// through the [`Reaper`](crate::Reaper) or a
/// [`CancelToken`](crate::CancelToken).
#[derive(Debug)]
pub struct Child {
    pub(super) id: ChildId,
    pub(super) pid: u32,
    /// The write end of the child's stdin, with [`Stdio::piped`](crate::Stdio::piped).
    pub stdin: Option<PipeWriter>,
    /// The read end of the child's stdout, with [`Stdio::piped`](crate::Stdio::piped).
    pub stdout: Option<PipeReader>,
    /// The read end of the child's stderr, with [`Stdio::piped`](crate::Stdio::piped).
    pub stderr: Option<PipeReader>,
}

impl Child {
    /// The child's id in its reaper.
    pub fn id(&self) -> ChildId {
        self.id
    }

    /// The child's pid. Valid until the child is reaped; use the reaper to
    /// signal it, never the pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// What a shutdown did.
#[derive(Debug, Default)]
pub struct Shutdown {
    /// The children reaped during the shutdown (and any exits not yet
    /// handed out before it).
    pub exited: Vec<Exit>,
    /// Children still there after SIGKILL and the kill timeout.
    pub stuck: Vec<ChildId>,
}
