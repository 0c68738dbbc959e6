//! `pidreap bench`: placeholder until the benchmark tool lands.

use std::ffi::OsString;

/// Runs `pidreap bench ARGS`; returns the exit code.
pub fn main(_args: Vec<OsString>) -> i32 {
    eprintln!("pidreap: error: `pidreap bench` is not built yet");
    125
}
