//! `pidreap`: runs a program as a supervised child, like tini or dumb-init,
//! with bounded stop ladders and restart policies. See `pidreap --help`.
//!
//! The binary holds no `unsafe` code: everything that touches the kernel
//! goes through the library's safe API (and rustix's, for `getpid`).
#![forbid(unsafe_code)]

mod bench;
mod cli;
mod measure;
mod supervise;

use std::ffi::OsString;
use std::io::Write;

use cli::{Request, UsageError};

/// Prints `pidreap: LEVEL: message` lines to stderr, one line each.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        let message = record.args().to_string().replace('\n', " ");
        // Nothing sensible to do if stderr is gone.
        let _ = writeln!(std::io::stderr().lock(), "pidreap: {level}: {message}");
    }

    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

/// Installs the logger at the level `verbosity` asks for: warnings by
/// default, each -v one level more, -q errors only (errors always show).
fn init_log(verbosity: i32) {
    let level = match verbosity {
        i32::MIN..=-1 => log::LevelFilter::Error,
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Prints one error line and returns pidreap's own failure code.
fn usage_error(UsageError(msg): UsageError) -> i32 {
    eprintln!("pidreap: error: {msg}");
    supervise::EXIT_OWN_ERROR
}

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = if args.is_empty() {
        usage_error(UsageError(
            "missing subcommand: expected run or bench (see pidreap --help)".into(),
        ))
    } else {
        let rest = args.split_off(1);
        let sub = args.pop().expect("one argument left");
        match sub.to_str() {
            Some("run") => run(rest),
            Some("bench") => bench::main(rest),
            Some("help" | "--help" | "-h") => {
                print!("{}", cli::HELP);
                0
            }
            Some("--version" | "-V") => {
                println!("{}", cli::version());
                0
            }
            _ => usage_error(UsageError(format!(
                "unknown subcommand {sub:?}: expected run or bench (see pidreap --help)"
            ))),
        }
    };
    std::process::exit(code);
}

/// `pidreap run`.
fn run(args: Vec<OsString>) -> i32 {
    // Before anything else, and before any thread exists: block the
    // signals pidreap forwards, so that from now on they wait in the
    // signalfd instead of killing pidreap (LINUX-FACTS pitfall 12; as PID
    // 1 the kernel would otherwise drop them, pitfall 21). Children get
    // the original mask back.
    if let Err(e) = pidreap::block_signals(&supervise::FORWARDED) {
        eprintln!("pidreap: error: {e}");
        return supervise::EXIT_OWN_ERROR;
    }
    match cli::parse_run(args) {
        Err(e) => usage_error(e),
        Ok(Request::Help) => {
            print!("{}", cli::HELP);
            0
        }
        Ok(Request::Version) => {
            println!("{}", cli::version());
            0
        }
        Ok(Request::Run(opts)) => {
            init_log(opts.verbosity);
            supervise::run(&opts)
        }
    }
}
