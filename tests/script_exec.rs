//! A file the kernel refuses with `ENOEXEC` (executable, but neither a
//! binary it knows nor a `#!` script): run through `/bin/sh`, as
//! `execvp(3)` and the shells do, unless its first line holds a NUL byte
//! (a binary for another architecture, say), which fails with 126 as
//! before. Tested through `pidreap run`, whose exit code shows both.

mod support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pidreap");

/// Writes an executable file.
fn executable(path: &Path, contents: &[u8]) {
    fs::write(path, contents).expect("writing the test program");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod 755");
}

/// Runs `pidreap run --contain none -- args...` with `PATH` set to `path`
/// (when given); returns its exit code, stdout and stderr.
fn run(args: &[&str], path: Option<&Path>) -> (i32, String, String) {
    support::watchdog(Duration::from_secs(300));
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--contain", "none", "--"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let mut child = cmd.spawn().expect("spawning pidreap");
    let mut guard = support::Guard::new();
    guard.track(child.id());
    let mut status = None;
    support::wait_until(support::LONG, "pidreap exits", || {
        status = child.try_wait().expect("waiting for pidreap");
        status.is_some()
    });
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let code = status.unwrap().code().expect("pidreap exited, not killed");
    (code, out, err)
}

#[test]
fn a_script_without_a_shebang_runs_through_sh() {
    let dir = TempDir::new("noshebang");
    let script = dir.path().join("greet");
    executable(
        &script,
        b"echo \"zero=$0 args=$*\"\ncase $- in *i*) echo interactive;; esac\nexit 7\n",
    );
    let path = script.to_str().unwrap();
    let (code, out, err) = run(&[path, "a", "b c"], None);
    assert_eq!(code, 7, "stdout {out:?}, stderr {err:?}");
    // The shell gets the script's path as $0 and the arguments unchanged.
    assert_eq!(out, format!("zero={path} args=a b c\n"), "stderr {err:?}");
}

#[test]
fn a_script_without_a_shebang_is_found_in_path() {
    let dir = TempDir::new("noshebang-path");
    executable(&dir.path().join("greet"), b"echo \"zero=$0 first=$1\"\n");
    // A directory without it first: the search goes on past ENOENT.
    let empty = TempDir::new("noshebang-empty");
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        empty.path().display(),
        dir.path().display()
    );
    let (code, out, err) = run(&["greet", "x"], Some(Path::new(&path)));
    assert_eq!(code, 0, "stdout {out:?}, stderr {err:?}");
    let found = dir.path().join("greet");
    assert_eq!(out, format!("zero={} first=x\n", found.display()));
}

#[test]
fn an_empty_executable_file_runs_as_an_empty_script() {
    let dir = TempDir::new("empty");
    let file = dir.path().join("nothing");
    executable(&file, b"");
    let (code, out, err) = run(&[file.to_str().unwrap()], None);
    assert_eq!((code, out.as_str()), (0, ""), "stderr {err:?}");
}

#[test]
fn a_binary_the_kernel_cannot_run_still_fails_with_126() {
    let dir = TempDir::new("binary");
    // An ELF header for a machine that does not exist (0xffff), and a
    // NUL-laden file with a newline late: both refused, not run by sh.
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\xff\xff".to_vec();
    elf.extend_from_slice(&[0u8; 44]);
    let garbage = [b"\x01\x02\0echo ran\n".as_slice(), &[0u8; 8]].concat();
    for (name, contents) in [("elf", elf), ("garbage", garbage)] {
        let file = dir.path().join(name);
        executable(&file, &contents);
        let (code, out, err) = run(&[file.to_str().unwrap()], None);
        assert_eq!(code, 126, "{name}: stdout {out:?}, stderr {err:?}");
        assert!(out.is_empty(), "{name}: sh ran it: {out:?}");
        assert!(
            err.contains("Exec format error") && err.contains(file.to_str().unwrap()),
            "{name}: {err:?}"
        );
    }
}
