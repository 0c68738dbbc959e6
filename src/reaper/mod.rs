//! The [`Reaper`]: one `mio` poll loop that spawns, signals and reaps.
//!
//! - `mod.rs` (here): the loop, and what callers ask of it;
//! - [`builder`]: its options;
//! - [`event`]: what it hands out;
//! - [`cancel`]: cancel tokens and their eventfds;
//! - [`orphans`]: PID-1 and subreaper duty.

mod builder;
mod cancel;
mod event;
mod orphans;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::io::{PipeReader, PipeWriter};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustix::event::epoll;

pub use builder::ReaperBuilder;
pub use cancel::CancelToken;
pub use event::{Child, Event, Shutdown};

use crate::command::{Command, Containment};
use crate::containment::{CgroupHome, Tree};
use crate::engine::{Action, ChildId, Engine, GroupId, Phase, StopLadder};
use crate::error::{Error, Result};
use crate::setup::block_signals;
use crate::signal::Signal;
use crate::status::{Exit, ExitStatus, ResourceUsage};
use crate::sys::fd::{self, TimerFd};
use crate::sys::pidfd::{self, ChildHandle, Reaped};
use crate::sys::signals::{self, KernelSigset, SignalFd};
use crate::sys::spawn::{self, Spawner};
use cancel::{Cancels, Target};

/// The child itself, as opposed to the rest of its tree or group.
#[derive(Debug)]
enum Leader {
    /// Not reaped yet: its pidfd, registered in the poll; or, in no-pidfd
    /// mode, its pid alone, checked at each SIGCHLD.
    Unreaped(ChildHandle),
    /// Reaped while its tree (cgroup) or process group still had members:
    /// how it ended, reported once they are gone. Its pidfd was closed,
    /// which took it out of the poll.
    Reaped(ExitStatus, ResourceUsage),
}

/// What the reaper keeps per child, beside the engine's ladder state.
#[derive(Debug)]
struct Supervised {
    leader: Leader,
    pid: i32,
    /// The child leads its process group: signals go to the group.
    signal_group: bool,
    /// The slot of its cancel token, once one was asked for.
    cancel: Option<usize>,
    /// Its cgroup, under [`Containment::Cgroup`](crate::Containment::Cgroup).
    tree: Option<Tree>,
    /// Its pidfd was readable but the child could not be reaped yet (a
    /// tracer holds its exit): the pidfd is watched edge-triggered from then
    /// on, see [`rewatch_pidfd_edge`].
    edge_watch: bool,
}

impl Supervised {
    /// Sends `signal` to the child only (to its group if it leads one);
    /// `Ok(false)` if it has already exited. For forwarding.
    fn send(&self, signal: Signal) -> io::Result<bool> {
        match &self.leader {
            Leader::Unreaped(child) => child.send_signal(signal, self.signal_group),
            // Reaped: a group is reached through its number while it has
            // members.
            Leader::Reaped(..) if self.signal_group && self.tree.is_none() => {
                pidfd::kill_group(self.pid, signal)
            }
            Leader::Reaped(..) => Ok(false),
        }
    }

    /// How the child itself ended, once it was reaped.
    fn reaped(&self) -> Option<(ExitStatus, ResourceUsage)> {
        match self.leader {
            Leader::Reaped(status, usage) => Some((status, usage)),
            Leader::Unreaped(_) => None,
        }
    }

    /// Sends a signal of the stop ladder: to the whole tree under cgroup
    /// containment (SIGKILL through `cgroup.kill`), else as [`send`](Self::send).
    fn send_ladder(&self, signal: Signal) -> io::Result<bool> {
        match &self.tree {
            Some(tree) => tree.send(signal),
            None => self.send(signal),
        }
    }
}

const KIND_BITS: usize = 3;
const KIND_PIDFD: usize = 0;
const KIND_CANCEL: usize = 1;
const KIND_TIMER: usize = 2;
const KIND_SIGNAL: usize = 3;
/// A child's `cgroup.events`.
const KIND_TREE: usize = 4;
/// The cgroup sentinel's pidfd.
const KIND_SENTINEL: usize = 5;

/// At most this many signals are read from the signalfd per
/// [`Reaper::poll`], so that a storm of signals arriving faster than they
/// are handled cannot keep the loop from a child's exit; the rest are read
/// by the next poll, which then does not wait.
const SIGNALS_PER_POLL: usize = 256;

/// How often a process group whose leader was reaped is checked for
/// members: the kernel has no notification for an empty group.
const GROUP_CHECK: Duration = Duration::from_millis(10);

/// In no-pidfd mode, how often the children known by pid alone are also
/// checked without a SIGCHLD: a thread that does not block SIGCHLD takes
/// it, and the signalfd never sees it
/// ([signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html)).
const PID_RESCAN: Duration = Duration::from_millis(20);

fn token(kind: usize, index: usize) -> Token {
    Token((index << KIND_BITS) | kind)
}

/// The kind of fd a token (as `usize`) was made for.
fn kind_of(token: usize) -> usize {
    token & ((1 << KIND_BITS) - 1)
}

/// Adds `fd` to the poll under `token`.
fn watch(
    registry: &mio::Registry,
    fd: BorrowedFd<'_>,
    token: Token,
    interest: Interest,
) -> io::Result<()> {
    registry.register(&mut SourceFd(&fd.as_raw_fd()), token, interest)
}

/// Adds a child's pidfd to the poll, one-shot
/// ([epoll_ctl(2)](https://man7.org/linux/man-pages/man2/epoll_ctl.2.html),
/// `EPOLLONESHOT`).
///
/// A pidfd turns readable (`EPOLLIN`) when its child exits, and its pollers
/// are woken again with a hang-up (`EPOLLHUP`) when the child is reaped
/// ([pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html);
/// Linux 6.18 reports `EPOLLIN | EPOLLHUP` then). Watched one-shot, the first
/// wake-up is the only one the poll sees: the reaped child's pidfd can stay
/// open until its exit has been handed out (see [`Reaper::close_reaped`])
/// without making the reaper's fd readable again, here or in a loop it is
/// nested in.
fn watch_pidfd(registry: &mio::Registry, pidfd: BorrowedFd<'_>, token: Token) -> io::Result<()> {
    epoll::add(
        registry.as_fd(),
        pidfd,
        epoll::EventData::new_u64(token.0 as u64),
        epoll::EventFlags::IN | epoll::EventFlags::ONESHOT,
    )?;
    Ok(())
}

/// Watches a pidfd edge-triggered instead of one-shot: it was readable, but
/// `waitid` found nothing to reap. That happens while another process
/// traces the child: its exit goes to the tracer first, and the parent is
/// woken again once the tracer lets go
/// ([ptrace(2)](https://man7.org/linux/man-pages/man2/ptrace.2.html)). The
/// change reports the pidfd once more at once (it is still readable), then
/// only on new wake-ups, so a child held by a tracer costs no busy loop.
fn rewatch_pidfd_edge(
    registry: &mio::Registry,
    pidfd: BorrowedFd<'_>,
    token: Token,
) -> io::Result<()> {
    epoll::modify(
        registry.as_fd(),
        pidfd,
        epoll::EventData::new_u64(token.0 as u64),
        epoll::EventFlags::IN | epoll::EventFlags::ET,
    )?;
    Ok(())
}

/// How long dropping a reaper waits for SIGKILLed children to be reaped.
const DROP_REAP_BOUND: Duration = Duration::from_secs(1);

/// Supervises children from one thread with one `mio` poll.
///
/// It spawns children ([`spawn`](Reaper::spawn)) with a pidfd and a
/// parent-death signal, watches their pidfds, runs their stop ladders on
/// deadlines, and reports their exits as [`Event`]s. Nothing in it ever
/// blocks except [`poll`](Reaper::poll) and the `wait*` methods, which
/// wait in `epoll_wait`, with no timeout when no deadline is pending.
///
/// # One thread
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits,
/// not the process ([PR_SET_PDEATHSIG](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html)). A `Reaper` therefore cannot be
/// sent to another thread: it spawns, and lives and dies, on the thread that
/// made it, so children die with their supervisor and not with some pool
/// thread. This does not compile:
///
/// ```compile_fail
/// let reaper = pidreap::Reaper::new().unwrap();
/// std::thread::spawn(move || drop(reaper));
/// ```
///
/// Other threads stop children through [`CancelToken`]s.
///
/// # Nesting
///
/// The reaper's fd ([`AsRawFd`]) is readable whenever [`poll`](Reaper::poll)
/// has work: a child exited, a token was cancelled, a ladder deadline is due
/// (an internal timerfd), or a signal arrived. Register it in another event
/// loop and call `poll(Some(Duration::ZERO))` when it is readable.
///
/// # File descriptors
///
/// Besides its epoll, timerfd and (optional) signalfd, a reaper holds six
/// fds for spawning: five placeholders on the lowest numbers free when it
/// is made, onto which each spawn puts the child's stdio sources (so that
/// the child's fd-table copy stays a handful of slots however many fds the
/// program opens later), and the placeholder's original. Its children's
/// pidfds and cancel eventfds live high (from half the soft
/// `RLIMIT_NOFILE`, at most 1024), out of the way of the program's own.
///
/// A child's pidfd is not closed in the [`poll`](Reaper::poll) that reaps
/// it: closing a pidfd registered in epoll costs a few microseconds (the
/// epoll removal and the pidfd's release), which would sit between the
/// exit and its report. It is closed later, at the first of: when
/// [`next_event`](Reaper::next_event) finds the queue empty, the next
/// [`poll`](Reaper::poll) or [`spawn`](Reaper::spawn), the return of
/// [`wait`](Reaper::wait), [`wait_event`](Reaper::wait_event),
/// [`try_wait`](Reaper::try_wait) or [`shutdown`](Reaper::shutdown), the
/// reaper's drop. So a program that takes events
/// until `next_event` says `None` holds no fd for a child it was told of,
/// and the number of fds never exceeds what the children held while they
/// ran.
///
/// # Dropping
///
/// Dropping the reaper SIGKILLs every child it still supervises and reaps
/// them, waiting at most one second for children that are slow to die.
#[derive(Debug)]
pub struct Reaper {
    poll: Poll,
    events: Events,
    /// The last `epoll_wait` filled `events`: more may be ready.
    events_full: bool,
    /// The signalfd was left with signals unread ([`SIGNALS_PER_POLL`]).
    signals_left: bool,
    ready: Vec<usize>,
    engine: Engine<Supervised>,
    spawner: Spawner,
    timer: TimerFd,
    timer_armed: Option<Instant>,
    signalfd: Option<SignalFd>,
    /// The signals `signalfd` reads.
    signal_set: KernelSigset,
    /// SIGCHLD was asked for with `handle_signals`: reported as an event.
    user_chld: bool,
    /// No-pidfd mode: the children known by pid alone (no pidfd), reaped
    /// with `waitid(P_PID, WNOHANG)` at each SIGCHLD.
    pid_only: HashMap<i32, ChildId>,
    /// Check `pid_only` at the next poll, without waiting (SIGCHLD was
    /// added to the signalfd after such a child was made).
    rescan: bool,
    cancels: Cancels,
    queue: VecDeque<Event>,
    default_ladder: Arc<StopLadder>,
    fd_floor: i32,
    reap_orphans: bool,
    by_pid: HashMap<i32, ChildId>,
    /// Children whose leader was reaped while their process group still had
    /// members: checked every [`GROUP_CHECK`] until it has none.
    group_watch: Vec<ChildId>,
    /// The cgroup of this reaper's cgroup-contained children, made with
    /// the first of them.
    cgroups: Option<CgroupHome>,
    /// Pidfds of children reaped and reported, not closed yet: see
    /// [`Reaper::close_reaped`].
    reaped_fds: Vec<OwnedFd>,
    _not_send: PhantomData<*const ()>,
}

impl Reaper {
    /// A reaper with default options: no signal handling, default ladder.
    pub fn new() -> Result<Reaper> {
        Reaper::builder().build()
    }

    /// Options for a reaper.
    pub fn builder() -> ReaperBuilder {
        ReaperBuilder::default()
    }

    fn with_options(opts: ReaperBuilder) -> Result<Reaper> {
        if signals::children_auto_reaped() {
            return Err(Error::ChildrenAutoReaped);
        }
        let os = |op: &'static str| move |source: io::Error| Error::Os { op, source };
        let poll = Poll::new().map_err(os("creating the epoll instance"))?;
        let timer = TimerFd::new().map_err(os("creating the timerfd"))?;
        let spawner = Spawner::new().map_err(os("mapping the spawn stack"))?;
        watch(
            poll.registry(),
            timer.as_fd(),
            token(KIND_TIMER, 0),
            Interest::READABLE,
        )
        .map_err(os("registering the timerfd"))?;

        let mut wanted = opts.signals.clone();
        let user_chld = wanted.contains(&Signal::CHLD);
        // In no-pidfd mode, exits are learnt through SIGCHLD.
        if (opts.reap_orphans || spawn::no_pidfd()) && !user_chld {
            wanted.push(Signal::CHLD);
        }
        let (signalfd, signal_set) = if wanted.is_empty() {
            (None, 0)
        } else {
            block_signals(&wanted)?;
            let set = signals::set_of(&wanted).map_err(|u| Error::SignalNotBlockable {
                signal: u.signal,
                reason: u.reason,
            })?;
            let sfd = SignalFd::new(set).map_err(os("creating the signalfd"))?;
            watch(
                poll.registry(),
                sfd.as_fd(),
                token(KIND_SIGNAL, 0),
                Interest::READABLE,
            )
            .map_err(os("registering the signalfd"))?;
            (Some(sfd), set)
        };
        if opts.subreaper {
            rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(|e| {
                Error::Os {
                    op: "becoming a child subreaper (prctl)",
                    source: e.into(),
                }
            })?;
        }
        let mut reaper = Reaper {
            poll,
            events: Events::with_capacity(1024),
            events_full: false,
            signals_left: false,
            ready: Vec::with_capacity(1024),
            engine: Engine::new(),
            spawner,
            timer,
            timer_armed: None,
            signalfd,
            signal_set,
            user_chld,
            pid_only: HashMap::new(),
            rescan: false,
            cancels: Cancels::default(),
            queue: VecDeque::new(),
            default_ladder: Arc::new(opts.ladder.unwrap_or_default()),
            fd_floor: fd::high_floor(),
            reap_orphans: opts.reap_orphans,
            by_pid: HashMap::new(),
            group_watch: Vec::new(),
            cgroups: None,
            reaped_fds: Vec::new(),
            _not_send: PhantomData,
        };
        if reaper.reap_orphans {
            // Orphans may have exited before the signalfd existed.
            reaper.reap_orphans_now(Instant::now());
        }
        Ok(reaper)
    }

    /// Spawns `cmd` under supervision.
    ///
    /// Returns once the child has called `execve` successfully (an exec
    /// failure is reported here, not later). The kernel finishes the exec,
    /// closing the close-on-exec fds and loading the program, a moment
    /// after: someone reading `/proc/<pid>/fd` at once may still see them.
    ///
    /// On error nothing is left behind: a child that was created but failed
    /// before exec has been reaped, and no fd of the attempt stays open.
    pub fn spawn(&mut self, cmd: &Command) -> Result<Child> {
        self.close_reaped();
        crate::containment::check_spawnable(cmd.get_containment())?;
        let tree = match cmd.get_containment() {
            Containment::Cgroup => Some(self.cgroup_home()?.leaf()?),
            _ => None,
        };
        let into = tree.as_ref().map(Tree::dir_fd);
        let started = match crate::spawn::start(&mut self.spawner, cmd, self.fd_floor, into) {
            Ok(s) => s,
            Err(e) => {
                // The failed child was reaped: the leaf is empty.
                if let Some(tree) = tree {
                    tree.remove();
                }
                return Err(e);
            }
        };
        let ladder = cmd
            .ladder_arc()
            .unwrap_or_else(|| self.default_ladder.clone());
        let pid = started.child.pid;
        let child = Supervised {
            leader: Leader::Unreaped(started.child),
            pid,
            signal_group: cmd.leads_group(),
            cancel: None,
            tree,
            edge_watch: false,
        };
        let id = self.engine.insert(child, ladder, cmd.group_id());
        let index = id.index() as usize;
        let registry = self.poll.registry();
        let child = self.engine.get(id).expect("inserted");
        let Leader::Unreaped(handle) = &child.leader else {
            unreachable!("a new child is unreaped")
        };
        let has_pidfd = handle.pidfd().is_some();
        let mut registered = match handle.pidfd() {
            Some(pidfd) => watch_pidfd(registry, pidfd, token(KIND_PIDFD, index))
                .map_err(|e| ("registering the pidfd with epoll", e)),
            // No pidfd: its exit comes with a SIGCHLD.
            None => Ok(()),
        };
        if let (Ok(()), Some(tree)) = (&registered, &child.tree) {
            registered = watch(
                registry,
                tree.events_fd(),
                token(KIND_TREE, index),
                Interest::PRIORITY,
            )
            .map_err(|e| ("registering cgroup.events with epoll", e));
        }
        if let (Ok(()), true) = (&registered, handle.pidfd().is_none()) {
            registered = self
                .watch_sigchld()
                .map_err(|e| ("adding SIGCHLD to the signalfd", e));
        }
        if let Err((op, source)) = registered {
            // Never leave it running unreaped: kill, reap within a bound
            // (a child that cannot die yet is reaped later), report.
            let child = self.engine.remove(id).expect("just inserted");
            let _ = child.send_ladder(Signal::KILL);
            if let Leader::Unreaped(handle) = child.leader {
                pidfd::kill_and_reap(handle, child.signal_group, pidfd::KILLED_REAP_BOUND);
            }
            // The leaf goes with the home (the sentinel removes what is left
            // when the reaper is dropped): the tree may still be dying.
            return Err(Error::Os { op, source });
        }
        if self.reap_orphans {
            self.by_pid.insert(pid, id);
        }
        if !has_pidfd {
            self.pid_only.insert(pid, id);
        }
        let [stdin, stdout, stderr] = started.stdio;
        log::debug!("spawned {:?} as pid {pid}", cmd.get_program());
        Ok(Child {
            id,
            pid: pid as u32,
            stdin: stdin.map(PipeWriter::from),
            stdout: stdout.map(PipeReader::from),
            stderr: stderr.map(PipeReader::from),
        })
    }

    /// A new group id: children spawned with [`Command::group`] join it.
    pub fn new_group(&mut self) -> GroupId {
        self.engine.new_group()
    }

    /// The number of supervised (unreaped) children.
    pub fn len(&self) -> usize {
        self.engine.len()
    }

    /// True when no child is supervised.
    pub fn is_empty(&self) -> bool {
        self.engine.is_empty()
    }

    /// The pid of a live child.
    pub fn pid(&self, id: ChildId) -> Option<u32> {
        self.engine.get(id).map(|s| s.pid as u32)
    }

    /// Where a live child is on its stop ladder.
    pub fn phase(&self, id: ChildId) -> Option<Phase> {
        self.engine.phase(id)
    }

    /// The ids of all supervised children.
    pub fn children(&self) -> impl Iterator<Item = ChildId> + '_ {
        self.engine.ids()
    }

    /// Starts the child's stop ladder now (its first signal and SIGCONT are
    /// sent before this returns). Returns false if the child is already
    /// stopping; errors if it is not supervised.
    pub fn stop(&mut self, id: ChildId) -> Result<bool> {
        if self.engine.get(id).is_none() {
            return Err(Error::NoSuchChild(id));
        }
        let started = self.engine.stop(id, Instant::now());
        self.after_change();
        Ok(started)
    }

    /// Starts the child's ladder (or shortens the one under way) so that
    /// SIGKILL comes no later than `within` from now.
    pub fn stop_within(&mut self, id: ChildId, within: Duration) -> Result<()> {
        if !self.engine.stop_within(id, Instant::now(), within) {
            return Err(Error::NoSuchChild(id));
        }
        self.after_change();
        Ok(())
    }

    /// Sends SIGKILL now, skipping the rest of the ladder.
    pub fn kill(&mut self, id: ChildId) -> Result<()> {
        if self.engine.get(id).is_none() {
            return Err(Error::NoSuchChild(id));
        }
        self.engine.kill(id, Instant::now());
        self.after_change();
        Ok(())
    }

    /// Starts the ladder of every child in `group`; returns how many.
    pub fn stop_group(&mut self, group: GroupId) -> usize {
        let n = self.engine.stop_group(group, Instant::now());
        self.after_change();
        n
    }

    /// Starts the ladder of every child; returns how many.
    pub fn stop_all(&mut self) -> usize {
        let n = self.engine.stop_all(Instant::now());
        self.after_change();
        n
    }

    /// Sends `signal` to a child through its pidfd (to its process group if
    /// it leads one), outside of any ladder: for forwarding signals.
    /// Returns false if the child has already exited (not yet reaped).
    pub fn signal(&mut self, id: ChildId, signal: Signal) -> Result<bool> {
        let child = self.engine.get(id).ok_or(Error::NoSuchChild(id))?;
        child.send(signal).map_err(|source| Error::SignalChild {
            pid: child.pid as u32,
            signal,
            tree: false,
            source,
        })
    }

    /// Sends `signal` to the child's whole contained tree, as its stop
    /// ladder does: every process of its cgroup under
    /// [`Containment::Cgroup`] (SIGKILL through `cgroup.kill`), its process
    /// group if it leads one, else the child alone (under
    /// [`Containment::PidNamespace`], the namespace's init, which decides
    /// for its namespace). Returns false if nothing was left to signal.
    pub fn signal_tree(&mut self, id: ChildId, signal: Signal) -> Result<bool> {
        let child = self.engine.get(id).ok_or(Error::NoSuchChild(id))?;
        child
            .send_ladder(signal)
            .map_err(|source| Error::SignalChild {
                pid: child.pid as u32,
                signal,
                tree: true,
                source,
            })
    }

    /// A token that starts this child's ladder from any thread. The same
    /// token (one eventfd) is returned for repeated calls.
    pub fn cancel_token(&mut self, id: ChildId) -> Result<CancelToken> {
        let child = self.engine.get(id).ok_or(Error::NoSuchChild(id))?;
        if let Some(token) = child.cancel.and_then(|slot| self.cancels.token(slot)) {
            return Ok(token);
        }
        let slot = self.cancels.create(
            self.poll.registry(),
            Target::Child(id),
            self.fd_floor,
            false,
        )?;
        self.engine.get_mut(id).expect("checked above").cancel = Some(slot);
        Ok(self.cancels.token(slot).expect("just created"))
    }

    /// A token that starts the ladder of every child in `group` (those
    /// alive when it is cancelled). It lives as long as the reaper.
    pub fn group_cancel_token(&mut self, group: GroupId) -> Result<CancelToken> {
        self.shared_token(Target::Group(group))
    }

    /// A token that starts the ladder of every child alive when it is
    /// cancelled. It lives as long as the reaper.
    pub fn cancel_all_token(&mut self) -> Result<CancelToken> {
        self.shared_token(Target::All)
    }

    fn shared_token(&mut self, target: Target) -> Result<CancelToken> {
        let slot = match self.cancels.shared(target) {
            Some(slot) => slot,
            None => self
                .cancels
                .create(self.poll.registry(), target, self.fd_floor, true)?,
        };
        Ok(self.cancels.token(slot).expect("registered token"))
    }

    /// Waits up to `timeout` (`None`: for ever) for something to happen,
    /// handles it, and returns how many events were queued. Events are
    /// taken with [`next_event`](Reaper::next_event). Returns `Ok(0)` when
    /// interrupted by a signal.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<usize> {
        self.close_reaped();
        let before = self.queue.len();
        self.arm_timer();
        pidfd::retry_reap_later();
        // Signals left unread last time, or pid-only children to check:
        // look, but do not wait.
        let timeout = if self.signals_left || self.rescan {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let signals_were_left = self.signals_left;
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Os {
                    op: "epoll_wait",
                    source,
                })
            }
        }
        let now = Instant::now();
        // Handling an event needs `&mut self`, so the tokens are copied out
        // of `events` first, into a buffer kept across calls.
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.events.iter().map(|ev| ev.token().0));
        self.events_full = ready.len() >= self.events.capacity();
        for &t in &ready {
            let (kind, index) = (kind_of(t), t >> KIND_BITS);
            match kind {
                KIND_PIDFD => {
                    if let Some(id) = self.engine_id_at(index) {
                        if !self.try_reap(id, now) {
                            self.watch_edge(id);
                        }
                    }
                }
                KIND_CANCEL => self.cancelled(index, now),
                KIND_TIMER => {
                    fd::drain_counter(self.timer.as_fd());
                    self.timer_armed = None;
                    if !self.pid_only.is_empty() {
                        self.rescan = true;
                    }
                }
                KIND_TREE => {
                    if let Some(id) = self.engine_id_at(index) {
                        self.tree_changed(id, now);
                    }
                }
                KIND_SENTINEL => {
                    if let Some(home) = &mut self.cgroups {
                        if let Some(status) = home.check_sentinel() {
                            self.queue.push_back(Event::ContainmentLost {
                                pid: home.sentinel_pid() as u32,
                                status,
                            });
                        }
                    }
                }
                _ => self.read_signals(now),
            }
        }
        // The signalfd is edge-triggered: what was left is read here.
        if signals_were_left && !ready.iter().any(|&t| kind_of(t) == KIND_SIGNAL) {
            self.read_signals(now);
        }
        self.ready = ready;
        if std::mem::take(&mut self.rescan) {
            self.reap_pid_only(now);
        }
        if !self.group_watch.is_empty() {
            self.check_groups(now);
        }
        self.engine.handle_timeout(now);
        self.after_change();
        Ok(self.queue.len() - before)
    }

    /// Takes the next queued event, without waiting. Once the queue is
    /// empty, the pidfds of the children whose exits were handed out are
    /// closed (see [File descriptors](Reaper#file-descriptors)).
    pub fn next_event(&mut self) -> Option<Event> {
        let ev = self.queue.pop_front();
        if ev.is_none() {
            self.close_reaped();
        }
        ev
    }

    /// Waits up to `timeout` (`None`: for ever) for the next event.
    /// `Ok(None)` when the time ran out.
    pub fn wait_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if let Some(ev) = self.queue.pop_front() {
                self.close_reaped();
                return Ok(Some(ev));
            }
            let Some(left) = time_left(deadline) else {
                return Ok(None);
            };
            self.poll(left)?;
        }
    }

    /// Waits up to `timeout` for child `id` to be reaped and returns its
    /// exit; other events stay queued. `Ok(None)` when the time ran out.
    pub fn wait(&mut self, id: ChildId, timeout: Option<Duration>) -> Result<Option<Exit>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let found = self
                .queue
                .iter()
                .position(|ev| matches!(ev, Event::Exited(e) if e.id == id));
            if let Some(pos) = found {
                match self.queue.remove(pos) {
                    Some(Event::Exited(exit)) => {
                        self.close_reaped();
                        return Ok(Some(exit));
                    }
                    _ => unreachable!("position() matched an Exited event"),
                }
            }
            if self.engine.get(id).is_none() {
                return Err(Error::NoSuchChild(id));
            }
            let Some(left) = time_left(deadline) else {
                return Ok(None);
            };
            self.poll(left)?;
        }
    }

    /// Whether child `id` has exited, without blocking: its exit if it has
    /// (reaped through the usual path, now if need be: its
    /// [`Event::Exited`] is taken from the queue and not handed out
    /// again), `Ok(None)` while it runs. Other events stay queued.
    /// `Err(NoSuchChild)` for an id that is not supervised, or whose exit
    /// was already handed out.
    pub fn try_wait(&mut self, id: ChildId) -> Result<Option<Exit>> {
        for first in [true, false] {
            let found = self
                .queue
                .iter()
                .position(|ev| matches!(ev, Event::Exited(e) if e.id == id));
            if let Some(pos) = found {
                if let Some(Event::Exited(exit)) = self.queue.remove(pos) {
                    self.close_reaped();
                    return Ok(Some(exit));
                }
            }
            if self.engine.get(id).is_none() {
                return Err(Error::NoSuchChild(id));
            }
            if first {
                self.poll(Some(Duration::ZERO))?;
            }
        }
        Ok(None)
    }

    /// Stops every child concurrently and returns when all are reaped:
    /// each gets its ladder's first signal (and SIGCONT) now and SIGKILL at
    /// `grace` at the latest. Bounded: it returns after `grace` plus the
    /// longest kill timeout at most, listing children still stuck.
    pub fn shutdown(&mut self, grace: Duration) -> Result<Shutdown> {
        let now = Instant::now();
        let ids: Vec<ChildId> = self.engine.ids().collect();
        let mut kill_timeout = Duration::ZERO;
        for &id in &ids {
            kill_timeout = kill_timeout.max(
                self.engine
                    .ladder(id)
                    .map_or(Duration::ZERO, StopLadder::get_kill_timeout),
            );
            self.engine.stop_within(id, now, grace);
        }
        self.after_change();
        // A bound too far to represent (e.g. `Duration::MAX`) means none.
        let deadline = now.checked_add(
            grace
                .saturating_add(kill_timeout)
                .saturating_add(Duration::from_millis(50)),
        );
        while self
            .engine
            .ids()
            .any(|id| self.engine.phase(id) != Some(Phase::Stuck))
        {
            let Some(left) = time_left(deadline) else {
                break;
            };
            self.poll(left)?;
        }
        let mut report = Shutdown::default();
        let mut rest = VecDeque::new();
        for ev in self.queue.drain(..) {
            match ev {
                Event::Exited(exit) => report.exited.push(exit),
                other => rest.push_back(other),
            }
        }
        self.queue = rest;
        report.stuck = self.engine.ids().collect();
        self.close_reaped();
        Ok(report)
    }

    fn engine_id_at(&self, index: usize) -> Option<ChildId> {
        self.engine.id_at(index as u32)
    }

    /// The pidfd of `id` was readable: reap if it really exited: readiness is
    /// not proof of exit on every path, so `waitid` runs with `WNOHANG`.
    /// False when the child is still there to be reaped.
    fn try_reap(&mut self, id: ChildId, now: Instant) -> bool {
        let Some(child) = self.engine.get(id) else {
            return true;
        };
        let Leader::Unreaped(handle) = &child.leader else {
            return true;
        };
        match handle.try_reap() {
            Ok(Reaped::NotYet) => return false,
            Ok(Reaped::Exited { status, usage, .. }) => self.leader_exited(id, status, usage, now),
            Ok(Reaped::Gone) => {
                log::warn!(
                    "child {id} (pid {}) was reaped by someone else: its status is lost",
                    child.pid
                );
                self.finish(id, ExitStatus::Unknown, ResourceUsage::default(), now)
            }
            Err(e) => {
                log::error!("waitid for child {id} (pid {}) failed: {e}", child.pid);
                return false;
            }
        }
        true
    }

    /// The pidfd of `id` was reported readable but the child could not be
    /// reaped: watch it edge-triggered from now on (see
    /// [`rewatch_pidfd_edge`]). Once per child: every change re-reports a
    /// readable pidfd.
    fn watch_edge(&mut self, id: ChildId) {
        let registry = self.poll.registry();
        let Some(child) = self.engine.get_mut(id) else {
            return;
        };
        let Leader::Unreaped(handle) = &child.leader else {
            return;
        };
        let Some(pidfd) = handle.pidfd() else {
            return;
        };
        if child.edge_watch {
            return;
        }
        match rewatch_pidfd_edge(registry, pidfd, token(KIND_PIDFD, id.index() as usize)) {
            Ok(()) => child.edge_watch = true,
            Err(e) => log::error!(
                "watching the pidfd of child {id} (pid {}) again failed: {e}",
                child.pid
            ),
        }
    }

    /// Closes the pidfds of the children whose exits were reported. See
    /// [File descriptors](Reaper#file-descriptors) for when.
    fn close_reaped(&mut self) {
        self.reaped_fds.clear();
    }

    /// The child itself was reaped. Its exit is reported now if nothing of
    /// its tree or group is left; else the rest gets the stop ladder (if no
    /// stop is under way yet) and the report waits until it is gone.
    fn leader_exited(
        &mut self,
        id: ChildId,
        status: ExitStatus,
        usage: ResourceUsage,
        now: Instant,
    ) {
        let Some(child) = self.engine.get_mut(id) else {
            return;
        };
        let remains = match &child.tree {
            Some(tree) => tree.populated(),
            None => child.signal_group && pidfd::group_has_members(child.pid),
        };
        if !remains {
            return self.finish(id, status, usage, now);
        }
        // Closing the pidfd takes it out of the poll.
        child.leader = Leader::Reaped(status, usage);
        // The pid may be reused from now on.
        if self.reap_orphans {
            self.by_pid.remove(&child.pid);
        }
        self.pid_only.remove(&child.pid);
        let what = if child.tree.is_some() {
            "cgroup"
        } else {
            "process group"
        };
        log::debug!(
            "child {id} (pid {}) exited ({status}); the rest of its {what} gets the stop ladder",
            child.pid
        );
        let pid = child.pid as u32;
        if child.tree.is_none() {
            self.group_watch.push(id);
        }
        self.queue
            .push_back(Event::LeaderExited { id, pid, status });
        if self.engine.phase(id) == Some(Phase::Running) {
            self.engine.stop(id, now);
        }
    }

    /// `cgroup.events` of `id` changed: finish once the leader was reaped
    /// and the tree is empty.
    fn tree_changed(&mut self, id: ChildId, now: Instant) {
        let Some(child) = self.engine.get(id) else {
            return;
        };
        let Some((status, usage)) = child.reaped() else {
            return;
        };
        if child.tree.as_ref().is_some_and(|t| !t.populated()) {
            self.finish(id, status, usage, now);
        }
    }

    /// Finishes the children whose reaped leader's process group has no
    /// member left.
    fn check_groups(&mut self, now: Instant) {
        let watched = std::mem::take(&mut self.group_watch);
        for id in watched {
            let Some(child) = self.engine.get(id) else {
                continue;
            };
            match child.reaped() {
                Some((status, usage)) if !pidfd::group_has_members(child.pid) => {
                    self.finish(id, status, usage, now)
                }
                _ => self.group_watch.push(id),
            }
        }
    }

    fn finish(&mut self, id: ChildId, status: ExitStatus, usage: ResourceUsage, now: Instant) {
        let Some(child) = self.engine.remove(id) else {
            return;
        };
        let tree = child.tree.as_ref().and_then(|t| {
            let usage = t.usage();
            t.remove();
            usage
        });
        if let Some(slot) = child.cancel {
            self.cancels.remove(self.poll.registry(), slot);
        }
        if child.reaped().is_none() {
            if self.reap_orphans {
                self.by_pid.remove(&child.pid);
            }
            self.pid_only.remove(&child.pid);
        }
        // The pidfd is closed once the exit has been handed out
        // (`close_reaped`): closing removes it from the epoll set (we hold
        // its only reference), which saves an epoll_ctl, but costs a few
        // microseconds that would sit between the exit and its report.
        // Watched one-shot, it stays quiet until then.
        if let Leader::Unreaped(handle) = child.leader {
            self.reaped_fds.extend(handle.pidfd);
        }
        log::debug!("reaped pid {}: {status}", child.pid);
        self.queue.push_back(Event::Exited(Exit {
            id,
            pid: child.pid as u32,
            status,
            observed_at: now,
            usage,
            tree,
        }));
    }

    fn cancelled(&mut self, slot: usize, now: Instant) {
        let Some(target) = self.cancels.take_fired(slot) else {
            return;
        };
        match target {
            Target::Child(id) => {
                self.engine.stop(id, now);
            }
            Target::Group(g) => {
                self.engine.stop_group(g, now);
            }
            Target::All => {
                self.engine.stop_all(now);
            }
        }
    }

    fn read_signals(&mut self, now: Instant) {
        let mut chld = false;
        self.signals_left = false;
        for read in 0.. {
            let Some(sfd) = &self.signalfd else { return };
            if read == SIGNALS_PER_POLL {
                self.signals_left = true;
                break;
            }
            match sfd.read() {
                Ok(Some((signal, sender_pid))) => {
                    if signal == Signal::CHLD {
                        chld = true;
                    }
                    if signal != Signal::CHLD || (self.user_chld && !self.reap_orphans) {
                        self.queue.push_back(Event::Signal { signal, sender_pid });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    log::error!("reading the signalfd failed: {e}");
                    break;
                }
            }
        }
        if chld {
            self.reap_pid_only(now);
            if self.reap_orphans {
                self.reap_orphans_now(now);
            }
        }
    }

    /// No-pidfd mode: SIGCHLD coalesces and says nothing of which child.
    /// First, `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)` peeks at an
    /// exited child without reaping it: while that is one of ours, it is
    /// reaped by pid and the next one peeked at; no exited child at all
    /// ends the work. Any other exited child (someone else's, or one with
    /// a pidfd) stops the peeking, and every child known by pid alone is
    /// then checked with `waitid(P_PID, pid, WEXITED | WNOHANG)`:
    /// O(children) per SIGCHLD. Nothing is ever reaped through `P_ALL`
    /// (that would steal other code's children), except by `reap_orphans`.
    /// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
    fn reap_pid_only(&mut self, now: Instant) {
        if self.pid_only.is_empty() {
            return;
        }
        loop {
            match pidfd::peek_any_exited() {
                Ok(None) => return,
                Ok(Some(pid)) => match self.pid_only.get(&pid) {
                    Some(&id) => {
                        self.try_reap(id, now);
                        if self.pid_only.contains_key(&pid) {
                            break; // not reaped after all: scan
                        }
                    }
                    None => break,
                },
                Err(_) => break,
            }
        }
        let ids: Vec<ChildId> = self.pid_only.values().copied().collect();
        for id in ids {
            self.try_reap(id, now);
        }
    }

    /// Adds SIGCHLD to the signalfd (blocking it in this thread), for the
    /// first child known by pid alone; the next poll then checks those
    /// children at once, in case one exited before SIGCHLD was blocked.
    fn watch_sigchld(&mut self) -> io::Result<()> {
        let chld = signals::bit(libc::SIGCHLD);
        if self.signalfd.is_some() && self.signal_set & chld != 0 {
            return Ok(());
        }
        signals::block(&[Signal::CHLD]).map_err(|e| match e {
            signals::BlockError::Os(e) => e,
            signals::BlockError::Unblockable(_) => unreachable!("SIGCHLD can be blocked"),
        })?;
        let set = self.signal_set | chld;
        let sfd = SignalFd::new(set)?;
        watch(
            self.poll.registry(),
            sfd.as_fd(),
            token(KIND_SIGNAL, 0),
            Interest::READABLE,
        )?;
        // The old signalfd leaves the poll as it is closed.
        self.signalfd = Some(sfd);
        self.signal_set = set;
        self.rescan = true;
        Ok(())
    }

    /// Executes what the engine decided, then re-arms the timer for its
    /// next deadline.
    fn after_change(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Signal { id, signal } => {
                    let Some(child) = self.engine.get(id) else {
                        continue;
                    };
                    log::debug!("sending {signal} to child {id} (pid {})", child.pid);
                    if let Err(e) = child.send_ladder(signal) {
                        log::error!(
                            "sending {signal} to child {id} (pid {}) failed: {e}",
                            child.pid
                        );
                    }
                }
                Action::Stuck { id } => {
                    let pid = self.engine.get(id).map_or(0, |s| s.pid as u32);
                    log::warn!(
                        "child {id} (pid {pid}) is still there after SIGKILL and its kill timeout"
                    );
                    self.queue.push_back(Event::Stuck { id, pid });
                }
            }
        }
        self.arm_timer();
    }

    /// Arms the timerfd for the engine's next deadline when that deadline
    /// is earlier than the one armed (or none is armed).
    ///
    /// A deadline that went away or moved later (the usual case: a child
    /// was reaped before its stuck timeout) leaves the timer as it is: it
    /// fires once with nothing due, `poll` drains it and re-arms for the
    /// real next deadline. That costs one wake-up per cancelled deadline
    /// instead of one `timerfd_settime` on every reap, which sat between a
    /// child's exit and its report.
    fn arm_timer(&mut self) {
        let group_check = (!self.group_watch.is_empty()).then(|| Instant::now() + GROUP_CHECK);
        let pid_rescan = (!self.pid_only.is_empty()).then(|| Instant::now() + PID_RESCAN);
        let Some(next) = [self.engine.poll_timeout(), group_check, pid_rescan]
            .into_iter()
            .flatten()
            .min()
        else {
            return;
        };
        if self.timer_armed.is_some_and(|armed| armed <= next) {
            return;
        }
        match self
            .timer
            .set(Some(next.saturating_duration_since(Instant::now())))
        {
            Ok(()) => self.timer_armed = Some(next),
            Err(e) => log::error!("arming the timerfd failed: {e}"),
        }
    }

    /// The home of cgroup-contained children, made (with its sentinel) on
    /// first use.
    fn cgroup_home(&mut self) -> Result<&mut CgroupHome> {
        if self.cgroups.is_none() {
            let home = CgroupHome::create()?;
            watch(
                self.poll.registry(),
                home.sentinel_pidfd(),
                token(KIND_SENTINEL, 0),
                Interest::READABLE,
            )
            .map_err(|source| Error::Os {
                op: "registering the cgroup sentinel's pidfd with epoll",
                source,
            })?;
            self.cgroups = Some(home);
        }
        Ok(self.cgroups.as_mut().expect("made above"))
    }

    /// Whether the last [`poll`](Reaper::poll) took as many readiness events
    /// as its buffer holds, so that more may be waiting: a caller that
    /// watches the reaper's fd edge-triggered polls again before waiting.
    #[cfg(feature = "tokio")]
    pub(crate) fn may_have_more(&self) -> bool {
        self.events_full
    }

    /// Which spawn path this process uses (it degrades when the kernel
    /// refuses a feature), for diagnostics.
    pub fn spawn_mode() -> &'static str {
        spawn::describe_mode()
    }
}

impl AsRawFd for Reaper {
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

impl AsFd for Reaper {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poll.registry().as_fd()
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.engine.is_empty() {
            return;
        }
        let now = Instant::now();
        let ids: Vec<ChildId> = self.engine.ids().collect();
        for id in ids {
            self.engine.kill(id, now);
        }
        self.after_change();
        let deadline = now + DROP_REAP_BOUND;
        while !self.engine.is_empty() {
            let Some(left) = time_left(Some(deadline)) else {
                break;
            };
            if self.poll(left).is_err() {
                break;
            }
        }
        if !self.engine.is_empty() {
            log::error!(
                "{} children did not die within {DROP_REAP_BOUND:?} of SIGKILL; left unreaped",
                self.engine.len()
            );
        }
    }
}

/// What is left until `deadline` (`None`: no deadline), as a timeout for
/// [`Reaper::poll`]; `None` once it has passed.
fn time_left(deadline: Option<Instant>) -> Option<Option<Duration>> {
    match deadline {
        Some(d) => d.checked_duration_since(Instant::now()).map(Some),
        None => Some(None),
    }
}
