//! Convolution kernels over `[C, H, W]` f32 tensors (batch 1).
//!
//! Three paths, picked per layer: 1×1 stride-1 convolutions are one GEMM;
//! depthwise convolutions are direct shifted multiply-adds (one pass per
//! kernel tap, contiguous along rows at stride 1); everything else is
//! im2col into scratch + one GEMM per group.

use super::gemm::sgemm;
use crate::model::plan::{needs_im2col, ConvStep};
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
pub(crate) fn conv2d(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    let [ci, h, w] = in_shape;
    let [co, ho, wo] = out_shape;
    let hw_out = ho * wo;
    if input.len() < ci * h * w || out.len() < co * hw_out {
        return false;
    }
    let out = &mut out[..co * hw_out];
    let [kh, kw] = st.kernel;
    let ok = if !needs_im2col(st, ci) && st.groups == 1 {
        sgemm(co, ci, hw_out, weight, input, out, false)
    } else if !needs_im2col(st, ci) {
        depthwise(st, in_shape, out_shape, input, weight, out)
    } else {
        let g = st.groups;
        let (cig, cog) = (ci / g, co / g);
        let rows = cig * kh * kw;
        let Some(cols) = scratch.get_mut(..rows * hw_out) else {
            return false;
        };
        let mut ok = true;
        for gi in 0..g {
            im2col(
                st,
                [cig, h, w],
                [ho, wo],
                &input[gi * cig * h * w..(gi + 1) * cig * h * w],
                cols,
            );
            let wg = weight.get(gi * cog * rows..(gi + 1) * cog * rows).unwrap_or(&[]);
            ok &= sgemm(
                cog,
                rows,
                hw_out,
                wg,
                cols,
                &mut out[gi * cog * hw_out..(gi + 1) * cog * hw_out],
                false,
            );
        }
        ok
    };
    if !ok {
        return false;
    }
    bias_act(out, hw_out, bias, st.activation);
    true
}

/// Adds the per-channel bias and applies the activation in one pass.
fn bias_act(out: &mut [f32], plane: usize, bias: Option<&[f32]>, act: Activation) {
    for (c, ch) in out.chunks_exact_mut(plane).enumerate() {
        let b = bias.and_then(|b| b.get(c)).copied().unwrap_or(0.0);
        match act {
            Activation::None => ch.iter_mut().for_each(|v| *v += b),
            Activation::Relu => ch.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
            Activation::Relu6 => ch.iter_mut().for_each(|v| *v = (*v + b).clamp(0.0, 6.0)),
            Activation::Silu => ch.iter_mut().for_each(|v| *v = Activation::Silu.apply(*v + b)),
        }
    }
}

fn depthwise(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    out: &mut [f32],
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
    for ch in 0..c {
        let x = &input[ch * h * w..(ch + 1) * h * w];
        let o = &mut out[ch * ho * wo..(ch + 1) * ho * wo];
        o.fill(0.0);
        for ky in 0..kh {
            let ay = (ky * dh) as isize - pt as isize;
            let (oy0, oy1) = valid_range(ay, sh, h, ho);
            for kx in 0..kw {
                let ax = (kx * dw) as isize - pl as isize;
                let (ox0, ox1) = valid_range(ax, sw, w, wo);
                if ox0 >= ox1 {
                    continue;
                }
                let wv = weight[(ch * kh + ky) * kw + kx];
                for oy in oy0..oy1 {
                    let iy = (oy * sh) as isize + ay;
                    let row = &x[iy as usize * w..(iy as usize + 1) * w];
                    let orow = &mut o[oy * wo + ox0..oy * wo + ox1];
                    let ix0 = (ox0 * sw) as isize + ax;
                    if sw == 1 {
                        let src = &row[ix0 as usize..ix0 as usize + orow.len()];
                        for (d, s) in orow.iter_mut().zip(src) {
                            *d += wv * s;
                        }
                    } else {
                        for (k, d) in orow.iter_mut().enumerate() {
                            *d += wv * row[ix0 as usize + k * sw];
                        }
                    }
                }
            }
        }
    }
    true
}

/// Unfolds `[C, H, W]` into rows `(c, ky, kx)` × columns `(oy, ox)`.
fn im2col(st: &ConvStep, in_shape: Shape, out_hw: [usize; 2], input: &[f32], cols: &mut [f32]) {
    let [c, h, w] = in_shape;
    let [ho, wo] = out_hw;
    let [kh, kw] = st.kernel;
    let [sh, sw] = st.stride;
    let [dh, dw] = st.dilation;
    let [pt, pl, _, _] = st.padding;
    let mut row = 0;
    for ch in 0..c {
        let x = &input[ch * h * w..(ch + 1) * h * w];
        for ky in 0..kh {
            let ay = (ky * dh) as isize - pt as isize;
            let (oy0, oy1) = valid_range(ay, sh, h, ho);
            for kx in 0..kw {
                let ax = (kx * dw) as isize - pl as isize;
                let (ox0, ox1) = valid_range(ax, sw, w, wo);
                let dst = &mut cols[row * ho * wo..(row + 1) * ho * wo];
                dst.fill(0.0);
                for oy in oy0..oy1 {
                    let iy = ((oy * sh) as isize + ay) as usize;
                    let src = &x[iy * w..(iy + 1) * w];
                    let d = &mut dst[oy * wo..(oy + 1) * wo];
                    for ox in ox0..ox1 {
                        d[ox] = src[((ox * sw) as isize + ax) as usize];
                    }
                }
                row += 1;
            }
        }
    }
}
