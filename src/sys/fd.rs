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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
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
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// How many low fd numbers a [`LowSlots`] keeps: one per stdio source, one
/// for the terminal and one for the parent's pidfd.
pub(crate) const LOW_SLOTS: usize = 5;
/// The [`LowSlots`] slot of the terminal fd.
pub(crate) const SLOT_TERMINAL: usize = 3;
/// The [`LowSlots`] slot of the parent's pidfd (a child in a new PID
/// namespace).
pub(crate) const SLOT_PARENT_PIDFD: usize = 4;

/// Low fd numbers kept for the fds a child takes through the fd-table
/// unshare (its stdio sources, the terminal, the parent's pidfd).
///
/// The child unshares its fd table with `close_range(keep_below, ~0,
/// CLOSE_RANGE_UNSHARE)`, and the kernel copies every slot below
/// `keep_below` into the child's new table
/// ([close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)).
/// A pipe made for a spawn takes the lowest free number, above every fd
/// the program holds: with 10,000 fds open, 10,000 slots are copied for
/// each spawn. So a spawner takes [`LOW_SLOTS`] numbers when it is made,
/// each holding a placeholder (an eventfd, close-on-exec), and each spawn
/// `dup3`s its sources onto them and puts the placeholders back afterwards
/// ([`LowSlots::place`]). The copy then stays a handful of slots, whatever
/// the program opens after the spawner was made (fds already open then
/// lie below the slots and are still copied).
/// [dup3(2)](https://man7.org/linux/man-pages/man2/dup3.2.html)
#[derive(Debug)]
pub(crate) struct LowSlots {
    /// The kept numbers (fewer than [`LOW_SLOTS`] if the fds ran out).
    slots: Vec<OwnedFd>,
    /// What a free slot holds a duplicate of; kept high.
    placeholder: Option<OwnedFd>,
}

impl LowSlots {
    /// Takes the lowest free numbers from 3. Best effort: where an fd
    /// cannot be made, fewer (or no) slots, and the sources stay where they
    /// are.
    pub(crate) fn new() -> LowSlots {
        let Ok(placeholder) = eventfd() else {
            return LowSlots {
                slots: Vec::new(),
                placeholder: None,
            };
        };
        let mut slots = Vec::with_capacity(LOW_SLOTS);
        while slots.len() < LOW_SLOTS {
            match duplicate(&placeholder) {
                Ok(fd) => slots.push(fd),
                Err(_) => break,
            }
        }
        LowSlots {
            slots,
            placeholder: Some(move_high(placeholder, high_floor())),
        }
    }

    /// A [`Placed`] for one spawn attempt: its sources go onto the slots
    /// until it is dropped.
    pub(crate) fn place(&self) -> Placed<'_> {
        Placed {
            slots: self,
            used: std::cell::Cell::new(0),
        }
    }
}

/// The sources one spawn attempt put onto a [`LowSlots`]; dropping it puts
/// the placeholders back, which closes the slots' hold on the sources (a
/// pipe's write end left in a slot would keep its reader from seeing EOF).
pub(crate) struct Placed<'a> {
    slots: &'a LowSlots,
    /// Bit `i`: slot `i` holds a source.
    used: std::cell::Cell<u8>,
}

impl Placed<'_> {
    /// Puts `source` onto slot `slot` (close-on-exec) and returns the
    /// slot's number; `source` itself where there is no such slot or the
    /// `dup3` fails.
    pub(crate) fn put(&self, slot: usize, source: RawFd) -> RawFd {
        let Some(target) = self.slots.slots.get(slot) else {
            return source;
        };
        let target = target.as_raw_fd();
        if target == source {
            return source;
        }
        // SAFETY: `target` is a slot this LowSlots owns (an open fd that no
        // other code uses), so replacing what it holds closes nothing of
        // anyone else's; `source` is only duplicated.
        let r = unsafe { libc::dup3(source, target, libc::O_CLOEXEC) };
        if r < 0 {
            return source;
        }
        self.used.set(self.used.get() | 1 << slot);
        target
    }
}

impl Drop for Placed<'_> {
    fn drop(&mut self) {
        let Some(placeholder) = &self.slots.placeholder else {
            return;
        };
        for (i, slot) in self.slots.slots.iter().enumerate() {
            if self.used.get() & 1 << i != 0 {
                // SAFETY: as in `put`: the slot is ours. Should this fail,
                // the slot keeps the source open until the next spawn puts
                // something there.
                unsafe { libc::dup3(placeholder.as_raw_fd(), slot.as_raw_fd(), libc::O_CLOEXEC) };
            }
        }
    }
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
