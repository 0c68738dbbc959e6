//! The parent's side of a spawn: the child's stack, the clone, the fallback
//! ladder when the kernel refuses a flag, and reading back how the child
//! fared before exec.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::child::{
    child_main, ChildResult, Plan, Stage, GROUPS_KEEP, GROUPS_SET, GROUPS_TRY, RAN_MARK,
};
use super::{
    degrade, ChildFd, SpawnError, SpawnRequest, Spawned, DEGRADED, NO_CLONE3, NO_CLONE_PIDFD,
    NO_FILES, NO_PIDFD, NO_VM,
};
use crate::sys::clone3::{clone3_run, flag, CloneArgs, CLONE_INTO_CGROUP};
use crate::sys::fd::{LowSlots, SLOT_PARENT_PIDFD, SLOT_TERMINAL};
use crate::sys::pidfd::{
    kill_and_reap, reap_or_defer, reap_pid_exiting, retry_reap_later, ChildHandle,
    KILLED_REAP_BOUND,
};
use crate::sys::signals;
use crate::sys::stack::Stack;

/// Usable stack for the vfork child: it runs one small function, whose
/// deepest frame is a few hundred bytes.
const STACK_SIZE: usize = 64 * 1024;

/// Creates children. Owns the stack the vfork child runs on; reused for
/// every spawn, since the child is done with it when the clone returns.
#[derive(Debug)]
pub(crate) struct Spawner {
    stack: Stack,
    parent_pid: i32,
    /// A pidfd of this process (and the pid it was opened for), once a
    /// child in a new PID namespace needed one.
    self_pidfd: Option<(i32, OwnedFd)>,
    /// Low fd numbers for what the child keeps across its fd-table unshare.
    slots: LowSlots,
}

impl Spawner {
    pub(crate) fn new() -> io::Result<Spawner> {
        #[cfg(feature = "testing")]
        super::apply_test_mode();
        Ok(Spawner {
            stack: Stack::new(STACK_SIZE)?,
            parent_pid: std::process::id() as i32,
            self_pidfd: None,
            slots: LowSlots::new(),
        })
    }

    /// A pidfd of this process at the lowest free number from 3 (a
    /// duplicate of one opened once), for a child to check on its parent.
    /// [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
    fn parent_pidfd_for_child(&mut self) -> io::Result<OwnedFd> {
        let pid = std::process::id() as i32;
        if self.self_pidfd.as_ref().is_none_or(|(p, _)| *p != pid) {
            let fd = rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(pid).expect("our pid is positive"),
                rustix::process::PidfdFlags::empty(),
            )?;
            self.self_pidfd = Some((pid, fd));
        }
        let (_, fd) = self.self_pidfd.as_ref().expect("just set");
        crate::sys::fd::duplicate(fd)
    }

    /// Spawns per `req`, trying the fastest path the kernel allows.
    pub(crate) fn spawn(&mut self, req: &SpawnRequest) -> Result<Spawned, SpawnError> {
        // The pid changes if this process forked since the Spawner was made.
        self.parent_pid = std::process::id() as i32;
        retry_reap_later();
        let candidates = pointer_array(&req.candidates);
        let argv = pointer_array(&req.argv);
        let envp = pointer_array(&req.envp);
        let mut shell_argv = shell_argv(&argv);
        loop {
            let degraded = DEGRADED.load(Ordering::Relaxed);
            match self.try_spawn(req, degraded, &candidates, &argv, &envp, &mut shell_argv) {
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
        shell_argv: &mut [*const c_char],
    ) -> Attempt {
        let vm = degraded & NO_VM == 0;
        let files = vm && degraded & NO_FILES == 0;
        let mut clone_pidfd = degraded & (NO_CLONE_PIDFD | NO_PIDFD) == 0;
        let into_cgroup = req.cgroup.filter(|_| degraded & NO_CLONE3 == 0);

        let err_pipe = if vm {
            None
        } else {
            // The write end must not be 0, 1 or 2 (possible when the
            // supervisor runs with those closed): the child's stdio setup
            // would overwrite it and an exec error would read as success.
            match crate::sys::fd::pipe().and_then(|(r, w)| Ok((r, crate::sys::fd::above_stdio(w)?)))
            {
                Ok(p) => Some(p),
                Err(source) => {
                    return Attempt::Done(Err(SpawnError::Os {
                        op: "creating the exec-status pipe",
                        source,
                    }))
                }
            }
        };

        // A child in a new PID namespace checks on its parent through a
        // pidfd, which must survive the fd-table unshare: a duplicate for
        // this spawn, closed when it returns.
        let parent_pidfd = if req.new_pid_namespace {
            match self.parent_pidfd_for_child() {
                Ok(fd) => Some(fd),
                Err(source) => {
                    return Attempt::Done(Err(SpawnError::Os {
                        op: "opening a pidfd of this process (pidfd_open)",
                        source,
                    }))
                }
            }
        } else {
            None
        };
        // What the child keeps across the unshare goes onto the spawner's
        // low slots (back to placeholders when `placed` drops), so that the
        // table copy stays small however many fds the program holds.
        let placed = self.slots.place();
        let mut stdio = [-1; 3];
        let mut keep_below = 3;
        for (i, (slot, fd)) in stdio.iter_mut().zip(req.stdio).enumerate() {
            if let ChildFd::From(raw) = fd {
                debug_assert!(raw >= 3, "stdio sources must be moved above 2");
                *slot = placed.put(i, raw);
                keep_below = keep_below.max(*slot + 1);
            }
        }
        let terminal = req.terminal.map(|raw| {
            debug_assert!(raw >= 3, "the terminal fd must be moved above 2");
            placed.put(SLOT_TERMINAL, raw)
        });
        let parent_pidfd_raw = parent_pidfd
            .as_ref()
            .map(|fd| placed.put(SLOT_PARENT_PIDFD, fd.as_raw_fd()));
        for raw in terminal.iter().chain(&parent_pidfd_raw) {
            keep_below = keep_below.max(raw + 1);
        }
        #[cfg(feature = "testing")]
        let delay = req.setup_delay.unwrap_or_default();
        let mut result = ChildResult::default();
        let mut ran: u32 = 0;
        let plan = Plan {
            candidates: candidates.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            cwd: req.cwd.as_deref().map_or(std::ptr::null(), CStr::as_ptr),
            stdio,
            keep_below,
            share_files: files,
            pgid: req.pgid.unwrap_or(-1),
            terminal: terminal.unwrap_or(-1),
            setsid: req.setsid,
            death_signal: req.death_signal.unwrap_or(0),
            parent_pid: self.parent_pid,
            parent_pidfd: parent_pidfd_raw.unwrap_or(-1),
            uid_map: req
                .user_namespace
                .as_ref()
                .map_or(std::ptr::null(), |m| m.uid_map.as_ptr()),
            gid_map: req
                .user_namespace
                .as_ref()
                .map_or(std::ptr::null(), |m| m.gid_map.as_ptr()),
            cgroup_dir: if into_cgroup.is_some() {
                -1
            } else {
                req.cgroup.unwrap_or(-1)
            },
            mask: 0,
            shell_argv: shell_argv.as_mut_ptr(),
            has_nofile: req.nofile.is_some(),
            nofile: req.nofile.map_or([0, 0], |(s, h)| [s, h]),
            rlimits: req.rlimits.as_ptr(),
            rlimit_count: req.rlimits.len(),
            umask: req.umask.map_or(-1, |m| m as c_int),
            groups: req
                .groups
                .as_ref()
                .map_or(std::ptr::null(), |g| g.list.as_ptr()),
            group_count: req.groups.as_ref().map_or(0, |g| g.list.len()),
            groups_mode: match &req.groups {
                None => GROUPS_KEEP,
                Some(g) if g.required => GROUPS_SET,
                Some(_) => GROUPS_TRY,
            },
            has_gid: req.gid.is_some(),
            gid: req.gid.unwrap_or(0),
            has_uid: req.uid.is_some(),
            uid: req.uid.unwrap_or(0),
            #[cfg(feature = "testing")]
            delay: [delay.as_secs() as i64, delay.subsec_nanos() as i64],
            err_pipe: err_pipe.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
            result: &mut result,
            ran: if vm { &mut ran } else { std::ptr::null_mut() },
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
        if req.new_pid_namespace {
            flags |= libc::CLONE_NEWPID;
        }
        if req.user_namespace.is_some() {
            flags |= libc::CLONE_NEWUSER;
        }
        let mut pidfd: c_int = -1;
        // Block everything across the clone, so that no handler of ours runs
        // in the child (which shares our memory); the child sets its own mask
        // before exec.
        let mask_before = signals::block_all();
        let mut plan = plan;
        plan.mask = signals::original_mask().unwrap_or(mask_before);
        let (pid, clone_err) = match into_cgroup {
            Some(cgroup) => {
                let (base, size) = self.stack.usable();
                let args = CloneArgs {
                    flags: flag(flags & !libc::CSIGNAL) | CLONE_INTO_CGROUP,
                    pidfd: if clone_pidfd {
                        &mut pidfd as *mut c_int as u64
                    } else {
                        0
                    },
                    exit_signal: libc::SIGCHLD as u64,
                    stack: base as u64,
                    stack_size: size as u64,
                    cgroup: cgroup as u64,
                    ..CloneArgs::default()
                };
                // SAFETY: as for clone below: `child_main` runs on our
                // private stack (`usable()` ends 16-byte aligned) and only
                // reads `plan`, alive in this frame until clone3 returns;
                // `args.pidfd` points to `pidfd` in this frame and
                // `args.cgroup` is the caller's open directory fd. Every
                // signal is blocked (above).
                let r =
                    unsafe { clone3_run(&args, child_main, &plan as *const Plan as *mut c_void) };
                if r < 0 {
                    (-1, io::Error::from_raw_os_error(-r as i32))
                } else {
                    (r as libc::pid_t, io::Error::from_raw_os_error(0))
                }
            }
            None => {
                // SAFETY: `child_main` runs on our private stack (top of the
                // mapping, 16-byte aligned) and only reads `plan`, which lives in
                // this frame until clone returns; with CLONE_VFORK this thread is
                // suspended until the child execs or exits, and without CLONE_VM the
                // child works on a copy. The pidfd, with CLONE_PIDFD, is written to
                // `pidfd`.
                let pid = unsafe {
                    libc::clone(
                        child_main,
                        self.stack.top(),
                        flags,
                        &plan as *const Plan as *mut c_void,
                        &mut pidfd as *mut c_int,
                    )
                };
                (pid, io::Error::last_os_error())
            }
        };

        signals::set_mask(mask_before);

        if pid < 0 {
            if into_cgroup.is_some()
                && matches!(
                    clone_err.raw_os_error(),
                    Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EPERM)
                )
            {
                // No clone3, no CLONE_INTO_CGROUP, or a filter refusing
                // clone3: the child joins by itself instead.
                return Attempt::Degrade(NO_CLONE3, clone_err);
            }
            if req.user_namespace.is_some()
                && matches!(clone_err.raw_os_error(), Some(libc::EPERM | libc::ENOSPC))
            {
                // Not a missing spawn feature: the namespaces are refused.
                return Attempt::Done(Err(SpawnError::Unsupported {
                    what: "a new PID namespace (no CAP_SYS_ADMIN, and the kernel refused an unprivileged user namespace)",
                    source: clone_err,
                }));
            }
            if req.new_pid_namespace && clone_err.raw_os_error() == Some(libc::EPERM) {
                // Not a missing spawn feature: the namespace is refused.
                return Attempt::Done(Err(SpawnError::Unsupported {
                    what: "a new PID namespace (CLONE_NEWPID needs CAP_SYS_ADMIN)",
                    source: clone_err,
                }));
            }
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
        // returns it in Spawned or reaps it (or, if it cannot die yet,
        // hands it to the "reap later" list).
        #[cfg(feature = "testing")]
        if clone_pidfd && super::take_ignore_clone_pidfd() {
            // Act as a kernel before 5.2, which ignores CLONE_PIDFD: drop
            // the fd the kernel gave and leave -1 in its place.
            // SAFETY: CLONE_PIDFD succeeded: `pidfd` is a new fd of ours.
            drop(unsafe { OwnedFd::from_raw_fd(pidfd) });
            pidfd = -1;
        }
        if clone_pidfd && pidfd < 0 {
            // Linux before 5.2 ignores the unknown CLONE_PIDFD bit: the
            // clone succeeded and `pidfd` is untouched. Take the
            // pidfd_open path, for this child and from now on.
            degrade(
                NO_CLONE_PIDFD,
                &io::Error::other("clone ignored CLONE_PIDFD and gave no pidfd (Linux before 5.2)"),
            );
            clone_pidfd = false;
        }
        let pidfd = if clone_pidfd {
            // SAFETY: CLONE_PIDFD succeeded and the kernel stored a new
            // close-on-exec fd in `pidfd` (checked >= 0 above), owned by
            // nobody else.
            Some(unsafe { OwnedFd::from_raw_fd(pidfd) })
        } else if DEGRADED.load(Ordering::Relaxed) & NO_PIDFD != 0 {
            None
        } else {
            match rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(pid).expect("clone returned a positive pid"),
                rustix::process::PidfdFlags::empty(),
            ) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    let source = io::Error::from(e);
                    // ENOSYS (before 5.3), or EPERM from a seccomp filter
                    // (Docker's and snap's filters answer EPERM): no pidfds
                    // here. The child is kept, known by its pid while
                    // unreaped. Anything else (EMFILE, ENOMEM) is a passing
                    // shortage, not a missing feature.
                    if matches!(source.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
                        degrade(NO_PIDFD, &source);
                        None
                    } else {
                        kill_and_reap(ChildHandle { pidfd: None, pid }, false, KILLED_REAP_BOUND);
                        return Attempt::Done(Err(SpawnError::Os {
                            op: "pidfd_open",
                            source,
                        }));
                    }
                }
            }
        };
        let child = ChildHandle { pidfd, pid };
        #[cfg(feature = "testing")]
        if let Some(hook) = super::take_fail_after_clone() {
            hook(pid);
            kill_and_reap(child, false, KILLED_REAP_BOUND);
            return Attempt::Done(Err(SpawnError::Os {
                op: "spawning (a failure forced by the testing hook)",
                source: io::Error::from_raw_os_error(libc::ECANCELED),
            }));
        }

        let report = if let Some((read_end, write_end)) = err_pipe {
            drop(write_end);
            read_child_result(&read_end)
        } else {
            // SAFETY: the child is done with `result` and `ran` (it exec'd
            // or exited).
            let (r, ran) = unsafe {
                (
                    std::ptr::read_volatile(&result),
                    std::ptr::read_volatile(&ran),
                )
            };
            if ran == 0 {
                Report::NeverRan
            } else if r.stage != 0 {
                Report::Failed(r)
            } else {
                Report::Execd
            }
        };
        let failure = match report {
            Report::Execd => None,
            Report::Failed(r) => Some(r),
            Report::NeverRan => {
                // SIGKILLed before its first instruction: it is exiting.
                reap_or_defer(child, KILLED_REAP_BOUND);
                if into_cgroup.is_some() {
                    // Linux (6.18 at least) compares the kill_seq of the
                    // cgroup the child is born into with that of the
                    // parent's cgroup, and kills the child when they differ:
                    // after any cgroup.kill of our own cgroup, every
                    // CLONE_INTO_CGROUP child dies at birth. Moving in
                    // after the clone has no such check.
                    return Attempt::Degrade(
                        NO_CLONE3,
                        io::Error::other(
                            "the kernel killed the child as it was born into its cgroup",
                        ),
                    );
                }
                return Attempt::Done(Err(SpawnError::Os {
                    op: "clone (the child was killed before it ran)",
                    source: io::Error::from_raw_os_error(libc::ECHILD),
                }));
            }
        };
        match failure {
            None => Attempt::Done(Ok(Spawned { child })),
            Some(r) => {
                // It reported its failure and is exiting.
                reap_or_defer(child, KILLED_REAP_BOUND);
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

/// Whether the kernel lets this process create a child with the namespace
/// `flags` (such as `CLONE_NEWUSER | CLONE_NEWPID`): a child that exits at
/// once is cloned (vfork-class, on a stack of its own) and reaped.
/// [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html)
pub(crate) fn probe_namespaces(flags: c_int) -> io::Result<()> {
    extern "C" fn exit_at_once(_: *mut c_void) -> c_int {
        0
    }
    let stack = Stack::new(16 * 1024)?;
    let mask = signals::block_all();
    // SAFETY: the child runs `exit_at_once` on its own stack, touching
    // nothing, and exits; with CLONE_VFORK this thread waits until it has.
    // Every signal is blocked across the call, so no handler runs in it.
    let pid = unsafe {
        libc::clone(
            exit_at_once,
            stack.top(),
            flags | libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::null_mut(),
        )
    };
    let err = io::Error::last_os_error();
    signals::set_mask(mask);
    if pid < 0 {
        return Err(err);
    }
    // It has exited (vfork): the wait is immediate.
    let _ = reap_pid_exiting(pid);
    Ok(())
}

enum Attempt {
    Done(Result<Spawned, SpawnError>),
    Degrade(u8, io::Error),
}

/// How a child fared before exec.
enum Report {
    Execd,
    Failed(ChildResult),
    /// Killed before its first instruction.
    NeverRan,
}

/// Reads the child's report from the exec-status pipe: [`RAN_MARK`] first,
/// then nothing (EOF at exec) for success, or the 8-byte failure; nothing
/// at all when it never ran.
fn read_child_result(fd: &OwnedFd) -> Report {
    let mut buf = [0u8; 9];
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    match (got, buf[0]) {
        (0, _) => Report::NeverRan,
        (9, RAN_MARK) => Report::Failed(ChildResult {
            stage: u32::from_ne_bytes(buf[1..5].try_into().expect("4 bytes")),
            errno: i32::from_ne_bytes(buf[5..].try_into().expect("4 bytes")),
        }),
        _ => Report::Execd,
    }
}

/// The `argv` for running a script without a shebang through `/bin/sh`
/// (see the child's `run_with_shell`): `/bin/sh`, a null slot for the
/// script's path, then `argv[1..]`, null-terminated. `argv` is the
/// null-terminated array from [`pointer_array`].
fn shell_argv(argv: &[*const c_char]) -> Vec<*const c_char> {
    let mut out = Vec::with_capacity(argv.len() + 1);
    out.push(c"/bin/sh".as_ptr());
    out.push(std::ptr::null());
    out.extend_from_slice(argv.get(1..).unwrap_or_default());
    if out.last().is_some_and(|p| !p.is_null()) {
        out.push(std::ptr::null());
    }
    out
}

/// A null-terminated array of pointers into `strings`.
fn pointer_array(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}
