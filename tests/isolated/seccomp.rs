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
    /// `close_range` fails with this errno (`ENOSYS` before Linux 5.9,
    /// `EPERM` under a seccomp profile that does not list it, as Docker's
    /// default once did); the rest is allowed.
    CloseRange(i32),
}

/// Installs a seccomp filter on this process (all threads) that refuses
/// what `refuse` names; `clone3` fails with `ENOSYS` (unless `refuse` says
/// otherwise) so that libc uses `clone`. Irreversible: only for a test's own process.
pub(crate) fn install_seccomp(refuse: Refuse) {
    let mut rules = Rules {
        refuse: vec![(libc::SYS_clone3, libc::ENOSYS)],
        clone_flags: 0,
    };
    match refuse {
        Refuse::CloneVm => rules.clone_flags = libc::CLONE_VM as u32,
        Refuse::ClonePidfd => rules.clone_flags = libc::CLONE_PIDFD as u32,
        Refuse::AllPidfds(e) => {
            rules.clone_flags = libc::CLONE_PIDFD as u32;
            rules.refuse.push((libc::SYS_pidfd_open, e));
            rules.refuse.push((libc::SYS_pidfd_send_signal, e));
        }
        Refuse::Clone3(e) => rules.refuse[0].1 = e,
        Refuse::CloseRange(e) => rules.refuse.push((libc::SYS_close_range, e)),
    }
    install(&rules).unwrap_or_else(|e| panic!("seccomp: {e}"));
}

/// What a filter does.
pub(crate) struct Rules {
    /// System calls refused, with their errno.
    pub(crate) refuse: Vec<(libc::c_long, i32)>,
    /// `clone` with any of these flags fails with `EINVAL` (0: none).
    pub(crate) clone_flags: u32,
}

/// Installs `rules` on this process (all threads).
/// [seccomp(2)](https://man7.org/linux/man-pages/man2/seccomp.2.html)
pub(crate) fn install(rules: &Rules) -> std::io::Result<()> {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ld = |offset: u32| op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, offset);
    let ret = |k: u32| op(libc::BPF_RET | libc::BPF_K, 0, 0, k);
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | (e as u32 & 0xffff);
    // Equal: the next instruction; else skip `skip`.
    let jeq = |k: u32, skip: u8| op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, skip, k);

    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low half
    // on these little-endian targets).
    let mut program = vec![
        ld(4),
        // Another architecture's calls: allowed.
        op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            1,
            0,
            AUDIT_ARCH,
        ),
        ret(libc::SECCOMP_RET_ALLOW),
        ld(0),
    ];
    for &(nr, e) in &rules.refuse {
        program.push(jeq(nr as u32, 1));
        program.push(ret(errno(e)));
    }
    if rules.clone_flags != 0 {
        // clone: load its flags; refuse if any of ours is set.
        program.push(jeq(libc::SYS_clone as u32, 3));
        program.push(ld(16));
        program.push(op(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            0,
            1,
            rules.clone_flags,
        ));
        program.push(ret(errno(libc::EINVAL)));
    }
    program.push(ret(libc::SECCOMP_RET_ALLOW));

    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    let seccomp = || {
        // SAFETY: seccomp(2) reads `prog`, which points to `program`, both
        // alive for the call.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &prog as *const libc::sock_fprog,
            )
        }
    };
    if seccomp() == 0 {
        return Ok(());
    }
    let first = std::io::Error::last_os_error();
    if first.raw_os_error() != Some(libc::EACCES) {
        return Err(first);
    }
    // Without CAP_SYS_ADMIN a filter needs no_new_privs.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if seccomp() == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
