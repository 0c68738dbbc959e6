//! Command-line parsing for `pidreap run`: options, durations, help text.

use std::ffi::OsString;
use std::time::Duration;

use pidreap::engine::{Backoff, RestartConfig, RestartPolicy};
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
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    Run(RunOptions),
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
                                   cgroup, else pidns, else group (none
                                   when stdin is a terminal, whose
                                   foreground group the child must stay in)
                           [default: auto]
  --restart never|on-failure|always
                           restart the child when it exits: never, when it
                           fails (non-zero exit or killed), or always
                           [default: never]
  --max-restarts N         give up after N restarts within --restart-window
                           [default: 10]
  --restart-window DURATION
                           the sliding window for --max-restarts; a child
                           that runs this long also resets the back-off
                           [default: 60s]
  --backoff MIN..MAX       delay before a restart: MIN, then doubling, with
                           jitter, capped at MAX [default: 100ms..30s]
  --subreaper              become a child subreaper and reap orphaned
                           descendants (always done as PID 1) [default: off]
  -v, --verbose            more log output; repeat for more (-v info, -vv
                           debug, -vvv trace) [default: warnings and errors]
  -q, --quiet              errors only [default: off]
  -h, --help               print this help and exit
  -V, --version            print the version and exit

DURATION: a number and a unit: 500ms, 10s, 2m, 1h (1.5s works too); a plain
number is seconds. SIG: a name (TERM, SIGTERM, term), a number (15), or a
real-time signal as kill -l names it: RTMIN+N is 34+N, RTMAX-N is 64-N.

Signals: every signal is forwarded to the child (to its group with
--forward-to group) except SIGKILL, SIGSTOP, SIGCHLD (pidreap's own), the
fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS), 32 and 33
(the C library's), and SIGTTIN and SIGTTOU, which pidreap ignores, as tini
does (SIGTSTP is forwarded). SIGTERM and SIGINT also start the stop ladder:
the child gets the signal once (SIGTERM is delivered as --stop-signal, SIGINT
as itself), then SIGCONT, then SIGKILL if it is still running after --grace.
A second SIGINT sends SIGKILL at once. A stop request during a restart
back-off ends pidreap at once, without starting the child again.

Exit status: the child's exit code; 128+N if it died of signal N; 127 if
PROGRAM was not found; 126 if it could not be executed; 125 for pidreap's own
errors (bad option or value, a --contain mechanism that is not available
here). With restarts, the status of the last run.
";

/// The version line.
pub fn version() -> String {
    format!("pidreap {}", env!("CARGO_PKG_VERSION"))
}

/// Parses the arguments after `run`.
pub fn parse_run(args: Vec<OsString>) -> Result<Request, UsageError> {
    use lexopt::Arg::{Long, Short, Value};

    let mut opts = RunOptions::default();
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
            Short('v') | Long("verbose") => opts.verbosity += 1,
            Short('q') | Long("quiet") => opts.verbosity -= 1,
            Long("subreaper") => opts.subreaper = true,
            Long(name) => {
                let name = name.to_owned();
                let value = value_of(&mut parser, &name)?;
                let bad = |why: String| usage(format!("--{name}: {why}"));
                match name.as_str() {
                    "grace" => opts.grace = parse_duration(&value).map_err(bad)?,
                    "stop-signal" => opts.stop_signal = parse_signal(&value).map_err(bad)?,
                    "pdeathsig" => opts.pdeathsig = parse_signal(&value).map_err(bad)?,
                    "forward-to" => {
                        opts.forward_to = match value.as_str() {
                            "child" => ForwardTo::Child,
                            "group" => ForwardTo::Group,
                            _ => {
                                return Err(bad(format!("expected child or group, got {value:?}")))
                            }
                        }
                    }
                    "contain" => opts.contain = Contain::parse(&value).map_err(bad)?,
                    "restart" => {
                        opts.restart.policy = value
                            .parse::<RestartPolicy>()
                            .map_err(|e| bad(e.to_string()))?
                    }
                    "max-restarts" => {
                        opts.restart.max_restarts = value.parse::<u32>().map_err(|_| {
                            bad(format!(
                                "expected a whole number from 0 to {}, got {value:?}",
                                u32::MAX
                            ))
                        })?
                    }
                    "restart-window" => {
                        let window = parse_duration(&value).map_err(bad)?;
                        if window.is_zero() {
                            return Err(bad("the window must be longer than 0".into()));
                        }
                        opts.restart.window = window;
                    }
                    "backoff" => (min, max) = parse_backoff(&value).map_err(bad)?,
                    _ => unreachable!("value_of accepts only known options"),
                }
            }
            Short(c) => return Err(usage(format!("unknown option -{c} (see pidreap --help)"))),
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
    Ok(Request::Run(opts))
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
];

/// The value of option `--name`, as UTF-8; refuses unknown options.
fn value_of(parser: &mut lexopt::Parser, name: &str) -> Result<String, UsageError> {
    if !VALUED.contains(&name) {
        return Err(usage(format!(
            "unknown option --{name} (see pidreap --help)"
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
            Ok(Request::Run(o)) => Ok(o),
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
}
