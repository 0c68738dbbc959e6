//! What the `pidreap-bench` tool (also run as `pidreap bench`) and pidreap's
//! `cargo bench` benches measure with alike: size parsing, percentile
//! statistics, letting a fresh child settle, and [`RawLoop`], the raw
//! pidfd + epoll reference loop pidreap is measured against; and
//! [`contain`], what containing a child's whole tree costs.
//!
//! The reference loop uses std and rustix only, never the `pidreap`
//! library whose behaviour it is compared with.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, WaitOptions};

pub mod contain;

/// Parses a size in bytes: `512M`, `1G`, `4GiB`, `100k`, `1.5G`, `0`,
/// plain bytes. The units are binary (`k` is 1024) and case-insensitive;
/// one `B` or `iB` may follow. `None` for anything else, negatives included.
pub fn parse_size(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match lower.chars().last()? {
        'k' => (&lower[..lower.len() - 1], 1u64 << 10),
        'm' => (&lower[..lower.len() - 1], 1 << 20),
        'g' => (&lower[..lower.len() - 1], 1 << 30),
        't' => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0 && n.is_finite()).then_some((n * mult as f64) as u64)
}

// ---------------------------------------------------------------------------
// Statistics

/// A duration in microseconds, the unit every figure is in.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Summary of one sample set, in the samples' unit (microseconds here).
/// Percentiles are nearest-rank: always one of the samples, never
/// interpolated.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// How many samples.
    pub samples: usize,
    /// The smallest sample.
    pub min: f64,
    /// The median (nearest-rank 50th percentile).
    pub p50: f64,
    /// The nearest-rank 90th percentile.
    pub p90: f64,
    /// The nearest-rank 99th percentile.
    pub p99: f64,
    /// The largest sample.
    pub max: f64,
    /// The arithmetic mean.
    pub mean: f64,
}

impl Stats {
    /// The summary of `samples` (in any order); `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        Some(Stats {
            samples: s.len(),
            min: s[0],
            p50: rank(&s, 50.0),
            p90: rank(&s, 90.0),
            p99: rank(&s, 99.0),
            max: s[s.len() - 1],
            mean: s.iter().sum::<f64>() / s.len() as f64,
        })
    }
}

/// The nearest-rank `p`th percentile of sorted, non-empty data.
fn rank(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------
// Settling a fresh child

/// How long the bound of [`Settle::until_asleep`] is: a child not asleep by
/// then is killed as it is.
const ASLEEP_BOUND: Duration = Duration::from_secs(1);

/// How a freshly spawned child settles before it is SIGKILLed for a
/// kill-to-reap sample.
///
/// Only the settled child's state matters, not the time this takes: the
/// clock starts after [`settle`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// Slept first, always. On its own (`until_asleep` false) this is the
    /// fixed settle time: a child spawned by a parent holding thousands of
    /// fds may then still be closing its inherited close-on-exec fds or
    /// loading, so that that cost shows in kill-to-reap.
    pub first: Duration,
    /// Then wait, polling `/proc/PID/stat` every 100 µs for at most a
    /// second, until the child runs the expected program and sleeps: so
    /// that kill-to-reap measures the reap path itself, not a child still
    /// starting.
    pub until_asleep: bool,
}

/// Lets the child `pid` settle as `how` says; `comm` is the name the
/// kernel shows for it once it has exec'd (`sleep` for `/bin/sleep`).
/// Bounded: a child that never reaches the state is left as it is.
pub fn settle(pid: u32, comm: &str, how: Settle) {
    let start = Instant::now();
    std::thread::sleep(how.first);
    if !how.until_asleep {
        return;
    }
    let path = format!("/proc/{pid}/stat");
    while start.elapsed() < ASLEEP_BOUND {
        if let Ok(stat) = std::fs::read_to_string(&path) {
            // `pid (comm) state ...`; comm may hold spaces and parentheses.
            if let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) {
                if &stat[a + 1..b] == comm && stat[b + 1..].split_whitespace().next() == Some("S") {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

// ---------------------------------------------------------------------------
// The raw pidfd + epoll reference loop

/// The reference pidreap is measured against: a minimal hand-written
/// supervisor, deliberately straightforward. Children come from std's
/// spawn (posix_spawn, no PDEATHSIG), a pidfd is opened after the spawn
/// ([`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)),
/// every pidfd sits in one [epoll(7)](https://man7.org/linux/man-pages/man7/epoll.7.html)
/// set, and an exit is reaped with `waitid(P_PIDFD)`
/// ([`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html)) once
/// epoll reports the pidfd readable. Nothing is
/// tuned: no fds moved high, no batching, one `HashMap` of pidfds. This is
/// what a careful but plain program does, so a figure "against the
/// reference" says what pidreap's extra machinery costs or saves.
///
/// Each child has a key, given by [`spawn`](RawLoop::spawn) or
/// [`adopt`](RawLoop::adopt). Dropping the loop SIGKILLs and reaps every
/// child it still holds (bounded, see [`kill_all`](RawLoop::kill_all)).
pub struct RawLoop {
    ep: OwnedFd,
    live: HashMap<u64, OwnedFd>,
    next: u64,
    events: Vec<epoll::Event>,
}

impl RawLoop {
    /// An empty loop: one epoll fd (close-on-exec).
    pub fn new() -> io::Result<RawLoop> {
        Ok(RawLoop {
            ep: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            live: HashMap::new(),
            next: 0,
            events: Vec::with_capacity(256),
        })
    }

    /// True when the loop holds no child (all reaped).
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Spawns `cmd` with std and adopts the child; returns its key and pid.
    pub fn spawn(&mut self, cmd: &mut std::process::Command) -> io::Result<(u64, u32)> {
        let child = cmd.spawn()?;
        let pid = child.id();
        Ok((self.adopt(child)?, pid))
    }

    /// Takes over a std child: opens its pidfd and watches it. On failure
    /// the child is SIGKILLed and reaped, not left behind.
    pub fn adopt(&mut self, child: std::process::Child) -> io::Result<u64> {
        let pid = Pid::from_raw(child.id() as i32).ok_or_else(|| io::Error::other("bad pid"))?;
        // std's Child does nothing on drop; the pidfd reaps it from now on.
        drop(child);
        let fd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                // Still our unreaped child, so the pid is still its.
                let _ = rustix::process::kill_process(pid, Signal::KILL);
                let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
                return Err(e.into());
            }
        };
        let key = self.next;
        self.next += 1;
        if let Err(e) = epoll::add(
            &self.ep,
            &fd,
            epoll::EventData::new_u64(key),
            epoll::EventFlags::IN,
        ) {
            let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
            let _ = rustix::process::waitid(WaitId::PidFd(fd.as_fd()), WaitIdOptions::EXITED);
            return Err(e.into());
        }
        self.live.insert(key, fd);
        Ok(key)
    }

    /// Sends `sig` to the child `key` through its pidfd. An error for a key
    /// that is not (or no longer) held.
    pub fn signal(&self, key: u64, sig: Signal) -> io::Result<()> {
        let fd = self
            .live
            .get(&key)
            .ok_or_else(|| io::Error::other("not a live child of the reference loop"))?;
        Ok(rustix::process::pidfd_send_signal(fd, sig)?)
    }

    /// Sends `sig` to every child held, ignoring failures.
    pub fn signal_all(&self, sig: Signal) {
        for fd in self.live.values() {
            let _ = rustix::process::pidfd_send_signal(fd, sig);
        }
    }

    /// One turn of the loop: waits up to `timeout` in `epoll_wait`, then
    /// reaps each child whose pidfd is readable; returns the keys reaped
    /// (none on EINTR or timeout).
    pub fn poll(&mut self, timeout: Duration) -> io::Result<Vec<u64>> {
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        self.events.clear();
        match epoll::wait(
            &self.ep,
            rustix::buffer::spare_capacity(&mut self.events),
            Some(&ts),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        let mut reaped = Vec::new();
        for i in 0..self.events.len() {
            let key = self.events[i].data.u64();
            let Some(fd) = self.live.get(&key) else {
                continue;
            };
            let status = rustix::process::waitid(
                WaitId::PidFd(fd.as_fd()),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            )?;
            if status.is_some() {
                // Closing the pidfd drops it from the epoll set.
                self.live.remove(&key);
                reaped.push(key);
            }
        }
        Ok(reaped)
    }

    /// Runs the loop until `key` is reaped: true then, false when `timeout`
    /// passes first (the child is still held).
    pub fn wait_for(&mut self, key: u64, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        while self.live.contains_key(&key) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(false);
            };
            self.poll(left)?;
        }
        Ok(true)
    }

    /// SIGKILLs every child held and reaps them, for up to `timeout`; warns
    /// on stderr about any left.
    pub fn kill_all(&mut self, timeout: Duration) {
        self.signal_all(Signal::KILL);
        let deadline = Instant::now() + timeout;
        while !self.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            if self.poll(left).is_err() {
                break;
            }
        }
        if !self.is_empty() {
            eprintln!("warning: {} raw-loop children not reaped", self.live.len());
        }
    }
}

impl Drop for RawLoop {
    fn drop(&mut self) {
        self.kill_all(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("100k"), Some(100 << 10));
        assert_eq!(parse_size(" 2kb "), Some(2 << 10));
        assert_eq!(parse_size("12X"), None);
        assert_eq!(parse_size("1kbb"), None);
        assert_eq!(parse_size("-1G"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn stats() {
        let s = Stats::of(&[3.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!(
            (s.samples, s.min, s.p50, s.max, s.mean),
            (4, 1.0, 2.0, 4.0, 2.5)
        );
        let many: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::of(&many).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn reference_loop_reaps() {
        let mut lp = RawLoop::new().unwrap();
        let mut sleep = std::process::Command::new("sleep");
        sleep.arg("30");
        let (key, pid) = lp.spawn(&mut sleep).unwrap();
        settle(
            pid,
            "sleep",
            Settle {
                first: Duration::from_micros(200),
                until_asleep: true,
            },
        );
        lp.signal(key, Signal::KILL).unwrap();
        assert!(lp.wait_for(key, Duration::from_secs(10)).unwrap());
        assert!(lp.is_empty());
        assert!(lp.signal(key, Signal::KILL).is_err());
        // Dropping the loop kills and reaps what it still holds.
        let (_, pid) = lp.spawn(&mut sleep).unwrap();
        drop(lp);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
