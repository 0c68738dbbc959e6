//! What this binary does when `PIDREAP_TEST_ROLE` is set: run one test
//! (`test:<name>`), or act as a helper program for a test (`workers`,
//! `delayed`); and starting those helpers from a test.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use pidreap::{Command, Reaper, Signal, Stdio};

use crate::TESTS;

pub(crate) const ROLE: &str = "PIDREAP_TEST_ROLE";
pub(crate) const FALLBACK: &str = "PIDREAP_TEST_FALLBACK";
const PARENT: &str = "PIDREAP_TEST_PARENT";
const DEATHSIG: &str = "PIDREAP_TEST_DEATHSIG";
const TRACEE: &str = "PIDREAP_TEST_TRACEE";

pub(crate) fn run_role(role: &str) -> ExitCode {
    if let Some(name) = role.strip_prefix("test:") {
        let test = TESTS
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no test {name}"));
        // A panic exits with 101 and its message in the log.
        (test.run)();
        return ExitCode::SUCCESS;
    }
    // Helpers die with the test process that started them.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let parent: i32 = std::env::var(PARENT)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent {
        return ExitCode::FAILURE;
    }
    if std::env::var_os(FALLBACK).is_some() {
        pidreap::testing::force_fork_class(true);
    }
    match role {
        "workers" => helper_workers(),
        "delayed" => helper_delayed(),
        "pidns-tree" => helper_tree(pidreap::Containment::PidNamespace, TREE),
        "cgroup-tree" => helper_tree(pidreap::Containment::Cgroup, TREE),
        "pidns-tree-unprivileged" => helper_pidns_tree_unprivileged(),
        "storm-cgroup" => helper_storm(pidreap::Containment::Cgroup),
        "storm-pidns" => helper_storm(pidreap::Containment::PidNamespace),
        "tracer" => helper_tracer(),
        _ => panic!("unknown role {role}"),
    }
    ExitCode::SUCCESS
}

/// Spawns four `sleep 60` workers, prints their pids and "ready", then
/// waits (bounded) to be SIGKILLed.
fn helper_workers() {
    let mut reaper = Reaper::new().unwrap();
    let mut out = std::io::stdout().lock();
    let death_signal = match std::env::var(DEATHSIG).as_deref() {
        Err(_) => Some(Signal::KILL),
        Ok("none") => None,
        Ok(name) => Some(name.parse().unwrap()),
    };
    for _ in 0..4 {
        let mut cmd = Command::new("sleep");
        cmd.arg("60")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if death_signal != Some(Signal::KILL) {
            cmd.death_signal(death_signal);
        }
        let child = reaper.spawn(&cmd).unwrap();
        writeln!(out, "{}", child.pid()).unwrap();
    }
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let _ = reaper.wait_event(Some(Duration::from_secs(60)));
}

/// Spawns `sleep 30` with a 2 s pause between clone and PR_SET_PDEATHSIG;
/// the test SIGKILLs this process during the pause.
fn helper_delayed() {
    let mut reaper = Reaper::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    pidreap::testing::setup_delay(&mut cmd, DELAY);
    println!("spawning");
    std::io::stdout().flush().unwrap();
    let r = reaper.spawn(&cmd);
    println!("spawned: {r:?}");
}

/// The shell script of a tree whose descendants all try to outlive the
/// supervisor: background children, a `setsid` daemon, a double-forked
/// grandchild, each ignoring SIGTERM. Prints "ready" when all run.
pub(crate) const TREE: &str = "trap '' TERM; sleep 1000 & setsid sleep 1000 & (sleep 1000 &) ; \
    sleep 0.2; echo ready; wait";

/// Spawns `script` under `containment`, its stdout on ours; prints the
/// child's pid first, then waits (bounded) to be SIGKILLed.
fn helper_tree(containment: pidreap::Containment, script: &str) {
    let mut reaper = Reaper::new().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script])
        .containment(containment)
        .stdin(Stdio::null());
    let mut out = std::io::stdout().lock();
    let child = reaper.spawn(&cmd).unwrap();
    writeln!(out, "{}", child.pid()).unwrap();
    out.flush().unwrap();
    drop(out);
    let _ = reaper.wait_event(Some(Duration::from_secs(60)));
}

/// Run as an unprivileged user: checks that `Containment::check` accepts
/// a PID namespace (through a user namespace), then runs [`TREE`] in one,
/// after the child printed its uid and pid as it sees them.
fn helper_pidns_tree_unprivileged() {
    let containment = pidreap::Containment::PidNamespace;
    containment
        .check()
        .expect("an unprivileged PID namespace is available");
    helper_tree(containment, &format!("echo $(id -u) $$; {TREE}"));
}

/// A small tree that escapes its parent's session and group: a background
/// child, a `setsid` one and a double-forked one.
pub(crate) const SMALL_TREE: &str = "sleep 1000 & setsid sleep 1000 & (sleep 1000 &) ; wait";

/// Spawns [`SMALL_TREE`]s under `containment` back to back (at most 40),
/// printing "started" after the first, until SIGKILLed (bounded): a SIGKILL
/// then lands at any point of a spawn.
fn helper_storm(containment: pidreap::Containment) {
    let mut reaper = Reaper::new().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", SMALL_TREE])
        .containment(containment)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut out = std::io::stdout().lock();
    for n in 0..40 {
        reaper.spawn(&cmd).unwrap();
        if n == 0 {
            writeln!(out, "started").unwrap();
            out.flush().unwrap();
        }
    }
    drop(out);
    let _ = reaper.wait_event(Some(Duration::from_secs(60)));
}

pub(crate) const DELAY: Duration = Duration::from_secs(2);

/// Traces the process named by `PIDREAP_TEST_TRACEE` (`PTRACE_SEIZE`) and
/// prints "attached"; holds the tracee's exit until a line arrives on
/// stdin, then takes it (which hands the tracee back to its parent) and
/// prints "released".
/// [ptrace(2)](https://man7.org/linux/man-pages/man2/ptrace.2.html)
fn helper_tracer() {
    let pid: i32 = std::env::var(TRACEE)
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("PIDREAP_TEST_TRACEE: a pid");
    let mut out = std::io::stdout().lock();
    // SAFETY: ptrace with integer arguments and null pointers.
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0usize, 0usize) };
    if r != 0 {
        writeln!(out, "PTRACE_SEIZE: {}", std::io::Error::last_os_error()).unwrap();
        return;
    }
    writeln!(out, "attached").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a pointer to a local int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r < 0 || libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            break;
        }
        // A stop on the way: let it go on.
        // SAFETY: ptrace with integer arguments and null pointers.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0usize, 0usize) };
    }
    writeln!(out, "released").unwrap();
    out.flush().unwrap();
}

/// This binary as a helper with `role`: no death signal, the fast path,
/// stdin null, stdout piped.
fn helper_command(role: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE, role)
        .env(PARENT, std::process::id().to_string())
        .env_remove(DEATHSIG)
        .env_remove(FALLBACK)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    cmd
}

/// Starts the `tracer` helper on `pid`, stdin and stdout piped.
pub(crate) fn start_tracer(pid: u32) -> std::process::Child {
    let mut cmd = helper_command("tracer");
    cmd.env(TRACEE, pid.to_string())
        .stdin(std::process::Stdio::piped());
    cmd.spawn().expect("starting the tracer helper")
}

/// Starts this binary as a helper with `role`, stdout piped.
pub(crate) fn start_helper(role: &str, fallback: bool) -> std::process::Child {
    start_helper_with(role, fallback, None)
}

/// Starts this binary as a helper with `role` as user and group `nobody`
/// (65534), stdout piped.
pub(crate) fn start_helper_as_nobody(role: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = helper_command(role);
    cmd.uid(65534).gid(65534);
    cmd.spawn().expect("starting a helper as nobody")
}

pub(crate) fn start_helper_with(
    role: &str,
    fallback: bool,
    death_signal: Option<&str>,
) -> std::process::Child {
    let mut cmd = helper_command(role);
    if let Some(s) = death_signal {
        cmd.env(DEATHSIG, s);
    }
    if fallback {
        cmd.env(FALLBACK, "1");
    }
    cmd.spawn().expect("starting a helper")
}
