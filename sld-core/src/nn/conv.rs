//! Convolution kernels over `[C, H, W]` f32 tensors (batch 1).
//!
//! Four paths, picked per layer:
//! - 1×1 stride-1 convolutions are one GEMM with bias, a fused residual
//!   and the activation applied in its store;
//! - depthwise convolutions copy each channel once into scratch with its
//!   zero padding (split into stride phases), then sum every tap over
//!   contiguous runs, a block of output rows × columns at a time;
//! - other stride-1 convolutions are one GEMM that reads the unfolded rows
//!   `(c, ky, kx)` in place from a padded copy of the input (no im2col);
//! - everything else is im2col in 256-pixel chunks + one GEMM per group
//!   and chunk.

use super::gemm::{sgemm_rows, sgemm_rows_par, takes_few_rows, Epilogue, MulAdd, RowMap};
use super::pool::{Par, MAX_THREADS};
use crate::model::plan::{needs_im2col, ConvStep, IM2COL_CHUNK};
use crate::model::{Activation, Shape};

/// Output positions `o` with `o·s + a ∈ [0, n)`, as a half-open range.
#[inline]
fn valid_range(a: isize, s: usize, n: usize, out: usize) -> (usize, usize) {
    let s = s as isize;
    let lo = if a >= 0 { 0 } else { (-a + s - 1) / s };
    let hi_incl = (n as isize - 1 - a).div_euclid(s);
    let hi = (hi_incl + 1).clamp(0, out as isize);
    let lo = lo.clamp(0, hi);
    (lo as usize, hi as usize)
}

/// Runs one convolution; returns false when a buffer is too small (a
/// planning bug, reported rather than a panic).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
pub(crate) fn conv2d<F: MulAdd>(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> bool {
    let [ci, h, w] = in_shape;
    let [co, ho, wo] = out_shape;
    let hw_out = ho * wo;
    if input.len() < ci * h * w || out.len() < co * hw_out {
        return false;
    }
    let pointwise = !needs_im2col(st, ci) && st.groups == 1;
    if residual.is_some() && !pointwise {
        // The plan fuses residuals into 1×1 convolutions only.
        return false;
    }
    let out = &mut out[..co * hw_out];
    let [kh, kw] = st.kernel;
    let activation = st.activation;
    if pointwise {
        // 1×1: one GEMM with bias, residual and activation fused into its
        // store.
        return sgemm_rows_par(
            co,
            ci,
            hw_out,
            weight,
            input,
            &RowMap::dense(hw_out),
            out,
            hw_out,
            &Epilogue {
                accumulate: false,
                bias,
                residual,
                activation,
            },
            par,
        );
    }
    if !needs_im2col(st, ci) {
        return depthwise_par::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch, par);
    }
    if let Some(layout) = Implicit::new(st, in_shape, out_shape) {
        return conv_implicit(
            st, &layout, in_shape, out_shape, input, weight, bias, out, scratch, par,
        );
    }
    // im2col + one GEMM per group, bias and activation fused.
    let g = st.groups;
    let (cig, cog) = (ci / g, co / g);
    let rows = cig * kh * kw;
    let mut ok = true;
    for gi in 0..g {
        let x = &input[gi * cig * h * w..(gi + 1) * cig * h * w];
        let wg = weight.get(gi * cog * rows..(gi + 1) * cog * rows).unwrap_or(&[]);
        let bg = bias.and_then(|b| b.get(gi * cog..(gi + 1) * cog));
        let og = &mut out[gi * cog * hw_out..(gi + 1) * cog * hw_out];
        let epi = Epilogue {
            accumulate: false,
            bias: bg,
            residual: None,
            activation,
        };
        ok &= im2col_gemm::<F>(st, [cig, h, w], [cog, ho, wo], x, wg, &epi, og, scratch, par);
    }
    ok
}

/// One group of an im2col convolution: output pixels unfolded in chunks of
/// [`IM2COL_CHUNK`], each multiplied while it is in cache. With threads,
/// each takes a block of output rows (channels) and runs every chunk itself
/// in its own part of the scratch: one dispatch per convolution instead of
/// one per chunk (220 for a 640×352 stem, ~40 µs each), at the price of
/// every thread unfolding the same chunks. Each value comes from the same
/// GEMM code as with one thread: the same bits.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn im2col_gemm<F: MulAdd>(
    st: &ConvStep,
    in_shape: Shape,
    [cog, ho, wo]: Shape,
    x: &[f32],
    wg: &[f32],
    epi: &Epilogue<'_>,
    og: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> bool {
    let [cig, _, _] = in_shape;
    let rows = cig * st.kernel[0] * st.kernel[1];
    let hw_out = ho * wo;
    let serial = |r0: usize, r1: usize, og: &mut [f32], scratch: &mut [f32]| -> bool {
        let e = Epilogue {
            bias: epi.bias.and_then(|b| b.get(r0..r1)),
            ..*epi
        };
        let wr = wg.get(r0 * rows..r1 * rows).unwrap_or(&[]);
        let mut p0 = 0;
        let mut ok = true;
        while p0 < hw_out {
            let p1 = (p0 + IM2COL_CHUNK).min(hw_out);
            let nc = p1 - p0;
            let Some(cols) = scratch.get_mut(..rows * nc) else {
                return false;
            };
            im2col(st, in_shape, [ho, wo], x, (p0, p1), cols);
            ok &= sgemm_rows(
                r1 - r0,
                rows,
                nc,
                wr,
                cols,
                &RowMap::dense(nc),
                &mut og[p0..],
                hw_out,
                &e,
            );
            p0 = p1;
        }
        ok
    };
    let threads = par.threads().min(MAX_THREADS).min(cog.div_ceil(4)).max(1);
    let need = rows * IM2COL_CHUNK.min(hw_out);
    if threads <= 1 || scratch.len() / threads < need || og.len() < cog * hw_out {
        return serial(0, cog, og, scratch);
    }
    type Part<'o> = (usize, usize, &'o mut [f32], &'o mut [f32]);
    let mut parts: [Option<Part<'_>>; MAX_THREADS] = Default::default();
    let per = cog.div_ceil(threads);
    let scratch_part = scratch.len() / threads;
    let (mut outs, mut scr) = (&mut og[..cog * hw_out], scratch);
    let mut r0 = 0;
    for part in parts.iter_mut().take(threads) {
        if r0 >= cog {
            break;
        }
        let r1 = (r0 + per).min(cog);
        let (o, ot) = outs.split_at_mut((r1 - r0) * hw_out);
        let (s, st) = scr.split_at_mut(scratch_part);
        *part = Some((r0, r1, o, s));
        (outs, scr, r0) = (ot, st, r1);
    }
    let ok = core::sync::atomic::AtomicBool::new(true);
    par.for_parts(&mut parts, &|_, (r0, r1, o, s): Part<'_>| {
        if !serial(r0, r1, o, s) {
            ok.store(false, core::sync::atomic::Ordering::Relaxed);
        }
    });
    ok.load(core::sync::atomic::Ordering::Relaxed)
}

/// The kernel path [`conv2d`] takes for this step on an input of
/// `in_channels` channels: `"1x1 gemm"`, `"depthwise"`, `"implicit gemm"`
/// (stride 1, read in place) or `"im2col gemm"`; `"1x1 blocked"`,
/// `"direct blocked"`, `"winograd blocked"` and `"depthwise blocked"` for
/// the channel-blocked kernels.
pub fn path_name(st: &ConvStep, in_channels: usize) -> &'static str {
    if st.packed.is_some() {
        return if st.winograd > 0 {
            "winograd blocked"
        } else if st.groups == 1 && !needs_im2col(st, in_channels) {
            "1x1 blocked"
        } else if st.groups == 1 {
            "direct blocked"
        } else {
            "depthwise blocked"
        };
    }
    if !needs_im2col(st, in_channels) {
        return if st.groups == 1 { "1x1 gemm" } else { "depthwise" };
    }
    if st.groups == 1 && st.stride == [1, 1] && st.kernel[0] * st.kernel[1] <= 64 {
        "implicit gemm"
    } else {
        "im2col gemm"
    }
}

/// Output columns the implicit GEMM rounds its width up to, so no
/// column tile is partial (a multiple of every level's tile width except
/// aarch64's 12, whose last tile then takes the edge path).
const IMPLICIT_COLUMNS: usize = 64;

/// Scratch layout of a stride-1, ungrouped convolution run as one GEMM
/// over its padded input (no im2col): `plane` = the input with its zero
/// padding, `ci × ph × pw` (+ `slack` zeros), then the product `co × n`
/// with output rows `pw` apart.
struct Implicit {
    ph: usize,
    pw: usize,
    n: usize,
    slack: usize,
}

impl Implicit {
    /// The layout, or `None` when the step is not a stride-1 ungrouped
    /// convolution with at most 64 taps, or a size overflows.
    fn new(st: &ConvStep, [ci, _, _]: Shape, [co, ho, wo]: Shape) -> Option<Implicit> {
        let [kh, kw] = st.kernel;
        let [dh, dw] = st.dilation;
        if st.groups != 1 || st.stride != [1, 1] || kh * kw > 64 || kh == 0 || kw == 0 || ci == 0 || co == 0 {
            return None;
        }
        let ph = ho.checked_add((kh - 1).checked_mul(dh)?)?;
        let ext = (kw - 1).checked_mul(dw)?;
        let pw = wo.checked_add(ext)?;
        let n = ho.checked_mul(pw)?.checked_next_multiple_of(IMPLICIT_COLUMNS)?;
        let slack = n - ho * pw + ext;
        let layout = Implicit { ph, pw, n, slack };
        layout.scratch(ci, co)?;
        Some(layout)
    }

    /// Floats of the padded plane (with slack).
    fn plane(&self, ci: usize) -> Option<usize> {
        ci.checked_mul(self.ph)?
            .checked_mul(self.pw)?
            .checked_add(self.slack)
    }

    /// Floats of scratch: plane, then the product.
    fn scratch(&self, ci: usize, co: usize) -> Option<usize> {
        self.plane(ci)?.checked_add(co.checked_mul(self.n)?)
    }
}

/// Scratch (f32) [`conv2d`] needs for this step on one thread (saturating:
/// an overflow shows as a size the plan rejects).
pub(crate) fn scratch_len(st: &ConvStep, in_shape: Shape, out_shape: Shape) -> usize {
    let [ci, _, _] = in_shape;
    let [co, ho, wo] = out_shape;
    let [kh, kw] = st.kernel;
    if !needs_im2col(st, ci) {
        return match st.groups {
            // 1×1: the GEMM reads the input in place.
            1 => 0,
            // Depthwise: one padded input plane.
            _ => depthwise_scratch(st, [ho, wo]),
        };
    }
    if let Some(layout) = Implicit::new(st, in_shape, out_shape) {
        return layout.scratch(ci, co).unwrap_or(usize::MAX);
    }
    let rows = (ci / st.groups.max(1)).saturating_mul(kh).saturating_mul(kw);
    rows.saturating_mul(ho.saturating_mul(wo).min(IM2COL_CHUNK))
}

/// A stride-1 ungrouped convolution as one GEMM reading its unfolded rows
/// `(c, ky, kx)` in place from the padded input (MLAS's im2col-free
/// convolution, in our NCHW layout): the copy is the input's size, not
/// `kh·kw` times it, and the GEMM runs on full column tiles.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn conv_implicit(
    st: &ConvStep,
    layout: &Implicit,
    [ci, h, w]: Shape,
    [co, ho, wo]: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> bool {
    let [kh, kw] = st.kernel;
    let [dh, dw] = st.dilation;
    let [pt, pl, _, _] = st.padding;
    let (ph, pw, n) = (layout.ph, layout.pw, layout.n);
    let (Some(plane_len), Some(need)) = (layout.plane(ci), layout.scratch(ci, co)) else {
        return false;
    };
    if scratch.len() < need || input.len() < ci * h * w || out.len() < co * ho * wo {
        return false;
    }
    let (plane, product) = scratch[..need].split_at_mut(plane_len);
    // The padded input: zero rows above and below, zero columns left and
    // right, zero slack at the end; rows split over the threads.
    let (body, slack) = plane.split_at_mut(ci * ph * pw);
    slack.fill(0.0);
    let pad_rows = |r0: usize, dst: &mut [f32]| {
        for (r, drow) in (r0..).zip(dst.chunks_exact_mut(pw)) {
            let (c, py) = (r / ph, r % ph);
            let iy = py.wrapping_sub(pt);
            if iy >= h {
                drow.fill(0.0);
                continue;
            }
            let x = &input[c * h * w..(c + 1) * h * w];
            let lo = pl.min(pw);
            let len = w.min(pw - lo);
            drow[..lo].fill(0.0);
            drow[lo..lo + len].copy_from_slice(&x[iy * w..iy * w + len]);
            drow[lo + len..].fill(0.0);
        }
    };
    let threads = par.threads().min(MAX_THREADS).min(ci * ph / 16).max(1);
    if threads == 1 {
        pad_rows(0, body);
    } else {
        let mut parts: [Option<(usize, &mut [f32])>; MAX_THREADS] = Default::default();
        let mut rest = body;
        let mut r0 = 0;
        for (t, part) in parts.iter_mut().take(threads).enumerate() {
            let r1 = (t + 1) * ci * ph / threads;
            let (mine, tail) = rest.split_at_mut((r1 - r0) * pw);
            *part = Some((r0, mine));
            (rest, r0) = (tail, r1);
        }
        par.for_parts(&mut parts, &|_, (r0, dst)| pad_rows(r0, dst));
    }
    let mut taps = [0usize; 64];
    for ky in 0..kh {
        for kx in 0..kw {
            taps[ky * kw + kx] = ky * dh * pw + kx * dw;
        }
    }
    let rows = RowMap::taps(ph * pw, &taps[..kh * kw]);
    let epi = Epilogue {
        accumulate: false,
        bias,
        residual: None,
        activation: st.activation,
    };
    let threads = par.threads().min(MAX_THREADS).min(n / IMPLICIT_COLUMNS).max(1);
    if threads == 1 && takes_few_rows(co, ci * kh * kw) {
        // Few channels in and out (XFeat's 1 → 4 channel layer at full
        // resolution): one product per output row, written in place. The
        // product matrix and its copy were most of the layer's memory
        // traffic: with them, 0.90 ms at 480×264 (AVX-512), without 0.48.
        for y in 0..ho {
            let (Some(b), Some(c)) = (plane.get(y * pw..), out.get_mut(y * wo..)) else {
                return false;
            };
            if !sgemm_rows(co, ci * kh * kw, wo, weight, b, &rows, c, ho * wo, &epi) {
                return false;
            }
        }
        return true;
    }
    if co < COLUMN_SPLIT_BELOW && threads > 1 {
        return implicit_by_columns(
            (co, ci * kh * kw, n),
            (ho, wo, pw),
            weight,
            plane,
            &rows,
            product,
            out,
            &epi,
            threads,
            par,
        );
    }
    if !sgemm_rows_par(co, ci * kh * kw, n, weight, plane, &rows, product, n, &epi, par) {
        return false;
    }
    // Keep the `wo` real columns of each `pw`-wide output row.
    for (o, p) in out[..co * ho * wo]
        .chunks_exact_mut(ho * wo)
        .zip(product.chunks_exact(n))
    {
        for (orow, prow) in o.chunks_exact_mut(wo).zip(p.chunks_exact(pw)) {
            orow.copy_from_slice(&prow[..wo]);
        }
    }
    true
}

/// Output channels below which the implicit GEMM splits its columns (the
/// output pixels) over the threads instead of its rows (the channels): a
/// 1 → 4 or 8 → 8 channel layer has too few rows to split, and ran on one
/// thread.
const COLUMN_SPLIT_BELOW: usize = 16;

/// The implicit GEMM `C[m×n] = A[m×k]·B[k×n]` with its `n` columns (the
/// `pw`-wide padded output rows, flattened) split over `threads`: thread
/// `t` multiplies columns `n0..n1` (multiples of [`IMPLICIT_COLUMNS`], so
/// every tile is whole) into its own `m × (n1 − n0)` piece of `product`,
/// then copies the real output pixels among them into `out` (`m × ho·wo`,
/// one contiguous run per channel). Each column's sums are the same code
/// in the same order as unsplit: the same bits.
#[allow(clippy::too_many_arguments)]
fn implicit_by_columns(
    (m, k, n): (usize, usize, usize),
    (ho, wo, pw): (usize, usize, usize),
    a: &[f32],
    plane: &[f32],
    rows: &RowMap<'_>,
    product: &mut [f32],
    out: &mut [f32],
    epi: &Epilogue<'_>,
    threads: usize,
    par: Par<'_>,
) -> bool {
    // Output index (within a channel) of padded position `q`.
    let at = |q: usize| (q / pw).min(ho) * wo + if q / pw < ho { (q % pw).min(wo) } else { 0 };
    if m >= COLUMN_SPLIT_BELOW || out.len() < m * ho * wo || product.len() < m * n {
        return false;
    }
    let tiles = n / IMPLICIT_COLUMNS;
    type Part<'p> = (usize, usize, &'p mut [f32], [&'p mut [f32]; COLUMN_SPLIT_BELOW]);
    let mut parts: [Option<Part<'_>>; MAX_THREADS] = Default::default();
    // Channel runs, each cut at every thread's first pixel.
    let mut runs: [&mut [f32]; COLUMN_SPLIT_BELOW] = Default::default();
    for (r, o) in runs.iter_mut().zip(out[..m * ho * wo].chunks_exact_mut(ho * wo)) {
        *r = o;
    }
    let mut prod = &mut product[..m * n];
    let mut n0 = 0;
    for (t, part) in parts.iter_mut().take(threads).enumerate() {
        let n1 = (t + 1) * tiles / threads * IMPLICIT_COLUMNS;
        let (mine, tail) = prod.split_at_mut(m * (n1 - n0));
        prod = tail;
        let mut outs: [&mut [f32]; COLUMN_SPLIT_BELOW] = Default::default();
        for (o, r) in outs.iter_mut().zip(runs.iter_mut()).take(m) {
            let (head, rest) = core::mem::take(r).split_at_mut(at(n1) - at(n0));
            *o = head;
            *r = rest;
        }
        *part = Some((n0, n1, mine, outs));
        n0 = n1;
    }
    let ok = core::sync::atomic::AtomicBool::new(true);
    par.for_parts(&mut parts, &|_, (n0, n1, c, outs): Part<'_>| {
        let nc = n1 - n0;
        let Some(b) = plane.get(n0..) else {
            ok.store(false, core::sync::atomic::Ordering::Relaxed);
            return;
        };
        if !sgemm_rows(m, k, nc, a, b, rows, c, nc, epi) {
            ok.store(false, core::sync::atomic::Ordering::Relaxed);
            return;
        }
        // The real pixels of padded positions n0..n1, in order.
        for (o, crow) in outs.into_iter().zip(c.chunks_exact(nc)) {
            let mut d = 0;
            let mut q = n0;
            while q < n1 && q / pw < ho {
                let (y, x) = (q / pw, q % pw);
                let end = n1.min((y + 1) * pw);
                if x < wo {
                    let len = (wo - x).min(end - q);
                    o[d..d + len].copy_from_slice(&crow[q - n0..q - n0 + len]);
                    d += len;
                }
                q = end;
            }
        }
    });
    ok.load(core::sync::atomic::Ordering::Relaxed)
}

/// Adds the bias and applies the activation to one row (activation
/// matched once per row so the loop vectorises).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn finish_row(vs: &mut [f32], b: f32, act: Activation) {
    match act {
        Activation::None => vs.iter_mut().for_each(|v| *v += b),
        Activation::Relu => vs.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
        Activation::Relu6 => vs.iter_mut().for_each(|v| *v = (*v + b).clamp(0.0, 6.0)),
        Activation::Silu => vs.iter_mut().for_each(|v| *v = Activation::Silu.apply(*v + b)),
    }
}

/// [`depthwise`] with the channels split over `par`'s threads (each with
/// its own part of the scratch); channels are independent, so the result
/// is bit-identical to one thread.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
#[allow(clippy::too_many_arguments)]
fn depthwise_par<F: MulAdd>(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> bool {
    let [c, h, w] = in_shape;
    let [_, ho, wo] = out_shape;
    let [kh, kw] = st.kernel;
    let threads = par.threads().min(MAX_THREADS).min(c);
    let per = c.div_ceil(threads.max(1));
    let need_scratch = depthwise_scratch(st, [ho, wo]);
    let serial = threads <= 1
        || scratch.len() / threads < need_scratch
        || input.len() < c * h * w
        || out.len() < c * ho * wo
        || weight.len() < c * kh * kw
        || bias.is_some_and(|b| b.len() < c);
    if serial {
        return depthwise::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch);
    }
    type Part<'x> = (usize, usize, &'x mut [f32], &'x mut [f32]);
    let mut parts: [Option<Part<'_>>; MAX_THREADS] = Default::default();
    let (mut outs, mut scr) = (&mut out[..c * ho * wo], scratch);
    let scratch_part = scr.len() / threads;
    let mut c0 = 0;
    for part in parts.iter_mut().take(threads) {
        if c0 >= c {
            break;
        }
        let c1 = (c0 + per).min(c);
        let (o, ot) = outs.split_at_mut((c1 - c0) * ho * wo);
        let (s, stail) = scr.split_at_mut(scratch_part);
        *part = Some((c0, c1, o, s));
        (outs, scr, c0) = (ot, stail, c1);
    }
    let ok = core::sync::atomic::AtomicBool::new(true);
    par.for_parts(&mut parts, &|_, (c0, c1, o, s): Part<'_>| {
        let n = c1 - c0;
        let good = depthwise_at_level::<F>(
            st,
            [n, h, w],
            [n, ho, wo],
            &input[c0 * h * w..c1 * h * w],
            &weight[c0 * kh * kw..c1 * kh * kw],
            bias.map(|b| &b[c0..c1]),
            o,
            s,
        );
        if !good {
            ok.store(false, core::sync::atomic::Ordering::Relaxed);
        }
    });
    ok.load(core::sync::atomic::Ordering::Relaxed)
}

/// [`depthwise`] compiled for the CPU's kernel level: a worker thread's
/// closure is not inside the interpreter's `#[target_feature]` copy, so it
/// enters one here (else `F::mul_add` would be a libm call).
#[allow(clippy::too_many_arguments)]
fn depthwise_at_level<F: MulAdd>(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        use super::cpu::{level, Level};
        match level() {
            // SAFETY: `level()` is Avx512 only when AVX-512F (+ AVX2/FMA)
            // was detected; the body is safe code.
            #[allow(unsafe_code)]
            Level::Avx512 => {
                return unsafe {
                    depthwise_avx512(st, in_shape, out_shape, input, weight, bias, out, scratch)
                }
            }
            // SAFETY: `level()` is Avx2 only when AVX2 and FMA were detected.
            #[allow(unsafe_code)]
            Level::Avx2 => {
                return unsafe { depthwise_avx2(st, in_shape, out_shape, input, weight, bias, out, scratch) }
            }
            // The interpreter runs `run_steps::<Plain>` at this level: `F`
            // is `Plain`. Naming the type at each level compiles three
            // copies of the kernel, not six (`F` × level, half never run).
            Level::Portable => {
                return depthwise::<super::gemm::Plain>(
                    st, in_shape, out_shape, input, weight, bias, out, scratch,
                )
            }
        }
    }
    #[allow(unreachable_code)]
    depthwise::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn depthwise_avx512(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    depthwise::<super::gemm::Fused>(st, in_shape, out_shape, input, weight, bias, out, scratch)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn depthwise_avx2(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    depthwise::<super::gemm::Fused>(st, in_shape, out_shape, input, weight, bias, out, scratch)
}

/// Most taps (`kh·kw`) a depthwise kernel may have (8×8).
const MAX_TAPS: usize = 64;

/// Where a depthwise convolution's padded input plane lives in scratch:
/// rows of `width` floats, each holding the padded row's columns split
/// into `stride` phases (columns `q, q + s, q + 2s, …` for phase `q`), so
/// every tap of an output row reads one contiguous run.
struct PaddedPlane {
    rows: usize,
    width: usize,
    /// Start of each phase within a row (`stride ≤ 64`).
    phase: [usize; 64],
}

impl PaddedPlane {
    /// The plane a depthwise step with these shapes reads; `None` for a
    /// stride, dilation or kernel outside what the plan accepts.
    fn new(st: &ConvStep, out_hw: [usize; 2]) -> Option<PaddedPlane> {
        let [ho, wo] = out_hw;
        let [kh, kw] = st.kernel;
        let [sh, sw] = st.stride;
        let [dh, dw] = st.dilation;
        if sw == 0 || sw > 64 || ho == 0 || wo == 0 || kh == 0 || kw == 0 {
            return None;
        }
        let rows = (ho - 1).checked_mul(sh)?.checked_add((kh - 1).checked_mul(dh)?)? + 1;
        let width = (wo - 1).checked_mul(sw)?.checked_add((kw - 1).checked_mul(dw)?)? + 1;
        let mut phase = [0usize; 64];
        for q in 1..sw {
            // Phase q - 1 holds the columns ≡ q - 1 (mod sw).
            phase[q] = phase[q - 1] + (width + sw - q).div_euclid(sw);
        }
        Some(PaddedPlane { rows, width, phase })
    }

    /// Scratch floats the plane needs.
    fn len(&self) -> Option<usize> {
        self.rows.checked_mul(self.width)
    }

    /// Offset of padded column `px` within a stored row.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn column(&self, px: usize, sw: usize) -> usize {
        self.phase[px % sw] + px / sw
    }
}

/// Scratch (f32) a depthwise step needs per thread: its padded input plane.
pub(crate) fn depthwise_scratch(st: &ConvStep, out_hw: [usize; 2]) -> usize {
    PaddedPlane::new(st, out_hw)
        .and_then(|p| p.len())
        .unwrap_or(usize::MAX)
}

/// Depthwise convolution, one channel at a time: the channel's input is
/// first copied into scratch with its zero padding (and split into stride
/// phases), so every output row is `Σ_taps w·(contiguous run)` with no
/// border cases; outputs go in blocks held in registers across all taps,
/// bias and activation applied before the single store.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
#[allow(clippy::too_many_arguments)]
fn depthwise<F: MulAdd>(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    // Output rows × columns per block, two partial sums each: 8 independent
    // FMA chains at the level's vector width. Measured on one AVX-512 host
    // (bench/layer_ort.py): at AVX-512, 2 × 32 ran 20–30 % faster than
    // 1 × 64 or 4 × 16; at AVX2, 1 × 32 ran 1.4–3× faster than 2 × 16, 4 × 8
    // or 1 × 16. NEON and SSE take the same shape at their width, unmeasured.
    use super::cpu::{level, Level};
    match level() {
        Level::Avx512 => {
            depthwise_blocks::<F, 2, 32>(st, in_shape, out_shape, input, weight, bias, out, scratch)
        }
        Level::Avx2 => {
            depthwise_blocks::<F, 1, 32>(st, in_shape, out_shape, input, weight, bias, out, scratch)
        }
        Level::Portable if cfg!(target_arch = "aarch64") => {
            depthwise_blocks::<F, 2, 16>(st, in_shape, out_shape, input, weight, bias, out, scratch)
        }
        Level::Portable => {
            depthwise_blocks::<F, 2, 8>(st, in_shape, out_shape, input, weight, bias, out, scratch)
        }
    }
}

#[cfg_attr(not(sld_no_forced_inline), inline(always))]
#[allow(clippy::too_many_arguments)]
fn depthwise_blocks<F: MulAdd, const R: usize, const B: usize>(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    let [c, h, w] = in_shape;
    let [_, ho, wo] = out_shape;
    let [kh, kw] = st.kernel;
    let [sh, sw] = st.stride;
    let [dh, dw] = st.dilation;
    let [pt, pl, _, _] = st.padding;
    let taps = kh * kw;
    let Some(plane) = PaddedPlane::new(st, [ho, wo]) else {
        return false;
    };
    let Some(plen) = plane.len() else {
        return false;
    };
    if taps > MAX_TAPS
        || weight.len() < c * taps
        || input.len() < c * h * w
        || out.len() < c * ho * wo
        || scratch.len() < plen
    {
        return false;
    }
    let pw = plane.width;
    // Offset of each tap's run relative to the output row's first padded row.
    let mut toff = [0usize; MAX_TAPS];
    for ky in 0..kh {
        for kx in 0..kw {
            toff[ky * kw + kx] = ky * dh * pw + plane.column(kx * dw, sw);
        }
    }
    let toff = &toff[..taps];
    let padded = &mut scratch[..plen];
    for ch in 0..c {
        let x = &input[ch * h * w..(ch + 1) * h * w];
        fill_padded(&plane, x, [h, w], [pt, pl], sw, padded);
        let mut wk = [0f32; MAX_TAPS];
        wk[..taps].copy_from_slice(&weight[ch * taps..(ch + 1) * taps]);
        let wk = &wk[..taps];
        let b = bias.and_then(|b| b.get(ch)).copied().unwrap_or(0.0);
        let o = &mut out[ch * ho * wo..(ch + 1) * ho * wo];
        let rows = Rows {
            padded,
            step: sh * pw,
            wo,
        };
        // Two output rows at a time, the last odd one alone.
        let mut oy = 0;
        while oy + R <= ho {
            depthwise_row::<F, R, B>(&rows, oy, toff, wk, b, st.activation, o);
            oy += R;
        }
        while oy < ho {
            depthwise_row::<F, 1, B>(&rows, oy, toff, wk, b, st.activation, o);
            oy += 1;
        }
    }
    true
}

/// A channel's padded plane and how output rows map onto it.
struct Rows<'p> {
    padded: &'p [f32],
    /// Floats between the first padded rows of consecutive output rows.
    step: usize,
    /// Output row width.
    wo: usize,
}

/// Output rows `oy..oy+R` of one channel: full blocks of `B` columns, then
/// one block ending at the row's end (it recomputes a few values
/// bit-identically), single columns only for rows narrower than a block.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn depthwise_row<F: MulAdd, const R: usize, const B: usize>(
    rows: &Rows<'_>,
    oy: usize,
    toff: &[usize],
    wk: &[f32],
    b: f32,
    act: Activation,
    o: &mut [f32],
) {
    let wo = rows.wo;
    let mut x0 = 0;
    while x0 + B <= wo {
        depthwise_run::<F, R, B>(rows, oy, toff, wk, b, act, x0, o);
        x0 += B;
    }
    if x0 < wo && wo >= B {
        depthwise_run::<F, R, B>(rows, oy, toff, wk, b, act, wo - B, o);
    } else {
        for x in x0..wo {
            depthwise_run::<F, R, 1>(rows, oy, toff, wk, b, act, x, o);
        }
    }
}

/// Copies one channel into its padded, phase-split plane (zeros outside
/// the input).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn fill_padded(
    plane: &PaddedPlane,
    x: &[f32],
    [h, w]: [usize; 2],
    [pt, pl]: [usize; 2],
    sw: usize,
    dst: &mut [f32],
) {
    let pw = plane.width;
    for (py, drow) in dst.chunks_exact_mut(pw).take(plane.rows).enumerate() {
        let iy = py.wrapping_sub(pt);
        if iy >= h {
            drow.fill(0.0);
            continue;
        }
        let src = &x[iy * w..(iy + 1) * w];
        if sw == 1 {
            // Left pad, the row, right pad.
            let lo = pl.min(pw);
            drow[..lo].fill(0.0);
            let n = w.min(pw - lo);
            drow[lo..lo + n].copy_from_slice(&src[..n]);
            drow[lo + n..].fill(0.0);
        } else {
            for q in 0..sw {
                let start = plane.phase[q];
                let end = if q + 1 < sw { plane.phase[q + 1] } else { pw };
                let dst = &mut drow[start..end];
                // Entry i holds input column q + i·sw − pl: zeros before
                // column 0 and after column w − 1, a strided copy between.
                let first = pl.saturating_sub(q).div_ceil(sw).min(dst.len());
                let ix0 = (q + first * sw).saturating_sub(pl);
                let count = if ix0 < w { (w - ix0).div_ceil(sw) } else { 0 }.min(dst.len() - first);
                dst[..first].fill(0.0);
                for (d, v) in dst[first..first + count]
                    .iter_mut()
                    .zip(src[ix0.min(w)..].iter().step_by(sw))
                {
                    *d = *v;
                }
                dst[first + count..].fill(0.0);
            }
        }
    }
}

/// `out[oy + r][x0..x0+B] = act(b + Σ_t wk[t]·padded[(oy + r)·step +
/// toff[t] + x0 ..][..B])` for `r < R`, the taps summed in two
/// interleaved partial sums (even and odd taps) so the FMA chains overlap.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
#[allow(clippy::too_many_arguments)]
fn depthwise_run<F: MulAdd, const R: usize, const B: usize>(
    rows: &Rows<'_>,
    oy: usize,
    toff: &[usize],
    wk: &[f32],
    b: f32,
    act: Activation,
    x0: usize,
    out: &mut [f32],
) {
    let mut even = [[0f32; B]; R];
    let mut odd = [[0f32; B]; R];
    let base = oy * rows.step + x0;
    let run = |o: usize, r: usize| {
        rows.padded
            .get(base + r * rows.step + o..base + r * rows.step + o + B)
    };
    for (o, w) in toff.chunks_exact(2).zip(wk.chunks_exact(2)) {
        for r in 0..R {
            let (Some(r0), Some(r1)) = (run(o[0], r), run(o[1], r)) else {
                return;
            };
            for j in 0..B {
                even[r][j] = F::mul_add(w[0], r0[j], even[r][j]);
                odd[r][j] = F::mul_add(w[1], r1[j], odd[r][j]);
            }
        }
    }
    if let (Some(&o), Some(&w)) = (
        toff.chunks_exact(2).remainder().first(),
        wk.chunks_exact(2).remainder().first(),
    ) {
        for (r, acc) in even.iter_mut().enumerate() {
            let Some(r0) = run(o, r) else {
                return;
            };
            for j in 0..B {
                acc[j] = F::mul_add(w, r0[j], acc[j]);
            }
        }
    }
    for r in 0..R {
        let at = (oy + r) * rows.wo + x0;
        let Some(dst) = out.get_mut(at..at + B) else {
            return;
        };
        for j in 0..B {
            dst[j] = even[r][j] + odd[r][j];
        }
        finish_row(dst, b, act);
    }
}

/// Unfolds `[C, H, W]` into rows `(c, ky, kx)` × columns `(oy, ox)`.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn im2col(
    st: &ConvStep,
    in_shape: Shape,
    out_hw: [usize; 2],
    input: &[f32],
    pixels: (usize, usize),
    cols: &mut [f32],
) {
    let [c, h, w] = in_shape;
    let [_, wo] = out_hw;
    let [kh, kw] = st.kernel;
    let [sh, sw] = st.stride;
    let [dh, dw] = st.dilation;
    let [pt, pl, _, _] = st.padding;
    let (p0, p1) = pixels;
    let nc = p1 - p0;
    let mut row = 0;
    for ch in 0..c {
        let x = &input[ch * h * w..(ch + 1) * h * w];
        for ky in 0..kh {
            for kx in 0..kw {
                let ax = (kx * dw) as isize - pl as isize;
                let (ox0, ox1) = valid_range(ax, sw, w, wo);
                let dst = &mut cols[row * nc..(row + 1) * nc];
                // Walk the chunk one output row segment at a time.
                let mut p = p0;
                while p < p1 {
                    let (oy, ox_a) = (p / wo, p % wo);
                    let ox_b = wo.min(ox_a + (p1 - p));
                    let seg = &mut dst[p - p0..p - p0 + (ox_b - ox_a)];
                    let iy = (oy * sh + ky * dh) as isize - pt as isize;
                    if iy < 0 || iy >= h as isize {
                        seg.fill(0.0);
                    } else {
                        let src = &x[iy as usize * w..(iy as usize + 1) * w];
                        // Valid columns copy, the rest is zero padding.
                        let (va, vb) = (ox0.clamp(ox_a, ox_b), ox1.clamp(ox_a, ox_b));
                        seg[..va - ox_a].fill(0.0);
                        seg[vb - ox_a..].fill(0.0);
                        if va < vb {
                            let i0 = ((va * sw) as isize + ax) as usize;
                            let d = &mut seg[va - ox_a..vb - ox_a];
                            if sw == 1 {
                                d.copy_from_slice(&src[i0..i0 + (vb - va)]);
                            } else {
                                for (dv, sv) in d.iter_mut().zip(src[i0..].iter().step_by(sw)) {
                                    *dv = *sv;
                                }
                            }
                        }
                    }
                    p += ox_b - ox_a;
                }
                row += 1;
            }
        }
    }
}
