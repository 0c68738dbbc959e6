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
//! # Requirements
//!
//! Linux 5.3 or later on x86_64 or aarch64 (pidfds); 5.4 for
//! `waitid(P_PIDFD)`; 5.9+ for the fd-table sharing fast path (detected at
//! run time, with a fallback and one log line).
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg(target_os = "linux")]

mod command;
mod containment;
pub mod engine;
mod error;
mod pidfd;
mod reaper;
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
pub use pidfd::{PidFd, Reaped};
pub use reaper::{CancelToken, Child, Event, Reaper, ReaperBuilder, Shutdown};
pub use setup::{block_signals, raise_fd_limit, STOP_SIGNALS};
pub use signal::{ParseSignalError, Signal};
pub use spawn::{spawn, Spawned};
pub use status::{Exit, ExitStatus, ResourceUsage, TreeUsage};
pub use terminal::{is_foreground, take_terminal};
