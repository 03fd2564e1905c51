//! Sixteen f32 lanes (one channel block of [`crate::model::layout`]) as
//! an explicit vector: one `__m512` at AVX-512, two `__m256` at AVX2, an
//! array elsewhere.
//!
//! The channel-blocked kernels are written once over [`Lanes`]. Left to
//! the auto-vectoriser, the same loops came out as gathers and scatters
//! across the kernel taps (4 GFLOP/s for the depthwise) or kept their
//! accumulators in memory, depending on the code around them; explicit
//! vectors give the same instructions every time.
//!
//! The x86 types call `core::arch` intrinsics. They are only ever used
//! inside the kernels' `#[target_feature]` copies, which run after
//! [`super::cpu::level`] found the feature: the calls are inlined there.

/// Sixteen f32 lanes.
pub(crate) trait Lanes: Copy {
    /// Vector registers of the target, in units of this type (what a
    /// kernel's tile of accumulators may fill).
    const REGISTERS: usize;
    /// Whether a tile may hold 20–24 accumulators (32 registers). Kernels
    /// branch on this constant itself (not on a comparison), so the
    /// compiler drops the wide tiles' code for the other types: compiled
    /// for every type, they tripled sld-core's build time.
    const WIDE: bool = Self::REGISTERS >= 32;
    /// All lanes zero.
    fn zero() -> Self;
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
    /// Lanes `s[0..16]`.
    fn load(s: &[f32; 16]) -> Self;
    /// Writes the lanes to `d`.
    fn store(self, d: &mut [f32; 16]);
    /// `self + a·b` per lane, fused (one rounding) where the type says so.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Whether the kernels take the tiles of two pixels per vector
    /// ([`Lanes::splat2`]) and the 8-channel input slice unrolled: AVX2
    /// only, where a vector is two registers (each a tile shape more to
    /// compile, not worth it on the portable fallback).
    const PAIRS: bool = false;
    /// `a` in lanes 0–7, `b` in lanes 8–15 (one input channel's value at
    /// two pixels, for a tile of two pixels × 8 channels per vector).
    #[inline(always)]
    fn splat2(a: f32, b: f32) -> Self {
        Self::load(&core::array::from_fn(|l| if l < 8 { a } else { b }))
    }
    /// `s` in lanes 0–7 and again in 8–15.
    #[inline(always)]
    fn load_twice(s: &[f32; 8]) -> Self {
        Self::load(&core::array::from_fn(|l| s[l % 8]))
    }
    /// `self + a` per lane.
    fn add(self, a: Self) -> Self;
    /// `self − a`, lane by lane.
    fn sub(self, a: Self) -> Self;
    /// Per lane `f32::max(self, 0)` (0 for NaN).
    fn relu(self) -> Self;
    /// Per lane `f32::clamp(self, 0, 6)` (NaN stays NaN).
    fn relu6(self) -> Self;
    /// Runs `r` in a function of its own, compiled for this type's
    /// target features. A kernel's tile shapes go through here, so each
    /// is one function of moderate size: inlined all into the level's
    /// entry, they made one function so large that LLVM's loop passes
    /// took most of sld-core's build (RELIABILITY.md, "CI budget"). One
    /// call per block of tiles costs nothing measurable.
    #[inline(always)]
    fn enter<R: Region>(r: R) {
        enter_plain(r)
    }
}

/// A piece of a kernel that [`Lanes::enter`] runs as a function of its
/// own.
pub(crate) trait Region {
    /// Runs the piece.
    fn call(self);
}

/// [`Lanes::enter`] for the types that need no target feature.
#[inline(never)]
fn enter_plain<R: Region>(r: R) {
    r.call()
}

/// Asks the CPU to bring the cache line holding `v` into L1 ahead of use
/// (x86-64; a no-op elsewhere). For input lines a hardware prefetcher
/// does not see coming: the next channel block of a 1×1 tile lies one
/// whole plane further on.
#[inline(always)]
pub(crate) fn prefetch(v: &f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache and never faults; SSE (which
    // defines it) is part of x86-64; the address is a live reference's.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>((v as *const f32).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// An array the compiler vectorises as it can (portable builds, aarch64);
/// `F` decides whether `mul_add` fuses.
pub(crate) struct Array<F>([f32; 16], core::marker::PhantomData<F>);

impl<F> Clone for Array<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for Array<F> {}

impl<F: super::gemm::MulAdd> Lanes for Array<F> {
    // aarch64: 32 registers of 4 lanes; x86 without AVX: 16 of 4.
    const REGISTERS: usize = 8;
    #[inline(always)]
    fn zero() -> Self {
        Array([0.0; 16], core::marker::PhantomData)
    }
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Array([v; 16], core::marker::PhantomData)
    }
    #[inline(always)]
    fn load(s: &[f32; 16]) -> Self {
        Array(*s, core::marker::PhantomData)
    }
    #[inline(always)]
    fn store(self, d: &mut [f32; 16]) {
        *d = self.0;
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        let mut r = self.0;
        for ((r, x), y) in r.iter_mut().zip(a.0).zip(b.0) {
            *r = F::mul_add(x, y, *r);
        }
        Array(r, core::marker::PhantomData)
    }
    #[inline(always)]
    fn add(self, a: Self) -> Self {
        let mut r = self.0;
        for (r, x) in r.iter_mut().zip(a.0) {
            *r += x;
        }
        Array(r, core::marker::PhantomData)
    }
    #[inline(always)]
    fn sub(self, a: Self) -> Self {
        let mut r = self.0;
        for (r, x) in r.iter_mut().zip(a.0) {
            *r -= x;
        }
        Array(r, core::marker::PhantomData)
    }
    #[inline(always)]
    fn relu(self) -> Self {
        Array(self.0.map(|v| v.max(0.0)), core::marker::PhantomData)
    }
    #[inline(always)]
    fn relu6(self) -> Self {
        Array(self.0.map(|v| v.clamp(0.0, 6.0)), core::marker::PhantomData)
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod x86 {
    use super::{Lanes, Region};
    use core::arch::x86_64::*;

    /// One AVX-512 register.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    // SAFETY (every block below): the intrinsics need AVX-512F, and this
    // type is only used inside `#[target_feature(enable = "avx512f")]`
    // kernels entered after `cpu::level()` detected AVX-512F; loads and
    // stores go through references to exactly 16 f32.
    impl Lanes for Avx512 {
        const REGISTERS: usize = 32;
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: see the impl.
            Avx512(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: see the impl.
            Avx512(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        fn load(s: &[f32; 16]) -> Self {
            // SAFETY: see the impl; `s` is 16 readable f32.
            Avx512(unsafe { _mm512_loadu_ps(s.as_ptr()) })
        }
        #[inline(always)]
        fn store(self, d: &mut [f32; 16]) {
            // SAFETY: see the impl; `d` is 16 writable f32.
            unsafe { _mm512_storeu_ps(d.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: see the impl.
            Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
        }
        #[inline(always)]
        fn add(self, a: Self) -> Self {
            // SAFETY: see the impl.
            Avx512(unsafe { _mm512_add_ps(self.0, a.0) })
        }
        #[inline(always)]
        fn sub(self, a: Self) -> Self {
            // SAFETY: see the impl.
            Avx512(unsafe { _mm512_sub_ps(self.0, a.0) })
        }
        // ReLU and ReLU6 through an array: the compiler emits the same
        // `vmaxps`/`vminps`, and Miri (which lacks the AVX-512 max/min
        // intrinsics) can run it.
        #[inline(always)]
        fn relu(self) -> Self {
            let mut v = [0f32; 16];
            self.store(&mut v);
            Self::load(&v.map(|x| x.max(0.0)))
        }
        #[inline(always)]
        fn relu6(self) -> Self {
            let mut v = [0f32; 16];
            self.store(&mut v);
            Self::load(&v.map(|x| x.clamp(0.0, 6.0)))
        }
        #[inline(always)]
        fn enter<R: Region>(r: R) {
            // SAFETY: see the impl (an `Avx512` kernel runs only after
            // AVX-512F, AVX2 and FMA were detected).
            unsafe { enter_avx512(r) }
        }
    }

    /// [`Lanes::enter`] at AVX-512.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline(never)]
    fn enter_avx512<R: Region>(r: R) {
        r.call()
    }

    /// Two AVX registers.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(__m256, __m256);

    // SAFETY (every block below): the intrinsics need AVX and FMA, and this
    // type is only used inside `#[target_feature(enable = "avx2,fma")]`
    // kernels entered after `cpu::level()` detected both; loads and stores
    // go through references to exactly 16 f32.
    impl Lanes for Avx2 {
        const REGISTERS: usize = 8;
        const PAIRS: bool = true;
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: see the impl.
            unsafe { Avx2(_mm256_setzero_ps(), _mm256_setzero_ps()) }
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: see the impl.
            unsafe { Avx2(_mm256_set1_ps(v), _mm256_set1_ps(v)) }
        }
        #[inline(always)]
        fn load(s: &[f32; 16]) -> Self {
            // SAFETY: see the impl; `s` is 16 readable f32.
            unsafe { Avx2(_mm256_loadu_ps(s.as_ptr()), _mm256_loadu_ps(s.as_ptr().add(8))) }
        }
        #[inline(always)]
        fn splat2(a: f32, b: f32) -> Self {
            // SAFETY: see the impl.
            unsafe { Avx2(_mm256_set1_ps(a), _mm256_set1_ps(b)) }
        }
        #[inline(always)]
        fn load_twice(s: &[f32; 8]) -> Self {
            // SAFETY: see the impl; `s` is 8 readable f32.
            let v = unsafe { _mm256_loadu_ps(s.as_ptr()) };
            Avx2(v, v)
        }
        #[inline(always)]
        fn store(self, d: &mut [f32; 16]) {
            // SAFETY: see the impl; `d` is 16 writable f32.
            unsafe {
                _mm256_storeu_ps(d.as_mut_ptr(), self.0);
                _mm256_storeu_ps(d.as_mut_ptr().add(8), self.1);
            }
        }
        #[inline(always)]
        fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: see the impl.
            unsafe {
                Avx2(
                    _mm256_fmadd_ps(a.0, b.0, self.0),
                    _mm256_fmadd_ps(a.1, b.1, self.1),
                )
            }
        }
        #[inline(always)]
        fn add(self, a: Self) -> Self {
            // SAFETY: see the impl.
            unsafe { Avx2(_mm256_add_ps(self.0, a.0), _mm256_add_ps(self.1, a.1)) }
        }
        #[inline(always)]
        fn sub(self, a: Self) -> Self {
            // SAFETY: see the impl.
            unsafe { Avx2(_mm256_sub_ps(self.0, a.0), _mm256_sub_ps(self.1, a.1)) }
        }
        #[inline(always)]
        fn relu(self) -> Self {
            // SAFETY: see the impl; NaN gives 0, as `f32::max`.
            unsafe {
                let z = _mm256_setzero_ps();
                Avx2(_mm256_max_ps(self.0, z), _mm256_max_ps(self.1, z))
            }
        }
        #[inline(always)]
        fn relu6(self) -> Self {
            // SAFETY: see the impl; NaN passes through, as `f32::clamp`.
            unsafe {
                let (z, six) = (_mm256_setzero_ps(), _mm256_set1_ps(6.0));
                Avx2(
                    _mm256_min_ps(six, _mm256_max_ps(z, self.0)),
                    _mm256_min_ps(six, _mm256_max_ps(z, self.1)),
                )
            }
        }
        #[inline(always)]
        fn enter<R: Region>(r: R) {
            // SAFETY: see the impl (an `Avx2` kernel runs only after AVX2
            // and FMA were detected).
            unsafe { enter_avx2(r) }
        }
    }

    /// [`Lanes::enter`] at AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn enter_avx2<R: Region>(r: R) {
        r.call()
    }
}
