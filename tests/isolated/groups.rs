//! Process groups on kernels without `PIDFD_SIGNAL_PROCESS_GROUP` (before
//! 6.9), where the group is signalled with `kill(-pgid)`.

use std::time::Instant;

use pidreap::{Command, Event, Reaper, Signal, Stdio};

use crate::helpers::exit_of;
use crate::support::{self, Guard, Lines, Proc, LONG};

/// With the flag refused, a group kill still reaches every member of the
/// group, not just its leader through the pidfd.
pub(crate) fn group_kill_without_the_pidfd_flag() {
    let mut guard = Guard::new();
    pidreap::testing::force_no_group_flag(true);
    // The member is orphaned when the leader dies: reap it here.
    let mut reaper = Reaper::builder()
        .subreaper(true)
        .reap_orphans(true)
        .build()
        .unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 1000 & echo $!; wait"])
        .stdout(Stdio::piped())
        .process_group(0);
    let mut child = reaper.spawn(&cmd).unwrap();
    guard.track(child.pid());
    let member: u32 = Lines::new(child.stdout.take().unwrap())
        .line(LONG, "the group member's pid")
        .parse()
        .unwrap();
    guard.track(member);
    let member_proc = Proc::of(member);
    assert_eq!(
        support::stat(member).map(|s| s.pgrp),
        Some(child.pid() as i32),
        "the member is in the child's group"
    );
    reaper.kill(child.id()).unwrap();
    let exit = exit_of(&mut reaper, child.id());
    assert_eq!(exit.status.signal(), Some(pidreap::Signal::KILL));
    let deadline = Instant::now() + LONG;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("the group member was not killed in time (it got no SIGKILL?)");
        match reaper.wait_event(Some(left)).unwrap() {
            Some(Event::OrphanReaped { pid, status }) if pid == member => {
                assert_eq!(status.signal(), Some(Signal::KILL));
                break;
            }
            // The leader died first, the member was still dying.
            Some(Event::LeaderExited { id, .. }) if id == child.id() => {}
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    assert!(member_proc.is_gone());
}
