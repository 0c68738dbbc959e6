//! Test support for pidreap's own tests and fuzz targets (feature
//! `testing`, off by default). Not part of the stable API: it exists so
//! that the production build carries no test code, in the child's spawn path
//! least of all.
//!
//! - [`sim`]: a simulated process table that drives an
//!   [`Engine`](crate::engine::Engine) and checks its invariants.
//! - [`force_fork_class`]: forces the fork-class fallback spawn path.
//! - [`force_no_group_flag`]: signals groups as on kernels before 6.9.
//! - [`ignore_clone_pidfd_once`]: the next spawn acts as on a kernel
//!   before 5.2, which ignores `CLONE_PIDFD`.
//! - [`fail_next_spawn_after_clone`], [`retry_reap_later`]: a spawn that
//!   fails after its clone, and the "reap later" list its child may go to.
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

/// Makes the next spawn that uses `CLONE_PIDFD` act as on a kernel before
/// 5.2, which ignores the flag: the pidfd the kernel gave is closed at once
/// and -1 left in its place, as the old kernel leaves it. (A seccomp filter
/// can refuse a flag, not make the kernel ignore it.)
pub fn ignore_clone_pidfd_once() {
    crate::sys::spawn::ignore_clone_pidfd_once();
}

/// Makes the next spawn of this process fail right after its clone: `hook`
/// is called with the child's pid (the child has exec'd on the vfork-class
/// path), then the child is SIGKILLed and reaped within the error paths'
/// bound, or handed to the "reap later" list ([`retry_reap_later`]), and
/// the spawn returns an error.
pub fn fail_next_spawn_after_clone(hook: impl FnOnce(i32) + Send + 'static) {
    crate::sys::spawn::fail_after_clone_once(Box::new(hook));
}

/// Retries (without blocking) the children of the "reap later" list, as
/// every spawn and every `Reaper::poll` does; returns how many are left.
pub fn retry_reap_later() -> usize {
    crate::sys::pidfd::retry_reap_later()
}

/// Whether this process is in no-pidfd mode (forced with
/// `PIDREAP_TEST_SPAWN_MODE=no-pidfd`, or learnt from the kernel).
pub fn no_pidfd() -> bool {
    crate::sys::spawn::no_pidfd()
}
