//! Tests of `image`.

use sld_core::image::normalize;
use sld_core::model::Normalize;
use sld_core::rng::SplitMix64;

/// The running-sum implementation equals a direct per-pixel box
/// computation (a second implementation), borders included.
#[test]
fn local_contrast_matches_direct_box() {
    let (w, h, r) = (13usize, 9usize, 3usize);
    let mut rng = SplitMix64::new(5);
    let x: Vec<f32> = (0..2 * w * h).map(|_| rng.unit_f64() as f32).collect();
    let mut got = x.clone();
    let how = Normalize::LogLocalContrast { radius: r as u32 };
    let mut scratch = vec![0f32; how.scratch_len(w, h)];
    normalize(how, &mut got, 2, w, h, &mut scratch);
    for c in 0..2 {
        let u: Vec<f64> = x[c * w * h..(c + 1) * w * h]
            .iter()
            .map(|&v| ((v as f64) + 1.0 / 64.0).ln())
            .collect();
        for y in 0..h {
            for xx in 0..w {
                let (mut s, mut q, mut n) = (0.0, 0.0, 0.0);
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xxx in xx.saturating_sub(r)..(xx + r + 1).min(w) {
                        s += u[yy * w + xxx];
                        q += u[yy * w + xxx] * u[yy * w + xxx];
                        n += 1.0;
                    }
                }
                let m = s / n;
                let sd = (q / n - m * m).max(0.0).sqrt().max(0.1);
                let want = (u[y * w + xx] - m) / sd;
                let g = got[c * w * h + y * w + xx] as f64;
                assert!((g - want).abs() < 1e-4, "c {c} ({xx},{y}): {g} vs {want}");
            }
        }
    }
}

/// A smooth change of illumination (a gain ramp across the image) barely
/// changes the normalised input, where plain `[0, 1]` input changes by
/// the gain itself.
#[test]
fn local_contrast_cancels_smooth_illumination() {
    let (w, h) = (64usize, 48usize);
    let mut rng = SplitMix64::new(9);
    let albedo: Vec<f32> = (0..w * h).map(|_| 0.3 + 0.6 * rng.unit_f64() as f32).collect();
    let lit = |gain: &dyn Fn(usize) -> f32| -> Vec<f32> {
        let mut p: Vec<f32> = albedo.iter().enumerate().map(|(i, a)| a * gain(i % w)).collect();
        let how = Normalize::LogLocalContrast { radius: 4 };
        let mut scratch = vec![0f32; how.scratch_len(w, h)];
        normalize(how, &mut p, 1, w, h, &mut scratch);
        p
    };
    let bright = lit(&|_| 1.0);
    let dim = lit(&|x| 0.35 + 0.3 * x as f32 / w as f32);
    let worst = bright
        .iter()
        .zip(&dim)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let spread = bright.iter().map(|v| v.abs()).fold(0f32, f32::max);
    assert!(
        worst < 0.1 * spread,
        "worst change {worst} against values up to {spread}"
    );
}

/// Too little scratch leaves the input untouched (no panic).
#[test]
fn local_contrast_without_scratch_is_a_no_op() {
    let mut x = vec![0.5f32; 12];
    normalize(
        Normalize::LogLocalContrast { radius: 2 },
        &mut x,
        1,
        4,
        3,
        &mut [0f32; 3],
    );
    assert_eq!(x, vec![0.5f32; 12]);
}
