//! Containing a child's whole tree: which mechanisms work here
//! ([`check`]), and the cgroups a reaper keeps for the children it spawns
//! with [`Containment::Cgroup`] ([`CgroupHome`], [`Tree`]).
//!
//! # The cgroup layout
//!
//! ```text
//! <our own cgroup>/
//!     pidreap-<pid>-<n>-ns<ino>/  one per reaper that needed it (its "home"),
//!         c<k>/               guarded by one sentinel process
//!         c<k+1>/             one leaf per contained child
//! ```
//!
//! The home holds no process itself, so controllers may be enabled for its
//! leaves ("no internal processes" rule of
//! [cgroup v2](https://docs.kernel.org/admin-guide/cgroup-v2.html#no-internal-process-constraint));
//! the memory controller is asked for, so that `memory.peak` can be
//! reported, and going without it is fine. The sentinel (see
//! `sys::sentinel`) kills and removes the home's whole subtree when the
//! reaper's process is gone, however it went.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::command::Containment;
use crate::error::{Error, Result};
use crate::signal::Signal;
use crate::status::{ExitStatus, TreeUsage};
use crate::sys::cgroup::{self, CgroupDir, CgroupEvents, Unavailable};
use crate::sys::sentinel::Sentinel;
use crate::sys::spawn::{no_pidfd, pidfd_open_works, probe_namespaces};

/// `CAP_SYS_ADMIN`, the capability `CLONE_NEWPID` needs
/// ([capabilities(7)](https://man7.org/linux/man-pages/man7/capabilities.7.html)).
const CAP_SYS_ADMIN: u32 = 21;

/// Whether `containment` works here; the error says what is missing.
pub(crate) fn check(containment: Containment) -> Result<()> {
    match containment {
        Containment::None | Containment::ProcessGroup => Ok(()),
        Containment::PidNamespace | Containment::Cgroup if no_pidfd() => {
            Err(needs_pidfds(containment))
        }
        Containment::PidNamespace | Containment::Cgroup if pidfd_open_works().is_err() => {
            let errno = pidfd_open_works().err().unwrap_or(0);
            Err(unavailable(
                containment,
                format_args!(
                    "pidfd_open is refused here ({}: Linux before 5.3, or a seccomp filter), and {}; Containment::ProcessGroup works",
                    io::Error::from_raw_os_error(errno),
                    needs_pidfd_open(containment)
                ),
            ))
        }
        Containment::PidNamespace => check_pid_namespace(),
        Containment::Cgroup => check_cgroup(),
    }
}

/// What spawning under `containment` needs beyond [`check`]'s probes,
/// checked at every spawn: in no-pidfd mode a cgroup or a PID namespace is
/// refused (their supervision runs through pidfds).
pub(crate) fn check_spawnable(containment: Containment) -> Result<()> {
    match containment {
        Containment::PidNamespace | Containment::Cgroup if no_pidfd() => {
            Err(needs_pidfds(containment))
        }
        _ => Ok(()),
    }
}

/// What `containment` opens with `pidfd_open`.
fn needs_pidfd_open(containment: Containment) -> &'static str {
    match containment {
        Containment::Cgroup => "signals reach the members of a child's cgroup through their pidfds",
        _ => "the namespace's init checks on its parent through a pidfd of the supervisor",
    }
}

/// The reason a containment is refused in no-pidfd mode.
fn needs_pidfds(containment: Containment) -> Error {
    let why = match containment {
        Containment::Cgroup => {
            "its sentinel (which kills the tree if the supervisor dies) is watched through a pidfd"
        }
        _ => "the namespace's init checks on its parent through a pidfd of the supervisor",
    };
    unavailable(
        containment,
        format_args!("no pidfds here (the kernel or a seccomp filter refuses CLONE_PIDFD and pidfd_open: Linux before 5.3, or a sandbox), and {why}; Containment::ProcessGroup works"),
    )
}

fn unavailable(containment: Containment, reason: impl std::fmt::Display) -> Error {
    Error::ContainmentUnavailable {
        mechanism: containment.name(),
        reason: reason.to_string(),
    }
}

/// Whether this process has `CAP_SYS_ADMIN` (in its user namespace),
/// which `CLONE_NEWPID` needs: `CapEff` in `/proc/self/status`, read once
/// ([proc_pid_status(5)](https://man7.org/linux/man-pages/man5/proc_pid_status.5.html)).
pub(crate) fn has_cap_sys_admin() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
    })
}

/// A PID namespace needs `CAP_SYS_ADMIN`, or else an unprivileged user
/// namespace around it, which the kernel may refuse (a sysctl such as
/// `user.max_user_namespaces=0`, or a security module): probed by cloning
/// a child that exits at once.
/// [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html),
/// [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)
fn check_pid_namespace() -> Result<()> {
    if has_cap_sys_admin() {
        return Ok(());
    }
    probe_namespaces(libc::CLONE_NEWUSER | libc::CLONE_NEWPID).map_err(|e| {
        unavailable(
            Containment::PidNamespace,
            format_args!("no CAP_SYS_ADMIN for CLONE_NEWPID, and the kernel refused an unprivileged user namespace: {e}"),
        )
    })
}

/// cgroup v2 mounted, our cgroup visible and ours to manage (write access
/// to it and its `cgroup.procs`, not a read-only mount), and `cgroup.kill`
/// there (the sentinel needs it; the root cgroup has none of its own, so
/// there the kernel's version says whether its children have one). Nothing
/// is created: a supervisor killed during the check leaves nothing behind.
fn check_cgroup() -> Result<()> {
    let located = cgroup::locate().map_err(|e| unavailable(Containment::Cgroup, e))?;
    let own = located
        .open()
        .map_err(|e| unavailable(Containment::Cgroup, Unavailable::from(e)))?;
    own.check_writable()
        .map_err(|e| unavailable(Containment::Cgroup, e))?;
    if located.is_mount_root() {
        if kernel_at_least(5, 14) {
            return Ok(());
        }
        return Err(unavailable(
            Containment::Cgroup,
            "cgroup.kill needs Linux 5.14, which kills the tree after the supervisor's death",
        ));
    }
    require_cgroup_kill(&own)
}

/// Whether the running kernel is at least `major.minor`, from
/// `/proc/sys/kernel/osrelease`
/// ([proc_sys_kernel(5)](https://man7.org/linux/man-pages/man5/proc_sys_kernel.5.html)).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

/// Removes what supervisors that died before their sentinel ran left in
/// `own`: empty `pidreap-<pid>-<n>-ns<ino>` and
/// `pidreap-probe-<pid>-<n>-ns<ino>` cgroups whose `<pid>` is no longer
/// alive. A populated one is left alone (a sentinel is still at work, or
/// someone else's tree is in it), and so is one whose pid is alive,
/// whoever has that pid now. A pid means something only in the PID
/// namespace it was given in: a cgroup named from another namespace (a
/// supervisor in a container sharing our cgroup, whose pids we cannot
/// see), or from an unknown one, is never ours to judge.
fn remove_stale(own: &CgroupDir) {
    let Ok(children) = own.children() else {
        return;
    };
    let me = std::process::id();
    let ours = own_pid_namespace();
    for dir in children {
        let Some(name) = dir.path().file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(rest) = name
            .strip_prefix("pidreap-probe-")
            .or_else(|| name.strip_prefix("pidreap-"))
        else {
            continue;
        };
        let mut parts = rest.split('-');
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let ns = parts.nth(1).and_then(|n| n.strip_prefix("ns"));
        if ns.is_none_or(|ns| Some(ns) != ours.as_deref()) {
            continue;
        }
        if pid == me || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if dir.populated().unwrap_or(true) {
            continue;
        }
        match dir.remove_tree() {
            Ok(()) => log::debug!(
                "removed {}, left by a supervisor that died",
                dir.path().display()
            ),
            Err(e) => log::debug!("leaving {}: {e}", dir.path().display()),
        }
    }
}

fn open_own_cgroup() -> Result<CgroupDir> {
    let located = cgroup::locate().map_err(|e| unavailable(Containment::Cgroup, e))?;
    located
        .open()
        .map_err(|e| unavailable(Containment::Cgroup, Unavailable::from(e)))
}

fn require_cgroup_kill(dir: &CgroupDir) -> Result<()> {
    if dir.has_file(c"cgroup.kill") {
        Ok(())
    } else {
        Err(unavailable(
            Containment::Cgroup,
            format_args!(
                "{} has no cgroup.kill (needs Linux 5.14), which kills the tree after the supervisor's death",
                dir.path().display()
            ),
        ))
    }
}

/// `<prefix>-<pid>-<n>-ns<ino>`, unique within this process; `<ino>`
/// names the PID namespace `<pid>` belongs to (`unknown` if
/// `/proc/self/ns/pid` cannot be read), so that a supervisor in another
/// namespace never takes our home for a dead one's.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-ns{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        own_pid_namespace().as_deref().unwrap_or("unknown")
    )
}

/// The inode number of our PID namespace, in decimal, read each time: a
/// process that forked into a new namespace has another one.
/// [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html)
fn own_pid_namespace() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid")
        .ok()
        .map(|m| m.ino().to_string())
}

/// A reaper's cgroup for its contained children, with the sentinel that
/// kills it all if the reaper's process dies.
///
/// A supervisor killed between making its home and starting the sentinel
/// leaves an empty home behind (nothing was spawned into it yet); the next
/// home made in the same cgroup removes it.
#[derive(Debug)]
pub(crate) struct CgroupHome {
    // Dropped first: the sentinel kills what is left and removes the home.
    sentinel: Sentinel,
    dir: CgroupDir,
    next_leaf: u64,
}

impl CgroupHome {
    /// Creates the home below our own cgroup and starts its sentinel.
    pub(crate) fn create() -> Result<CgroupHome> {
        let own = open_own_cgroup()?;
        remove_stale(&own);
        let dir = own
            .create_child(&unique_name("pidreap"))
            .map_err(|e| unavailable(Containment::Cgroup, e))?;
        if let Err(e) = require_cgroup_kill(&dir) {
            let _ = dir.remove();
            return Err(e);
        }
        if let Err(e) = dir.enable_controllers("+memory") {
            log::debug!(
                "no memory controller for contained trees ({e}): memory.peak will not be reported"
            );
        }
        let sentinel = match Sentinel::start(&dir) {
            Ok(s) => s,
            Err(e) => {
                let _ = dir.remove();
                return Err(unavailable(
                    Containment::Cgroup,
                    format_args!("starting the cgroup sentinel: {e}"),
                ));
            }
        };
        log::debug!(
            "contained children go below {} (sentinel pid {})",
            dir.path().display(),
            sentinel.pid()
        );
        Ok(CgroupHome {
            sentinel,
            dir,
            next_leaf: 0,
        })
    }

    /// A new, empty leaf cgroup for one child.
    pub(crate) fn leaf(&mut self) -> Result<Tree> {
        let name = format!("c{}", self.next_leaf);
        self.next_leaf += 1;
        let leaf = self
            .dir
            .create_child(&name)
            .map_err(|e| unavailable(Containment::Cgroup, e))?;
        match leaf.events() {
            Ok(events) => Ok(Tree { leaf, events }),
            Err(e) => {
                let _ = leaf.remove();
                Err(unavailable(Containment::Cgroup, Unavailable::from(e)))
            }
        }
    }

    /// The sentinel's pidfd: readable when it exited, which before the
    /// reaper is dropped means containment after the reaper's death is lost.
    pub(crate) fn sentinel_pidfd(&self) -> BorrowedFd<'_> {
        self.sentinel.pidfd()
    }

    /// Reaps the sentinel if it exited; logs what that means.
    pub(crate) fn check_sentinel(&mut self) -> Option<ExitStatus> {
        match self.sentinel.try_reap() {
            Ok(Some(status)) => {
                log::error!(
                    "the cgroup sentinel (pid {}) for {} ended ({status}): contained trees are no longer killed if this process dies",
                    self.sentinel.pid(),
                    self.dir.path().display()
                );
                Some(status)
            }
            Ok(None) => None,
            Err(e) => {
                log::error!("{e}");
                None
            }
        }
    }

    /// The sentinel's pid.
    pub(crate) fn sentinel_pid(&self) -> i32 {
        self.sentinel.pid()
    }
}

/// One contained child's leaf cgroup, and its `cgroup.events`.
#[derive(Debug)]
pub(crate) struct Tree {
    leaf: CgroupDir,
    events: CgroupEvents,
}

impl Tree {
    /// The leaf's directory fd, to be born in (`CLONE_INTO_CGROUP`).
    pub(crate) fn dir_fd(&self) -> BorrowedFd<'_> {
        self.leaf.fd()
    }

    /// `cgroup.events`, to register for `EPOLLPRI`.
    pub(crate) fn events_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.events.as_fd()
    }

    /// Sends `signal` to the whole tree: SIGKILL with `cgroup.kill`, any
    /// other signal to every process listed. `Ok(false)` if it was empty.
    pub(crate) fn send(&self, signal: Signal) -> io::Result<bool> {
        if signal == Signal::KILL {
            self.leaf.kill().map_err(io::Error::other)?;
            return Ok(true);
        }
        Ok(self.leaf.signal(signal).map_err(io::Error::other)? > 0)
    }

    /// Whether any process is left in the tree. An unreadable file counts
    /// as populated: the tree is only ever declared gone when it says so.
    pub(crate) fn populated(&self) -> bool {
        self.events.populated().unwrap_or_else(|e| {
            log::error!("{e}");
            true
        })
    }

    /// What the tree used, read from the leaf.
    pub(crate) fn usage(&self) -> Option<TreeUsage> {
        match self.leaf.usage() {
            Ok(u) => Some(TreeUsage {
                cpu_time: u.usage,
                user_time: u.user,
                system_time: u.system,
                memory_peak: u.memory_peak,
            }),
            Err(e) => {
                log::warn!("{e}");
                None
            }
        }
    }

    /// Removes the (empty) leaf.
    pub(crate) fn remove(&self) {
        if let Err(e) = self.leaf.remove() {
            log::warn!("{e}");
        }
    }
}
