//! Process creation: `clone(2)` with `CLONE_PIDFD`, vfork-class, and the
//! child's side up to `execve(2)`.
//!
//! - [`child`]: what the new process does between clone and exec, as a
//!   list of named steps, with raw system calls only.
//! - [`parent`]: the [`Spawner`]: the child's stack, the clone itself, the
//!   fallback ladder when the kernel refuses a flag, and reading back a
//!   child's failure.
//!
//! The [`SpawnRequest`] is built by the safe spawn plan
//! ([`crate::spawn`]) from a [`Command`](crate::Command): paths, argv and
//! environment as C strings, stdio as fd numbers.
//!
//! # The fast path
//!
//! `CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | SIGCHLD`, on a stack
//! of our own:
//!
//! - `CLONE_VM | CLONE_VFORK`: no page tables are copied, so spawning from a
//!   4 GiB parent costs what it costs from a small one. The parent thread is
//!   suspended until the child execs or exits, so the child reports an exec
//!   failure by writing into the parent's memory; no pipe is needed.
//!   [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html)
//! - `CLONE_FILES`: the child starts on the parent's fd table and its first
//!   act is `close_range(keep_below, ~0, CLOSE_RANGE_UNSHARE)`, which gives
//!   it a private table holding only the fds below `keep_below` (the stdio
//!   sources). The supervisor's own fds, however many, are never copied into
//!   the child nor closed again at exec.
//! - `CLONE_PIDFD` (Linux 5.2): the pidfd exists from the first instant;
//!   there is no window in which the child is known only by pid.
//!
//! # Fallbacks
//!
//! Where the kernel refuses a flag (`EINVAL`, `ENOSYS`, `EPERM`: old
//! kernels, seccomp filters; Docker's default profile answers `EPERM`) the
//! spawner drops, in turn, `CLONE_FILES`, then `CLONE_VM | CLONE_VFORK` (a
//! fork-class clone reporting exec errors through a close-on-exec pipe),
//! then `CLONE_PIDFD` (then `pidfd_open(2)` on the still unreaped child,
//! which is race-free: its pid cannot be reused before we reap it). A
//! kernel before 5.2 does not refuse `CLONE_PIDFD`, it ignores it: the clone
//! succeeds and leaves the pidfd at -1, which is detected and takes the
//! `pidfd_open` path. Where `pidfd_open` is refused too (`ENOSYS` before
//! 5.3, `EPERM` from a seccomp filter) the spawner goes on with no pidfd:
//! the child is known by its pid while unreaped (see
//! [`ChildHandle`](crate::sys::pidfd::ChildHandle)). Each step is probed
//! once per process and logged once.
//!
//! # Bounded waits
//!
//! An error path that SIGKILLs its child reaps it within
//! [`KILLED_REAP_BOUND`](crate::sys::pidfd::KILLED_REAP_BOUND), then hands
//! it to a process-wide "reap later" list (see
//! [`kill_and_reap`](crate::sys::pidfd::kill_and_reap)): a child frozen by a
//! cgroup freezer, or in uninterruptible sleep, does not hang `spawn`. One
//! wait cannot be bounded: on the vfork-class path the kernel suspends the
//! spawning thread inside `clone` until the child execs or exits
//! ([vfork(2)](https://man7.org/linux/man-pages/man2/vfork.2.html)); a
//! child frozen before exec holds `spawn` until it is thawed (on the
//! fork-class path, the same holds for the read of its exec-status pipe).
//!
//! # Into a cgroup
//!
//! A child contained by a cgroup is created with `clone3(2)` and
//! `CLONE_INTO_CGROUP` (Linux 5.7; [`crate::sys::clone3`]), with the same
//! flags otherwise, so it is born in its cgroup. Where the kernel refuses
//! (`ENOSYS` before 5.3, `E2BIG` or `EINVAL` before 5.7, `EPERM` from a
//! seccomp filter), the spawner falls back, once per process, to `clone(2)`
//! and the child moves itself into the cgroup as its very first step, before
//! anything else and long before exec, so the program never runs outside.

mod child;
mod parent;

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::sys::pidfd::ChildHandle;

pub(crate) use child::Stage;
pub(crate) use parent::{probe_namespaces, Spawner};

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
    pub(crate) candidates: Vec<CString>,
    pub(crate) argv: Vec<CString>,
    pub(crate) envp: Vec<CString>,
    pub(crate) cwd: Option<CString>,
    pub(crate) stdio: [ChildFd; 3],
    /// `setpgid(0, pgid)` in the child.
    pub(crate) pgid: Option<i32>,
    /// A terminal fd (3 or above) whose foreground process group the
    /// child's group becomes before exec.
    pub(crate) terminal: Option<RawFd>,
    /// `setsid()` in the child (instead of `setpgid`).
    pub(crate) setsid: bool,
    pub(crate) death_signal: Option<i32>,
    /// `RLIMIT_NOFILE` to restore in the child (soft, hard).
    pub(crate) nofile: Option<(u64, u64)>,
    /// Resource limits to set in the child, after `nofile`.
    pub(crate) rlimits: Vec<RlimitEntry>,
    /// `umask` in the child.
    pub(crate) umask: Option<u32>,
    /// Supplementary groups to set in the child (`setgroups`).
    pub(crate) groups: Option<Groups>,
    /// `setgid` in the child.
    pub(crate) gid: Option<u32>,
    /// `setuid` in the child.
    pub(crate) uid: Option<u32>,
    /// Start the child as init of a new PID namespace (`CLONE_NEWPID`).
    pub(crate) new_pid_namespace: bool,
    /// Also in a new user namespace (`CLONE_NEWUSER`), with these
    /// `uid_map` and `gid_map` lines: a PID namespace without
    /// `CAP_SYS_ADMIN`.
    pub(crate) user_namespace: Option<IdMaps>,
    /// A cgroup v2 directory fd the child is born in (`clone3` with
    /// `CLONE_INTO_CGROUP`), or moves itself into before exec where the
    /// kernel refuses that.
    pub(crate) cgroup: Option<RawFd>,
    /// Test hook: sleep this long in the child before `PR_SET_PDEATHSIG`.
    #[cfg(feature = "testing")]
    pub(crate) setup_delay: Option<std::time::Duration>,
}

/// One resource limit for the child: `prlimit64(0, resource, &[soft, hard])`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RlimitEntry {
    pub(crate) resource: u32,
    /// Soft, hard.
    pub(crate) limits: [u64; 2],
}

/// Supplementary groups for the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Groups {
    pub(crate) list: Vec<u32>,
    /// False for the implicit drop of root's groups along with a uid
    /// change: a failure is ignored, as std does.
    pub(crate) required: bool,
}

/// The one-line id maps of a new user namespace.
#[derive(Debug)]
pub(crate) struct IdMaps {
    pub(crate) uid_map: CString,
    pub(crate) gid_map: CString,
}

impl IdMaps {
    /// Our effective uid and gid, each mapped to itself.
    pub(crate) fn identity() -> IdMaps {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        IdMaps {
            uid_map: CString::new(format!("{uid} {uid} 1")).expect("digits only"),
            gid_map: CString::new(format!("{gid} {gid} 1")).expect("digits only"),
        }
    }
}

/// A child that exec'd: its pidfd and pid, or its pid alone in no-pidfd
/// mode.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: ChildHandle,
}

/// Why a spawn failed.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// A call in the parent failed.
    Os { op: &'static str, source: io::Error },
    /// The child failed before exec (and was reaped).
    Child { stage: Stage, source: io::Error },
    /// A feature the spawn needs is refused (nothing is left running).
    Unsupported {
        what: &'static str,
        source: io::Error,
    },
}

// The spawn mode, probed once per process: bits set as the kernel refuses
// features.
const NO_FILES: u8 = 1;
const NO_VM: u8 = 2;
const NO_CLONE_PIDFD: u8 = 4;
/// `clone3(CLONE_INTO_CGROUP)` refused: children join their cgroup by
/// writing `cgroup.procs` before exec.
const NO_CLONE3: u8 = 8;
/// No pidfd at all (`CLONE_PIDFD` and `pidfd_open` refused): children are
/// known by pid while unreaped, exits learned through SIGCHLD.
const NO_PIDFD: u8 = 16;
static DEGRADED: AtomicU8 = AtomicU8::new(0);

/// Whether the process is in no-pidfd mode: the kernel (or a sandbox)
/// refused `CLONE_PIDFD` and `pidfd_open`, or a test forced it. Learnt at
/// the first spawn that needed a pidfd.
pub(crate) fn no_pidfd() -> bool {
    #[cfg(feature = "testing")]
    apply_test_mode();
    DEGRADED.load(Ordering::Relaxed) & NO_PIDFD != 0
}

/// Whether `pidfd_open(2)` works here: `Err` with what the kernel said
/// where it is refused (`ENOSYS` before Linux 5.3, `EPERM` from a seccomp
/// filter, as Docker's default profile answered). Probed once, on this
/// process. `CLONE_PIDFD` may still work where this does not, so the spawn
/// mode is left as it is.
/// [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
pub(crate) fn pidfd_open_works() -> Result<(), i32> {
    static PROBED: std::sync::OnceLock<Result<(), i32>> = std::sync::OnceLock::new();
    *PROBED.get_or_init(|| {
        let me = rustix::process::Pid::from_raw(std::process::id() as i32).expect("positive");
        match rustix::process::pidfd_open(me, rustix::process::PidfdFlags::empty()) {
            Err(e) if matches!(e.raw_os_error(), libc::ENOSYS | libc::EPERM) => {
                Err(e.raw_os_error())
            }
            _ => Ok(()),
        }
    })
}

/// Which spawn path the process uses now, for logs and diagnostics.
pub(crate) fn describe_mode() -> &'static str {
    let d = DEGRADED.load(Ordering::Relaxed);
    if d & NO_PIDFD != 0 {
        if d & NO_VM != 0 {
            "fork-class clone, no pidfd (SIGCHLD + waitid P_PID)"
        } else {
            "no pidfd (SIGCHLD + waitid P_PID)"
        }
    } else if d & NO_VM != 0 {
        if d & NO_CLONE_PIDFD != 0 {
            "fork-class clone + pidfd_open"
        } else {
            "fork-class clone with CLONE_PIDFD"
        }
    } else if d & NO_CLONE_PIDFD != 0 {
        "vfork-class clone + pidfd_open"
    } else if d & NO_FILES != 0 {
        "vfork-class clone with CLONE_PIDFD"
    } else {
        "vfork-class clone with CLONE_PIDFD and CLONE_FILES"
    }
}

/// Forces the fork-class path (`true`), or lets the spawner probe again
/// from the fast path (`false`; from the mode [`TEST_MODE_VAR`] forces,
/// if any). For tests of the fallback.
#[cfg(feature = "testing")]
pub(crate) fn force_fallback(fork_class: bool) {
    if fork_class {
        DEGRADED.fetch_or(NO_VM | NO_FILES | NO_CLONE_PIDFD, Ordering::Relaxed);
    } else {
        DEGRADED.store(forced_by_env(), Ordering::Relaxed);
    }
}

/// With feature `testing` only: the environment variable that forces a
/// spawn path for a whole test run, so that the suite runs on each
/// fallback: `fast` (the default), `no-files` (no `CLONE_FILES`), `fork`
/// (fork-class, `CLONE_PIDFD`), `pidfd-open` (fork-class, `pidfd_open`
/// after the clone), `no-clone3` (contained children move into their
/// cgroup themselves), `no-pidfd` (no pidfd at all: children known by pid,
/// exits learned through SIGCHLD).
#[cfg(feature = "testing")]
pub(crate) const TEST_MODE_VAR: &str = "PIDREAP_TEST_SPAWN_MODE";

/// The degradation bits [`TEST_MODE_VAR`] asks for (0 without it). An
/// unknown value panics: a test run must not silently use another path.
#[cfg(feature = "testing")]
pub(crate) fn forced_by_env() -> u8 {
    match std::env::var(TEST_MODE_VAR).as_deref() {
        Err(_) | Ok("" | "fast") => 0,
        Ok("no-files") => NO_FILES,
        Ok("fork") => NO_VM | NO_FILES,
        Ok("pidfd-open") => NO_VM | NO_FILES | NO_CLONE_PIDFD,
        Ok("no-clone3") => NO_CLONE3,
        Ok("no-pidfd") => NO_CLONE_PIDFD | NO_PIDFD,
        Ok(other) => panic!(
            "{TEST_MODE_VAR}={other:?}: expected fast, no-files, fork, pidfd-open, no-clone3 or no-pidfd"
        ),
    }
}

/// Test hook: the next spawn with `CLONE_PIDFD` acts as on a kernel before
/// 5.2, which ignores the flag and leaves the pidfd at -1 (the fd the
/// kernel gave is closed at once).
#[cfg(feature = "testing")]
static IGNORE_CLONE_PIDFD: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

#[cfg(feature = "testing")]
pub(crate) fn ignore_clone_pidfd_once() {
    IGNORE_CLONE_PIDFD.store(true, Ordering::Relaxed);
}

#[cfg(feature = "testing")]
fn take_ignore_clone_pidfd() -> bool {
    IGNORE_CLONE_PIDFD.swap(false, Ordering::Relaxed)
}

/// Test hook: the next spawn in this process calls this with the new
/// child's pid right after the clone, then fails (SIGKILL, bounded reap).
#[cfg(feature = "testing")]
static FAIL_AFTER_CLONE: std::sync::Mutex<Option<AfterClone>> = std::sync::Mutex::new(None);

/// What [`fail_after_clone_once`] runs.
#[cfg(feature = "testing")]
type AfterClone = Box<dyn FnOnce(i32) + Send>;

#[cfg(feature = "testing")]
pub(crate) fn fail_after_clone_once(hook: AfterClone) {
    *FAIL_AFTER_CLONE.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
}

#[cfg(feature = "testing")]
fn take_fail_after_clone() -> Option<AfterClone> {
    FAIL_AFTER_CLONE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
}

/// Applies [`TEST_MODE_VAR`] once per process, before the first spawn.
#[cfg(feature = "testing")]
pub(crate) fn apply_test_mode() {
    static APPLIED: std::sync::Once = std::sync::Once::new();
    APPLIED.call_once(|| {
        DEGRADED.fetch_or(forced_by_env(), Ordering::Relaxed);
    });
}

/// Records that the kernel refused a feature, logging it the first time.
fn degrade(bit: u8, why: &io::Error) {
    if DEGRADED.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        let what = match bit {
            NO_FILES => "CLONE_FILES with close_range(CLOSE_RANGE_UNSHARE)",
            NO_VM => "CLONE_VM|CLONE_VFORK",
            NO_CLONE3 => {
                log::warn!(
                    "kernel refused clone3 with CLONE_INTO_CGROUP ({why}); contained children now move into their cgroup before exec"
                );
                return;
            }
            NO_PIDFD => "every pidfd (CLONE_PIDFD and pidfd_open)",
            _ => "CLONE_PIDFD",
        };
        log::warn!(
            "kernel refused {what} ({why}); spawning now uses {}",
            describe_mode()
        );
    }
}
