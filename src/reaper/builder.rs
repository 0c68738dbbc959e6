//! [`ReaperBuilder`]: the options of a [`Reaper`].

use crate::engine::StopLadder;
use crate::error::Result;
use crate::reaper::Reaper;
use crate::signal::Signal;

/// Options for a [`Reaper`].
#[derive(Debug, Clone, Default)]
pub struct ReaperBuilder {
    pub(super) ladder: Option<StopLadder>,
    pub(super) signals: Vec<Signal>,
    pub(super) reap_orphans: bool,
    pub(super) subreaper: bool,
}

impl ReaperBuilder {
    /// The ladder for children whose [`Command`](crate::Command) sets none. Default:
    /// [`StopLadder::default`] (SIGTERM, 10 s, SIGKILL).
    pub fn stop_ladder(mut self, ladder: StopLadder) -> ReaperBuilder {
        self.ladder = Some(ladder);
        self
    }

    /// Reads these signals from a signalfd and reports them as
    /// [`Event::Signal`](crate::Event::Signal). They are blocked in the
    /// calling thread (see [`block_signals`](crate::block_signals): block
    /// them at the top of `main` as well, before threads exist, or other
    /// threads may receive them).
    pub fn handle_signals(mut self, signals: &[Signal]) -> ReaperBuilder {
        self.signals = signals.to_vec();
        self
    }

    /// Reaps every child of this process that the reaper does not
    /// supervise, when it exits: the duty of PID 1 and of a child subreaper,
    /// to which orphaned descendants are reparented
    /// ([PR_SET_CHILD_SUBREAPER](https://man7.org/linux/man-pages/man2/PR_SET_CHILD_SUBREAPER.2const.html)).
    /// Watches SIGCHLD on the signalfd, so SIGCHLD is blocked like
    /// [`handle_signals`](ReaperBuilder::handle_signals)' signals.
    /// Supervised children are never reaped by this path's `waitid(P_ALL)`:
    /// it peeks with `WNOWAIT` first.
    ///
    /// # Warning: it takes every other child of the process
    ///
    /// Every child of this process that this reaper does not supervise is
    /// taken as an orphan: a child that other code in the process spawned
    /// (a second `Reaper`, [`pidreap::spawn`](crate::spawn()),
    /// `std::process::Command`, `tokio::process`) is reaped here when it
    /// exits, and its owner then finds its status gone
    /// ([`ExitStatus::Unknown`](crate::ExitStatus::Unknown) from pidreap,
    /// `ECHILD` from std and tokio). Turn this on only in a process where
    /// this reaper spawns every child: PID 1 of a container, a subreaper
    /// that runs nothing else.
    pub fn reap_orphans(mut self, on: bool) -> ReaperBuilder {
        self.reap_orphans = on;
        self
    }

    /// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`):
    /// orphaned descendants are reparented to it instead of to PID 1. Use
    /// with [`reap_orphans`](ReaperBuilder::reap_orphans).
    pub fn subreaper(mut self, on: bool) -> ReaperBuilder {
        self.subreaper = on;
        self
    }

    /// Builds the reaper on the calling thread, which it can never leave.
    pub fn build(self) -> Result<Reaper> {
        Reaper::with_options(self)
    }
}
