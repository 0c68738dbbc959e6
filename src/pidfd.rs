//! [`PidFd`]: an owned pidfd of a child spawned by [`spawn`](crate::spawn),
//! for runtimes that bring their own event loop.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::signal::Signal;
use crate::status::{ExitStatus, ResourceUsage};
use crate::sys::pidfd::{self as sys, Reaped as SysReaped};

/// How long dropping an unreaped [`PidFd`] waits for its SIGKILLed child.
const DROP_REAP_BOUND: Duration = Duration::from_secs(1);

/// A reaped child, as [`PidFd::try_wait`] and [`PidFd::wait`] report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// How it ended ([`ExitStatus::Unknown`] if something else in the
    /// process reaped it first).
    pub status: ExitStatus,
    /// What it used, from `waitid(2)`'s `rusage` argument (zero when the
    /// status is unknown).
    pub usage: ResourceUsage,
}

/// The owned pidfd of a child of this process, and its pid.
///
/// The fd is readable (`EPOLLIN`, `POLLIN`) once the child has exited
/// ([pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)):
/// register it ([`AsFd`], [`AsRawFd`]) in any reactor (epoll, mio, tokio's
/// `AsyncFd`, async-io's `Async`), then call [`try_wait`](PidFd::try_wait)
/// to reap. The child is signalled only through the pidfd
/// ([`send_signal`](PidFd::send_signal)) and reaped with
/// `waitid(P_PIDFD)`, so a recycled pid is never hit.
///
/// # Dropping
///
/// Dropping a `PidFd` whose child has not been reaped SIGKILLs the child and
/// reaps it, waiting at most one second. A child that cannot die yet (in
/// uninterruptible sleep, or frozen by a cgroup freezer) is then handed,
/// with its pidfd, to a process-wide "reap later" list, retried without
/// blocking at every later [`spawn`](crate::spawn) (and every
/// [`Reaper::poll`](crate::Reaper::poll)) of this process. Reap it first ([`wait`](PidFd::wait)) to keep
/// it alive until it exits on its own, or take the fd with
/// [`into_raw_fd`](IntoRawFd::into_raw_fd) (or [`OwnedFd::from`]), which
/// hands the reaping over with it.
#[derive(Debug)]
pub struct PidFd {
    fd: Option<OwnedFd>,
    pid: u32,
    reaped: Option<Reaped>,
}

impl PidFd {
    pub(crate) fn new(fd: OwnedFd, pid: i32) -> PidFd {
        PidFd {
            fd: Some(fd),
            pid: pid as u32,
            reaped: None,
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("present until into_raw_fd").as_fd()
    }

    /// The child's pid. Valid while the child is unreaped; once
    /// [`try_wait`](PidFd::try_wait) reported its exit, the number may
    /// belong to another process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` to the child through its pidfd. `Ok(false)` when the
    /// child has already been reaped (`ESRCH`); a child that exited but is
    /// not reaped yet still accepts (and ignores) signals.
    /// [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
    pub fn send_signal(&self, signal: Signal) -> Result<bool> {
        if self.reaped.is_some() {
            return Ok(false);
        }
        // Through the pidfd; with kill() where the kernel refuses
        // pidfd_send_signal (exact: the child is unreaped).
        sys::signal_child(Some(self.fd()), self.pid as i32, signal, false).map_err(|source| {
            Error::Os {
                op: "signalling the child (pidfd_send_signal)",
                source,
            }
        })
    }

    /// Reaps the child if it has exited, without blocking: `Ok(None)` while
    /// it runs. Once reaped, every later call returns the same [`Reaped`].
    /// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
    /// (`P_PIDFD`, `WEXITED | WNOHANG`)
    pub fn try_wait(&mut self) -> Result<Option<Reaped>> {
        if let Some(r) = self.reaped {
            return Ok(Some(r));
        }
        let r = sys::try_reap(self.fd()).map_err(|source| Error::Os {
            op: "reaping the child (waitid P_PIDFD)",
            source,
        })?;
        Ok(self.record(r))
    }

    /// Waits for the child to exit and reaps it, blocking the calling
    /// thread (not for use on a reactor's thread: register the fd and call
    /// [`try_wait`](PidFd::try_wait) when it is readable). If something
    /// made the pidfd's file description non-blocking (`O_NONBLOCK`, as
    /// async-io's `Async::new` does to the fd it is given), a running child
    /// makes this fail with `EAGAIN`
    /// ([pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)).
    /// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
    pub fn wait(&mut self) -> Result<Reaped> {
        if let Some(r) = self.reaped {
            return Ok(r);
        }
        let r = sys::reap_exiting(self.fd()).map_err(|source| Error::Os {
            op: "waiting for the child (waitid P_PIDFD)",
            source,
        })?;
        Ok(self.record(r).expect("a blocking waitid returns an exit"))
    }

    /// Like [`wait`](PidFd::wait), giving up after `timeout`: `Ok(None)` if
    /// the child is still running then. Waits in `poll(2)` on the pidfd.
    /// [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<Reaped>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.try_wait()? {
                return Ok(Some(r));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ts = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as _,
            };
            let mut fds = [rustix::event::PollFd::from_borrowed_fd(
                self.fd(),
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(Error::Os {
                        op: "polling the pidfd",
                        source: e.into(),
                    })
                }
            }
        }
    }

    fn record(&mut self, r: SysReaped) -> Option<Reaped> {
        let reaped = match r {
            SysReaped::NotYet => return None,
            SysReaped::Exited { status, usage, .. } => Reaped { status, usage },
            SysReaped::Gone => Reaped {
                status: ExitStatus::Unknown,
                usage: ResourceUsage::default(),
            },
        };
        self.reaped = Some(reaped);
        Some(reaped)
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd().as_raw_fd()
    }
}

impl IntoRawFd for PidFd {
    /// Gives up the fd, and with it the duty to reap the child: nothing is
    /// killed or reaped when the `PidFd` goes.
    fn into_raw_fd(mut self) -> RawFd {
        self.fd
            .take()
            .expect("present until into_raw_fd")
            .into_raw_fd()
    }
}

impl From<PidFd> for OwnedFd {
    /// Gives up the fd, as [`into_raw_fd`](IntoRawFd::into_raw_fd) does.
    fn from(mut p: PidFd) -> OwnedFd {
        p.fd.take().expect("present until into_raw_fd")
    }
}

impl Drop for PidFd {
    fn drop(&mut self) {
        if self.fd.is_none() || self.reaped.is_some() {
            return;
        }
        // Never leave a child behind: kill it and reap it, bounded.
        let _ = self.send_signal(Signal::KILL);
        if let Err(e) = self.wait_timeout(DROP_REAP_BOUND) {
            log::warn!("dropping the pidfd of pid {}: {e}", self.pid);
        }
        if self.reaped.is_none() {
            // Not dead yet: reaped later, through its pidfd.
            if let Some(fd) = self.fd.take() {
                sys::reap_or_defer(
                    sys::ChildHandle {
                        pidfd: Some(fd),
                        pid: self.pid as i32,
                    },
                    Duration::ZERO,
                );
            }
        }
    }
}
