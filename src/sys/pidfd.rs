//! Signalling and reaping through pidfds: `pidfd_send_signal(2)` and the raw
//! `waitid(2)` system call, whose fifth argument returns the child's resource
//! usage (glibc's wrapper hides it).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::signal::Signal;
use crate::status::{ExitStatus, ResourceUsage};

/// `PIDFD_SIGNAL_PROCESS_GROUP` (Linux 6.9): signal the process group the
/// pidfd's process leads, through the pidfd, with no pgid-reuse race.
const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 1 << 2;

/// Set once the kernel has refused `PIDFD_SIGNAL_PROCESS_GROUP`.
static NO_GROUP_FLAG: AtomicBool = AtomicBool::new(false);

/// Set once the kernel (or a seccomp filter) has refused
/// `pidfd_send_signal` itself (`ENOSYS` before Linux 5.1, `EPERM` from a
/// filter): children are signalled with `kill(2)` while unreaped.
static NO_PIDFD_SIGNAL: AtomicBool = AtomicBool::new(false);

/// A child of this process while it is unreaped: its pidfd, or, where the
/// kernel gives none (no-pidfd mode: Linux before 5.3, or a sandbox
/// refusing pidfds), its pid alone. While the child is unreaped its pid
/// cannot be reused, so `kill(2)` and `waitid(P_PID)` on it are as exact
/// as the pidfd calls.
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
#[derive(Debug)]
pub(crate) struct ChildHandle {
    pub(crate) pidfd: Option<OwnedFd>,
    pub(crate) pid: i32,
}

impl ChildHandle {
    /// The pidfd, if there is one.
    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// Sends `sig` to the child (to the group it leads, with `group`):
    /// through the pidfd, else with `kill(2)`. Only for an unreaped child.
    pub(crate) fn send_signal(&self, sig: Signal, group: bool) -> io::Result<bool> {
        signal_child(self.pidfd(), self.pid, sig, group)
    }

    /// Reaps the child if it has exited, without blocking.
    pub(crate) fn try_reap(&self) -> io::Result<Reaped> {
        match self.pidfd() {
            Some(fd) => match try_reap(fd) {
                // waitid(P_PIDFD) needs Linux 5.4; the pid is stable while
                // the child is unreaped, so P_PID is race-free here.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => try_reap_pid(self.pid),
                other => other,
            },
            None => try_reap_pid(self.pid),
        }
    }
}

/// Sends `sig` to our unreaped child `pid` (to the group it leads, with
/// `group`): through `pidfd` when there is one and the kernel takes
/// `pidfd_send_signal`; else, or once the kernel refused that call
/// (`ENOSYS` before Linux 5.1, `EPERM` from a seccomp filter), with
/// `kill(2)`, which is exact while the child is unreaped.
pub(crate) fn signal_child(
    pidfd: Option<BorrowedFd<'_>>,
    pid: i32,
    sig: Signal,
    group: bool,
) -> io::Result<bool> {
    let by_pid = |pid, sig| {
        if group {
            kill_group(pid, sig)
        } else {
            kill_pid(pid, sig)
        }
    };
    let Some(fd) = pidfd.filter(|_| !NO_PIDFD_SIGNAL.load(Ordering::Relaxed)) else {
        return by_pid(pid, sig);
    };
    match send_signal(fd, pid, sig, group) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            if !NO_PIDFD_SIGNAL.swap(true, Ordering::Relaxed) {
                log::info!("pidfd_send_signal refused ({e}): children are signalled with kill() while unreaped");
            }
            by_pid(pid, sig)
        }
        other => other,
    }
}

/// `kill(pid, sig)`; `Ok(false)` when there is no such process (`ESRCH`).
/// Only for an unreaped child of ours, whose pid cannot have been reused.
/// [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html)
fn kill_pid(pid: i32, sig: Signal) -> io::Result<bool> {
    kill_target(pid, sig)
}

/// `kill(target, sig)` for a process (`target` > 0) or a group
/// (`-pgid`); `Ok(false)` on `ESRCH`.
fn kill_target(target: i32, sig: Signal) -> io::Result<bool> {
    // SAFETY: kill takes two integers; which process or group `target`
    // names is the callers' concern (see kill_pid and kill_group).
    let r = unsafe { libc::kill(target, sig.as_raw()) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// How long an error path waits for a child it just SIGKILLed before it
/// hands the child to [`reap_later`].
pub(crate) const KILLED_REAP_BOUND: Duration = Duration::from_millis(500);

/// Reaps a child that was just sent SIGKILL (or is known to be exiting),
/// waiting at most `bound`: in `poll(2)` on its pidfd, or, with no pidfd,
/// retrying `waitid(WNOHANG)` with short sleeps. A child that cannot die
/// yet (in uninterruptible sleep, or frozen by a cgroup freezer, where
/// SIGKILL waits for the thaw) is not waited for longer: `Ok(NotYet)`,
/// and the caller hands it to [`reap_later`].
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html),
/// [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
pub(crate) fn reap_bounded(child: &ChildHandle, bound: Duration) -> io::Result<Reaped> {
    let deadline = Instant::now() + bound;
    let mut nap = Duration::from_micros(100);
    loop {
        match child.try_reap()? {
            Reaped::NotYet => {}
            done => return Ok(done),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Reaped::NotYet);
        }
        match child.pidfd() {
            Some(fd) => {
                let ts = rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as _,
                };
                let mut fds = [rustix::event::PollFd::from_borrowed_fd(
                    fd,
                    rustix::event::PollFlags::IN,
                )];
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                std::thread::sleep(nap.min(left));
                nap = (nap * 2).min(Duration::from_millis(10));
            }
        }
    }
}

/// Children that were SIGKILLed on an error path but could not be reaped
/// within [`KILLED_REAP_BOUND`]: retried (`WNOHANG`) by
/// [`retry_reap_later`], which every spawn and every
/// [`Reaper::poll`](crate::Reaper::poll) calls.
static REAP_LATER: Mutex<Vec<ChildHandle>> = Mutex::new(Vec::new());
/// Whether [`REAP_LATER`] may hold a child: spares the lock when it is empty.
static REAP_LATER_PENDING: AtomicBool = AtomicBool::new(false);

/// SIGKILLs `child` and reaps it within `bound`; a child that is still not
/// reapable then (frozen, or in uninterruptible sleep) is handed to the
/// process-wide "reap later" list, logged, and reaped by a later call of
/// [`retry_reap_later`]. Never blocks longer than `bound`.
pub(crate) fn kill_and_reap(child: ChildHandle, group: bool, bound: Duration) {
    if group {
        let _ = child.send_signal(Signal::KILL, true);
    }
    let _ = child.send_signal(Signal::KILL, false);
    reap_or_defer(child, bound);
}

/// Reaps `child` (already SIGKILLed, or exiting) within `bound`, else
/// hands it to the "reap later" list (see [`kill_and_reap`]).
pub(crate) fn reap_or_defer(child: ChildHandle, bound: Duration) {
    match reap_bounded(&child, bound) {
        Ok(Reaped::NotYet) => {
            log::warn!(
                "pid {} was not reapable within {bound:?} of SIGKILL (frozen, or in uninterruptible sleep); it will be reaped later",
                child.pid
            );
            REAP_LATER
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(child);
            REAP_LATER_PENDING.store(true, Ordering::Release);
        }
        Ok(_) => {}
        Err(e) => log::error!("reaping the killed pid {} failed: {e}", child.pid),
    }
}

/// Reaps (`WNOHANG`) what [`kill_and_reap`] could not; returns how many
/// are still waiting.
pub(crate) fn retry_reap_later() -> usize {
    if !REAP_LATER_PENDING.load(Ordering::Acquire) {
        return 0;
    }
    let mut list = REAP_LATER.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|child| match child.try_reap() {
        Ok(Reaped::NotYet) => true,
        Ok(Reaped::Exited { status, .. }) => {
            log::info!(
                "reaped pid {} later, after its failed spawn: {status}",
                child.pid
            );
            false
        }
        Ok(Reaped::Gone) => false,
        Err(e) => {
            log::error!("reaping pid {} later failed: {e}", child.pid);
            false
        }
    });
    if list.is_empty() {
        REAP_LATER_PENDING.store(false, Ordering::Release);
    }
    list.len()
}

/// Sends `sig` to the process behind `pidfd` (or, with `group`, to the
/// process group it leads). A process that has already exited gives
/// `ESRCH`, which is reported as `Ok(false)`.
/// [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
///
/// With `group` on a kernel older than 6.9 (which refuses the flag with
/// `EINVAL`) the group is signalled with `kill(-pgid)`, from the first
/// refusal on. That is safe here because it is only ever called for an
/// unreaped leader: while the leader is unreaped its pid, and so its group
/// id, cannot be reused.
pub(crate) fn send_signal(
    pidfd: BorrowedFd<'_>,
    pid: i32,
    sig: Signal,
    group: bool,
) -> io::Result<bool> {
    if group && NO_GROUP_FLAG.load(Ordering::Relaxed) {
        return kill_group(pid, sig);
    }

    let flags = if group { PIDFD_SIGNAL_PROCESS_GROUP } else { 0 };
    // SAFETY: pidfd_send_signal takes an fd, a signal number, a null info
    // pointer (meaning "as kill(2) would") and flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig.as_raw(),
            std::ptr::null::<libc::siginfo_t>(),
            flags,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        Some(libc::EINVAL) if group => {
            if !NO_GROUP_FLAG.swap(true, Ordering::Relaxed) {
                log::info!("pidfd_send_signal has no PIDFD_SIGNAL_PROCESS_GROUP (Linux < 6.9): signalling groups with kill(-pgid) while the leader is unreaped");
            }
            kill_group(pid, sig)
        }
        _ => Err(e),
    }
}

/// `kill(-pgid, sig)`; `Ok(false)` when the group has no member left
/// (`ESRCH`). Signal 0 only checks whether the group has a member.
///
/// The group's id cannot name another group while our child `pgid` is
/// unreaped, nor while any process is in the group (the kernel frees a pid
/// number only once no process uses it as its pid, group or session id).
/// Once the leader was reaped and the last member exited, the number may
/// be reused; a caller that keeps signalling a group after reaping its
/// leader stops at the first `ESRCH`.
/// [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html),
/// [credentials(7)](https://man7.org/linux/man-pages/man7/credentials.7.html)
pub(crate) fn kill_group(pgid: i32, sig: Signal) -> io::Result<bool> {
    // -pgid names a group (see above for why it is the one the caller
    // means).
    kill_target(-pgid, sig)
}

/// Whether process group `pgid` has any member left (`kill(-pgid, 0)`; an
/// `EPERM` means it has one we may not signal).
/// [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html)
pub(crate) fn group_has_members(pgid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it takes two integers.
    let r = unsafe { libc::kill(-pgid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Makes [`send_signal`] act as on a kernel without
/// `PIDFD_SIGNAL_PROCESS_GROUP` (`true`), or probe again (`false`).
#[cfg(feature = "testing")]
pub(crate) fn force_no_group_flag(on: bool) {
    NO_GROUP_FLAG.store(on, Ordering::Relaxed);
}

/// What `waitid` said about one child.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reaped {
    /// The child has not exited yet (a spurious or early wake-up).
    NotYet,
    /// The child was reaped here, now.
    Exited {
        status: ExitStatus,
        pid: i32,
        usage: ResourceUsage,
    },
    /// Someone else reaped it (`ECHILD`): a `waitpid(-1)` elsewhere in the
    /// process, or SIGCHLD set to be ignored.
    Gone,
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::new(
        tv.tv_sec.max(0) as u64,
        (tv.tv_usec.clamp(0, 999_999) as u32) * 1000,
    )
}

/// The raw `waitid(idtype, id, info, options, rusage)` system call: the
/// kernel's has a fifth argument for the child's resource usage, which
/// glibc's wrapper hides.
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html),
/// [getrusage(2)](https://man7.org/linux/man-pages/man2/getrusage.2.html)
fn waitid_raw(idtype: libc::idtype_t, id: libc::id_t, options: libc::c_int) -> io::Result<Reaped> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    let mut usage = MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: the raw waitid writes one siginfo_t and one rusage into
        // the buffers, which are valid and of the right size.
        let r = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                idtype,
                id,
                info.as_mut_ptr(),
                options,
                usage.as_mut_ptr(),
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(Reaped::Gone),
            _ => return Err(e),
        }
    }
    // SAFETY: both buffers were zeroed and the kernel wrote to them; an
    // all-zero siginfo_t means "no child in a waitable state" under WNOHANG.
    let (info, usage) = unsafe { (info.assume_init(), usage.assume_init()) };
    // SAFETY: si_pid and si_status are valid for SIGCHLD-type siginfo,
    // which is what waitid writes (or zeroes).
    let (pid, raw_status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(Reaped::NotYet);
    }
    let status = match info.si_code {
        libc::CLD_EXITED => ExitStatus::Exited(raw_status),
        libc::CLD_KILLED | libc::CLD_DUMPED => ExitStatus::Signaled {
            signal: Signal::from_raw(raw_status).unwrap_or(Signal::KILL),
            core_dumped: info.si_code == libc::CLD_DUMPED,
        },
        // Stopped or continued: only reported when WSTOPPED/WCONTINUED is
        // asked for, which it is not.
        _ => return Ok(Reaped::NotYet),
    };
    let usage = ResourceUsage {
        user_time: timeval(usage.ru_utime),
        system_time: timeval(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
    };
    Ok(Reaped::Exited { status, pid, usage })
}

/// Reaps the child behind `pidfd` if it has exited, without blocking.
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
pub(crate) fn try_reap(pidfd: BorrowedFd<'_>) -> io::Result<Reaped> {
    waitid_raw(
        libc::P_PIDFD,
        pidfd.as_raw_fd() as libc::id_t,
        libc::WEXITED | libc::WNOHANG,
    )
}

/// Reaps the child behind `pidfd`, waiting for it. Inside the crate only for
/// a child that is known to be exiting already (it reported an exec failure
/// and called `exit_group`), so the wait is bounded by the kernel's exit
/// path; [`PidFd::wait`](crate::PidFd::wait) offers it to callers who mean
/// to block.
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
pub(crate) fn reap_exiting(pidfd: BorrowedFd<'_>) -> io::Result<Reaped> {
    waitid_raw(
        libc::P_PIDFD,
        pidfd.as_raw_fd() as libc::id_t,
        libc::WEXITED,
    )
}

/// Reaps the child with this pid, waiting for it. Only for an unreaped child
/// of ours that was just sent SIGKILL, or is known to be exiting.
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
pub(crate) fn reap_pid_exiting(pid: i32) -> io::Result<Reaped> {
    waitid_raw(libc::P_PID, pid as libc::id_t, libc::WEXITED)
}

/// Peeks at any exited child without reaping it (`WNOWAIT`): its pid, or
/// `None` if no child has exited. For PID-1 and subreaper duty.
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
pub(crate) fn peek_any_exited() -> io::Result<Option<i32>> {
    match waitid_raw(
        libc::P_ALL,
        0,
        libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
    )? {
        Reaped::Exited { pid, .. } => Ok(Some(pid)),
        Reaped::NotYet | Reaped::Gone => Ok(None),
    }
}

/// Reaps the exited child with this pid, without blocking.
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
pub(crate) fn try_reap_pid(pid: i32) -> io::Result<Reaped> {
    waitid_raw(
        libc::P_PID,
        pid as libc::id_t,
        libc::WEXITED | libc::WNOHANG,
    )
}
