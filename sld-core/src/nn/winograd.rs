//! Winograd F(2×2, 3×3) convolutions over channel-blocked (NCHW16c)
//! tensors: 3×3 kernels at stride 1, any padding and dilation.
//!
//! Each tile of 2×2 outputs (`d` apart at dilation `d`) reads 4×4 inputs
//! (also `d` apart), transformed to 16 positions `ξ` (`V = Bᵀ·x·B`); at
//! each position the output channels are a 1×1 convolution of the input
//! channels (`M_ξ = U_ξ·V_ξ`, with `U = G·g·Gᵀ` packed at load), run by
//! the blocked 1×1 kernel ([`super::blocked`]); the outputs are
//! `Aᵀ·M·A`, plus the bias, then the activation. That is 16 products
//! per 4 outputs and channel pair instead of 36: 2.25× fewer.
//!
//! The transforms add and subtract only (`B`, `A` hold 0 and ±1; `G`'s
//! halves are applied to the weights once), so the result differs from
//! the direct kernel's by float rounding alone (relative 1e-6 on the
//! networks here: `tests/unit/winograd.rs` checks it against a direct
//! sum in f64).
//!
//! Tiles go in chunks whose transformed inputs and products stay in the
//! L2 cache (a part's own scratch, [`scratch_len`]). Threads split the
//! output rows in bands of `2d` (a band's tiles cover it exactly); every
//! output is computed by the same code whatever the split, so the result
//! is bit-identical for any thread count.

use core::marker::PhantomData;

use super::blocked::{at_level, split_with, Job, Part, Pointwise};
use super::gemm::MulAdd;
use super::pool::Par;
use super::simd::Lanes;
use crate::model::layout::{pointwise_group, Layout, BLOCK};
use crate::model::plan::ConvStep;
use crate::model::{Activation, Shape};

/// Transform positions per tile (4 × 4).
pub const POSITIONS: usize = 16;

/// Most tiles in one chunk.
const MAX_TILES: usize = 120;

/// Scratch a chunk may fill, in f32 (the transformed inputs and the
/// products: 384 KiB, within a 1 MiB L2 with the weights of one position).
const CHUNK_BUDGET: usize = 96 * 1024;

/// One block of channels of one pixel.
type V = [f32; BLOCK];

/// Whether convolution `c` (from `ci` to `co` channels) runs here: 3×3,
/// stride 1, one group, no fused residual, and at least 16 channels in and
/// out (fewer leave the 1×1 products too short to pay for the transforms).
pub fn eligible(c: &ConvStep, ci: usize, co: usize) -> bool {
    c.kernel == [3, 3]
        && c.stride == [1, 1]
        && c.groups == 1
        && c.residual.is_none()
        && c.dilation[0] == c.dilation[1]
        && ci.min(co) >= min_channels()
        && enabled()
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

/// The fewest channels (in and out) a Winograd convolution takes on this
/// CPU: below that the direct kernel measured as fast or faster
/// (BENCHMARKS.md, round ten).
fn min_channels() -> usize {
    if crate::nn::cpu::level() == crate::nn::cpu::Level::Avx512 {
        64
    } else {
        32
    }
}

/// Tiles per chunk for `ci` → `co` channels: as many as keep the chunk's
/// scratch within [`CHUNK_BUDGET`], a multiple of 6 (the 1×1 tile's
/// pixels), 6 to [`MAX_TILES`].
pub fn chunk_tiles(ci: usize, co: usize) -> usize {
    let per_tile = POSITIONS * (ci.div_ceil(BLOCK) + co.div_ceil(BLOCK)) * BLOCK;
    (CHUNK_BUDGET / per_tile.max(1) / 6 * 6).clamp(6, MAX_TILES)
}

/// Scratch one thread needs for `ci` → `co` channels, in f32.
pub fn scratch_len(ci: usize, co: usize) -> usize {
    POSITIONS * (ci.div_ceil(BLOCK) + co.div_ceil(BLOCK)) * BLOCK * chunk_tiles(ci, co)
}

/// Length of one position's packed weights (the 1×1 kernel's packing,
/// `[⌈co/G⌉, ci, G]`, `G` = [`pointwise_group`]).
fn position_len(ci: usize, co: usize) -> usize {
    co.div_ceil(pointwise_group()) * pointwise_group() * ci
}

/// Length of the packed weights: one 1×1 matrix per position.
pub fn packed_len(ci: usize, co: usize) -> usize {
    POSITIONS * position_len(ci, co)
}

/// Packs weights `w` (`[co, ci, 3, 3]`) as `U_ξ = G·g·Gᵀ` for the 16
/// positions `ξ = 4·r + c`, each in the 1×1 kernel's packing, into `dst`
/// ([`packed_len`]; padded output channels zero). Computed in f64.
pub(crate) fn pack(w: &[f32], co: usize, ci: usize, dst: &mut [f32]) {
    let group = pointwise_group();
    let plen = position_len(ci, co);
    // G: 4 × 3.
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    for o in 0..co {
        for i in 0..ci {
            let Some(g) = w.get((o * ci + i) * 9..(o * ci + i) * 9 + 9) else {
                return;
            };
            // t = G·g (4 × 3), u = t·Gᵀ (4 × 4).
            let mut t = [[0f64; 3]; 4];
            for (r, t) in t.iter_mut().enumerate() {
                for (c, t) in t.iter_mut().enumerate() {
                    *t = (0..3).map(|k| G[r][k] * g[k * 3 + c] as f64).sum();
                }
            }
            for (r, t) in t.iter().enumerate() {
                for (c, gc) in G.iter().enumerate() {
                    let u: f64 = (0..3).map(|k| t[k] * gc[k]).sum();
                    let at = (r * 4 + c) * plen + ((o / group) * ci + i) * group + o % group;
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
    /// Packed weights ([`pack`]).
    pub w: &'a [f32],
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
/// shapes need or the shapes are not a 3×3 stride-1 convolution's.
pub(crate) fn run<F: MulAdd>(
    op: &Winograd<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
    per: usize,
    par: Par<'_>,
) -> bool {
    let [ci, h, w] = op.in_shape;
    let [co, ho, wo] = op.out_shape;
    let d = op.st.dilation[0];
    let [pt, pl, pb, pr] = op.st.padding;
    // The output shape a 3×3 kernel at stride 1 gives.
    let fits = |n: usize, p0: usize, p1: usize, o: usize| (n + p0 + p1).checked_sub(2 * d) == Some(o);
    if op.st.kernel != [3, 3]
        || op.st.stride != [1, 1]
        || d == 0
        || op.st.dilation[1] != d
        || !fits(h, pt, pb, ho)
        || !fits(w, pl, pr, wo)
        || op.x.len() < ci.div_ceil(BLOCK) * BLOCK * h * w
        || op.w.len() < packed_len(ci, co)
        || op.bias.is_some_and(|b| b.len() < co)
        || per < scratch_len(ci, co)
        || ho == 0
        || wo == 0
    {
        return false;
    }
    let job = Job2::<F> {
        op,
        mul_add: PhantomData,
    };
    // Bands of 2d output rows (the last one may be short).
    let bands = ho.div_ceil(2 * d);
    split_with(
        co.div_ceil(BLOCK),
        (bands, 2 * d * wo, ho * wo),
        Layout::Blocked,
        co,
        out,
        None,
        (scratch, per),
        par,
        &|p| {
            at_level::<F, _>(&job, p);
            true
        },
    )
}

/// [`run`]'s work for one part, with the 1×1 products at level `F`.
struct Job2<'a, 'o, F> {
    op: &'a Winograd<'o>,
    mul_add: PhantomData<fn() -> F>,
}

impl<F: MulAdd> Job for Job2<'_, '_, F> {
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn run<L: Lanes>(&self, mut p: Part<'_>) {
        let op = self.op;
        let [ci, ..] = op.in_shape;
        let [co, ho, wo] = op.out_shape;
        let d = op.st.dilation[0];
        let (cbi, cbo) = (ci.div_ceil(BLOCK), co.div_ceil(BLOCK));
        let tiles = chunk_tiles(ci, co);
        let scratch = core::mem::take(&mut p.scratch);
        let (vs, ms) = scratch.split_at_mut((POSITIONS * cbi * BLOCK * tiles).min(scratch.len()));
        let Some(ms) = ms.get_mut(..POSITIONS * cbo * BLOCK * tiles) else {
            return;
        };
        // This part's output rows: whole bands.
        let (r0, r1) = (p.q0 / wo, p.q1.div_ceil(wo));
        let mut chunk = [(0usize, 0usize); MAX_TILES];
        let mut n = 0;
        let mut band = r0;
        while band < r1 {
            // Tile rows of this band: 2×2 outputs `d` apart from (oy, ox).
            for oy in band..(band + d).min(ho) {
                let mut x = 0;
                while x < wo {
                    for ox in x..(x + d).min(wo) {
                        if let Some(slot) = chunk.get_mut(n) {
                            *slot = (oy, ox);
                            n += 1;
                        }
                        if n == tiles {
                            self.chunk::<L>(&mut p, &chunk[..n], vs, ms);
                            n = 0;
                        }
                    }
                    x += 2 * d;
                }
            }
            band += 2 * d;
        }
        if n > 0 {
            self.chunk::<L>(&mut p, &chunk[..n], vs, ms);
        }
    }
}

impl<F: MulAdd> Job2<'_, '_, F> {
    /// Transforms, multiplies and writes the tiles at `at` (their first
    /// output's row and column), with `vs` and `ms` as scratch.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn chunk<L: Lanes>(&self, p: &mut Part<'_>, at: &[(usize, usize)], vs: &mut [f32], ms: &mut [f32]) {
        let op = self.op;
        let [ci, h, w] = op.in_shape;
        let co = op.out_shape[0];
        let d = op.st.dilation[0];
        let (pt, pl) = (op.st.padding[0] as isize, op.st.padding[1] as isize);
        let (cbi, cbo) = (ci.div_ceil(BLOCK), co.div_ceil(BLOCK));
        let tiles = chunk_tiles(ci, co);
        // Inputs: V_ξ = Bᵀ·x·B for every tile and channel block.
        for (k, &(oy, ox)) in at.iter().enumerate() {
            let (y0, x0) = (oy as isize - pt, ox as isize - pl);
            // Offsets of the 4 rows and 4 columns, and which are inside.
            let (mut rows, mut cols) = ([0usize; 4], [0usize; 4]);
            let (mut row_in, mut col_in) = ([false; 4], [false; 4]);
            for i in 0..4 {
                let (y, x) = (y0 + (i * d) as isize, x0 + (i * d) as isize);
                row_in[i] = y >= 0 && (y as usize) < h;
                col_in[i] = x >= 0 && (x as usize) < w;
                rows[i] = if row_in[i] { y as usize * w * BLOCK } else { 0 };
                cols[i] = if col_in[i] { x as usize * BLOCK } else { 0 };
            }
            let inside = row_in.iter().chain(&col_in).all(|b| *b);
            for cb in 0..cbi {
                let plane =
                    op.x.get(cb * h * w * BLOCK..(cb + 1) * h * w * BLOCK)
                        .unwrap_or(&[]);
                // The 4 × 4 inputs, zero outside.
                let mut x = [[L::zero(); 4]; 4];
                for i in 0..4 {
                    for j in 0..4 {
                        if inside || (row_in[i] && col_in[j]) {
                            if let Some(s) = block(plane, rows[i] + cols[j]) {
                                x[i][j] = L::load(s);
                            }
                        }
                    }
                }
                // t = Bᵀ·x (by columns), then v = t·B (by rows).
                let mut t = [[L::zero(); 4]; 4];
                for j in 0..4 {
                    t[0][j] = x[0][j].sub(x[2][j]);
                    t[1][j] = x[1][j].add(x[2][j]);
                    t[2][j] = x[2][j].sub(x[1][j]);
                    t[3][j] = x[1][j].sub(x[3][j]);
                }
                for (r, t) in t.iter().enumerate() {
                    let v = [t[0].sub(t[2]), t[1].add(t[2]), t[2].sub(t[1]), t[1].sub(t[3])];
                    for (c, v) in v.into_iter().enumerate() {
                        let at = (((r * 4 + c) * cbi + cb) * tiles + k) * BLOCK;
                        if let Some(d) = block_mut(vs, at) {
                            v.store(d);
                        }
                    }
                }
            }
        }
        // Products: one 1×1 convolution per position, this part's blocks.
        let plen = position_len(ci, co);
        for xi in 0..POSITIONS {
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
            Activation::Relu => self.outputs::<L>(p, at, ms, |v| v.relu()),
            Activation::Relu6 => self.outputs::<L>(p, at, ms, |v| v.relu6()),
            _ => self.outputs::<L>(p, at, ms, |v| v),
        }
    }

    /// Writes the outputs of the tiles at `at` from their products `ms`:
    /// `act(Aᵀ·M·A + bias)` (a SiLU after, on the stored values).
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn outputs<L: Lanes>(&self, p: &mut Part<'_>, at: &[(usize, usize)], ms: &[f32], act: impl Fn(L) -> L) {
        let op = self.op;
        let [ci, ..] = op.in_shape;
        let [co, ho, wo] = op.out_shape;
        let d = op.st.dilation[0];
        let cbo = co.div_ceil(BLOCK);
        let tiles = chunk_tiles(ci, co);
        let silu = op.st.activation == Activation::Silu;
        for (k, &(oy, ox)) in at.iter().enumerate() {
            // Both columns in one run when the second is inside.
            let (cols, run) = if ox + d < wo { (2, d + 1) } else { (1, 1) };
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
                let mut m = [L::zero(); POSITIONS];
                for (xi, m) in m.iter_mut().enumerate() {
                    if let Some(s) = block(ms, ((xi * cbo + ob) * tiles + k) * BLOCK) {
                        *m = L::load(s);
                    }
                }
                // s = Aᵀ·m (2 × 4), y = s·A (2 × 2).
                let mut s = [[L::zero(); 4]; 2];
                for j in 0..4 {
                    s[0][j] = m[j].add(m[4 + j]).add(m[8 + j]);
                    s[1][j] = m[4 + j].sub(m[8 + j]).sub(m[12 + j]);
                }
                for (a, s) in s.iter().enumerate() {
                    let oy = oy + a * d;
                    if oy >= ho {
                        continue;
                    }
                    let Some(dst) = p.out.run(ob, oy * wo + ox, run) else {
                        continue;
                    };
                    let y = [s[0].add(s[1]).add(s[2]), s[1].sub(s[2]).sub(s[3])];
                    for (b, y) in y.into_iter().enumerate().take(cols) {
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
