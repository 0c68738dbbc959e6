//! Cancel tokens: eventfds that other threads write to start a stop
//! ladder, and the table of them the reaper watches.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use mio::unix::SourceFd;
use mio::{Interest, Registry};

use super::{token, KIND_CANCEL};
use crate::engine::{ChildId, GroupId};
use crate::error::{Error, Result};
use crate::sys::fd;

/// Starts a child's (or a group's) stop ladder from any thread.
///
/// `Send + Sync + Clone`. [`cancel`](CancelToken::cancel) writes to an
/// eventfd the reaper watches: it never blocks and never fails (a counter at
/// its maximum is still "cancelled", see
/// [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)).
/// Cancelling a child that was already reaped does nothing.
#[derive(Debug, Clone)]
pub struct CancelToken {
    fd: Arc<OwnedFd>,
}

impl CancelToken {
    /// Asks the reaper to start the stop ladder. Returns at once.
    pub fn cancel(&self) {
        fd::eventfd_signal(self.fd.as_fd());
    }
}

/// What a token stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Target {
    Child(ChildId),
    Group(GroupId),
    All,
}

#[derive(Debug)]
struct Registration {
    fd: Arc<OwnedFd>,
    target: Target,
}

/// The registered tokens, by slot (the slot is the epoll token's index).
/// A child's token is dropped when the child is reaped; group and "all"
/// tokens live as long as the reaper.
#[derive(Debug, Default)]
pub(super) struct Cancels {
    slots: Vec<Option<Registration>>,
    free: Vec<usize>,
    shared: HashMap<Target, usize>,
}

impl Cancels {
    /// The token in slot `slot`.
    pub(super) fn token(&self, slot: usize) -> Option<CancelToken> {
        let reg = self.slots.get(slot)?.as_ref()?;
        Some(CancelToken { fd: reg.fd.clone() })
    }

    /// The slot of the shared token for `target`, if one was made.
    pub(super) fn shared(&self, target: Target) -> Option<usize> {
        self.shared.get(&target).copied()
    }

    /// Makes a token for `target` and registers its eventfd; returns its
    /// slot. `shared` tokens are remembered per target.
    pub(super) fn create(
        &mut self,
        registry: &Registry,
        target: Target,
        fd_floor: i32,
        shared: bool,
    ) -> Result<usize> {
        let efd = fd::eventfd().map_err(|source| Error::Os {
            op: "creating a cancel eventfd",
            source,
        })?;
        let efd = Arc::new(fd::move_high(efd, fd_floor));
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        if let Err(source) = super::watch(
            registry,
            efd.as_fd(),
            token(KIND_CANCEL, slot),
            Interest::READABLE,
        ) {
            self.free.push(slot);
            return Err(Error::Os {
                op: "registering a cancel eventfd",
                source,
            });
        }
        self.slots[slot] = Some(Registration { fd: efd, target });
        if shared {
            self.shared.insert(target, slot);
        }
        Ok(slot)
    }

    /// Drops the token in `slot`. Token holders keep the eventfd open, so
    /// it must leave the epoll set explicitly.
    pub(super) fn remove(&mut self, registry: &Registry, slot: usize) {
        if let Some(reg) = self.slots.get_mut(slot).and_then(Option::take) {
            let raw = reg.fd.as_raw_fd();
            let _ = registry.deregister(&mut SourceFd(&raw));
            self.free.push(slot);
        }
    }

    /// The eventfd of `slot` was readable: resets it and returns what to
    /// stop, or `None` for a stale wake-up.
    pub(super) fn take_fired(&self, slot: usize) -> Option<Target> {
        let reg = self.slots.get(slot)?.as_ref()?;
        (fd::drain_counter(reg.fd.as_fd()) != 0).then_some(reg.target)
    }
}
