//! Fuzz target `duration`: the properties in `fuzz/checks/duration.rs` (which
//! `tests/fuzz_corpus.rs` replays on `corpus/duration/`); a broken one is a
//! crash. `cargo +nightly fuzz run duration`.
//!
//! The binary's modules are not a library: its `main.rs` is included as
//! a module here, and its `cli` and `supervise` modules are brought to
//! this crate's root, where their `crate::` paths look for each other.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/bin/pidreap/main.rs"]
mod bin;

use bin::{cli, supervise, Chain};

#[path = "../checks/duration.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = check::check(data) {
        panic!("duration property broken: {broken}");
    }
});
