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

use pidreap::{Command, Error, ExitStatus, Reaper, Signal};

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
