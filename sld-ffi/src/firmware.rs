//! The firmware build (`std` off): a global allocator over the C library's
//! `malloc`/`free` and a panic handler that calls `abort`. Only these three
//! C functions are needed from the platform.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    fn abort() -> !;
}

/// Alignment every `malloc` result has on the targets we build for (8 on
/// 32-bit ARM EABI; more on x86-64). Larger alignments are padded.
const MALLOC_ALIGN: usize = 8;

struct Malloc;

// SAFETY: small alignments go straight to malloc/free. Larger ones
// over-allocate by `align` bytes, return the first aligned address past a
// word that stores the pointer malloc gave, and free that pointer.
unsafe impl GlobalAlloc for Malloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: plain malloc; NULL signals failure as GlobalAlloc wants.
            return unsafe { malloc(layout.size()) }.cast();
        }
        let Some(total) = layout.size().checked_add(layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: plain malloc.
        let raw = unsafe { malloc(total) }.cast::<u8>();
        if raw.is_null() {
            return raw;
        }
        // `raw` is a multiple of 8 and `align` a power of two > 8, so
        // `offset` is a multiple of 8 in [8, align]: room for one pointer.
        let offset = layout.align() - (raw as usize % layout.align());
        // SAFETY: offset ∈ [1, align], so `aligned` and `size` bytes after it
        // lie inside the `size + align` block.
        let aligned = unsafe { raw.add(offset) };
        // SAFETY: offset ≥ 8 ≥ pointer size, so the pointer-sized slot just
        // before `aligned` lies inside the block.
        unsafe { aligned.cast::<*mut u8>().sub(1).write_unaligned(raw) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: came from malloc.
            unsafe { free(ptr.cast()) };
        } else {
            // SAFETY: `alloc` stored malloc's pointer just before `ptr`.
            let raw = unsafe { ptr.cast::<*mut u8>().sub(1).read_unaligned() };
            // SAFETY: came from malloc.
            unsafe { free(raw.cast()) };
        }
    }
}

#[global_allocator]
static ALLOCATOR: Malloc = Malloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort never returns and has no preconditions.
    unsafe { abort() }
}
