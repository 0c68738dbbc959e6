//! Shared helpers for the tests on real processes: a guard that SIGKILLs and
//! reaps whatever a test leaves behind, `/proc` readers, a deadline-bounded
//! line reader for pipes, and `wait_until`.
//!
//! Every wait here has a deadline: a hang fails with a message instead of
//! wedging CI.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Generous default deadline for anything that should take milliseconds:
/// the machine is small and shared.
pub const LONG: Duration = Duration::from_secs(20);

/// Polls `cond` every few milliseconds until it holds; panics naming `what`
/// if it still does not hold after `within`.
#[track_caller]
pub fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Aborts the whole test process if it runs for longer than `limit`: the
/// last line of defence against a hang (every wait in the tests has its own
/// deadline too). Children die with it: they all carry PDEATHSIG.
pub fn watchdog(limit: Duration) {
    static START: Once = Once::new();
    START.call_once(|| {
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                std::thread::sleep(limit);
                eprintln!("watchdog: the test process ran for more than {limit:?}; aborting");
                // SAFETY: _exit ends the process at once; nothing to uphold.
                unsafe { libc::_exit(99) };
            })
            .expect("spawning the watchdog thread");
    });
}

// ---------------------------------------------------------------- /proc

/// The fields of `/proc/<pid>/stat` the tests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command name (`comm`), without the parentheses.
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, `T`, ...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// Start time in clock ticks since boot: with the pid, it names one
    /// process for ever (pids are reused, this pair is not).
    pub starttime: u64,
}

/// Parses `/proc/<pid>/stat`; `None` if the process is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    // After ") ": field 3 (state) is index 0 here.
    let rest: Vec<&str> = text[close + 2..].split_whitespace().collect();
    Some(Stat {
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        // Field 22 overall; field 3 is rest[0].
        starttime: rest.get(19)?.parse().ok()?,
    })
}

/// Waits until `pid` runs `comm` (its exec is complete).
///
/// `spawn()` returns once the child's exec has passed the point of no
/// return (the vfork parent is released, or the exec-status pipe is closed),
/// which is *before* the kernel has closed the child's close-on-exec fds and
/// renamed it. Read `/proc/<pid>/fd` after this, not before.
#[track_caller]
pub fn wait_exec(pid: u32, comm: &str) {
    wait_until(LONG, &format!("pid {pid} has exec'd {comm}"), || {
        stat(pid).is_some_and(|s| s.comm == comm)
    });
}

/// Waits until `pid` holds exactly fds 0, 1 and 2; panics with what it
/// holds if that does not happen within [`LONG`].
///
/// "Eventually", because a freshly exec'd program briefly holds fds of its
/// own (the dynamic loader opens each shared library as fd 3, then closes
/// it). A leaked fd stays for good: `sleep` never closes what it inherits.
#[track_caller]
pub fn wait_only_stdio(pid: u32) {
    let deadline = Instant::now() + LONG;
    loop {
        let fds = fds_of(pid);
        if fds == [0, 1, 2] {
            return;
        }
        if Instant::now() >= deadline {
            let targets: Vec<_> = fds.iter().map(|&fd| (fd, fd_target(pid, fd))).collect();
            panic!("pid {pid} still holds fds beyond stdio after {LONG:?}: {targets:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The process's state letter, if it exists.
pub fn state(pid: u32) -> Option<char> {
    stat(pid).map(|s| s.state)
}

/// The process's parent pid, if it exists.
pub fn ppid(pid: u32) -> Option<i32> {
    stat(pid).map(|s| s.ppid)
}

/// The process's start time, if it exists.
pub fn starttime(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.starttime)
}

/// A process recorded while alive: its pid and start time, so that a later
/// look at `/proc/<pid>` cannot be fooled by pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub starttime: u64,
}

impl Proc {
    /// Records a live process. Panics if it is not there.
    #[track_caller]
    pub fn of(pid: u32) -> Proc {
        let st = stat(pid)
            .unwrap_or_else(|| panic!("pid {pid} should be alive, but /proc/{pid} is gone"));
        Proc {
            pid,
            starttime: st.starttime,
        }
    }

    /// Its current `/proc` entry, or `None` if it no longer exists (the pid
    /// is free, or belongs to another process now).
    pub fn stat(&self) -> Option<Stat> {
        stat(self.pid).filter(|s| s.starttime == self.starttime)
    }

    /// True if the process no longer exists at all: not even a zombie.
    pub fn is_gone(&self) -> bool {
        self.stat().is_none()
    }

    /// True if the process is dead: gone, or a zombie (of someone else:
    /// orphans are reparented to init, which reaps them in its own time).
    pub fn is_dead(&self) -> bool {
        self.stat().is_none_or(|s| s.state == 'Z')
    }
}

/// One field of `/proc/<pid>/status` (such as `SigBlk`), raw.
pub fn status_field(pid: u32, field: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')
            .map(|v| v.trim().to_string())
    })
}

/// A signal mask field of `/proc/<pid>/status` (`SigBlk`, `SigIgn`,
/// `SigCgt`, `SigPnd`, `ShdPnd`) as a 64-bit set: bit `n - 1` is signal `n`.
#[track_caller]
pub fn sig_field(pid: u32, field: &str) -> u64 {
    let raw =
        status_field(pid, field).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    u64::from_str_radix(&raw, 16).unwrap_or_else(|e| panic!("{field} of pid {pid} is {raw:?}: {e}"))
}

/// The bit of signal `sig` in a `/proc` signal mask.
pub fn sig_bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Asserts what every child must start with, whatever its supervisor has
/// blocked or caught: an empty blocked mask, nothing caught, and the
/// supervisor's ignored signals except SIGPIPE (Rust programs ignore it;
/// children get it back; signals the test's own parent ignored stay ignored,
/// as with std). `pid` must already run its program (see [`wait_exec`]).
pub fn assert_clean_signal_state(pid: u32) {
    let me = std::process::id();
    assert_eq!(
        sig_field(pid, "SigBlk"),
        0,
        "the child inherited the supervisor's blocked signals"
    );
    let own_ign = sig_field(me, "SigIgn");
    assert_ne!(
        own_ign & sig_bit(libc::SIGPIPE),
        0,
        "Rust programs ignore SIGPIPE"
    );
    assert_eq!(sig_field(pid, "SigIgn"), own_ign & !sig_bit(libc::SIGPIPE));
    assert_ne!(sig_field(me, "SigCgt"), 0, "Rust programs catch SIGSEGV");
    assert_eq!(sig_field(pid, "SigCgt"), 0, "the child catches nothing");
}

/// The fds open in process `pid` (`/proc/<pid>/fd`), sorted.
pub fn fds_of(pid: u32) -> Vec<i32> {
    let mut fds: Vec<i32> = match fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    fds.sort_unstable();
    fds
}

/// Where fd `fd` of process `pid` points (`/proc/<pid>/fd/<fd>`).
pub fn fd_target(pid: u32, fd: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()
}

/// The number of fds open in this process. The directory listing itself
/// costs one fd while it is read: subtracted.
pub fn self_fd_count() -> usize {
    let n = fs::read_dir("/proc/self/fd")
        .expect("listing /proc/self/fd")
        .count();
    n - 1
}

/// The fds open in this process, with their targets (for messages when a
/// count differs).
pub fn self_fds() -> BTreeSet<(i32, String)> {
    fs::read_dir("/proc/self/fd")
        .expect("listing /proc/self/fd")
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

/// Every process in `/proc` with its stat.
pub fn all_procs() -> Vec<(u32, Stat)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        Some((pid, stat(pid)?))
    })
    .collect()
}

/// The pids whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    all_procs()
        .into_iter()
        .filter(|(_, s)| s.ppid == parent as i32)
        .map(|(p, _)| p)
        .collect()
}

/// This process's children that are zombies (exited, not reaped).
pub fn own_zombies() -> Vec<u32> {
    let me = std::process::id() as i32;
    all_procs()
        .into_iter()
        .filter(|(_, s)| s.ppid == me && s.state == 'Z')
        .map(|(p, _)| p)
        .collect()
}

/// All of this process's children, alive or zombie.
pub fn own_children() -> Vec<u32> {
    children_of(std::process::id())
}

// ---------------------------------------------------------------- guard

/// Opens a pidfd for `pid` (close-on-exec).
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_kill(fd: &OwnedFd) {
    // SAFETY: pidfd_send_signal(fd, SIGKILL, NULL, 0).
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<u8>(),
            0,
        );
    }
}

/// Reaps the process behind `pidfd` if it is our child and has exited;
/// true if it was reaped now or is not (or no longer) ours to reap.
fn reap_if_exited(pidfd: &OwnedFd) -> bool {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid(P_PIDFD) on one specific process (never P_ALL: that
    // would steal the reaper's statuses in tests running in parallel
    // threads), writing one siginfo_t.
    let r = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    // SAFETY: waitid filled (or left zeroed) the siginfo_t.
    r != 0 || unsafe { info.si_pid() } != 0
}

/// Kills (SIGKILL, through a pidfd: no pid-reuse race) every process it
/// tracks when dropped, and reaps those that are our own children. Declare
/// it *before* the `Reaper`, so that it drops after it: in a passing test
/// everything is dead already and it does nothing.
///
/// Where `pidfd_open` is refused (the seccomp sandbox runs), it kills by
/// pid instead, and only a process whose start time is still the one seen
/// when it was tracked, so that a reused pid is left alone.
#[derive(Debug, Default)]
pub struct Guard {
    procs: Vec<(u32, Tracked)>,
}

#[derive(Debug)]
enum Tracked {
    Pidfd(OwnedFd),
    /// No pidfd: the process's start time when it was tracked.
    Pid(Option<u64>),
}

impl Guard {
    pub fn new() -> Guard {
        Guard::default()
    }

    /// Tracks `pid` (call while it is alive, or at least unreaped).
    pub fn track(&mut self, pid: u32) {
        let tracked = match pidfd_open(pid) {
            Ok(fd) => Tracked::Pidfd(fd),
            Err(_) => Tracked::Pid(starttime(pid)),
        };
        self.procs.push((pid, tracked));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (pid, tracked) in &self.procs {
            match tracked {
                Tracked::Pidfd(fd) => pidfd_kill(fd),
                Tracked::Pid(Some(started)) if starttime(*pid) == Some(*started) => {
                    // SAFETY: kill takes a pid and a signal; the start time
                    // says the pid is still the process we tracked.
                    unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
                }
                Tracked::Pid(_) => {}
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for (pid, tracked) in &self.procs {
            // Our own child: reap it (it is already SIGKILLed). Not ours:
            // its parent or init reaps it.
            match tracked {
                Tracked::Pidfd(fd) => {
                    while !reap_if_exited(fd) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                Tracked::Pid(_) => loop {
                    // SAFETY: waitpid with a null status pointer.
                    let r =
                        unsafe { libc::waitpid(*pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
                    if r != 0 || Instant::now() >= deadline {
                        break; // reaped, or not our child (-1), or out of time
                    }
                    std::thread::sleep(Duration::from_millis(2));
                },
            }
        }
    }
}

// ---------------------------------------------------------------- pipes

/// Waits until `fd` is readable, or `deadline`. Panics on timeout.
#[track_caller]
pub fn wait_readable(fd: &impl AsFd, deadline: Instant, what: &str) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 {
            return;
        }
        if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if left.is_zero() || r == 0 {
            panic!("timed out waiting for {what}");
        }
    }
}

/// True if `fd` is readable right now, or becomes so within `within`.
pub fn readable_within(fd: &impl AsFd, within: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, within.as_millis() as i32) };
    r > 0 && pfd.revents & libc::POLLIN != 0
}

/// Reads lines from a pipe, each with a deadline.
pub struct Lines<R> {
    inner: R,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: Read + AsFd> Lines<R> {
    pub fn new(inner: R) -> Lines<R> {
        Lines {
            inner,
            buf: Vec::new(),
            eof: false,
        }
    }

    fn fill(&mut self, deadline: Instant, what: &str) {
        wait_readable(&self.inner, deadline, what);
        let mut chunk = [0u8; 4096];
        match self.inner.read(&mut chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading {what}: {e}"),
        }
    }

    /// The next line, without its newline. Panics on timeout or EOF.
    #[track_caller]
    pub fn line(&mut self, within: Duration, what: &str) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return String::from_utf8_lossy(&line[..pos]).into_owned();
            }
            if self.eof {
                panic!(
                    "EOF before {what} (got {:?})",
                    String::from_utf8_lossy(&self.buf)
                );
            }
            self.fill(deadline, what);
        }
    }

    /// Everything up to EOF. Panics on timeout.
    #[track_caller]
    pub fn rest(&mut self, within: Duration, what: &str) -> String {
        let deadline = Instant::now() + within;
        while !self.eof {
            self.fill(deadline, what);
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }
}

// ---------------------------------------------------------------- files

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pidreap-test-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("creating a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Opens `/dev/null` *without* `O_CLOEXEC`, on purpose: a child must still
/// not see it.
pub fn open_inheritable() -> OwnedFd {
    // SAFETY: open with a valid C string; returns a new fd or -1.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0, "open /dev/null: {}", io::Error::last_os_error());
    // SAFETY: a new fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_GETFD on a valid fd.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert_eq!(flags & libc::FD_CLOEXEC, 0, "the fd should be inheritable");
    fd
}

/// The PID namespace of `pid`, as the `/proc/PID/ns/pid` link names it.
pub fn pid_ns(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Every live (non-zombie) process in namespace `ns`.
pub fn ns_members(ns: &str) -> Vec<u32> {
    all_procs()
        .into_iter()
        .filter(|(pid, st)| st.state != 'Z' && pid_ns(*pid).as_deref() == Some(ns))
        .map(|(pid, _)| pid)
        .collect()
}

/// The cgroup v2 path (the `0::` line of `/proc/PID/cgroup`) of `pid`.
pub fn cgroup_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Every live (non-zombie) process whose cgroup is `prefix` or below it.
pub fn cgroup_members(prefix: &str) -> Vec<u32> {
    let below = format!("{prefix}/");
    all_procs()
        .into_iter()
        .filter(|(pid, st)| {
            st.state != 'Z' && cgroup_of(*pid).is_some_and(|c| c == prefix || c.starts_with(&below))
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// The cgroup2 mount point, from `/proc/self/mountinfo`.
pub fn cgroup2_mount() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.starts_with("cgroup2 ") {
            left.split(' ').nth(4).map(str::to_owned)
        } else {
            None
        }
    })
}

/// Set by `.ci/run`: a test that would be skipped for lack of a kernel
/// feature, a privilege or a tool fails instead, so that CI proves every
/// mechanism rather than skipping it quietly.
pub const REQUIRE_ALL: &str = "PIDREAP_TEST_REQUIRE_ALL";

/// Skips `test` for `reason` (printed), returning false; panics instead when
/// [`REQUIRE_ALL`] is set.
pub fn skip(test: &str, reason: &str) -> bool {
    if std::env::var_os(REQUIRE_ALL).is_some() {
        panic!("{test} cannot run here ({reason}), and {REQUIRE_ALL} is set: every test must run");
    }
    eprintln!("SKIPPED {test}: {reason}");
    false
}

/// True when `containment` works here; else skips `test` (see [`skip`])
/// with what is missing.
pub fn containment_or_skip(test: &str, containment: pidreap::Containment) -> bool {
    if matches!(
        containment,
        pidreap::Containment::Cgroup | pidreap::Containment::PidNamespace
    ) && contain_mode_skip(test)
    {
        return false;
    }
    match containment.check() {
        Ok(()) => true,
        Err(e) => skip(test, &e.to_string()),
    }
}

/// The seccomp profile the whole run is under (`reaper_isolated --sandbox
/// PROFILE` sets `PIDREAP_TEST_SANDBOX`), if any.
pub fn sandbox() -> Option<String> {
    std::env::var("PIDREAP_TEST_SANDBOX").ok()
}

/// True when the run has no pidfds at all: forced
/// (`PIDREAP_TEST_SPAWN_MODE=no-pidfd`) or refused by the kernel
/// (`--sandbox no-pidfd`). Then tests that need pidfds by nature (the
/// `PidFd` primitive, cgroup and PID-namespace containment) skip with
/// [`mode_skip`], which does not fail under [`REQUIRE_ALL`]: the mode, not
/// the machine, rules them out.
pub fn mode_lacks_pidfd() -> bool {
    std::env::var("PIDREAP_TEST_SPAWN_MODE").as_deref() == Ok("no-pidfd")
        || sandbox().as_deref() == Some("no-pidfd")
}

/// Skips `test` (returning true) when the run has no pidfds: see
/// [`mode_lacks_pidfd`].
pub fn mode_skip(test: &str) -> bool {
    if mode_lacks_pidfd() {
        eprintln!("SKIPPED {test}: needs pidfds, and this run has none (forced or refused)");
        return true;
    }
    false
}

/// Skips `test` (returning true) when the run rules out cgroup and
/// PID-namespace containment: no pidfds at all, or no `pidfd_open` (the
/// `docker` sandbox), which their sentinel and their init's parent check
/// need.
pub fn contain_mode_skip(test: &str) -> bool {
    mode_skip(test) || sandbox_skip(test, "pidfd_open")
}

/// Skips `test` (returning true) when the run is under a seccomp sandbox
/// (`reaper_isolated --sandbox`): for tests that need what every profile
/// refuses (`needs`: `pidfd_open`, `pidfd_send_signal`) in the test
/// itself, not in pidreap. Such a skip does not fail under
/// [`REQUIRE_ALL`]: the run, not the machine, rules the test out.
pub fn sandbox_skip(test: &str, needs: &str) -> bool {
    if sandbox().is_some() {
        eprintln!("SKIPPED {test}: needs {needs}, which this run's seccomp sandbox refuses");
        return true;
    }
    false
}
