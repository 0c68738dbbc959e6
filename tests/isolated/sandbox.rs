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

use crate::seccomp::{install, Rules};

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
    // Tests that need what the profile refuses skip by this (and only
    // by this: under PIDREAP_TEST_REQUIRE_ALL other skips fail).
    std::env::set_var("PIDREAP_TEST_SANDBOX", profile);
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
