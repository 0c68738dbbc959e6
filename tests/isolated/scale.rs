//! 1,000 children at once, stopped with one request.

use std::fs;
use std::time::{Duration, Instant};

use pidreap::{Command, Event, Reaper, Signal, Stdio, StopLadder};

use crate::helpers::assert_no_children_left;
use crate::support::{self, Guard, Proc};

/// 1,000 children, stopped by one `cancel()` of the cancel-all token, all
/// reaped, none left in /proc.
pub(crate) fn thousand_children() {
    // Start from the usual soft limit of 1024, as in CI, so that raising it
    // is needed, and children must get 1024 back (programs that use
    // select(2) cannot handle fds above 1024:
    // https://man7.org/linux/man-pages/man2/select.2.html).
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_cur.min(1024);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let original = (lim.rlim_cur, lim.rlim_max);
    let limit = pidreap::raise_fd_limit().unwrap();
    assert!(
        limit >= 2100,
        "RLIMIT_NOFILE hard limit {limit} is too low for 1,000 children"
    );
    let mut guard = Guard::new();
    let mut reaper = Reaper::builder()
        .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(60)))
        .build()
        .unwrap();
    let mut procs = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("60")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let c = reaper
            .spawn(&cmd)
            .unwrap_or_else(|e| panic!("spawn #{i}: {e}"));
        guard.track(c.pid());
        procs.push((c.id(), Proc::of(c.pid())));
    }
    assert_eq!(reaper.len(), 1000);
    let sample = procs[999].1.pid;
    support::wait_exec(sample, "sleep");
    assert_eq!(
        nofile_of(sample),
        original,
        "children must get the original RLIMIT_NOFILE back"
    );
    let t0 = Instant::now();
    reaper.cancel_all_token().unwrap().cancel();
    let mut exited = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while exited.len() < 1000 {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("only {} of 1000 children reaped after 120 s", exited.len()));
        match reaper.wait_event(Some(left)).unwrap() {
            Some(Event::Exited(e)) => {
                assert_eq!(e.status.signal(), Some(Signal::TERM), "{e:?}");
                assert!(exited.insert(e.id), "child {} reported twice", e.id);
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    eprintln!("1,000 children stopped and reaped in {:?}", t0.elapsed());
    assert!(reaper.is_empty());
    for (id, p) in &procs {
        assert!(exited.contains(id));
        assert!(p.is_gone(), "pid {} still in /proc: {:?}", p.pid, p.stat());
    }
    assert_no_children_left("after stopping 1,000 children");
}

/// (soft, hard) "Max open files" of `pid`, from /proc/<pid>/limits.
fn nofile_of(pid: u32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}
