//! Containment of a child's whole tree, on real processes: a PID namespace
//! (the child is its init), a cgroup v2 leaf, and a process group. A test
//! whose mechanism does not work here is skipped with the reason printed,
//! except under `.ci/run`, which sets `PIDREAP_TEST_REQUIRE_ALL` so that a
//! skip fails instead: CI's machine has them all.
//!
//! Descendants are found by their PID namespace (`/proc/PID/ns/pid`) or
//! their cgroup (`/proc/PID/cgroup`), so a `setsid` daemon or a
//! double-forked grandchild, reparented away from the child, is still
//! counted.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

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
    if !support::containment_or_skip(
        "a_child_in_a_new_pid_namespace_runs_as_its_init",
        Containment::PidNamespace,
    ) {
        return;
    }
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
    if !support::containment_or_skip(
        "stopping_a_pid_namespace_child_takes_its_whole_tree",
        Containment::PidNamespace,
    ) {
        return;
    }
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
    if !support::containment_or_skip(
        "dropping_the_reaper_kills_a_pid_namespace_tree",
        Containment::PidNamespace,
    ) {
        return;
    }
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

/// Spawns `script` under cgroup containment with `ladder`; waits for its
/// "ready" line; returns the child and its leaf cgroup (as `/proc/PID/cgroup`
/// names it), every member tracked by the guard.
fn spawn_cgroup_tree(
    reaper: &mut Reaper,
    guard: &mut Guard,
    script: &str,
    ladder: StopLadder,
) -> (pidreap::Child, String) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script])
        .containment(Containment::Cgroup)
        .stop_ladder(ladder)
        .stdout(Stdio::piped());
    let mut child = reaper.spawn(&cmd).expect("spawning into a cgroup leaf");
    guard.track(child.pid());
    let mut out = Lines::new(child.stdout.take().unwrap());
    assert_eq!(out.line(LONG, "the tree's ready line"), "ready");
    let leaf = support::cgroup_of(child.pid()).expect("the child's cgroup");
    for pid in support::cgroup_members(&leaf) {
        guard.track(pid);
    }
    (child, leaf)
}

/// The directory of cgroup `path` (as `/proc/PID/cgroup` names it).
fn cgroup_dir(path: &str) -> String {
    format!(
        "{}{path}",
        support::cgroup2_mount().expect("a cgroup2 mount")
    )
}

#[test]
fn a_cgroup_child_is_born_in_a_leaf_of_its_own_and_its_usage_reported() {
    if !support::containment_or_skip(
        "a_cgroup_child_is_born_in_a_leaf_of_its_own_and_its_usage_reported",
        Containment::Cgroup,
    ) {
        return;
    }
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "cat /proc/self/cgroup; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
    ])
    .containment(Containment::Cgroup)
    .stdout(Stdio::piped());
    let mut child = reaper.spawn(&cmd).expect("spawning into a cgroup leaf");
    guard.track(child.pid());
    let text = Lines::new(child.stdout.take().unwrap()).rest(LONG, "the child's cgroups");
    let leaf = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line")
        .to_owned();
    let (home, name) = leaf.rsplit_once('/').unwrap();
    let home_name = home.rsplit('/').next().unwrap();
    assert!(
        home_name.starts_with(&format!("pidreap-{}-", std::process::id())) && name.starts_with('c'),
        "the child runs in {leaf}, not in a leaf below this reaper's home"
    );
    let exit = reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    assert!(exit.status.success(), "{}", exit.status);
    let tree = exit
        .tree
        .expect("a cgroup child's exit carries its tree's usage");
    assert!(tree.cpu_time > Duration::ZERO, "{tree:?}");
    assert!(tree.cpu_time >= tree.user_time, "{tree:?}");
    assert!(
        !Path::new(&cgroup_dir(&leaf)).exists(),
        "the leaf {leaf} is removed once the tree is reaped"
    );
    drop(reaper);
    assert!(
        !Path::new(&cgroup_dir(home)).exists(),
        "the home {home} is removed with the reaper"
    );
}

#[test]
fn stopping_a_cgroup_child_takes_its_whole_tree() {
    if !support::containment_or_skip(
        "stopping_a_cgroup_child_takes_its_whole_tree",
        Containment::Cgroup,
    ) {
        return;
    }
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let (child, leaf) = spawn_cgroup_tree(
        &mut reaper,
        &mut guard,
        TREE,
        StopLadder::new(Signal::TERM, Duration::from_millis(300)),
    );
    let before = support::cgroup_members(&leaf);
    assert!(
        before.len() >= 4,
        "the shell and its three sleeps run in the leaf: {before:?}"
    );
    let before: Vec<support::Proc> = before.into_iter().map(support::Proc::of).collect();
    reaper.stop(child.id()).unwrap();
    let exit = reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    // Everything ignores TERM: cgroup.kill ends it all.
    assert_eq!(exit.status.signal(), Some(Signal::KILL), "{}", exit.status);
    assert_eq!(
        support::cgroup_members(&leaf),
        Vec::<u32>::new(),
        "nothing of the tree outlives the exit report"
    );
    for p in before {
        assert!(p.is_dead(), "{} is still running", p.pid);
    }
    assert!(!Path::new(&cgroup_dir(&leaf)).exists());
}

#[test]
fn when_a_cgroup_child_exits_first_the_rest_of_its_tree_gets_the_ladder() {
    if !support::containment_or_skip(
        "when_a_cgroup_child_exits_first_the_rest_of_its_tree_gets_the_ladder",
        Containment::Cgroup,
    ) {
        return;
    }
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let grace = Duration::from_millis(300);
    let (child, leaf) = spawn_cgroup_tree(
        &mut reaper,
        &mut guard,
        "(trap '' TERM; exec sleep 1000) & setsid sleep 1000 & (sleep 1000 &); \
         sleep 0.2; echo ready; exit 3",
        StopLadder::new(Signal::TERM, grace),
    );
    let started = Instant::now();
    let exit = reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    assert_eq!(
        exit.status.code(),
        Some(3),
        "the child's own status is kept"
    );
    assert!(
        started.elapsed() >= grace - Duration::from_millis(50),
        "reported after {:?}, before the TERM-ignoring sleep could be SIGKILLed",
        started.elapsed()
    );
    assert_eq!(support::cgroup_members(&leaf), Vec::<u32>::new());
}

#[test]
fn dropping_the_reaper_kills_a_cgroup_tree() {
    if !support::containment_or_skip(
        "dropping_the_reaper_kills_a_cgroup_tree",
        Containment::Cgroup,
    ) {
        return;
    }
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let (_child, leaf) = spawn_cgroup_tree(&mut reaper, &mut guard, TREE, StopLadder::default());
    assert!(support::cgroup_members(&leaf).len() >= 4);
    drop(reaper);
    assert_eq!(support::cgroup_members(&leaf), Vec::<u32>::new());
    let home = leaf.rsplit_once('/').unwrap().0;
    assert!(!Path::new(&cgroup_dir(home)).exists(), "{home} was removed");
}

#[test]
fn a_thousand_process_cgroup_tree_is_stopped_whole() {
    if !support::containment_or_skip(
        "a_thousand_process_cgroup_tree_is_stopped_whole",
        Containment::Cgroup,
    ) {
        return;
    }
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let (child, leaf) = spawn_cgroup_tree(
        &mut reaper,
        &mut guard,
        "i=0; while [ $i -lt 999 ]; do sleep 1000 & i=$((i+1)); done; echo ready; wait",
        StopLadder::new(Signal::TERM, Duration::from_secs(5)),
    );
    support::wait_until(LONG, "1,000 processes in the leaf", || {
        support::cgroup_members(&leaf).len() >= 1000
    });
    let started = Instant::now();
    reaper.stop(child.id()).unwrap();
    let exit = reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    eprintln!(
        "1,000-process tree stopped (SIGTERM) and reported in {:?}",
        started.elapsed()
    );
    assert_eq!(exit.status.signal(), Some(Signal::TERM), "{}", exit.status);
    assert_eq!(support::cgroup_members(&leaf), Vec::<u32>::new());
}

#[test]
fn a_grandchild_forking_in_a_loop_is_killed_with_its_tree() {
    if !support::containment_or_skip(
        "a_grandchild_forking_in_a_loop_is_killed_with_its_tree",
        Containment::Cgroup,
    ) {
        return;
    }
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    // A TERM-ignoring grandchild that keeps forking (at most 2,000 times).
    let (child, leaf) = spawn_cgroup_tree(
        &mut reaper,
        &mut guard,
        "(trap '' TERM; i=0; while [ $i -lt 2000 ]; do sleep 1000 & i=$((i+1)); done; wait) & \
         sleep 0.1; echo ready; wait",
        StopLadder::new(Signal::TERM, Duration::from_millis(200)),
    );
    reaper.stop(child.id()).unwrap();
    let exit = reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    assert!(exit.status.signal().is_some(), "{}", exit.status);
    assert_eq!(support::cgroup_members(&leaf), Vec::<u32>::new());
}

/// With a process group, the leader dying of the ladder's SIGTERM does not
/// end the ladder: members that ignore SIGTERM get its SIGKILL, and the
/// exit is reported once they are gone.
#[test]
fn a_group_ladder_runs_to_the_end_when_the_leader_dies_first() {
    support::watchdog(WATCHDOG);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let grace = Duration::from_millis(300);
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "(trap '' TERM; exec sleep 1000) & echo $!; (trap '' TERM; exec sleep 1000) & echo $!; \
         sleep 0.1; echo ready; wait",
    ])
    .containment(Containment::ProcessGroup)
    .stop_ladder(StopLadder::new(Signal::TERM, grace))
    .stdout(Stdio::piped());
    let mut child = reaper.spawn(&cmd).expect("spawn");
    guard.track(child.pid());
    let mut out = Lines::new(child.stdout.take().unwrap());
    let members: Vec<u32> = (0..2)
        .map(|_| out.line(LONG, "a member's pid").parse().expect("a pid"))
        .collect();
    for &m in &members {
        guard.track(m);
    }
    assert_eq!(out.line(LONG, "the ready line"), "ready");
    let members: Vec<support::Proc> = members.into_iter().map(support::Proc::of).collect();
    let started = Instant::now();
    reaper.stop(child.id()).unwrap();
    let exit = reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    assert_eq!(
        exit.status.signal(),
        Some(Signal::TERM),
        "the shell died of SIGTERM"
    );
    assert!(
        started.elapsed() >= grace - Duration::from_millis(50),
        "reported after {:?}: before the members' SIGKILL",
        started.elapsed()
    );
    for m in members {
        support::wait_until(LONG, "a TERM-ignoring member is dead", || m.is_dead());
    }
}

/// A supervisor SIGKILLed between making its cgroups and starting its
/// sentinel leaves empty cgroups named after its pid; the next reaper that
/// makes its own removes them (and leaves a live process's alone).
#[test]
fn cgroups_left_by_a_dead_supervisor_are_removed() {
    if !support::containment_or_skip(
        "cgroups_left_by_a_dead_supervisor_are_removed",
        Containment::Cgroup,
    ) {
        return;
    }
    support::watchdog(WATCHDOG);
    let own = support::cgroup_of(std::process::id()).expect("our cgroup");
    let base = format!(
        "{}{}",
        support::cgroup2_mount().expect("a cgroup2 mount"),
        if own == "/" { "" } else { own.as_str() }
    );
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
    let stale = [
        format!("{base}/pidreap-{dead_pid}-7-ns{ns}"),
        format!("{base}/pidreap-probe-{dead_pid}-3-ns{ns}"),
    ];
    let live = format!("{base}/pidreap-1-77-ns{ns}");
    // A supervisor in another PID namespace (a container sharing our
    // cgroup): its pid is not ours to look up, however dead it looks here.
    let foreign = format!("{base}/pidreap-{dead_pid}-8-ns{}", ns + 1);
    for dir in stale.iter().chain([&live, &foreign]) {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::create_dir(format!("{}/c0", stale[0])).unwrap();
    let mut reaper = Reaper::new().unwrap();
    let mut cmd = Command::new("true");
    cmd.containment(Containment::Cgroup);
    let child = reaper.spawn(&cmd).unwrap();
    reaper
        .wait(child.id(), Some(LONG))
        .unwrap()
        .expect("reaped");
    let kept = Path::new(&live).exists();
    let _ = std::fs::remove_dir(&live);
    let kept_foreign = Path::new(&foreign).exists();
    let _ = std::fs::remove_dir(&foreign);
    assert!(kept, "{live} (pid 1 is alive) was removed");
    assert!(
        kept_foreign,
        "{foreign} (named in another PID namespace) was removed"
    );
    for dir in &stale {
        assert!(!Path::new(dir).exists(), "{dir} was left behind");
    }
}
