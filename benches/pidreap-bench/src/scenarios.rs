//! The named scenarios of `pidreap bench NAME`: what containment costs
//! (`spawn-contained`, `kill-tree`). The measuring code is the library's
//! `pidreap_bench::contain`, shared with `cargo bench --bench containment`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use pidreap::{Event, Reaper, Signal};
use pidreap_bench::contain::{
    self, median, Monitor, SpawnConfig, SpawnVariant, TreeConfig, TreeKill,
};

use crate::{cpus, json_stats, json_str, kernel, number, value, Failure, Progress, STOP};

/// The scenario names, for dispatch and help.
pub const NAMES: [&str; 2] = ["spawn-contained", "kill-tree"];

const SPAWN_HELP: &str = "\
pidreap bench spawn-contained: spawn-and-reap rate under each containment

Usage: pidreap bench spawn-contained [OPTIONS]

Spawns and reaps PROGRAM one child at a time under Containment::None,
ProcessGroup, PidNamespace and Cgroup, in blocks, the variants interleaved
(the order rotated each round) in one reaper, and reports each rate as a
ratio against None measured in the same rounds: the median over rounds and
the range. A mechanism that does not work here (its check fails, or its
first spawn is refused) is reported as skipped, with the reason.
Goals: pidns >= 0.8x, cgroup >= 0.7x.

Options:
  --rounds N        rounds [7]
  --block-ms MS     each variant's block in a round lasts at least this [300]
  --program PATH    the program, which must exit 0 by itself [/bin/true]
  --timeout SECS    longest wait for one child [10]
  --json            print one JSON object instead of a table
  -h, --help        this text
";

const TREE_HELP: &str = "\
pidreap bench kill-tree: time to kill and reap a whole process tree

Usage: pidreap bench kill-tree [OPTIONS]

A tree of N processes (one sh and its N-1 background sleeps) is killed and
reaped, each round each way, the order rotated each round:
  (a) the tree in a cgroup v2 leaf of its own (made below this process's
      cgroup), one write to cgroup.kill; until cgroup.events says
      populated 0 and the shell is reaped, and until all N are reaped;
  (b) the tree in its own process group, one kill(-pgid, SIGKILL); until
      all N are reaped;
  (c) the floor: N sleeps as direct children, SIGKILL each by pidfd; until
      all N are reaped;
  (d) where pidreap can spawn into a cgroup: the tree spawned with
      Containment::Cgroup, Reaper::kill; until the reaper reports its exit.
Ratios are against (c) in the same round. This process becomes a child
subreaper so that it reaps the orphaned sleeps itself. Needs write access
to this process's cgroup for (a) and (d); without it they are skipped.

Options:
  --processes N     processes per tree, the shell included [1000]
  --rounds N        rounds [10]
  --timeout SECS    bound on starting, and on killing and reaping, a tree [60]
  --sleep SECS      what the sleeps sleep: how long they would outlive this
                    process if it were SIGKILLed before its cleanup [60]
  --json            print one JSON object instead of a table
  -h, --help        this text
";

/// Runs the scenario `name` with `args`; returns the exit code.
pub fn run(name: &str, args: Vec<OsString>) -> i32 {
    let outcome = match name {
        "spawn-contained" => spawn_contained(args),
        _ => kill_tree(args),
    };
    match outcome {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("pidreap: error: {}", f.msg.replace('\n', " "));
            f.code
        }
    }
}

fn parse_secs(p: &mut lexopt::Parser, flag: &str) -> Result<Duration, String> {
    let v = value(p, flag)?;
    let secs: f64 = v
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: not a number of seconds: {v:?}"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{flag}: {v} is out of range (0 to 86400 s)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn unexpected(arg: lexopt::Arg, name: &str) -> String {
    format!("{} (see pidreap bench {name} --help)", arg.unexpected())
}

/// Shows progress on a terminal, and ends the run when one of [`STOP`]
/// arrives (read from a reaper's signalfd between samples).
struct Watch {
    progress: Progress,
    signals: Reaper,
    got: Option<Signal>,
}

impl Watch {
    fn new() -> Result<Watch, Failure> {
        let signals = Reaper::builder()
            .handle_signals(&STOP)
            .build()
            .map_err(|e| Failure::own(format!("creating the reaper: {e}")))?;
        Ok(Watch {
            progress: Progress::new(),
            signals,
            got: None,
        })
    }

    /// The failure for `e`: an interruption says which signal.
    fn failure(&self, e: io::Error) -> Failure {
        match self.got {
            Some(signal) => Failure {
                code: 128 + signal.as_raw(),
                msg: format!(
                    "interrupted by {signal}; every process and cgroup it made was removed"
                ),
            },
            None => Failure::own(e.to_string()),
        }
    }
}

impl Monitor for Watch {
    fn progress(&mut self, msg: &str) {
        self.progress.show(|| msg.to_string());
    }

    fn check(&mut self) -> io::Result<()> {
        self.signals
            .poll(Some(Duration::ZERO))
            .map_err(|e| io::Error::other(format!("polling for signals: {e}")))?;
        while let Some(ev) = self.signals.next_event() {
            if let Event::Signal { signal, .. } = ev {
                self.got = Some(signal);
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    format!("interrupted by {signal}"),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// spawn-contained

fn spawn_contained(args: Vec<OsString>) -> Result<(), Failure> {
    use lexopt::prelude::*;
    const NAME: &str = "spawn-contained";
    let mut cfg = SpawnConfig {
        program: "/bin/true".into(),
        rounds: 7,
        block: Duration::from_millis(300),
        timeout: Duration::from_secs(10),
    };
    let mut json = false;
    let mut p = lexopt::Parser::from_args(args);
    let parsed: Result<bool, String> = (|| {
        while let Some(arg) = p.next().map_err(|e| e.to_string())? {
            match arg {
                Long("rounds") => cfg.rounds = number(&mut p, "--rounds", 1, 10_000)?,
                Long("block-ms") => {
                    cfg.block =
                        Duration::from_millis(number(&mut p, "--block-ms", 1, 3_600_000)? as u64)
                }
                Long("program") => {
                    let v = value(&mut p, "--program")?;
                    if v.is_empty() {
                        return Err("--program: empty path".into());
                    }
                    cfg.program = v;
                }
                Long("timeout") => cfg.timeout = parse_secs(&mut p, "--timeout")?,
                Long("json") => json = true,
                Short('h') | Long("help") => return Ok(false),
                _ => return Err(unexpected(arg, NAME)),
            }
        }
        Ok(true)
    })();
    match parsed {
        Ok(true) => {}
        Ok(false) => {
            print!("{SPAWN_HELP}");
            return Ok(());
        }
        Err(msg) => return Err(Failure::own(msg)),
    }
    let mut watch = Watch::new()?;
    let variants = contain::spawn_rates(&cfg, &mut watch).map_err(|e| watch.failure(e))?;
    watch.progress.clear();
    if json {
        println!("{}", spawn_json(&cfg, &variants));
    } else {
        print!("{}", header());
        print!("{}", contain::spawn_report(&cfg, &variants));
    }
    Ok(())
}

fn header() -> String {
    format!(
        "pidreap {} bench: Linux {}, {} CPUs, spawn path: {}\n",
        env!("CARGO_PKG_VERSION"),
        kernel(),
        cpus(),
        Reaper::spawn_mode()
    )
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

fn list(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|&x| num(x)).collect();
    format!("[{}]", items.join(","))
}

/// `{"median":..,"min":..,"max":..,"per_round":[..]}` of ratios, or null.
fn json_ratios(r: &[f64]) -> String {
    if r.is_empty() {
        return "null".into();
    }
    let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{{\"median\":{},\"min\":{},\"max\":{},\"per_round\":{}}}",
        num(median(r)),
        num(lo),
        num(hi),
        list(r)
    )
}

fn spawn_json(cfg: &SpawnConfig, variants: &[SpawnVariant]) -> String {
    let base = &variants[0];
    let items: Vec<String> = variants
        .iter()
        .map(|v| {
            format!(
                "{{\"containment\":{},\"skipped\":{},\"rates_per_s\":{},\"median_rate_per_s\":{},\
                 \"vs_none\":{},\"goal\":{}}}",
                json_str(v.containment.name()),
                v.skipped.as_deref().map_or("null".into(), json_str),
                list(&v.rates),
                num(median(&v.rates)),
                json_ratios(&v.ratios(base)),
                contain::spawn_goal(v.containment).map_or("null".into(), num),
            )
        })
        .collect();
    format!(
        "{{\"pidreap_version\":{},\"kernel\":{},\"cpus\":{},\"spawn_mode\":{},\"program\":{},\
         \"rounds\":{},\"block_ms\":{},\"variants\":[{}]}}",
        json_str(env!("CARGO_PKG_VERSION")),
        json_str(&kernel()),
        cpus(),
        json_str(Reaper::spawn_mode()),
        json_str(&cfg.program),
        cfg.rounds,
        cfg.block.as_millis(),
        items.join(",")
    )
}

// ---------------------------------------------------------------------------
// kill-tree

fn kill_tree(args: Vec<OsString>) -> Result<(), Failure> {
    use lexopt::prelude::*;
    const NAME: &str = "kill-tree";
    let mut cfg = TreeConfig {
        processes: 1000,
        rounds: 10,
        timeout: Duration::from_secs(60),
        // Should this process be SIGKILLed before its guards run, the
        // sleeps end by themselves this soon.
        sleep_secs: 60,
    };
    let mut json = false;
    let mut p = lexopt::Parser::from_args(args);
    let parsed: Result<bool, String> = (|| {
        while let Some(arg) = p.next().map_err(|e| e.to_string())? {
            match arg {
                Long("processes") => cfg.processes = number(&mut p, "--processes", 2, 30_000)?,
                Long("rounds") => cfg.rounds = number(&mut p, "--rounds", 1, 10_000)?,
                Long("timeout") => cfg.timeout = parse_secs(&mut p, "--timeout")?,
                Long("sleep") => cfg.sleep_secs = number(&mut p, "--sleep", 1, 86_400)? as u32,
                Long("json") => json = true,
                Short('h') | Long("help") => return Ok(false),
                _ => return Err(unexpected(arg, NAME)),
            }
        }
        Ok(true)
    })();
    match parsed {
        Ok(true) => {}
        Ok(false) => {
            print!("{TREE_HELP}");
            return Ok(());
        }
        Err(msg) => return Err(Failure::own(msg)),
    }
    // The floor holds a pidfd per process.
    let needed = cfg.processes as u64 + 256;
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    if soft < needed {
        let now = pidreap::raise_fd_limit()
            .map_err(|e| Failure::own(format!("raising the fd limit: {e}")))?;
        if now < needed {
            return Err(Failure::own(format!(
                "--processes {} needs about {needed} fds but the hard RLIMIT_NOFILE is {now}",
                cfg.processes
            )));
        }
    }
    let mut watch = Watch::new()?;
    let r = contain::tree_kill(&cfg, &mut watch).map_err(|e| watch.failure(e))?;
    watch.progress.clear();
    if json {
        println!("{}", tree_json(&cfg, &r));
    } else {
        print!("{}", header());
        print!("{}", contain::tree_report(&cfg, &r));
    }
    Ok(())
}

fn tree_json(cfg: &TreeConfig, r: &TreeKill) -> String {
    let vs_floor = |v: &[f64]| -> Vec<f64> { v.iter().zip(&r.floor).map(|(a, b)| a / b).collect() };
    let note = |n: &Option<String>| n.as_deref().map_or("null".into(), json_str);
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"pidreap_version\":{},\"kernel\":{},\"cpus\":{},\"processes\":{},\"rounds\":{},\
         \"cgroup_empty_us\":{},\"cgroup_all_us\":{},\"cgroup_note\":{},\
         \"group_us\":{},\"floor_us\":{},\"library_us\":{},\"library_note\":{},\
         \"cgroup_empty_vs_floor\":{},\"cgroup_all_vs_floor\":{},\"group_vs_floor\":{},\
         \"library_vs_floor\":{}}}",
        json_str(env!("CARGO_PKG_VERSION")),
        json_str(&kernel()),
        cpus(),
        cfg.processes,
        cfg.rounds,
        json_stats(&r.cgroup_empty),
        json_stats(&r.cgroup_all),
        note(&r.cgroup_note),
        json_stats(&r.group),
        json_stats(&r.floor),
        json_stats(&r.library),
        note(&r.library_note),
        json_ratios(&vs_floor(&r.cgroup_empty)),
        json_ratios(&vs_floor(&r.cgroup_all)),
        json_ratios(&vs_floor(&r.group)),
        json_ratios(&vs_floor(&r.library)),
    );
    out
}
