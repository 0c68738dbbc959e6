//! The calling process and its controlling terminal's foreground process
//! group. [tcgetpgrp(3)](https://man7.org/linux/man-pages/man3/tcgetpgrp.3.html),
//! [credentials(7)](https://man7.org/linux/man-pages/man7/credentials.7.html)

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::sys::signals;

/// The foreground process group of `terminal`, which must be the calling
/// process's controlling terminal (`ENOTTY` otherwise).
pub(crate) fn foreground_group(terminal: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: tcgetpgrp takes an fd, borrowed for the call.
    let pgid = unsafe { libc::tcgetpgrp(terminal.as_raw_fd()) };
    if pgid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pgid)
}

/// The calling process's process group.
pub(crate) fn own_group() -> i32 {
    // SAFETY: getpgrp takes nothing and cannot fail.
    unsafe { libc::getpgrp() }
}

/// Makes the calling process's group the foreground group of `terminal`.
/// A caller outside the foreground group would get `SIGTTOU` (which stops
/// it by default) instead of the change, unless the signal is blocked or
/// ignored: every signal is blocked in the calling thread for the call.
pub(crate) fn set_foreground_to_own_group(terminal: BorrowedFd<'_>) -> io::Result<()> {
    let mask = signals::block_all();
    // SAFETY: tcsetpgrp takes an fd, borrowed for the call, and a pgid.
    let r = unsafe { libc::tcsetpgrp(terminal.as_raw_fd(), libc::getpgrp()) };
    let err = io::Error::last_os_error();
    signals::set_mask(mask);
    if r < 0 {
        return Err(err);
    }
    Ok(())
}
