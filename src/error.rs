//! The crate's error type.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use crate::engine::ChildId;
use crate::signal::Signal;

/// Everything that can go wrong, each variant naming what failed.
///
/// `Display` says what failed; the cause (the kernel's `errno`, as an
/// [`io::Error`]) is the [`source`](std::error::Error::source), never
/// repeated in the message, so an error reporter that prints the message
/// and then each source prints each once. To print both on one line, walk
/// the chain:
///
/// ```
/// use std::error::Error as _;
/// let mut reaper = pidreap::Reaper::new().unwrap();
/// let e = reaper.spawn(&pidreap::Command::new("/nonexistent/program")).unwrap_err();
/// assert_eq!(e.to_string(), r#"cannot execute "/nonexistent/program""#);
/// let cause = e.source().expect("the errno");
/// assert_eq!(cause.to_string(), std::io::Error::from_raw_os_error(libc::ENOENT).to_string());
/// ```
///
/// Converted to an [`io::Error`] (`?` in a function returning
/// `io::Result`), it keeps its kind; see the `From` impl below.
///
/// A failed [`spawn`](crate::Reaper::spawn) never leaves a child behind:
/// a child that was created and then failed (exec error, bad directory, ...)
/// is reaped before the error is returned; its errors name the program, not
/// the pid, which no longer belongs to it. Errors about a live child name
/// it by pid ([`Error::SignalChild`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `execve` failed: the program was not found (`ENOENT`), is not
    /// executable (`EACCES`; `ENOEXEC` for a binary the kernel cannot run,
    /// see [`Command::new`](crate::Command::new)), and so on.
    #[error("cannot execute {program:?}")]
    Exec {
        /// The program as given to [`Command::new`](crate::Command::new).
        program: OsString,
        /// The `errno` from `execve`.
        #[source]
        source: io::Error,
    },
    /// The child could not change to its working directory.
    #[error("cannot change directory to {dir:?} for {program:?}")]
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
    #[error("setting up {program:?} failed while {step}")]
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
    #[error("{op} failed")]
    Os {
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel lacks something pidreap cannot work without (pidfds need
    /// Linux 5.3; `waitid(P_PIDFD)` 5.4).
    #[error("{what} is not available here")]
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
    /// The id names no live child of this reaper. The message names the
    /// child by its [`ChildId`], not by pid: a child that is not (or no
    /// longer) supervised has no pid the reaper knows.
    #[error("no live child {0}")]
    NoSuchChild(ChildId),
    /// Sending a signal to a live child, or to its contained tree, failed.
    #[error("sending {signal} to {} {pid} failed", if *.tree { "the tree of child pid" } else { "child pid" })]
    SignalChild {
        /// The child's pid.
        pid: u32,
        /// The signal.
        signal: Signal,
        /// True when it was sent to the child's whole contained tree
        /// ([`Reaper::signal_tree`](crate::Reaper::signal_tree)).
        tree: bool,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
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

/// Keeps the kind: an exec error's own (`NotFound` for `ENOENT`,
/// `PermissionDenied` for `EACCES` and `EPERM`, ...), and likewise for
/// every error carrying an `errno`; `Unsupported` for
/// [`Error::Unsupported`] and [`Error::ContainmentUnavailable`];
/// `InvalidInput` for [`Error::InvalidInput`] and
/// [`Error::SignalNotBlockable`]; `NotFound` for [`Error::NoSuchChild`];
/// `Other` for [`Error::ChildrenAutoReaped`]. The pidreap error is the
/// inner error ([`io::Error::get_ref`], `into_inner`, `downcast`), so its
/// message and source chain are those of the result.
///
/// ```
/// let mut reaper = pidreap::Reaper::new().unwrap();
/// let e = reaper.spawn(&pidreap::Command::new("/nonexistent/program")).unwrap_err();
/// let io: std::io::Error = e.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// assert!(io.get_ref().unwrap().is::<pidreap::Error>());
/// ```
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Exec { source, .. }
            | Error::Chdir { source, .. }
            | Error::ChildSetup { source, .. }
            | Error::Os { source, .. }
            | Error::SignalChild { source, .. } => source.kind(),
            Error::Unsupported { .. } | Error::ContainmentUnavailable { .. } => {
                io::ErrorKind::Unsupported
            }
            Error::InvalidInput(_) | Error::SignalNotBlockable { .. } => {
                io::ErrorKind::InvalidInput
            }
            Error::NoSuchChild(_) => io::ErrorKind::NotFound,
            Error::ChildrenAutoReaped => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
