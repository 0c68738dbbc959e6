//! File descriptors the supervisor holds: eventfds, timerfds, pipes, and the
//! "high floor" where long-lived ones are kept.
//!
//! Every fd made here is close-on-exec, so that no child inherits one: a
//! leaked pidfd would let a worker signal its siblings, a leaked pipe end
//! would keep a reader from seeing EOF.
//!
//! Long-lived per-child fds (pidfds, cancel eventfds) are moved to numbers
//! at or above a floor. The spawn path shares the fd table with the child
//! (`CLONE_FILES`) and has the child unshare only the fds *below* the
//! highest stdio source; keeping the supervisor's own fds high keeps that
//! copy a handful of entries however many children are supervised: without
//! it, each spawn copies the whole table and each exec closes it again,
//! which costs O(children) per spawn.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::EventfdFlags;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

/// The lowest number long-lived fds are moved to: half the soft
/// `RLIMIT_NOFILE`, at most 1024, so that the table below stays free for the
/// caller's own fds and for pipes.
/// [getrlimit(2)](https://man7.org/linux/man-pages/man2/getrlimit.2.html)
pub(crate) fn high_floor() -> i32 {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    (soft / 2).clamp(3, 1024) as i32
}

/// Moves `fd` to the lowest free number at or above `floor`, closing the
/// original. Where that fails (the table is full up there), keeps `fd`.
/// [fcntl(2) F_DUPFD_CLOEXEC](https://man7.org/linux/man-pages/man2/fcntl.2.html)
pub(crate) fn move_high(fd: OwnedFd, floor: i32) -> OwnedFd {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() >= floor {
        return fd;
    }
    match rustix::io::fcntl_dupfd_cloexec(&fd, floor) {
        Ok(high) => high,
        Err(_) => fd,
    }
}

/// A close-on-exec duplicate of `fd`, at 3 or above.
/// [fcntl(2) F_DUPFD_CLOEXEC](https://man7.org/linux/man-pages/man2/fcntl.2.html)
pub(crate) fn duplicate(fd: impl AsFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?)
}

/// `fd` itself if it is 3 or above, else a close-on-exec duplicate at 3 or
/// above (the original is closed).
/// [fcntl(2) F_DUPFD_CLOEXEC](https://man7.org/linux/man-pages/man2/fcntl.2.html)
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// A non-blocking, close-on-exec eventfd starting at 0.
/// [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    Ok(rustix::event::eventfd(
        0,
        EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
    )?)
}

/// Adds one to an eventfd's counter. Never blocks: the fd is non-blocking,
/// and `EAGAIN` (the counter is at its maximum) still leaves it readable.
/// [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

/// Reads (and so resets) an eventfd or timerfd counter; 0 when it was not
/// readable. [read(2)](https://man7.org/linux/man-pages/man2/read.2.html)
pub(crate) fn drain_counter(fd: BorrowedFd<'_>) -> u64 {
    let mut buf = [0u8; 8];
    match rustix::io::read(fd, &mut buf) {
        Ok(8) => u64::from_ne_bytes(buf),
        _ => 0,
    }
}

/// A pipe, both ends close-on-exec: `(read, write)`.
/// [pipe2(2)](https://man7.org/linux/man-pages/man2/pipe.2.html)
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// `/dev/null`, close-on-exec, for reading and writing.
/// [open(2)](https://man7.org/linux/man-pages/man2/open.2.html)
pub(crate) fn dev_null() -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        c"/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// A monotonic, non-blocking, close-on-exec timerfd.
/// [timerfd_create(2)](https://man7.org/linux/man-pages/man2/timerfd_create.2.html)
#[derive(Debug)]
pub(crate) struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    pub(crate) fn new() -> io::Result<TimerFd> {
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?;
        Ok(TimerFd { fd })
    }

    /// Arms the timer to fire once after `after` (at least 1 ns), or
    /// disarms it with `None` (`timerfd_settime`).
    pub(crate) fn set(&self, after: Option<Duration>) -> io::Result<()> {
        let value = match after {
            Some(d) => {
                let d = d.max(Duration::from_nanos(1));
                Timespec {
                    tv_sec: d.as_secs() as _,
                    tv_nsec: d.subsec_nanos() as _,
                }
            }
            None => Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        rustix::time::timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec)?;
        Ok(())
    }
}

impl AsFd for TimerFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

static ORIGINAL_NOFILE: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

fn limit_raw(v: Option<u64>) -> u64 {
    v.unwrap_or(libc::RLIM_INFINITY)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, recording the original
/// the first time, and returns the new soft limit.
/// [setrlimit(2)](https://man7.org/linux/man-pages/man2/getrlimit.2.html)
pub(crate) fn raise_nofile() -> io::Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    ORIGINAL_NOFILE.get_or_init(|| (limit_raw(cur.current), limit_raw(cur.maximum)));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: cur.maximum,
            maximum: cur.maximum,
        },
    )?;
    Ok(limit_raw(cur.maximum))
}

/// The `RLIMIT_NOFILE` (soft, hard) the process had before pidreap raised
/// it, for children to get back; `None` if pidreap never raised it.
pub(crate) fn original_nofile() -> Option<(u64, u64)> {
    ORIGINAL_NOFILE.get().copied()
}
