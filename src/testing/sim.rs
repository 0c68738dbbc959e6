//! A simulated process table that drives an [`Engine`] and checks its
//! invariants, for property tests and fuzzing.
//!
//! [`run`] turns any byte string into a sequence of events (spawns, stop and
//! kill requests, children exiting on their own, spurious pidfd wake-ups,
//! time passing, stale ids), plays them against an `Engine` and a model of
//! the children, then stops everything and lets time run until every child
//! is reaped. It returns an error naming the first broken invariant:
//!
//! - every child is reaped exactly once, and a second reap of the same id is
//!   refused;
//! - no signal is ever issued for a child after it was reaped, and never for
//!   another child through a stale id;
//! - SIGKILL is issued at the ladder's deadline (the stop time plus the
//!   graces, or the `stop_within` limit), not before and not after;
//! - the ladder's order is kept: the signals a child gets are a prefix of its
//!   rungs, then SIGKILL, then nothing (SIGCONT aside);
//! - a child that survives SIGKILL is reported stuck exactly once, at the
//!   kill timeout;
//! - the engine's count of live children matches the model's.
//!
//! The same function backs the property test, the fuzz target
//! (`fuzz/fuzz_targets/engine.rs`) and the replay of the checked-in corpus.
//!
//! ```
//! let stats = pidreap::testing::sim::run(&[0, 0, 0, 1, 0, 0, 8, 200, 0]).unwrap();
//! assert_eq!(stats.spawned, 1);
//! assert_eq!(stats.reaped, 1);
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::engine::{Action, ChildId, Engine, GroupId, Phase, StopLadder};
use crate::signal::Signal;

/// What happened in one simulated run, for checking that a test exercised
/// what it meant to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Children spawned.
    pub spawned: usize,
    /// Children reaped (equals `spawned` in a passing run).
    pub reaped: usize,
    /// SIGKILLs issued.
    pub kills: usize,
    /// Stuck reports.
    pub stuck: usize,
    /// Signals issued, SIGCONT included.
    pub signals: usize,
    /// Children that exited on their own or on a catchable signal.
    pub graceful: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behavior {
    HonorsTerm,
    IgnoresAll,
    HonorsInt,
    /// Survives SIGKILL (uninterruptible sleep) until the end of the run.
    Unkillable,
    /// Starts stopped (SIGSTOP): acts on signals only after SIGCONT.
    StartsStopped,
}

#[derive(Debug)]
struct Proc {
    id: ChildId,
    behavior: Behavior,
    ladder: StopLadder,
    alive: bool,
    stopped: bool,
    pending: Vec<Signal>,
    /// The pidfd is readable (the child exited) and the shell has not
    /// reaped it yet.
    readable: bool,
    reaped: u32,
    received: Vec<Signal>,
    stop_started: Option<Instant>,
    kill_by: Option<Instant>,
    /// When SIGKILL was scheduled for (not when it was observed).
    killed_at: Option<Instant>,
    stuck_reports: u32,
}

impl Proc {
    /// When SIGKILL is due under the model, if a stop was requested.
    fn kill_due(&self) -> Option<Instant> {
        let by_ladder = self.stop_started.map(|t| t + self.ladder.total_grace());
        match (by_ladder, self.kill_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn ladder(choice: u8) -> StopLadder {
    let ms = Duration::from_millis;
    match choice % 5 {
        0 => StopLadder::new(Signal::TERM, ms(100)),
        1 => StopLadder::new(Signal::INT, ms(50))
            .then(Signal::TERM, ms(200))
            .kill_timeout(ms(300)),
        2 => StopLadder::kill_only().kill_timeout(ms(100)),
        3 => StopLadder::new(Signal::TERM, ms(0)),
        _ => StopLadder::new(Signal::HUP, ms(30))
            .then(Signal::KILL, ms(10))
            .then(Signal::TERM, ms(10)),
    }
}

fn behavior(choice: u8) -> Behavior {
    match choice % 5 {
        0 => Behavior::HonorsTerm,
        1 => Behavior::IgnoresAll,
        2 => Behavior::HonorsInt,
        3 => Behavior::Unkillable,
        _ => Behavior::StartsStopped,
    }
}

struct Sim {
    engine: Engine<usize>,
    procs: Vec<Proc>,
    by_id: HashMap<ChildId, usize>,
    group: GroupId,
    now: Instant,
    stats: Stats,
}

type Check = Result<(), String>;

impl Sim {
    fn new() -> Sim {
        let mut engine = Engine::new();
        let group = engine.new_group();
        Sim {
            engine,
            procs: Vec::new(),
            by_id: HashMap::new(),
            group,
            now: Instant::now(),
            stats: Stats::default(),
        }
    }

    fn pick(&self, byte: u8) -> Option<usize> {
        (!self.procs.is_empty()).then(|| byte as usize % self.procs.len())
    }

    fn spawn(&mut self, b: u8, l: u8, in_group: bool) {
        let ladder = ladder(l);
        let index = self.procs.len();
        let id = self
            .engine
            .insert(index, ladder.clone(), in_group.then_some(self.group));
        let behavior = behavior(b);
        self.by_id.insert(id, index);
        self.procs.push(Proc {
            id,
            behavior,
            ladder,
            alive: true,
            stopped: behavior == Behavior::StartsStopped,
            pending: Vec::new(),
            readable: false,
            reaped: 0,
            received: Vec::new(),
            stop_started: None,
            kill_by: None,
            killed_at: None,
            stuck_reports: 0,
        });
        self.stats.spawned += 1;
    }

    /// A stop request reached the engine for proc `i` at `now`: update the
    /// model the way the documentation says the engine behaves.
    fn model_stop(&mut self, i: usize, within: Option<Duration>) {
        let now = self.now;
        let p = &mut self.procs[i];
        if p.reaped > 0 {
            return;
        }
        if let Some(w) = within {
            let limit = now + w;
            p.kill_by = Some(p.kill_by.map_or(limit, |k| k.min(limit)));
        }
        if p.stop_started.is_none() && p.killed_at.is_none() {
            p.stop_started = Some(now);
        }
    }

    fn deliver(&mut self, i: usize, sig: Signal) {
        let p = &mut self.procs[i];
        if !p.alive {
            return;
        }
        let dies = |b: Behavior, s: Signal| match b {
            Behavior::HonorsTerm | Behavior::StartsStopped => s == Signal::TERM || s == Signal::HUP,
            Behavior::HonorsInt => s == Signal::INT,
            Behavior::IgnoresAll | Behavior::Unkillable => false,
        };
        if sig == Signal::KILL {
            if p.behavior != Behavior::Unkillable {
                p.alive = false;
            }
        } else if sig == Signal::CONT {
            p.stopped = false;
            let pending = std::mem::take(&mut p.pending);
            if pending.iter().any(|&s| dies(p.behavior, s)) {
                p.alive = false;
                self.stats.graceful += 1;
            }
        } else if p.stopped {
            p.pending.push(sig);
        } else if dies(p.behavior, sig) {
            p.alive = false;
            self.stats.graceful += 1;
        }
        let p = &mut self.procs[i];
        if !p.alive {
            p.readable = true;
        }
    }

    /// Executes the engine's actions against the model, checking each.
    fn run_actions(&mut self) -> Check {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Signal { id, signal } => {
                    self.stats.signals += 1;
                    let &i = self
                        .by_id
                        .get(&id)
                        .ok_or(format!("signal {signal} for unknown id {id}"))?;
                    let now = self.now;
                    let p = &mut self.procs[i];
                    if p.reaped > 0 {
                        return Err(format!("{signal} issued for {id} after it was reaped"));
                    }
                    if signal != Signal::CONT {
                        if p.received.last() == Some(&Signal::KILL) {
                            return Err(format!("{signal} issued for {id} after SIGKILL"));
                        }
                        if signal == Signal::KILL {
                            let due = p
                                .kill_due()
                                .ok_or(format!("SIGKILL for {id} with no stop requested"))?;
                            if now < due {
                                return Err(format!(
                                    "SIGKILL for {id} {:?} before its deadline",
                                    due - now
                                ));
                            }
                            p.killed_at = Some(due);
                            self.stats.kills += 1;
                        } else {
                            let k = p.received.len();
                            let expected = p.ladder.steps().get(k).map(|s| s.signal);
                            if expected != Some(signal) {
                                return Err(format!(
                                    "ladder order broken for {id}: rung {k} sent {signal}, ladder says {expected:?}"
                                ));
                            }
                        }
                        p.received.push(signal);
                    }
                    self.deliver(i, signal);
                }
                Action::Stuck { id } => {
                    let &i = self
                        .by_id
                        .get(&id)
                        .ok_or(format!("stuck report for unknown id {id}"))?;
                    let now = self.now;
                    let p = &mut self.procs[i];
                    let killed = p
                        .killed_at
                        .ok_or(format!("{id} reported stuck before SIGKILL"))?;
                    if now < killed + p.ladder.get_kill_timeout() {
                        return Err(format!("{id} reported stuck before the kill timeout"));
                    }
                    if p.reaped > 0 {
                        return Err(format!("{id} reported stuck after it was reaped"));
                    }
                    p.stuck_reports += 1;
                    if p.stuck_reports > 1 {
                        return Err(format!("{id} reported stuck twice"));
                    }
                    self.stats.stuck += 1;
                }
            }
        }
        Ok(())
    }

    /// The shell's reap: on a readable pidfd, `waitid(WNOHANG)`.
    fn try_reap(&mut self, i: usize) -> Check {
        let p = &self.procs[i];
        if p.alive || p.reaped > 0 {
            // Spurious readiness, or a duplicate: "not yet" / nothing to do.
            return Ok(());
        }
        let id = p.id;
        match self.engine.remove(id) {
            Some(index) if index == i => {}
            Some(other) => return Err(format!("reaping {id} returned the data of child {other}")),
            None => return Err(format!("engine refused the first reap of {id}")),
        }
        let p = &mut self.procs[i];
        p.reaped += 1;
        p.readable = false;
        self.stats.reaped += 1;
        Ok(())
    }

    fn reap_readable(&mut self) -> Check {
        for i in 0..self.procs.len() {
            if self.procs[i].readable {
                self.try_reap(i)?;
            }
        }
        Ok(())
    }

    fn advance(&mut self, by: Duration) -> Check {
        self.now += by;
        self.engine.handle_timeout(self.now);
        self.run_actions()?;
        self.check_deadlines()
    }

    /// After a timeout was handled at `now`, nothing due may be outstanding.
    fn check_deadlines(&mut self) -> Check {
        for p in &self.procs {
            if p.reaped > 0 {
                continue;
            }
            if let Some(due) = p.kill_due() {
                if due <= self.now && p.killed_at.is_none() {
                    return Err(format!(
                        "SIGKILL for {} was due {:?} ago and not issued",
                        p.id,
                        self.now - due
                    ));
                }
            }
            if let Some(k) = p.killed_at {
                if k + p.ladder.get_kill_timeout() <= self.now && p.stuck_reports == 0 {
                    return Err(format!(
                        "{} is past its kill timeout and was not reported stuck",
                        p.id
                    ));
                }
            }
        }
        let live = self.procs.iter().filter(|p| p.reaped == 0).count();
        if live != self.engine.len() {
            return Err(format!(
                "engine counts {} live children, model {live}",
                self.engine.len()
            ));
        }
        Ok(())
    }

    fn step(&mut self, op: u8, a: u8, b: u8) -> Check {
        match op % 10 {
            0 => self.spawn(a, b, b & 0x80 != 0),
            1 => {
                if let Some(i) = self.pick(a) {
                    let id = self.procs[i].id;
                    if self.engine.stop(id, self.now) {
                        self.model_stop(i, None);
                    }
                }
            }
            2 => {
                if let Some(i) = self.pick(a) {
                    let id = self.procs[i].id;
                    let within = Duration::from_millis(u64::from(b) * 3);
                    if self.engine.stop_within(id, self.now, within) {
                        self.model_stop(i, Some(within));
                    }
                }
            }
            3 => {
                if let Some(i) = self.pick(a) {
                    let id = self.procs[i].id;
                    if self.engine.kill(id, self.now) {
                        let p = &mut self.procs[i];
                        p.kill_by = Some(self.now);
                        if p.stop_started.is_none() {
                            p.stop_started = Some(self.now);
                        }
                    }
                }
            }
            4 => {
                self.engine.stop_all(self.now);
                for i in 0..self.procs.len() {
                    self.model_stop(i, None);
                }
            }
            5 => {
                self.engine.stop_group(self.group, self.now);
                for i in 0..self.procs.len() {
                    if self.engine.group(self.procs[i].id) == Some(self.group) {
                        self.model_stop(i, None);
                    }
                }
            }
            6 => {
                if let Some(i) = self.pick(a) {
                    let p = &mut self.procs[i];
                    if p.alive && !p.stopped && p.behavior != Behavior::Unkillable {
                        p.alive = false;
                        p.readable = true;
                        self.stats.graceful += 1;
                    }
                }
            }
            7 => {
                if let Some(i) = self.pick(a) {
                    self.try_reap(i)?;
                }
            }
            8 => {
                self.reap_readable()?;
                self.advance(Duration::from_millis(u64::from(a) * 7 + u64::from(b % 8)))?;
            }
            _ => {
                if let Some(i) = self.pick(a) {
                    let p = &self.procs[i];
                    if p.reaped > 0 && self.engine.remove(p.id).is_some() {
                        return Err(format!("{} was reaped a second time", p.id));
                    }
                }
            }
        }
        self.run_actions()
    }

    /// Stops everything and lets time run until every child is reaped.
    fn finish(&mut self) -> Check {
        self.engine.stop_all(self.now);
        for i in 0..self.procs.len() {
            self.model_stop(i, None);
        }
        self.run_actions()?;
        for _ in 0..10_000 {
            self.reap_readable()?;
            if self.engine.is_empty() {
                break;
            }
            match self.engine.poll_timeout() {
                Some(t) => {
                    let by = t.saturating_duration_since(self.now);
                    self.advance(by)?;
                }
                None => {
                    // Only stuck children are left: let them die at last.
                    for i in 0..self.procs.len() {
                        let p = &mut self.procs[i];
                        if p.reaped == 0 {
                            if self.engine.phase(p.id) != Some(Phase::Stuck) {
                                return Err(format!(
                                    "{} is live, not stuck, and has no deadline",
                                    p.id
                                ));
                            }
                            p.alive = false;
                            p.readable = true;
                        }
                    }
                }
            }
        }
        for p in &self.procs {
            if p.reaped != 1 {
                return Err(format!("{} was reaped {} times", p.id, p.reaped));
            }
        }
        if !self.engine.is_empty() {
            return Err(format!("{} children left in the engine", self.engine.len()));
        }
        Ok(())
    }
}

/// Plays `data` as a sequence of three-byte events against an engine and
/// checks every invariant listed in the [module docs](self). At most 4,096
/// events are played, so that any input finishes quickly.
pub fn run(data: &[u8]) -> Result<Stats, String> {
    let mut sim = Sim::new();
    for chunk in data.chunks(3).take(4096) {
        let (op, a, b) = (
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        );
        sim.step(op, a, b)?;
    }
    sim.finish()?;
    Ok(sim.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_is_fine() {
        assert_eq!(run(&[]).unwrap(), Stats::default());
    }

    #[test]
    fn an_unkillable_child_is_reported_stuck_once() {
        // spawn(behavior 3 = unkillable, ladder 2 = kill only), then finish.
        let stats = run(&[0, 3, 2]).unwrap();
        assert_eq!((stats.kills, stats.stuck, stats.reaped), (1, 1, 1));
    }

    #[test]
    fn a_term_honouring_child_exits_gracefully() {
        let stats = run(&[0, 0, 0]).unwrap();
        assert_eq!((stats.kills, stats.graceful, stats.reaped), (0, 1, 1));
    }

    #[test]
    fn a_stopped_child_is_continued_and_acts_on_term() {
        let stats = run(&[0, 4, 0]).unwrap();
        assert_eq!((stats.kills, stats.graceful), (0, 1));
    }
}
