//! The kill sentinel: a tiny process that kills a cgroup's whole subtree
//! once the supervisor is gone, however it went.
//!
//! The kernel kills nothing in a cgroup when the process that made it dies
//! (see [Processes](https://docs.kernel.org/admin-guide/cgroup-v2.html#processes)),
//! and `PR_SET_PDEATHSIG` reaches only direct children
//! ([prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html)); a
//! grandchild that called `setsid` and was reparented escapes both. The
//! sentinel closes that gap: it waits for end-of-file on a *lifeline* pipe
//! whose only write end the supervisor holds. The kernel closes that end
//! when the supervisor exits, execs, or is killed by any signal, SIGKILL
//! included ([pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html):
//! a read returns 0 once every write end is closed). The sentinel then
//! writes `1` to the target's `cgroup.kill`, waits (at most
//! [`KILL_WAIT`]) for `populated 0` in `cgroup.events`, removes the
//! target's child cgroups and the target itself, and exits 0.
//!
//! # How it is made
//!
//! `clone(CLONE_VM | CLONE_PIDFD)` with exit signal SIGCHLD, on a stack of
//! its own ([clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html)):
//! sharing the address space means no page tables are copied, so a big
//! supervisor starts it as fast as a small one, and no copy-on-write faults
//! follow. It shares no fd table (no `CLONE_FILES`): its first acts are
//! closing its copy of the lifeline's write end and every other fd but the
//! three it needs (`close_range(2)`). It does not wait for exec (no
//! `CLONE_VFORK`) and never execs. Every signal is blocked across the clone
//! and stays blocked in the sentinel; it calls `setsid` so that signals
//! sent to the supervisor's process group or session never reach it, and
//! it sets no parent-death signal (it must act after the parent dies).
//!
//! Because it shares the supervisor's memory, the sentinel runs raw system
//! calls only (`sys::raw`), on a [`Plan`] prepared before the clone: no
//! allocation, no libc, no `errno`, no thread-local storage, nothing that
//! can panic. The memory it uses (its stack and the plan) is freed only
//! after it was reaped, and leaked if it could not be.
//!
//! # Limits
//!
//! - It needs `cgroup.kill` (Linux 5.14); [`Sentinel::start`] refuses where
//!   the target has none.
//! - It shares the supervisor's `mm`, and the OOM killer kills every
//!   process sharing the victim's `mm` (`__oom_kill_process` in
//!   [mm/oom_kill.c](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/mm/oom_kill.c)):
//!   a supervisor killed by the OOM killer takes the sentinel with it, and
//!   the subtree is left running. Before Linux 5.16 a core dump did the
//!   same (fixed by
//!   [commit 0258b5fd7c71](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id=0258b5fd7c7124b87e185a1a9322d2c66b1876b7),
//!   "coredump: Limit coredumps to a single thread group").
//! - A SIGKILL sent to the sentinel itself ends it; the supervisor should
//!   watch [`Sentinel::pidfd`] and report that containment after its own
//!   death is lost.
//! - The lifeline's write end is close-on-exec: a supervisor that execs
//!   triggers the sentinel.
//! - The kernel keeps 15 bytes of a process name, so `ps` shows the
//!   sentinel as `pidreap-sentine`.

use std::ffi::{c_int, c_void, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::fs::{Access, AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::cgroup::CgroupDir;
use super::pidfd::{try_reap, Reaped};
use super::raw::{
    addr, addr_mut, as_ref, exit_group, load, syscall4, syscall6, KernelPollFd, KernelTimespec,
};
use super::stack::Stack;
use super::{fd, signals};
use crate::status::ExitStatus;

/// How long the sentinel waits for `populated 0` after writing
/// `cgroup.kill` before it gives up (and exits with [`EXIT_STILL_POPULATED`]).
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(10);

/// How long dropping a [`Sentinel`] waits for it to finish: its own wait
/// for the subtree to die, plus a margin for removing the directories.
pub(crate) const DROP_BOUND: Duration = Duration::from_secs(12);

/// Exit code: `cgroup.kill` could not be opened or written.
const EXIT_KILL_FAILED: i32 = 10;
/// Exit code: the subtree was still populated after [`KILL_WAIT`].
const EXIT_STILL_POPULATED: i32 = 11;
/// Exit code: a cgroup directory could not be removed.
const EXIT_REMOVE_FAILED: i32 = 12;
/// Exit code: the inherited fds could not be closed (`close_range`).
const EXIT_SETUP_FAILED: i32 = 13;

/// What an exit code of the sentinel means, for error messages.
fn describe_exit(code: i32) -> &'static str {
    match code {
        EXIT_KILL_FAILED => "it could not write to cgroup.kill",
        EXIT_STILL_POPULATED => "the cgroup was still populated after the kill wait",
        EXIT_REMOVE_FAILED => "it could not remove the cgroup directories",
        EXIT_SETUP_FAILED => "it could not close its inherited fds (close_range)",
        _ => "unexpected exit code",
    }
}

/// The process name, NUL-terminated (`PR_SET_NAME` keeps 15 bytes).
const NAME: &[u8] = b"pidreap-sentinel\0";
const CGROUP_KILL: &[u8] = b"cgroup.kill\0";
const CGROUP_EVENTS: &[u8] = b"cgroup.events\0";

/// Stack for the sentinel, above a guard page. Its frames are small; the
/// deepest part is the directory walk ([`MAX_DEPTH`] levels of a 1 KiB
/// buffer).
const STACK_SIZE: usize = 128 * 1024;

/// Directory levels below the target the sentinel removes.
const MAX_DEPTH: u32 = 16;

/// Everything the sentinel needs, prepared before the clone. Owned by the
/// [`Sentinel`]; freed only after the sentinel was reaped.
#[repr(C)]
#[derive(Debug)]
struct Plan {
    /// The lifeline's read end.
    lifeline: c_int,
    /// The number of the supervisor's write end, which the sentinel closes
    /// first (its copy would keep the pipe open forever).
    lifeline_write: c_int,
    /// The target cgroup's directory fd.
    target: c_int,
    /// The directory fd of the target's parent, for removing the target.
    parent: c_int,
    /// The three fds above, ascending: every other fd is closed.
    keep: [c_int; 3],
    /// The target's name in its parent, NUL-terminated.
    name: *const u8,
}

fn context(op: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("starting the cgroup sentinel: {op} failed: {e}"),
    )
}

/// A running sentinel guarding one cgroup subtree.
///
/// Dropping it is [`shutdown`](Self::shutdown) with [`DROP_BOUND`], errors
/// logged.
#[derive(Debug)]
pub(crate) struct Sentinel {
    pidfd: OwnedFd,
    pid: i32,
    lifeline: Option<OwnedFd>,
    target: PathBuf,
    /// Memory the sentinel runs on, released only once it was reaped.
    stack: Option<Stack>,
    plan: Option<Box<Plan>>,
    name: Option<CString>,
    finished: bool,
}

impl Sentinel {
    /// Starts a sentinel for `target`'s subtree.
    ///
    /// Refuses (`Unsupported`) where `target` has no `cgroup.kill` (Linux
    /// before 5.14), and (`InvalidInput`) where this process is itself in
    /// `target`'s subtree, which the sentinel's kill would hit.
    pub(crate) fn start(target: &CgroupDir) -> io::Result<Sentinel> {
        let path = target.path().to_path_buf();
        match rustix::fs::accessat(
            target.fd(),
            "cgroup.kill",
            Access::WRITE_OK,
            AtFlags::empty(),
        ) {
            Ok(()) => {}
            Err(Errno::NOENT) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "the cgroup sentinel needs cgroup.kill (Linux 5.14), and {} has none",
                        path.join("cgroup.kill").display()
                    ),
                ))
            }
            Err(e) => {
                return Err(context(
                    &format!("checking {}", path.join("cgroup.kill").display()),
                    e.into(),
                ))
            }
        }
        let me = std::process::id() as i32;
        let inside = target
            .subtree_procs()
            .map_err(|e| context("listing the target's processes", io::Error::other(e)))?;
        if inside.contains(&me) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot guard cgroup {} with a sentinel: this process is inside it, and the sentinel's kill would hit it",
                    path.display()
                ),
            ));
        }
        let (Some(parent_path), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cgroup path {} has no parent directory", path.display()),
            ));
        };
        let name = CString::new(name.as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cgroup path {} contains a NUL byte", path.display()),
            )
        })?;
        let parent = rustix::fs::open(
            parent_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| context(&format!("opening {}", parent_path.display()), e.into()))?;
        let (lifeline_read, lifeline_write) =
            fd::pipe().map_err(|e| context("creating the lifeline pipe", e))?;
        let floor = fd::high_floor();
        let lifeline_write = fd::move_high(lifeline_write, floor);

        let mut keep = [
            lifeline_read.as_raw_fd(),
            target.fd().as_raw_fd(),
            parent.as_raw_fd(),
        ];
        keep.sort_unstable();
        let plan = Box::new(Plan {
            lifeline: lifeline_read.as_raw_fd(),
            lifeline_write: lifeline_write.as_raw_fd(),
            target: target.fd().as_raw_fd(),
            parent: parent.as_raw_fd(),
            keep,
            name: name.as_ptr().cast(),
        });
        let stack = Stack::new(STACK_SIZE).map_err(|e| context("mapping its stack", e))?;

        let mut pidfd: c_int = -1;
        let flags = libc::CLONE_VM | libc::CLONE_PIDFD | libc::SIGCHLD;
        // Nothing of ours may run on the sentinel's side: block every signal
        // across the clone; the sentinel keeps this mask for good.
        let mask_before = signals::block_all();
        // SAFETY: `sentinel_main` runs on `stack` (its own mapping, top
        // 16-byte aligned) and reads only `plan`; both are owned by the
        // Sentinel returned below and freed only after the sentinel was
        // reaped (or leaked). With CLONE_PIDFD the kernel writes the pidfd
        // to `pidfd`.
        let pid = unsafe {
            libc::clone(
                sentinel_main,
                stack.top(),
                flags,
                &*plan as *const Plan as *mut c_void,
                &mut pidfd as *mut c_int,
            )
        };
        let clone_err = io::Error::last_os_error();
        signals::set_mask(mask_before);
        if pid < 0 {
            // The clone failed, so nothing runs on the stack: it is dropped.
            return Err(context("clone", clone_err));
        }
        if pidfd < 0 {
            // Linux before 5.2 ignores CLONE_PIDFD: no pidfd to watch the
            // sentinel by. It shares our memory (CLONE_VM): it is killed and
            // reaped before its stack and plan are freed; if it cannot be
            // reaped in time they are leaked rather than freed under it.
            let child = super::pidfd::ChildHandle { pidfd: None, pid };
            let _ = child.send_signal(crate::signal::Signal::KILL, false);
            if !matches!(
                super::pidfd::reap_bounded(&child, super::pidfd::KILLED_REAP_BOUND),
                Ok(Reaped::Exited { .. } | Reaped::Gone)
            ) {
                std::mem::forget(stack);
                std::mem::forget(plan);
                super::pidfd::reap_or_defer(child, Duration::ZERO);
            }
            return Err(context(
                "clone",
                io::Error::other("the kernel ignored CLONE_PIDFD (Linux before 5.2)"),
            ));
        }
        // SAFETY: CLONE_PIDFD succeeded, so the kernel stored a new
        // close-on-exec fd in `pidfd` that nothing else owns.
        let pidfd = fd::move_high(unsafe { OwnedFd::from_raw_fd(pidfd) }, floor);
        // The sentinel has its own copies of these.
        drop(lifeline_read);
        drop(parent);
        Ok(Sentinel {
            pidfd,
            pid,
            lifeline: Some(lifeline_write),
            target: path,
            stack: Some(stack),
            plan: Some(plan),
            name: Some(name),
            finished: false,
        })
    }

    /// The sentinel's pidfd: it becomes readable when the sentinel exits.
    /// Before [`shutdown`](Self::shutdown) that means containment after the
    /// supervisor's death is lost (someone killed the sentinel); then call
    /// [`try_reap`](Self::try_reap).
    pub(crate) fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The sentinel's pid.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Reaps the sentinel if it has exited, without blocking: `Some` with
    /// its status if it had (it no longer guards anything then).
    pub(crate) fn try_reap(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.finished {
            return Ok(None);
        }
        match try_reap(self.pidfd.as_fd()) {
            Ok(Reaped::NotYet) => Ok(None),
            Ok(Reaped::Exited { status, .. }) => {
                self.release();
                Ok(Some(status))
            }
            Ok(Reaped::Gone) => {
                self.release();
                Ok(Some(ExitStatus::Unknown))
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reaping the cgroup sentinel (pid {}): {e}", self.pid),
            )),
        }
    }

    /// Closes the lifeline, so that the sentinel kills what is left of the
    /// subtree, removes the cgroups and exits; then reaps it, waiting at
    /// most `bound` (poll on the pidfd, then `waitid(P_PIDFD, WNOHANG)`).
    ///
    /// An error names what the sentinel could not do, or says it did not
    /// exit in time (its memory is then leaked, never freed under it).
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests
    pub(crate) fn shutdown(mut self, bound: Duration) -> io::Result<()> {
        self.finish(bound)
    }

    fn finish(&mut self, bound: Duration) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        drop(self.lifeline.take());
        let deadline = Instant::now() + bound;
        loop {
            match try_reap(self.pidfd.as_fd()) {
                Ok(Reaped::Exited { status, .. }) => {
                    self.release();
                    return self.outcome(status);
                }
                Ok(Reaped::Gone) => {
                    // Someone else in this process reaped it: it is dead.
                    self.release();
                    log::warn!(
                        "the cgroup sentinel (pid {}) for {} was reaped elsewhere; its outcome is unknown",
                        self.pid,
                        self.target.display()
                    );
                    return Ok(());
                }
                Ok(Reaped::NotYet) => {}
                Err(e) => {
                    self.leak();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("reaping the cgroup sentinel (pid {}): {e}", self.pid),
                    ));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.leak();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the cgroup sentinel (pid {}) for {} did not exit within {bound:?}",
                        self.pid,
                        self.target.display()
                    ),
                ));
            }
            let timeout = rustix::time::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            let mut fds = [rustix::event::PollFd::new(
                &self.pidfd,
                rustix::event::PollFlags::IN,
            )];
            // EINTR and readiness alike lead back to waitid.
            let _ = rustix::event::poll(&mut fds, Some(&timeout));
        }
    }

    fn outcome(&self, status: ExitStatus) -> io::Result<()> {
        match status {
            ExitStatus::Exited(0) => Ok(()),
            ExitStatus::Exited(code) => Err(io::Error::other(format!(
                "the cgroup sentinel (pid {}) for {} exited with code {code}: {}",
                self.pid,
                self.target.display(),
                describe_exit(code)
            ))),
            other => Err(io::Error::other(format!(
                "the cgroup sentinel (pid {}) for {} ended abnormally: {other}",
                self.pid,
                self.target.display()
            ))),
        }
    }

    /// Frees the sentinel's memory. Only once it was reaped.
    fn release(&mut self) {
        self.finished = true;
        // The sentinel was reaped: nothing runs on the stack any more.
        self.stack = None;
        self.plan = None;
        self.name = None;
    }

    /// Leaks the sentinel's memory: it may still be running on it.
    fn leak(&mut self) {
        self.finished = true;
        if let Some(stack) = self.stack.take() {
            stack.leak();
        }
        if let Some(plan) = self.plan.take() {
            Box::leak(plan);
        }
        std::mem::forget(self.name.take());
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Err(e) = self.finish(DROP_BOUND) {
            log::error!("{e}");
        }
    }
}

// ---------------------------------------------------------------------
// The sentinel's side: raw system calls only, on the plan.
// ---------------------------------------------------------------------

const NANOS: i64 = 1_000_000_000;
/// The longest single `ppoll` in the wait for `populated 0`: a re-read (and
/// a repeated kill) at least this often, should a notification be missed.
const POLL_SLICE_NS: i64 = 100_000_000;
/// Offsets in `struct linux_dirent64`: `d_reclen`, `d_type`, `d_name`.
const DIRENT_RECLEN: usize = 16;
const DIRENT_TYPE: usize = 18;
const DIRENT_NAME: usize = 19;
/// The size of the directory walk's buffer (a constant: a product computed
/// at run time is overflow-checked in a debug build).
const DIRENT_BUF_BYTES: usize = 128 * 8;

/// [`KILL_WAIT`] in nanoseconds.
const KILL_WAIT_NS: i64 = KILL_WAIT.as_nanos() as i64;

// The sentinel's functions are `extern "C"`: the compiler then knows that
// none of them unwinds, and emits no landing pad (which calls a panic
// function) in their callers. Like the spawn child's, they compile to
// straight code in every profile: no function of `core` or `std`, no
// raw-pointer dereference (`raw::load` instead), no checked arithmetic,
// indexing or iterators. `tests/child_code.rs` checks the machine code.

extern "C" fn sentinel_main(arg: *mut c_void) -> c_int {
    // SAFETY: the parent passes a pointer to the Plan the Sentinel owns,
    // which stays allocated while this process may run (see Plan).
    let p: &Plan = unsafe { as_ref(arg as *const Plan) };
    // SAFETY: `run` makes raw system calls on the plan's fds and pointers
    // and on locals of its own frames.
    let code = unsafe { run(p) };
    exit_group(code)
}

/// The monotonic clock in nanoseconds.
extern "C" fn now_ns() -> i64 {
    let mut ts = KernelTimespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into a local.
    unsafe {
        syscall4(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC as usize,
            addr_mut(&mut ts),
            0,
            0,
        )
    };
    ts.sec.wrapping_mul(NANOS).wrapping_add(ts.nsec)
}

/// The sentinel's whole life. Returns its exit code.
///
/// # Safety
///
/// `p` must be the plan prepared by [`Sentinel::start`].
unsafe extern "C" fn run(p: &Plan) -> i32 {
    // SAFETY: each call passes integers, the plan's fds, or pointers to
    // NUL-terminated constants and to locals, valid for the call.
    unsafe {
        syscall4(libc::SYS_close, p.lifeline_write as usize, 0, 0, 0);
        // Out of the supervisor's process group and session. Cannot fail:
        // a new process is never a group leader.
        syscall4(libc::SYS_setsid, 0, 0, 0, 0);
        syscall4(
            libc::SYS_prctl,
            libc::PR_SET_NAME as usize,
            NAME as *const [u8] as *const u8 as usize,
            0,
            0,
        );
        if !close_all_but(&p.keep) {
            return EXIT_SETUP_FAILED;
        }

        // Wait for EOF: every write end closed, the supervisor is gone. A
        // read error other than EINTR is taken as the same (kill rather than
        // linger).
        // Uninitialised (zeroing calls `memset` in a debug build); never
        // looked at.
        let mut buf = core::mem::MaybeUninit::<[u8; 64]>::uninit();
        loop {
            let r = syscall4(
                libc::SYS_read,
                p.lifeline as usize,
                buf.as_mut_ptr() as usize,
                64,
                0,
            );
            if r > 0 || r == -(libc::EINTR as isize) {
                continue;
            }
            break;
        }
        syscall4(libc::SYS_close, p.lifeline as usize, 0, 0, 0);
        kill_and_remove(p)
    }
}

/// Closes every fd but the (ascending) `keep`s.
///
/// # Safety
///
/// Only in the sentinel: it closes fds of its own table.
unsafe extern "C" fn close_all_but(keep: &[c_int; 3]) -> bool {
    let [a, b, c] = *keep;
    let mut lo: usize = 0;
    // SAFETY: forwarded from the caller.
    unsafe {
        close_below(&mut lo, a)
            && close_below(&mut lo, b)
            && close_below(&mut lo, c)
            && syscall4(libc::SYS_close_range, lo, u32::MAX as usize, 0, 0) >= 0
    }
}

/// One step of [`close_all_but`]: closes the fds from `*lo` up to `keep`
/// (excluded) and moves `*lo` past `keep`; nothing for a `keep` of -1.
///
/// # Safety
///
/// As for [`close_all_but`].
unsafe extern "C" fn close_below(lo: &mut usize, keep: c_int) -> bool {
    if keep < 0 {
        return true;
    }
    let k = keep as usize;
    if k > *lo {
        // SAFETY: close_range takes integers.
        let r = unsafe { syscall4(libc::SYS_close_range, *lo, k.wrapping_sub(1), 0, 0) };
        if r < 0 {
            return false;
        }
    }
    *lo = k.wrapping_add(1);
    true
}

/// Kills the target's subtree, waits for it to empty, removes the
/// directories. Returns the exit code.
///
/// # Safety
///
/// `p` must be the plan, with its fds open in this process.
unsafe extern "C" fn kill_and_remove(p: &Plan) -> i32 {
    // SAFETY: openat/write/close/pread64/ppoll on our fds, with pointers to
    // NUL-terminated constants and to locals, valid for each call.
    unsafe {
        let kill_fd = syscall4(
            libc::SYS_openat,
            p.target as usize,
            CGROUP_KILL as *const [u8] as *const u8 as usize,
            (libc::O_WRONLY | libc::O_CLOEXEC) as usize,
            0,
        );
        if kill_fd == -(libc::ENOENT as isize) {
            // The target was removed already (start() checked that the file
            // exists): the supervisor cleaned up itself.
            return 0;
        }
        if kill_fd < 0 || !write_one(kill_fd) {
            return EXIT_KILL_FAILED;
        }

        let events = syscall4(
            libc::SYS_openat,
            p.target as usize,
            CGROUP_EVENTS as *const [u8] as *const u8 as usize,
            (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
            0,
        );
        let mut emptied = false;
        if events >= 0 {
            let deadline = now_ns().wrapping_add(KILL_WAIT_NS);
            // Uninitialised (zeroing calls `memset` in a debug build): only
            // the bytes pread64 wrote are looked at.
            let mut buf = core::mem::MaybeUninit::<[u8; 128]>::uninit();
            let base = buf.as_mut_ptr() as *mut u8;
            loop {
                // Reading from the start also re-arms the notification.
                let n = syscall6(
                    libc::SYS_pread64,
                    events as usize,
                    base as usize,
                    128,
                    0,
                    0,
                    0,
                );
                if n > 0 && populated_in(base, n as usize) == 0 {
                    emptied = true;
                    break;
                }
                let left = deadline.wrapping_sub(now_ns());
                if left <= 0 {
                    break;
                }
                // Anything moved in since: kill again (harmless if dying).
                write_one(kill_fd);
                // Below a second (POLL_SLICE_NS is), so no division.
                let slice = if left < POLL_SLICE_NS {
                    left
                } else {
                    POLL_SLICE_NS
                };
                let mut timeout = KernelTimespec {
                    sec: 0,
                    nsec: slice,
                };
                let mut pfd = KernelPollFd {
                    fd: events as c_int,
                    events: libc::POLLPRI,
                    revents: 0,
                };
                syscall6(
                    libc::SYS_ppoll,
                    addr_mut(&mut pfd),
                    1,
                    addr_mut(&mut timeout),
                    0,
                    8,
                    0,
                );
            }
            syscall4(libc::SYS_close, events as usize, 0, 0, 0);
        }
        syscall4(libc::SYS_close, kill_fd as usize, 0, 0, 0);

        // Remove the child cgroups, then the target. rmdir says EBUSY for
        // a moment after the last process left on some kernels: retry a
        // little when the tree is known to be empty.
        let mut removed = false;
        let mut tries = 0u32;
        loop {
            remove_children(p.target, 0);
            let r = syscall4(
                libc::SYS_unlinkat,
                p.parent as usize,
                p.name as usize,
                libc::AT_REMOVEDIR as usize,
                0,
            );
            if r == 0 || r == -(libc::ENOENT as isize) {
                removed = true;
                break;
            }
            if r != -(libc::EBUSY as isize) || !emptied || tries >= 50 {
                break;
            }
            tries = tries.wrapping_add(1);
            let pause = KernelTimespec {
                sec: 0,
                nsec: 20_000_000,
            };
            syscall4(libc::SYS_nanosleep, addr(&pause), 0, 0, 0);
        }
        if !emptied {
            EXIT_STILL_POPULATED
        } else if !removed {
            EXIT_REMOVE_FAILED
        } else {
            0
        }
    }
}

/// Writes "1" to `fd`; true if the kernel took it.
///
/// # Safety
///
/// `fd` must be an fd of this process.
unsafe extern "C" fn write_one(fd: isize) -> bool {
    // SAFETY: write reads one byte from a constant.
    unsafe { syscall4(libc::SYS_write, fd as usize, addr(&b'1'), 1, 0) == 1 }
}

/// The `populated` value in the `len` bytes of `cgroup.events` text at
/// `text`: 1 or 0, or -1 where there is none.
///
/// # Safety
///
/// `text` must point to `len` readable bytes.
unsafe extern "C" fn populated_in(text: *const u8, len: usize) -> i32 {
    const KEY: &[u8; 10] = b"populated ";
    let key = KEY as *const [u8; 10] as *const u8;
    let mut matched: usize = 0;
    let mut matching = true;
    let mut i: usize = 0;
    while i < len {
        // SAFETY: `i` is below `len`, as the caller vouches.
        let b = unsafe { load(text.wrapping_add(i)) };
        i = i.wrapping_add(1);
        if b == b'\n' {
            matched = 0;
            matching = true;
        } else if matching {
            if matched == 10 {
                return if b != b'0' { 1 } else { 0 };
            }
            // SAFETY: `matched` is below the key's length, 10.
            matching = unsafe { load(key.wrapping_add(matched)) } == b;
            matched = matched.wrapping_add(1);
        }
    }
    -1
}

/// Removes every directory below `dir`, deepest first, at most
/// [`MAX_DEPTH`] levels down. True if all went.
///
/// # Safety
///
/// `dir` must be a directory fd of this process.
unsafe extern "C" fn remove_children(dir: c_int, depth: u32) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    // u64s for the 8-byte alignment of linux_dirent64. Uninitialised
    // (zeroing calls `memset` in a debug build): only the bytes getdents64
    // wrote are looked at.
    let mut buf = core::mem::MaybeUninit::<[u64; 128]>::uninit();
    let base = buf.as_mut_ptr() as *mut u8;
    let cap: usize = DIRENT_BUF_BYTES;
    let mut all = true;
    // SAFETY: lseek/getdents64/openat/unlinkat/close on our fds; getdents64
    // writes at most `cap` bytes into `buf`; every record read lies within
    // the `n` bytes it wrote (checked before each access), and each name
    // is NUL-terminated inside its record.
    unsafe {
        if syscall4(libc::SYS_lseek, dir as usize, 0, libc::SEEK_SET as usize, 0) < 0 {
            return false;
        }
        loop {
            let n = syscall4(libc::SYS_getdents64, dir as usize, base as usize, cap, 0);
            if n == 0 {
                break;
            }
            if n < 0 {
                return false;
            }
            let n = n as usize;
            let mut off: usize = 0;
            while off.wrapping_add(DIRENT_NAME) < n {
                // Records start 8-byte aligned (the kernel rounds d_reclen
                // up to 8), so the u16 d_reclen at offset 16 is aligned.
                let rec = base.wrapping_add(off);
                let reclen = load(rec.wrapping_add(DIRENT_RECLEN) as *const u16) as usize;
                if reclen == 0 {
                    return false;
                }
                let name = rec.wrapping_add(DIRENT_NAME);
                if load(rec.wrapping_add(DIRENT_TYPE)) == libc::DT_DIR && !is_dot(name) {
                    let sub = syscall4(
                        libc::SYS_openat,
                        dir as usize,
                        name as usize,
                        (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as usize,
                        0,
                    );
                    if sub >= 0 {
                        if !remove_children(sub as c_int, depth.wrapping_add(1)) {
                            all = false;
                        }
                        syscall4(libc::SYS_close, sub as usize, 0, 0, 0);
                    }
                    if syscall4(
                        libc::SYS_unlinkat,
                        dir as usize,
                        name as usize,
                        libc::AT_REMOVEDIR as usize,
                        0,
                    ) < 0
                    {
                        all = false;
                    }
                }
                off = off.wrapping_add(reclen);
            }
        }
    }
    all
}

/// True for the names "." and "..".
///
/// # Safety
///
/// `name` must point to a NUL-terminated name inside a dirent record (a
/// record holds at least 5 bytes from its name on).
unsafe extern "C" fn is_dot(name: *const u8) -> bool {
    // SAFETY: the caller vouches for three readable bytes.
    let (a, b, c) = unsafe {
        (
            load(name),
            load(name.wrapping_add(1)),
            load(name.wrapping_add(2)),
        )
    };
    a == b'.' && (b == 0 || (b == b'.' && c == 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::cgroup::test_support::*;
    use std::path::Path;

    /// Waits (bounded) until `check` holds; false at the deadline.
    fn eventually(bound: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + bound;
        loop {
            if check() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn pidfd_of(pid: i32) -> OwnedFd {
        rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).expect("positive pid"),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap_or_else(|e| panic!("pidfd_open({pid}): {e}"))
    }

    /// [`populated_in`] on a slice.
    fn populated(text: &[u8]) -> Option<bool> {
        // SAFETY: the slice's bytes are readable.
        match unsafe { populated_in(text.as_ptr(), text.len()) } {
            -1 => None,
            v => Some(v == 1),
        }
    }

    #[test]
    fn populated_in_parses_cgroup_events() {
        assert_eq!(populated(b"populated 1\nfrozen 0\n"), Some(true));
        assert_eq!(populated(b"populated 0\nfrozen 0\n"), Some(false));
        assert_eq!(populated(b"frozen 1\npopulated 0\n"), Some(false));
        assert_eq!(populated(b"xpopulated 0\n"), None);
        assert_eq!(populated(b"populated "), None);
        assert_eq!(populated(b""), None);
    }

    #[test]
    fn shutdown_kills_the_tree_and_removes_the_cgroups() {
        let t = TestCgroup::new("sentinel");
        let leaf = t.dir.create_child("leaf").unwrap();
        let deep = leaf.create_child("deeper").unwrap();
        let tree = Tree::start(&leaf, &t.dir);
        let sentinel = Sentinel::start(&t.dir).expect("starting the sentinel");
        let pid = sentinel.pid();

        // It set itself up: its own session, its name, only the three fds
        // it keeps.
        let comm = format!("/proc/{pid}/comm");
        let fd_dir = format!("/proc/{pid}/fd");
        let set_up = eventually(Duration::from_secs(5), || {
            let name = std::fs::read_to_string(&comm).unwrap_or_default();
            let fds = std::fs::read_dir(&fd_dir).map(|d| d.count()).unwrap_or(0);
            let sid = session_of(pid).unwrap_or(0);
            name == "pidreap-sentine\n" && fds == 3 && sid == pid
        });
        assert!(
            set_up,
            "sentinel {pid} not set up within 5 s: comm {:?}, fds {:?}",
            std::fs::read_to_string(&comm),
            std::fs::read_dir(&fd_dir).map(|d| d.count())
        );
        // It waits while the lifeline is open.
        assert!(t.dir.populated().unwrap());
        let sentinel_fd = pidfd_of(pid);
        assert_eq!(
            survivors_after(&[(pid, sentinel_fd)], Duration::ZERO),
            vec![pid],
            "the sentinel exited with the lifeline still open"
        );

        let own_pidfd = sentinel.pidfd().try_clone_to_owned().unwrap();
        sentinel
            .shutdown(Duration::from_secs(5))
            .expect("the sentinel's clean-up");
        assert_eq!(
            tree.survivors_after(Duration::from_secs(1)),
            Vec::<i32>::new()
        );
        for gone in [t.dir.path(), leaf.path(), deep.path()] {
            assert!(!gone.exists(), "{} was not removed", gone.display());
        }
        // Reaped: it is no longer a waitable child of ours.
        assert!(
            matches!(try_reap(own_pidfd.as_fd()), Ok(Reaped::Gone)),
            "sentinel {pid} was not reaped"
        );
    }

    #[test]
    fn shutdown_after_the_supervisor_cleaned_up_is_quiet() {
        let t = TestCgroup::new("tidy");
        let sentinel = Sentinel::start(&t.dir).expect("starting the sentinel");
        t.dir.kill().unwrap();
        t.dir.remove().unwrap();
        sentinel
            .shutdown(Duration::from_secs(5))
            .expect("the sentinel after the target was removed");
    }

    const HELPER_ENV: &str = "PIDREAP_TEST_SENTINEL_HELPER_PARENT";
    const READY: &str = "PIDREAP-SENTINEL-HELPER-READY";

    /// The supervisor side of [`sentinel_outlives_a_sigkilled_supervisor`],
    /// run in a re-executed copy of this test binary: makes a cgroup under
    /// `parent`, starts a sentinel on it and a tree in it, says so, and
    /// waits to be SIGKILLed (exits after 30 s if it is not).
    fn helper_role(parent: &Path) -> ! {
        let parent = CgroupDir::open(parent).expect("helper: opening the parent cgroup");
        let target = parent
            .create_child(&unique_name("helper"))
            .expect("helper: creating the target cgroup");
        let leaf = target
            .create_child("leaf")
            .expect("helper: creating the leaf");
        let sentinel = Sentinel::start(&target).expect("helper: starting the sentinel");
        let tree = Tree::start(&leaf, &target);
        println!("{READY} {} {}", sentinel.pid(), target.path().display());
        std::thread::sleep(Duration::from_secs(30));
        // Not killed: leave without running destructors, as a killed
        // supervisor would; the sentinel cleans up.
        std::mem::forget(tree);
        std::process::exit(3)
    }

    #[test]
    fn sentinel_outlives_a_sigkilled_supervisor() {
        if let Some(parent) = std::env::var_os(HELPER_ENV) {
            helper_role(Path::new(&parent));
        }
        let own = crate::sys::cgroup::locate().expect("locating cgroup2");
        let name = format!(
            "{}::sentinel_outlives_a_sigkilled_supervisor",
            module_path!().split_once("::").expect("crate::module").1
        );
        let exe = std::env::current_exe().expect("the test binary");
        let helper = std::process::Command::new(exe)
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(HELPER_ENV, own.dir())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("re-executing the test binary as the helper");
        struct Helper(std::process::Child);
        impl Drop for Helper {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut helper = Helper(helper);
        let mut out = LineReader::new(helper.0.stdout.take().expect("piped stdout"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let ready = loop {
            match out.next_line(deadline) {
                // libtest prints "test <name> ... " before it, unterminated.
                Some(line) => match line.find(READY) {
                    Some(at) => break line[at..].to_string(),
                    None => continue,
                },
                None => panic!("the helper did not report ready within 20 s"),
            }
        };
        let mut words = ready.splitn(3, ' ').skip(1);
        let sentinel_pid: i32 = words.next().and_then(|w| w.parse().ok()).expect("pid");
        let target = CgroupDir::open(Path::new(words.next().expect("path"))).unwrap();
        let target = TestCgroup::adopt(target);
        let sentinel = pidfd_of(sentinel_pid);
        let members: Vec<(i32, OwnedFd)> = target
            .dir
            .subtree_procs()
            .unwrap()
            .into_iter()
            .map(|pid| (pid, pidfd_of(pid)))
            .collect();
        assert!(members.len() >= TREE_SIZE, "tree: {members:?}");
        assert_eq!(
            survivors_after(&[(sentinel_pid, sentinel)], Duration::ZERO),
            vec![sentinel_pid],
            "the sentinel is not running"
        );
        let sentinel = pidfd_of(sentinel_pid);

        helper.0.kill().expect("SIGKILL to the helper");
        let killed = Instant::now();
        helper.0.wait().expect("reaping the helper");

        let left = survivors_after(&members, Duration::from_secs(1));
        assert_eq!(
            left,
            Vec::<i32>::new(),
            "tree members alive 1 s after the SIGKILL"
        );
        let removed = eventually(
            Duration::from_secs(1).saturating_sub(killed.elapsed()),
            || !target.dir.path().exists(),
        );
        assert!(
            removed,
            "{} still exists 1 s after the SIGKILL",
            target.dir.path().display()
        );
        assert_eq!(
            survivors_after(&[(sentinel_pid, sentinel)], Duration::from_secs(1)),
            Vec::<i32>::new(),
            "the sentinel did not exit after cleaning up"
        );
    }
}
