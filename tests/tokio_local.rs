//! `pidreap::tokio::LocalReaper`: the tasks of one thread share a reaper,
//! each awaiting its own children through a future per child. Real
//! processes; every await is bounded.

mod support;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use pidreap::tokio::LocalReaper;
use pidreap::{Command, Error, Event, ExitStatus, Reaper, Signal, Stdio};
use support::{Guard, LONG};

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// Spawns a child that exits with `code` once its stdin closes, tracked
/// by `guard`; returns it and its stdin.
fn spawn_held(
    reaper: &LocalReaper,
    guard: &mut Guard,
    code: i32,
) -> (pidreap::Child, std::io::PipeWriter) {
    let mut cmd = sh(&format!("read _; exit {code}"));
    cmd.stdin(Stdio::piped());
    let mut child = reaper.spawn(&cmd).unwrap();
    guard.track(child.pid());
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// Runs `body` on a current-thread runtime inside a `LocalSet`.
fn run_local<F: Future<Output = ()>>(body: impl FnOnce() -> F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&rt, body());
}

/// Awaits `fut` for at most [`LONG`]; fails naming `what` instead of
/// hanging.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(LONG, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {LONG:?}"))
}

/// The next event of `reaper`, which must be an exit; fails naming `what`.
async fn next_exit(reaper: &LocalReaper, what: &str) -> pidreap::Exit {
    match within(what, reaper.next_event()).await.unwrap() {
        Event::Exited(exit) => exit,
        other => panic!("{what}: expected an exit, got {other:?}"),
    }
}

/// Polls `fut` once; true if it is still pending.
async fn pending_once<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx).is_pending()))
        .await
}

#[test]
fn tasks_each_spawn_and_await_their_own_child() {
    run_local(|| async {
        let reaper = LocalReaper::new(Reaper::new().unwrap()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let reaper = reaper.clone();
            tasks.push(tokio::task::spawn_local(async move {
                let child = reaper
                    .spawn(&sh(&format!("sleep 0.0{}; exit {i}", i % 5)))
                    .unwrap();
                let exit = within("a task's own child", reaper.wait(child.id()))
                    .await
                    .unwrap();
                (i, exit)
            }));
        }
        for task in tasks {
            let (i, exit) = within("a task", task).await.unwrap();
            assert_eq!(exit.status, ExitStatus::Exited(i), "task {i}");
        }
        assert!(reaper.with(|r| r.is_empty()));
    });
}

/// Two futures wait; tokio wakes only the task that asked for the fd's
/// readiness last. When that one finishes, another must ask in its place,
/// or the remaining children's exits would never wake anyone.
#[test]
fn a_finished_waiter_hands_the_readiness_over() {
    run_local(|| async {
        let reaper = LocalReaper::new(Reaper::new().unwrap()).unwrap();
        let mut guard = Guard::new();
        let (a, a_stdin) = spawn_held(&reaper, &mut guard, 7);
        let (b, b_stdin) = spawn_held(&reaper, &mut guard, 3);

        let ra = reaper.clone();
        let task_a = tokio::task::spawn_local(async move { ra.wait(a.id()).await });
        tokio::task::yield_now().await; // A's future is polled and waits.
        let mut wait_b = pin!(reaper.wait(b.id()));
        assert!(pending_once(&mut wait_b).await, "B's child is alive");

        drop(b_stdin);
        let exit_b = within("B's exit", wait_b).await.unwrap();
        assert_eq!(exit_b.status, ExitStatus::Exited(3));
        drop(a_stdin);
        let exit_a = within("A's exit, after B's future finished", task_a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(exit_a.status, ExitStatus::Exited(7));
    });
}

/// As above, but the future that asked last is dropped while waiting (a
/// timeout, a `select!` that took another branch).
#[test]
fn a_dropped_waiter_hands_the_readiness_over() {
    run_local(|| async {
        let reaper = LocalReaper::new(Reaper::new().unwrap()).unwrap();
        let mut guard = Guard::new();
        let (a, a_stdin) = spawn_held(&reaper, &mut guard, 9);
        let b = reaper
            .spawn(Command::new("sleep").arg("60").stdin(Stdio::null()))
            .unwrap();
        guard.track(b.pid());

        let ra = reaper.clone();
        let a_id = a.id();
        let task_a = tokio::task::spawn_local(async move { ra.wait(a_id).await });
        tokio::task::yield_now().await;
        {
            let mut wait_b = pin!(reaper.wait(b.id()));
            assert!(pending_once(&mut wait_b).await, "B sleeps");
        } // dropped while waiting

        drop(a_stdin);
        let exit_a = within("A's exit, after B's future was dropped", task_a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(exit_a.status, ExitStatus::Exited(9));

        reaper.with(|r| r.kill(b.id())).unwrap();
        let exit_b = within("B's exit", reaper.wait(b.id())).await.unwrap();
        assert_eq!(exit_b.status.signal(), Some(Signal::KILL));
    });
}

/// Exits no future awaits go to `next_event`; `wait` still finds an exit
/// that was set aside there; an exit is handed out once.
#[test]
fn exits_nobody_awaits_go_to_next_event() {
    run_local(|| async {
        let reaper = LocalReaper::new(Reaper::new().unwrap()).unwrap();
        let c = reaper.spawn(&sh("exit 5")).unwrap();
        let exit = next_exit(&reaper, "the unawaited exit").await;
        assert_eq!(exit.id, c.id());
        assert_eq!(exit.status, ExitStatus::Exited(5));

        let d = reaper.spawn(&sh("exit 6")).unwrap();
        let e = reaper.spawn(&sh("exit 8")).unwrap();
        support::wait_until(LONG, "D and E exited", || {
            [d.pid(), e.pid()]
                .iter()
                .all(|&p| support::state(p) == Some('Z'))
        });
        // Awaiting E takes both exits off the reaper; D's is set aside.
        let exit_e = within("E's exit", reaper.wait(e.id())).await.unwrap();
        assert_eq!(exit_e.status, ExitStatus::Exited(8));
        let exit_d = within("D's exit", reaper.wait(d.id())).await.unwrap();
        assert_eq!(exit_d.status, ExitStatus::Exited(6));
        match reaper.wait(d.id()).await {
            Err(Error::NoSuchChild(id)) => assert_eq!(id, d.id()),
            other => panic!("a second wait for D: {other:?}"),
        }
        let mut next = pin!(reaper.next_event());
        assert!(pending_once(&mut next).await, "nothing else happened");
        assert!(reaper.with(|r| r.is_empty()));
    });
}

/// A future dropped after its child's exit was set aside for it: the exit
/// is not lost, `next_event` hands it out.
#[test]
fn the_exit_of_a_dropped_waiter_goes_to_next_event() {
    run_local(|| async {
        let reaper = LocalReaper::new(Reaper::new().unwrap()).unwrap();
        let mut guard = Guard::new();
        let (child, stdin) = spawn_held(&reaper, &mut guard, 4);
        {
            let mut wait = pin!(reaper.wait(child.id()));
            assert!(
                pending_once(&mut wait).await,
                "the child waits for its stdin"
            );
            drop(stdin);
            // Reaped and set aside for the waiting future, which is then
            // dropped before it runs again.
            support::wait_until(LONG, "the child is reaped", || {
                reaper
                    .with(|r| r.poll(Some(std::time::Duration::from_millis(100))))
                    .expect("polling the reaper");
                reaper.with(|r| r.is_empty())
            });
        }
        let exit = next_exit(&reaper, "the exit, through next_event").await;
        assert_eq!(exit.id, child.id());
        assert_eq!(exit.status, ExitStatus::Exited(4));
    });
}
