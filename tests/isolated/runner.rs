//! The runner: runs each selected test in a process of its own, kills it
//! at its deadline, and fails it if it left a process behind (this process
//! is a child subreaper, so every orphan lands here); plus the raw
//! `waitpid` helpers it and the tests share.

use std::fs;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::roles::{FALLBACK, ROLE};
use crate::support::{self, LONG};
use crate::{Test, TESTS};

pub(crate) fn runner() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for t in TESTS {
            println!("{}: test", t.name);
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    // Like libtest's: print what passing tests wrote (their figures).
    let show_output = args
        .iter()
        .any(|a| a == "--show-output" || a == "--nocapture");
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|t| filters.is_empty() || filters.iter().any(|f| t.name.contains(f.as_str())))
        .collect();

    // Everything a test leaves behind is reparented here.
    set_subreaper();
    let exe = std::env::current_exe().expect("current_exe");
    let logs = support::TempDir::new("logs");
    println!(
        "\nrunning {} tests (each in its own process)",
        selected.len()
    );
    let (mut passed, mut failed) = (0, 0);
    for t in selected {
        let log_path = logs.path().join(t.name);
        let log = fs::File::create(&log_path).expect("creating a log file");
        let started = Instant::now();
        let mut child = std::process::Command::new(&exe)
            .env(ROLE, format!("test:{}", t.name))
            .env_remove(FALLBACK)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("starting the test process");
        let outcome = loop {
            match child.try_wait().expect("try_wait") {
                Some(status) if status.success() => break Ok(()),
                Some(status) => break Err(format!("the test process ended with {status}")),
                None if started.elapsed() > t.deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("timed out after {:?}", t.deadline));
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let leftovers = clean_up_leftovers();
        let outcome = match (outcome, leftovers.is_empty()) {
            (Ok(()), true) => Ok(()),
            (Ok(()), false) => Err(format!("left processes behind: {leftovers:?}")),
            (Err(e), true) => Err(e),
            (Err(e), false) => Err(format!("{e}; and left processes behind: {leftovers:?}")),
        };
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("test {} ... ok ({:.1?})", t.name, started.elapsed());
                if show_output {
                    print!("{}", fs::read_to_string(&log_path).unwrap_or_default());
                }
            }
            Err(why) => {
                failed += 1;
                println!("test {} ... FAILED: {why}", t.name);
                println!(
                    "---- {} output ----\n{}",
                    t.name,
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

pub(crate) fn set_subreaper() {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "PR_SET_CHILD_SUBREAPER: {}",
        std::io::Error::last_os_error()
    );
}

/// Kills and reaps every child of this process, returning what was found
/// (as "pid comm state").
pub(crate) fn clean_up_leftovers() -> Vec<String> {
    let mut found = Vec::new();
    for pid in support::own_children() {
        let desc = support::stat(pid)
            .map(|s| format!("{pid} {} {}", s.comm, s.state))
            .unwrap_or_default();
        found.push(desc);
        if let Ok(fd) = support::pidfd_open(pid) {
            // SAFETY: pidfd_send_signal(fd, SIGKILL, NULL, 0).
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    libc::SIGKILL,
                    std::ptr::null::<u8>(),
                    0,
                );
            }
        }
        reap(pid, LONG);
    }
    found
}

/// Reaps our child `pid`, waiting at most `within`; its raw wait status.
#[track_caller]
pub(crate) fn reap(pid: u32, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on one pid of ours.
        let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        if r == pid as i32 {
            return status;
        }
        assert!(
            r == 0,
            "waitpid({pid}): {}",
            std::io::Error::last_os_error()
        );
        assert!(
            Instant::now() < deadline,
            "pid {pid} not reaped within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for a `std::process::Child` of ours, with a deadline.
#[track_caller]
pub(crate) fn wait_std(
    child: &mut std::process::Child,
    within: Duration,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "pid {} not reaped within {within:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
