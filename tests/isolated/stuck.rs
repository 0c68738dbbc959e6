//! A child that SIGKILL cannot end is reported as stuck.

use std::time::{Duration, Instant};

use pidreap::{Command, Event, Reaper, Signal, Stdio, StopLadder};

use crate::freezer::Freezer;
use crate::helpers::{assert_no_children_left, exit_of};
use crate::support::{self, Guard, Proc, LONG};

/// A child that SIGKILL cannot end (frozen) is reported as `Stuck` after
/// its ladder's kill timeout, stays supervised, and its exit is reported
/// once it is thawed. `shutdown` returns within its bound and lists it.
pub(crate) fn stuck_child() {
    let mut guard = Guard::new();
    let Some(freezer) = Freezer::new() else {
        eprintln!("no writable cgroup-v1 freezer here: test skipped");
        return;
    };
    let mut reaper = Reaper::new().unwrap();
    let kill_timeout = Duration::from_millis(500);
    let grace = Duration::from_millis(100);
    let ladder = StopLadder::new(Signal::TERM, grace).kill_timeout(kill_timeout);

    let spawn_frozen = |reaper: &mut Reaper, guard: &mut Guard| {
        let mut cmd = Command::new("sleep");
        cmd.arg("60")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stop_ladder(ladder.clone());
        let c = reaper.spawn(&cmd).unwrap();
        guard.track(c.pid());
        support::wait_exec(c.pid(), "sleep");
        freezer.add(c.pid());
        c
    };

    // Through stop(): Stuck, then the exit once thawed.
    let child = spawn_frozen(&mut reaper, &mut guard);
    freezer.set("FROZEN");
    let t0 = Instant::now();
    reaper.stop(child.id()).unwrap();
    match reaper.wait_event(Some(LONG)).unwrap() {
        Some(Event::Stuck { id, pid }) => assert_eq!((id, pid), (child.id(), child.pid())),
        other => panic!("expected Stuck, got {other:?}"),
    }
    assert!(
        t0.elapsed() >= grace + kill_timeout,
        "Stuck reported after {:?}",
        t0.elapsed()
    );
    assert_eq!(
        reaper.phase(child.id()),
        Some(pidreap::engine::Phase::Stuck)
    );
    assert_eq!(reaper.len(), 1);
    assert!(!Proc::of(child.pid()).is_dead(), "the frozen child died");
    freezer.set("THAWED");
    let exit = exit_of(&mut reaper, child.id());
    assert!(
        matches!(exit.status.signal(), Some(Signal::TERM | Signal::KILL)),
        "{:?}",
        exit.status
    );

    // Through shutdown(): bounded, the child listed as stuck.
    let child = spawn_frozen(&mut reaper, &mut guard);
    freezer.set("FROZEN");
    let t0 = Instant::now();
    // Shorter than the ladder's grace: SIGKILL at 50 ms, stuck 500 ms later.
    let shutdown_grace = Duration::from_millis(50);
    let report = reaper.shutdown(shutdown_grace).unwrap();
    let took = t0.elapsed();
    assert_eq!(report.stuck, vec![child.id()]);
    assert!(report.exited.is_empty());
    assert!(
        took >= shutdown_grace + kill_timeout,
        "shutdown gave up after {took:?}"
    );
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    freezer.set("THAWED");
    let exit = exit_of(&mut reaper, child.id());
    assert!(
        matches!(exit.status.signal(), Some(Signal::TERM | Signal::KILL)),
        "{:?}",
        exit.status
    );
    drop(reaper);
    drop(freezer);
    assert_no_children_left("after the stuck tests");
}
