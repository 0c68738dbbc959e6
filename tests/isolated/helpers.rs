//! Small helpers the tests share: a shell command, forcing and checking the
//! spawn path, waiting for a supervised child, checking that no child is
//! left.

use pidreap::{Command, Reaper};

use crate::support::{self, LONG};

pub(crate) fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

pub(crate) fn setup(fallback: bool) {
    if fallback {
        pidreap::testing::force_fork_class(true);
    }
}

pub(crate) fn check_mode(fallback: bool) {
    let mode = Reaper::spawn_mode();
    if fallback {
        assert_eq!(mode, fallback_mode(), "the fallback was not forced");
    } else {
        assert_eq!(mode, default_mode(), "the expected path is not in use here");
    }
}

/// The fork-class fallback as a test forces it: with `pidfd_open`, or with
/// no pidfd at all in a run that forces no-pidfd mode or whose seccomp
/// sandbox refuses `pidfd_open`.
pub(crate) fn fallback_mode() -> &'static str {
    if support::mode_lacks_pidfd() || support::sandbox().is_some() {
        "fork-class clone, no pidfd (SIGCHLD + waitid P_PID)"
    } else {
        "fork-class clone + pidfd_open"
    }
}

/// The spawn path a test gets without forcing one itself: the fast path,
/// the one `PIDREAP_TEST_SPAWN_MODE` forces for the whole run (as
/// `.ci/run` does once per fallback), or the one the kernel leaves under
/// the run's seccomp sandbox: `docker` refuses `close_range` (so no
/// `CLONE_FILES`); `no-pidfd` refuses `CLONE_PIDFD` with `EINVAL`, which
/// does not say which flag was refused, so the spawner drops `CLONE_FILES`
/// and `CLONE_VM` before it.
pub(crate) fn default_mode() -> &'static str {
    match support::sandbox().as_deref() {
        Some("docker") => return "vfork-class clone with CLONE_PIDFD",
        Some("no-pidfd") => return "fork-class clone, no pidfd (SIGCHLD + waitid P_PID)",
        _ => {}
    }
    match std::env::var("PIDREAP_TEST_SPAWN_MODE").as_deref() {
        Ok("no-files") => "vfork-class clone with CLONE_PIDFD",
        Ok("fork") => "fork-class clone with CLONE_PIDFD",
        Ok("pidfd-open") => "fork-class clone + pidfd_open",
        Ok("no-pidfd") => "no pidfd (SIGCHLD + waitid P_PID)",
        _ => "vfork-class clone with CLONE_PIDFD and CLONE_FILES",
    }
}

/// Spawns and reaps one `true`, so that whatever the reaper creates lazily
/// exists before a test counts fds, and checks which spawn path is in use.
#[track_caller]
pub(crate) fn warm_up(reaper: &mut Reaper, fallback: bool) -> pidreap::Exit {
    let child = reaper.spawn(&Command::new("true")).unwrap();
    let exit = exit_of(reaper, child.id());
    check_mode(fallback);
    exit
}

#[track_caller]
pub(crate) fn exit_of(reaper: &mut Reaper, id: pidreap::ChildId) -> pidreap::Exit {
    match reaper.wait(id, Some(LONG)) {
        Ok(Some(exit)) => exit,
        Ok(None) => panic!("child {id} not reaped within {LONG:?}"),
        Err(e) => panic!("waiting for child {id}: {e}"),
    }
}

#[track_caller]
pub(crate) fn assert_no_children_left(what: &str) {
    let left: Vec<_> = support::own_children()
        .into_iter()
        .map(|p| (p, support::stat(p)))
        .collect();
    assert!(
        left.is_empty(),
        "{what}: children (zombies included) left: {left:?}"
    );
}

/// Reaps every child of this process that has exited, waiting (bounded)
/// for the dying ones.
pub(crate) fn reap_all_children(what: &str) {
    support::wait_until(LONG, &format!("{what}: every child exited"), || {
        support::own_children()
            .into_iter()
            .all(|p| support::state(p) == Some('Z') || support::state(p).is_none())
    });
    for pid in support::own_children() {
        crate::runner::reap(pid, LONG);
    }
}
