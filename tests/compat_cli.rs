//! The flags `pidreap run` takes from tini, dumb-init and systemd, and the
//! `PIDREAP_*` environment variables: each does what its original does, on
//! real processes.
//!
//! Every wait has a deadline, and every test holds a [`Guard`] that
//! SIGKILLs pidreap and every process the test learned about. Children are
//! run with `--contain none` unless the flag under test is about groups:
//! the default, `auto`, may make the child PID 1 of a namespace, where its
//! own default-action signals are ignored.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use support::{Guard, Lines, TempDir, LONG};

const BIN: &str = env!("CARGO_BIN_EXE_pidreap");

/// A running `pidreap run`: its stdout as lines, its stderr collected by a
/// thread, and a guard for everything it started.
struct Run {
    child: std::process::Child,
    out: Lines<ChildStdout>,
    err: Receiver<String>,
    guard: Guard,
}

impl Run {
    /// `pidreap run ARGS`, with `env` added to the environment and every
    /// `PIDREAP_*`, `TINI_*` and `DUMB_INIT_*` variable of ours removed.
    fn start<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.arg("run").args(args);
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("PIDREAP_") || n.starts_with("TINI_") || n.starts_with("DUMB_INIT_") {
                cmd.env_remove(&name);
            }
        }
        cmd.envs(env.iter().copied());
        Run::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Run {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pidreap");
        let mut guard = Guard::new();
        guard.track(child.id());
        let out = Lines::new(child.stdout.take().unwrap());
        let mut stderr = child.stderr.take().unwrap();
        let (tx, err) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        Run {
            child,
            out,
            err,
            guard,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads `pid=N` and then `ready` from the child; tracks N.
    fn ready_pid(&mut self) -> u32 {
        let line = self.out.line(LONG, "the child's pid=");
        let pid: u32 = line
            .strip_prefix("pid=")
            .unwrap_or_else(|| panic!("expected pid=N, got {line:?}"))
            .parse()
            .expect("a pid");
        self.guard.track(pid);
        assert_eq!(self.out.line(LONG, "ready"), "ready");
        pid
    }

    fn signal(&self, sig: Signal) {
        kill_process(Pid::from_raw(self.pid()).unwrap(), sig).expect("signal pidreap");
    }

    /// Waits for pidreap to exit; returns its exit code and its stderr.
    fn wait(&mut self, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self.err.recv_timeout(Duration::from_secs(5));
                panic!("pidreap still running after {timeout:?}; stderr: {err:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let err = self
            .err
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| "(stderr still open)".into());
        let code = status
            .code()
            .unwrap_or_else(|| panic!("pidreap was killed: {status:?}; stderr: {err}"));
        (code, err)
    }
}

/// Runs `pidreap run ARGS` to the end: (exit code, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    Run::start(args, env).wait(LONG)
}

/// (session, process group) of `pid`, from `/proc/PID/stat`
/// ([proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html)).
fn session_and_group(pid: u32) -> Option<(i32, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    Some((fields.get(3)?.parse().ok()?, fields.get(2)?.parse().ok()?))
}

#[test]
fn e_remaps_exit_codes_to_zero_as_tini_does() {
    let (code, err) = run(
        &["-e", "3", "--contain", "none", "--", "sh", "-c", "exit 3"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    // Several, and 128+N for a child killed by signal N (tini's -e 143).
    let args = [
        "-e",
        "4",
        "-e",
        "143",
        "--contain",
        "none",
        "--",
        "sh",
        "-c",
    ];
    let (code, err) = run(&[&args[..], &["kill -TERM $$"]].concat(), &[]);
    assert_eq!(code, 0, "SIGTERM (143) is remapped: {err}");
    let (code, err) = run(&[&args[..], &["exit 5"]].concat(), &[]);
    assert_eq!(code, 5, "an unlisted code passes through: {err}");
    // pidreap's own errors are not the child's status.
    let (code, _) = run(&["-e", "127", "--", "/nonexistent/program"], &[]);
    assert_eq!(code, 127);
}

#[test]
fn s_and_pidreap_subreaper_adopt_orphans_as_tini_does() {
    let script = "sh -c 'sleep 30 >/dev/null 2>&1 & echo orphan=$! $$'; echo pid=$$; \
                  echo ready; while :; do sleep 0.1; done";
    for (args, env) in [
        (&["-s"][..], &[][..]),
        (&[][..], &[("PIDREAP_SUBREAPER", "1")][..]),
    ] {
        let mut p = Run::start(
            &[args, &["--contain", "none", "--", "sh", "-c", script]].concat(),
            env,
        );
        let (orphan, _) = orphan_line(&mut p);
        p.ready_pid();
        let me = p.pid();
        support::wait_until(LONG, "the orphan is reparented to pidreap", || {
            support::ppid(orphan) == Some(me)
        });
        p.signal(Signal::TERM);
        let (code, err) = p.wait(LONG);
        assert_eq!(code, 128 + 15, "{args:?} {env:?}: {err}");
    }
    // Without either, the orphan goes to the system's init (or whichever
    // subreaper is above us), never to pidreap.
    let mut p = Run::start(&["--contain", "none", "--", "sh", "-c", script], &[]);
    let (orphan, parent) = orphan_line(&mut p);
    p.ready_pid();
    support::wait_until(LONG, "the orphan is reparented", || {
        support::ppid(orphan).is_some_and(|pp| pp != parent)
    });
    assert_ne!(support::ppid(orphan), Some(p.pid()));
    p.signal(Signal::TERM);
    p.wait(LONG);
}

/// Reads `orphan=PID PARENT`; tracks PID.
fn orphan_line(p: &mut Run) -> (u32, i32) {
    let line = p.out.line(LONG, "orphan=");
    let (orphan, parent) = line["orphan=".len()..]
        .split_once(' ')
        .unwrap_or_else(|| panic!("expected orphan=PID PARENT, got {line:?}"));
    let orphan: u32 = orphan.parse().expect("a pid");
    p.guard.track(orphan);
    (orphan, parent.parse().expect("a pid"))
}

/// A child that starts a grandchild in its group; both trap SIGUSR1. The
/// child prints the grandchild's pid= (and ready) once both traps are set.
const GROUP_SCRIPT: &str = r#"
    trap 'wait $g; exit 42' USR1
    sh -c 'trap "echo grandchild-got-usr1; exit 0" USR1; echo pid=$$; echo ready; while :; do sleep 0.1; done' &
    g=$!
    while :; do sleep 0.1; done
"#;

#[test]
fn g_and_pidreap_forward_to_send_signals_to_the_group_as_tini_g_does() {
    for (args, env) in [
        (&["-g"][..], &[][..]),
        (&[][..], &[("PIDREAP_FORWARD_TO", "group")][..]),
        // tini's TINI_KILL_PROCESS_GROUP is not read, but pidreap says so.
        (&["-g"][..], &[("TINI_KILL_PROCESS_GROUP", "1")][..]),
    ] {
        let mut p = Run::start(&[args, &["--", "sh", "-c", GROUP_SCRIPT]].concat(), env);
        p.ready_pid();
        p.signal(Signal::USR1);
        assert_eq!(
            p.out.line(LONG, "the grandchild's line"),
            "grandchild-got-usr1"
        );
        let (code, err) = p.wait(LONG);
        assert_eq!(code, 42, "{args:?} {env:?}: {err}");
        // (The shells' "User defined signal 1" lines are theirs: the group's
        // `sleep`s die of it.)
        let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("pidreap:")).collect();
        if env.is_empty() || env[0].0.starts_with("PIDREAP_") {
            assert!(ours.is_empty(), "{err}");
        } else {
            assert_eq!(
                ours,
                ["pidreap: warning: TINI_KILL_PROCESS_GROUP is set, but pidreap does not read it: \
                  use PIDREAP_FORWARD_TO=group"]
            );
        }
    }
}

#[test]
fn setsid_starts_a_session_and_signals_its_group_as_dumb_init_does() {
    let own_session = session_and_group(std::process::id()).unwrap().0;
    for (args, env) in [
        (&["--setsid"][..], &[][..]),
        (&[][..], &[("PIDREAP_SETSID", "1")][..]),
    ] {
        // The grandchild prints pid=: its session is the child's.
        let mut p = Run::start(
            &[args, &["--contain", "none", "--", "sh", "-c", GROUP_SCRIPT]].concat(),
            env,
        );
        let grandchild = p.ready_pid();
        let (sid, pgid) = session_and_group(grandchild).unwrap();
        assert_eq!(sid, pgid, "the child leads a session and its group");
        assert_ne!(sid, own_session);
        assert_eq!(session_and_group(sid as u32), Some((sid, sid)));
        assert_eq!(
            support::ppid(sid as u32),
            Some(p.pid()),
            "the session leader is the child"
        );
        p.signal(Signal::USR1);
        assert_eq!(
            p.out.line(LONG, "the grandchild's line"),
            "grandchild-got-usr1"
        );
        let (code, err) = p.wait(LONG);
        assert_eq!(code, 42, "{args:?} {env:?}: {err}");
    }
    // dumb-init's --single-child (-c), and PIDREAP_SETSID=0: pidreap's
    // session and the child alone gets the signal.
    for (args, env) in [
        (&["-c"][..], &[("PIDREAP_SETSID", "1")][..]),
        (&["--single-child"][..], &[][..]),
        (&[][..], &[("PIDREAP_SETSID", "0")][..]),
    ] {
        let script = "trap 'exit 42' USR1; \
                      sh -c 'echo pid=$$; echo ready; exec sleep 30 >/dev/null 2>&1' & \
                      while :; do sleep 0.1; done";
        let mut p = Run::start(
            &[args, &["--contain", "none", "--", "sh", "-c", script]].concat(),
            env,
        );
        let grandchild = p.ready_pid();
        assert_eq!(
            session_and_group(grandchild).map(|(sid, _)| sid),
            Some(own_session),
            "{args:?} {env:?}"
        );
        p.signal(Signal::USR1);
        let (code, err) = p.wait(LONG);
        assert_eq!(code, 42, "{args:?} {env:?}: {err}");
        assert!(
            !support::Proc::of(grandchild).is_dead(),
            "{args:?} {env:?}: the grandchild got the signal too"
        );
    }
}

#[test]
fn rewrite_changes_what_the_child_gets_as_dumb_init_does() {
    // TERM:USR1, by name and by number (dumb-init takes numbers).
    let script = "trap 'exit 42' USR1; trap 'exit 43' TERM; echo pid=$$; echo ready; \
                  while :; do sleep 0.1; done";
    for rule in ["TERM:USR1", "15:10", "SIGTERM:usr1"] {
        let mut p = Run::start(
            &["-r", rule, "--contain", "none", "--", "sh", "-c", script],
            &[],
        );
        p.ready_pid();
        p.signal(Signal::TERM);
        let (code, err) = p.wait(LONG);
        assert_eq!(code, 42, "{rule}: the child gets SIGUSR1 instead: {err}");
    }
    // FROM:0 drops FROM: the child never gets it. SIGUSR2 afterwards shows
    // the child was still there, untouched.
    let script = "trap 'exit 42' USR1; trap 'exit 7' USR2; echo pid=$$; echo ready; \
                  while :; do sleep 0.1; done";
    let mut p = Run::start(
        &[
            "--rewrite",
            "USR1:0",
            "-v",
            "--contain",
            "none",
            "--",
            "sh",
            "-c",
            script,
        ],
        &[],
    );
    p.ready_pid();
    p.signal(Signal::USR1);
    std::thread::sleep(Duration::from_millis(300));
    p.signal(Signal::USR2);
    let (code, err) = p.wait(LONG);
    assert_eq!(code, 7, "SIGUSR1 was dropped: {err}");
}

#[test]
fn a_dropped_sigterm_does_not_start_the_stop_ladder() {
    let script = "trap 'exit 7' USR2; echo pid=$$; echo ready; while :; do sleep 0.1; done";
    let mut p = Run::start(
        &[
            "-r",
            "TERM:0",
            "--grace",
            "200ms",
            "-v",
            "--contain",
            "none",
            "--",
            "sh",
            "-c",
            script,
        ],
        &[],
    );
    let child = p.ready_pid();
    p.signal(Signal::TERM);
    // Well past the grace: the ladder would have SIGKILLed it.
    std::thread::sleep(Duration::from_millis(800));
    assert!(support::Proc::of(child)
        .stat()
        .is_some_and(|s| s.state != 'Z'));
    p.signal(Signal::USR2);
    let (code, err) = p.wait(LONG);
    assert_eq!(code, 7, "{err}");
    assert!(!err.contains("SIGKILL"), "{err}");
}

#[test]
fn p_gives_pidreap_a_signal_when_its_parent_dies_as_tini_p_does() {
    let dir = TempDir::new("compat-p");
    for (flags, stops) in [(&["-p", "SIGTERM"][..], true), (&[][..], false)] {
        let mark = dir.path().join(format!("got-term-{stops}"));
        let child = format!(
            "trap 'echo term > {}; exit 42' TERM; echo pid=$$; echo ready; while :; do sleep 0.1; done",
            mark.display()
        );
        // A shell in between: pidreap's parent, which the test then kills.
        let mut parent = Command::new("sh");
        parent
            .arg("-c")
            .arg(r#""$@" & echo pidreap=$!; wait"#)
            .arg("sh")
            .arg(BIN)
            .arg("run")
            .args(flags)
            .args(["--contain", "none", "--", "sh", "-c", &child]);
        let mut p = Run::spawn(parent);
        // The shell's `pidreap=` line and the child's `pid=` and `ready`
        // lines share the pipe: under load they come in either order.
        let (mut pidreap, mut child_pid, mut ready) = (None, None, false);
        while pidreap.is_none() || child_pid.is_none() || !ready {
            let line = p.out.line(LONG, "pidreap=N, pid=N and ready");
            let number = |prefix: &str| -> Option<u32> {
                let n = line.strip_prefix(prefix)?;
                Some(n.parse().unwrap_or_else(|_| panic!("{line:?}: not a pid")))
            };
            if let Some(pid) = number("pidreap=") {
                p.guard.track(pid);
                pidreap = Some(pid);
            } else if let Some(pid) = number("pid=") {
                p.guard.track(pid);
                child_pid = Some(pid);
            } else {
                assert_eq!(line, "ready", "unexpected output");
                ready = true;
            }
        }
        let (pidreap, child_pid) = (pidreap.expect("seen"), child_pid.expect("seen"));
        let pidreap_proc = support::Proc::of(pidreap);
        p.child.kill().expect("SIGKILL pidreap's parent");
        p.child.wait().unwrap();
        if stops {
            support::wait_until(LONG, "the child got SIGTERM", || mark.exists());
            support::wait_until(LONG, "pidreap exited", || pidreap_proc.is_dead());
        } else {
            std::thread::sleep(Duration::from_millis(500));
            assert!(!mark.exists(), "without -p the child got nothing");
            assert!(!pidreap_proc.is_dead(), "without -p pidreap runs on");
            assert!(!support::Proc::of(child_pid).is_dead());
        }
    }
}

#[test]
fn restart_on_abnormal_restarts_signals_not_exit_codes() {
    let dir = TempDir::new("compat-abnormal");
    let runs = dir.path().join("runs");
    // Killed by a signal twice, then exits 5: three runs, exit 5.
    let script = format!(
        "echo run >> {0}; [ $(wc -l < {0}) -lt 3 ] && kill -KILL $$; exit 5",
        runs.display()
    );
    let (code, err) = run(
        &[
            "--restart",
            "on-abnormal",
            "--backoff",
            "10ms..50ms",
            "--contain",
            "none",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[],
    );
    assert_eq!(code, 5, "{err}");
    assert_eq!(
        fs::read_to_string(&runs).unwrap().lines().count(),
        3,
        "{err}"
    );
}

#[test]
fn success_and_prevent_exit_status_sets_stop_restarts_as_systemd_does() {
    let dir = TempDir::new("compat-status");
    let runs = dir.path().join("runs");
    let count = || fs::read_to_string(&runs).unwrap().lines().count();
    let script = |code: i32| format!("echo run >> {}; exit {code}", runs.display());
    let base = [
        "--backoff",
        "10ms..50ms",
        "--max-restarts",
        "2",
        "--contain",
        "none",
    ];
    for (flags, code, runs_wanted) in [
        // Exit 75 counts as a success: on-failure does not restart it.
        (
            &["--restart", "on-failure", "--success-exit-status", "75"][..],
            75,
            1,
        ),
        // An unlisted failure is restarted (1 + 2 runs).
        (
            &["--restart", "on-failure", "--success-exit-status", "75"][..],
            76,
            3,
        ),
        // on-success restarts a listed code.
        (
            &["--restart", "on-success", "--success-exit-status", "1 75"][..],
            75,
            3,
        ),
        // The prevent set wins over always.
        (
            &[
                "--restart",
                "always",
                "--restart-prevent-exit-status",
                "3,4",
            ][..],
            4,
            1,
        ),
        (
            &[
                "--restart",
                "always",
                "--restart-prevent-exit-status",
                "3,4",
            ][..],
            0,
            3,
        ),
    ] {
        let _ = fs::remove_file(&runs);
        let (got, err) = run(
            &[&base[..], flags, &["--", "sh", "-c", &script(code)]].concat(),
            &[],
        );
        assert_eq!(
            (got, count()),
            (code, runs_wanted),
            "{flags:?} exit {code}: {err}"
        );
    }
}

#[test]
fn environment_defaults_lose_to_the_command_line() {
    let script = "trap '' TERM; echo pid=$$; echo ready; while :; do sleep 0.1; done";
    // PIDREAP_GRACE sets the grace; --grace beats it.
    for (args, env, grace) in [
        (
            &[][..],
            &[("PIDREAP_GRACE", "300ms")][..],
            Duration::from_millis(300),
        ),
        (
            &["--grace", "300ms"][..],
            &[("PIDREAP_GRACE", "60s")][..],
            Duration::from_millis(300),
        ),
    ] {
        let mut p = Run::start(
            &[args, &["--contain", "none", "--", "sh", "-c", script]].concat(),
            env,
        );
        p.ready_pid();
        let t0 = Instant::now();
        p.signal(Signal::TERM);
        let (code, err) = p.wait(LONG);
        assert_eq!(code, 128 + 9, "{err}");
        let took = t0.elapsed();
        assert!(
            took >= grace && took < Duration::from_secs(10),
            "{took:?}: {err}"
        );
    }
    // PIDREAP_VERBOSITY=1 logs info lines; -q on the line silences them.
    let (code, err) = run(
        &["--contain", "none", "true"],
        &[("PIDREAP_VERBOSITY", "1")],
    );
    assert_eq!(code, 0);
    assert!(err.contains("pidreap: info: "), "{err}");
    let (code, err) = run(
        &["-q", "--contain", "none", "true"],
        &[("PIDREAP_VERBOSITY", "1")],
    );
    assert_eq!((code, err.as_str()), (0, ""));
    // PIDREAP_CONTAIN: an unknown mechanism is refused, naming the variable.
    let (code, err) = run(&["true"], &[("PIDREAP_CONTAIN", "jail")]);
    assert_eq!(code, 125);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("pidreap: error: environment variable PIDREAP_CONTAIN: "),
        "{err}"
    );
    // ... and the command line still wins over a valid one.
    let (code, err) = run(
        &["--contain", "none", "true"],
        &[("PIDREAP_CONTAIN", "pidns")],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn options_end_at_program_and_double_dash_as_in_tini() {
    // `tini -s -g -- PROGRAM ARGS` as in Dockerfiles; the child's own
    // flags and `--` are its own.
    let mut p = Run::start(
        &[
            "-s",
            "-g",
            "--",
            "sh",
            "-c",
            "echo \"$@\"",
            "sh",
            "-x",
            "--",
            "-e",
            "1",
        ],
        &[],
    );
    assert_eq!(p.out.line(LONG, "the child's arguments"), "-x -- -e 1");
    let (code, err) = p.wait(LONG);
    assert_eq!(code, 0, "{err}");
}
