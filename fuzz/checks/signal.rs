//! Properties of `Signal`'s `FromStr`, checked on arbitrary text: the fuzz
//! target `signal` and `tests/fuzz_corpus.rs` both call [`check`].
//!
//! - The parser agrees with an oracle built the other way round: every
//!   spelling each of the 64 signals accepts, enumerated (names with and
//!   without `SIG` in any case, `IOT`, `POLL`, `RTMIN+N`/`RTMAX-N` with one
//!   or two digits), plus decimal numbers as `i32` reads them.
//! - A parsed signal prints (`Display`) as text that parses back to it,
//!   unless it is one of the two the C library reserves, which parse from
//!   numbers only; its bare name parses back to it too.
//! - Surrounding whitespace and letter case change nothing.
//! - An error quotes the input.

use std::collections::HashMap;
use std::sync::OnceLock;

use pidreap::Signal;

/// Every accepted non-numeric spelling, upper case and without `SIG`.
fn spellings() -> &'static HashMap<String, i32> {
    static TABLE: OnceLock<HashMap<String, i32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for n in 1..=64 {
            if let Some(name) = Signal::from_raw(n).and_then(Signal::name) {
                table.insert(name.to_owned(), n);
            }
        }
        table.insert("IOT".into(), libc::SIGABRT);
        table.insert("POLL".into(), libc::SIGIO);
        table.insert("RTMIN".into(), 34);
        table.insert("RTMAX".into(), 64);
        for k in 0..=30 {
            let mut digits = vec![k.to_string()];
            if k < 10 {
                digits.push(format!("0{k}"));
            }
            for d in digits {
                table.insert(format!("RTMIN+{d}"), 34 + k);
                table.insert(format!("RTMAX-{d}"), 64 - k);
            }
        }
        table
    })
}

/// What the parser should return for `s`, by the oracle.
fn expected(s: &str) -> Option<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    spellings().get(bare).copied()
}

/// Checks every property on `data` (as UTF-8, invalid bytes replaced).
pub fn check(data: &[u8]) -> Result<(), String> {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();
    let parsed = s.parse::<Signal>();
    let want = expected(s);
    match (&parsed, want) {
        (Ok(sig), Some(n)) if sig.as_raw() == n => {}
        (Err(_), None) => {}
        _ => return Err(format!("{s:?} parsed as {parsed:?}, expected {want:?}")),
    }
    match parsed {
        Ok(sig) => {
            if Signal::from_raw(sig.as_raw()) != Some(sig) {
                return Err(format!("{s:?}: {sig:?} is not from_raw of its number"));
            }
            let shown = sig.to_string();
            if sig.is_reserved() {
                if s.trim().parse::<i32>().is_err() {
                    return Err(format!("{s:?}: reserved {sig:?} parsed from a non-number"));
                }
            } else if shown.parse::<Signal>() != Ok(sig) {
                return Err(format!(
                    "{s:?}: {sig:?} prints as {shown:?}, which does not parse back"
                ));
            }
            if let Some(name) = sig.name() {
                if name.parse::<Signal>() != Ok(sig) || shown != format!("SIG{name}") {
                    return Err(format!("{s:?}: {sig:?} has name {name:?}, shown {shown:?}"));
                }
            }
            for variant in [
                format!(" {s}\t"),
                s.to_ascii_lowercase(),
                s.to_ascii_uppercase(),
            ] {
                if variant.parse::<Signal>() != Ok(sig) {
                    return Err(format!("{s:?} parsed as {sig:?} but {variant:?} did not"));
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            if !msg.contains(&format!("{s:?}")) {
                return Err(format!("the error for {s:?} does not quote it: {msg}"));
            }
        }
    }
    Ok(())
}
