//! File descriptors and zombies: failed spawns and spawn-and-reap cycles
//! leak neither, children see only stdio, and running out of fds gives a
//! typed error.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pidreap::{Command, Error, ExitStatus, Reaper, Signal, Stdio, StopLadder};

use crate::helpers::{assert_no_children_left, check_mode, exit_of, setup, warm_up};
use crate::seccomp::{install_seccomp, Refuse};
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
    // The 100 files and 50 cancel eventfds at least; the children's pidfds
    // (and the guard's) add 50 to 100 more where pidfds exist.
    let many = 150;
    let held = support::self_fd_count();
    assert!(
        held > many,
        "the supervisor should hold many fds (more than {many}), holds {held}"
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

/// Where `close_range` is refused with `EPERM` (a seccomp profile that
/// does not list it, as in a locked-down container), a child still starts
/// with fds 0, 1 and 2 only while this process holds 200 fds opened without
/// `O_CLOEXEC`: the spawn cannot unshare a shared fd table (no
/// `CLOSE_RANGE_UNSHARE`), so it takes a path with a copied one, where
/// the child marks every fd from 3 up close-on-exec itself. The marks are
/// the child's own: this process's fds stay inheritable.
pub(crate) fn no_fd_leak_without_close_range(fallback: bool) {
    setup(fallback);
    install_seccomp(Refuse::CloseRange(libc::EPERM));
    // More than one getdents64 batch of /proc/self/fd in the child.
    let inheritable: Vec<_> = (0..200).map(|_| support::open_inheritable()).collect();
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let child = reaper.spawn(&cmd).unwrap();
    guard.track(child.pid());
    assert_ne!(
        Reaper::spawn_mode(),
        "vfork-class clone with CLONE_PIDFD and CLONE_FILES",
        "the spawn shares the fd table although close_range is refused"
    );
    support::wait_exec(child.pid(), "sleep");
    support::wait_only_stdio(child.pid());
    for fd in &inheritable {
        // SAFETY: F_GETFD on an fd this test owns.
        let flags = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(fd), libc::F_GETFD) };
        assert_eq!(
            flags & libc::FD_CLOEXEC,
            0,
            "the child's close-on-exec marks reached the parent's fd table"
        );
    }
    reaper.kill(child.id()).unwrap();
    assert_eq!(
        exit_of(&mut reaper, child.id()).status.signal(),
        Some(Signal::KILL)
    );
    drop(inheritable);
    assert_no_children_left("after the kill");
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

/// A reaped child's pidfd is closed after its exit is handed out, not in
/// the poll that reaps it: once `next_event` has said `None`, the fds are
/// those from before the spawns; and the reaped pidfds left open until then
/// do not make the reaper's fd readable again.
pub(crate) fn reaped_pidfds_close_when_drained() {
    let mut reaper = Reaper::new().unwrap();
    warm_up(&mut reaper, false);
    assert!(reaper.next_event().is_none());
    // The listing's own fd (reading /proc/self/fd) takes the lowest free
    // number: left out of the comparisons.
    let fds = || -> BTreeSet<(i32, String)> {
        support::self_fds()
            .into_iter()
            .filter(|(_, target)| !target.starts_with("/proc/"))
            .collect()
    };
    let before = fds();

    let mut guard = Guard::new();
    let mut ids = Vec::new();
    let mut pids = Vec::new();
    for code in 1..=5 {
        let child = reaper
            .spawn(&crate::helpers::sh(&format!("exit {code}")))
            .unwrap();
        ids.push(child.id());
        pids.push(child.pid());
    }
    // The guard's own fds (a pidfd per child where it can open one) are
    // not the reaper's: tell them apart.
    let untracked = fds();
    for &pid in &pids {
        guard.track(pid);
    }
    let guard_fds: BTreeSet<_> = fds().difference(&untracked).cloned().collect();

    let deadline = std::time::Instant::now() + LONG;
    while !reaper.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "the five children were not reaped in time");
        reaper.poll(Some(left)).unwrap();
    }
    // All five reaped and queued, none taken yet.
    if !support::mode_lacks_pidfd() {
        assert!(
            !support::readable_within(&reaper, Duration::from_millis(100)),
            "the reaper's fd is readable with nothing to do (the reaped pidfds woke it)"
        );
    }
    let mut codes = Vec::new();
    while let Some(ev) = reaper.next_event() {
        match ev {
            pidreap::Event::Exited(exit) => {
                assert!(ids.contains(&exit.id), "{exit:?}");
                codes.push(exit.status);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    codes.sort_by_key(|s| s.code());
    assert_eq!(
        codes,
        (1..=5).map(ExitStatus::Exited).collect::<Vec<_>>(),
        "each child's own status"
    );
    let expected: BTreeSet<_> = before.union(&guard_fds).cloned().collect();
    assert_eq!(
        fds(),
        expected,
        "fds after next_event said None (the guard's own fds aside)"
    );
    drop(guard);
    assert_eq!(fds(), before, "fds leaked");
    assert_no_children_left("after the drain");
}

/// A child traced by another process: its pidfd turns readable when it
/// dies, but its status goes to the tracer first, and the parent can reap
/// it only once the tracer has taken it
/// ([ptrace(2)](https://man7.org/linux/man-pages/man2/ptrace.2.html)). The
/// reaper must not spin while the tracer holds it, and must report the
/// exit once the tracer lets go.
pub(crate) fn traced_child_reaped_after_tracer() {
    use std::io::Write as _;
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("60").stdin(Stdio::null());
    let child = reaper.spawn(&cmd).unwrap();
    guard.track(child.pid());
    support::wait_exec(child.pid(), "sleep");
    let mut tracer = crate::roles::start_tracer(child.pid());
    guard.track(tracer.id());
    let mut out = support::Lines::new(tracer.stdout.take().unwrap());
    assert_eq!(out.line(LONG, "the tracer attaching"), "attached");

    reaper.kill(child.id()).unwrap();
    support::wait_until(LONG, "the traced child is a zombie", || {
        support::state(child.pid()) == Some('Z')
    });
    // Held by the tracer for 300 ms: no exit reported, and few wake-ups
    // (a reaper that re-armed a readable pidfd at every poll would wake
    // thousands of times; without pidfds it checks every 20 ms).
    let held = Duration::from_millis(300);
    let start = std::time::Instant::now();
    let mut wakeups = 0;
    while let Some(left) = held.checked_sub(start.elapsed()) {
        reaper.poll(Some(left)).unwrap();
        wakeups += 1;
        assert!(
            reaper.next_event().is_none(),
            "an exit was reported while the tracer holds it"
        );
    }
    assert!(
        wakeups <= 40,
        "the reaper woke {wakeups} times in {held:?} while the tracer held the exit"
    );
    assert_eq!(support::state(child.pid()), Some('Z'), "still held");

    let mut stdin = tracer.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    let exit = exit_of(&mut reaper, child.id());
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    assert_eq!(out.line(LONG, "the tracer letting go"), "released");
    support::wait_until(LONG, "the tracer exits", || {
        matches!(tracer.try_wait(), Ok(Some(_)))
    });
    assert_no_children_left("after the tracer let go");
}
