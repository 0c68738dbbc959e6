//! The runtime-style use: no [`Reaper`]. Each child is spawned with the
//! primitive [`pidreap::spawn`], its pidfd registered in tokio's reactor
//! (`pidreap::tokio::AsyncPidFd`, feature `tokio`), and a task awaits each
//! child. The spawns happen on the runtime's one thread, which lives as long
//! as the children: their parent-death signal is tied to it.
//!
//! Run: `cargo run --example tokio_pidfd --features tokio`. It checks what
//! it prints and exits non-zero if anything is off.

use std::time::Duration;

use pidreap::tokio::AsyncPidFd;
use pidreap::{Command, ExitStatus, Signal};

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
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..CHILDREN {
            let (child, want) = if i % 10 == 9 {
                let child = pidreap::spawn(Command::new("sleep").arg("60"))?;
                assert!(child.pidfd.send_signal(Signal::KILL)?);
                let want = ExitStatus::Signaled {
                    signal: Signal::KILL,
                    core_dumped: false,
                };
                (child, want)
            } else {
                let code = (i % 7) as i32;
                let child =
                    pidreap::spawn(Command::new("sh").args(["-c", &format!("exit {code}")]))?;
                (child, ExitStatus::Exited(code))
            };
            let pid = child.pid();
            let mut child = AsyncPidFd::new(child.pidfd)?;
            tasks.spawn(async move {
                let reaped = child.wait().await?;
                assert_eq!(reaped.status, want, "pid {pid}");
                Ok::<u32, pidreap::Error>(pid)
            });
        }
        let mut reaped = 0;
        while let Some(done) = tokio::time::timeout(Duration::from_secs(30), tasks.join_next())
            .await
            .unwrap_or_else(|_| panic!("only {reaped} of {CHILDREN} reaped within 30 s"))
        {
            done.expect("the task ran to the end")?;
            reaped += 1;
        }
        assert_eq!(reaped, CHILDREN);
        let n = threads();
        assert_eq!(n, 1, "the runtime and the spawns share one thread");
        println!("tokio_pidfd: {reaped} children awaited and reaped, statuses right, {n} thread");
        Ok(())
    })
}
