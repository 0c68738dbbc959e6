//! The spawn plan: everything the child needs, built from a [`Command`] in
//! the parent before the clone (the child itself may not allocate).

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::command::{Command, Containment, StdioKind};
use crate::error::{Error, Result};
use crate::signal::Signal;
use crate::sys::fd;
use crate::sys::spawn::{ChildFd, Groups, IdMaps, RlimitEntry, SpawnRequest};

/// A spawn ready to go: the request for the sys layer, the child's ends of
/// its stdio (closed in the parent once the child has exec'd), and the
/// parent's ends of its pipes.
pub(crate) struct SpawnPlan {
    pub(crate) request: SpawnRequest,
    pub(crate) child_ends: Vec<OwnedFd>,
    pub(crate) parent_ends: [Option<OwnedFd>; 3],
}

/// Builds the plan for `cmd`. `nofile` is the `RLIMIT_NOFILE` (soft, hard)
/// to give the child back, if pidreap raised the process's own.
pub(crate) fn plan(cmd: &Command, nofile: Option<(u64, u64)>) -> Result<SpawnPlan> {
    let candidates = exec_candidates(cmd)?;
    let argv = argv(cmd)?;
    let envp = environment(cmd)?;
    let cwd = match &cmd.cwd {
        Some(d) => Some(c_string("directory", d.as_os_str())?),
        None => None,
    };
    let (stdio, mut child_ends, parent_ends) = stdio(cmd)?;
    // A new session is a new group led by the child: `setsid` does both,
    // and fails (EPERM) in a child that already leads a group.
    let pgid = match (cmd.setsid, cmd.pgid()) {
        (false, pgid) => pgid,
        (true, None | Some(0)) => None,
        (true, Some(pgid)) => {
            return Err(Error::InvalidInput(format!(
            "setsid and process group {pgid} exclude each other: a new session leads a new group"
        )))
        }
    };
    let terminal = match &cmd.terminal {
        Some(_) if cmd.setsid => {
            return Err(Error::InvalidInput(
                "setsid and foreground_terminal exclude each other: a new session has no controlling terminal".into(),
            ))
        }
        Some(shared) => {
            // At 3 or above, so the child's stdio setup leaves it alone.
            let copy = fd::duplicate(shared.as_ref()).map_err(|source| Error::Os {
                op: "duplicating the terminal fd",
                source,
            })?;
            let raw = copy.as_raw_fd();
            child_ends.push(copy);
            Some(raw)
        }
        None => None,
    };
    let (rlimits, umask, groups) = limits_and_credentials(cmd)?;
    Ok(SpawnPlan {
        request: SpawnRequest {
            candidates,
            argv,
            envp,
            cwd,
            stdio,
            // Taking the terminal for a group needs one: a new one unless
            // the command names a group to join.
            pgid: pgid.or(terminal.map(|_| 0)),
            terminal,
            setsid: cmd.setsid,
            death_signal: cmd.death_signal.map(Signal::as_raw),
            nofile,
            rlimits,
            umask,
            groups,
            gid: cmd.gid,
            uid: cmd.uid,
            new_pid_namespace: cmd.containment == Containment::PidNamespace,
            user_namespace: (cmd.containment == Containment::PidNamespace
                && !crate::containment::has_cap_sys_admin())
            .then(IdMaps::identity),
            cgroup: None,
            #[cfg(feature = "testing")]
            setup_delay: cmd.setup_delay,
        },
        child_ends,
        parent_ends,
    })
}

/// The child's resource limits, umask and supplementary groups, checked:
/// a soft limit above its hard limit, umask bits above `0o777`, more
/// groups than the kernel takes (`NGROUPS_MAX`, 65536) or the id -1 (which
/// the kernel reads as "unchanged") are refused here, before any clone.
/// With a uid change and no groups set, a root process gives its child
/// none of its own (as std does).
fn limits_and_credentials(
    cmd: &Command,
) -> Result<(Vec<RlimitEntry>, Option<u32>, Option<Groups>)> {
    let mut rlimits = Vec::with_capacity(cmd.rlimits.len());
    for &(resource, soft, hard) in &cmd.rlimits {
        if soft > hard {
            return Err(Error::InvalidInput(format!(
                "{} ({resource:?}): the soft limit {soft} is above the hard limit {hard}",
                resource.name()
            )));
        }
        rlimits.push(RlimitEntry {
            resource: resource.as_raw() as u32,
            limits: [soft, hard],
        });
    }
    if let Some(mask) = cmd.umask {
        if mask & !0o777 != 0 {
            return Err(Error::InvalidInput(format!(
                "umask {mask:#o} has bits above 0o777"
            )));
        }
    }
    for (what, id) in [("uid", cmd.uid), ("gid", cmd.gid)] {
        if id == Some(u32::MAX) {
            return Err(Error::InvalidInput(format!(
                "{what} 4294967295 (-1) means \"unchanged\" to the kernel"
            )));
        }
    }
    const NGROUPS_MAX: usize = 65536;
    let groups = match &cmd.groups {
        Some(list) if list.len() > NGROUPS_MAX => {
            return Err(Error::InvalidInput(format!(
                "{} supplementary groups: the kernel takes at most {NGROUPS_MAX}",
                list.len()
            )))
        }
        Some(list) => Some(Groups {
            list: list.clone(),
            required: true,
        }),
        None if cmd.uid.is_some() && rustix::process::geteuid().is_root() => Some(Groups {
            list: Vec::new(),
            required: false,
        }),
        None => None,
    };
    Ok((rlimits, cmd.umask, groups))
}

fn c_string(what: &str, s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| Error::InvalidInput(format!("{what} {s:?} contains a NUL byte")))
}

/// `argv`: `arg0` (by default the program as given), then the arguments.
fn argv(cmd: &Command) -> Result<Vec<CString>> {
    let mut argv = Vec::with_capacity(cmd.args.len() + 1);
    argv.push(c_string(
        "argv[0]",
        cmd.arg0.as_deref().unwrap_or(&cmd.program),
    )?);
    for a in &cmd.args {
        argv.push(c_string("argument", a)?);
    }
    Ok(argv)
}

/// `envp`: this process's environment (unless cleared) with the command's
/// changes, as `KEY=VALUE` strings.
fn environment(cmd: &Command) -> Result<Vec<CString>> {
    let mut env: BTreeMap<OsString, OsString> = if cmd.env_clear {
        BTreeMap::new()
    } else {
        std::env::vars_os().collect()
    };
    for (k, v) in &cmd.env {
        match v {
            Some(v) => env.insert(k.clone(), v.clone()),
            None => env.remove(k),
        };
    }
    let mut envp = Vec::with_capacity(env.len());
    for (k, v) in &env {
        if k.is_empty() || k.as_bytes().contains(&b'=') {
            return Err(Error::InvalidInput(format!(
                "environment variable name {k:?} is empty or holds '='"
            )));
        }
        let mut kv = k.clone().into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(CString::new(kv).map_err(|_| {
            Error::InvalidInput(format!("environment variable {k:?} contains a NUL byte"))
        })?);
    }
    Ok(envp)
}

/// The paths the child tries with `execve`, in order: the program itself
/// if it holds a `/`, else the program in each directory of `PATH` (the
/// child's `PATH` if the command sets one, else this process's), as
/// [execvp(3)](https://man7.org/linux/man-pages/man3/execvp.3.html) does.
fn exec_candidates(cmd: &Command) -> Result<Vec<CString>> {
    let program = &cmd.program;
    if program.as_bytes().contains(&b'/') {
        return Ok(vec![c_string("program", program)?]);
    }
    if program.is_empty() {
        return Err(Error::InvalidInput("the program name is empty".into()));
    }
    if program.as_bytes().contains(&0) {
        return Err(Error::InvalidInput(format!(
            "program {program:?} contains a NUL byte"
        )));
    }
    let path = match cmd.env.get(OsStr::new("PATH")) {
        Some(Some(p)) => p.clone(),
        _ => std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
    };
    let mut out = Vec::new();
    for dir in path.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let mut full = dir.to_vec();
        full.push(b'/');
        full.extend_from_slice(program.as_bytes());
        if let Ok(c) = CString::new(full) {
            out.push(c);
        }
    }
    Ok(out)
}

type Stdio = ([ChildFd; 3], Vec<OwnedFd>, [Option<OwnedFd>; 3]);

/// The child's stdio sources (all at 3 or above, so that putting them on
/// 0, 1, 2 cannot clobber one another), the fds to close once the child
/// has them, and the parent's ends of any pipes.
fn stdio(cmd: &Command) -> Result<Stdio> {
    let mut child_fds = [ChildFd::Inherit; 3];
    let mut child_ends = Vec::new();
    let mut parent_ends: [Option<OwnedFd>; 3] = [None, None, None];
    let mut null: Option<i32> = None;
    for (i, cfg) in cmd.stdio.iter().enumerate() {
        let child_side = match &cfg.0 {
            StdioKind::Inherit => continue,
            StdioKind::Null => {
                if let Some(raw) = null {
                    child_fds[i] = ChildFd::From(raw);
                    continue;
                }
                fd::dev_null().map_err(|source| Error::Os {
                    op: "opening /dev/null",
                    source,
                })?
            }
            StdioKind::Piped => {
                let (r, w) = fd::pipe().map_err(|source| Error::Os {
                    op: [
                        "creating the stdin pipe",
                        "creating the stdout pipe",
                        "creating the stderr pipe",
                    ][i],
                    source,
                })?;
                let (parent, child) = if i == 0 { (w, r) } else { (r, w) };
                parent_ends[i] = Some(parent);
                child
            }
            // Shared with the caller (and with every spawn of this command):
            // duplicate it, so the copy can be closed after the spawn.
            StdioKind::Fd(shared) => {
                fd::duplicate(shared.as_ref()).map_err(|source| Error::Os {
                    op: "duplicating a stdio fd",
                    source,
                })?
            }
        };
        let child_side = fd::above_stdio(child_side).map_err(|source| Error::Os {
            op: "moving a stdio fd above 2",
            source,
        })?;
        child_fds[i] = ChildFd::From(child_side.as_raw_fd());
        if matches!(cfg.0, StdioKind::Null) {
            null = Some(child_side.as_raw_fd());
        }
        child_ends.push(child_side);
    }
    Ok((child_fds, child_ends, parent_ends))
}
