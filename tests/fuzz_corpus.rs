//! Replays the checked-in fuzz corpora (`fuzz/corpus/TARGET/`) through the
//! functions the fuzz targets call, so that every input the fuzzer (or a
//! person) found interesting stays checked on every `cargo test`, without
//! nightly or cargo-fuzz: `engine` through `pidreap::testing::sim::run`, the
//! parser targets through the property checks in `fuzz/checks/`.

use std::fs;
use std::path::{Path, PathBuf};

use pidreap::testing::sim::{self, Stats};

// The parser checks, shared with the fuzz targets.
#[path = "../fuzz/checks/restart.rs"]
mod restart_check;
#[path = "../fuzz/checks/signal.rs"]
mod signal_check;

// The binary's modules are not a library: its `main.rs` is included as a
// module, and its `cli` and `supervise` modules are brought to this crate's
// root, where their `crate::` paths look for each other. Its unit tests
// come along (they run here too).
#[cfg(feature = "cli")]
#[allow(dead_code)]
#[path = "../src/bin/pidreap/main.rs"]
mod bin;
#[cfg(feature = "cli")]
use bin::{cli, supervise, Chain};
#[cfg(feature = "cli")]
#[path = "../fuzz/checks/cli.rs"]
mod cli_check;
#[cfg(feature = "cli")]
#[path = "../fuzz/checks/duration.rs"]
mod duration_check;

/// The inputs of `fuzz/corpus/{target}/`, sorted; at least one.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut paths: Vec<_> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "{} holds no inputs", dir.display());
    paths
}

/// Runs `check` on every input of `target`'s corpus; fails naming each
/// input that breaks a property.
fn replay(target: &str, check: fn(&[u8]) -> Result<(), String>) {
    let paths = corpus(target);
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|path| {
            let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            check(&data)
                .err()
                .map(|e| format!("{}: {e}", path.display()))
        })
        .collect();
    println!("replayed {} {target} corpus inputs", paths.len());
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn signal_corpus_replays_clean() {
    replay("signal", signal_check::check);
}

#[test]
fn restart_corpus_replays_clean() {
    replay("restart", restart_check::check);
}

#[cfg(feature = "cli")]
#[test]
fn duration_corpus_replays_clean() {
    replay("duration", duration_check::check);
}

#[cfg(feature = "cli")]
#[test]
fn cli_corpus_replays_clean() {
    replay("cli", cli_check::check);
}

#[test]
fn fuzz_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/engine");
    let paths = corpus("engine");

    let mut total = Stats::default();
    let mut failures = Vec::new();
    for path in &paths {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match sim::run(&data) {
            Ok(s) => {
                total.spawned += s.spawned;
                total.reaped += s.reaped;
                total.kills += s.kills;
                total.stuck += s.stuck;
                total.graceful += s.graceful;
                total.signals += s.signals;
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    println!(
        "replayed {} fuzz corpus inputs from {}: {total:?}",
        paths.len(),
        dir.display()
    );
    assert!(
        failures.is_empty(),
        "{} of {} inputs failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
    // The corpus is meant to reach every outcome; if it stops doing so, it
    // was trimmed too far.
    assert!(
        total.kills > 0 && total.stuck > 0 && total.graceful > 0,
        "corpus lost coverage: {total:?}"
    );
    assert_eq!(total.reaped, total.spawned);
}
