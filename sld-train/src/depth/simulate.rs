//! Synthetic inputs with ground truth: from a rendered true depth map and
//! its image, an MDE-like map and a COLMAP-like map.
//!
//! **MDE** (what Depth-Anything gives): relative disparity — affine in
//! inverse depth (`a/z + b`), times a smooth low-frequency distortion
//! (±15 %, a fraction of a cycle across the image), blurred by a 5×5 box
//! (edges smear), with 1 % noise, then rescaled to `[0, 1]`.
//!
//! **COLMAP-like**: the true depth with 0.5 % noise; holes where the image
//! has little texture (8×8 blocks in the lowest 35 % of gradient energy,
//! each dropped with probability 0.85), a few large rectangles, 5 % random
//! pixels; and 0.3 % outliers (depth × 0.5–2).

use sld_core::rng::SplitMix64;

use super::DepthMap;

/// A simulated pair and the truth it came from.
pub struct Simulated {
    /// True metric depth (NaN where the renderer had none).
    pub truth: DepthMap,
    /// MDE map, kind disparity, values in `[0, 1]`.
    pub mde: DepthMap,
    /// COLMAP-like metric depth with holes (NaN), noise and outliers.
    pub colmap: DepthMap,
}

/// Simulates both maps from `truth` (metres, NaN/0 = none) and `rgb`
/// (`width × height × 3` bytes).
pub fn simulate(truth: &DepthMap, rgb: &[u8], seed: u64) -> Simulated {
    let (w, h) = (truth.width, truth.height);
    let mut rng = SplitMix64::new(seed);
    let truth = DepthMap {
        data: truth
            .data
            .iter()
            .map(|&z| if z.is_finite() && z > 0.0 { z } else { f32::NAN })
            .collect(),
        ..truth.clone()
    };

    // MDE: affine disparity × smooth distortion, blurred, noisy, normalised.
    let (a, b) = (0.8 + 0.8 * rng.unit_f64(), 0.05 + 0.1 * rng.unit_f64());
    let f1 = 0.3 + 0.5 * rng.unit_f64();
    let f2 = 0.3 + 0.5 * rng.unit_f64();
    let (p1, p2) = (rng.unit_f64(), rng.unit_f64());
    let far = truth
        .data
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(1.0f32, f32::max) as f64;
    let mut disp = vec![0f64; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let z = if truth.known(i) { truth.data[i] as f64 } else { far };
            let distort = 1.0
                + 0.075 * (std::f64::consts::TAU * (f1 * x as f64 / w as f64 + p1)).cos()
                + 0.075 * (std::f64::consts::TAU * (f2 * y as f64 / h as f64 + p2)).cos();
            disp[i] = (a / z + b) * distort;
        }
    }
    let disp = box_blur(&disp, w, h, 2);
    let mut mde: Vec<f64> = disp.iter().map(|&d| d * (1.0 + 0.01 * rng.gauss())).collect();
    let (lo, hi) = mde.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), &v| {
        (l.min(v), u.max(v))
    });
    for v in &mut mde {
        *v = (*v - lo) / (hi - lo).max(1e-12);
    }
    let mde = DepthMap {
        width: w,
        height: h,
        data: mde.into_iter().map(|v| v as f32).collect(),
    };

    // COLMAP-like: holes where texture is low, in rectangles, at random.
    let gray: Vec<f64> = (0..w * h)
        .map(|i| 0.299 * rgb[3 * i] as f64 + 0.587 * rgb[3 * i + 1] as f64 + 0.114 * rgb[3 * i + 2] as f64)
        .collect();
    let mut energy = vec![0f64; w * h];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let i = y * w + x;
            energy[i] = (gray[i + 1] - gray[i - 1]).abs() + (gray[i + w] - gray[i - w]).abs();
        }
    }
    let (bw, bh) = (w.div_ceil(8), h.div_ceil(8));
    let mut block = vec![0f64; bw * bh];
    for y in 0..h {
        for x in 0..w {
            block[(y / 8) * bw + x / 8] += energy[y * w + x];
        }
    }
    let mut sorted = block.clone();
    sorted.sort_by(f64::total_cmp);
    let cut = sorted[(sorted.len() as f64 * 0.35) as usize];
    let drop_block: Vec<bool> = block.iter().map(|&e| e <= cut && rng.unit_f64() < 0.85).collect();
    let mut hole = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            hole[y * w + x] = drop_block[(y / 8) * bw + x / 8];
        }
    }
    for _ in 0..3 {
        let (rw, rh) = (
            (w as f64 * (0.08 + 0.1 * rng.unit_f64())) as usize,
            (h as f64 * (0.08 + 0.1 * rng.unit_f64())) as usize,
        );
        let (x0, y0) = (
            (rng.unit_f64() * (w - rw) as f64) as usize,
            (rng.unit_f64() * (h - rh) as f64) as usize,
        );
        for y in y0..y0 + rh {
            for x in x0..x0 + rw {
                hole[y * w + x] = true;
            }
        }
    }
    let colmap: Vec<f32> = (0..w * h)
        .map(|i| {
            let dropout = rng.unit_f64() < 0.05;
            let outlier = rng.unit_f64() < 0.003;
            let factor = 0.5 + 1.5 * rng.unit_f64();
            let noise = 1.0 + 0.005 * rng.gauss();
            if hole[i] || dropout || !truth.known(i) {
                f32::NAN
            } else if outlier {
                (truth.data[i] as f64 * factor) as f32
            } else {
                (truth.data[i] as f64 * noise) as f32
            }
        })
        .collect();
    Simulated {
        truth,
        mde,
        colmap: DepthMap {
            width: w,
            height: h,
            data: colmap,
        },
    }
}

/// Mean over the `(2r + 1)²` window, clipped at the borders.
fn box_blur(v: &[f64], w: usize, h: usize, r: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for y in 0..h {
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r).min(w - 1));
            let (y0, y1) = (y.saturating_sub(r), (y + r).min(h - 1));
            let mut s = 0.0;
            for yy in y0..=y1 {
                s += v[yy * w + x0..=yy * w + x1].iter().sum::<f64>();
            }
            out[y * w + x] = s / ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64;
        }
    }
    out
}
