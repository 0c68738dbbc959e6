//! The sans-IO core: per-child stop state machines and a deadline queue.
//!
//! The [`Engine`] decides *what* to do (which signal next, when to SIGKILL,
//! when to declare a child stuck); the [`Reaper`](crate::Reaper) does it. The
//! engine makes no system calls and reads no clock: every input carries the
//! current [`Instant`], [`Engine::poll_timeout`] says when it next wants to be
//! woken, and [`Engine::poll_action`] drains what it wants done. This makes
//! it deterministic, so it is tested with random event sequences
//! (`pidreap::testing::sim`, feature `testing`) and fuzzed.
//!
//! # Kinds of methods, and the order to call them
//!
//! The [`Engine`] has three kinds of methods:
//!
//! - **inputs**, which take the current `Instant` and change state:
//!   [`insert`](Engine::insert) (a child was spawned),
//!   [`stop`](Engine::stop), [`stop_within`](Engine::stop_within),
//!   [`kill`](Engine::kill), [`stop_group`](Engine::stop_group),
//!   [`stop_all`](Engine::stop_all) (someone asked for a stop),
//!   [`handle_timeout`](Engine::handle_timeout) (time passed), and
//!   [`remove`](Engine::remove) (the child was reaped);
//! - **outputs**, which drain what the inputs decided:
//!   [`poll_action`](Engine::poll_action) (signals to send, children to
//!   report as stuck) and [`poll_timeout`](Engine::poll_timeout) (when to
//!   call `handle_timeout` next);
//! - **queries**, which change nothing: [`get`](Engine::get),
//!   [`phase`](Engine::phase), [`ladder`](Engine::ladder),
//!   [`len`](Engine::len), [`ids`](Engine::ids), ...
//!
//! A shell's loop is then:
//!
//! 1. wait for a kernel event or until [`poll_timeout`](Engine::poll_timeout);
//! 2. feed what happened: [`remove`](Engine::remove) for each child reaped,
//!    the stop requests, then [`handle_timeout`](Engine::handle_timeout)
//!    with the current time;
//! 3. drain [`poll_action`](Engine::poll_action) until `None`, carrying out
//!    each action, and go back to 1.
//!
//! Actions are only produced by inputs, so draining after each batch of
//! inputs is enough; an action for a child that was removed meanwhile is
//! dropped by `remove` itself, so no signal ever reaches a reaped child.
//! The [`Restarter`] follows the same pattern for restarts (its own
//! documentation gives its order).
//!
//! Runtimes that bring their own event loop can drive an `Engine` directly:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use pidreap::engine::{Action, Engine};
//! use pidreap::{Signal, StopLadder};
//!
//! let mut engine = Engine::new();
//! let t0 = Instant::now();
//! let id = engine.insert("worker", StopLadder::new(Signal::TERM, Duration::from_secs(2)), None);
//!
//! engine.stop(id, t0);
//! assert_eq!(engine.poll_action(), Some(Action::Signal { id, signal: Signal::TERM }));
//! assert_eq!(engine.poll_action(), Some(Action::Signal { id, signal: Signal::CONT }));
//! assert_eq!(engine.poll_timeout(), Some(t0 + Duration::from_secs(2)));
//!
//! engine.handle_timeout(t0 + Duration::from_secs(2));
//! assert_eq!(engine.poll_action(), Some(Action::Signal { id, signal: Signal::KILL }));
//!
//! // The shell reaped it: the engine forgets it, and will never signal it again.
//! assert_eq!(engine.remove(id), Some("worker"));
//! assert_eq!(engine.poll_timeout(), None);
//! ```

#![forbid(unsafe_code)]

pub(crate) mod id;
pub(crate) mod ladder;
mod restart;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

pub use restart::{
    Backoff, Decision, ExitKind, ExitStatusSet, ParseExitStatusSetError, ParsePolicyError,
    RestartConfig, RestartPolicy, Restarter, StopReason,
};

pub(crate) use id::{ChildId, GroupId};
pub(crate) use ladder::StopLadder;

use crate::signal::Signal;

/// Something the engine wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send `signal` to the child (through its pidfd).
    Signal {
        /// Which child.
        id: ChildId,
        /// What to send.
        signal: Signal,
    },
    /// The child was sent SIGKILL and is still there after the ladder's
    /// kill timeout. Report it; it stays supervised and is reaped if it ever
    /// exits.
    Stuck {
        /// Which child.
        id: ChildId,
    },
}

/// Where a child is on its stop ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Running; no stop requested.
    Running,
    /// Rung `step` of the ladder was sent; waiting for its grace to end.
    Stopping {
        /// The index of the rung last sent.
        step: usize,
    },
    /// SIGKILL was sent.
    Killed,
    /// SIGKILL was sent and the child is still there after the kill timeout.
    Stuck,
}

#[derive(Debug)]
struct Entry<T> {
    phase: Phase,
    /// When the current phase ends (the next rung, or "stuck").
    deadline: Option<Instant>,
    /// SIGKILL no later than this (set by [`Engine::stop_within`]).
    kill_by: Option<Instant>,
    /// Bumped on every reschedule; timer-queue items carry it, so stale
    /// items are skipped without searching the heap.
    timer_seq: u32,
    ladder: Arc<StopLadder>,
    group: Option<GroupId>,
    data: T,
}

#[derive(Debug)]
struct Cell<T> {
    generation: u32,
    entry: Option<Entry<T>>,
}

/// A deadline in the queue: (when, slot index, generation, timer_seq).
type TimerItem = Reverse<(Instant, u32, u32, u32)>;

/// The per-child state machines and their deadline queue. `T` is whatever
/// the caller keeps per child (the [`Reaper`](crate::Reaper) keeps the
/// pidfd); the engine never looks at it.
///
/// Every operation is O(1) or O(log n) in the number of children, except
/// [`stop_all`](Engine::stop_all) and [`stop_group`](Engine::stop_group),
/// which visit each child once.
#[derive(Debug)]
pub struct Engine<T> {
    slots: Vec<Cell<T>>,
    free: Vec<u32>,
    len: usize,
    timers: BinaryHeap<TimerItem>,
    actions: VecDeque<Action>,
    next_group: u32,
}

impl<T> Default for Engine<T> {
    fn default() -> Self {
        Engine::new()
    }
}

impl<T> Engine<T> {
    /// An engine with no children.
    pub fn new() -> Engine<T> {
        Engine {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            timers: BinaryHeap::new(),
            actions: VecDeque::new(),
            next_group: 0,
        }
    }

    /// Adds a running child with its stop ladder. Returns its id.
    pub fn insert(
        &mut self,
        data: T,
        ladder: impl Into<Arc<StopLadder>>,
        group: Option<GroupId>,
    ) -> ChildId {
        let entry = Entry {
            phase: Phase::Running,
            deadline: None,
            kill_by: None,
            timer_seq: 0,
            ladder: ladder.into(),
            group,
            data,
        };
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.entry = Some(entry);
            ChildId {
                index,
                generation: slot.generation,
            }
        } else {
            let index = u32::try_from(self.slots.len()).expect("more than 2^32 children");
            self.slots.push(Cell {
                generation: 0,
                entry: Some(entry),
            });
            ChildId {
                index,
                generation: 0,
            }
        }
    }

    /// A new group id, for [`insert`](Engine::insert) and
    /// [`stop_group`](Engine::stop_group).
    pub fn new_group(&mut self) -> GroupId {
        self.next_group += 1;
        GroupId(self.next_group)
    }

    fn entry(&self, id: ChildId) -> Option<&Entry<T>> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    fn entry_mut(&mut self, id: ChildId) -> Option<&mut Entry<T>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// The id of the live child in slot `index`, if any.
    pub fn id_at(&self, index: u32) -> Option<ChildId> {
        let slot = self.slots.get(index as usize)?;
        slot.entry.as_ref().map(|_| ChildId {
            index,
            generation: slot.generation,
        })
    }

    /// The caller's data for a live child.
    pub fn get(&self, id: ChildId) -> Option<&T> {
        self.entry(id).map(|e| &e.data)
    }

    /// The caller's data for a live child, mutably.
    pub fn get_mut(&mut self, id: ChildId) -> Option<&mut T> {
        self.entry_mut(id).map(|e| &mut e.data)
    }

    /// Where the child is on its ladder, if it is live.
    pub fn phase(&self, id: ChildId) -> Option<Phase> {
        self.entry(id).map(|e| e.phase)
    }

    /// The child's group.
    pub fn group(&self, id: ChildId) -> Option<GroupId> {
        self.entry(id).and_then(|e| e.group)
    }

    /// The child's ladder.
    pub fn ladder(&self, id: ChildId) -> Option<&StopLadder> {
        self.entry(id).map(|e| &*e.ladder)
    }

    /// The number of live (unreaped) children.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no child is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids of all live children.
    pub fn ids(&self) -> impl Iterator<Item = ChildId> + '_ {
        self.iter_entries().map(|(id, _)| id)
    }

    /// The ids and data of all live children.
    pub fn iter(&self) -> impl Iterator<Item = (ChildId, &T)> + '_ {
        self.iter_entries().map(|(id, e)| (id, &e.data))
    }

    /// The child was reaped (or abandoned): forget it and return its data. Returns `None`
    /// for an id that names no live child (a second report of the same reap
    /// included). Nothing is ever sent to this id again.
    pub fn remove(&mut self, id: ChildId) -> Option<T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        self.actions.retain(|a| match a {
            Action::Signal { id: target, .. } | Action::Stuck { id: target } => *target != id,
        });
        Some(entry.data)
    }

    /// Starts the child's stop ladder at `now`. Returns false if the child is
    /// not live or is already stopping.
    pub fn stop(&mut self, id: ChildId, now: Instant) -> bool {
        match self.phase(id) {
            Some(Phase::Running) => {
                self.enter_step(id, 0, now);
                true
            }
            _ => false,
        }
    }

    /// Like [`stop`](Engine::stop), but SIGKILL comes no later than
    /// `now + within`, whatever the ladder says. Also shortens a ladder
    /// already under way. A `within` too large for an `Instant` (such as
    /// `Duration::MAX`) sets no limit. Returns false if the child is not
    /// live.
    pub fn stop_within(&mut self, id: ChildId, now: Instant, within: std::time::Duration) -> bool {
        let limit = now.checked_add(within);
        let Some(entry) = self.entry_mut(id) else {
            return false;
        };
        if let Some(limit) = limit {
            entry.kill_by = Some(entry.kill_by.map_or(limit, |k| k.min(limit)));
        }
        let (phase, deadline) = (entry.phase, entry.deadline);
        match phase {
            Phase::Running => self.enter_step(id, 0, now),
            Phase::Stopping { .. } => {
                // No deadline: this rung's grace is unbounded.
                if let Some(limit) = limit.filter(|&l| deadline.is_none_or(|d| d > l)) {
                    self.schedule(id, limit);
                }
            }
            Phase::Killed | Phase::Stuck => {}
        }
        true
    }

    /// Sends SIGKILL now, skipping what is left of the ladder. Returns false
    /// if the child is not live or was already sent SIGKILL.
    pub fn kill(&mut self, id: ChildId, now: Instant) -> bool {
        match self.phase(id) {
            Some(Phase::Running | Phase::Stopping { .. }) => {
                self.enter_kill(id, now);
                true
            }
            _ => false,
        }
    }

    /// Starts the ladder of every running child in `group`. Returns how many.
    pub fn stop_group(&mut self, group: GroupId, now: Instant) -> usize {
        let ids: Vec<ChildId> = self
            .iter_entries()
            .filter(|(_, e)| e.group == Some(group))
            .map(|(id, _)| id)
            .collect();
        ids.into_iter().filter(|&id| self.stop(id, now)).count()
    }

    /// Starts the ladder of every running child. Returns how many.
    pub fn stop_all(&mut self, now: Instant) -> usize {
        let ids: Vec<ChildId> = self.ids().collect();
        ids.into_iter().filter(|&id| self.stop(id, now)).count()
    }

    fn iter_entries(&self) -> impl Iterator<Item = (ChildId, &Entry<T>)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|e| {
                (
                    ChildId {
                        index: i as u32,
                        generation: s.generation,
                    },
                    e,
                )
            })
        })
    }

    /// Processes every deadline that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, index, generation, seq))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let id = ChildId { index, generation };
            let Some(entry) = self.entry(id) else {
                continue;
            };
            if entry.timer_seq != seq || entry.deadline != Some(at) {
                continue;
            }
            self.deadline_passed(id, at);
        }
    }

    /// The earliest pending deadline: call
    /// [`handle_timeout`](Engine::handle_timeout) then. `None` when nothing
    /// is pending, so the caller can sleep with no timeout.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, index, generation, seq))) = self.timers.peek() {
            let id = ChildId { index, generation };
            match self.entry(id) {
                Some(e) if e.timer_seq == seq && e.deadline == Some(at) => return Some(at),
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// A deadline of `id`'s, scheduled for `at`, has passed.
    fn deadline_passed(&mut self, id: ChildId, at: Instant) {
        let Some(entry) = self.entry(id) else { return };
        match entry.phase {
            Phase::Stopping { step } => {
                let cut = entry.kill_by.is_some_and(|k| at >= k);
                if cut || step + 1 >= entry.ladder.steps().len() {
                    self.enter_kill(id, at);
                } else {
                    self.enter_step(id, step + 1, at);
                }
            }
            Phase::Killed => {
                let entry = self.entry_mut(id).expect("checked above");
                entry.phase = Phase::Stuck;
                entry.deadline = None;
                self.actions.push_back(Action::Stuck { id });
            }
            Phase::Running | Phase::Stuck => {}
        }
    }

    /// Sends rung `step` at `at` and schedules its end.
    fn enter_step(&mut self, id: ChildId, step: usize, at: Instant) {
        let entry = self.entry(id).expect("live child");
        let Some(&rung) = entry.ladder.steps().get(step) else {
            return self.enter_kill(id, at);
        };
        if rung.signal == Signal::KILL {
            return self.enter_kill(id, at);
        }
        // A grace too large for an `Instant` never ends (unless capped).
        let mut end = at.checked_add(rung.grace);
        if let Some(k) = entry.kill_by {
            end = Some(end.map_or(k, |e| e.min(k)));
        }
        self.actions.push_back(Action::Signal {
            id,
            signal: rung.signal,
        });
        if rung.signal != Signal::CONT {
            self.actions.push_back(Action::Signal {
                id,
                signal: Signal::CONT,
            });
        }
        self.entry_mut(id).expect("live child").phase = Phase::Stopping { step };
        self.schedule_or_clear(id, end);
    }

    /// Sends SIGKILL at `at` and schedules the stuck report.
    fn enter_kill(&mut self, id: ChildId, at: Instant) {
        let entry = self.entry_mut(id).expect("live child");
        entry.phase = Phase::Killed;
        let stuck_at = at.checked_add(entry.ladder.get_kill_timeout());
        self.actions.push_back(Action::Signal {
            id,
            signal: Signal::KILL,
        });
        self.schedule_or_clear(id, stuck_at);
    }

    /// Schedules the end of the current phase, or, for a deadline too far
    /// away to represent, drops the previous one: that phase never ends by
    /// itself.
    fn schedule_or_clear(&mut self, id: ChildId, at: Option<Instant>) {
        match at {
            Some(at) => self.schedule(id, at),
            None => {
                // Items already queued no longer match, and are skipped.
                self.entry_mut(id).expect("live child").deadline = None;
            }
        }
    }

    fn schedule(&mut self, id: ChildId, at: Instant) {
        let entry = self.entry_mut(id).expect("live child");
        entry.timer_seq = entry.timer_seq.wrapping_add(1);
        entry.deadline = Some(at);
        let seq = entry.timer_seq;
        self.timers
            .push(Reverse((at, id.index, id.generation, seq)));
        // Lazy deletion leaves stale items behind; rebuild when they
        // dominate, so the heap stays O(live deadlines).
        if self.timers.len() > 64 && self.timers.len() > 4 * self.len {
            self.compact_timers();
        }
    }

    fn compact_timers(&mut self) {
        let items = std::mem::take(&mut self.timers).into_vec();
        let slots = &self.slots;
        self.timers = items
            .into_iter()
            .filter(|Reverse((at, index, generation, seq))| {
                slots.get(*index as usize).is_some_and(|s| {
                    s.generation == *generation
                        && s.entry
                            .as_ref()
                            .is_some_and(|e| e.timer_seq == *seq && e.deadline == Some(*at))
                })
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn drain<T>(e: &mut Engine<T>) -> Vec<Action> {
        std::iter::from_fn(|| e.poll_action()).collect()
    }

    #[test]
    fn ladder_runs_in_order_then_stuck() {
        let t0 = Instant::now();
        let mut e = Engine::new();
        let ladder = StopLadder::new(Signal::INT, secs(1))
            .then(Signal::TERM, secs(2))
            .kill_timeout(secs(3));
        let id = e.insert((), ladder, None);
        assert!(e.stop(id, t0));
        assert!(!e.stop(id, t0), "a second stop is a no-op");
        assert_eq!(
            drain(&mut e),
            vec![
                Action::Signal {
                    id,
                    signal: Signal::INT
                },
                Action::Signal {
                    id,
                    signal: Signal::CONT
                }
            ]
        );
        e.handle_timeout(t0 + Duration::from_millis(999));
        assert!(drain(&mut e).is_empty(), "nothing before the grace ends");
        e.handle_timeout(t0 + secs(1));
        assert_eq!(
            drain(&mut e),
            vec![
                Action::Signal {
                    id,
                    signal: Signal::TERM
                },
                Action::Signal {
                    id,
                    signal: Signal::CONT
                }
            ]
        );
        assert_eq!(e.poll_timeout(), Some(t0 + secs(3)));
        e.handle_timeout(t0 + secs(3));
        assert_eq!(
            drain(&mut e),
            vec![Action::Signal {
                id,
                signal: Signal::KILL
            }]
        );
        assert_eq!(e.phase(id), Some(Phase::Killed));
        e.handle_timeout(t0 + secs(6));
        assert_eq!(drain(&mut e), vec![Action::Stuck { id }]);
        assert_eq!(e.poll_timeout(), None);
        assert_eq!(e.remove(id), Some(()));
        assert_eq!(e.remove(id), None);
        assert!(e.is_empty());
    }

    #[test]
    fn late_wakeup_chains_from_deadlines_not_from_now() {
        let t0 = Instant::now();
        let mut e = Engine::new();
        let id = e.insert(
            (),
            StopLadder::new(Signal::TERM, secs(1)).then(Signal::INT, secs(1)),
            None,
        );
        e.stop(id, t0);
        drain(&mut e);
        // The loop wakes 5 s late: both remaining rungs happen now, in order.
        e.handle_timeout(t0 + secs(5));
        let sent: Vec<Signal> = drain(&mut e)
            .into_iter()
            .filter_map(|a| match a {
                Action::Signal { signal, .. } if signal != Signal::CONT => Some(signal),
                _ => None,
            })
            .collect();
        assert_eq!(sent, vec![Signal::INT, Signal::KILL]);
        // Stuck is due kill_timeout after the scheduled kill (t0 + 2 s).
        assert_eq!(
            e.poll_timeout(),
            Some(t0 + secs(2) + StopLadder::DEFAULT_KILL_TIMEOUT)
        );
    }

    #[test]
    fn stop_within_caps_the_ladder() {
        let t0 = Instant::now();
        let mut e = Engine::new();
        let id = e.insert((), StopLadder::new(Signal::TERM, secs(30)), None);
        e.stop(id, t0);
        drain(&mut e);
        e.stop_within(id, t0 + secs(1), secs(2));
        assert_eq!(e.poll_timeout(), Some(t0 + secs(3)));
        e.handle_timeout(t0 + secs(3));
        assert_eq!(
            drain(&mut e),
            vec![Action::Signal {
                id,
                signal: Signal::KILL
            }]
        );
    }

    #[test]
    fn reaped_child_is_never_signalled_and_its_slot_gets_a_new_id() {
        let t0 = Instant::now();
        let mut e = Engine::new();
        let a = e.insert(1, StopLadder::default(), None);
        e.stop(a, t0);
        assert_eq!(e.remove(a), Some(1));
        assert!(
            drain(&mut e).is_empty(),
            "queued signals for a reaped child are dropped"
        );
        let b = e.insert(2, StopLadder::default(), None);
        assert_eq!(a.index(), b.index());
        assert_ne!(a, b);
        assert!(!e.stop(a, t0), "a stale id names nobody");
        assert!(!e.kill(a, t0));
        e.handle_timeout(t0 + secs(100));
        assert!(drain(&mut e).is_empty());
        assert_eq!(e.get(b), Some(&2));
    }

    #[test]
    fn groups_and_stop_all() {
        let t0 = Instant::now();
        let mut e = Engine::new();
        let g = e.new_group();
        let a = e.insert((), StopLadder::kill_only(), Some(g));
        let b = e.insert((), StopLadder::kill_only(), None);
        assert_eq!(e.stop_group(g, t0), 1);
        assert_eq!(
            drain(&mut e),
            vec![Action::Signal {
                id: a,
                signal: Signal::KILL
            }]
        );
        assert_eq!(e.stop_all(t0), 1);
        assert_eq!(
            drain(&mut e),
            vec![Action::Signal {
                id: b,
                signal: Signal::KILL
            }]
        );
    }

    #[test]
    fn stale_timers_are_compacted() {
        let t0 = Instant::now();
        let mut e = Engine::new();
        let id = e.insert((), StopLadder::new(Signal::TERM, secs(100)), None);
        e.stop(id, t0);
        for i in 0..1000 {
            e.stop_within(id, t0, secs(99) - Duration::from_millis(i));
        }
        assert!(
            e.timers.len() <= 65,
            "heap holds {} items for one child",
            e.timers.len()
        );
        assert_eq!(
            e.poll_timeout(),
            Some(t0 + secs(99) - Duration::from_millis(999))
        );
    }
}
