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
//! `--sandbox PROFILE -- PROGRAM ARGS` runs a program under a seccomp
//! filter instead (`sandbox.rs`): `.ci/run` runs the whole suite so.
//!
//! Layout: this file holds the table of tests ([`TESTS`]: name, deadline,
//! function) and `main`. `runner.rs` runs the table and cleans up after
//! each test; `roles.rs` holds the helper roles and starts them;
//! `helpers.rs` has small helpers the tests share; `seccomp.rs` and
//! `freezer.rs` are the seccomp filter and the cgroup-v1 freezer that some
//! tests set up. The tests themselves are grouped by topic: `fds.rs` (fd
//! and zombie leaks, fd inheritance, fd exhaustion), `signals.rs`,
//! `scale.rs`, `parent_death.rs` (a supervisor that dies: the death
//! signal), `orphans.rs`, `stuck.rs` and `fallback.rs` (the fork-class
//! spawn path). To add a test, write it in its topic file and add a line
//! to [`TESTS`].

#[path = "../support/mod.rs"]
mod support;

mod fallback;
mod fds;
mod freezer;
mod groups;
mod helpers;
mod orphans;
mod parent_death;
mod primitive;
mod roles;
mod runner;
mod sandbox;
mod scale;
mod seccomp;
mod signals;
mod stuck;

use std::process::ExitCode;
use std::time::Duration;

use roles::ROLE;

/// One test: its name, the deadline after which the runner kills it, and
/// the function run in the test's own process.
pub(crate) struct Test {
    pub(crate) name: &'static str,
    pub(crate) deadline: Duration,
    pub(crate) run: fn(),
}

const fn t(name: &'static str, secs: u64, run: fn()) -> Test {
    Test {
        name,
        deadline: Duration::from_secs(secs),
        run,
    }
}

/// Every test, in the order the runner runs them.
pub(crate) const TESTS: &[Test] = &[
    t("exec_errors_leak_no_fd_and_no_zombie", 60, || {
        fds::exec_errors_leak_nothing(false)
    }),
    t("spawn_and_reap_1000_cycles_leak_nothing", 120, || {
        fds::spawn_reap_cycles(false, 1000)
    }),
    t(
        "children_see_only_stdio_while_many_fds_are_held",
        60,
        || fds::only_stdio_fds(false),
    ),
    t(
        "blocked_signals_children_get_clean_mask_and_sigterm_is_an_event",
        60,
        || signals::blocked_signals(false),
    ),
    t(
        "thousand_children_stopped_with_one_request",
        180,
        scale::thousand_children,
    ),
    t(
        "sigkilled_supervisor_takes_its_workers_20_times",
        120,
        || parent_death::sigkilled_supervisor(false, 20),
    ),
    t("supervisor_dying_before_prctl_leaves_no_orphan", 60, || {
        parent_death::dies_before_prctl(false)
    }),
    t(
        "death_signal_can_be_changed_or_turned_off",
        60,
        parent_death::death_signal_options,
    ),
    t(
        "subreaper_reaps_orphans_and_keeps_supervised_statuses",
        60,
        orphans::orphans_reaped,
    ),
    t(
        "a_signal_storm_does_not_hide_a_childs_exit",
        60,
        orphans::signal_storm_does_not_hide_an_exit,
    ),
    t(
        "subreaper_orphans_in_a_cgroup_tree_get_the_ladder",
        60,
        orphans::orphans_in_a_cgroup_tree_get_the_ladder,
    ),
    t(
        "child_surviving_sigkill_is_reported_stuck",
        60,
        stuck::stuck_child,
    ),
    t("fallback_statuses_and_stdio", 60, || {
        fallback::statuses_and_stdio(true)
    }),
    t("fallback_exec_errors_leak_no_fd_and_no_zombie", 60, || {
        fds::exec_errors_leak_nothing(true)
    }),
    t(
        "fallback_spawn_and_reap_1000_cycles_leak_nothing",
        120,
        || fds::spawn_reap_cycles(true, 1000),
    ),
    t(
        "fallback_children_see_only_stdio_while_many_fds_are_held",
        60,
        || fds::only_stdio_fds(true),
    ),
    t(
        "fallback_blocked_signals_children_get_clean_mask",
        60,
        || signals::blocked_signals(true),
    ),
    t(
        "fallback_sigkilled_supervisor_takes_its_workers",
        120,
        || parent_death::sigkilled_supervisor(true, 5),
    ),
    t(
        "fallback_supervisor_dying_before_prctl_leaves_no_orphan",
        60,
        || parent_death::dies_before_prctl(true),
    ),
    t(
        "seccomp_refusing_clone_vm_falls_back_to_fork_class",
        60,
        || fallback::refused_features(seccomp::Refuse::CloneVm),
    ),
    t(
        "seccomp_refusing_clone_pidfd_falls_back_to_pidfd_open",
        60,
        || fallback::refused_features(seccomp::Refuse::ClonePidfd),
    ),
    t(
        "clone_ignoring_clone_pidfd_takes_pidfd_open",
        60,
        fallback::clone_pidfd_ignored,
    ),
    t(
        "failed_spawn_of_a_frozen_child_returns_in_bound_and_reaps_later",
        60,
        fallback::failed_spawn_of_a_frozen_child,
    ),
    t(
        "seccomp_refusing_every_pidfd_enosys_runs_without_pidfds",
        60,
        || fallback::refused_features(seccomp::Refuse::AllPidfds(libc::ENOSYS)),
    ),
    t(
        "seccomp_refusing_every_pidfd_eperm_runs_without_pidfds",
        60,
        || fallback::refused_features(seccomp::Refuse::AllPidfds(libc::EPERM)),
    ),
    t(
        "seccomp_refusing_close_range_leaks_no_inheritable_fd",
        60,
        || fds::no_fd_leak_without_close_range(false),
    ),
    t(
        "fallback_seccomp_refusing_close_range_leaks_no_inheritable_fd",
        60,
        || fds::no_fd_leak_without_close_range(true),
    ),
    t(
        "fd_exhaustion_gives_a_typed_error_and_loses_nothing",
        60,
        || fds::fd_exhaustion(false),
    ),
    t(
        "fallback_fd_exhaustion_gives_a_typed_error_and_loses_nothing",
        60,
        || fds::fd_exhaustion(true),
    ),
    t(
        "sigkilled_supervisor_takes_its_whole_pid_namespace_tree",
        120,
        || parent_death::sigkilled_supervisor_takes_its_pidns_tree(20, false),
    ),
    t(
        "cgroup_child_joins_its_leaf_itself_when_clone3_is_eperm",
        60,
        || fallback::cgroup_without_clone3(libc::EPERM),
    ),
    t(
        "cgroup_child_joins_its_leaf_itself_when_clone3_is_enosys",
        60,
        || fallback::cgroup_without_clone3(libc::ENOSYS),
    ),
    t(
        "unprivileged_supervisor_takes_its_pid_namespace_tree",
        120,
        || parent_death::sigkilled_supervisor_takes_its_pidns_tree(10, true),
    ),
    t(
        "a_killed_cgroup_sentinel_is_reported",
        60,
        parent_death::killed_sentinel_is_reported,
    ),
    t(
        "cgroup_spawns_work_from_a_cgroup_that_was_killed_before",
        60,
        fallback::cgroup_spawn_from_a_killed_cgroup,
    ),
    t(
        "sigkilled_supervisor_takes_its_whole_cgroup_tree",
        120,
        || parent_death::sigkilled_supervisor_takes_its_cgroup_tree(20),
    ),
    t(
        "sigkilled_supervisor_mid_spawn_leaves_no_cgroup_tree_200_times",
        300,
        || parent_death::sigkilled_supervisor_mid_spawn("cgroup", 200),
    ),
    t(
        "sigkilled_supervisor_mid_spawn_leaves_no_pidns_tree_200_times",
        300,
        || parent_death::sigkilled_supervisor_mid_spawn("pidns", 200),
    ),
    t(
        "group_kill_without_the_pidfd_group_flag_reaches_every_member",
        60,
        groups::group_kill_without_the_pidfd_flag,
    ),
    t(
        "primitive_1000_children_in_a_bare_epoll_leave_no_zombie_and_no_fd",
        120,
        || primitive::thousand_children_in_a_bare_epoll(1000),
    ),
    t(
        "primitive_dropping_an_unreaped_pidfd_kills_and_reaps",
        60,
        primitive::drop_kills_and_reaps,
    ),
    t(
        "async_reaper_reaps_more_exits_than_one_poll_handles",
        120,
        || primitive::async_reaper_more_exits_than_one_poll(1500),
    ),
    t(
        "reaped_pidfds_are_closed_once_the_events_are_drained",
        60,
        fds::reaped_pidfds_close_when_drained,
    ),
    t(
        "a_traced_child_is_reaped_once_its_tracer_lets_go_without_a_busy_loop",
        60,
        fds::traced_child_reaped_after_tracer,
    ),
];

fn main() -> ExitCode {
    if let Some(failed) = sandbox::exec_if_asked() {
        return failed;
    }
    match std::env::var(ROLE) {
        Ok(role) => roles::run_role(&role),
        Err(_) => runner::runner(),
    }
}
