//! Tests on real processes, for everything that is safe to run in parallel
//! threads of one process: statuses, exec errors, stop ladders, cancel
//! tokens, signal masks of children, stdio, environment, directories,
//! process groups, nesting the reaper's fd, shutdown and drop.
//!
//! Whatever touches process-global state (blocked signals, fd counts, the
//! fallback spawn path, a subreaper, SIGKILLed helpers, 1,000 children) is
//! in `tests/isolated/` (test target `reaper_isolated`), where every test
//! runs in its own process.
//!
//! Every wait has a deadline; every test tracks the processes it makes in a
//! [`support::Guard`] that SIGKILLs them if the test fails half-way.

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pidreap::{Command, Error, Event, Exit, ExitStatus, Reaper, Signal, Stdio, StopLadder};
use support::{Guard, Lines, Proc, LONG};

/// The whole binary must finish within this (each wait has its own, much
/// shorter, deadline; this only catches what slips through).
const WATCHDOG: Duration = Duration::from_secs(300);

fn reaper() -> Reaper {
    support::watchdog(WATCHDOG);
    Reaper::new().expect("creating a reaper")
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// Waits for child `id`'s exit, with a deadline.
#[track_caller]
fn exit_of(reaper: &mut Reaper, id: pidreap::ChildId) -> Exit {
    match reaper.wait(id, Some(LONG)) {
        Ok(Some(exit)) => exit,
        Ok(None) => panic!("child {id} not reaped within {LONG:?}"),
        Err(e) => panic!("waiting for child {id}: {e}"),
    }
}

/// Spawns `script` with stdout piped, tracks it, and reads its first line,
/// which must be "ready" (printed after it installed its traps).
#[track_caller]
fn spawn_ready(
    reaper: &mut Reaper,
    guard: &mut Guard,
    mut cmd: Command,
) -> (pidreap::Child, Lines<std::io::PipeReader>) {
    cmd.stdout(Stdio::piped());
    let mut child = reaper.spawn(&cmd).expect("spawn");
    guard.track(child.pid());
    let mut out = Lines::new(child.stdout.take().expect("piped stdout"));
    assert_eq!(out.line(LONG, "the child's \"ready\" line"), "ready");
    (child, out)
}

// ------------------------------------------------------------- 1. statuses

#[test]
fn exit_codes_and_signals_come_back_right() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let cases: [(&str, ExitStatus); 5] = [
        ("exit 0", ExitStatus::Exited(0)),
        ("exit 7", ExitStatus::Exited(7)),
        ("exit 255", ExitStatus::Exited(255)),
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
    ];
    let mut spawned = Vec::new();
    let before = Instant::now();
    for (script, expected) in cases {
        let child = reaper.spawn(&sh(script)).expect("spawn");
        guard.track(child.pid());
        // Unreaped until the reaper polls: the pid is stable, even if the
        // child has exited already (a zombie still has its /proc entry).
        spawned.push((child.id(), Proc::of(child.pid()), script, expected));
    }
    for (id, proc_, script, expected) in spawned {
        let exit = exit_of(&mut reaper, id);
        assert_eq!(exit.status, expected, "status of `sh -c {script:?}`");
        assert_eq!(exit.id, id);
        assert_eq!(exit.pid, proc_.pid);
        assert!(
            exit.observed_at >= before,
            "observed_at is before the spawn"
        );
        assert!(
            proc_.is_gone(),
            "pid {} is still there after its exit was reported: {:?}",
            proc_.pid,
            proc_.stat()
        );
    }
    assert_eq!(ExitStatus::Exited(7).code(), Some(7));
    assert_eq!(ExitStatus::Exited(7).shell_code(), 7);
    assert!(ExitStatus::Exited(0).success());
    let term = ExitStatus::Signaled {
        signal: Signal::TERM,
        core_dumped: false,
    };
    assert_eq!(term.signal(), Some(Signal::TERM));
    assert_eq!(term.shell_code(), 143);
    assert_eq!(term.to_string(), "killed by SIGTERM");
    assert!(reaper.is_empty());
}

/// `kill -SEGV $$` with core dumps on (in a scratch directory) and off: the
/// `core_dumped` flag follows. Only meaningful where `core_pattern` writes
/// a file; with a pipe handler (systemd-coredump, apport) the dump is out
/// of the shell's control, so only the signal is checked.
#[test]
fn core_dump_flag_comes_back_right() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let dir = support::TempDir::new("core");
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    // A relative file name lands in the child's directory, which is ours.
    let file_pattern =
        !pattern.starts_with('|') && !pattern.contains('/') && !pattern.trim().is_empty();

    let mut off = sh("ulimit -c 0; kill -SEGV $$");
    off.current_dir(dir.path());
    let child = reaper.spawn(&off).expect("spawn");
    guard.track(child.pid());
    let exit = exit_of(&mut reaper, child.id());
    assert_eq!(
        exit.status.signal(),
        Some(Signal::SEGV),
        "{:?}",
        exit.status
    );
    if file_pattern {
        assert_eq!(
            exit.status,
            ExitStatus::Signaled {
                signal: Signal::SEGV,
                core_dumped: false
            }
        );
    }

    // `ulimit -c unlimited` fails where the hard limit is lower: then the
    // script says so and the case is skipped.
    let mut on = sh("ulimit -c unlimited 2>/dev/null || exit 42; kill -SEGV $$");
    on.current_dir(dir.path());
    let child = reaper.spawn(&on).expect("spawn");
    guard.track(child.pid());
    let exit = exit_of(&mut reaper, child.id());
    if exit.status == ExitStatus::Exited(42) {
        eprintln!("core_dump_flag_comes_back_right: RLIMIT_CORE hard limit forbids dumps here; case skipped");
        return;
    }
    assert_eq!(
        exit.status.signal(),
        Some(Signal::SEGV),
        "{:?}",
        exit.status
    );
    if file_pattern {
        assert_eq!(
            exit.status,
            ExitStatus::Signaled {
                signal: Signal::SEGV,
                core_dumped: true
            }
        );
        assert_eq!(exit.status.to_string(), "killed by SIGSEGV (core dumped)");
    }
}

#[test]
fn resource_usage_is_reported() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    // Pure shell arithmetic: CPU in user mode, no child processes.
    let child = reaper
        .spawn(&sh(
            "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exit 3",
        ))
        .expect("spawn");
    guard.track(child.pid());
    let exit = reaper
        .wait(child.id(), Some(Duration::from_secs(120)))
        .expect("wait")
        .expect("reaped in time");
    assert_eq!(exit.status, ExitStatus::Exited(3));
    assert!(
        exit.usage.user_time > Duration::ZERO,
        "a CPU-burning child reports no user time: {:?}",
        exit.usage
    );
    assert!(exit.usage.max_rss_kib > 0, "max RSS is 0: {:?}", exit.usage);
    // Sane: a shell loop needs less than a minute of CPU and a GiB of RAM.
    assert!(
        exit.usage.user_time + exit.usage.system_time < Duration::from_secs(60),
        "{:?}",
        exit.usage
    );
    assert!(exit.usage.max_rss_kib < 1 << 20, "{:?}", exit.usage);
}

// ------------------------------------------------------------ 2. exec errors

fn exec_error(reaper: &mut Reaper, cmd: &Command) -> Error {
    match reaper.spawn(cmd) {
        Ok(child) => {
            let _ = reaper.kill(child.id());
            panic!("spawning {:?} should fail", cmd.get_program());
        }
        Err(e) => e,
    }
}

#[test]
fn missing_and_non_executable_programs_give_typed_errors() {
    let mut reaper = reaper();
    let dir = support::TempDir::new("exec");

    let missing = dir.path().join("no-such-program");
    let e = exec_error(&mut reaper, &Command::new(&missing));
    assert!(e.is_not_found(), "{e:?}");
    assert!(!e.is_not_executable(), "{e:?}");
    match &e {
        Error::Exec { program, source } => {
            assert_eq!(program, missing.as_os_str());
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("expected Error::Exec, got {other:?}"),
    }
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "Display does not name the path: {e}"
    );

    // A bare name looked up in PATH.
    let e = exec_error(
        &mut reaper,
        &Command::new("pidreap-no-such-program-anywhere"),
    );
    assert!(e.is_not_found(), "{e:?}");
    assert!(
        e.to_string().contains("pidreap-no-such-program-anywhere"),
        "{e}"
    );

    // A regular file without the execute bit.
    let plain = dir.path().join("not-executable");
    fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    // Root may execute a file only if some execute bit is set: 0644 is
    // refused even for root.
    let e = exec_error(&mut reaper, &Command::new(&plain));
    assert!(e.is_not_executable(), "{e:?}");
    assert!(
        matches!(&e, Error::Exec { program, source } if program == plain.as_os_str() && source.raw_os_error() == Some(libc::EACCES)),
        "{e:?}"
    );
    assert!(e.to_string().contains(&plain.display().to_string()), "{e}");

    // A directory.
    let e = exec_error(&mut reaper, &Command::new(dir.path()));
    assert!(e.is_not_executable(), "{e:?}");
    assert!(
        matches!(&e, Error::Exec { program, .. } if program == dir.path().as_os_str()),
        "{e:?}"
    );
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );

    // Executable, but not a format the kernel knows (no #!, not ELF).
    let garbage = dir.path().join("garbage");
    fs::write(&garbage, [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    fs::set_permissions(&garbage, fs::Permissions::from_mode(0o755)).unwrap();
    let e = exec_error(&mut reaper, &Command::new(&garbage));
    assert!(e.is_not_executable(), "{e:?}");
    assert!(
        matches!(&e, Error::Exec { source, .. } if source.raw_os_error() == Some(libc::ENOEXEC)),
        "{e:?}"
    );

    // Nothing supervised, nothing reported: the failed children were
    // reaped inside spawn().
    assert!(reaper.is_empty());
    assert!(reaper
        .wait_event(Some(Duration::from_millis(50)))
        .unwrap()
        .is_none());
}

#[test]
fn bad_current_dir_gives_chdir_error_naming_it() {
    let mut reaper = reaper();
    let dir = support::TempDir::new("chdir");
    let bad = dir.path().join("does-not-exist");
    let mut cmd = Command::new("true");
    cmd.current_dir(&bad);
    match reaper.spawn(&cmd) {
        Err(e @ Error::Chdir { .. }) => {
            let Error::Chdir {
                program,
                dir: d,
                source,
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(program, "true");
            assert_eq!(d, &bad);
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            assert!(
                e.to_string().contains(&bad.display().to_string()),
                "Display does not name the dir: {e}"
            );
        }
        other => panic!("expected Error::Chdir, got {other:?}"),
    }
    // A file, not a directory.
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    cmd.current_dir(&file);
    match reaper.spawn(&cmd) {
        Err(Error::Chdir { dir: d, source, .. }) => {
            assert_eq!(d, file);
            assert_eq!(source.raw_os_error(), Some(libc::ENOTDIR));
        }
        other => panic!("expected Error::Chdir, got {other:?}"),
    }
    assert!(reaper.is_empty());
}

// ---------------------------------------------------------- 3. stop ladders

#[test]
fn child_ignoring_sigterm_is_sigkilled_at_the_grace_deadline() {
    let grace = Duration::from_millis(300);
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = sh("trap '' TERM; echo ready; exec sleep 60");
    cmd.stop_ladder(StopLadder::new(Signal::TERM, grace));
    let (child, _out) = spawn_ready(&mut reaper, &mut guard, cmd);
    assert_eq!(
        support::sig_field(child.pid(), "SigIgn") & support::sig_bit(libc::SIGTERM),
        support::sig_bit(libc::SIGTERM)
    );

    let t0 = Instant::now();
    assert!(
        reaper.stop(child.id()).unwrap(),
        "stop() should start the ladder"
    );
    assert!(
        matches!(
            reaper.phase(child.id()),
            Some(pidreap::engine::Phase::Stopping { .. })
        ),
        "{:?}",
        reaper.phase(child.id())
    );
    assert!(
        !reaper.stop(child.id()).unwrap(),
        "a second stop() should report the ladder already running"
    );
    let exit = exit_of(&mut reaper, child.id());
    let took = exit.observed_at - t0;
    assert_eq!(
        exit.status,
        ExitStatus::Signaled {
            signal: Signal::KILL,
            core_dumped: false
        }
    );
    assert!(
        took >= grace,
        "SIGKILLed after {took:?}, before the {grace:?} grace"
    );
    assert!(
        took < Duration::from_secs(10),
        "SIGKILL came {took:?} after the stop, grace was {grace:?}"
    );
}

#[test]
fn child_honouring_sigterm_exits_before_the_deadline() {
    let grace = Duration::from_secs(30);
    let mut guard = Guard::new();
    let mut reaper = reaper();

    // Default action: killed by SIGTERM.
    let mut cmd = sh("echo ready; exec sleep 60");
    cmd.stop_ladder(StopLadder::new(Signal::TERM, grace));
    let (a, _out_a) = spawn_ready(&mut reaper, &mut guard, cmd);
    // A trap that exits cleanly (run between two commands of the loop).
    let mut cmd = sh("trap 'exit 3' TERM; echo ready; while :; do :; done");
    cmd.stop_ladder(StopLadder::new(Signal::TERM, grace));
    let (b, _out_b) = spawn_ready(&mut reaper, &mut guard, cmd);

    let t0 = Instant::now();
    reaper.stop(a.id()).unwrap();
    reaper.stop(b.id()).unwrap();
    let ea = exit_of(&mut reaper, a.id());
    let eb = exit_of(&mut reaper, b.id());
    assert_eq!(
        ea.status,
        ExitStatus::Signaled {
            signal: Signal::TERM,
            core_dumped: false
        }
    );
    assert_eq!(eb.status, ExitStatus::Exited(3));
    for e in [&ea, &eb] {
        assert!(
            e.observed_at - t0 < grace,
            "exit observed {:?} after the stop",
            e.observed_at - t0
        );
    }
}

/// A SIGSTOPped child cannot run its SIGTERM trap until it is continued:
/// the ladder sends SIGCONT with the first signal (a stopped process acts on nothing but SIGKILL), so the trap
/// runs (exit 5) long before the SIGKILL deadline.
#[test]
fn stopped_child_is_continued_and_stopped() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let ladder = StopLadder::new(Signal::TERM, Duration::from_secs(30));

    // Stops itself after installing its trap.
    let mut cmd = sh("trap 'exit 5' TERM; echo ready; kill -STOP $$; exit 9");
    cmd.stop_ladder(ladder.clone());
    let (a, _out_a) = spawn_ready(&mut reaper, &mut guard, cmd);
    // Stopped from outside.
    let mut cmd = sh("trap 'exit 6' TERM; echo ready; while :; do :; done");
    cmd.stop_ladder(ladder);
    let (b, _out_b) = spawn_ready(&mut reaper, &mut guard, cmd);
    // SAFETY: kill(2) on our own unreaped child: its pid cannot be reused.
    assert_eq!(unsafe { libc::kill(b.pid() as i32, libc::SIGSTOP) }, 0);

    for c in [&a, &b] {
        support::wait_until(LONG, &format!("pid {} is stopped", c.pid()), || {
            support::state(c.pid()) == Some('T')
        });
    }
    let t0 = Instant::now();
    reaper.stop(a.id()).unwrap();
    reaper.stop(b.id()).unwrap();
    let ea = exit_of(&mut reaper, a.id());
    let eb = exit_of(&mut reaper, b.id());
    assert_eq!(
        ea.status,
        ExitStatus::Exited(5),
        "the self-stopped child did not run its TERM trap"
    );
    assert_eq!(
        eb.status,
        ExitStatus::Exited(6),
        "the child stopped from outside did not run its TERM trap"
    );
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
fn multi_step_ladder_keeps_its_order() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    // Survives USR1 and TERM, reporting each as it comes: the ladder must go
    // USR1, then TERM, then SIGKILL.
    let mut cmd =
        sh("trap 'echo USR1' USR1; trap 'echo TERM' TERM; echo ready; while :; do :; done");
    cmd.stop_ladder(
        StopLadder::new(Signal::USR1, Duration::from_millis(300))
            .then(Signal::TERM, Duration::from_millis(300)),
    );
    let (child, mut out) = spawn_ready(&mut reaper, &mut guard, cmd);
    let t0 = Instant::now();
    reaper.stop(child.id()).unwrap();
    // Keep the loop turning while reading the child's reports.
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let first = out.line(LONG, "the USR1 report");
        let second = out.line(LONG, "the TERM report");
        let _ = tx.send((first, second));
    });
    let exit = exit_of(&mut reaper, child.id());
    let (first, second) = rx.recv_timeout(LONG).expect("the child's reports");
    reader.join().unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("USR1", "TERM"));
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    assert!(
        exit.observed_at - t0 >= Duration::from_millis(600),
        "SIGKILL before both graces passed"
    );
}

// ----------------------------------------------------------- 4. cancelling

#[test]
fn cancel_token_from_another_thread_stops_its_child() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = sh("echo ready; exec sleep 60");
    cmd.stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(30)));
    let (child, _out) = spawn_ready(&mut reaper, &mut guard, cmd);
    let proc_ = Proc::of(child.pid());
    let token = reaper.cancel_token(child.id()).unwrap();
    let t = std::thread::spawn(move || token.cancel());
    let exit = exit_of(&mut reaper, child.id());
    t.join().unwrap();
    assert_eq!(
        exit.status,
        ExitStatus::Signaled {
            signal: Signal::TERM,
            core_dumped: false
        }
    );
    assert!(proc_.is_gone(), "{:?}", proc_.stat());
}

/// A million `cancel()` calls from another thread all return (none
/// blocks), within a generous bound, while the reaper stops the child.
#[test]
fn a_million_cancels_never_block() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = sh("echo ready; exec sleep 60");
    cmd.stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(30)));
    let (child, _out) = spawn_ready(&mut reaper, &mut guard, cmd);
    let token = reaper.cancel_token(child.id()).unwrap();
    let again = reaper.cancel_token(child.id()).unwrap();
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    let hammer = std::thread::spawn(move || {
        for _ in 0..1_000_000 {
            token.cancel();
        }
        let _ = tx.send(());
    });
    let exit = exit_of(&mut reaper, child.id());
    assert_eq!(
        exit.status,
        ExitStatus::Signaled {
            signal: Signal::TERM,
            core_dumped: false
        }
    );
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "a million cancel() calls still not done after {:?}",
                t0.elapsed()
            )
        });
    hammer.join().unwrap();
    // After the reap, cancelling still returns at once and does nothing.
    again.cancel();
    assert!(reaper
        .wait_event(Some(Duration::from_millis(50)))
        .unwrap()
        .is_none());
}

#[test]
fn group_and_cancel_all_tokens_stop_their_children() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let group = reaper.new_group();
    let ladder = StopLadder::new(Signal::TERM, Duration::from_secs(30));
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut cmd = sh("echo ready; exec sleep 60");
        cmd.stop_ladder(ladder.clone()).group(group);
        members.push(spawn_ready(&mut reaper, &mut guard, cmd));
    }
    let mut cmd = sh("echo ready; exec sleep 60");
    cmd.stop_ladder(ladder.clone());
    let (outsider, _out) = spawn_ready(&mut reaper, &mut guard, cmd);

    let group_token = reaper.group_cancel_token(group).unwrap();
    std::thread::spawn(move || group_token.cancel())
        .join()
        .unwrap();
    for (m, _) in &members {
        let exit = exit_of(&mut reaper, m.id());
        assert_eq!(exit.status.signal(), Some(Signal::TERM));
    }
    // The outsider is untouched.
    assert_eq!(reaper.len(), 1);
    assert!(!Proc::of(outsider.pid()).is_dead());
    assert_eq!(
        reaper.phase(outsider.id()),
        Some(pidreap::engine::Phase::Running)
    );

    let all = reaper.cancel_all_token().unwrap();
    std::thread::spawn(move || all.cancel()).join().unwrap();
    let exit = exit_of(&mut reaper, outsider.id());
    assert_eq!(exit.status.signal(), Some(Signal::TERM));
    assert!(reaper.is_empty());
}

// -------------------------------------------- 6. what children start with

#[test]
fn children_start_with_empty_mask_default_dispositions_and_only_stdio() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let child = reaper.spawn(&cmd).expect("spawn");
    guard.track(child.pid());
    let pid = child.pid();
    // The spawn returns once the exec cannot fail any more, a moment before
    // the kernel closes the close-on-exec fds: wait for the exec to end.
    support::wait_exec(pid, "sleep");
    support::assert_clean_signal_state(pid);

    support::wait_only_stdio(pid);
    assert_eq!(support::fd_target(pid, 0), Some("/dev/null".into()));
    assert_eq!(support::fd_target(pid, 2), Some("/dev/null".into()));
    let out = support::fd_target(pid, 1).unwrap().display().to_string();
    assert!(out.starts_with("pipe:"), "stdout is {out}");
    reaper.kill(child.id()).unwrap();
    assert_eq!(
        exit_of(&mut reaper, child.id()).status.signal(),
        Some(Signal::KILL)
    );
}

// ---------------------------------------------------------- 10. nesting

#[test]
fn reaper_fd_is_readable_in_plain_poll_when_a_child_exits() {
    // Without pidfds the reaper's fd also wakes every 20 ms while it has
    // children (SIGCHLD may go to another thread): "readable exactly when
    // a child exits" needs pidfds.
    if support::mode_skip("reaper_fd_is_readable_in_plain_poll_when_a_child_exits") {
        return;
    }
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = sh("read line; exit 4");
    cmd.stdin(Stdio::piped());
    let mut child = reaper.spawn(&cmd).expect("spawn");
    guard.track(child.pid());
    let mut stdin = child.stdin.take().unwrap();

    assert!(
        !support::readable_within(&reaper, Duration::from_millis(200)),
        "the reaper's fd is readable while nothing happened"
    );
    assert_eq!(reaper.poll(Some(Duration::ZERO)).unwrap(), 0);

    stdin.write_all(b"go\n").unwrap();
    assert!(
        support::readable_within(&reaper, LONG),
        "the reaper's fd did not become readable when the child exited"
    );
    assert_eq!(reaper.poll(Some(Duration::ZERO)).unwrap(), 1);
    match reaper.next_event() {
        Some(Event::Exited(exit)) => {
            assert_eq!(exit.id, child.id());
            assert_eq!(exit.status, ExitStatus::Exited(4));
        }
        other => panic!("expected the child's exit, got {other:?}"),
    }
    assert!(reaper.is_empty());
    assert!(
        !support::readable_within(&reaper, Duration::from_millis(50)),
        "still readable after the event was handled"
    );
}

// ------------------------------------------------------ shutdown and drop

/// Four children ignore SIGTERM: a sequential shutdown would take four
/// graces; a concurrent one takes one. One more exits on SIGTERM.
#[test]
fn shutdown_stops_every_child_concurrently() {
    let grace = Duration::from_millis(1500);
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut stubborn = Vec::new();
    for _ in 0..4 {
        let mut cmd = sh("trap '' TERM; echo ready; exec sleep 60");
        cmd.stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(60)));
        stubborn.push(spawn_ready(&mut reaper, &mut guard, cmd));
    }
    let (polite, _out) = spawn_ready(&mut reaper, &mut guard, sh("echo ready; exec sleep 60"));
    let procs: Vec<Proc> = stubborn
        .iter()
        .map(|(c, _)| Proc::of(c.pid()))
        .chain([Proc::of(polite.pid())])
        .collect();

    let t0 = Instant::now();
    let report = reaper.shutdown(grace).expect("shutdown");
    let took = t0.elapsed();
    assert!(report.stuck.is_empty(), "stuck: {:?}", report.stuck);
    assert_eq!(report.exited.len(), 5);
    assert!(reaper.is_empty());
    for (c, _) in &stubborn {
        let e = report
            .exited
            .iter()
            .find(|e| e.id == c.id())
            .expect("exit reported");
        assert_eq!(e.status.signal(), Some(Signal::KILL));
        assert!(
            e.observed_at - t0 >= grace,
            "SIGKILL before the shutdown grace"
        );
    }
    let e = report
        .exited
        .iter()
        .find(|e| e.id == polite.id())
        .expect("exit reported");
    assert_eq!(e.status.signal(), Some(Signal::TERM));
    // Concurrent: well under the 4 x grace a one-by-one stop would take.
    assert!(
        took < grace * 4,
        "shutdown took {took:?}; the children were not stopped concurrently"
    );
    for p in procs {
        assert!(
            p.is_gone(),
            "pid {} still in /proc after shutdown returned: {:?}",
            p.pid,
            p.stat()
        );
    }
}

#[test]
fn dropping_the_reaper_kills_and_reaps_what_is_left() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut procs = Vec::new();
    for _ in 0..3 {
        let mut cmd = sh("trap '' TERM; echo ready; exec sleep 60");
        cmd.stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(60)));
        let (c, _) = spawn_ready(&mut reaper, &mut guard, cmd);
        procs.push(Proc::of(c.pid()));
    }
    let t0 = Instant::now();
    drop(reaper);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "drop took {:?}",
        t0.elapsed()
    );
    for p in procs {
        // Reaped by the drop: not even a zombie.
        assert!(
            p.is_gone(),
            "pid {} survived the reaper's drop: {:?}",
            p.pid,
            p.stat()
        );
    }
}

// ------------------------------------------------- Command options at work

#[test]
fn piped_stdio_round_trips_through_cat() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = Command::new("cat");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = reaper.spawn(&cmd).expect("spawn");
    guard.track(child.pid());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\nworld\n").unwrap();
    drop(stdin);
    let out = Lines::new(child.stdout.take().unwrap()).rest(LONG, "cat's stdout");
    let err = Lines::new(child.stderr.take().unwrap()).rest(LONG, "cat's stderr");
    assert_eq!(out, "hello\nworld\n");
    assert_eq!(err, "");
    assert_eq!(
        exit_of(&mut reaper, child.id()).status,
        ExitStatus::Exited(0)
    );
}

#[test]
fn stdio_null_and_from_file() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    // stdin from /dev/null: cat sees EOF at once.
    let mut cmd = sh("cat; echo done; echo oops >&2");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = reaper.spawn(&cmd).expect("spawn");
    guard.track(child.pid());
    assert_eq!(
        Lines::new(child.stdout.take().unwrap()).rest(LONG, "stdout"),
        "done\n"
    );
    assert!(child.stderr.is_none());
    assert_eq!(
        exit_of(&mut reaper, child.id()).status,
        ExitStatus::Exited(0)
    );

    // stdout to a file given as Stdio::from(File).
    let dir = support::TempDir::new("stdio");
    let path = dir.path().join("out");
    let file = fs::File::create(&path).unwrap();
    let mut cmd = sh("echo to-file");
    cmd.stdout(Stdio::from(file));
    let child = reaper.spawn(&cmd).expect("spawn");
    guard.track(child.pid());
    assert_eq!(
        exit_of(&mut reaper, child.id()).status,
        ExitStatus::Exited(0)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "to-file\n");
}

fn output_of(reaper: &mut Reaper, guard: &mut Guard, cmd: &mut Command) -> (String, ExitStatus) {
    cmd.stdout(Stdio::piped());
    let mut child = reaper.spawn(cmd).expect("spawn");
    guard.track(child.pid());
    let out = Lines::new(child.stdout.take().unwrap()).rest(LONG, "stdout");
    (out, exit_of(reaper, child.id()).status)
}

#[test]
fn env_set_remove_and_clear() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    // The test process has PATH and HOME, which the child inherits unless
    // removed. (Not PATH: dash sets a default PATH of its own.)
    assert!(std::env::var_os("PATH").is_some() && std::env::var_os("HOME").is_some());

    let mut cmd = sh("echo \"${PIDREAP_A-unset}|${PATH:+path}|${HOME-unset}\"");
    cmd.env("PIDREAP_A", "one two").env_remove("HOME");
    assert_eq!(
        output_of(&mut reaper, &mut guard, &mut cmd),
        ("one two|path|unset\n".into(), ExitStatus::Exited(0))
    );

    let mut cmd = Command::new("env");
    // As with std, env_clear also drops what earlier env() calls set.
    cmd.env("PIDREAP_EARLY", "dropped")
        .env_clear()
        .env("PIDREAP_B", "2")
        .env("PIDREAP_C", "3")
        .env_remove("PIDREAP_C");
    // `env` (found in this process's PATH) prints exactly the child's
    // environment.
    let (out, status) = output_of(&mut reaper, &mut guard, &mut cmd);
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(out, "PIDREAP_B=2\n");

    // A NUL in a variable is refused before anything is spawned.
    let mut cmd = Command::new("true");
    cmd.env("BAD", "a\0b");
    assert!(matches!(reaper.spawn(&cmd), Err(Error::InvalidInput(_))));
    assert!(reaper.is_empty());
}

#[test]
fn current_dir_is_applied() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let dir = support::TempDir::new("cwd");
    let real = fs::canonicalize(dir.path()).unwrap();
    let mut cmd = Command::new("pwd");
    cmd.current_dir(dir.path());
    let (out, status) = output_of(&mut reaper, &mut guard, &mut cmd);
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(fs::canonicalize(out.trim_end()).unwrap(), real);
}

#[test]
fn from_std_command_carries_program_args_env_and_dir() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let dir = support::TempDir::new("fromstd");
    let real = fs::canonicalize(dir.path()).unwrap();
    let mut std_cmd = std::process::Command::new("sh");
    std_cmd
        .args([
            "-c",
            "echo \"$PIDREAP_X|${HOME-unset}|$1\"; pwd",
            "argv0",
            "first",
        ])
        .env("PIDREAP_X", "from-std")
        .env_remove("HOME")
        .current_dir(dir.path());
    let mut cmd = Command::from(&std_cmd);
    let (out, status) = output_of(&mut reaper, &mut guard, &mut cmd);
    assert_eq!(status, ExitStatus::Exited(0));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("from-std|unset|first"));
    assert_eq!(fs::canonicalize(lines.next().unwrap()).unwrap(), real);
}

/// With `process_group(0)` the whole ladder goes to the group: a shell and
/// the `sleep` it started in the background both ignore SIGTERM, so only
/// the final SIGKILL, sent to the group, ends them both.
#[test]
fn process_group_is_stopped_as_a_whole() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = sh("trap '' TERM; sleep 60 >/dev/null 2>&1 & echo $!; echo ready; wait");
    cmd.process_group(0)
        .stdout(Stdio::piped())
        .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_millis(300)));
    let mut child = reaper.spawn(&cmd).expect("spawn");
    guard.track(child.pid());
    let mut out = Lines::new(child.stdout.take().unwrap());
    let bg: u32 = out.line(LONG, "the background pid").parse().expect("a pid");
    guard.track(bg);
    assert_eq!(out.line(LONG, "ready"), "ready");
    let leader = Proc::of(child.pid());
    let sleeper = Proc::of(bg);
    assert_eq!(
        support::stat(child.pid()).unwrap().pgrp,
        child.pid() as i32,
        "the child leads its own group"
    );
    support::wait_until(LONG, "the background job is `sleep`", || {
        sleeper.stat().is_some_and(|s| s.comm == "sleep")
    });
    assert_eq!(
        sleeper.stat().unwrap().pgrp,
        child.pid() as i32,
        "the background job is in the child's group"
    );

    reaper.stop(child.id()).unwrap();
    let exit = exit_of(&mut reaper, child.id());
    assert_eq!(exit.status.signal(), Some(Signal::KILL), "{exit:?}");
    assert!(leader.is_gone());
    // The orphaned grandchild is reaped by init in its own time.
    support::wait_until(LONG, "the background sleep is dead too", || {
        sleeper.is_dead()
    });
}

/// (session, process group, controlling tty) from `/proc/PID/stat`, see
/// [proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html).
fn session_group_tty(pid: u32) -> Option<(i32, i32, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    let field = |i: usize| fields.get(i)?.parse().ok();
    Some((field(3)?, field(2)?, field(4)?))
}

/// `setsid(true)`: the child leads a new session and a new group, and the
/// ladder reaches its whole group, as with `process_group(0)`. Combined
/// with `process_group(0)` (or group containment) it is the same; with
/// another group it is refused before anything starts.
#[test]
fn setsid_starts_a_session_stopped_as_a_group() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    for also_group in [false, true] {
        let mut cmd = sh("trap '' TERM; sleep 60 >/dev/null 2>&1 & echo $!; echo ready; wait");
        cmd.setsid(true)
            .stdout(Stdio::piped())
            .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_millis(300)));
        if also_group {
            cmd.process_group(0);
        }
        assert!(cmd.get_setsid());
        let mut child = reaper.spawn(&cmd).expect("spawn");
        guard.track(child.pid());
        let mut out = Lines::new(child.stdout.take().unwrap());
        let bg: u32 = out.line(LONG, "the background pid").parse().expect("a pid");
        guard.track(bg);
        assert_eq!(out.line(LONG, "ready"), "ready");
        let me = child.pid() as i32;
        assert_eq!(
            session_group_tty(child.pid()),
            Some((me, me, 0)),
            "leads a session and a group, without a controlling terminal"
        );
        let sleeper = Proc::of(bg);
        support::wait_until(LONG, "the background job is `sleep`", || {
            sleeper.stat().is_some_and(|s| s.comm == "sleep")
        });
        assert_eq!(session_group_tty(bg).map(|(sid, ..)| sid), Some(me));
        reaper.stop(child.id()).unwrap();
        let exit = exit_of(&mut reaper, child.id());
        assert_eq!(exit.status.signal(), Some(Signal::KILL), "{exit:?}");
        support::wait_until(LONG, "the background sleep is dead too", || {
            sleeper.is_dead()
        });
    }
    let mut cmd = sh("exit 0");
    cmd.setsid(true).process_group(1);
    match reaper.spawn(&cmd) {
        Err(Error::InvalidInput(msg)) => assert!(msg.contains("setsid"), "{msg}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn wait_returns_the_childs_exit_and_keeps_other_events() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let quick = reaper.spawn(&sh("exit 1")).expect("spawn");
    guard.track(quick.pid());
    let quick_proc = Proc::of(quick.pid());
    let (slow, _out) = spawn_ready(&mut reaper, &mut guard, {
        let mut cmd = sh("echo ready; read x; exit 2");
        cmd.stdin(Stdio::piped());
        cmd
    });
    // `quick` has exited (a zombie until the reaper polls).
    support::wait_until(LONG, "the quick child exits", || {
        quick_proc.stat().is_some_and(|s| s.state == 'Z')
    });

    // Times out (Ok(None)), not early, and reaps `quick` meanwhile without
    // consuming its event.
    let t0 = Instant::now();
    let timeout = Duration::from_millis(300);
    assert!(reaper.wait(slow.id(), Some(timeout)).unwrap().is_none());
    assert!(
        t0.elapsed() >= timeout,
        "wait() returned after {:?}, before its timeout",
        t0.elapsed()
    );

    reaper.kill(slow.id()).unwrap();
    let exit = exit_of(&mut reaper, slow.id());
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    // The other exit is still queued.
    match reaper.wait_event(Some(LONG)).unwrap() {
        Some(Event::Exited(e)) => assert_eq!((e.id, e.status), (quick.id(), ExitStatus::Exited(1))),
        other => panic!("expected the quick child's exit, got {other:?}"),
    }
    assert!(quick_proc.is_gone());
    // A reaped id names nobody.
    assert!(matches!(
        reaper.wait(quick.id(), Some(Duration::ZERO)),
        Err(Error::NoSuchChild(_))
    ));
    assert!(matches!(
        reaper.stop(quick.id()),
        Err(Error::NoSuchChild(_))
    ));
    assert!(matches!(
        reaper.cancel_token(quick.id()),
        Err(Error::NoSuchChild(_))
    ));
}

#[test]
fn default_ladder_from_builder_applies() {
    let mut guard = Guard::new();
    support::watchdog(WATCHDOG);
    let mut reaper = Reaper::builder()
        .stop_ladder(StopLadder::new(Signal::USR2, Duration::from_secs(30)))
        .build()
        .unwrap();
    // Not SIGINT: a test process started in the background by a
    // non-interactive shell ignores it, and so would its children.
    let (child, _out) = spawn_ready(&mut reaper, &mut guard, sh("echo ready; exec sleep 60"));
    reaper.stop(child.id()).unwrap();
    assert_eq!(
        exit_of(&mut reaper, child.id()).status.signal(),
        Some(Signal::USR2)
    );
}

/// Driven from a foreign event loop (plain `poll(2)` on the reaper's fd and
/// `poll(Some(ZERO))` when it is readable): a cancel from another thread,
/// the ladder's deadline (the internal timerfd) and the exit all wake it.
#[test]
fn nested_loop_sees_cancel_deadline_and_exit() {
    let grace = Duration::from_millis(300);
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = sh("trap '' TERM; echo ready; exec sleep 60");
    cmd.stop_ladder(StopLadder::new(Signal::TERM, grace));
    let (child, _out) = spawn_ready(&mut reaper, &mut guard, cmd);
    let token = reaper.cancel_token(child.id()).unwrap();
    assert!(
        !support::readable_within(&reaper, Duration::from_millis(100)),
        "readable with nothing to do"
    );

    let t0 = Instant::now();
    std::thread::spawn(move || token.cancel()).join().unwrap();
    let deadline = Instant::now() + LONG;
    let mut wakeups = 0;
    let exit = loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("the child's exit in time");
        if !support::readable_within(&reaper, left) {
            continue;
        }
        wakeups += 1;
        reaper.poll(Some(Duration::ZERO)).unwrap();
        if let Some(ev) = reaper.next_event() {
            match ev {
                Event::Exited(exit) => break exit,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            wakeups < 1000,
            "the reaper's fd stays readable without progress (busy loop)"
        );
    };
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    assert!(
        exit.observed_at - t0 >= grace,
        "SIGKILL before the grace deadline"
    );
    // The cancel, the deadline, the exit: at least three wake-ups.
    assert!(wakeups >= 3, "only {wakeups} wake-ups");
}

#[test]
fn stop_within_shortens_the_ladder_and_signal_forwards() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = sh("trap 'echo USR1' USR1; trap '' TERM; echo ready; while :; do :; done");
    cmd.stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(60)));
    let (child, mut out) = spawn_ready(&mut reaper, &mut guard, cmd);
    assert!(reaper.signal(child.id(), Signal::USR1).unwrap());
    assert_eq!(out.line(LONG, "the USR1 report"), "USR1");

    let t0 = Instant::now();
    reaper.stop(child.id()).unwrap();
    let within = Duration::from_millis(300);
    reaper.stop_within(child.id(), within).unwrap();
    let exit = exit_of(&mut reaper, child.id());
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    let took = exit.observed_at - t0;
    assert!(took >= within, "killed after {took:?}, before {within:?}");
    assert!(
        took < Duration::from_secs(30),
        "stop_within did not shorten the 60 s ladder: {took:?}"
    );
}

#[test]
fn arg0_is_applied() {
    let mut guard = Guard::new();
    let mut reaper = reaper();
    let mut cmd = Command::new("sh");
    cmd.arg0("pidreap-custom-argv0")
        .args(["-c", "cat /proc/$$/cmdline"]);
    let (out, status) = output_of(&mut reaper, &mut guard, &mut cmd);
    assert_eq!(status, ExitStatus::Exited(0));
    assert!(out.starts_with("pidreap-custom-argv0\0-c\0"), "{out:?}");
}
