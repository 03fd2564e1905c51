//! Winograd convolutions F(m×m, 3×3), m = 2 or 4, over channel-blocked
//! (NCHW16c) tensors: 3×3 kernels at stride 1, any padding and dilation.
//!
//! Each tile of m×m outputs (`d` apart at dilation `d`) reads n×n inputs
//! (n = m + 2, also `d` apart), transformed to n² positions `ξ`
//! (`V = Bᵀ·x·B`); at each position the output channels are a 1×1
//! convolution of the input channels (`M_ξ = U_ξ·V_ξ`, with `U = G·g·Gᵀ`
//! packed at load), run by the blocked 1×1 kernel ([`super::blocked`]);
//! the outputs are `Aᵀ·M·A`, plus the bias, then the activation. That is
//! 16 products per 4 outputs and channel pair (m = 2) or 36 per 16
//! (m = 4) instead of 9 per output: 2.25× or 4× fewer.
//!
//! F(2×2)'s transforms add and subtract only; F(4×4)'s (interpolation
//! points 0, ±1, ±2) scale by up to 8, and its `G` by sixths, computed in
//! f64 at load. The result differs from the direct kernel's by float
//! rounding (relative to the sum of absolute products, ~1e-7 and ~1e-6:
//! `tests/unit/winograd.rs` checks both against the definition in f64).
//!
//! Tiles go in chunks whose transformed inputs and products stay in the
//! L2 cache (a part's own scratch, [`scratch_len`]). Threads split the
//! output rows in bands of `m·d` (a band's tiles cover it exactly); every
//! output is computed by the same code whatever the split, so the result
//! is bit-identical for any thread count.

use core::marker::PhantomData;

use super::blocked::{at_level, split_phases, split_with, Job, Part, Pointwise};
use super::gemm::MulAdd;
use super::pool::Par;
use super::simd::Lanes;
use crate::model::layout::{pointwise_group, Layout, BLOCK};
use crate::model::plan::ConvStep;
use crate::model::{Activation, Shape};

/// Most tiles in one chunk.
const MAX_TILES: usize = 120;

/// Fewest tiles in one chunk, whatever the budget: every chunk reads all
/// the positions' weights (36 × 64 KiB at 128 channels), so a chunk of 6
/// tiles left XFeat's 128-channel layers 1.1× slower than the direct
/// kernel at AVX2, and one of 12 made them 0.85×.
const MIN_TILES: usize = 12;

/// Scratch a chunk may fill, in f32 (the transformed inputs and the
/// products: 384 KiB, within a 1 MiB L2 with the weights of one position;
/// 192 Ki or 48 Ki values made XFeat 4 % and 2 % slower at AVX2).
const CHUNK_BUDGET: usize = 96 * 1024;

/// At AVX-512, the fewest output pixels a Winograd convolution takes: on
/// smaller maps the direct kernel was faster (XFeat's 17×30 and 9×15
/// layers: 1.04–1.11× the time by Winograd; its 33×60 ones 0.65–0.8×,
/// the small network's 22×40 ones 0.65–0.7×).
const WIDE_MIN_PIXELS: usize = 768;

/// At AVX-512, the most bytes of transformed weights (36 · ci · co · 4)
/// per output tile that a Winograd convolution takes: each position's
/// product reads its weights once for all tiles, and with few tiles the
/// direct kernel's 9 · ci · co were faster. Lite0's ASPP branches (320 ->
/// 80): at 22×40 (38–61 KiB a tile) 1.11–1.72× the direct kernel's time,
/// at 44×80 (15–17 KiB) 0.78–0.90×; the small network's 64 -> 64 on 22×40
/// (6–10 KiB) 0.56× (2026-12-07, fifth session).
const WIDE_MAX_WEIGHTS: usize = 24 * 1024;

/// One block of channels of one pixel.
type V = [f32; BLOCK];

/// Transform positions of a tile of `m × m` outputs: `(m + 2)²`.
pub fn positions(m: usize) -> usize {
    (m + 2) * (m + 2)
}

/// The output tile side for convolution `c` (from `ci` to `co` channels,
/// output `[ho, wo]`), or 0 when it does not run here. It runs for 3×3
/// kernels at stride 1, one group, no fused residual, equal dilations and
/// at least [`min_channels`] in and out; the tile is 4 (F(4×4, 3×3): 36
/// products per 16 outputs) unless tiles of 2 (16 per 4) need fewer
/// products on this output (at dilation `d` a tile's outputs are `d`
/// apart, so a band of `m·d` rows; a short last band wastes more at 4).
/// At AVX-512, whose direct kernel is faster, only tiles of 4 on maps of
/// at least [`WIDE_MIN_PIXELS`] outputs, and to more than one block of
/// output channels.
pub fn tile_for(c: &ConvStep, ci: usize, co: usize, [ho, wo]: [usize; 2]) -> u8 {
    let d = c.dilation[0];
    let ok = c.kernel == [3, 3]
        && c.stride == [1, 1]
        && c.groups == 1
        && c.residual.is_none()
        && d == c.dilation[1]
        && d > 0
        && ci.min(co) >= min_channels()
        && enabled();
    if !ok {
        return 0;
    }
    let products = |m: usize| positions(m) * tiles_along(ho, m, d) * tiles_along(wo, m, d);
    let m = if products(4) <= products(2) { 4 } else { 2 };
    // At AVX-512 only tiles of 4 on large maps beat the direct kernel,
    // and not to a single block: its direct tiles of 24 pixels ran the
    // small network's 16 -> 16 layer (88×160) in 0.92× Winograd's time on
    // one thread and on two.
    // Nor where each tile would amortise more than [`WIDE_MAX_WEIGHTS`]
    // of the transformed weights (ASPP's 320 -> 80 on 22×40: 3.7 MB for
    // 60–96 tiles).
    let wide = crate::nn::cpu::level() == crate::nn::cpu::Level::Avx512;
    let weights = (positions(m) * 4).saturating_mul(ci).saturating_mul(co);
    let tiles = tiles_along(ho, m, d).saturating_mul(tiles_along(wo, m, d));
    let heavy = weights > WIDE_MAX_WEIGHTS.saturating_mul(tiles);
    if wide && (m == 2 || ho * wo < WIDE_MIN_PIXELS || co <= BLOCK || heavy) {
        return 0;
    }
    if m == 4 {
        4
    } else {
        2
    }
}

/// Tiles along an axis of `n` outputs at tile side `m` and dilation `d`.
fn tiles_along(n: usize, m: usize, d: usize) -> usize {
    (0..n.div_ceil(m * d)).map(|b| d.min(n - b * m * d)).sum()
}

/// The fewest channels (in and out) a Winograd convolution takes: at 8
/// (AVX2's half blocks) XFeat's 8 → 8 layer ran 1.85× slower than by the
/// direct kernel; at 16, 0.54–0.84× the time (BENCHMARKS.md, round ten).
fn min_channels() -> usize {
    BLOCK
}

/// False when the environment variable `SLD_WINOGRAD` is `0` (with
/// `std`): plans then keep the direct kernel, for side-by-side timing.
/// Read once per plan, at load.
pub fn enabled() -> bool {
    #[cfg(feature = "std")]
    {
        std::env::var("SLD_WINOGRAD").map_or(true, |v| v != "0")
    }
    #[cfg(not(feature = "std"))]
    {
        true
    }
}

/// Tiles per chunk for `ci` → `co` channels at tile side `m`: as many as
/// keep the chunk's scratch within [`CHUNK_BUDGET`], a multiple of 6 (the
/// 1×1 tile's pixels), [`MIN_TILES`] to [`MAX_TILES`].
pub fn chunk_tiles(ci: usize, co: usize, m: usize) -> usize {
    let per_tile = positions(m) * (ci.div_ceil(BLOCK) + co.div_ceil(BLOCK)) * BLOCK;
    (CHUNK_BUDGET / per_tile.max(1) / 6 * 6).clamp(MIN_TILES, MAX_TILES)
}

/// Scratch one thread needs for `ci` → `co` channels at tile side `m`,
/// in f32.
pub fn scratch_len(ci: usize, co: usize, m: usize) -> usize {
    positions(m) * (ci.div_ceil(BLOCK) + co.div_ceil(BLOCK)) * BLOCK * chunk_tiles(ci, co, m)
}

/// Length of one position's packed weights (the 1×1 kernel's packing,
/// `[⌈co/G⌉, ci, G]`, `G` = [`pointwise_group`]).
fn position_len(ci: usize, co: usize) -> usize {
    co.div_ceil(pointwise_group()) * pointwise_group() * ci
}

/// Length of the packed weights at tile side `m`: one 1×1 matrix per
/// position.
pub fn packed_len(ci: usize, co: usize, m: usize) -> usize {
    positions(m) * position_len(ci, co)
}

/// `G` for F(2×2, 3×3) (4 × 3).
const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// `G` for F(4×4, 3×3) (6 × 3; interpolation points 0, ±1, ±2, ∞).
const G4: [[f64; 3]; 6] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Packs weights `w` (`[co, ci, 3, 3]`) for tile side `m` (2 or 4) as
/// `U_ξ = G·g·Gᵀ` for the positions `ξ = n·r + c` (`n = m + 2`), each in
/// the 1×1 kernel's packing, into `dst` ([`packed_len`]; padded output
/// channels zero). Computed in f64.
pub(crate) fn pack(w: &[f32], co: usize, ci: usize, m: usize, dst: &mut [f32]) {
    let group = pointwise_group();
    let plen = position_len(ci, co);
    let g_rows: &[[f64; 3]] = if m == 2 { &G2 } else { &G4 };
    for o in 0..co {
        for i in 0..ci {
            let Some(g) = w.get((o * ci + i) * 9..(o * ci + i) * 9 + 9) else {
                return;
            };
            for (r, gr) in g_rows.iter().enumerate() {
                // Row r of G·g (3 values), then its products with Gᵀ.
                let t: [f64; 3] = core::array::from_fn(|c| (0..3).map(|k| gr[k] * g[k * 3 + c] as f64).sum());
                for (c, gc) in g_rows.iter().enumerate() {
                    let u: f64 = (0..3).map(|k| t[k] * gc[k]).sum();
                    let at = (r * g_rows.len() + c) * plen + ((o / group) * ci + i) * group + o % group;
                    if let Some(d) = dst.get_mut(at) {
                        *d = u as f32;
                    }
                }
            }
        }
    }
}

/// A Winograd convolution's operands (blocked in and out).
#[derive(Clone, Copy)]
#[doc(hidden)] // public for sld-core's own tests (`crate::testing`)
pub struct Winograd<'a> {
    /// Input `[⌈ci/16⌉, h, w, 16]`.
    pub x: &'a [f32],
    /// Packed weights ([`pack`]) for tile side `tile`.
    pub w: &'a [f32],
    /// Output tile side: 2 or 4.
    pub tile: usize,
    /// Bias `[co]`.
    pub bias: Option<&'a [f32]>,
    /// The step (padding, dilation, activation).
    pub st: &'a ConvStep,
    /// `[ci, h, w]`.
    pub in_shape: Shape,
    /// `[co, ho, wo]`.
    pub out_shape: Shape,
}

/// Runs a Winograd convolution; `scratch` holds `per` f32 per thread
/// (at least [`scratch_len`]). False when a buffer is shorter than the
/// shapes need, the tile is not 2 or 4, or the shapes are not a 3×3
/// stride-1 convolution's.
pub(crate) fn run<F: MulAdd>(
    op: &Winograd<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
    per: usize,
    par: Par<'_>,
) -> bool {
    let [ci, h, w] = op.in_shape;
    let [co, ho, wo] = op.out_shape;
    let (d, m) = (op.st.dilation[0], op.tile);
    let [pt, pl, pb, pr] = op.st.padding;
    // The output shape a 3×3 kernel at stride 1 gives.
    let fits = |n: usize, p0: usize, p1: usize, o: usize| (n + p0 + p1).checked_sub(2 * d) == Some(o);
    if op.st.kernel != [3, 3]
        || op.st.stride != [1, 1]
        || !(m == 2 || m == 4)
        || d == 0
        || op.st.dilation[1] != d
        || !fits(h, pt, pb, ho)
        || !fits(w, pl, pr, wo)
        || op.x.len() < ci.div_ceil(BLOCK) * BLOCK * h * w
        || op.w.len() < packed_len(ci, co, m)
        || op.bias.is_some_and(|b| b.len() < co)
        || per < scratch_len(ci, co, m)
        || ho == 0
        || wo == 0
    {
        return false;
    }
    let job = Tiles::<F> {
        op,
        mul_add: PhantomData,
    };
    // Bands of m·d output rows (the last one may be short).
    let bands = ho.div_ceil(m * d);
    let f = |p: Part<'_>| {
        at_level::<F, _>(&job, p);
        true
    };
    let threads = par.threads().min(scratch.len() / per);
    if d > 1 && threads > 1 && d.is_multiple_of(threads) && !bands.is_multiple_of(threads) {
        // A tile's rows are d apart, so the rows of one phase (r mod d)
        // are tiles of their own: whole phases share out evenly where a
        // few bands (3 at dilation 2 on a 22-row map) would not. Each
        // thread transforms only its own tiles.
        return split_phases(
            co.div_ceil(BLOCK),
            (d, wo, ho * wo),
            co,
            out,
            (scratch, per),
            par,
            &f,
        );
    }
    split_with(
        co.div_ceil(BLOCK),
        (bands, m * d * wo, ho * wo),
        Layout::Blocked,
        co,
        out,
        None,
        (scratch, per),
        par,
        // Few bands shared 2 : 1 ran slower than by the direct kernel on
        // two threads; by blocks each thread transforms every input tile,
        // but the products split evenly.
        true,
        &f,
    )
}

/// [`run`]'s work for one part, with the 1×1 products at level `F`.
struct Tiles<'a, 'o, F> {
    op: &'a Winograd<'o>,
    mul_add: PhantomData<fn() -> F>,
}

impl<F: MulAdd> Job for Tiles<'_, '_, F> {
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn run<L: Lanes>(&self, p: Part<'_>) {
        if self.op.tile == 2 {
            self.part::<L, 2>(p)
        } else {
            self.part::<L, 4>(p)
        }
    }
}

impl<F: MulAdd> Tiles<'_, '_, F> {
    /// The tiles of part `p` (whole bands of output rows), chunk by chunk.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn part<L: Lanes, const M: usize>(&self, mut p: Part<'_>) {
        let op = self.op;
        let [ci, ..] = op.in_shape;
        let [co, ho, wo] = op.out_shape;
        let d = op.st.dilation[0];
        let (cbi, cbo, np) = (ci.div_ceil(BLOCK), co.div_ceil(BLOCK), positions(M));
        let tiles = chunk_tiles(ci, co, M);
        let scratch = core::mem::take(&mut p.scratch);
        let (vs, ms) = scratch.split_at_mut((np * cbi * BLOCK * tiles).min(scratch.len()));
        let Some(ms) = ms.get_mut(..np * cbo * BLOCK * tiles) else {
            return;
        };
        // This part's output rows: whole bands (and of them, its phases).
        let (r0, r1) = (p.q0 / wo, p.q1.div_ceil(wo));
        let phases = p.phases;
        let mut chunk = [(0usize, 0usize); MAX_TILES];
        let mut n = 0;
        let mut band = r0;
        while band < r1 {
            // Tile rows of this band: M×M outputs `d` apart from (oy, ox)
            // (the part's own phases: `oy mod d` is the tile's).
            for oy in (band..(band + d).min(ho)).filter(|&oy| phases.has_row(oy)) {
                let mut x = 0;
                while x < wo {
                    for ox in x..(x + d).min(wo) {
                        if let Some(slot) = chunk.get_mut(n) {
                            *slot = (oy, ox);
                            n += 1;
                        }
                        if n == tiles {
                            self.chunk::<L, M>(&mut p, &chunk[..n], vs, ms);
                            n = 0;
                        }
                    }
                    x += M * d;
                }
            }
            band += M * d;
        }
        if n > 0 {
            self.chunk::<L, M>(&mut p, &chunk[..n], vs, ms);
        }
    }

    /// Transforms, multiplies and writes the tiles at `at` (their first
    /// output's row and column), with `vs` and `ms` as scratch.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn chunk<L: Lanes, const M: usize>(
        &self,
        p: &mut Part<'_>,
        at: &[(usize, usize)],
        vs: &mut [f32],
        ms: &mut [f32],
    ) {
        let op = self.op;
        let [ci, h, w] = op.in_shape;
        let co = op.out_shape[0];
        let d = op.st.dilation[0];
        let (pt, pl) = (op.st.padding[0] as isize, op.st.padding[1] as isize);
        let (cbi, cbo, n) = (ci.div_ceil(BLOCK), co.div_ceil(BLOCK), M + 2);
        let tiles = chunk_tiles(ci, co, M);
        // Inputs: V_ξ = Bᵀ·x·B for every tile and channel block.
        for (k, &(oy, ox)) in at.iter().enumerate() {
            let (y0, x0) = (oy as isize - pt, ox as isize - pl);
            // Offsets of the n rows and n columns, and which are inside.
            let (mut rows, mut cols) = ([0usize; 6], [0usize; 6]);
            let (mut row_in, mut col_in) = ([false; 6], [false; 6]);
            for i in 0..n {
                let (y, x) = (y0 + (i * d) as isize, x0 + (i * d) as isize);
                row_in[i] = y >= 0 && (y as usize) < h;
                col_in[i] = x >= 0 && (x as usize) < w;
                rows[i] = if row_in[i] { y as usize * w * BLOCK } else { 0 };
                cols[i] = if col_in[i] { x as usize * BLOCK } else { 0 };
            }
            let inside = row_in[..n].iter().chain(&col_in[..n]).all(|b| *b);
            for cb in 0..cbi {
                let plane =
                    op.x.get(cb * h * w * BLOCK..(cb + 1) * h * w * BLOCK)
                        .unwrap_or(&[]);
                let load = |i: usize, j: usize| {
                    if inside || (row_in[i] && col_in[j]) {
                        if let Some(s) = block(plane, rows[i] + cols[j]) {
                            return L::load(s);
                        }
                    }
                    L::zero()
                };
                let mut store = |xi: usize, v: L| {
                    if let Some(dst) = block_mut(vs, ((xi * cbi + cb) * tiles + k) * BLOCK) {
                        v.store(dst);
                    }
                };
                if M == 2 {
                    input2(load, &mut store);
                } else {
                    input4(load, &mut store);
                }
            }
        }
        // Products: one 1×1 convolution per position, this part's blocks.
        let plen = position_len(ci, co);
        for xi in 0..n * n {
            let (Some(x), Some(wx), Some(m)) = (
                vs.get(xi * cbi * BLOCK * tiles..(xi + 1) * cbi * BLOCK * tiles),
                op.w.get(xi * plen..(xi + 1) * plen),
                ms.get_mut(xi * cbo * BLOCK * tiles..(xi + 1) * cbo * BLOCK * tiles),
            ) else {
                return;
            };
            let pw = Pointwise {
                x,
                in_layout: Layout::Blocked,
                w: wx,
                group: pointwise_group(),
                bias: None,
                residual: None,
                out_layout: Layout::Blocked,
                ci,
                co,
                n: tiles,
                activation: Activation::None,
            };
            // This part's blocks, the chunk's tiles (`m` is this part's own).
            let q = Part::of(m, Layout::Blocked, (co, tiles), (p.b0, p.b1), (0, at.len()));
            at_level::<F, _>(&pw, q);
        }
        // Outputs: Aᵀ·M·A + bias, then the activation (matched once).
        match op.st.activation {
            Activation::Relu => self.outputs::<L, M>(p, at, ms, |v| v.relu()),
            Activation::Relu6 => self.outputs::<L, M>(p, at, ms, |v| v.relu6()),
            _ => self.outputs::<L, M>(p, at, ms, |v| v),
        }
    }

    /// Writes the outputs of the tiles at `at` from their products `ms`:
    /// `act(Aᵀ·M·A + bias)` (a SiLU after, on the stored values).
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn outputs<L: Lanes, const M: usize>(
        &self,
        p: &mut Part<'_>,
        at: &[(usize, usize)],
        ms: &[f32],
        act: impl Fn(L) -> L,
    ) {
        let op = self.op;
        let [ci, ..] = op.in_shape;
        let [co, ho, wo] = op.out_shape;
        let d = op.st.dilation[0];
        let cbo = co.div_ceil(BLOCK);
        let tiles = chunk_tiles(ci, co, M);
        let silu = op.st.activation == Activation::Silu;
        for (k, &(oy, ox)) in at.iter().enumerate() {
            // The columns inside, in one run of pixels.
            let cols = (0..M).take_while(|b| ox + b * d < wo).count();
            let run = (cols.max(1) - 1) * d + 1;
            for ob in p.b0..p.b1 {
                let bias = match op.bias.and_then(|b| block(b, ob * BLOCK)) {
                    Some(b) => L::load(b),
                    None => L::load(&core::array::from_fn(|l| {
                        op.bias
                            .and_then(|b| b.get(ob * BLOCK + l))
                            .copied()
                            .unwrap_or(0.0)
                    })),
                };
                let load = |xi: usize| match block(ms, ((xi * cbo + ob) * tiles + k) * BLOCK) {
                    Some(s) => L::load(s),
                    None => L::zero(),
                };
                // F(2×2)'s rows and columns padded to 4 (never stored).
                let y = if M == 2 {
                    let [y0, y1] = output2(load);
                    let z = L::zero();
                    [[y0[0], y0[1], z, z], [y1[0], y1[1], z, z], [z; 4], [z; 4]]
                } else {
                    output4(load)
                };
                for (a, y) in y.iter().enumerate().take(M) {
                    let oy = oy + a * d;
                    if oy >= ho {
                        break;
                    }
                    let Some(dst) = p.out.run(ob, oy * wo + ox, run) else {
                        continue;
                    };
                    for (b, y) in y.iter().enumerate().take(cols) {
                        if let Some(dst) = block_mut(dst, b * d * BLOCK) {
                            act(y.add(bias)).store(dst);
                            if silu {
                                Activation::Silu.apply_all(dst);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// F(2×2, 3×3) input transform: `store(ξ, v)` for the 16 values of
/// `Bᵀ·x·B`, `x(i, j)` the 4 × 4 inputs.
// `r` indexes the inner axis of `cols` (a transpose).
#[allow(clippy::needless_range_loop)]
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn input2<L: Lanes>(x: impl Fn(usize, usize) -> L, store: &mut impl FnMut(usize, L)) {
    // Bᵀ·x by columns, then ·B by rows. Arrays built by value, never
    // zeroed first: zeroed arrays of vectors that do not fit the registers
    // became memsets on the stack.
    // (Neither `array::from_fn` nor a closure per column: either may stay
    // a call outside the vector features' function, and every vector
    // operation in it a call too: 3× slower.)
    macro_rules! col {
        ($j:expr) => {
            in2([x(0, $j), x(1, $j), x(2, $j), x(3, $j)])
        };
    }
    let cols = [col!(0), col!(1), col!(2), col!(3)];
    for r in 0..4 {
        for (c, v) in in2([cols[0][r], cols[1][r], cols[2][r], cols[3][r]])
            .into_iter()
            .enumerate()
        {
            store(4 * r + c, v);
        }
    }
}

/// F(2×2, 3×3) output transform: `y = Aᵀ·m·A` (2 × 2 of `y`), `m(ξ)`
/// the 16 products.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn output2<L: Lanes>(m: impl Fn(usize) -> L) -> [[L; 2]; 2] {
    // (Written out: see `input2`.)
    macro_rules! col {
        ($j:expr) => {
            out2([m($j), m(4 + $j), m(8 + $j), m(12 + $j)])
        };
    }
    let cols = [col!(0), col!(1), col!(2), col!(3)];
    macro_rules! row {
        ($a:expr) => {
            out2([cols[0][$a], cols[1][$a], cols[2][$a], cols[3][$a]])
        };
    }
    [row!(0), row!(1)]
}

/// One axis of F(2×2, 3×3)'s input transform, `Bᵀ·d` for 4 values:
/// (a, b, c, d) → (a − c, b + c, c − b, b − d).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn in2<L: Lanes>(c: [L; 4]) -> [L; 4] {
    [c[0].sub(c[2]), c[1].add(c[2]), c[2].sub(c[1]), c[1].sub(c[3])]
}

/// One axis of F(2×2, 3×3)'s output transform, `Aᵀ·m` for 4 values:
/// (a, b, c, d) → (a + b + c, b − c − d).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn out2<L: Lanes>(c: [L; 4]) -> [L; 2] {
    [c[0].add(c[1]).add(c[2]), c[1].sub(c[2]).sub(c[3])]
}

/// One axis of F(4×4, 3×3)'s input transform, `Bᵀ·d` for 6 values.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn in4<L: Lanes>(d: [L; 6]) -> [L; 6] {
    let (four, five) = (L::splat(4.0), L::splat(-5.0));
    // d4 − 4·d2 and 4·d1 − d3 (v1, v2); d4 − d2 and 2·(d1 − d3) (v3, v4).
    let a = d[4].mul_add(L::splat(-4.0), d[2]);
    let b = L::zero().sub(d[3]).mul_add(four, d[1]);
    let c = d[4].sub(d[2]);
    let e = d[1].sub(d[3]);
    let e = e.add(e);
    [
        d[4].mul_add(five, d[2]).mul_add(four, d[0]),
        a.sub(b),
        a.add(b),
        c.sub(e),
        c.add(e),
        d[5].mul_add(five, d[3]).mul_add(four, d[1]),
    ]
}

/// F(4×4, 3×3) input transform: `store(ξ, v)` for the 36 values of
/// `Bᵀ·x·B`, `x(i, j)` the 6 × 6 inputs.
// `r` indexes the inner axis of `cols` (a transpose).
#[allow(clippy::needless_range_loop)]
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn input4<L: Lanes>(x: impl Fn(usize, usize) -> L, store: &mut impl FnMut(usize, L)) {
    // By value, never zeroed first (see `input2`).
    // (Written out: see `input2`.)
    macro_rules! col {
        ($j:expr) => {
            in4([x(0, $j), x(1, $j), x(2, $j), x(3, $j), x(4, $j), x(5, $j)])
        };
    }
    let cols = [col!(0), col!(1), col!(2), col!(3), col!(4), col!(5)];
    for r in 0..6 {
        let row = [
            cols[0][r], cols[1][r], cols[2][r], cols[3][r], cols[4][r], cols[5][r],
        ];
        for (c, v) in in4(row).into_iter().enumerate() {
            store(6 * r + c, v);
        }
    }
}

/// One axis of F(4×4, 3×3)'s output transform, `Aᵀ·m` for 6 values.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn out4<L: Lanes>(m: [L; 6]) -> [L; 4] {
    // m1 ± m2 and m3 ± m4.
    let (p12, m12) = (m[1].add(m[2]), m[1].sub(m[2]));
    let (p34, m34) = (m[3].add(m[4]), m[3].sub(m[4]));
    [
        m[0].add(p12).add(p34),
        m12.mul_add(L::splat(2.0), m34),
        p12.mul_add(L::splat(4.0), p34),
        m12.mul_add(L::splat(8.0), m34).add(m[5]),
    ]
}

/// F(4×4, 3×3) output transform: `y = Aᵀ·m·A` (4 × 4), `m(ξ)` the 36
/// products.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn output4<L: Lanes>(m: impl Fn(usize) -> L) -> [[L; 4]; 4] {
    // (Written out: see `input2`.)
    macro_rules! col {
        ($j:expr) => {
            out4([
                m($j),
                m(6 + $j),
                m(12 + $j),
                m(18 + $j),
                m(24 + $j),
                m(30 + $j),
            ])
        };
    }
    let cols = [col!(0), col!(1), col!(2), col!(3), col!(4), col!(5)];
    macro_rules! row {
        ($a:expr) => {
            out4([
                cols[0][$a],
                cols[1][$a],
                cols[2][$a],
                cols[3][$a],
                cols[4][$a],
                cols[5][$a],
            ])
        };
    }
    [row!(0), row!(1), row!(2), row!(3)]
}

/// The block of 16 values at `at` of `s`, if inside.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn block(s: &[f32], at: usize) -> Option<&V> {
    s.get(at..at.checked_add(BLOCK)?)?.try_into().ok()
}

/// [`block`], writable.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn block_mut(s: &mut [f32], at: usize) -> Option<&mut V> {
    s.get_mut(at..at.checked_add(BLOCK)?)?.try_into().ok()
}
