//! The public spawn primitive ([`pidreap::spawn`]) driven from a bare
//! epoll: 1,000 children at once, every one reaped through its pidfd, and
//! afterwards no zombie and the same fds as before.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pidreap::{Command, ExitStatus};
use rustix::event::epoll;

use crate::helpers::{assert_no_children_left, sh};
use crate::support::{self, Guard, LONG};

/// Spawns `n` children with [`pidreap::spawn`], registers their pidfds in
/// an epoll instance of the test's own, and reaps each when its pidfd is
/// readable. Each child exits with its index modulo 256, so a status that
/// went to the wrong child is caught.
pub(crate) fn thousand_children_in_a_bare_epoll(n: usize) {
    if crate::support::mode_skip("thousand_children_in_a_bare_epoll") {
        return;
    }
    pidreap::raise_fd_limit().unwrap();
    // Warm up: the thread's spawn stack exists before the count.
    let mut first = pidreap::spawn(&Command::new("true")).unwrap();
    assert_eq!(first.pidfd.wait().unwrap().status, ExitStatus::Exited(0));
    drop(first);
    let before = support::self_fds();

    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let mut guard = Guard::new();
    let mut children = HashMap::new();
    for i in 0..n {
        // Each waits for its stdin to close, so all 1,000 are alive at once.
        let mut cmd = sh(&format!("read _; exit {}", i % 256));
        cmd.stdin(pidreap::Stdio::piped());
        let child = pidreap::spawn(&cmd).unwrap_or_else(|e| panic!("spawn {i}: {e}"));
        guard.track(child.pid());
        epoll::add(
            &ep,
            &child.pidfd,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN,
        )
        .unwrap();
        children.insert(i as u64, child);
    }
    assert_eq!(support::own_children().len(), n, "all {n} alive at once");
    for child in children.values_mut() {
        drop(child.stdin.take());
    }

    let deadline = Instant::now() + LONG * 4;
    let mut events = Vec::with_capacity(256);
    let mut reaped = 0;
    while reaped < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {reaped} of {n} reaped in time");
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: 0,
        };
        events.clear();
        epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), Some(&ts)).unwrap();
        for ev in events.iter() {
            let i = ev.data.u64();
            let mut child = children.remove(&i).expect("one event per child");
            epoll::delete(&ep, &child.pidfd).unwrap();
            let r = child
                .pidfd
                .try_wait()
                .unwrap()
                .expect("readable pidfd means exited");
            assert_eq!(r.status, ExitStatus::Exited((i % 256) as i32), "child {i}");
            // Reaped once, reported the same ever after.
            assert_eq!(child.pidfd.try_wait().unwrap(), Some(r));
            assert!(!child.pidfd.send_signal(pidreap::Signal::TERM).unwrap());
            reaped += 1;
        }
    }
    drop(ep);
    // The guard's own pidfds go too (every child is reaped: it kills none).
    drop(guard);
    assert_no_children_left("after reaping 1,000 through a bare epoll");
    assert_eq!(support::self_fds(), before, "fds leaked");
}

/// Dropping an unreaped child's [`pidreap::PidFd`] kills and reaps it;
/// `into_raw_fd` hands the reaping over instead.
pub(crate) fn drop_kills_and_reaps() {
    if crate::support::mode_skip("drop_kills_and_reaps") {
        return;
    }
    let child = pidreap::spawn(Command::new("sleep").arg("60")).unwrap();
    let pid = child.pid();
    let mut guard = Guard::new();
    guard.track(pid);
    support::wait_exec(pid, "sleep");
    drop(child);
    assert_no_children_left("after dropping an unreaped PidFd");

    let child = pidreap::spawn(Command::new("sleep").arg("60")).unwrap();
    guard.track(child.pid());
    let pid = child.pid();
    let raw = std::os::fd::IntoRawFd::into_raw_fd(child.pidfd);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        support::state(pid),
        Some('S'),
        "still running after into_raw_fd"
    );
    // Ours now: kill and reap it by hand.
    // SAFETY: `raw` came from into_raw_fd just above and is closed once.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    rustix::process::pidfd_send_signal(&owned, rustix::process::Signal::KILL).unwrap();
    crate::runner::reap(pid, LONG);
    drop(owned);
    assert_no_children_left("after reaping the handed-over child");
}

/// An `AsyncReaper` on a current-thread tokio runtime reaps more children
/// than one `poll` handles (its event buffer holds 1,024) when they all
/// exit at once: every exit is reported, none waits for an unrelated
/// wake-up. (The wrapper keeps tokio's readiness while the reaper's epoll
/// still has events pending; Linux 6.18 also signals the nested epoll
/// again in that case, so this test passes without that check here.)
pub(crate) fn async_reaper_more_exits_than_one_poll(n: usize) {
    use pidreap::tokio::AsyncReaper;
    use pidreap::{Event, Reaper};

    pidreap::raise_fd_limit().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut reaper = AsyncReaper::new(Reaper::new().unwrap()).unwrap();
        let mut stdins = Vec::with_capacity(n);
        for i in 0..n {
            let mut cmd = sh("read _; exit 3");
            cmd.stdin(pidreap::Stdio::piped());
            let mut child = reaper
                .get_mut()
                .spawn(&cmd)
                .unwrap_or_else(|e| panic!("spawn {i}: {e}"));
            stdins.push(child.stdin.take().unwrap());
        }
        // All exit at once, and are all zombies before the first poll.
        drop(stdins);
        support::wait_until(LONG, "every child exited", || {
            support::own_children()
                .iter()
                .all(|&p| support::state(p) == Some('Z'))
        });
        let mut reaped = 0;
        while reaped < n {
            let ev = tokio::time::timeout(LONG, reaper.next_event())
                .await
                .unwrap_or_else(|_| panic!("only {reaped} of {n} reaped within {LONG:?}"))
                .unwrap();
            match ev {
                Event::Exited(exit) => assert_eq!(exit.status, ExitStatus::Exited(3)),
                other => panic!("unexpected event {other:?}"),
            }
            reaped += 1;
        }
        assert!(reaper.get_ref().is_empty());
    });
    assert_no_children_left("after the AsyncReaper reaped them all");
}
