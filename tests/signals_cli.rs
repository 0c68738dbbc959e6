//! `pidreap run` forwards every signal a program can handle, and no signal
//! sent to it ends it by accident.
//!
//! The child is this test binary again, run as the helper "test"
//! [`signal_helper`] (ignored in normal runs; the tests start it with
//! [`HELPER_ENV`] set): it catches every signal it can and appends each
//! arrival, one number a line, to a record file, with a single `write(2)`
//! from the handler. It exits [`TERM_EXIT`] on SIGTERM, and [`STOP_EXIT`] by
//! itself once a file named like the record file plus `.stop` exists.
//!
//! Every test runs pidreap with `--contain none` (what the child sees is
//! the point, not containment), waits with deadlines, and kills pidreap and
//! the helper on drop, so nothing is left behind when an assertion fails.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Guard, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_pidreap");

/// Set to the record file's path when this binary runs as the helper.
const HELPER_ENV: &str = "PIDREAP_SIGNALS_HELPER";

/// The helper's exit code on SIGTERM.
const TERM_EXIT: i32 = 42;

/// The helper's exit code when its stop file appears.
const STOP_EXIT: i32 = 7;

/// The deadline for anything that should take well under a second.
const DEADLINE: Duration = Duration::from_secs(30);

/// The signals `pidreap run` must forward: 1 to 64 but SIGKILL, SIGSTOP,
/// SIGCHLD, the fault signals (SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV,
/// SIGSYS), glibc's 32 and 33, and SIGTTIN/SIGTTOU (ignored, as tini does).
/// Written out here rather than taken from the binary, so that the test
/// states the contract on its own.
fn forwardable() -> Vec<i32> {
    const NOT: [i32; 13] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGCHLD,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGSEGV,
        libc::SIGSYS,
        32,
        33,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ];
    (1..=64).filter(|n| !NOT.contains(n)).collect()
}

// ---------------------------------------------------------------- helper

/// The record file's fd in the helper.
static RECORD_FD: AtomicI32 = AtomicI32::new(-1);

/// The helper's handler for every signal: appends "N\n" with one write
/// (async-signal-safe; one `O_APPEND` write is never interleaved with
/// another), and exits on SIGTERM.
extern "C" fn record_arrival(sig: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno; the handler
    // must leave it as it found it.
    let errno = unsafe { *libc::__errno_location() };
    let mut buf = [0u8; 3];
    let mut len = 0;
    if sig >= 10 {
        buf[len] = b'0' + (sig / 10) as u8;
        len += 1;
    }
    buf[len] = b'0' + (sig % 10) as u8;
    buf[len + 1] = b'\n';
    len += 2;
    // SAFETY: write(2) is async-signal-safe; `buf` holds `len` bytes.
    unsafe { libc::write(RECORD_FD.load(Ordering::Relaxed), buf.as_ptr().cast(), len) };
    if sig == libc::SIGTERM {
        // SAFETY: _exit is async-signal-safe and ends the process at once.
        unsafe { libc::_exit(TERM_EXIT) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Not a test: the child program of the tests below, which start this
/// binary with [`HELPER_ENV`] set and `--ignored --exact signal_helper`.
/// Without the variable (a run with `--include-ignored`) it returns at once.
#[test]
#[ignore = "the child program of the other tests in this file, which start it"]
fn signal_helper() {
    let Some(path) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .expect("opening the record file");
    RECORD_FD.store(std::os::fd::IntoRawFd::into_raw_fd(file), Ordering::Relaxed);
    let uncatchable = [
        libc::SIGKILL,
        libc::SIGSTOP,
        // Left to the Rust runtime and the kernel: never forwarded.
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGTRAP,
        libc::SIGSYS,
        // glibc's own; its sigaction refuses them.
        32,
        33,
    ];
    for sig in (1..=64).filter(|s| !uncatchable.contains(s)) {
        // SAFETY: sigaction_t is plain data; all-zero is a valid value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = record_arrival as extern "C" fn(libc::c_int) as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: a valid action with an empty mask; no old action wanted.
        let r = unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        assert_eq!(
            r,
            0,
            "sigaction({sig}): {}",
            std::io::Error::last_os_error()
        );
    }
    let ready = format!("pid={}\n", std::process::id());
    // SAFETY: one write of a valid buffer to the record fd.
    unsafe {
        libc::write(
            RECORD_FD.load(Ordering::Relaxed),
            ready.as_ptr().cast(),
            ready.len(),
        )
    };
    let mut stop = PathBuf::from(path);
    stop.as_mut_os_string().push(".stop");
    loop {
        if stop.exists() {
            // SAFETY: ends the process at once (no unwinding into libtest).
            unsafe { libc::_exit(STOP_EXIT) };
        }
        // Interrupted by every handled signal; std resumes the sleep.
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------- runner

/// A running `pidreap run ... -- <helper>`, its stderr as lines, the
/// record file, and the cleanup.
struct Run {
    pidreap: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    record: PathBuf,
    status: Option<i32>,
    /// Kills the helper on drop (after `Drop for Run` killed pidreap).
    guard: Guard,
    _dir: TempDir,
}

impl Run {
    /// Starts pidreap with `flags` before `--` and the helper after it,
    /// with stderr piped, and waits until the helper's handlers are in
    /// place.
    fn start(tag: &str, flags: &[&str]) -> Run {
        Run::start_with_stderr(tag, flags, true)
    }

    /// As [`start`](Run::start); with `pipe_stderr` false, pidreap's (and
    /// the helper's) stderr is a pipe whose reading end is already closed.
    fn start_with_stderr(tag: &str, flags: &[&str], pipe_stderr: bool) -> Run {
        let dir = TempDir::new(tag);
        let record = dir.path().join("record");
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--contain", "none", "--grace", "60s"])
            .args(flags)
            .arg("--")
            .arg(&exe)
            .args([
                "signal_helper",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(HELPER_ENV, &record)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pidreap = if pipe_stderr {
            let mut child = cmd
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning pidreap");
            let pipe = child.stderr.take().expect("piped stderr");
            let lines = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            });
            child
        } else {
            let (read, write) = std::io::pipe().expect("pipe");
            drop(read);
            cmd.stderr(write).spawn().expect("spawning pidreap")
        };
        let mut run = Run {
            pidreap,
            stderr,
            record,
            status: None,
            guard: Guard::new(),
            _dir: dir,
        };
        let helper = run.wait_ready();
        run.guard.track(helper);
        run
    }

    fn pid(&self) -> i32 {
        self.pidreap.id() as i32
    }

    /// The record file's lines.
    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How often each signal arrived at the helper.
    fn counts(&self) -> BTreeMap<i32, u32> {
        let mut counts = BTreeMap::new();
        for line in self.lines().iter().skip(1) {
            let sig: i32 = line
                .parse()
                .unwrap_or_else(|_| panic!("bad record line {line:?}"));
            *counts.entry(sig).or_insert(0) += 1;
        }
        counts
    }

    /// Panics if pidreap has exited: it must survive every signal sent.
    #[track_caller]
    fn assert_running(&mut self, after: &str) {
        if let Some(status) = self.pidreap.try_wait().expect("try_wait") {
            self.status = Some(status.code().unwrap_or(-1));
            panic!(
                "pidreap ended ({status}) after {after}\nstderr: {:?}\nrecord: {:?}",
                self.stderr.lock().unwrap(),
                self.lines()
            );
        }
    }

    /// Waits until the record file's first line names the helper's pid.
    fn wait_ready(&mut self) -> u32 {
        self.wait_for("the helper is ready", |run| {
            run.lines()
                .first()
                .and_then(|l| l.strip_prefix("pid="))
                .and_then(|p| p.parse().ok())
        })
    }

    /// Polls `found` until it gives a value, checking that pidreap still
    /// runs; panics after [`DEADLINE`].
    #[track_caller]
    fn wait_for<T>(&mut self, what: &str, mut found: impl FnMut(&Run) -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(value) = found(self) {
                return value;
            }
            self.assert_running(&format!("waiting until {what}"));
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {DEADLINE:?} waiting until {what}\nrecord: {:?}\nstderr: {:?}",
                    self.lines(),
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends `sig` to pidreap (kill(2), as a user would).
    fn send(&mut self, sig: i32) {
        // SAFETY: kill(2) with a pid and a signal number.
        let r = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(
            r,
            0,
            "kill({}, {sig}): {}",
            self.pid(),
            std::io::Error::last_os_error()
        );
    }

    /// Waits for pidreap to exit; returns its exit code.
    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.pidreap.try_wait().expect("try_wait") {
                let code = status.code().unwrap_or_else(|| {
                    panic!(
                        "pidreap was killed: {status}; stderr: {:?}",
                        self.stderr.lock().unwrap()
                    )
                });
                self.status = Some(code);
                return code;
            }
            if Instant::now() >= deadline {
                panic!(
                    "pidreap still running after {DEADLINE:?}; stderr: {:?}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Asserts that pidreap wrote nothing to stderr (call after it
    /// exited), showing the first few lines if it did.
    #[track_caller]
    fn assert_nothing_logged(&self, context: &str) {
        // The reader thread sees EOF once pidreap and the helper are gone.
        std::thread::sleep(Duration::from_millis(50));
        let lines = self.stderr.lock().unwrap();
        let own: Vec<&String> = lines.iter().filter(|l| l.starts_with("pidreap:")).collect();
        assert!(
            own.is_empty(),
            "{context}: pidreap logged {} lines, first: {:?}",
            own.len(),
            &own[..own.len().min(5)]
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.pidreap.kill();
            let _ = self.pidreap.wait();
        }
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn every_forwardable_signal_arrives_exactly_once() {
    let mut run = Run::start("every", &[]);
    let mut expected: BTreeMap<i32, u32> = BTreeMap::new();
    // One at a time, each awaited before the next: a duplicate would show
    // as a second line. SIGINT and SIGTERM come last (they stop the child).
    for sig in forwardable() {
        if sig == libc::SIGINT || sig == libc::SIGTERM {
            continue;
        }
        run.send(sig);
        *expected.entry(sig).or_insert(0) += 1;
        let want = expected[&sig];
        run.wait_for(&format!("signal {sig} reached the child"), |r| {
            (r.counts().get(&sig).copied().unwrap_or(0) >= want).then_some(())
        });
    }
    // Not forwarded, and none of them ends pidreap.
    for sig in [libc::SIGCHLD, libc::SIGTTIN, libc::SIGTTOU] {
        run.send(sig);
    }
    // SIGINT starts the ladder: the child gets SIGINT, then the ladder's
    // SIGCONT (its first rung), and SIGKILL only after the 60 s grace.
    run.send(libc::SIGINT);
    *expected.entry(libc::SIGINT).or_insert(0) += 1;
    *expected.entry(libc::SIGCONT).or_insert(0) += 1;
    run.wait_for("SIGINT and the ladder's SIGCONT reached the child", |r| {
        let c = r.counts();
        (c.get(&libc::SIGINT) == Some(&1) && c.get(&libc::SIGCONT) == Some(&2)).then_some(())
    });
    // SIGTERM during the stop is forwarded too; the helper exits on it.
    run.send(libc::SIGTERM);
    *expected.entry(libc::SIGTERM).or_insert(0) += 1;
    let code = run.wait_exit();
    assert_eq!(
        code,
        TERM_EXIT,
        "pidreap exits with the child's status; stderr: {:?}",
        run.stderr.lock().unwrap()
    );
    assert_eq!(
        run.counts(),
        expected,
        "each forwardable signal once (SIGCONT also once from the ladder), nothing else"
    );
    assert_eq!(expected.len(), 51, "the forwardable signals");
    run.assert_nothing_logged("every signal once");
}

#[test]
fn alrm_pwr_and_rtmin_2_from_the_shell_reach_the_child() {
    // Once with dash (sh) and once with bash when it is there: both name
    // RTMIN+2 36, as pidreap does.
    let mut shells = vec!["sh"];
    let has_bash = Command::new("bash")
        .args(["-c", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if has_bash {
        shells.push("bash");
    } else {
        support::skip(
            "alrm_pwr_and_rtmin_2_from_the_shell_reach_the_child (bash part)",
            "bash is not installed",
        );
    }
    for shell in shells {
        let mut run = Run::start(shell, &[]);
        let status = Command::new(shell)
            .args([
                "-c",
                "kill -s ALRM $1 && kill -s PWR $1 && kill -s RTMIN+2 $1",
                shell,
            ])
            .arg(run.pid().to_string())
            .status()
            .expect("running the shell");
        assert!(status.success(), "{shell}: kill failed: {status}");
        run.wait_for(
            &format!("ALRM, PWR and RTMIN+2 from {shell} arrived"),
            |r| {
                let c = r.counts();
                [14, 30, 36]
                    .iter()
                    .all(|s| c.get(s) == Some(&1))
                    .then_some(())
            },
        );
        run.assert_running(&format!("ALRM, PWR and RTMIN+2 from {shell}"));
        run.send(libc::SIGTERM);
        assert_eq!(run.wait_exit(), TERM_EXIT);
        let mut want = BTreeMap::from([(14, 1), (30, 1), (36, 1), (libc::SIGTERM, 1)]);
        // The ladder's SIGCONT follows the forwarded SIGTERM, unless the
        // helper's exit came first.
        if run.counts().contains_key(&libc::SIGCONT) {
            want.insert(libc::SIGCONT, 1);
        }
        assert_eq!(run.counts(), want, "{shell}");
        run.assert_nothing_logged(shell);
    }
}

#[test]
fn a_storm_of_10000_mixed_signals_is_forwarded_without_loss_or_duplicates() {
    let mut run = Run::start("storm", &[]);
    // Standard signals coalesce while pending, real-time ones queue.
    let standard = [
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGCONT,
        libc::SIGTSTP,
        libc::SIGWINCH,
        libc::SIGPWR,
    ];
    let realtime = [34, 35, 42, 50, 63, 64];
    let kinds: Vec<i32> = standard.iter().chain(&realtime).copied().collect();
    let mut sent: BTreeMap<i32, u32> = BTreeMap::new();
    for i in 0..10_000 {
        let sig = kinds[i % kinds.len()];
        // SAFETY: kill(2) with a pid and a signal number.
        let r = unsafe { libc::kill(run.pid(), sig) };
        if r == 0 {
            *sent.entry(sig).or_insert(0) += 1;
        } else {
            // Only a full real-time queue (EAGAIN) may refuse one.
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "kill({sig}): {e}");
        }
        if i % 1000 == 999 {
            run.assert_running(&format!("{} signals", i + 1));
        }
    }
    run.wait_for("every real-time signal sent has arrived", |r| {
        let c = r.counts();
        realtime
            .iter()
            .all(|s| c.get(s).copied().unwrap_or(0) >= sent.get(s).copied().unwrap_or(0))
            .then_some(())
    });
    // Give stragglers (a duplicate would be one) time to show.
    std::thread::sleep(Duration::from_millis(300));
    run.assert_running("the storm");
    let counts = run.counts();
    for &sig in &realtime {
        assert_eq!(
            counts.get(&sig),
            sent.get(&sig),
            "real-time signal {sig}: arrivals must equal sends"
        );
    }
    for &sig in &standard {
        let got = counts.get(&sig).copied().unwrap_or(0);
        let max = sent[&sig];
        // A stop signal (SIGTSTP here) discards a pending SIGCONT, and a
        // SIGCONT a pending stop signal, in pidreap and again in the child
        // (prepare_signal() in the kernel's kernel/signal.c): those two may
        // all be lost in a mixed storm; every other standard signal arrives
        // at least once.
        let min = if sig == libc::SIGCONT || sig == libc::SIGTSTP {
            0
        } else {
            1
        };
        assert!(
            (min..=max).contains(&got),
            "signal {sig}: {got} arrivals for {max} sent (coalescing allows fewer, never more, and at least {min})"
        );
    }
    let unexpected: Vec<_> = counts.keys().filter(|s| !kinds.contains(s)).collect();
    assert!(unexpected.is_empty(), "never sent: {unexpected:?}");
    run.send(libc::SIGTERM);
    assert_eq!(run.wait_exit(), TERM_EXIT, "the child's status");
    run.assert_nothing_logged("the storm");
}

#[test]
fn signals_racing_the_childs_exit_log_nothing() {
    // The child exits (7) by itself in the middle of a storm: signals read
    // in the same poll as its exit find it reaped, or exited and not yet
    // reaped. Neither is an error, at the default verbosity or with -q.
    for (i, flags) in [&[][..], &["-q"], &[], &["-q"], &[], &["-q"]]
        .into_iter()
        .enumerate()
    {
        let mut run = Run::start(&format!("race{i}"), flags);
        let stop = {
            let mut p = run.record.clone();
            p.as_mut_os_string().push(".stop");
            p
        };
        let kinds = [libc::SIGUSR1, libc::SIGHUP, 34, libc::SIGWINCH];
        let deadline = Instant::now() + DEADLINE;
        let mut n = 0usize;
        let code = loop {
            // Never signal a reaped pid: try_wait first, then send.
            if let Some(status) = run.pidreap.try_wait().expect("try_wait") {
                let code = status
                    .code()
                    .unwrap_or_else(|| panic!("pidreap was killed: {status}"));
                run.status = Some(code);
                break code;
            }
            assert!(Instant::now() < deadline, "pidreap did not exit");
            if n == 2000 {
                fs::write(&stop, "").expect("creating the stop file");
            }
            // SAFETY: kill(2) with a pid and a signal number. EAGAIN (a
            // full real-time queue) is fine here.
            unsafe { libc::kill(run.pid(), kinds[n % kinds.len()]) };
            n += 1;
        };
        assert_eq!(code, STOP_EXIT, "run {i} ({flags:?}): the child's status");
        run.assert_nothing_logged(&format!(
            "run {i} ({flags:?}), signals that met an exited child"
        ));
    }
}

#[test]
fn a_sigpipe_raised_by_pidreap_itself_is_not_forwarded() {
    // pidreap's stderr is a pipe nobody reads: each debug line it writes
    // raises SIGPIPE, which its signalfd then reads (blocked signals are
    // queued even when ignored). That one is pidreap's, not the child's.
    let mut run = Run::start_with_stderr("sigpipe", &["-vv"], false);
    run.send(libc::SIGUSR1);
    run.wait_for("SIGUSR1 reached the child", |r| {
        r.counts().contains_key(&libc::SIGUSR1).then_some(())
    });
    run.send(libc::SIGUSR2);
    run.wait_for("SIGUSR2 reached the child", |r| {
        r.counts().contains_key(&libc::SIGUSR2).then_some(())
    });
    run.send(libc::SIGTERM);
    assert_eq!(run.wait_exit(), TERM_EXIT);
    let counts = run.counts();
    assert_eq!(
        counts.get(&libc::SIGPIPE),
        None,
        "pidreap forwarded its own SIGPIPE: {counts:?}"
    );
}
