//! A subreaper that reaps orphans reparented to it, without taking the
//! statuses of its supervised children.

use std::io::Write;
use std::time::Instant;

use pidreap::{Event, ExitStatus, Reaper, Stdio};

use crate::helpers::{assert_no_children_left, exit_of, sh};
use crate::support::{self, Guard, Lines, Proc, LONG};

/// A subreaper with `reap_orphans`: an orphan reparented here is reaped and
/// reported as `OrphanReaped` with its status, while supervised children
/// exiting at the same time keep their own statuses (none is reaped by the
/// orphan path and reported as `Unknown`).
pub(crate) fn orphans_reaped() {
    let mut guard = Guard::new();
    let mut reaper = Reaper::builder()
        .subreaper(true)
        .reap_orphans(true)
        .build()
        .unwrap();
    // A background job's stdin is /dev/null unless redirected: hand it
    // the pipe through fd 3. It exits 3 once it reads a line.
    let mut cmd = sh("exec 3<&0; sh -c 'read x; exit 3' <&3 3<&- >/dev/null 2>&1 & echo $!");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut parent = reaper.spawn(&cmd).unwrap();
    guard.track(parent.pid());
    let mut stdin = parent.stdin.take().unwrap();
    let orphan: u32 = Lines::new(parent.stdout.take().unwrap())
        .line(LONG, "the orphan's pid")
        .parse()
        .unwrap();
    guard.track(orphan);
    let orphan_proc = Proc::of(orphan);
    assert_eq!(
        exit_of(&mut reaper, parent.id()).status,
        ExitStatus::Exited(0)
    );
    support::wait_until(LONG, "the orphan is reparented here", || {
        orphan_proc
            .stat()
            .is_some_and(|s| s.ppid == std::process::id() as i32)
    });

    let mut ids = Vec::new();
    for _ in 0..20 {
        let c = reaper.spawn(&sh("exit 5")).unwrap();
        guard.track(c.pid());
        ids.push(c.id());
    }
    stdin.write_all(b"go\n").unwrap();
    let mut orphan_status = None;
    let mut exits = 0;
    let deadline = Instant::now() + LONG;
    while exits < ids.len() || orphan_status.is_none() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("all exits in time");
        match reaper.wait_event(Some(left)).unwrap() {
            Some(Event::Exited(e)) => {
                assert!(ids.contains(&e.id));
                assert_eq!(
                    e.status,
                    ExitStatus::Exited(5),
                    "a supervised child lost its status"
                );
                exits += 1;
            }
            Some(Event::OrphanReaped { pid, status }) => {
                assert_eq!(pid, orphan, "an unexpected orphan");
                orphan_status = Some(status);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(orphan_status, Some(ExitStatus::Exited(3)));
    assert!(orphan_proc.is_gone());
    assert!(reaper.is_empty());
    assert_no_children_left("after the orphan test");
}

/// A subreaper's orphans that live in a contained child's cgroup get the
/// child's stop ladder: an orphan that ignores SIGTERM, reparented here, is
/// killed with the tree and reaped as an orphan, and the child is reported
/// once the tree is empty.
pub(crate) fn orphans_in_a_cgroup_tree_get_the_ladder() {
    if !support::containment_or_skip(
        "orphans_in_a_cgroup_tree_get_the_ladder",
        pidreap::Containment::Cgroup,
    ) {
        return;
    }
    let mut guard = Guard::new();
    let mut reaper = Reaper::builder()
        .subreaper(true)
        .reap_orphans(true)
        .build()
        .unwrap();
    let mut cmd = sh(
        "sh -c '(trap \"\" TERM; exec sleep 1000) & echo $!' >&2 2>&1; sleep 0.1; echo ready; exec sleep 1000",
    );
    cmd.containment(pidreap::Containment::Cgroup)
        .stop_ladder(pidreap::StopLadder::new(
            pidreap::Signal::TERM,
            std::time::Duration::from_millis(200),
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = reaper.spawn(&cmd).unwrap();
    guard.track(child.pid());
    let orphan: u32 = Lines::new(child.stderr.take().unwrap())
        .line(LONG, "the orphan's pid")
        .parse()
        .unwrap();
    guard.track(orphan);
    assert_eq!(
        Lines::new(child.stdout.take().unwrap()).line(LONG, "ready"),
        "ready"
    );
    let orphan_proc = Proc::of(orphan);
    support::wait_until(LONG, "the orphan is reparented here", || {
        orphan_proc
            .stat()
            .is_some_and(|s| s.ppid == std::process::id() as i32)
    });
    reaper.stop(child.id()).unwrap();
    let mut orphan_status = None;
    let mut exit = None;
    let deadline = Instant::now() + LONG;
    // The tree counts as empty once the orphan is a zombie, so its reap
    // may come just before or just after the child's report.
    while exit.is_none() || orphan_status.is_none() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("the tree stopped and the orphan was reaped in time");
        match reaper.wait_event(Some(left)).unwrap() {
            Some(Event::Exited(e)) => exit = Some(e),
            Some(Event::OrphanReaped { pid, status }) => {
                assert_eq!(pid, orphan, "an unexpected orphan");
                orphan_status = Some(status);
            }
            // The child itself (its `sleep`) dies of SIGTERM first; the
            // orphan keeps the tree alive until the ladder's SIGKILL.
            Some(Event::LeaderExited { id, .. }) => assert_eq!(id, child.id()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        orphan_status.and_then(ExitStatus::signal),
        Some(pidreap::Signal::KILL),
        "the TERM-ignoring orphan was SIGKILLed with the tree"
    );
    assert!(orphan_proc.is_gone());
    let exit = exit.unwrap();
    assert_eq!(
        exit.status.signal(),
        Some(pidreap::Signal::TERM),
        "{}",
        exit.status
    );
    drop(reaper);
    assert_no_children_left("after the contained orphan test");
}

/// A storm of queued signals, sent faster than they are read, cannot keep
/// the loop from a child's exit: the reaper reads a bounded number of
/// signals per poll, so the child's exit is seen while the storm goes on.
pub(crate) fn signal_storm_does_not_hide_an_exit() {
    let rt = pidreap::Signal::from_raw(40).expect("a real-time signal");
    pidreap::block_signals(&[rt]).unwrap();
    let mut reaper = Reaper::builder().handle_signals(&[rt]).build().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let me = rustix::process::getpid();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // SAFETY: kill with our own pid and a signal number; the
                    // signal is blocked in every thread (blocked before they
                    // were made), so it only queues for the signalfd.
                    unsafe { libc::kill(me.as_raw_nonzero().get(), 40) };
                }
            })
        })
        .collect();
    // Let the queue fill up first.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut guard = Guard::new();
    let child = reaper.spawn(&sh("exit 3")).unwrap();
    guard.track(child.pid());
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    let mut signals = 0u64;
    let status = loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            panic!("the child's exit was not seen within 5 s of a storm ({signals} signals read)");
        };
        match reaper.wait_event(Some(left)).unwrap() {
            Some(Event::Exited(e)) => break e.status,
            Some(Event::Signal { .. }) => signals += 1,
            other => panic!("unexpected {other:?}"),
        }
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(status, ExitStatus::Exited(3));
    eprintln!("exit seen after {signals} signals");
}
