//! Blocked stop signals read from the signalfd; children still start with
//! a clean signal state.

use std::time::{Duration, Instant};

use pidreap::{Command, Event, ExitStatus, Reaper, Signal, Stdio, STOP_SIGNALS};

use crate::helpers::{assert_no_children_left, check_mode, setup};
use crate::support::{self, Guard, LONG};

/// Blocks the stop signals first thing (no other thread exists in this
/// process), reads them from the reaper's signalfd, and checks that
/// children still start with an empty mask and default dispositions.
pub(crate) fn blocked_signals(fallback: bool) {
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
