//! `clone3(2)` with a child that runs a function on a stack of its own: an
//! inline-assembly trampoline.
//!
//! `clone3` is the only way to ask for `CLONE_INTO_CGROUP` (Linux 5.7: the
//! child is born inside the cgroup whose directory fd is
//! [`CloneArgs::cgroup`]), and it combines with `CLONE_NEWPID`,
//! `CLONE_PIDFD` and the vfork-class flags like `clone(2)` does. glibc has no
//! public wrapper for it that runs a function on a new stack, and a child
//! that shares the parent's memory (`CLONE_VM`) cannot simply return from the
//! system call into Rust code: it would run on the parent's frames, or on a
//! fresh stack that has none. So [`clone3_run`] issues the system call itself
//! and, in the child, calls the entry function and then `exit_group(2)`
//! without ever leaving the assembly block.
//!
//! Reference: <https://man7.org/linux/man-pages/man2/clone.2.html> (the
//! `clone3` section: `struct clone_args`, `CLONE_INTO_CGROUP`, and the
//! errors), <https://man7.org/linux/man-pages/man2/syscall.2.html> (the
//! per-architecture system call conventions).

use std::ffi::{c_int, c_void};

/// The kernel's `struct clone_args` (`include/uapi/linux/sched.h`), every
/// field a `u64`. Pointers (`pidfd`, `child_tid`, `parent_tid`, `stack`,
/// `set_tid`) are user addresses cast to `u64`; unused fields stay 0.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CloneArgs {
    /// `CLONE_*` flags, without the exit signal (the kernel refuses bits of
    /// `CSIGNAL` here with `EINVAL`). Convert libc's `c_int` constants with
    /// [`flag`], not `as u64`, which would sign-extend `CLONE_IO`.
    pub flags: u64,
    /// With `CLONE_PIDFD`: where the kernel stores the new pidfd (a
    /// `*mut c_int`).
    pub pidfd: u64,
    /// With `CLONE_CHILD_SETTID` / `CLONE_CHILD_CLEARTID`: a `*mut pid_t` in
    /// the child's memory.
    pub child_tid: u64,
    /// With `CLONE_PARENT_SETTID`: a `*mut pid_t` in the parent's memory.
    pub parent_tid: u64,
    /// The signal the parent gets when the child ends (`SIGCHLD` for a
    /// child that `waitid(2)` without `__WCLONE` can reap).
    pub exit_signal: u64,
    /// The lowest address of the child's stack (0: the child runs on a copy
    /// of, or with `CLONE_VM` on, the parent's stack pointer).
    pub stack: u64,
    /// The size of the child's stack; the child starts with its stack
    /// pointer at `stack + stack_size`.
    pub stack_size: u64,
    /// With `CLONE_SETTLS`: the child's thread pointer.
    pub tls: u64,
    /// An array of pids to ask for, one per pid namespace level (Linux 5.5).
    pub set_tid: u64,
    /// The length of `set_tid`.
    pub set_tid_size: u64,
    /// With [`CLONE_INTO_CGROUP`]: an fd open on a cgroup v2 directory
    /// (Linux 5.7).
    pub cgroup: u64,
}

/// The size with `cgroup` (Linux 5.7): the size of [`CloneArgs`], which
/// [`clone3_run`] always passes. Older kernels accept it as long as the
/// fields they do not know are zero, and answer `E2BIG` otherwise.
pub(crate) const CLONE_ARGS_SIZE_VER2: u64 = 88;

const _: () = assert!(std::mem::size_of::<CloneArgs>() as u64 == CLONE_ARGS_SIZE_VER2);

/// `CLONE_INTO_CGROUP` (Linux 5.7, `clone3` only): the child starts in the
/// cgroup given by [`CloneArgs::cgroup`] instead of its parent's. Not in the
/// libc crate.
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A libc `CLONE_*` constant (a `c_int`) as a [`CloneArgs::flags`] bit,
/// without sign extension.
pub(crate) const fn flag(f: c_int) -> u64 {
    f as u32 as u64
}

/// Issues `clone3(args, CLONE_ARGS_SIZE_VER2)` by a raw system call. In the
/// parent, returns the kernel's result as is: the child's pid, or `-errno`
/// (`ENOSYS` before Linux 5.3 and `EPERM` under a seccomp filter that
/// refuses `clone3`, as Docker's default profile does; `E2BIG` when the
/// kernel does not know a field that is set; `EINVAL` for a combination it
/// refuses), so that the caller can fall back to `clone(2)`. No `errno` is
/// written.
///
/// On failure the kernel may still have written a number to
/// `*args.pidfd`: with `CLONE_PIDFD` it stores the fd it reserved before
/// later steps (such as joining the cgroup) fail, and then releases that fd
/// again (`copy_process()` in
/// [kernel/fork.c](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/kernel/fork.c)).
/// The caller must only take ownership of the pidfd when the result is a
/// pid, and never close the number otherwise.
///
/// In the child (result 0) the kernel has set the stack pointer to
/// `args.stack + args.stack_size`; the trampoline rounds it down to 16
/// bytes, clears the frame pointer (and on aarch64 the link register) so
/// that no unwinder or debugger walks into the parent's frames, calls
/// `entry(arg)`, and passes its result to `exit_group(2)`. The child never
/// leaves the assembly block, so it never returns into this function or
/// its callers.
///
/// # Register conventions
///
/// The child starts with a copy of the parent's registers at the system
/// call instruction, except for the result register (0 in the child) and
/// the stack pointer: `copy_thread()` in
/// [arch/x86/kernel/process.c](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/arch/x86/kernel/process.c)
/// and
/// [arch/arm64/kernel/process.c](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/arch/arm64/kernel/process.c).
/// The trampoline therefore loads `entry` and `arg` into registers the
/// system call does not touch, and the child finds them there:
///
/// - x86_64: number in `rax`, arguments in `rdi` and `rsi`; the kernel
///   clobbers only `rax` (result), `rcx` and `r11` (the System V x86-64
///   psABI, appendix "Linux Kernel Conventions",
///   <https://gitlab.com/x86-psABIs/x86-64-ABI>). `entry` rides in `r12`,
///   `arg` in `r13`.
/// - aarch64: number in `x8`, arguments in `x0` and `x1`; the kernel
///   returns in `x0` and restores every other general register from the
///   saved `pt_regs`. `entry` rides in `x2`, `arg` in `x3`.
///
/// The child's path clobbers whatever it likes: it never hands control
/// back to compiled code, so the register contract of the `asm!` block
/// binds the parent's path only.
///
/// # Safety
///
/// - `args` must be valid for `clone3`: every pointer in it points to
///   memory of the right type that lives until the call returns (and, for
///   `child_tid`, as long as the child uses it); `cgroup`, with
///   [`CLONE_INTO_CGROUP`], is an fd the caller keeps open across the call.
/// - With `CLONE_VM`, `args.stack` and `args.stack_size` must describe a
///   mapping the child may use as its stack, large enough for `entry`, with
///   `stack + stack_size` 16-byte aligned, that nothing else uses while the
///   child runs on it. Without `CLONE_VFORK` the parent returns at once and
///   must keep the stack, and everything `arg` points to, alive until the
///   child has exited or exec'd.
/// - `entry` runs in the child. With `CLONE_VM` it shares the parent's
///   memory, its thread-local storage (unless `CLONE_SETTLS`) and its
///   `errno`, while the parent thread may be suspended (`CLONE_VFORK`)
///   holding locks: `entry` must use raw system calls only (no libc call,
///   no allocation, no lock, no thread-local), must not unwind, and must end
///   by returning, by `exit_group`, or by a successful `execve`.
/// - Every signal should be blocked in the calling thread across the call,
///   so that no handler of the parent runs in a `CLONE_VM` child before
///   `entry` has reset the dispositions it needs.
#[inline(never)]
pub(crate) unsafe fn clone3_run(
    args: &CloneArgs,
    entry: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> isize {
    let ret: isize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the x86_64 system call convention above; the kernel reads
    // `args` (88 bytes, alive for the call) and writes where its pointers
    // point, which the caller vouches for. The parent leaves the block at
    // label 2 with only rax, rcx, r11 and the flags changed, as declared;
    // memory may have changed (the kernel's writes, a CLONE_VM child's), so
    // the block is not `nomem`. The child never reaches label 2: it calls
    // `entry` on its own stack and ends in exit_group, whose `ud2` fallback
    // is unreachable.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            // Child: new stack, no frame chain into the parent.
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r13",
            "call r12",
            // exit_group(entry's int result).
            "mov edi, eax",
            "mov eax, {exit_group}",
            "syscall",
            "ud2",
            "2:",
            exit_group = const libc::SYS_exit_group,
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") args as *const CloneArgs,
            in("rsi") CLONE_ARGS_SIZE_VER2,
            in("r12") entry as usize,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the aarch64 system call convention above; the kernel reads
    // `args` (88 bytes, alive for the call) and writes where its pointers
    // point, which the caller vouches for. The parent leaves the block at
    // label 2 with only x0 changed, as declared. The child never reaches
    // label 2: it calls `entry` on its own stack and ends in exit_group,
    // whose `brk` fallback is unreachable.
    unsafe {
        core::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            // Child: new stack, no frame chain or return address into the
            // parent. SP cannot be the source of AND, hence x9.
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x9, sp",
            "and x9, x9, #0xfffffffffffffff0",
            "mov sp, x9",
            "mov x0, x3",
            "blr x2",
            // exit_group(entry's int result): the kernel reads w0 only.
            "mov x8, #{exit_group}",
            "svc 0",
            "brk #0x1",
            "2:",
            exit_group = const libc::SYS_exit_group,
            in("x8") libc::SYS_clone3,
            inlateout("x0") args as *const CloneArgs as isize => ret,
            in("x1") CLONE_ARGS_SIZE_VER2,
            in("x2") entry as usize,
            in("x3") arg,
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::raw::syscall4;
    use crate::sys::signals;
    use std::ffi::CStr;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// How long any child of these tests may take to be reaped.
    const WAIT: Duration = Duration::from_secs(10);

    const STACK_SIZE: usize = 64 * 1024;

    /// A private stack for a `CLONE_VM` child (the spawn path's own,
    /// guard page included), with the `CloneArgs` that use it.
    struct Stack(crate::sys::stack::Stack);

    impl Stack {
        fn new() -> Stack {
            Stack(crate::sys::stack::Stack::new(STACK_SIZE).expect("mapping a child stack"))
        }

        /// `CloneArgs` with this stack, `flags` and `SIGCHLD`.
        fn args(&self, flags: u64) -> CloneArgs {
            let (base, size) = self.0.usable();
            CloneArgs {
                flags,
                exit_signal: libc::SIGCHLD as u64,
                stack: base as u64,
                stack_size: size as u64,
                ..CloneArgs::default()
            }
        }

        fn contains(&self, addr: usize) -> bool {
            let (base, size) = self.0.usable();
            (base..base + size).contains(&addr)
        }
    }

    /// `clone3_run` with every signal blocked across it, as the spawn path
    /// does.
    ///
    /// # Safety
    ///
    /// As for [`clone3_run`].
    unsafe fn clone3_blocked(
        args: &CloneArgs,
        entry: extern "C" fn(*mut c_void) -> c_int,
        arg: *mut c_void,
    ) -> isize {
        let before = signals::block_all();
        // SAFETY: forwarded to the caller.
        let r = unsafe { clone3_run(args, entry, arg) };
        signals::set_mask(before);
        r
    }

    /// A child known by its pidfd; killed and reaped on drop unless the
    /// test reaped it.
    struct Child {
        pidfd: OwnedFd,
        pid: i32,
        reaped: bool,
    }

    impl Child {
        /// Takes ownership of what a successful `clone3` with `CLONE_PIDFD`
        /// returned.
        fn new(ret: isize, pidfd: c_int) -> Child {
            assert!(
                ret > 0,
                "clone3 failed: {}",
                io::Error::from_raw_os_error(-ret as i32)
            );
            if pidfd < 0 {
                // Not expected: take a pidfd by pid (race-free, the child is
                // ours and unreaped) so that the guard still reaps it.
                // SAFETY: pidfd_open takes a pid and flags.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, ret, 0) };
                assert!(fd >= 0, "pidfd_open({ret}): {}", io::Error::last_os_error());
                drop(Child::new(ret, fd as c_int));
                panic!("clone3 returned pid {ret} but stored no pidfd ({pidfd})");
            }
            Child {
                // SAFETY: CLONE_PIDFD succeeded, so the kernel stored a new
                // fd in `pidfd` that nothing else owns.
                pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
                pid: ret as i32,
                reaped: false,
            }
        }

        /// Waits (bounded) for the child to end and reaps it: `(si_code,
        /// si_status)` from `waitid(P_PIDFD)`.
        fn wait(&mut self, within: Duration) -> Result<(i32, i32), String> {
            let deadline = Instant::now() + within;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut pfd = libc::pollfd {
                    fd: self.pidfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: poll reads and writes one pollfd, a local.
                let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as c_int) };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(format!("poll on the pidfd of {}: {e}", self.pid));
                }
                if n == 0 {
                    return Err(format!("child {} did not end within {within:?}", self.pid));
                }
                let mut info: libc::siginfo_t = zeroed_siginfo();
                // SAFETY: waitid writes one siginfo_t into a local.
                let r = unsafe {
                    libc::waitid(
                        libc::P_PIDFD,
                        self.pidfd.as_raw_fd() as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOHANG,
                    )
                };
                if r < 0 {
                    return Err(format!(
                        "waitid(P_PIDFD) on child {}: {}",
                        self.pid,
                        io::Error::last_os_error()
                    ));
                }
                // SAFETY: waitid filled `info` for a child event (si_pid is
                // 0 when none was ready, which WNOHANG allows).
                let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
                if pid == 0 {
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "child {}'s pidfd is readable but waitid finds no exit within {within:?}",
                            self.pid
                        ));
                    }
                    continue;
                }
                assert_eq!(pid, self.pid, "waitid(P_PIDFD) reaped another pid");
                self.reaped = true;
                return Ok((info.si_code, status));
            }
        }
    }

    fn zeroed_siginfo() -> libc::siginfo_t {
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        unsafe { std::mem::zeroed() }
    }

    impl Drop for Child {
        fn drop(&mut self) {
            if self.reaped {
                return;
            }
            // SAFETY: pidfd_send_signal with a pidfd we own, SIGKILL, a null
            // info pointer and no flags.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    self.pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            }
            if let Err(e) = self.wait(WAIT) {
                eprintln!("cleanup: {e}");
            }
        }
    }

    /// The pids of the calling thread's children, from
    /// `/proc/self/task/<tid>/children` (per thread, so other tests running
    /// in parallel do not show up).
    fn my_children() -> String {
        // SAFETY: gettid takes nothing and cannot fail.
        let tid = unsafe { libc::gettid() };
        let path = format!("/proc/self/task/{tid}/children");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    /// Writes `v` into the caller's memory from the child.
    ///
    /// # Safety
    ///
    /// `p` must be valid for a write and not otherwise used meanwhile.
    #[inline(always)]
    unsafe fn put<T>(p: *mut T, v: T) {
        // SAFETY: as the caller vouches.
        unsafe { std::ptr::write_volatile(p, v) }
    }

    #[derive(Default)]
    #[repr(C)]
    struct Ids {
        ran: u32,
        pid: isize,
        ppid: isize,
        stack_addr: usize,
    }

    /// Child: records getpid(), getppid() and the address of a local (to
    /// show which stack it runs on), by raw syscalls only; exits 42.
    extern "C" fn record_ids(arg: *mut c_void) -> c_int {
        let ids = arg as *mut Ids;
        let local = 0u8;
        // SAFETY: the parent passes its Ids and is suspended (vfork) until
        // this child exits; getpid and getppid take nothing.
        unsafe {
            put(&raw mut (*ids).ran, 1);
            put(&raw mut (*ids).pid, syscall4(libc::SYS_getpid, 0, 0, 0, 0));
            put(
                &raw mut (*ids).ppid,
                syscall4(libc::SYS_getppid, 0, 0, 0, 0),
            );
            put(
                &raw mut (*ids).stack_addr,
                std::hint::black_box(&local) as *const u8 as usize,
            );
        }
        42
    }

    #[test]
    fn vfork_child_runs_entry_on_its_stack_and_exits_with_its_result() {
        if crate::sys::sandbox_skip("vfork_child_runs_entry_on_its_stack_and_exits_with_its_result")
        {
            return;
        }
        let stack = Stack::new();
        let mut ids = Ids::default();
        let mut pidfd: c_int = -1;
        let mut args = stack.args(flag(libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD));
        args.pidfd = &raw mut pidfd as u64;
        // SAFETY: the stack is ours and 16-byte aligned at the top; `ids`
        // and `pidfd` live in this frame, which is suspended until the child
        // exits (CLONE_VFORK); record_ids uses raw syscalls only.
        let ret = unsafe { clone3_blocked(&args, record_ids, (&raw mut ids).cast()) };
        let mut child = Child::new(ret, pidfd);
        // SAFETY: the child is done with `ids` (it exited before the clone
        // returned).
        let ids = unsafe { std::ptr::read_volatile(&ids) };

        assert_eq!(ids.ran, 1, "the child's entry did not run");
        assert_eq!(
            ids.pid, ret,
            "the child's getpid() is not the pid clone3 returned"
        );
        assert_eq!(
            ids.ppid,
            std::process::id() as isize,
            "the child's parent is not this process"
        );
        assert!(
            stack.contains(ids.stack_addr),
            "the child's local at {:#x} is not on the stack it was given",
            ids.stack_addr
        );
        let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{pidfd}"))
            .expect("reading the pidfd's fdinfo");
        assert!(
            fdinfo.lines().any(|l| l == format!("Pid:\t{ret}")),
            "fd {pidfd} is not a pidfd for {ret}: {fdinfo}"
        );
        assert_eq!(
            child.wait(WAIT),
            Ok((libc::CLD_EXITED, 42)),
            "how the child ended (si_code, si_status)"
        );
    }

    /// This process's cgroup v2 path, from the `0::` line of a
    /// /proc/<pid>/cgroup text.
    fn v2_path(text: &str) -> Option<&str> {
        text.lines().find_map(|l| l.strip_prefix("0::"))
    }

    #[repr(C)]
    struct CgroupRead {
        /// Bytes read, or -errno.
        len: isize,
        buf: [u8; 4096],
    }

    /// Child: reads its own /proc/self/cgroup into the shared buffer by raw
    /// syscalls only.
    extern "C" fn read_own_cgroup(arg: *mut c_void) -> c_int {
        const PATH: &CStr = c"/proc/self/cgroup";
        let out = arg as *mut CgroupRead;
        // SAFETY: the parent passes its CgroupRead and is suspended (vfork)
        // until this child exits; openat reads a static C string, read
        // writes into the buffer within its length.
        unsafe {
            let fd = syscall4(
                libc::SYS_openat,
                libc::AT_FDCWD as usize,
                PATH.as_ptr() as usize,
                (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
                0,
            );
            if fd < 0 {
                put(&raw mut (*out).len, fd);
                return 1;
            }
            let buf = (&raw mut (*out).buf).cast::<u8>();
            let cap = std::mem::size_of::<[u8; 4096]>();
            let mut len = 0usize;
            while len < cap {
                let n = syscall4(
                    libc::SYS_read,
                    fd as usize,
                    buf.add(len) as usize,
                    cap - len,
                    0,
                );
                if n < 0 {
                    put(&raw mut (*out).len, n);
                    return 1;
                }
                if n == 0 {
                    break;
                }
                len += n as usize;
            }
            syscall4(libc::SYS_close, fd as usize, 0, 0, 0);
            put(&raw mut (*out).len, len as isize);
        }
        0
    }

    #[test]
    fn into_cgroup_starts_the_child_in_the_leaf() {
        if crate::sys::sandbox_skip("into_cgroup_starts_the_child_in_the_leaf") {
            return;
        }
        let Ok(cgroup2) = crate::sys::cgroup::locate() else {
            eprintln!("SKIPPED into_cgroup_starts_the_child_in_the_leaf: no cgroup2 mount");
            return;
        };
        let leaf = crate::sys::cgroup::test_support::TestCgroup::new("clone3");
        let want = Path::new("/").join(
            leaf.dir
                .path()
                .strip_prefix(cgroup2.mount())
                .expect("the leaf is under the cgroup2 mount"),
        );

        let stack = Stack::new();
        let mut out = CgroupRead {
            len: -1,
            buf: [0; 4096],
        };
        let mut pidfd: c_int = -1;
        let mut args = stack
            .args(flag(libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) | CLONE_INTO_CGROUP);
        args.pidfd = &raw mut pidfd as u64;
        args.cgroup = leaf.dir.fd().as_raw_fd() as u64;
        // SAFETY: as in the first test; the cgroup fd stays open across the
        // call.
        let ret = unsafe { clone3_blocked(&args, read_own_cgroup, (&raw mut out).cast()) };
        let mut child = Child::new(ret, pidfd);
        assert_eq!(
            child.wait(WAIT),
            Ok((libc::CLD_EXITED, 0)),
            "how the child ended (si_code, si_status)"
        );
        // SAFETY: the child is done with `out`.
        let out = unsafe { std::ptr::read_volatile(&out) };
        assert!(
            out.len > 0,
            "the child could not read /proc/self/cgroup: {}",
            io::Error::from_raw_os_error(-out.len as i32)
        );
        let text = String::from_utf8_lossy(&out.buf[..out.len as usize]);
        assert_eq!(
            v2_path(&text).map(Path::new),
            Some(want.as_path()),
            "the child's /proc/self/cgroup: {text}"
        );
    }

    #[test]
    fn new_pid_namespace_child_is_pid_1() {
        if crate::sys::sandbox_skip("new_pid_namespace_child_is_pid_1") {
            return;
        }
        let stack = Stack::new();
        let mut ids = Ids::default();
        let mut pidfd: c_int = -1;
        let mut args = stack.args(flag(
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::CLONE_NEWPID,
        ));
        args.pidfd = &raw mut pidfd as u64;
        // SAFETY: as in the first test.
        let ret = unsafe { clone3_blocked(&args, record_ids, (&raw mut ids).cast()) };
        // SAFETY: geteuid takes nothing and cannot fail.
        if ret == -(libc::EPERM as isize) && unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED new_pid_namespace_child_is_pid_1: CLONE_NEWPID needs root");
            return;
        }
        let mut child = Child::new(ret, pidfd);
        assert_eq!(
            child.wait(WAIT),
            Ok((libc::CLD_EXITED, 42)),
            "how the child ended (si_code, si_status)"
        );
        // SAFETY: the child is done with `ids`.
        let ids = unsafe { std::ptr::read_volatile(&ids) };
        assert_eq!(ids.ran, 1, "the child's entry did not run");
        assert_eq!(
            (ids.pid, ids.ppid),
            (1, 0),
            "(getpid, getppid) in the new pid namespace"
        );
    }

    #[test]
    fn refused_clone_returns_errno_and_makes_no_child() {
        if crate::sys::sandbox_skip("refused_clone_returns_errno_and_makes_no_child") {
            return;
        }
        let stack = Stack::new();
        let before = my_children();
        // (cgroup value, expected errno): an fd number that is not open, and
        // one above INT_MAX, which clone3 refuses before looking.
        let cases = [
            (i32::MAX as u64, libc::EBADF),
            (i32::MAX as u64 + 1, libc::EINVAL),
        ];
        for (cgroup, errno) in cases {
            let mut ids = Ids::default();
            let mut pidfd: c_int = -1;
            let mut args = stack.args(
                flag(libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) | CLONE_INTO_CGROUP,
            );
            args.pidfd = &raw mut pidfd as u64;
            args.cgroup = cgroup;
            // SAFETY: as in the first test.
            let ret = unsafe { clone3_blocked(&args, record_ids, (&raw mut ids).cast()) };
            if ret > 0 {
                // Reap it before failing; the pidfd, if any, closes with it.
                drop(Child::new(ret, pidfd));
                panic!("clone3 with cgroup fd {cgroup} made child {ret}");
            }
            assert_eq!(
                ret,
                -(errno as isize),
                "clone3 with cgroup fd {cgroup}: {}",
                io::Error::from_raw_os_error(-ret as i32)
            );
            // `pidfd` is not checked: the kernel stores the number it
            // reserved before the cgroup step fails, then releases it.
            assert_eq!(ids.ran, 0, "the entry ran although clone3 failed");
        }
        assert_eq!(my_children(), before, "children of this thread changed");
    }
}
