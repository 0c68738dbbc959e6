//! [`Command::output`](crate::Command::output) and
//! [`Command::status`](crate::Command::status): run a child to its end,
//! as std's methods of the same names do.

use std::io::{self, PipeReader, Read};

use rustix::event::{PollFd, PollFlags};

use crate::command::{Command, Stdio, StdioKind};
use crate::error::{Error, Result};
use crate::reaper::Reaper;
use crate::status::{ExitStatus, ResourceUsage};

/// What [`Command::output`](crate::Command::output) collected: how the
/// child ended and everything it wrote to stdout and stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the child ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Its resource usage, as `waitid(2)` reported it.
    pub usage: ResourceUsage,
}

/// How much is read from a pipe at a time.
const CHUNK: usize = 64 * 1024;

pub(crate) fn output(cmd: &Command) -> Result<Output> {
    let mut cmd = cmd.clone();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if matches!(cmd.stdio[0].0, StdioKind::Inherit) {
        cmd.stdin(Stdio::null());
    }
    let mut reaper = Reaper::new()?;
    let mut child = reaper.spawn(&cmd)?;
    // A piped stdin gets nothing: the child reads end-of-file.
    drop(child.stdin.take());
    let (stdout, stderr) = drain(child.stdout.take(), child.stderr.take())?;
    let exit = reaper
        .wait(child.id(), None)?
        .expect("waiting without a timeout returns the exit");
    Ok(Output {
        status: exit.status,
        stdout,
        stderr,
        usage: exit.usage,
    })
}

pub(crate) fn status(cmd: &Command) -> Result<ExitStatus> {
    let mut reaper = Reaper::new()?;
    let mut child = reaper.spawn(cmd)?;
    // Nobody writes to or reads from a piped stdio: the child sees
    // end-of-file on stdin and EPIPE on stdout or stderr.
    drop((child.stdin.take(), child.stdout.take(), child.stderr.take()));
    let exit = reaper
        .wait(child.id(), None)?
        .expect("waiting without a timeout returns the exit");
    Ok(exit.status)
}

/// Reads both pipes to end-of-file, whichever has data first
/// ([poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)), so a
/// child that fills one pipe while we wait on the other cannot deadlock.
fn drain(out: Option<PipeReader>, err: Option<PipeReader>) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut pipes = [out, err];
    let mut bufs = [Vec::new(), Vec::new()];
    let mut chunk = vec![0u8; CHUNK];
    let os = |op: &'static str| move |source: io::Error| Error::Os { op, source };
    while pipes.iter().any(Option::is_some) {
        let mut ready = [false; 2];
        {
            let mut fds = Vec::with_capacity(2);
            let mut which = Vec::with_capacity(2);
            for (i, p) in pipes.iter().enumerate() {
                if let Some(p) = p {
                    fds.push(PollFd::new(p, PollFlags::IN));
                    which.push(i);
                }
            }
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(os("polling the child's stdout and stderr")(e.into())),
            }
            for (fd, &i) in fds.iter().zip(&which) {
                // Readable, hung up (end-of-file) or in error: a read says which.
                ready[i] = !fd.revents().is_empty();
            }
        }
        for i in 0..2 {
            if !ready[i] {
                continue;
            }
            let Some(pipe) = pipes[i].as_mut() else {
                continue;
            };
            match pipe.read(&mut chunk) {
                Ok(0) => pipes[i] = None,
                Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(os([
                        "reading the child's stdout",
                        "reading the child's stderr",
                    ][i])(e))
                }
            }
        }
    }
    let [stdout, stderr] = bufs;
    Ok((stdout, stderr))
}
