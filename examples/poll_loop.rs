//! A [`Reaper`] nested in a plain `epoll` loop of the caller's own (as a
//! game engine's or a C library's loop would hold it): the reaper's fd is
//! readable whenever it has work; `poll(Some(Duration::ZERO))` does it,
//! and `next_event` hands out what it found. Once `next_event` says `None`,
//! the reaper holds no fd for a child it reported.
//!
//! Run: `cargo run --example poll_loop`. It checks what it prints and exits
//! non-zero if anything is off.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use pidreap::{Command, Event, ExitStatus, Reaper, Signal};
use rustix::event::epoll;

const CHILDREN: usize = 50;
const REAPER: u64 = 1;

fn main() -> pidreap::Result<()> {
    let mut reaper = Reaper::new()?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll_create1");
    epoll::add(
        &ep,
        reaper.as_fd(),
        epoll::EventData::new_u64(REAPER),
        epoll::EventFlags::IN,
    )
    .expect("adding the reaper's fd to the epoll");

    let fds_before = open_fds();
    let mut expected = HashMap::new();
    for i in 0..CHILDREN {
        if i % 10 == 9 {
            let child = reaper.spawn(Command::new("sleep").arg("60"))?;
            reaper.signal(child.id(), Signal::INT)?;
            expected.insert(
                child.id(),
                ExitStatus::Signaled {
                    signal: Signal::INT,
                    core_dumped: false,
                },
            );
        } else {
            let code = (i % 7) as i32;
            let child = reaper.spawn(Command::new("sh").args(["-c", &format!("exit {code}")]))?;
            expected.insert(child.id(), ExitStatus::Exited(code));
        }
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = Vec::with_capacity(8);
    let mut reaped = 0;
    while reaped < CHILDREN {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {reaped} of {CHILDREN} reaped within 30 s"
        );
        let timeout = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: 0,
        };
        events.clear();
        match epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("epoll_wait: {e}"),
        }
        for ev in &events {
            assert_eq!(ev.data.u64(), REAPER);
            reaper.poll(Some(Duration::ZERO))?;
            while let Some(event) = reaper.next_event() {
                match event {
                    Event::Exited(exit) => {
                        let want = expected.remove(&exit.id).expect("a child of ours, once");
                        assert_eq!(exit.status, want, "child {} (pid {})", exit.id, exit.pid);
                        reaped += 1;
                    }
                    other => panic!("unexpected event: {other:?}"),
                }
            }
        }
    }
    assert!(expected.is_empty() && reaper.is_empty());
    assert_eq!(open_fds(), fds_before, "fds after every event was taken");
    let n = std::fs::read_dir("/proc/self/task")
        .expect("reading /proc/self/task")
        .count();
    assert_eq!(n, 1, "one thread");
    println!("poll_loop: {reaped} children reaped, statuses right, no fd left, {n} thread");
    Ok(())
}

/// How many fds this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("reading /proc/self/fd")
        .count()
}
