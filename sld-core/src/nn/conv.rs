//! Convolution kernels over `[C, H, W]` f32 tensors (batch 1).
//!
//! Three paths, picked per layer: 1×1 stride-1 convolutions are one GEMM
//! with bias and activation fused; depthwise convolutions are direct: per
//! output row and kernel column, all kernel rows are summed in one
//! vectorised pass (stride-2 inputs de-interleaved into even/odd columns
//! first so every read is contiguous); everything else is im2col in
//! 256-pixel chunks + one GEMM per group and chunk.

use super::gemm::{sgemm_strided_par, Epilogue, MulAdd};
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
#[inline(always)]
pub(crate) fn conv2d<F: MulAdd>(
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
    let [ci, h, w] = in_shape;
    let [co, ho, wo] = out_shape;
    let hw_out = ho * wo;
    if input.len() < ci * h * w || out.len() < co * hw_out {
        return false;
    }
    let out = &mut out[..co * hw_out];
    let [kh, kw] = st.kernel;
    let activation = st.activation;
    if !needs_im2col(st, ci) && st.groups == 1 {
        // 1×1: one GEMM with bias and activation fused into its store.
        return sgemm_strided_par(
            co,
            ci,
            hw_out,
            weight,
            input,
            out,
            hw_out,
            &Epilogue {
                accumulate: false,
                bias,
                activation,
            },
            par,
        );
    }
    if !needs_im2col(st, ci) {
        return depthwise_par::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch, par);
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
            activation,
        };
        // Unfold a chunk of output pixels, multiply it while it is in cache.
        let mut p0 = 0;
        while p0 < hw_out {
            let p1 = (p0 + IM2COL_CHUNK).min(hw_out);
            let nc = p1 - p0;
            let Some(cols) = scratch.get_mut(..rows * nc) else {
                return false;
            };
            im2col(st, [cig, h, w], [ho, wo], x, (p0, p1), cols);
            ok &= sgemm_strided_par(cog, rows, nc, wg, cols, &mut og[p0..], hw_out, &epi, par);
            p0 = p1;
        }
    }
    ok
}

/// Adds the bias and applies the activation to one row (activation
/// matched once per row so the loop vectorises).
#[inline(always)]
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
#[inline(always)]
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
    let need_scratch = if st.stride[1] == 2 { h * w } else { 0 };
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
                    depthwise_avx512::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch)
                }
            }
            // SAFETY: `level()` is Avx2 only when AVX2 and FMA were detected.
            #[allow(unsafe_code)]
            Level::Avx2 => {
                return unsafe {
                    depthwise_avx2::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch)
                }
            }
            Level::Portable => {}
        }
    }
    depthwise::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn depthwise_avx512<F: MulAdd>(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    depthwise::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn depthwise_avx2<F: MulAdd>(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    depthwise::<F>(st, in_shape, out_shape, input, weight, bias, out, scratch)
}

#[inline(always)]
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
    let [c, h, w] = in_shape;
    let [_, ho, wo] = out_shape;
    let [kh, kw] = st.kernel;
    let [sh, sw] = st.stride;
    let [dh, dw] = st.dilation;
    let [pt, pl, _, _] = st.padding;
    if weight.len() < c * kh * kw {
        return false;
    }
    // Per output row and kernel column, all kernel rows are summed in one
    // pass: the output row is read and written once per kernel column
    // instead of once per tap (the kernel is memory-bound otherwise).
    const MAX_K: usize = 8;
    if kh > MAX_K {
        return false;
    }
    if kw > MAX_K {
        return false;
    }
    // Column ranges per kernel column do not depend on the row or channel.
    let mut cols = [(0usize, 0usize, 0usize); MAX_K];
    for (kx, col) in cols.iter_mut().enumerate().take(kw) {
        let ax = (kx * dw) as isize - pl as isize;
        let (ox0, ox1) = valid_range(ax, sw, w, wo);
        let ix0 = if ox0 < ox1 {
            ((ox0 * sw) as isize + ax) as usize
        } else {
            0
        };
        *col = (ox0, ox1, ix0);
    }
    // A kernel column whose valid range is the whole output row, if any
    // (the centre column with "SAME" padding).
    let full_kx = (0..kw).find(|&kx| cols[kx].0 == 0 && cols[kx].1 == wo);
    // Stride 2 across: each input row is de-interleaved into its even then
    // odd columns, so every tap reads a contiguous run.
    let half = w.div_ceil(2);
    let deint = sw == 2;
    if deint && scratch.len() < h * w {
        return false;
    }
    for ch in 0..c {
        let mut x = &input[ch * h * w..(ch + 1) * h * w];
        if deint {
            let de = &mut scratch[..h * w];
            for (src, dst) in x.chunks_exact(w).zip(de.chunks_exact_mut(w)) {
                let (even, odd) = dst.split_at_mut(half);
                for (d, s) in even.iter_mut().zip(src.iter().step_by(2)) {
                    *d = *s;
                }
                for (d, s) in odd.iter_mut().zip(src.iter().skip(1).step_by(2)) {
                    *d = *s;
                }
            }
            x = &scratch[..h * w];
        }
        let o = &mut out[ch * ho * wo..(ch + 1) * ho * wo];
        if full_kx.is_none() {
            o.fill(0.0);
        }
        let wk = &weight[ch * kh * kw..(ch + 1) * kh * kw];
        let b = bias.and_then(|b| b.get(ch)).copied().unwrap_or(0.0);
        for (oy, orow_full) in o.chunks_exact_mut(wo).enumerate() {
            // The input rows this output row reads (once per row).
            let mut rows_full: [&[f32]; MAX_K] = [&[]; MAX_K];
            let mut kys = [0usize; MAX_K];
            let mut n = 0;
            for ky in 0..kh {
                let iy = (oy * sh + ky * dh) as isize - pt as isize;
                if iy >= 0 && (iy as usize) < h {
                    rows_full[n] = &x[iy as usize * w..(iy as usize + 1) * w];
                    kys[n] = ky;
                    n += 1;
                }
            }
            // The kernel column covering the whole row goes first and
            // assigns (no zero fill); the others accumulate.
            let order = full_kx.into_iter().chain((0..kw).filter(|&k| Some(k) != full_kx));
            for kx in order {
                let (ox0, ox1, ix0) = cols[kx];
                if ox0 >= ox1 {
                    continue;
                }
                let assign = Some(kx) == full_kx;
                let len = ox1 - ox0;
                let mut rows: [&[f32]; MAX_K] = [&[]; MAX_K];
                let mut ws = [0f32; MAX_K];
                // Where this kernel column's first input lies in the row as
                // stored (de-interleaved rows: parity half, then index / 2).
                let start = if deint { (ix0 % 2) * half + ix0 / 2 } else { ix0 };
                for r in 0..n {
                    rows[r] = &rows_full[r][start..];
                    ws[r] = wk[kys[r] * kw + kx];
                }
                let orow = &mut orow_full[ox0..ox1];
                if sw == 1 || deint {
                    accumulate_rows::<F>(orow, &rows[..n], &ws[..n], len, assign);
                } else {
                    if assign {
                        orow.fill(0.0);
                    }
                    for (r, wv) in rows[..n].iter().zip(&ws[..n]) {
                        for (d, s) in orow.iter_mut().zip(r.iter().step_by(sw)) {
                            *d = F::mul_add(*wv, *s, *d);
                        }
                    }
                }
            }
            // Bias and activation while the row is still in L1.
            finish_row(orow_full, b, st.activation);
        }
    }
    true
}

/// `out[j] (+)= Σ_r ws[r] · rows[r][j]` for `j < len` (`=` when `assign`),
/// unrolled for the common kernel heights 3 and 5; every term one
/// multiply-add of kind `F` (fused where the target has FMA).
#[inline(always)]
fn accumulate_rows<F: MulAdd>(out: &mut [f32], rows: &[&[f32]], ws: &[f32], len: usize, assign: bool) {
    let out = &mut out[..len];
    let fma = F::mul_add;
    match (rows, ws) {
        ([r0, r1, r2], [w0, w1, w2]) => {
            let (r0, r1, r2) = (&r0[..len], &r1[..len], &r2[..len]);
            for j in 0..len {
                let start = if assign { 0.0 } else { out[j] };
                out[j] = fma(*w2, r2[j], fma(*w1, r1[j], fma(*w0, r0[j], start)));
            }
        }
        ([r0, r1, r2, r3, r4], [w0, w1, w2, w3, w4]) => {
            let (r0, r1, r2, r3, r4) = (&r0[..len], &r1[..len], &r2[..len], &r3[..len], &r4[..len]);
            for j in 0..len {
                let start = if assign { 0.0 } else { out[j] };
                let v = fma(*w2, r2[j], fma(*w1, r1[j], fma(*w0, r0[j], start)));
                out[j] = fma(*w4, r4[j], fma(*w3, r3[j], v));
            }
        }
        _ => {
            if assign {
                out.fill(0.0);
            }
            for (r, wv) in rows.iter().zip(ws) {
                for (d, s) in out.iter_mut().zip(&r[..len]) {
                    *d = fma(*wv, *s, *d);
                }
            }
        }
    }
}

/// Unfolds `[C, H, W]` into rows `(c, ky, kx)` × columns `(oy, ox)`.
#[inline(always)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::plan::WeightRange;
    use crate::rng::SplitMix64;
    use alloc::vec;
    use alloc::vec::Vec;

    type ConvFn =
        fn(&ConvStep, Shape, Shape, &[f32], &[f32], Option<&[f32]>, &mut [f32], &mut [f32], Par<'_>) -> bool;

    /// Direct convolution, the definition: a second implementation.
    fn naive(
        st: &ConvStep,
        [ci, h, w]: Shape,
        [co, ho, wo]: Shape,
        x: &[f32],
        wt: &[f32],
        b: &[f32],
    ) -> Vec<f32> {
        let [kh, kw] = st.kernel;
        let (cig, cog) = (ci / st.groups, co / st.groups);
        let mut out = vec![0f32; co * ho * wo];
        for o in 0..co {
            let g = o / cog;
            for y in 0..ho {
                for xo in 0..wo {
                    let mut acc = b[o] as f64;
                    for c in 0..cig {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * st.stride[0] + ky * st.dilation[0]) as isize
                                    - st.padding[0] as isize;
                                let ix = (xo * st.stride[1] + kx * st.dilation[1]) as isize
                                    - st.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let xi = x[((g * cig + c) * h + iy as usize) * w + ix as usize];
                                let wi = wt[((o * cig + c) * kh + ky) * kw + kx];
                                acc += xi as f64 * wi as f64;
                            }
                        }
                    }
                    out[(o * ho + y) * wo + xo] = st.activation.apply(acc as f32);
                }
            }
        }
        out
    }

    /// Every path of `conv2d` (1×1 GEMM, depthwise at strides 1 and 2 and
    /// with dilation, im2col with groups, strides, dilation and asymmetric
    /// padding) against the direct definition, on odd sizes that leave
    /// partial GEMM tiles. Runs on every architecture (CI runs it for
    /// aarch64 under qemu).
    #[test]
    fn every_conv_path_matches_the_direct_definition() {
        // (ci, co, groups, k, stride, padding [t, l, b, r], dilation, h, w, act)
        #[allow(clippy::type_complexity)]
        let cases: &[(
            usize,
            usize,
            usize,
            [usize; 2],
            [usize; 2],
            [usize; 4],
            [usize; 2],
            usize,
            usize,
            Activation,
        )] = &[
            (13, 21, 1, [1, 1], [1, 1], [0; 4], [1, 1], 9, 37, Activation::Relu),
            (3, 70, 1, [1, 1], [1, 1], [0; 4], [1, 1], 5, 19, Activation::None),
            (8, 8, 8, [3, 3], [1, 1], [1; 4], [1, 1], 11, 17, Activation::Relu6),
            (6, 6, 6, [5, 5], [2, 2], [2; 4], [1, 1], 13, 21, Activation::None),
            (
                5,
                5,
                5,
                [3, 3],
                [2, 2],
                [0, 0, 1, 1],
                [1, 1],
                10,
                15,
                Activation::Silu,
            ),
            (4, 4, 4, [3, 3], [1, 1], [2; 4], [2, 2], 9, 12, Activation::None),
            (3, 24, 1, [3, 3], [2, 2], [1; 4], [1, 1], 17, 23, Activation::Relu),
            (16, 32, 2, [3, 3], [1, 1], [1; 4], [1, 1], 8, 9, Activation::None),
            (7, 9, 1, [3, 3], [1, 1], [2; 4], [2, 2], 12, 14, Activation::Relu),
            (4, 12, 1, [4, 4], [4, 4], [0; 4], [1, 1], 16, 24, Activation::None),
        ];
        let mut rng = SplitMix64::new(7);
        for &(ci, co, groups, kernel, stride, padding, dilation, h, w, activation) in cases {
            let [kh, kw] = kernel;
            let ho = (h + padding[0] + padding[2] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
            let wo = (w + padding[1] + padding[3] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
            let wlen = co * (ci / groups) * kh * kw;
            let st = ConvStep {
                input: 0,
                output: 1,
                weight: WeightRange { start: 0, len: wlen },
                bias: Some(WeightRange { start: wlen, len: co }),
                kernel,
                stride,
                padding,
                dilation,
                groups,
                activation,
            };
            let mut r = |n: usize| (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect::<Vec<_>>();
            let (x, wt, b) = (r(ci * h * w), r(wlen), r(co));
            let want = naive(&st, [ci, h, w], [co, ho, wo], &x, &wt, &b);
            let max_error = |f: ConvFn| {
                let mut out = vec![f32::NAN; co * ho * wo];
                let mut scratch = vec![0f32; 1 << 20];
                assert!(f(
                    &st,
                    [ci, h, w],
                    [co, ho, wo],
                    &x,
                    &wt,
                    Some(&b),
                    &mut out,
                    &mut scratch,
                    Par::SERIAL
                ));
                out.iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max)
            };
            let what = alloc::format!("case {ci}->{co} g{groups} k{kernel:?} s{stride:?} d{dilation:?}");
            let err = max_error(conv2d::<crate::nn::gemm::Plain>);
            assert!(err < 1e-4, "{what}, multiply then add: max error {err}");
            #[cfg(feature = "std")]
            {
                let err = max_error(conv2d::<crate::nn::gemm::Fused>);
                assert!(err < 1e-4, "{what}, fused: max error {err}");
            }
        }
    }
}
