//! The stop ladder: what to send, and how long to wait after each.

use std::time::Duration;

use crate::signal::Signal;

/// One rung of a [`StopLadder`]: send `signal`, then wait `grace` for the
/// child to exit before the next rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The signal sent on this rung.
    pub signal: Signal,
    /// How long the child has to exit before the next rung.
    pub grace: Duration,
}

/// How a child is stopped: a list of (signal, grace) rungs ending in
/// SIGKILL, and how long to wait after SIGKILL before reporting the child as
/// stuck (a process in uninterruptible sleep, state `D` in
/// [proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html),
/// cannot die until it wakes).
///
/// Every signal of the ladder is followed by SIGCONT, so that a stopped
/// child can act on it: a stopped process acts on no signal but SIGKILL
/// until it is continued ([signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html)). A rung whose signal is SIGKILL ends the
/// ladder there.
///
/// The defaults are pinned (and tested): SIGTERM, 10 s of grace (as `docker
/// stop`), then SIGKILL, stuck after 5 s more.
///
/// ```
/// use std::time::Duration;
/// use pidreap::{Signal, StopLadder};
///
/// // SIGINT, 2 s; SIGTERM, 5 s; then SIGKILL.
/// let ladder = StopLadder::new(Signal::INT, Duration::from_secs(2))
///     .then(Signal::TERM, Duration::from_secs(5));
/// assert_eq!(ladder.steps().len(), 2);
/// assert_eq!(ladder.total_grace(), Duration::from_secs(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopLadder {
    steps: Vec<Step>,
    kill_timeout: Duration,
}

impl Default for StopLadder {
    fn default() -> StopLadder {
        StopLadder::new(Signal::TERM, StopLadder::DEFAULT_GRACE)
    }
}

impl StopLadder {
    /// The default grace after the stop signal (as `docker stop`).
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
    /// The default time a child may take to disappear after SIGKILL before
    /// it is reported as stuck.
    pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);

    /// Send `signal`, wait `grace`, then SIGKILL.
    pub fn new(signal: Signal, grace: Duration) -> StopLadder {
        StopLadder {
            steps: Vec::new(),
            kill_timeout: StopLadder::DEFAULT_KILL_TIMEOUT,
        }
        .then(signal, grace)
    }

    /// SIGKILL at once.
    pub fn kill_only() -> StopLadder {
        StopLadder {
            steps: Vec::new(),
            kill_timeout: StopLadder::DEFAULT_KILL_TIMEOUT,
        }
    }

    /// Adds a rung after the existing ones. Ignored after a SIGKILL rung.
    pub fn then(mut self, signal: Signal, grace: Duration) -> StopLadder {
        if !self.steps.iter().any(|s| s.signal == Signal::KILL) {
            self.steps.push(Step { signal, grace });
        }
        self
    }

    /// Sets how long after SIGKILL a child that is still there is reported
    /// as stuck.
    pub fn kill_timeout(mut self, timeout: Duration) -> StopLadder {
        self.kill_timeout = timeout;
        self
    }

    /// The rungs before the final SIGKILL.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// How long after SIGKILL a child that is still there is reported as
    /// stuck (set with [`kill_timeout`](StopLadder::kill_timeout)).
    pub fn get_kill_timeout(&self) -> Duration {
        self.kill_timeout
    }

    /// The first signal sent (SIGKILL for an empty ladder).
    pub fn first_signal(&self) -> Signal {
        self.steps.first().map_or(Signal::KILL, |s| s.signal)
    }

    /// The sum of all graces: from the stop request to SIGKILL. Saturates
    /// at `Duration::MAX` (a ladder that never reaches SIGKILL by itself).
    pub fn total_grace(&self) -> Duration {
        self.steps
            .iter()
            .filter(|s| s.signal != Signal::KILL)
            .fold(Duration::ZERO, |sum, s| sum.saturating_add(s.grace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pinned() {
        let l = StopLadder::default();
        assert_eq!(
            l.steps(),
            &[Step {
                signal: Signal::TERM,
                grace: Duration::from_secs(10)
            }]
        );
        assert_eq!(l.get_kill_timeout(), Duration::from_secs(5));
        assert_eq!(l.first_signal(), Signal::TERM);
    }

    #[test]
    fn nothing_after_a_kill_rung() {
        let l = StopLadder::new(Signal::KILL, Duration::from_secs(1))
            .then(Signal::TERM, Duration::from_secs(1));
        assert_eq!(l.steps().len(), 1);
        assert_eq!(l.total_grace(), Duration::ZERO);
        assert_eq!(StopLadder::kill_only().first_signal(), Signal::KILL);
    }
}
