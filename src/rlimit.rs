//! Resource limits for a child: [`Resource`], set with
//! [`Command::rlimit`](crate::Command::rlimit).

/// A resource whose limit a child can be given
/// ([getrlimit(2)](https://man7.org/linux/man-pages/man2/getrlimit.2.html)).
/// [`Resource::INFINITY`] is "no limit" (`RLIM_INFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// `RLIMIT_AS`: the size of the address space, in bytes.
    AddressSpace,
    /// `RLIMIT_CORE`: the size of a core dump, in bytes (0: none).
    Core,
    /// `RLIMIT_CPU`: CPU time, in seconds (SIGXCPU at the soft limit).
    Cpu,
    /// `RLIMIT_DATA`: the size of the data segment and heap, in bytes.
    Data,
    /// `RLIMIT_FSIZE`: the size of a file it writes, in bytes.
    FileSize,
    /// `RLIMIT_LOCKS`: file locks (unused since Linux 2.4.25).
    Locks,
    /// `RLIMIT_MEMLOCK`: locked memory, in bytes.
    MemLock,
    /// `RLIMIT_MSGQUEUE`: bytes in POSIX message queues of its user.
    MsgQueue,
    /// `RLIMIT_NICE`: the ceiling of its nice value, as `20 - nice`.
    Nice,
    /// `RLIMIT_NOFILE`: one more than the highest fd number it may open.
    NoFile,
    /// `RLIMIT_NPROC`: processes (threads) of its real user.
    NProc,
    /// `RLIMIT_RSS`: resident set size (not enforced by Linux).
    Rss,
    /// `RLIMIT_RTPRIO`: the ceiling of its real-time priority.
    RtPrio,
    /// `RLIMIT_RTTIME`: CPU time under a real-time policy without a
    /// blocking system call, in microseconds.
    RtTime,
    /// `RLIMIT_SIGPENDING`: queued signals of its real user.
    SigPending,
    /// `RLIMIT_STACK`: the main thread's stack, in bytes.
    Stack,
}

impl Resource {
    /// No limit (`RLIM_INFINITY`).
    pub const INFINITY: u64 = u64::MAX;

    /// The `RLIMIT_*` number.
    pub fn as_raw(self) -> i32 {
        (match self {
            Resource::AddressSpace => libc::RLIMIT_AS,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::Cpu => libc::RLIMIT_CPU,
            Resource::Data => libc::RLIMIT_DATA,
            Resource::FileSize => libc::RLIMIT_FSIZE,
            Resource::Locks => libc::RLIMIT_LOCKS,
            Resource::MemLock => libc::RLIMIT_MEMLOCK,
            Resource::MsgQueue => libc::RLIMIT_MSGQUEUE,
            Resource::Nice => libc::RLIMIT_NICE,
            Resource::NoFile => libc::RLIMIT_NOFILE,
            Resource::NProc => libc::RLIMIT_NPROC,
            Resource::Rss => libc::RLIMIT_RSS,
            Resource::RtPrio => libc::RLIMIT_RTPRIO,
            Resource::RtTime => libc::RLIMIT_RTTIME,
            Resource::SigPending => libc::RLIMIT_SIGPENDING,
            Resource::Stack => libc::RLIMIT_STACK,
        }) as i32
    }

    /// The name `/proc/PID/limits` gives it, such as `Max open files`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::AddressSpace => "Max address space",
            Resource::Core => "Max core file size",
            Resource::Cpu => "Max cpu time",
            Resource::Data => "Max data size",
            Resource::FileSize => "Max file size",
            Resource::Locks => "Max file locks",
            Resource::MemLock => "Max locked memory",
            Resource::MsgQueue => "Max msgqueue size",
            Resource::Nice => "Max nice priority",
            Resource::NoFile => "Max open files",
            Resource::NProc => "Max processes",
            Resource::Rss => "Max resident set",
            Resource::RtPrio => "Max realtime priority",
            Resource::RtTime => "Max realtime timeout",
            Resource::SigPending => "Max pending signals",
            Resource::Stack => "Max stack size",
        }
    }
}
