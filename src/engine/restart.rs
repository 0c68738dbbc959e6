//! The restart policy: whether a child that exited is started again, after
//! how long, and when to give up. See [`Restarter`](super::Restarter).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::signal::Signal;
use crate::status::ExitStatus;

/// When a child that exited is started again. The names and meanings
/// follow systemd's `Restart=`
/// ([systemd.service(5)](https://man7.org/linux/man-pages/man5/systemd.service.5.html)),
/// for the exits a supervisor without start timeouts or watchdog sees:
///
/// | exit | `never` | `on-success` | `on-failure` | `on-abnormal` | `always` |
/// |---|---|---|---|---|---|
/// | [`Success`](ExitKind::Success) | | restart | | | restart |
/// | [`Failure`](ExitKind::Failure) | | | restart | | restart |
/// | [`Abnormal`](ExitKind::Abnormal) | | | restart | restart | restart |
///
/// Unlike systemd, no signal counts as a clean exit by default (systemd
/// counts SIGHUP, SIGINT, SIGTERM and SIGPIPE as clean): list the ones that
/// should in [`RestartConfig::success_exit_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Never: the child's exit is final (the default).
    #[default]
    Never,
    /// When it succeeded: exit code 0 (or a status listed as success).
    OnSuccess,
    /// When it failed: a non-zero exit code, or killed by a signal.
    OnFailure,
    /// When it was killed by a signal (systemd's "unclean signal"), not when
    /// it exited with any code.
    OnAbnormal,
    /// Whenever it exits, successfully or not.
    Always,
}

impl RestartPolicy {
    /// Whether this policy restarts after an exit of this kind.
    pub fn wants_restart(self, kind: ExitKind) -> bool {
        match self {
            RestartPolicy::Never => false,
            RestartPolicy::OnSuccess => kind == ExitKind::Success,
            RestartPolicy::OnFailure => kind != ExitKind::Success,
            RestartPolicy::OnAbnormal => kind == ExitKind::Abnormal,
            RestartPolicy::Always => true,
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnSuccess => "on-success",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::OnAbnormal => "on-abnormal",
            RestartPolicy::Always => "always",
        })
    }
}

/// The error from parsing a [`RestartPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown restart policy {0:?} (expected never, on-success, on-failure, on-abnormal or always)"
)]
pub struct ParsePolicyError(String);

impl FromStr for RestartPolicy {
    type Err = ParsePolicyError;

    /// Parses `never`, `on-success`, `on-failure`, `on-abnormal` or
    /// `always` (as `Display` writes them).
    fn from_str(s: &str) -> Result<RestartPolicy, ParsePolicyError> {
        match s {
            "never" => Ok(RestartPolicy::Never),
            "on-success" => Ok(RestartPolicy::OnSuccess),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "on-abnormal" => Ok(RestartPolicy::OnAbnormal),
            "always" => Ok(RestartPolicy::Always),
            _ => Err(ParsePolicyError(s.to_owned())),
        }
    }
}

/// How a child ended, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Exit code 0 (or a status listed in
    /// [`RestartConfig::success_exit_status`]).
    Success,
    /// Any other exit code.
    Failure,
    /// Killed by a signal, or an unknown status (systemd's "unclean
    /// signal").
    Abnormal,
}

impl ExitKind {
    /// The kind of a reaped child's status.
    pub fn of(status: ExitStatus) -> ExitKind {
        match status {
            ExitStatus::Exited(0) => ExitKind::Success,
            ExitStatus::Exited(_) => ExitKind::Failure,
            ExitStatus::Signaled { .. } | ExitStatus::Unknown => ExitKind::Abnormal,
        }
    }
}

/// A set of exit statuses: exit codes (0 to 255) and signals (1 to 64),
/// as systemd's `SuccessExitStatus=` and `RestartPreventExitStatus=` take
/// them ([systemd.service(5)](https://man7.org/linux/man-pages/man5/systemd.service.5.html)).
///
/// ```
/// use pidreap::engine::ExitStatusSet;
/// use pidreap::{ExitStatus, Signal};
///
/// let set: ExitStatusSet = "75, 143 SIGTERM".parse().unwrap();
/// assert!(set.contains(ExitStatus::Exited(75)));
/// assert!(set.contains(ExitStatus::Signaled { signal: Signal::TERM, core_dumped: false }));
/// assert!(!set.contains(ExitStatus::Exited(0)));
/// assert!("256".parse::<ExitStatusSet>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitStatusSet {
    /// Bit `c` for exit code `c`.
    codes: [u64; 4],
    /// Bit `n - 1` for signal `n`.
    signals: u64,
}

impl ExitStatusSet {
    /// The empty set.
    pub const fn new() -> ExitStatusSet {
        ExitStatusSet {
            codes: [0; 4],
            signals: 0,
        }
    }

    /// Adds exit code `code`.
    pub fn insert_code(&mut self, code: u8) -> &mut ExitStatusSet {
        self.codes[usize::from(code / 64)] |= 1 << (code % 64);
        self
    }

    /// Adds "killed by `signal`".
    pub fn insert_signal(&mut self, signal: Signal) -> &mut ExitStatusSet {
        self.signals |= 1 << (signal.as_raw() - 1);
        self
    }

    /// Adds every member of `other`.
    pub fn extend(&mut self, other: &ExitStatusSet) -> &mut ExitStatusSet {
        for (mine, theirs) in self.codes.iter_mut().zip(other.codes) {
            *mine |= theirs;
        }
        self.signals |= other.signals;
        self
    }

    /// True if the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.signals == 0 && self.codes.iter().all(|&c| c == 0)
    }

    /// Whether `status` is in the set (an unknown status never is).
    pub fn contains(&self, status: ExitStatus) -> bool {
        match status {
            ExitStatus::Exited(code) => u8::try_from(code)
                .is_ok_and(|c| self.codes[usize::from(c / 64)] & (1 << (c % 64)) != 0),
            ExitStatus::Signaled { signal, .. } => self.signals & (1 << (signal.as_raw() - 1)) != 0,
            ExitStatus::Unknown => false,
        }
    }
}

/// The error from parsing an [`ExitStatusSet`]: names the word that is
/// neither an exit code nor a signal name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither an exit code (0 to 255) nor a signal name (TERM, SIGTERM)")]
pub struct ParseExitStatusSetError(String);

impl FromStr for ExitStatusSet {
    type Err = ParseExitStatusSetError;

    /// Parses exit codes and signal names separated by spaces or commas:
    /// `"75 143 SIGTERM"`, `"1,2,HUP"`. A number is always an exit code
    /// (write a signal by name); an empty string is the empty set.
    fn from_str(s: &str) -> Result<ExitStatusSet, ParseExitStatusSetError> {
        let mut set = ExitStatusSet::new();
        for word in s.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
            let bad = || ParseExitStatusSetError(word.to_owned());
            if word.bytes().all(|b| b.is_ascii_digit()) {
                set.insert_code(word.parse().map_err(|_| bad())?);
            } else if word.starts_with(|c: char| c.is_ascii_alphabetic()) {
                set.insert_signal(word.parse().map_err(|_| bad())?);
            } else {
                return Err(bad());
            }
        }
        Ok(set)
    }
}

/// Exponential back-off between restarts, with jitter and a cap.
///
/// Before restart `k` (counting from 1 since the child last ran for a full
/// window, see [`Restarter`]) the base delay is `min · 2^(k-1)`, capped at
/// `max`. The delay used is drawn from `[3/4 · base, base]` with the
/// caller's randomness, and never below `min`. So the first delay is always
/// exactly `min`, later ones at least 1.5 times the previous base (they
/// grow until the cap), and every delay lies in `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
}

impl Default for Backoff {
    /// 100 ms to 30 s.
    fn default() -> Backoff {
        Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// A back-off from `min` to `max`; `None` if `min > max`. A `min` of
    /// zero makes every delay zero (no back-off).
    pub fn new(min: Duration, max: Duration) -> Option<Backoff> {
        (min <= max).then_some(Backoff { min, max })
    }

    /// The shortest delay.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The longest delay (the cap).
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The delay before restart number `k` (1 for the first) of a run of
    /// failures, with `random` choosing the jitter (any value is fine; the
    /// same inputs give the same delay).
    pub fn delay(&self, k: u32, random: u64) -> Duration {
        let shift = k.saturating_sub(1);
        let base = match 1u32.checked_shl(shift) {
            Some(factor) => self
                .min
                .checked_mul(factor)
                .map_or(self.max, |b| b.min(self.max)),
            None => self.max,
        };
        // Take off up to a quarter: base · (random / 2^64) / 4.
        let nanos = base.as_nanos();
        let off = (nanos / 4).saturating_mul(u128::from(random)) >> 64;
        let jittered = Duration::from_nanos(u64::try_from(nanos - off).unwrap_or(u64::MAX));
        jittered.clamp(self.min, self.max)
    }
}

/// What the restart policy is: which exits restart, how many restarts are
/// allowed within how long, and how long to wait before each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartConfig {
    /// Which exits are restarted.
    pub policy: RestartPolicy,
    /// At most this many restarts within any interval of length `window`;
    /// at the next exit that would need one more, the restarter gives up.
    pub max_restarts: u32,
    /// The sliding window for `max_restarts`. Also: a child that ran for a
    /// full window resets the back-off to its minimum.
    pub window: Duration,
    /// The delay before each restart.
    pub backoff: Backoff,
    /// Statuses that count as a success besides exit code 0, for the
    /// policy (systemd's `SuccessExitStatus=`); used by
    /// [`Restarter::on_exit_status`].
    pub success_exit_status: ExitStatusSet,
    /// Statuses after which the child is never restarted, whatever the
    /// policy (systemd's `RestartPreventExitStatus=`); used by
    /// [`Restarter::on_exit_status`].
    pub prevent_exit_status: ExitStatusSet,
}

impl Default for RestartConfig {
    /// Never restart; 10 restarts within 60 s and 100 ms..30 s back-off
    /// when a policy is set.
    fn default() -> RestartConfig {
        RestartConfig {
            policy: RestartPolicy::Never,
            max_restarts: 10,
            window: Duration::from_secs(60),
            backoff: Backoff::default(),
            success_exit_status: ExitStatusSet::new(),
            prevent_exit_status: ExitStatusSet::new(),
        }
    }
}

/// Why the restarter will not start the child again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The policy does not restart this kind of exit.
    Policy,
    /// `max_restarts` restarts already happened within the window.
    LimitReached,
    /// [`Restarter::stop`] was called.
    Stopped,
    /// The exit status is in [`RestartConfig::prevent_exit_status`].
    Prevented,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Policy => "the restart policy does not restart this exit",
            StopReason::LimitReached => "the restart limit was reached",
            StopReason::Stopped => "a stop was requested",
            StopReason::Prevented => "the exit status prevents a restart",
        })
    }
}

/// What to do after the child exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again at `at` (`delay` after the exit): call
    /// [`Restarter::poll_spawn`] then.
    Restart {
        /// The restart's number since the restarter was made (1 for the
        /// first), for logs.
        attempt: u32,
        /// The back-off delay.
        delay: Duration,
        /// When to spawn.
        at: Instant,
    },
    /// Do not start it again; the supervisor is done.
    GiveUp(StopReason),
}

/// Up to this many restarts per window, the restarter keeps every spawn
/// instant that can still count; above it, buckets (see [`Restarter`]).
const EXACT_HISTORY: u64 = 1024;

/// Restarts spawned from `first` to `last`, counted at `last`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    first: Instant,
    last: Instant,
    count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Created; [`Restarter::started`] not called yet.
    Idle,
    /// The child runs (since the instant given).
    Running { since: Instant },
    /// Waiting to spawn restart `attempt` at `at`.
    BackingOff { at: Instant, attempt: u32 },
    /// Given up, or stopped: nothing is spawned again.
    Done(StopReason),
}

/// The restart state machine for one supervised program: whether a child
/// that exited is started again, after how long, and when to give up.
///
/// Like the rest of [`engine`](crate::engine), a [`Restarter`] is sans-IO:
/// it reads no clock and draws no random numbers. Every input carries the
/// current [`Instant`], and the randomness for the back-off's jitter is a
/// `u64` the caller supplies (any source will do: it only spreads restarts
/// of many supervisors apart). The caller spawns when
/// [`poll_spawn`](Restarter::poll_spawn) says so, and sleeps until
/// [`poll_timeout`](Restarter::poll_timeout) in between.
///
/// Three rules, each covered by property tests (`tests/restart_props.rs`):
///
/// - every back-off delay lies in `[min, max]` of the [`Backoff`];
/// - no interval of length `window` ever holds more than `max_restarts`
///   restarts;
/// - after [`stop`](Restarter::stop), nothing is ever spawned again.
///
/// ```
/// use std::time::{Duration, Instant};
/// use pidreap::engine::{
///     Backoff, Decision, ExitKind, RestartConfig, RestartPolicy, Restarter, StopReason,
/// };
///
/// let ms = Duration::from_millis;
/// let config = RestartConfig {
///     policy: RestartPolicy::OnFailure,
///     max_restarts: 2,
///     window: Duration::from_secs(60),
///     backoff: Backoff::new(ms(100), ms(1000)).unwrap(),
///     ..RestartConfig::default()
/// };
/// let mut r = Restarter::new(config);
/// let t0 = Instant::now();
/// r.started(t0);
///
/// // The child fails: restart 1 comes after exactly `min` (the first delay
/// // is never jittered below it).
/// let d = r.on_exit(t0, ExitKind::Failure, 0);
/// assert_eq!(d, Decision::Restart { attempt: 1, delay: ms(100), at: t0 + ms(100) });
/// assert_eq!(r.poll_timeout(), Some(t0 + ms(100)));
/// assert_eq!(r.poll_spawn(t0 + ms(99)), None, "not yet");
/// assert_eq!(r.poll_spawn(t0 + ms(100)), Some(1));
///
/// // Fails again: the delay doubles (jitter takes at most a quarter off).
/// let t1 = t0 + ms(150);
/// let Decision::Restart { attempt: 2, delay, .. } = r.on_exit(t1, ExitKind::Failure, u64::MAX) else {
///     panic!()
/// };
/// assert!(delay >= ms(150) && delay <= ms(200));
///
/// // A stop request during the back-off: nothing is spawned, ever.
/// assert!(r.stop());
/// assert_eq!(r.poll_timeout(), None);
/// assert_eq!(r.poll_spawn(t1 + Duration::from_secs(3600)), None);
/// assert_eq!(r.on_exit(t1, ExitKind::Failure, 0), Decision::GiveUp(StopReason::Stopped));
/// ```
///
/// # The order to call it in
///
/// 1. [`started`](Restarter::started) once, for the first spawn;
/// 2. [`on_exit`](Restarter::on_exit) at each exit: it says whether a
///    restart comes and when;
/// 3. sleep until [`poll_timeout`](Restarter::poll_timeout), then call
///    [`poll_spawn`](Restarter::poll_spawn): `Some(attempt)` means spawn
///    now (the restarter counts it as started);
/// 4. back to 2; [`stop`](Restarter::stop) at any point ends it.
///
/// The limit: a restart is only granted if, counting it, no interval of
/// length `window` holds more than `max_restarts` restarts (each counted at
/// the instant it was spawned). The back-off: the `k`-th restart of a run of
/// failures waits [`Backoff::delay`]`(k)`; a child that ran for at least
/// `window` starts a new run (`k` back to 1).
///
/// # Memory and time
///
/// The restarter remembers at most the last `max_restarts` spawn instants
/// (older ones can never decide the limit), and each exit costs the same
/// however many restarts came before. Above a `max_restarts` of 1,024 it
/// keeps, instead, at most about 1,024 buckets of restarts, each
/// spanning at most `window / 1024` and counted as if all its
/// restarts had happened at its last one: a bucket leaves the window that
/// much later than its first restart would, so the limit may be reached
/// up to `window / 1024` earlier than an exact count would say, never
/// later.
#[derive(Debug, Clone)]
pub struct Restarter {
    config: RestartConfig,
    state: State,
    /// The restarts that may still be inside a window, oldest first.
    history: VecDeque<Bucket>,
    /// The sum of the buckets' counts.
    in_history: u64,
    /// Restarts in the current run of failures.
    streak: u32,
    /// Restarts so far, in total.
    attempts: u32,
}

impl Restarter {
    /// A restarter with this configuration, before the first spawn.
    pub fn new(config: RestartConfig) -> Restarter {
        Restarter {
            config,
            state: State::Idle,
            history: VecDeque::new(),
            in_history: 0,
            streak: 0,
            attempts: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RestartConfig {
        &self.config
    }

    /// The first spawn happened at `now`. (Restarts are recorded by
    /// [`poll_spawn`](Restarter::poll_spawn).) Ignored once stopped.
    pub fn started(&mut self, now: Instant) {
        if !matches!(self.state, State::Done(_)) {
            self.state = State::Running { since: now };
        }
    }

    /// The child exited at `now` with `status`: restart it, or give up.
    /// Classifies the status with the configuration's
    /// [`success_exit_status`](RestartConfig::success_exit_status) and
    /// [`prevent_exit_status`](RestartConfig::prevent_exit_status) (a
    /// status in the latter gives up with [`StopReason::Prevented`]), then
    /// decides as [`on_exit`](Restarter::on_exit).
    pub fn on_exit_status(&mut self, now: Instant, status: ExitStatus, random: u64) -> Decision {
        if let State::Done(reason) = self.state {
            return Decision::GiveUp(reason);
        }
        if self.config.prevent_exit_status.contains(status) {
            return self.give_up(StopReason::Prevented);
        }
        let kind = if self.config.success_exit_status.contains(status) {
            ExitKind::Success
        } else {
            ExitKind::of(status)
        };
        self.on_exit(now, kind, random)
    }

    /// The child exited at `now`: restart it, or give up. `random` picks
    /// the back-off's jitter.
    pub fn on_exit(&mut self, now: Instant, kind: ExitKind, random: u64) -> Decision {
        let ran_for = match self.state {
            State::Done(reason) => return Decision::GiveUp(reason),
            State::Running { since } => now.saturating_duration_since(since),
            // An exit without a known spawn: treat as a crash at once.
            State::Idle | State::BackingOff { .. } => Duration::ZERO,
        };
        if !self.config.policy.wants_restart(kind) {
            return self.give_up(StopReason::Policy);
        }
        if ran_for >= self.config.window {
            self.streak = 0;
        }
        let delay = self
            .config
            .backoff
            .delay(self.streak.saturating_add(1), random);
        let at = later(now, delay);
        // Restarts inside (at - window, at], the window that would end
        // with this one. The earlier restarts all happened before `now`,
        // and those out of this window are out of every later one too.
        self.forget_before(at);
        if self.in_history >= u64::from(self.config.max_restarts) {
            return self.give_up(StopReason::LimitReached);
        }
        self.streak = self.streak.saturating_add(1);
        let attempt = self.attempts.saturating_add(1);
        self.state = State::BackingOff { at, attempt };
        Decision::Restart { attempt, delay, at }
    }

    /// Records a restart spawned at `now`: a bucket of its own while
    /// `max_restarts` is at most [`EXACT_HISTORY`] (and only the last
    /// `max_restarts` are kept), else into the latest bucket if that began
    /// less than `window / EXACT_HISTORY` ago.
    fn remember(&mut self, now: Instant) {
        let max = u64::from(self.config.max_restarts);
        let span = self.config.window / EXACT_HISTORY as u32;
        match self.history.back_mut() {
            Some(b) if max > EXACT_HISTORY && now.saturating_duration_since(b.first) < span => {
                b.last = b.last.max(now);
                b.count = b.count.saturating_add(1);
            }
            _ => self.history.push_back(Bucket {
                first: now,
                last: now,
                count: 1,
            }),
        }
        self.in_history = self.in_history.saturating_add(1);
        while self.in_history > max {
            let Some(oldest) = self.history.pop_front() else {
                break;
            };
            self.in_history -= u64::from(oldest.count);
        }
        self.forget_before(now);
    }

    /// Forgets the buckets that are out of the window ending at `end`.
    fn forget_before(&mut self, end: Instant) {
        let window = self.config.window;
        while let Some(oldest) = self.history.front() {
            if oldest.last.checked_add(window).is_none_or(|out| out > end) {
                break;
            }
            self.in_history -= u64::from(oldest.count);
            self.history.pop_front();
        }
    }

    fn give_up(&mut self, reason: StopReason) -> Decision {
        self.state = State::Done(reason);
        Decision::GiveUp(reason)
    }

    /// When the pending restart is due, if one is.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::BackingOff { at, .. } => Some(at),
            _ => None,
        }
    }

    /// If a restart is due at `now`, records it as spawned at `now` and
    /// returns its attempt number: spawn the child then (and call
    /// [`on_exit`](Restarter::on_exit) when it exits, even if the spawn
    /// failed). `None` otherwise.
    pub fn poll_spawn(&mut self, now: Instant) -> Option<u32> {
        let State::BackingOff { at, attempt } = self.state else {
            return None;
        };
        if now < at {
            return None;
        }
        self.attempts = attempt;
        self.remember(now);
        self.state = State::Running { since: now };
        Some(attempt)
    }

    /// Stops for good: a pending restart is cancelled, and later exits give
    /// up. Returns true if a restart was pending (the caller can finish at
    /// once: no child is running).
    pub fn stop(&mut self) -> bool {
        let pending = matches!(self.state, State::BackingOff { .. });
        if !matches!(self.state, State::Done(_)) {
            self.state = State::Done(StopReason::Stopped);
        }
        pending
    }

    /// True while a restart is pending (between an exit and its spawn).
    pub fn is_backing_off(&self) -> bool {
        matches!(self.state, State::BackingOff { .. })
    }

    /// Why the restarter is done, once it is.
    pub fn done(&self) -> Option<StopReason> {
        match self.state {
            State::Done(reason) => Some(reason),
            _ => None,
        }
    }

    /// The number of restarts spawned so far.
    pub fn restarts(&self) -> u32 {
        self.attempts
    }
}

/// `now + d`, or the latest instant this platform can represent on the way
/// there (a delay of centuries is as good as for ever).
fn later(now: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config(policy: RestartPolicy, max: u32, window: Duration) -> RestartConfig {
        RestartConfig {
            policy,
            max_restarts: max,
            window,
            backoff: Backoff::new(ms(100), ms(1000)).unwrap(),
            ..RestartConfig::default()
        }
    }

    #[test]
    fn policies() {
        use ExitKind::*;
        assert!(!RestartPolicy::Never.wants_restart(Failure));
        assert!(!RestartPolicy::Never.wants_restart(Success));
        assert!(RestartPolicy::OnFailure.wants_restart(Failure));
        assert!(!RestartPolicy::OnFailure.wants_restart(Success));
        assert!(RestartPolicy::Always.wants_restart(Success));
        assert!(RestartPolicy::OnFailure.wants_restart(Abnormal));
        assert!(RestartPolicy::OnAbnormal.wants_restart(Abnormal));
        assert!(!RestartPolicy::OnAbnormal.wants_restart(Failure));
        assert!(!RestartPolicy::OnAbnormal.wants_restart(Success));
        assert!(RestartPolicy::OnSuccess.wants_restart(Success));
        assert!(!RestartPolicy::OnSuccess.wants_restart(Failure));
        assert!(!RestartPolicy::OnSuccess.wants_restart(Abnormal));
        for p in [
            RestartPolicy::Never,
            RestartPolicy::OnSuccess,
            RestartPolicy::OnFailure,
            RestartPolicy::OnAbnormal,
            RestartPolicy::Always,
        ] {
            assert_eq!(p.to_string().parse::<RestartPolicy>(), Ok(p));
        }
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert_eq!(ExitKind::of(crate::status::ExitStatus::Exited(0)), Success);
        assert_eq!(ExitKind::of(crate::status::ExitStatus::Exited(1)), Failure);
        assert_eq!(ExitKind::of(crate::status::ExitStatus::Unknown), Abnormal);
        let killed = ExitStatus::Signaled {
            signal: Signal::KILL,
            core_dumped: false,
        };
        assert_eq!(ExitKind::of(killed), Abnormal);
    }

    #[test]
    fn backoff_doubles_jitters_and_caps() {
        let b = Backoff::new(ms(100), ms(1000)).unwrap();
        assert_eq!(b.delay(1, 0), ms(100));
        assert_eq!(b.delay(1, u64::MAX), ms(100), "never below min");
        assert_eq!(b.delay(2, 0), ms(200));
        assert!(b.delay(2, u64::MAX) >= ms(150) && b.delay(2, u64::MAX) < ms(200));
        assert_eq!(b.delay(3, 0), ms(400));
        assert_eq!(b.delay(5, 0), ms(1000), "capped");
        assert!(b.delay(5, u64::MAX) >= ms(750));
        assert_eq!(b.delay(u32::MAX, 0), ms(1000));
        assert_eq!(
            Backoff::new(Duration::ZERO, ms(5)).unwrap().delay(10, 7),
            Duration::ZERO
        );
        assert!(Backoff::new(ms(2), ms(1)).is_none());
        let huge = Backoff::new(Duration::from_secs(u64::MAX / 4), Duration::MAX).unwrap();
        assert!(huge.delay(40, 1) <= Duration::MAX);
    }

    #[test]
    fn never_gives_up_at_once() {
        let t0 = Instant::now();
        let mut r = Restarter::new(config(RestartPolicy::Never, 10, ms(60_000)));
        r.started(t0);
        assert_eq!(
            r.on_exit(t0, ExitKind::Failure, 0),
            Decision::GiveUp(StopReason::Policy)
        );
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.done(), Some(StopReason::Policy));
    }

    #[test]
    fn limit_gives_one_plus_n_runs() {
        let t0 = Instant::now();
        let mut r = Restarter::new(config(RestartPolicy::Always, 3, ms(60_000)));
        r.started(t0);
        let mut now = t0;
        let mut runs = 1;
        loop {
            match r.on_exit(now, ExitKind::Success, 12345) {
                Decision::Restart { at, attempt, .. } => {
                    assert_eq!(attempt, runs);
                    now = at;
                    assert_eq!(r.poll_spawn(now), Some(attempt));
                    runs += 1;
                }
                Decision::GiveUp(reason) => {
                    assert_eq!(reason, StopReason::LimitReached);
                    break;
                }
            }
        }
        assert_eq!(runs, 4);
        assert_eq!(r.restarts(), 3);
    }

    #[test]
    fn the_window_slides() {
        let t0 = Instant::now();
        let mut r = Restarter::new(config(RestartPolicy::OnFailure, 1, ms(1000)));
        r.started(t0);
        let Decision::Restart { at, .. } = r.on_exit(t0, ExitKind::Failure, 0) else {
            panic!()
        };
        assert_eq!(r.poll_spawn(at), Some(1));
        // Fails again soon: a second restart would put two in one window.
        let mut r2 = r.clone();
        assert_eq!(
            r2.on_exit(at + ms(10), ExitKind::Failure, 0),
            Decision::GiveUp(StopReason::LimitReached)
        );
        // Fails after running for a full window: allowed, and the back-off
        // starts over at min.
        let later = at + ms(1000);
        assert_eq!(
            r.on_exit(later, ExitKind::Failure, 0),
            Decision::Restart {
                attempt: 2,
                delay: ms(100),
                at: later + ms(100)
            }
        );
    }

    #[test]
    fn zero_restarts_means_none() {
        let t0 = Instant::now();
        let mut r = Restarter::new(config(RestartPolicy::Always, 0, ms(1000)));
        r.started(t0);
        assert_eq!(
            r.on_exit(t0, ExitKind::Failure, 0),
            Decision::GiveUp(StopReason::LimitReached)
        );
    }

    #[test]
    fn stop_while_running_and_while_backing_off() {
        let t0 = Instant::now();
        let mut r = Restarter::new(config(RestartPolicy::Always, 5, ms(1000)));
        r.started(t0);
        assert!(!r.stop(), "nothing was pending");
        assert_eq!(
            r.on_exit(t0, ExitKind::Failure, 0),
            Decision::GiveUp(StopReason::Stopped)
        );

        let mut r = Restarter::new(config(RestartPolicy::Always, 5, ms(1000)));
        r.started(t0);
        assert!(matches!(
            r.on_exit(t0, ExitKind::Failure, 0),
            Decision::Restart { .. }
        ));
        assert!(r.is_backing_off());
        assert!(r.stop());
        assert!(!r.is_backing_off());
        assert_eq!(r.poll_spawn(t0 + ms(100_000)), None);
        r.started(t0);
        assert_eq!(
            r.done(),
            Some(StopReason::Stopped),
            "started() does not revive it"
        );
    }

    /// Runs `exits` quick failures `gap` apart (no back-off) and returns
    /// how many restarts were granted and the longest history seen.
    fn fail_fast(r: &mut Restarter, exits: u64, gap: Duration) -> (u64, usize) {
        let t0 = Instant::now();
        r.started(t0);
        let (mut granted, mut longest) = (0, 0);
        for i in 0..exits {
            match r.on_exit(t0 + gap * i as u32, ExitKind::Failure, 0) {
                Decision::Restart { at, .. } => {
                    assert!(r.poll_spawn(at).is_some());
                    granted += 1;
                }
                Decision::GiveUp(reason) => {
                    assert_eq!(reason, StopReason::LimitReached);
                    break;
                }
            }
            longest = longest.max(r.history.len());
            let sum: u64 = r.history.iter().map(|b| u64::from(b.count)).sum();
            assert_eq!(sum, r.in_history);
        }
        (granted, longest)
    }

    #[test]
    fn the_history_stays_bounded() {
        let year = Duration::from_secs(366 * 24 * 3600);
        let none = Backoff::new(Duration::ZERO, Duration::ZERO).unwrap();
        let cfg = |max_restarts, window| RestartConfig {
            policy: RestartPolicy::Always,
            max_restarts,
            window,
            backoff: none,
            ..RestartConfig::default()
        };
        // Exact: the limit is reached at exactly `max`, keeping `max`.
        for max in [0u32, 1, 7, 1024] {
            let (granted, longest) = fail_fast(&mut Restarter::new(cfg(max, year)), 5_000, ms(1));
            assert_eq!((granted, longest), (u64::from(max), max as usize));
        }
        // A window of a year, a limit nobody reaches, a restart every
        // millisecond: a few buckets, however many restarts.
        let (granted, longest) =
            fail_fast(&mut Restarter::new(cfg(u32::MAX, year)), 200_000, ms(1));
        assert_eq!(granted, 200_000);
        assert!(longest <= 2, "{longest} buckets");
        // A window of 10 s sliding over 200 s of restarts every 1 ms (10,000
        // in each window, under the limit): about 1,024 buckets at most.
        let (granted, longest) = fail_fast(
            &mut Restarter::new(cfg(20_000, Duration::from_secs(10))),
            200_000,
            ms(1),
        );
        assert_eq!(granted, 200_000);
        assert!(longest <= 1026, "{longest} buckets");
        // The same at 30,000 per window: the limit of 20,000 is reached
        // no later than an exact count would, and no more than 1/1024 of the
        // window earlier (10,000 + 10 ms worth of restarts).
        let (granted, longest) = fail_fast(
            &mut Restarter::new(cfg(20_000, Duration::from_secs(10))),
            300_000,
            Duration::from_micros(333),
        );
        assert!((19_960..=20_000).contains(&granted), "{granted}");
        assert!(longest <= 1026, "{longest} buckets");
    }

    #[test]
    fn exit_status_sets_parse_and_match() {
        let set: ExitStatusSet = "0,75  143\tSIGTERM hup".parse().unwrap();
        for code in [0, 75, 143] {
            assert!(set.contains(ExitStatus::Exited(code)), "{code}");
        }
        for code in [1, 15, 255, 256, -1] {
            assert!(!set.contains(ExitStatus::Exited(code)), "{code}");
        }
        let killed = |signal| ExitStatus::Signaled {
            signal,
            core_dumped: false,
        };
        assert!(set.contains(killed(Signal::TERM)));
        assert!(set.contains(killed(Signal::HUP)));
        assert!(!set.contains(killed(Signal::KILL)));
        assert!(!set.contains(ExitStatus::Unknown));
        assert!("".parse::<ExitStatusSet>().unwrap().is_empty());
        let mut all = ExitStatusSet::new();
        all.insert_code(255)
            .insert_signal(Signal::from_raw(64).unwrap());
        assert!(all.contains(ExitStatus::Exited(255)));
        assert!(all.contains(killed(Signal::from_raw(64).unwrap())));
        all.extend(&set);
        assert!(all.contains(ExitStatus::Exited(75)) && !all.is_empty());
        for bad in ["256", "-1", "1.5", "NOPE", "15x", "SIGNOPE"] {
            let e = bad.parse::<ExitStatusSet>().unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn success_and_prevent_sets_classify_exits() {
        let t0 = Instant::now();
        let term = ExitStatus::Signaled {
            signal: Signal::TERM,
            core_dumped: false,
        };
        let mut cfg = config(RestartPolicy::OnFailure, 10, ms(60_000));
        cfg.success_exit_status = "75 TERM".parse().unwrap();
        cfg.prevent_exit_status = "3".parse().unwrap();
        for (status, restarts) in [
            (ExitStatus::Exited(75), false),
            (term, false),
            (ExitStatus::Exited(1), true),
            (ExitStatus::Exited(0), false),
        ] {
            let mut r = Restarter::new(cfg);
            r.started(t0);
            let d = r.on_exit_status(t0, status, 0);
            assert_eq!(
                matches!(d, Decision::Restart { .. }),
                restarts,
                "{status:?}"
            );
        }
        // The prevent set wins over every policy, `always` included.
        cfg.policy = RestartPolicy::Always;
        let mut r = Restarter::new(cfg);
        r.started(t0);
        assert_eq!(
            r.on_exit_status(t0, ExitStatus::Exited(3), 0),
            Decision::GiveUp(StopReason::Prevented)
        );
        assert_eq!(r.done(), Some(StopReason::Prevented));
        // A stop comes first.
        let mut r = Restarter::new(cfg);
        r.started(t0);
        r.stop();
        assert_eq!(
            r.on_exit_status(t0, ExitStatus::Exited(3), 0),
            Decision::GiveUp(StopReason::Stopped)
        );
        // on-abnormal: signals restart, exit codes do not.
        cfg.policy = RestartPolicy::OnAbnormal;
        cfg.success_exit_status = ExitStatusSet::new();
        for (status, restarts) in [
            (ExitStatus::Exited(1), false),
            (ExitStatus::Exited(0), false),
            (term, true),
            (ExitStatus::Unknown, true),
        ] {
            let mut r = Restarter::new(cfg);
            r.started(t0);
            let d = r.on_exit_status(t0, status, 0);
            assert_eq!(
                matches!(d, Decision::Restart { .. }),
                restarts,
                "{status:?}"
            );
        }
    }
}
