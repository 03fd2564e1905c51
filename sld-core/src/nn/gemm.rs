//! Single-precision matrix multiply `C = act(A·B (+ C) + bias + residual)`,
//! row-major, written here so the per-frame path never allocates
//! (`matrixmultiply` allocates its packing buffer on every call; measured
//! in the Localizer's counting-allocator test).
//!
//! Blocked loops around an MR×NR register tile that the compiler
//! vectorises: 4×16 portable, 6×16 AVX2 (12 accumulators; 4×16, 8×16,
//! 4×24 and 4×32 measured 10–20 % slower), 6×64 AVX-512 (24 accumulators;
//! 4×64, 8×48, 6×48 and 12×32 measured 5–15 % slower), 8×12 aarch64. B is
//! packed one k-block × NR panel at a time; the panel stays in L1 (AVX-512:
//! 128 × 64 values, 32 KiB; 256 rows spilled to L2 and measured 20–30 %
//! slower). Rows left over below MR go through a shorter tile.
//! B's rows may be placed by a [`RowMap`], which lets a stride-1
//! convolution read its unfolded rows in place. With the `std` feature on
//! x86-64 the code is also compiled for AVX2 + FMA and for AVX-512 and
//! chosen at run time from what the CPU has.

use crate::model::Activation;

use super::pool::{Par, MAX_THREADS};

/// Rows of B per packed panel (k-block) for the 16-wide tiles.
const KC: usize = 256;

/// Rows per panel for the AVX-512 6×64 tile: 128 × 64 values (32 KiB) stay
/// in a 48 KiB L1.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const KC_AVX512: usize = 128;

/// What happens to `C` around the product.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// Add the product to the existing `C` instead of overwriting it.
    pub accumulate: bool,
    /// Per-row bias (`m` values), added after the product.
    pub bias: Option<&'a [f32]>,
    /// A matrix laid out like `C` (row `i` at `i·ldc`), added after the
    /// bias: a residual connection fused into its convolution.
    pub residual: Option<&'a [f32]>,
    /// Activation applied last.
    pub activation: Activation,
}

impl Epilogue<'_> {
    /// Plain `C = A·B`.
    pub const NONE: Epilogue<'static> = Epilogue {
        accumulate: false,
        bias: None,
        residual: None,
        activation: Activation::None,
    };

    /// The epilogue of one value: `C[at]`, in row `row`.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn finish(&self, row: usize, at: usize, v: f32) -> f32 {
        let r = self.residual.and_then(|r| r.get(at)).copied().unwrap_or(0.0);
        self.activation.apply(v + self.bias_at(row) + r)
    }

    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn bias_at(&self, row: usize) -> f32 {
        self.bias.and_then(|b| b.get(row)).copied().unwrap_or(0.0)
    }

    /// Bias, residual and activation over the row segment `vs` = `C[at..]`
    /// of row `row`, the activation matched once so the loop vectorises.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn finish_row(&self, row: usize, at: usize, vs: &mut [f32]) {
        let b = self.bias_at(row);
        let res = self.residual.and_then(|r| r.get(at..at + vs.len()));
        match res {
            Some(res) => {
                for (v, r) in vs.iter_mut().zip(res) {
                    *v = *v + b + r;
                }
                self.activation.apply_all(vs);
            }
            None => match self.activation {
                Activation::None => vs.iter_mut().for_each(|v| *v += b),
                Activation::Relu => vs.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
                Activation::Relu6 => vs.iter_mut().for_each(|v| *v = (*v + b).clamp(0.0, 6.0)),
                Activation::Silu => vs.iter_mut().for_each(|v| *v = Activation::Silu.apply(*v + b)),
            },
        }
    }
}

/// `C[m×n] = A[m×k] · B[k×n] (+ C if accumulate)`, all row-major and
/// contiguous. Returns false (and leaves `c` untouched) when a slice is
/// shorter than its shape needs.
pub fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) -> bool {
    let epi = Epilogue {
        accumulate,
        ..Epilogue::NONE
    };
    sgemm_epilogue(m, k, n, a, b, c, &epi)
}

/// `C = act(A·B (+ C) + bias)` with bias and activation fused into the
/// final store (no extra pass over `C`).
pub fn sgemm_epilogue(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    epi: &Epilogue<'_>,
) -> bool {
    sgemm_strided(m, k, n, a, b, c, n, epi)
}

/// [`sgemm_epilogue`] with `C` rows `ldc ≥ n` elements apart (a block of
/// columns of a wider matrix).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_strided(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    epi: &Epilogue<'_>,
) -> bool {
    sgemm_rows(m, k, n, a, b, &RowMap::dense(n), c, ldc, epi)
}

/// Where each row of `B` starts in its slice: row `r` at
/// `(r / period)·stride + taps[r mod period]`. Dense rows are the case
/// `period = 1`, `taps = [0]`, `stride = n`; a stride-1 convolution reads
/// its unfolded rows `(channel, tap)` in place from a padded input this
/// way (no im2col copy).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowMap<'t> {
    stride: usize,
    taps: &'t [usize],
}

impl<'t> RowMap<'t> {
    /// Rows `n` apart.
    pub(crate) fn dense(n: usize) -> RowMap<'static> {
        RowMap {
            stride: n,
            taps: &[0],
        }
    }

    /// Row `(q, t)` (`r = q·taps.len() + t`) at `q·stride + taps[t]`.
    pub(crate) fn taps(stride: usize, taps: &'t [usize]) -> RowMap<'t> {
        RowMap { stride, taps }
    }

    /// Offset of row `r`.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn offset(&self, r: usize) -> usize {
        let p = self.taps.len().max(1);
        (r / p) * self.stride + self.taps.get(r % p).copied().unwrap_or(0)
    }

    /// Elements `B` needs so that rows `0..k` each have `n` values, or
    /// `None` on overflow or an empty tap list.
    fn b_len(&self, k: usize, n: usize) -> Option<usize> {
        let last = k.checked_sub(1)?;
        let p = self.taps.len();
        let top = self.taps.iter().copied().max()?;
        (last / p)
            .checked_mul(self.stride)?
            .checked_add(top)?
            .checked_add(n)
    }
}

/// [`sgemm_strided`] with `B`'s rows placed by `rows`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_rows(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    rows: &RowMap<'_>,
    c: &mut [f32],
    ldc: usize,
    epi: &Epilogue<'_>,
) -> bool {
    let Some(c_need) = c_len_needed(m, k, n, a, b, rows, c, ldc, epi) else {
        return false;
    };
    let (a, c) = (&a[..m * k], &mut c[..c_need]);
    let g = Geometry {
        m,
        k,
        n,
        ldc,
        rows: *rows,
    };
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        use super::cpu::{level, Level};
        match level() {
            Level::Avx512 => {
                // SAFETY: `level()` is Avx512 only when the CPU was detected
                // to have AVX-512F (+ AVX2 and FMA); the body is safe code.
                #[allow(unsafe_code)]
                unsafe {
                    gemm_avx512(&g, a, b, c, epi)
                };
                return true;
            }
            Level::Avx2 => {
                // SAFETY: `level()` is Avx2 only when the CPU was detected
                // to have AVX2 and FMA; the body is safe code.
                #[allow(unsafe_code)]
                unsafe {
                    gemm_avx2(&g, a, b, c, epi)
                };
                return true;
            }
            Level::Portable => {}
        }
    }
    #[cfg(all(feature = "std", target_arch = "aarch64"))]
    {
        // NEON (and its FMA) is baseline on aarch64: no dispatch. 8×12
        // keeps 24 of the 32 vector registers as accumulators (4.8 FMAs per
        // value loaded, against 3.2 for 4×16).
        gemm::<8, 12, Fused>(&g, a, b, c, epi, &mut [0f32; KC * 12]);
        return true;
    }
    #[allow(unreachable_code)]
    {
        gemm::<4, 16, Plain>(&g, a, b, c, epi, &mut [0f32; KC * 16]);
        true
    }
}

/// Elements of `C` a product of these sizes touches (`(m − 1)·ldc + n`),
/// or `None` when a slice is shorter than its shape needs, `ldc < n`, or a
/// size overflows.
#[allow(clippy::too_many_arguments)]
fn c_len_needed(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    rows: &RowMap<'_>,
    c: &[f32],
    ldc: usize,
    epi: &Epilogue<'_>,
) -> Option<usize> {
    let fits = |len: usize, r: usize, cols: usize| r.checked_mul(cols).is_some_and(|need| len >= need);
    let c_need = match m {
        0 => Some(0),
        _ => (m - 1).checked_mul(ldc).and_then(|v| v.checked_add(n)),
    }?;
    let b_ok = k == 0 || rows.b_len(k, n).is_some_and(|need| b.len() >= need);
    let ok = ldc >= n
        && fits(a.len(), m, k)
        && b_ok
        && c.len() >= c_need
        && epi.residual.is_none_or(|r| r.len() >= c_need)
        && epi.bias.is_none_or(|b| b.len() >= m);
    ok.then_some(c_need)
}

/// [`sgemm_rows`] with the rows of `C` split over `par`'s threads, in
/// blocks of whole register tiles: every value is computed by the same tile
/// code as with one thread, so the result is bit-identical.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_rows_par(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    rows: &RowMap<'_>,
    c: &mut [f32],
    ldc: usize,
    epi: &Epilogue<'_>,
    par: Par<'_>,
) -> bool {
    let threads = par.threads().min(MAX_THREADS);
    if threads <= 1 || m < 16 {
        return sgemm_rows(m, k, n, a, b, rows, c, ldc, epi);
    }
    let Some(c_need) = c_len_needed(m, k, n, a, b, rows, c, ldc, epi) else {
        return false;
    };
    // Whole register tiles (MR = 6 on x86, 8 on aarch64) unless that
    // would leave a thread idle; any split gives the same bits (each row's
    // sums do not depend on its tile), only the balance changes (80 rows
    // over 2 threads: 42 + 38, where multiples of 24 gave 48 + 32).
    let unit = if cfg!(target_arch = "aarch64") { 8 } else { 6 };
    let block = m.div_ceil(threads).div_ceil(unit) * unit;
    let mut parts: [Option<(usize, usize, &mut [f32])>; MAX_THREADS] = Default::default();
    let mut rest = &mut c[..c_need];
    let mut r0 = 0;
    for part in parts.iter_mut() {
        if r0 >= m {
            break;
        }
        let r1 = (r0 + block).min(m);
        let take = if r1 == m { rest.len() } else { (r1 - r0) * ldc };
        let (mine, tail) = rest.split_at_mut(take);
        *part = Some((r0, r1, mine));
        rest = tail;
        r0 = r1;
    }
    let ok = core::sync::atomic::AtomicBool::new(true);
    par.for_parts(&mut parts, &|_, (r0, r1, cs): (usize, usize, &mut [f32])| {
        let e = Epilogue {
            bias: epi.bias.map(|b| &b[r0..r1]),
            residual: epi.residual.map(|r| &r[r0 * ldc..]),
            ..*epi
        };
        if !sgemm_rows(r1 - r0, k, n, &a[r0 * k..r1 * k], b, rows, cs, ldc, &e) {
            ok.store(false, core::sync::atomic::Ordering::Relaxed);
        }
    });
    ok.load(core::sync::atomic::Ordering::Relaxed)
}

/// Matrix sizes: `C[m×n] (row stride ldc) = A[m×k] · B[k×n]`, `B`'s rows
/// placed by `rows`.
struct Geometry<'t> {
    m: usize,
    k: usize,
    n: usize,
    ldc: usize,
    rows: RowMap<'t>,
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
fn gemm_avx2(g: &Geometry<'_>, a: &[f32], b: &[f32], c: &mut [f32], epi: &Epilogue<'_>) {
    if few_rows_fit(g) {
        few_rows::<16, Fused>(g, a, b, c, epi);
    } else {
        gemm::<6, 16, Fused>(g, a, b, c, epi, &mut [0f32; KC * 16]);
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx2,fma")]
fn gemm_avx512(g: &Geometry<'_>, a: &[f32], b: &[f32], c: &mut [f32], epi: &Epilogue<'_>) {
    if few_rows_fit(g) {
        few_rows::<32, Fused>(g, a, b, c, epi);
    } else {
        gemm::<6, 64, Fused>(g, a, b, c, epi, &mut [0f32; KC_AVX512 * 64]);
    }
}

/// Rows of `C` up to which [`few_rows`] takes a product.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const FEW_ROWS: usize = 4;

/// Depth (`k`) up to which [`few_rows`] takes a product.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const FEW_K: usize = 36;

/// Whether [`few_rows`] takes this product: a convolution of few input and
/// output channels (XFeat's 1 → 4 channel 3×3 layer: `m` = 4, `k` = 9),
/// where the blocked multiply fills two thirds of its 6-row tile and packs
/// a panel of B for 9 FMAs per value.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn few_rows_fit(g: &Geometry<'_>) -> bool {
    takes_few_rows(g.m, g.k)
}

/// Whether [`sgemm_rows`] multiplies an `m × k` A without packing on this
/// CPU (x86-64 at AVX2 or AVX-512, at most [`FEW_ROWS`] × [`FEW_K`]): it
/// then costs little per call, so a caller may make one call per output
/// row and write the rows in place.
pub(crate) fn takes_few_rows(m: usize, k: usize) -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        m <= FEW_ROWS && k <= FEW_K && k > 0 && super::cpu::level() != super::cpu::Level::Portable
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    {
        let _ = (m, k);
        false
    }
}

/// The product of at most [`FEW_ROWS`] rows without packing: `W` columns
/// of every row of `C` at a time in registers, each row of B read in place
/// once per `W` columns (`g.rows` places them). Each value is summed from
/// zero over `k` in order, then finished as [`gemm`] does (the same sums).
/// `a`, `b`, `c` are as [`gemm`] takes them.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn few_rows<const W: usize, F: MulAdd>(
    g: &Geometry<'_>,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    epi: &Epilogue<'_>,
) {
    let (m, k, n, ldc) = (g.m, g.k, g.n, g.ldc);
    let m = m.min(FEW_ROWS);
    // A's rows, zero past `m`.
    let mut w = [[0f32; FEW_K]; FEW_ROWS];
    for (i, wr) in w.iter_mut().enumerate().take(m) {
        wr[..k].copy_from_slice(&a[i * k..(i + 1) * k]);
    }
    // Where B's rows start (once: `RowMap::offset` divides).
    let mut rows = [0usize; FEW_K];
    for (r, o) in rows.iter_mut().enumerate().take(k) {
        *o = g.rows.offset(r);
    }
    let store = |c: &mut [f32], i: usize, j: usize, v: &[f32]| {
        let at = i * ldc + j;
        let Some(d) = c.get_mut(at..at + v.len()) else {
            return;
        };
        if epi.accumulate {
            for (d, v) in d.iter_mut().zip(v) {
                *d += v;
            }
        } else {
            d.copy_from_slice(v);
        }
        epi.finish_row(i, at, d);
    };
    let mut j = 0;
    while j + W <= n {
        let mut acc = [[0f32; W]; FEW_ROWS];
        for r in 0..k {
            let off = rows[r] + j;
            let Some(Ok(x)) = b.get(off..off + W).map(<&[f32; W]>::try_from) else {
                return;
            };
            for (acc, wr) in acc.iter_mut().zip(&w) {
                let wv = wr[r];
                for (s, x) in acc.iter_mut().zip(x) {
                    *s = F::mul_add(wv, *x, *s);
                }
            }
        }
        for (i, v) in acc.iter().enumerate().take(m) {
            store(c, i, j, v);
        }
        j += W;
    }
    // The last columns, fewer than W.
    let rest = n - j;
    if rest > 0 {
        let mut acc = [[0f32; W]; FEW_ROWS];
        for r in 0..k {
            let off = rows[r] + j;
            let Some(x) = b.get(off..off + rest) else {
                return;
            };
            for (acc, wr) in acc.iter_mut().zip(&w) {
                for (s, x) in acc.iter_mut().zip(x) {
                    *s = F::mul_add(wr[r], *x, *s);
                }
            }
        }
        for (i, v) in acc.iter().enumerate().take(m) {
            store(c, i, j, &v[..rest]);
        }
    }
}

/// The blocked multiply; `a` has exactly `m·k` elements, `b` every row
/// `g.rows` places, `c` `(m − 1)·ldc + n`;
/// `panel` (`KC × NR` values, on the caller's stack) holds the packed B panel.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
#[allow(clippy::too_many_arguments)]
fn gemm<const MR: usize, const NR: usize, F: MulAdd>(
    g: &Geometry<'_>,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    epi: &Epilogue<'_>,
    panel: &mut [f32],
) {
    let (m, k, n, ldc) = (g.m, g.k, g.n, g.ldc);
    // The k-block: as many rows as the panel holds.
    let kc = (panel.len() / NR).max(1);
    if k == 0 {
        for i in 0..m {
            for (j, v) in c[i * ldc..i * ldc + n].iter_mut().enumerate() {
                *v = epi.finish(i, i * ldc + j, if epi.accumulate { *v } else { 0.0 });
            }
        }
        return;
    }
    let n_full = n - n % NR;
    let m_full = m - m % MR;
    // Column tiles outermost: the C block (m × NR) of one column tile stays
    // in cache across all k-blocks instead of one pass over C per k-block.
    // (Blocks of several column tiles, to read each k-slice of A once per
    // block, measured no faster on the network's shapes.)
    let mut j0 = 0;
    while j0 < n_full {
        let mut k0 = 0;
        while k0 < k {
            let k1 = (k0 + kc).min(k);
            // First block: start from C or from zero; last block: epilogue.
            let load = k0 > 0 || epi.accumulate;
            let last = k1 == k;
            // Pack the B panel contiguously (KC × NR) once for all row
            // blocks: +25–40 % GFLOP/s over reading B rows in place.
            let kb = k1 - k0;
            // Row offsets walk the tap list instead of dividing per row.
            let period = g.rows.taps.len().max(1);
            let (mut q, mut t) = (k0 / period, k0 % period);
            for kk in 0..kb {
                let row = q * g.rows.stride + g.rows.taps.get(t).copied().unwrap_or(0) + j0;
                panel[kk * NR..(kk + 1) * NR].copy_from_slice(&b[row..row + NR]);
                t += 1;
                if t == period {
                    (q, t) = (q + 1, 0);
                }
            }
            let mut i0 = 0;
            while i0 < m_full {
                let t = Tile {
                    i0,
                    j0,
                    k0,
                    k1,
                    load,
                    last,
                };
                tile::<MR, NR, F>(k, a, &panel[..kb * NR], c, ldc, &t, epi);
                i0 += MR;
            }
            if m_full < m {
                // The last rows, fewer than MR, through a shorter tile on
                // the same packed panel.
                let t = Tile {
                    i0: m_full,
                    j0,
                    k0,
                    k1,
                    load,
                    last,
                };
                let p = &panel[..kb * NR];
                match m - m_full {
                    1 => tile::<1, NR, F>(k, a, p, c, ldc, &t, epi),
                    2 => tile::<2, NR, F>(k, a, p, c, ldc, &t, epi),
                    3 => tile::<3, NR, F>(k, a, p, c, ldc, &t, epi),
                    4 => tile::<4, NR, F>(k, a, p, c, ldc, &t, epi),
                    5 => tile::<5, NR, F>(k, a, p, c, ldc, &t, epi),
                    6 => tile::<6, NR, F>(k, a, p, c, ldc, &t, epi),
                    7 => tile::<7, NR, F>(k, a, p, c, ldc, &t, epi),
                    rows => {
                        for i in m - rows..m {
                            edge_row::<F>(g, a, b, c, i, (j0, j0 + NR), (k0, k1), load, last, epi);
                        }
                    }
                }
            }
            k0 = k1;
        }
        j0 += NR;
    }
    if n_full < n {
        let mut k0 = 0;
        while k0 < k {
            let k1 = (k0 + kc).min(k);
            let load = k0 > 0 || epi.accumulate;
            for i in 0..m {
                edge_row::<F>(g, a, b, c, i, (n_full, n), (k0, k1), load, k1 == k, epi);
            }
            k0 = k1;
        }
    }
}

/// Position of one register tile and what to do at its ends.
struct Tile {
    i0: usize,
    j0: usize,
    k0: usize,
    k1: usize,
    load: bool,
    last: bool,
}

/// `C[i0..i0+MR, j0..j0+NR] (+)= A[i0..i0+MR, k0..k1] · panel`.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn tile<const MR: usize, const NR: usize, F: MulAdd>(
    k: usize,
    a: &[f32],
    panel: &[f32],
    c: &mut [f32],
    n: usize,
    t: &Tile,
    epi: &Epilogue<'_>,
) {
    let (i0, j0) = (t.i0, t.j0);
    let mut acc = [[0f32; NR]; MR];
    if t.load {
        for (r, row) in acc.iter_mut().enumerate() {
            row.copy_from_slice(&c[(i0 + r) * n + j0..(i0 + r) * n + j0 + NR]);
        }
    }
    let kb = t.k1 - t.k0;
    let arows: [&[f32]; MR] = core::array::from_fn(|r| &a[(i0 + r) * k + t.k0..(i0 + r) * k + t.k1]);
    for (kk, bv) in panel.chunks_exact(NR).take(kb).enumerate() {
        let Ok(bv) = <&[f32; NR]>::try_from(bv) else {
            return;
        };
        for r in 0..MR {
            let av = arows[r][kk];
            for j in 0..NR {
                acc[r][j] = F::mul_add(av, bv[j], acc[r][j]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        c[(i0 + r) * n + j0..(i0 + r) * n + j0 + NR].copy_from_slice(row);
    }
    if t.last {
        for r in 0..MR {
            epi.finish_row(
                i0 + r,
                (i0 + r) * n + j0,
                &mut c[(i0 + r) * n + j0..(i0 + r) * n + j0 + NR],
            );
        }
    }
}

/// One row of C over columns `cols` (edges).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
#[allow(clippy::too_many_arguments)]
fn edge_row<F: MulAdd>(
    g: &Geometry<'_>,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    i: usize,
    cols: (usize, usize),
    ks: (usize, usize),
    load: bool,
    last: bool,
    epi: &Epilogue<'_>,
) {
    let k = g.k;
    let (j0, j1) = cols;
    let crow = &mut c[i * g.ldc + j0..i * g.ldc + j1];
    if !load {
        crow.fill(0.0);
    }
    for kk in ks.0..ks.1 {
        let av = a[i * k + kk];
        let r = g.rows.offset(kk);
        let brow = &b[r + j0..r + j1];
        for (d, s) in crow.iter_mut().zip(brow) {
            *d = F::mul_add(av, *s, *d);
        }
    }
    if last {
        epi.finish_row(i, i * g.ldc + j0, crow);
    }
}

/// `a·b + c` in a kernel: [`Fused`] where the target has FMA (one
/// instruction, one rounding: the x86 kernels compiled for AVX2 + FMA or
/// AVX-512, and aarch64), [`Plain`] elsewhere. Rust never contracts `a·b + c`
/// into an FMA by itself, so without `Fused` an AVX kernel issues a multiply
/// and an add per term: half the throughput of the FMA units.
pub(crate) trait MulAdd {
    /// `a·b + c`.
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// Multiply, then add (two roundings; for targets without FMA, where
/// `f32::mul_add` would call libm).
pub(crate) struct Plain;

impl MulAdd for Plain {
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// The fused multiply-add (`vfmadd…ps`, `fmla`): only in code compiled for
/// a target with FMA.
#[cfg(feature = "std")]
pub(crate) struct Fused;

#[cfg(feature = "std")]
impl MulAdd for Fused {
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}
