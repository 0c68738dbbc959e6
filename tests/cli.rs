//! Tests of the `pidreap` binary, run as a real process.
//!
//! Every wait has a deadline, and every test holds a [`Pidreap`] guard
//! whose `Drop` SIGKILLs pidreap and every process the test learned about,
//! so nothing is left behind even when an assertion fails. Timing bounds
//! are correctness bounds with generous margins (the machine is shared),
//! never speed assertions.
//!
//! Tests of what the child itself sees (its pid, its signals, its orphans)
//! pass `--contain none`: the default, `auto`, may make it PID 1 of a PID
//! namespace. tests/contain_cli.rs tests `--contain`.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

const BIN: &str = env!("CARGO_BIN_EXE_pidreap");

/// The deadline for anything that should take well under a second.
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A running `pidreap`, its output as lines, and the pids to clean up.
struct Pidreap {
    child: std::process::Child,
    rx: Receiver<Option<(Stream, String)>>,
    open_streams: usize,
    stdout: Vec<String>,
    stderr: Vec<String>,
    /// Processes to SIGKILL on drop if still alive: (pid, start time).
    tracked: Vec<(i32, u64)>,
    status: Option<std::process::ExitStatus>,
}

impl Pidreap {
    fn start<S: AsRef<OsStr>>(args: &[S]) -> Pidreap {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        Pidreap::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Pidreap {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pidreap");
        let (tx, rx) = mpsc::channel();
        for (stream, pipe) in [
            (
                Stream::Out,
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            ),
            (Stream::Err, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(Some((stream, line))).is_err() {
                        return;
                    }
                }
                let _ = tx.send(None);
            });
        }
        Pidreap {
            child,
            rx,
            open_streams: 2,
            stdout: Vec::new(),
            stderr: Vec::new(),
            tracked: Vec::new(),
            status: None,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Receives one line (or end of stream) until `deadline`; false when
    /// the time ran out or both streams ended.
    fn pump(&mut self, deadline: Instant) -> bool {
        if self.open_streams == 0 {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(Some((Stream::Out, line))) => self.stdout.push(line),
            Ok(Some((Stream::Err, line))) => self.stderr.push(line),
            Ok(None) => self.open_streams -= 1,
            Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => {
                self.open_streams = 0;
                return false;
            }
        }
        true
    }

    /// Waits for a line on `stream` that satisfies `pred`, and returns it.
    fn wait_line(&mut self, stream: Stream, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = 0;
        loop {
            let lines = if stream == Stream::Out {
                &self.stdout
            } else {
                &self.stderr
            };
            if let Some(line) = lines[seen..].iter().find(|l| pred(l)) {
                return line.clone();
            }
            seen = lines.len();
            if !self.pump(deadline) {
                panic!(
                    "no matching line on {stream:?} within {DEADLINE:?}\nstdout: {:?}\nstderr: {:?}",
                    self.stdout, self.stderr
                );
            }
        }
    }

    /// Reads `pid` and `ready` from stdout: the child prints its pid, then
    /// "ready" once its traps are installed. Tracks the pid for cleanup.
    fn ready_pid(&mut self) -> i32 {
        let line = self.wait_line(Stream::Out, |l| l.starts_with("pid="));
        let pid: i32 = line["pid=".len()..].trim().parse().expect("pid line");
        self.track(pid);
        self.wait_line(Stream::Out, |l| l == "ready");
        pid
    }

    fn track(&mut self, pid: i32) {
        if let Some(start) = start_time(pid) {
            self.tracked.push((pid, start));
        }
    }

    fn signal(&self, sig: Signal) {
        kill_process(Pid::from_raw(self.pid()).unwrap(), sig).expect("signal pidreap");
    }

    /// Waits for pidreap to exit, up to `timeout`; returns its exit code.
    fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.status = Some(status);
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "pidreap still running after {timeout:?}\nstdout: {:?}\nstderr: {:?}",
                    self.stdout, self.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Collect the rest of the output (bounded: a leftover grandchild
        // could hold the pipes open).
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.pump(deadline) {}
        let status = self.status.unwrap();
        status
            .code()
            .unwrap_or_else(|| panic!("pidreap was killed: {status:?}; stderr: {:?}", self.stderr))
    }
}

impl Drop for Pidreap {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for &(pid, start) in &self.tracked {
            if alive(pid, start) {
                let _ = kill_process(Pid::from_raw(pid).unwrap(), Signal::KILL);
            }
        }
    }
}

/// Runs pidreap to the end; returns (code, stdout lines, stderr lines).
fn run<S: AsRef<OsStr>>(args: &[S]) -> (i32, Vec<String>, Vec<String>) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run_command(cmd)
}

/// Runs `cmd` (a pidreap) to the end, as [`run`] does.
fn run_command(cmd: Command) -> (i32, Vec<String>, Vec<String>) {
    let mut p = Pidreap::spawn(cmd);
    let code = p.wait(DEADLINE);
    (
        code,
        std::mem::take(&mut p.stdout),
        std::mem::take(&mut p.stderr),
    )
}

/// Fields of /proc/PID/stat after the command name: (state, start time).
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((
        fields.first()?.chars().next()?,
        fields.get(19)?.parse().ok()?,
    ))
}

fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// True while the process that had this start time runs (a zombie is dead).
fn alive(pid: i32, start: u64) -> bool {
    matches!(stat(pid), Some((state, s)) if s == start && state != 'Z' && state != 'X')
}

/// Polls until the process is dead, up to `timeout`.
fn dies_within(pid: i32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid, start) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        TempDir::under(&std::env::temp_dir())
    }

    /// A fresh directory inside `base`.
    fn under(base: &Path) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = base.join(format!(
            "pidreap-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn one_error_line(stderr: &[String]) -> &str {
    assert_eq!(
        stderr.len(),
        1,
        "expected exactly one line on stderr, got {stderr:?}"
    );
    assert!(stderr[0].starts_with("pidreap: error: "), "{stderr:?}");
    &stderr[0]
}

#[test]
fn exit_code_passes_through() {
    for code in [0, 1, 3, 42, 255] {
        let (got, _, stderr) = run(&["run", "--", "sh", "-c", &format!("exit {code}")]);
        assert_eq!(got, code, "stderr: {stderr:?}");
        assert!(stderr.is_empty(), "nothing logged by default: {stderr:?}");
    }
    // Options end at the first non-option: the child's own flags are its own.
    let (got, stdout, _) = run(&[
        "run",
        "-q",
        "sh",
        "-c",
        "echo \"$@\"; exit 7",
        "sh",
        "--grace",
        "-v",
    ]);
    assert_eq!((got, stdout), (7, vec!["--grace -v".to_string()]));
}

#[test]
fn a_signalled_child_gives_128_plus_n() {
    for (sig, n) in [("USR2", 12), ("TERM", 15), ("KILL", 9)] {
        // As PID 1 of a PID namespace (what auto may choose) the shell
        // would ignore its own default-action signals.
        let (got, _, stderr) = run(&[
            "run",
            "--contain",
            "none",
            "--",
            "sh",
            "-c",
            &format!("kill -{sig} $$"),
        ]);
        assert_eq!(got, 128 + n, "SIG{sig}; stderr: {stderr:?}");
    }
}

#[test]
fn program_not_found_exits_127() {
    for program in [
        "/nonexistent/pidreap-test-program",
        "pidreap-test-no-such-command",
    ] {
        let (code, _, stderr) = run(&["run", "--", program]);
        assert_eq!(code, 127, "{stderr:?}");
        let line = one_error_line(&stderr);
        assert!(
            line.contains(program) && line.contains("No such file"),
            "{line}"
        );
    }
}

#[test]
fn program_not_executable_exits_126() {
    let dir = TempDir::new();
    let script = dir.path("not-executable.sh");
    fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    for program in [script.as_path(), dir.0.as_path()] {
        let (code, _, stderr) = run(&[OsStr::new("run"), OsStr::new("--"), program.as_os_str()]);
        assert_eq!(code, 126, "{stderr:?}");
        let line = one_error_line(&stderr);
        assert!(
            line.contains(program.to_str().unwrap()) && line.contains("Permission denied"),
            "{line}"
        );
    }
}

/// A child that exits `code` on `trap_sig`, printing its pid and then
/// "ready" once the trap is set. The loop of short sleeps lets sh run the
/// trap promptly.
fn trapping_child(trap_sig: &str, code: i32) -> String {
    format!("trap 'exit {code}' {trap_sig}; echo pid=$$; echo ready; while :; do sleep 0.1; done")
}

#[test]
fn each_listed_signal_is_forwarded() {
    for (name, sig) in [
        ("TERM", Signal::TERM),
        ("INT", Signal::INT),
        ("HUP", Signal::HUP),
        ("QUIT", Signal::QUIT),
        ("USR1", Signal::USR1),
        ("USR2", Signal::USR2),
        ("WINCH", Signal::WINCH),
    ] {
        let mut p = Pidreap::start(&[
            "run",
            "--grace",
            "30s",
            "--",
            "sh",
            "-c",
            &trapping_child(name, 42),
        ]);
        p.ready_pid();
        p.signal(sig);
        assert_eq!(
            p.wait(DEADLINE),
            42,
            "SIG{name} was not forwarded; stderr: {:?}",
            p.stderr
        );
    }
}

#[test]
fn stop_signal_rewrites_sigterm() {
    let script = "trap 'exit 42' USR1; trap 'exit 43' TERM; echo pid=$$; echo ready; while :; do sleep 0.1; done";
    let mut p = Pidreap::start(&["run", "--stop-signal", "USR1", "--", "sh", "-c", script]);
    p.ready_pid();
    p.signal(Signal::TERM);
    assert_eq!(
        p.wait(DEADLINE),
        42,
        "the child must get --stop-signal instead of SIGTERM (and only that)"
    );
}

#[test]
fn forward_to_group_reaches_the_whole_group() {
    // The child starts a grandchild in its (new) group; both trap SIGUSR1.
    let script = r#"
        trap 'wait $g; exit 42' USR1
        sh -c 'trap "echo grandchild-got-usr1; exit 0" USR1; echo pid=$$; echo ready; while :; do sleep 0.1; done' &
        g=$!
        while :; do sleep 0.1; done
    "#;
    let mut p = Pidreap::start(&["run", "--forward-to", "group", "--", "sh", "-c", script]);
    p.ready_pid();
    p.signal(Signal::USR1);
    assert_eq!(p.wait(DEADLINE), 42, "stderr: {:?}", p.stderr);
    assert!(
        p.stdout.iter().any(|l| l == "grandchild-got-usr1"),
        "{:?}",
        p.stdout
    );
}

#[test]
fn sigterm_with_a_child_that_ignores_it_ends_after_the_grace() {
    let grace = Duration::from_secs(1);
    let mut p = Pidreap::start(&[
        "run",
        "-v",
        "--grace",
        "1s",
        "--contain",
        "none",
        "--",
        "sh",
        "-c",
        "trap '' TERM; echo pid=$$; echo ready; exec sleep 120",
    ]);
    let pid = p.ready_pid();
    let start = start_time(pid).unwrap();
    let t0 = Instant::now();
    p.signal(Signal::TERM);
    let code = p.wait(grace + DEADLINE);
    let took = t0.elapsed();
    assert_eq!(
        code,
        128 + 9,
        "SIGKILLed after the grace; stderr: {:?}",
        p.stderr
    );
    assert!(
        took >= grace - Duration::from_millis(50),
        "killed before the grace ended: {took:?}"
    );
    assert!(!alive(pid, start), "the child is still there");
    assert!(
        p.stderr.iter().any(|l| l.contains("received SIGTERM")),
        "{:?}",
        p.stderr
    );
}

#[test]
fn a_second_sigint_skips_the_grace() {
    let grace = Duration::from_secs(120);
    let mut p = Pidreap::start(&[
        "run",
        "-v",
        "--grace",
        "120s",
        "--contain",
        "none",
        "--",
        "sh",
        "-c",
        "trap '' INT; echo pid=$$; echo ready; exec sleep 300",
    ]);
    let pid = p.ready_pid();
    let start = start_time(pid).unwrap();
    let t0 = Instant::now();
    p.signal(Signal::INT);
    // Two SIGINTs pending at once merge into one: wait for the first to be
    // handled before sending the second.
    p.wait_line(Stream::Err, |l| l.contains("received SIGINT"));
    p.signal(Signal::INT);
    assert_eq!(p.wait(DEADLINE), 128 + 9, "stderr: {:?}", p.stderr);
    assert!(t0.elapsed() < grace / 2, "the grace was not skipped");
    assert!(!alive(pid, start));
}

#[test]
fn sigkill_to_pidreap_leaves_no_child_alive() {
    // The child ignores SIGTERM and SIGINT: only the parent-death SIGKILL
    // can end it.
    let mut p = Pidreap::start(&[
        "run",
        "--contain",
        "none",
        "--",
        "sh",
        "-c",
        "trap '' TERM INT; echo pid=$$; echo ready; exec sleep 300",
    ]);
    let pid = p.ready_pid();
    let start = start_time(pid).unwrap();
    p.signal(Signal::KILL);
    let status = p.child.wait().unwrap();
    p.status = Some(status);
    assert!(
        dies_within(pid, start, DEADLINE),
        "the child outlived pidreap"
    );
}

#[test]
fn pdeathsig_chooses_what_the_child_gets_when_pidreap_dies() {
    let dir = TempDir::new();
    let marker = dir.path("got-usr1");
    let script = format!(
        "trap 'echo yes > {}; exit 0' USR1; echo pid=$$; echo ready; while :; do sleep 0.1; done",
        marker.display()
    );
    let mut p = Pidreap::start(&[
        "run",
        "--pdeathsig",
        "USR1",
        "--contain",
        "none",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let pid = p.ready_pid();
    let start = start_time(pid).unwrap();
    p.signal(Signal::KILL);
    p.status = Some(p.child.wait().unwrap());
    assert!(
        dies_within(pid, start, DEADLINE),
        "the child outlived pidreap"
    );
    assert_eq!(fs::read_to_string(&marker).unwrap_or_default(), "yes\n");
}

/// Parses "restart attempt K in D" from pidreap's log lines.
fn logged_delays(stderr: &[String]) -> Vec<Duration> {
    stderr
        .iter()
        .filter_map(|l| {
            l.split_once("restart attempt ")?
                .1
                .split_once(" in ")
                .map(|(_, d)| d.to_string())
        })
        .map(|d| match d.strip_suffix("ms") {
            Some(ms) => Duration::from_millis(ms.parse().unwrap()),
            None => Duration::from_secs(d.strip_suffix('s').unwrap().parse().unwrap()),
        })
        .collect()
}

#[test]
fn restart_on_failure_runs_one_plus_n_times_with_growing_delays() {
    let dir = TempDir::new();
    let runs = dir.path("runs");
    let script = format!("date +%s%N >> {}; exit 3", runs.display());
    let min = Duration::from_millis(300);
    let mut p = Pidreap::start(&[
        "run",
        "--restart",
        "on-failure",
        "--max-restarts",
        "3",
        "--backoff",
        "300ms..10s",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        p.wait(Duration::from_secs(60)),
        3,
        "the last run's status; stderr: {:?}",
        p.stderr
    );
    let stamps: Vec<u128> = fs::read_to_string(&runs)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(stamps.len(), 4, "1 + 3 runs, and no more");

    let delays = logged_delays(&p.stderr);
    assert_eq!(delays.len(), 3, "each restart is logged: {:?}", p.stderr);
    assert!(
        p.stderr
            .last()
            .unwrap()
            .contains("giving up after 3 restarts"),
        "{:?}",
        p.stderr
    );
    assert_eq!(delays[0], min, "the first delay is the minimum");
    assert!(
        delays.windows(2).all(|w| w[1] > w[0]),
        "delays grow: {delays:?}"
    );
    // Each run started no sooner than its delay after the previous one
    // (the children stamp their own start times).
    for (i, pair) in stamps.windows(2).enumerate() {
        let gap = Duration::from_nanos((pair[1] - pair[0]) as u64);
        assert!(
            gap + Duration::from_millis(5) >= delays[i],
            "run {} came {gap:?} after the previous one, delay {:?}",
            i + 2,
            delays[i]
        );
    }
}

#[test]
fn restart_policies_on_success() {
    let dir = TempDir::new();
    let runs = dir.path("runs");
    let script = format!("echo run >> {}; exit 0", runs.display());
    let count = || fs::read_to_string(&runs).unwrap().lines().count();

    let (code, _, stderr) = run(&["run", "--restart", "on-failure", "--", "sh", "-c", &script]);
    assert_eq!(
        (code, count()),
        (0, 1),
        "on-failure does not restart a success; {stderr:?}"
    );

    fs::remove_file(&runs).unwrap();
    let (code, _, stderr) = run(&[
        "run",
        "--restart",
        "always",
        "--max-restarts",
        "2",
        "--backoff",
        "10ms..50ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        (code, count()),
        (0, 3),
        "always restarts a success too; {stderr:?}"
    );
}

#[test]
fn a_stop_during_the_backoff_ends_pidreap_without_a_restart() {
    let dir = TempDir::new();
    let runs = dir.path("runs");
    let backoff = Duration::from_secs(60);
    let script = format!("echo run >> {}; exit 1", runs.display());
    let mut p = Pidreap::start(&[
        "run",
        "--restart",
        "always",
        "--backoff",
        "60s..120s",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    p.wait_line(Stream::Err, |l| l.contains("restart attempt 1 in 60s"));
    let t0 = Instant::now();
    p.signal(Signal::TERM);
    assert_eq!(
        p.wait(DEADLINE),
        1,
        "the last run's status; stderr: {:?}",
        p.stderr
    );
    assert!(
        t0.elapsed() < backoff / 2,
        "pidreap waited for the back-off"
    );
    assert_eq!(
        fs::read_to_string(&runs).unwrap().lines().count(),
        1,
        "the child was started again"
    );
}

/// `unshare` with a new PID namespace (and /proc for it), or the reason it
/// cannot be used here.
fn pid_namespace_works() -> Result<(), String> {
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "--mount-proc", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            return Err(format!(
                "unshare --pid --fork --mount-proc failed ({status}): {}",
                err.trim()
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("unshare did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child script that makes an orphan (a background `sleep` whose parent
/// exits at once), prints the orphan's parent pid, and exits 5 once the
/// orphan is gone (reaped) or 3 if it is still a zombie after 20 s.
const ORPHAN_SCRIPT: &str = r#"
    g=$(sh -c 'sleep 1 >/dev/null & echo $!')
    echo "orphan=$g ppid=$(awk '/^PPid:/ {print $2}' /proc/$g/status)"
    i=0
    while [ -e /proc/$g ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
    if [ -e /proc/$g ]; then echo "not reaped: $(cat /proc/$g/stat)"; exit 3; fi
    echo reaped
    exit 5
"#;

fn pid_namespace_or_skip(test: &str) -> bool {
    match pid_namespace_works() {
        Ok(()) => true,
        Err(reason) => support::skip(
            test,
            &format!("PID namespaces are not available here: {reason}"),
        ),
    }
}

#[test]
fn as_pid_1_orphans_are_reaped_and_no_zombie_is_left() {
    if !pid_namespace_or_skip("as_pid_1_orphans_are_reaped_and_no_zombie_is_left") {
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        BIN,
        "run",
        "-vv",
        "--contain",
        "none",
        "--",
        "sh",
        "-c",
        ORPHAN_SCRIPT,
    ]);
    let mut p = Pidreap::spawn(cmd);
    assert_eq!(
        p.wait(DEADLINE),
        5,
        "stdout: {:?} stderr: {:?}",
        p.stdout,
        p.stderr
    );
    let line = p
        .stdout
        .iter()
        .find(|l| l.starts_with("orphan="))
        .expect("orphan line");
    let orphan = line["orphan=".len()..].split_whitespace().next().unwrap();
    assert!(
        line.ends_with(" ppid=1"),
        "the orphan was reparented to pidreap as PID 1: {line}"
    );
    assert!(p.stdout.iter().any(|l| l == "reaped"), "{:?}", p.stdout);
    assert!(
        p.stderr.iter().any(|l| l.contains("running as PID 1")),
        "{:?}",
        p.stderr
    );
    assert!(
        p.stderr
            .iter()
            .any(|l| l.contains(&format!("reaped orphan pid {orphan}"))),
        "{:?}",
        p.stderr
    );
}

#[test]
fn as_pid_1_signals_from_inside_the_namespace_are_forwarded() {
    if !pid_namespace_or_skip("as_pid_1_signals_from_inside_the_namespace_are_forwarded") {
        return;
    }
    // The kernel drops default-action signals sent to a namespace's init
    // from inside it, unless init blocks and reads them (pid_namespaces(7)).
    let script = "trap 'exit 42' USR1; kill -USR1 1; while :; do sleep 0.1; done";
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        BIN,
        "run",
        "--",
        "sh",
        "-c",
        script,
    ]);
    let mut p = Pidreap::spawn(cmd);
    assert_eq!(p.wait(DEADLINE), 42, "stderr: {:?}", p.stderr);
}

#[test]
fn subreaper_reaps_orphans_outside_a_pid_namespace() {
    let mut p = Pidreap::start(&[
        "run",
        "-vv",
        "--subreaper",
        "--contain",
        "none",
        "--",
        "sh",
        "-c",
        ORPHAN_SCRIPT,
    ]);
    assert_eq!(
        p.wait(DEADLINE),
        5,
        "stdout: {:?} stderr: {:?}",
        p.stdout,
        p.stderr
    );
    let line = p
        .stdout
        .iter()
        .find(|l| l.starts_with("orphan="))
        .expect("orphan line")
        .clone();
    let orphan = line["orphan=".len()..].split_whitespace().next().unwrap();
    assert!(
        line.ends_with(&format!(" ppid={}", p.pid())),
        "the orphan was reparented to pidreap: {line}"
    );
    assert!(
        p.stderr
            .iter()
            .any(|l| l.contains(&format!("reaped orphan pid {orphan}"))),
        "{:?}",
        p.stderr
    );
}

#[test]
fn bad_flags_and_values_exit_125_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--bogus", "--", "true"], "--bogus"),
        (&["run", "-x", "true"], "-x"),
        (&["run", "--grace", "soon", "--", "true"], "--grace"),
        (&["run", "--grace", "--", "true"], "--grace"),
        (&["run", "--stop-signal", "NOPE", "true"], "--stop-signal"),
        (&["run", "--pdeathsig", "99", "true"], "--pdeathsig"),
        (&["run", "--restart", "sometimes", "true"], "--restart"),
        (&["run", "--max-restarts", "-1", "true"], "--max-restarts"),
        (
            &["run", "--restart-window", "0s", "true"],
            "--restart-window",
        ),
        (&["run", "--backoff", "5s..1s", "true"], "--backoff"),
        (&["run", "--backoff", "5s", "true"], "--backoff"),
        (&["run", "--forward-to", "parent", "true"], "--forward-to"),
        (&["run", "--subreaper=yes", "true"], "--subreaper"),
        (&["run", "-v"], "PROGRAM"),
        (&["frobnicate"], "frobnicate"),
        (&[], "subcommand"),
    ];
    for (args, names) in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 125, "{args:?}: {stderr:?}");
        assert!(stdout.is_empty(), "{args:?}: {stdout:?}");
        let line = one_error_line(&stderr);
        assert!(
            line.contains(names),
            "{args:?}: the error should name {names}: {line}"
        );
    }
}

#[test]
fn readme_documents_the_options_as_help_prints_them() {
    let (code, help, stderr) = run(&["--help"]);
    assert_eq!(code, 0, "{stderr:?}");
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let help = help.join("\n");
    let first = help.lines().next().unwrap();
    let start = readme
        .find(&format!("```text\n{first}"))
        .expect("README.md has a ```text block starting with --help's first line")
        + "```text\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    assert_eq!(
        readme[start..end].trim_end(),
        help.trim_end(),
        "README.md's options block differs from `pidreap --help`: update README.md"
    );
}

#[test]
fn help_lists_every_option_with_its_default() {
    let (code, help, stderr) = run(&["--help"]);
    assert_eq!(code, 0, "{stderr:?}");
    let help = help.join("\n");
    for (option, default) in [
        ("--grace DURATION", "[default: 10s]"),
        ("--stop-signal SIG", "[default: TERM]"),
        ("--pdeathsig SIG", "[default: KILL]"),
        ("--forward-to child|group", "[default: child]"),
        (
            "--restart never|on-success|on-failure|on-abnormal|always",
            "[default: never]",
        ),
        ("--success-exit-status CODES", "[default: none]"),
        ("--restart-prevent-exit-status CODES", "[default: none]"),
        ("--setsid", "[default: off]"),
        ("-c, --single-child", "[default: off]"),
        ("-r, --rewrite FROM:TO", "[default: none]"),
        ("-p, --parent-death-signal SIG", "[default: none]"),
        ("-e, --remap-exit CODE", "[default: none]"),
        ("--max-restarts N", "[default: 10]"),
        ("--restart-window DURATION", "[default: 60s]"),
        ("--backoff MIN..MAX", "[default: 100ms..30s]"),
        ("-s, --subreaper", "[default: off]"),
        ("-v, --verbose", "[default: warnings and errors]"),
        ("-q, --quiet", "[default: off]"),
        ("-h, --help", ""),
        ("-V, --version", ""),
    ] {
        let at = help
            .find(option)
            .unwrap_or_else(|| panic!("--help does not list {option}:\n{help}"));
        // The default comes before the next option.
        let rest = &help[at..];
        let end = rest[1..].find("\n  -").map_or(rest.len(), |i| i + 1);
        assert!(
            rest[..end].contains(default),
            "{option} has no {default} in --help:\n{}",
            &rest[..end]
        );
    }
    assert!(
        help.contains("bench  measure spawn and kill-to-reap latency on this machine"),
        "{help}"
    );
    let (code, run_help, _) = run(&["run", "--help"]);
    assert_eq!((code, run_help.join("\n")), (0, help));
}

#[test]
fn version_prints_the_version() {
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(
        (code, stdout),
        (0, vec![format!("pidreap {}", env!("CARGO_PKG_VERSION"))])
    );
    let (code, stdout, _) = run(&["run", "-V"]);
    assert_eq!((code, stdout.len()), (0, 1));
}

/// The bench tool, built beside pidreap in the workspace's target directory.
fn bench_tool() -> PathBuf {
    let tool = Path::new(BIN).with_file_name("pidreap-bench");
    assert!(
        tool.is_file(),
        "{} is missing: the workspace member benches/pidreap-bench builds it; \
         run a plain `cargo test` at the root, or `cargo build -p pidreap-bench` first",
        tool.display()
    );
    tool
}

/// A copy of the pidreap binary alone in a fresh directory (a hard link
/// when possible: a binary just written may still be open for writing in a
/// child forked meanwhile by another test, and exec would fail ETXTBSY).
fn lone_pidreap() -> (TempDir, PathBuf) {
    let dir = TempDir::under(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let lone = dir.path("pidreap");
    if fs::hard_link(BIN, &lone).is_err() {
        fs::copy(BIN, &lone).expect("copy the pidreap binary");
    }
    (dir, lone)
}

#[test]
fn bench_runs_the_bench_tool_beside_pidreap_with_the_arguments() {
    bench_tool();
    let (code, stdout, stderr) = run(&["bench", "--help"]);
    assert_eq!(code, 0, "{stderr:?}");
    let help = stdout.join("\n");
    assert!(
        help.starts_with("pidreap bench: measure") && help.contains("--children"),
        "`pidreap bench --help` did not print the bench tool's help:\n{help}"
    );
    // The arguments reach the tool as they are: its own error for its own
    // parser.
    let (code, stdout, stderr) = run(&["bench", "--iterations", "zero"]);
    assert_eq!(code, 125, "{stderr:?}");
    assert!(stdout.is_empty(), "{stdout:?}");
    let line = one_error_line(&stderr);
    assert!(line.contains("--iterations"), "{line}");
}

#[test]
fn bench_finds_the_bench_tool_in_path() {
    let tool = bench_tool();
    let (_dir, lone) = lone_pidreap();
    let bin_dir = TempDir::new();
    std::os::unix::fs::symlink(&tool, bin_dir.path("pidreap-bench")).unwrap();
    let mut cmd = Command::new(&lone);
    cmd.args(["bench", "--help"]).env("PATH", &bin_dir.0);
    let (code, stdout, stderr) = run_command(cmd);
    assert_eq!(code, 0, "{stderr:?}");
    assert!(
        stdout
            .first()
            .is_some_and(|l| l.starts_with("pidreap bench: measure")),
        "{stdout:?}"
    );
}

#[test]
fn bench_without_the_bench_tool_exits_125_naming_it_and_how_to_install_it() {
    let tool = bench_tool();
    let (_dir, lone) = lone_pidreap();
    // Nothing beside the lone pidreap, and nothing in PATH: an empty entry
    // is not read as the current directory, which has the tool here.
    let cwd = TempDir::new();
    std::os::unix::fs::symlink(&tool, cwd.path("pidreap-bench")).unwrap();
    for path in ["", ":"] {
        let mut cmd = Command::new(&lone);
        cmd.args(["bench", "--help"])
            .env("PATH", path)
            .current_dir(&cwd.0);
        let (code, stdout, stderr) = run_command(cmd);
        assert_eq!(code, 125, "PATH={path:?}: {stderr:?}");
        assert!(stdout.is_empty(), "{stdout:?}");
        let line = one_error_line(&stderr);
        assert!(
            line.contains("pidreap-bench not found")
                && line.contains("cargo install --path benches/pidreap-bench"),
            "{line}"
        );
    }
}
