//! Tests of `nn::resize`.

use sld_core::nn::resize::{bilinear, bilinear_blocked};

/// The blocked resampling gives the planar one's bits, channels off
/// the block size included; wrong lengths do nothing.
#[test]
fn blocked_matches_planar_bits() {
    const B: usize = sld_core::model::layout::BLOCK;
    let (c, h, w, oh, ow) = (21usize, 5usize, 7usize, 13usize, 9usize);
    let mut rng = sld_core::rng::SplitMix64::new(3);
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
