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
        Stack::with_page_size(usable, rustix::param::page_size())
    }

    /// A stack of at least `usable` bytes laid out for pages of `page`
    /// bytes (a power of two): [`new`](Stack::new) with the system's page
    /// size; tests use it to lay stacks out as on 16 and 64 KiB systems.
    fn with_page_size(usable: usize, page: usize) -> io::Result<Stack> {
        debug_assert!(page.is_power_of_two());
        let len = usable
            .div_ceil(page)
            .checked_mul(page)
            .and_then(|l| l.checked_add(page))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
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

#[cfg(test)]
mod tests {
    use super::Stack;

    /// The layout holds for the page sizes Linux runs with (4 KiB on
    /// x86_64; 4, 16 or 64 KiB on aarch64): whole pages, one guard page at
    /// the bottom, at least the asked-for size above it, a 16-byte aligned
    /// top, and every usable byte writable. Mapped for real: on a 4 KiB
    /// system a 64 KiB "page" is sixteen of them.
    #[test]
    fn layout_fits_every_page_size() {
        let system = rustix::param::page_size();
        for page in [4096, 16 * 1024, 64 * 1024] {
            if page < system {
                continue;
            }
            for asked in [1, 16 * 1024, 64 * 1024, 64 * 1024 + 1] {
                let stack = Stack::with_page_size(asked, page).expect("mmap");
                assert_eq!(stack.len % page, 0, "page {page}, asked {asked}");
                assert_eq!(stack.guard, page);
                let (base, size) = stack.usable();
                assert_eq!(base, stack.mapping as usize + page);
                assert!(size >= asked, "page {page}: {size} < {asked}");
                let top = stack.top() as usize;
                assert_eq!(top % 16, 0);
                assert!(top <= base + size && top + 16 > base + size);
                // The whole usable part is writable (a fault fails the test
                // process).
                // SAFETY: [base, base + size) is the mapping's read-write
                // part, owned by `stack` for this scope.
                unsafe { std::ptr::write_bytes(base as *mut u8, 0xA5, size) };
            }
        }
    }
}
