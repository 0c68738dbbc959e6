//! Process-wide setup: what to call at the top of `main`, before any
//! thread exists.

use crate::error::{Error, Result};
use crate::signal::Signal;
use crate::sys::{fd, signals};

/// The signals [`ReaperBuilder::handle_signals`](crate::ReaperBuilder::handle_signals) is usually given: the ones
/// that ask a supervisor to stop or reload.
pub const STOP_SIGNALS: [Signal; 4] = [Signal::TERM, Signal::INT, Signal::HUP, Signal::QUIT];

/// Blocks `signals` in the calling thread so that a reaper's signalfd can
/// read them. Call it at the top of `main`, before any thread exists: every
/// thread created afterwards inherits the mask, and a signal that some
/// thread does not block is delivered there instead of to the signalfd
/// ([signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html)).
///
/// Refused with [`Error::SignalNotBlockable`], before anything is blocked:
/// SIGKILL and SIGSTOP (the kernel never blocks them), the synchronous
/// fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS: blocked,
/// a fault kills the process without a handler), and signals 32 and 33,
/// which the C library keeps for itself ([`Signal::is_reserved`]). SIGABRT
/// may be blocked: `abort(3)` unblocks it before raising it
/// ([abort(3)](https://man7.org/linux/man-pages/man3/abort.3.html)).
/// Children never inherit the blocked mask: they get back the mask the
/// process had before the first call.
///
/// ```
/// use pidreap::{Error, Signal};
/// let reserved = Signal::from_raw(32).unwrap();
/// let e = pidreap::block_signals(&[Signal::USR1, reserved]).unwrap_err();
/// assert!(matches!(e, Error::SignalNotBlockable { signal, .. } if signal == reserved));
/// ```
pub fn block_signals(signals: &[Signal]) -> Result<()> {
    signals::block(signals).map_err(|e| match e {
        signals::BlockError::Unblockable(u) => Error::SignalNotBlockable {
            signal: u.signal,
            reason: u.reason,
        },
        signals::BlockError::Os(source) => Error::Os {
            op: "blocking signals (rt_sigprocmask)",
            source,
        },
    })
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new
/// soft limit. Children get the original limits back before exec, since
/// programs that use `select(2)` break with fds above 1024
/// ([select(2)](https://man7.org/linux/man-pages/man2/select.2.html)).
pub fn raise_fd_limit() -> Result<u64> {
    fd::raise_nofile().map_err(|source| Error::Os {
        op: "raising RLIMIT_NOFILE",
        source,
    })
}
