//! Bilinear resampling of a `[C, H, W]` tensor (the graph's `resize` op),
//! with PyTorch's `align_corners=False` convention: output pixel `i` of
//! `n_out` samples the input at `(i + 0.5)·n_in/n_out − 0.5`, clamped to
//! `[0, n_in − 1]`.

/// Source index pair and weight of the second for output index `i`.
#[inline]
fn tap(i: usize, n_in: usize, n_out: usize) -> (usize, usize, f32) {
    let s = ((i as f32 + 0.5) * n_in as f32 / n_out as f32 - 0.5).max(0.0);
    let i0 = (s as usize).min(n_in - 1);
    let i1 = (i0 + 1).min(n_in - 1);
    (i0, i1, s - i0 as f32)
}

/// Resamples `x` of shape `[c, h, w]` into `out` of shape `[c, oh, ow]`
/// (same `c`). Does nothing when a length disagrees with its shape or a
/// size is 0 (the plan checked them; no panic on any input).
pub fn bilinear(x: &[f32], [c, h, w]: [usize; 3], out: &mut [f32], [oc, oh, ow]: [usize; 3]) {
    if c != oc || h == 0 || w == 0 || x.len() != c * h * w || out.len() != c * oh * ow {
        return;
    }
    for ch in 0..c {
        let src = &x[ch * h * w..(ch + 1) * h * w];
        let dst = &mut out[ch * oh * ow..(ch + 1) * oh * ow];
        for oy in 0..oh {
            let (y0, y1, fy) = tap(oy, h, oh);
            let (r0, r1) = (&src[y0 * w..(y0 + 1) * w], &src[y1 * w..(y1 + 1) * w]);
            for ox in 0..ow {
                let (x0, x1, fx) = tap(ox, w, ow);
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                dst[oy * ow + ox] = top + (bot - top) * fy;
            }
        }
    }
}

/// [`bilinear`] on channel-blocked tensors (`[⌈c/16⌉, h, w, 16]` into
/// `[⌈c/16⌉, oh, ow, 16]`, [`crate::model::layout`]): each output pixel's
/// taps are found once for its 16 channels, which are then one vector
/// expression. The same arithmetic per value as [`bilinear`], so the same
/// bits. Does nothing when a length disagrees with its shape.
pub fn bilinear_blocked(x: &[f32], [c, h, w]: [usize; 3], out: &mut [f32], [oc, oh, ow]: [usize; 3]) {
    const B: usize = crate::model::layout::BLOCK;
    let blocks = c.div_ceil(B);
    if c != oc || h == 0 || w == 0 || x.len() != blocks * B * h * w || out.len() != blocks * B * oh * ow {
        return;
    }
    for (src, dst) in x.chunks_exact(h * w * B).zip(out.chunks_exact_mut(oh * ow * B)) {
        for (oy, drow) in dst.chunks_exact_mut(ow * B).enumerate() {
            let (y0, y1, fy) = tap(oy, h, oh);
            let (r0, r1) = (&src[y0 * w * B..][..w * B], &src[y1 * w * B..][..w * B]);
            for (ox, d) in drow.chunks_exact_mut(B).enumerate() {
                let (x0, x1, fx) = tap(ox, w, ow);
                let (a, b) = (&r0[x0 * B..][..B], &r0[x1 * B..][..B]);
                let (e, f) = (&r1[x0 * B..][..B], &r1[x1 * B..][..B]);
                for l in 0..B {
                    let top = a[l] + (b[l] - a[l]) * fx;
                    let bot = e[l] + (f[l] - e[l]) * fx;
                    d[l] = top + (bot - top) * fy;
                }
            }
        }
    }
}
