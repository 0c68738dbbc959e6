//! Async wrappers for tokio (feature `tokio`, off by default): a
//! [`Reaper`] and a [`PidFd`] registered in tokio's reactor, with no helper
//! thread and no `unsafe` on the caller's side.
//!
//! Both must be made inside a tokio runtime with the I/O driver enabled
//! (`enable_io`); tokio panics otherwise. A [`Reaper`] never leaves its
//! thread, so an [`AsyncReaper`] is driven from a current-thread runtime
//! (`block_on`) or a `LocalSet`. An [`AsyncPidFd`] may move between
//! threads; the thread that *spawned* the child is what matters for its
//! parent-death signal (see [`spawn`](crate::spawn())).

use std::time::Duration;

use ::tokio::io::unix::AsyncFd;

use crate::error::{Error, Result};
use crate::pidfd::{PidFd, Reaped};
use crate::reaper::{Event, Reaper};
use crate::sys;

fn os(op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Os { op, source }
}

/// A [`Reaper`] whose fd is registered in tokio's reactor.
///
/// ```no_run
/// # async fn f() -> pidreap::Result<()> {
/// let mut reaper = pidreap::tokio::AsyncReaper::new(pidreap::Reaper::new()?)?;
/// reaper.get_mut().spawn(pidreap::Command::new("true").arg("x"))?;
/// let event = reaper.next_event().await?;
/// # drop(event); Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncReaper {
    fd: AsyncFd<Reaper>,
}

impl AsyncReaper {
    /// Registers `reaper` in the current tokio runtime's reactor.
    pub fn new(reaper: Reaper) -> Result<AsyncReaper> {
        Ok(AsyncReaper {
            fd: sys::tokio::register_reaper(reaper)
                .map_err(os("registering the reaper in tokio's reactor"))?,
        })
    }

    /// The reaper, to spawn, stop and signal children.
    pub fn get_mut(&mut self) -> &mut Reaper {
        self.fd.get_mut()
    }

    /// The reaper.
    pub fn get_ref(&self) -> &Reaper {
        self.fd.get_ref()
    }

    /// Deregisters the reaper and gives it back.
    pub fn into_inner(self) -> Reaper {
        self.fd.into_inner()
    }

    /// Waits, without blocking the thread, for the reaper's next
    /// [`Event`]: a child reaped, a signal, a contained tree lost.
    /// Stop ladders advance while it waits.
    pub async fn next_event(&mut self) -> Result<Event> {
        loop {
            if let Some(ev) = self.fd.get_mut().next_event() {
                return Ok(ev);
            }
            let mut guard = self
                .fd
                .readable_mut()
                .await
                .map_err(os("waiting for the reaper's fd"))?;
            guard.get_inner_mut().poll(Some(Duration::ZERO))?;
            // tokio watches the epoll fd edge-triggered: clear the
            // readiness only once the reaper has nothing left pending. One
            // poll takes at most its event buffer's worth; a poll that did
            // not fill it drained the epoll, and anything that became ready
            // since is a new edge, which tokio's readiness tick keeps from
            // being cleared here.
            if !guard.get_inner().may_have_more() {
                guard.clear_ready();
            }
        }
    }
}

/// A child's [`PidFd`] registered in tokio's reactor: await its exit.
///
/// ```no_run
/// # async fn f() -> pidreap::Result<()> {
/// let child = pidreap::spawn(&pidreap::Command::new("true"))?;
/// let mut child = pidreap::tokio::AsyncPidFd::new(child.pidfd)?;
/// let reaped = child.wait().await?;
/// assert!(reaped.status.success());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncPidFd {
    fd: AsyncFd<PidFd>,
}

impl AsyncPidFd {
    /// Registers `pidfd` in the current tokio runtime's reactor. On error
    /// the `PidFd` is dropped, which kills and reaps its child.
    pub fn new(pidfd: PidFd) -> Result<AsyncPidFd> {
        Ok(AsyncPidFd {
            fd: sys::tokio::register_pidfd(pidfd)
                .map_err(os("registering the pidfd in tokio's reactor"))?,
        })
    }

    /// The pidfd, to signal the child ([`PidFd::send_signal`]).
    pub fn get_ref(&self) -> &PidFd {
        self.fd.get_ref()
    }

    /// Deregisters the pidfd and gives it back.
    pub fn into_inner(self) -> PidFd {
        self.fd.into_inner()
    }

    /// Waits, without blocking the thread, for the child to exit, and
    /// reaps it.
    pub async fn wait(&mut self) -> Result<Reaped> {
        loop {
            if let Some(r) = self.fd.get_mut().try_wait()? {
                return Ok(r);
            }
            let mut guard = self
                .fd
                .readable_mut()
                .await
                .map_err(os("waiting for the pidfd"))?;
            match guard.get_inner_mut().try_wait()? {
                Some(r) => return Ok(r),
                None => guard.clear_ready(),
            }
        }
    }
}
