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

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocked resampling gives the planar one's bits, channels off
    /// the block size included; wrong lengths do nothing.
    #[test]
    fn blocked_matches_planar_bits() {
        const B: usize = crate::model::layout::BLOCK;
        let (c, h, w, oh, ow) = (21usize, 5usize, 7usize, 13usize, 9usize);
        let mut rng = crate::rng::SplitMix64::new(3);
        let x: Vec<f32> = (0..c * h * w).map(|_| rng.uniform(-2.0, 2.0) as f32).collect();
        let mut want = vec![0f32; c * oh * ow];
        bilinear(&x, [c, h, w], &mut want, [c, oh, ow]);
        let blocks = c.div_ceil(B);
        let mut xb = vec![0f32; blocks * B * h * w];
        for ch in 0..c {
            for p in 0..h * w {
                xb[((ch / B) * h * w + p) * B + ch % B] = x[ch * h * w + p];
            }
        }
        let mut got = vec![f32::NAN; blocks * B * oh * ow];
        bilinear_blocked(&xb, [c, h, w], &mut got, [c, oh, ow]);
        for ch in 0..c {
            for p in 0..oh * ow {
                let g = got[((ch / B) * oh * ow + p) * B + ch % B];
                assert_eq!(
                    g.to_bits(),
                    want[ch * oh * ow + p].to_bits(),
                    "channel {ch} pixel {p}"
                );
            }
        }
        let mut short = vec![7f32; blocks * B * oh * ow - 1];
        bilinear_blocked(&xb, [c, h, w], &mut short, [c, oh, ow]);
        assert!(short.iter().all(|v| *v == 7.0));
    }

    /// Closed form: PyTorch's align_corners=False upsampling of [0, 1, 2]
    /// by 2 is [0, 0.25, 0.75, 1.25, 1.75, 2] (edges clamped).
    #[test]
    fn matches_pytorch_half_pixel_convention() {
        let x = [0.0, 1.0, 2.0];
        let mut out = [0f32; 6];
        bilinear(&x, [1, 1, 3], &mut out, [1, 1, 6]);
        assert_eq!(out, [0.0, 0.25, 0.75, 1.25, 1.75, 2.0]);
        // A linear ramp in both axes stays linear inside.
        let (h, w) = (4usize, 5usize);
        let x: Vec<f32> = (0..h * w)
            .map(|i| (i % w) as f32 + 10.0 * (i / w) as f32)
            .collect();
        let mut out = vec![0f32; 8 * 10];
        bilinear(&x, [1, h, w], &mut out, [1, 8, 10]);
        // Output (3, 4) samples input (1.25, 1.75) → 1.75 + 12.5.
        assert!((out[3 * 10 + 4] - 14.25).abs() < 1e-5, "{}", out[3 * 10 + 4]);
    }

    /// Mismatched lengths are ignored, not a panic.
    #[test]
    fn bad_shapes_do_nothing() {
        let mut out = [7f32; 4];
        bilinear(&[1.0; 3], [1, 2, 2], &mut out, [1, 2, 2]);
        assert_eq!(out, [7.0; 4]);
    }
}
