//! Single-precision matrix multiply, the one place `sld-core` uses
//! `unsafe`: a checked wrapper around `matrixmultiply::sgemm`.
//!
//! With the `std` feature `matrixmultiply` picks AVX/FMA kernels at run time
//! when the CPU has them; without it, only what the target enables at
//! compile time (plain SSE2 on generic x86-64).
#![allow(unsafe_code)]

/// `C[m×n] = A[m×k] · B[k×n] (+ C if accumulate)`, all row-major and
/// contiguous. Returns false (and leaves `c` untouched) when a slice is
/// shorter than its shape needs.
pub fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) -> bool {
    let fits = |len: usize, r: usize, cols: usize| r.checked_mul(cols).is_some_and(|need| len >= need);
    if !(fits(a.len(), m, k) && fits(b.len(), k, n) && fits(c.len(), m, n)) {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    let (Ok(rsa), Ok(rsb), Ok(rsc)) = (isize::try_from(k), isize::try_from(n), isize::try_from(n)) else {
        return false;
    };
    // SAFETY: the slices hold at least m·k, k·n and m·n elements (checked
    // above); with row strides k, n, n and column stride 1 every element
    // sgemm touches lies inside them. `c` is exclusively borrowed, so it
    // does not alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            1,
            b.as_ptr(),
            rsb,
            1,
            if accumulate { 1.0 } else { 0.0 },
            c.as_mut_ptr(),
            rsc,
            1,
        );
    }
    true
}
