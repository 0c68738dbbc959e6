//! Containment: what holding on to a child's whole tree costs.
//!
//! 1. Spawn-and-reap rate of `/bin/true` under each `Containment`, as a
//!    ratio against `Containment::None` in the same rounds (the goals: at
//!    least 0.7x for cgroup, 0.8x for pidns). A mechanism that does not
//!    work here is reported as skipped, with the reason.
//! 2. Time to kill and reap a tree of 1,000 processes: `cgroup.kill` of its
//!    cgroup v2 leaf, `kill(-pgid, SIGKILL)`, and the kernel's floor (1,000
//!    direct children, SIGKILL each by pidfd), as ratios against the floor;
//!    and pidreap's own `Reaper::kill` of a tree spawned with
//!    `Containment::Cgroup`, where pidreap can do that.
//!
//! The measuring code is `pidreap_bench::contain`, which `pidreap bench
//! spawn-contained` and `pidreap bench kill-tree` run too.
//!
//! `cargo bench --bench containment`. Environment: `PIDREAP_BENCH_QUICK=1`,
//! `PIDREAP_BENCH_ROUNDS` (both parts), `PIDREAP_BENCH_TREE_N` (1000).

mod common;

use std::time::{Duration, Instant};

use common::*;
use pidreap_bench::contain::{self, Monitor, SpawnConfig, TreeConfig};

/// Progress lines on a terminal, nothing else.
struct Show;

impl Monitor for Show {
    fn progress(&mut self, msg: &str) {
        progress(msg);
    }
}

fn main() {
    let quick = quick();
    let started = Instant::now();

    banner("containment: spawn-and-reap rate");
    let spawn = SpawnConfig {
        program: "/bin/true".into(),
        rounds: env_usize("PIDREAP_BENCH_ROUNDS", if quick { 3 } else { 7 }),
        block: Duration::from_millis(if quick { 100 } else { 300 }),
        timeout: Duration::from_secs(10),
    };
    match contain::spawn_rates(&spawn, &mut Show) {
        Ok(variants) => {
            progress_done();
            print!("{}", contain::spawn_report(&spawn, &variants));
        }
        Err(e) => {
            progress_done();
            println!("FAILED: {e}");
        }
    }

    let n = env_usize("PIDREAP_BENCH_TREE_N", if quick { 200 } else { 1000 });
    if !ensure_fds(n as u64 + 256) {
        return;
    }
    banner("containment: kill and reap a tree");
    let tree = TreeConfig {
        processes: n,
        rounds: env_usize("PIDREAP_BENCH_ROUNDS", if quick { 3 } else { 10 }),
        timeout: Duration::from_secs(60),
        sleep_secs: 120,
    };
    match contain::tree_kill(&tree, &mut Show) {
        Ok(r) => {
            progress_done();
            print!("{}", contain::tree_report(&tree, &r));
        }
        Err(e) => {
            progress_done();
            println!("FAILED: {e}");
        }
    }
    println!("(total {:.1} s)", started.elapsed().as_secs_f64());
}
