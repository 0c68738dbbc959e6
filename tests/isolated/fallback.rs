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
    let mut cmd = sh("trap '' TERM; echo ready; exec sleep 60");
    cmd.stdout(Stdio::piped())
        .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_millis(300)));
    let mut c = reaper.spawn(&cmd).unwrap();
    guard.track(c.pid());
    assert_eq!(
        Lines::new(c.stdout.take().unwrap()).line(LONG, "ready"),
        "ready"
    );
    let t0 = Instant::now();
    reaper.stop(c.id()).unwrap();
    let exit = exit_of(&mut reaper, c.id());
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    assert!(exit.observed_at - t0 >= Duration::from_millis(300));
    assert_no_children_left("after the fallback basics");
}

/// A kernel (or a seccomp filter) that refuses spawn features: the spawner
/// falls back step by step, children still work and are still reaped
/// through a pidfd; with no pidfd at all, spawn returns `Unsupported` and
/// the child it made is killed and reaped, with no fd left open.
pub(crate) fn refused_features(refuse: Refuse) {
    let mut reaper = Reaper::new().unwrap();
    let before = support::self_fds();
    install_seccomp(refuse);
    let mut cmd = sh("exit 7");
    cmd.stdout(Stdio::piped());
    match refuse {
        Refuse::CloneVm | Refuse::ClonePidfd => {
            let child = reaper.spawn(&cmd).unwrap();
            let expected = match refuse {
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
        Refuse::AllPidfds(errno) => {
            let e = reaper.spawn(&cmd).unwrap_err();
            match &e {
                Error::Unsupported { what, source } => {
                    assert_eq!(*what, "pidfd_open");
                    assert_eq!(source.raw_os_error(), Some(errno));
                }
                other => panic!("expected Error::Unsupported, got {other:?}"),
            }
            assert!(
                e.to_string().contains("pidfd_open is not available here"),
                "{e}"
            );
            assert!(reaper.is_empty());
        }
        Refuse::Clone3(_) => unreachable!("see cgroup_without_clone3"),
    }
    assert_no_children_left("after the spawns");
    assert_eq!(support::self_fds(), before, "fds leaked");
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
