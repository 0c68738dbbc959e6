//! The child's side of a spawn, from `clone` to `execve(2)`.
//!
//! [`child_main`] runs in the new process, in memory it may share with the
//! suspended parent (`CLONE_VM | CLONE_VFORK`). It therefore follows the
//! rules of a vfork child: it calls raw system calls only
//! ([`crate::sys::raw`]: no libc, so no `errno` and no locks), allocates
//! nothing, touches no parent stack frame and reads only the [`Plan`] that
//! the parent prepared before the clone. Every step is a small function of
//! its own, run in this order:
//!
//! 0. [`join_cgroup`]: move into the child's cgroup, where the clone could
//!    not place it there (`clone3` with `CLONE_INTO_CGROUP` refused);
//!    Then [`map_user_namespace`]: in a new user namespace, map our own uid
//!    and gid into it;
//! 1. [`unshare_fd_table`]: with `CLONE_FILES`, take a private fd table
//!    holding only the fds below [`Plan::keep_below`];
//! 2. [`reset_signal_handlers`]: every caught signal back to `SIG_DFL` (and
//!    an ignored `SIGPIPE`, which Rust programs ignore by default);
//! 3. [`join_process_group`]: `setpgid`, if asked; then
//!    [`take_terminal`]: make that group the terminal's foreground group,
//!    if asked; or [`start_session`]: `setsid`, if asked (never both);
//! 4. [`install_stdio`]: the stdio sources onto 0, 1 and 2, every other fd
//!    close-on-exec;
//! 5. each if asked: [`restore_fd_limit`], [`set_limits`], [`set_umask`],
//!    then the credentials in the safe order, each step needing the
//!    privilege the next one drops: [`set_groups`], [`set_gid`],
//!    [`set_uid`]; then [`change_directory`], as the new user;
//! 6. [`restore_signal_mask`]: the mask the process had before pidreap
//!    blocked anything (every signal is blocked across the clone);
//! 7. [`set_death_signal`]: `PR_SET_PDEATHSIG`, then exit at once if the
//!    parent died before it took effect;
//! 8. [`exec_program`]: `execve` each candidate path, as `execvp(3)` does,
//!    and a file the kernel cannot execute (`ENOEXEC`) through `/bin/sh`.
//!
//! A failing step reports `(stage, errno)` to the parent with [`fail`]
//! and exits; the parent turns that into a typed error naming the step.

use std::ffi::{c_char, c_int, c_void};

use crate::sys::raw::{
    addr, addr_mut, as_ref, exit_group, load, store, syscall4, syscall6, KernelPollFd,
    KernelTimespec,
};
use crate::sys::signals::{KernelSigset, KERNEL_SIGSET_SIZE};

use super::RlimitEntry;

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
    ParentDied = 8,
    Cgroup = 9,
    UserNamespace = 10,
    Session = 11,
    Terminal = 12,
    Limits = 13,
    Groups = 14,
    Gid = 15,
    Uid = 16,
}

impl Stage {
    pub(crate) fn from_raw(raw: u32) -> Option<Stage> {
        Some(match raw {
            1 => Stage::UnshareFiles,
            2 => Stage::ProcessGroup,
            3 => Stage::Stdio,
            4 => Stage::Chdir,
            5 => Stage::Rlimit,
            6 => Stage::DeathSignal,
            7 => Stage::Exec,
            8 => Stage::ParentDied,
            9 => Stage::Cgroup,
            10 => Stage::UserNamespace,
            12 => Stage::Terminal,
            11 => Stage::Session,
            13 => Stage::Limits,
            14 => Stage::Groups,
            15 => Stage::Gid,
            16 => Stage::Uid,
            _ => return None,
        })
    }

    /// What the stage does, for error messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Stage::UnshareFiles => "unsharing the fd table (close_range)",
            Stage::ProcessGroup => "joining the process group (setpgid)",
            Stage::Session => "starting a new session (setsid)",
            Stage::Stdio => "setting up stdio (dup3)",
            Stage::Chdir => "changing directory (chdir)",
            Stage::Rlimit => "restoring RLIMIT_NOFILE (prlimit64)",
            Stage::Limits => "setting its resource limits (prlimit64)",
            Stage::Groups => "setting its supplementary groups (setgroups)",
            Stage::Gid => "setting its group id (setgid)",
            Stage::Uid => "setting its user id (setuid)",
            Stage::DeathSignal => "setting the parent-death signal (prctl)",
            Stage::Exec => "executing the program (execve)",
            Stage::Cgroup => "moving into its cgroup (writing 0 to cgroup.procs)",
            Stage::UserNamespace => {
                "mapping its uid and gid into the new user namespace (/proc/self/uid_map)"
            }
            Stage::Terminal => {
                "making its process group the terminal's foreground group (TIOCSPGRP)"
            }
            Stage::ParentDied => {
                "checking that the parent is alive after PR_SET_PDEATHSIG (it had exited)"
            }
        }
    }
}

/// What a failing child reports: the stage and the kernel's errno. Written
/// into the parent's memory on the vfork path, into the exec-status pipe on
/// the fork path.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ChildResult {
    pub(crate) stage: u32,
    pub(crate) errno: i32,
}

/// Everything the child needs, prepared by the parent before the clone.
/// Every pointer points into the parent's [`SpawnRequest`](super::SpawnRequest)
/// buffers, which outlive the child's use of them: the parent is suspended
/// until the child execs or exits (vfork), or the child works on a copy
/// (fork).
#[repr(C)]
pub(crate) struct Plan {
    /// Null-terminated list of paths to try with `execve`.
    pub(crate) candidates: *const *const c_char,
    /// Null-terminated `argv`.
    pub(crate) argv: *const *const c_char,
    /// Null-terminated `envp`.
    pub(crate) envp: *const *const c_char,
    /// Directory to change to, or null.
    pub(crate) cwd: *const c_char,
    /// The fd to `dup3` onto 0, 1 and 2, or -1 to leave it.
    pub(crate) stdio: [c_int; 3],
    /// With `share_files`: the fds below this number are kept.
    pub(crate) keep_below: c_int,
    /// The child shares the parent's fd table (`CLONE_FILES`) until it
    /// unshares it.
    pub(crate) share_files: bool,
    /// `setpgid(0, pgid)`, or -1 to leave the group alone.
    pub(crate) pgid: c_int,
    /// A terminal fd (below `keep_below`) whose foreground process group
    /// the child's group becomes, or -1.
    pub(crate) terminal: c_int,
    /// `setsid()` (the parent never sets `pgid` as well).
    pub(crate) setsid: bool,
    /// The parent-death signal, or 0 for none.
    pub(crate) death_signal: c_int,
    /// The parent's pid, recorded before the clone.
    pub(crate) parent_pid: c_int,
    /// A pidfd of the parent (below `keep_below`), or -1: used instead of
    /// `getppid()` by a child in a new PID namespace, where the parent is
    /// not visible and `getppid()` returns 0.
    pub(crate) parent_pidfd: c_int,
    /// A cgroup v2 directory fd to move into before anything else, or -1
    /// (none, or the clone already placed the child there).
    pub(crate) cgroup_dir: c_int,
    /// In a new user namespace: the lines to write to `/proc/self/uid_map`
    /// and `/proc/self/gid_map` (NUL-terminated), or null.
    pub(crate) uid_map: *const c_char,
    pub(crate) gid_map: *const c_char,
    /// The signal mask to exec with.
    pub(crate) mask: KernelSigset,
    /// Null-terminated `argv` for running a candidate through `/bin/sh`
    /// after `ENOEXEC`: `/bin/sh`, a slot the child fills with the
    /// candidate's path, then the arguments; or null for no fallback.
    pub(crate) shell_argv: *mut *const c_char,
    /// Restore `RLIMIT_NOFILE` to `nofile` (soft, hard).
    pub(crate) has_nofile: bool,
    pub(crate) nofile: [u64; 2],
    /// `rlimit_count` limits to set with `prlimit64`, after `nofile`.
    pub(crate) rlimits: *const RlimitEntry,
    pub(crate) rlimit_count: usize,
    /// The `umask`, or -1 to leave it.
    pub(crate) umask: c_int,
    /// `group_count` supplementary groups, set as `groups_mode` says.
    pub(crate) groups: *const u32,
    pub(crate) group_count: usize,
    pub(crate) groups_mode: u8,
    /// `setgid(gid)` if `has_gid`, then `setuid(uid)` if `has_uid`.
    pub(crate) has_gid: bool,
    pub(crate) gid: u32,
    pub(crate) has_uid: bool,
    pub(crate) uid: u32,
    /// Test hook (feature `testing`): a `timespec` to sleep before
    /// `PR_SET_PDEATHSIG`, zero for none.
    #[cfg(feature = "testing")]
    pub(crate) delay: [i64; 2],
    /// The exec-status pipe's write end (fork path), or -1.
    pub(crate) err_pipe: c_int,
    /// Where to write the failure (vfork path).
    pub(crate) result: *mut ChildResult,
    /// Set to 1 by the child's first instruction (vfork path; null on the
    /// fork path, where the child writes [`RAN_MARK`] to the exec-status
    /// pipe instead): a child that never ran was killed at birth.
    pub(crate) ran: *mut u32,
}

/// [`Plan::groups_mode`]: leave the supplementary groups alone.
pub(crate) const GROUPS_KEEP: u8 = 0;
/// Set them; a failure fails the spawn.
pub(crate) const GROUPS_SET: u8 = 1;
/// Set them (root's implicit drop with a uid change); ignore a failure.
pub(crate) const GROUPS_TRY: u8 = 2;

/// The byte a fork-path child writes to the exec-status pipe first.
pub(crate) const RAN_MARK: u8 = b'r';

/// The kernel's `struct sigaction` for `rt_sigaction(2)` on x86_64 and
/// aarch64 (both define `SA_RESTORER`): handler, flags, restorer, mask.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: KernelSigset,
}

const SIGACTION_DEFAULT: KernelSigaction = KernelSigaction {
    handler: libc::SIG_DFL,
    flags: 0,
    restorer: 0,
    mask: 0,
};

/// `close_range(2)` flags (Linux 5.9 and 5.11), not in every libc.
pub(crate) const CLOSE_RANGE_UNSHARE: usize = 1 << 1;
const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;
/// `close_range`'s "up to the last fd" (`~0U`).
const CLOSE_RANGE_ALL: usize = u32::MAX as usize;

/// The highest signal number the kernel has (`_NSIG`).
const LAST_SIGNAL: usize = 64;

/// The size of a [`ChildResult`] in the exec-status pipe.
const RESULT_SIZE: usize = core::mem::size_of::<ChildResult>();

/// The exit code after a failure was reported to the parent.
const FAILED_EXIT: i32 = 127;
/// The exit code of a child whose parent died before `PR_SET_PDEATHSIG`
/// took effect. Nobody is left to read it; it is distinct for `strace`.
const PARENT_DIED_EXIT: i32 = 126;

/// Errors after which `execvp(3)` goes on to the next `PATH` entry, as a
/// table indexed by errno: a comparison chain would become a jump table
/// (an indirect branch) in a release build.
static TRY_NEXT_PATH: [bool; ERRNO_TABLE] = {
    let mut t = [false; ERRNO_TABLE];
    t[libc::ENOENT as usize] = true;
    t[libc::ENOTDIR as usize] = true;
    t[libc::ESTALE as usize] = true;
    t[libc::ENODEV as usize] = true;
    t[libc::ETIMEDOUT as usize] = true;
    t
};
/// The length of [`TRY_NEXT_PATH`], above every errno it holds.
const ERRNO_TABLE: usize = 128;

/// Whether `execvp(3)` goes on to the next `PATH` entry after `errno`.
#[inline(always)]
extern "C" fn try_next_path(errno: isize) -> bool {
    if errno < 0 || errno >= ERRNO_TABLE as isize {
        return false;
    }
    let table = &TRY_NEXT_PATH as *const [bool; ERRNO_TABLE] as *const bool;
    // SAFETY: `errno` is within the table.
    unsafe { load(table.wrapping_add(errno as usize)) }
}

/// The child's side, from clone to exec. Raw system calls only, on the plan.
///
/// Everything it runs compiles to straight code in every profile, debug
/// included: no function of `core` or `std` (no checked arithmetic,
/// indexing, iterators, `ptr::add` or `write_volatile`, whose debug checks
/// call panic functions), no raw-pointer dereference (checked for
/// alignment and null in debug builds: [`load`] and [`store`] instead),
/// and only its own functions and [`crate::sys::raw`]'s. Those are all
/// `extern "C"`: the compiler then knows that none of them unwinds, and
/// puts no landing pad (which calls a panic function) in their callers.
/// The test `tests/child_code.rs` checks the machine code for it.
pub(crate) extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: the parent passes a pointer to its Plan, valid for this whole
    // function (see Plan), and never writes to it while the child runs.
    let p: &Plan = unsafe { as_ref(arg as *const Plan) };
    // SAFETY: `ran` points to the parent's u32, alive until the clone
    // returns in the parent; the pipe write reads one static byte.
    unsafe {
        if p.ran as usize != 0 {
            store(p.ran, 1);
        } else if p.err_pipe >= 0 {
            syscall4(libc::SYS_write, p.err_pipe as usize, addr(&RAN_MARK), 1, 0);
        }
    }
    // SAFETY: each step makes raw system calls whose pointer arguments point
    // into the plan or to locals of the step, on the child's own stack.
    unsafe {
        if p.cgroup_dir >= 0 {
            join_cgroup(p);
        }
        if p.uid_map as usize != 0 {
            map_user_namespace(p);
        }
        if p.share_files {
            unshare_fd_table(p);
        }
        reset_signal_handlers();
        if p.pgid >= 0 {
            join_process_group(p);
        }
        if p.terminal >= 0 {
            take_terminal(p);
        }
        if p.setsid {
            start_session(p);
        }
        install_stdio(p);
        if p.has_nofile {
            restore_fd_limit(p);
        }
        if p.rlimit_count > 0 {
            set_limits(p);
        }
        if p.umask >= 0 {
            set_umask(p);
        }
        if p.groups_mode != GROUPS_KEEP {
            set_groups(p);
        }
        if p.has_gid {
            set_gid(p);
        }
        if p.has_uid {
            set_uid(p);
        }
        if p.cwd as usize != 0 {
            change_directory(p);
        }
        restore_signal_mask(p);
        #[cfg(feature = "testing")]
        test_delay(p);
        if p.death_signal != 0 {
            set_death_signal(p);
        }
        exec_program(p)
    }
}

/// Reports a failure to the parent and exits.
///
/// # Safety
///
/// `p` must be the plan the parent prepared.
#[inline(always)]
unsafe extern "C" fn fail(p: &Plan, stage: Stage, errno: isize) -> ! {
    // SAFETY: forwarded from the caller.
    unsafe { fail_with(p, stage, errno, FAILED_EXIT) }
}

/// [`fail`]s at `stage` if `r`, a raw system call's result, is an error
/// (`-errno`).
///
/// # Safety
///
/// As for [`fail`].
#[inline(always)]
unsafe extern "C" fn check(p: &Plan, stage: Stage, r: isize) {
    if r < 0 {
        // SAFETY: forwarded from the caller.
        unsafe { fail(p, stage, r.wrapping_neg()) }
    }
}

/// [`fail`] with a given exit code.
///
/// # Safety
///
/// As for [`fail`].
#[inline(always)]
unsafe extern "C" fn fail_with(p: &Plan, stage: Stage, errno: isize, code: i32) -> ! {
    let result = ChildResult {
        stage: stage as u32,
        errno: errno as i32,
    };
    if p.err_pipe >= 0 {
        // SAFETY: writes the 8 bytes of a local to our own pipe fd.
        unsafe {
            syscall4(
                libc::SYS_write,
                p.err_pipe as usize,
                addr(&result),
                RESULT_SIZE,
                0,
            );
        }
    } else {
        // SAFETY: on the vfork path `result` points to the parent's
        // ChildResult, which lives until the clone returns in the parent;
        // nobody else touches it while the parent is suspended. The
        // exit_group that follows is an asm block that may read memory, so
        // the store happens before it.
        unsafe { store(p.result, result) };
    }
    exit_group(code)
}

/// Step 0: write `0` to `cgroup.procs` of [`Plan::cgroup_dir`], which
/// moves the writing process into that cgroup. It runs first, before any
/// other step and long before exec, so the program never runs outside its
/// cgroup, and a supervisor that dies before this step leaves a child
/// that exits at step 7 without running the program.
/// [cgroup v2](https://docs.kernel.org/admin-guide/cgroup-v2.html#organizing-processes-and-threads),
/// [openat(2)](https://man7.org/linux/man-pages/man2/openat.2.html)
unsafe extern "C" fn join_cgroup(p: &Plan) {
    const PROCS: &[u8; 13] = b"cgroup.procs\0";
    const ME: &[u8; 1] = b"0";
    // SAFETY: a static NUL-terminated name.
    let fd = unsafe { open_at(p.cgroup_dir, addr(PROCS) as *const u8, libc::O_WRONLY) };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Cgroup, fd) };
    // SAFETY: write reads one static byte.
    let r = unsafe { syscall4(libc::SYS_write, fd as usize, addr(ME), 1, 0) };
    close_fd(fd);
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Cgroup, r) };
}

/// Writes the NUL-terminated `text` to the file at the NUL-terminated
/// `path`; the kernel's errno (negative) on failure.
///
/// # Safety
///
/// `path` and `text` must point to NUL-terminated strings.
unsafe extern "C" fn write_file(path: *const u8, text: *const c_char) -> isize {
    let mut len = 0usize;
    // SAFETY: the caller vouches for the NUL terminator.
    while unsafe { load(text.wrapping_add(len)) } != 0 {
        len = len.wrapping_add(1);
    }
    // SAFETY: the caller's NUL-terminated path.
    let fd = unsafe { open_at(libc::AT_FDCWD, path, libc::O_WRONLY) };
    if fd < 0 {
        return fd;
    }
    // SAFETY: write reads `len` bytes of `text`.
    let r = unsafe { syscall4(libc::SYS_write, fd as usize, text as usize, len, 0) };
    close_fd(fd);
    if r < 0 {
        r
    } else {
        0
    }
}

/// Step 0, in a new user namespace (an unprivileged PID namespace): write
/// `deny` to `/proc/self/setgroups` (required before an unprivileged
/// `gid_map`), then map our own gid and uid, each to itself, so the program
/// runs as the user it would have run as, without privileges outside.
/// [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)
unsafe extern "C" fn map_user_namespace(p: &Plan) {
    // SAFETY: static NUL-terminated strings, and the plan's maps, which the
    // parent made NUL-terminated.
    let r = unsafe {
        let mut r = write_file(
            b"/proc/self/setgroups\0" as *const u8,
            b"deny\0" as *const u8 as *const c_char,
        );
        if r == 0 {
            r = write_file(b"/proc/self/gid_map\0" as *const u8, p.gid_map);
        }
        if r == 0 {
            r = write_file(b"/proc/self/uid_map\0" as *const u8, p.uid_map);
        }
        r
    };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::UserNamespace, r) };
}

/// Step 1: `close_range(keep_below, ~0, CLOSE_RANGE_UNSHARE)` gives the
/// child a private fd table holding only the fds below `keep_below` (the
/// stdio sources), so the supervisor's own fds are never copied.
/// [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
unsafe extern "C" fn unshare_fd_table(p: &Plan) {
    // SAFETY: close_range takes integers only.
    let r = unsafe {
        syscall4(
            libc::SYS_close_range,
            p.keep_below as usize,
            CLOSE_RANGE_ALL,
            CLOSE_RANGE_UNSHARE,
            0,
        )
    };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::UnshareFiles, r) };
}

/// Step 2: every caught signal back to `SIG_DFL`, since the handlers'
/// code is not there after exec and, on the vfork path, would run on the
/// parent's memory; `SIGPIPE` too when it is ignored (the Rust runtime
/// ignores it, and children expect the default). Nothing is delivered
/// meanwhile: every signal is blocked.
/// [rt_sigaction(2)](https://man7.org/linux/man-pages/man2/rt_sigaction.2.html)
unsafe extern "C" fn reset_signal_handlers() {
    let mut sig: usize = 1;
    while sig <= LAST_SIGNAL {
        if sig != libc::SIGKILL as usize && sig != libc::SIGSTOP as usize {
            let mut old = SIGACTION_DEFAULT;
            // SAFETY: rt_sigaction with a null new action writes the current
            // one into `old`, a local of the right size.
            let r = unsafe {
                syscall4(
                    libc::SYS_rt_sigaction,
                    sig,
                    0,
                    addr_mut(&mut old),
                    KERNEL_SIGSET_SIZE,
                )
            };
            let caught = old.handler != libc::SIG_DFL && old.handler != libc::SIG_IGN;
            let ignored_pipe = sig == libc::SIGPIPE as usize && old.handler == libc::SIG_IGN;
            if r == 0 && (caught || ignored_pipe) {
                // SAFETY: reads the constant default action.
                unsafe {
                    syscall4(
                        libc::SYS_rt_sigaction,
                        sig,
                        addr(&SIGACTION_DEFAULT),
                        0,
                        KERNEL_SIGSET_SIZE,
                    );
                }
            }
        }
        sig = sig.wrapping_add(1);
    }
}

/// Step 3: `setpgid(0, pgid)`: join a group, or lead a new one (0).
/// [setpgid(2)](https://man7.org/linux/man-pages/man2/setpgid.2.html)
unsafe extern "C" fn join_process_group(p: &Plan) {
    // SAFETY: setpgid takes integers only.
    let r = unsafe { syscall4(libc::SYS_setpgid, 0, p.pgid as usize, 0, 0) };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::ProcessGroup, r) };
}

/// Step 3b: `ioctl(terminal, TIOCSPGRP, getpgid(0))`: the child's process
/// group becomes the terminal's foreground group, so the keys that send
/// signals (Ctrl-C, Ctrl-Z) reach it, and it may read the
/// terminal. The terminal must be the child's controlling terminal. A
/// process outside the foreground group gets `SIGTTOU` for this call,
/// unless the signal is blocked: every signal is blocked here.
/// [tcsetpgrp(3)](https://man7.org/linux/man-pages/man3/tcgetpgrp.3.html)
unsafe extern "C" fn take_terminal(p: &Plan) {
    // SAFETY: getpgid takes an integer (0: this process).
    let pgid = unsafe { syscall4(libc::SYS_getpgid, 0, 0, 0, 0) };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Terminal, pgid) };
    let pgid = pgid as libc::pid_t;
    // SAFETY: TIOCSPGRP reads one pid_t, a local.
    let r = unsafe {
        syscall4(
            libc::SYS_ioctl,
            p.terminal as usize,
            libc::TIOCSPGRP as usize,
            addr(&pgid),
            0,
        )
    };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Terminal, r) };
}

/// Step 3, instead of [`join_process_group`]: `setsid()`: lead a new
/// session and a new process group, without a controlling terminal. It
/// fails (`EPERM`) only for a process that already leads a group, which
/// this child does not: it was just cloned, and the plan never asks for
/// `setpgid` as well.
/// [setsid(2)](https://man7.org/linux/man-pages/man2/setsid.2.html)
unsafe extern "C" fn start_session(p: &Plan) {
    // SAFETY: setsid takes no arguments.
    let r = unsafe { syscall4(libc::SYS_setsid, 0, 0, 0, 0) };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Session, r) };
}

/// Step 4: `dup3` each stdio source onto 0, 1, 2 (the sources are all 3 or
/// above, so none clobbers another), then mark every fd from 3 up
/// close-on-exec: marked, not closed, because the exec-status pipe must
/// live until the exec. `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` does it
/// in one call; where that fails (no `close_range` before Linux 5.9, no
/// `CLOSE_RANGE_CLOEXEC` before 5.11, or a seccomp filter refusing it, as
/// container runtimes' default profiles did) [`mark_cloexec_by_listing`]
/// walks `/proc/self/fd` instead. That needs `/proc`: without it mounted,
/// fds the program opened without `O_CLOEXEC` stay inheritable there
/// (every fd pidreap makes is close-on-exec anyway).
/// [dup3(2)](https://man7.org/linux/man-pages/man2/dup3.2.html),
/// [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
unsafe extern "C" fn install_stdio(p: &Plan) {
    let [stdin, stdout, stderr] = p.stdio;
    // SAFETY: forwarded from the caller.
    unsafe {
        dup_onto(p, stdin, 0);
        dup_onto(p, stdout, 1);
        dup_onto(p, stderr, 2);
    }
    // SAFETY: close_range takes integers only.
    let r = unsafe {
        syscall4(
            libc::SYS_close_range,
            3,
            CLOSE_RANGE_ALL,
            CLOSE_RANGE_CLOEXEC,
            0,
        )
    };
    if r < 0 {
        // SAFETY: raw system calls on a directory fd of its own and a
        // local buffer.
        unsafe { mark_cloexec_by_listing() };
    }
}

/// The size of the buffer [`mark_cloexec_by_listing`] reads directory
/// entries into, on the child's stack: a few dozen entries per call.
const DIRENT_BUFFER: usize = 1024;
/// Offsets in the kernel's `struct linux_dirent64`: `d_ino` (u64),
/// `d_off` (i64), then `d_reclen` (u16), `d_type` (u8) and `d_name`
/// (NUL-terminated). Records are 8-byte aligned.
/// [getdents64(2)](https://man7.org/linux/man-pages/man2/getdents64.2.html)
const DIRENT_RECLEN: usize = 16;
const DIRENT_NAME: usize = 19;

/// Marks every fd from 3 up close-on-exec with `fcntl(fd, F_SETFD,
/// FD_CLOEXEC)`, finding them by listing `/proc/self/fd`
/// ([proc_pid_fd(5)](https://man7.org/linux/man-pages/man5/proc_pid_fd.5.html))
/// with `getdents64`: the fallback of [`install_stdio`] where
/// `close_range` cannot do it. The directory's own fd is opened
/// `O_CLOEXEC` and is closed at the end. Setting a flag changes no entry of
/// the table, so the listing stays whole while it runs. If `/proc` is not
/// mounted (the `openat` fails) it does nothing: fds without
/// `FD_CLOEXEC` then reach the program.
/// [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html)
///
/// # Safety
///
/// Only for the child side of a spawn: it marks every fd of the calling
/// process's fd table, which must be the child's own (not shared with the
/// parent through `CLONE_FILES`).
unsafe extern "C" fn mark_cloexec_by_listing() {
    const FD_DIR: &[u8; 14] = b"/proc/self/fd\0";
    // SAFETY: a static NUL-terminated path.
    let dir = unsafe {
        open_at(
            libc::AT_FDCWD,
            addr(FD_DIR) as *const u8,
            libc::O_RDONLY | libc::O_DIRECTORY,
        )
    };
    if dir < 0 {
        return;
    }
    // u64s for the records' 8-byte alignment. Uninitialised: zeroing it
    // would call `memset` in a debug build; only the bytes getdents64
    // wrote are looked at.
    let mut buffer = core::mem::MaybeUninit::<[u64; DIRENT_BUFFER / 8]>::uninit();
    let base = buffer.as_mut_ptr() as *mut u8;
    loop {
        // SAFETY: getdents64 writes at most DIRENT_BUFFER bytes into the
        // local buffer.
        let n = unsafe {
            syscall4(
                libc::SYS_getdents64,
                dir as usize,
                base as usize,
                DIRENT_BUFFER,
                0,
            )
        };
        // 0: the end of the directory; below 0: an error, stop there.
        if n <= 0 {
            break;
        }
        let n = n as usize;
        let mut offset = 0usize;
        while offset < n {
            let record = base.wrapping_add(offset) as *const u8;
            // SAFETY: `offset` is the start of a record that getdents64
            // wrote, 8-byte aligned, so its u16 d_reclen is aligned too.
            let reclen = unsafe { load(record.wrapping_add(DIRENT_RECLEN) as *const u16) } as usize;
            // A record the kernel would never write: stop rather than
            // read past what it wrote.
            if reclen <= DIRENT_NAME || reclen > n.wrapping_sub(offset) {
                break;
            }
            // SAFETY: the name lies within the record, which lies within
            // the bytes written.
            let fd = unsafe {
                parse_fd(
                    record.wrapping_add(DIRENT_NAME),
                    reclen.wrapping_sub(DIRENT_NAME),
                )
            };
            if fd >= 3 && fd != dir {
                // SAFETY: fcntl(F_SETFD) takes integers only.
                unsafe {
                    syscall4(
                        libc::SYS_fcntl,
                        fd as usize,
                        libc::F_SETFD as usize,
                        libc::FD_CLOEXEC as usize,
                        0,
                    )
                };
            }
            offset = offset.wrapping_add(reclen);
        }
    }
    close_fd(dir);
}

/// The fd number a `/proc/self/fd` entry names: the decimal digits at
/// `name`, up to a NUL within `len` bytes; -1 for any other name (`.` and
/// `..`) or one of more than 10 digits (above every fd).
///
/// # Safety
///
/// `name` must point to `len` readable bytes.
#[allow(clippy::manual_range_contains)] // See the digit test.
unsafe extern "C" fn parse_fd(name: *const u8, len: usize) -> isize {
    let mut value = 0usize;
    let mut i = 0usize;
    while i < len {
        // SAFETY: `i` is below `len`.
        let b = unsafe { load(name.wrapping_add(i)) };
        if b == 0 {
            break;
        }
        // Comparisons, not `is_ascii_digit` or `RangeInclusive::contains`:
        // each is a call in a debug build.
        if b < b'0' || b > b'9' || i >= 10 {
            return -1;
        }
        value = value
            .wrapping_mul(10)
            .wrapping_add(b.wrapping_sub(b'0') as usize);
        i = i.wrapping_add(1);
    }
    if i == 0 || value > c_int::MAX as usize {
        return -1;
    }
    value as isize
}

/// `dup3(src, target, 0)` unless `src` is -1.
///
/// # Safety
///
/// As for [`fail`].
#[inline(always)]
unsafe extern "C" fn dup_onto(p: &Plan, src: c_int, target: usize) {
    if src >= 0 {
        // SAFETY: dup3 takes integers only.
        let r = unsafe { syscall4(libc::SYS_dup3, src as usize, target, 0, 0) };
        // SAFETY: forwarded from the caller.
        unsafe { check(p, Stage::Stdio, r) };
    }
}

/// Step 5g: `chdir`, as the child's final user (after [`set_uid`]), as
/// std does. [chdir(2)](https://man7.org/linux/man-pages/man2/chdir.2.html)
unsafe extern "C" fn change_directory(p: &Plan) {
    // SAFETY: `cwd` is a NUL-terminated string owned by the parent.
    let r = unsafe { syscall4(libc::SYS_chdir, p.cwd as usize, 0, 0, 0) };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Chdir, r) };
}

/// Step 5a: give the child the `RLIMIT_NOFILE` the process had before
/// pidreap raised it (programs using `select(2)` break above 1024).
/// [prlimit64(2)](https://man7.org/linux/man-pages/man2/prlimit.2.html)
unsafe extern "C" fn restore_fd_limit(p: &Plan) {
    // SAFETY: reads two u64s (soft, hard) from the plan.
    let r = unsafe {
        syscall4(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_NOFILE as usize,
            addr(&p.nofile),
            0,
        )
    };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Rlimit, r) };
}

/// Step 5b: the resource limits the command sets, each with
/// `prlimit64(0, resource, &[soft, hard], NULL)` on the child itself, before
/// its credentials change (raising a hard limit needs `CAP_SYS_RESOURCE`).
/// [prlimit64(2)](https://man7.org/linux/man-pages/man2/prlimit.2.html)
unsafe extern "C" fn set_limits(p: &Plan) {
    let mut i = 0usize;
    while i < p.rlimit_count {
        // SAFETY: `rlimits` holds `rlimit_count` entries owned by the
        // parent; `i` is below that.
        let entry: &RlimitEntry = unsafe { as_ref(p.rlimits.wrapping_add(i)) };
        // SAFETY: prlimit64 reads two u64s (soft, hard) from the entry.
        let r = unsafe {
            syscall4(
                libc::SYS_prlimit64,
                0,
                entry.resource as usize,
                addr(&entry.limits),
                0,
            )
        };
        // SAFETY: forwarded from the caller.
        unsafe { check(p, Stage::Limits, r) };
        i = i.wrapping_add(1);
    }
}

/// Step 5c: `umask`, which cannot fail.
/// [umask(2)](https://man7.org/linux/man-pages/man2/umask.2.html)
unsafe extern "C" fn set_umask(p: &Plan) {
    // SAFETY: umask takes an integer.
    unsafe { syscall4(libc::SYS_umask, p.umask as usize, 0, 0, 0) };
}

/// Step 5d, the first credential step: `setgroups`, while the child still
/// has the privilege for it (the group and user ids change after).
/// The raw system call changes this process alone, which is what the child
/// is (it shares no thread group with the parent).
/// [setgroups(2)](https://man7.org/linux/man-pages/man2/setgroups.2.html)
unsafe extern "C" fn set_groups(p: &Plan) {
    // SAFETY: setgroups reads `group_count` u32s owned by the parent (a
    // null pointer with a count of 0 clears them).
    let r = unsafe { syscall4(libc::SYS_setgroups, p.group_count, p.groups as usize, 0, 0) };
    if r < 0 && p.groups_mode == GROUPS_SET {
        // SAFETY: forwarded from the caller.
        unsafe { fail(p, Stage::Groups, r.wrapping_neg()) }
    }
}

/// Step 5e: `setgid`, after the groups and before the user id (after
/// `setuid` the child would lack the privilege for it).
/// [setgid(2)](https://man7.org/linux/man-pages/man2/setgid.2.html)
unsafe extern "C" fn set_gid(p: &Plan) {
    // SAFETY: setgid takes an integer.
    let r = unsafe { syscall4(libc::SYS_setgid, p.gid as usize, 0, 0, 0) };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Gid, r) };
}

/// Step 5f, the last step that may use privilege: `setuid`. A root child
/// changes its real, effective and saved user ids and so drops root for
/// good. It runs before `PR_SET_PDEATHSIG` (step 7), which a change of
/// effective ids clears.
/// [setuid(2)](https://man7.org/linux/man-pages/man2/setuid.2.html)
unsafe extern "C" fn set_uid(p: &Plan) {
    // SAFETY: setuid takes an integer.
    let r = unsafe { syscall4(libc::SYS_setuid, p.uid as usize, 0, 0, 0) };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::Uid, r) };
}

/// Step 6: the mask to exec with (the blocked mask survives exec).
/// [rt_sigprocmask(2)](https://man7.org/linux/man-pages/man2/sigprocmask.2.html)
unsafe extern "C" fn restore_signal_mask(p: &Plan) {
    // SAFETY: reads one kernel sigset from the plan.
    unsafe {
        syscall4(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            addr(&p.mask),
            0,
            KERNEL_SIGSET_SIZE,
        );
    }
}

/// Test hook: sleeps before `PR_SET_PDEATHSIG` to widen the window in which
/// the parent can die first.
#[cfg(feature = "testing")]
unsafe extern "C" fn test_delay(p: &Plan) {
    if p.delay[0] != 0 || p.delay[1] != 0 {
        // SAFETY: nanosleep reads a timespec from the plan.
        unsafe { syscall4(libc::SYS_nanosleep, addr(&p.delay), 0, 0, 0) };
    }
}

/// Step 7: `PR_SET_PDEATHSIG`, then check that the parent is still alive:
/// a parent that died before the prctl sends no signal, so the child exits
/// now instead of running orphaned. The check compares `getppid()` with the
/// pid the parent recorded before the clone; in a new PID namespace, where
/// `getppid()` is 0, it polls a pidfd of the parent instead, which is
/// readable once the parent has exited
/// ([pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)).
/// A child that finds its parent gone reports it (the parent, if it is in
/// fact alive, gets a typed error) and exits.
/// [PR_SET_PDEATHSIG](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html)
unsafe extern "C" fn set_death_signal(p: &Plan) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes integers only.
    let r = unsafe {
        syscall4(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as usize,
            p.death_signal as usize,
            0,
            0,
        )
    };
    // SAFETY: forwarded from the caller.
    unsafe { check(p, Stage::DeathSignal, r) };
    let parent_gone = if p.parent_pidfd >= 0 {
        let mut poll = KernelPollFd {
            fd: p.parent_pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        let now = KernelTimespec { sec: 0, nsec: 0 };
        // SAFETY: ppoll reads one pollfd and a zero timespec from locals and
        // writes the pollfd's revents; no signal mask is passed.
        let r = unsafe {
            syscall6(
                libc::SYS_ppoll,
                addr_mut(&mut poll),
                1,
                addr(&now),
                0,
                KERNEL_SIGSET_SIZE,
                0,
            )
        };
        r > 0 && poll.revents & libc::POLLIN != 0
    } else {
        // SAFETY: getppid takes no arguments.
        let ppid = unsafe { syscall4(libc::SYS_getppid, 0, 0, 0, 0) };
        ppid != p.parent_pid as isize
    };
    if parent_gone {
        // SAFETY: forwarded from the caller.
        unsafe { fail_with(p, Stage::ParentDied, libc::ESRCH as isize, PARENT_DIED_EXIT) }
    }
}

/// How much of a file [`looks_like_text`] reads: as much as bash does for
/// the same check.
const SAMPLE: usize = 80;

/// False when the file at `path` cannot be read, or its first line (within
/// the first [`SAMPLE`] bytes) holds a NUL byte: a binary, such as one for
/// another architecture, which a shell would run as garbage commands.
/// bash refuses such a file the same way ("cannot execute binary file").
///
/// # Safety
///
/// `path` must be a NUL-terminated string.
unsafe extern "C" fn looks_like_text(path: *const c_char) -> bool {
    // Uninitialised: zeroing it would call `memset` in a debug build. Only
    // the bytes `read` wrote are looked at.
    let mut sample = core::mem::MaybeUninit::<[u8; SAMPLE]>::uninit();
    let base = sample.as_mut_ptr() as *mut u8;
    // `c_char` is `i8` on x86_64 and `u8` on aarch64, where the cast is a
    // no-op.
    #[allow(clippy::unnecessary_cast)]
    let path = path as *const u8;
    // SAFETY: the caller's NUL-terminated path.
    let fd = unsafe { open_at(libc::AT_FDCWD, path, libc::O_RDONLY) };
    if fd < 0 {
        return false;
    }
    // SAFETY: read writes at most SAMPLE bytes into the local buffer.
    let n = unsafe { syscall4(libc::SYS_read, fd as usize, base as usize, SAMPLE, 0) };
    close_fd(fd);
    if n < 0 {
        return false;
    }
    let mut i = 0usize;
    while i < n as usize && i < SAMPLE {
        // SAFETY: `i` is below the `n` bytes read wrote into the buffer.
        let b = unsafe { load(base.wrapping_add(i)) };
        if b == b'\n' {
            return true;
        }
        if b == 0 {
            return false;
        }
        i = i.wrapping_add(1);
    }
    true
}

/// `execve("/bin/sh", ["/bin/sh", path, args...])`, which returns only on
/// failure. The slot for `path` is in [`Plan::shell_argv`], prepared by
/// the parent; writing it touches no memory the parent reads.
///
/// # Safety
///
/// `p` must be the plan the parent prepared, `path` a NUL-terminated
/// string that outlives the call.
unsafe extern "C" fn run_with_shell(p: &Plan, path: *const c_char) {
    const SHELL: &[u8; 8] = b"/bin/sh\0";
    // SAFETY: forwarded from the caller.
    if p.shell_argv as usize == 0 || !unsafe { looks_like_text(path) } {
        return;
    }
    // SAFETY: `shell_argv` holds at least three slots (the shell, the
    // path, the terminating null) and nothing else reads slot 1 while the
    // child runs; execve reads static and parent-owned strings.
    unsafe {
        store(p.shell_argv.wrapping_add(1), path);
        syscall6(
            libc::SYS_execve,
            addr(SHELL),
            p.shell_argv as usize,
            p.envp as usize,
            0,
            0,
            0,
        );
    }
}

/// Step 8: `execve` each candidate in turn, as `execvp(3)` does: go on
/// after "not there" errors, stop at any other; report `EACCES` if some
/// candidate was there but not executable and none ran. A candidate the
/// kernel refuses with `ENOEXEC` (an executable file that is neither a
/// binary nor starts with `#!`, such as a script without a shebang) is run
/// as `/bin/sh PATH ARGS...`, as `execvp(3)` and the shells do, unless it
/// looks binary (see [`looks_like_text`]); if that fails too, or it looks
/// binary, the error reported is the `ENOEXEC`.
/// [execve(2)](https://man7.org/linux/man-pages/man2/execve.2.html),
/// [execvp(3)](https://man7.org/linux/man-pages/man3/execvp.3.html)
unsafe extern "C" fn exec_program(p: &Plan) -> ! {
    let mut saw_eacces = false;
    let mut err: isize = libc::ENOENT as isize;
    let mut c = p.candidates;
    // SAFETY: `candidates` is a null-terminated array of NUL-terminated
    // strings owned by the parent; argv and envp likewise.
    unsafe {
        loop {
            let candidate = load(c);
            if candidate as usize == 0 {
                break;
            }
            let r = syscall6(
                libc::SYS_execve,
                candidate as usize,
                p.argv as usize,
                p.envp as usize,
                0,
                0,
                0,
            );
            err = r.wrapping_neg();
            if err == libc::ENOEXEC as isize {
                run_with_shell(p, candidate);
                break;
            }
            if err == libc::EACCES as isize {
                saw_eacces = true;
            } else if !try_next_path(err) {
                break;
            }
            c = c.wrapping_add(1);
        }
    }
    if saw_eacces && try_next_path(err) {
        err = libc::EACCES as isize;
    }
    // SAFETY: forwarded from the caller.
    unsafe { fail(p, Stage::Exec, err) }
}

/// `openat(dir, path, flags | O_CLOEXEC)`: the new fd, or `-errno`.
/// [openat(2)](https://man7.org/linux/man-pages/man2/openat.2.html)
///
/// # Safety
///
/// `path` must be a NUL-terminated string.
unsafe extern "C" fn open_at(dir: c_int, path: *const u8, flags: c_int) -> isize {
    // SAFETY: openat reads the caller's NUL-terminated path.
    unsafe {
        syscall4(
            libc::SYS_openat,
            dir as usize,
            path as usize,
            (flags | libc::O_CLOEXEC) as usize,
            0,
        )
    }
}

/// Closes an fd the child opened; its result does not matter.
/// [close(2)](https://man7.org/linux/man-pages/man2/close.2.html)
extern "C" fn close_fd(fd: isize) {
    // SAFETY: close takes an integer.
    unsafe { syscall4(libc::SYS_close, fd as usize, 0, 0, 0) };
}
