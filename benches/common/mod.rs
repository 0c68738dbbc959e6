//! Shared pieces of the `harness = false` benches: configuration from the
//! environment, statistics, ballast memory, the hand-written raw
//! pidfd + epoll baseline, background child populations and kill guards.
//!
//! Size parsing, the percentile statistics, settling a child and the raw
//! loop ([`RawLoop`]) are the `pidreap-bench` tool's own code (its library,
//! `benches/pidreap-bench`, a dev-dependency), so both measure alike.
//!
//! Every bench reports ratios against baselines measured in the same run,
//! interleaved, with medians over rounds (see BENCHMARKS.md). Environment:
//!
//! - `PIDREAP_BENCH_QUICK=1`: reduced sizes and rounds (under a minute in all).
//! - `PIDREAP_BENCH_RSS=0,1G,4G`: ballast sizes for the spawn bench.
//! - `PIDREAP_BENCH_CHILDREN=1000,5000`: other-live-children levels.
//! - `PIDREAP_BENCH_ROUNDS=N`: rounds per figure.
//! - `PIDREAP_BENCH_SETTLE=asleep|N`: how a child settles before SIGKILL
//!   (default a fixed 200 µs, see [`settle_mode`]).

// Each bench uses only some of this.
#![allow(dead_code)]

use std::io;
use std::time::{Duration, Instant};

// Not every bench uses every one of these.
#[allow(unused_imports)]
pub use pidreap_bench::{parse_size, us, RawLoop, Settle, Stats};

/// The program the background and kill-to-reap children run.
pub const SLEEP: &str = "/bin/sleep";

/// How long a background child lives if everything else fails (the benches
/// kill them long before; this is the backstop for baseline children that
/// have no parent-death signal).
pub const SLEEP_SECS: &str = "120";

pub fn quick() -> bool {
    std::env::var_os("PIDREAP_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A comma-separated list from the environment, or `default`.
pub fn env_list<T>(name: &str, default: &[T], parse: impl Fn(&str) -> Option<T>) -> Vec<T>
where
    T: Clone,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|item| parse(item).unwrap_or_else(|| panic!("{name}: cannot parse {item:?}")))
            .collect(),
        _ => default.to_vec(),
    }
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

pub fn fmt_size(bytes: u64) -> String {
    if bytes == 0 {
        "~0".into()
    } else if bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} B")
    }
}

/// Prints the machine line every bench starts with.
pub fn banner(what: &str) {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    println!();
    println!("=== {what} ===");
    println!(
        "kernel {}, {cpus} CPUs, load {}, THP {}, {}, spawn mode: {}{}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        thp.trim(),
        damon(),
        pidreap::Reaper::spawn_mode(),
        if quick() {
            ", QUICK mode (PIDREAP_BENCH_QUICK)"
        } else {
            ""
        }
    );
}

/// Whether a DAMON monitor runs (`kdamond`, through the sysfs interface):
/// one that monitors physical memory walks the reverse mappings of the
/// pages it samples, and an exiting process that shares those pages with
/// thousands of others (libc, `sleep` itself) can wait milliseconds for it
/// in `exit_mmap`. That is a stall of the child's exit, before any
/// supervisor can see it, and it decides p99s with 1,000 other children.
/// `echo off > /sys/kernel/mm/damon/admin/kdamonds/N/state` stops one.
/// [DAMON](https://docs.kernel.org/admin-guide/mm/damon/usage.html)
fn damon() -> String {
    let Ok(dir) = std::fs::read_dir("/sys/kernel/mm/damon/admin/kdamonds") else {
        return "DAMON: none".to_string();
    };
    let on = dir
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("state")).is_ok_and(|s| s.trim() == "on"))
        .count();
    if on == 0 {
        "DAMON: off".to_string()
    } else {
        format!("DAMON: {on} kdamond on (stalls exits at scale)")
    }
}

// ---------------------------------------------------------------------------
// Statistics

/// The percentiles of one round's samples, in µs; all NaN when the round
/// has none, so that it drops out of [`median`], which skips them.
pub fn pct(samples: &[f64]) -> Stats {
    Stats::of(samples).unwrap_or(Stats {
        samples: 0,
        min: f64::NAN,
        p50: f64::NAN,
        p90: f64::NAN,
        p99: f64::NAN,
        max: f64::NAN,
        mean: f64::NAN,
    })
}

/// The median of the finite values (the mean of the middle two for an even
/// count); NaN when there are none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// `0.97x [0.90-1.05]`: the median of per-round ratios and their range.
pub fn fmt_ratio(ratios: &[f64]) -> String {
    let (lo, hi) = min_max(ratios);
    if ratios.len() > 1 {
        format!("{:.2}x [{:.2}-{:.2}]", median(ratios), lo, hi)
    } else {
        format!("{:.2}x", median(ratios))
    }
}

pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

// ---------------------------------------------------------------------------
// Resources

/// Raises the soft fd limit (`pidreap::raise_fd_limit`) when `needed` fds
/// are more than it allows, and says so; returns false (with a message) when
/// even the hard limit is too low.
pub fn ensure_fds(needed: u64) -> bool {
    let before = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let soft = before.current.unwrap_or(u64::MAX);
    let hard = before.maximum.unwrap_or(u64::MAX);
    if soft >= needed {
        return true;
    }
    match pidreap::raise_fd_limit() {
        Ok(now) if now >= needed => {
            println!("(raised the soft fd limit from {soft} to {now} for {needed} fds)");
            true
        }
        Ok(now) => {
            println!(
                "SKIPPED: needs ~{needed} fds but the hard RLIMIT_NOFILE is {now}; raise it \
                 (`ulimit -Hn {needed}` as root, or LimitNOFILE= in systemd) and run again"
            );
            false
        }
        Err(e) => {
            println!("SKIPPED: needs ~{needed} fds, soft limit {soft}, hard {hard}, and raising failed: {e}");
            false
        }
    }
}

/// Resident ballast: heap memory with every page written.
#[derive(Default)]
pub struct Ballast {
    chunks: Vec<Vec<u8>>,
    bytes: u64,
}

impl Ballast {
    pub fn grow_to(&mut self, bytes: u64) {
        const CHUNK: u64 = 256 << 20;
        while self.bytes < bytes {
            let n = CHUNK.min(bytes - self.bytes) as usize;
            // calloc'd: untouched pages are not resident until the writes
            // below, one byte per page, make each resident and private.
            let mut v = vec![0u8; n];
            for i in (0..n).step_by(4096) {
                v[i] = (i >> 12) as u8 | 1;
            }
            std::hint::black_box(&mut v);
            self.chunks.push(v);
            self.bytes += n as u64;
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Resident set size of this process, from /proc/self/status.
pub fn rss_bytes() -> u64 {
    status_field("/proc/self/status", "VmRSS:") * 1024
}

pub fn status_field(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| {
            l[key.len()..]
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1))
}

/// How a fresh child settles before it is SIGKILLed, from
/// `PIDREAP_BENCH_SETTLE`. The default follows BENCHMARKS.md: a fixed
/// ~200 µs, by which a child spawned from a parent holding thousands of fds
/// may still be closing its inherited close-on-exec fds or loading (so that
/// cost shows in kill-to-reap). `asleep` instead waits (bounded) until the
/// child runs `comm` and sleeps, which isolates the reap path itself, as
/// `pidreap bench` does; `N` (µs) sets another fixed time.
pub fn settle_mode() -> Settle {
    match std::env::var("PIDREAP_BENCH_SETTLE").ok().as_deref() {
        Some("asleep") => Settle {
            first: Duration::from_micros(200),
            until_asleep: true,
        },
        other => Settle {
            first: Duration::from_micros(
                other
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(200),
            ),
            until_asleep: false,
        },
    }
}

/// A progress line on stderr, overwritten in place.
pub fn progress(msg: &str) {
    use std::io::{IsTerminal, Write};
    let err = std::io::stderr();
    if err.is_terminal() {
        let mut e = err.lock();
        let _ = write!(e, "\r\x1b[2K{msg}");
        let _ = e.flush();
    }
}

pub fn progress_done() {
    progress("");
}

// ---------------------------------------------------------------------------
// The raw pidfd + epoll baseline

/// The benches' addition to [`RawLoop`] (a type of the `pidreap_bench`
/// crate, so a trait here).
pub trait SpawnSleeper {
    /// Spawns `sleep` and adopts it; returns its key and pid. It is also
    /// the "supervisor holding pidfds" for the std baselines' background
    /// children.
    fn spawn_sleeper(&mut self) -> io::Result<(u64, u32)>;
}

impl SpawnSleeper for RawLoop {
    fn spawn_sleeper(&mut self) -> io::Result<(u64, u32)> {
        self.spawn(std::process::Command::new(SLEEP).arg(SLEEP_SECS))
    }
}

/// A new raw loop; panics when epoll_create1 fails.
pub fn raw_loop() -> RawLoop {
    RawLoop::new().expect("epoll_create1")
}

// ---------------------------------------------------------------------------
// pidreap helpers

/// `sleep` under pidreap, with the default PDEATHSIG (SIGKILL).
pub fn pidreap_sleeper() -> pidreap::Command {
    let mut cmd = pidreap::Command::new(SLEEP);
    cmd.arg(SLEEP_SECS);
    cmd
}

/// SIGKILLs and reaps every child of `reaper` (bounded).
pub fn pidreap_kill_all(reaper: &mut pidreap::Reaper, timeout: Duration) {
    let ids: Vec<_> = reaper.children().collect();
    for id in ids {
        let _ = reaper.kill(id);
    }
    let deadline = Instant::now() + timeout;
    while !reaper.is_empty() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        reaper.poll(Some(left)).expect("poll");
    }
    while reaper.next_event().is_some() {}
}

/// Builds a background population of `n` children with `spawn_one`,
/// with a progress line.
pub fn populate(label: &str, n: usize, mut spawn_one: impl FnMut()) {
    let start = Instant::now();
    for i in 0..n {
        spawn_one();
        if i % 250 == 0 {
            progress(&format!("{label}: starting background children {i}/{n}"));
        }
    }
    progress_done();
    let _ = start;
}

// ---------------------------------------------------------------------------
// tokio helpers

pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Kills and awaits tokio children (bounded).
pub fn tokio_kill_all(rt: &tokio::runtime::Runtime, children: &mut Vec<tokio::process::Child>) {
    for c in children.iter_mut() {
        let _ = c.start_kill();
    }
    rt.block_on(async {
        for c in children.iter_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
        }
    });
    children.clear();
}

// ---------------------------------------------------------------------------
// Table printing

pub fn row(cells: &[String], widths: &[usize]) {
    let mut line = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i == 0 {
            line.push_str(&format!("  {c:<w$}"));
        } else {
            line.push_str(&format!("  {c:>w$}"));
        }
    }
    println!("{}", line.trim_end());
}
