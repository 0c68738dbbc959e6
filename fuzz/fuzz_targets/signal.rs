//! Fuzz target `signal`: the properties in `fuzz/checks/signal.rs` (which
//! `tests/fuzz_corpus.rs` replays on `corpus/signal/`); a broken one is a
//! crash. `cargo +nightly fuzz run signal`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/signal.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = check::check(data) {
        panic!("signal property broken: {broken}");
    }
});
