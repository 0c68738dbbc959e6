//! `pidreap-bench` (also run as `pidreap bench`): kill-to-reap latency and
//! spawn-and-reap cost on the user's own machine and kernel, with other
//! live children and resident ballast as asked.
//!
//! It measures pidreap. Beside it, interleaved, it measures a reference: a
//! hand-written pidfd + epoll loop on std's spawn (posix_spawn, no
//! PDEATHSIG, nothing moved high), sharing this process and its fd table.
//! That loop, the statistics and the settling of children are the
//! `pidreap_bench` library's, the same code the `cargo bench` benches use.
//! The cross-library baselines (tokio, thread-per-child, `pre_exec`) are in
//! `cargo bench`.
//!
//! Named scenarios (`pidreap bench NAME`, see [`scenarios`]) measure other
//! things: what containing a child's whole tree costs.
#![forbid(unsafe_code)]

mod scenarios;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use pidreap::{Command, Event, Reaper, Signal, Stdio};

use pidreap_bench::{parse_size, settle, us, RawLoop, Settle, Stats};

/// Exit code for bad flags or values, and for the bench's own failures
/// (what [`pidreap::Error::exit_code`] gives for anything but an exec
/// failure).
const EXIT_OWN_ERROR: i32 = 125;

/// What the kill-to-reap children (and the other live children) run.
const SLEEP: &str = "sleep";
/// pidreap's sleepers die with the bench (PDEATHSIG), whenever it ends.
const SLEEP_ARG: &str = "3600";
/// The reference loop's sleepers have no parent-death signal (that is the
/// baseline's point), so they get a short life of their own: should the
/// bench be SIGKILLed, they outlive it by this much at most. A reference
/// child is SIGKILLed within its settle bound (1 s) of starting.
const REF_SLEEP_ARG: &str = "20";

/// Signals that end the bench early. They are read from the reaper's
/// signalfd between iterations, so that every child is stopped and reaped
/// before the bench exits with 128 + the signal.
const STOP: [Signal; 4] = [Signal::INT, Signal::TERM, Signal::HUP, Signal::QUIT];

const HELP: &str = "\
pidreap bench: measure kill-to-reap latency and spawn-and-reap cost here

Usage: pidreap bench [OPTIONS]
       pidreap bench SCENARIO [OPTIONS]
       pidreap-bench [OPTIONS]

Scenarios (each has its own --help):
  spawn-contained   spawn-and-reap rate under each Containment, vs None
  kill-tree         kill and reap a 1,000-process tree: cgroup.kill,
                    kill(-pgid), and the floor (SIGKILL each by pidfd)

Options:
  --children N      other live supervised children during the measurement [0]
  --iterations N    samples per figure [300]
  --rss SIZE        resident ballast in this process, every page touched
                    (e.g. 512M, 1G, 4GiB) [0]
  --program PATH    the program spawned and reaped for the spawn figure; it
                    must exit by itself [/bin/true]
  --arg ARG         one argument for --program (repeatable)
  --args 'A B C'    arguments for --program, split at whitespace
  --timeout SECS    longest wait for one child [10]
  --no-reference    measure pidreap only (no raw pidfd loop column)
  --json            print one JSON object instead of tables
  -h, --help        this text

Kill-to-reap: a `sleep` child is SIGKILLed once it sleeps; the figure is the
time until pidreap has reaped it and holds its status. Spawn: PROGRAM is
spawned (with PDEATHSIG and a pidfd) and reaped, back to back; the figure is
the time from the spawn call to the reap, and its rate.

The reference column is a minimal pidfd + epoll loop over std's spawn
(posix_spawn, no PDEATHSIG), run interleaved in this same process.

Ctrl-C, SIGTERM, SIGHUP or SIGQUIT end the run early: every child is stopped
and reaped first, then pidreap exits with 128 + the signal number.

Exit status: 0 when measured; 125 for bad flags or values or a failure of
pidreap's own; 126 or 127 when PROGRAM cannot be executed or is not found;
128 + N when interrupted by signal N.
";

#[derive(Debug, Clone)]
struct Options {
    children: usize,
    iterations: usize,
    rss: u64,
    program: OsString,
    args: Vec<OsString>,
    timeout: Duration,
    reference: bool,
    json: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            children: 0,
            iterations: 300,
            rss: 0,
            program: "/bin/true".into(),
            args: Vec::new(),
            timeout: Duration::from_secs(10),
            reference: true,
            json: false,
        }
    }
}

/// A failure with its exit code; printed as one line.
#[derive(Debug)]
struct Failure {
    code: i32,
    msg: String,
}

impl Failure {
    fn own(msg: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_OWN_ERROR,
            msg: msg.into(),
        }
    }

    fn interrupted(signal: Signal) -> Failure {
        Failure {
            code: 128 + signal.as_raw(),
            msg: format!("interrupted by {signal}; every child was stopped and reaped"),
        }
    }
}

fn main() {
    std::process::exit(bench(std::env::args_os().skip(1).collect()));
}

/// Runs the bench with `args`; returns the exit code.
fn bench(args: Vec<OsString>) -> i32 {
    // Before any thread exists: Ctrl-C and friends wait in the reaper's
    // signalfd, so that an interrupted bench cleans up before it exits.
    if let Err(e) = pidreap::block_signals(&STOP) {
        eprintln!("pidreap: error: {e}");
        return EXIT_OWN_ERROR;
    }
    if let Some(name) = args.first().and_then(|a| a.to_str()) {
        if scenarios::NAMES.contains(&name) {
            let name = name.to_string();
            return scenarios::run(&name, args.into_iter().skip(1).collect());
        }
    }
    let opts = match parse(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{HELP}");
            return 0;
        }
        Err(msg) => {
            eprintln!("pidreap: error: {msg}");
            return EXIT_OWN_ERROR;
        }
    };
    match run(&opts) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("pidreap: error: {}", f.msg.replace('\n', " "));
            f.code
        }
    }
}

/// `Ok(None)` for `--help`.
fn parse(args: Vec<OsString>) -> Result<Option<Options>, String> {
    use lexopt::prelude::*;
    let mut opts = Options::default();
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("children") => opts.children = number(&mut p, "--children", 0, 1_000_000)?,
            Long("iterations") => opts.iterations = number(&mut p, "--iterations", 1, 10_000_000)?,
            Long("rss") => {
                let v = value(&mut p, "--rss")?;
                opts.rss = parse_size(&v)
                    .ok_or_else(|| format!("--rss: not a size: {v:?} (try 512M or 1G)"))?;
                if opts.rss > 1 << 40 {
                    return Err(format!("--rss: {v} is more than 1 TiB"));
                }
            }
            Long("program") => {
                let v = p.value().map_err(|e| e.to_string())?;
                if v.is_empty() {
                    return Err("--program: empty path".into());
                }
                opts.program = v;
            }
            Long("arg") => opts.args.push(p.value().map_err(|e| e.to_string())?),
            Long("args") => {
                let v = value(&mut p, "--args")?;
                opts.args.extend(v.split_whitespace().map(OsString::from));
            }
            Long("timeout") => {
                let v = value(&mut p, "--timeout")?;
                let secs: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("--timeout: not a number of seconds: {v:?}"))?;
                if !(secs > 0.0 && secs <= 86_400.0) {
                    return Err(format!("--timeout: {v} is out of range (0 to 86400 s)"));
                }
                opts.timeout = Duration::from_secs_f64(secs);
            }
            Long("no-reference") => opts.reference = false,
            Long("json") => opts.json = true,
            Short('h') | Long("help") => return Ok(None),
            _ => return Err(format!("{} (see pidreap bench --help)", arg.unexpected())),
        }
    }
    Ok(Some(opts))
}

fn value(p: &mut lexopt::Parser, flag: &str) -> Result<String, String> {
    let v = p.value().map_err(|e| e.to_string())?;
    v.into_string()
        .map_err(|v| format!("{flag}: not valid UTF-8: {v:?}"))
}

fn number(p: &mut lexopt::Parser, flag: &str, min: usize, max: usize) -> Result<usize, String> {
    let v = value(p, flag)?;
    let n: usize = v
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{flag}: not a whole number: {v:?}"))?;
    if n < min || n > max {
        return Err(format!("{flag}: {n} is out of range ({min} to {max})"));
    }
    Ok(n)
}

// ---------------------------------------------------------------------------

/// A progress line on stderr, rewritten in place, only on a terminal.
struct Progress {
    on: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, msg: impl FnOnce() -> String) {
        if !self.on
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2Kpidreap bench: {}", msg());
        let _ = err.flush();
    }

    fn clear(&mut self) {
        if self.on {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
        self.last = None;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// How kill-to-reap children settle: until they have exec'd `sleep` and
/// sleep, so that the figure is the reap path and not a child still starting.
const SETTLE: Settle = Settle {
    first: Duration::from_micros(200),
    until_asleep: true,
};

fn pidreap_fail(what: &str) -> impl Fn(pidreap::Error) -> Failure + '_ {
    move |e| Failure::own(format!("{what}: {e}"))
}

/// What was measured.
struct Results {
    kill: Vec<f64>,
    kill_ref: Vec<f64>,
    spawn: Vec<f64>,
    spawn_ref: Vec<f64>,
    nonzero: usize,
    rss_bytes: u64,
    reference_note: Option<String>,
}

fn run(opts: &Options) -> Result<(), Failure> {
    // The fd limit first: the reaper places its long-lived fds by it.
    let needed = opts.children as u64 + 256;
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    if soft < needed {
        let now = pidreap::raise_fd_limit().map_err(pidreap_fail("raising the fd limit"))?;
        if now < needed {
            return Err(Failure::own(format!(
                "--children {} needs about {needed} fds but the hard RLIMIT_NOFILE is {now}; \
                 raise it (ulimit -Hn, LimitNOFILE=) or ask for fewer children",
                opts.children
            )));
        }
    }

    let mut progress = Progress::new();
    let mut ballast: Vec<u8> = Vec::new();
    if opts.rss > 0 {
        progress.show(|| format!("touching {} bytes of ballast", opts.rss));
        let n = usize::try_from(opts.rss)
            .map_err(|_| Failure::own("--rss: too large for this machine"))?;
        ballast
            .try_reserve_exact(n)
            .map_err(|_| Failure::own(format!("--rss: cannot allocate {} bytes", opts.rss)))?;
        // Writing every byte makes every page resident and private.
        ballast.resize(n, 0x5a);
        std::hint::black_box(&mut ballast);
    }

    let mut reaper = Reaper::builder()
        .handle_signals(&STOP)
        .build()
        .map_err(pidreap_fail("creating the reaper"))?;
    let mut sleeper = Command::new(SLEEP);
    sleeper
        .arg(SLEEP_ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());

    let outcome = measure(opts, &mut reaper, &sleeper, &mut progress);
    progress.show(|| "stopping the children".into());
    // Dropping the reaper would do this with a 1 s bound; thousands of
    // children may need longer.
    let ids: Vec<_> = reaper.children().collect();
    for id in ids {
        let _ = reaper.kill(id);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reaper.is_empty() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        if reaper.poll(Some(left)).is_err() {
            break;
        }
        while reaper.next_event().is_some() {}
    }
    progress.clear();
    let mut results = outcome?;
    results.rss_bytes = ballast.len() as u64;
    drop(ballast);
    if opts.json {
        println!("{}", json(opts, &results));
    } else {
        print!("{}", table(opts, &results));
    }
    Ok(())
}

fn measure(
    opts: &Options,
    reaper: &mut Reaper,
    sleeper: &Command,
    progress: &mut Progress,
) -> Result<Results, Failure> {
    for i in 0..opts.children {
        check_interrupt(reaper)?;
        progress.show(|| format!("starting other children {i}/{}", opts.children));
        reaper
            .spawn(sleeper)
            .map_err(|e| Failure::own(format!("starting other child {}: {e}", i + 1)))?;
    }

    let mut reference_note = None;
    let mut refloop = if opts.reference {
        match RawLoop::new() {
            Ok(r) => Some(r),
            Err(e) => {
                reference_note = Some(format!("reference off: epoll_create1: {e}"));
                None
            }
        }
    } else {
        None
    };

    let mut r = Results {
        kill: Vec::with_capacity(opts.iterations),
        kill_ref: Vec::with_capacity(opts.iterations),
        spawn: Vec::with_capacity(opts.iterations),
        spawn_ref: Vec::with_capacity(opts.iterations),
        nonzero: 0,
        rss_bytes: 0,
        reference_note: None,
    };

    // Kill-to-reap, pidreap and reference alternating who goes first.
    let mut std_sleeper = std::process::Command::new(SLEEP);
    std_sleeper
        .arg(REF_SLEEP_ARG)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for i in 0..opts.iterations {
        check_interrupt(reaper)?;
        progress.show(|| format!("kill-to-reap {i}/{}", opts.iterations));
        for turn in 0..2 {
            if (i + turn) % 2 == 0 {
                let child = reaper
                    .spawn(sleeper)
                    .map_err(pidreap_fail("spawning sleep"))?;
                settle(child.pid(), SLEEP, SETTLE);
                let t0 = Instant::now();
                reaper.kill(child.id()).map_err(pidreap_fail("kill"))?;
                let exit = reaper
                    .wait(child.id(), Some(opts.timeout))
                    .map_err(pidreap_fail("waiting"))?;
                let t1 = Instant::now();
                let exit = exit.ok_or_else(|| {
                    Failure::own("a SIGKILLed child was not reaped within --timeout")
                })?;
                if exit.status.signal() != Some(Signal::KILL) {
                    return Err(Failure::own(format!(
                        "the killed child ended with {}",
                        exit.status
                    )));
                }
                r.kill.push(us(t1 - t0));
            } else if let Some(lp) = refloop.as_mut() {
                match kill_ref_once(lp, &mut std_sleeper, opts.timeout) {
                    Ok(v) => r.kill_ref.push(v),
                    Err(e) => {
                        reference_note = Some(format!("reference off: {e}"));
                        refloop = None;
                        r.kill_ref.clear();
                    }
                }
            }
        }
    }

    // Spawn-and-reap of the user's program.
    let mut cmd = Command::new(&opts.program);
    cmd.args(&opts.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut std_cmd = std::process::Command::new(&opts.program);
    std_cmd
        .args(&opts.args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let program = opts.program.to_string_lossy();
    for i in 0..opts.iterations {
        check_interrupt(reaper)?;
        progress.show(|| format!("spawn-and-reap {i}/{}", opts.iterations));
        for turn in 0..2 {
            if (i + turn) % 2 == 0 {
                let t0 = Instant::now();
                let child = reaper.spawn(&cmd).map_err(|e| spawn_failure(&program, e))?;
                let exit = reaper
                    .wait(child.id(), Some(opts.timeout))
                    .map_err(pidreap_fail("waiting"))?;
                let t1 = Instant::now();
                let Some(exit) = exit else {
                    return Err(Failure::own(format!(
                        "{program} did not exit within {:?}; --program must exit by itself",
                        opts.timeout
                    )));
                };
                if !exit.status.success() {
                    r.nonzero += 1;
                }
                r.spawn.push(us(t1 - t0));
            } else if let Some(lp) = refloop.as_mut() {
                let t0 = Instant::now();
                let outcome = lp
                    .spawn(&mut std_cmd)
                    .and_then(|(key, _)| lp.wait_for(key, opts.timeout));
                match outcome {
                    Ok(true) => r.spawn_ref.push(us(t0.elapsed())),
                    Ok(false) => {
                        reference_note =
                            Some("reference off: the program did not exit in time".into());
                        refloop = None;
                        r.spawn_ref.clear();
                    }
                    Err(e) => {
                        reference_note = Some(format!("reference off: {e}"));
                        refloop = None;
                        r.spawn_ref.clear();
                    }
                }
            }
        }
    }
    // Exits of other children (none expected) are not ours to report.
    while let Some(ev) = reaper.next_event() {
        if let Event::Exited(exit) = ev {
            warn_other_exit(&exit.status);
        }
    }
    r.reference_note = reference_note;
    Ok(r)
}

/// Ends the measurement if one of [`STOP`] arrived. The caller's cleanup
/// (the reaper's children, the reference loop's on drop) then runs before
/// the bench exits. Other events at this point are exits of the other live
/// children, which nobody expects: they are logged.
fn check_interrupt(reaper: &mut Reaper) -> Result<(), Failure> {
    reaper
        .poll(Some(Duration::ZERO))
        .map_err(pidreap_fail("polling"))?;
    while let Some(ev) = reaper.next_event() {
        match ev {
            Event::Signal { signal, .. } => return Err(Failure::interrupted(signal)),
            Event::Exited(exit) => warn_other_exit(&exit.status),
            _ => {}
        }
    }
    Ok(())
}

/// One of the other live children ended, which nobody expects: a warning
/// line, since the figures were taken with one child fewer.
fn warn_other_exit(status: &pidreap::ExitStatus) {
    eprintln!("pidreap: warning: another child exited during the measurement: {status}");
}

fn kill_ref_once(
    lp: &mut RawLoop,
    cmd: &mut std::process::Command,
    timeout: Duration,
) -> std::io::Result<f64> {
    let (key, pid) = lp.spawn(cmd)?;
    settle(pid, SLEEP, SETTLE);
    let t0 = Instant::now();
    lp.signal(key, rustix::process::Signal::KILL)?;
    if !lp.wait_for(key, timeout)? {
        return Err(std::io::Error::other(
            "a SIGKILLed child was not reaped in time",
        ));
    }
    Ok(us(t0.elapsed()))
}

/// 127 when PROGRAM was not found, 126 when it could not be executed, 125
/// otherwise.
fn spawn_failure(program: &str, e: pidreap::Error) -> Failure {
    Failure {
        code: e.exit_code(),
        msg: format!("spawning {program}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Output

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_stats(samples: &[f64]) -> String {
    Stats::of(samples).map_or("null".into(), |s| {
        format!(
            "{{\"samples\":{},\"min\":{:.2},\"p50\":{:.2},\"p90\":{:.2},\"p99\":{:.2},\"max\":{:.2},\"mean\":{:.2}}}",
            s.samples, s.min, s.p50, s.p90, s.p99, s.max, s.mean
        )
    })
}

fn rate(samples: &[f64]) -> Option<f64> {
    let total: f64 = samples.iter().sum();
    (total > 0.0).then(|| samples.len() as f64 / (total / 1e6))
}

fn json_num(v: Option<f64>) -> String {
    v.map_or("null".into(), |v| format!("{v:.1}"))
}

fn json(opts: &Options, r: &Results) -> String {
    let args: Vec<String> = opts
        .args
        .iter()
        .map(|a| json_str(&a.to_string_lossy()))
        .collect();
    format!(
        "{{\"pidreap_version\":{},\"kernel\":{},\"cpus\":{},\"spawn_mode\":{},\"children\":{},\"iterations\":{},\
         \"rss_bytes\":{},\"program\":{},\"args\":[{}],\
         \"kill_to_reap_us\":{},\"kill_to_reap_reference_us\":{},\
         \"spawn_us\":{},\"spawn_rate_per_s\":{},\"spawn_nonzero_exits\":{},\
         \"spawn_reference_us\":{},\"spawn_reference_rate_per_s\":{},\"reference_note\":{}}}",
        json_str(env!("CARGO_PKG_VERSION")),
        json_str(&kernel()),
        cpus(),
        json_str(Reaper::spawn_mode()),
        opts.children,
        opts.iterations,
        r.rss_bytes,
        json_str(&opts.program.to_string_lossy()),
        args.join(","),
        json_stats(&r.kill),
        json_stats(&r.kill_ref),
        json_stats(&r.spawn),
        json_num(rate(&r.spawn)),
        r.nonzero,
        json_stats(&r.spawn_ref),
        json_num(rate(&r.spawn_ref)),
        r.reference_note.as_deref().map_or("null".into(), json_str),
    )
}

fn fmt_us(v: f64) -> String {
    if v >= 100_000.0 {
        format!("{:.0} ms", v / 1000.0)
    } else if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.1}")
    }
}

fn stats_row(out: &mut String, name: &str, samples: &[f64], extra: &str) {
    match Stats::of(samples) {
        Some(s) => {
            let _ = writeln!(
                out,
                "  {name:<24} {:>9} {:>9} {:>9} {:>9} {:>9}  {extra}",
                fmt_us(s.p50),
                fmt_us(s.p90),
                fmt_us(s.p99),
                fmt_us(s.max),
                fmt_us(s.mean)
            );
        }
        None => {
            let _ = writeln!(out, "  {name:<24} {:>9}", "-");
        }
    }
}

/// Ratio of two medians, as `1.04x`.
fn vs(a: &[f64], b: &[f64]) -> String {
    match (Stats::of(a), Stats::of(b)) {
        (Some(a), Some(b)) if b.p50 > 0.0 => format!("p50 {:.2}x the reference", a.p50 / b.p50),
        _ => String::new(),
    }
}

/// A text histogram over power-of-two microsecond buckets.
fn histogram(out: &mut String, title: &str, samples: &[f64]) {
    let Some(s) = Stats::of(samples) else { return };
    let bucket = |v: f64| (v.max(1.0)).log2().floor() as i32;
    let (lo, hi) = (bucket(s.min), bucket(s.max));
    let mut counts = vec![0usize; (hi - lo + 1) as usize];
    for &v in samples {
        counts[(bucket(v) - lo) as usize] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let _ = writeln!(out, "\n{title} (µs, {} samples):", samples.len());
    for (i, &c) in counts.iter().enumerate() {
        let from = 1u64 << (lo + i as i32);
        let bar = "#".repeat((c * 40).div_ceil(top));
        let _ = writeln!(out, "  {:>8} - {:<8} {:>6}  {bar}", from, from * 2, c);
    }
}

fn table(opts: &Options, r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pidreap {} bench: Linux {}, {} CPUs, spawn path: {}",
        env!("CARGO_PKG_VERSION"),
        kernel(),
        cpus(),
        Reaper::spawn_mode()
    );
    let _ = writeln!(
        out,
        "other live children: {}, resident ballast: {} MiB, iterations: {}",
        opts.children,
        r.rss_bytes >> 20,
        opts.iterations
    );
    let head = format!(
        "  {:<24} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p90", "p99", "max", "mean"
    );
    let _ = writeln!(
        out,
        "\nkill-to-reap: SIGKILL sent to exit reaped with its status (µs)"
    );
    let _ = writeln!(out, "{head}");
    stats_row(&mut out, "pidreap", &r.kill, &vs(&r.kill, &r.kill_ref));
    if opts.reference {
        stats_row(&mut out, "raw pidfd loop (ref)", &r.kill_ref, "");
    }
    let args = opts
        .args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(
        out,
        "\nspawn-and-reap of {}{}{}: spawn call to reaped (µs)",
        opts.program.to_string_lossy(),
        if args.is_empty() { "" } else { " " },
        args
    );
    let _ = writeln!(out, "{head}");
    let rate_of = |s: &[f64]| rate(s).map_or(String::new(), |v| format!("{v:.0}/s"));
    stats_row(
        &mut out,
        "pidreap",
        &r.spawn,
        format!("{}  {}", rate_of(&r.spawn), vs(&r.spawn, &r.spawn_ref)).trim(),
    );
    if opts.reference {
        stats_row(
            &mut out,
            "std posix_spawn (ref)",
            &r.spawn_ref,
            &rate_of(&r.spawn_ref),
        );
    }
    if r.nonzero > 0 {
        let _ = writeln!(
            out,
            "  ({} of {} exits were not 0)",
            r.nonzero,
            r.spawn.len()
        );
    }
    histogram(&mut out, "kill-to-reap, pidreap", &r.kill);
    histogram(&mut out, "spawn-and-reap, pidreap", &r.spawn);
    if opts.reference {
        let _ = writeln!(
            out,
            "\nref: a minimal pidfd + epoll loop over std's spawn (posix_spawn, no PDEATHSIG), interleaved, \
             in this process (same fd table). Baselines against tokio and others: cargo bench."
        );
    }
    if let Some(note) = &r.reference_note {
        let _ = writeln!(out, "{note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags() {
        let o = parse(args(&[
            "--children",
            "5",
            "--iterations=7",
            "--rss",
            "1M",
            "--program",
            "/bin/echo",
            "--arg",
            "a b",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((o.children, o.iterations, o.rss), (5, 7, 1 << 20));
        assert_eq!(o.args, [OsString::from("a b")]);
        let o = parse(args(&["--args", "x  y", "--json", "--no-reference"]))
            .unwrap()
            .unwrap();
        assert_eq!(o.args, [OsString::from("x"), OsString::from("y")]);
        assert!(o.json && !o.reference);
        assert!(parse(args(&["--help"])).unwrap().is_none());
        for bad in [
            &["--bogus"][..],
            &["--iterations", "0"],
            &["--iterations", "x"],
            &["--rss", "12X"],
            &["--children"],
            &["extra"],
        ] {
            assert!(parse(args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stats_and_json() {
        assert_eq!(
            json_stats(&[3.0, 1.0, 2.0, 4.0]),
            "{\"samples\":4,\"min\":1.00,\"p50\":2.00,\"p90\":4.00,\"p99\":4.00,\"max\":4.00,\"mean\":2.50}"
        );
        assert_eq!(json_stats(&[]), "null");
        assert_eq!(json_str("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
        let mut out = String::new();
        histogram(&mut out, "t", &[1.0, 3.0, 100.0]);
        assert!(out.contains('#'));
    }
}
