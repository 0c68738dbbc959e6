//! Process creation: `clone(2)` with `CLONE_PIDFD`, vfork-class, and the
//! child's side up to `execve(2)`.
//!
//! # The fast path
//!
//! `CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | SIGCHLD`, on a stack
//! of our own:
//!
//! - `CLONE_VM | CLONE_VFORK`: no page tables are copied, so spawning from a
//!   4 GiB parent costs what it costs from a small one (LINUX-FACTS
//!   pitfall 18). The parent thread is suspended until the child execs or
//!   exits, so the child can report an exec failure by writing into the
//!   shared [`ChildResult`]; no pipe is needed.
//! - `CLONE_FILES`: the child starts on the parent's fd table and its first
//!   act is `close_range(keep_below, ~0, CLOSE_RANGE_UNSHARE)`, which gives
//!   it a private table holding only the fds below `keep_below` (the stdio
//!   sources). The supervisor's own fds, however many, are never copied into
//!   the child nor closed again at exec (pitfall 17).
//! - `CLONE_PIDFD`: the pidfd exists from the first instant; there is no
//!   window in which the child is known only by pid.
//!
//! # The child's side
//!
//! Between clone and exec the child runs [`child_main`], which calls only
//! raw system calls (`sys::raw`) on data the parent prepared in [`Plan`]: no
//! allocation, no libc, no `errno`, no locks. In order:
//!
//! 1. unshare the fd table (fast path only);
//! 2. reset every caught signal to `SIG_DFL` (and SIGPIPE from `SIG_IGN`,
//!    which Rust programs ignore by default);
//! 3. join or create the process group, if asked;
//! 4. put the stdio sources on 0, 1, 2 and mark every other fd close-on-exec;
//! 5. change directory, restore `RLIMIT_NOFILE`, if asked;
//! 6. restore the signal mask the process had before pidreap blocked
//!    anything (every signal is blocked across the clone, pitfall 15);
//! 7. `PR_SET_PDEATHSIG`, then compare `getppid()` with the pid recorded
//!    before the clone and exit at once if the parent already died
//!    (pitfall 2);
//! 8. `execve` each candidate path in turn, as `execvp` does.
//!
//! # Fallbacks
//!
//! Where the kernel refuses a flag (`EINVAL`, `ENOSYS`, `EPERM`: old kernels,
//! seccomp filters, pitfall 16) the spawner drops, in turn, `CLONE_FILES`,
//! then `CLONE_VM | CLONE_VFORK` (a fork-class clone reporting exec errors
//! through a close-on-exec pipe), then `CLONE_PIDFD` (then `pidfd_open` on
//! the still unreaped child, which is race-free). It logs each step once. A
//! kernel with no pidfd at all is refused with `Unsupported`; the child that
//! was made is killed and reaped first.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::pidfd::{reap_exiting, reap_pid_exiting};
use super::raw::{exit_group, syscall4, syscall6};
use super::signals::{self, KernelSigset};

/// What the child was doing when it failed. Stored as a number in
/// [`ChildResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Stage {
    UnshareFiles = 1,
    ProcessGroup = 2,
    Stdio = 3,
    Chdir = 4,
    Rlimit = 5,
    DeathSignal = 6,
    Exec = 7,
}

impl Stage {
    fn from_raw(raw: u32) -> Option<Stage> {
        Some(match raw {
            1 => Stage::UnshareFiles,
            2 => Stage::ProcessGroup,
            3 => Stage::Stdio,
            4 => Stage::Chdir,
            5 => Stage::Rlimit,
            6 => Stage::DeathSignal,
            7 => Stage::Exec,
            _ => return None,
        })
    }

    /// What the stage does, for error messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Stage::UnshareFiles => "unsharing the fd table (close_range)",
            Stage::ProcessGroup => "joining the process group (setpgid)",
            Stage::Stdio => "setting up stdio (dup3)",
            Stage::Chdir => "changing directory (chdir)",
            Stage::Rlimit => "restoring RLIMIT_NOFILE (prlimit64)",
            Stage::DeathSignal => "setting the parent-death signal (prctl)",
            Stage::Exec => "executing the program (execve)",
        }
    }
}

/// Written by a failing child in the vfork path; read by the parent after
/// the clone returns.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct ChildResult {
    stage: u32,
    errno: i32,
}

/// Everything the child needs, prepared by the parent before the clone. All
/// pointers point into [`SpawnRequest`]'s buffers, which outlive the child's
/// use of them: the parent is suspended (vfork) or the memory was copied
/// (fork).
#[repr(C)]
struct Plan {
    candidates: *const *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    stdio: [c_int; 3],
    keep_below: c_int,
    share_files: bool,
    pgid: c_int,
    death_signal: c_int,
    parent_pid: c_int,
    mask: KernelSigset,
    has_nofile: bool,
    nofile: [u64; 2],
    delay: [i64; 2],
    err_pipe: c_int,
    result: *mut ChildResult,
}

/// The kernel's `struct sigaction` for `rt_sigaction(2)` on x86_64 and
/// aarch64 (both define `SA_RESTORER`): handler, flags, restorer, mask.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

const CLOSE_RANGE_UNSHARE: usize = 1 << 1;
const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;

/// The exit code of a child whose parent died before it set PDEATHSIG.
/// Nobody is left to read it; it is distinct for `strace`'s sake.
const PARENT_DIED_EXIT: i32 = 126;

/// Reports a failure to the parent and exits. Raw syscalls only.
///
/// # Safety
///
/// `p` must be the plan the parent prepared.
#[inline(always)]
unsafe fn fail(p: &Plan, stage: Stage, errno: isize) -> ! {
    let result = ChildResult {
        stage: stage as u32,
        errno: errno as i32,
    };
    if p.err_pipe >= 0 {
        // SAFETY: writes 8 bytes from a local to our own pipe fd.
        unsafe {
            syscall4(
                libc::SYS_write,
                p.err_pipe as usize,
                &result as *const ChildResult as usize,
                std::mem::size_of::<ChildResult>(),
                0,
            );
        }
    } else {
        // SAFETY: in the vfork path `result` points to the parent's
        // ChildResult, which lives until the clone returns in the parent, and
        // nobody else touches it while the parent is suspended.
        unsafe { std::ptr::write_volatile(p.result, result) };
    }
    exit_group(127)
}

/// The child's side, from clone to exec. Raw syscalls only, on the plan.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: the parent passes a pointer to its Plan, valid for this whole
    // function (see Plan).
    let p = unsafe { &*(arg as *const Plan) };
    // SAFETY: every call below is a raw syscall whose pointer arguments point
    // into the plan (prepared and owned by the parent, see Plan) or to locals
    // of this function, on the child's own stack.
    unsafe {
        if p.share_files {
            let r = syscall4(
                libc::SYS_close_range,
                p.keep_below as usize,
                !0u32 as usize,
                CLOSE_RANGE_UNSHARE,
                0,
            );
            if r < 0 {
                fail(p, Stage::UnshareFiles, -r);
            }
        }

        // Caught signals back to SIG_DFL; SIGPIPE too if ignored. Nothing
        // can be delivered meanwhile: every signal is blocked.
        let dfl = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        for sig in 1..=64usize {
            if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
                continue;
            }
            let mut old = KernelSigaction {
                handler: 0,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            let r = syscall4(
                libc::SYS_rt_sigaction,
                sig,
                0,
                &mut old as *mut _ as usize,
                8,
            );
            if r < 0 {
                continue;
            }
            let caught = old.handler != libc::SIG_DFL && old.handler != libc::SIG_IGN;
            let ignored_pipe = sig == libc::SIGPIPE as usize && old.handler == libc::SIG_IGN;
            if caught || ignored_pipe {
                syscall4(libc::SYS_rt_sigaction, sig, &dfl as *const _ as usize, 0, 8);
            }
        }

        if p.pgid >= 0 {
            let r = syscall4(libc::SYS_setpgid, 0, p.pgid as usize, 0, 0);
            if r < 0 {
                fail(p, Stage::ProcessGroup, -r);
            }
        }

        for (target, &src) in p.stdio.iter().enumerate() {
            if src >= 0 {
                let r = syscall4(libc::SYS_dup3, src as usize, target, 0, 0);
                if r < 0 {
                    fail(p, Stage::Stdio, -r);
                }
            }
        }
        // Every fd but 0, 1, 2 closes at exec (the err pipe must live until
        // then). Where CLOSE_RANGE_CLOEXEC is missing (Linux < 5.11), all
        // of pidreap's fds are close-on-exec anyway.
        syscall4(
            libc::SYS_close_range,
            3,
            !0u32 as usize,
            CLOSE_RANGE_CLOEXEC,
            0,
        );

        if !p.cwd.is_null() {
            let r = syscall4(libc::SYS_chdir, p.cwd as usize, 0, 0, 0);
            if r < 0 {
                fail(p, Stage::Chdir, -r);
            }
        }
        if p.has_nofile {
            let r = syscall4(
                libc::SYS_prlimit64,
                0,
                libc::RLIMIT_NOFILE as usize,
                p.nofile.as_ptr() as usize,
                0,
            );
            if r < 0 {
                fail(p, Stage::Rlimit, -r);
            }
        }

        syscall4(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &p.mask as *const _ as usize,
            0,
            8,
        );

        if p.delay[0] != 0 || p.delay[1] != 0 {
            // Test hook: widens the window before PR_SET_PDEATHSIG.
            syscall4(libc::SYS_nanosleep, p.delay.as_ptr() as usize, 0, 0, 0);
        }

        if p.death_signal != 0 {
            let r = syscall4(
                libc::SYS_prctl,
                libc::PR_SET_PDEATHSIG as usize,
                p.death_signal as usize,
                0,
                0,
            );
            if r < 0 {
                fail(p, Stage::DeathSignal, -r);
            }
            // The parent may have died before prctl: then nobody will send
            // the death signal, so act on it now.
            let ppid = syscall4(libc::SYS_getppid, 0, 0, 0, 0);
            if ppid != p.parent_pid as isize {
                exit_group(PARENT_DIED_EXIT);
            }
        }

        let mut saw_eacces = false;
        let mut err: isize = libc::ENOENT as isize;
        let mut c = p.candidates;
        while !(*c).is_null() {
            let r = syscall6(
                libc::SYS_execve,
                *c as usize,
                p.argv as usize,
                p.envp as usize,
                0,
                0,
                0,
            );
            err = -r;
            match err as i32 {
                libc::EACCES => saw_eacces = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => break,
            }
            c = c.add(1);
        }
        if saw_eacces
            && matches!(
                err as i32,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT
            )
        {
            err = libc::EACCES as isize;
        }
        fail(p, Stage::Exec, err)
    }
}

/// What to put on one of the child's fds 0, 1, 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildFd {
    /// Leave the parent's fd as it is.
    Inherit,
    /// `dup3` this fd onto it. Must be 3 or above.
    From(RawFd),
}

/// A spawn, fully prepared: paths, arguments and environment as C strings.
#[derive(Debug)]
pub(crate) struct SpawnRequest {
    /// Paths to `execve`, in order (one, or one per `PATH` entry).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: Option<CString>,
    pub stdio: [ChildFd; 3],
    /// `setpgid(0, pgid)` in the child.
    pub pgid: Option<i32>,
    pub death_signal: Option<i32>,
    /// `RLIMIT_NOFILE` to restore in the child (soft, hard).
    pub nofile: Option<(u64, u64)>,
    /// Test hook: sleep this long in the child before `PR_SET_PDEATHSIG`.
    #[cfg(feature = "testing")]
    pub setup_delay: Option<Duration>,
}

/// A child that exec'd.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub pidfd: OwnedFd,
    pub pid: i32,
}

/// Why a spawn failed.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// A call in the parent failed.
    Os { op: &'static str, source: io::Error },
    /// The child failed before exec (and was reaped).
    Child { stage: Stage, source: io::Error },
    /// No pidfd can be had on this kernel (the child was killed and reaped).
    Unsupported {
        what: &'static str,
        source: io::Error,
    },
}

// The spawn mode, probed once per process (pitfall 16): bits set as the
// kernel refuses features.
const NO_FILES: u8 = 1;
const NO_VM: u8 = 2;
const NO_CLONE_PIDFD: u8 = 4;
static DEGRADED: AtomicU8 = AtomicU8::new(0);

/// Which spawn path the process uses now, for logs and tests.
pub(crate) fn describe_mode() -> &'static str {
    let d = DEGRADED.load(Ordering::Relaxed);
    if d & NO_VM != 0 {
        if d & NO_CLONE_PIDFD != 0 {
            "fork-class clone + pidfd_open"
        } else {
            "fork-class clone with CLONE_PIDFD"
        }
    } else if d & NO_FILES != 0 {
        "vfork-class clone with CLONE_PIDFD"
    } else {
        "vfork-class clone with CLONE_PIDFD and CLONE_FILES"
    }
}

/// Forces the fork-class path (for tests of the fallback).
pub(crate) fn force_fallback(fork_class: bool) {
    if fork_class {
        DEGRADED.fetch_or(NO_VM | NO_FILES | NO_CLONE_PIDFD, Ordering::Relaxed);
    } else {
        DEGRADED.store(0, Ordering::Relaxed);
    }
}

fn degrade(bit: u8, why: &io::Error) {
    if DEGRADED.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        let what = match bit {
            NO_FILES => "CLONE_FILES with close_range(CLOSE_RANGE_UNSHARE)",
            NO_VM => "CLONE_VM|CLONE_VFORK",
            _ => "CLONE_PIDFD",
        };
        log::warn!(
            "kernel refused {what} ({why}); spawning now uses {}",
            describe_mode()
        );
    }
}

/// Stack size for the vfork child: it runs one small function.
const STACK_SIZE: usize = 64 * 1024;

/// Creates children. Owns the stack the vfork child runs on; reused for
/// every spawn, since the child is done with it when the clone returns.
#[derive(Debug)]
pub(crate) struct Spawner {
    stack: *mut c_void,
    parent_pid: i32,
}

impl Spawner {
    pub(crate) fn new() -> io::Result<Spawner> {
        let page = 4096;
        // SAFETY: an anonymous private mapping; no existing memory is
        // touched. The lowest page becomes a guard page.
        let stack = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            libc::mprotect(p, page, libc::PROT_NONE);
            p
        };
        Ok(Spawner {
            stack,
            parent_pid: std::process::id() as i32,
        })
    }

    /// Spawns per `req`, trying the fastest path the kernel allows.
    pub(crate) fn spawn(&mut self, req: &SpawnRequest) -> Result<Spawned, SpawnError> {
        // The pid changes if this process forked since the Spawner was made.
        self.parent_pid = std::process::id() as i32;
        let candidates = pointer_array(&req.candidates);
        let argv = pointer_array(&req.argv);
        let envp = pointer_array(&req.envp);
        loop {
            let degraded = DEGRADED.load(Ordering::Relaxed);
            match self.try_spawn(req, degraded, &candidates, &argv, &envp) {
                Attempt::Done(r) => return r,
                Attempt::Degrade(bit, why) => degrade(bit, &why),
            }
        }
    }

    fn try_spawn(
        &mut self,
        req: &SpawnRequest,
        degraded: u8,
        candidates: &[*const c_char],
        argv: &[*const c_char],
        envp: &[*const c_char],
    ) -> Attempt {
        let vm = degraded & NO_VM == 0;
        let files = vm && degraded & NO_FILES == 0;
        let clone_pidfd = degraded & NO_CLONE_PIDFD == 0;

        let err_pipe = if vm {
            None
        } else {
            // The write end must not be 0, 1 or 2 (possible when the
            // supervisor runs with those closed): the child's stdio setup
            // would overwrite it and an exec error would read as success.
            match super::fd::pipe().and_then(|(r, w)| Ok((r, super::fd::above_stdio(w)?))) {
                Ok(p) => Some(p),
                Err(source) => {
                    return Attempt::Done(Err(SpawnError::Os {
                        op: "creating the exec-status pipe",
                        source,
                    }))
                }
            }
        };

        let mut stdio = [-1; 3];
        let mut keep_below = 3;
        for (slot, fd) in stdio.iter_mut().zip(req.stdio) {
            if let ChildFd::From(raw) = fd {
                debug_assert!(raw >= 3, "stdio sources must be moved above 2");
                *slot = raw;
                keep_below = keep_below.max(raw + 1);
            }
        }
        #[cfg(feature = "testing")]
        let delay = req.setup_delay.unwrap_or_default();
        #[cfg(not(feature = "testing"))]
        let delay = Duration::ZERO;
        let mut result = ChildResult::default();
        let plan = Plan {
            candidates: candidates.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            cwd: req.cwd.as_deref().map_or(std::ptr::null(), CStr::as_ptr),
            stdio,
            keep_below,
            share_files: files,
            pgid: req.pgid.unwrap_or(-1),
            death_signal: req.death_signal.unwrap_or(0),
            parent_pid: self.parent_pid,
            mask: 0,
            has_nofile: req.nofile.is_some(),
            nofile: req.nofile.map_or([0, 0], |(s, h)| [s, h]),
            delay: [delay.as_secs() as i64, delay.subsec_nanos() as i64],
            err_pipe: err_pipe.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
            result: &mut result,
        };

        let mut flags = libc::SIGCHLD;
        if vm {
            flags |= libc::CLONE_VM | libc::CLONE_VFORK;
        }
        if files {
            flags |= libc::CLONE_FILES;
        }
        if clone_pidfd {
            flags |= libc::CLONE_PIDFD;
        }
        let mut pidfd: c_int = -1;
        // Block everything across the clone, so that no handler of ours runs
        // in the child (which shares our memory); the child sets its own mask
        // before exec.
        let mask_before = signals::block_all();
        let mut plan = plan;
        plan.mask = signals::original_mask().unwrap_or(mask_before);
        // SAFETY: `child_main` runs on our private stack (top of the
        // mapping, 16-byte aligned) and only reads `plan`, which lives in
        // this frame until clone returns; with CLONE_VFORK this thread is
        // suspended until the child execs or exits, and without CLONE_VM the
        // child works on a copy. The pidfd, with CLONE_PIDFD, is written to
        // `pidfd`.
        let pid = unsafe {
            let top = (self.stack as usize + STACK_SIZE) & !15;
            libc::clone(
                child_main,
                top as *mut c_void,
                flags,
                &plan as *const Plan as *mut c_void,
                &mut pidfd as *mut c_int,
            )
        };
        let clone_err = io::Error::last_os_error();
        signals::set_mask(mask_before);

        if pid < 0 {
            let refused = matches!(
                clone_err.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS | libc::EPERM)
            );
            if refused {
                if files {
                    return Attempt::Degrade(NO_FILES, clone_err);
                }
                if vm {
                    return Attempt::Degrade(NO_VM, clone_err);
                }
                if clone_pidfd {
                    return Attempt::Degrade(NO_CLONE_PIDFD, clone_err);
                }
            }
            return Attempt::Done(Err(SpawnError::Os {
                op: "clone",
                source: clone_err,
            }));
        }

        // We own an unreaped child from here on: every path below either
        // returns it in Spawned or reaps it.
        let pidfd = if clone_pidfd {
            // SAFETY: CLONE_PIDFD succeeded, so the kernel stored a new
            // close-on-exec fd in `pidfd`, owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(pidfd) }
        } else {
            match rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(pid).expect("clone returned a positive pid"),
                rustix::process::PidfdFlags::empty(),
            ) {
                Ok(fd) => fd,
                Err(e) => {
                    // SAFETY: `pid` is our unreaped child: the pid cannot
                    // have been reused.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    let _ = reap_pid_exiting(pid);
                    // ENOSYS, or EPERM from a seccomp filter: no pidfds here
                    // (pitfall 16). Anything else (EMFILE, ENOMEM) is a
                    // passing shortage, not a missing feature.
                    let source = io::Error::from(e);
                    let err = if matches!(source.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
                        SpawnError::Unsupported {
                            what: "pidfd_open",
                            source,
                        }
                    } else {
                        SpawnError::Os {
                            op: "pidfd_open",
                            source,
                        }
                    };
                    return Attempt::Done(Err(err));
                }
            }
        };

        let failure = if let Some((read_end, write_end)) = err_pipe {
            drop(write_end);
            read_child_result(&read_end)
        } else {
            // SAFETY: the child is done with `result` (it exec'd or exited).
            let r = unsafe { std::ptr::read_volatile(&result) };
            (r.stage != 0).then_some(r)
        };
        match failure {
            None => Attempt::Done(Ok(Spawned { pidfd, pid })),
            Some(r) => {
                let _ = reap_exiting(pidfd.as_fd());
                let source = io::Error::from_raw_os_error(r.errno);
                let stage = Stage::from_raw(r.stage).unwrap_or(Stage::Exec);
                if stage == Stage::UnshareFiles
                    && matches!(r.errno, libc::EINVAL | libc::ENOSYS | libc::EPERM)
                {
                    return Attempt::Degrade(NO_FILES, source);
                }
                Attempt::Done(Err(SpawnError::Child { stage, source }))
            }
        }
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // SAFETY: unmaps the stack mapped in `new`; no child runs on it (the
        // clone returns only after the child is done with it).
        unsafe {
            libc::munmap(self.stack, STACK_SIZE);
        }
    }
}

enum Attempt {
    Done(Result<Spawned, SpawnError>),
    Degrade(u8, io::Error),
}

/// Reads the child's report from the exec-status pipe: nothing (EOF at
/// exec) means success.
fn read_child_result(fd: &OwnedFd) -> Option<ChildResult> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    (got == buf.len()).then(|| ChildResult {
        stage: u32::from_ne_bytes(buf[..4].try_into().expect("4 bytes")),
        errno: i32::from_ne_bytes(buf[4..].try_into().expect("4 bytes")),
    })
}

/// A null-terminated array of pointers into `strings`.
fn pointer_array(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}
