//! Properties of `pidreap run`'s whole command line (arguments and the
//! `PIDREAP_*` variables, parsed to its options; nothing is spawned),
//! checked on arbitrary bytes: the fuzz target `cli` and
//! `tests/fuzz_corpus.rs` both call [`check`]. The crate root must have the
//! binary's `cli` and `supervise` modules in scope.
//!
//! The input is split at NUL bytes; a piece starting with byte 1 is an
//! environment variable `NAME=VALUE`, every other piece an argument (any
//! bytes, so non-UTF-8 ones too).
//!
//! - The parser never panics.
//! - Parsed options keep their promises: a program is named, no stop signal
//!   is SIGSTOP, the restart window is not zero, `--setsid` means forwarding
//!   to the group, `--rewrite` only rewrites forwarded signals, the
//!   parent-death signal has a name.
//! - Parsed options written back as a command line (every option spelled
//!   out, numbers for signals) parse to the same options.
//! - An error is one non-empty line and names what was wrong: an option
//!   the input has, an environment variable, or the missing program.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use pidreap::engine::ExitStatusSet;
use pidreap::{ExitStatus, Signal};

use crate::cli::{parse_run_with_env, Contain, ForwardTo, Request, RunOptions, UsageError};

/// The arguments and environment variables `data` encodes.
pub fn decode(data: &[u8]) -> (Vec<OsString>, Vec<(String, String)>) {
    let mut args = Vec::new();
    let mut env = Vec::new();
    for piece in data.split(|&b| b == 0) {
        if let Some(var) = piece.strip_prefix(&[1]) {
            let var = String::from_utf8_lossy(var);
            let (name, value) = var.split_once('=').unwrap_or((&var, ""));
            env.push((name.to_owned(), value.to_owned()));
        } else {
            args.push(OsString::from_vec(piece.to_vec()));
        }
    }
    (args, env)
}

fn parse(args: &[OsString], env: &[(String, String)]) -> Result<Request, UsageError> {
    parse_run_with_env(args.to_vec(), |name| {
        // The last assignment wins, as in a shell.
        env.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    })
}

fn duration(d: Duration) -> String {
    format!("{}.{:09}s", d.as_secs(), d.subsec_nanos())
}

/// The set as the options write it: codes, then signals by name.
fn set_words(set: &ExitStatusSet) -> String {
    let codes = (0..=255).filter(|&c| set.contains(ExitStatus::Exited(c)));
    let signals = (1..=64).filter_map(Signal::from_raw).filter(|&signal| {
        set.contains(ExitStatus::Signaled {
            signal,
            core_dumped: false,
        })
    });
    codes
        .map(|c| c.to_string())
        .chain(signals.map(|s| s.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `opts` as a command line and environment that ask for exactly them.
fn write_back(opts: &RunOptions) -> (Vec<OsString>, Vec<(String, String)>) {
    let mut a: Vec<String> = Vec::new();
    let r = &opts.restart;
    a.extend(["--grace".into(), duration(opts.grace)]);
    a.extend([
        "--stop-signal".into(),
        opts.stop_signal.as_raw().to_string(),
    ]);
    a.extend(["--pdeathsig".into(), opts.pdeathsig.as_raw().to_string()]);
    if opts.setsid {
        a.push("--setsid".into());
    } else {
        let to = match opts.forward_to {
            ForwardTo::Child => "child",
            ForwardTo::Group => "group",
        };
        a.extend(["--forward-to".into(), to.into()]);
    }
    let contain = match opts.contain {
        Contain::Auto => "auto",
        Contain::Exactly(c) => c.name(),
    };
    a.extend(["--contain".into(), contain.into()]);
    a.extend(["--restart".into(), r.policy.to_string()]);
    a.extend(["--max-restarts".into(), r.max_restarts.to_string()]);
    a.extend(["--restart-window".into(), duration(r.window)]);
    let backoff = format!(
        "{}..{}",
        duration(r.backoff.min()),
        duration(r.backoff.max())
    );
    a.extend(["--backoff".into(), backoff]);
    a.extend([
        "--success-exit-status".into(),
        set_words(&r.success_exit_status),
    ]);
    a.extend([
        "--restart-prevent-exit-status".into(),
        set_words(&r.prevent_exit_status),
    ]);
    if opts.subreaper {
        a.push("-s".into());
    }
    if let Some(sig) = opts.parent_death_signal {
        a.extend(["-p".into(), sig.name().unwrap_or("?").into()]);
    }
    for code in 0..=255 {
        if opts.remap_exit.contains(ExitStatus::Exited(code)) {
            a.extend(["-e".into(), code.to_string()]);
        }
    }
    for (from, to) in &opts.rewrite {
        let to = to.map_or(0, Signal::as_raw);
        a.extend(["-r".into(), format!("{}:{to}", from.as_raw())]);
    }
    a.push("--".into());
    let mut args: Vec<OsString> = a.into_iter().map(OsString::from).collect();
    args.push(opts.program.clone());
    args.extend(opts.args.iter().cloned());
    let env = vec![("PIDREAP_VERBOSITY".to_owned(), opts.verbosity.to_string())];
    (args, env)
}

fn check_options(opts: &RunOptions) -> Result<(), String> {
    let r = &opts.restart;
    let broken = if opts.program.is_empty() {
        "no program"
    } else if opts.stop_signal == Signal::STOP || opts.pdeathsig == Signal::STOP {
        "SIGSTOP as a stop or parent-death signal"
    } else if r.window.is_zero() {
        "a zero restart window"
    } else if r.backoff.min() > r.backoff.max() {
        "a back-off minimum above its maximum"
    } else if opts.setsid && opts.forward_to != ForwardTo::Group {
        "--setsid without forwarding to the group"
    } else if opts.parent_death_signal.is_some_and(|s| s.name().is_none()) {
        "a parent-death signal without a name"
    } else if opts
        .rewrite
        .iter()
        .any(|&(from, _)| !crate::supervise::is_forwarded(from))
    {
        "a rewrite of a signal pidreap does not forward"
    } else {
        return Ok(());
    };
    Err(broken.into())
}

/// Whether the error message `msg` names something wrong in the input.
fn names_the_problem(msg: &str, args: &[OsString]) -> bool {
    if msg.contains("missing PROGRAM")
        || msg.contains("environment variable PIDREAP_")
        || msg.contains("--setsid")
    {
        return true;
    }
    args.iter().any(|arg| {
        let arg = arg.to_string_lossy();
        if let Some(long) = arg.strip_prefix("--") {
            let name = long.split_once('=').map_or(long, |(name, _)| name);
            msg.contains(&format!("--{}", name.escape_debug()))
        } else if let Some(short) = arg.strip_prefix('-') {
            short
                .chars()
                .any(|c| msg.contains(&format!("-{}", c.escape_debug())))
        } else {
            // lexopt quotes a stray argument (or a value given to an
            // option that takes none).
            msg.contains(&format!("{arg:?}"))
        }
    })
}

/// Checks every property on `data`.
pub fn check(data: &[u8]) -> Result<(), String> {
    let (args, env) = decode(data);
    match parse(&args, &env) {
        Ok(Request::Help | Request::Version) => Ok(()),
        Ok(Request::Run(opts)) => {
            check_options(&opts).map_err(|why| format!("{args:?} {env:?} gave {why}: {opts:?}"))?;
            let (args2, env2) = write_back(&opts);
            match parse(&args2, &env2) {
                Ok(Request::Run(again)) if format!("{again:?}") == format!("{opts:?}") => Ok(()),
                other => Err(format!(
                    "{args:?} {env:?} parsed as {opts:?}; written back as {args2:?} {env2:?} it parsed as {other:?}"
                )),
            }
        }
        Err(UsageError(msg)) => {
            if msg.is_empty() || msg.contains(['\n', '\r']) {
                Err(format!(
                    "{args:?} {env:?}: the error is not one line: {msg:?}"
                ))
            } else if !names_the_problem(&msg, &args) {
                Err(format!(
                    "{args:?} {env:?}: the error names nothing in the input: {msg:?}"
                ))
            } else {
                Ok(())
            }
        }
    }
}
