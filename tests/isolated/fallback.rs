//! The fork-class fallback spawn path: forced, or reached because a
//! seccomp filter refuses `CLONE_VM`, `CLONE_PIDFD` or every pidfd.

use std::io::Write;
use std::time::{Duration, Instant};

use pidreap::{Command, Error, ExitStatus, Reaper, Signal, Stdio, StopLadder};

use crate::helpers::{assert_no_children_left, check_mode, exit_of, setup, sh};
use crate::seccomp::{install_seccomp, Refuse};
use crate::support::{self, Guard, Lines, Proc, LONG};

/// The basics on the fallback path: statuses, signals, exec errors, pipes.
pub(crate) fn statuses_and_stdio(fallback: bool) {
    setup(fallback);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    for (script, expected) in [
        ("exit 0", ExitStatus::Exited(0)),
        ("exit 7", ExitStatus::Exited(7)),
        (
            "kill -KILL $$",
            ExitStatus::Signaled {
                signal: Signal::KILL,
                core_dumped: false,
            },
        ),
        (
            "kill -TERM $$",
            ExitStatus::Signaled {
                signal: Signal::TERM,
                core_dumped: false,
            },
        ),
    ] {
        let c = reaper.spawn(&sh(script)).unwrap();
        guard.track(c.pid());
        let p = Proc::of(c.pid());
        assert_eq!(exit_of(&mut reaper, c.id()).status, expected, "{script}");
        assert!(p.is_gone());
    }
    check_mode(fallback);
    let e = reaper
        .spawn(&Command::new("/nonexistent/program"))
        .unwrap_err();
    assert!(
        e.is_not_found() && e.to_string().contains("/nonexistent/program"),
        "{e}"
    );
    let e = reaper.spawn(&Command::new("/")).unwrap_err();
    assert!(e.is_not_executable(), "{e}");

    let mut cmd = Command::new("cat");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut c = reaper.spawn(&cmd).unwrap();
    guard.track(c.pid());
    c.stdin
        .take()
        .unwrap()
        .write_all(b"through the fallback\n")
        .unwrap();
    assert_eq!(
        Lines::new(c.stdout.take().unwrap()).rest(LONG, "cat's output"),
        "through the fallback\n"
    );
    assert_eq!(exit_of(&mut reaper, c.id()).status, ExitStatus::Exited(0));

    // The ladder works the same way.
    ladder_reaches_sigkill(&mut reaper, &mut guard, Duration::from_millis(300));
    assert_no_children_left("after the fallback basics");
}

/// A kernel (or a seccomp filter) that refuses spawn features: the spawner
/// falls back step by step, children still work and are still reaped
/// through a pidfd; with no pidfd at all (no-pidfd mode), a `Reaper` still
/// spawns, stops and reaps them (by pid, through SIGCHLD), while the
/// pidfd primitive is refused with `Unsupported`, with no fd left open.
///
/// With `ENOSYS` the reaper exists before the filter (it adds SIGCHLD to
/// its signalfd at its first child without a pidfd); with `EPERM` after
/// it (SIGCHLD from construction).
pub(crate) fn refused_features(refuse: Refuse) {
    // Refusing CLONE_PIDFD alone leaves pidfd_open, which a sandboxed run
    // refuses too.
    if matches!(refuse, Refuse::ClonePidfd)
        && support::sandbox_skip("refused_features(ClonePidfd)", "pidfd_open")
    {
        return;
    }
    let late_reaper = matches!(refuse, Refuse::AllPidfds(libc::EPERM));
    if late_reaper {
        install_seccomp(refuse);
    }
    let mut reaper = Reaper::new().unwrap();
    let before = support::self_fds();
    if !late_reaper {
        install_seccomp(refuse);
    }
    let mut cmd = sh("exit 7");
    cmd.stdout(Stdio::piped());
    match refuse {
        Refuse::CloneVm | Refuse::ClonePidfd => {
            let child = reaper.spawn(&cmd).unwrap();
            let expected = match refuse {
                // A run forcing no-pidfd mode never asks for CLONE_PIDFD.
                Refuse::ClonePidfd if support::mode_lacks_pidfd() => crate::helpers::default_mode(),
                Refuse::CloneVm if support::mode_lacks_pidfd() => crate::helpers::fallback_mode(),
                // Unless the run forces the last fallback already.
                Refuse::CloneVm
                    if crate::helpers::default_mode() != "fork-class clone + pidfd_open" =>
                {
                    "fork-class clone with CLONE_PIDFD"
                }
                _ => "fork-class clone + pidfd_open",
            };
            assert_eq!(Reaper::spawn_mode(), expected);
            assert_eq!(
                exit_of(&mut reaper, child.id()).status,
                ExitStatus::Exited(7)
            );
            drop(child);
            // Exec errors still come back typed on the fallback path.
            let e = reaper
                .spawn(&Command::new("/nonexistent/pidreap-prog"))
                .unwrap_err();
            assert!(e.is_not_found(), "{e:?}");
            // And stopping works through the pidfd.
            let mut sleeper = Command::new("sleep");
            sleeper.arg("60").stop_ladder(StopLadder::kill_only());
            let child = reaper.spawn(&sleeper).unwrap();
            reaper.stop(child.id()).unwrap();
            assert_eq!(
                exit_of(&mut reaper, child.id()).status.signal(),
                Some(Signal::KILL)
            );
        }
        Refuse::AllPidfds(_) => no_pidfd_reaper(&mut reaper),
        Refuse::Clone3(_) => unreachable!("see cgroup_without_clone3"),
        Refuse::CloseRange(_) => unreachable!("see fds::no_fd_leak_without_close_range"),
    }
    assert_no_children_left("after the spawns");
    let (mut before, mut after) = (before, support::self_fds());
    if matches!(refuse, Refuse::AllPidfds(_)) || support::mode_lacks_pidfd() {
        // The reaper's signalfd (made at its first child without a pidfd,
        // or before) is kept; the listing's own fd moves with it.
        for fds in [&mut before, &mut after] {
            fds.retain(|(_, what)| what != "anon_inode:[signalfd]" && !what.starts_with("/proc/"));
        }
    }
    assert_eq!(after, before, "fds leaked");
}

/// With `clone3` refused (as Docker's default seccomp profile did, with
/// `EPERM`, or a kernel before 5.3, `ENOSYS`), a cgroup-contained child
/// moves itself into its leaf before exec: the program never runs
/// outside it, the fast spawn path is kept, and a stop still takes the
/// whole tree.
pub(crate) fn cgroup_without_clone3(errno: i32) {
    if !support::containment_or_skip("cgroup_without_clone3", pidreap::Containment::Cgroup) {
        return;
    }
    // The setsid sleep is reparented here, to be reaped.
    crate::runner::set_subreaper();
    let mut reaper = Reaper::new().unwrap();
    install_seccomp(Refuse::Clone3(errno));
    let mut cmd = sh(
        "grep ^0:: /proc/self/cgroup; sleep 1000 & setsid sleep 1000 & sleep 0.1; echo ready; wait",
    );
    cmd.containment(pidreap::Containment::Cgroup)
        .stop_ladder(StopLadder::new(
            Signal::TERM,
            std::time::Duration::from_millis(200),
        ))
        .stdout(Stdio::piped());
    let mut guard = support::Guard::new();
    let mut child = reaper.spawn(&cmd).unwrap();
    guard.track(child.pid());
    assert_eq!(Reaper::spawn_mode(), crate::helpers::default_mode());
    let mut out = support::Lines::new(child.stdout.take().unwrap());
    let line = out.line(support::LONG, "the child's cgroup");
    let leaf = line
        .strip_prefix("0::")
        .expect("a cgroup v2 line")
        .to_owned();
    assert!(
        leaf.contains(&format!("/pidreap-{}-", std::process::id())),
        "the program ran in {leaf}, outside its leaf"
    );
    assert_eq!(out.line(support::LONG, "ready"), "ready");
    let members = support::cgroup_members(&leaf);
    for &pid in &members {
        guard.track(pid);
    }
    assert!(members.len() >= 3, "{members:?}");
    reaper.stop(child.id()).unwrap();
    assert!(exit_of(&mut reaper, child.id()).status.signal().is_some());
    assert_eq!(support::cgroup_members(&leaf), Vec::<u32>::new());
    // The reaper's cgroup sentinel is a child too: it exits with the reaper.
    drop(reaper);
    crate::helpers::reap_all_children("after the stop");
}

/// Linux compares the kill counter of the cgroup a child is born into with
/// that of its parent's cgroup, and kills the child at birth when they
/// differ: after any `cgroup.kill` of the supervisor's own cgroup, every
/// `clone3(CLONE_INTO_CGROUP)` child would die before its first
/// instruction. The spawner sees a child that never ran and falls back to
/// moving children in before exec, for good: every spawn works.
pub(crate) fn cgroup_spawn_from_a_killed_cgroup() {
    if !support::containment_or_skip(
        "cgroup_spawn_from_a_killed_cgroup",
        pidreap::Containment::Cgroup,
    ) {
        return;
    }
    let mount = support::cgroup2_mount().expect("a cgroup2 mount");
    let own = support::cgroup_of(std::process::id()).expect("our cgroup");
    let base = if own == "/" {
        String::new()
    } else {
        own.clone()
    };
    let killed = format!("{mount}{base}/pidreap-test-killed-{}", std::process::id());
    std::fs::create_dir(&killed).expect("creating a test cgroup");
    // Killed while empty: only its counter changes.
    std::fs::write(format!("{killed}/cgroup.kill"), "1").expect("cgroup.kill");
    std::fs::write(format!("{killed}/cgroup.procs"), "0").expect("moving in");
    let outcome = std::panic::catch_unwind(|| {
        let mut reaper = Reaper::new().unwrap();
        for round in 0..3 {
            let mut cmd = sh("echo hello");
            cmd.containment(pidreap::Containment::Cgroup)
                .stdout(Stdio::piped());
            let mut child = reaper.spawn(&cmd).expect("a spawn from a killed cgroup");
            let line = support::Lines::new(child.stdout.take().unwrap())
                .line(support::LONG, "the child's greeting");
            assert_eq!(line, "hello", "round {round}");
            assert_eq!(
                exit_of(&mut reaper, child.id()).status,
                ExitStatus::Exited(0),
                "round {round}: the child was killed at birth"
            );
        }
    });
    std::fs::write(format!("{mount}{base}/cgroup.procs"), "0").expect("moving back");
    std::fs::remove_dir(&killed).expect("removing the test cgroup");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// No-pidfd mode on a real kernel whose pidfds a seccomp filter refuses:
/// statuses, a stop ladder, exec errors and a group; the primitive is
/// refused by name; no zombie, no child left.
fn no_pidfd_reaper(reaper: &mut Reaper) {
    let mut guard = Guard::new();
    // Someone else's child, exited and not waited for: never stolen, and
    // it does not hide our children's exits.
    let mut foreign = std::process::Command::new("sh")
        .args(["-c", "exit 9"])
        .spawn()
        .unwrap();
    guard.track(foreign.id());
    support::wait_until(LONG, "the foreign child to be a zombie", || {
        support::state(foreign.id()) == Some('Z')
    });
    for (script, expected) in [
        ("exit 7", ExitStatus::Exited(7)),
        (
            "kill -TERM $$",
            ExitStatus::Signaled {
                signal: Signal::TERM,
                core_dumped: false,
            },
        ),
    ] {
        let c = reaper.spawn(&sh(script)).unwrap();
        guard.track(c.pid());
        assert_eq!(exit_of(reaper, c.id()).status, expected, "{script}");
        assert!(support::stat(c.pid()).is_none(), "{script}: not reaped");
    }
    // (A filter refusing CLONE_PIDFD with EINVAL looks like one refusing
    // CLONE_FILES or CLONE_VM first: the spawner may end up fork-class.)
    assert!(
        Reaper::spawn_mode().ends_with("no pidfd (SIGCHLD + waitid P_PID)"),
        "{}",
        Reaper::spawn_mode()
    );
    // Many at once: one SIGCHLD may stand for several exits.
    let ids: Vec<_> = (0..20)
        .map(|i| {
            let c = reaper.spawn(&sh(&format!("exit {i}"))).unwrap();
            guard.track(c.pid());
            (c.id(), i)
        })
        .collect();
    for (id, i) in ids {
        assert_eq!(exit_of(reaper, id).status, ExitStatus::Exited(i));
    }
    // A stop ladder, signalled with kill() while unreaped.
    ladder_reaches_sigkill(reaper, &mut guard, Duration::from_millis(200));
    // A process-group leader: signalled with kill(-pgid).
    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .containment(pidreap::Containment::ProcessGroup)
        .stop_ladder(StopLadder::kill_only());
    let c = reaper.spawn(&cmd).unwrap();
    guard.track(c.pid());
    reaper.stop(c.id()).unwrap();
    assert_eq!(exit_of(reaper, c.id()).status.signal(), Some(Signal::KILL));
    // Exec errors still come back typed.
    let e = reaper
        .spawn(&Command::new("/nonexistent/pidreap-prog"))
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    // Cgroup and PID-namespace containment need pidfds: refused by name.
    for c in [
        pidreap::Containment::Cgroup,
        pidreap::Containment::PidNamespace,
    ] {
        let e = c.check().unwrap_err();
        assert!(
            matches!(&e, Error::ContainmentUnavailable { .. })
                && e.to_string().contains("no pidfds"),
            "{c:?}: {e}"
        );
        let e = reaper
            .spawn(Command::new("true").containment(c))
            .unwrap_err();
        assert!(e.to_string().contains("no pidfds"), "{c:?}: {e}");
    }
    // The primitive cannot exist without a pidfd.
    let e = pidreap::spawn(&sh("exit 0")).unwrap_err();
    match &e {
        Error::Unsupported { what, .. } => {
            assert!(what.contains("CLONE_PIDFD and pidfd_open"), "{what}")
        }
        other => panic!("expected Error::Unsupported, got {other:?}"),
    }
    assert!(reaper.is_empty());
    assert_eq!(
        foreign.wait().unwrap().code(),
        Some(9),
        "the foreign child's status was kept for its owner"
    );
}

/// A kernel before 5.2 ignores `CLONE_PIDFD`: the clone succeeds and the
/// pidfd stays -1 (faked by a testing hook that closes the kernel's fd:
/// seccomp can refuse a flag, not make the kernel ignore it). The spawner
/// notices, takes the `pidfd_open` path for this child and from then on,
/// and loses nothing.
pub(crate) fn clone_pidfd_ignored() {
    if support::sandbox_skip("clone_pidfd_ignored", "pidfd_open") {
        return;
    }
    let mut reaper = Reaper::new().unwrap();
    let warm = reaper.spawn(&Command::new("true")).unwrap();
    exit_of(&mut reaper, warm.id());
    let before = support::self_fds();
    let forced = crate::helpers::default_mode();
    // The guard's pidfds are closed before the fds are compared.
    let mut guard = Guard::new();
    pidreap::testing::ignore_clone_pidfd_once();
    let c = reaper.spawn(&sh("exit 3")).unwrap();
    guard.track(c.pid());
    assert_eq!(exit_of(&mut reaper, c.id()).status, ExitStatus::Exited(3));
    let expected = match forced {
        "vfork-class clone with CLONE_PIDFD and CLONE_FILES"
        | "vfork-class clone with CLONE_PIDFD" => "vfork-class clone + pidfd_open",
        "fork-class clone with CLONE_PIDFD" => "fork-class clone + pidfd_open",
        // A forced mode without CLONE_PIDFD: the hook has nothing to drop.
        other => other,
    };
    assert_eq!(Reaper::spawn_mode(), expected);
    // Later children take the same path, and a stop still works.
    let mut cmd = Command::new("sleep");
    cmd.arg("60").stop_ladder(StopLadder::kill_only());
    let c = reaper.spawn(&cmd).unwrap();
    guard.track(c.pid());
    reaper.stop(c.id()).unwrap();
    assert_eq!(
        exit_of(&mut reaper, c.id()).status.signal(),
        Some(Signal::KILL)
    );
    assert_no_children_left("after the spawns with CLONE_PIDFD ignored");
    drop(guard);
    assert_eq!(support::self_fds(), before, "fds leaked");
}

/// A spawn that fails after its clone SIGKILLs its child; a child that
/// cannot die yet (frozen in the cgroup-v1 freezer, as in uninterruptible
/// sleep) does not hold the spawn: the error comes back within the error
/// path's bound, the child goes to the "reap later" list, and it is reaped
/// (by the reaper's poll) once thawed. The failure after the clone is
/// forced by a testing hook, which freezes the child first.
pub(crate) fn failed_spawn_of_a_frozen_child() {
    let mut guard = Guard::new();
    let Some(freezer) = crate::freezer::Freezer::new() else {
        support::skip(
            "failed_spawn_of_a_frozen_child",
            "no writable cgroup-v1 freezer here",
        );
        return;
    };
    let freezer = std::sync::Arc::new(freezer);
    let mut reaper = Reaper::new().unwrap();
    // One spawn first, so that the hook catches the child of the spawn
    // below and not an attempt the spawner makes while it settles on the
    // path this kernel (or sandbox) allows.
    let warm = reaper.spawn(&Command::new("true")).unwrap();
    exit_of(&mut reaper, warm.id());
    let pid = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    {
        let (freezer, pid) = (freezer.clone(), pid.clone());
        pidreap::testing::fail_next_spawn_after_clone(move |child| {
            pid.store(child, std::sync::atomic::Ordering::SeqCst);
            support::wait_exec(child as u32, "sleep");
            freezer.add(child as u32);
            freezer.set("FROZEN");
        });
    }
    let mut cmd = Command::new("sleep");
    cmd.arg("60").stdin(Stdio::null()).stdout(Stdio::null());
    let t0 = Instant::now();
    let e = reaper.spawn(&cmd).unwrap_err();
    let took = t0.elapsed();
    let pid = pid.load(std::sync::atomic::Ordering::SeqCst) as u32;
    assert!(pid > 0, "the hook did not run");
    guard.track(pid);
    assert!(e.to_string().contains("testing hook"), "{e}");
    // The bound is 500 ms, plus freezing (the hook) and slack for a busy
    // machine; an unbounded wait would hang until the watchdog.
    assert!(
        took < Duration::from_secs(5),
        "the failed spawn took {took:?}"
    );
    assert!(
        support::stat(pid).is_some(),
        "the frozen child cannot have been reaped"
    );
    assert_eq!(pidreap::testing::retry_reap_later(), 1, "not handed off");
    freezer.set("THAWED");
    support::wait_until(LONG, "the thawed child to be reaped later", || {
        reaper.poll(Some(Duration::from_millis(10))).unwrap();
        support::stat(pid).is_none()
    });
    assert_eq!(pidreap::testing::retry_reap_later(), 0);
    assert_no_children_left("after the frozen child was reaped");
}

/// A child that ignores SIGTERM gets it, then SIGKILL once `grace` is
/// over: the ladder, on whatever path the run takes.
fn ladder_reaches_sigkill(reaper: &mut Reaper, guard: &mut Guard, grace: Duration) {
    let mut cmd = sh("trap '' TERM; echo ready; exec sleep 60");
    cmd.stdout(Stdio::piped())
        .stop_ladder(StopLadder::new(Signal::TERM, grace));
    let mut c = reaper.spawn(&cmd).unwrap();
    guard.track(c.pid());
    assert_eq!(
        Lines::new(c.stdout.take().unwrap()).line(LONG, "ready"),
        "ready"
    );
    let t0 = Instant::now();
    reaper.stop(c.id()).unwrap();
    let exit = exit_of(reaper, c.id());
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    assert!(exit.observed_at - t0 >= grace);
}
