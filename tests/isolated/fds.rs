//! File descriptors and zombies: failed spawns and spawn-and-reap cycles
//! leak neither, children see only stdio, and running out of fds gives a
//! typed error.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pidreap::{Command, Error, ExitStatus, Reaper, Signal, Stdio, StopLadder};

use crate::helpers::{assert_no_children_left, check_mode, exit_of, setup, warm_up};
use crate::support::{self, Guard, LONG};

/// Missing program, non-executable file, directory, bad format, bad
/// directory: typed errors, and afterwards the same fds and no zombie.
pub(crate) fn exec_errors_leak_nothing(fallback: bool) {
    setup(fallback);
    let dir = support::TempDir::new("errs");
    let plain = dir.path().join("plain");
    fs::write(&plain, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    let garbage = dir.path().join("garbage");
    fs::write(&garbage, [0u8; 16]).unwrap();
    fs::set_permissions(&garbage, fs::Permissions::from_mode(0o755)).unwrap();
    let missing = dir.path().join("missing");

    let mut reaper = Reaper::new().unwrap();
    // Warm up: whatever is created lazily exists before the count.
    let _ = reaper.spawn(&Command::new(&missing));
    assert_eq!(warm_up(&mut reaper, fallback).status, ExitStatus::Exited(0));

    let before = support::self_fds();
    for round in 0..50 {
        let piped = |cmd: &mut Command| {
            if round % 2 == 0 {
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            } else {
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
            }
        };
        let mut cmd = Command::new(&missing);
        piped(&mut cmd);
        let e = reaper.spawn(&cmd).unwrap_err();
        assert!(e.is_not_found(), "{e:?}");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );

        let mut cmd = Command::new("pidreap-no-such-program-anywhere");
        piped(&mut cmd);
        assert!(reaper.spawn(&cmd).unwrap_err().is_not_found());

        for (path, errno) in [
            (&plain, libc::EACCES),
            (&garbage, libc::ENOEXEC),
            (&dir.path().to_path_buf(), libc::EACCES),
        ] {
            let mut cmd = Command::new(path);
            piped(&mut cmd);
            let e = reaper.spawn(&cmd).unwrap_err();
            assert!(e.is_not_executable(), "{e:?}");
            match &e {
                Error::Exec { program, source } => {
                    assert_eq!(program, path.as_os_str());
                    assert_eq!(source.raw_os_error(), Some(errno), "{e}");
                }
                other => panic!("expected Error::Exec, got {other:?}"),
            }
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }

        let mut cmd = Command::new("true");
        cmd.current_dir(&missing);
        piped(&mut cmd);
        match reaper.spawn(&cmd) {
            Err(Error::Chdir { dir, .. }) => assert_eq!(dir, missing),
            other => panic!("expected Error::Chdir, got {other:?}"),
        }
    }
    let after = support::self_fds();
    assert_eq!(before, after, "fds differ after 300 failed spawns");
    assert!(reaper.is_empty());
    assert_no_children_left("after failed spawns");
    drop(reaper);
}

/// 1,000 spawn-and-reap cycles (some with pipes, some stopped through a
/// cancel token): the fd count comes back, no zombie is left.
pub(crate) fn spawn_reap_cycles(fallback: bool, n: usize) {
    setup(fallback);
    let mut reaper = Reaper::new().unwrap();
    warm_up(&mut reaper, fallback);
    let before = support::self_fds();
    for i in 0..n {
        let mut cmd;
        if i % 10 == 9 {
            cmd = Command::new("sleep");
            cmd.arg("60").stdin(Stdio::null());
            cmd.stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(30)));
        } else {
            cmd = Command::new("true");
        }
        if i % 3 == 0 {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::null());
        }
        let child = reaper
            .spawn(&cmd)
            .unwrap_or_else(|e| panic!("spawn #{i}: {e}"));
        if i % 10 == 9 {
            reaper.cancel_token(child.id()).unwrap().cancel();
            assert_eq!(
                exit_of(&mut reaper, child.id()).status.signal(),
                Some(Signal::TERM)
            );
        } else {
            assert_eq!(
                exit_of(&mut reaper, child.id()).status,
                ExitStatus::Exited(0),
                "cycle {i}"
            );
        }
    }
    let after = support::self_fds();
    assert_eq!(before, after, "fds differ after {n} spawn-and-reap cycles");
    assert!(reaper.is_empty());
    assert_no_children_left("after the cycles");
}

/// A child sees fds 0, 1, 2 only, while the supervisor holds 100 other
/// fds, one of them inheritable (no CLOEXEC) on purpose, and the pidfds and
/// cancel eventfds of 50 live children.
pub(crate) fn only_stdio_fds(fallback: bool) {
    setup(fallback);
    let inheritable = support::open_inheritable();
    let files: Vec<fs::File> = (0..100)
        .map(|_| fs::File::open("/dev/null").unwrap())
        .collect();
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let mut sleepers = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..50 {
        let mut cmd = Command::new("sleep");
        cmd.arg("60").stdin(Stdio::null()).stdout(Stdio::null());
        let c = reaper.spawn(&cmd).unwrap();
        guard.track(c.pid());
        tokens.push(reaper.cancel_token(c.id()).unwrap());
        sleepers.push(c);
    }
    check_mode(fallback);
    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let last = reaper.spawn(&cmd).unwrap();
    guard.track(last.pid());
    // Without pidfds (a forced no-pidfd run) the children add none.
    let many = if support::mode_lacks_pidfd() {
        150
    } else {
        250
    };
    assert!(
        support::self_fd_count() > many,
        "the supervisor should hold many fds"
    );
    for c in sleepers.iter().chain([&last]) {
        support::wait_exec(c.pid(), "sleep");
        support::wait_only_stdio(c.pid());
    }
    assert_eq!(
        support::fd_target(last.pid(), 2),
        support::fd_target(std::process::id(), 2)
    );
    let report = reaper.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(report.exited.len(), 51);
    assert!(report
        .exited
        .iter()
        .all(|e| e.status.signal() == Some(Signal::TERM)));
    drop((files, inheritable, tokens));
    assert_no_children_left("after shutdown");
}

/// With the fd table nearly full (a low soft `RLIMIT_NOFILE`), spawns with
/// piped stdio run out of fds: the failing spawn returns a typed error that
/// names what needed the fd and says EMFILE, no child is left running or
/// unreaped by it, and once the limit is back every fd is accounted for.
pub(crate) fn fd_exhaustion(fallback: bool) {
    setup(fallback);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    assert_eq!(warm_up(&mut reaper, fallback).status, ExitStatus::Exited(0));
    let before = support::self_fds();
    // The limit at which exactly 12 fd numbers are free below it (fds
    // already open above a lowered limit stay valid: only new ones count).
    let open: BTreeSet<i32> = before.iter().map(|(fd, _)| *fd).collect();
    let limit = (0..)
        .filter(|fd| !open.contains(fd))
        .nth(11)
        .expect("a free fd number")
        + 1;

    let mut orig = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut orig), 0);
        let low = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: orig.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &low), 0);
    }

    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stop_ladder(StopLadder::kill_only());
    // Each live child keeps its pidfd and three pipe ends: a dozen free fds
    // run out within a few spawns.
    let mut live = Vec::new();
    let err = loop {
        match reaper.spawn(&cmd) {
            Ok(child) => {
                guard.track(child.pid());
                live.push(child);
                assert!(live.len() < 12, "12 free fds never ran out");
            }
            Err(e) => break e,
        }
    };
    match &err {
        Error::Os { op, source } => {
            assert_eq!(source.raw_os_error(), Some(libc::EMFILE), "{err}");
            assert!(err.to_string().starts_with(op), "{err}");
        }
        other => panic!("expected Error::Os with EMFILE, got {other:?}"),
    }
    // The failed spawn left nothing: only the supervised children exist.
    assert_eq!(reaper.len(), live.len());
    let mut kids = support::own_children();
    kids.sort_unstable();
    let mut expected: Vec<u32> = live.iter().map(|c| c.pid()).collect();
    expected.sort_unstable();
    assert_eq!(kids, expected, "a child outside the reaper exists");

    // SAFETY: restores the limit read above.
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &orig), 0);
    }
    // With fds free again, spawning works.
    let ok = reaper.spawn(&Command::new("true")).unwrap();
    assert_eq!(exit_of(&mut reaper, ok.id()).status, ExitStatus::Exited(0));

    let report = reaper.shutdown(LONG).unwrap();
    assert_eq!(report.exited.len(), live.len());
    assert!(report.stuck.is_empty());
    drop(live);
    // The guard holds a pidfd per tracked child: close them before counting.
    drop(guard);
    assert_eq!(support::self_fds(), before, "fds leaked");
    assert_no_children_left("after the shutdown");
}
