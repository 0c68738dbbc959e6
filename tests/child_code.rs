//! The code that runs in a child between `clone` and `execve(2)` (and in
//! the cgroup sentinel, which shares the supervisor's memory for its whole
//! life) makes raw system calls only: it calls no function outside its own
//! modules, so no panic, no precondition check, no libc and no code reached
//! through the GOT or the PLT, in whatever profile this test is built
//! (`cargo test` checks the debug build, `cargo test --release` the release
//! build).
//!
//! The check reads this test's own executable, which links the spawn path:
//! `objdump -d` disassembles it, and every branch of every function
//! reachable from the child-side entry points must go to a function of the
//! allowed set (`pidreap::sys::spawn::child`, `pidreap::sys::raw`,
//! `pidreap::sys::sentinel`), never through a register or memory (the one
//! exception: the `clone3` trampoline's call of the child's entry point).
//! [objdump(1)](https://man7.org/linux/man-pages/man1/objdump.1.html)
//!
//! And the child's fd table stays small however many fds the program
//! opened since its spawner was made.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::Command as Process;
use std::time::Duration;

use pidreap::{Command, Containment, ExitStatus, Reaper, Signal, Stdio};
use support::{Guard, LONG};

/// Mangled (legacy) symbol prefixes of the modules child-side code may call.
const ALLOWED: &[&str] = &[
    "_ZN7pidreap3sys5spawn5child",
    "_ZN7pidreap3sys3raw",
    "_ZN7pidreap3sys8sentinel",
];

/// The child-side entry points, by mangled name up to the hash.
const ROOTS: &[&str] = &[
    // The spawn child, run by clone(2), clone3(2) or fork.
    "_ZN7pidreap3sys5spawn5child10child_main17h",
    // The namespace probe's child.
    "_ZN7pidreap3sys5spawn6parent16probe_namespaces12exit_at_once17h",
    // The cgroup sentinel.
    "_ZN7pidreap3sys8sentinel13sentinel_main17h",
];

/// The `clone3` trampoline: its child path calls the entry point through a
/// register, and nothing else.
const TRAMPOLINE: &str = "_ZN7pidreap3sys6clone310clone3_run17h";

/// A function's instructions: (mnemonic, operands).
type Body = Vec<(String, String)>;

/// Every function of the executable at `path`, by symbol. None if
/// objdump is missing.
fn disassemble(path: &std::path::Path) -> Option<BTreeMap<String, Body>> {
    let out = match Process::new("objdump")
        .args(["-d", "--no-show-raw-insn", "--no-addresses"])
        .arg(path)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running objdump: {e}"),
    };
    assert!(
        out.status.success(),
        "objdump -d {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("objdump prints text");
    let mut funcs: BTreeMap<String, Body> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        // "<symbol>:" starts a function (--no-addresses drops the address).
        if let Some(name) = line.strip_prefix('<').and_then(|l| l.strip_suffix(">:")) {
            current = Some(name.to_string());
            funcs.entry(name.to_string()).or_default();
            continue;
        }
        let Some(name) = &current else { continue };
        let insn = line.trim();
        if insn.is_empty() || insn.starts_with("...") || !line.starts_with(char::is_whitespace) {
            if !line.starts_with(char::is_whitespace) {
                current = None;
            }
            continue;
        }
        let mut words = insn.split_whitespace().peekable();
        // Prefixes that do not change what the instruction branches to.
        while words.peek().is_some_and(|w| {
            ["notrack", "bnd", "rep", "repz", "repnz", "lock", "cs", "ds"].contains(w)
        }) {
            words.next();
        }
        let Some(mnemonic) = words.next() else {
            continue;
        };
        let operands = words.collect::<Vec<_>>().join(" ");
        funcs
            .get_mut(name)
            .expect("entry made above")
            .push((mnemonic.to_string(), operands));
    }
    Some(funcs)
}

/// Whether the instruction can branch to another place: a call or a jump
/// (x86_64), or a branch (aarch64).
fn is_branch(mnemonic: &str) -> bool {
    if cfg!(target_arch = "x86_64") {
        mnemonic.starts_with("call") || mnemonic.starts_with('j')
    } else {
        matches!(
            mnemonic,
            "b" | "bl" | "br" | "blr" | "cbz" | "cbnz" | "tbz" | "tbnz" | "braa" | "blraa"
        ) || mnemonic.starts_with("b.")
    }
}

/// Whether the branch goes through a register or memory.
fn is_indirect(mnemonic: &str, operands: &str) -> bool {
    if cfg!(target_arch = "x86_64") {
        operands.starts_with('*')
    } else {
        matches!(mnemonic, "br" | "blr" | "braa" | "blraa")
    }
}

/// The symbol a direct branch goes to: `addr <symbol+0x12>` gives `symbol`.
fn target(operands: &str) -> Option<&str> {
    let start = operands.find('<')? + 1;
    let rest = &operands[start..];
    let end = rest.find(['+', '>'])?;
    Some(&rest[..end])
}

/// The trampoline's one allowed indirect branch: the call of the entry.
fn is_entry_call(mnemonic: &str, operands: &str) -> bool {
    if cfg!(target_arch = "x86_64") {
        mnemonic.starts_with("call") && operands == "*%r12"
    } else {
        mnemonic == "blr" && operands == "x2"
    }
}

/// Every problem in the call graph reachable from the roots, one line each.
fn violations(funcs: &BTreeMap<String, Body>) -> Vec<String> {
    let find = |prefix: &str| -> Vec<String> {
        funcs
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    };
    let mut problems = Vec::new();
    let mut todo: Vec<String> = Vec::new();
    for root in ROOTS {
        let found = find(root);
        if found.is_empty() {
            problems.push(format!("entry point {root}* is not in the executable"));
        }
        todo.extend(found);
    }
    let roots: BTreeSet<String> = todo.iter().cloned().collect();
    let mut seen = BTreeSet::new();
    while let Some(f) = todo.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let body = &funcs[&f];
        for (mnemonic, operands) in body {
            if !is_branch(mnemonic) {
                continue;
            }
            if is_indirect(mnemonic, operands) {
                problems.push(format!("{f}: indirect branch `{mnemonic} {operands}`"));
                continue;
            }
            let Some(to) = target(operands) else {
                problems.push(format!(
                    "{f}: branch without a symbol `{mnemonic} {operands}`"
                ));
                continue;
            };
            if to == f {
                continue;
            }
            let allowed = roots.contains(to) || ALLOWED.iter().any(|prefix| to.starts_with(prefix));
            if !allowed {
                problems.push(format!("{f}: `{mnemonic}` to {to}"));
            } else if funcs.contains_key(to) {
                todo.push(to.to_string());
            } else {
                problems.push(format!("{f}: `{mnemonic}` to {to}, not a function here"));
            }
        }
    }
    let trampolines = find(TRAMPOLINE);
    if trampolines.is_empty() {
        problems.push(format!(
            "the trampoline {TRAMPOLINE}* is not in the executable"
        ));
    }
    for t in &trampolines {
        let mut entry_calls = 0;
        for (mnemonic, operands) in &funcs[t] {
            if !is_branch(mnemonic) {
                continue;
            }
            if is_entry_call(mnemonic, operands) {
                entry_calls += 1;
            } else if is_indirect(mnemonic, operands) || target(operands) != Some(t.as_str()) {
                problems.push(format!("{t}: branch out `{mnemonic} {operands}`"));
            }
        }
        if entry_calls != 1 {
            problems.push(format!(
                "{t}: {entry_calls} calls of the entry point, expected 1"
            ));
        }
    }
    problems
}

/// Spawns a child, so that the spawn path (and with it the child side) is
/// linked into this executable and known to work; refers to the paths
/// that start the other child-side entry points, so that the linker keeps
/// them too.
fn spawn_once() {
    // The namespace probe (run only without CAP_SYS_ADMIN).
    let _ = Containment::PidNamespace.check();
    // The sentinel, started by a Reaper's first cgroup-contained spawn: not
    // run, only linked.
    if std::hint::black_box(false) {
        let mut cmd = Command::new("true");
        cmd.containment(Containment::Cgroup);
        let _ = Reaper::new().and_then(|mut r| r.spawn(&cmd).map(drop));
    }
    let mut guard = Guard::new();
    if support::mode_lacks_pidfd() {
        // No PidFd without pidfds: the same spawn path, through a Reaper.
        let mut reaper = Reaper::new().unwrap();
        let c = reaper.spawn(&Command::new("true")).expect("spawning true");
        guard.track(c.pid());
        let exit = reaper.wait(c.id(), Some(LONG)).unwrap().expect("exited");
        assert_eq!(exit.status, ExitStatus::Exited(0));
        return;
    }
    let mut child = pidreap::spawn(&Command::new("true")).expect("spawning true");
    guard.track(child.pid());
    let r = child.pidfd.wait_timeout(LONG).unwrap().expect("exited");
    assert_eq!(r.status, ExitStatus::Exited(0));
}

#[test]
fn child_side_calls_nothing_outside_itself() {
    support::watchdog(Duration::from_secs(120));
    spawn_once();
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        eprintln!("skipped: no disassembly check for this architecture");
        return;
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let Some(funcs) = disassemble(&exe) else {
        support::skip(
            "child_side_calls_nothing_outside_itself",
            "objdump (binutils) is not installed",
        );
        return;
    };
    let problems = violations(&funcs);
    assert!(
        problems.is_empty(),
        "the child side of a spawn ({}) calls out of its raw-syscall code:\n{}",
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        },
        problems.join("\n")
    );
}

/// `FDSize` (the fd table's size) in `/proc/PID/status`.
/// [proc_pid_status(5)](https://man7.org/linux/man-pages/man5/proc_pid_status.5.html)
fn fd_table_size(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no FDSize in /proc/{pid}/status"))
}

/// The child's fd-table unshare copies the slots below the highest fd it
/// keeps: its stdio sources go onto low slots the spawner took when it was
/// made, so that with many fds opened since, the child's table (which exec
/// keeps) stays small. Before, a pipe landed above all of them and the
/// child's table was as large as ours.
#[test]
fn child_fd_table_stays_small_with_many_fds_open() {
    support::watchdog(Duration::from_secs(120));
    let mut guard = Guard::new();
    // Makes this thread's spawner.
    spawn_once();
    let mode = Reaper::spawn_mode();
    if !mode.contains("CLONE_FILES") {
        // Not a missing feature: the path a test mode forces.
        eprintln!("skipped: the spawn path ({mode}) copies the whole fd table at the clone");
        return;
    }
    let soft = pidreap::raise_fd_limit().expect("raising RLIMIT_NOFILE");
    let n = 2000.min(soft.saturating_sub(200) as usize);
    assert!(
        n >= 500,
        "RLIMIT_NOFILE {soft} leaves too few fds for the test"
    );
    let null = std::fs::File::open("/dev/null").expect("opening /dev/null");
    let held: Vec<_> = (0..n)
        .map(|_| null.try_clone().expect("duplicating /dev/null"))
        .collect();
    let ours = fd_table_size(std::process::id());
    assert!(ours >= n, "our FDSize {ours} with {n} fds open");

    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = pidreap::spawn(&cmd).expect("spawning sleep");
    guard.track(child.pid());
    let theirs = fd_table_size(child.pid());
    drop(held);
    assert!(
        theirs < n / 4,
        "the child's FDSize is {theirs} with {n} fds open in the parent (ours: {ours}): its \
         fd-table unshare copied them"
    );
    // Its pipes work: EOF on stdout once it is gone.
    assert!(child.pidfd.send_signal(Signal::KILL).unwrap());
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let r = child.pidfd.wait_timeout(LONG).unwrap().expect("killed");
    assert_eq!(r.status.signal(), Some(Signal::KILL));
}
