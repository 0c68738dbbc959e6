//! Spawn cost against the number of fds the program holds (issue 11,
//! item 5): 200 spawns of `/bin/true` with stdout and stderr piped (read to
//! EOF, then the child reaped), with no extra fds open and with 10,000 open,
//! in the same run, rounds interleaved. Goal: the 10,000-fd rounds within
//! 1.1x of the others.
//!
//! The child unshares its fd table with `close_range(keep_below, ~0,
//! CLOSE_RANGE_UNSHARE)`, which copies every slot below the highest fd it
//! keeps. The fds are opened after the spawner was made (the usual case: a
//! server's connections come after its supervisor); a last row opens them
//! first, on a fresh thread whose spawner is made after them.
//!
//! `cargo bench --bench fd_table`. Environment: `PIDREAP_BENCH_QUICK=1`,
//! `PIDREAP_BENCH_ROUNDS` (default 7), `PIDREAP_BENCH_FDS` (default 10000),
//! `PIDREAP_BENCH_SPAWNS` (per round, default 200).

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use common::*;
use pidreap::{Command, ExitStatus, Stdio};

const TRUE: &str = "/bin/true";
const BOUND: Duration = Duration::from_secs(10);

/// `n` spawns, each with stdout and stderr piped and read to EOF, then
/// reaped; the time they took.
fn round(n: usize) -> Duration {
    let mut cmd = Command::new(TRUE);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    for _ in 0..n {
        let mut child = pidreap::spawn(&cmd).expect("spawn /bin/true");
        let mut sink = Vec::new();
        child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_end(&mut sink)
            .expect("reading stdout");
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_end(&mut sink)
            .expect("reading stderr");
        let r = child
            .pidfd
            .wait_timeout(BOUND)
            .expect("wait")
            .expect("exited in time");
        assert_eq!(r.status, ExitStatus::Exited(0));
    }
    start.elapsed()
}

/// `n` close-on-exec fds (duplicates of `/dev/null`), at the lowest free
/// numbers.
fn open_fds(n: usize) -> Vec<OwnedFd> {
    let null = OwnedFd::from(std::fs::File::open("/dev/null").expect("opening /dev/null"));
    (0..n)
        .map(|_| null.try_clone().expect("duplicating an fd"))
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let quick = quick();
    let rounds = env_usize("PIDREAP_BENCH_ROUNDS", if quick { 3 } else { 7 });
    let fds = env_usize("PIDREAP_BENCH_FDS", 10_000);
    let spawns = env_usize("PIDREAP_BENCH_SPAWNS", 200);
    banner(&format!(
        "fd_table: {spawns} piped spawns with {fds} extra fds open vs none"
    ));
    if !ensure_fds(fds as u64 + 512) {
        return;
    }
    // Makes this thread's spawner (and warms the caches).
    round(10);

    let mut none = Vec::new();
    let mut many = Vec::new();
    for r in 0..rounds {
        // Alternate the order, so that drift hits both alike.
        for with_fds in [r % 2 == 1, r % 2 == 0] {
            if with_fds {
                let held = open_fds(fds);
                many.push(ms(round(spawns)));
                drop(held);
            } else {
                none.push(ms(round(spawns)));
            }
        }
    }
    // The fds opened before the spawner: a fresh thread's spawner is made
    // after them.
    let before: Vec<f64> = std::thread::spawn(move || {
        let held = open_fds(fds);
        round(10);
        let times = (0..rounds.div_ceil(2)).map(|_| ms(round(spawns))).collect();
        drop(held);
        times
    })
    .join()
    .expect("the fds-first thread");

    let (m_none, m_many, m_before) = (median(&none), median(&many), median(&before));
    let ratio = m_many / m_none;
    let widths = [44, 12, 8];
    row(&["".into(), "median ms".into(), "ratio".into()], &widths);
    row(
        &["no extra fds".into(), format!("{m_none:.1}"), "1.00".into()],
        &widths,
    );
    row(
        &[
            format!("{fds} fds opened after the spawner"),
            format!("{m_many:.1}"),
            format!("{ratio:.2}"),
        ],
        &widths,
    );
    row(
        &[
            format!("{fds} fds opened before the spawner"),
            format!("{m_before:.1}"),
            format!("{:.2}", m_before / m_none),
        ],
        &widths,
    );
    println!("rounds (ms): none {none:.1?}; with fds {many:.1?}; fds first {before:.1?}");
    println!(
        "goal: {fds} fds opened after the spawner <= 1.1x of none: {} ({ratio:.2}x)",
        verdict(ratio <= 1.1)
    );
}
