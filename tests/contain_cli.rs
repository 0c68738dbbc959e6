//! `pidreap run --contain`, tested through the command on real process
//! trees: what a graceful stop and a SIGKILL of pidreap leave alive under
//! each mechanism, the cgroups left behind, the refusals, and `auto`.
//!
//! Every process a test starts runs `sleep <marker>`, a number unique to
//! the test (or trial), and is found by scanning `/proc/*/cmdline` for it:
//! a `setsid` daemon or a double-forked orphan is nobody's child any more,
//! but still carries its marker. Guards SIGKILL every marked process (and
//! pidreap) in `Drop`, so a failing test leaves nothing behind; every wait
//! has a deadline.
//!
//! The cgroup tests run pidreap in a cgroup v2 directory of their own below
//! ours (pidreap makes its cgroups below its own), which lets them check
//! that the directory is empty afterwards: no process, no `pidreap-*`
//! cgroup. They are skipped, with the reason printed, where no cgroup can be
//! made (no cgroup v2, not delegated, no `cgroup.kill`).

mod support;

use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{kill_process, pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pidreap");

/// The deadline for anything that should take well under a second (the
/// machine is small and shared).
const LONG: Duration = Duration::from_secs(20);

/// The grace every stop test gives, and the slack after it within which
/// the tree must be gone.
const GRACE: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(1);

/// SIGKILL trials per mechanism, and how many run at once.
const TRIALS: usize = 200;
const WORKERS: usize = 16;

fn start_watchdog() {
    support::watchdog(Duration::from_secs(600));
}

// ------------------------------------------------------------ markers

/// A number no other test (or test process) uses: `23`, our pid, a counter.
fn marker() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "23{:07}{:04}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The argv of `pid`; empty for a zombie or a process that is gone.
fn argv(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn is_marked(pid: u32, marker: &str) -> bool {
    let argv = argv(pid);
    argv.len() == 2 && argv[0].ends_with("sleep") && argv[1] == marker
}

/// The live (not zombie) processes running `sleep <marker>`.
fn marked(marker: &str) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| is_marked(pid, marker))
        .collect();
    pids.sort_unstable();
    pids
}

/// The session id of `pid` (field 6 of `/proc/<pid>/stat`).
fn session(pid: u32) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// SIGKILLs `pid` if it runs `sleep <marker>`: through a pidfd opened
/// before the check, so that a reused pid is never hit. Where pidfds are
/// refused (the seccomp sandboxes of CI), by pid, and only while its start
/// time is the one read before the check, as `support::Guard` does: without
/// this, what a test leaves alive on purpose (the `setsid` daemon a process
/// group cannot hold) outlived every sandboxed run.
fn kill_marked(pid: u32, marker: &str) {
    let Some(pid_t) = Pid::from_raw(pid as i32) else {
        return;
    };
    match pidfd_open(pid_t, PidfdFlags::empty()) {
        Ok(fd) => {
            if !is_marked(pid, marker) {
                return;
            }
            match pidfd_send_signal(fd.as_fd(), Signal::KILL) {
                Err(Errno::PERM | Errno::NOSYS) => {}
                _ => return,
            }
        }
        Err(Errno::SRCH) => return,
        Err(_) => {}
    }
    let started = support::starttime(pid);
    if started.is_some() && is_marked(pid, marker) && support::starttime(pid) == started {
        let _ = kill_process(pid_t, Signal::KILL);
    }
}

/// Kills every process running `sleep <marker>`, until none is left (or
/// two seconds have passed).
fn sweep(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = marked(marker);
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in left {
            kill_marked(pid, marker);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the marked processes in `Drop`.
struct Sweep(String);

impl Drop for Sweep {
    fn drop(&mut self) {
        sweep(&self.0);
    }
}

/// Polls until `marked(marker)` has `n` processes; panics after [`LONG`].
#[track_caller]
fn wait_marked(marker: &str, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + LONG;
    loop {
        let pids = marked(marker);
        if pids.len() == n {
            return pids;
        }
        if Instant::now() >= deadline {
            panic!(
                "expected {n} processes running `sleep {marker}` within {LONG:?}, found {pids:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A small random number generator (xorshift), seeded by the OS through
/// std's `RandomState`: for kill delays only.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

// ------------------------------------------------------------ trees

/// The full shape: a background child, a `setsid` daemon (a session and
/// group of its own), a double-forked orphan, and a grandchild that ignores
/// SIGTERM; the shell waits. Four `sleep <marker>` processes.
fn full_tree(m: &str) -> String {
    format!(
        "sleep {m} &
         setsid sleep {m} &
         (sleep {m} &)
         sh -c \"trap '' TERM; exec sleep {m}\" &
         wait"
    )
}
const FULL_TREE: usize = 4;

/// The small shape of the SIGKILL trials: the two that escape a process
/// group (a `setsid` daemon and a double-forked orphan) under a waiting
/// shell. Two `sleep <marker>` processes.
fn small_tree(m: &str) -> String {
    format!("setsid sleep {m} & (sleep {m} &); wait")
}
const SMALL_TREE: usize = 2;

// ------------------------------------------------------------ cgroups

/// The cgroup2 mount point and our cgroup in it, or why there is none.
fn own_cgroup_dir() -> Result<PathBuf, String> {
    let cgroup = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let own = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 (\"0::\" line) in /proc/self/cgroup")?
        .to_string();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        let (Some(root), Some(mount)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        // Our cgroup, relative to the mount's root.
        let Some(rel) = own.strip_prefix(root) else {
            continue;
        };
        return Ok(Path::new(mount).join(rel.trim_start_matches('/')));
    }
    Err(format!(
        "no cgroup2 mount in /proc/self/mountinfo shows our cgroup {own}"
    ))
}

/// A cgroup of the test's own below ours, for pidreap to run in (and make
/// its cgroups below). `Drop` kills what is left in it and removes it.
/// How many SIGKILL trials left an empty cgroup behind.
static EMPTY_LEFT: AtomicU32 = AtomicU32::new(0);

struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn create() -> Result<TestCgroup, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = own_cgroup_dir()?.join(format!(
            "contain-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path)
            .map_err(|e| format!("cannot create cgroup {}: {e}", path.display()))?;
        let cg = TestCgroup { path };
        if !cg.path.join("cgroup.kill").exists() {
            return Err(format!(
                "{} has no cgroup.kill (Linux 5.14+)",
                cg.path.display()
            ));
        }
        Ok(cg)
    }

    /// Creates one, or prints why the test is skipped.
    fn or_skip(test: &str) -> Option<TestCgroup> {
        match TestCgroup::create() {
            Ok(cg) => Some(cg),
            Err(reason) => {
                support::skip(test, &format!("no cgroup to run pidreap in: {reason}"));
                None
            }
        }
    }

    /// `args` as a command that first moves itself into this cgroup (a
    /// shell writes its pid to `cgroup.procs`, then execs): pidreap's pid is
    /// the command's.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"")
            .arg(&self.path)
            .arg(program)
            .args(args);
        cmd
    }

    /// The pids in this cgroup itself.
    fn procs(&self) -> Vec<u32> {
        fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The names of the cgroups below this one.
    fn children(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(&self.path) else {
            return Vec::new();
        };
        dir.filter_map(|e| {
            let e = e.ok()?;
            e.file_type().ok()?.is_dir().then_some(())?;
            e.file_name().into_string().ok()
        })
        .collect()
    }

    /// Empty: no process here, no cgroup below; else what is left.
    fn leftovers(&self) -> Option<String> {
        let (procs, children) = (self.procs(), self.children());
        if procs.is_empty() && children.is_empty() {
            return None;
        }
        self.describe(procs, children)
    }

    /// No process here or below; else what is left. Empty cgroups are
    /// allowed: a pidreap SIGKILLed between creating its cgroup and
    /// starting its sentinel leaves one, which the next one removes.
    fn live_leftovers(&self) -> Option<String> {
        let procs = self.procs();
        let children = self.children();
        let populated = children.iter().any(|c| {
            fs::read_to_string(self.path.join(c).join("cgroup.events"))
                .map_or(true, |e| !e.contains("populated 0"))
        });
        if procs.is_empty() && !populated {
            if !children.is_empty() {
                EMPTY_LEFT.fetch_add(1, Ordering::Relaxed);
                for c in &children {
                    let _ = fs::remove_dir(self.path.join(c));
                }
            }
            return None;
        }
        self.describe(procs, children)
    }

    fn describe(&self, procs: Vec<u32>, children: Vec<String>) -> Option<String> {
        let procs: Vec<_> = procs.iter().map(|&p| (p, argv(p))).collect();
        Some(format!(
            "{} still holds processes {procs:?} and cgroups {children:?}",
            self.path.display()
        ))
    }

    /// Waits up to `within` for [`leftovers`](Self::leftovers) to be none.
    fn empty_within(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            match self.leftovers() {
                None => return Ok(()),
                Some(left) if Instant::now() >= deadline => return Err(left),
                Some(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

/// Removes `dir` and the cgroups below it, deepest first.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Kills everything in it and below (a failed test's leftovers).
        let _ = fs::write(self.path.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.path.exists() && Instant::now() < deadline {
            remove_cgroup_tree(&self.path);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ------------------------------------------------------------ pidreap

/// A running pidreap (stderr in a file), killed in `Drop` if still there.
struct Pidreap {
    child: Child,
    status: Option<ExitStatus>,
    stderr_path: PathBuf,
    _dir: TempDir,
}

impl Pidreap {
    fn spawn(cmd: Command) -> Pidreap {
        Pidreap::spawn_with_stdin(cmd, Stdio::null())
    }

    fn spawn_with_stdin(mut cmd: Command, stdin: Stdio) -> Pidreap {
        let dir = TempDir::new("contain-cli");
        let stderr_path = dir.path().join("stderr");
        let stderr = File::create(&stderr_path).expect("creating the stderr file");
        let child = cmd
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawning pidreap");
        Pidreap {
            child,
            status: None,
            stderr_path,
            _dir: dir,
        }
    }

    fn start(args: &[&str]) -> Pidreap {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        Pidreap::spawn(cmd)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: Signal) {
        rustix::process::kill_process(Pid::from_raw(self.pid() as i32).unwrap(), sig)
            .expect("signalling pidreap");
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits for pidreap to exit, up to `within`.
    #[track_caller]
    fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.status = Some(status);
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "pidreap still running after {within:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for pidreap to exit and returns its exit code (panics if it
    /// was killed by a signal).
    #[track_caller]
    fn code(&mut self, within: Duration) -> i32 {
        let status = self.wait(within);
        status
            .code()
            .unwrap_or_else(|| panic!("pidreap died: {status:?}; stderr:\n{}", self.stderr()))
    }
}

impl Drop for Pidreap {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn run_args<'a>(contain: &'a str, extra: &[&'a str], script: &'a str) -> Vec<&'a str> {
    let mut args = vec!["run", "-v", "--grace", "1s", "--contain", contain];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    args
}

// ------------------------------------------------------------ graceful stop

/// What [`graceful_stop`] saw.
struct Stopped {
    /// pidreap's exit code.
    code: i32,
    /// From the SIGTERM to pidreap's exit.
    took: Duration,
    /// The marked processes once the tree was up.
    before: Vec<u32>,
    /// pidreap's stderr.
    stderr: String,
    /// The marked processes alive `GRACE + SLACK` after the SIGTERM.
    alive: Vec<u32>,
}

/// SIGTERM to pidreap running the full tree under `contain` (in `cgroup`,
/// if given).
fn graceful_stop(contain: &str, cgroup: Option<&TestCgroup>, m: &str) -> Stopped {
    let script = full_tree(m);
    let args = run_args(contain, &[], &script);
    let mut p = match cgroup {
        Some(cg) => Pidreap::spawn(cg.command(BIN, &args)),
        None => Pidreap::start(&args),
    };
    let before = wait_marked(m, FULL_TREE);
    let t0 = Instant::now();
    p.signal(Signal::TERM);
    let code = p.code(GRACE + LONG);
    let took = t0.elapsed();
    // Whatever is still alive once grace and slack are over.
    let settle = (t0 + GRACE + SLACK).saturating_duration_since(Instant::now());
    std::thread::sleep(settle);
    Stopped {
        code,
        took,
        before,
        stderr: p.stderr(),
        alive: marked(m),
    }
}

#[test]
fn cgroup_graceful_stop_leaves_nothing_and_removes_its_cgroups() {
    if support::contain_mode_skip("cgroup_graceful_stop_leaves_nothing_and_removes_its_cgroups") {
        return;
    }
    start_watchdog();
    let Some(cg) =
        TestCgroup::or_skip("cgroup_graceful_stop_leaves_nothing_and_removes_its_cgroups")
    else {
        return;
    };
    let m = marker();
    let _sweep = Sweep(m.clone());
    let Stopped {
        code,
        took,
        stderr,
        alive,
        ..
    } = graceful_stop("cgroup", Some(&cg), &m);
    assert_eq!(
        alive,
        Vec::<u32>::new(),
        "alive after grace + 1 s; stderr:\n{stderr}"
    );
    // The shell dies of the SIGTERM; the grandchild that ignores it keeps
    // the tree (and so pidreap) going until the SIGKILL at the grace's end.
    assert_eq!(code, 128 + 15, "stderr:\n{stderr}");
    assert!(
        took >= GRACE - Duration::from_millis(50),
        "pidreap exited after {took:?}, before the grace ended with the tree still running; stderr:\n{stderr}"
    );
    assert!(stderr.contains("containment: cgroup"), "{stderr}");
    assert!(
        stderr.contains("the child exited (killed by SIGTERM; tree: cpu "),
        "-v's exit line should carry the tree's usage: {stderr}"
    );
    if let Err(left) = cg.empty_within(SLACK) {
        panic!("after pidreap exited: {left}; stderr:\n{stderr}");
    }
}

#[test]
fn pidns_graceful_stop_leaves_nothing() {
    if support::contain_mode_skip("pidns_graceful_stop_leaves_nothing") {
        return;
    }
    start_watchdog();
    let m = marker();
    let _sweep = Sweep(m.clone());
    let Stopped {
        code,
        stderr,
        alive,
        ..
    } = graceful_stop("pidns", None, &m);
    assert_eq!(
        alive,
        Vec::<u32>::new(),
        "alive after grace + 1 s; stderr:\n{stderr}"
    );
    // The namespace's init is a second pidreap, so the shell is not PID 1:
    // SIGTERM's default action ends it (143), and the namespace, TERM-
    // ignoring members included, dies with the inner pidreap.
    assert_eq!(code, 128 + 15, "stderr:\n{stderr}");
    assert!(
        stderr.contains("containment: none"),
        "the inner pidreap runs the program: {stderr}"
    );
    assert!(stderr.contains("containment: pidns"), "{stderr}");
}

#[test]
fn group_graceful_stop_leaves_only_the_setsid_daemon() {
    start_watchdog();
    let m = marker();
    let _sweep = Sweep(m.clone());
    let Stopped {
        code,
        before,
        stderr,
        alive,
        ..
    } = graceful_stop("group", None, &m);
    // What left the group (a session of its own) is out of reach; everything
    // still in the group, the grandchild that ignores SIGTERM included, gets
    // the ladder.
    let setsid: Vec<u32> = before
        .iter()
        .copied()
        .filter(|&pid| session(pid) == Some(pid as i32))
        .collect();
    assert_eq!(setsid.len(), 1, "one setsid daemon among {before:?}");
    assert_eq!(
        alive, setsid,
        "alive after grace + 1 s should be exactly the setsid daemon; stderr:\n{stderr}"
    );
    assert_eq!(code, 128 + 15, "stderr:\n{stderr}");
    assert!(stderr.contains("containment: group"), "{stderr}");
}

// ------------------------------------------------------------ SIGKILL

/// SIGKILL to pidreap running the full tree; the marked processes alive
/// one second later.
fn sigkill_full_tree(contain: &str, cgroup: Option<&TestCgroup>, m: &str) -> (Vec<u32>, String) {
    let script = full_tree(m);
    let args = run_args(contain, &[], &script);
    let mut p = match cgroup {
        Some(cg) => Pidreap::spawn(cg.command(BIN, &args)),
        None => Pidreap::start(&args),
    };
    wait_marked(m, FULL_TREE);
    p.signal(Signal::KILL);
    p.wait(LONG);
    std::thread::sleep(Duration::from_secs(1));
    (marked(m), p.stderr())
}

#[test]
fn cgroup_sigkill_of_pidreap_leaves_nothing() {
    if support::contain_mode_skip("cgroup_sigkill_of_pidreap_leaves_nothing") {
        return;
    }
    start_watchdog();
    let Some(cg) = TestCgroup::or_skip("cgroup_sigkill_of_pidreap_leaves_nothing") else {
        return;
    };
    let m = marker();
    let _sweep = Sweep(m.clone());
    let (alive, stderr) = sigkill_full_tree("cgroup", Some(&cg), &m);
    assert_eq!(
        alive,
        Vec::<u32>::new(),
        "alive 1 s after; stderr:\n{stderr}"
    );
    // The sentinel killed the tree, removed the cgroups and exited.
    if let Some(left) = cg.leftovers() {
        panic!("1 s after pidreap's SIGKILL: {left}; stderr:\n{stderr}");
    }
}

#[test]
fn pidns_sigkill_of_pidreap_leaves_nothing() {
    if support::contain_mode_skip("pidns_sigkill_of_pidreap_leaves_nothing") {
        return;
    }
    start_watchdog();
    let m = marker();
    let _sweep = Sweep(m.clone());
    let (alive, stderr) = sigkill_full_tree("pidns", None, &m);
    assert_eq!(
        alive,
        Vec::<u32>::new(),
        "alive 1 s after; stderr:\n{stderr}"
    );
}

#[test]
fn group_sigkill_of_pidreap_kills_the_child_only() {
    start_watchdog();
    let m = marker();
    let _sweep = Sweep(m.clone());
    let script = full_tree(&m);
    let mut p = Pidreap::start(&run_args("group", &[], &script));
    wait_marked(&m, FULL_TREE);
    let shell = support::children_of(p.pid());
    assert_eq!(shell.len(), 1, "pidreap's one child: {shell:?}");
    let shell = support::Proc::of(shell[0]);
    p.signal(Signal::KILL);
    p.wait(LONG);
    support::wait_until(LONG, "the child died of its parent-death signal", || {
        shell.is_dead()
    });
    // As documented: the rest of the tree survives pidreap's death.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        marked(&m).len(),
        FULL_TREE,
        "the group's other members outlive pidreap; stderr:\n{}",
        p.stderr()
    );
}

/// One SIGKILL trial: pidreap runs the small tree under `contain` (in
/// `cg`, if given) and is SIGKILLed `delay` after its start, or (`None`)
/// once the tree is up. Returns how many marked processes were alive one
/// second after the kill; `Err` names what survived (or what was left in the
/// test cgroup), or why the trial could not be run.
fn sigkill_trial(
    contain: &str,
    cg: Option<&TestCgroup>,
    delay: Option<Duration>,
) -> Result<(), (usize, String)> {
    let m = marker();
    let _sweep = Sweep(m.clone());
    let script = small_tree(&m);
    let args = [
        "run",
        "-vv",
        "--grace",
        "1s",
        "--contain",
        contain,
        "--",
        "sh",
        "-c",
        &script,
    ];
    let mut cmd = match cg {
        Some(cg) => cg.command(BIN, &args),
        None => {
            let mut cmd = Command::new(BIN);
            cmd.args(args);
            cmd
        }
    };
    let dir = TempDir::new("trial");
    let stderr_path = dir.path().join("stderr");
    let stderr =
        File::create(&stderr_path).map_err(|e| (0, format!("creating {stderr_path:?}: {e}")))?;
    let stderr_of = || fs::read_to_string(&stderr_path).unwrap_or_default();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let t0 = Instant::now();
    let mut pidreap = cmd
        .spawn()
        .map_err(|e| (0, format!("spawning pidreap: {e}")))?;
    let when = match delay {
        Some(delay) => {
            std::thread::sleep((t0 + delay).saturating_duration_since(Instant::now()));
            format!("{delay:?} after its start")
        }
        None => {
            let deadline = Instant::now() + LONG;
            while marked(&m).len() < SMALL_TREE {
                let exited = pidreap.try_wait().ok().flatten();
                if exited.is_some() || Instant::now() >= deadline {
                    let _ = pidreap.kill();
                    let _ = pidreap.wait();
                    return Err((
                        0,
                        format!(
                            "the tree was not up ({:?}) within {LONG:?}; pidreap: {exited:?}; stderr:\n{}",
                            marked(&m),
                            stderr_of()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            "with the tree up".to_string()
        }
    };
    let _ = pidreap.kill();
    let _ = pidreap.wait();
    std::thread::sleep(Duration::from_secs(1));
    let alive = marked(&m);
    let left = cg.and_then(TestCgroup::live_leftovers);
    if alive.is_empty() && left.is_none() {
        return Ok(());
    }
    Err((
        alive.len(),
        format!(
            "killed {when}: alive 1 s later {alive:?}; {}; stderr:\n{}",
            left.unwrap_or_default(),
            stderr_of()
        ),
    ))
}

/// `TRIALS` SIGKILL trials under `contain`, `WORKERS` at a time (each in a
/// test cgroup of its own if `cgroups`); every fourth is killed 0..5 ms
/// after pidreap's start, during its spawn, the rest once the tree is up.
/// Returns the survivors counted over all trials and the failed trials, one
/// line each. A trial that cannot run stops the rest.
fn sigkill_trials(contain: &str, cgroups: bool) -> (usize, Vec<String>) {
    let failures = std::sync::Mutex::new(Vec::new());
    let survivors = std::sync::atomic::AtomicUsize::new(0);
    let next = AtomicU32::new(0);
    let abort = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                let fresh =
                    || cgroups.then(|| TestCgroup::create().expect("creating a test cgroup"));
                let mut cg = fresh();
                let mut rng = Rng::new();
                loop {
                    let trial = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if trial >= TRIALS || abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let delay = trial
                        .is_multiple_of(4)
                        .then(|| Duration::from_micros(rng.below(5_000)));
                    if let Err((alive, e)) = sigkill_trial(contain, cg.as_ref(), delay) {
                        survivors.fetch_add(alive, Ordering::Relaxed);
                        if e.starts_with("the tree was not up") || e.starts_with("spawning") {
                            abort.store(true, Ordering::Relaxed);
                        }
                        failures.lock().unwrap().push(format!("trial {trial}: {e}"));
                        // A fresh cgroup for the next trial.
                        cg = fresh();
                    }
                }
            });
        }
    });
    (survivors.into_inner(), failures.into_inner().unwrap())
}

#[test]
fn cgroup_sigkill_trials_leave_no_survivor() {
    if support::contain_mode_skip("cgroup_sigkill_trials_leave_no_survivor") {
        return;
    }
    start_watchdog();
    if TestCgroup::or_skip("cgroup_sigkill_trials_leave_no_survivor").is_none() {
        return;
    }
    let t0 = Instant::now();
    let (survivors, failures) = sigkill_trials("cgroup", true);
    eprintln!(
        "cgroup: {survivors} survivors in {TRIALS} trials, {} failed (survivors or populated cgroups left), {} left an empty cgroup, {:?}",
        failures.len(),
        EMPTY_LEFT.load(Ordering::Relaxed),
        t0.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pidns_sigkill_trials_leave_no_survivor() {
    if support::contain_mode_skip("pidns_sigkill_trials_leave_no_survivor") {
        return;
    }
    start_watchdog();
    let t0 = Instant::now();
    let (survivors, failures) = sigkill_trials("pidns", false);
    eprintln!(
        "pidns: {survivors} survivors in {TRIALS} trials, {} failed, {:?}",
        failures.len(),
        t0.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ------------------------------------------------------------ refusals

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The setpriv(1) arguments that make nobody of the rest, without
/// capabilities.
const NOBODY: [&str; 4] = [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
];

/// pidreap run with `args` as nobody, without capabilities, and where no
/// user namespace can be made either (so that no PID namespace can be had
/// without privileges): in a user namespace of its own that maps uids and
/// gids 0..65535 to themselves, whose `user.max_user_namespaces` is 0
/// ([user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)).
/// Where `unshare --user` does not work, user namespaces are not available
/// anyway and setpriv alone does. `None` (printed) without setpriv(1).
fn as_nobody(test: &str, cgroup: Option<&TestCgroup>, args: &[&str]) -> Option<Pidreap> {
    if !succeeds("setpriv", &["--version"]) {
        support::skip(test, "setpriv(1) (util-linux) is not installed");
        return None;
    }
    let wrap = |program: &str, args: &[&str]| match cgroup {
        Some(cg) => cg.command(program, args),
        None => {
            let mut cmd = Command::new(program);
            cmd.args(args);
            cmd
        }
    };
    let mut full: Vec<&str> = NOBODY.to_vec();
    full.push(BIN);
    full.extend_from_slice(args);
    if !succeeds("unshare", &["--user", "true"]) {
        return Some(Pidreap::spawn(wrap("setpriv", &full)));
    }
    // The shell waits for its maps (written from here, by root in the
    // parent namespace), execs a shell that is root there (it lost its
    // capabilities at its own exec, made while unmapped: capabilities(7)),
    // which closes the namespace to new user namespaces and becomes nobody.
    let script = "read go && exec sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv \"$@\"' sh \"$@\"";
    let mut inner = vec!["--user", "sh", "-c", script, "sh"];
    inner.extend_from_slice(&full);
    let mut p = Pidreap::spawn_with_stdin(wrap("unshare", &inner), Stdio::piped());
    let pid = p.pid();
    let ours = fs::read_link("/proc/self/ns/user").expect("reading /proc/self/ns/user");
    support::wait_until(LONG, "unshare --user made its user namespace", || {
        fs::read_link(format!("/proc/{pid}/ns/user")).is_ok_and(|ns| ns != ours)
    });
    for map in ["uid_map", "gid_map"] {
        fs::write(format!("/proc/{pid}/{map}"), "0 0 65536\n")
            .unwrap_or_else(|e| panic!("writing /proc/{pid}/{map}: {e}"));
    }
    let mut stdin = p.child.stdin.take().expect("piped stdin");
    std::io::Write::write_all(&mut stdin, b"go\n").expect("telling the shell to go on");
    Some(p)
}

/// Runs pidreap as nobody with `--contain <mechanism>` and a program that
/// says so on stderr if it runs; returns (code, stderr, whether it ran).
fn refused(
    test: &str,
    cgroup: Option<&TestCgroup>,
    mechanism: &str,
) -> Option<(i32, String, bool)> {
    let args = [
        "run",
        "--contain",
        mechanism,
        "--",
        "sh",
        "-c",
        "echo the program started >&2",
    ];
    let mut p = as_nobody(test, cgroup, &args)?;
    let code = p.code(LONG);
    let stderr = p.stderr();
    let started = stderr.contains("the program started");
    Some((code, stderr, started))
}

#[test]
fn an_unavailable_pidns_exits_125_naming_cap_sys_admin_before_spawning() {
    if support::contain_mode_skip(
        "an_unavailable_pidns_exits_125_naming_cap_sys_admin_before_spawning",
    ) {
        return;
    }
    start_watchdog();
    let test = "an_unavailable_pidns_exits_125_naming_cap_sys_admin_before_spawning";
    let Some((code, stderr, started)) = refused(test, None, "pidns") else {
        return;
    };
    assert_eq!(code, 125, "{stderr}");
    assert!(!started, "the program ran: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(
        lines[0].starts_with("pidreap: error: --contain pidns: ")
            && lines[0].contains("CAP_SYS_ADMIN"),
        "{stderr}"
    );
}

#[test]
fn an_unavailable_cgroup_exits_125_naming_the_delegation_before_spawning() {
    if support::contain_mode_skip(
        "an_unavailable_cgroup_exits_125_naming_the_delegation_before_spawning",
    ) {
        return;
    }
    start_watchdog();
    let test = "an_unavailable_cgroup_exits_125_naming_the_delegation_before_spawning";
    // In a cgroup of root's (a test cgroup, where one can be made), the
    // error says it is not delegated; without one, whatever is missing.
    let cg = TestCgroup::create().ok();
    let Some((code, stderr, started)) = refused(test, cg.as_ref(), "cgroup") else {
        return;
    };
    assert_eq!(code, 125, "{stderr}");
    assert!(!started, "the program ran: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(
        lines[0].starts_with(
            "pidreap: error: --contain cgroup: cgroup containment is not available here: "
        ),
        "{stderr}"
    );
    if let Some(cg) = &cg {
        let path = cg.path.display().to_string();
        assert!(
            lines[0].contains(&format!("cgroup {path}")) && lines[0].contains("is not delegated"),
            "the error should say {path} is not delegated: {stderr}"
        );
    }
}

// ------------------------------------------------------------ auto

#[test]
fn auto_without_privileges_falls_back_to_group_and_says_why() {
    if support::contain_mode_skip("auto_without_privileges_falls_back_to_group_and_says_why") {
        return;
    }
    start_watchdog();
    let test = "auto_without_privileges_falls_back_to_group_and_says_why";
    let cg = TestCgroup::create().ok();
    let Some(mut p) = as_nobody(
        test,
        cg.as_ref(),
        &["run", "-v", "--", "sh", "-c", "exit 3"],
    ) else {
        return;
    };
    let code = p.code(LONG);
    let stderr = p.stderr();
    assert_eq!(code, 3, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pidreap: info: containment: "))
        .unwrap_or_else(|| panic!("no containment line: {stderr}"));
    assert!(
        line.starts_with("pidreap: info: containment: group (auto; cgroup: ")
            && line.contains("; pidns: ")
            && line.contains("CAP_SYS_ADMIN"),
        "{line}"
    );
}

#[test]
fn auto_takes_cgroup_where_it_works() {
    if support::contain_mode_skip("auto_takes_cgroup_where_it_works") {
        return;
    }
    start_watchdog();
    let Some(cg) = TestCgroup::or_skip("auto_takes_cgroup_where_it_works") else {
        return;
    };
    let args = ["run", "-v", "--", "sh", "-c", "exit 4"];
    let mut p = Pidreap::spawn(cg.command(BIN, &args));
    let code = p.code(LONG);
    let stderr = p.stderr();
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("pidreap: info: containment: cgroup (auto)\n"),
        "{stderr}"
    );
    if let Err(left) = cg.empty_within(LONG) {
        panic!("{left}");
    }
}

#[test]
fn help_documents_contain_and_its_default() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("running pidreap --help");
    let help = String::from_utf8(out.stdout).unwrap();
    let at = help
        .find("  --contain none|group|cgroup|pidns|auto\n")
        .unwrap_or_else(|| panic!("--contain is not in --help:\n{help}"));
    let block = &help[at..at + help[at + 3..].find("\n  --").unwrap() + 3];
    for mechanism in ["none ", "group ", "cgroup ", "pidns ", "auto "] {
        assert!(
            block.contains(&format!("\n                           {mechanism}")),
            "{mechanism}has no line of its own:\n{block}"
        );
    }
    assert!(block.contains("[default: auto]"), "{block}");
}

// ------------------------------------------------------------ forward-to group

/// The `--forward-to group` bug: the shell (the group's leader) dies of the
/// SIGTERM at once, and its two children, which ignore SIGTERM, must still
/// get the SIGKILL at the end of the grace, so pidreap must not exit before.
#[test]
fn forward_to_group_kills_the_group_after_its_leader_died() {
    start_watchdog();
    let m = marker();
    let _sweep = Sweep(m.clone());
    let script =
        format!("(trap \"\" TERM; exec sleep {m}) & (trap \"\" TERM; exec sleep {m}) & wait");
    let mut p = Pidreap::start(&[
        "run",
        "-vv",
        "--grace",
        "1s",
        "--forward-to",
        "group",
        "--contain",
        "none",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    wait_marked(&m, 2);
    let t0 = Instant::now();
    p.signal(Signal::TERM);
    let code = p.code(GRACE + LONG);
    let took = t0.elapsed();
    std::thread::sleep((t0 + GRACE + SLACK).saturating_duration_since(Instant::now()));
    let alive = marked(&m);
    let stderr = p.stderr();
    assert_eq!(
        alive,
        Vec::<u32>::new(),
        "alive after grace + 1 s; stderr:\n{stderr}"
    );
    assert!(
        took >= GRACE - Duration::from_millis(50),
        "pidreap exited after {took:?}, before the SIGKILL at the grace's end; stderr:\n{stderr}"
    );
    assert_eq!(
        code,
        128 + 15,
        "the shell died of SIGTERM; stderr:\n{stderr}"
    );
}

// ------------------------------------------------------------ the tree's signals

/// Under cgroup containment the stop signal goes to the whole tree at
/// once: a tree whose members all honour SIGTERM, the `setsid` and
/// double-forked ones included, is gone long before a long grace ends.
#[test]
fn cgroup_stop_signal_reaches_every_member_at_once() {
    if support::contain_mode_skip("cgroup_stop_signal_reaches_every_member_at_once") {
        return;
    }
    start_watchdog();
    let Some(cg) = TestCgroup::or_skip("cgroup_stop_signal_reaches_every_member_at_once") else {
        return;
    };
    let m = marker();
    let _sweep = Sweep(m.clone());
    let script = format!("sleep {m} & setsid sleep {m} & (sleep {m} &); wait");
    let args = [
        "run",
        "-v",
        "--grace",
        "20s",
        "--contain",
        "cgroup",
        "--",
        "sh",
        "-c",
        &script,
    ];
    let mut p = Pidreap::spawn(cg.command(BIN, &args));
    wait_marked(&m, 3);
    let t0 = Instant::now();
    p.signal(Signal::TERM);
    let code = p.code(LONG);
    let took = t0.elapsed();
    let stderr = p.stderr();
    assert_eq!(code, 128 + 15, "{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: the members did not get SIGTERM; {stderr}"
    );
    assert_eq!(marked(&m), Vec::<u32>::new(), "{stderr}");
}

/// A child that exits and leaves processes behind in its cgroup: they are
/// sent the stop signal at once (and SIGKILL after the grace), and pidreap
/// exits with the child's own status once they are gone.
#[test]
fn cgroup_leftovers_of_an_exited_child_are_stopped_at_once() {
    if support::contain_mode_skip("cgroup_leftovers_of_an_exited_child_are_stopped_at_once") {
        return;
    }
    start_watchdog();
    let Some(cg) = TestCgroup::or_skip("cgroup_leftovers_of_an_exited_child_are_stopped_at_once")
    else {
        return;
    };
    let m = marker();
    let _sweep = Sweep(m.clone());
    let script = format!("sleep {m} & setsid sleep {m} & sleep 0.2; exit 3");
    let args = [
        "run",
        "-v",
        "--grace",
        "20s",
        "--contain",
        "cgroup",
        "--",
        "sh",
        "-c",
        &script,
    ];
    let t0 = Instant::now();
    let mut p = Pidreap::spawn(cg.command(BIN, &args));
    let code = p.code(LONG);
    let took = t0.elapsed();
    let stderr = p.stderr();
    assert_eq!(code, 3, "the child's own status: {stderr}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: the leftovers waited for the grace; {stderr}"
    );
    assert!(
        stderr.contains("left processes behind: sent them SIGTERM"),
        "{stderr}"
    );
    assert_eq!(marked(&m), Vec::<u32>::new(), "{stderr}");
}

/// Under `--contain pidns` the namespace's init is a second pidreap, so
/// the program is not PID 1 and keeps the usual signal semantics.
#[test]
fn pidns_program_is_not_pid_1() {
    if support::contain_mode_skip("pidns_program_is_not_pid_1") {
        return;
    }
    start_watchdog();
    let out = Command::new(BIN)
        .args([
            "run",
            "--contain",
            "pidns",
            "--",
            "sh",
            "-c",
            "echo $$ $PPID",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("running pidreap");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 1",
        "the program is PID 2, the inner pidreap PID 1"
    );
}
