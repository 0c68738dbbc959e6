//! A supervisor that dies: its children get the death signal (or none, if
//! turned off), even when it dies between clone and `PR_SET_PDEATHSIG`.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use crate::helpers::{assert_no_children_left, reap_all_children};
use crate::roles::{start_helper, start_helper_with, DELAY};
use crate::runner::{reap, set_subreaper, wait_std};
use crate::support::{self, Guard, Lines, Proc, LONG};

/// A helper that supervises four workers is SIGKILLed: every worker is dead
/// within a second of the helper's death, `rounds` times in a row. This
/// process is a subreaper, so the workers are reparented here and their
/// statuses can be checked: SIGKILL, the death signal.
pub(crate) fn sigkilled_supervisor(fallback: bool, rounds: usize) {
    set_subreaper();
    for round in 0..rounds {
        let mut guard = Guard::new();
        let mut helper = start_helper("workers", fallback);
        guard.track(helper.id());
        let mut out = Lines::new(helper.stdout.take().unwrap());
        let workers = read_workers(&mut out, &mut guard);
        assert_eq!(workers.len(), 4);
        for w in &workers {
            let st = w.stat().unwrap();
            assert_eq!(
                (st.comm.as_str(), st.ppid),
                ("sleep", helper.id() as i32),
                "round {round}"
            );
        }
        helper.kill().unwrap();
        assert_eq!(wait_std(&mut helper, LONG).signal(), Some(libc::SIGKILL));
        let died = Instant::now();
        support::wait_until(
            Duration::from_secs(1),
            &format!("round {round}: every worker is dead"),
            || workers.iter().all(Proc::is_dead),
        );
        let took = died.elapsed();
        for w in &workers {
            let status = reap(w.pid, LONG);
            assert_eq!(
                std::process::ExitStatus::from_raw(status).signal(),
                Some(libc::SIGKILL),
                "round {round}: worker {} did not die of the death signal",
                w.pid
            );
        }
        assert_no_children_left(&format!("round {round}"));
        eprintln!("round {round}: workers dead within {took:?} of the helper");
    }
}

/// The helper is SIGKILLed while its child sleeps between clone and
/// PR_SET_PDEATHSIG (the `pidreap::testing::setup_delay` test hook). After
/// prctl the child sees that its parent changed and exits with 126 by
/// itself, without ever running `sleep 30`. This process is a subreaper, so it inherits the
/// child and reads that status.
pub(crate) fn dies_before_prctl(fallback: bool) {
    set_subreaper();
    let mut guard = Guard::new();
    let mut helper = start_helper("delayed", fallback);
    guard.track(helper.id());
    let mut out = Lines::new(helper.stdout.take().unwrap());
    assert_eq!(out.line(LONG, "\"spawning\""), "spawning");
    let child = Proc::of(delayed_child(helper.id()));
    guard.track(child.pid);
    assert_ne!(
        child.stat().unwrap().comm,
        "sleep",
        "the child exec'd before its setup delay"
    );

    helper.kill().unwrap();
    wait_std(&mut helper, LONG);
    let killed = Instant::now();
    // It is ours now (subreaper); it must end by itself, never as `sleep`.
    loop {
        let st = child
            .stat()
            .expect("our child cannot vanish before we reap it");
        assert_ne!(
            st.comm, "sleep",
            "the child ran the program after its parent died"
        );
        if st.state == 'Z' {
            break;
        }
        assert!(
            killed.elapsed() < DELAY + Duration::from_secs(5),
            "the orphaned child is still running {:?} after its parent died: {st:?}",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = std::process::ExitStatus::from_raw(reap(child.pid, LONG));
    assert_eq!(
        status.code(),
        Some(126),
        "the child should exit 126 (parent died before prctl): {status:?}"
    );
    assert_no_children_left("after the orphan test");
}

/// The helper's child that sleeps in its setup delay. The first child seen
/// is not always that one: where the kernel refuses a spawn path, the
/// spawner's first clone fails in the child, which exits (127) and is
/// reaped, and the spawner clones again on the next path (under the
/// `docker` sandbox, `CLONE_FILES` without `close_range`). So this waits
/// for a child asleep, then checks 100 ms later (well inside the 2 s delay)
/// that it is still the helper's only child and still asleep.
fn delayed_child(helper: u32) -> u32 {
    let asleep = |pid: u32| support::state(pid) == Some('S');
    let mut found = 0;
    support::wait_until(LONG, "the helper's child sleeps in its setup delay", || {
        let kids = support::children_of(helper);
        let [kid] = kids[..] else { return false };
        if !asleep(kid) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
        found = kid;
        support::children_of(helper) == [kid] && asleep(kid)
    });
    found
}

/// Reads what a tree helper's stdout carries: the child's pid, printed by
/// the helper, and `tree_lines`, printed in that order by the tree itself.
/// Both write to the same pipe, so under load the tree's lines may come
/// before the pid. Returns the pid.
#[track_caller]
fn tree_pid(out: &mut Lines<std::process::ChildStdout>, tree_lines: &[&str], round: usize) -> u32 {
    let mut lines: Vec<String> = (0..=tree_lines.len())
        .map(|_| out.line(LONG, "the helper's and the tree's lines"))
        .collect();
    let pid_at = lines
        .iter()
        .position(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("round {round}: no pid among {lines:?}"));
    let pid = lines.remove(pid_at).parse().expect("a pid");
    assert_eq!(lines, tree_lines, "round {round}: the tree's lines");
    pid
}

/// Reads the pids the "workers" helper prints, up to its "ready" line,
/// tracking each in `guard`.
fn read_workers(out: &mut Lines<std::process::ChildStdout>, guard: &mut Guard) -> Vec<Proc> {
    let mut workers = Vec::new();
    loop {
        let line = out.line(LONG, "a worker pid or \"ready\"");
        if line == "ready" {
            return workers;
        }
        let pid: u32 = line
            .parse()
            .unwrap_or_else(|_| panic!("not a pid: {line:?}"));
        guard.track(pid);
        workers.push(Proc::of(pid));
    }
}

/// Starts the "workers" helper, reads its workers' pids, SIGKILLs it and
/// reaps it. The workers are then ours (this process is a subreaper).
fn workers_of_killed_helper(death_signal: &str, guard: &mut Guard) -> Vec<Proc> {
    let mut helper = start_helper_with("workers", false, Some(death_signal));
    guard.track(helper.id());
    let mut out = Lines::new(helper.stdout.take().unwrap());
    let workers = read_workers(&mut out, guard);
    helper.kill().unwrap();
    wait_std(&mut helper, LONG);
    workers
}

/// `death_signal(Some(TERM))`: workers die of SIGTERM with their
/// supervisor. `death_signal(None)`: they outlive it, untouched.
pub(crate) fn death_signal_options() {
    set_subreaper();
    let mut guard = Guard::new();
    let workers = workers_of_killed_helper("TERM", &mut guard);
    for w in &workers {
        let status = std::process::ExitStatus::from_raw(reap(w.pid, LONG));
        assert_eq!(
            status.signal(),
            Some(libc::SIGTERM),
            "worker {}: {status:?}",
            w.pid
        );
    }

    let workers = workers_of_killed_helper("none", &mut guard);
    // The death signal is sent while the parent exits, before it can be
    // reaped: had one been set, it would be pending or acted on by now.
    for w in &workers {
        let st = w.stat().expect("the worker should outlive its supervisor");
        assert_eq!(
            (st.comm.as_str(), st.ppid),
            ("sleep", std::process::id() as i32)
        );
        assert_ne!(st.state, 'Z', "worker {} died with its supervisor", w.pid);
        assert_eq!(
            support::sig_field(w.pid, "SigPnd") | support::sig_field(w.pid, "ShdPnd"),
            0
        );
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(unsafe { libc::kill(w.pid as i32, libc::SIGUSR1) }, 0);
        let status = std::process::ExitStatus::from_raw(reap(w.pid, LONG));
        assert_eq!(
            status.signal(),
            Some(libc::SIGUSR1),
            "worker {}: {status:?}",
            w.pid
        );
    }
    assert_no_children_left("after the death signal tests");
}

/// A helper supervising a tree in a new PID namespace is SIGKILLed: within
/// a second nothing of the tree is alive (the child dies of its death
/// signal, the kernel kills the rest of the namespace with it), `rounds`
/// times in a row. `unprivileged`: the helper runs as `nobody`, without
/// `CAP_SYS_ADMIN`, so the namespace is made inside a new user namespace
/// where the child keeps the helper's uid.
pub(crate) fn sigkilled_supervisor_takes_its_pidns_tree(rounds: usize, unprivileged: bool) {
    let test = "sigkilled_supervisor_takes_its_pidns_tree";
    if !support::containment_or_skip(test, pidreap::Containment::PidNamespace) {
        return;
    }
    if unprivileged {
        if let Some(reason) = unprivileged_userns_refused() {
            support::skip(test, &reason);
            return;
        }
    }
    set_subreaper();
    for round in 0..rounds {
        let mut guard = Guard::new();
        let mut helper = if unprivileged {
            crate::roles::start_helper_as_nobody("pidns-tree-unprivileged")
        } else {
            start_helper("pidns-tree", false)
        };
        guard.track(helper.id());
        let mut out = Lines::new(helper.stdout.take().unwrap());
        // Unprivileged, the child runs as nobody, as PID 1 of its namespace.
        let tree_lines: &[&str] = if unprivileged {
            &["65534 1", "ready"]
        } else {
            &["ready"]
        };
        let child = tree_pid(&mut out, tree_lines, round);
        guard.track(child);
        if unprivileged {
            let own_userns = std::fs::read_link("/proc/self/ns/user").unwrap();
            let child_userns = std::fs::read_link(format!("/proc/{child}/ns/user")).unwrap();
            assert_ne!(
                own_userns, child_userns,
                "round {round}: a new user namespace"
            );
        }
        let ns = support::pid_ns(child).expect("the tree's namespace");
        let before = support::ns_members(&ns);
        for pid in &before {
            guard.track(*pid);
        }
        assert!(before.len() >= 4, "round {round}: tree {before:?}");
        helper.kill().unwrap();
        assert_eq!(wait_std(&mut helper, LONG).signal(), Some(libc::SIGKILL));
        support::wait_until(
            Duration::from_secs(1),
            &format!("round {round}: nothing of the namespace is alive"),
            || support::ns_members(&ns).is_empty(),
        );
        let status = reap(child, LONG);
        assert_eq!(
            std::process::ExitStatus::from_raw(status).signal(),
            Some(libc::SIGKILL),
            "round {round}: the tree's init did not die of the death signal"
        );
    }
    reap_all_children("after the pidns rounds");
    assert_no_children_left("after the pidns rounds");
}

/// Every live (non-zombie) process below this one in the process tree.
fn live_descendants() -> Vec<(u32, support::Stat)> {
    let me = std::process::id() as i32;
    let procs = support::all_procs();
    let parent_of: std::collections::HashMap<i32, i32> =
        procs.iter().map(|(p, st)| (*p as i32, st.ppid)).collect();
    procs
        .into_iter()
        .filter(|(pid, st)| {
            if st.state == 'Z' {
                return false;
            }
            let mut at = *pid as i32;
            for _ in 0..64 {
                match parent_of.get(&at) {
                    Some(&pp) if pp == me => return true,
                    Some(&pp) if pp > 1 => at = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

/// [`sigkilled_supervisor_takes_its_pidns_tree`] with cgroup containment:
/// the helper's child is in a cgroup of its own; after the helper's
/// SIGKILL its sentinel kills that cgroup, so nothing of the tree, the
/// `setsid` and double-forked sleeps included, is alive a second later,
/// and the helper's cgroups are removed.
pub(crate) fn sigkilled_supervisor_takes_its_cgroup_tree(rounds: usize) {
    if !support::containment_or_skip(
        "sigkilled_supervisor_takes_its_cgroup_tree",
        pidreap::Containment::Cgroup,
    ) {
        return;
    }
    set_subreaper();
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        let mut guard = Guard::new();
        let mut helper = start_helper("cgroup-tree", false);
        guard.track(helper.id());
        let mut out = Lines::new(helper.stdout.take().unwrap());
        let child = tree_pid(&mut out, &["ready"], round);
        guard.track(child);
        let leaf = support::cgroup_of(child).expect("the child's cgroup");
        let home = leaf
            .rsplit_once('/')
            .expect("a leaf below a home")
            .0
            .to_owned();
        assert!(
            home.rsplit('/')
                .next()
                .unwrap()
                .starts_with(&format!("pidreap-{}-", helper.id())),
            "round {round}: the child's cgroup {leaf} is not below the helper's home"
        );
        let before = support::cgroup_members(&leaf);
        for pid in &before {
            guard.track(*pid);
        }
        assert!(before.len() >= 4, "round {round}: tree {before:?}");
        helper.kill().unwrap();
        let killed = Instant::now();
        assert_eq!(wait_std(&mut helper, LONG).signal(), Some(libc::SIGKILL));
        support::wait_until(
            Duration::from_secs(1),
            &format!("round {round}: nothing of the cgroup is alive"),
            || support::cgroup_members(&home).is_empty(),
        );
        slowest = slowest.max(killed.elapsed());
        let dir = format!(
            "{}{home}",
            support::cgroup2_mount().expect("a cgroup2 mount")
        );
        support::wait_until(
            Duration::from_secs(2),
            &format!("round {round}: the sentinel removed {dir}"),
            || !std::path::Path::new(&dir).exists(),
        );
        reap_all_children(&format!("round {round}"));
    }
    assert_no_children_left("after the cgroup rounds");
    eprintln!("cgroup: tree dead within {slowest:?} of the supervisor's SIGKILL in each of {rounds} rounds");
}

/// A helper spawns small trees (background, `setsid`, double fork) under
/// `containment` back to back and is SIGKILLed 0 to 3 ms after its first
/// spawn, so the kill often lands inside a spawn: nothing below it is
/// alive a second later, `rounds` times in a row. Prints the count.
pub(crate) fn sigkilled_supervisor_mid_spawn(containment: &str, rounds: usize) {
    let mechanism = match containment {
        "cgroup" => pidreap::Containment::Cgroup,
        _ => pidreap::Containment::PidNamespace,
    };
    if !support::containment_or_skip("sigkilled_supervisor_mid_spawn", mechanism) {
        return;
    }
    set_subreaper();
    for round in 0..rounds {
        let mut guard = Guard::new();
        let mut helper = start_helper(&format!("storm-{containment}"), false);
        guard.track(helper.id());
        let mut out = Lines::new(helper.stdout.take().unwrap());
        assert_eq!(out.line(LONG, "the helper's first spawn"), "started");
        std::thread::sleep(Duration::from_micros((round as u64 * 7919) % 3000));
        helper.kill().unwrap();
        assert_eq!(wait_std(&mut helper, LONG).signal(), Some(libc::SIGKILL));
        let mut survivors = Vec::new();
        // The sentinel itself is not part of the tree: it exits once it
        // has killed the tree and removed the cgroups, which under load
        // may take longer than the tree's death; reap_all_children below
        // waits for it (bounded).
        let clean = (0..100).any(|_| {
            survivors = live_descendants();
            survivors.retain(|(_, st)| st.comm != "pidreap-sentine");
            for (pid, _) in &survivors {
                guard.track(*pid);
            }
            survivors.is_empty() || {
                std::thread::sleep(Duration::from_millis(10));
                false
            }
        });
        assert!(
            clean,
            "round {round}: alive 1 s after the supervisor's SIGKILL: {survivors:?}"
        );
        reap_all_children(&format!("round {round}"));
    }
    assert_no_children_left(&format!("after the {containment} rounds"));
    eprintln!("{containment}: 0 survivors in {rounds} trials");
}

/// Someone SIGKILLs the cgroup sentinel: the reaper reports
/// `ContainmentLost` with the sentinel's pid and status, and a graceful
/// stop still takes the whole tree.
pub(crate) fn killed_sentinel_is_reported() {
    if !support::containment_or_skip("killed_sentinel_is_reported", pidreap::Containment::Cgroup) {
        return;
    }
    // The tree's orphans are reparented here, to be reaped.
    set_subreaper();
    let mut guard = Guard::new();
    let mut reaper = pidreap::Reaper::new().unwrap();
    let mut cmd = pidreap::Command::new("sh");
    cmd.args(["-c", crate::roles::TREE])
        .containment(pidreap::Containment::Cgroup)
        .stop_ladder(pidreap::StopLadder::new(
            pidreap::Signal::TERM,
            Duration::from_millis(200),
        ))
        .stdout(pidreap::Stdio::piped());
    let mut child = reaper.spawn(&cmd).unwrap();
    guard.track(child.pid());
    assert_eq!(
        Lines::new(child.stdout.take().unwrap()).line(LONG, "ready"),
        "ready"
    );
    let sentinels: Vec<u32> = support::own_children()
        .into_iter()
        .filter(|&p| support::stat(p).is_some_and(|s| s.comm == "pidreap-sentine"))
        .collect();
    assert_eq!(sentinels.len(), 1, "one sentinel per reaper: {sentinels:?}");
    let sentinel = sentinels[0];
    // SAFETY: kill takes two integers; the sentinel is our unreaped child.
    assert_eq!(unsafe { libc::kill(sentinel as i32, libc::SIGKILL) }, 0);
    match reaper.wait_event(Some(LONG)).unwrap() {
        Some(pidreap::Event::ContainmentLost { pid, status }) => {
            assert_eq!(pid, sentinel);
            assert_eq!(status.signal(), Some(pidreap::Signal::KILL));
        }
        other => panic!("expected ContainmentLost, got {other:?}"),
    }
    let leaf = support::cgroup_of(child.pid()).unwrap();
    reaper.stop(child.id()).unwrap();
    let exit = crate::helpers::exit_of(&mut reaper, child.id());
    assert_eq!(exit.status.signal(), Some(pidreap::Signal::KILL));
    assert_eq!(support::cgroup_members(&leaf), Vec::<u32>::new());
    drop(reaper);
    crate::helpers::reap_all_children("after the sentinel test");
    assert_no_children_left("after the sentinel test");
}

/// Why a user without privileges cannot make a user namespace here, if a
/// sysctl says so: `user.max_user_namespaces` 0, Debian's
/// `kernel.unprivileged_userns_clone` 0, or Ubuntu's
/// `kernel.apparmor_restrict_unprivileged_userns` 1.
fn unprivileged_userns_refused() -> Option<String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|v| v.trim().to_owned())
    };
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some("user.max_user_namespaces is 0".into());
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some("kernel.unprivileged_userns_clone is 0".into());
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some("kernel.apparmor_restrict_unprivileged_userns is 1".into());
    }
    None
}
