//! Signal numbers with names.

use std::fmt;
use std::str::FromStr;

/// A Linux signal number, such as [`Signal::TERM`].
///
/// Parsing accepts a name with or without the `SIG` prefix, in any case
/// (`TERM`, `SIGTERM`, `term`), or a number (`15`), including real-time
/// signals (`RTMIN+3` or `37`).
///
/// ```
/// use pidreap::Signal;
/// assert_eq!("term".parse::<Signal>().unwrap(), Signal::TERM);
/// assert_eq!("SIGKILL".parse::<Signal>().unwrap(), Signal::KILL);
/// assert_eq!("10".parse::<Signal>().unwrap(), Signal::USR1);
/// assert_eq!(Signal::INT.to_string(), "SIGINT");
/// assert!("SIGNOPE".parse::<Signal>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The kernel's first real-time signal number. glibc reserves the first
/// two or three for itself, which is why `SIGRTMIN` in C is a function;
/// pidreap names signals by the kernel's numbering.
const KERNEL_RTMIN: i32 = 32;
const KERNEL_RTMAX: i32 = 64;

impl Signal {
    /// `SIGHUP`: the controlling terminal hung up; by convention "reload".
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`: interrupt from the keyboard (Ctrl-C).
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`: quit from the keyboard (Ctrl-\\), with a core dump.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGKILL`: cannot be caught, blocked or ignored.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// `SIGUSR1`: for the program's own use.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGUSR2`: for the program's own use.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGPIPE`: write to a pipe with no reader.
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// `SIGALRM`: timer expired.
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// `SIGTERM`: the polite request to terminate.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGCHLD`: a child stopped or terminated.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// `SIGCONT`: continue if stopped.
    pub const CONT: Signal = Signal(libc::SIGCONT);
    /// `SIGSTOP`: stop; cannot be caught, blocked or ignored.
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// `SIGTSTP`: stop typed at the terminal (Ctrl-Z).
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    /// `SIGWINCH`: the terminal window changed size.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);
    /// `SIGSEGV`: invalid memory reference.
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    /// `SIGABRT`: abort.
    pub const ABRT: Signal = Signal(libc::SIGABRT);

    /// The signal with this number, if it is one (1 to 64).
    pub const fn from_raw(signo: i32) -> Option<Signal> {
        if signo >= 1 && signo <= KERNEL_RTMAX {
            Some(Signal(signo))
        } else {
            None
        }
    }

    /// The signal's number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// The name without the `SIG` prefix (`"TERM"`), or `None` for a
    /// real-time signal.
    pub fn name(self) -> Option<&'static str> {
        NAMES.iter().find(|(_, n)| *n == self.0).map(|(s, _)| *s)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "SIG{name}"),
            None if self.0 >= KERNEL_RTMIN => write!(f, "SIGRTMIN+{}", self.0 - KERNEL_RTMIN),
            None => write!(f, "signal {}", self.0),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}({})", self.0)
    }
}

/// The error from parsing a [`Signal`]: the text was not a signal name or
/// number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?} (expected a name like TERM or SIGTERM, or a number from 1 to 64)")]
pub struct ParseSignalError(String);

impl FromStr for Signal {
    type Err = ParseSignalError;

    fn from_str(s: &str) -> Result<Signal, ParseSignalError> {
        let err = || ParseSignalError(s.to_owned());
        let t = s.trim();
        if let Ok(n) = t.parse::<i32>() {
            return Signal::from_raw(n).ok_or_else(err);
        }
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(&(_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
            return Ok(Signal(n));
        }
        if bare == "IOT" {
            return Ok(Signal::ABRT);
        }
        if bare == "POLL" {
            return Ok(Signal(libc::SIGIO));
        }
        if let Some(rest) = bare.strip_prefix("RTMIN") {
            let off = if rest.is_empty() {
                0
            } else {
                rest.strip_prefix('+')
                    .and_then(|r| r.parse::<i32>().ok())
                    .ok_or_else(err)?
            };
            return Signal::from_raw(KERNEL_RTMIN + off).ok_or_else(err);
        }
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for &(name, n) in NAMES {
            let sig: Signal = name.parse().unwrap();
            assert_eq!(sig.as_raw(), n);
            assert_eq!(sig.to_string().parse::<Signal>().unwrap(), sig);
        }
    }

    #[test]
    fn numbers_and_realtime() {
        assert_eq!("9".parse::<Signal>().unwrap(), Signal::KILL);
        assert_eq!("rtmin+2".parse::<Signal>().unwrap().as_raw(), 34);
        assert_eq!(Signal::from_raw(34).unwrap().to_string(), "SIGRTMIN+2");
        assert!("0".parse::<Signal>().is_err());
        assert!("65".parse::<Signal>().is_err());
        assert!("".parse::<Signal>().is_err());
        assert!("RTMIN+40".parse::<Signal>().is_err());
    }
}
