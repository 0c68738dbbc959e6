//! The public spawn primitive, [`pidreap::spawn`] and [`pidreap::PidFd`]:
//! statuses, signals, timeouts, pipes and refusals, on real processes.

mod support;

use std::io::Read;
use std::time::Duration;

use pidreap::{Command, Containment, Error, ExitStatus, Signal, Stdio};
use support::{Guard, LONG};

#[test]
fn status_signal_timeout_and_pipes() {
    if support::mode_skip("status_signal_timeout_and_pipes") {
        return;
    }
    support::watchdog(Duration::from_secs(120));
    let mut guard = Guard::new();

    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo hi; exit 7"]).stdout(Stdio::piped());
    let mut child = pidreap::spawn(&cmd).unwrap();
    guard.track(child.pid());
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "hi\n");
    let r = child.pidfd.wait_timeout(LONG).unwrap().expect("exited");
    assert_eq!(r.status, ExitStatus::Exited(7));

    let mut child = pidreap::spawn(Command::new("sleep").arg("60")).unwrap();
    guard.track(child.pid());
    assert_eq!(child.pidfd.try_wait().unwrap(), None);
    assert_eq!(
        child.pidfd.wait_timeout(Duration::from_millis(50)).unwrap(),
        None
    );
    assert!(child.pidfd.send_signal(Signal::TERM).unwrap());
    let r = child.pidfd.wait().unwrap();
    assert_eq!(r.status.signal(), Some(Signal::TERM));
    assert!(!child.pidfd.send_signal(Signal::TERM).unwrap());
}

#[test]
fn exec_errors_and_cgroup_are_refused() {
    if support::mode_skip("exec_errors_and_cgroup_are_refused") {
        return;
    }
    let e = pidreap::spawn(&Command::new("pidreap-no-such-program-anywhere")).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let mut cmd = Command::new("true");
    cmd.containment(Containment::Cgroup);
    match pidreap::spawn(&cmd) {
        Err(Error::ContainmentUnavailable { mechanism, .. }) => {
            assert_eq!(mechanism, Containment::Cgroup.name())
        }
        other => panic!("expected ContainmentUnavailable, got {other:?}"),
    }
}
