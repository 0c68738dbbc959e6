//! A [`Reaper`] driven from async-io (the reactor under smol): a duplicate
//! of the reaper's fd is registered with `Async::new` (safe: it owns the
//! duplicate), and the task calls `poll(Some(Duration::ZERO))` whenever it
//! is readable. The reaper stays on the thread that made it, the one
//! running `block_on`.
//!
//! async-io starts a helper thread of its own ("async-io") that drives the
//! reactor while no `block_on` does; the children's parent-death signal is
//! tied to the thread that spawned them (this one), not to that helper.
//!
//! Run: `cargo run --example async_io_reaper`. It checks what it prints and
//! exits non-zero if anything is off.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::time::Duration;

use async_io::{Async, Timer};
use pidreap::{Command, Event, ExitStatus, Reaper, Signal};

const CHILDREN: usize = 50;

fn main() -> pidreap::Result<()> {
    async_io::block_on(async {
        let mut reaper = Reaper::new()?;
        let watch = reaper
            .as_fd()
            .try_clone_to_owned()
            .and_then(Async::new)
            .expect("registering the reaper's fd with async-io");
        let mut expected = HashMap::new();
        for i in 0..CHILDREN {
            if i % 10 == 9 {
                let child = reaper.spawn(Command::new("sleep").arg("60"))?;
                reaper.kill(child.id())?;
                expected.insert(
                    child.id(),
                    ExitStatus::Signaled {
                        signal: Signal::KILL,
                        core_dumped: false,
                    },
                );
            } else {
                let code = (i % 7) as i32;
                let child =
                    reaper.spawn(Command::new("sh").args(["-c", &format!("exit {code}")]))?;
                expected.insert(child.id(), ExitStatus::Exited(code));
            }
        }
        let deadline = Timer::after(Duration::from_secs(30));
        reap_all(&watch, &mut reaper, &mut expected, deadline).await?;
        assert!(expected.is_empty() && reaper.is_empty());
        println!("async_io_reaper: {CHILDREN} children reaped, statuses right");
        Ok(())
    })
}

/// Waits for every expected exit, or panics when `deadline` fires first.
async fn reap_all(
    watch: &Async<std::os::fd::OwnedFd>,
    reaper: &mut Reaper,
    expected: &mut HashMap<pidreap::ChildId, ExitStatus>,
    mut deadline: Timer,
) -> pidreap::Result<()> {
    use std::future::Future;
    use std::pin::Pin;
    while !expected.is_empty() {
        // Wait until the reaper's fd is readable or the deadline passes.
        let mut readable = std::pin::pin!(watch.readable());
        std::future::poll_fn(|cx| {
            if Pin::new(&mut deadline).poll(cx).is_ready() {
                panic!("{} children left unreaped after 30 s", expected.len());
            }
            readable
                .as_mut()
                .poll(cx)
                .map(|r| r.expect("async-io readiness"))
        })
        .await;
        reaper.poll(Some(Duration::ZERO))?;
        while let Some(event) = reaper.next_event() {
            match event {
                Event::Exited(exit) => {
                    let want = expected.remove(&exit.id).expect("a child of ours, once");
                    assert_eq!(exit.status, want, "child {} (pid {})", exit.id, exit.pid);
                }
                other => panic!("unexpected event: {other:?}"),
            }
        }
    }
    Ok(())
}
