//! Supervise child processes on Linux so that none outlives its parent, none
//! is left a zombie, and stopping them never blocks.
//!
//! ```
//! use std::io::{BufRead, BufReader};
//! use std::time::Duration;
//! use pidreap::{Command, Event, Reaper, Signal, Stdio, StopLadder};
//!
//! let mut reaper = Reaper::new()?;
//!
//! // A worker that ignores SIGTERM: the ladder SIGKILLs it after 200 ms.
//! let mut cmd = Command::new("sh");
//! cmd.args(["-c", "trap '' TERM; echo ready; exec sleep 60"])
//!     .stdout(Stdio::piped())
//!     .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_millis(200)));
//! let mut child = reaper.spawn(&cmd)?;
//! let mut line = String::new();
//! BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
//! assert_eq!(line, "ready\n");
//!
//! // Any thread can start the ladder; cancel() never blocks.
//! let token = reaper.cancel_token(child.id())?;
//! std::thread::spawn(move || token.cancel());
//!
//! match reaper.wait_event(Some(Duration::from_secs(10)))? {
//!     Some(Event::Exited(exit)) => {
//!         assert_eq!(exit.id, child.id());
//!         assert_eq!(exit.status.signal(), Some(Signal::KILL));
//!     }
//!     other => panic!("unexpected: {other:?}"),
//! }
//! # Ok::<(), pidreap::Error>(())
//! ```
//!
//! # What it guarantees
//!
//! - **No orphans.** Every child is spawned with `PR_SET_PDEATHSIG`
//!   (SIGKILL by default) and checks, after setting it, that its parent has
//!   not already died (the race most supervisors leave open). A supervisor
//!   that is SIGKILLed takes its children with it; with
//!   [`Containment::PidNamespace`], their whole trees too.
//! - **No zombies, no PID races.** Every child has a pidfd from the first
//!   instant (`CLONE_PIDFD`). It is signalled only through the pidfd and
//!   reaped with `waitid(P_PIDFD)`, so a recycled pid is never hit.
//! - **Nothing blocks.** One thread, one `mio` poll: pidfds, cancel
//!   eventfds, a timerfd for ladder deadlines and an optional signalfd.
//!   Stopping 1,000 children takes one grace period, not 1,000. Each exit
//!   costs O(1).
//! - **Cheap spawns from big parents.** The spawn is vfork-class
//!   (`CLONE_VM | CLONE_VFORK`), so a 4 GiB parent spawns as fast as a small
//!   one; the child's side runs raw system calls only.
//!
//! # Shape
//!
//! Three layers, each depending only on the ones below it:
//!
//! - [`engine`]: the sans-IO core, per-child stop state machines, a
//!   deadline queue and the restart policy, with no system calls and no
//!   clock. Runtimes with their own loop can drive it directly.
//! - [`Reaper`]: the thin `mio` shell that turns kernel events into engine
//!   inputs and engine actions into system calls. Its fd nests in other
//!   event loops. Spawning goes through one path: the [`Command`] builder,
//!   a spawn plan built from it, then the sys layer's clone.
//! - `sys` (private): every `unsafe` block of the crate, each with its
//!   `// SAFETY:` note and the man page it follows. The compiler holds the
//!   line: `unsafe` is denied everywhere else and forbidden in the engine.
//!
//! # For runtime authors
//!
//! Three ways to use pidreap, from the most it does for you to the least:
//!
//! 1. **Your own loop around a [`Reaper`].** Call
//!    [`wait_event`](Reaper::wait_event) (or [`poll`](Reaper::poll) and
//!    [`next_event`](Reaper::next_event)) on the thread that made it. The
//!    reaper runs the stop ladders, restarts and containment.
//! 2. **The `Reaper`'s fd nested in your reactor.** The reaper's fd
//!    ([`AsFd`](std::os::fd::AsFd)) is an epoll instance, readable whenever
//!    it has work; register it, call `poll(Some(Duration::ZERO))` when it
//!    is, then take events with [`next_event`](Reaper::next_event) until it
//!    says `None` (which also closes the pidfds of the children it reported:
//!    [File descriptors](Reaper#file-descriptors)). With tokio, the
//!    `tokio` feature's `pidreap::tokio::AsyncReaper` does the registration
//!    (tokio's `AsyncFd::register` is `unsafe`; the wrapper upholds its
//!    contract) and gives an async `next_event`; `pidreap::tokio::LocalReaper`
//!    is a handle the tasks of one thread share, each spawning through it
//!    and awaiting its own children (a future per child). With async-io,
//!    register a duplicate of the fd with `Async::new`. The examples
//!    `tokio_reaper`, `tokio_tasks`, `async_io_reaper` and `poll_loop` show
//!    each.
//! 3. **The spawn primitive in your reactor, no `Reaper`.** [`spawn()`]
//!    starts a child on the same path the reaper uses and hands over its
//!    [`PidFd`]: register it (readable once the child exited), then
//!    [`try_wait`](PidFd::try_wait) reaps it; signal it with
//!    [`send_signal`](PidFd::send_signal). Stop ladders, timeouts and
//!    restarts are then yours to build. `pidreap::tokio::AsyncPidFd`
//!    (feature `tokio`) awaits one child; the example `tokio_pidfd` awaits
//!    fifty.
//!
//! ## Threads and the parent-death signal
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits,
//! not when the process does
//! ([PR_SET_PDEATHSIG](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html)).
//! In a multi-threaded runtime, a child spawned from a pool thread is
//! SIGKILLed when that thread exits: tokio's blocking-pool threads
//! (`spawn_blocking`) exit after ten seconds idle, and a runtime's workers
//! when it shuts down. The safe patterns:
//!
//! - spawn from the process's main thread, or from a current-thread
//!   runtime's thread that lives as long as the children; or
//! - run one dedicated spawning thread for the life of the children (it
//!   owns the `Reaper`, or calls [`spawn()`]); other threads send it
//!   commands over a channel and get back a [`PidFd`] (which may move to any
//!   thread) or a [`CancelToken`].
//!
//! A `Reaper` enforces this: it is not `Send`, so it spawns from, and dies
//! with, the thread that made it. [`spawn()`] cannot enforce it; its
//! caller chooses the thread.
//!
//! ## Other code that spawns children in the same process
//!
//! Each `Reaper` and each [`PidFd`] reaps only its own children, by pidfd,
//! so several of them, std's `Command` and tokio's `process` can share a
//! process. Two things break that: SIGCHLD set to `SIG_IGN` (the kernel
//! then reaps every child; both [`Reaper::new`] and [`spawn()`] refuse with
//! [`Error::ChildrenAutoReaped`]), and a reaper built with
//! [`reap_orphans`](ReaperBuilder::reap_orphans), which reaps *every* child
//! of the process it does not supervise, including those of other reapers,
//! of [`spawn()`] and of std (whose owners then find the status gone:
//! [`ExitStatus::Unknown`], or `ECHILD` from std). Use `reap_orphans` only in
//! a process where that reaper spawns every child: PID 1 of a container, a
//! subreaper.
//!
//! # Requirements
//!
//! Linux 5.3 or later on x86_64 or aarch64 for every guarantee above
//! (pidfds); 5.4 for `waitid(P_PIDFD)`; 5.9+ for the fd-table sharing fast
//! path (detected at run time, with a fallback and one log line). Older
//! kernels run in no-pidfd mode (below).
//!
//! # Kernels without pidfds
//!
//! Where the kernel gives no pidfd (Linux before 5.3, or a seccomp filter
//! refusing `CLONE_PIDFD` and `pidfd_open`, as some container sandboxes
//! do), the first spawn logs it once and the process runs in **no-pidfd
//! mode** ([`Reaper::spawn_mode`] says `no pidfd (SIGCHLD + waitid
//! P_PID)`). On Linux before 5.2 `clone` ignores `CLONE_PIDFD` instead of
//! refusing it; that is detected too (the pidfd comes back -1) and
//! `pidfd_open` is used. What stays: the spawn is still vfork-class, with
//! `PR_SET_PDEATHSIG` and the parent-died check; ladders, process groups,
//! stdio, exit statuses and resource usage work as before. What weakens:
//!
//! - A child is known by its pid while unreaped, which is exact: the kernel
//!   does not reuse the pid of an unreaped child. Signals go through
//!   `kill(2)` (also wherever `pidfd_send_signal` alone is refused, before
//!   5.1 or under a filter), and only while the child is unreaped.
//! - Exits are learnt through SIGCHLD, which the [`Reaper`] reads from its
//!   signalfd (it blocks SIGCHLD in its thread, from construction, or at
//!   its first child without a pidfd). SIGCHLD coalesces and does not say
//!   which child: the reaper peeks at exited children without reaping them
//!   (`waitid(P_ALL, WNOWAIT)`, which walks the process's children in the
//!   kernel) and reaps its own by pid; once the exited child peeked at is
//!   not one of its own (another reaper's, std's), it checks every child it
//!   supervises without a pidfd with `waitid(P_PID, pid, WNOHANG)`. The
//!   cost of an exit grows with the number of children, O(children) instead
//!   of O(1): on Linux 6.18 here, kill-to-reap of one child among 1,000
//!   others went from 65 µs to 124 µs (p50), among 5,000 from 63 µs to
//!   415 µs (`cargo bench --bench no_pidfd`). Nothing is reaped through
//!   `P_ALL` (it would steal other code's children), except by
//!   [`reap_orphans`](ReaperBuilder::reap_orphans). A thread that does
//!   not block SIGCHLD takes it from the signalfd
//!   ([signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html)),
//!   as does another reaper's signalfd, so the reaper also peeks every
//!   20 ms while it has children without a pidfd; call
//!   [`block_signals`]`(&[Signal::CHLD])` at the top of `main` for prompt
//!   reports in a threaded program.
//! - [`Containment::Cgroup`] (its sentinel is watched through a pidfd) and
//!   [`Containment::PidNamespace`] (the namespace's init checks on its
//!   parent through a pidfd) are refused with
//!   [`Error::ContainmentUnavailable`] saying so;
//!   [`Containment::ProcessGroup`] works.
//! - The primitive [`spawn()`] hands out a [`PidFd`], which cannot exist
//!   there: it fails with [`Error::Unsupported`] naming `CLONE_PIDFD` and
//!   `pidfd_open`.
//!
//! # Error paths do not block
//!
//! A spawn that fails after its clone, a reaper that cannot register a new
//! child, and a dropped [`PidFd`] SIGKILL the child and reap it, waiting a
//! bounded time. A child that cannot die yet (in uninterruptible sleep, or
//! frozen by a cgroup freezer) is not waited for: it goes to a process-wide
//! "reap later" list, retried without blocking at every later spawn and
//! every [`Reaper::poll`], and logged. One wait has no bound: on the
//! vfork-class path the kernel suspends the spawning thread until the child
//! execs or exits ([vfork(2)](https://man7.org/linux/man-pages/man2/vfork.2.html)),
//! so a child frozen before its exec holds `spawn` until it is thawed.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg(target_os = "linux")]

mod command;
mod containment;
pub mod engine;
mod error;
mod output;
mod pidfd;
mod reaper;
mod rlimit;
mod setup;
mod signal;
mod spawn;
mod status;
#[allow(unsafe_code)]
mod sys;
mod terminal;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use command::{Command, Containment, Stdio};
pub use engine::id::{ChildId, GroupId};
pub use engine::ladder::{Step, StopLadder};
pub use error::{Error, Result};
pub use output::Output;
pub use pidfd::{PidFd, Reaped};
pub use reaper::{CancelToken, Child, Event, Reaper, ReaperBuilder, Shutdown};
pub use rlimit::Resource;
pub use setup::{block_signals, raise_fd_limit, STOP_SIGNALS};
pub use signal::{ParseSignalError, Signal};
pub use spawn::{spawn, Spawned};
pub use status::{Exit, ExitStatus, ResourceUsage, StatusUnknown, TreeUsage};
pub use terminal::{is_foreground, take_terminal};
