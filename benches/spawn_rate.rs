//! Spawn-and-reap throughput of `/bin/true` (issue 4, targets 1 and 2):
//! children spawned and reaped back to back, per second, from a parent with
//! ~0, 1 GiB and 4 GiB of resident ballast, and with N other live children.
//! pidreap (PDEATHSIG + pidfd on every child) against std without PDEATHSIG
//! (posix_spawn), std with a PDEATHSIG `pre_exec` (forces fork) and tokio.
//!
//! `cargo bench --bench spawn_rate`. Environment: `PIDREAP_BENCH_QUICK=1`,
//! `PIDREAP_BENCH_RSS=0,1G,4G` (ballast sizes; `0` alone skips the ballast),
//! `PIDREAP_BENCH_CHILDREN=5000` (other-children levels; `0` skips),
//! `PIDREAP_BENCH_ROUNDS`, `PIDREAP_BENCH_BLOCK_MS` (time per block).

mod common;

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::*;

const TRUE: &str = "/bin/true";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sys {
    Pidreap,
    StdPosix,
    StdPreExec,
    Tokio,
}

const ALL: [Sys; 4] = [Sys::Pidreap, Sys::StdPosix, Sys::StdPreExec, Sys::Tokio];

impl Sys {
    fn name(self) -> &'static str {
        match self {
            Sys::Pidreap => "pidreap (PDEATHSIG + pidfd)",
            Sys::StdPosix => "std, no PDEATHSIG (posix_spawn)",
            Sys::StdPreExec => "std + PDEATHSIG pre_exec (fork)",
            Sys::Tokio => "tokio::process (pidfd, no PDEATHSIG)",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Pidreap,
    Holder,
    Tokio,
}

const KINDS: [Kind; 3] = [Kind::Pidreap, Kind::Holder, Kind::Tokio];

impl Kind {
    fn systems(self) -> &'static [Sys] {
        match self {
            Kind::Pidreap => &[Sys::Pidreap],
            Kind::Holder => &[Sys::StdPosix, Sys::StdPreExec],
            Kind::Tokio => &[Sys::Tokio],
        }
    }
}

struct World {
    reaper: pidreap::Reaper,
    holder: RawLoop,
    rt: tokio::runtime::Runtime,
    tokio_bg: Vec<tokio::process::Child>,
    pidreap_cmd: pidreap::Command,
}

impl World {
    fn new(kind: Option<Kind>, others: usize) -> World {
        let mut w = World {
            reaper: pidreap::Reaper::new().expect("reaper"),
            holder: raw_loop(),
            rt: tokio_rt(),
            tokio_bg: Vec::new(),
            pidreap_cmd: pidreap::Command::new(TRUE),
        };
        match kind {
            None => {}
            Some(Kind::Pidreap) => {
                let cmd = pidreap_sleeper();
                let r = &mut w.reaper;
                populate("pidreap", others, || {
                    r.spawn(&cmd).expect("spawn background child");
                });
            }
            Some(Kind::Holder) => {
                let h = &mut w.holder;
                populate("std", others, || {
                    h.spawn_sleeper().expect("spawn background child");
                });
            }
            Some(Kind::Tokio) => {
                let _g = w.rt.enter();
                let bg = &mut w.tokio_bg;
                populate("tokio", others, || {
                    bg.push(
                        tokio::process::Command::new(SLEEP)
                            .arg(SLEEP_SECS)
                            .kill_on_drop(true)
                            .spawn()
                            .expect("spawn background child"),
                    );
                });
            }
        }
        w
    }

    fn teardown(mut self) {
        pidreap_kill_all(&mut self.reaper, Duration::from_secs(30));
        self.holder.kill_all(Duration::from_secs(30));
        tokio_kill_all(&self.rt, &mut self.tokio_bg);
    }

    fn spawn_reap(&mut self, sys: Sys) {
        const BOUND: Duration = Duration::from_secs(10);
        match sys {
            Sys::Pidreap => {
                let child = self.reaper.spawn(&self.pidreap_cmd).expect("spawn");
                let exit = self
                    .reaper
                    .wait(child.id(), Some(BOUND))
                    .expect("wait")
                    .expect("reaped in time");
                assert!(exit.status.success());
            }
            Sys::StdPosix => {
                let st = std::process::Command::new(TRUE).status().expect("spawn");
                assert!(st.success());
            }
            Sys::StdPreExec => {
                let mut cmd = std::process::Command::new(TRUE);
                // SAFETY: prctl is async-signal-safe; nothing else runs
                // between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        if libc::prctl(
                            libc::PR_SET_PDEATHSIG,
                            libc::SIGKILL as libc::c_ulong,
                            0,
                            0,
                            0,
                        ) != 0
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                assert!(cmd.status().expect("spawn").success());
            }
            Sys::Tokio => {
                let st = self.rt.block_on(async {
                    tokio::time::timeout(BOUND, tokio::process::Command::new(TRUE).status()).await
                });
                assert!(st.expect("tokio: in time").expect("spawn").success());
            }
        }
    }

    /// Spawns and reaps back to back for `block` (at least `min` times);
    /// returns children per second.
    fn rate(&mut self, sys: Sys, block: Duration, min: usize) -> f64 {
        self.spawn_reap(sys); // warm-up
        let start = Instant::now();
        let mut n = 0;
        while n < min || start.elapsed() < block {
            self.spawn_reap(sys);
            n += 1;
        }
        n as f64 / start.elapsed().as_secs_f64()
    }
}

fn main() {
    let quick = quick();
    let rss_levels = env_list(
        "PIDREAP_BENCH_RSS",
        if quick {
            &[0, 256 << 20][..]
        } else {
            &[0, 1 << 30, 4 << 30][..]
        },
        parse_size,
    );
    let mut levels = env_list(
        "PIDREAP_BENCH_CHILDREN",
        if quick { &[1000][..] } else { &[5000][..] },
        |s| s.trim().parse::<usize>().ok(),
    );
    levels.retain(|&n| n > 0);
    let max_level = levels.iter().copied().max().unwrap_or(0);
    if max_level > 0 && !ensure_fds(max_level as u64 + 512) {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(0);
        levels.retain(|&n| (n as u64) + 512 <= soft);
    }
    let rounds = env_usize("PIDREAP_BENCH_ROUNDS", if quick { 3 } else { 5 });
    let block = Duration::from_millis(env_usize(
        "PIDREAP_BENCH_BLOCK_MS",
        if quick { 150 } else { 300 },
    ) as u64);
    let started = Instant::now();

    banner("spawn-and-reap throughput of /bin/true");
    println!(
        "blocks of >= {} ms (>= 3 spawns) per system, systems interleaved (rotated) within each of {rounds} rounds; \
         rates are medians of per-round rates, ratios medians of per-round ratios [min-max]",
        block.as_millis()
    );

    // Part 1: parent RSS ballast, no other children.
    let mut ballast = Ballast::default();
    let mut t1 = Vec::new();
    for &rss in &rss_levels {
        progress(&format!("touching {} of ballast", fmt_size(rss)));
        ballast.grow_to(rss);
        progress_done();
        let mut w = World::new(None, 0);
        let mut rates = vec![Vec::new(); ALL.len()];
        for round in 0..rounds {
            for k in 0..ALL.len() {
                let sys = ALL[(round + k) % ALL.len()];
                progress(&format!(
                    "ballast {}: round {}/{rounds}: {}",
                    fmt_size(rss),
                    round + 1,
                    sys.name()
                ));
                rates[sys as usize].push(w.rate(sys, block, 3));
            }
        }
        progress_done();
        w.teardown();
        println!();
        println!(
            "parent RSS {} (ballast {}), 0 other children:",
            fmt_mib(rss_bytes()),
            fmt_size(ballast.bytes())
        );
        let widths = [38, 10, 22, 22];
        row(
            &[
                "system",
                "spawns/s",
                "vs std posix_spawn",
                "vs std + pre_exec",
            ]
            .map(String::from),
            &widths,
        );
        for sys in ALL {
            let r = &rates[sys as usize];
            row(
                &[
                    sys.name().to_string(),
                    format!("{:.0}", median(r)),
                    fmt_ratio(&ratio(r, &rates[Sys::StdPosix as usize])),
                    fmt_ratio(&ratio(r, &rates[Sys::StdPreExec as usize])),
                ],
                &widths,
            );
        }
        let me = &rates[Sys::Pidreap as usize];
        t1.push((
            rss,
            median(&ratio(me, &rates[Sys::StdPosix as usize])),
            median(&ratio(me, &rates[Sys::StdPreExec as usize])),
        ));
    }
    drop(ballast);

    // Part 2: other live children, no ballast. Each round measures every
    // system with none (one world, interleaved) and then with N, one
    // background population at a time.
    let mut t2 = Vec::new();
    for &n in &levels {
        let mut none = vec![Vec::new(); ALL.len()];
        let mut with = vec![Vec::new(); ALL.len()];
        for round in 0..rounds.min(if quick { 2 } else { 3 }) {
            let mut w = World::new(None, 0);
            for k in 0..ALL.len() {
                let sys = ALL[(round + k) % ALL.len()];
                progress(&format!(
                    "{n} children: round {}: {} with none",
                    round + 1,
                    sys.name()
                ));
                none[sys as usize].push(w.rate(sys, block, 3));
            }
            w.teardown();
            for k in 0..KINDS.len() {
                let kind = KINDS[(round + k) % KINDS.len()];
                let mut w = World::new(Some(kind), n);
                for &sys in kind.systems() {
                    progress(&format!(
                        "{n} children: round {}: {}",
                        round + 1,
                        sys.name()
                    ));
                    with[sys as usize].push(w.rate(sys, block, 3));
                }
                w.teardown();
            }
        }
        progress_done();
        println!();
        println!("{n} other live children (each system's own: pidreap's in its reaper, std's held by pidfds, tokio's on its runtime):");
        let widths = [38, 10, 10, 22, 22];
        row(
            &[
                "system",
                "with none",
                "with N",
                "N vs none",
                "vs std posix_spawn",
            ]
            .map(String::from),
            &widths,
        );
        for sys in ALL {
            let (a, b) = (&none[sys as usize], &with[sys as usize]);
            row(
                &[
                    sys.name().to_string(),
                    format!("{:.0}", median(a)),
                    format!("{:.0}", median(b)),
                    fmt_ratio(&ratio(b, a)),
                    fmt_ratio(&ratio(b, &with[Sys::StdPosix as usize])),
                ],
                &widths,
            );
        }
        t2.push((
            n,
            median(&ratio(
                &with[Sys::Pidreap as usize],
                &none[Sys::Pidreap as usize],
            )),
        ));
    }

    println!();
    println!("targets (noisy machines: judge medians of several runs):");
    for (rss, vs_posix, vs_pre) in t1 {
        if rss >= 4 << 30 || rss == rss_levels.iter().copied().max().unwrap_or(0) {
            // The 100x is stated for 4 GiB; below it fork is cheaper and
            // the ratio smaller by nature, so it is shown, not judged.
            let pre = if rss >= 4 << 30 {
                verdict(vs_pre >= 100.0).to_string()
            } else {
                "not judged below 4 GiB (set PIDREAP_BENCH_RSS=0,4G)".to_string()
            };
            println!(
                "  target 1, ballast {}: pidreap vs std posix_spawn {vs_posix:.2}x (>= 0.90x): {}; \
                 vs std + pre_exec {vs_pre:.1}x (>= 100x): {pre}",
                fmt_size(rss),
                verdict(vs_posix >= 0.9),
            );
        }
    }
    for (n, r) in t2 {
        println!(
            "  target 2, pidreap spawn rate with {n} others vs none: {r:.2}x (>= 0.85x{}): {}",
            if n == 5000 {
                ""
            } else {
                "; the target is stated for 5,000"
            },
            verdict(r >= 0.85)
        );
    }
    println!("(total {:.1} s)", started.elapsed().as_secs_f64());
}

fn ratio(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

fn fmt_mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}
