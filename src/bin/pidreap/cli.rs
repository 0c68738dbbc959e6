//! Command-line parsing for `pidreap run`: options, durations, help text.

use std::ffi::OsString;
use std::time::Duration;

use pidreap::engine::{Backoff, ExitStatusSet, RestartConfig, RestartPolicy};
use pidreap::{Containment, Signal};

/// Where forwarded signals (and the stop ladder) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardTo {
    /// The child process only.
    Child,
    /// The child's process group: the child is spawned leading a new one.
    Group,
}

/// What `--contain` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contain {
    /// The strongest mechanism that works here (cgroup, pidns, group).
    Auto,
    /// Exactly this mechanism, or an error before anything is started.
    Exactly(Containment),
}

impl Contain {
    fn parse(value: &str) -> Result<Contain, String> {
        Ok(match value {
            "auto" => Contain::Auto,
            "none" => Contain::Exactly(Containment::None),
            "group" => Contain::Exactly(Containment::ProcessGroup),
            "cgroup" => Contain::Exactly(Containment::Cgroup),
            "pidns" => Contain::Exactly(Containment::PidNamespace),
            _ => {
                return Err(format!(
                    "expected none, group, cgroup, pidns or auto, got {value:?}"
                ))
            }
        })
    }
}

/// Everything `pidreap run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub grace: Duration,
    pub stop_signal: Signal,
    pub pdeathsig: Signal,
    pub forward_to: ForwardTo,
    pub contain: Contain,
    pub restart: RestartConfig,
    pub subreaper: bool,
    /// Verbosity: 0 is the default (warnings), negative is quieter.
    pub verbosity: i32,
    /// The child starts a new session (dumb-init's default).
    pub setsid: bool,
    /// What pidreap itself gets when its parent dies (tini's `-p`).
    pub parent_death_signal: Option<Signal>,
    /// Child exit statuses (as pidreap would exit with them) that pidreap
    /// exits 0 for instead (tini's `-e`).
    pub remap_exit: ExitStatusSet,
    /// Received signal, and what the child is sent instead (`None`: nothing,
    /// and pidreap ignores it), as dumb-init's `--rewrite`; the last rule for
    /// a signal wins.
    pub rewrite: Vec<(Signal, Option<Signal>)>,
}

impl RunOptions {
    /// What a received `signal` becomes, after `--rewrite`: `Some(None)`
    /// when it is dropped, `None` when no rule names it.
    pub fn rewritten(&self, signal: Signal) -> Option<Option<Signal>> {
        self.rewrite
            .iter()
            .rev()
            .find(|(from, _)| *from == signal)
            .map(|&(_, to)| to)
    }

    /// The exit code pidreap ends with for a child that ended with `code`
    /// (0 if `--remap-exit` lists it).
    pub fn exit_code(&self, code: i32) -> i32 {
        if self.remap_exit.contains(pidreap::ExitStatus::Exited(code)) {
            0
        } else {
            code
        }
    }
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            program: OsString::new(),
            args: Vec::new(),
            grace: Duration::from_secs(10),
            stop_signal: Signal::TERM,
            pdeathsig: Signal::KILL,
            forward_to: ForwardTo::Child,
            contain: Contain::Auto,
            restart: RestartConfig::default(),
            subreaper: false,
            verbosity: 0,
            setsid: false,
            parent_death_signal: None,
            remap_exit: ExitStatusSet::new(),
            rewrite: Vec::new(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    Run(Box<RunOptions>),
    Help,
    Version,
}

/// A usage error: one line naming what was wrong.
#[derive(Debug)]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

pub const HELP: &str = "\
pidreap: run a program as a supervised child (a supervisor and container init)

Usage:
  pidreap run [OPTIONS] [--] PROGRAM [ARGS...]
  pidreap bench [ARGS...]
  pidreap --help | --version

Subcommands:
  run    run PROGRAM as a supervised child and exit with its status
  bench  measure spawn and kill-to-reap latency on this machine

Options for run (the first argument that is not an option is PROGRAM):
  --grace DURATION         how long the child has to exit after a stop request
                           before it is SIGKILLed [default: 10s]
  --stop-signal SIG        what the child gets when pidreap receives SIGTERM
                           [default: TERM]
  --pdeathsig SIG          what the child gets if pidreap itself dies
                           [default: KILL]
  --forward-to child|group send forwarded signals to the child, or to its
                           process group (the child then leads a new group)
                           [default: child]
  -g                       the same as --forward-to group (tini's -g)
  --setsid                 start the child in a new session, so a new
                           process group without a controlling terminal,
                           and forward signals to that group (dumb-init's
                           default) [default: off]
  -c, --single-child       forward signals to the child only, and turn
                           --setsid off (dumb-init's -c) [default: off]
  -r, --rewrite FROM:TO    send the child signal TO when pidreap receives
                           FROM (names or numbers); TO 0 drops FROM, which
                           pidreap then ignores. SIGTERM and SIGINT still
                           start the stop ladder unless dropped. Repeatable
                           (dumb-init's -r) [default: none]
  -p, --parent-death-signal SIG
                           what pidreap itself gets when its parent dies
                           (tini's -p); a forwarded one such as TERM stops
                           the child as usual [default: none]
  -e, --remap-exit CODE    exit 0 instead of CODE (0 to 255; 128+N when the
                           child was killed by signal N); repeatable
                           (tini's -e) [default: none]
  --contain none|group|cgroup|pidns|auto
                           what is stopped with the child and dies with
                           pidreap:
                           none    the child only
                           group   its process group; setsid(1) escapes it,
                                   and only the child dies with pidreap
                           cgroup  its whole tree, in a cgroup v2 leaf of its
                                   own (needs Linux 5.14 and write access to
                                   pidreap's cgroup: root, or delegation)
                           pidns   its whole tree, in a new PID namespace
                                   (needs CAP_SYS_ADMIN or unprivileged user
                                   namespaces) whose init is a second
                                   pidreap, so PROGRAM is not PID 1
                           auto    the strongest that needs no configuration:
                                   cgroup, else pidns, else group
                           [default: auto]
  --restart never|on-success|on-failure|on-abnormal|always
                           restart the child when it exits: never, when it
                           succeeds (exit 0), when it fails (non-zero exit
                           or killed), when it is killed by a signal, or
                           always (as systemd's Restart=) [default: never]
  --success-exit-status CODES
                           exit codes and signal names that count as a
                           success for --restart besides exit 0, such as
                           \"75 TERM\" (systemd's SuccessExitStatus=);
                           repeatable [default: none]
  --restart-prevent-exit-status CODES
                           exit codes and signal names after which the
                           child is not restarted, whatever --restart says
                           (systemd's RestartPreventExitStatus=);
                           repeatable [default: none]
  --max-restarts N         give up after N restarts within --restart-window
                           [default: 10]
  --restart-window DURATION
                           the sliding window for --max-restarts; a child
                           that runs this long also resets the back-off
                           [default: 60s]
  --backoff MIN..MAX       delay before a restart: MIN, then doubling, with
                           jitter, capped at MAX [default: 100ms..30s]
  -s, --subreaper          become a child subreaper and reap orphaned
                           descendants (always done as PID 1) [default: off]
  -v, --verbose            more log output; repeat for more (-v info, -vv
                           debug, -vvv trace) [default: warnings and errors]
  -q, --quiet              errors only [default: off]
  -h, --help               print this help and exit
  -V, --version            print the version and exit

DURATION: a number and a unit: 500ms, 10s, 2m, 1h (1.5s works too); a plain
number is seconds. SIG: a name (TERM, SIGTERM, term), a number (15), or a
real-time signal as kill -l names it: RTMIN+N is 34+N, RTMAX-N is 64-N.
CODES: exit codes (0 to 255) and signal names, separated by spaces or commas.

Environment: PIDREAP_SUBREAPER (1 or 0), PIDREAP_VERBOSITY (-1 errors only,
0 warnings, 1 info, 2 debug, 3 trace), PIDREAP_FORWARD_TO, PIDREAP_GRACE,
PIDREAP_CONTAIN and PIDREAP_SETSID (1 or 0) set the default of the option
they name; the command line wins over them. tini's and dumb-init's variables
(TINI_SUBREAPER, TINI_VERBOSITY, TINI_KILL_PROCESS_GROUP, DUMB_INIT_SETSID)
are not read: a warning names the PIDREAP_ variable to use instead.

Signals: every signal is forwarded to the child (to its group with
--forward-to group) except SIGKILL, SIGSTOP, SIGCHLD (pidreap's own), the
fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS), 32 and 33
(the C library's), and SIGTTIN and SIGTTOU, which pidreap ignores, as tini
does (SIGTSTP is forwarded). SIGTERM and SIGINT also start the stop ladder:
the child gets the signal once (SIGTERM is delivered as --stop-signal, SIGINT
as itself), then SIGCONT, then SIGKILL if it is still running after --grace.
A second SIGINT sends SIGKILL at once. A stop request during a restart
back-off ends pidreap at once, without starting the child again.

Terminal: when stdin is the terminal pidreap runs in the foreground of, the
child's process group becomes its foreground group (Ctrl-C and Ctrl-Z reach
the child's group, not pidreap) and pidreap takes it back when the child
exits.

Exit status: the child's exit code; 128+N if it died of signal N; 127 if
PROGRAM was not found; 126 if it could not be executed; 125 for pidreap's own
errors (bad option or value, a --contain mechanism that is not available
here). With restarts, the status of the last run.
";

/// The version line.
pub fn version() -> String {
    format!("pidreap {}", env!("CARGO_PKG_VERSION"))
}

/// The environment variables `pidreap run` reads, each the default for an
/// option (the command line wins).
pub const ENV_VARS: [&str; 6] = [
    "PIDREAP_SUBREAPER",
    "PIDREAP_VERBOSITY",
    "PIDREAP_FORWARD_TO",
    "PIDREAP_GRACE",
    "PIDREAP_CONTAIN",
    "PIDREAP_SETSID",
];

/// Variables tini and dumb-init read, and the `PIDREAP_*` one to use
/// instead; pidreap does not read them (see [`foreign_env_warnings`]).
const FOREIGN_ENV_VARS: [(&str, &str); 4] = [
    ("TINI_SUBREAPER", "PIDREAP_SUBREAPER=1"),
    ("TINI_VERBOSITY", "PIDREAP_VERBOSITY"),
    ("TINI_KILL_PROCESS_GROUP", "PIDREAP_FORWARD_TO=group"),
    ("DUMB_INIT_SETSID", "PIDREAP_SETSID"),
];

/// One warning per tini or dumb-init variable that is set: pidreap does not
/// read them (the same names would also reach a tini or dumb-init the child
/// runs, where they mean something else), so a Dockerfile that moved to
/// pidreap and kept its `ENV` line is told what to write instead.
pub fn foreign_env_warnings(env: impl Fn(&str) -> Option<String>) -> Vec<String> {
    FOREIGN_ENV_VARS
        .iter()
        .filter(|(name, _)| env(name).is_some())
        .map(|(name, ours)| format!("{name} is set, but pidreap does not read it: use {ours}"))
        .collect()
}

/// Parses `1`, `true`, `yes`, `on` and `0`, `false`, `no`, `off` (any
/// case); an empty value is false.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "expected 1 or 0 (true/false, yes/no, on/off), got {s:?}"
        )),
    }
}

fn parse_forward_to(value: &str) -> Result<ForwardTo, String> {
    match value {
        "child" => Ok(ForwardTo::Child),
        "group" => Ok(ForwardTo::Group),
        _ => Err(format!("expected child or group, got {value:?}")),
    }
}

/// Applies the `PIDREAP_*` variables `env` has to `opts`: the defaults the
/// command line then overrides.
fn apply_env(
    opts: &mut RunOptions,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), UsageError> {
    for name in ENV_VARS {
        let Some(value) = env(name) else { continue };
        let bad = |why: String| usage(format!("environment variable {name}: {why}"));
        match name {
            "PIDREAP_SUBREAPER" => opts.subreaper = parse_bool(&value).map_err(bad)?,
            "PIDREAP_VERBOSITY" => {
                opts.verbosity = value.trim().parse::<i32>().map_err(|_| {
                    bad(format!(
                        "expected a whole number (-1 errors only, 0 warnings, 1 info, 2 debug, 3 trace), got {value:?}"
                    ))
                })?
            }
            "PIDREAP_FORWARD_TO" => opts.forward_to = parse_forward_to(&value).map_err(bad)?,
            "PIDREAP_GRACE" => opts.grace = parse_duration(&value).map_err(bad)?,
            "PIDREAP_CONTAIN" => opts.contain = Contain::parse(&value).map_err(bad)?,
            "PIDREAP_SETSID" => opts.setsid = parse_bool(&value).map_err(bad)?,
            _ => unreachable!("every name in ENV_VARS is handled"),
        }
    }
    Ok(())
}

/// Parses `FROM:TO` of `--rewrite`: two signals (names or numbers); TO may
/// be 0, for "drop".
fn parse_rewrite(value: &str) -> Result<(Signal, Option<Signal>), String> {
    let (from, to) = value.split_once(':').ok_or_else(|| {
        format!("expected FROM:TO (for example TERM:QUIT or 15:3), got {value:?}")
    })?;
    let from: Signal = from
        .parse()
        .map_err(|e: pidreap::ParseSignalError| e.to_string())?;
    if !crate::supervise::is_forwarded(from) {
        return Err(format!("{from} is not a signal pidreap forwards"));
    }
    let to = match to.trim() {
        "0" => None,
        to => Some(
            to.parse()
                .map_err(|e: pidreap::ParseSignalError| e.to_string())?,
        ),
    };
    Ok((from, to))
}

/// Parses the arguments after `run`, with the `PIDREAP_*` variables of this
/// process's environment as defaults.
pub fn parse_run(args: Vec<OsString>) -> Result<Request, UsageError> {
    parse_run_with_env(args, |name| std::env::var(name).ok())
}

/// [`parse_run`] with the environment `env` gives.
pub fn parse_run_with_env(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Request, UsageError> {
    use lexopt::Arg::{Long, Short, Value};

    let mut opts = RunOptions::default();
    apply_env(&mut opts, &env)?;
    // -v and -q on the command line replace PIDREAP_VERBOSITY.
    let mut verbosity: Option<i32> = None;
    // `--forward-to child` given on the command line, which `--setsid`
    // contradicts.
    let mut child_only = false;
    let (mut min, mut max) = (opts.restart.backoff.min(), opts.restart.backoff.max());
    let mut parser = lexopt::Parser::from_args(args);
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return Err(usage(e.to_string())),
        };
        match arg {
            Short('h') | Long("help") => return Ok(Request::Help),
            Short('V') | Long("version") => return Ok(Request::Version),
            Short('v') | Long("verbose") => verbosity = Some(verbosity.unwrap_or(0) + 1),
            Short('q') | Long("quiet") => verbosity = Some(verbosity.unwrap_or(0) - 1),
            Short('s') | Long("subreaper") => opts.subreaper = true,
            Short('g') => opts.forward_to = ForwardTo::Group,
            Long("setsid") => opts.setsid = true,
            Short('c') | Long("single-child") => {
                opts.setsid = false;
                opts.forward_to = ForwardTo::Child;
            }
            Short(c @ ('p' | 'e' | 'r')) => {
                let name = match c {
                    'p' => "parent-death-signal",
                    'e' => "remap-exit",
                    _ => "rewrite",
                };
                let value = parser
                    .value()
                    .map_err(|_| usage(format!("-{c}: missing value")))?
                    .into_string()
                    .map_err(|v| usage(format!("-{c}: the value {v:?} is not valid UTF-8")))?;
                set_valued(
                    &mut opts,
                    &mut child_only,
                    (&mut min, &mut max),
                    name,
                    &value,
                )
                .map_err(|why| usage(format!("-{c}: {why}")))?;
            }
            Long(name) => {
                let name = name.to_owned();
                let value = value_of(&mut parser, &name)?;
                set_valued(
                    &mut opts,
                    &mut child_only,
                    (&mut min, &mut max),
                    &name,
                    &value,
                )
                .map_err(|why| usage(format!("--{name}: {why}")))?;
            }
            // Escaped: the option may hold any character, and the message
            // must stay one line.
            Short(c) => {
                return Err(usage(format!(
                    "unknown option -{} (see pidreap --help)",
                    c.escape_debug()
                )))
            }
            Value(program) => {
                opts.program = program;
                opts.args = parser
                    .raw_args()
                    .map_err(|e| usage(e.to_string()))?
                    .collect();
                break;
            }
        }
    }
    if opts.program.is_empty() {
        return Err(usage(
            "missing PROGRAM: pidreap run [OPTIONS] [--] PROGRAM [ARGS...]",
        ));
    }
    opts.restart.backoff = Backoff::new(min, max).expect("parse_backoff checks min <= max");
    if let Some(v) = verbosity {
        opts.verbosity = v;
    }
    if opts.setsid {
        if child_only {
            return Err(usage(
                "--setsid sends forwarded signals to the child's new process group; \
                 --forward-to child contradicts it (--single-child turns --setsid off)",
            ));
        }
        opts.forward_to = ForwardTo::Group;
    }
    Ok(Request::Run(Box::new(opts)))
}

/// Sets option `--name` (one that takes a value) from `value`; the error
/// says why the value is wrong.
fn set_valued(
    opts: &mut RunOptions,
    child_only: &mut bool,
    (min, max): (&mut Duration, &mut Duration),
    name: &str,
    value: &str,
) -> Result<(), String> {
    match name {
        "grace" => opts.grace = parse_duration(value)?,
        "stop-signal" => opts.stop_signal = parse_signal(value)?,
        "pdeathsig" => opts.pdeathsig = parse_signal(value)?,
        "forward-to" => {
            opts.forward_to = parse_forward_to(value)?;
            *child_only = opts.forward_to == ForwardTo::Child;
        }
        "contain" => opts.contain = Contain::parse(value)?,
        "restart" => {
            opts.restart.policy = value.parse::<RestartPolicy>().map_err(|e| e.to_string())?
        }
        "max-restarts" => {
            opts.restart.max_restarts = value.parse::<u32>().map_err(|_| {
                format!(
                    "expected a whole number from 0 to {}, got {value:?}",
                    u32::MAX
                )
            })?
        }
        "restart-window" => {
            let window = parse_duration(value)?;
            if window.is_zero() {
                return Err("the window must be longer than 0".into());
            }
            opts.restart.window = window;
        }
        "backoff" => (*min, *max) = parse_backoff(value)?,
        "success-exit-status" => {
            let set: ExitStatusSet = value
                .parse()
                .map_err(|e: pidreap::engine::ParseExitStatusSetError| e.to_string())?;
            opts.restart.success_exit_status.extend(&set);
        }
        "restart-prevent-exit-status" => {
            let set: ExitStatusSet = value
                .parse()
                .map_err(|e: pidreap::engine::ParseExitStatusSetError| e.to_string())?;
            opts.restart.prevent_exit_status.extend(&set);
        }
        "parent-death-signal" => {
            let sig = parse_signal(value)?;
            // rustix names the signals it takes; tini takes names only.
            if sig.name().is_none() {
                return Err(format!(
                    "{sig} is a real-time signal: use a named one (TERM, KILL, ...)"
                ));
            }
            opts.parent_death_signal = Some(sig);
        }
        "remap-exit" => {
            let code: u8 = value
                .trim()
                .parse()
                .map_err(|_| format!("expected an exit code from 0 to 255, got {value:?}"))?;
            opts.remap_exit.insert_code(code);
        }
        "rewrite" => opts.rewrite.push(parse_rewrite(value)?),
        _ => unreachable!("value_of accepts only known options"),
    }
    Ok(())
}

const VALUED: &[&str] = &[
    "grace",
    "stop-signal",
    "pdeathsig",
    "forward-to",
    "contain",
    "restart",
    "max-restarts",
    "restart-window",
    "backoff",
    "success-exit-status",
    "restart-prevent-exit-status",
    "parent-death-signal",
    "remap-exit",
    "rewrite",
];

/// The value of option `--name`, as UTF-8; refuses unknown options.
fn value_of(parser: &mut lexopt::Parser, name: &str) -> Result<String, UsageError> {
    if !VALUED.contains(&name) {
        return Err(usage(format!(
            "unknown option --{} (see pidreap --help)",
            name.escape_debug()
        )));
    }
    let value = parser
        .value()
        .map_err(|_| usage(format!("--{name}: missing value")))?;
    value
        .into_string()
        .map_err(|v| usage(format!("--{name}: the value {v:?} is not valid UTF-8")))
}

fn parse_signal(s: &str) -> Result<Signal, String> {
    let sig: Signal = s
        .parse()
        .map_err(|e: pidreap::ParseSignalError| e.to_string())?;
    if sig == Signal::STOP {
        return Err("SIGSTOP would only freeze the child".into());
    }
    Ok(sig)
}

/// The longest duration accepted: a year is already "for ever" here.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses `500ms`, `10s`, `2m`, `1h`, `1.5s`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {s:?} (expected a number and a unit: 500ms, 10s, 2m, 1h)");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit_ns: u128 = match unit {
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(bad()),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 9 {
        return Err(bad());
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    let frac_ns = frac_value * unit_ns / 10u128.pow(frac.len() as u32);
    let nanos = whole
        .checked_mul(unit_ns)
        .and_then(|w| w.checked_add(frac_ns))
        .ok_or_else(bad)?;
    if nanos > MAX_DURATION.as_nanos() {
        return Err(format!("duration {s:?} is too long (at most 366 days)"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

fn parse_backoff(s: &str) -> Result<(Duration, Duration), String> {
    let (min, max) = s
        .split_once("..")
        .ok_or_else(|| format!("expected MIN..MAX (for example 100ms..30s), got {s:?}"))?;
    let (min, max) = (parse_duration(min)?, parse_duration(max)?);
    if min > max {
        return Err(format!("MIN must not exceed MAX in {s:?}"));
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<RunOptions, String> {
        match parse_run(args.iter().map(OsString::from).collect()) {
            Ok(Request::Run(o)) => Ok(*o),
            Ok(other) => Err(format!("{other:?}")),
            Err(UsageError(e)) => Err(e),
        }
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("10"), Ok(ms(10_000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration(".25s"), Ok(ms(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            ".",
            "-1s",
            "1.2.3s",
            "10 s",
            "5d",
            "abc",
            "1e3",
            "9999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("367d").is_err());
        assert!(parse_duration("9000h").unwrap_err().contains("too long"));
    }

    #[test]
    fn options_and_program() {
        let o = run(&[
            "-vv",
            "--grace=2s",
            "--backoff",
            "1s..2s",
            "--",
            "sleep",
            "-x",
            "--grace",
        ])
        .unwrap();
        assert_eq!(o.verbosity, 2);
        assert_eq!(o.grace, Duration::from_secs(2));
        assert_eq!(o.restart.backoff.max(), Duration::from_secs(2));
        assert_eq!(o.program, "sleep");
        assert_eq!(o.args, ["-x", "--grace"]);
        // The first non-option ends the options.
        let o = run(&["-q", "ls", "-l"]).unwrap();
        assert_eq!((o.verbosity, o.args.len()), (-1, 1));
    }

    #[test]
    fn contain_values() {
        assert_eq!(run(&["true"]).unwrap().contain, Contain::Auto);
        for (value, want) in [
            ("auto", Contain::Auto),
            ("none", Contain::Exactly(Containment::None)),
            ("group", Contain::Exactly(Containment::ProcessGroup)),
            ("cgroup", Contain::Exactly(Containment::Cgroup)),
            ("pidns", Contain::Exactly(Containment::PidNamespace)),
        ] {
            assert_eq!(run(&["--contain", value, "true"]).unwrap().contain, want);
            let joined = format!("--contain={value}");
            assert_eq!(run(&[&joined, "true"]).unwrap().contain, want);
        }
        for bad in ["", "Cgroup", "namespace", "pid"] {
            let e = run(&["--contain", bad, "true"]).unwrap_err();
            assert!(e.starts_with("--contain: expected none, group"), "{e}");
        }
    }

    #[test]
    fn errors_name_what_failed() {
        assert!(run(&["--bogus", "true"]).unwrap_err().contains("--bogus"));
        assert!(run(&["-x", "true"]).unwrap_err().contains("-x"));
        assert!(run(&["--grace", "soon", "true"])
            .unwrap_err()
            .starts_with("--grace:"));
        assert!(run(&["--backoff", "2s..1s", "true"])
            .unwrap_err()
            .starts_with("--backoff:"));
        assert!(run(&["--restart", "sometimes", "true"])
            .unwrap_err()
            .starts_with("--restart:"));
        assert!(run(&["--max-restarts", "-1", "true"])
            .unwrap_err()
            .starts_with("--max-restarts:"));
        assert!(run(&["--stop-signal", "NOPE", "true"])
            .unwrap_err()
            .starts_with("--stop-signal:"));
        assert!(run(&["--restart-window", "0", "true"])
            .unwrap_err()
            .starts_with("--restart-window:"));
        assert!(run(&["--grace"]).unwrap_err().contains("missing value"));
        assert!(run(&["-v"]).unwrap_err().contains("missing PROGRAM"));
    }

    fn run_env(args: &[&str], env: &[(&str, &str)]) -> Result<RunOptions, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match parse_run_with_env(args.iter().map(OsString::from).collect(), lookup) {
            Ok(Request::Run(o)) => Ok(*o),
            Ok(other) => Err(format!("{other:?}")),
            Err(UsageError(e)) => Err(e),
        }
    }

    #[test]
    fn tini_and_dumb_init_flags() {
        let o = run(&["-s", "-g", "-p", "SIGTERM", "-e", "143", "-e3", "--", "x"]).unwrap();
        assert!(o.subreaper);
        assert_eq!(o.forward_to, ForwardTo::Group);
        assert_eq!(o.parent_death_signal, Some(Signal::TERM));
        assert_eq!(
            (o.exit_code(143), o.exit_code(3), o.exit_code(1)),
            (0, 0, 1)
        );
        assert_eq!(o.program, "x");
        // tini's cluster of short flags.
        let o = run(&["-sgv", "x"]).unwrap();
        assert!(o.subreaper && o.forward_to == ForwardTo::Group && o.verbosity == 1);

        let o = run(&[
            "--setsid",
            "-r",
            "TERM:QUIT",
            "--rewrite=10:0",
            "-r",
            "TERM:HUP",
            "x",
        ])
        .unwrap();
        assert!(o.setsid);
        assert_eq!(
            o.forward_to,
            ForwardTo::Group,
            "--setsid forwards to the group"
        );
        assert_eq!(
            o.rewritten(Signal::TERM),
            Some(Some(Signal::HUP)),
            "the last rule wins"
        );
        assert_eq!(o.rewritten(Signal::USR1), Some(None));
        assert_eq!(o.rewritten(Signal::INT), None);
        let o = run(&["--setsid", "-g", "--single-child", "x"]).unwrap();
        assert!(!o.setsid);
        assert_eq!(o.forward_to, ForwardTo::Child);

        let o = run(&[
            "--restart",
            "on-abnormal",
            "--success-exit-status",
            "75 TERM",
            "--success-exit-status=76",
            "--restart-prevent-exit-status",
            "3,KILL",
            "x",
        ])
        .unwrap();
        assert_eq!(o.restart.policy, RestartPolicy::OnAbnormal);
        let ok = o.restart.success_exit_status;
        assert!(ok.contains(pidreap::ExitStatus::Exited(75)));
        assert!(ok.contains(pidreap::ExitStatus::Exited(76)), "repeatable");
        assert!(o
            .restart
            .prevent_exit_status
            .contains(pidreap::ExitStatus::Exited(3)));

        for (args, names) in [
            (&["-p", "RTMIN+1", "x"][..], "-p: "),
            (&["-p"][..], "-p: missing value"),
            (
                &["--parent-death-signal", "NOPE", "x"][..],
                "--parent-death-signal: ",
            ),
            (&["-e", "256", "x"][..], "-e: "),
            (&["-e", "-1", "x"][..], "-e: "),
            (&["-r", "TERM", "x"][..], "-r: expected FROM:TO"),
            (
                &["--rewrite", "KILL:TERM", "x"][..],
                "--rewrite: SIGKILL is not a signal pidreap forwards",
            ),
            (&["--rewrite", "TERM:99", "x"][..], "--rewrite: "),
            (
                &["--success-exit-status", "300", "x"][..],
                "--success-exit-status: \"300\"",
            ),
            (
                &["--restart-prevent-exit-status", "NOPE", "x"][..],
                "--restart-prevent-exit-status: ",
            ),
            (&["--setsid", "--forward-to", "child", "x"][..], "--setsid"),
            (&["-w", "x"][..], "unknown option -w"),
            // Found by the fuzz target `cli`: escaped, on one line.
            (&["--a\nb", "x"][..], "unknown option --a\\nb"),
            (&["-\u{1}", "x"][..], "unknown option -\\u{1}"),
        ] {
            let e = run(args).unwrap_err();
            assert!(e.starts_with(names), "{args:?}: {e}");
        }
    }

    #[test]
    fn environment_variables_are_defaults_the_command_line_overrides() {
        let env = [
            ("PIDREAP_SUBREAPER", "1"),
            ("PIDREAP_VERBOSITY", "2"),
            ("PIDREAP_FORWARD_TO", "group"),
            ("PIDREAP_GRACE", "3s"),
            ("PIDREAP_CONTAIN", "none"),
            ("PIDREAP_SETSID", "0"),
        ];
        let o = run_env(&["x"], &env).unwrap();
        assert!(o.subreaper);
        assert_eq!(o.verbosity, 2);
        assert_eq!(o.forward_to, ForwardTo::Group);
        assert_eq!(o.grace, Duration::from_secs(3));
        assert_eq!(o.contain, Contain::Exactly(Containment::None));
        assert!(!o.setsid);

        let o = run_env(
            &[
                "-q",
                "--forward-to",
                "child",
                "--grace",
                "1s",
                "--contain",
                "group",
                "x",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(o.verbosity, -1, "-q replaces PIDREAP_VERBOSITY");
        assert_eq!(o.forward_to, ForwardTo::Child);
        assert_eq!(o.grace, Duration::from_secs(1));
        assert_eq!(o.contain, Contain::Exactly(Containment::ProcessGroup));

        let o = run_env(&["x"], &[("PIDREAP_SETSID", "yes")]).unwrap();
        assert!(o.setsid && o.forward_to == ForwardTo::Group);
        // --single-child beats PIDREAP_SETSID, as dumb-init's -c beats
        // DUMB_INIT_SETSID; and a command-line --forward-to child with
        // an environment setsid is not a contradiction: the line wins.
        let o = run_env(&["-c", "x"], &[("PIDREAP_SETSID", "1")]).unwrap();
        assert!(!o.setsid && o.forward_to == ForwardTo::Child);
        assert!(run_env(&["x"], &[("PIDREAP_SUBREAPER", "")]).is_ok_and(|o| !o.subreaper));

        for (name, value) in [
            ("PIDREAP_SUBREAPER", "maybe"),
            ("PIDREAP_VERBOSITY", "loud"),
            ("PIDREAP_FORWARD_TO", "parent"),
            ("PIDREAP_GRACE", "soon"),
            ("PIDREAP_CONTAIN", "jail"),
            ("PIDREAP_SETSID", "2"),
        ] {
            let e = run_env(&["x"], &[(name, value)]).unwrap_err();
            assert!(
                e.starts_with(&format!("environment variable {name}: ")),
                "{e}"
            );
            assert!(e.contains(value), "{e}");
        }
        assert_eq!(
            foreign_env_warnings(|n| (n == "TINI_SUBREAPER").then(String::new)),
            ["TINI_SUBREAPER is set, but pidreap does not read it: use PIDREAP_SUBREAPER=1"]
        );
        assert!(foreign_env_warnings(|_| None).is_empty());
    }
}
