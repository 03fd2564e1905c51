//! Allocator tuning for Candle training on glibc.
//!
//! Candle allocates a fresh buffer for every tensor, gradient included.
//! Buffers above glibc's default mmap threshold (128 KiB, adapted upwards
//! only slowly) come as fresh mappings whose pages the kernel zero-fills on
//! first touch, and freed heap tops are trimmed back to the kernel: on the
//! small network's training step that page-fault traffic was ~18 % of the
//! time (perf). Keeping buffers up to 32 MiB on the heap and not trimming
//! below 1 GiB made a training epoch ~20 % faster (BENCHMARKS.md, "Training
//! step"). Peak memory is unchanged; freed memory is kept for reuse.

use std::sync::Once;

/// Applies the tuning once per process (no-op off glibc). Called by the
/// training entry points; harmless to call again.
pub fn tune_for_training() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: `mallopt` only changes allocator parameters; glibc
        // serialises it against concurrent allocation with the arena lock.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    });
}
