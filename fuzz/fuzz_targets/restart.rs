//! Fuzz target `restart`: the properties in `fuzz/checks/restart.rs` (which
//! `tests/fuzz_corpus.rs` replays on `corpus/restart/`); a broken one is a
//! crash. `cargo +nightly fuzz run restart`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/restart.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = check::check(data) {
        panic!("restart property broken: {broken}");
    }
});
