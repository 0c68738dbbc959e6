//! Test support for pidreap's own tests and fuzz targets (feature
//! `testing`, off by default). Not part of the stable API: it exists so
//! that the production build carries no test code, in the child's spawn path
//! least of all.
//!
//! - [`sim`]: a simulated process table that drives an
//!   [`Engine`](crate::engine::Engine) and checks its invariants.
//! - [`force_fork_class`]: forces the fork-class fallback spawn path.
//! - [`force_no_group_flag`]: signals groups as on kernels before 6.9.
//! - [`setup_delay`]: widens the "parent died before `PR_SET_PDEATHSIG`"
//!   window in a child, so that the race can be tested.

pub mod sim;

use std::time::Duration;

use crate::command::Command;

/// Forces the fork-class fallback spawn path (a clone without `CLONE_VM`,
/// then `pidfd_open`) for the whole process (`true`), or lets the spawner
/// probe the kernel again from the fast path (`false`).
pub fn force_fork_class(on: bool) {
    crate::sys::spawn::force_fallback(on);
}

/// Makes group signals take the path of kernels before 6.9, which refuse
/// `PIDFD_SIGNAL_PROCESS_GROUP`: `kill(-pgid)` while the leader is unreaped
/// (`true`); or lets the next group signal probe the flag again (`false`).
pub fn force_no_group_flag(on: bool) {
    crate::sys::pidfd::force_no_group_flag(on);
}

/// Makes children spawned from `cmd` sleep for `delay` just before they set
/// `PR_SET_PDEATHSIG`, so that a test can kill the parent inside that
/// window.
pub fn setup_delay(cmd: &mut Command, delay: Duration) {
    cmd.setup_delay = Some(delay);
}
