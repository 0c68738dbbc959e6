//! Async wrappers for tokio (feature `tokio`, off by default): a
//! [`Reaper`] and a [`PidFd`] registered in tokio's reactor, with no helper
//! thread and no `unsafe` on the caller's side.
//!
//! - [`AsyncReaper`]: one task drives a reaper and takes its events.
//! - [`LocalReaper`]: the tasks of one thread share a reaper, each awaiting
//!   its own children (a future per child).
//! - [`AsyncPidFd`]: one child of [`spawn`](crate::spawn()), no reaper.
//!
//! Each must be made inside a tokio runtime with the I/O driver enabled
//! (`enable_io`); tokio panics otherwise. A [`Reaper`] never leaves its
//! thread, so an [`AsyncReaper`] or a [`LocalReaper`] is driven from a
//! current-thread runtime (`block_on`) or a `LocalSet`. An [`AsyncPidFd`]
//! may move between threads; the thread that *spawned* the child is what
//! matters for its parent-death signal (see [`spawn`](crate::spawn())).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ::tokio::io::unix::{AsyncFd, AsyncFdReadyMutGuard};

use crate::command::Command;
use crate::engine::ChildId;
use crate::error::{Error, Result};
use crate::pidfd::{PidFd, Reaped};
use crate::reaper::{Child, Event, Reaper};
use crate::status::Exit;
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
            poll_ready(&mut guard)?;
        }
    }
}

/// Polls a reaper whose fd tokio reported readable, without waiting.
///
/// tokio watches the epoll fd edge-triggered: the readiness is cleared
/// only once the reaper has nothing left pending. One poll takes at most
/// its event buffer's worth; a poll that did not fill it drained the
/// epoll, and anything that became ready since is a new edge, which
/// tokio's readiness tick keeps from being cleared here.
fn poll_ready(guard: &mut AsyncFdReadyMutGuard<'_, Reaper>) -> Result<()> {
    guard.get_inner_mut().poll(Some(Duration::ZERO))?;
    if !guard.get_inner().may_have_more() {
        guard.clear_ready();
    }
    Ok(())
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

/// A [`Reaper`] in tokio's reactor, shared by the tasks of its thread, with
/// a future per child.
///
/// Clone the handle into each task (`tokio::task::spawn_local` on a
/// `LocalSet`, or futures joined inside one `block_on`): each task spawns
/// through it and awaits its own children with [`wait`](LocalReaper::wait).
/// Events that no task awaits by child (a signal, a stuck child, an exit
/// nobody waits for) come from [`next_event`](LocalReaper::next_event).
/// Whichever waiting task tokio wakes drives the reaper and wakes the tasks
/// whose children exited, so an exit costs the same however many tasks
/// wait. Like a [`Reaper`], it stays on the thread that made it.
///
/// ```no_run
/// # async fn f() -> pidreap::Result<()> {
/// use pidreap::tokio::LocalReaper;
/// let reaper = LocalReaper::new(pidreap::Reaper::new()?)?;
/// let child = reaper.spawn(&pidreap::Command::new("true"))?;
/// let other = reaper.clone(); // for another task
/// let exit = other.wait(child.id()).await?;
/// assert!(exit.status.success());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LocalReaper {
    shared: Rc<RefCell<Shared>>,
}

/// Who waits, as tokio's readiness wakes only the last task that asked:
/// a child's future or an event future, told apart by a serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiter {
    Child(ChildId, u64),
    Events(u64),
}

#[derive(Debug)]
struct Shared {
    fd: AsyncFd<Reaper>,
    /// Exits of children some future awaits, taken off the reaper's queue.
    exits: HashMap<ChildId, Exit>,
    /// Every other event, in order, for `next_event`.
    events: VecDeque<Event>,
    /// The futures awaiting a child's exit.
    waiting: HashMap<ChildId, Vec<(u64, Waker)>>,
    /// The futures awaiting the next event.
    event_waiters: Vec<(u64, Waker)>,
    /// The waiter whose task tokio wakes when the reaper's fd turns
    /// readable: it asked last.
    holder: Option<Waiter>,
    next_serial: u64,
}

impl Shared {
    /// Hands what the reaper queued to the futures waiting for it;
    /// collects their wakers in `wake`.
    fn route(&mut self, wake: &mut Vec<Waker>) {
        while let Some(ev) = self.fd.get_mut().next_event() {
            match ev {
                Event::Exited(exit) if self.waiting.contains_key(&exit.id) => {
                    wake.extend(
                        self.waiting
                            .remove(&exit.id)
                            .into_iter()
                            .flatten()
                            .map(|(_, w)| w),
                    );
                    self.exits.insert(exit.id, exit);
                }
                other => {
                    self.events.push_back(other);
                    wake.extend(self.event_waiters.drain(..).map(|(_, w)| w));
                }
            }
        }
    }

    /// The exit of `id`, if it was reported.
    fn take_exit(&mut self, id: ChildId) -> Option<Exit> {
        if let Some(exit) = self.exits.remove(&id) {
            return Some(exit);
        }
        let pos = self
            .events
            .iter()
            .position(|ev| matches!(ev, Event::Exited(e) if e.id == id))?;
        match self.events.remove(pos) {
            Some(Event::Exited(exit)) => Some(exit),
            _ => None,
        }
    }

    /// Records `me` as waiting, with the waker of its task.
    fn enlist(&mut self, me: Waiter, waker: &Waker) {
        self.delist(me);
        match me {
            Waiter::Child(id, serial) => self
                .waiting
                .entry(id)
                .or_default()
                .push((serial, waker.clone())),
            Waiter::Events(serial) => self.event_waiters.push((serial, waker.clone())),
        }
    }

    fn delist(&mut self, me: Waiter) {
        match me {
            Waiter::Child(id, serial) => {
                if let Some(list) = self.waiting.get_mut(&id) {
                    list.retain(|(s, _)| *s != serial);
                    if list.is_empty() {
                        self.waiting.remove(&id);
                    }
                }
            }
            Waiter::Events(serial) => self.event_waiters.retain(|(s, _)| *s != serial),
        }
    }

    /// `me` stops waiting (done, or dropped). An exit set aside for it and
    /// no other future goes to `next_event` instead. If tokio would wake its
    /// task for the next readiness, another waiter is woken to ask in its
    /// place.
    fn leave(&mut self, me: Waiter, wake: &mut Vec<Waker>) {
        self.delist(me);
        if let Waiter::Child(id, _) = me {
            if !self.waiting.contains_key(&id) {
                if let Some(exit) = self.exits.remove(&id) {
                    self.events.push_back(Event::Exited(exit));
                    wake.extend(self.event_waiters.drain(..).map(|(_, w)| w));
                }
            }
        }
        if self.holder == Some(me) {
            self.holder = None;
            let next = self
                .waiting
                .values()
                .flatten()
                .chain(&self.event_waiters)
                .next();
            wake.extend(next.map(|(_, w)| w.clone()));
        }
    }

    /// Polls the reaper if its fd is readable (`Ready`), else makes `me`
    /// the waiter tokio wakes (`Pending`).
    fn drive(
        &mut self,
        me: Waiter,
        cx: &mut Context<'_>,
        wake: &mut Vec<Waker>,
    ) -> Poll<Result<()>> {
        match self.fd.poll_read_ready_mut(cx) {
            Poll::Ready(Ok(mut guard)) => {
                poll_ready(&mut guard)?;
                self.route(wake);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(os("waiting for the reaper's fd")(e))),
            Poll::Pending => {
                self.holder = Some(me);
                Poll::Pending
            }
        }
    }
}

impl LocalReaper {
    /// Registers `reaper` in the current tokio runtime's reactor.
    pub fn new(reaper: Reaper) -> Result<LocalReaper> {
        let fd = sys::tokio::register_reaper(reaper)
            .map_err(os("registering the reaper in tokio's reactor"))?;
        Ok(LocalReaper {
            shared: Rc::new(RefCell::new(Shared {
                fd,
                exits: HashMap::new(),
                events: VecDeque::new(),
                waiting: HashMap::new(),
                event_waiters: Vec::new(),
                holder: None,
                next_serial: 0,
            })),
        })
    }

    /// Spawns `cmd` ([`Reaper::spawn`]).
    pub fn spawn(&self, cmd: &Command) -> Result<Child> {
        self.with(|r| r.spawn(cmd))
    }

    /// Runs `f` on the reaper: to stop, signal or inspect children. Events
    /// that `f` makes the reaper queue (by polling it) go to the futures
    /// waiting for them. The closure cannot hold the reaper across an
    /// `.await`.
    ///
    /// # Panics
    ///
    /// If `f` calls this handle (or a clone of it) again.
    pub fn with<R>(&self, f: impl FnOnce(&mut Reaper) -> R) -> R {
        let mut wake = Vec::new();
        let out = {
            let mut shared = self.shared.borrow_mut();
            let out = f(shared.fd.get_mut());
            shared.route(&mut wake);
            out
        };
        wake.into_iter().for_each(Waker::wake);
        out
    }

    /// Waits for child `id` to exit and returns its exit; other children's
    /// exits and other events are kept for their own futures. One future
    /// per child gets the exit: if several wait for the same child, the
    /// others get [`Error::NoSuchChild`], as does an id that is not
    /// supervised or whose exit was already handed out.
    pub fn wait(&self, id: ChildId) -> WaitChild {
        WaitChild {
            waiter: Waiter::Child(id, self.serial()),
            shared: self.shared.clone(),
            done: false,
        }
    }

    /// Waits for the next event that no [`wait`](LocalReaper::wait) future
    /// is waiting for: a signal, a stuck child, an exit nobody awaits.
    pub fn next_event(&self) -> NextEvent {
        NextEvent {
            waiter: Waiter::Events(self.serial()),
            shared: self.shared.clone(),
            done: false,
        }
    }

    fn serial(&self) -> u64 {
        let mut shared = self.shared.borrow_mut();
        shared.next_serial += 1;
        shared.next_serial
    }
}

/// The future of [`LocalReaper::wait`]: a child's exit.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WaitChild {
    waiter: Waiter,
    shared: Rc<RefCell<Shared>>,
    done: bool,
}

/// The future of [`LocalReaper::next_event`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct NextEvent {
    waiter: Waiter,
    shared: Rc<RefCell<Shared>>,
    done: bool,
}

/// One poll of a waiting future: `take` looks for what it waits for,
/// after what the reaper queued was routed; `Pending` once it is enlisted
/// and tokio will wake some waiter.
fn poll_waiter<T>(
    shared: &RefCell<Shared>,
    me: Waiter,
    done: &mut bool,
    cx: &mut Context<'_>,
    mut take: impl FnMut(&mut Shared) -> Option<Result<T>>,
) -> Poll<Result<T>> {
    let mut wake = Vec::new();
    let out = {
        let mut shared = shared.borrow_mut();
        // Running now: not to be woken by what this poll routes.
        shared.delist(me);
        loop {
            shared.route(&mut wake);
            if let Some(out) = take(&mut shared) {
                break Poll::Ready(out);
            }
            match shared.drive(me, cx, &mut wake) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => {
                    shared.enlist(me, cx.waker());
                    break Poll::Pending;
                }
            }
        }
    };
    if out.is_ready() {
        *done = true;
        shared.borrow_mut().leave(me, &mut wake);
    }
    wake.into_iter().for_each(Waker::wake);
    out
}

/// A future dropped while waiting leaves its place to another.
fn drop_waiter(shared: &RefCell<Shared>, me: Waiter, done: bool) {
    if done {
        return;
    }
    let mut wake = Vec::new();
    if let Ok(mut shared) = shared.try_borrow_mut() {
        shared.leave(me, &mut wake);
    }
    wake.into_iter().for_each(Waker::wake);
}

impl Future for WaitChild {
    type Output = Result<Exit>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Exit>> {
        let this = self.get_mut();
        let Waiter::Child(id, _) = this.waiter else {
            unreachable!("a WaitChild waits for a child")
        };
        poll_waiter(
            &this.shared,
            this.waiter,
            &mut this.done,
            cx,
            |shared| match shared.take_exit(id) {
                Some(exit) => Some(Ok(exit)),
                None if shared.fd.get_ref().pid(id).is_none() => Some(Err(Error::NoSuchChild(id))),
                None => None,
            },
        )
    }
}

impl Drop for WaitChild {
    fn drop(&mut self) {
        drop_waiter(&self.shared, self.waiter, self.done);
    }
}

impl Future for NextEvent {
    type Output = Result<Event>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Event>> {
        let this = self.get_mut();
        poll_waiter(&this.shared, this.waiter, &mut this.done, cx, |shared| {
            shared.events.pop_front().map(Ok)
        })
    }
}

impl Drop for NextEvent {
    fn drop(&mut self) {
        drop_waiter(&self.shared, self.waiter, self.done);
    }
}
