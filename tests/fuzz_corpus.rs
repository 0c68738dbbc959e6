//! Replays the checked-in fuzz corpus (`fuzz/corpus/engine/`) through
//! `pidreap::testing::sim::run`, the function the fuzz target calls, so that
//! every input the fuzzer (or a person) found interesting stays checked on
//! every `cargo test`, without nightly or cargo-fuzz.

use std::fs;
use std::path::Path;

use pidreap::testing::sim::{self, Stats};

#[test]
fn fuzz_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/engine");
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut paths: Vec<_> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "{} holds no inputs", dir.display());

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
