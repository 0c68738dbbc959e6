//! The cost of no-pidfd mode (issue 11): kill-to-reap of one child while
//! N others are supervised by the same `Reaper`, on the pidfd path and in
//! no-pidfd mode (SIGCHLD + `waitid(P_PID, WNOHANG)` per pid-only child),
//! each in its own process since the mode is process-wide.
//!
//! `cargo bench --bench no_pidfd`; `PIDREAP_BENCH_CHILDREN=0,1000`,
//! `PIDREAP_BENCH_ROUNDS=N` (default 200). SIGCHLD is blocked at the top of
//! `main`, as the crate docs advise, so no thread takes it from the
//! reaper's signalfd.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pidreap::{Command, Reaper, Signal, Stdio};

const MODE_VAR: &str = "PIDREAP_TEST_SPAWN_MODE";

fn main() {
    let children: Vec<usize> = std::env::var("PIDREAP_BENCH_CHILDREN")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| n.trim().parse().expect("a count"))
                .collect()
        })
        .unwrap_or_else(|| vec![0, 1000]);
    let rounds: usize = std::env::var("PIDREAP_BENCH_ROUNDS")
        .ok()
        .map_or(200, |v| v.parse().expect("a count"));
    if std::env::var_os(MODE_VAR).is_some() {
        pidreap::block_signals(&[Signal::CHLD]).unwrap();
        for &n in &children {
            measure(n, rounds);
        }
        return;
    }
    println!("kill-to-reap of one child, µs ({rounds} rounds; other live children supervised by the same Reaper)");
    println!(
        "{:<52} {:>6} {:>9} {:>9} {:>9}",
        "mode", "others", "p50", "p99", "max"
    );
    for mode in ["fast", "no-pidfd"] {
        let exe = std::env::current_exe().unwrap();
        let status = std::process::Command::new(exe)
            .env(MODE_VAR, mode)
            .env(
                "PIDREAP_BENCH_CHILDREN",
                children
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .env("PIDREAP_BENCH_ROUNDS", rounds.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "the {mode} run failed");
    }
}

fn sleeper() -> Command {
    let mut cmd = Command::new(SLEEP);
    cmd.arg("600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn measure(others: usize, rounds: usize) {
    pidreap::raise_fd_limit().unwrap();
    let mut reaper = Reaper::new().unwrap();
    for _ in 0..others {
        reaper.spawn(&sleeper()).unwrap();
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let child = reaper.spawn(&sleeper()).unwrap();
        std::thread::sleep(Duration::from_micros(200));
        let t0 = Instant::now();
        // Through the reaper's own path: the pidfd, or kill().
        reaper.kill(child.id()).unwrap();
        reaper
            .wait(child.id(), Some(Duration::from_secs(10)))
            .unwrap()
            .expect("reaped within 10 s");
        // When the caller holds the exit, after the whole scan (an exit's
        // `observed_at` is taken before it).
        samples.push(us(t0.elapsed()));
    }
    let s = Stats::of(&samples).unwrap();
    println!(
        "{:<52} {:>6} {:>9.1} {:>9.1} {:>9.1}",
        Reaper::spawn_mode(),
        others,
        s.p50,
        s.p99,
        s.max
    );
    let left = reaper.shutdown(Duration::ZERO).unwrap();
    assert!(left.stuck.is_empty());
}
