//! A cgroup-v1 freezer guard, to make a child that SIGKILL cannot end.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::{self, LONG};

/// A cgroup-v1 freezer cgroup of our own: a frozen process cannot act on
/// SIGKILL until it is thawed, which is how a process in uninterruptible
/// sleep behaves (see
/// <https://docs.kernel.org/admin-guide/cgroup-v1/freezer-subsystem.html>).
/// Dropping it thaws and removes it.
pub(crate) struct Freezer {
    dir: std::path::PathBuf,
}

impl Freezer {
    pub(crate) fn new() -> Option<Freezer> {
        let dir = std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/freezer/pidreap-test-{}",
            std::process::id()
        ));
        fs::create_dir(&dir).ok()?;
        Some(Freezer { dir })
    }

    pub(crate) fn add(&self, pid: u32) {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }

    pub(crate) fn set(&self, state: &str) {
        fs::write(self.dir.join("freezer.state"), state).unwrap();
        support::wait_until(LONG, &format!("the freezer cgroup is {state}"), || {
            fs::read_to_string(self.dir.join("freezer.state")).is_ok_and(|s| s.trim() == state)
        });
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        let _ = fs::write(self.dir.join("freezer.state"), "THAWED");
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::read_to_string(self.dir.join("cgroup.procs")).is_ok_and(|s| !s.trim().is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = fs::remove_dir(&self.dir);
    }
}
