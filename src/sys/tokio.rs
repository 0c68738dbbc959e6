//! Registering pidreap's fds in tokio's reactor (feature `tokio`):
//! `AsyncFd::register_with_interest` is `unsafe` because tokio must trust
//! that the fd stays open and the same while registered. Both types here
//! guarantee that, for the reasons given at each call.

use std::io;

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;

use crate::pidfd::PidFd;
use crate::reaper::Reaper;

/// Registers a reaper's epoll fd for readability.
pub(crate) fn register_reaper(reaper: Reaper) -> io::Result<AsyncFd<Reaper>> {
    // SAFETY: a Reaper's fd is its epoll instance, made in `Reaper::new` and
    // closed only when the Reaper is dropped; `as_raw_fd` always returns
    // that one fd. The AsyncFd owns the Reaper, so the fd stays open and the
    // same for as long as it is registered.
    unsafe { AsyncFd::register_with_interest(reaper, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Registers a child's pidfd for readability (readable once it exited).
pub(crate) fn register_pidfd(pidfd: PidFd) -> io::Result<AsyncFd<PidFd>> {
    // SAFETY: a PidFd gives its fd up only through `into_raw_fd` or
    // `From<PidFd> for OwnedFd`, both of which consume it, and the AsyncFd
    // owns it; until then `as_raw_fd` always returns the same open fd.
    unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}
