//! The controlling terminal's foreground process group, for a supervisor
//! that hands its terminal to the child it runs (see
//! [`Command::foreground_terminal`](crate::Command::foreground_terminal)).

use std::os::fd::AsFd;

use crate::error::{Error, Result};
use crate::sys::terminal;

/// True when `terminal` is the calling process's controlling terminal and
/// the process's group is its foreground group: the process was started
/// in the foreground (by a shell, or as the init of `docker run -it`), not
/// in the background, and may hand the terminal on. False for anything
/// else, a file or pipe included.
/// [tcgetpgrp(3)](https://man7.org/linux/man-pages/man3/tcgetpgrp.3.html)
///
/// ```
/// // Under `cargo test` stdin is rarely a terminal; either way this
/// // returns a bool and never fails.
/// let _ = pidreap::is_foreground(std::io::stdin());
/// ```
pub fn is_foreground(terminal: impl AsFd) -> bool {
    terminal::foreground_group(terminal.as_fd()).is_ok_and(|pgid| pgid == terminal::own_group())
}

/// Makes the calling process's group the foreground group of `terminal`,
/// its controlling terminal: what a supervisor does once the child it gave
/// the terminal to has exited, so that the terminal is its own again (and
/// the shell's, when it exits). The call is made with every signal blocked
/// in the calling thread, so a process outside the foreground group is not
/// stopped by `SIGTTOU` for making it.
/// [tcsetpgrp(3)](https://man7.org/linux/man-pages/man3/tcgetpgrp.3.html)
pub fn take_terminal(terminal: impl AsFd) -> Result<()> {
    terminal::set_foreground_to_own_group(terminal.as_fd()).map_err(|source| Error::Os {
        op: "making this process's group the terminal's foreground group (tcsetpgrp)",
        source,
    })
}
