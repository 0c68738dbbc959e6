//! std parity on real processes: error chains and `io::Error` kinds,
//! `ExitStatus` against std's, the privilege and limit knobs of `Command`
//! (as root), per-child `try_wait`, and `output()`/`status()`.
//!
//! Every wait has a deadline; children carry PDEATHSIG and are killed by a
//! [`support::Guard`] if a test fails half-way.

mod support;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pidreap::{Command, Error, ExitStatus, Reaper, Resource, Signal};

const WATCHDOG: Duration = Duration::from_secs(300);

fn reaper() -> Reaper {
    support::watchdog(WATCHDOG);
    Reaper::new().expect("creating a reaper")
}

/// Walks an error's chain: each message once, in order.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}

/// No message in the chain holds the text of the one after it.
fn assert_no_repeats(e: &(dyn std::error::Error + 'static)) {
    let c = chain(e);
    assert!(c.len() >= 2, "expected a source: {c:?}");
    for pair in c.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]),
            "{:?} repeats its source {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn exec_error_keeps_its_cause_in_the_source_only_and_its_kind_in_io_error() {
    let mut r = reaper();
    let e = r
        .spawn(&Command::new("/nonexistent/pidreap-program"))
        .expect_err("a missing program");
    assert_no_repeats(&e);
    assert_eq!(
        chain(&e),
        [
            r#"cannot execute "/nonexistent/pidreap-program""#.to_string(),
            io::Error::from_raw_os_error(libc::ENOENT).to_string()
        ]
    );
    let io: io::Error = e.into();
    assert_eq!(io.kind(), io::ErrorKind::NotFound);
    assert!(
        io.get_ref()
            .and_then(|i| i.downcast_ref::<Error>())
            .is_some(),
        "the pidreap error is inside: {io:?}"
    );
    // The io::Error shows the same chain: message, then the errno.
    assert_no_repeats(&io);

    // A file without the execute bit: EACCES, PermissionDenied.
    let dir = tempdir();
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = r.spawn(&Command::new(&plain)).expect_err("not executable");
    assert_no_repeats(&e);
    // As root, EACCES still holds for a file with no execute bit at all.
    assert_eq!(io::Error::from(e).kind(), io::ErrorKind::PermissionDenied);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn chdir_error_and_other_kinds() {
    let mut r = reaper();
    let mut cmd = Command::new("true");
    cmd.current_dir("/nonexistent/pidreap-dir");
    let e = r.spawn(&cmd).expect_err("a missing directory");
    assert!(matches!(e, Error::Chdir { .. }), "{e:?}");
    assert_no_repeats(&e);
    assert_eq!(io::Error::from(e).kind(), io::ErrorKind::NotFound);

    let e = r.spawn(&Command::new("a\0b")).expect_err("a NUL byte");
    assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);

    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let child = r.spawn(&cmd).unwrap();
    let id = child.id();
    r.kill(id).unwrap();
    let exit = r
        .wait(id, Some(support::LONG))
        .unwrap()
        .expect("reaped in time");
    assert_eq!(exit.status.signal(), Some(Signal::KILL));
    let e = r.kill(id).expect_err("gone");
    assert!(e.to_string().contains(&id.to_string()), "{e}");
    assert_eq!(io::Error::from(e).kind(), io::ErrorKind::NotFound);
}

#[test]
fn exit_status_round_trips_through_std() {
    let mut r = reaper();
    for (script, code) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("exit 255", 255),
        ("kill -TERM $$", -1),
        ("kill -QUIT $$", -2),
    ] {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        let id = r.spawn(&cmd).unwrap().id();
        let ours = r
            .wait(id, Some(support::LONG))
            .unwrap()
            .expect("reaped in time")
            .status;
        let theirs = std::process::Command::new("sh")
            .args(["-c", script])
            .status()
            .unwrap();
        // The same program ends the same way under both.
        assert_eq!(ExitStatus::from(theirs), ours, "{script}");
        let back = std::process::ExitStatus::try_from(ours).unwrap();
        assert_eq!(back, theirs, "{script}: {ours} converted back");
        match code {
            -1 => assert_eq!(ours.signal(), Some(Signal::TERM)),
            -2 => assert_eq!(ours.signal(), Some(Signal::QUIT)),
            c => assert_eq!(ours, ExitStatus::Exited(c)),
        }
    }
    assert!(std::process::ExitStatus::try_from(ExitStatus::Unknown).is_err());
}

/// A fresh directory under the system's temp directory.
fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pidreap-std-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One line of `/proc/PID/status`, such as `Uid:`, without the label.
fn status_line(pid: u32, label: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} line in /proc/{pid}/status:\n{text}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn root_drops_to_nobody_with_groups_limits_and_umask() {
    if !is_root() && support::skip("root_drops_to_nobody", "not root") {
        return;
    }
    let mut r = reaper();
    let mut guard = support::Guard::new();
    let mut cmd = Command::new("sleep");
    cmd.arg("30")
        .uid(65534)
        .gid(65534)
        .groups(&[])
        .rlimit(Resource::NoFile, 100, 200)
        .rlimit(Resource::Core, 0, 0)
        .umask(0o027);
    let child = r.spawn(&cmd).expect("spawning as nobody");
    let pid = child.pid();
    guard.track(pid);
    support::wait_exec(pid, "sleep");
    // Real, effective, saved and filesystem ids.
    assert_eq!(status_line(pid, "Uid:"), "65534 65534 65534 65534");
    assert_eq!(status_line(pid, "Gid:"), "65534 65534 65534 65534");
    assert_eq!(status_line(pid, "Groups:"), "");
    assert_eq!(status_line(pid, "Umask:"), "0027");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {limits}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line(Resource::NoFile.name()),
        "Max open files 100 200 files"
    );
    assert_eq!(line(Resource::Core.name()), "Max core file size 0 0 bytes");
    r.kill(child.id()).unwrap();
    let exit = r
        .wait(child.id(), Some(support::LONG))
        .unwrap()
        .expect("reaped");
    assert_eq!(exit.status.signal(), Some(Signal::KILL));

    // Supplementary groups as given, and root's dropped with a uid alone.
    let mut cmd = Command::new("sleep");
    cmd.arg("30").uid(65534).gid(65534).groups(&[65534, 4, 100]);
    let child = r.spawn(&cmd).unwrap();
    guard.track(child.pid());
    support::wait_exec(child.pid(), "sleep");
    assert_eq!(status_line(child.pid(), "Groups:"), "4 100 65534");
    r.kill(child.id()).unwrap();
    // A uid alone, from root: no supplementary groups are kept, the
    // group id is root's.
    let mut cmd = Command::new("sleep");
    cmd.arg("30").uid(65534);
    let child = r.spawn(&cmd).unwrap();
    guard.track(child.pid());
    support::wait_exec(child.pid(), "sleep");
    assert_eq!(status_line(child.pid(), "Uid:"), "65534 65534 65534 65534");
    assert_eq!(status_line(child.pid(), "Gid:"), "0 0 0 0");
    assert_eq!(status_line(child.pid(), "Groups:"), "");
    r.kill(child.id()).unwrap();
}

#[test]
fn a_failing_credential_or_limit_step_is_a_typed_error_naming_it() {
    if !is_root() && support::skip("a_failing_step", "not root") {
        return;
    }
    let mut r = reaper();
    // RLIMIT_NOFILE above fs.nr_open is refused even to root (EPERM).
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut cmd = Command::new("true");
    cmd.rlimit(Resource::NoFile, nr_open + 1, nr_open + 1);
    let e = r.spawn(&cmd).expect_err("a limit above nr_open");
    match &e {
        Error::ChildSetup { step, source, .. } => {
            assert!(step.contains("resource limits (prlimit64)"), "{e}");
            assert_eq!(source.raw_os_error(), Some(libc::EPERM), "{e:?}");
        }
        other => panic!("expected ChildSetup, got {other:?}"),
    }
    assert_eq!(io::Error::from(e).kind(), io::ErrorKind::PermissionDenied);

    // The directory is entered as the new user: a root-only directory
    // is refused to nobody, which proves chdir comes after setuid.
    let dir = tempdir();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = Command::new("true");
    cmd.uid(65534).gid(65534).current_dir(&dir);
    let e = r.spawn(&cmd).expect_err("a root-only directory as nobody");
    assert!(
        matches!(&e, Error::Chdir { source, .. } if source.raw_os_error() == Some(libc::EACCES)),
        "{e:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // Checked before any clone.
    for cmd in [
        Command::new("true").umask(0o1777).clone(),
        Command::new("true").uid(u32::MAX).clone(),
        Command::new("true").rlimit(Resource::Stack, 2, 1).clone(),
    ] {
        let e = r.spawn(&cmd).expect_err("invalid");
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    }
}

/// Runs `f` on a thread of its own and waits at most [`support::LONG`]
/// for it: `output()` and `status()` have no deadline of their own. The
/// thread's children die with it (PDEATHSIG) if it is stuck when the test
/// process exits.
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    support::watchdog(WATCHDOG);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(support::LONG)
        .unwrap_or_else(|_| panic!("{what} did not return within {:?}", support::LONG))
}

#[test]
fn output_collects_megabytes_on_both_streams_without_deadlock() {
    // Each stream gets far more than a pipe holds (64 KiB), stderr first
    // and last, so reading one stream to its end before the other would
    // block for ever.
    let script = "yes err | head -c 3000000 >&2; yes out | head -c 5000000; \
                  yes err | head -c 1000000 >&2; exit 4";
    let out = within_deadline("output()", move || {
        Command::new("sh").args(["-c", script]).output()
    })
    .expect("output()");
    assert_eq!(out.status, ExitStatus::Exited(4));
    assert_eq!(out.stdout.len(), 5_000_000);
    assert_eq!(out.stderr.len(), 4_000_000);
    let theirs = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(out.stdout == theirs.stdout, "stdout differs from std's");
    assert!(out.stderr == theirs.stderr, "stderr differs from std's");
    assert_eq!(
        std::process::ExitStatus::try_from(out.status).unwrap(),
        theirs.status
    );
}

#[test]
fn output_gives_stdin_end_of_file_and_reports_errors_and_signals() {
    // stdin is /dev/null by default, and a piped stdin is closed at once:
    // cat ends instead of waiting for input.
    let out = within_deadline("output() of cat", || Command::new("cat").output()).unwrap();
    assert_eq!((out.status, out.stdout.len()), (ExitStatus::Exited(0), 0));
    let out = within_deadline("output() of cat, piped stdin", || {
        Command::new("cat").stdin(pidreap::Stdio::piped()).output()
    })
    .unwrap();
    assert_eq!((out.status, out.stdout.len()), (ExitStatus::Exited(0), 0));

    let e = Command::new("/nonexistent/pidreap-program")
        .output()
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");

    let out = within_deadline("output() of a killed shell", || {
        Command::new("sh")
            .args(["-c", "echo before; kill -KILL $$"])
            .output()
    })
    .unwrap();
    assert_eq!(out.status.signal(), Some(Signal::KILL));
    assert_eq!(out.stdout, b"before\n");
}

#[test]
fn status_runs_to_the_end_with_stdio_as_set() {
    let status = within_deadline("status()", || {
        Command::new("sh").args(["-c", "exit 7"]).status()
    })
    .unwrap();
    assert_eq!(status, ExitStatus::Exited(7));
    // A piped stdin is closed: cat sees end-of-file and exits 0.
    let status = within_deadline("status() of cat", || {
        Command::new("cat")
            .stdin(pidreap::Stdio::piped())
            .stdout(pidreap::Stdio::null())
            .status()
    })
    .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn try_wait_is_none_while_running_then_the_exit_once() {
    let mut r = reaper();
    let mut guard = support::Guard::new();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let child = r.spawn(&cmd).unwrap();
    guard.track(child.pid());
    let id = child.id();
    let mut other = Command::new("true");
    other.stdout(pidreap::Stdio::null());
    let other = r.spawn(&other).unwrap().id();
    assert!(r.try_wait(id).unwrap().is_none(), "sleep 30 is running");
    r.signal(id, Signal::TERM).unwrap();
    let mut exit = None;
    support::wait_until(support::LONG, "try_wait to see sleep's exit", || {
        exit = r.try_wait(id).unwrap();
        exit.is_some()
    });
    let exit = exit.unwrap();
    assert_eq!((exit.id, exit.status.signal()), (id, Some(Signal::TERM)));
    // Handed out once.
    assert!(matches!(r.try_wait(id), Err(Error::NoSuchChild(i)) if i == id));
    // The other child's exit stayed for its own waiter.
    let exit = r
        .wait(other, Some(support::LONG))
        .unwrap()
        .expect("true exits");
    assert!(exit.status.success());
}

#[test]
fn a_child_that_changed_its_user_still_dies_with_its_spawning_thread() {
    if !is_root() && support::skip("pdeathsig_after_setuid", "not root") {
        return;
    }
    support::watchdog(WATCHDOG);
    // A credential change clears PR_SET_PDEATHSIG: the child must set it
    // after setuid, or it would outlive its supervisor.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = Reaper::new().expect("a reaper");
        let mut cmd = Command::new("sleep");
        cmd.arg("30").uid(65534).gid(65534);
        let child = r.spawn(&cmd).expect("spawning as nobody");
        tx.send(child.pid()).unwrap();
        // No Drop: only the parent-death signal can end the child.
        std::mem::forget(r);
    });
    let pid = rx.recv_timeout(support::LONG).expect("the thread spawned");
    let mut guard = support::Guard::new();
    guard.track(pid);
    support::wait_until(support::LONG, "the child to die with its thread", || {
        matches!(support::state(pid), None | Some('Z'))
    });
}
