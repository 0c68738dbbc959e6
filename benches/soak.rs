//! Soak: N spawn-and-stop cycles through the library in one process, in the
//! spawn mode the environment forces, checking that nothing accumulates:
//! open fds, zombies, unreaped children, resident memory.
//!
//! Each cycle spawns a child that would run for ever, stops it with SIGTERM
//! and waits (bounded) for its exit, then checks it died of that SIGTERM:
//!
//! - most cycles: `sleep 1000` through a [`pidreap::Reaper`], stopped with
//!   [`Reaper::stop`](pidreap::Reaper::stop) (a stop ladder: SIGTERM, a 5 s
//!   grace, SIGKILL) and waited for with [`Reaper::wait`](pidreap::Reaper::wait);
//! - every 4th: `cat` with all three stdio piped (it waits on its stdin,
//!   whose write end this process holds until the child is reaped);
//! - every 8th (a subset of the 4th): in a process group of its own, so the
//!   ladder signals the group;
//! - every 10th (at 5 mod 10): through the public primitive
//!   [`pidreap::spawn`] and its [`PidFd`](pidreap::PidFd):
//!   `send_signal(TERM)` then `wait_timeout`; half of these `cat` with
//!   piped stdio. Where `pidreap::spawn` is refused with
//!   `Error::Unsupported` (no pidfds: the no-pidfd mode), these go through
//!   the `Reaper` instead, and the report says so.
//!
//! After a warm-up (1,000 cycles, or a tenth of N if smaller) it records a
//! baseline, then a checkpoint every 10 % of N: open fds (`/proc/self/fd`),
//! zombie children and all unreaped children of this process (from
//! `/proc/*/stat`), children the reaper still supervises, RSS
//! (`/proc/self/statm`), and under cgroup containment the cgroups the
//! reaper made (its home, and any child's leaf left behind). It exits
//! non-zero when, at the end, the fds, the unreaped children or the
//! cgroups differ from the baseline, any zombie was seen at a checkpoint,
//! RSS grew by more than [`RSS_BOUND`], or any child ended other than by
//! the SIGTERM; a wait that runs out ([`WAIT_BOUND`]) fails at once with a
//! message.
//!
//! `SOAK_INJECT_LEAK=1` checks the checks: halfway through it leaks on
//! purpose (a `pidreap::spawn` child of `true` forgotten unreaped with its
//! pidfd, 2 MiB of written heap, and under cgroup containment an empty
//! cgroup named like the reaper's), and the soak must then fail on fds,
//! zombies, unreaped children, RSS (and cgroups).
//!
//! `cargo bench --bench soak -- [CYCLES] [cgroup]` (or `SOAK_CYCLES=N`,
//! `SOAK_CONTAINMENT=cgroup`); default 100,000 cycles. `cgroup` spawns the
//! `Reaper` children with `Containment::Cgroup` (the primitive's cycles
//! stay uncontained: `pidreap::spawn` refuses cgroups). The spawn path is
//! the one `PIDREAP_TEST_SPAWN_MODE` forces (feature `testing`, on in
//! benches), e.g.
//! `PIDREAP_TEST_SPAWN_MODE=fork nice cargo bench --bench soak`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pidreap::{Command, Containment, Reaper, Signal, Stdio, StopLadder};

/// How long one child may take from its SIGTERM to its reap before the
/// soak fails as hung: the ladder's grace (5 s) and then some, on a
/// machine shared with other builds.
const WAIT_BOUND: Duration = Duration::from_secs(20);

/// The grace of the ladder between SIGTERM and SIGKILL. `sleep` and `cat`
/// die of SIGTERM's default action, so a child that reaches SIGKILL is an
/// anomaly the soak reports.
const GRACE: Duration = Duration::from_secs(5);

/// How much RSS may grow from the baseline (after warm-up) to the end.
///
/// 1 MiB: with one child at a time, every per-cycle structure (the
/// engine's slab slot, the plan's C strings, the event queue) is reused,
/// so after the warm-up RSS should only move by allocator noise (a few
/// pages). A leak of one heap allocation per cycle (glibc's smallest chunk
/// is 32 bytes) grows RSS by 3 MiB over 100,000 cycles, so it exceeds the
/// bound from about 33,000 cycles on; at 20,000 cycles the growth per
/// cycle is printed beside it for a reader to judge.
const RSS_BOUND: i64 = 1 << 20;

const DEFAULT_CYCLES: u64 = 100_000;
const WARMUP: u64 = 1_000;

/// What one cycle does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ReaperSleep,
    ReaperPiped,
    ReaperPipedGroup,
    SpawnSleep,
    SpawnPiped,
}

impl Kind {
    fn of(i: u64) -> Kind {
        if i % 10 == 5 {
            if i % 20 == 15 {
                Kind::SpawnPiped
            } else {
                Kind::SpawnSleep
            }
        } else if i.is_multiple_of(8) {
            Kind::ReaperPipedGroup
        } else if i.is_multiple_of(4) {
            Kind::ReaperPiped
        } else {
            Kind::ReaperSleep
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::ReaperSleep => "Reaper: sleep",
            Kind::ReaperPiped => "Reaper: cat, piped stdio",
            Kind::ReaperPipedGroup => "Reaper: cat, piped, own process group",
            Kind::SpawnSleep => "spawn+PidFd: sleep",
            Kind::SpawnPiped => "spawn+PidFd: cat, piped stdio",
        }
    }
}

/// The commands, built once.
struct Commands {
    sleep: Command,
    piped: Command,
    piped_group: Command,
    /// For `pidreap::spawn`: never cgroup-contained.
    spawn_sleep: Command,
    spawn_piped: Command,
}

impl Commands {
    fn new(containment: Containment) -> Commands {
        let ladder = StopLadder::new(Signal::TERM, GRACE);
        let sleep = |c: Containment| {
            let mut cmd = Command::new("sleep");
            cmd.arg("1000")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .stop_ladder(ladder.clone())
                .containment(c);
            cmd
        };
        let piped = |c: Containment| {
            let mut cmd = Command::new("cat");
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .stop_ladder(ladder.clone())
                .containment(c);
            cmd
        };
        let mut piped_group = piped(containment);
        piped_group.process_group(0);
        Commands {
            sleep: sleep(containment),
            piped: piped(containment),
            piped_group,
            spawn_sleep: sleep(Containment::None),
            spawn_piped: piped(Containment::None),
        }
    }
}

/// What the soak counts as it goes.
#[derive(Default)]
struct Tally {
    by_kind: BTreeMap<Kind, u64>,
    /// Why `pidreap::spawn` is refused here (`Error::Unsupported`, as where
    /// the kernel gives no pidfd): its cycles then go through the
    /// `Reaper` instead, and the report says so.
    primitive_refused: Option<String>,
    /// Children that ended other than by the SIGTERM, with how.
    anomalies: Vec<String>,
}

/// Runs cycle `i`; `Err` when a wait ran out or a call failed (the soak
/// stops there).
fn cycle(i: u64, reaper: &mut Reaper, cmds: &Commands, tally: &mut Tally) -> Result<(), String> {
    let kind = match Kind::of(i) {
        Kind::SpawnSleep if tally.primitive_refused.is_some() => Kind::ReaperSleep,
        Kind::SpawnPiped if tally.primitive_refused.is_some() => Kind::ReaperPiped,
        kind => kind,
    };
    let status = match kind {
        Kind::ReaperSleep | Kind::ReaperPiped | Kind::ReaperPipedGroup => {
            let cmd = match kind {
                Kind::ReaperSleep => &cmds.sleep,
                Kind::ReaperPiped => &cmds.piped,
                _ => &cmds.piped_group,
            };
            // The pipe ends live until the child is reaped, so `cat` can
            // only end by the signal.
            let child = reaper
                .spawn(cmd)
                .map_err(|e| format!("cycle {i} ({}): spawn: {e}", kind.name()))?;
            reaper
                .stop(child.id())
                .map_err(|e| format!("cycle {i} ({}): stop: {e}", kind.name()))?;
            let exit = reaper
                .wait(child.id(), Some(WAIT_BOUND))
                .map_err(|e| format!("cycle {i} ({}): wait: {e}", kind.name()))?
                .ok_or_else(|| {
                    format!(
                        "cycle {i} ({}): pid {} not reaped {WAIT_BOUND:?} after its SIGTERM \
                         (phase {:?})",
                        kind.name(),
                        child.pid(),
                        reaper.phase(child.id())
                    )
                })?;
            drop(child);
            exit.status
        }
        Kind::SpawnSleep | Kind::SpawnPiped => {
            let cmd = if kind == Kind::SpawnSleep {
                &cmds.spawn_sleep
            } else {
                &cmds.spawn_piped
            };
            let mut spawned = match pidreap::spawn(cmd) {
                Ok(s) => s,
                Err(e @ pidreap::Error::Unsupported { .. }) => {
                    println!("(pidreap::spawn refused: {e}; its cycles go through the Reaper)");
                    tally.primitive_refused = Some(e.to_string());
                    return cycle(i, reaper, cmds, tally);
                }
                Err(e) => return Err(format!("cycle {i} ({}): spawn: {e}", kind.name())),
            };
            let sent = spawned
                .pidfd
                .send_signal(Signal::TERM)
                .map_err(|e| format!("cycle {i} ({}): send_signal: {e}", kind.name()))?;
            if !sent {
                return Err(format!(
                    "cycle {i} ({}): pid {} already reaped before its SIGTERM",
                    kind.name(),
                    spawned.pid()
                ));
            }
            let reaped = spawned
                .pidfd
                .wait_timeout(WAIT_BOUND)
                .map_err(|e| format!("cycle {i} ({}): wait_timeout: {e}", kind.name()))?
                .ok_or_else(|| {
                    format!(
                        "cycle {i} ({}): pid {} not reaped {WAIT_BOUND:?} after its SIGTERM",
                        kind.name(),
                        spawned.pid()
                    )
                })?;
            reaped.status
        }
    };
    *tally.by_kind.entry(kind).or_default() += 1;
    if status.signal() != Some(Signal::TERM) {
        // The first few in full; the rest only counted.
        let what = if tally.anomalies.len() < 20 {
            format!("cycle {i} ({}): {status:?}", kind.name())
        } else {
            String::new()
        };
        tally.anomalies.push(what);
    }
    Ok(())
}

/// `SOAK_INJECT_LEAK=1`: leaks one fd, one zombie, 2 MiB of RSS and (when
/// `cgroup` is given) one empty cgroup, so that a run shows each check
/// failing.
fn inject_leak(cgroup: Option<&std::path::Path>) -> Result<(), String> {
    if let Some(own) = cgroup {
        let dir = own.join(format!("pidreap-{}-soak-leak", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("inject: mkdir {}: {e}", dir.display()))?;
    }
    let spawned = pidreap::spawn(&Command::new("true")).map_err(|e| format!("inject: {e}"))?;
    std::mem::forget(spawned);
    let ballast = vec![1u8; 2 << 20];
    std::mem::forget(std::hint::black_box(ballast));
    Ok(())
}

/// One row of the table.
#[derive(Clone, Copy)]
struct Sample {
    cycles: u64,
    elapsed: Duration,
    fds: usize,
    zombies: usize,
    children: usize,
    supervised: usize,
    /// Cgroups of this process's reapers, when they are counted.
    cgroups: Option<usize>,
    rss: i64,
}

fn open_fds() -> usize {
    // The directory's own fd is counted too, at every sample alike.
    std::fs::read_dir("/proc/self/fd")
        .expect("reading /proc/self/fd")
        .count()
}

/// (zombie children, all children) of this process, from `/proc/*/stat`.
fn children() -> (usize, usize) {
    let me = std::process::id().to_string();
    let (mut zombies, mut all) = (0, 0);
    for entry in std::fs::read_dir("/proc").expect("reading /proc").flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // Gone since the listing: not ours to count.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (Some(state), Some(ppid)) = (fields.next(), fields.next()) else {
            continue;
        };
        if ppid == me {
            all += 1;
            if state == "Z" {
                zombies += 1;
            }
        }
    }
    (zombies, all)
}

/// This process's cgroup v2 directory: the first cgroup2 mount in
/// `/proc/self/mountinfo` (the one whose root is `/`) joined with the
/// `0::` line of `/proc/self/cgroup`. `None` when either is missing (the
/// cgroup column is then left out).
fn own_cgroup_dir() -> Option<std::path::PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        (right.starts_with("cgroup2 ") && fields.get(3) == Some(&"/")).then(|| fields[4].to_owned())
    })?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(std::path::Path::new(&mount).join(own.trim_start_matches('/')))
}

/// The cgroups this process's reapers made (`pidreap-<pid>-*` below our
/// own cgroup, and every cgroup below those): the home is one, and each
/// child's leaf must be gone once the child is reaped.
fn own_cgroups(own: &std::path::Path) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        1 + std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| count(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    }
    let prefix = format!("pidreap-{}-", std::process::id());
    std::fs::read_dir(own)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with(&prefix))
                })
                .map(|e| count(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("reading /proc/self/statm");
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm's second field");
    pages * rustix::param::page_size() as i64
}

fn sample(
    cycles: u64,
    started: Instant,
    reaper: &Reaper,
    cgroup: Option<&std::path::Path>,
) -> Sample {
    let (zombies, children) = children();
    Sample {
        cgroups: cgroup.map(own_cgroups),
        cycles,
        elapsed: started.elapsed(),
        fds: open_fds(),
        zombies,
        children,
        supervised: reaper.len(),
        rss: rss_bytes(),
    }
}

fn print_header() {
    println!(
        "{:>10} {:>9} {:>10} {:>5} {:>7} {:>8} {:>10} {:>7} {:>10}",
        "cycles",
        "elapsed",
        "cycles/s",
        "fds",
        "zombies",
        "children",
        "supervised",
        "cgroups",
        "RSS KiB"
    );
}

fn print_row(s: &Sample, prev: Option<&Sample>) {
    let rate = match prev {
        Some(p) if s.elapsed > p.elapsed => {
            format!(
                "{:.0}",
                (s.cycles - p.cycles) as f64 / (s.elapsed - p.elapsed).as_secs_f64()
            )
        }
        _ => "-".into(),
    };
    println!(
        "{:>10} {:>8.1}s {:>10} {:>5} {:>7} {:>8} {:>10} {:>7} {:>10}",
        s.cycles,
        s.elapsed.as_secs_f64(),
        rate,
        s.fds,
        s.zombies,
        s.children,
        s.supervised,
        s.cgroups.map_or("-".into(), |n| n.to_string()),
        s.rss / 1024
    );
    let _ = std::io::stdout().flush();
}

/// Cycles and containment from the arguments, else the environment.
fn config() -> Result<(u64, Containment), String> {
    let mut cycles = std::env::var("SOAK_CYCLES")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim()
                .replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("SOAK_CYCLES={v:?}: {e}"))
        })
        .transpose()?
        .unwrap_or(DEFAULT_CYCLES);
    let containment = |s: &str| match s {
        "none" => Ok(Containment::None),
        "cgroup" => Ok(Containment::Cgroup),
        other => Err(format!(
            "unknown containment {other:?}: expected none or cgroup"
        )),
    };
    let mut contain = match std::env::var("SOAK_CONTAINMENT") {
        Ok(v) if !v.is_empty() => containment(&v)?,
        _ => Containment::None,
    };
    for arg in std::env::args().skip(1) {
        // `cargo bench` adds `--bench`.
        if arg.starts_with("--") {
            continue;
        }
        match arg.replace('_', "").parse::<u64>() {
            Ok(n) => cycles = n,
            Err(_) => contain = containment(&arg)?,
        }
    }
    if cycles < 10 {
        return Err(format!("{cycles} cycles: at least 10 are needed"));
    }
    Ok((cycles, contain))
}

fn main() -> ExitCode {
    let (cycles, containment) = match config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let forced = std::env::var("PIDREAP_TEST_SPAWN_MODE").unwrap_or_default();
    let inject = std::env::var_os("SOAK_INJECT_LEAK").is_some_and(|v| v == "1");
    if containment == Containment::Cgroup {
        if let Err(e) = Containment::Cgroup.check() {
            println!("SKIPPED: {e}");
            return ExitCode::from(2);
        }
    }
    let fds_before_reaper = open_fds();
    let mut reaper = match Reaper::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: Reaper::new: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cmds = Commands::new(containment);
    let mut tally = Tally::default();
    let warmup = WARMUP.min(cycles / 10);

    // The spawn path is applied on the first spawn: warm up, then name it.
    let mut i = 0u64;
    let run = |i: &mut u64, n: u64, reaper: &mut Reaper, tally: &mut Tally| {
        for _ in 0..n {
            cycle(*i, reaper, &cmds, tally)?;
            *i += 1;
        }
        Ok::<(), String>(())
    };
    if let Err(e) = run(&mut i, warmup, &mut reaper, &mut tally) {
        println!("FAILED during warm-up: {e}");
        return ExitCode::FAILURE;
    }
    common::banner(&format!(
        "soak: {cycles} spawn-and-stop cycles, PIDREAP_TEST_SPAWN_MODE={}, containment {}",
        if forced.is_empty() {
            "(unset)"
        } else {
            &forced
        },
        containment.name()
    ));
    println!(
        "pid {}, RSS bound {} KiB, wait bound {WAIT_BOUND:?}, warm-up {warmup} cycles",
        std::process::id(),
        RSS_BOUND / 1024
    );

    let cgroup_dir = if containment == Containment::Cgroup {
        let dir = own_cgroup_dir();
        match &dir {
            Some(d) => println!("cgroups counted below {}", d.display()),
            None => println!("(cgroups not counted: no cgroup2 mount with root / found)"),
        }
        dir
    } else {
        None
    };
    print_header();
    let started = Instant::now();
    let baseline = sample(0, started, &reaper, cgroup_dir.as_deref());
    print_row(&baseline, None);
    let mut rows = vec![baseline];
    let mut failure = None;
    let mut done = 0;
    for step in 1..=10 {
        let target = cycles * step / 10;
        if inject && step == 6 {
            println!("(SOAK_INJECT_LEAK: leaking one fd, one zombie, 2 MiB (and a cgroup) now)");
            if let Err(e) = inject_leak(cgroup_dir.as_deref()) {
                failure = Some(e);
                break;
            }
        }
        if let Err(e) = run(&mut i, target - done, &mut reaper, &mut tally) {
            failure = Some(e);
            break;
        }
        done = target;
        let s = sample(done, started, &reaper, cgroup_dir.as_deref());
        print_row(&s, rows.last());
        rows.push(s);
    }
    let last = *rows.last().expect("baseline");
    let wall = last.elapsed;

    println!();
    if let Some(why) = &tally.primitive_refused {
        println!("pidreap::spawn was refused ({why}): its cycles ran through the Reaper");
    }
    println!("cycles by kind (warm-up included):");
    for (kind, n) in &tally.by_kind {
        println!("  {:<40} {n}", kind.name());
    }
    let rss_growth = last.rss - baseline.rss;
    println!(
        "summary: {done} cycles in {:.1} s = {:.0} cycles/s; fds {} -> {}; zombies max {}; \
         unreaped children {} -> {}; RSS {} KiB -> {} KiB ({:+} KiB, {:+.2} B/cycle)",
        wall.as_secs_f64(),
        done as f64 / wall.as_secs_f64().max(1e-9),
        baseline.fds,
        last.fds,
        rows.iter().map(|r| r.zombies).max().unwrap_or(0),
        baseline.children,
        last.children,
        baseline.rss / 1024,
        last.rss / 1024,
        rss_growth / 1024,
        rss_growth as f64 / done.max(1) as f64,
    );

    let mut problems = Vec::new();
    if let Some(e) = failure {
        problems.push(e);
    }
    if last.fds != baseline.fds {
        problems.push(format!("open fds {} -> {}", baseline.fds, last.fds));
    }
    if let Some(r) = rows.iter().find(|r| r.zombies > 0) {
        problems.push(format!("{} zombie(s) at {} cycles", r.zombies, r.cycles));
    }
    if last.children != baseline.children {
        problems.push(format!(
            "unreaped children {} -> {}",
            baseline.children, last.children
        ));
    }
    if last.cgroups != baseline.cgroups {
        problems.push(format!(
            "cgroups of this process {:?} -> {:?}",
            baseline.cgroups, last.cgroups
        ));
    }
    if last.supervised != 0 {
        problems.push(format!("{} children still supervised", last.supervised));
    }
    if rss_growth > RSS_BOUND {
        problems.push(format!(
            "RSS grew {} KiB (bound {} KiB)",
            rss_growth / 1024,
            RSS_BOUND / 1024
        ));
    }
    if !tally.anomalies.is_empty() {
        problems.push(format!(
            "{} child(ren) did not end by the SIGTERM: {}",
            tally.anomalies.len(),
            tally
                .anomalies
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }

    drop(reaper);
    if let (true, Some(own)) = (inject, &cgroup_dir) {
        let _ = std::fs::remove_dir(own.join(format!("pidreap-{}-soak-leak", std::process::id())));
    }
    println!(
        "fds before the reaper was made {fds_before_reaper}, after it was dropped {} \
         (informational)",
        open_fds()
    );
    if problems.is_empty() {
        println!("PASSED");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            println!("FAILED: {p}");
        }
        ExitCode::FAILURE
    }
}
