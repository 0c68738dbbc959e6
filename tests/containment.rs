//! Containment of a child's whole tree, on real processes: a PID namespace
//! (the child is its init) and a process group. Needs root (or
//! `CAP_SYS_ADMIN`) for the namespace, which this project's machines and CI
//! have: a test that cannot create one fails rather than passing unchecked.
//!
//! Descendants are found by their PID namespace (`/proc/PID/ns/pid`), so a
//! `setsid` daemon or a double-forked grandchild, reparented away from the
//! child, is still counted.

mod support;

use std::time::Duration;

use pidreap::{Command, Containment, Reaper, Signal, Stdio, StopLadder};
use support::{Guard, Lines, LONG};

const WATCHDOG: Duration = Duration::from_secs(120);

/// Background children, a `setsid` daemon and a double-forked grandchild,
/// each ignoring SIGTERM; prints "ready" once all three run.
const TREE: &str = "trap '' TERM; \
    sleep 1000 & \
    setsid sleep 1000 & \
    (sleep 1000 &) ; \
    sleep 0.2; echo ready; wait";

fn spawn_tree(
    reaper: &mut Reaper,
    guard: &mut Guard,
    ladder: StopLadder,
) -> (pidreap::Child, String) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", TREE])
        .containment(Containment::PidNamespace)
        .stop_ladder(ladder)
        .stdout(Stdio::piped());
    let mut child = reaper
        .spawn(&cmd)
        .expect("spawning into a new PID namespace");
    guard.track(child.pid());
    let mut out = Lines::new(child.stdout.take().unwrap());
    assert_eq!(out.line(LONG, "the tree's ready line"), "ready");
    let ns = support::pid_ns(child.pid()).expect("the child's pid namespace");
    (child, ns)
}

#[test]
fn a_child_in_a_new_pid_namespace_runs_as_its_init() {
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo $$ $PPID"])
        .containment(Containment::PidNamespace)
        .stdout(Stdio::piped());
    let mut child = reaper
        .spawn(&cmd)
        .expect("a child in a new PID namespace must pass the parent check and exec");
    guard.track(child.pid());
    let line = Lines::new(child.stdout.take().unwrap()).line(LONG, "pid and ppid");
    assert_eq!(
        line, "1 0",
        "the child sees itself as PID 1, its parent outside"
    );
    let exit = reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    assert!(exit.status.success(), "{}", exit.status);
}

#[test]
fn stopping_a_pid_namespace_child_takes_its_whole_tree() {
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let (child, ns) = spawn_tree(
        &mut reaper,
        &mut guard,
        StopLadder::new(Signal::TERM, Duration::from_millis(300)),
    );
    let before = support::ns_members(&ns);
    for pid in &before {
        guard.track(*pid);
    }
    assert!(
        before.len() >= 4,
        "the shell and its three sleeps run in the namespace: {before:?}"
    );
    reaper.stop(child.id()).unwrap();
    let exit = reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    // The shell is PID 1 with TERM ignored: the ladder's SIGKILL ends it.
    assert_eq!(exit.status.signal(), Some(Signal::KILL), "{}", exit.status);
    assert_eq!(
        support::ns_members(&ns),
        Vec::<u32>::new(),
        "nothing of the tree outlives its init's reap"
    );
}

#[test]
fn dropping_the_reaper_kills_a_pid_namespace_tree() {
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let (_child, ns) = spawn_tree(&mut reaper, &mut guard, StopLadder::default());
    for pid in support::ns_members(&ns) {
        guard.track(pid);
    }
    drop(reaper);
    assert_eq!(support::ns_members(&ns), Vec::<u32>::new());
}
