//! Private stacks for `CLONE_VM` children: the spawn's vfork child and the
//! cgroup sentinel run on a mapping of their own, never on the parent's
//! frames.

use std::ffi::c_void;
use std::io;

/// An anonymous private mapping: at least the asked-for size, in whole
/// pages of the system's own size (4 KiB on x86_64; 4, 16 or 64 KiB on
/// aarch64), above one `PROT_NONE` guard page, so that an overflow faults
/// instead of writing into other memory. Unmapped on drop.
/// [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html),
/// [mprotect(2)](https://man7.org/linux/man-pages/man2/mprotect.2.html)
#[derive(Debug)]
pub(crate) struct Stack {
    mapping: *mut c_void,
    len: usize,
    /// The guard page's size: the system's page size.
    #[allow(dead_code)]
    guard: usize,
}

impl Stack {
    /// A stack of at least `usable` bytes.
    pub(crate) fn new(usable: usize) -> io::Result<Stack> {
        let page = rustix::param::page_size();
        let len = usable.div_ceil(page) * page + page;
        // SAFETY: a new anonymous private mapping; no existing memory is
        // touched.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Owned from here: dropped (unmapped) on the error path below.
        let stack = Stack {
            mapping,
            len,
            guard: page,
        };
        // SAFETY: the lowest page of the mapping just made becomes the guard
        // page; the stack grows down towards it.
        if unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer: the top of the mapping, 16-byte aligned
    /// as both ABIs require.
    pub(crate) fn top(&self) -> *mut c_void {
        ((self.mapping as usize + self.len) & !15) as *mut c_void
    }

    /// The usable part, above the guard page: its lowest address and its
    /// size (what `clone3(2)` takes as `stack` and `stack_size`).
    pub(crate) fn usable(&self) -> (usize, usize) {
        (self.mapping as usize + self.guard, self.len - self.guard)
    }

    /// Gives the mapping up without unmapping it: for a process that may
    /// still be running on it.
    pub(crate) fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`. Owners drop a Stack only
        // once no process runs on it (a vfork child has exec'd or exited, a
        // sentinel was reaped) and `leak` it otherwise.
        unsafe {
            libc::munmap(self.mapping, self.len);
        }
    }
}
