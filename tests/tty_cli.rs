//! `pidreap run` on an interactive terminal: a pseudo-terminal whose
//! session is led by a shell (`setsid --ctty`), which runs pidreap as its
//! foreground job, as an interactive shell or `docker run -it` does.
//!
//! What is checked, from inside the session: the child's process group is
//! the terminal's foreground group (not pidreap's); Ctrl-C (0x03 written to
//! the pty master) reaches the child through its group and never pidreap
//! itself; the terminal's foreground group is pidreap's (the shell's) again
//! once the child has exited; a pidreap started in the background takes
//! nothing.
//!
//! Every wait has a deadline, and the [`Session`] guard SIGKILLs every
//! process of the test's session when it drops, so nothing is left behind
//! when an assertion fails.

mod support;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use pidreap::Containment;

const BIN: &str = env!("CARGO_BIN_EXE_pidreap");

/// The deadline for anything that should take well under a second.
const DEADLINE: Duration = Duration::from_secs(30);

/// Prints `NAME pgrp=P tpgid=T`: the process group of the shell that runs
/// it and the foreground group of its terminal, read from
/// `/proc/self/stat` of a `cat` in the same group (the `/proc` of the
/// test's PID namespace, so it works inside a nested one too).
fn show_groups(name: &str) -> String {
    format!(
        "set -- $(cat /proc/self/stat); echo \"{name} pgrp=$5 tpgid=$8\"; \
         case $8 in $5) ;; *) echo \"{name} not-in-foreground\";; esac"
    )
}

/// A pseudo-terminal: the master, and the slave's path.
struct Pty {
    master: File,
    slave: String,
    buf: String,
}

impl Pty {
    /// Opens a new pty pair.
    /// [pty(7)](https://man7.org/linux/man-pages/man7/pty.7.html)
    fn open() -> Pty {
        // SAFETY: posix_openpt returns a new fd or -1.
        let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        // SAFETY: a new fd nobody else owns.
        let master = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: the master fd is open; ptsname_r writes at most
        // `name.len()` bytes into the local buffer.
        unsafe {
            assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
            assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
            assert_eq!(
                libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
                0,
                "ptsname_r"
            );
        }
        // SAFETY: ptsname_r wrote a NUL-terminated string.
        let slave = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Pty {
            master,
            slave,
            buf: String::new(),
        }
    }

    /// Starts `script` in `sh`, as the leader of a new session whose
    /// controlling terminal is the pty (stdin, stdout and stderr on it).
    /// `args` are the script's `$1`, `$2`, ...
    fn start_session(&self, script: &str, args: &[&str]) -> Session {
        let slave = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(&self.slave)
                .expect("opening the pty slave")
        };
        // The test's process is not a group leader, so setsid(1) calls
        // setsid(2) itself (no fork): the pid is the session's.
        let child = Command::new("setsid")
            .args(["--ctty", "sh", "-c", script, "sh"])
            .args(args)
            .stdin(slave())
            .stdout(slave())
            .stderr(slave())
            .spawn()
            .expect("spawning setsid --ctty sh");
        Session { child }
    }

    /// Reads the terminal's output until a line holds `needle`; returns
    /// everything read up to that line's end. Panics after [`DEADLINE`].
    #[track_caller]
    fn until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(at) = self.buf.find(needle) {
                let end = self.buf[at..]
                    .find('\n')
                    .map_or(self.buf.len(), |n| at + n + 1);
                let seen: String = self.buf.drain(..end).collect();
                return seen.replace('\r', "");
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?} on the terminal; got {:?}",
                self.buf
            );
            if !support::readable_within(&self.master, Duration::from_millis(100)) {
                continue;
            }
            let mut chunk = [0u8; 4096];
            match self.master.read(&mut chunk) {
                Ok(0) => panic!("terminal closed before {needle:?}; got {:?}", self.buf),
                Ok(n) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
                // EIO: every slave fd is closed (the session is gone).
                Err(e) => panic!(
                    "terminal read failed before {needle:?} ({e}); got {:?}",
                    self.buf
                ),
            }
        }
    }

    /// Types `bytes` at the terminal.
    fn type_keys(&mut self, bytes: &[u8]) {
        self.master
            .write_all(bytes)
            .expect("writing to the pty master");
    }
}

/// The session leader; on drop, every process of its session is SIGKILLed
/// and the leader reaped.
struct Session {
    child: std::process::Child,
}

impl Session {
    /// Waits for the session leader's exit code.
    #[track_caller]
    fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the session") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the session did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let sid = self.child.id() as i32;
        for pid in session_members(sid) {
            // SAFETY: kill takes integers; at worst the process is gone.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids of every process of session `sid`.
fn session_members(sid: i32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                let rest = &s[s.rfind(')').map_or(0, |i| i + 2)..];
                rest.split_whitespace().nth(3) == Some(sid.to_string().as_str())
            })
        })
        .collect()
}

/// `pgrp=P tpgid=T` from a line of [`show_groups`].
fn groups(line: &str, name: &str) -> (i32, i32) {
    let line = line
        .lines()
        .find(|l| l.starts_with(&format!("{name} pgrp=")))
        .unwrap_or_else(|| panic!("no {name} line in {line:?}"));
    let field = |key: &str| -> i32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    (field("pgrp="), field("tpgid="))
}

/// Ctrl-C at a program run under pidreap on a terminal, with `contain`:
/// the program's group is the foreground group, the interrupt reaches it
/// (its trap exits 42, which pidreap passes on) and not pidreap, and the
/// shell's group is the foreground group again after pidreap exits.
fn ctrl_c_reaches_the_child(contain: &str) {
    support::watchdog(Duration::from_secs(300));
    let mut pty = Pty::open();
    let program = format!(
        "trap 'echo child-got-INT; exit 42' INT; {}; echo child-ready; \
         while :; do sleep 0.05; done",
        show_groups("child")
    );
    // The program's text is the shell's $1 (kept in $prog: show_groups
    // sets the positional parameters), sparing a level of quoting.
    let script = format!(
        "prog=$1; {}; '{BIN}' run --contain {contain} -v -- sh -c \"$prog\"; \
         echo pidreap-exit=$?; {}",
        show_groups("before"),
        show_groups("after"),
    );
    let mut session = pty.start_session(&script, &[&program]);

    let seen = pty.until("before pgrp=");
    let (shell, fg) = groups(&seen, "before");
    assert_eq!(
        shell, fg,
        "the session's shell should hold the terminal: {seen:?}"
    );
    let seen = pty.until("child-ready");
    let (child, fg) = groups(&seen, "child");
    assert_ne!(
        child, shell,
        "the child should lead a group of its own: {seen:?}"
    );
    assert_eq!(
        fg, child,
        "the child's group should be the foreground group: {seen:?}"
    );

    pty.type_keys(b"\x03");
    let seen = pty.until("pidreap-exit=");
    assert!(
        seen.contains("child-got-INT"),
        "Ctrl-C did not reach the child: {seen:?}"
    );
    assert!(
        seen.contains("pidreap-exit=42"),
        "pidreap should exit with the child's 42: {seen:?}"
    );
    // pidreap logs every signal it receives and forwards at -v; Ctrl-C
    // went to the child's group only.
    assert!(
        !seen.contains("received SIGINT"),
        "Ctrl-C reached pidreap too: {seen:?}"
    );
    let seen = pty.until("after pgrp=");
    assert_eq!(
        groups(&seen, "after"),
        (shell, shell),
        "the terminal should be the shell's group's again: {seen:?}"
    );
    assert_eq!(session.wait(), Some(0), "the session's shell failed");
}

#[test]
fn ctrl_c_reaches_the_child_without_containment() {
    ctrl_c_reaches_the_child("none");
}

#[test]
fn ctrl_c_reaches_the_child_in_a_group() {
    ctrl_c_reaches_the_child("group");
}

#[test]
fn ctrl_c_reaches_the_child_in_a_cgroup() {
    let test = "ctrl_c_reaches_the_child_in_a_cgroup";
    if support::containment_or_skip(test, Containment::Cgroup) {
        ctrl_c_reaches_the_child("cgroup");
    }
}

/// Under pidns PROGRAM is the child of a second pidreap, the namespace's
/// init: each hands the terminal on, and each takes it back.
#[test]
fn ctrl_c_reaches_the_child_in_a_pid_namespace() {
    let test = "ctrl_c_reaches_the_child_in_a_pid_namespace";
    if support::containment_or_skip(test, Containment::PidNamespace) {
        ctrl_c_reaches_the_child("pidns");
    }
}

#[test]
fn ctrl_c_reaches_the_child_with_auto() {
    ctrl_c_reaches_the_child("auto");
}

/// Ctrl-Z stops the child (the terminal sends SIGTSTP to the foreground
/// group, which is the child's and not orphaned, so the default action
/// applies), not pidreap; after SIGCONT, Ctrl-C ends it. In the session's
/// own group, which is orphaned, the kernel would discard the SIGTSTP.
#[test]
fn ctrl_z_stops_the_child() {
    support::watchdog(Duration::from_secs(300));
    let mut pty = Pty::open();
    let program = "echo child-pid=$$; exec sleep 60";
    let script = format!("'{BIN}' run --contain none -- sh -c \"$1\"; echo pidreap-exit=$?");
    let mut session = pty.start_session(&script, &[program]);
    let seen = pty.until("child-pid=");
    let pid: u32 = seen
        .lines()
        .find_map(|l| l.trim().strip_prefix("child-pid="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no child pid in {seen:?}"));
    support::wait_exec(pid, "sleep");
    let pidreap = support::ppid(pid).expect("the child's parent") as u32;
    pty.type_keys(b"\x1a");
    support::wait_until(DEADLINE, "Ctrl-Z stops the child", || {
        support::state(pid) == Some('T')
    });
    assert_ne!(
        support::state(pidreap),
        Some('T'),
        "Ctrl-Z stopped pidreap too"
    );
    // SAFETY: kill takes integers; the child is unreaped (pidreap waits).
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGCONT) }, 0);
    support::wait_until(DEADLINE, "SIGCONT resumes the child", || {
        support::state(pid) != Some('T')
    });
    pty.type_keys(b"\x03");
    let seen = pty.until("pidreap-exit=");
    assert!(seen.contains("pidreap-exit=130"), "{seen:?}");
    assert_eq!(session.wait(), Some(0), "the session's shell failed");
}

/// A pidreap started in the background (its own job, with job control on)
/// leaves the terminal with the shell: the child is not made the
/// foreground group.
#[test]
fn a_background_pidreap_takes_no_terminal() {
    support::watchdog(Duration::from_secs(300));
    let mut pty = Pty::open();
    let program = show_groups("child");
    let script = format!(
        "prog=$1; set -m; {}; '{BIN}' run --contain none -- sh -c \"$prog\" & wait $!; \
         echo pidreap-exit=$?; {}",
        show_groups("before"),
        show_groups("after"),
    );
    let mut session = pty.start_session(&script, &[&program]);
    let seen = pty.until("before pgrp=");
    let (shell, _) = groups(&seen, "before");
    let seen = pty.until("pidreap-exit=");
    let (child, fg) = groups(&seen, "child");
    assert_ne!(
        child, shell,
        "job control should put pidreap in a group of its own: {seen:?}"
    );
    assert_eq!(
        fg, shell,
        "the background child took the terminal: {seen:?}"
    );
    assert!(seen.contains("pidreap-exit=0"), "{seen:?}");
    let seen = pty.until("after pgrp=");
    assert_eq!(groups(&seen, "after"), (shell, shell), "{seen:?}");
    assert_eq!(session.wait(), Some(0), "the session's shell failed");
}

/// With `--setsid` (dumb-init's way) the child leads a new session, which
/// has no controlling terminal: pidreap hands nothing on, the program runs
/// and its status comes back, and the shell keeps the terminal.
#[test]
fn setsid_hands_no_terminal_on() {
    support::watchdog(Duration::from_secs(300));
    let mut pty = Pty::open();
    // tty_nr (field 7) is 0 without a controlling terminal.
    let program = "set -- $(cat /proc/self/stat); echo \"child sid=$6 tty=$7\"; exit 9";
    let script = format!(
        "prog=$1; {}; '{BIN}' run --setsid --contain none -- sh -c \"$prog\"; \
         echo pidreap-exit=$?; {}",
        show_groups("before"),
        show_groups("after"),
    );
    let mut session = pty.start_session(&script, &[program]);
    let seen = pty.until("before pgrp=");
    let (shell, _) = groups(&seen, "before");
    let seen = pty.until("pidreap-exit=");
    assert!(seen.contains("tty=0"), "the child has a terminal: {seen:?}");
    assert!(
        !seen.contains(&format!("sid={shell} ")),
        "the child is in the shell's session: {seen:?}"
    );
    assert!(seen.contains("pidreap-exit=9"), "{seen:?}");
    let seen = pty.until("after pgrp=");
    assert_eq!(groups(&seen, "after"), (shell, shell), "{seen:?}");
    assert_eq!(session.wait(), Some(0), "the session's shell failed");
}
