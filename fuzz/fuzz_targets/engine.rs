//! Drives the sans-IO core with arbitrary bytes through
//! `pidreap::testing::sim::run`, which checks the engine's invariants (every
//! child reaped exactly once, no signal after the reap, SIGKILL exactly at
//! the ladder's deadline, ladder order, stuck reported once at the kill
//! timeout, live counts agree). A broken invariant is a crash.
//!
//! `cargo +nightly fuzz run engine`; the checked-in corpus in
//! `corpus/engine/` is replayed by `tests/fuzz_corpus.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = pidreap::testing::sim::run(data) {
        panic!("engine invariant broken: {broken}");
    }
});
