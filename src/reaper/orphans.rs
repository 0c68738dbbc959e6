//! PID-1 and subreaper duty: reaping children this reaper does not
//! supervise.
//!
//! Orphans reparented to this process have no pidfd. SIGCHLD (read from
//! the signalfd) says that some child changed state; SIGCHLD coalesces, so
//! each one drains every exited child: `waitid(P_ALL, WEXITED | WNOHANG |
//! WNOWAIT)` peeks at one without reaping it, a supervised child is then
//! reaped through its pidfd as usual, and anything else is reaped by pid.
//! [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)

use std::time::Instant;

use super::{Event, Reaper};
use crate::sys::pidfd::{self, Reaped};

impl Reaper {
    /// SIGCHLD coalesces: reap until no exited child is left. Each exited
    /// child is peeked at with `WNOWAIT` first; a supervised one is reaped
    /// through its pidfd with its status reported as usual.
    pub(super) fn reap_orphans_now(&mut self, now: Instant) {
        loop {
            let pid = match pidfd::peek_any_exited() {
                Ok(Some(pid)) => pid,
                Ok(None) => return,
                Err(e) => {
                    log::error!("waitid(P_ALL, WNOWAIT) failed: {e}");
                    return;
                }
            };
            if let Some(&id) = self.by_pid.get(&pid) {
                self.try_reap(id, now);
                continue;
            }
            match pidfd::try_reap_pid(pid) {
                Ok(Reaped::Exited { status, .. }) => {
                    log::debug!("reaped orphan pid {pid}: {status}");
                    self.queue.push_back(Event::OrphanReaped {
                        pid: pid as u32,
                        status,
                    });
                }
                Ok(_) => return,
                Err(e) => {
                    log::error!("reaping orphan pid {pid} failed: {e}");
                    return;
                }
            }
        }
    }
}
