//! Property tests for the sans-IO core (`pidreap::engine`).
//!
//! Two layers:
//!
//! - through `engine::sim::run`, which plays bytes as events against an
//!   engine and a model of child processes and checks its invariants: on
//!   arbitrary bytes, and on structured op sequences encoded to bytes (so a
//!   failure shrinks to a readable list of ops);
//! - directly on `Engine`, with small reference models written here,
//!   independently of sim.rs: ladder timing, `stop_within`, stale ids after
//!   slot reuse, and `poll_timeout` against what `handle_timeout` does.
//!
//! A deterministic coverage test checks that the generated cases do reach
//! kills, stuck reports and graceful exits, so the properties cannot pass
//! vacuously.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use pidreap::engine::{Action, Engine, Phase};
use pidreap::testing::sim::{self, Stats};
use pidreap::ChildId;
use pidreap::{Signal, StopLadder};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// Structured op sequences for sim::run.

/// One event of `sim::run`, decoded. `encode` writes the three bytes that
/// `sim::run` decodes back into this event.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// behavior 0..5 (term, ignores all, int, unkillable, starts stopped),
    /// ladder 0..5 (see sim.rs), and whether it joins the group.
    Spawn {
        behavior: u8,
        ladder: u8,
        group: bool,
    },
    Stop(u8),
    /// child, `within` in units of 3 ms.
    StopWithin(u8, u8),
    Kill(u8),
    StopAll,
    StopGroup,
    /// The child exits on its own (if it can).
    Exit(u8),
    /// A pidfd wake-up for the child: reaps it if it has exited.
    Reap(u8),
    /// Reap what is readable, then let time pass: a * 7 ms + b % 8 ms.
    Advance(u8, u8),
    /// Tries to reap an already reaped child again.
    Rereap(u8),
}

impl Op {
    fn encode(self, out: &mut Vec<u8>) {
        let bytes = match self {
            // The ladder is chosen by `b % 5` and the group by `b & 0x80`:
            // 130 is 0x82, which is 0 mod 5.
            Op::Spawn {
                behavior,
                ladder,
                group,
            } => [0, behavior, ladder % 5 + if group { 130 } else { 0 }],
            Op::Stop(i) => [1, i, 0],
            Op::StopWithin(i, w) => [2, i, w],
            Op::Kill(i) => [3, i, 0],
            Op::StopAll => [4, 0, 0],
            Op::StopGroup => [5, 0, 0],
            Op::Exit(i) => [6, i, 0],
            Op::Reap(i) => [7, i, 0],
            Op::Advance(a, b) => [8, a, b],
            Op::Rereap(i) => [9, i, 0],
        };
        out.extend_from_slice(&bytes);
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..5, 0u8..5, any::<bool>()).prop_map(|(behavior, ladder, group)| Op::Spawn { behavior, ladder, group }),
        2 => any::<u8>().prop_map(Op::Stop),
        2 => (any::<u8>(), 0u8..120).prop_map(|(i, w)| Op::StopWithin(i, w)),
        1 => any::<u8>().prop_map(Op::Kill),
        1 => Just(Op::StopAll),
        1 => Just(Op::StopGroup),
        2 => any::<u8>().prop_map(Op::Exit),
        2 => any::<u8>().prop_map(Op::Reap),
        // Mostly short steps, so that deadlines are hit and straddled.
        3 => (0u8..20, any::<u8>()).prop_map(|(a, b)| Op::Advance(a, b)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Advance(a, b)),
        1 => any::<u8>().prop_map(Op::Rereap),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 0..80)
}

fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ops.len() * 3);
    for op in ops {
        op.encode(&mut out);
    }
    out
}

fn check_stats(stats: &Stats) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        stats.reaped,
        stats.spawned,
        "every child reaped exactly once"
    );
    prop_assert!(stats.signals >= stats.kills, "a SIGKILL is a signal");
    prop_assert!(
        stats.stuck <= stats.kills,
        "only a SIGKILLed child can be stuck"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn sim_accepts_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let stats = sim::run(&data).map_err(TestCaseError::fail)?;
        check_stats(&stats)?;
    }

    #[test]
    fn sim_accepts_structured_ops(ops in ops()) {
        let stats = sim::run(&encode(&ops)).map_err(TestCaseError::fail)?;
        let spawns = ops.iter().filter(|op| matches!(op, Op::Spawn { .. })).count();
        prop_assert_eq!(stats.spawned, spawns, "the encoding spawns what it says");
        check_stats(&stats)?;
    }
}

/// Runs `n` deterministic cases of `strategy` through `sim::run` and sums
/// the stats.
fn sum_stats<S: Strategy>(strategy: S, n: usize, to_bytes: impl Fn(&S::Value) -> Vec<u8>) -> Stats {
    let mut runner =
        TestRunner::new_with_rng(config(1), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let mut total = Stats::default();
    for _ in 0..n {
        let value = strategy.new_tree(&mut runner).expect("strategy").current();
        let stats = sim::run(&to_bytes(&value)).unwrap_or_else(|e| panic!("sim::run failed: {e}"));
        total.spawned += stats.spawned;
        total.reaped += stats.reaped;
        total.kills += stats.kills;
        total.stuck += stats.stuck;
        total.signals += stats.signals;
        total.graceful += stats.graceful;
    }
    total
}

#[test]
fn generated_cases_reach_kills_stuck_and_graceful_exits() {
    for (name, total) in [
        ("structured", sum_stats(ops(), 300, |ops| encode(ops))),
        (
            "bytes",
            sum_stats(prop::collection::vec(any::<u8>(), 0..600), 300, |v| {
                v.clone()
            }),
        ),
    ] {
        eprintln!("{name}: {total:?}");
        assert_eq!(total.reaped, total.spawned, "{name}");
        // Enough of each that the properties above exercise every path.
        assert!(
            total.spawned >= 300,
            "{name}: only {} children spawned",
            total.spawned
        );
        assert!(total.kills >= 30, "{name}: only {} SIGKILLs", total.kills);
        assert!(
            total.stuck >= 10,
            "{name}: only {} stuck reports",
            total.stuck
        );
        assert!(
            total.graceful >= 30,
            "{name}: only {} graceful exits",
            total.graceful
        );
        assert!(total.signals > total.kills, "{name}: no signal but SIGKILL");
    }
}

// ---------------------------------------------------------------------------
// Direct properties on Engine, with reference models written here.

const RUNG_SIGNALS: [Signal; 6] = [
    Signal::TERM,
    Signal::INT,
    Signal::HUP,
    Signal::QUIT,
    Signal::USR1,
    Signal::USR2,
];

/// A random ladder: up to four rungs (no SIGKILL or SIGCONT rung), graces
/// up to 400 ms (zero included), kill timeout up to 600 ms.
fn ladder() -> impl Strategy<Value = StopLadder> {
    let rung = (0..RUNG_SIGNALS.len(), prop_oneof![Just(0u64), 0u64..400]);
    (prop::collection::vec(rung, 0..5), 0u64..600).prop_map(|(rungs, kt)| {
        let mut l = StopLadder::kill_only().kill_timeout(ms(kt));
        for (s, g) in rungs {
            l = l.then(RUNG_SIGNALS[s], ms(g));
        }
        l
    })
}

fn drain<T>(e: &mut Engine<T>) -> Vec<Action> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

/// The calls made on a one-child engine and the actions each produced.
#[derive(Debug, Default)]
struct Trace {
    /// (time, whether it was a `handle_timeout`, as opposed to a request).
    calls: Vec<(Instant, bool)>,
    /// (index into `calls`, action), in order.
    events: Vec<(usize, Action)>,
}

impl Trace {
    fn record(&mut self, now: Instant, handle: bool, actions: Vec<Action>) -> usize {
        let call = self.calls.len();
        self.calls.push((now, handle));
        self.events.extend(actions.into_iter().map(|a| (call, a)));
        call
    }

    /// Signals other than SIGCONT, with the call that produced them.
    fn signals(&self) -> Vec<(usize, Signal)> {
        self.events
            .iter()
            .filter_map(|&(c, a)| match a {
                Action::Signal { signal, .. } if signal != Signal::CONT => Some((c, signal)),
                _ => None,
            })
            .collect()
    }

    fn stuck_calls(&self) -> Vec<usize> {
        self.events
            .iter()
            .filter_map(|&(c, a)| matches!(a, Action::Stuck { .. }).then_some(c))
            .collect()
    }

    /// The first `handle_timeout` call, from call `from` on, whose time is
    /// at or after `due`: when something due then must happen.
    fn first_handle(&self, from: usize, due: Instant) -> Option<usize> {
        (from..self.calls.len()).find(|&c| self.calls[c].1 && self.calls[c].0 >= due)
    }

    /// Every rung signal is immediately followed by SIGCONT (so a stopped child can act on it);
    /// SIGKILL is not.
    fn check_cont(&self) -> Result<(), TestCaseError> {
        for (k, &(_, a)) in self.events.iter().enumerate() {
            if let Action::Signal { signal, .. } = a {
                let next = self.events.get(k + 1).map(|&(_, a)| a);
                let cont_next = matches!(
                    next,
                    Some(Action::Signal {
                        signal: Signal::CONT,
                        ..
                    })
                );
                if signal == Signal::KILL {
                    prop_assert!(!cont_next, "SIGCONT after SIGKILL: {:?}", self.events);
                } else if signal != Signal::CONT {
                    prop_assert!(
                        cont_next,
                        "{} not followed by SIGCONT: {:?}",
                        signal,
                        self.events
                    );
                }
            }
        }
        Ok(())
    }
}

/// When each rung is due: rung 0 at the stop request, rung k at the end of
/// rung k-1's grace; the last entry is when SIGKILL is due.
fn rung_dues(ladder: &StopLadder, start: Instant) -> Vec<Instant> {
    let mut dues = vec![start];
    let mut acc = start;
    for s in ladder.steps() {
        acc += s.grace;
        dues.push(acc);
    }
    dues
}

fn time_steps() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(prop_oneof![Just(0u64), 1u64..50, 50u64..700], 1..60)
}

proptest! {
    #![proptest_config(config(1000))]

    /// One child, one stop, time advancing in random steps: each rung is
    /// sent at the first wake-up at or after the end of the previous
    /// rung's grace, SIGKILL at the first wake-up at or after
    /// stop + total_grace, the stuck report at the first at or after
    /// SIGKILL's deadline + kill timeout; in ladder order, each rung with
    /// SIGCONT; and `poll_timeout` is always the next of those deadlines.
    #[test]
    fn ladder_runs_on_its_deadlines(ladder in ladder(), stop_after in 0u64..500, steps in time_steps()) {
        let t0 = Instant::now();
        let mut e = Engine::new();
        let id = e.insert((), ladder.clone(), None);
        let stop_at = t0 + ms(stop_after);

        let dues = rung_dues(&ladder, stop_at);
        let kill_due = stop_at + ladder.total_grace();
        prop_assert_eq!(*dues.last().unwrap(), kill_due);
        let stuck_due = kill_due + ladder.get_kill_timeout();
        // Every deadline the engine should hold, in order.
        let deadlines: Vec<Instant> = dues[1..].iter().copied().chain([stuck_due]).collect();

        let mut trace = Trace::default();
        let mut now = t0;
        let mut stop_call = None;
        let mut handled: Option<Instant> = None;
        let mut steps = steps.into_iter().chain(std::iter::repeat(250));
        while trace.stuck_calls().is_empty() {
            prop_assert!(now < stuck_due + ms(10_000), "ran away: {:?}", trace.events);
            let next = now + ms(steps.next().unwrap());
            if stop_call.is_none() && next >= stop_at {
                // The request comes in between wake-ups.
                now = stop_at;
                prop_assert_eq!(e.poll_timeout(), None, "nothing pending before the stop");
                prop_assert!(e.stop(id, now));
                stop_call = Some(trace.record(now, false, drain(&mut e)));
            } else {
                now = next;
                e.handle_timeout(now);
                handled = Some(now);
                trace.record(now, true, drain(&mut e));
            }
            // The earliest deadline not yet processed.
            let expected = stop_call.and_then(|_| deadlines.iter().copied().find(|&d| handled.is_none_or(|h| d > h)));
            prop_assert_eq!(e.poll_timeout(), expected, "poll_timeout at {:?}", now - t0);
        }
        let stop_call = stop_call.unwrap();

        trace.check_cont()?;
        let sent = trace.signals();
        let expected_signals: Vec<Signal> = ladder.steps().iter().map(|s| s.signal).chain([Signal::KILL]).collect();
        prop_assert_eq!(sent.iter().map(|&(_, s)| s).collect::<Vec<_>>(), expected_signals, "ladder order");
        for (k, &(call, signal)) in sent.iter().enumerate() {
            // The first rung (or SIGKILL, for an empty ladder) goes with
            // the request; the rest at the first wake-up once due.
            let expected = if k == 0 { Some(stop_call) } else { trace.first_handle(stop_call, dues[k]) };
            prop_assert_eq!(Some(call), expected, "{} (rung {}) at call {}: {:?}", signal, k, call, trace.calls);
        }
        let kill_call = sent.last().unwrap().0;
        prop_assert_eq!(trace.stuck_calls(), vec![trace.first_handle(kill_call, stuck_due).unwrap()]);
        prop_assert_eq!(e.phase(id), Some(Phase::Stuck));
        prop_assert_eq!(e.poll_timeout(), None);
        // Nothing more, however long we wait, until the reap.
        e.handle_timeout(now + ms(1_000_000));
        prop_assert!(drain(&mut e).is_empty());
        prop_assert_eq!(e.remove(id), Some(()));
        prop_assert!(e.is_empty());
    }

    /// `stop_within` (on a running child, or on one already stopping, or
    /// already killed): SIGKILL comes at the first wake-up at or after
    /// min(stop + total_grace, request + within), never before; the
    /// signals before it are a prefix of the ladder, each on time; the
    /// stuck report comes kill timeout after SIGKILL's deadline.
    #[test]
    fn stop_within_kills_at_the_earlier_deadline(
        ladder in ladder(),
        stop_first in prop::option::of(0u64..500),
        within_at in 0u64..1500,
        within in prop_oneof![Just(0u64), 0u64..1000],
        steps in time_steps(),
    ) {
        let t0 = Instant::now();
        let mut e = Engine::new();
        let id = e.insert((), ladder.clone(), None);
        // Requests, in time order: (time, is stop_within).
        let mut requests: Vec<(Instant, bool)> = vec![(t0 + ms(within_at), true)];
        if let Some(s) = stop_first {
            requests.push((t0 + ms(s.min(within_at)), false));
        }
        requests.sort();

        let mut trace = Trace::default();
        let mut now = t0;
        let mut start: Option<(usize, Instant)> = None;
        let mut kill_by: Option<(usize, Instant)> = None;
        let mut steps = steps.into_iter().chain(std::iter::repeat(200));
        let mut pending = requests.into_iter().peekable();
        while trace.stuck_calls().is_empty() {
            prop_assert!(now < t0 + ms(20_000), "ran away: {:?}", trace.events);
            let next = now + ms(steps.next().unwrap());
            if let Some((at, is_within)) = pending.next_if(|&(at, _)| at <= next) {
                now = at;
                let killed_already = trace.signals().iter().any(|&(_, s)| s == Signal::KILL);
                let call = trace.calls.len();
                if is_within {
                    prop_assert!(e.stop_within(id, now, ms(within)));
                    if !killed_already {
                        kill_by = Some((call, now + ms(within)));
                    }
                } else {
                    prop_assert!(e.stop(id, now));
                }
                start.get_or_insert((call, now));
                trace.record(now, false, drain(&mut e));
            } else {
                now = next;
                e.handle_timeout(now);
                trace.record(now, true, drain(&mut e));
            }
        }

        trace.check_cont()?;
        let (start_call, start_at) = start.unwrap();
        let dues = rung_dues(&ladder, start_at);
        let by_ladder = *dues.last().unwrap();
        // SIGKILL's deadline, and the request that set it.
        let (from, kill_due) = match kill_by {
            Some((call, k)) if k < by_ladder => (call, k),
            _ => (start_call, by_ladder),
        };
        let sent = trace.signals();
        let (&(kill_call, last), rungs) = sent.split_last().unwrap();
        prop_assert_eq!(last, Signal::KILL);
        prop_assert!(rungs.len() <= ladder.steps().len());
        for (k, &(call, s)) in rungs.iter().enumerate() {
            prop_assert_eq!(s, ladder.steps()[k].signal, "ladder order");
            let expected = if k == 0 { Some(start_call) } else { trace.first_handle(start_call, dues[k]) };
            prop_assert_eq!(Some(call), expected, "rung {} off time: {:?}", k, trace.calls);
        }
        let kill_at = trace.calls[kill_call].0;
        prop_assert!(kill_at >= kill_due, "SIGKILL {:?} before its deadline", kill_due - kill_at);
        let expected = if ladder.steps().is_empty() { Some(start_call) } else { trace.first_handle(from, kill_due) };
        prop_assert_eq!(Some(kill_call), expected, "SIGKILL off time (due {:?}): {:?}", kill_due - t0, trace.calls);
        let stuck_due = kill_due + ladder.get_kill_timeout();
        prop_assert_eq!(trace.stuck_calls(), vec![trace.first_handle(kill_call, stuck_due).unwrap()]);
    }
}

/// An operation on a pool of children, for the multi-child properties.
#[derive(Debug, Clone, Copy)]
enum PoolOp {
    Insert(usize),
    /// Reap the n-th live child (if any).
    Reap(usize),
    /// Stop / stop_within / kill, aimed at any id ever issued (stale ones
    /// included).
    Stop(usize),
    StopWithin(usize, u64),
    Kill(usize),
    StopAll,
    /// Let time pass by this many ms and handle timeouts.
    Advance(u64),
    /// Handle timeouts at the time poll_timeout asks for.
    Wake,
}

fn pool_op() -> impl Strategy<Value = PoolOp> {
    prop_oneof![
        3 => (0usize..4).prop_map(PoolOp::Insert),
        2 => any::<usize>().prop_map(PoolOp::Reap),
        2 => any::<usize>().prop_map(PoolOp::Stop),
        1 => (any::<usize>(), 0u64..300).prop_map(|(i, w)| PoolOp::StopWithin(i, w)),
        1 => any::<usize>().prop_map(PoolOp::Kill),
        1 => Just(PoolOp::StopAll),
        2 => (0u64..400).prop_map(PoolOp::Advance),
        2 => Just(PoolOp::Wake),
    ]
}

/// Every action names a live child; none follows that child's SIGKILL;
/// and, if the actions answer a request for one child, they are all for it.
fn check_pool_actions(
    actions: Vec<Action>,
    live: &HashMap<ChildId, u64>,
    killed: &mut HashSet<ChildId>,
    requested: Option<ChildId>,
) -> Result<(), TestCaseError> {
    for a in actions {
        let id = match a {
            Action::Signal { id, signal } => {
                prop_assert!(
                    !killed.contains(&id),
                    "{} for {:?} after SIGKILL",
                    signal,
                    id
                );
                if signal == Signal::KILL {
                    killed.insert(id);
                }
                id
            }
            Action::Stuck { id } => id,
        };
        prop_assert!(
            live.contains_key(&id),
            "{:?} for {:?}, which is not live",
            a,
            id
        );
        if let Some(r) = requested {
            prop_assert_eq!(id, r, "a request for {:?} produced {:?}", r, a);
        }
    }
    Ok(())
}

fn pool_ladder(k: usize) -> StopLadder {
    match k {
        0 => StopLadder::new(Signal::TERM, ms(100)).kill_timeout(ms(50)),
        1 => StopLadder::new(Signal::INT, ms(0))
            .then(Signal::TERM, ms(30))
            .kill_timeout(ms(0)),
        2 => StopLadder::kill_only().kill_timeout(ms(200)),
        _ => StopLadder::new(Signal::HUP, ms(250)).then(Signal::QUIT, ms(1)),
    }
}

proptest! {
    #![proptest_config(config(600))]

    /// Many children with slot reuse, requests aimed at live and stale
    /// ids: every action names a live child, and the one the request was
    /// for; stale ids name nobody; ids are never reissued; each child's
    /// data comes back once, from its own id; `len` agrees.
    #[test]
    fn stale_ids_never_reach_a_new_child(
        ops in prop::collection::vec((pool_op(), prop::bool::weighted(0.7)), 0..150),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut e: Engine<u64> = Engine::new();
        let mut all: Vec<ChildId> = vec![];
        let mut live: HashMap<ChildId, u64> = HashMap::new();
        let mut serial = 0u64;
        let mut killed: HashSet<ChildId> = HashSet::new();
        // Whether the action queue was drained after the previous op:
        // ops may also run with actions still queued (a reap included).
        let mut drained = true;
        for (op, drain_now) in ops {
            let mut requested: Option<ChildId> = None;
            match op {
                PoolOp::Insert(k) => {
                    serial += 1;
                    let id = e.insert(serial, pool_ladder(k), None);
                    prop_assert!(!all.contains(&id), "{:?} issued twice", id);
                    all.push(id);
                    live.insert(id, serial);
                }
                PoolOp::Reap(n) => {
                    if !live.is_empty() {
                        let mut ids: Vec<ChildId> = live.keys().copied().collect();
                        ids.sort();
                        let id = ids[n % ids.len()];
                        prop_assert_eq!(e.remove(id), Some(live[&id]));
                        live.remove(&id);
                        prop_assert_eq!(e.remove(id), None, "second reap of {:?}", id);
                    }
                }
                PoolOp::Stop(n) | PoolOp::StopWithin(n, _) | PoolOp::Kill(n) if !all.is_empty() => {
                    let id = all[n % all.len()];
                    let is_live = live.contains_key(&id);
                    let ok = match op {
                        PoolOp::Stop(_) => e.stop(id, now),
                        PoolOp::StopWithin(_, w) => e.stop_within(id, now, ms(w)),
                        _ => e.kill(id, now),
                    };
                    if !is_live {
                        prop_assert!(!ok, "a request for stale {:?} was accepted", id);
                    }
                    requested = Some(id);
                }
                PoolOp::Stop(_) | PoolOp::StopWithin(..) | PoolOp::Kill(_) => {}
                PoolOp::StopAll => {
                    e.stop_all(now);
                }
                PoolOp::Advance(d) => {
                    now += ms(d);
                    e.handle_timeout(now);
                }
                PoolOp::Wake => {
                    if let Some(t) = e.poll_timeout() {
                        now = now.max(t);
                        e.handle_timeout(now);
                    }
                }
            }
            if drain_now {
                // Only a request made on an empty queue can be matched to
                // what it produced.
                let requested = requested.filter(|_| drained);
                check_pool_actions(drain(&mut e), &live, &mut killed, requested)?;
            }
            drained = drain_now;
            prop_assert_eq!(e.len(), live.len());
            for (&id, &data) in &live {
                prop_assert_eq!(e.get(id), Some(&data));
            }
            for id in &all {
                if !live.contains_key(id) {
                    prop_assert_eq!(e.get(*id), None);
                    prop_assert_eq!(e.phase(*id), None);
                }
            }
        }
        check_pool_actions(drain(&mut e), &live, &mut killed, None)?;
    }

    /// `poll_timeout` is the earliest pending deadline: right after
    /// `handle_timeout(now)` it is strictly after `now` (nothing due is
    /// left unprocessed); nothing happens before it; at it something
    /// happens (every deadline produces an action); and it is `None`
    /// exactly when no child is stopping or killed-and-not-yet-stuck.
    #[test]
    fn poll_timeout_is_the_earliest_pending_deadline(ops in prop::collection::vec(pool_op(), 0..150)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut e: Engine<()> = Engine::new();
        let mut ids: Vec<ChildId> = vec![];
        for op in ops {
            match op {
                PoolOp::Insert(k) => ids.push(e.insert((), pool_ladder(k), None)),
                PoolOp::Reap(n) => {
                    let live: Vec<ChildId> = e.ids().collect();
                    if !live.is_empty() {
                        prop_assert!(e.remove(live[n % live.len()]).is_some());
                    }
                }
                PoolOp::Stop(n) if !ids.is_empty() => { e.stop(ids[n % ids.len()], now); }
                PoolOp::StopWithin(n, w) if !ids.is_empty() => { e.stop_within(ids[n % ids.len()], now, ms(w)); }
                PoolOp::Kill(n) if !ids.is_empty() => { e.kill(ids[n % ids.len()], now); }
                PoolOp::Stop(_) | PoolOp::StopWithin(..) | PoolOp::Kill(_) => {}
                PoolOp::StopAll => { e.stop_all(now); }
                PoolOp::Advance(d) => {
                    now += ms(d);
                    e.handle_timeout(now);
                    drain(&mut e);
                    if let Some(t) = e.poll_timeout() {
                        prop_assert!(t > now, "a deadline {:?} old was left unprocessed", now - t);
                    }
                }
                PoolOp::Wake => {
                    if let Some(t) = e.poll_timeout() {
                        prop_assert!(t >= now, "poll_timeout {:?} in the past", now - t);
                        // Nothing is due before it ...
                        if t > now {
                            e.handle_timeout(t - Duration::from_nanos(1));
                            prop_assert!(drain(&mut e).is_empty(), "actions before poll_timeout");
                            prop_assert_eq!(e.poll_timeout(), Some(t), "poll_timeout moved");
                        }
                        // ... and something is due at it.
                        now = t;
                        e.handle_timeout(now);
                        prop_assert!(!drain(&mut e).is_empty(), "poll_timeout woke us for nothing");
                        if let Some(t2) = e.poll_timeout() {
                            prop_assert!(t2 > now);
                        }
                    }
                }
            }
            drain(&mut e);
            let pending = e
                .ids()
                .filter(|&id| matches!(e.phase(id), Some(Phase::Stopping { .. } | Phase::Killed)))
                .count();
            prop_assert_eq!(e.poll_timeout().is_some(), pending > 0, "poll_timeout vs phases");
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A grace, kill timeout or `stop_within` bound too large to add to an
    /// `Instant` (`Duration::MAX`: "no limit") does not panic: it is a
    /// deadline that never comes, and any finite bound still applies.
    #[test]
    fn unbounded_durations_never_come(
        grace in prop_oneof![Just(Duration::MAX), Just(ms(100))],
        second_grace in prop_oneof![Just(Duration::MAX), Just(ms(100))],
        kill_timeout in prop_oneof![Just(Duration::MAX), Just(ms(50))],
        within in prop::option::of(prop_oneof![Just(Duration::MAX), Just(ms(30))]),
        hard_kill in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let ladder = StopLadder::new(Signal::TERM, grace).then(Signal::INT, second_grace).kill_timeout(kill_timeout);
        let total = ladder.total_grace();
        let mut e = Engine::new();
        let id = e.insert((), ladder, None);
        prop_assert!(e.stop(id, t0));
        let mut sent = vec![];
        let mut times = vec![];
        let mut record = |e: &mut Engine<()>, now: Instant| {
            for a in drain(e) {
                match a {
                    Action::Signal { signal: Signal::CONT, .. } => {}
                    Action::Signal { signal, .. } => { sent.push(signal); times.push(now); }
                    Action::Stuck { .. } => { sent.push(Signal::STOP); times.push(now); }
                }
            }
        };
        record(&mut e, t0);
        let w_at = t0 + ms(10);
        if let Some(w) = within {
            e.handle_timeout(w_at);
            prop_assert!(e.stop_within(id, w_at, w));
        }
        if hard_kill {
            prop_assert!(e.kill(id, w_at));
        }
        record(&mut e, w_at);
        let mut now = w_at;
        for _ in 0..200 {
            now += ms(1);
            e.handle_timeout(now);
            record(&mut e, now);
        }
        now += Duration::from_secs(1_000_000_000);
        e.handle_timeout(now);
        record(&mut e, now);

        // When SIGKILL is due, if ever.
        let cap = within.and_then(|w| w_at.checked_add(w));
        let by_ladder = t0.checked_add(total).filter(|_| grace != Duration::MAX && second_grace != Duration::MAX);
        let kill_due = if hard_kill { Some(w_at) } else { [cap, by_ladder].into_iter().flatten().min() };
        let kill_pos = sent.iter().position(|&s| s == Signal::KILL);
        prop_assert_eq!(kill_pos.is_some(), kill_due.is_some(), "sent {:?}", sent);
        if let (Some(p), Some(due)) = (kill_pos, kill_due) {
            prop_assert_eq!(times[p], due.max(w_at), "SIGKILL off time");
            let stuck = sent.contains(&Signal::STOP);
            prop_assert_eq!(stuck, kill_timeout != Duration::MAX, "sent {:?}", sent);
        }
        prop_assert_eq!(sent[0], Signal::TERM);
        // Still reaped normally.
        prop_assert_eq!(e.remove(id), Some(()));
        prop_assert_eq!(e.poll_timeout(), None);
    }
}
