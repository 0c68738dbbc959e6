//! The supervision loop of `pidreap run`.
//!
//! One thread, one [`Reaper`]: it spawns the child, reads the forwarded
//! signals from its signalfd, runs the stop ladder on its timer, reaps
//! orphans as PID 1 or subreaper, and wakes for restart back-offs through
//! `poll`'s timeout. What to do after an exit is decided by the library's
//! sans-IO [`Restarter`].
//!
//! # What the child gets on a stop request
//!
//! Each signal sent to pidreap reaches the child once, never twice. The
//! first SIGTERM or SIGINT is forwarded (SIGTERM rewritten to
//! `--stop-signal`, SIGINT as itself) and then the ladder runs: SIGCONT at
//! once (so a stopped child can act on the signal) and SIGKILL after
//! `--grace`. The child is therefore spawned with the ladder
//! `StopLadder::new(SIGCONT, grace)`: the ladder's first rung is the SIGCONT
//! that follows the forwarded signal, and it never sends the stop signal
//! itself, which would otherwise reach the child a second time (and SIGINT
//! followed by SIGTERM kills, for example, a Python program in the middle
//! of handling its KeyboardInterrupt). Later SIGTERMs are forwarded as
//! `--stop-signal` again; a second SIGINT sends SIGKILL at once.
//!
//! Under cgroup containment the stop signal (and SIGINT) goes to every
//! process of the child's cgroup, the ladder's SIGCONT and SIGKILL too. When
//! the child exits and leaves processes behind in its cgroup or process
//! group, they are sent `--stop-signal` at once and SIGKILL after the grace,
//! and pidreap exits (or restarts the child) once they are gone.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use pidreap::engine::{Decision, Restarter, StopReason};
use pidreap::{
    ChildId, Command, Containment, Event, ExitStatus, Reaper, Signal, StopLadder, TreeUsage,
};

use crate::cli::{Contain, ForwardTo, RunOptions};
use crate::Chain;

/// Signals never forwarded. SIGKILL and SIGSTOP cannot be caught; the
/// synchronous fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP,
/// SIGSYS) must not be blocked (a fault would then kill pidreap without a
/// handler); SIGCHLD is pidreap's own (its children's exits); SIGTTIN and
/// SIGTTOU are blocked and dropped, see [`handled`]. Signals 32 and 33
/// belong to the C library ([`Signal::is_reserved`]) and are left alone.
const NOT_FORWARDED: [Signal; 11] = [
    Signal::KILL,
    Signal::STOP,
    Signal::SEGV,
    Signal::BUS,
    Signal::ILL,
    Signal::FPE,
    Signal::TRAP,
    Signal::SYS,
    Signal::CHLD,
    Signal::TTIN,
    Signal::TTOU,
];

/// True for the signals forwarded to the child: every signal from 1 to 64
/// but those in [`NOT_FORWARDED`] and the two the C library reserves.
pub fn is_forwarded(signal: Signal) -> bool {
    !signal.is_reserved() && !NOT_FORWARDED.contains(&signal)
}

/// The signals forwarded to the child, in numeric order (51 of them, the
/// real-time signals 34 to 64 included).
pub fn forwarded() -> Vec<Signal> {
    (1..=64)
        .filter_map(Signal::from_raw)
        .filter(|&s| is_forwarded(s))
        .collect()
}

/// The signals pidreap blocks and reads from its signalfd: the
/// [`forwarded`] ones, and SIGTTIN and SIGTTOU, which it drops. tini
/// ignores those two (and so does not forward them) so that terminal I/O
/// from the background never stops it once the child's group owns the
/// terminal; a blocked SIGTTIN/SIGTTOU has the same effect, since the
/// terminal checks treat blocked like ignored
/// ([tcsetpgrp(3)](https://man7.org/linux/man-pages/man3/tcsetpgrp.3.html);
/// `is_ignored()` in the kernel's
/// [tty_jobctrl.c](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/drivers/tty/tty_jobctrl.c)),
/// and the child still starts with the dispositions and the mask pidreap
/// was started with. SIGTSTP is forwarded, as tini does.
pub fn handled() -> Vec<Signal> {
    let mut signals = forwarded();
    signals.extend([Signal::TTIN, Signal::TTOU]);
    signals
}

/// pidreap's own errors (bad option, bad value, a failed system call).
pub const EXIT_OWN_ERROR: i32 = 125;

/// A 64-bit random number for the back-off's jitter, without a random
/// number crate: std's `RandomState` is seeded from the OS (getrandom) once
/// per thread and changes with every `new()`; the wall clock is mixed in
/// for good measure. Jitter only spreads restarts apart, so this is plenty.
fn jitter() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.finish()
}

/// Formats a duration the way the options take them (to the millisecond).
pub(crate) fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// What a contained tree used, for the exit line: `tree: cpu 1.234s (user
/// 1.000s, system 0.234s), memory peak 12.3 MiB`.
fn show_tree(tree: &TreeUsage) -> String {
    let secs = |d: Duration| format!("{:.3}s", d.as_secs_f64());
    let mut s = format!(
        "tree: cpu {} (user {}, system {})",
        secs(tree.cpu_time),
        secs(tree.user_time),
        secs(tree.system_time)
    );
    if let Some(peak) = tree.memory_peak {
        s.push_str(&format!(
            ", memory peak {:.1} MiB",
            peak as f64 / (1024.0 * 1024.0)
        ));
    }
    s
}

struct Supervisor<'a> {
    opts: &'a RunOptions,
    reaper: Reaper,
    cmd: Command,
    restarter: Restarter,
    /// The running child, if one is.
    child: Option<ChildId>,
    /// The pid of the last child started, for messages once it is reaped.
    child_pid: u32,
    /// How the last run ended.
    last: Option<ExitStatus>,
    /// A stop was requested (SIGTERM or SIGINT).
    stopping: bool,
    /// How the child's tree is contained.
    containment: Containment,
    /// The child is a second pidreap, init of the child's PID namespace,
    /// which runs PROGRAM: signals go to it unchanged.
    nested: bool,
    /// The terminal (a copy of stdin) the child's group is given as its
    /// foreground group, taken back when the child exits.
    terminal: Option<OwnedFd>,
}

/// What the error says is missing, without the "not available" preamble
/// (for the one-line list of reasons `auto` logs).
fn reason(e: &pidreap::Error) -> String {
    match e {
        pidreap::Error::ContainmentUnavailable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// The containment `--contain` asks for, checked before anything starts.
/// `auto` tries cgroup, then pidns (the order of
/// [`Containment::strongest_available`], done here step by step to log why
/// each stronger one was passed over) and falls back to group (to none
/// (a new group works on a terminal too: the child's group is made its
/// foreground group, see [`terminal`]). An explicit
/// mechanism that does not work here is an error, never a silent downgrade.
fn choose(contain: Contain) -> Result<Containment, i32> {
    match contain {
        Contain::Exactly(c) => match c.check() {
            Ok(()) => {
                log::info!("containment: {}", c.name());
                Ok(c)
            }
            Err(e) => {
                log::error!("--contain {}: {}", c.name(), Chain(&e));
                Err(e.exit_code())
            }
        },
        Contain::Auto => {
            let mut passed_over = Vec::new();
            for c in [Containment::Cgroup, Containment::PidNamespace] {
                match c.check() {
                    Ok(()) => {
                        log_auto(c, &passed_over);
                        return Ok(c);
                    }
                    Err(e) => passed_over.push(format!("{}: {}", c.name(), reason(&e))),
                }
            }
            log_auto(Containment::ProcessGroup, &passed_over);
            Ok(Containment::ProcessGroup)
        }
    }
}

fn log_auto(chosen: Containment, passed_over: &[String]) {
    if passed_over.is_empty() {
        log::info!("containment: {} (auto)", chosen.name());
    } else {
        log::info!(
            "containment: {} (auto; {})",
            chosen.name(),
            passed_over.join("; ")
        );
    }
}

/// The command that runs PROGRAM under a PID namespace: this pidreap
/// again, as the namespace's init (`pidreap run --contain none`, with the
/// same grace, signals and verbosity), so that PROGRAM itself is not PID 1:
/// it keeps the usual signal semantics (a SIGTERM without a handler ends
/// it) while its whole tree still dies with the namespace. Restarts stay
/// with the outer pidreap.
fn init_command(opts: &RunOptions) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut cmd = Command::new(exe);
    cmd.arg0("pidreap")
        .args(["run", "--contain", "none", "--grace"])
        .arg(show(opts.grace))
        .arg("--stop-signal")
        .arg(opts.stop_signal.as_raw().to_string())
        .arg("--pdeathsig")
        .arg(opts.pdeathsig.as_raw().to_string())
        .arg("--forward-to")
        .arg(match opts.forward_to {
            ForwardTo::Child => "child",
            ForwardTo::Group => "group",
        });
    nested_settings(opts, &mut cmd);
    match opts.verbosity {
        v if v < 0 => {
            cmd.arg("-q");
        }
        v => {
            for _ in 0..v {
                cmd.arg("-v");
            }
        }
    }
    cmd.arg("--").arg(&opts.program).args(&opts.args);
    cmd
}

/// The terminal to hand to the child, when there is one to hand: stdin is
/// this process's controlling terminal and pidreap's group is its
/// foreground group (started in the foreground by a shell, or as the init
/// of `docker run -it`). The child then leads a new process group (or the
/// one `--contain group` makes) which becomes the terminal's foreground
/// group before exec, so that Ctrl-C, Ctrl-Z and Ctrl-\ reach the child's
/// group and only it, as when the program runs without pidreap, and a shell
/// run as the child can do job control. pidreap takes the terminal back
/// when the child exits. With every `--contain` value; under `pidns` the
/// inner pidreap does the same for PROGRAM. A pidreap started in the
/// background takes nothing: the shell keeps its foreground job.
fn terminal() -> Option<OwnedFd> {
    let stdin = std::io::stdin();
    if !pidreap::is_foreground(&stdin) {
        return None;
    }
    match stdin.as_fd().try_clone_to_owned() {
        Ok(fd) => Some(fd),
        Err(e) => {
            log::warn!("cannot duplicate stdin to hand the terminal to the child: {e}");
            None
        }
    }
}

/// The settings of the nested init beyond those [`init_command`] passes
/// at first: `--setsid` (the init starts PROGRAM in a new session), and no
/// `PIDREAP_*` variables, so the init takes every setting from its command
/// line and none from what this pidreap read already.
fn nested_settings(opts: &RunOptions, cmd: &mut Command) {
    if opts.setsid {
        cmd.arg("--setsid");
    }
    for name in crate::cli::ENV_VARS {
        cmd.env_remove(name);
    }
}

/// `-p SIG`: pidreap itself gets SIG when its parent dies
/// ([PR_SET_PDEATHSIG](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html)).
/// A parent that died before the call sends nothing, so the parent's pid is
/// compared before and after, and a changed one sends SIG now: a forwarded
/// signal (TERM) then stops the child as usual once it runs.
fn set_parent_death_signal(sig: Signal) -> Result<(), i32> {
    let named = rustix::process::Signal::from_named_raw(sig.as_raw())
        .expect("the parser accepts named signals only");
    let parent = rustix::process::getppid();
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(named)) {
        log::error!("setting pidreap's own parent-death signal (prctl PR_SET_PDEATHSIG): {e}");
        return Err(EXIT_OWN_ERROR);
    }
    if rustix::process::getppid() != parent {
        log::warn!("pidreap's parent exited before -p took effect: sending {sig} now");
        if let Err(e) = rustix::process::kill_process(rustix::process::getpid(), named) {
            log::error!("sending {sig} to pidreap itself: {e}");
            return Err(EXIT_OWN_ERROR);
        }
    }
    Ok(())
}

/// Runs `pidreap run` and returns the exit code.
pub fn run(opts: &RunOptions) -> i32 {
    for warning in crate::cli::foreign_env_warnings(|name| std::env::var(name).ok()) {
        log::warn!("{warning}");
    }
    if let Some(sig) = opts.parent_death_signal {
        if let Err(code) = set_parent_death_signal(sig) {
            return code;
        }
    }
    // Before anything is started: a mechanism that is not there ends
    // pidreap with nothing spawned.
    let containment = match choose(opts.contain) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let pid1 = rustix::process::getpid().is_init();
    let orphans = pid1 || opts.subreaper;
    let reaper = Reaper::builder()
        .handle_signals(&handled())
        .reap_orphans(orphans)
        .subreaper(opts.subreaper && !pid1)
        .build();
    let reaper = match reaper {
        Ok(r) => r,
        Err(e) => {
            log::error!("cannot start supervising: {}", Chain(&e));
            return EXIT_OWN_ERROR;
        }
    };
    if pid1 {
        log::debug!("running as PID 1: reaping orphans");
    }

    let nested = containment == Containment::PidNamespace;
    let mut cmd = if nested {
        init_command(opts)
    } else {
        let mut cmd = Command::new(&opts.program);
        cmd.args(&opts.args);
        cmd
    };
    cmd.death_signal(Some(opts.pdeathsig))
        // See the module docs: the stop signal itself is forwarded by us.
        .stop_ladder(StopLadder::new(Signal::CONT, opts.grace))
        .containment(containment);
    if opts.forward_to == ForwardTo::Group && !nested {
        // Composes with every mechanism: with group it is the same thing;
        // with pidns the child leads its group as PID 1 of its namespace.
        cmd.process_group(0);
    }
    // A child in a new session (--setsid) has no controlling terminal:
    // keys reach pidreap, which forwards them, as with dumb-init. Under
    // pidns the inner pidreap starts the new session, and is given the
    // terminal.
    let terminal = terminal().filter(|_| !opts.setsid || nested);
    if let Some(fd) = &terminal {
        match fd.try_clone() {
            Ok(copy) => {
                log::debug!("stdin is a terminal in the foreground: the child's group takes it");
                cmd.foreground_terminal(copy);
            }
            Err(e) => log::warn!("cannot duplicate stdin to hand the terminal to the child: {e}"),
        }
    }
    // Under pidns the nested init starts PROGRAM in a new session.
    cmd.setsid(opts.setsid && !nested);

    let mut sup = Supervisor {
        nested,
        opts,
        reaper,
        cmd,
        restarter: Restarter::new(opts.restart),
        child: None,
        child_pid: 0,
        last: None,
        stopping: false,
        containment,
        terminal,
    };
    let code = sup.main_loop();
    // Whatever ended the run (a spawn that failed after the child took the
    // terminal included), the terminal is pidreap's again, and the shell's
    // when pidreap exits.
    sup.take_terminal_back();
    // Reap the orphans that already exited before leaving (as PID 1 our
    // exit takes the rest of the namespace with it).
    if orphans {
        sup.drain_orphans();
    }
    code
}

impl Supervisor<'_> {
    fn spawn(&mut self) -> Result<(), i32> {
        match self.reaper.spawn(&self.cmd) {
            Ok(child) => {
                // The library logs the spawn (and each orphan reaped) at debug.
                self.child = Some(child.id());
                self.child_pid = child.pid();
                Ok(())
            }
            Err(e) => {
                log::error!("{}", Chain(&e));
                Err(e.exit_code())
            }
        }
    }

    fn main_loop(&mut self) -> i32 {
        if let Err(code) = self.spawn() {
            return code;
        }
        self.restarter.started(Instant::now());
        loop {
            while let Some(event) = self.reaper.next_event() {
                if let Some(code) = self.handle(event) {
                    return code;
                }
            }
            if self.restarter.poll_spawn(Instant::now()).is_some() {
                if let Err(code) = self.spawn() {
                    return code;
                }
            }
            let timeout = self
                .restarter
                .poll_timeout()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.reaper.poll(timeout) {
                log::error!("{}", Chain(&e));
                if let Some(id) = self.child {
                    let _ = self.reaper.kill(id);
                }
                return EXIT_OWN_ERROR;
            }
        }
    }

    /// Handles one event; `Some(code)` ends pidreap.
    fn handle(&mut self, event: Event) -> Option<i32> {
        match event {
            Event::Exited(exit) if Some(exit.id) == self.child => {
                self.child = None;
                self.take_terminal_back();
                self.last = Some(exit.status);
                self.exited(exit.status, exit.tree, exit.observed_at)
            }
            Event::Signal { signal, sender_pid } => {
                log::debug!("received {signal} from pid {sender_pid}");
                if !is_forwarded(signal) {
                    // SIGTTIN/SIGTTOU (see `handled`).
                    log::debug!("{signal} not forwarded: pidreap ignores SIGTTIN and SIGTTOU");
                    return None;
                }
                if sender_pid == rustix::process::getpid().as_raw_nonzero().get() {
                    // Blocked signals are queued even when ignored: this is
                    // the SIGPIPE (or SIGXFSZ) of one of pidreap's own
                    // writes, to a closed stderr for example. Not the
                    // child's business.
                    log::debug!("{signal} raised by pidreap itself: not forwarded");
                    return None;
                }
                self.signalled(signal)
            }
            // During a stop the ladder is already at work on the rest.
            Event::LeaderExited { id, pid, status } if Some(id) == self.child && !self.stopping => {
                // The library started the ladder (SIGCONT, SIGKILL after
                // the grace) for what is left; the stop signal tells it to
                // finish now.
                let sent = self.reaper.signal_tree(id, self.opts.stop_signal);
                log::info!(
                    "the child (pid {pid}) exited ({status}) and left processes behind: sent them {}, SIGKILL in {} if they are still running",
                    self.opts.stop_signal,
                    show(self.opts.grace)
                );
                if let Err(e) = sent {
                    log::error!("{}", Chain(&e));
                }
                None
            }
            Event::Stuck { pid, .. } => {
                log::error!(
                    "the child (pid {pid}) is still there after SIGKILL (uninterruptible sleep?): giving up on it"
                );
                Some(128 + Signal::KILL.as_raw())
            }
            _ => None,
        }
    }

    /// The child exited: restart it, or finish.
    fn exited(&mut self, status: ExitStatus, tree: Option<TreeUsage>, at: Instant) -> Option<i32> {
        // The status, and what the whole tree used when it was contained
        // in a cgroup.
        let summary = match tree {
            Some(tree) => format!("{status}; {}", show_tree(&tree)),
            None => status.to_string(),
        };
        if self.stopping {
            log::info!("the child exited ({summary})");
            return Some(self.opts.exit_code(status.shell_code()));
        }
        match self.restarter.on_exit_status(at, status, jitter()) {
            Decision::Restart { attempt, delay, .. } => {
                log::warn!(
                    "the child exited ({summary}): restart attempt {attempt} in {}",
                    show(delay)
                );
                None
            }
            Decision::GiveUp(StopReason::LimitReached) => {
                let cfg = self.restarter.config();
                log::warn!(
                    "the child exited ({summary}): giving up after {} restarts within {}",
                    cfg.max_restarts,
                    show(cfg.window)
                );
                Some(self.opts.exit_code(status.shell_code()))
            }
            Decision::GiveUp(StopReason::Prevented) => {
                log::info!(
                    "the child exited ({summary}): not restarted (--restart-prevent-exit-status)"
                );
                Some(self.opts.exit_code(status.shell_code()))
            }
            Decision::GiveUp(_) => {
                log::info!("the child exited ({summary})");
                Some(self.opts.exit_code(status.shell_code()))
            }
        }
    }

    /// A signal arrived on the signalfd.
    fn signalled(&mut self, signal: Signal) -> Option<i32> {
        // --rewrite FROM:0 drops FROM before pidreap acts on it at all.
        let rewritten = self.opts.rewritten(signal);
        if rewritten == Some(None) {
            log::debug!("{signal} dropped (--rewrite)");
            return None;
        }
        let stop = signal == Signal::TERM || signal == Signal::INT;
        let Some(id) = self.child else {
            // No child: we are between runs, in a restart back-off.
            if stop {
                self.restarter.stop();
                log::info!(
                    "received {signal} during the restart back-off: exiting without a restart"
                );
                return Some(self.last.map_or(128 + signal.as_raw(), |status| {
                    self.opts.exit_code(status.shell_code())
                }));
            }
            log::debug!("{signal} dropped: no child is running");
            return None;
        };
        let pid = self.child_pid;
        if self.reaper.pid(id).is_none() {
            // Reaped in the same poll that read this signal: its exit is
            // the next event. A stop request still means no restart.
            log::debug!("{signal} not forwarded: the child (pid {pid}) has already exited");
            if stop {
                self.stopping = true;
                self.restarter.stop();
            }
            return None;
        }
        // A nested pidreap turns SIGTERM into --stop-signal itself.
        let forward = if signal == Signal::TERM && !self.nested {
            self.opts.stop_signal
        } else {
            signal
        };
        // --rewrite FROM:TO changes what the child is sent, not what
        // pidreap does (SIGTERM and SIGINT still start the ladder).
        let forward = rewritten.flatten().unwrap_or(forward);
        if stop && self.stopping && signal == Signal::INT {
            log::warn!("second SIGINT: killing the child now");
            if let Err(e) = self.reaper.kill(id) {
                log::error!("{}", Chain(&e));
            }
            return None;
        }
        // Under cgroup containment a stop signal goes to the whole tree, as
        // the ladder's would (and as systemd's KillMode=control-group
        // does); other signals go where --forward-to says.
        let to_tree = stop && self.containment == Containment::Cgroup;
        log::debug!(
            "forwarding {signal} as {forward}{}",
            if to_tree { " to the whole tree" } else { "" }
        );
        let sent = if to_tree {
            self.reaper.signal_tree(id, forward)
        } else {
            self.reaper.signal(id, forward)
        };
        match sent {
            Ok(true) => {}
            // Exited, not yet reaped: nothing to deliver to.
            Ok(false) => {
                log::debug!("{forward} not delivered: the child (pid {pid}) has already exited")
            }
            Err(e) => log::error!("forwarding {forward}: {}", Chain(&e)),
        }
        if stop && !self.stopping {
            self.stopping = true;
            self.restarter.stop();
            let whom = if to_tree {
                "every process of the child's cgroup"
            } else {
                "the child"
            };
            log::info!(
                "received {signal}: sent {forward} to {whom}; SIGKILL in {} if it is still running",
                show(self.opts.grace)
            );
            // SIGCONT now, SIGKILL at the end of the grace.
            if let Err(e) = self.reaper.stop(id) {
                log::error!("{}", Chain(&e));
            }
        }
        None
    }

    /// Makes pidreap's group the terminal's foreground group again, if the
    /// child was given the terminal.
    fn take_terminal_back(&self) {
        if let Some(fd) = &self.terminal {
            if let Err(e) = pidreap::take_terminal(fd) {
                log::warn!("{}", Chain(&e));
            }
        }
    }

    /// Reaps the orphans that have already exited, without waiting.
    fn drain_orphans(&mut self) {
        if self.reaper.poll(Some(Duration::ZERO)).is_ok() {
            while self.reaper.next_event().is_some() {}
        }
    }
}
