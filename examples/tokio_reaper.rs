//! A [`Reaper`] driven from a tokio current-thread runtime, through
//! `pidreap::tokio::AsyncReaper` (feature `tokio`): its fd is registered in
//! tokio's reactor, so one OS thread runs the runtime, the stop ladders and
//! the reaping. No helper thread, no `unsafe`.
//!
//! Run: `cargo run --example tokio_reaper --features tokio`. It checks what
//! it prints and exits non-zero if anything is off.

use std::collections::HashMap;
use std::time::Duration;

use pidreap::tokio::AsyncReaper;
use pidreap::{Command, Event, ExitStatus, Reaper, Signal, StopLadder};

const CHILDREN: usize = 50;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("reading /proc/self/task")
        .count()
}

fn main() -> pidreap::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("building the tokio runtime");
    rt.block_on(async {
        let mut reaper = AsyncReaper::new(Reaper::new()?)?;
        let mut expected = HashMap::new();
        for i in 0..CHILDREN {
            let r = reaper.get_mut();
            if i % 10 == 9 {
                // A long sleeper, stopped through its ladder (SIGTERM).
                let mut cmd = Command::new("sleep");
                cmd.arg("60")
                    .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(5)));
                let child = r.spawn(&cmd)?;
                r.stop(child.id())?;
                expected.insert(
                    child.id(),
                    ExitStatus::Signaled {
                        signal: Signal::TERM,
                        core_dumped: false,
                    },
                );
            } else {
                let code = (i % 7) as i32;
                let child = r.spawn(Command::new("sh").args(["-c", &format!("exit {code}")]))?;
                expected.insert(child.id(), ExitStatus::Exited(code));
            }
        }
        let mut reaped = 0;
        while reaped < CHILDREN {
            let event = tokio::time::timeout(Duration::from_secs(30), reaper.next_event())
                .await
                .unwrap_or_else(|_| panic!("only {reaped} of {CHILDREN} reaped within 30 s"))?;
            match event {
                Event::Exited(exit) => {
                    let want = expected.remove(&exit.id).expect("a child of ours, once");
                    assert_eq!(exit.status, want, "child {} (pid {})", exit.id, exit.pid);
                    reaped += 1;
                }
                other => panic!("unexpected event: {other:?}"),
            }
        }
        assert!(expected.is_empty() && reaper.get_ref().is_empty());
        let n = threads();
        assert_eq!(n, 1, "the runtime and the reaper share one thread");
        println!("tokio_reaper: {reaped} children reaped, statuses right, {n} thread");
        Ok(())
    })
}
