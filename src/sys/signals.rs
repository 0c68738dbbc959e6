//! Signal masks, the signalfd, and the SIGCHLD disposition check.
//!
//! Masks are handled as the kernel's 64-bit `sigset` (`rt_sigprocmask(2)`
//! with `sigsetsize == 8`), not glibc's 1024-bit `sigset_t`: glibc's
//! `pthread_sigmask` silently refuses to block its two internal signals
//! (32 and 33), and the spawn path must block *everything* around a
//! `CLONE_VM` clone so that no handler ever runs on the child's side.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::signal::Signal;

/// The kernel's signal set: bit `n - 1` stands for signal `n`.
pub(crate) type KernelSigset = u64;

/// The `sigsetsize` argument of the `rt_sig*` system calls.
pub(crate) const KERNEL_SIGSET_SIZE: usize = std::mem::size_of::<KernelSigset>();

/// The bit for one signal.
pub(crate) const fn bit(sig: i32) -> KernelSigset {
    1u64 << (sig - 1)
}

/// Why a signal must never be blocked, or `None` if it may be.
///
/// - SIGKILL and SIGSTOP cannot be blocked at all
///   ([signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html)).
/// - Blocking a synchronous fault signal turns a crash into an instant kill
///   without a handler or a useful core
///   ([sigprocmask(2)](https://man7.org/linux/man-pages/man2/sigprocmask.2.html):
///   "if SIGBUS, SIGFPE, SIGILL, or SIGSEGV are generated while they are
///   blocked, the result is undefined"); SIGTRAP and SIGSYS (a seccomp
///   verdict) are synchronous the same way. SIGABRT is not among them:
///   `abort(3)` unblocks it before raising it
///   ([abort(3)](https://man7.org/linux/man-pages/man3/abort.3.html)).
/// - 32 and 33 belong to the C library
///   ([`Signal::is_reserved`]): blocking them would stall glibc's thread
///   cancellation and `setuid` broadcast.
pub(crate) fn unblockable(sig: Signal) -> Option<&'static str> {
    match sig.as_raw() {
        libc::SIGKILL | libc::SIGSTOP => Some("the kernel never lets SIGKILL or SIGSTOP be blocked"),
        libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP
        | libc::SIGSYS => Some(
            "it is a synchronous fault signal: blocked, a fault would kill the process without a handler or a useful core",
        ),
        _ if sig.is_reserved() => Some(
            "signals 32 and 33 are reserved by the C library (glibc's thread cancellation and setxid; its SIGRTMIN is 34)",
        ),
        _ => None,
    }
}

/// `rt_sigprocmask(how, set, old)` on the calling thread, by the raw
/// syscall so that glibc's filtering of its internal signals does not apply.
/// [rt_sigprocmask(2)](https://man7.org/linux/man-pages/man2/sigprocmask.2.html)
fn sigprocmask(how: libc::c_int, set: Option<&KernelSigset>) -> io::Result<KernelSigset> {
    let mut old: KernelSigset = 0;
    let set_ptr = set.map_or(std::ptr::null(), |s| s as *const KernelSigset);
    // SAFETY: rt_sigprocmask reads 8 bytes from `set_ptr` (or nothing if it
    // is null) and writes 8 bytes to `old`, both valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            set_ptr,
            &mut old as *mut KernelSigset,
            KERNEL_SIGSET_SIZE,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

/// Blocks every signal in the calling thread and returns the previous mask.
pub(crate) fn block_all() -> KernelSigset {
    // Cannot fail: the arguments are valid and SIG_SETMASK always succeeds.
    sigprocmask(libc::SIG_SETMASK, Some(&!0)).unwrap_or(0)
}

/// Sets the calling thread's mask.
pub(crate) fn set_mask(mask: KernelSigset) {
    let _ = sigprocmask(libc::SIG_SETMASK, Some(&mask));
}

/// The calling thread's current mask.
pub(crate) fn current_mask() -> KernelSigset {
    sigprocmask(libc::SIG_BLOCK, None).unwrap_or(0)
}

const NOT_RECORDED: u8 = 0;
const RECORDING: u8 = 1;
const RECORDED: u8 = 2;
static ORIGINAL_STATE: AtomicU8 = AtomicU8::new(NOT_RECORDED);
static ORIGINAL_MASK: AtomicU64 = AtomicU64::new(0);

/// The mask the process had before pidreap first blocked anything, if it
/// has blocked anything.
pub(crate) fn original_mask() -> Option<KernelSigset> {
    (ORIGINAL_STATE.load(Ordering::Acquire) == RECORDED)
        .then(|| ORIGINAL_MASK.load(Ordering::Relaxed))
}

fn record_original(mask: KernelSigset) {
    if ORIGINAL_STATE
        .compare_exchange(NOT_RECORDED, RECORDING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        ORIGINAL_MASK.store(mask, Ordering::Relaxed);
        ORIGINAL_STATE.store(RECORDED, Ordering::Release);
    }
}

/// A signal that [`set_of`] refuses, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unblockable {
    pub(crate) signal: Signal,
    pub(crate) reason: &'static str,
}

/// Builds the kernel set for `signals`, refusing the ones that must never be
/// blocked ([`unblockable`]).
pub(crate) fn set_of(signals: &[Signal]) -> Result<KernelSigset, Unblockable> {
    let mut set = 0;
    for &signal in signals {
        if let Some(reason) = unblockable(signal) {
            return Err(Unblockable { signal, reason });
        }
        set |= bit(signal.as_raw());
    }
    Ok(set)
}

/// Why [`block`] failed.
#[derive(Debug)]
pub(crate) enum BlockError {
    /// A signal that must never be blocked; nothing was blocked.
    Unblockable(Unblockable),
    /// `rt_sigprocmask` failed.
    Os(io::Error),
}

/// Blocks `signals` in the calling thread, first recording the mask the
/// process had, which children get back before exec.
pub(crate) fn block(signals: &[Signal]) -> Result<(), BlockError> {
    let set = set_of(signals).map_err(BlockError::Unblockable)?;
    record_original(current_mask());
    sigprocmask(libc::SIG_BLOCK, Some(&set)).map_err(BlockError::Os)?;
    Ok(())
}

/// A non-blocking, close-on-exec signalfd.
/// [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html)
#[derive(Debug)]
pub(crate) struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// A signalfd for `set` (from [`set_of`]). The signals must be blocked
    /// by the caller.
    ///
    /// By the raw `signalfd4` system call with the kernel's 64-bit set, like
    /// the masks: glibc's `sigaddset` would refuse 32 and 33 (which
    /// [`set_of`] never lets through) and nothing else differs.
    /// [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html)
    pub(crate) fn new(set: KernelSigset) -> io::Result<SignalFd> {
        // SAFETY: signalfd4 reads `KERNEL_SIGSET_SIZE` bytes from `&set`,
        // valid for the call, and returns a new fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_signalfd4,
                -1,
                &set as *const KernelSigset,
                KERNEL_SIGSET_SIZE,
                libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd4 returned a new fd that nothing else owns.
        Ok(SignalFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        })
    }

    /// Reads one pending signal: `Ok(None)` when none is left.
    pub(crate) fn read(&self) -> io::Result<Option<(Signal, i32)>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: read writes at most `size` bytes into `info`.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => self.read(),
                _ => Err(e),
            };
        }
        if n as usize != size {
            return Ok(None);
        }
        // SAFETY: the kernel filled the whole structure.
        let info = unsafe { info.assume_init() };
        Ok(Signal::from_raw(info.ssi_signo as i32).map(|s| (s, info.ssi_pid as i32)))
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// True when SIGCHLD is ignored or has `SA_NOCLDWAIT`: the kernel then
/// reaps children itself and their exit statuses are lost
/// ([sigaction(2)](https://man7.org/linux/man-pages/man2/sigaction.2.html),
/// `SA_NOCLDWAIT`).
pub(crate) fn children_auto_reaped() -> bool {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction only writes the current one
    // into `old`.
    let r = unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), old.as_mut_ptr()) };
    if r != 0 {
        return false;
    }
    // SAFETY: sigaction succeeded and filled `old`.
    let old = unsafe { old.assume_init() };
    old.sa_sigaction == libc::SIG_IGN || old.sa_flags & libc::SA_NOCLDWAIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_of_refuses_what_must_not_be_blocked_and_names_it() {
        for n in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGSYS,
            32,
            33,
        ] {
            let sig = Signal::from_raw(n).unwrap();
            let e = set_of(&[Signal::USR1, sig]).unwrap_err();
            assert_eq!(e.signal, sig);
            assert!(!e.reason.is_empty());
        }
        // Everything else may be blocked, SIGABRT and SIGCHLD included.
        let rest: Vec<Signal> = (1..=64)
            .filter_map(Signal::from_raw)
            .filter(|&s| unblockable(s).is_none())
            .collect();
        assert_eq!(rest.len(), 64 - 10);
        assert!(rest.contains(&Signal::ABRT) && rest.contains(&Signal::CHLD));
        let set = set_of(&rest).unwrap();
        assert_eq!(set.count_ones(), 54);
        assert_eq!(set & (bit(32) | bit(33) | bit(libc::SIGSEGV)), 0);
    }
}
