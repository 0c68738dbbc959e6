//! Properties of the restart policy (`pidreap::engine::Restarter`), checked
//! on random sequences of exits, clocks and randomness.

use std::time::{Duration, Instant};

use pidreap::engine::{
    Backoff, Decision, ExitKind, ExitStatusSet, RestartConfig, RestartPolicy, Restarter, StopReason,
};
use pidreap::{ExitStatus, Signal};
use proptest::prelude::*;

fn policy() -> impl Strategy<Value = RestartPolicy> {
    prop_oneof![
        Just(RestartPolicy::Never),
        Just(RestartPolicy::OnSuccess),
        Just(RestartPolicy::OnFailure),
        Just(RestartPolicy::OnAbnormal),
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
            ..RestartConfig::default()
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

fn kind() -> impl Strategy<Value = ExitKind> {
    prop_oneof![
        Just(ExitKind::Success),
        Just(ExitKind::Failure),
        Just(ExitKind::Abnormal)
    ]
}

/// Exit statuses: every code, and a few signals.
fn status() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        (0i32..256).prop_map(ExitStatus::Exited),
        (1i32..65).prop_map(|n| ExitStatus::Signaled {
            signal: Signal::from_raw(n).unwrap(),
            core_dumped: false,
        }),
        Just(ExitStatus::Unknown),
    ]
}

/// A set of a few codes and signals.
fn status_set() -> impl Strategy<Value = ExitStatusSet> {
    prop::collection::vec(status(), 0..6).prop_map(|statuses| {
        let mut set = ExitStatusSet::new();
        for s in statuses {
            match s {
                ExitStatus::Exited(c) => set.insert_code(c as u8),
                ExitStatus::Signaled { signal, .. } => set.insert_signal(signal),
                ExitStatus::Unknown => &mut set,
            };
        }
        set
    })
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0u64..30_000,
            kind(),
            any::<u64>(),
            0u64..500,
            prop::bool::weighted(0.05),
        )
            .prop_map(|(ran, kind, random, late, stop)| Step {
                ran_for: Duration::from_millis(ran),
                kind,
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

    /// `on_exit_status`: a status in the prevent set never restarts, under
    /// any policy; one in the success set restarts exactly when the policy
    /// restarts a success; any other as its own kind.
    #[test]
    fn exit_status_sets_decide_as_systemd_does(
        cfg in config(),
        success in status_set(),
        prevent in status_set(),
        status in status(),
        random in any::<u64>(),
    ) {
        let cfg = RestartConfig {
            max_restarts: cfg.max_restarts.max(1),
            success_exit_status: success,
            prevent_exit_status: prevent,
            ..cfg
        };
        let t0 = Instant::now();
        let mut r = Restarter::new(cfg);
        r.started(t0);
        let kind = if success.contains(status) { ExitKind::Success } else { ExitKind::of(status) };
        let restarts = matches!(r.on_exit_status(t0, status, random), Decision::Restart { .. });
        if prevent.contains(status) {
            prop_assert!(!restarts);
            prop_assert_eq!(r.done(), Some(StopReason::Prevented));
        } else {
            prop_assert_eq!(restarts, cfg.policy.wants_restart(kind));
        }
    }

    /// With limits above the exact history (buckets), the limit still holds
    /// in every window, and the history stays small.
    #[test]
    fn large_limits_hold_in_every_window(
        max_restarts in 1025u32..3000,
        window in 1u64..2_000,
        gaps in prop::collection::vec(0u64..3_000, 1..6_000),
    ) {
        let cfg = RestartConfig {
            policy: RestartPolicy::Always,
            max_restarts,
            window: Duration::from_millis(window),
            backoff: Backoff::new(Duration::ZERO, Duration::ZERO).unwrap(),
            ..RestartConfig::default()
        };
        let t0 = Instant::now();
        let mut r = Restarter::new(cfg);
        r.started(t0);
        let mut now = t0;
        let mut spawns: Vec<Instant> = Vec::new();
        for gap in gaps {
            // Microseconds apart: thousands of restarts per window.
            now += Duration::from_micros(gap);
            match r.on_exit(now, ExitKind::Failure, 0) {
                Decision::Restart { at, .. } => {
                    prop_assert!(r.poll_spawn(at).is_some());
                    spawns.push(at);
                }
                Decision::GiveUp(reason) => {
                    prop_assert_eq!(reason, StopReason::LimitReached);
                    break;
                }
            }
        }
        let mut start = 0;
        for (i, &end) in spawns.iter().enumerate() {
            while spawns[start] + cfg.window <= end {
                start += 1;
            }
            prop_assert!(i + 1 - start <= max_restarts as usize, "{} in a window", i + 1 - start);
        }
    }
}
