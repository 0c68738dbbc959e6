//! Signal numbers with names.

use std::fmt;
use std::str::FromStr;

/// A Linux signal number, such as [`Signal::TERM`].
///
/// Parsing accepts a name with or without the `SIG` prefix, in any case
/// (`TERM`, `SIGTERM`, `term`), or a number (`15`), including real-time
/// signals (`RTMIN+3` or `37`).
///
/// Real-time signals are named as the shell's `kill -l` and `kill -s`
/// name them (bash and dash, built against glibc): `RTMIN` is 34, the first
/// real-time signal the C library leaves to programs (glibc keeps 32 and 33
/// for itself, [nptl(7)](https://man7.org/linux/man-pages/man7/nptl.7.html)),
/// `RTMIN+N` is 34 + N and `RTMAX-N` is 64 - N. [`Display`](fmt::Display)
/// uses `RTMIN+N` up to 49 and `RTMAX-N` from 50, as `kill -l` does; parsing
/// accepts either form for any real-time signal from 34 to 64. Signals 32
/// and 33 have no name (they print as `signal 32`) and parse only as
/// numbers ([`is_reserved`](Signal::is_reserved)).
///
/// ```
/// use pidreap::Signal;
/// assert_eq!("term".parse::<Signal>().unwrap(), Signal::TERM);
/// assert_eq!("SIGKILL".parse::<Signal>().unwrap(), Signal::KILL);
/// assert_eq!("10".parse::<Signal>().unwrap(), Signal::USR1);
/// assert_eq!(Signal::INT.to_string(), "SIGINT");
/// assert!("SIGNOPE".parse::<Signal>().is_err());
/// // What `kill -s RTMIN+1` and `kill -s RTMAX-14` send:
/// assert_eq!("RTMIN+1".parse::<Signal>().unwrap().as_raw(), 35);
/// assert_eq!("SIGRTMAX-14".parse::<Signal>().unwrap().as_raw(), 50);
/// assert_eq!(Signal::from_raw(50).unwrap().to_string(), "SIGRTMAX-14");
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

/// The kernel's first real-time signal number.
const KERNEL_RTMIN: i32 = 32;
/// The first real-time signal glibc leaves to programs: `SIGRTMIN` in C
/// (a function there) and `RTMIN` in the shell's `kill -l`.
const RTMIN: i32 = 34;
/// The last real-time signal (`_NSIG - 1`).
const RTMAX: i32 = 64;
/// The last signal `kill -l` names from `RTMIN` (`RTMIN+15`); the ones
/// above are named from `RTMAX`.
const LAST_FROM_RTMIN: i32 = RTMIN + 15;

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
    /// `SIGILL`: illegal instruction (a synchronous fault signal).
    pub const ILL: Signal = Signal(libc::SIGILL);
    /// `SIGTRAP`: trace or breakpoint trap (a synchronous fault signal).
    pub const TRAP: Signal = Signal(libc::SIGTRAP);
    /// `SIGBUS`: bus error, bad memory access (a synchronous fault signal).
    pub const BUS: Signal = Signal(libc::SIGBUS);
    /// `SIGFPE`: arithmetic exception (a synchronous fault signal).
    pub const FPE: Signal = Signal(libc::SIGFPE);
    /// `SIGSYS`: bad system call, or a seccomp filter's verdict (a
    /// synchronous fault signal).
    pub const SYS: Signal = Signal(libc::SIGSYS);
    /// `SIGTTIN`: a background process read from its terminal.
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    /// `SIGTTOU`: a background process wrote to its terminal (with
    /// `TOSTOP`) or changed its settings.
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    /// `SIGPWR`: power failure.
    pub const PWR: Signal = Signal(libc::SIGPWR);
    /// `SIGRTMIN` as glibc and the shell number it: 34, the first
    /// real-time signal programs may use.
    pub const RTMIN: Signal = Signal(RTMIN);
    /// `SIGRTMAX`: 64, the last real-time signal.
    pub const RTMAX: Signal = Signal(RTMAX);

    /// The signal with this number, if it is one (1 to 64).
    pub const fn from_raw(signo: i32) -> Option<Signal> {
        if signo >= 1 && signo <= RTMAX {
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

    /// True for signals 32 and 33: real-time signals for the kernel, which
    /// the C library keeps for its own use (glibc's thread cancellation and
    /// `setxid` broadcast, [nptl(7)](https://man7.org/linux/man-pages/man7/nptl.7.html);
    /// its `SIGRTMIN` is therefore 34). glibc's `sigaddset` and
    /// `sigprocmask` refuse them, and
    /// [`block_signals`](crate::block_signals) and
    /// [`handle_signals`](crate::ReaperBuilder::handle_signals) refuse them
    /// too ([`Error::SignalNotBlockable`](crate::Error::SignalNotBlockable)).
    pub const fn is_reserved(self) -> bool {
        self.0 >= KERNEL_RTMIN && self.0 < RTMIN
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "SIG{name}"),
            None if self.0 == RTMIN => f.write_str("SIGRTMIN"),
            None if self.0 == RTMAX => f.write_str("SIGRTMAX"),
            None if self.0 > RTMIN && self.0 <= LAST_FROM_RTMIN => {
                write!(f, "SIGRTMIN+{}", self.0 - RTMIN)
            }
            None if self.0 > LAST_FROM_RTMIN => write!(f, "SIGRTMAX-{}", RTMAX - self.0),
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
        // RTMIN+N and RTMAX-N, as the shell's `kill -s` takes them.
        let realtime = if let Some(rest) = bare.strip_prefix("RTMIN") {
            offset(rest, '+').map(|n| RTMIN + n)
        } else if let Some(rest) = bare.strip_prefix("RTMAX") {
            offset(rest, '-').map(|n| RTMAX - n)
        } else {
            None
        };
        match realtime {
            Some(n) if (RTMIN..=RTMAX).contains(&n) => Ok(Signal(n)),
            _ => Err(err()),
        }
    }
}

/// The `N` of `RTMIN+N` or `RTMAX-N` from what follows `RTMIN`/`RTMAX`:
/// 0 for nothing, else `sign` and at most two digits.
fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix(sign)?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
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
        assert!("0".parse::<Signal>().is_err());
        assert!("65".parse::<Signal>().is_err());
        assert!("".parse::<Signal>().is_err());
    }

    /// What `kill -l` prints in bash and dash (glibc): 34 RTMIN,
    /// 35..=49 RTMIN+1..=RTMIN+15, 50..=63 RTMAX-14..=RTMAX-1, 64 RTMAX.
    #[test]
    fn realtime_names_match_the_shell() {
        let name = |n: i32| Signal::from_raw(n).unwrap().to_string();
        assert_eq!(name(34), "SIGRTMIN");
        assert_eq!(name(35), "SIGRTMIN+1");
        assert_eq!(name(36), "SIGRTMIN+2");
        assert_eq!(name(49), "SIGRTMIN+15");
        assert_eq!(name(50), "SIGRTMAX-14");
        assert_eq!(name(63), "SIGRTMAX-1");
        assert_eq!(name(64), "SIGRTMAX");
        assert_eq!(name(32), "signal 32");
        assert_eq!(name(33), "signal 33");
        let raw = |s: &str| s.parse::<Signal>().map(Signal::as_raw);
        assert_eq!(raw("RTMIN"), Ok(34));
        assert_eq!(raw("rtmin+2"), Ok(36));
        assert_eq!(raw("SIGRTMIN+30"), Ok(64));
        assert_eq!(raw("RTMAX"), Ok(64));
        assert_eq!(raw("RTMAX-1"), Ok(63));
        assert_eq!(raw("RTMAX-30"), Ok(34));
        assert_eq!(raw("RTMIN+0"), Ok(34));
        for bad in [
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMAX-",
            "RTMIN+-1",
            "RTMIN++1",
            "RTMIN+001",
            "RTMIN 1",
            "RTMINX",
            "SIG32",
            "RT",
        ] {
            assert!(bad.parse::<Signal>().is_err(), "{bad:?} parsed");
        }
        // 32 and 33 are reachable by number only.
        assert_eq!(raw("32"), Ok(32));
        assert!(Signal::from_raw(32).unwrap().is_reserved());
        assert!(Signal::from_raw(33).unwrap().is_reserved());
        assert!(!Signal::RTMIN.is_reserved() && !Signal::from_raw(31).unwrap().is_reserved());
    }

    /// Every signal but 32 and 33 prints as a name that parses back to it.
    #[test]
    fn every_signal_round_trips_through_display() {
        for n in 1..=64 {
            let sig = Signal::from_raw(n).unwrap();
            if sig.is_reserved() {
                continue;
            }
            let shown = sig.to_string();
            assert_eq!(shown.parse::<Signal>(), Ok(sig), "{shown}");
        }
    }
}
