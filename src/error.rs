//! The crate's error type.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use crate::engine::ChildId;
use crate::signal::Signal;

/// Everything that can go wrong, each variant naming what failed.
///
/// A failed [`spawn`](crate::Reaper::spawn) never leaves a child behind:
/// a child that was created and then failed (exec error, bad directory, ...)
/// is reaped before the error is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `execve` failed: the program was not found (`ENOENT`), is not
    /// executable (`EACCES`; `ENOEXEC` for a binary the kernel cannot run,
    /// see [`Command::new`](crate::Command::new)), and so on.
    #[error("cannot execute {program:?}: {source}")]
    Exec {
        /// The program as given to [`Command::new`](crate::Command::new).
        program: OsString,
        /// The `errno` from `execve`.
        #[source]
        source: io::Error,
    },
    /// The child could not change to its working directory.
    #[error("cannot change directory to {dir:?} for {program:?}: {source}")]
    Chdir {
        /// The program.
        program: OsString,
        /// The directory.
        dir: PathBuf,
        /// The `errno` from `chdir`.
        #[source]
        source: io::Error,
    },
    /// Another step of the child's setup before exec failed.
    #[error("setting up {program:?} failed while {step}: {source}")]
    ChildSetup {
        /// The program.
        program: OsString,
        /// What the child was doing.
        step: &'static str,
        /// The `errno`.
        #[source]
        source: io::Error,
    },
    /// A system call in the supervisor failed (fd exhaustion shows up here
    /// as `EMFILE` on the operation that needed an fd).
    #[error("{op} failed: {source}")]
    Os {
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel lacks something pidreap cannot work without (pidfds need
    /// Linux 5.3; `waitid(P_PIDFD)` 5.4).
    #[error("{what} is not available here: {source}")]
    Unsupported {
        /// The missing feature.
        what: &'static str,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The [`Containment`](crate::Containment) asked for cannot be had
    /// here; nothing was started.
    #[error("{mechanism} containment is not available here: {reason}")]
    ContainmentUnavailable {
        /// The mechanism's [`name`](crate::Containment::name).
        mechanism: &'static str,
        /// What is missing, and what the kernel said.
        reason: String,
    },
    /// SIGCHLD is ignored or has `SA_NOCLDWAIT`, so the kernel would reap
    /// children itself and their exit statuses would be lost.
    #[error("SIGCHLD is set to SIG_IGN or SA_NOCLDWAIT in this process: children would be reaped by the kernel and their statuses lost; restore SIGCHLD to SIG_DFL")]
    ChildrenAutoReaped,
    /// An argument, variable or path holds a NUL byte, or a value is out of
    /// range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The id names no live child of this reaper.
    #[error("no live child {0}")]
    NoSuchChild(ChildId),
    /// A signal given to [`block_signals`](crate::block_signals) or
    /// [`handle_signals`](crate::ReaperBuilder::handle_signals) cannot be
    /// blocked and read from a signalfd; nothing was blocked.
    #[error("{signal} cannot be blocked: {reason}")]
    SignalNotBlockable {
        /// The signal.
        signal: Signal,
        /// Why.
        reason: &'static str,
    },
}

impl Error {
    /// True when the program was not found: `execve` said `ENOENT` (a shell
    /// exits 127 then).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Exec { source, .. } if source.raw_os_error() == Some(libc::ENOENT))
    }

    /// True when the program was found but could not be executed (a shell
    /// exits 126 then).
    pub fn is_not_executable(&self) -> bool {
        matches!(self, Error::Exec { .. }) && !self.is_not_found()
    }

    /// The exit status a supervisor command reports for this error, by the
    /// convention of shells, tini and `docker run`: 127 when the program was
    /// not found, 126 when it could not be executed, 125 for anything else
    /// (the supervisor's own failure).
    ///
    /// ```
    /// let e = pidreap::Error::InvalidInput("bad".into());
    /// assert_eq!(e.exit_code(), 125);
    /// ```
    pub fn exit_code(&self) -> i32 {
        if self.is_not_found() {
            127
        } else if self.is_not_executable() {
            126
        } else {
            125
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
