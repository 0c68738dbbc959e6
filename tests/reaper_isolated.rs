//! Tests on real processes that touch process-global state: fd counts,
//! blocked signals and the signalfd, the fork-class fallback spawn path, a
//! child subreaper, helpers that are SIGKILLed, 1,000 children at once.
//!
//! A `harness = false` test (see Cargo.toml). `main` runs every test in a
//! process of its own: it re-executes this binary with `PIDREAP_TEST_ROLE`
//! set to `test:<name>`, kills it at the test's deadline, and fails the
//! test if it left any process behind (the runner is a child subreaper, so
//! every orphan a test leaves lands on it). Helper programs for the tests
//! are the same binary with other roles (`workers`, `delayed`).
//!
//! Output: `test NAME ... ok` per test, then a plain `N passed, M failed`
//! line; the exit code is 1 if any test failed. Arguments that do not
//! start with `-` filter tests by substring; `--list` lists them.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pidreap::{Command, Error, Event, ExitStatus, Reaper, Signal, Stdio, StopLadder, STOP_SIGNALS};
use support::{Guard, Lines, Proc, LONG};

const ROLE: &str = "PIDREAP_TEST_ROLE";
const FALLBACK: &str = "PIDREAP_TEST_FALLBACK";
const PARENT: &str = "PIDREAP_TEST_PARENT";
const DEATHSIG: &str = "PIDREAP_TEST_DEATHSIG";

struct Test {
    name: &'static str,
    deadline: Duration,
    run: fn(),
}

const fn t(name: &'static str, secs: u64, run: fn()) -> Test {
    Test {
        name,
        deadline: Duration::from_secs(secs),
        run,
    }
}

const TESTS: &[Test] = &[
    t("exec_errors_leak_no_fd_and_no_zombie", 60, || {
        exec_errors_leak_nothing(false)
    }),
    t("spawn_and_reap_1000_cycles_leak_nothing", 120, || {
        spawn_reap_cycles(false, 1000)
    }),
    t(
        "children_see_only_stdio_while_many_fds_are_held",
        60,
        || only_stdio_fds(false),
    ),
    t(
        "blocked_signals_children_get_clean_mask_and_sigterm_is_an_event",
        60,
        || blocked_signals(false),
    ),
    t(
        "thousand_children_stopped_with_one_request",
        180,
        thousand_children,
    ),
    t(
        "sigkilled_supervisor_takes_its_workers_20_times",
        120,
        || sigkilled_supervisor(false, 20),
    ),
    t("supervisor_dying_before_prctl_leaves_no_orphan", 60, || {
        dies_before_prctl(false)
    }),
    t(
        "death_signal_can_be_changed_or_turned_off",
        60,
        death_signal_options,
    ),
    t(
        "subreaper_reaps_orphans_and_keeps_supervised_statuses",
        60,
        orphans_reaped,
    ),
    t("child_surviving_sigkill_is_reported_stuck", 60, stuck_child),
    t("fallback_statuses_and_stdio", 60, || {
        statuses_and_stdio(true)
    }),
    t("fallback_exec_errors_leak_no_fd_and_no_zombie", 60, || {
        exec_errors_leak_nothing(true)
    }),
    t(
        "fallback_spawn_and_reap_1000_cycles_leak_nothing",
        120,
        || spawn_reap_cycles(true, 1000),
    ),
    t(
        "fallback_children_see_only_stdio_while_many_fds_are_held",
        60,
        || only_stdio_fds(true),
    ),
    t(
        "fallback_blocked_signals_children_get_clean_mask",
        60,
        || blocked_signals(true),
    ),
    t(
        "fallback_sigkilled_supervisor_takes_its_workers",
        120,
        || sigkilled_supervisor(true, 5),
    ),
    t(
        "fallback_supervisor_dying_before_prctl_leaves_no_orphan",
        60,
        || dies_before_prctl(true),
    ),
    t(
        "seccomp_refusing_clone_vm_falls_back_to_fork_class",
        60,
        || refused_features(Refuse::CloneVm),
    ),
    t(
        "seccomp_refusing_clone_pidfd_falls_back_to_pidfd_open",
        60,
        || refused_features(Refuse::ClonePidfd),
    ),
    t(
        "seccomp_refusing_every_pidfd_enosys_gives_unsupported",
        60,
        || refused_features(Refuse::AllPidfds(libc::ENOSYS)),
    ),
    t(
        "seccomp_refusing_every_pidfd_eperm_gives_unsupported",
        60,
        || refused_features(Refuse::AllPidfds(libc::EPERM)),
    ),
    t(
        "fd_exhaustion_gives_a_typed_error_and_loses_nothing",
        60,
        || fd_exhaustion(false),
    ),
    t(
        "fallback_fd_exhaustion_gives_a_typed_error_and_loses_nothing",
        60,
        || fd_exhaustion(true),
    ),
];

fn main() -> ExitCode {
    match std::env::var(ROLE) {
        Ok(role) => run_role(&role),
        Err(_) => runner(),
    }
}

// ------------------------------------------------------------------ runner

fn runner() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for t in TESTS {
            println!("{}: test", t.name);
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|t| filters.is_empty() || filters.iter().any(|f| t.name.contains(f.as_str())))
        .collect();

    // Everything a test leaves behind is reparented here.
    set_subreaper();
    let exe = std::env::current_exe().expect("current_exe");
    let logs = support::TempDir::new("logs");
    println!(
        "\nrunning {} tests (each in its own process)",
        selected.len()
    );
    let (mut passed, mut failed) = (0, 0);
    for t in selected {
        let log_path = logs.path().join(t.name);
        let log = fs::File::create(&log_path).expect("creating a log file");
        let started = Instant::now();
        let mut child = std::process::Command::new(&exe)
            .env(ROLE, format!("test:{}", t.name))
            .env_remove(FALLBACK)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("starting the test process");
        let outcome = loop {
            match child.try_wait().expect("try_wait") {
                Some(status) if status.success() => break Ok(()),
                Some(status) => break Err(format!("the test process ended with {status}")),
                None if started.elapsed() > t.deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("timed out after {:?}", t.deadline));
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let leftovers = clean_up_leftovers();
        let outcome = match (outcome, leftovers.is_empty()) {
            (Ok(()), true) => Ok(()),
            (Ok(()), false) => Err(format!("left processes behind: {leftovers:?}")),
            (Err(e), true) => Err(e),
            (Err(e), false) => Err(format!("{e}; and left processes behind: {leftovers:?}")),
        };
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("test {} ... ok ({:.1?})", t.name, started.elapsed());
            }
            Err(why) => {
                failed += 1;
                println!("test {} ... FAILED: {why}", t.name);
                println!(
                    "---- {} output ----\n{}",
                    t.name,
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn set_subreaper() {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "PR_SET_CHILD_SUBREAPER: {}",
        std::io::Error::last_os_error()
    );
}

/// Kills and reaps every child of this process, returning what was found
/// (as "pid comm state").
fn clean_up_leftovers() -> Vec<String> {
    let mut found = Vec::new();
    for pid in support::own_children() {
        let desc = support::stat(pid)
            .map(|s| format!("{pid} {} {}", s.comm, s.state))
            .unwrap_or_default();
        found.push(desc);
        if let Ok(fd) = support::pidfd_open(pid) {
            // SAFETY: pidfd_send_signal(fd, SIGKILL, NULL, 0).
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    libc::SIGKILL,
                    std::ptr::null::<u8>(),
                    0,
                );
            }
        }
        reap(pid, LONG);
    }
    found
}

/// Reaps our child `pid`, waiting at most `within`; its raw wait status.
#[track_caller]
fn reap(pid: u32, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on one pid of ours.
        let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        if r == pid as i32 {
            return status;
        }
        assert!(
            r == 0,
            "waitpid({pid}): {}",
            std::io::Error::last_os_error()
        );
        assert!(
            Instant::now() < deadline,
            "pid {pid} not reaped within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for a `std::process::Child` of ours, with a deadline.
#[track_caller]
fn wait_std(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "pid {} not reaped within {within:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ------------------------------------------------------------------- roles

fn run_role(role: &str) -> ExitCode {
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

const DELAY: Duration = Duration::from_secs(2);

/// Starts this binary as a helper with `role`, stdout piped.
fn start_helper(role: &str, fallback: bool) -> std::process::Child {
    start_helper_with(role, fallback, None)
}

fn start_helper_with(
    role: &str,
    fallback: bool,
    death_signal: Option<&str>,
) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    match death_signal {
        Some(s) => cmd.env(DEATHSIG, s),
        None => cmd.env_remove(DEATHSIG),
    };
    cmd.env(ROLE, role)
        .env(PARENT, std::process::id().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    if fallback {
        cmd.env(FALLBACK, "1");
    } else {
        cmd.env_remove(FALLBACK);
    }
    cmd.spawn().expect("starting a helper")
}

// ------------------------------------------------------------------- tests

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

fn setup(fallback: bool) {
    if fallback {
        pidreap::testing::force_fork_class(true);
    }
}

fn check_mode(fallback: bool) {
    let mode = Reaper::spawn_mode();
    if fallback {
        assert_eq!(
            mode, "fork-class clone + pidfd_open",
            "the fallback was not forced"
        );
    } else {
        assert!(
            mode.starts_with("vfork-class"),
            "the fast path is not in use here: {mode}"
        );
    }
}

/// Spawns and reaps one `true`, so that whatever the reaper creates lazily
/// exists before a test counts fds, and checks which spawn path is in use.
#[track_caller]
fn warm_up(reaper: &mut Reaper, fallback: bool) -> pidreap::Exit {
    let child = reaper.spawn(&Command::new("true")).unwrap();
    let exit = exit_of(reaper, child.id());
    check_mode(fallback);
    exit
}

#[track_caller]
fn exit_of(reaper: &mut Reaper, id: pidreap::ChildId) -> pidreap::Exit {
    match reaper.wait(id, Some(LONG)) {
        Ok(Some(exit)) => exit,
        Ok(None) => panic!("child {id} not reaped within {LONG:?}"),
        Err(e) => panic!("waiting for child {id}: {e}"),
    }
}

#[track_caller]
fn assert_no_children_left(what: &str) {
    let left: Vec<_> = support::own_children()
        .into_iter()
        .map(|p| (p, support::stat(p)))
        .collect();
    assert!(
        left.is_empty(),
        "{what}: children (zombies included) left: {left:?}"
    );
}

/// Which kernel features a test's seccomp filter refuses.
#[derive(Clone, Copy, Debug)]
enum Refuse {
    /// `clone` with `CLONE_VM` fails with `EINVAL` (as vfork does as PID 1
    /// in some setups).
    CloneVm,
    /// `clone` with `CLONE_PIDFD` fails with `EINVAL` (kernels before 5.2).
    ClonePidfd,
    /// Both `CLONE_PIDFD` (`EINVAL`) and `pidfd_open` (this errno: `ENOSYS`
    /// on old kernels, `EPERM` under some confinement) fail.
    AllPidfds(i32),
}

/// Installs a seccomp filter on this process (all threads) that refuses
/// what `refuse` names; `clone3` always fails with `ENOSYS` so that libc
/// uses `clone`. Irreversible: only for a test's own process.
fn install_seccomp(refuse: Refuse) {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | (e as u32 & 0xffff);
    let (clone_flags, pidfd_open) = match refuse {
        Refuse::CloneVm => (libc::CLONE_VM as u32, libc::SECCOMP_RET_ALLOW),
        Refuse::ClonePidfd => (libc::CLONE_PIDFD as u32, libc::SECCOMP_RET_ALLOW),
        Refuse::AllPidfds(e) => (libc::CLONE_PIDFD as u32, errno(e)),
    };
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ld = |offset: u32| op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, offset);
    let jeq = |k: u32, jf: u8| op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, jf, k);
    let ret = |k: u32| op(libc::BPF_RET | libc::BPF_K, 0, 0, k);
    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low half,
    // on these little-endian targets). Jumps are relative: `jf` skips.
    let program = [
        ld(4),
        jeq(AUDIT_ARCH, 9), // another arch: allow (11)
        ld(0),
        jeq(libc::SYS_pidfd_open as u32, 1),
        ret(pidfd_open),
        jeq(libc::SYS_clone3 as u32, 1),
        ret(errno(libc::ENOSYS)),
        jeq(libc::SYS_clone as u32, 3), // not clone: allow (11)
        ld(16),
        op(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            0,
            1,
            clone_flags,
        ),
        ret(errno(libc::EINVAL)),
        ret(libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with integer arguments; seccomp reads `prog`, which
    // points to `program`, alive for the call.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let r = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        );
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

/// A kernel (or a seccomp filter) that refuses spawn features: the spawner
/// falls back step by step, children still work and are still reaped
/// through a pidfd; with no pidfd at all, spawn returns `Unsupported` and
/// the child it made is killed and reaped, with no fd left open.
fn refused_features(refuse: Refuse) {
    let mut reaper = Reaper::new().unwrap();
    let before = support::self_fds();
    install_seccomp(refuse);
    let mut cmd = sh("exit 7");
    cmd.stdout(Stdio::piped());
    match refuse {
        Refuse::CloneVm | Refuse::ClonePidfd => {
            let child = reaper.spawn(&cmd).unwrap();
            let expected = match refuse {
                Refuse::CloneVm => "fork-class clone with CLONE_PIDFD",
                _ => "fork-class clone + pidfd_open",
            };
            assert_eq!(Reaper::spawn_mode(), expected);
            assert_eq!(
                exit_of(&mut reaper, child.id()).status,
                ExitStatus::Exited(7)
            );
            drop(child);
            // Exec errors still come back typed on the fallback path.
            let e = reaper
                .spawn(&Command::new("/nonexistent/pidreap-prog"))
                .unwrap_err();
            assert!(e.is_not_found(), "{e:?}");
            // And stopping works through the pidfd.
            let mut sleeper = Command::new("sleep");
            sleeper.arg("60").stop_ladder(StopLadder::kill_only());
            let child = reaper.spawn(&sleeper).unwrap();
            reaper.stop(child.id()).unwrap();
            assert_eq!(
                exit_of(&mut reaper, child.id()).status.signal(),
                Some(Signal::KILL)
            );
        }
        Refuse::AllPidfds(errno) => {
            let e = reaper.spawn(&cmd).unwrap_err();
            match &e {
                Error::Unsupported { what, source } => {
                    assert_eq!(*what, "pidfd_open");
                    assert_eq!(source.raw_os_error(), Some(errno));
                }
                other => panic!("expected Error::Unsupported, got {other:?}"),
            }
            assert!(
                e.to_string().contains("not available on this kernel"),
                "{e}"
            );
            assert!(reaper.is_empty());
        }
    }
    assert_no_children_left("after the spawns");
    assert_eq!(support::self_fds(), before, "fds leaked");
}

/// With the fd table nearly full (a low soft `RLIMIT_NOFILE`), spawns with
/// piped stdio run out of fds: the failing spawn returns a typed error that
/// names what needed the fd and says EMFILE, no child is left running or
/// unreaped by it, and once the limit is back every fd is accounted for.
fn fd_exhaustion(fallback: bool) {
    setup(fallback);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    assert_eq!(warm_up(&mut reaper, fallback).status, ExitStatus::Exited(0));
    let before = support::self_fds();
    // The limit at which exactly 12 fd numbers are free below it (fds
    // already open above a lowered limit stay valid: only new ones count).
    let open: BTreeSet<i32> = before.iter().map(|(fd, _)| *fd).collect();
    let limit = (0..)
        .filter(|fd| !open.contains(fd))
        .nth(11)
        .expect("a free fd number")
        + 1;

    let mut orig = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut orig), 0);
        let low = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: orig.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &low), 0);
    }

    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stop_ladder(StopLadder::kill_only());
    // Each live child keeps its pidfd and three pipe ends: a dozen free fds
    // run out within a few spawns.
    let mut live = Vec::new();
    let err = loop {
        match reaper.spawn(&cmd) {
            Ok(child) => {
                guard.track(child.pid());
                live.push(child);
                assert!(live.len() < 12, "12 free fds never ran out");
            }
            Err(e) => break e,
        }
    };
    match &err {
        Error::Os { op, source } => {
            assert_eq!(source.raw_os_error(), Some(libc::EMFILE), "{err}");
            assert!(err.to_string().starts_with(op), "{err}");
        }
        other => panic!("expected Error::Os with EMFILE, got {other:?}"),
    }
    // The failed spawn left nothing: only the supervised children exist.
    assert_eq!(reaper.len(), live.len());
    let mut kids = support::own_children();
    kids.sort_unstable();
    let mut expected: Vec<u32> = live.iter().map(|c| c.pid()).collect();
    expected.sort_unstable();
    assert_eq!(kids, expected, "a child outside the reaper exists");

    // SAFETY: restores the limit read above.
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &orig), 0);
    }
    // With fds free again, spawning works.
    let ok = reaper.spawn(&Command::new("true")).unwrap();
    assert_eq!(exit_of(&mut reaper, ok.id()).status, ExitStatus::Exited(0));

    let report = reaper.shutdown(LONG).unwrap();
    assert_eq!(report.exited.len(), live.len());
    assert!(report.stuck.is_empty());
    drop(live);
    // The guard holds a pidfd per tracked child: close them before counting.
    drop(guard);
    assert_eq!(support::self_fds(), before, "fds leaked");
    assert_no_children_left("after the shutdown");
}

/// Missing program, non-executable file, directory, bad format, bad
/// directory: typed errors, and afterwards the same fds and no zombie.
fn exec_errors_leak_nothing(fallback: bool) {
    setup(fallback);
    let dir = support::TempDir::new("errs");
    let plain = dir.path().join("plain");
    fs::write(&plain, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    let garbage = dir.path().join("garbage");
    fs::write(&garbage, [0u8; 16]).unwrap();
    fs::set_permissions(&garbage, fs::Permissions::from_mode(0o755)).unwrap();
    let missing = dir.path().join("missing");

    let mut reaper = Reaper::new().unwrap();
    // Warm up: whatever is created lazily exists before the count.
    let _ = reaper.spawn(&Command::new(&missing));
    assert_eq!(warm_up(&mut reaper, fallback).status, ExitStatus::Exited(0));

    let before = support::self_fds();
    for round in 0..50 {
        let piped = |cmd: &mut Command| {
            if round % 2 == 0 {
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            } else {
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
            }
        };
        let mut cmd = Command::new(&missing);
        piped(&mut cmd);
        let e = reaper.spawn(&cmd).unwrap_err();
        assert!(e.is_not_found(), "{e:?}");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );

        let mut cmd = Command::new("pidreap-no-such-program-anywhere");
        piped(&mut cmd);
        assert!(reaper.spawn(&cmd).unwrap_err().is_not_found());

        for (path, errno) in [
            (&plain, libc::EACCES),
            (&garbage, libc::ENOEXEC),
            (&dir.path().to_path_buf(), libc::EACCES),
        ] {
            let mut cmd = Command::new(path);
            piped(&mut cmd);
            let e = reaper.spawn(&cmd).unwrap_err();
            assert!(e.is_not_executable(), "{e:?}");
            match &e {
                Error::Exec { program, source } => {
                    assert_eq!(program, path.as_os_str());
                    assert_eq!(source.raw_os_error(), Some(errno), "{e}");
                }
                other => panic!("expected Error::Exec, got {other:?}"),
            }
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }

        let mut cmd = Command::new("true");
        cmd.current_dir(&missing);
        piped(&mut cmd);
        match reaper.spawn(&cmd) {
            Err(Error::Chdir { dir, .. }) => assert_eq!(dir, missing),
            other => panic!("expected Error::Chdir, got {other:?}"),
        }
    }
    let after = support::self_fds();
    assert_eq!(before, after, "fds differ after 300 failed spawns");
    assert!(reaper.is_empty());
    assert_no_children_left("after failed spawns");
    drop(reaper);
}

/// 1,000 spawn-and-reap cycles (some with pipes, some stopped through a
/// cancel token): the fd count comes back, no zombie is left.
fn spawn_reap_cycles(fallback: bool, n: usize) {
    setup(fallback);
    let mut reaper = Reaper::new().unwrap();
    warm_up(&mut reaper, fallback);
    let before = support::self_fds();
    for i in 0..n {
        let mut cmd;
        if i % 10 == 9 {
            cmd = Command::new("sleep");
            cmd.arg("60").stdin(Stdio::null());
            cmd.stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(30)));
        } else {
            cmd = Command::new("true");
        }
        if i % 3 == 0 {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::null());
        }
        let child = reaper
            .spawn(&cmd)
            .unwrap_or_else(|e| panic!("spawn #{i}: {e}"));
        if i % 10 == 9 {
            reaper.cancel_token(child.id()).unwrap().cancel();
            assert_eq!(
                exit_of(&mut reaper, child.id()).status.signal(),
                Some(Signal::TERM)
            );
        } else {
            assert_eq!(
                exit_of(&mut reaper, child.id()).status,
                ExitStatus::Exited(0),
                "cycle {i}"
            );
        }
    }
    let after = support::self_fds();
    assert_eq!(before, after, "fds differ after {n} spawn-and-reap cycles");
    assert!(reaper.is_empty());
    assert_no_children_left("after the cycles");
}

/// A child sees fds 0, 1, 2 only, while the supervisor holds 100 other
/// fds, one of them inheritable (no CLOEXEC) on purpose, and the pidfds and
/// cancel eventfds of 50 live children.
fn only_stdio_fds(fallback: bool) {
    setup(fallback);
    let inheritable = support::open_inheritable();
    let files: Vec<fs::File> = (0..100)
        .map(|_| fs::File::open("/dev/null").unwrap())
        .collect();
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    let mut sleepers = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..50 {
        let mut cmd = Command::new("sleep");
        cmd.arg("60").stdin(Stdio::null()).stdout(Stdio::null());
        let c = reaper.spawn(&cmd).unwrap();
        guard.track(c.pid());
        tokens.push(reaper.cancel_token(c.id()).unwrap());
        sleepers.push(c);
    }
    check_mode(fallback);
    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let last = reaper.spawn(&cmd).unwrap();
    guard.track(last.pid());
    assert!(
        support::self_fd_count() > 250,
        "the supervisor should hold many fds"
    );
    for c in sleepers.iter().chain([&last]) {
        support::wait_exec(c.pid(), "sleep");
        support::wait_only_stdio(c.pid());
    }
    assert_eq!(
        support::fd_target(last.pid(), 2),
        support::fd_target(std::process::id(), 2)
    );
    let report = reaper.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(report.exited.len(), 51);
    assert!(report
        .exited
        .iter()
        .all(|e| e.status.signal() == Some(Signal::TERM)));
    drop((files, inheritable, tokens));
    assert_no_children_left("after shutdown");
}

/// Blocks the stop signals first thing (no other thread exists in this
/// process), reads them from the reaper's signalfd, and checks that
/// children still start with an empty mask and default dispositions.
fn blocked_signals(fallback: bool) {
    pidreap::block_signals(&STOP_SIGNALS).unwrap();
    setup(fallback);
    let me = std::process::id();
    let stop_bits = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT]
        .iter()
        .fold(0, |acc, &s| acc | support::sig_bit(s));
    assert_eq!(
        support::sig_field(me, "SigBlk") & stop_bits,
        stop_bits,
        "the stop signals should be blocked here"
    );

    let mut guard = Guard::new();
    let mut reaper = Reaper::builder()
        .handle_signals(&STOP_SIGNALS)
        .build()
        .unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("60").stdout(Stdio::null());
    let child = reaper.spawn(&cmd).unwrap();
    guard.track(child.pid());
    check_mode(fallback);
    let pid = child.pid();
    support::wait_exec(pid, "sleep");
    support::assert_clean_signal_state(pid);
    assert_eq!(support::sig_field(pid, "SigPnd"), 0);

    // SIGTERM from another process arrives as an event naming the sender.
    let mut kill = Command::new("kill");
    kill.args(["-TERM", &me.to_string()]);
    let killer = reaper.spawn(&kill).unwrap();
    guard.track(killer.pid());
    let (mut got_signal, mut got_exit) = (false, false);
    let deadline = Instant::now() + LONG;
    while !(got_signal && got_exit) {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("SIGTERM event and kill's exit in time");
        match reaper.wait_event(Some(left)).unwrap() {
            Some(Event::Signal { signal, sender_pid }) => {
                assert_eq!(signal, Signal::TERM);
                assert_eq!(sender_pid, killer.pid() as i32);
                got_signal = true;
            }
            Some(Event::Exited(e)) => {
                assert_eq!(e.id, killer.id());
                assert_eq!(e.status, ExitStatus::Exited(0));
                got_exit = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // And one the process sends itself.
    // SAFETY: kill(2) to our own pid.
    assert_eq!(unsafe { libc::kill(me as i32, libc::SIGHUP) }, 0);
    match reaper.wait_event(Some(LONG)).unwrap() {
        Some(Event::Signal { signal, sender_pid }) => {
            assert_eq!((signal, sender_pid), (Signal::HUP, me as i32))
        }
        other => panic!("expected SIGHUP, got {other:?}"),
    }
    assert_eq!(
        support::sig_field(me, "SigPnd") | support::sig_field(me, "ShdPnd"),
        0
    );

    let report = reaper.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(report.exited.len(), 1);
    assert_eq!(report.exited[0].status.signal(), Some(Signal::TERM));
    assert_no_children_left("after shutdown");
}

/// 1,000 children, stopped by one `cancel()` of the cancel-all token, all
/// reaped, none left in /proc.
fn thousand_children() {
    // Start from the usual soft limit of 1024, as in CI, so that raising it
    // is needed, and children must get 1024 back (pitfall 20).
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_cur.min(1024);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let original = (lim.rlim_cur, lim.rlim_max);
    let limit = pidreap::raise_fd_limit().unwrap();
    assert!(
        limit >= 2100,
        "RLIMIT_NOFILE hard limit {limit} is too low for 1,000 children"
    );
    let mut guard = Guard::new();
    let mut reaper = Reaper::builder()
        .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(60)))
        .build()
        .unwrap();
    let mut procs = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("60")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let c = reaper
            .spawn(&cmd)
            .unwrap_or_else(|e| panic!("spawn #{i}: {e}"));
        guard.track(c.pid());
        procs.push((c.id(), Proc::of(c.pid())));
    }
    assert_eq!(reaper.len(), 1000);
    let sample = procs[999].1.pid;
    support::wait_exec(sample, "sleep");
    assert_eq!(
        nofile_of(sample),
        original,
        "children must get the original RLIMIT_NOFILE back"
    );
    let t0 = Instant::now();
    reaper.cancel_all_token().unwrap().cancel();
    let mut exited = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while exited.len() < 1000 {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("only {} of 1000 children reaped after 120 s", exited.len()));
        match reaper.wait_event(Some(left)).unwrap() {
            Some(Event::Exited(e)) => {
                assert_eq!(e.status.signal(), Some(Signal::TERM), "{e:?}");
                assert!(exited.insert(e.id), "child {} reported twice", e.id);
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    eprintln!("1,000 children stopped and reaped in {:?}", t0.elapsed());
    assert!(reaper.is_empty());
    for (id, p) in &procs {
        assert!(exited.contains(id));
        assert!(p.is_gone(), "pid {} still in /proc: {:?}", p.pid, p.stat());
    }
    assert_no_children_left("after stopping 1,000 children");
}

/// (soft, hard) "Max open files" of `pid`, from /proc/<pid>/limits.
fn nofile_of(pid: u32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// A helper that supervises four workers is SIGKILLed: every worker is dead
/// within a second of the helper's death, `rounds` times in a row. This
/// process is a subreaper, so the workers are reparented here and their
/// statuses can be checked: SIGKILL, the death signal.
fn sigkilled_supervisor(fallback: bool, rounds: usize) {
    set_subreaper();
    for round in 0..rounds {
        let mut guard = Guard::new();
        let mut helper = start_helper("workers", fallback);
        guard.track(helper.id());
        let mut out = Lines::new(helper.stdout.take().unwrap());
        let mut workers = Vec::new();
        loop {
            let line = out.line(LONG, "a worker pid or \"ready\"");
            if line == "ready" {
                break;
            }
            let pid: u32 = line
                .parse()
                .unwrap_or_else(|_| panic!("not a pid: {line:?}"));
            guard.track(pid);
            workers.push(Proc::of(pid));
        }
        assert_eq!(workers.len(), 4);
        for w in &workers {
            let st = w.stat().unwrap();
            assert_eq!(
                (st.comm.as_str(), st.ppid),
                ("sleep", helper.id() as i32),
                "round {round}"
            );
        }
        helper.kill().unwrap();
        assert_eq!(wait_std(&mut helper, LONG).signal(), Some(libc::SIGKILL));
        let died = Instant::now();
        support::wait_until(
            Duration::from_secs(1),
            &format!("round {round}: every worker is dead"),
            || workers.iter().all(Proc::is_dead),
        );
        let took = died.elapsed();
        for w in &workers {
            let status = reap(w.pid, LONG);
            assert_eq!(
                std::process::ExitStatus::from_raw(status).signal(),
                Some(libc::SIGKILL),
                "round {round}: worker {} did not die of the death signal",
                w.pid
            );
        }
        assert_no_children_left(&format!("round {round}"));
        eprintln!("round {round}: workers dead within {took:?} of the helper");
    }
}

/// The helper is SIGKILLed while its child sleeps between clone and
/// PR_SET_PDEATHSIG (the `__setup_delay` test hook). After prctl the child
/// sees that its parent changed and exits with 126 by itself, without ever
/// running `sleep 30`. This process is a subreaper, so it inherits the
/// child and reads that status.
fn dies_before_prctl(fallback: bool) {
    set_subreaper();
    let mut guard = Guard::new();
    let mut helper = start_helper("delayed", fallback);
    guard.track(helper.id());
    let mut out = Lines::new(helper.stdout.take().unwrap());
    assert_eq!(out.line(LONG, "\"spawning\""), "spawning");
    let mut kids = Vec::new();
    support::wait_until(LONG, "the helper's child appears", || {
        kids = support::children_of(helper.id());
        !kids.is_empty()
    });
    assert_eq!(kids.len(), 1, "{kids:?}");
    let child = Proc::of(kids[0]);
    guard.track(child.pid);
    assert_ne!(
        child.stat().unwrap().comm,
        "sleep",
        "the child exec'd before its setup delay"
    );

    helper.kill().unwrap();
    wait_std(&mut helper, LONG);
    let killed = Instant::now();
    // It is ours now (subreaper); it must end by itself, never as `sleep`.
    loop {
        let st = child
            .stat()
            .expect("our child cannot vanish before we reap it");
        assert_ne!(
            st.comm, "sleep",
            "the child ran the program after its parent died"
        );
        if st.state == 'Z' {
            break;
        }
        assert!(
            killed.elapsed() < DELAY + Duration::from_secs(5),
            "the orphaned child is still running {:?} after its parent died: {st:?}",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = std::process::ExitStatus::from_raw(reap(child.pid, LONG));
    assert_eq!(
        status.code(),
        Some(126),
        "the child should exit 126 (parent died before prctl): {status:?}"
    );
    assert_no_children_left("after the orphan test");
}

/// The basics on the fallback path: statuses, signals, exec errors, pipes.
fn statuses_and_stdio(fallback: bool) {
    setup(fallback);
    let mut guard = Guard::new();
    let mut reaper = Reaper::new().unwrap();
    for (script, expected) in [
        ("exit 0", ExitStatus::Exited(0)),
        ("exit 7", ExitStatus::Exited(7)),
        (
            "kill -KILL $$",
            ExitStatus::Signaled {
                signal: Signal::KILL,
                core_dumped: false,
            },
        ),
        (
            "kill -TERM $$",
            ExitStatus::Signaled {
                signal: Signal::TERM,
                core_dumped: false,
            },
        ),
    ] {
        let c = reaper.spawn(&sh(script)).unwrap();
        guard.track(c.pid());
        let p = Proc::of(c.pid());
        assert_eq!(exit_of(&mut reaper, c.id()).status, expected, "{script}");
        assert!(p.is_gone());
    }
    check_mode(fallback);
    let e = reaper
        .spawn(&Command::new("/nonexistent/program"))
        .unwrap_err();
    assert!(
        e.is_not_found() && e.to_string().contains("/nonexistent/program"),
        "{e}"
    );
    let e = reaper.spawn(&Command::new("/")).unwrap_err();
    assert!(e.is_not_executable(), "{e}");

    let mut cmd = Command::new("cat");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut c = reaper.spawn(&cmd).unwrap();
    guard.track(c.pid());
    c.stdin
        .take()
        .unwrap()
        .write_all(b"through the fallback\n")
        .unwrap();
    assert_eq!(
        Lines::new(c.stdout.take().unwrap()).rest(LONG, "cat's output"),
        "through the fallback\n"
    );
    assert_eq!(exit_of(&mut reaper, c.id()).status, ExitStatus::Exited(0));

    // The ladder works the same way.
    let mut cmd = sh("trap '' TERM; echo ready; exec sleep 60");
    cmd.stdout(Stdio::piped())
        .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_millis(300)));
    let mut c = reaper.spawn(&cmd).unwrap();
    guard.track(c.pid());
    assert_eq!(
        Lines::new(c.stdout.take().unwrap()).line(LONG, "ready"),
        "ready"
    );
    let t0 = Instant::now();
    reaper.stop(c.id()).unwrap();
    let exit = exit_of(&mut reaper, c.id());
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    assert!(exit.observed_at - t0 >= Duration::from_millis(300));
    assert_no_children_left("after the fallback basics");
}

/// Starts the "workers" helper, reads its workers' pids, SIGKILLs it and
/// reaps it. The workers are then ours (this process is a subreaper).
fn workers_of_killed_helper(death_signal: &str, guard: &mut Guard) -> Vec<Proc> {
    let mut helper = start_helper_with("workers", false, Some(death_signal));
    guard.track(helper.id());
    let mut out = Lines::new(helper.stdout.take().unwrap());
    let mut workers = Vec::new();
    loop {
        let line = out.line(LONG, "a worker pid or \"ready\"");
        if line == "ready" {
            break;
        }
        let pid: u32 = line.parse().unwrap();
        guard.track(pid);
        workers.push(Proc::of(pid));
    }
    helper.kill().unwrap();
    wait_std(&mut helper, LONG);
    workers
}

/// `death_signal(Some(TERM))`: workers die of SIGTERM with their
/// supervisor. `death_signal(None)`: they outlive it, untouched.
fn death_signal_options() {
    set_subreaper();
    let mut guard = Guard::new();
    let workers = workers_of_killed_helper("TERM", &mut guard);
    for w in &workers {
        let status = std::process::ExitStatus::from_raw(reap(w.pid, LONG));
        assert_eq!(
            status.signal(),
            Some(libc::SIGTERM),
            "worker {}: {status:?}",
            w.pid
        );
    }

    let workers = workers_of_killed_helper("none", &mut guard);
    // The death signal is sent while the parent exits, before it can be
    // reaped: had one been set, it would be pending or acted on by now.
    for w in &workers {
        let st = w.stat().expect("the worker should outlive its supervisor");
        assert_eq!(
            (st.comm.as_str(), st.ppid),
            ("sleep", std::process::id() as i32)
        );
        assert_ne!(st.state, 'Z', "worker {} died with its supervisor", w.pid);
        assert_eq!(
            support::sig_field(w.pid, "SigPnd") | support::sig_field(w.pid, "ShdPnd"),
            0
        );
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(unsafe { libc::kill(w.pid as i32, libc::SIGUSR1) }, 0);
        let status = std::process::ExitStatus::from_raw(reap(w.pid, LONG));
        assert_eq!(
            status.signal(),
            Some(libc::SIGUSR1),
            "worker {}: {status:?}",
            w.pid
        );
    }
    assert_no_children_left("after the death signal tests");
}

/// A subreaper with `reap_orphans`: an orphan reparented here is reaped and
/// reported as `OrphanReaped` with its status, while supervised children
/// exiting at the same time keep their own statuses (none is reaped by the
/// orphan path and reported as `Unknown`).
fn orphans_reaped() {
    let mut guard = Guard::new();
    let mut reaper = Reaper::builder()
        .subreaper(true)
        .reap_orphans(true)
        .build()
        .unwrap();
    // A background job's stdin is /dev/null unless redirected: hand it
    // the pipe through fd 3. It exits 3 once it reads a line.
    let mut cmd = sh("exec 3<&0; sh -c 'read x; exit 3' <&3 3<&- >/dev/null 2>&1 & echo $!");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut parent = reaper.spawn(&cmd).unwrap();
    guard.track(parent.pid());
    let mut stdin = parent.stdin.take().unwrap();
    let orphan: u32 = Lines::new(parent.stdout.take().unwrap())
        .line(LONG, "the orphan's pid")
        .parse()
        .unwrap();
    guard.track(orphan);
    let orphan_proc = Proc::of(orphan);
    assert_eq!(
        exit_of(&mut reaper, parent.id()).status,
        ExitStatus::Exited(0)
    );
    support::wait_until(LONG, "the orphan is reparented here", || {
        orphan_proc
            .stat()
            .is_some_and(|s| s.ppid == std::process::id() as i32)
    });

    let mut ids = Vec::new();
    for _ in 0..20 {
        let c = reaper.spawn(&sh("exit 5")).unwrap();
        guard.track(c.pid());
        ids.push(c.id());
    }
    stdin.write_all(b"go\n").unwrap();
    let mut orphan_status = None;
    let mut exits = 0;
    let deadline = Instant::now() + LONG;
    while exits < ids.len() || orphan_status.is_none() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("all exits in time");
        match reaper.wait_event(Some(left)).unwrap() {
            Some(Event::Exited(e)) => {
                assert!(ids.contains(&e.id));
                assert_eq!(
                    e.status,
                    ExitStatus::Exited(5),
                    "a supervised child lost its status"
                );
                exits += 1;
            }
            Some(Event::OrphanReaped { pid, status }) => {
                assert_eq!(pid, orphan, "an unexpected orphan");
                orphan_status = Some(status);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(orphan_status, Some(ExitStatus::Exited(3)));
    assert!(orphan_proc.is_gone());
    assert!(reaper.is_empty());
    assert_no_children_left("after the orphan test");
}

/// A cgroup-v1 freezer cgroup of our own: a frozen process cannot act on
/// SIGKILL until it is thawed, which is how a process in uninterruptible
/// sleep behaves (pitfall 7). Dropping it thaws and removes it.
struct Freezer {
    dir: std::path::PathBuf,
}

impl Freezer {
    fn new() -> Option<Freezer> {
        let dir = std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/freezer/pidreap-test-{}",
            std::process::id()
        ));
        fs::create_dir(&dir).ok()?;
        Some(Freezer { dir })
    }

    fn add(&self, pid: u32) {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }

    fn set(&self, state: &str) {
        fs::write(self.dir.join("freezer.state"), state).unwrap();
        support::wait_until(LONG, &format!("the freezer cgroup is {state}"), || {
            fs::read_to_string(self.dir.join("freezer.state")).is_ok_and(|s| s.trim() == state)
        });
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        let _ = fs::write(self.dir.join("freezer.state"), "THAWED");
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::read_to_string(self.dir.join("cgroup.procs")).is_ok_and(|s| !s.trim().is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A child that SIGKILL cannot end (frozen) is reported as `Stuck` after
/// its ladder's kill timeout, stays supervised, and its exit is reported
/// once it is thawed. `shutdown` returns within its bound and lists it.
fn stuck_child() {
    let mut guard = Guard::new();
    let Some(freezer) = Freezer::new() else {
        eprintln!("no writable cgroup-v1 freezer here: test skipped");
        return;
    };
    let mut reaper = Reaper::new().unwrap();
    let kill_timeout = Duration::from_millis(500);
    let grace = Duration::from_millis(100);
    let ladder = StopLadder::new(Signal::TERM, grace).kill_timeout(kill_timeout);

    let spawn_frozen = |reaper: &mut Reaper, guard: &mut Guard| {
        let mut cmd = Command::new("sleep");
        cmd.arg("60")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stop_ladder(ladder.clone());
        let c = reaper.spawn(&cmd).unwrap();
        guard.track(c.pid());
        support::wait_exec(c.pid(), "sleep");
        freezer.add(c.pid());
        c
    };

    // Through stop(): Stuck, then the exit once thawed.
    let child = spawn_frozen(&mut reaper, &mut guard);
    freezer.set("FROZEN");
    let t0 = Instant::now();
    reaper.stop(child.id()).unwrap();
    match reaper.wait_event(Some(LONG)).unwrap() {
        Some(Event::Stuck { id, pid }) => assert_eq!((id, pid), (child.id(), child.pid())),
        other => panic!("expected Stuck, got {other:?}"),
    }
    assert!(
        t0.elapsed() >= grace + kill_timeout,
        "Stuck reported after {:?}",
        t0.elapsed()
    );
    assert_eq!(
        reaper.phase(child.id()),
        Some(pidreap::engine::Phase::Stuck)
    );
    assert_eq!(reaper.len(), 1);
    assert!(!Proc::of(child.pid()).is_dead(), "the frozen child died");
    freezer.set("THAWED");
    let exit = exit_of(&mut reaper, child.id());
    assert!(
        matches!(exit.status.signal(), Some(Signal::TERM | Signal::KILL)),
        "{:?}",
        exit.status
    );

    // Through shutdown(): bounded, the child listed as stuck.
    let child = spawn_frozen(&mut reaper, &mut guard);
    freezer.set("FROZEN");
    let t0 = Instant::now();
    // Shorter than the ladder's grace: SIGKILL at 50 ms, stuck 500 ms later.
    let shutdown_grace = Duration::from_millis(50);
    let report = reaper.shutdown(shutdown_grace).unwrap();
    let took = t0.elapsed();
    assert_eq!(report.stuck, vec![child.id()]);
    assert!(report.exited.is_empty());
    assert!(
        took >= shutdown_grace + kill_timeout,
        "shutdown gave up after {took:?}"
    );
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    freezer.set("THAWED");
    let exit = exit_of(&mut reaper, child.id());
    assert!(
        matches!(exit.status.signal(), Some(Signal::TERM | Signal::KILL)),
        "{:?}",
        exit.status
    );
    drop(reaper);
    drop(freezer);
    assert_no_children_left("after the stuck tests");
}
