//! Properties of the restart options' parsers, `RestartPolicy` and
//! `ExitStatusSet` (`FromStr`), checked on arbitrary text: the fuzz target
//! `restart` and `tests/fuzz_corpus.rs` both call [`check`].
//!
//! - A policy parses exactly from the name it prints (`Display`), and from
//!   nothing else; an error quotes the input.
//! - An exit-status set is the union of its words, each a set of exactly
//!   one member: an exit code 0 to 255, or a signal 1 to 64 that is not
//!   reserved; parsing is the same whatever separators (space, comma, tab)
//!   stand between the words.
//! - A set's error quotes a word of the input that does not parse alone.

use pidreap::engine::{ExitStatusSet, RestartPolicy};
use pidreap::{ExitStatus, Signal};

/// The members of `set`, as exit codes and signal numbers.
fn members(set: &ExitStatusSet) -> (Vec<i32>, Vec<i32>) {
    let codes = (-1..=256)
        .filter(|&c| set.contains(ExitStatus::Exited(c)))
        .collect();
    let signals = (1..=64)
        .filter(|&n| {
            let signal = Signal::from_raw(n).expect("1 to 64 are signals");
            set.contains(ExitStatus::Signaled {
                signal,
                core_dumped: n % 2 == 0,
            })
        })
        .collect();
    (codes, signals)
}

fn check_policy(s: &str) -> Result<(), String> {
    const ALL: [RestartPolicy; 5] = [
        RestartPolicy::Never,
        RestartPolicy::OnSuccess,
        RestartPolicy::OnFailure,
        RestartPolicy::OnAbnormal,
        RestartPolicy::Always,
    ];
    let named = ALL.iter().find(|p| p.to_string() == s).copied();
    match (s.parse::<RestartPolicy>(), named) {
        (Ok(p), Some(q)) if p == q => Ok(()),
        (Err(e), None) => {
            let msg = e.to_string();
            if msg.contains(&format!("{s:?}")) {
                Ok(())
            } else {
                Err(format!(
                    "the policy error for {s:?} does not quote it: {msg}"
                ))
            }
        }
        (got, want) => Err(format!("policy {s:?} parsed as {got:?}, expected {want:?}")),
    }
}

fn check_set(s: &str) -> Result<(), String> {
    let words: Vec<&str> = s
        .split([' ', ',', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    let singles: Vec<_> = words
        .iter()
        .map(|w| (w, w.parse::<ExitStatusSet>()))
        .collect();
    match s.parse::<ExitStatusSet>() {
        Ok(set) => {
            let mut union = ExitStatusSet::new();
            for (word, single) in &singles {
                let single = single.as_ref().map_err(|e| {
                    format!("{s:?} parsed, but its word {word:?} alone did not: {e}")
                })?;
                let (codes, signals) = members(single);
                let one = match (codes.as_slice(), signals.as_slice()) {
                    ([c], []) => (0..=255).contains(c) && word.bytes().all(|b| b.is_ascii_digit()),
                    ([], [n]) => {
                        let sig = Signal::from_raw(*n).expect("a member is a signal");
                        !sig.is_reserved() && word.parse::<Signal>() == Ok(sig)
                    }
                    _ => false,
                };
                if !one {
                    return Err(format!(
                        "the word {word:?} of {s:?} is codes {codes:?}, signals {signals:?}"
                    ));
                }
                union.extend(single);
            }
            if union != set {
                return Err(format!("{s:?} is {set:?}, but its words make {union:?}"));
            }
            if set.is_empty() != words.is_empty() {
                return Err(format!("{s:?} has words {words:?} but set {set:?}"));
            }
            for sep in [" ", ",", "\t", ", "] {
                let joined = words.join(sep);
                if joined.parse::<ExitStatusSet>() != Ok(set) {
                    return Err(format!("{s:?} is {set:?}, but {joined:?} is not"));
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            let named = singles
                .iter()
                .any(|(w, single)| single.is_err() && msg.contains(&format!("{w:?}")));
            if !named {
                return Err(format!("the set error for {s:?} names no bad word: {msg}"));
            }
        }
    }
    Ok(())
}

/// Checks every property on `data` (as UTF-8, invalid bytes replaced).
pub fn check(data: &[u8]) -> Result<(), String> {
    let s = String::from_utf8_lossy(data);
    check_policy(&s)?;
    check_set(&s)
}
