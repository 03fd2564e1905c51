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
    /// Writes lane `l` of `vs[j]` to `cols.run(l)[j]` for every `j <
    /// cols.m` (≤ 8) and every lane `l < cols.lanes`: up to eight pixels'
    /// vectors of 16 channels stored as one run of pixels per channel
    /// (channel-blocked to planar). The x86 types transpose in registers;
    /// through memory, the copy took a third of a 1×1 layer with a planar
    /// output.
    #[inline(always)]
    fn store_transposed(vs: &[Self; 8], mut cols: Columns<'_>) {
        let mut x = [[0f32; 16]; 8];
        for (x, v) in x.iter_mut().zip(vs) {
            v.store(x);
        }
        for l in 0..cols.lanes() {
            for (d, x) in cols.run(l).iter_mut().zip(&x) {
                *d = x[l];
            }
        }
    }
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

/// Where [`Lanes::store_transposed`] writes: for each of `lanes` (≤ 16)
/// channels a run of `m` (≤ 8) f32, the runs `stride` apart, borrowed
/// mutably for `'a`. One pointer and two counts: an array of 16 slices
/// went through the stack on every tile (10 % of a 1×1 layer).
pub(crate) struct Columns<'a> {
    first: *mut f32,
    stride: usize,
    lanes: usize,
    m: usize,
    _runs: core::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> Columns<'a> {
    /// The runs of `m` values at `first + l·stride`, `l < lanes`.
    ///
    /// # Safety
    /// `lanes` ≤ 16 and `m` ≤ 8, and each of those runs must be valid for
    /// writes, not overlap another, and be touched by nothing else for
    /// `'a`.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn new(first: *mut f32, stride: usize, lanes: usize, m: usize) -> Self {
        Columns {
            first,
            stride,
            lanes,
            m,
            _runs: core::marker::PhantomData,
        }
    }

    /// Channels with a run (≤ 16).
    #[inline(always)]
    pub(crate) fn lanes(&self) -> usize {
        self.lanes.min(16)
    }

    /// Values per run (≤ 8).
    #[inline(always)]
    pub(crate) fn m(&self) -> usize {
        self.m.min(8)
    }

    /// Channel `l`'s run (empty for `l ≥ lanes`).
    #[inline(always)]
    pub(crate) fn run(&mut self, l: usize) -> &mut [f32] {
        if l >= self.lanes() {
            return &mut [];
        }
        // SAFETY: run `l` < `lanes` of `m` values is valid, apart from
        // the others and this borrow's alone (`Columns::new`'s contract);
        // the result borrows `self` mutably, so no two runs live at once.
        #[allow(unsafe_code)]
        unsafe {
            core::slice::from_raw_parts_mut(self.first.add(l * self.stride), self.m())
        }
    }

    /// Channel `l`'s run as a pointer to `m()` writable values, for a
    /// vector store (only for `l < lanes()`).
    #[inline(always)]
    fn ptr(&mut self, l: usize) -> *mut f32 {
        self.run(l).as_mut_ptr()
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
        fn store_transposed(vs: &[Self; 8], mut cols: super::Columns<'_>) {
            // SAFETY: see the impl. Each masked store writes lanes
            // `0..m` (its mask's bits) of a run of `m` writable values;
            // masked-off lanes are not accessed.
            unsafe {
                // No closure (`map`): one left out of line would run
                // without the target features.
                let v = [
                    vs[0].0, vs[1].0, vs[2].0, vs[3].0, vs[4].0, vs[5].0, vs[6].0, vs[7].0,
                ];
                // Within each 128-bit lane k (channels 4k..4k + 3):
                // t0 = [p0c0 p1c0 p0c1 p1c1], t1 = [p0c2 p1c2 p0c3 p1c3]…
                let t = [
                    _mm512_unpacklo_ps(v[0], v[1]),
                    _mm512_unpackhi_ps(v[0], v[1]),
                    _mm512_unpacklo_ps(v[2], v[3]),
                    _mm512_unpackhi_ps(v[2], v[3]),
                    _mm512_unpacklo_ps(v[4], v[5]),
                    _mm512_unpackhi_ps(v[4], v[5]),
                    _mm512_unpacklo_ps(v[6], v[7]),
                    _mm512_unpackhi_ps(v[6], v[7]),
                ];
                // u[i] (u[4 + i]): channel 4k + i at pixels 0–3 (4–7) in
                // lane k.
                let u = [
                    _mm512_shuffle_ps::<0x44>(t[0], t[2]),
                    _mm512_shuffle_ps::<0xEE>(t[0], t[2]),
                    _mm512_shuffle_ps::<0x44>(t[1], t[3]),
                    _mm512_shuffle_ps::<0xEE>(t[1], t[3]),
                    _mm512_shuffle_ps::<0x44>(t[4], t[6]),
                    _mm512_shuffle_ps::<0xEE>(t[4], t[6]),
                    _mm512_shuffle_ps::<0x44>(t[5], t[7]),
                    _mm512_shuffle_ps::<0xEE>(t[5], t[7]),
                ];
                // Lane k of u[i] then of u[4 + i]: channel 4k + i's eight
                // pixels in lanes 0–7 (index 16 + j: the second operand).
                let pick = [
                    _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 0, 0, 0, 0, 0, 0, 0, 0),
                    _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 0, 0, 0, 0, 0, 0, 0, 0),
                    _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 0, 0, 0, 0, 0, 0, 0, 0),
                    _mm512_setr_epi32(12, 13, 14, 15, 28, 29, 30, 31, 0, 0, 0, 0, 0, 0, 0, 0),
                ];
                let mask: __mmask16 = (1u16 << cols.m()) - 1;
                // Written out for all 16 lanes (a macro), each behind a
                // test: a loop to `lanes` is not unrolled, and then `u`
                // and `pick` are indexed in memory.
                let lanes = cols.lanes();
                macro_rules! lane {
                    ($($l:literal)*) => {$(
                        if $l < lanes {
                            let col = _mm512_permutex2var_ps(u[$l % 4], pick[$l / 4], u[4 + $l % 4]);
                            _mm512_mask_storeu_ps(cols.ptr($l), mask, col);
                        }
                    )*};
                }
                lane!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
            }
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
        fn store_transposed(vs: &[Self; 8], mut cols: super::Columns<'_>) {
            // SAFETY: see the impl.
            unsafe {
                // An 8 × 8 transpose per half: `t[h][l]` holds channel
                // 8h + l at pixels 0–7.
                let lo = [
                    vs[0].0, vs[1].0, vs[2].0, vs[3].0, vs[4].0, vs[5].0, vs[6].0, vs[7].0,
                ];
                let hi = [
                    vs[0].1, vs[1].1, vs[2].1, vs[3].1, vs[4].1, vs[5].1, vs[6].1, vs[7].1,
                ];
                let t = [transpose8(lo), transpose8(hi)];
                // Written out for all 16 lanes (a macro), each behind a
                // test: a loop to `lanes` is not unrolled.
                let lanes = cols.lanes();
                macro_rules! lane {
                    ($($l:literal)*) => {$(
                        if $l < lanes {
                            store_first(cols.run($l), t[$l / 8][$l % 8]);
                        }
                    )*};
                }
                lane!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
            }
        }
        #[inline(always)]
        fn enter<R: Region>(r: R) {
            // SAFETY: see the impl (an `Avx2` kernel runs only after AVX2
            // and FMA were detected).
            unsafe { enter_avx2(r) }
        }
    }

    /// The transpose of an 8 × 8 block: lane `j` of result `l` is lane
    /// `l` of `v[j]`.
    ///
    /// # Safety
    /// AVX must be available (inside an `Avx2` kernel).
    #[inline(always)]
    unsafe fn transpose8(v: [__m256; 8]) -> [__m256; 8] {
        // SAFETY: register operations only; AVX is there (the caller's
        // contract).
        unsafe {
            // Within each 128-bit lane k (columns 4k..4k + 3):
            // t0 = [v0c0 v1c0 v0c1 v1c1], t1 = [v0c2 v1c2 v0c3 v1c3]…
            let t = [
                _mm256_unpacklo_ps(v[0], v[1]),
                _mm256_unpackhi_ps(v[0], v[1]),
                _mm256_unpacklo_ps(v[2], v[3]),
                _mm256_unpackhi_ps(v[2], v[3]),
                _mm256_unpacklo_ps(v[4], v[5]),
                _mm256_unpackhi_ps(v[4], v[5]),
                _mm256_unpacklo_ps(v[6], v[7]),
                _mm256_unpackhi_ps(v[6], v[7]),
            ];
            // u[i] (u[4 + i]): column 4k + i of rows 0–3 (4–7) in lane k.
            let u = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            [
                _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
                _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
            ]
        }
    }

    /// Lanes `0..d.len()` (≤ 8) of `v` to `d`, in stores of 4, 2 and 1
    /// values (a masked store, `vmaskmovps`, is slow on some AMD cores).
    ///
    /// # Safety
    /// AVX must be available (inside an `Avx2` kernel).
    #[inline(always)]
    unsafe fn store_first(d: &mut [f32], v: __m256) {
        let m = d.len().min(8);
        let p = d.as_mut_ptr();
        // SAFETY: each store writes inside `d[..m]`: 8 at 0 when m = 8,
        // else 4 at 0 when m ≥ 4, then 2 and 1 of the rest; AVX is there
        // (the caller's contract).
        unsafe {
            if m == 8 {
                _mm256_storeu_ps(p, v);
                return;
            }
            let (mut x, mut at) = (_mm256_castps256_ps128(v), 0);
            if m >= 4 {
                _mm_storeu_ps(p, x);
                x = _mm256_extractf128_ps::<1>(v);
                at = 4;
            }
            if m - at >= 2 {
                _mm_storel_epi64(p.add(at).cast(), _mm_castps_si128(x));
                x = _mm_movehl_ps(x, x);
                at += 2;
            }
            if m > at {
                _mm_store_ss(p.add(at), x);
            }
        }
    }

    /// [`Lanes::enter`] at AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn enter_avx2<R: Region>(r: R) {
        r.call()
    }
}
