//! Many tasks of a tokio current-thread runtime share one [`Reaper`]
//! through `pidreap::tokio::LocalReaper` (feature `tokio`): each task
//! spawns its own child and awaits that child's exit, a future per child,
//! with no `Rc<RefCell<..>>` of the caller's own, no helper thread and no
//! `unsafe`.
//!
//! Run: `cargo run --example tokio_tasks --features tokio`. It checks what
//! it prints and exits non-zero if anything is off.

use std::time::Duration;

use pidreap::tokio::LocalReaper;
use pidreap::{Command, ExitStatus, Reaper, Signal, StopLadder};

const TASKS: usize = 50;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .count()
}

fn main() -> pidreap::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("building the tokio runtime");
    let fds_before = count("/proc/self/fd");
    tokio::task::LocalSet::new().block_on(&rt, async {
        let reaper = LocalReaper::new(Reaper::new()?)?;
        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let reaper = reaper.clone();
            tasks.push(tokio::task::spawn_local(async move {
                if i % 10 == 9 {
                    // A long sleeper this task stops through its ladder.
                    let mut cmd = Command::new("sleep");
                    cmd.arg("60")
                        .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(5)));
                    let child = reaper.spawn(&cmd)?;
                    reaper.with(|r| r.stop(child.id()))?;
                    let exit = reaper.wait(child.id()).await?;
                    assert_eq!(exit.status.signal(), Some(Signal::TERM), "task {i}");
                } else {
                    let code = (i % 7) as i32;
                    let child =
                        reaper.spawn(Command::new("sh").args(["-c", &format!("exit {code}")]))?;
                    let exit = reaper.wait(child.id()).await?;
                    assert_eq!(exit.status, ExitStatus::Exited(code), "task {i}");
                }
                pidreap::Result::Ok(())
            }));
        }
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("every task done within 30 s")
                .expect("the task did not panic")?;
        }
        assert!(reaper.with(|r| r.is_empty()));
        pidreap::Result::Ok(())
    })?;
    let threads = count("/proc/self/task");
    assert_eq!(
        threads, 1,
        "the runtime, the tasks and the reaper share one thread"
    );
    let fds = count("/proc/self/fd");
    assert_eq!(fds, fds_before, "fds once the reaper is gone");
    println!("tokio_tasks: {TASKS} tasks, each reaped its own child, statuses right, {threads} thread, no fd left");
    Ok(())
}
