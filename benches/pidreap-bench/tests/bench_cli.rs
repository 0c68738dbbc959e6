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
        &["kill-tree", "--rounds", "0"],
        &["kill-tree", "--processes", "1"],
        &["kill-tree", "--iterations", "5"],
        &["spawn-contained", "--block-ms", "x"],
        &["spawn-contained", "--bogus"],
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

// ---------------------------------------------------------------------------
// The containment scenarios

/// Pids of live processes whose command line is exactly `sleep SECS`.
fn sleepers(secs: &str) -> Vec<u32> {
    let want = format!("sleep\0{secs}\0");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes())
                && ppid_and_start(*pid).is_some()
        })
        .collect()
}

/// The cgroups a `pidreap-bench` with pid `pid` made and left behind: its
/// own leaves, and the home of the reaper it spawns contained trees with
/// (its cgroup is ours: a child starts in its parent's).
fn leftover_leaves(pid: u32) -> Vec<String> {
    let Ok(dir) = pidreap_bench::contain::own_cgroup_dir() else {
        return Vec::new();
    };
    let ours = [format!("pidreap-bench-{pid}-"), format!("pidreap-{pid}-")];
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| ours.iter().any(|p| n.starts_with(p.as_str())))
                .collect()
        })
        .unwrap_or_default()
}

/// SIGKILLs the given pids (cleanup before an assertion that may fail).
/// Only processes just seen running `sleep SECS` with a unique SECS.
fn kill_all(pids: &[u32]) {
    for &p in pids {
        if let Some(p) = Pid::from_raw(p as i32) {
            let _ = kill_process(p, Signal::KILL);
        }
    }
}

/// The JSON object after `"key":` (up to its matching brace), or `null`.
fn object<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    let rest = &json[at..];
    if rest.starts_with("null") {
        return "null";
    }
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return &rest[..=i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced {key} in {json}");
}

#[test]
fn kill_tree_measures_each_way_and_leaves_nothing() {
    // A duration nobody else uses, to find our sleeps among the system's.
    const SECS: &str = "877";
    let out = bench(
        &[
            "kill-tree",
            "--processes",
            "20",
            "--rounds",
            "2",
            "--sleep",
            SECS,
            "--json",
        ],
        Duration::from_secs(90),
    );
    let left = sleepers(SECS);
    kill_all(&left);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(left.is_empty(), "sleeps of the trees still alive: {left:?}");
    let json = out.stdout.trim();
    assert_eq!(number(json, "", "processes"), 20.0);
    check_percentiles(json, "group_us", 2.0);
    check_percentiles(json, "floor_us", 2.0);
    // (a) is measured where a cgroup v2 leaf can be made, else says why.
    if object(json, "cgroup_note") == "null" {
        check_percentiles(json, "cgroup_empty_us", 2.0);
        check_percentiles(json, "cgroup_all_us", 2.0);
        let empty = number(json, "cgroup_empty_us", "p50");
        let all = number(json, "cgroup_all_us", "p50");
        assert!(empty <= all, "emptied after all reaped? {json}");
    } else {
        assert_eq!(object(json, "cgroup_empty_us"), "null", "{json}");
    }
    // (d) likewise, where pidreap spawns into a cgroup.
    if object(json, "library_note") == "null" {
        check_percentiles(json, "library_us", 2.0);
    } else {
        assert!(json.contains("\"library_note\":\""), "{json}");
    }
    let ratios = object(json, "group_vs_floor");
    assert!(ratios.contains("\"per_round\":["), "{json}");
    let r = number(ratios, "", "median");
    assert!(r > 0.0 && r.is_finite(), "{json}");
}

#[test]
fn kill_tree_table() {
    let out = bench(
        &[
            "kill-tree",
            "--processes",
            "10",
            "--rounds",
            "1",
            "--sleep",
            "878",
        ],
        Duration::from_secs(60),
    );
    kill_all(&sleepers("878"));
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    for needle in [
        "kill and reap a tree of 10 processes",
        "(a) cgroup.kill",
        "(b) kill(-pgid, SIGKILL): all reaped",
        "(c) floor",
        "1.00x",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle} missing:\n{}",
            out.stdout
        );
    }
}

#[test]
fn spawn_contained_rates_against_none() {
    let out = bench(
        &[
            "spawn-contained",
            "--rounds",
            "2",
            "--block-ms",
            "20",
            "--json",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let json = out.stdout.trim();
    let variants = object(json, "variants");
    for name in ["none", "group", "pidns", "cgroup"] {
        let at = variants
            .find(&format!("{{\"containment\":\"{name}\""))
            .unwrap_or_else(|| panic!("no {name} in {json}"));
        let v = object(&variants[at..], "vs_none");
        let v_at = &variants[at..];
        let skipped = object(v_at, "skipped") != "null";
        if name == "none" || name == "group" {
            assert!(!skipped, "{name} skipped: {json}");
        }
        if skipped {
            // Skipped with a reason, and no figures.
            assert!(
                v_at.starts_with(&format!("{{\"containment\":\"{name}\",\"skipped\":\"")),
                "{json}"
            );
            assert_eq!(v, "null", "{json}");
        } else {
            let rates = object(v_at, "rates_per_s");
            assert_eq!(rates.matches(',').count(), 1, "two rounds: {json}");
            assert!(number(v_at, "", "median_rate_per_s") > 1.0, "{json}");
            let ratio = number(v, "", "median");
            if name == "none" {
                assert_eq!(ratio, 1.0, "{json}");
            }
            assert!(ratio > 0.0 && ratio.is_finite(), "{json}");
        }
    }
}

/// SIGTERM in the middle of kill-tree: every tree is killed and reaped,
/// the leaf cgroup removed, and it exits 128 + 15.
#[test]
fn kill_tree_sigterm_leaves_no_process_or_cgroup() {
    const SECS: &str = "879";
    let mut child = Command::new(BIN)
        .args([
            "kill-tree",
            "--processes",
            "100",
            "--rounds",
            "10000",
            "--sleep",
            SECS,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pidreap-bench kill-tree");
    let pid = child.id();
    // Until it has run a few rounds (trees have come and gone).
    let watch = Instant::now();
    let mut seen = 0;
    while watch.elapsed() < Duration::from_millis(1500) || seen == 0 {
        seen = seen.max(sleepers(SECS).len());
        if watch.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            kill_all(&sleepers(SECS));
            panic!("kill-tree never started its trees");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_process(Pid::from_raw(pid as i32).expect("a pid"), Signal::TERM)
        .expect("SIGTERM to pidreap-bench");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            kill_all(&sleepers(SECS));
            panic!("kill-tree did not end within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let left = sleepers(SECS);
    kill_all(&left);
    let leaves = leftover_leaves(pid);
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(128 + 15), "stderr: {stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(
        left.is_empty(),
        "sleeps still alive after SIGTERM: {left:?}"
    );
    assert!(leaves.is_empty(), "leaf cgroups left behind: {leaves:?}");
}
