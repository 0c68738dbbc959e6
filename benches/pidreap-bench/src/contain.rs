//! What containment costs, measured the same way by `cargo bench --bench
//! containment` and by `pidreap bench spawn-contained` / `kill-tree`.
//!
//! Two measurements:
//!
//! - [`spawn_rates`]: spawn-and-reap of a short program under each
//!   [`Containment`], as a rate per round, the variants interleaved in one
//!   reaper so that each is compared with [`Containment::None`] measured
//!   moments apart.
//! - [`tree_kill`]: the time to kill and reap a tree of N processes, three
//!   (or four) ways in the same rounds: one write to `cgroup.kill` of the
//!   tree's cgroup v2 leaf, one `kill(-pgid, SIGKILL)`, and the kernel's
//!   floor (N direct children, one `pidfd_send_signal` each); and, where
//!   pidreap can spawn into a cgroup, pidreap's own `Reaper::kill` of a
//!   child spawned with [`Containment::Cgroup`].
//!
//! Every wait is bounded, and every process and cgroup made here is killed,
//! reaped or removed by a guard's `Drop`, also when a measurement fails.

use std::fs;
use std::io::{self, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pidreap::{Containment, Event, Reaper};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

use crate::us;

/// What a long measurement reports to, and asks whether to go on.
pub trait Monitor {
    /// A progress message (for a terminal; ignore it otherwise).
    fn progress(&mut self, _msg: &str) {}
    /// Called between samples: an error ends the measurement (after its
    /// cleanup) with that error, e.g. when the user pressed Ctrl-C.
    fn check(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A [`Monitor`] that shows nothing and never stops a run.
pub struct Quiet;

impl Monitor for Quiet {}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

fn context(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// Waits until `fd` reports one of `flags` or `deadline` passes; true when
/// it did.
fn wait_fd(fd: impl AsFd, flags: PollFlags, deadline: Instant) -> io::Result<bool> {
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Ok(false);
        };
        let mut fds = [PollFd::new(&fd, flags)];
        match rustix::event::poll(&mut fds, Some(&timespec(left))) {
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

// ---------------------------------------------------------------------------
// Spawn-and-reap rate by containment

/// The variants of [`spawn_rates`], in the order they are reported;
/// [`Containment::None`] is the baseline.
pub const SPAWN_VARIANTS: [Containment; 4] = [
    Containment::None,
    Containment::ProcessGroup,
    Containment::PidNamespace,
    Containment::Cgroup,
];

/// One variant of [`spawn_rates`].
#[derive(Debug, Clone)]
pub struct SpawnVariant {
    /// The mechanism.
    pub containment: Containment,
    /// Children spawned and reaped per second, one figure per round.
    pub rates: Vec<f64>,
    /// Why it was not measured: its `check()` or a first spawn failed.
    pub skipped: Option<String>,
}

impl SpawnVariant {
    /// This variant's rate over the baseline's, round by round.
    pub fn ratios(&self, baseline: &SpawnVariant) -> Vec<f64> {
        self.rates
            .iter()
            .zip(&baseline.rates)
            .map(|(a, b)| a / b)
            .collect()
    }
}

/// How [`spawn_rates`] runs.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    /// The program spawned and reaped; it must exit 0 by itself.
    pub program: String,
    /// Rounds; in each, every variant runs one block, the order rotated.
    pub rounds: usize,
    /// A block spawns and reaps back to back for at least this long.
    pub block: Duration,
    /// Longest wait for one child.
    pub timeout: Duration,
}

/// Spawn-and-reap rate of `cfg.program` under each of [`SPAWN_VARIANTS`],
/// in one [`Reaper`], one child at a time, interleaved: in round r the
/// variants run in the order rotated by r, so that drift over the run
/// falls on all alike. A variant whose [`Containment::check`] fails, or
/// whose first spawn is refused, is returned with `skipped` set and no
/// rates.
pub fn spawn_rates(cfg: &SpawnConfig, mon: &mut dyn Monitor) -> io::Result<Vec<SpawnVariant>> {
    let mut reaper = Reaper::new().map_err(|e| err(format!("creating the reaper: {e}")))?;
    let mut variants: Vec<SpawnVariant> = SPAWN_VARIANTS
        .iter()
        .map(|&c| SpawnVariant {
            containment: c,
            rates: Vec::new(),
            skipped: None,
        })
        .collect();
    let commands: Vec<pidreap::Command> = SPAWN_VARIANTS
        .iter()
        .map(|&c| {
            let mut cmd = pidreap::Command::new(&cfg.program);
            cmd.containment(c)
                .stdin(pidreap::Stdio::null())
                .stdout(pidreap::Stdio::null())
                .stderr(pidreap::Stdio::null());
            cmd
        })
        .collect();
    // Which work here: check(), then one spawn (which also warms up).
    for (v, cmd) in variants.iter_mut().zip(&commands) {
        if let Err(e) = v.containment.check() {
            v.skipped = Some(e.to_string());
            continue;
        }
        match spawn_reap(&mut reaper, cmd, cfg) {
            Ok(()) => {}
            Err(e) if v.containment == Containment::None => return Err(e),
            Err(e) => v.skipped = Some(e.to_string()),
        }
    }
    let live: Vec<usize> = (0..variants.len())
        .filter(|&i| variants[i].skipped.is_none())
        .collect();
    for round in 0..cfg.rounds {
        for k in 0..live.len() {
            let i = live[(round + k) % live.len()];
            mon.check()?;
            let name = variants[i].containment.name();
            mon.progress(&format!(
                "spawn-and-reap: round {}/{}, {name}",
                round + 1,
                cfg.rounds
            ));
            let t0 = Instant::now();
            let mut n = 0u64;
            while n == 0 || t0.elapsed() < cfg.block {
                spawn_reap(&mut reaper, &commands[i], cfg)
                    .map_err(context(format_args!("containment {name}")))?;
                n += 1;
            }
            variants[i]
                .rates
                .push(n as f64 / t0.elapsed().as_secs_f64());
        }
    }
    Ok(variants)
}

/// Spawns `cmd` and waits for it; an error unless it exited 0 in time.
fn spawn_reap(reaper: &mut Reaper, cmd: &pidreap::Command, cfg: &SpawnConfig) -> io::Result<()> {
    let child = reaper
        .spawn(cmd)
        .map_err(|e| err(format!("spawning {}: {e}", cfg.program)))?;
    let exit = reaper
        .wait(child.id(), Some(cfg.timeout))
        .map_err(|e| err(format!("waiting for {}: {e}", cfg.program)))?;
    match exit {
        Some(exit) if exit.status.success() => Ok(()),
        Some(exit) => Err(err(format!("{} ended with {}", cfg.program, exit.status))),
        None => {
            // The reaper kills it when dropped; say what happened.
            Err(err(format!(
                "{} did not exit within {:?}",
                cfg.program, cfg.timeout
            )))
        }
    }
}

// ---------------------------------------------------------------------------
// cgroup v2: where we are, and a leaf of our own

/// The directory of the cgroup v2 group `cgroup` (the path after `0::` in
/// `/proc/self/cgroup`), given the text of `/proc/self/mountinfo`: below
/// the mount point of the first `cgroup2` mount whose root contains it.
/// [proc_pid_mountinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html),
/// [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html)
pub fn cgroup_dir_in(mountinfo: &str, cgroup: &str) -> Option<PathBuf> {
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        let (Some(root), Some(mount)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let (root, mount) = (unescape(root), unescape(mount));
        let below = if root == "/" {
            Some(cgroup.trim_start_matches('/'))
        } else if cgroup == root {
            Some("")
        } else {
            cgroup
                .strip_prefix(root.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
        };
        if let Some(below) = below {
            let dir = Path::new(&mount);
            return Some(if below.is_empty() {
                dir.to_path_buf()
            } else {
                dir.join(below)
            });
        }
    }
    None
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup v2 directory.
pub fn own_cgroup_dir() -> io::Result<PathBuf> {
    let cgroup =
        fs::read_to_string("/proc/self/cgroup").map_err(context("reading /proc/self/cgroup"))?;
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| {
            err("no \"0::\" line in /proc/self/cgroup: this process is in no cgroup v2 hierarchy")
        })?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(context("reading /proc/self/mountinfo"))?;
    cgroup_dir_in(&mountinfo, path).ok_or_else(|| {
        err(format!(
            "our cgroup {path} is below no cgroup2 mount in /proc/self/mountinfo"
        ))
    })
}

/// A cgroup v2 leaf made below our own cgroup for one tree. Dropping it
/// kills whatever is still in it (`cgroup.kill`), waits (bounded) until it
/// is empty and removes it.
/// [cgroup v2](https://docs.kernel.org/admin-guide/cgroup-v2.html)
pub struct Leaf {
    path: PathBuf,
    events: fs::File,
    kill: fs::File,
}

impl Leaf {
    /// Creates the leaf `name` below our own cgroup, with `cgroup.kill`
    /// (Linux 5.14) and `cgroup.events` opened.
    pub fn create(name: &str) -> io::Result<Leaf> {
        let path = own_cgroup_dir()?.join(name);
        fs::create_dir(&path)
            .map_err(context(format_args!("creating cgroup {}", path.display())))?;
        let open = || -> io::Result<(fs::File, fs::File)> {
            let events = fs::File::open(path.join("cgroup.events")).map_err(context(
                format_args!("opening {}/cgroup.events", path.display()),
            ))?;
            let kill = fs::OpenOptions::new()
                .write(true)
                .open(path.join("cgroup.kill"))
                .map_err(context(format_args!(
                    "opening {}/cgroup.kill (needs Linux 5.14)",
                    path.display()
                )))?;
            Ok((events, kill))
        };
        match open() {
            Ok((events, kill)) => Ok(Leaf { path, events, kill }),
            Err(e) => {
                let _ = fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// The leaf's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the process `pid` into the leaf (`cgroup.procs`).
    pub fn add(&self, pid: u32) -> io::Result<()> {
        fs::write(self.path.join("cgroup.procs"), pid.to_string()).map_err(context(format_args!(
            "moving pid {pid} into {}",
            self.path.display()
        )))
    }

    /// SIGKILLs every process in the leaf: one write of `1` to `cgroup.kill`.
    pub fn kill(&self) -> io::Result<()> {
        (&self.kill).write_all(b"1").map_err(context(format_args!(
            "writing {}/cgroup.kill",
            self.path.display()
        )))
    }

    /// `populated` of `cgroup.events`: whether any process is in the leaf.
    pub fn populated(&self) -> io::Result<bool> {
        let mut buf = [0u8; 256];
        let n = self
            .events
            .read_at(&mut buf, 0)
            .map_err(context(format_args!(
                "reading {}/cgroup.events",
                self.path.display()
            )))?;
        let text = String::from_utf8_lossy(&buf[..n]);
        text.lines()
            .find_map(|l| l.strip_prefix("populated "))
            .map(|v| v.trim() != "0")
            .ok_or_else(|| {
                err(format!(
                    "no populated line in {}/cgroup.events",
                    self.path.display()
                ))
            })
    }

    /// Waits until the leaf is empty, woken by the `POLLPRI` that a change
    /// of `cgroup.events` raises; false when `deadline` passes first.
    pub fn wait_empty(&self, deadline: Instant) -> io::Result<bool> {
        loop {
            // Reading the file re-arms the notification before the check.
            if !self.populated()? {
                return Ok(true);
            }
            if !wait_fd(&self.events, PollFlags::PRI, deadline)? {
                return Ok(!self.populated()?);
            }
        }
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        if self.populated().unwrap_or(true) {
            let _ = self.kill();
            let _ = self.wait_empty(Instant::now() + Duration::from_secs(10));
        }
        // rmdir may see the last exiting task for a moment after
        // `populated 0`; retry briefly.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => {
                    eprintln!("warning: cannot remove cgroup {}: {e}", self.path.display());
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The trees

/// What every process of a tree runs, besides the shell that starts them.
const SLEEP: &str = "sleep";

/// Reaps children of process group `pgid` (ours, or orphans given to us as
/// subreaper) with `waitid(P_PGID, WNOHANG)` until `want` are reaped, none
/// is left (`ECHILD`) or `deadline` passes; between empty polls it sleeps
/// 20 µs. Returns how many it reaped.
/// [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
pub fn reap_group(pgid: Pid, want: usize, deadline: Instant) -> io::Result<usize> {
    let mut got = 0;
    while got < want {
        match rustix::process::waitid(
            WaitId::Pgid(Some(pgid)),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
        ) {
            Ok(Some(_)) => got += 1,
            Ok(None) => {
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_micros(20));
            }
            Err(Errno::CHILD) => break,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// The live children of `pid` (from `/proc/PID/task/PID/children`).
/// [proc_pid_task(5)](https://man7.org/linux/man-pages/man5/proc_pid_task.5.html)
fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether `pid` runs `comm` and sleeps (state `S` in `/proc/PID/stat`).
fn asleep_as(pid: u32, comm: &str) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    match (stat.find('('), stat.rfind(')')) {
        (Some(a), Some(b)) => {
            &stat[a + 1..b] == comm && stat[b + 1..].split_whitespace().next() == Some("S")
        }
        _ => false,
    }
}

/// Waits until every pid in `pids` runs `sleep` and sleeps.
/// Waits until the shell `pid` has started `want` children (its sleeps)
/// and returns their pids; else says how many it started by `deadline`.
fn wait_for_members(pid: u32, want: usize, deadline: Instant) -> Result<Vec<u32>, String> {
    loop {
        let kids = children_of(pid);
        if kids.len() >= want {
            return Ok(kids);
        }
        if Instant::now() >= deadline {
            return Err(format!("started {} of {want} sleeps in time", kids.len()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn all_asleep(pids: &[u32], deadline: Instant) -> io::Result<()> {
    for &pid in pids {
        while !asleep_as(pid, SLEEP) {
            if Instant::now() >= deadline {
                return Err(err(format!(
                    "process {pid} of the tree did not start sleeping in time"
                )));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}

/// The shell script of a tree of `n` processes: itself and `n - 1`
/// background `sleep`s. It first reads one line from stdin, so that the
/// shell can be moved into a cgroup before it starts anything.
pub fn tree_script(n: usize, sleep_secs: u32) -> String {
    format!("read go; i=1; while [ $i -lt {n} ]; do {SLEEP} {sleep_secs} & i=$((i+1)); done; wait")
}

/// A tree of N processes: one `sh` (our child, leading its own process
/// group) and its N - 1 background `sleep`s. Dropping it SIGKILLs the
/// group and reaps what it can (bounded): the shell, and the `sleep`s
/// once orphaned to us (the bench is their subreaper).
pub struct Tree {
    /// The shell's pid, which is also the tree's process group id.
    pub pid: u32,
    pidfd: OwnedFd,
    pgid: Pid,
    /// The `sleep`s' pids.
    pub members: Vec<u32>,
    leader_reaped: bool,
    members_reaped: usize,
}

impl Tree {
    /// Starts the tree, in `leaf` if given (the shell is moved there before
    /// it starts anything), and waits (until `deadline`) for every `sleep`
    /// to sleep.
    pub fn spawn(
        n: usize,
        sleep_secs: u32,
        leaf: Option<&Leaf>,
        deadline: Instant,
    ) -> io::Result<Tree> {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", &tree_script(n, sleep_secs)])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(context("spawning /bin/sh for the tree"))?;
        let pid = child.id();
        let mut stdin = child.stdin.take();
        // From here the guard owns the shell (std's Child does nothing on drop).
        let pidfd = match Pid::from_raw(pid as i32)
            .ok_or_else(|| err("pid 0"))
            .and_then(|p| Ok(rustix::process::pidfd_open(p, PidfdFlags::empty())?))
        {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(context("pidfd_open of the tree's shell")(e));
            }
        };
        let mut tree = Tree {
            pid,
            pidfd,
            pgid: Pid::from_raw(pid as i32).expect("a pid is positive"),
            members: Vec::new(),
            leader_reaped: false,
            members_reaped: 0,
        };
        if let Some(leaf) = leaf {
            leaf.add(pid)?;
        }
        if let Some(mut go) = stdin.take() {
            go.write_all(b"go\n")
                .map_err(context("starting the tree's shell"))?;
        }
        tree.members = wait_for_members(pid, n.saturating_sub(1), deadline)
            .map_err(|m| err(format!("the tree's shell {m}")))?;
        all_asleep(&tree.members, deadline)?;
        Ok(tree)
    }

    /// The tree's process group.
    pub fn pgid(&self) -> Pid {
        self.pgid
    }

    /// Waits for the shell's exit and reaps it; false if `deadline` passed.
    pub fn reap_leader(&mut self, deadline: Instant) -> io::Result<bool> {
        if !wait_fd(&self.pidfd, PollFlags::IN, deadline)? {
            return Ok(false);
        }
        rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED)
            .map_err(|e| err(format!("waitid on the tree's shell: {e}")))?;
        self.leader_reaped = true;
        Ok(true)
    }

    /// Reaps the `sleep`s (orphaned to us) until all are reaped or
    /// `deadline` passes; true when all were.
    pub fn reap_members(&mut self, deadline: Instant) -> io::Result<bool> {
        let left = self.members.len() - self.members_reaped;
        self.members_reaped += reap_group(self.pgid, left, deadline)?;
        Ok(self.members_reaped == self.members.len())
    }

    /// Reaps all N (shell and `sleep`s alike, as they come) with
    /// [`reap_group`]; true when all were.
    pub fn reap_all(&mut self, deadline: Instant) -> io::Result<bool> {
        let want = self.members.len() + usize::from(!self.leader_reaped);
        let got = reap_group(self.pgid, want, deadline)?;
        if got == want {
            self.leader_reaped = true;
            self.members_reaped = self.members.len();
        }
        Ok(got == want)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.leader_reaped && self.members_reaped == self.members.len() {
            return;
        }
        // The group exists while any member does, so its id cannot have
        // been reused; the shell's pidfd reaches the shell in any case.
        let _ = rustix::process::kill_process_group(self.pgid, Signal::KILL);
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        let _ = reap_group(self.pgid, usize::MAX, deadline);
    }
}

/// The floor's population: N `sleep`s, direct children, each held by a
/// pidfd (and, for reaping alone, in one process group). Dropping it
/// SIGKILLs and reaps what is left (bounded).
pub struct Flat {
    pidfds: Vec<OwnedFd>,
    pgid: Option<Pid>,
    reaped: usize,
}

impl Flat {
    /// Starts `n` `sleep`s and waits (until `deadline`) for all to sleep.
    pub fn spawn(n: usize, sleep_secs: u32, deadline: Instant) -> io::Result<Flat> {
        let mut flat = Flat {
            pidfds: Vec::with_capacity(n),
            pgid: None,
            reaped: 0,
        };
        let mut pids = Vec::with_capacity(n);
        let secs = sleep_secs.to_string();
        for _ in 0..n {
            let mut child = std::process::Command::new(SLEEP)
                .arg(&secs)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(flat.pgid.map_or(0, |p| p.as_raw_nonzero().get()))
                .spawn()
                .map_err(context("spawning sleep for the floor"))?;
            let pid = child.id();
            let fd = match Pid::from_raw(pid as i32)
                .ok_or_else(|| err("pid 0"))
                .and_then(|p| Ok(rustix::process::pidfd_open(p, PidfdFlags::empty())?))
            {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(context("pidfd_open of a floor child")(e));
                }
            };
            flat.pidfds.push(fd);
            flat.pgid
                .get_or_insert(Pid::from_raw(pid as i32).expect("a pid is positive"));
            pids.push(pid);
        }
        all_asleep(&pids, deadline)?;
        Ok(flat)
    }

    /// SIGKILLs each child through its pidfd.
    /// [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
    pub fn kill_each(&self) -> io::Result<()> {
        for fd in &self.pidfds {
            rustix::process::pidfd_send_signal(fd, Signal::KILL)
                .map_err(|e| err(format!("pidfd_send_signal: {e}")))?;
        }
        Ok(())
    }

    /// Reaps until all are reaped or `deadline` passes; true when all were.
    pub fn reap_all(&mut self, deadline: Instant) -> io::Result<bool> {
        if let Some(pgid) = self.pgid {
            let left = self.pidfds.len() - self.reaped;
            self.reaped += reap_group(pgid, left, deadline)?;
        }
        Ok(self.reaped == self.pidfds.len())
    }
}

impl Drop for Flat {
    fn drop(&mut self) {
        if self.reaped == self.pidfds.len() {
            return;
        }
        for fd in &self.pidfds {
            let _ = rustix::process::pidfd_send_signal(fd, Signal::KILL);
        }
        let _ = self.reap_all(Instant::now() + Duration::from_secs(10));
    }
}

// ---------------------------------------------------------------------------
// Kill and reap a tree, several ways

/// How [`tree_kill`] runs.
#[derive(Debug, Clone)]
pub struct TreeConfig {
    /// Processes per tree, the shell included.
    pub processes: usize,
    /// Rounds; each measures every variant once, the order rotated.
    pub rounds: usize,
    /// Bound on every wait: starting a tree, and killing and reaping it.
    pub timeout: Duration,
    /// How long the `sleep`s sleep: how long they outlive the bench should
    /// it be SIGKILLed before its guards run.
    pub sleep_secs: u32,
}

/// What [`tree_kill`] measured, in µs, one sample per round; each variant
/// is empty when it was not measured, and then its note says why.
#[derive(Debug, Clone, Default)]
pub struct TreeKill {
    /// (a) `cgroup.kill` until `populated 0` and the shell reaped.
    pub cgroup_empty: Vec<f64>,
    /// (a) the same, until all N are reaped.
    pub cgroup_all: Vec<f64>,
    /// Why (a) was not measured.
    pub cgroup_note: Option<String>,
    /// (b) `kill(-pgid, SIGKILL)` until all N are reaped.
    pub group: Vec<f64>,
    /// (c) N direct children, `pidfd_send_signal` each, until all reaped.
    pub floor: Vec<f64>,
    /// (d) pidreap's `Reaper::kill` of a child spawned with
    /// [`Containment::Cgroup`], until its `Exited` event (the leaf empty
    /// and the shell reaped).
    pub library: Vec<f64>,
    /// Why (d) was not measured.
    pub library_note: Option<String>,
}

/// Kills and reaps a tree of `cfg.processes` processes, each of up to four
/// ways once per round, the order rotated each round:
///
/// - (a) the tree (`sh` and its `sleep`s) in a cgroup v2 leaf of its own;
///   one write of `1` to `cgroup.kill`; timed until `cgroup.events` says
///   `populated 0` (waited for with `poll(POLLPRI)`) and the shell is
///   reaped, and on until the orphaned `sleep`s are reaped too;
/// - (b) the same tree in its own process group; one `kill(-pgid,
///   SIGKILL)`; timed until all N are reaped;
/// - (c) the floor: N `sleep`s, direct children; one `pidfd_send_signal`
///   each; timed until all N are reaped;
/// - (d) where pidreap spawns into a cgroup: the tree spawned by a
///   [`Reaper`] with [`Containment::Cgroup`]; `Reaper::kill`; timed until
///   the reaper reports the shell's exit (its leaf empty).
///
/// The bench process is made a child subreaper
/// ([`PR_SET_CHILD_SUBREAPER`](https://man7.org/linux/man-pages/man2/prctl.2.html))
/// so that the `sleep`s, orphaned when the shell dies, are reaped by it.
/// Reaping uses `waitid(P_PGID, WNOHANG)` in (a), (b) and (c) alike.
pub fn tree_kill(cfg: &TreeConfig, mon: &mut dyn Monitor) -> io::Result<TreeKill> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| err(format!("prctl(PR_SET_CHILD_SUBREAPER): {e}")))?;
    let mut out = TreeKill::default();
    let mut reaper = None;
    match Containment::Cgroup.check() {
        Err(e) => out.library_note = Some(e.to_string()),
        Ok(()) => match Reaper::new() {
            Ok(r) => reaper = Some(r),
            Err(e) => out.library_note = Some(format!("creating the reaper: {e}")),
        },
    }
    let result = tree_kill_rounds(cfg, mon, &mut out, &mut reaper);
    drop(reaper);
    let _ = rustix::process::set_child_subreaper(None);
    result.map(|()| out)
}

fn tree_kill_rounds(
    cfg: &TreeConfig,
    mon: &mut dyn Monitor,
    out: &mut TreeKill,
    reaper: &mut Option<Reaper>,
) -> io::Result<()> {
    let n = cfg.processes;
    for round in 0..cfg.rounds {
        for k in 0..4 {
            mon.check()?;
            let which = (round + k) % 4;
            let label = ["cgroup.kill", "kill(-pgid)", "floor", "pidreap"][which];
            mon.progress(&format!(
                "kill a tree of {n}: round {}/{}, {label}",
                round + 1,
                cfg.rounds
            ));
            match which {
                0 if out.cgroup_note.is_none() => {
                    let leaf_name = format!("pidreap-bench-{}-{round}", std::process::id());
                    let leaf = match Leaf::create(&leaf_name) {
                        Ok(leaf) => leaf,
                        Err(e) if out.cgroup_empty.is_empty() => {
                            out.cgroup_note = Some(e.to_string());
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    let (empty, all) = cgroup_round(cfg, &leaf)?;
                    out.cgroup_empty.push(empty);
                    out.cgroup_all.push(all);
                }
                1 => out.group.push(group_round(cfg)?),
                2 => out.floor.push(floor_round(cfg)?),
                3 if out.library_note.is_none() => {
                    let Some(r) = reaper.as_mut() else { continue };
                    match library_round(cfg, r) {
                        Ok(t) => out.library.push(t),
                        Err(Refused(e)) if out.library.is_empty() => {
                            out.library_note = Some(e);
                            *reaper = None;
                        }
                        Err(Refused(e)) => return Err(err(e)),
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn cgroup_round(cfg: &TreeConfig, leaf: &Leaf) -> io::Result<(f64, f64)> {
    let mut tree = Tree::spawn(
        cfg.processes,
        cfg.sleep_secs,
        Some(leaf),
        Instant::now() + cfg.timeout,
    )?;
    let t0 = Instant::now();
    let deadline = t0 + cfg.timeout;
    leaf.kill()?;
    if !leaf.wait_empty(deadline)? {
        return Err(err(format!(
            "{} still populated {:?} after cgroup.kill",
            leaf.path().display(),
            cfg.timeout
        )));
    }
    if !tree.reap_leader(deadline)? {
        return Err(err(
            "the tree's shell was not reaped in time after cgroup.kill",
        ));
    }
    let empty = us(t0.elapsed());
    if !tree.reap_members(deadline)? {
        return Err(err(
            "the tree's sleeps were not all reaped in time after cgroup.kill",
        ));
    }
    Ok((empty, us(t0.elapsed())))
}

fn group_round(cfg: &TreeConfig) -> io::Result<f64> {
    let mut tree = Tree::spawn(
        cfg.processes,
        cfg.sleep_secs,
        None,
        Instant::now() + cfg.timeout,
    )?;
    let t0 = Instant::now();
    rustix::process::kill_process_group(tree.pgid(), Signal::KILL)
        .map_err(|e| err(format!("kill(-{}, SIGKILL): {e}", tree.pid)))?;
    if !tree.reap_all(t0 + cfg.timeout)? {
        return Err(err("the tree was not all reaped in time after kill(-pgid)"));
    }
    Ok(us(t0.elapsed()))
}

fn floor_round(cfg: &TreeConfig) -> io::Result<f64> {
    let mut flat = Flat::spawn(cfg.processes, cfg.sleep_secs, Instant::now() + cfg.timeout)?;
    let t0 = Instant::now();
    flat.kill_each()?;
    if !flat.reap_all(t0 + cfg.timeout)? {
        return Err(err("the floor's children were not all reaped in time"));
    }
    Ok(us(t0.elapsed()))
}

/// A library round failed; the text says why.
struct Refused(String);

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Refused {
        Refused(e.to_string())
    }
}

/// Reaps the pids given (our children by now: orphans of a dead shell,
/// given to us as subreaper), each with `waitid(P_PID, WNOHANG)`, until
/// all are reaped or `deadline` passes. Returns how many are left.
fn reap_pids(pids: &[u32], deadline: Instant) -> usize {
    let mut left: Vec<Pid> = pids
        .iter()
        .filter_map(|&p| Pid::from_raw(p as i32))
        .collect();
    while !left.is_empty() {
        left.retain(|&p| {
            !matches!(
                rustix::process::waitid(
                    WaitId::Pid(p),
                    WaitIdOptions::EXITED | WaitIdOptions::NOHANG
                ),
                Ok(Some(_)) | Err(Errno::CHILD)
            )
        });
        if left.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    left.len()
}

fn library_round(cfg: &TreeConfig, reaper: &mut Reaper) -> Result<f64, Refused> {
    let mut cmd = pidreap::Command::new("/bin/sh");
    cmd.args(["-c", &tree_script(cfg.processes, cfg.sleep_secs)])
        .containment(Containment::Cgroup)
        .stdin(pidreap::Stdio::null())
        .stdout(pidreap::Stdio::null())
        .stderr(pidreap::Stdio::null());
    let child = reaper
        .spawn(&cmd)
        .map_err(|e| Refused(format!("spawning the tree with Containment::Cgroup: {e}")))?;
    // Whatever happens below, the tree is killed and its orphans reaped.
    struct Cleanup<'a> {
        reaper: &'a mut Reaper,
        id: pidreap::ChildId,
        members: Vec<u32>,
        done: bool,
    }
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            if !self.done {
                let _ = self.reaper.kill(self.id);
                let _ = self.reaper.wait(self.id, Some(Duration::from_secs(10)));
            }
            let left = reap_pids(&self.members, Instant::now() + Duration::from_secs(10));
            if left > 0 {
                eprintln!("warning: {left} orphaned sleeps of a contained tree not reaped");
            }
        }
    }
    let mut guard = Cleanup {
        reaper,
        id: child.id(),
        members: Vec::new(),
        done: false,
    };
    let deadline = Instant::now() + cfg.timeout;
    guard.members = wait_for_members(child.pid(), cfg.processes.saturating_sub(1), deadline)
        .map_err(|m| Refused(format!("the contained tree's shell {m}")))?;
    all_asleep(&guard.members, deadline)?;
    let t0 = Instant::now();
    guard
        .reaper
        .kill(child.id())
        .map_err(|e| Refused(format!("Reaper::kill of the contained tree: {e}")))?;
    let deadline = t0 + cfg.timeout;
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(Refused(
                "the contained tree was not reported gone in time".into(),
            ));
        };
        guard
            .reaper
            .poll(Some(left))
            .map_err(|e| Refused(format!("polling the reaper: {e}")))?;
        let mut exited = false;
        while let Some(ev) = guard.reaper.next_event() {
            if let Event::Exited(exit) = ev {
                exited |= exit.id == child.id();
            }
        }
        if exited {
            break;
        }
    }
    let t = us(t0.elapsed());
    guard.done = true;
    Ok(t)
}

// ---------------------------------------------------------------------------
// Reporting

/// The median of `v` (the mean of the middle two for an even count); NaN
/// when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// `0.97x [0.90-1.05]`: the median of per-round ratios and their range.
pub fn fmt_ratio(ratios: &[f64]) -> String {
    if ratios.is_empty() {
        return "-".into();
    }
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if ratios.len() > 1 {
        format!("{:.2}x [{:.2}-{:.2}]", median(ratios), lo, hi)
    } else {
        format!("{:.2}x", median(ratios))
    }
}

/// The goal the issue states for a mechanism's spawn rate against
/// [`Containment::None`], if any.
pub fn spawn_goal(c: Containment) -> Option<f64> {
    match c {
        Containment::Cgroup => Some(0.7),
        Containment::PidNamespace => Some(0.8),
        _ => None,
    }
}

/// The text report of [`spawn_rates`].
pub fn spawn_report(cfg: &SpawnConfig, variants: &[SpawnVariant]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "spawn-and-reap of {} by containment: {} rounds of >= {} ms per variant, interleaved",
        cfg.program,
        cfg.rounds,
        cfg.block.as_millis()
    );
    let _ = writeln!(
        out,
        "  {:<8} {:>12}  {:<24}  goal",
        "", "children/s", "vs none, per round"
    );
    let base = &variants[0];
    for v in variants {
        let name = v.containment.name();
        if let Some(why) = &v.skipped {
            let _ = writeln!(out, "  {name:<8} SKIPPED: {why}");
            continue;
        }
        let ratios = v.ratios(base);
        let goal = match spawn_goal(v.containment) {
            Some(g) => format!(
                ">= {g:.1}x: {}",
                if median(&ratios) >= g {
                    "met"
                } else {
                    "MISSED"
                }
            ),
            None => String::new(),
        };
        let vs = if std::ptr::eq(v, base) {
            "1.00x (baseline)".to_string()
        } else {
            fmt_ratio(&ratios)
        };
        let _ = writeln!(
            out,
            "  {name:<8} {:>12.0}  {vs:<24}  {goal}",
            median(&v.rates)
        );
    }
    out
}

/// The text report of [`tree_kill`].
pub fn tree_report(cfg: &TreeConfig, r: &TreeKill) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kill and reap a tree of {} processes: {} rounds, interleaved (ms)",
        cfg.processes, cfg.rounds
    );
    let _ = writeln!(
        out,
        "  {:<52} {:>8} {:>8}  vs floor, per round",
        "", "p50", "p90"
    );
    let ms = |v: f64| format!("{:.1}", v / 1000.0);
    let mut line = |name: &str, v: &[f64], note: &Option<String>| {
        if v.is_empty() {
            let why = note.as_deref().unwrap_or("not measured");
            let _ = writeln!(out, "  {name:<52} SKIPPED: {why}");
            return;
        }
        let s = crate::Stats::of(v).expect("samples");
        let ratios: Vec<f64> = v.iter().zip(&r.floor).map(|(a, b)| a / b).collect();
        let _ = writeln!(
            out,
            "  {name:<52} {:>8} {:>8}  {}",
            ms(s.p50),
            ms(s.p90),
            fmt_ratio(&ratios)
        );
    };
    line(
        "(a) cgroup.kill: populated 0 + shell reaped",
        &r.cgroup_empty,
        &r.cgroup_note,
    );
    line("(a) cgroup.kill: all reaped", &r.cgroup_all, &r.cgroup_note);
    line("(b) kill(-pgid, SIGKILL): all reaped", &r.group, &None);
    line("(c) floor: pidfd SIGKILL each, all reaped", &r.floor, &None);
    line(
        "(d) pidreap Reaper::kill, Containment::Cgroup",
        &r.library,
        &r.library_note,
    );
    let _ = writeln!(
        out,
        "(a), (b): one sh and its {} background sleeps; (c): {} sleeps, direct children; \
         (d): the tree of (a) spawned by pidreap, until its Exited event",
        cfg.processes.saturating_sub(1),
        cfg.processes
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw
41 30 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn cgroup_dir_from_mountinfo() {
        assert_eq!(
            cgroup_dir_in(MOUNTINFO, "/"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            cgroup_dir_in(MOUNTINFO, "/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/a/b"))
        );
        // A mount of part of the hierarchy (a container's view).
        let part = "50 1 0:38 /sys.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup_dir_in(part, "/sys.slice/x"),
            Some(PathBuf::from("/sys/fs/cgroup/x"))
        );
        assert_eq!(
            cgroup_dir_in(part, "/sys.slice"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(cgroup_dir_in(part, "/sys.slicex"), None);
        assert_eq!(
            cgroup_dir_in("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "/"),
            None
        );
        let spaced = "41 30 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup_dir_in(spaced, "/x"),
            Some(PathBuf::from("/mnt/cg two/x"))
        );
    }

    #[test]
    fn ratios_and_medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(fmt_ratio(&[0.9, 1.0, 1.1]), "1.00x [0.90-1.10]");
        assert_eq!(fmt_ratio(&[]), "-");
        assert_eq!(
            tree_script(3, 5),
            "read go; i=1; while [ $i -lt 3 ]; do sleep 5 & i=$((i+1)); done; wait"
        );
    }
}
