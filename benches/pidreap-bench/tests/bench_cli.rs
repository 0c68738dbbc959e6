//! `pidreap-bench` (what `pidreap bench` runs), run as a user would: the
//! built binary with small iteration counts, each run under a deadline.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

const BIN: &str = env!("CARGO_BIN_EXE_pidreap-bench");

/// Runs `pidreap-bench ARGS`, killing it if it outlives `deadline`.
fn bench(args: &[&str], deadline: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pidreap");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pidreap-bench {args:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: reader.join().expect("stdout"),
        stderr: err_reader.join().expect("stderr"),
    }
}

/// The number after `"key":` in the object after `"section":` (or at top
/// level with an empty section). Enough JSON for these flat documents.
fn number(json: &str, section: &str, key: &str) -> f64 {
    let scope = if section.is_empty() {
        json
    } else {
        let at = json
            .find(&format!("\"{section}\":"))
            .unwrap_or_else(|| panic!("no {section} in {json}"));
        let rest = &json[at..];
        &rest[..rest.find('}').unwrap_or(rest.len())]
    };
    let pat = format!("\"{key}\":");
    let at = scope
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {section} of {json}"))
        + pat.len();
    let end = scope[at..].find([',', '}']).map_or(scope.len(), |e| at + e);
    scope[at..end]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {section} is not a number: {json}"))
}

fn check_percentiles(json: &str, section: &str, samples: f64) {
    let get = |k| number(json, section, k);
    assert_eq!(get("samples"), samples, "{section}");
    let (min, p50, p90, p99, max) = (get("min"), get("p50"), get("p90"), get("p99"), get("max"));
    assert!(min > 0.0, "{section}: min {min}");
    assert!(
        min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max,
        "{section}: not ordered: {json}"
    );
    // Plausible on any machine: a kill-to-reap or a spawn of /bin/true
    // within a second.
    assert!(p50 < 1e6, "{section}: p50 {p50} µs");
}

#[test]
fn json_has_the_figures() {
    let out = bench(
        &["--iterations", "15", "--children", "10", "--json"],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let json = out.stdout.trim();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    assert_eq!(json.lines().count(), 1, "one JSON line: {json}");
    for key in [
        "\"kernel\":",
        "\"spawn_mode\":",
        "\"program\":\"/bin/true\"",
        "\"args\":[]",
        "\"reference_note\":",
    ] {
        assert!(json.contains(key), "{key} missing: {json}");
    }
    assert_eq!(number(json, "", "children"), 10.0);
    assert_eq!(number(json, "", "iterations"), 15.0);
    assert_eq!(number(json, "", "rss_bytes"), 0.0);
    assert_eq!(number(json, "", "spawn_nonzero_exits"), 0.0);
    check_percentiles(json, "kill_to_reap_us", 15.0);
    check_percentiles(json, "spawn_us", 15.0);
    check_percentiles(json, "kill_to_reap_reference_us", 15.0);
    check_percentiles(json, "spawn_reference_us", 15.0);
    let rate = number(json, "", "spawn_rate_per_s");
    assert!(rate > 1.0 && rate < 1e6, "rate {rate}");
}

#[test]
fn program_args_and_ballast() {
    let out = bench(
        &[
            "--iterations",
            "5",
            "--rss",
            "8M",
            "--program",
            "/bin/sh",
            "--args",
            "-c exit",
            "--no-reference",
            "--json",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let json = out.stdout.trim();
    assert!(
        json.contains("\"program\":\"/bin/sh\",\"args\":[\"-c\",\"exit\"]"),
        "{json}"
    );
    assert_eq!(number(json, "", "rss_bytes"), (8 << 20) as f64);
    assert!(
        json.contains("\"kill_to_reap_reference_us\":null"),
        "{json}"
    );
    check_percentiles(json, "spawn_us", 5.0);
}

#[test]
fn table_has_percentiles_and_histogram() {
    let out = bench(&["--iterations", "10"], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    for needle in [
        "kill-to-reap",
        "spawn-and-reap of /bin/true",
        "p50",
        "p90",
        "p99",
        "max",
        "#",
        "/s",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle} missing:\n{}",
            out.stdout
        );
    }
    // stderr is not a terminal here: no progress line.
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
}

#[test]
fn bad_flags_and_values_exit_125_with_one_line() {
    for args in [
        &["--bogus"][..],
        &["--iterations", "0"],
        &["--iterations", "many"],
        &["--children", "-3"],
        &["--rss", "12X"],
        &["--timeout", "0"],
        &["--iterations"],
        &["stray"],
    ] {
        let out = bench(args, Duration::from_secs(20));
        assert_eq!(out.code, Some(125), "{args:?}: stderr {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("pidreap: error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
}

#[test]
fn missing_program_exits_127() {
    let out = bench(
        &["--iterations", "2", "--program", "/nonexistent/worker"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(127), "stderr: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn help_exits_0() {
    let out = bench(&["--help"], Duration::from_secs(20));
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains("--children") && out.stdout.contains("--json"),
        "{}",
        out.stdout
    );
}

/// `(ppid, starttime)` of a live (not zombie) process, from /proc/PID/stat.
fn ppid_and_start(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Every live child of `parent`, with its start time.
fn children_of(parent: u32) -> Vec<(u32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| match ppid_and_start(pid) {
            Some((ppid, start)) if ppid == parent => Some((pid, start)),
            _ => None,
        })
        .collect()
}

/// The tool that measures reapers must not leak processes itself: SIGTERM
/// in the middle of a run stops and reaps every child it had, the reference
/// loop's too (they have no parent-death signal), and exits 128 + 15.
#[test]
fn sigterm_mid_run_leaves_no_child_behind() {
    let mut child = Command::new(BIN)
        .args(["--iterations", "1000000", "--children", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pidreap bench");
    let pid = child.id();
    // Watch its children for a while: the other live children, and the
    // pidreap and reference sleepers that come and go.
    let mut seen = std::collections::BTreeSet::new();
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(1500) || seen.len() < 22 {
        seen.extend(children_of(pid));
        assert!(
            watch.elapsed() < Duration::from_secs(20),
            "pidreap bench never had its children: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Our own child's pid: unreaped, so not reused.
    kill_process(Pid::from_raw(pid as i32).expect("a pid"), Signal::TERM)
        .expect("SIGTERM to pidreap-bench");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pidreap bench did not end within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Leftovers are killed before any assertion, so a failure leaks nothing.
    let alive: Vec<_> = seen
        .iter()
        .filter(|&&(p, start)| ppid_and_start(p).is_some_and(|(_, s)| s == start))
        .collect();
    for &(p, _) in &alive {
        // A pid whose start time was just checked.
        if let Some(p) = Pid::from_raw(*p as i32) {
            let _ = kill_process(p, Signal::KILL);
        }
    }
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(128 + 15), "stderr: {stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(
        alive.is_empty(),
        "children of the interrupted bench still alive: {alive:?} (of {} seen)",
        seen.len()
    );
}
