//! Raw system calls by inline assembly
//! ([syscall(2)](https://man7.org/linux/man-pages/man2/syscall.2.html) lists
//! each architecture's calling convention).
//!
//! The child of a `CLONE_VM | CLONE_VFORK` clone shares the parent's memory,
//! including the parent thread's `errno` and its thread-local storage. libc's
//! wrappers write `errno` on failure, so the child must not call them: it uses
//! these functions, which return the kernel's result as is (`-errno` on
//! failure) and touch nothing but registers.
//!
//! Every function here is `extern "C"` and `#[inline(always)]`: code that
//! must call nothing (the child side of a spawn, the sentinel) calls them,
//! and a call of an `extern "C"` function needs no landing pad (the
//! compiler knows it does not unwind), while `#[inline(always)]` leaves no
//! call at all, at opt-level 0 too.
//!
//! Only x86_64 and aarch64 are supported; other architectures fail to compile
//! here, on purpose, rather than falling back to something unsafe.

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("pidreap supports x86_64 and aarch64 Linux only (raw syscalls in sys/raw.rs)");

/// One raw system call with up to six arguments. Returns the kernel's raw
/// result: non-negative on success, `-errno` on failure.
///
/// # Safety
///
/// The caller must pass arguments that are valid for system call `nr`, as
/// its man page describes: pointers must point to memory of the right size
/// that lives for the call.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe extern "C" fn syscall6(
    nr: libc::c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux syscall ABI: number in rax, arguments in rdi,
    // rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11 and returns in
    // rax. The caller vouches for the arguments.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack, preserves_flags)
        );
    }
    ret
}

/// See the x86_64 version.
///
/// # Safety
///
/// As for the x86_64 version.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(crate) unsafe extern "C" fn syscall6(
    nr: libc::c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 Linux syscall ABI: number in x8, arguments in
    // x0..x5, result in x0. The caller vouches for the arguments.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2,
            in("x2") a3,
            in("x3") a4,
            in("x4") a5,
            in("x5") a6,
            options(nostack, preserves_flags)
        );
    }
    ret
}

/// `syscall6` with fewer arguments.
///
/// # Safety
///
/// As for [`syscall6`].
#[inline(always)]
pub(crate) unsafe extern "C" fn syscall4(
    nr: libc::c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
) -> isize {
    // SAFETY: forwarded; unused argument registers are ignored by the kernel.
    unsafe { syscall6(nr, a1, a2, a3, a4, 0, 0) }
}

/// Ends the calling process at once, running nothing.
/// [exit_group(2)](https://man7.org/linux/man-pages/man2/exit_group.2.html)
#[inline(always)]
pub(crate) extern "C" fn exit_group(code: i32) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe {
            syscall6(libc::SYS_exit_group, code as usize, 0, 0, 0, 0, 0);
        }
    }
}

/// The kernel's `struct timespec` on 64-bit Linux, for raw calls.
#[repr(C)]
pub(crate) struct KernelTimespec {
    pub(crate) sec: i64,
    pub(crate) nsec: i64,
}

/// The kernel's `struct pollfd`, for a raw `ppoll(2)`.
#[repr(C)]
pub(crate) struct KernelPollFd {
    pub(crate) fd: libc::c_int,
    pub(crate) events: i16,
    pub(crate) revents: i16,
}

// Memory access for code that must compile to plain loads and stores in
// every profile (the child side of a spawn, the sentinel). A debug build
// checks every dereference of a raw pointer (alignment, null) and
// `read_volatile`/`write_volatile`/`add` for their preconditions, and each
// check calls a panic function when it fails; a reference is dereferenced
// without a check. So these turn the pointer into a reference first
// (`transmute`, a no-op) and use that. `#[inline(always)]` is honoured at
// opt-level 0 too: no call remains.

/// `&*ptr`, without the debug-build checks of a raw dereference.
///
/// # Safety
///
/// As for `&*ptr`: `ptr` points to a valid, aligned `T` that nothing
/// mutates while the reference lives.
#[inline(always)]
#[allow(clippy::transmute_ptr_to_ref)] // `&*ptr` is the dereference avoided here.
pub(crate) unsafe extern "C" fn as_ref<'a, T>(ptr: *const T) -> &'a T {
    // SAFETY: forwarded from the caller; a pointer and a reference to a
    // sized `T` have the same layout.
    unsafe { core::mem::transmute::<*const T, &'a T>(ptr) }
}

/// `*ptr`, without the debug-build checks of a raw dereference.
///
/// # Safety
///
/// As for [`as_ref`].
#[inline(always)]
pub(crate) unsafe extern "C" fn load<T: Copy>(ptr: *const T) -> T {
    // SAFETY: forwarded from the caller.
    unsafe { *as_ref(ptr) }
}

/// `*ptr = value`, without the debug-build checks of a raw dereference. A
/// plain store, not a volatile one: the system calls that follow are
/// `asm!` blocks that may read any memory, so the compiler keeps it before
/// them.
///
/// # Safety
///
/// As for `*ptr = value`: `ptr` points to a valid, aligned `T` that nothing
/// else reads or writes meanwhile.
#[inline(always)]
#[allow(clippy::transmute_ptr_to_ref)] // `&mut *ptr` is the dereference avoided here.
pub(crate) unsafe extern "C" fn store<T: Copy>(ptr: *mut T, value: T) {
    // SAFETY: forwarded from the caller.
    let place = unsafe { core::mem::transmute::<*mut T, &mut T>(ptr) };
    *place = value;
}

/// The address of `value`, as a system call argument.
#[inline(always)]
pub(crate) extern "C" fn addr<T>(value: &T) -> usize {
    value as *const T as usize
}

/// The address of `value`, for a system call that writes to it.
#[inline(always)]
pub(crate) extern "C" fn addr_mut<T>(value: &mut T) -> usize {
    value as *mut T as usize
}
