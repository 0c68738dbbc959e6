//! Idle cost (issue 4, target 5): with live children and no deadline
//! pending, the supervisor makes no system calls and is never woken. Each
//! supervisor runs on its own thread with N live children and idles for
//! 5 s; the figure is its thread's context switches (from
//! /proc/thread-self/status), its read/write-class syscalls (from
//! /proc/thread-self/io) and how often its wait returned early.
//!
//! The one blocking `epoll_wait` itself shows as 1 voluntary switch.
//! To see every syscall instead: `strace -c -f` on the bench binary, e.g.
//!
//! ```text
//! cargo bench --bench idle --no-run      # prints the binary's path
//! strace -f -c -o /tmp/idle.strace target/release/deps/idle-HASH
//! ```
//!
//! or `strace -f -tt -e trace=epoll_wait,epoll_pwait,timerfd_settime -p PID`
//! on a running supervisor.
//!
//! `cargo bench --bench idle`. Environment: `PIDREAP_BENCH_IDLE_SECS` (5),
//! `PIDREAP_BENCH_IDLE_CHILDREN` (100).

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    voluntary: u64,
    involuntary: u64,
    syscr: u64,
    syscw: u64,
}

fn counters() -> Counters {
    Counters {
        voluntary: status_field("/proc/thread-self/status", "voluntary_ctxt_switches:"),
        involuntary: status_field("/proc/thread-self/status", "nonvoluntary_ctxt_switches:"),
        syscr: status_field("/proc/thread-self/io", "syscr:"),
        syscw: status_field("/proc/thread-self/io", "syscw:"),
    }
}

#[derive(Debug)]
struct Idle {
    name: &'static str,
    delta: Counters,
    returns: u64,
    elapsed: Duration,
}

fn measure(name: &'static str, start: &Barrier, idle: impl FnOnce(Instant) -> u64) -> Idle {
    // Reading /proc itself makes read syscalls: calibrate that away.
    let c0 = counters();
    let c1 = counters();
    let (cr, cw) = (c1.syscr - c0.syscr, c1.syscw - c0.syscw);
    start.wait();
    let before = counters();
    let t0 = Instant::now();
    let returns = idle(t0);
    let elapsed = t0.elapsed();
    let after = counters();
    Idle {
        name,
        delta: Counters {
            voluntary: after.voluntary - before.voluntary,
            involuntary: after.involuntary - before.involuntary,
            syscr: (after.syscr - before.syscr).saturating_sub(cr),
            syscw: (after.syscw - before.syscw).saturating_sub(cw),
        },
        returns,
        elapsed,
    }
}

fn main() {
    let secs = env_usize("PIDREAP_BENCH_IDLE_SECS", 5) as u64;
    let n = env_usize("PIDREAP_BENCH_IDLE_CHILDREN", 100);
    let span = Duration::from_secs(secs);
    if !ensure_fds(3 * n as u64 + 256) {
        return;
    }
    banner("idle cost");
    println!("{n} live children per supervisor, no deadline pending, {secs} s idle, each supervisor on its own thread");
    let start = Arc::new(Barrier::new(3));

    let b = start.clone();
    let pidreap = std::thread::spawn(move || {
        // The reaper lives and dies on this thread (PDEATHSIG is per thread).
        let mut reaper = pidreap::Reaper::new().expect("reaper");
        for _ in 0..n {
            reaper.spawn(&pidreap_sleeper()).expect("spawn");
        }
        let r = measure("pidreap: Reaper::poll(Some(5 s))", &b, |t0| {
            let mut returns = 0;
            while let Some(left) = span.checked_sub(t0.elapsed()) {
                if left.is_zero() {
                    break;
                }
                reaper.poll(Some(left)).expect("poll");
                returns += 1;
                assert!(reaper.next_event().is_none(), "no child should exit");
            }
            returns
        });
        pidreap_kill_all(&mut reaper, Duration::from_secs(10));
        r
    });

    let b = start.clone();
    let raw = std::thread::spawn(move || {
        let mut lp = raw_loop();
        for _ in 0..n {
            lp.spawn_sleeper().expect("spawn");
        }
        let r = measure("raw pidfd+epoll loop: epoll_wait(5 s)", &b, |t0| {
            let mut returns = 0;
            while let Some(left) = span.checked_sub(t0.elapsed()) {
                if left.is_zero() {
                    break;
                }
                assert!(lp.poll(left).expect("poll").is_empty());
                returns += 1;
            }
            returns
        });
        lp.kill_all(Duration::from_secs(10));
        r
    });

    let b = start.clone();
    let tokio = std::thread::spawn(move || {
        let rt = tokio_rt();
        let mut bg = Vec::new();
        {
            let _g = rt.enter();
            for _ in 0..n {
                bg.push(
                    tokio::process::Command::new(SLEEP)
                        .arg(SLEEP_SECS)
                        .kill_on_drop(true)
                        .spawn()
                        .expect("spawn"),
                );
            }
        }
        let r = measure("tokio current-thread: block_on(sleep(5 s))", &b, |t0| {
            rt.block_on(async { tokio::time::sleep_until((t0 + span).into()).await });
            1
        });
        tokio_kill_all(&rt, &mut bg);
        r
    });

    let results = [
        pidreap.join().expect("pidreap thread"),
        raw.join().expect("raw thread"),
        tokio.join().expect("tokio thread"),
    ];
    let widths = [44, 10, 10, 8, 8, 14, 10];
    row(
        &[
            "supervisor thread",
            "vol. cs",
            "invol. cs",
            "syscr",
            "syscw",
            "wait returns",
            "elapsed",
        ]
        .map(String::from),
        &widths,
    );
    for r in &results {
        row(
            &[
                r.name.to_string(),
                r.delta.voluntary.to_string(),
                r.delta.involuntary.to_string(),
                r.delta.syscr.to_string(),
                r.delta.syscw.to_string(),
                r.returns.to_string(),
                format!("{:.2} s", r.elapsed.as_secs_f64()),
            ],
            &widths,
        );
    }
    let me = &results[0];
    // One voluntary switch is the blocking wait itself; one return is its
    // timeout. Anything more is a wake-up.
    let wakeups = me.delta.voluntary.saturating_sub(1) + me.returns.saturating_sub(1);
    println!();
    println!(
        "targets:\n  target 5, idle {secs} s with {n} live children: pidreap woke {wakeups} times, made {} read/write \
         syscalls, and 1 epoll_wait (the wait itself): {}",
        me.delta.syscr + me.delta.syscw,
        verdict(wakeups == 0 && me.delta.syscr + me.delta.syscw == 0)
    );
}
