//! `reaper_isolated --sandbox PROFILE -- PROGRAM ARGS...`: runs PROGRAM
//! under a seccomp filter that refuses the system calls a locked-down
//! container refuses, so that `.ci/run` can run the whole test suite
//! (`cargo test`, every test binary and every process they start inherit
//! the filter) on the paths pidreap takes there, on a kernel that has
//! everything.
//!
//! Profiles:
//!
//! - `docker`: every system call added since Linux 5.1 that pidreap uses
//!   answers `EPERM`, as Docker's default profile did for calls it did not
//!   list (`pidfd_open`, `pidfd_send_signal`, `pidfd_getfd`, `close_range`),
//!   except `clone3`, which answers `ENOSYS` as in Docker since 20.10.10:
//!   glibc's threads fall back to `clone` only on `ENOSYS`, so the test
//!   harness could not start a thread under `EPERM`. (`clone3` refused with
//!   `EPERM` is tested in this binary's single-threaded tests.)
//!   [seccomp(2)](https://man7.org/linux/man-pages/man2/seccomp.2.html)
//! - `no-pidfd`: `docker`, and `clone` with `CLONE_PIDFD` fails with
//!   `EINVAL` and `pidfd_open` with `ENOSYS`: no pidfd at all, as on a
//!   kernel before 5.2.
//!
//! The filter applies to the program and all it starts; it is not
//! reversible, so this process execs the program at once.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

/// `reaper_isolated --sandbox PROFILE -- PROGRAM ARGS...`, if the arguments
/// ask for it: installs the filter and execs PROGRAM (returning only on
/// failure).
pub(crate) fn exec_if_asked() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().map(|a| a.as_bytes()) != Some(b"--sandbox") {
        return None;
    }
    let usage = "usage: reaper_isolated --sandbox docker|no-pidfd -- PROGRAM [ARGS...]";
    let (Some(profile), Some(dashes)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        return Some(ExitCode::from(2));
    };
    if dashes.as_bytes() != b"--" || args.len() < 4 {
        eprintln!("{usage}");
        return Some(ExitCode::from(2));
    }
    let rules = match profile.as_bytes() {
        b"docker" => docker(),
        b"no-pidfd" => no_pidfd(),
        other => {
            eprintln!(
                "--sandbox {:?}: expected docker or no-pidfd",
                String::from_utf8_lossy(other)
            );
            return Some(ExitCode::from(2));
        }
    };
    if let Err(e) = install(&rules) {
        eprintln!("installing the seccomp filter failed: {e}");
        return Some(ExitCode::from(1));
    }
    let argv: Vec<CString> = args[3..]
        .iter()
        .map(|a| CString::new(a.as_bytes()).expect("no NUL in arguments"))
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `ptrs` is a NULL-terminated array of pointers to NUL-terminated
    // strings in `argv`, both alive for the call; execvp returns only on
    // failure.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    eprintln!(
        "exec {:?} failed: {}",
        args[3],
        std::io::Error::last_os_error()
    );
    Some(ExitCode::from(127))
}

/// What the filter does.
struct Rules {
    /// System calls refused, with their errno.
    refuse: Vec<(libc::c_long, i32)>,
    /// `clone` with any of these flags fails with `EINVAL` (0: none).
    clone_flags: u32,
}

fn docker() -> Rules {
    Rules {
        refuse: vec![
            (libc::SYS_clone3, libc::ENOSYS),
            (libc::SYS_pidfd_open, libc::EPERM),
            (libc::SYS_pidfd_send_signal, libc::EPERM),
            (libc::SYS_pidfd_getfd, libc::EPERM),
            (libc::SYS_close_range, libc::EPERM),
        ],
        clone_flags: 0,
    }
}

fn no_pidfd() -> Rules {
    let mut rules = docker();
    for (nr, errno) in &mut rules.refuse {
        if *nr == libc::SYS_pidfd_open {
            *errno = libc::ENOSYS;
        }
    }
    rules.clone_flags = libc::CLONE_PIDFD as u32;
    rules
}

/// Installs `rules` on this process (all threads).
fn install(rules: &Rules) -> std::io::Result<()> {
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
    let jeq_next_else_skip1 = |k: u32| op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, k);

    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low half
    // on these little-endian targets).
    let mut program = vec![
        ld(4),
        // Another architecture's calls: allowed (the last instruction).
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
        program.push(jeq_next_else_skip1(nr as u32));
        program.push(ret(errno(e)));
    }
    if rules.clone_flags != 0 {
        // clone: load its flags; refuse if any of ours is set.
        program.push(op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            3,
            libc::SYS_clone as u32,
        ));
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
