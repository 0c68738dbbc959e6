//! A seccomp filter that makes the kernel refuse spawn features, so that
//! the fallback paths run on a kernel that has them.

/// Which kernel features a test's seccomp filter refuses.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refuse {
    /// `clone` with `CLONE_VM` fails with `EINVAL` (as vfork does as PID 1
    /// in some setups).
    CloneVm,
    /// `clone` with `CLONE_PIDFD` fails with `EINVAL` (kernels before 5.2).
    ClonePidfd,
    /// `CLONE_PIDFD` (`EINVAL`), `pidfd_open` and `pidfd_send_signal` (this
    /// errno: `ENOSYS` on old kernels, `EPERM` under some confinement) fail.
    AllPidfds(i32),
    /// `clone3` fails with this errno (`ENOSYS` before Linux 5.3, `EPERM`
    /// under Docker's default profile before 20.10); the rest is allowed.
    Clone3(i32),
}

/// Installs a seccomp filter on this process (all threads) that refuses
/// what `refuse` names; `clone3` fails with `ENOSYS` (unless `refuse` says
/// otherwise) so that libc uses `clone`. Irreversible: only for a test's own process.
pub(crate) fn install_seccomp(refuse: Refuse) {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | (e as u32 & 0xffff);
    let enosys = errno(libc::ENOSYS);
    let allow = libc::SECCOMP_RET_ALLOW;
    // A JSET mask of 0 never matches: every clone is allowed.
    let (clone_flags, pidfd_open, clone3) = match refuse {
        Refuse::CloneVm => (libc::CLONE_VM as u32, allow, enosys),
        Refuse::ClonePidfd => (libc::CLONE_PIDFD as u32, allow, enosys),
        Refuse::AllPidfds(e) => (libc::CLONE_PIDFD as u32, errno(e), enosys),
        Refuse::Clone3(e) => (0, allow, errno(e)),
    };
    let pidfd_signal = match refuse {
        Refuse::AllPidfds(e) => errno(e),
        _ => allow,
    };
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ld = |offset: u32| op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, offset);
    let jeq = |k: u32, jf: u8| op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, jf, k);
    let ret = |k: u32| op(libc::BPF_RET | libc::BPF_K, 0, 0, k);
    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low half,
    // on these little-endian targets). Jumps are relative: `jf` skips.
    let program = [
        ld(4),
        jeq(AUDIT_ARCH, 11), // another arch: allow (13)
        ld(0),
        jeq(libc::SYS_pidfd_open as u32, 1),
        ret(pidfd_open),
        jeq(libc::SYS_clone3 as u32, 1),
        ret(clone3),
        jeq(libc::SYS_pidfd_send_signal as u32, 1),
        ret(pidfd_signal),
        jeq(libc::SYS_clone as u32, 3), // not clone: allow (13)
        ld(16),
        op(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            0,
            1,
            clone_flags,
        ),
        ret(errno(libc::EINVAL)),
        ret(libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with integer arguments; seccomp reads `prog`, which
    // points to `program`, alive for the call.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let r = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        );
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}
