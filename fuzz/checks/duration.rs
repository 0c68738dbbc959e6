//! Properties of the command line's duration parser (`--grace`,
//! `--restart-window`, `--backoff`, `PIDREAP_GRACE`), checked on arbitrary
//! text: the fuzz target `duration` and `tests/fuzz_corpus.rs` both call
//! [`check`]. The crate root must have the binary's `cli` and `supervise`
//! modules in scope.
//!
//! - A parsed duration is at most 366 days.
//! - It agrees with the number read as `f64` times the unit, to within
//!   floating-point error (the parser is exact; the fraction is truncated
//!   to whole nanoseconds).
//! - Written back as `SECONDS.NANOSECONDSs` it parses to itself, and as
//!   the binary shows durations in its messages (whole milliseconds), to
//!   itself truncated to the millisecond.
//! - An error quotes the input.

use std::time::Duration;

use crate::cli::parse_duration;
use crate::supervise::show;

const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Checks every property on `data` (as UTF-8, invalid bytes replaced).
pub fn check(data: &[u8]) -> Result<(), String> {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();
    let d = match parse_duration(s) {
        Ok(d) => d,
        Err(msg) => {
            return if msg.contains(&format!("{s:?}")) {
                Ok(())
            } else {
                Err(format!("the error for {s:?} does not quote it: {msg}"))
            };
        }
    };
    if d > MAX {
        return Err(format!("{s:?} parsed as {d:?}, longer than {MAX:?}"));
    }
    // The oracle: the number as f64, times the unit in seconds.
    let t = s.trim();
    let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let unit_secs = match unit {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?} parsed as {d:?} with unit {unit:?}")),
    };
    let number = number.strip_suffix('.').unwrap_or(number);
    let approx = number
        .parse::<f64>()
        .map_err(|e| format!("{s:?} parsed as {d:?} but {number:?} is no number: {e}"))?
        * unit_secs;
    let exact = d.as_secs_f64();
    if (approx - exact).abs() > 1e-9 + exact * 1e-12 {
        return Err(format!(
            "{s:?} parsed as {d:?} ({exact} s), expected about {approx} s"
        ));
    }
    let written = format!("{}.{:09}s", d.as_secs(), d.subsec_nanos());
    if parse_duration(&written) != Ok(d) {
        return Err(format!(
            "{s:?} parsed as {d:?}; written as {written:?} it does not parse back"
        ));
    }
    let shown = show(d);
    let to_ms = Duration::from_millis(d.as_millis() as u64);
    if parse_duration(&shown) != Ok(to_ms) {
        return Err(format!(
            "{s:?} parsed as {d:?}; shown as {shown:?} it does not parse to {to_ms:?}"
        ));
    }
    Ok(())
}
