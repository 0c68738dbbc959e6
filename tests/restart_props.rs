//! Properties of the restart policy (`pidreap::engine::Restarter`), checked
//! on random sequences of exits, clocks and randomness.

use std::time::{Duration, Instant};

use pidreap::engine::{
    Backoff, Decision, ExitKind, RestartConfig, RestartPolicy, Restarter, StopReason,
};
use proptest::prelude::*;

fn policy() -> impl Strategy<Value = RestartPolicy> {
    prop_oneof![
        Just(RestartPolicy::Never),
        Just(RestartPolicy::OnFailure),
        Just(RestartPolicy::Always)
    ]
}

fn backoff() -> impl Strategy<Value = Backoff> {
    (0u64..5_000, 0u64..100_000).prop_map(|(min, extra)| {
        Backoff::new(
            Duration::from_millis(min),
            Duration::from_millis(min + extra),
        )
        .expect("min <= max")
    })
}

fn config() -> impl Strategy<Value = RestartConfig> {
    (policy(), 0u32..8, 1u64..20_000, backoff()).prop_map(
        |(policy, max_restarts, window, backoff)| RestartConfig {
            policy,
            max_restarts,
            window: Duration::from_millis(window),
            backoff,
        },
    )
}

/// One step of a run: how long the child ran, how it ended, the jitter, and
/// how late the caller was to spawn after the back-off.
#[derive(Debug, Clone)]
struct Step {
    ran_for: Duration,
    kind: ExitKind,
    random: u64,
    late_by: Duration,
    stop_during_backoff: bool,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0u64..30_000,
            any::<bool>(),
            any::<u64>(),
            0u64..500,
            prop::bool::weighted(0.05),
        )
            .prop_map(|(ran, ok, random, late, stop)| Step {
                ran_for: Duration::from_millis(ran),
                kind: if ok {
                    ExitKind::Success
                } else {
                    ExitKind::Failure
                },
                random,
                late_by: Duration::from_millis(late),
                stop_during_backoff: stop,
            }),
        1..60,
    )
}

proptest! {
    #[test]
    fn backoff_stays_within_min_and_max(b in backoff(), k in any::<u32>(), random in any::<u64>()) {
        let d = b.delay(k, random);
        prop_assert!(d >= b.min(), "{d:?} < min {:?}", b.min());
        prop_assert!(d <= b.max(), "{d:?} > max {:?}", b.max());
    }

    #[test]
    fn backoff_grows_until_the_cap(b in backoff(), k in 1u32..20, r1 in any::<u64>(), r2 in any::<u64>()) {
        let (d1, d2) = (b.delay(k, r1), b.delay(k + 1, r2));
        // The next delay is shorter only once the cap is in reach.
        prop_assert!(d2 >= d1 || d2 * 4 >= b.max() * 3, "{d1:?} then {d2:?} with {b:?}");
    }

    /// Runs the restarter like a supervisor would and checks, at every
    /// step, every rule: delays in [min, max], at most `max_restarts` spawns
    /// in any window, and nothing spawned after a stop.
    #[test]
    fn a_supervisor_run_obeys_every_rule(cfg in config(), steps in steps()) {
        let t0 = Instant::now();
        let mut r = Restarter::new(cfg);
        r.started(t0);
        let mut now = t0;
        let mut spawns: Vec<Instant> = Vec::new();
        let mut stopped = false;
        for step in steps {
            now += step.ran_for;
            match r.on_exit(now, step.kind, step.random) {
                Decision::GiveUp(reason) => {
                    if stopped {
                        prop_assert_eq!(reason, StopReason::Stopped);
                    }
                    if reason == StopReason::Policy {
                        prop_assert!(!cfg.policy.wants_restart(step.kind));
                    }
                    prop_assert_eq!(r.poll_timeout(), None);
                    prop_assert_eq!(r.poll_spawn(now + Duration::from_secs(1_000_000)), None);
                    break;
                }
                Decision::Restart { delay, at, attempt } => {
                    prop_assert!(!stopped, "a restart after stop()");
                    prop_assert!(cfg.policy.wants_restart(step.kind));
                    prop_assert!(delay >= cfg.backoff.min() && delay <= cfg.backoff.max());
                    prop_assert_eq!(at, now + delay);
                    prop_assert_eq!(r.poll_timeout(), Some(at));
                    if at > now {
                        prop_assert_eq!(r.poll_spawn(now), None, "spawned before the delay ended");
                    }
                    if step.stop_during_backoff {
                        prop_assert!(r.stop());
                        stopped = true;
                        prop_assert_eq!(r.poll_timeout(), None);
                        prop_assert_eq!(r.poll_spawn(at + step.late_by), None, "spawned after stop()");
                        continue;
                    }
                    now = at + step.late_by;
                    prop_assert_eq!(r.poll_spawn(now), Some(attempt));
                    prop_assert_eq!(r.poll_spawn(now), None, "one spawn per decision");
                    spawns.push(now);
                    prop_assert_eq!(attempt as usize, spawns.len());
                }
            }
        }
        // The limit: no window of length `window` holds more than
        // `max_restarts` spawns. The worst window ends at a spawn.
        for (i, &end) in spawns.iter().enumerate() {
            let inside = spawns[..=i].iter().filter(|&&t| t + cfg.window > end).count();
            prop_assert!(
                inside <= cfg.max_restarts as usize,
                "{inside} restarts within {:?} (limit {})", cfg.window, cfg.max_restarts
            );
        }
        if cfg.policy == RestartPolicy::Never {
            prop_assert!(spawns.is_empty());
        }
    }

    /// A stop at any moment of a back-off, however late the caller polls
    /// afterwards, never spawns.
    #[test]
    fn stop_during_backoff_never_spawns(
        cfg in config(),
        random in any::<u64>(),
        into_backoff in 0u64..200_000,
        polls in prop::collection::vec(0u64..1_000_000_000, 1..20),
    ) {
        let t0 = Instant::now();
        let mut r = Restarter::new(RestartConfig { policy: RestartPolicy::Always, max_restarts: cfg.max_restarts.max(1), ..cfg });
        r.started(t0);
        let Decision::Restart { at, .. } = r.on_exit(t0, ExitKind::Failure, random) else {
            return Err(TestCaseError::fail("the first exit must restart"));
        };
        // Somewhere inside the back-off (or at its very start when it is 0).
        let stop_at = if at > t0 {
            let before = (at - t0).saturating_sub(Duration::from_nanos(1));
            let stop_at = t0 + Duration::from_millis(into_backoff).min(before);
            prop_assert_eq!(r.poll_spawn(stop_at), None, "spawned before the delay ended");
            stop_at
        } else {
            t0
        };
        prop_assert!(r.stop(), "a restart was pending");
        for p in polls {
            prop_assert_eq!(r.poll_spawn(stop_at + Duration::from_millis(p)), None);
            prop_assert_eq!(r.poll_timeout(), None);
        }
        prop_assert_eq!(r.on_exit(stop_at, ExitKind::Failure, random), Decision::GiveUp(StopReason::Stopped));
    }
}
