//! cgroup v2 tree containment: find our cgroup, make leaf cgroups, kill a
//! whole subtree, learn when it is empty, read what it used, remove it.
//!
//! Everything here follows the kernel's
//! [cgroup v2 documentation](https://docs.kernel.org/admin-guide/cgroup-v2.html)
//! and works on directory fds where it can (`openat`, `mkdirat`), so that a
//! cgroup is named once, when it is opened.
//!
//! The interface files used and the kernel that added them:
//! `cgroup.events` (4.5 as `populated`, pollable), `cgroup.freeze` (5.2),
//! `cgroup.kill` (5.14), `memory.peak` (5.19, with the memory controller
//! enabled for the cgroup). `cpu.stat` exists in every non-root cgroup.

use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::signal::Signal;

/// Why cgroup containment cannot be had here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unavailable {
    /// No `cgroup2` file system is mounted in this mount namespace.
    #[error("no cgroup2 file system is mounted (no \"cgroup2\" entry in /proc/self/mountinfo)")]
    NotMounted,
    /// The process is in no cgroup v2 hierarchy: `/proc/self/cgroup` has no
    /// `0::` line (cgroup v1 only).
    #[error("this process is in no cgroup v2 hierarchy (no \"0::\" line in /proc/self/cgroup)")]
    NotInV2,
    /// Our cgroup is not below the root of any cgroup2 mount we can see
    /// (a container that mounted only part of the hierarchy).
    #[error("this process's cgroup {} is outside every cgroup2 mount in /proc/self/mountinfo", cgroup.display())]
    NotVisible {
        /// Our cgroup, as `/proc/self/cgroup` names it.
        cgroup: PathBuf,
    },
    /// Creating a cgroup, or writing where that needs, was refused
    /// (`EACCES`, `EPERM`, `EROFS`): the cgroup is not delegated to this
    /// user, or the mount is read-only.
    #[error("cgroup {} is not delegated to this process (no write access): {source}", path.display())]
    NotDelegated {
        /// The directory (or file) that could not be created or written.
        path: PathBuf,
        /// What `mkdir` said.
        #[source]
        source: io::Error,
    },
    /// An operation on a cgroup or its files failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

/// A failed operation on a cgroup that exists.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CgroupError {
    /// `rmdir` said `EBUSY`: processes or child cgroups are still there.
    #[error("cannot remove cgroup {}: it still holds processes or child cgroups (rmdir: EBUSY)", path.display())]
    Busy {
        /// The cgroup.
        path: PathBuf,
    },
    /// The freeze-and-signal kill gave up with processes left.
    #[error("killing cgroup {}: {left} process(es) still there after {rounds} rounds of SIGKILL", path.display())]
    Survivors {
        /// The cgroup.
        path: PathBuf,
        /// How many processes were left.
        left: usize,
        /// How many rounds of signals were sent.
        rounds: u32,
    },
    /// A system call failed.
    #[error("{op} {} failed: {source}", path.display())]
    Os {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn os_err(op: &'static str, path: PathBuf, e: impl Into<io::Error>) -> CgroupError {
    CgroupError::Os {
        op,
        path,
        source: e.into(),
    }
}

/// Where the cgroup2 hierarchy is mounted and which cgroup we are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cgroup2 {
    mount: PathBuf,
    dir: PathBuf,
}

impl Cgroup2 {
    /// The cgroup2 mount point (`/sys/fs/cgroup` on unified systems,
    /// `/sys/fs/cgroup/unified` on hybrid ones).
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests
    pub(crate) fn mount(&self) -> &Path {
        &self.mount
    }

    /// The absolute directory of this process's own cgroup.
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether our cgroup is the root of the mounted hierarchy (the root
    /// cgroup has no `cgroup.kill` or `cgroup.freeze` of its own).
    pub(crate) fn is_mount_root(&self) -> bool {
        self.dir == self.mount
    }

    /// Opens this process's own cgroup.
    pub(crate) fn open(&self) -> Result<CgroupDir, CgroupError> {
        CgroupDir::open(&self.dir)
    }
}

/// Finds the cgroup2 mount in `/proc/self/mountinfo` and this process's
/// cgroup in the `0::` line of `/proc/self/cgroup`, and returns the absolute
/// directory of that cgroup.
///
/// Works on unified layouts (cgroup2 at `/sys/fs/cgroup`), hybrid ones
/// (`/sys/fs/cgroup/unified` beside v1 controllers) and containers that
/// mount a subtree: the mount's root field is stripped from our cgroup path.
/// Follows [Mounting](https://docs.kernel.org/admin-guide/cgroup-v2.html#mounting)
/// and [Processes](https://docs.kernel.org/admin-guide/cgroup-v2.html#processes)
/// (the `/proc/$PID/cgroup` format); the mountinfo format is
/// [proc_pid_mountinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html).
pub(crate) fn locate() -> Result<Cgroup2, Unavailable> {
    let read = |path: &'static str| {
        std::fs::read(path).map_err(|source| os_err("reading", PathBuf::from(path), source))
    };
    let mountinfo = read("/proc/self/mountinfo")?;
    let cgroup = read("/proc/self/cgroup")?;
    locate_in(&mountinfo, &cgroup)
}

/// [`locate`] on the given file contents.
fn locate_in(mountinfo: &[u8], cgroup: &[u8]) -> Result<Cgroup2, Unavailable> {
    let mounts = cgroup2_mounts(mountinfo);
    if mounts.is_empty() {
        return Err(Unavailable::NotMounted);
    }
    let own = own_v2_path(cgroup).ok_or(Unavailable::NotInV2)?;
    for (root, point) in mounts {
        let Some(rest) = strip_cgroup_prefix(&own, &root) else {
            continue;
        };
        let mount = PathBuf::from(OsString::from_vec(point));
        let mut dir = mount.clone();
        for part in rest.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            dir.push(OsString::from_vec(part.to_vec()));
        }
        return Ok(Cgroup2 { mount, dir });
    }
    Err(Unavailable::NotVisible {
        cgroup: PathBuf::from(OsString::from_vec(own)),
    })
}

/// `(root, mount point)` of every cgroup2 mount, unescaped, in order.
fn cgroup2_mounts(mountinfo: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut found = Vec::new();
    for line in mountinfo.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        // The optional fields end at a lone "-"; the fstype follows it.
        let Some(dash) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if dash < 5 || fields.get(dash + 1) != Some(&&b"cgroup2"[..]) {
            continue;
        }
        found.push((unescape(fields[3]), unescape(fields[4])));
    }
    found
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011` tab,
/// `\012` newline, `\134` backslash).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() {
            let digits = &field[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if v <= 0xff {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// The path of the `0::` line of `/proc/self/cgroup`, without a trailing
/// " (deleted)".
fn own_v2_path(cgroup: &[u8]) -> Option<Vec<u8>> {
    cgroup
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"0::"))
        .filter(|p| p.starts_with(b"/"))
        .map(|p| p.strip_suffix(b" (deleted)").unwrap_or(p).to_vec())
}

/// `own` below `root`, as a relative path; `None` if `own` is not `root`
/// or below it.
fn strip_cgroup_prefix<'a>(own: &'a [u8], root: &[u8]) -> Option<&'a [u8]> {
    let root = root.strip_suffix(b"/").unwrap_or(root);
    let rest = own.strip_prefix(root)?;
    if rest.is_empty() || rest.starts_with(b"/") {
        Some(rest)
    } else {
        None
    }
}

/// How [`CgroupDir::kill`] killed the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillMethod {
    /// One write to `cgroup.kill` (Linux 5.14+).
    CgroupKill,
    /// No `cgroup.kill`: the tree was frozen (where `cgroup.freeze` exists),
    /// every process SIGKILLed until none was left, then thawed.
    FreezeAndSignal {
        /// Rounds of signals it took.
        rounds: u32,
    },
}

/// What a cgroup's processes used, from `cpu.stat` and `memory.peak`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CgroupUsage {
    /// Total CPU time (`usage_usec`).
    pub usage: Duration,
    /// CPU time in user mode (`user_usec`).
    pub user: Duration,
    /// CPU time in the kernel (`system_usec`).
    pub system: Duration,
    /// The highest memory use in bytes (`memory.peak`), where the memory
    /// controller is enabled for the cgroup (and Linux is 5.19+).
    pub memory_peak: Option<u64>,
}

/// How long [`CgroupDir::kill`]'s fallback keeps signalling before it gives
/// up.
pub(crate) const FALLBACK_KILL_BOUND: Duration = Duration::from_secs(5);

/// An open cgroup directory: an `O_DIRECTORY | O_CLOEXEC` fd and its path.
#[derive(Debug)]
pub(crate) struct CgroupDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl CgroupDir {
    /// Opens the cgroup directory at `path`.
    ///
    /// See [Organizing Processes and Threads](https://docs.kernel.org/admin-guide/cgroup-v2.html#organizing-processes-and-threads).
    pub(crate) fn open(path: &Path) -> Result<CgroupDir, CgroupError> {
        let fd = rustix::fs::open(path, dir_flags(), Mode::empty())
            .map_err(|e| os_err("opening cgroup", path.to_path_buf(), e))?;
        Ok(CgroupDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Creates the child cgroup `name` (a single path component) and opens
    /// it. A cgroup of that name that already exists is an error
    /// (`EEXIST`), never reused.
    ///
    /// Creating a directory is how cgroups are made; `EACCES`, `EPERM` and
    /// `EROFS` mean the cgroup is not ours to manage: see
    /// [Processes](https://docs.kernel.org/admin-guide/cgroup-v2.html#processes)
    /// (a cgroup is created by creating a directory) and [Delegation](https://docs.kernel.org/admin-guide/cgroup-v2.html#delegation).
    pub(crate) fn create_child(&self, name: &str) -> Result<CgroupDir, Unavailable> {
        let path = self.path.join(name);
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(os_err(
                "creating cgroup",
                path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a cgroup name must be one non-empty path component without NUL",
                ),
            )
            .into());
        }
        if let Err(e) = rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)) {
            let source = io::Error::from(e);
            return Err(if matches!(e, Errno::ACCESS | Errno::PERM | Errno::ROFS) {
                Unavailable::NotDelegated { path, source }
            } else {
                os_err("creating cgroup", path, source).into()
            });
        }
        match rustix::fs::openat(&self.fd, name, dir_flags(), Mode::empty()) {
            Ok(fd) => Ok(CgroupDir { fd, path }),
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR);
                Err(os_err("opening the new cgroup", path, e).into())
            }
        }
    }

    /// The directory fd, for `clone3(CLONE_INTO_CGROUP)`
    /// ([clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html)).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether the interface file `name` exists here and we may write it
    /// (`faccessat(2)` with `W_OK`).
    pub(crate) fn has_file(&self, name: &CStr) -> bool {
        rustix::fs::accessat(
            &self.fd,
            name,
            rustix::fs::Access::WRITE_OK,
            AtFlags::EACCESS,
        )
        .is_ok()
    }

    /// Whether this process may create child cgroups here and move
    /// processes out of this cgroup: write (and search) access to the
    /// directory and write access to its `cgroup.procs`, by our effective
    /// ids (`faccessat(2)` with `AT_EACCESS`), without changing anything.
    /// `EROFS` for a read-only mount.
    ///
    /// See [Delegation Containment](https://docs.kernel.org/admin-guide/cgroup-v2.html#delegation-containment).
    pub(crate) fn check_writable(&self) -> Result<(), Unavailable> {
        let check = |name: &CStr, access| {
            rustix::fs::accessat(&self.fd, name, access, AtFlags::EACCESS).map_err(|e| {
                let path = if name == c"." {
                    self.path.clone()
                } else {
                    self.path.join(OsStr::from_bytes(name.to_bytes()))
                };
                Unavailable::NotDelegated {
                    path,
                    source: e.into(),
                }
            })
        };
        check(
            c".",
            rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
        )?;
        check(c"cgroup.procs", rustix::fs::Access::WRITE_OK)
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Kills every process in this cgroup and all its descendants.
    ///
    /// Writes `1` to `cgroup.kill`, which SIGKILLs the whole subtree at once,
    /// processes forked meanwhile included, and returns before they are
    /// gone: watch [`events`](Self::events) for `populated 0`. Where the
    /// file is missing (Linux before 5.14) it falls back to
    /// [`kill_by_freezing`](Self::kill_by_freezing) with
    /// [`FALLBACK_KILL_BOUND`], which returns once the tree is empty.
    ///
    /// See `cgroup.kill` in [Core Interface Files](https://docs.kernel.org/admin-guide/cgroup-v2.html#core-interface-files).
    pub(crate) fn kill(&self) -> Result<KillMethod, CgroupError> {
        match self.write_file(c"cgroup.kill", b"1") {
            Ok(()) => Ok(KillMethod::CgroupKill),
            Err(Errno::NOENT) => self
                .kill_by_freezing(FALLBACK_KILL_BOUND)
                .map(|rounds| KillMethod::FreezeAndSignal { rounds }),
            Err(e) => Err(os_err("writing 1 to", self.path.join("cgroup.kill"), e)),
        }
    }

    /// Kills the subtree without `cgroup.kill`: freezes it through
    /// `cgroup.freeze` (where that exists, Linux 5.2+: frozen processes
    /// cannot fork, and SIGKILL still ends them), SIGKILLs every process
    /// listed in `cgroup.procs` of this cgroup and all descendants, and
    /// repeats until none is left or `bound` has passed; then thaws.
    /// Returns the number of rounds of signals.
    ///
    /// Each process is signalled through a pidfd opened on the listed pid
    /// and kept only if the pid is still listed after the pidfd was opened,
    /// so a pid reused outside the cgroup is never hit
    /// ([pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)).
    ///
    /// See `cgroup.freeze` and `cgroup.procs` in
    /// [Core Interface Files](https://docs.kernel.org/admin-guide/cgroup-v2.html#core-interface-files).
    pub(crate) fn kill_by_freezing(&self, bound: Duration) -> Result<u32, CgroupError> {
        let freeze = self.path.join("cgroup.freeze");
        let frozen = match self.write_file(c"cgroup.freeze", b"1") {
            Ok(()) => true,
            Err(Errno::NOENT) => false,
            Err(e) => return Err(os_err("writing 1 to", freeze, e)),
        };
        let result = self.signal_until_empty(bound);
        if frozen {
            if let Err(e) = self.write_file(c"cgroup.freeze", b"0") {
                if result.is_ok() {
                    return Err(os_err("writing 0 to", freeze, e));
                }
            }
        }
        result
    }

    fn signal_until_empty(&self, bound: Duration) -> Result<u32, CgroupError> {
        let start = Instant::now();
        let mut rounds = 0u32;
        loop {
            let listed = self.subtree_procs()?;
            if listed.is_empty() {
                return Ok(rounds);
            }
            if start.elapsed() >= bound {
                return Err(CgroupError::Survivors {
                    path: self.path.clone(),
                    left: listed.len(),
                    rounds,
                });
            }
            self.signal_listed(&listed, Signal::KILL)?;
            rounds += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends `signal` to every process in this cgroup and its descendants;
    /// returns how many were signalled.
    ///
    /// Each process is signalled through a pidfd opened on the listed pid
    /// and kept only if the pid is still listed after the pidfd was opened,
    /// so a pid reused outside the cgroup is never hit
    /// ([pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)).
    /// A process forked after the listing is not signalled (use
    /// [`kill`](Self::kill) for SIGKILL, which has no such gap).
    pub(crate) fn signal(&self, signal: Signal) -> Result<usize, CgroupError> {
        let listed = self.subtree_procs()?;
        self.signal_listed(&listed, signal)
    }

    fn signal_listed(&self, listed: &[i32], signal: Signal) -> Result<usize, CgroupError> {
        // In batches, so that a tree of thousands never needs as many fds
        // at once (EMFILE).
        const BATCH: usize = 128;
        let mut sent = 0;
        for batch in listed.chunks(BATCH) {
            let mut opened = Vec::with_capacity(batch.len());
            for &pid in batch {
                let Some(raw) = rustix::process::Pid::from_raw(pid) else {
                    continue;
                };
                match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
                    Ok(fd) => opened.push((pid, fd)),
                    Err(Errno::SRCH) => {}
                    Err(e) => {
                        return Err(os_err("pidfd_open for a process of", self.path.clone(), e))
                    }
                }
            }
            let mut still = self.subtree_procs()?;
            still.sort_unstable();
            for (pid, fd) in opened {
                if still.binary_search(&pid).is_err() {
                    continue;
                }
                match super::pidfd::send_signal(fd.as_fd(), pid, signal, false) {
                    Ok(true) => sent += 1,
                    Ok(false) => {}
                    Err(e) => {
                        return Err(os_err(
                            "pidfd_send_signal to a process of",
                            self.path.clone(),
                            e,
                        ))
                    }
                }
            }
        }
        Ok(sent)
    }

    /// Asks the kernel to enable `controllers` (such as `"+memory"`) for
    /// this cgroup's children, through `cgroup.subtree_control`. Fails where
    /// the parent has not enabled them for this cgroup, or where this
    /// cgroup holds processes (the "no internal processes" rule).
    ///
    /// See [Enabling and Disabling](https://docs.kernel.org/admin-guide/cgroup-v2.html#enabling-and-disabling).
    pub(crate) fn enable_controllers(&self, controllers: &str) -> Result<(), CgroupError> {
        self.write_file(c"cgroup.subtree_control", controllers.as_bytes())
            .map_err(|e| os_err("writing to", self.path.join("cgroup.subtree_control"), e))
    }

    /// Opens `cgroup.events` for polling: the kernel raises `EPOLLPRI`
    /// (with `EPOLLERR`) on the fd when a value in it changes, such as
    /// `populated` going to 0 when the last process of the subtree exits.
    ///
    /// See [\[Un\]populated Notification](https://docs.kernel.org/admin-guide/cgroup-v2.html#un-populated-notification).
    pub(crate) fn events(&self) -> Result<CgroupEvents, CgroupError> {
        let path = self.path.join("cgroup.events");
        let fd = rustix::fs::openat(
            &self.fd,
            c"cgroup.events",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os_err("opening", path.clone(), e))?;
        Ok(CgroupEvents { fd, path })
    }

    /// Whether any live process is in this cgroup or a descendant: the
    /// `populated` field of `cgroup.events`.
    ///
    /// See [\[Un\]populated Notification](https://docs.kernel.org/admin-guide/cgroup-v2.html#un-populated-notification).
    pub(crate) fn populated(&self) -> Result<bool, CgroupError> {
        self.events()?.populated()
    }

    /// CPU time from `cpu.stat` (`usage_usec`, `user_usec`, `system_usec`)
    /// and, where the file exists, the peak memory from `memory.peak`.
    ///
    /// See [CPU Interface Files](https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files)
    /// and [Memory Interface Files](https://docs.kernel.org/admin-guide/cgroup-v2.html#memory-interface-files).
    pub(crate) fn usage(&self) -> Result<CgroupUsage, CgroupError> {
        let stat_path = self.path.join("cpu.stat");
        let stat = self
            .read_file(c"cpu.stat")
            .map_err(|e| os_err("reading", stat_path.clone(), e))?;
        let field = |key: &str| -> Result<Duration, CgroupError> {
            keyed_value(&stat, key)
                .map(Duration::from_micros)
                .ok_or_else(|| {
                    os_err(
                        "parsing",
                        stat_path.clone(),
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("no numeric \"{key}\" line"),
                        ),
                    )
                })
        };
        let (usage, user, system) = (
            field("usage_usec")?,
            field("user_usec")?,
            field("system_usec")?,
        );
        let memory_peak = match self.read_file(c"memory.peak") {
            Ok(text) => Some(parse_u64(trim(&text)).ok_or_else(|| {
                os_err(
                    "parsing",
                    self.path.join("memory.peak"),
                    io::Error::new(io::ErrorKind::InvalidData, "not a number of bytes"),
                )
            })?),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(os_err("reading", self.path.join("memory.peak"), e)),
        };
        Ok(CgroupUsage {
            usage,
            user,
            system,
            memory_peak,
        })
    }

    /// The pids in `cgroup.procs`: the processes in this cgroup itself, not
    /// in its descendants. A pid may be gone by the time it is used.
    ///
    /// See `cgroup.procs` in [Core Interface Files](https://docs.kernel.org/admin-guide/cgroup-v2.html#core-interface-files).
    pub(crate) fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let text = self
            .read_file(c"cgroup.procs")
            .map_err(|e| os_err("reading", self.path.join("cgroup.procs"), e))?;
        Ok(parse_pids(&text))
    }

    /// The pids in `cgroup.procs` of this cgroup and every descendant.
    pub(crate) fn subtree_procs(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = self.procs()?;
        for child in self.children()? {
            pids.extend(child.subtree_procs()?);
        }
        Ok(pids)
    }

    /// Opens every child cgroup (subdirectory).
    pub(crate) fn children(&self) -> Result<Vec<CgroupDir>, CgroupError> {
        let mut dir = rustix::fs::Dir::read_from(&self.fd)
            .map_err(|e| os_err("listing cgroup", self.path.clone(), e))?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| os_err("listing cgroup", self.path.clone(), e))?;
            let name = entry.file_name();
            if entry.file_type() != FileType::Directory || name == c"." || name == c".." {
                continue;
            }
            let path = self.path.join(OsStr::from_bytes(name.to_bytes()));
            match rustix::fs::openat(&self.fd, name, dir_flags(), Mode::empty()) {
                Ok(fd) => out.push(CgroupDir { fd, path }),
                // Removed since it was listed.
                Err(Errno::NOENT) => {}
                Err(e) => return Err(os_err("opening cgroup", path, e)),
            }
        }
        Ok(out)
    }

    /// Removes this (empty) cgroup: `rmdir`. `EBUSY`, because processes or
    /// child cgroups are still there, is [`CgroupError::Busy`].
    ///
    /// See [Processes](https://docs.kernel.org/admin-guide/cgroup-v2.html#processes)
    /// ("A cgroup which doesn't have any children or live processes can be
    /// destroyed by removing the directory").
    pub(crate) fn remove(&self) -> Result<(), CgroupError> {
        match rustix::fs::unlinkat(CWD, &self.path, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(()),
            Err(Errno::BUSY) => Err(CgroupError::Busy {
                path: self.path.clone(),
            }),
            Err(e) => Err(os_err("removing cgroup", self.path.clone(), e)),
        }
    }

    /// Removes every descendant cgroup, deepest first, then this one. Every
    /// one must be empty of processes.
    pub(crate) fn remove_tree(&self) -> Result<(), CgroupError> {
        for child in self.children()? {
            child.remove_tree()?;
        }
        self.remove()
    }

    /// Moves process `pid` into this cgroup (writes it to `cgroup.procs`).
    ///
    /// See [Organizing Processes and Threads](https://docs.kernel.org/admin-guide/cgroup-v2.html#organizing-processes-and-threads).
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests
    pub(crate) fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        self.write_file(c"cgroup.procs", pid.to_string().as_bytes())
            .map_err(|e| os_err("writing a pid to", self.path.join("cgroup.procs"), e))
    }

    fn read_file(&self, name: &CStr) -> Result<Vec<u8>, Errno> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        read_all(fd.as_fd())
    }

    fn write_file(&self, name: &CStr, data: &[u8]) -> Result<(), Errno> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // Interface files take a value in one write.
        loop {
            match rustix::io::write(&fd, data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(_) => return Err(Errno::IO),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for CgroupDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An open `cgroup.events`, for a poll loop: register the fd for
/// `EPOLLPRI`, and call [`populated`](Self::populated) when it fires (the
/// read also re-arms the notification).
#[derive(Debug)]
pub(crate) struct CgroupEvents {
    fd: OwnedFd,
    path: PathBuf,
}

impl CgroupEvents {
    /// Reads the file again from the start: the current `populated` value.
    ///
    /// See [\[Un\]populated Notification](https://docs.kernel.org/admin-guide/cgroup-v2.html#un-populated-notification).
    pub(crate) fn populated(&self) -> Result<bool, CgroupError> {
        let mut buf = [0u8; 256];
        let n = loop {
            match rustix::io::pread(&self.fd, &mut buf, 0) {
                Ok(n) => break n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(os_err("reading", self.path.clone(), e)),
            }
        };
        match keyed_value(&buf[..n], "populated") {
            Some(v) => Ok(v != 0),
            None => Err(os_err(
                "parsing",
                self.path.clone(),
                io::Error::new(io::ErrorKind::InvalidData, "no \"populated\" line"),
            )),
        }
    }
}

impl AsFd for CgroupEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Reads a (small) file to its end.
fn read_all(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The number after `key ` at the start of a line ("flat keyed" files, see
/// [Format](https://docs.kernel.org/admin-guide/cgroup-v2.html#format)).
fn keyed_value(text: &[u8], key: &str) -> Option<u64> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(key.as_bytes())?.strip_prefix(b" ")?;
        parse_u64(trim(rest))
    })
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

fn parse_pids(text: &[u8]) -> Vec<i32> {
    text.split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(trim(l)).ok()?.parse().ok())
        .collect()
}

/// Helpers for tests on this machine's real cgroup2: test cgroups under our
/// own cgroup that clean up after themselves, and process trees in them.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use std::io::Write;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};

    static COUNTER: AtomicU32 = AtomicU32::new(0);

    /// A cgroup name no other test (or test process) uses.
    /// The session id of `pid` read from `/proc/<pid>/stat` (field 6), or
    /// `None` if it is gone. 0 when the session leader is outside our PID
    /// namespace (as in many containers), which `getsid(2)` wrappers that
    /// expect a positive pid cannot represent.
    pub(crate) fn session_of(pid: i32) -> Option<i32> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after_name = &text[text.rfind(')')? + 1..];
        after_name.split_whitespace().nth(3)?.parse().ok()
    }

    pub(crate) fn unique_name(tag: &str) -> String {
        format!(
            "pidreap-test-{}-{tag}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A test cgroup. Dropping it kills its subtree, waits (bounded) for it
    /// to empty, and removes it with its descendants.
    pub(crate) struct TestCgroup {
        pub(crate) dir: CgroupDir,
    }

    impl TestCgroup {
        /// A new cgroup under this process's own.
        pub(crate) fn new(tag: &str) -> TestCgroup {
            let own = locate()
                .expect("locating cgroup2")
                .open()
                .expect("opening our own cgroup");
            TestCgroup::adopt(
                own.create_child(&unique_name(tag))
                    .expect("creating a test cgroup under our own"),
            )
        }

        /// Takes over cleaning up `dir`.
        pub(crate) fn adopt(dir: CgroupDir) -> TestCgroup {
            TestCgroup { dir }
        }
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            if !self.dir.path().exists() {
                return;
            }
            let _ = self.dir.kill();
            let _ = wait_unpopulated(&self.dir, Duration::from_secs(5));
            if let Err(e) = self.dir.remove_tree() {
                eprintln!("test cleanup: {e}");
            }
        }
    }

    /// Waits, by polling `cgroup.events` for `POLLPRI`, until `dir` is no
    /// longer populated; how long it took, or a message at `bound`.
    pub(crate) fn wait_unpopulated(dir: &CgroupDir, bound: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let events = dir.events().map_err(|e| e.to_string())?;
        loop {
            if !events.populated().map_err(|e| e.to_string())? {
                return Ok(start.elapsed());
            }
            let left = bound.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(format!(
                    "{} still populated after {bound:?}: pids {:?}",
                    dir.path().display(),
                    dir.subtree_procs()
                ));
            }
            poll_one(events.as_fd(), rustix::event::PollFlags::PRI, left);
        }
    }

    /// One `poll(2)` on `fd`, at most `timeout`.
    pub(crate) fn poll_one(fd: BorrowedFd<'_>, flags: rustix::event::PollFlags, timeout: Duration) {
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let mut fds = [rustix::event::PollFd::from_borrowed_fd(fd, flags)];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }

    /// Reads lines from a pipe, each read bounded by a deadline.
    pub(crate) struct LineReader {
        fd: OwnedFd,
        buf: Vec<u8>,
    }

    impl LineReader {
        pub(crate) fn new(fd: impl Into<OwnedFd>) -> LineReader {
            LineReader {
                fd: fd.into(),
                buf: Vec::new(),
            }
        }

        /// The next line, without its newline; `None` at EOF or at the
        /// deadline.
        pub(crate) fn next_line(&mut self, deadline: Instant) -> Option<String> {
            loop {
                if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=i).collect();
                    return Some(String::from_utf8_lossy(&line[..i]).into_owned());
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                poll_one(self.fd.as_fd(), rustix::event::PollFlags::IN, left);
                let mut chunk = [0u8; 512];
                match rustix::io::read(&self.fd, &mut chunk) {
                    Ok(0) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(Errno::INTR | Errno::AGAIN) => {}
                    Err(_) => return None,
                }
            }
        }
    }

    /// Spawns `sh -c script` with piped stdin and stdout, moves it into
    /// `leaf` and only then lets it go on (it must start with `read go`),
    /// so that everything it forks is born in `leaf`.
    pub(crate) fn spawn_in(leaf: &CgroupDir, script: &str) -> (Child, LineReader) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning sh");
        let moved = leaf.add_process(child.id() as i32);
        let mut stdin = child.stdin.take().expect("piped stdin");
        let out = LineReader::new(child.stdout.take().expect("piped stdout"));
        if let Err(e) = moved {
            let _ = child.kill();
            let _ = child.wait();
            panic!("moving sh into {}: {e}", leaf.path().display());
        }
        stdin.write_all(b"go\n").expect("starting sh");
        (child, out)
    }

    /// Outer sh ignoring SIGTERM; a grandchild in a session of its own
    /// (`setsid`), also ignoring SIGTERM, with a child; a sleeping child.
    pub(crate) const TREE_SCRIPT: &str = "read go || exit 1
trap '' TERM
setsid sh -c 'trap \"\" TERM; sleep 300; exit 0' </dev/null >/dev/null 2>&1 &
sleep 300 </dev/null >/dev/null 2>&1 &
echo started
wait";

    /// How many processes [`TREE_SCRIPT`] makes.
    pub(crate) const TREE_SIZE: usize = 4;

    /// A process tree in a test cgroup, with pidfds on every member.
    /// Dropping it SIGKILLs the outer sh and reaps it (bounded); the
    /// [`TestCgroup`] kills the rest.
    pub(crate) struct Tree {
        pub(crate) child: Child,
        pub(crate) members: Vec<(i32, OwnedFd)>,
    }

    impl Tree {
        /// Starts [`TREE_SCRIPT`] in `leaf` and waits (bounded) until all
        /// [`TREE_SIZE`] processes are in `under`'s subtree.
        pub(crate) fn start(leaf: &CgroupDir, under: &CgroupDir) -> Tree {
            let (child, mut out) = spawn_in(leaf, TREE_SCRIPT);
            let mut tree = Tree {
                child,
                members: Vec::new(),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            assert_eq!(
                out.next_line(deadline).as_deref(),
                Some("started"),
                "the test tree did not start within 10 s"
            );
            let pids = loop {
                let pids = under.subtree_procs().expect("listing the tree");
                if pids.len() >= TREE_SIZE {
                    break pids;
                }
                assert!(
                    Instant::now() < deadline,
                    "only {} of {TREE_SIZE} processes showed up in {}: {pids:?}",
                    pids.len(),
                    under.path().display()
                );
                std::thread::sleep(Duration::from_millis(5));
            };
            for pid in pids {
                let fd = rustix::process::pidfd_open(
                    rustix::process::Pid::from_raw(pid).expect("positive pid"),
                    rustix::process::PidfdFlags::empty(),
                )
                .expect("pidfd_open on a member of the test tree");
                tree.members.push((pid, fd));
            }
            tree
        }

        /// The members still running after waiting up to `bound` for all to
        /// exit.
        pub(crate) fn survivors_after(&self, bound: Duration) -> Vec<i32> {
            survivors_after(&self.members, bound)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            eprintln!(
                "test cleanup: sh {} was not reaped within 5 s",
                self.child.id()
            );
        }
    }

    /// Which of `members` are still running after waiting up to `bound`
    /// (a pidfd becomes readable when its process exits).
    pub(crate) fn survivors_after(members: &[(i32, OwnedFd)], bound: Duration) -> Vec<i32> {
        let deadline = Instant::now() + bound;
        loop {
            let alive: Vec<i32> = members
                .iter()
                .filter(|(_, fd)| {
                    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                    let zero = rustix::time::Timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    !matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(1))
                })
                .map(|(pid, _)| *pid)
                .collect();
            if alive.is_empty() || Instant::now() >= deadline {
                return alive;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const UNIFIED: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
27 21 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn locate_in_hybrid_and_unified_layouts() {
        let got = locate_in(HYBRID.as_bytes(), b"4:memory:/x\n0::/a/b\n").unwrap();
        assert_eq!(got.mount(), Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(got.dir(), Path::new("/sys/fs/cgroup/unified/a/b"));
        // Optional fields ("shared:4") before the separator.
        let got = locate_in(UNIFIED.as_bytes(), b"0::/user.slice/u.scope\n").unwrap();
        assert_eq!(got.dir(), Path::new("/sys/fs/cgroup/user.slice/u.scope"));
        let got = locate_in(UNIFIED.as_bytes(), b"0::/\n").unwrap();
        assert_eq!(got.dir(), Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn locate_in_unescapes_and_strips_the_mount_root() {
        let info = "50 1 0:40 /ctr /srv/my\\040cg\\134x rw - cgroup2 none rw\n";
        let got = locate_in(info.as_bytes(), b"0::/ctr/job 1 (deleted)\n").unwrap();
        assert_eq!(got.mount(), Path::new("/srv/my cg\\x"));
        assert_eq!(got.dir(), Path::new("/srv/my cg\\x/job 1"));
        // "/ctrl" is not below "/ctr".
        assert!(matches!(
            locate_in(info.as_bytes(), b"0::/ctrl\n"),
            Err(Unavailable::NotVisible { .. })
        ));
    }

    #[test]
    fn locate_in_names_what_is_missing() {
        let no_v2 = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let e = locate_in(no_v2.as_bytes(), b"0::/\n").unwrap_err();
        assert!(matches!(e, Unavailable::NotMounted), "{e:?}");
        assert!(e.to_string().contains("no cgroup2"), "{e}");
        let e = locate_in(HYBRID.as_bytes(), b"4:memory:/x\n").unwrap_err();
        assert!(matches!(e, Unavailable::NotInV2), "{e:?}");
        assert!(e.to_string().contains("0::"), "{e}");
    }

    #[test]
    fn locate_finds_our_cgroup_on_this_machine() {
        let cg = locate().expect("locating cgroup2");
        assert!(cg.dir().starts_with(cg.mount()), "{cg:?}");
        let fs = rustix::fs::statfs(cg.mount()).expect("statfs of the mount");
        assert_eq!(
            fs.f_type as i64,
            0x6367_7270,
            "{} is not cgroup2",
            cg.mount().display()
        );
        let procs = cg.open().expect("opening our cgroup").procs().unwrap();
        assert!(
            procs.contains(&(std::process::id() as i32)),
            "our pid is not in {}/cgroup.procs",
            cg.dir().display()
        );
    }

    #[test]
    fn create_child_refuses_an_existing_name() {
        let t = TestCgroup::new("exists");
        let _first = t.dir.create_child("a").unwrap();
        let e = t.dir.create_child("a").unwrap_err();
        match &e {
            Unavailable::Cgroup(CgroupError::Os { source, path, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::AlreadyExists, "{e}");
                assert!(path.ends_with("a"), "{e}");
            }
            other => panic!("expected Os(EEXIST), got {other:?}"),
        }
        assert!(t.dir.create_child("../x").is_err());
    }

    #[test]
    fn kill_empties_a_tree_with_a_setsid_grandchild_and_a_term_ignorer() {
        if crate::sys::sandbox_skip(
            "kill_empties_a_tree_with_a_setsid_grandchild_and_a_term_ignorer",
        ) {
            return;
        }
        let t = TestCgroup::new("kill");
        let leaf = t.dir.create_child("leaf").unwrap();
        let tree = Tree::start(&leaf, &t.dir);
        // The grandchild really left the session of the outer sh.
        let sid = session_of;
        let outer = sid(tree.child.id() as i32);
        assert!(
            tree.members.iter().any(|(pid, _)| sid(*pid) != outer),
            "no member of the tree is in a session of its own"
        );
        assert!(t.dir.populated().unwrap());
        assert!(leaf.populated().unwrap());

        assert_eq!(t.dir.kill().unwrap(), KillMethod::CgroupKill);
        wait_unpopulated(&t.dir, Duration::from_secs(5)).unwrap();
        assert_eq!(
            tree.survivors_after(Duration::from_secs(2)),
            Vec::<i32>::new()
        );
        assert!(!leaf.populated().unwrap());
        assert_eq!(t.dir.subtree_procs().unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn freeze_fallback_empties_a_tree() {
        if crate::sys::sandbox_skip("freeze_fallback_empties_a_tree") {
            return;
        }
        let t = TestCgroup::new("freeze");
        let leaf = t.dir.create_child("leaf").unwrap();
        let tree = Tree::start(&leaf, &t.dir);
        let rounds = t.dir.kill_by_freezing(Duration::from_secs(5)).unwrap();
        assert!(rounds >= 1, "no signals were sent");
        // It returns once cgroup.procs of the whole subtree is empty.
        assert_eq!(t.dir.subtree_procs().unwrap(), Vec::<i32>::new());
        wait_unpopulated(&t.dir, Duration::from_secs(2)).unwrap();
        assert_eq!(
            tree.survivors_after(Duration::from_secs(2)),
            Vec::<i32>::new()
        );
        let freeze = std::fs::read_to_string(t.dir.path().join("cgroup.freeze")).unwrap();
        assert_eq!(freeze.trim(), "0", "the cgroup was left frozen");
    }

    #[test]
    fn usage_reports_the_cpu_a_child_burnt() {
        let t = TestCgroup::new("usage");
        let before = t.dir.usage().unwrap();
        assert_eq!(before.usage, Duration::ZERO);
        let start = Instant::now();
        let (mut child, mut out) = spawn_in(
            &t.dir,
            "read go; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo done",
        );
        let line = out.next_line(start + Duration::from_secs(60));
        let wall = start.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            line.as_deref(),
            Some("done"),
            "the CPU burner did not finish in 60 s"
        );
        wait_unpopulated(&t.dir, Duration::from_secs(5)).unwrap();

        let u = t.dir.usage().unwrap();
        assert!(u.usage >= Duration::from_millis(20), "{u:?} after {wall:?}");
        assert!(
            u.usage <= wall * 2 + Duration::from_millis(50),
            "{u:?} after {wall:?}"
        );
        let sum = u.user + u.system;
        let diff = sum.abs_diff(u.usage);
        assert!(
            diff <= Duration::from_millis(20),
            "user + system {sum:?} vs {u:?}"
        );
        assert_eq!(
            u.memory_peak.is_some(),
            t.dir.path().join("memory.peak").exists(),
            "{u:?}"
        );
    }

    #[test]
    fn remove_of_a_populated_cgroup_says_ebusy() {
        if crate::sys::sandbox_skip("remove_of_a_populated_cgroup_says_ebusy") {
            return;
        }
        let t = TestCgroup::new("busy");
        let leaf = t.dir.create_child("leaf").unwrap();
        let _tree = Tree::start(&leaf, &t.dir);
        let e = leaf.remove().unwrap_err();
        assert!(matches!(e, CgroupError::Busy { .. }), "{e:?}");
        assert!(e.to_string().contains("EBUSY"), "{e}");
        assert!(
            e.to_string().contains(&*leaf.path().to_string_lossy()),
            "{e}"
        );
        // A parent with a child cgroup is busy too.
        assert!(matches!(t.dir.remove(), Err(CgroupError::Busy { .. })));
        assert!(leaf.path().exists());
    }
}
