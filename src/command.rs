//! The [`Command`] builder: what to run and how.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
#[cfg(feature = "testing")]
use std::time::Duration;

use crate::engine::{GroupId, StopLadder};
use crate::rlimit::Resource;
use crate::signal::Signal;

/// What a child's stdin, stdout or stderr is connected to.
///
/// Clonable, so that a [`Command`] can be spawned again (restarts): an fd
/// given with [`Stdio::from`] is shared by every spawn.
#[derive(Debug, Clone)]
pub struct Stdio(pub(crate) StdioKind);

#[derive(Debug, Clone)]
pub(crate) enum StdioKind {
    Inherit,
    Null,
    Piped,
    Fd(Arc<OwnedFd>),
}

impl Stdio {
    /// The supervisor's own fd (the default).
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// `/dev/null`.
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// A new pipe; the supervisor's end is handed back in
    /// [`Child`](crate::Child).
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(Arc::new(fd)))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Stdio {
        Stdio::from(OwnedFd::from(file))
    }
}

/// How much of a child's process tree the supervisor holds on to: what
/// its stop ladder, [`Reaper::kill`](crate::Reaper::kill), drop-time
/// cleanup and shutdown reach, and what dies with the supervisor.
///
/// | | stop / kill reach | after the supervisor's SIGKILL | a descendant escapes by |
/// |---|---|---|---|
/// | `None` | the child | the child (`PR_SET_PDEATHSIG`) | being a descendant |
/// | `ProcessGroup` | the child's process group | the child only | `setsid(2)` or `setpgid(2)` |
/// | `Cgroup` | the child's cgroup subtree | the subtree (a sentinel process writes `cgroup.kill`) | moving itself to another cgroup (needs write access there, e.g. root) |
/// | `PidNamespace` | the whole namespace | the whole namespace | nothing (kernel-enforced) |
///
/// Whether a mechanism works here (kernel, privileges, delegation) is
/// checked by [`check`](Containment::check); a spawn that asks for one that
/// does not work fails with [`Error::ContainmentUnavailable`] and starts
/// nothing.
///
/// [`Error::ContainmentUnavailable`]: crate::Error::ContainmentUnavailable
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Containment {
    /// The child alone (the default): its descendants are on their own.
    #[default]
    None,
    /// The child leads a new process group (`setpgid(0, 0)`), and every
    /// signal of its ladder, and the final SIGKILL, go to the whole group
    /// (through the pidfd with `PIDFD_SIGNAL_PROCESS_GROUP` on Linux 6.9+,
    /// else `kill(-pgid)` while the leader is unreaped). Not
    /// kernel-enforced: a descendant that calls `setsid` or `setpgid`
    /// leaves the group, and after the supervisor's SIGKILL only the child
    /// itself dies (by its parent-death signal).
    /// [setpgid(2)](https://man7.org/linux/man-pages/man2/setpgid.2.html)
    ProcessGroup,
    /// The child is born in a cgroup v2 leaf of its own (`clone3` with
    /// `CLONE_INTO_CGROUP`, Linux 5.7; before that, or where a seccomp
    /// filter refuses `clone3`, the child moves itself in before exec), under
    /// a cgroup the reaper creates below its own. Every signal of the ladder
    /// goes to every process in the leaf, the final SIGKILL is one write to
    /// `cgroup.kill` (Linux 5.14), and the child counts as gone only when
    /// the leaf is empty (`populated 0` in `cgroup.events`, watched in the
    /// poll loop); the leaf is then removed and the tree's CPU time (and
    /// peak memory, where the memory controller is on) is in
    /// [`Exit::tree`](crate::Exit::tree). When the child itself exits
    /// first, the rest of its tree gets the stop ladder.
    ///
    /// After the supervisor's SIGKILL, a sentinel process (one per reaper,
    /// started with the first such child, sharing the supervisor's memory)
    /// sees its lifeline pipe close and writes `cgroup.kill`. Needs cgroup v2
    /// with `cgroup.kill` (Linux 5.14) and write access to this process's
    /// cgroup (root, or a delegated cgroup such as a systemd user service
    /// with `Delegate=yes`).
    /// [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html),
    /// [cgroup v2](https://docs.kernel.org/admin-guide/cgroup-v2.html)
    Cgroup,
    /// The child is init (PID 1) of a new PID namespace (`CLONE_NEWPID`).
    /// Without `CAP_SYS_ADMIN` the namespace is made inside a new user
    /// namespace (`CLONE_NEWUSER`, where the kernel allows unprivileged
    /// ones), in which the child's uid and gid are mapped to themselves:
    /// it runs as the same user, with no privilege outside, and sees
    /// supplementary groups as `nogroup` (`setgroups` is denied there)
    /// ([user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)).
    /// When it dies, for whatever reason, its
    /// parent-death signal after the supervisor's SIGKILL included, the
    /// kernel SIGKILLs every process in the namespace, so no descendant
    /// survives it, `setsid` or double fork notwithstanding; and it is
    /// reaped only once they are all gone.
    ///
    /// Being PID 1 changes two things for the program
    /// ([pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html)):
    /// signals it has no handler for are dropped, so a program that relies
    /// on SIGTERM's default action does not stop on the ladder's SIGTERM and
    /// is SIGKILLed at the end of the grace; and orphans in the namespace
    /// are reparented to it, so a program that never waits for unknown
    /// children leaves zombies until it exits. Programs written to be a
    /// container's init (or run under one, such as `pidreap run`) handle
    /// both. pidreap inserts no init of its own.
    PidNamespace,
}

impl Containment {
    /// Checks, without spawning anything, that this mechanism works here;
    /// the error names what is missing (no cgroup v2, not delegated, no
    /// `cgroup.kill`, no `CAP_SYS_ADMIN` and no unprivileged user
    /// namespace).
    ///
    /// ```
    /// use pidreap::Containment;
    /// assert!(Containment::ProcessGroup.check().is_ok());
    /// if let Err(e) = Containment::Cgroup.check() {
    ///     println!("no cgroup containment here: {e}");
    /// }
    /// ```
    pub fn check(self) -> crate::Result<()> {
        crate::containment::check(self)
    }

    /// The strongest mechanism that works here without configuration:
    /// [`Cgroup`](Containment::Cgroup) if it does (the program runs as
    /// usual, its whole tree is contained), else
    /// [`PidNamespace`](Containment::PidNamespace) (contained, but the
    /// program runs as PID 1), else [`ProcessGroup`](Containment::ProcessGroup).
    pub fn strongest_available() -> Containment {
        [Containment::Cgroup, Containment::PidNamespace]
            .into_iter()
            .find(|c| c.check().is_ok())
            .unwrap_or(Containment::ProcessGroup)
    }

    /// A short name: `none`, `group`, `cgroup`, `pidns`.
    pub fn name(self) -> &'static str {
        match self {
            Containment::None => "none",
            Containment::ProcessGroup => "group",
            Containment::Cgroup => "cgroup",
            Containment::PidNamespace => "pidns",
        }
    }
}

/// A program to run under supervision, built like
/// [`std::process::Command`].
///
/// Beyond std's options it carries the child's parent-death signal (SIGKILL
/// unless changed), its [`StopLadder`] and an optional stop group.
///
/// ```
/// use std::time::Duration;
/// use pidreap::{Command, Signal, Stdio, StopLadder};
///
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "echo $GREETING"])
///     .env("GREETING", "hello")
///     .stdout(Stdio::piped())
///     .stop_ladder(StopLadder::new(Signal::TERM, Duration::from_secs(2)));
/// assert_eq!(cmd.get_program(), "sh");
/// ```
///
/// A [`std::process::Command`] converts with its program, arguments,
/// environment changes and directory (std does not expose `env_clear` or
/// stdio settings, so those are not carried over):
///
/// ```
/// let mut std_cmd = std::process::Command::new("ls");
/// std_cmd.arg("-l").env("LC_ALL", "C").env_remove("LS_COLORS").current_dir("/tmp");
/// let cmd = pidreap::Command::from(&std_cmd);
/// assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-l"]);
/// assert_eq!(cmd.get_current_dir(), Some(std::path::Path::new("/tmp")));
/// ```
#[derive(Debug, Clone)]
pub struct Command {
    // Read by the spawn plan (`crate::spawn::plan`), which turns them into
    // what the child needs.
    pub(crate) program: OsString,
    pub(crate) arg0: Option<OsString>,
    pub(crate) args: Vec<OsString>,
    pub(crate) env_clear: bool,
    pub(crate) env: BTreeMap<OsString, Option<OsString>>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) stdio: [Stdio; 3],
    pgid: Option<i32>,
    /// The terminal whose foreground process group the child's group
    /// becomes (see [`Command::foreground_terminal`]).
    pub(crate) terminal: Option<Arc<OwnedFd>>,
    pub(crate) setsid: bool,
    /// Credentials and limits applied in the child (see
    /// [`Command::uid`] and the methods after it).
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) groups: Option<Vec<u32>>,
    pub(crate) rlimits: Vec<(Resource, u64, u64)>,
    pub(crate) umask: Option<u32>,
    pub(crate) containment: Containment,
    pub(crate) death_signal: Option<Signal>,
    ladder: Option<Arc<StopLadder>>,
    group: Option<GroupId>,
    /// Test hook (feature `testing`): see [`crate::testing::setup_delay`].
    #[cfg(feature = "testing")]
    pub(crate) setup_delay: Option<Duration>,
}

impl Command {
    /// A command running `program`: a path, or a name looked up in `PATH`
    /// (the child's `PATH` if [`env`](Command::env) sets one, else this
    /// process's).
    ///
    /// As with [execvp(3)](https://man7.org/linux/man-pages/man3/execvp.3.html)
    /// and the shells, an executable file the kernel refuses with `ENOEXEC`
    /// (neither a binary it knows nor a script starting with `#!`, such as
    /// a shell script without a shebang) runs as `/bin/sh PATH ARGS...`;
    /// unless its first line holds a NUL byte (a binary, for another
    /// architecture say), which fails with [`Error::Exec`](crate::Error::Exec)
    /// and `ENOEXEC` as bash refuses it.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            arg0: None,
            args: Vec::new(),
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            stdio: [Stdio::inherit(), Stdio::inherit(), Stdio::inherit()],
            pgid: None,
            terminal: None,
            setsid: false,
            uid: None,
            gid: None,
            groups: None,
            rlimits: Vec::new(),
            umask: None,
            containment: Containment::None,
            death_signal: Some(Signal::KILL),
            ladder: None,
            group: None,
            #[cfg(feature = "testing")]
            setup_delay: None,
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets `argv[0]` (by default, the program as given).
    pub fn arg0(&mut self, arg0: impl AsRef<OsStr>) -> &mut Command {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Starts the child with an empty environment: neither this process's
    /// variables nor those set by earlier [`env`](Command::env) calls are
    /// passed on (as `std::process::Command::env_clear`); later calls add
    /// to it.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets the child's stdin.
    pub fn stdin(&mut self, cfg: Stdio) -> &mut Command {
        self.stdio[0] = cfg;
        self
    }

    /// Sets the child's stdout.
    pub fn stdout(&mut self, cfg: Stdio) -> &mut Command {
        self.stdio[1] = cfg;
        self
    }

    /// Sets the child's stderr.
    pub fn stderr(&mut self, cfg: Stdio) -> &mut Command {
        self.stdio[2] = cfg;
        self
    }

    /// Puts the child in process group `pgid`; 0 makes a new group led by
    /// the child (as `std::os::unix::process::CommandExt::process_group`).
    ///
    /// A child that leads its own group (0) is stopped as a group: every
    /// signal of its ladder, and the final SIGKILL, go to the whole group
    /// (through the pidfd with `PIDFD_SIGNAL_PROCESS_GROUP` on Linux 6.9+),
    /// so its descendants are stopped with it unless they left the group.
    pub fn process_group(&mut self, pgid: i32) -> &mut Command {
        self.pgid = Some(pgid);
        self
    }

    /// Makes the child's process group the foreground process group of
    /// `terminal` before exec, as a shell does for the job it runs in the
    /// foreground: the keys that send signals (Ctrl-C, Ctrl-Z, Ctrl-\\)
    /// then reach the child's group and not the supervisor's, and the child
    /// may read the terminal and change its settings without being stopped
    /// by `SIGTTIN` or `SIGTTOU`.
    /// [tcsetpgrp(3)](https://man7.org/linux/man-pages/man3/tcgetpgrp.3.html),
    /// [credentials(7)](https://man7.org/linux/man-pages/man7/credentials.7.html)
    ///
    /// The child leads a new process group for it, unless
    /// [`process_group`](Command::process_group) names another group to
    /// join (the group is not stopped as one for that alone: the stop
    /// ladder still follows [`containment`](Command::containment)).
    /// `terminal` must be the child's controlling terminal (usually this
    /// process's stdin, inherited); the child makes the call itself before
    /// exec, with every signal blocked, so the program never runs outside
    /// the foreground and a spawn that cannot take the terminal fails with
    /// [`Error::ChildSetup`](crate::Error::ChildSetup) (`ENOTTY` if it is not
    /// the controlling terminal). Give the terminal back to this process's
    /// group with [`take_terminal`](crate::take_terminal) once the child
    /// has exited. Only take the terminal when this process's group holds
    /// it ([`is_foreground`](crate::is_foreground)): a supervisor started in
    /// the background must not steal it from the shell's foreground job.
    /// A child in a new session ([`setsid`](Command::setsid)) has no
    /// controlling terminal: asking for both fails the spawn with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput).
    pub fn foreground_terminal(&mut self, terminal: impl Into<OwnedFd>) -> &mut Command {
        self.terminal = Some(Arc::new(terminal.into()));
        self
    }

    /// Starts the child in a new session (`setsid(2)` before exec), as
    /// dumb-init does by default: it leads a new session and a new process
    /// group, has no controlling terminal, and is stopped as a group (as
    /// with `process_group(0)`). Combines with [`Containment`]; setting a
    /// [`process_group`](Command::process_group) other than 0 as well makes
    /// the spawn fail with [`Error::InvalidInput`](crate::Error::InvalidInput),
    /// since a session leader leads its own group. Default: off.
    /// [setsid(2)](https://man7.org/linux/man-pages/man2/setsid.2.html)
    pub fn setsid(&mut self, setsid: bool) -> &mut Command {
        self.setsid = setsid;
        self
    }

    /// Whether the child starts a new session, as set with
    /// [`setsid`](Command::setsid).
    pub fn get_setsid(&self) -> bool {
        self.setsid
    }

    /// Runs the child as user `uid` (`setuid(2)` before exec, as
    /// `std::os::unix::process::CommandExt::uid`).
    ///
    /// The child changes its credentials itself, with raw system calls, in
    /// the safe order: supplementary groups, then the group id, then the
    /// user id, after every step that may need privilege (its cgroup,
    /// [`rlimit`](Command::rlimit)s) and before
    /// [`current_dir`](Command::current_dir), which it enters as the new
    /// user, and before `PR_SET_PDEATHSIG`, which a change of credentials
    /// clears ([PR_SET_PDEATHSIG](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html)).
    /// When this process is root and no [`groups`](Command::groups) are set,
    /// the child drops root's supplementary groups (`setgroups(0, NULL)`) as
    /// std does; a failure of that implicit drop is ignored, as std ignores
    /// it. A step that fails (`EPERM` without `CAP_SETUID`, `EINVAL` for an
    /// id not mapped in a user namespace) fails the spawn with
    /// [`Error::ChildSetup`](crate::Error::ChildSetup) naming it; the
    /// program never runs.
    /// [setuid(2)](https://man7.org/linux/man-pages/man2/setuid.2.html),
    /// [credentials(7)](https://man7.org/linux/man-pages/man7/credentials.7.html)
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.uid = Some(uid);
        self
    }

    /// Runs the child with group id `gid` (`setgid(2)` before exec, after
    /// the supplementary groups and before the user id; see
    /// [`uid`](Command::uid)).
    /// [setgid(2)](https://man7.org/linux/man-pages/man2/setgid.2.html)
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.gid = Some(gid);
        self
    }

    /// Sets the child's supplementary groups (`setgroups(2)` before exec,
    /// first of the credential steps; see [`uid`](Command::uid)); an empty
    /// list leaves it none. Needs `CAP_SETGID`.
    /// [setgroups(2)](https://man7.org/linux/man-pages/man2/setgroups.2.html)
    pub fn groups(&mut self, groups: &[u32]) -> &mut Command {
        self.groups = Some(groups.to_vec());
        self
    }

    /// Sets a resource limit of the child (`prlimit64(2)` on itself before
    /// exec, before its credentials change, so a raised hard limit only
    /// needs privilege in this process). `soft` may not exceed `hard`;
    /// [`Resource::INFINITY`] is no limit. A later call for the same
    /// resource replaces the earlier. A limit the kernel refuses (`EPERM`
    /// raising a hard limit without `CAP_SYS_RESOURCE`; `EPERM` for
    /// [`Resource::NoFile`] above `fs.nr_open`) fails the spawn with
    /// [`Error::ChildSetup`](crate::Error::ChildSetup).
    /// [prlimit(2)](https://man7.org/linux/man-pages/man2/prlimit.2.html)
    pub fn rlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> &mut Command {
        self.rlimits.retain(|(r, ..)| *r != resource);
        self.rlimits.push((resource, soft, hard));
        self
    }

    /// Sets the child's file mode creation mask (`umask(2)` before exec),
    /// such as `0o077`; bits above `0o777` make the spawn fail with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput).
    /// [umask(2)](https://man7.org/linux/man-pages/man2/umask.2.html)
    pub fn umask(&mut self, mask: u32) -> &mut Command {
        self.umask = Some(mask);
        self
    }

    /// Runs the command to its end and collects its output, as
    /// `std::process::Command::output` does: stdout and stderr are piped
    /// (whatever the command sets) and read to end-of-file, both at once
    /// (with [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)),
    /// so a child writing much to both cannot deadlock; stdin is
    /// `/dev/null` unless the command sets another than
    /// [`Stdio::inherit`] (a piped stdin is closed at once).
    ///
    /// Runs under a private [`Reaper`](crate::Reaper) made for the call
    /// (an epoll instance, a timer and the spawn stack, released when it
    /// returns), so the child has its [`death_signal`](Command::death_signal)
    /// and [`Containment`] as with any spawn; under
    /// [`Containment::Cgroup`] the call returns once the whole tree is
    /// gone. As with std, a descendant that keeps stdout or stderr open
    /// keeps the call waiting for it.
    ///
    /// ```
    /// let out = pidreap::Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).output()?;
    /// assert_eq!(out.status.code(), Some(3));
    /// assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    /// # Ok::<(), pidreap::Error>(())
    /// ```
    pub fn output(&self) -> crate::Result<crate::Output> {
        crate::output::output(self)
    }

    /// Runs the command to its end with its stdio as set (inherited by
    /// default) and returns how it ended, as
    /// `std::process::Command::status` does. A piped stdio is closed at
    /// once: the child reads end-of-file, and a write gets `EPIPE`. Runs
    /// under a private [`Reaper`](crate::Reaper), as
    /// [`output`](Command::output) does.
    ///
    /// ```
    /// let status = pidreap::Command::new("true").status()?;
    /// assert!(status.success());
    /// # Ok::<(), pidreap::Error>(())
    /// ```
    pub fn status(&self) -> crate::Result<crate::ExitStatus> {
        crate::output::status(self)
    }

    /// The user id set with [`uid`](Command::uid).
    pub fn get_uid(&self) -> Option<u32> {
        self.uid
    }

    /// The group id set with [`gid`](Command::gid).
    pub fn get_gid(&self) -> Option<u32> {
        self.gid
    }

    /// The supplementary groups set with [`groups`](Command::groups).
    pub fn get_groups(&self) -> Option<&[u32]> {
        self.groups.as_deref()
    }

    /// The resource limits set with [`rlimit`](Command::rlimit):
    /// `(resource, soft, hard)`.
    pub fn get_rlimits(&self) -> impl Iterator<Item = (Resource, u64, u64)> + '_ {
        self.rlimits.iter().copied()
    }

    /// The mask set with [`umask`](Command::umask).
    pub fn get_umask(&self) -> Option<u32> {
        self.umask
    }

    /// How much of the child's process tree is stopped with it and dies with
    /// the supervisor: see [`Containment`]. Default: [`Containment::None`].
    /// `ProcessGroup` is the same as `process_group(0)`.
    pub fn containment(&mut self, containment: Containment) -> &mut Command {
        self.containment = containment;
        self
    }

    /// The containment, as set with [`containment`](Command::containment).
    pub fn get_containment(&self) -> Containment {
        self.containment
    }

    /// The signal the child gets when the supervising thread dies
    /// (`PR_SET_PDEATHSIG`); `None` turns it off. Default: SIGKILL.
    pub fn death_signal(&mut self, signal: Option<Signal>) -> &mut Command {
        self.death_signal = signal;
        self
    }

    /// How this child is stopped. Default: the reaper's
    /// ([`ReaperBuilder::stop_ladder`](crate::ReaperBuilder::stop_ladder)).
    pub fn stop_ladder(&mut self, ladder: StopLadder) -> &mut Command {
        self.ladder = Some(Arc::new(ladder));
        self
    }

    /// Makes the child a member of `group`, so that
    /// [`Reaper::stop_group`](crate::Reaper::stop_group) and the group's
    /// cancel token stop it.
    pub fn group(&mut self, group: GroupId) -> &mut Command {
        self.group = Some(group);
        self
    }

    /// The program.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments (without `argv[0]`).
    pub fn get_args(&self) -> impl Iterator<Item = &OsStr> {
        self.args.iter().map(OsString::as_os_str)
    }

    /// The environment changes: `None` for a removed variable.
    pub fn get_envs(&self) -> impl Iterator<Item = (&OsStr, Option<&OsStr>)> {
        self.env.iter().map(|(k, v)| (k.as_os_str(), v.as_deref()))
    }

    /// The working directory, if set.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// The parent-death signal.
    pub fn get_death_signal(&self) -> Option<Signal> {
        self.death_signal
    }

    /// The stop ladder, if set on the command.
    pub fn get_stop_ladder(&self) -> Option<&StopLadder> {
        self.ladder.as_deref()
    }

    pub(crate) fn ladder_arc(&self) -> Option<Arc<StopLadder>> {
        self.ladder.clone()
    }

    pub(crate) fn group_id(&self) -> Option<GroupId> {
        self.group
    }

    /// The process group the child joins (`setpgid(0, pgid)`): a new one it
    /// leads (0) under [`Containment::ProcessGroup`], else as
    /// [`process_group`](Command::process_group) set it.
    pub(crate) fn pgid(&self) -> Option<i32> {
        match self.containment {
            Containment::ProcessGroup => Some(0),
            _ => self.pgid,
        }
    }

    /// True when the child leads its own process group (a new session
    /// included).
    pub(crate) fn leads_group(&self) -> bool {
        self.setsid || self.pgid() == Some(0)
    }
}

impl From<&std::process::Command> for Command {
    fn from(std_cmd: &std::process::Command) -> Command {
        let mut cmd = Command::new(std_cmd.get_program());
        cmd.args(std_cmd.get_args());
        for (k, v) in std_cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = std_cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd
    }
}

impl From<std::process::Command> for Command {
    fn from(std_cmd: std::process::Command) -> Command {
        Command::from(&std_cmd)
    }
}
