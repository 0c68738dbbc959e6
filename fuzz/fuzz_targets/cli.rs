//! Fuzz target `cli`: the properties in `fuzz/checks/cli.rs` (which
//! `tests/fuzz_corpus.rs` replays on `corpus/cli/`); a broken one is a
//! crash. `cargo +nightly fuzz run cli -- -dict=fuzz/cli.dict` (the option
//! names and `PIDREAP_*` variables, which the fuzzer finds slowly alone).
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

#[path = "../checks/cli.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = check::check(data) {
        panic!("cli property broken: {broken}");
    }
});
