//! `pidreap`: runs a program as a supervised child, like tini or dumb-init,
//! with bounded stop ladders and restart policies. See `pidreap --help`.
//!
//! The binary holds no `unsafe` code: everything that touches the kernel
//! goes through the library's safe API (and rustix's, for `getpid`).
#![forbid(unsafe_code)]

// `pub(crate)`: the fuzz targets and tests/fuzz_corpus.rs include this file
// as a module and reach the parsers through these two.
pub(crate) mod cli;
pub(crate) mod supervise;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

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

/// An error and its causes on one line, `error: cause: cause`: the
/// library's messages leave the cause to [`source`](std::error::Error::source).
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
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
            Some("bench") => bench(rest),
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
    // signals pidreap forwards (and SIGTTIN/SIGTTOU, which it drops), so
    // that from now on they wait in the signalfd instead of killing
    // pidreap (a signal is only read from a signalfd while blocked in
    // every thread, signalfd(2); as PID 1 the kernel would otherwise drop
    // those without a handler, pid_namespaces(7)). Children get the
    // original mask back.
    if let Err(e) = pidreap::block_signals(&supervise::handled()) {
        eprintln!("pidreap: error: {}", Chain(&e));
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

/// The bench tool `pidreap bench` runs: a separate program, so that this
/// binary (often a container's PID 1) carries only the supervisor.
const BENCH_TOOL: &str = "pidreap-bench";

/// `pidreap bench`: replaces this process with [`BENCH_TOOL`], found next
/// to this binary or else in `PATH`, with the same arguments. Returns only
/// on failure, with pidreap's own failure code.
fn bench(args: Vec<OsString>) -> i32 {
    let Some(tool) = find_bench_tool() else {
        eprintln!(
            "pidreap: error: {BENCH_TOOL} not found next to pidreap or in PATH; \
             install it from a checkout of pidreap: cargo install --path benches/pidreap-bench"
        );
        return supervise::EXIT_OWN_ERROR;
    };
    // execve(2) returns only on failure.
    let e = std::process::Command::new(&tool).args(args).exec();
    eprintln!("pidreap: error: executing {}: {e}", tool.display());
    supervise::EXIT_OWN_ERROR
}

/// [`BENCH_TOOL`] in the directory of this executable, else in the first
/// `PATH` directory that has it as an executable file. Empty `PATH` entries
/// are skipped (execvp(3) would read them as the current directory).
fn find_bench_tool() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(BENCH_TOOL)));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let in_path = std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(BENCH_TOOL));
    beside.into_iter().chain(in_path).find(|candidate| {
        std::fs::metadata(candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}
