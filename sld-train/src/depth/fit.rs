//! Regressors from MDE values to metric depth, fitted on the pixels where
//! both are known and evaluated anywhere.
//!
//! | method | model | fit |
//! |---|---|---|
//! | `scale-shift-depth` | `z = s·g(m) + t`, `g(m) = m` (depth MDE) or `1/m` (disparity MDE) | robust (LMedS start, Cauchy IRLS) |
//! | `scale-shift-inverse` | `1/z = s·h(m) + t`, `h(m) = m` (disparity) or `1/m` (depth) | same |
//! | `spatial` | `1/z = s(x,y)·h(m) + t(x,y)`, `s, t` bilinear over a coarse grid | IRLS with a curvature prior between grid nodes |
//! | `mlp` | the paper's MLP (100, 50; ReLU; Adam) on `(m, x/W, y/H, r, g, b)`, standardised | 80/20 split, early stopping |
//!
//! Predictions that are not a positive finite depth are returned as NaN
//! (left missing), never clamped into a plausible-looking number.

use anyhow::{bail, ensure, Result};
use sld_core::rng::SplitMix64;

use super::{DepthMap, MdeKind};

/// A depth-fill method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Robust scale and shift in depth.
    ScaleShiftDepth,
    /// Robust scale and shift in inverse depth.
    ScaleShiftInverse,
    /// Spatially varying scale and shift in inverse depth (the default).
    Spatial,
    /// The paper's MLP regressor (hidden layers 100 and 50), in Candle.
    Mlp,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 4] = [
        Method::ScaleShiftDepth,
        Method::ScaleShiftInverse,
        Method::Spatial,
        Method::Mlp,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Method::ScaleShiftDepth => "scale-shift-depth",
            Method::ScaleShiftInverse => "scale-shift-inverse",
            Method::Spatial => "spatial",
            Method::Mlp => "mlp",
        }
    }
}

/// What a fit sees: the MDE map, its kind, and optionally the RGB image
/// (`width × height × 3` bytes, used by the MLP's colour features).
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// The MDE map (same size as the depth map).
    pub mde: &'a DepthMap,
    /// What the MDE values mean.
    pub kind: MdeKind,
    /// RGB8 pixels, tightly packed, or `None`.
    pub rgb: Option<&'a [u8]>,
}

/// Options of [`fit_predict`].
#[derive(Clone, Copy, Debug)]
pub struct FitOptions {
    /// Grid nodes across the width for `spatial` (rows follow the aspect ratio).
    pub grid: usize,
    /// Smoothness weight between neighbouring grid nodes for `spatial`.
    pub smoothness: f64,
    /// Radius (pixels) over which `spatial` spreads the known pixels'
    /// residuals into the holes (0 = no residual correction).
    pub residual_radius: usize,
    /// Training pixels sampled for the MLP (it is the slow method).
    pub mlp_samples: usize,
    /// Epoch cap for the MLP.
    pub mlp_max_epochs: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Where Candle trains the MLP.
    pub device: crate::device::DeviceChoice,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            grid: 12,
            smoothness: 1e-3,
            residual_radius: 8,
            mlp_samples: 20_000,
            mlp_max_epochs: 1000,
            seed: 42,
            device: Default::default(),
        }
    }
}

/// Which pixels (row-major indices) a regressor fits on and predicts.
#[derive(Clone, Copy, Debug)]
pub struct Pixels<'a> {
    /// Pixels with a known depth and a usable MDE value.
    pub train: &'a [u32],
    /// Pixels to predict.
    pub query: &'a [u32],
}

/// Fits `method` on the `train` pixels of `depth` (indices of known
/// pixels) and predicts metric depth at the `query` pixels (NaN where the
/// model gives no positive finite depth).
pub fn fit_predict(
    method: Method,
    inputs: Inputs<'_>,
    depth: &DepthMap,
    train: &[u32],
    query: &[u32],
    o: &FitOptions,
) -> Result<Vec<f32>> {
    let (w, h) = (depth.width, depth.height);
    ensure!(
        inputs.mde.width == w && inputs.mde.height == h,
        "MDE map is {}x{}, depth map {w}x{h}: they must be the same size",
        inputs.mde.width,
        inputs.mde.height
    );
    if let Some(rgb) = inputs.rgb {
        ensure!(
            rgb.len() == w * h * 3,
            "RGB image does not match the {w}x{h} depth map"
        );
    }
    // Pixels whose MDE value the transform accepts.
    let usable =
        |i: u32, f: fn(f32, MdeKind) -> Option<f64>| f(inputs.mde.data[i as usize], inputs.kind).is_some();
    let feat: fn(f32, MdeKind) -> Option<f64> = match method {
        Method::ScaleShiftDepth => depth_feature,
        _ => inverse_feature,
    };
    let train: Vec<u32> = train
        .iter()
        .copied()
        .filter(|&i| depth.known(i as usize) && usable(i, feat))
        .collect();
    if train.len() < 10 {
        bail!(
            "only {} pixels have both a depth and a usable MDE value; at least 10 are needed",
            train.len()
        );
    }
    Ok(match method {
        Method::ScaleShiftDepth | Method::ScaleShiftInverse => {
            let inverse = method == Method::ScaleShiftInverse;
            let x: Vec<f64> = train
                .iter()
                .map(|&i| feat(inputs.mde.data[i as usize], inputs.kind).unwrap())
                .collect();
            let y: Vec<f64> = train
                .iter()
                .map(|&i| target(depth.data[i as usize], inverse))
                .collect();
            let (s, t) = robust_affine(&x, &y, o.seed);
            query
                .iter()
                .map(|&i| {
                    feat(inputs.mde.data[i as usize], inputs.kind)
                        .map_or(f32::NAN, |m| from_target(s * m + t, inverse))
                })
                .collect()
        }
        Method::Spatial => spatial(inputs, depth, Pixels { train: &train, query }, o),
        Method::Mlp => super::mlp::mlp(inputs, depth, Pixels { train: &train, query }, o)?,
    })
}

/// `g(m)`: the MDE value as something affine in depth.
fn depth_feature(m: f32, kind: MdeKind) -> Option<f64> {
    let m = m as f64;
    match kind {
        MdeKind::Depth => m.is_finite().then_some(m),
        MdeKind::Disparity => (m.is_finite() && m > 1e-9).then(|| 1.0 / m),
    }
}

/// `h(m)`: the MDE value as something affine in inverse depth.
fn inverse_feature(m: f32, kind: MdeKind) -> Option<f64> {
    let m = m as f64;
    match kind {
        MdeKind::Disparity => m.is_finite().then_some(m),
        MdeKind::Depth => (m.is_finite() && m > 1e-9).then(|| 1.0 / m),
    }
}

fn target(z: f32, inverse: bool) -> f64 {
    if inverse {
        1.0 / z as f64
    } else {
        z as f64
    }
}

fn from_target(v: f64, inverse: bool) -> f32 {
    let z = if inverse { 1.0 / v } else { v };
    if z.is_finite() && z > 0.0 && v.is_finite() && v > 0.0 {
        z as f32
    } else {
        f32::NAN
    }
}

/// The median, 0 for no values (the fits' neutral scale).
fn median(v: &mut [f64]) -> f64 {
    crate::util::stats::median(v).unwrap_or(0.0)
}

/// Robust `y ≈ s·x + t`: least median of squares over random pairs, then
/// iteratively reweighted least squares with Cauchy weights.
pub fn robust_affine(x: &[f64], y: &[f64], seed: u64) -> (f64, f64) {
    let n = x.len();
    let mut rng = SplitMix64::new(seed);
    let pick = |rng: &mut SplitMix64| (rng.next_u64() % n as u64) as usize;
    // Residuals are measured on a subsample for speed.
    let sub: Vec<usize> = (0..n.min(2000)).map(|_| pick(&mut rng)).collect();
    let mut best = (0.0, median(&mut y.to_vec()), f64::INFINITY);
    let mut res = vec![0.0; sub.len()];
    for _ in 0..300 {
        let (i, j) = (pick(&mut rng), pick(&mut rng));
        let dx = x[i] - x[j];
        if dx.abs() < 1e-12 {
            continue;
        }
        let s = (y[i] - y[j]) / dx;
        let t = y[i] - s * x[i];
        for (r, &k) in res.iter_mut().zip(&sub) {
            *r = (y[k] - s * x[k] - t).abs();
        }
        let m = median(&mut res);
        if m < best.2 {
            best = (s, t, m);
        }
    }
    let (mut s, mut t) = (best.0, best.1);
    let mut r = vec![0.0; n];
    for _ in 0..15 {
        for k in 0..n {
            r[k] = (y[k] - s * x[k] - t).abs();
        }
        let sigma = (1.4826 * median(&mut r.clone())).max(1e-12);
        let c = 2.385 * sigma;
        let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for k in 0..n {
            let w = 1.0 / (1.0 + (r[k] / c).powi(2));
            sw += w;
            sx += w * x[k];
            sy += w * y[k];
            sxx += w * x[k] * x[k];
            sxy += w * x[k] * y[k];
        }
        let det = sw * sxx - sx * sx;
        if det.abs() < 1e-300 {
            break;
        }
        let (ns, nt) = ((sw * sxy - sx * sy) / det, (sxx * sy - sx * sxy) / det);
        let done =
            (ns - s).abs() <= 1e-10 * s.abs().max(1e-12) && (nt - t).abs() <= 1e-10 * t.abs().max(1e-12);
        (s, t) = (ns, nt);
        if done {
            break;
        }
    }
    (s, t)
}

/// Bilinear weights of pixel `(x, y)` on a `gx × gy` node grid spanning the
/// image: `(node index, weight)` for the 4 surrounding nodes.
fn bilinear(x: f64, y: f64, w: usize, h: usize, gx: usize, gy: usize) -> [(usize, f64); 4] {
    let fx = x / (w.max(2) - 1) as f64 * (gx - 1) as f64;
    let fy = y / (h.max(2) - 1) as f64 * (gy - 1) as f64;
    let (ix, iy) = (
        (fx.floor() as usize).min(gx - 2),
        (fy.floor() as usize).min(gy - 2),
    );
    let (ax, ay) = (fx - ix as f64, fy - iy as f64);
    let k = iy * gx + ix;
    [
        (k, (1.0 - ax) * (1.0 - ay)),
        (k + 1, ax * (1.0 - ay)),
        (k + gx, (1.0 - ax) * ay),
        (k + gx + 1, ax * ay),
    ]
}

/// Spatially varying scale and shift in inverse depth: `s` and `t` live on
/// a coarse grid and are interpolated bilinearly; a curvature prior
/// (second differences between nodes) keeps them smooth, and a weak pull
/// towards the global fit keeps nodes over empty cells defined. Cauchy
/// IRLS handles outliers.
fn spatial(inputs: Inputs<'_>, depth: &DepthMap, px: Pixels<'_>, o: &FitOptions) -> Vec<f32> {
    let Pixels { train, query } = px;
    use sld_core::nalgebra::{DMatrix, DVector};
    let (w, h) = (depth.width, depth.height);
    let gx = o.grid.max(2);
    let gy = ((gx as f64 * h as f64 / w as f64).round() as usize).max(2);
    let k = gx * gy;
    let coords = |i: u32| ((i as usize % w) as f64, (i as usize / w) as f64);
    let x: Vec<f64> = train
        .iter()
        .map(|&i| inverse_feature(inputs.mde.data[i as usize], inputs.kind).unwrap())
        .collect();
    let y: Vec<f64> = train
        .iter()
        .map(|&i| 1.0 / depth.data[i as usize] as f64)
        .collect();
    let (s0, t0) = robust_affine(&x, &y, o.seed);
    let mean_x2 = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let mut theta = DVector::from_fn(2 * k, |r, _| if r < k { s0 } else { t0 });
    let predict = |theta: &DVector<f64>, px: f64, py: f64, m: f64| -> f64 {
        bilinear(px, py, w, h, gx, gy)
            .iter()
            .map(|&(n, b)| b * (theta[n] * m + theta[k + n]))
            .sum()
    };
    let n = train.len() as f64;
    let lam = o.smoothness * n / k as f64;
    let mut r = vec![0.0; train.len()];
    for _ in 0..6 {
        for (j, &i) in train.iter().enumerate() {
            let (px, py) = coords(i);
            r[j] = (y[j] - predict(&theta, px, py, x[j])).abs();
        }
        let c = 2.385 * (1.4826 * median(&mut r.clone())).max(1e-12);
        let mut a = DMatrix::<f64>::zeros(2 * k, 2 * k);
        let mut b = DVector::<f64>::zeros(2 * k);
        for (j, &i) in train.iter().enumerate() {
            // z² turns inverse-depth residuals towards metres
            // (|Δz| ≈ z²·|Δ(1/z)|); measured best of z⁰, z¹, z², z⁴ (EXPERIMENTS.md).
            let wgt = (1.0 / y[j]).powi(2) / (1.0 + (r[j] / c).powi(2));
            let (px, py) = coords(i);
            let nb = bilinear(px, py, w, h, gx, gy);
            let mut idx = [0usize; 8];
            let mut phi = [0f64; 8];
            for (q, &(node, bw)) in nb.iter().enumerate() {
                idx[q] = node;
                phi[q] = bw * x[j];
                idx[4 + q] = k + node;
                phi[4 + q] = bw;
            }
            for p in 0..8 {
                b[idx[p]] += wgt * phi[p] * y[j];
                for q in 0..8 {
                    a[(idx[p], idx[q])] += wgt * phi[p] * phi[q];
                }
            }
        }
        // Smoothness: second differences along rows and columns of the node
        // grid (a linear trend costs nothing), and a weak pull to the global
        // fit; the s-terms are scaled by E[x²] so both act in target units.
        let mut bend = |nodes: [usize; 3], wgt: f64| {
            let c = [1.0, -2.0, 1.0];
            for (off, scale) in [(0, mean_x2), (k, 1.0)] {
                for p in 0..3 {
                    for q in 0..3 {
                        a[(nodes[p] + off, nodes[q] + off)] += wgt * scale * c[p] * c[q];
                    }
                }
            }
        };
        for iy in 0..gy {
            for ix in 0..gx {
                let p = iy * gx + ix;
                if ix + 2 < gx {
                    bend([p, p + 1, p + 2], lam);
                }
                if iy + 2 < gy {
                    bend([p, p + gx, p + 2 * gx], lam);
                }
            }
        }
        let prior = 1e-3 * lam;
        for p in 0..k {
            a[(p, p)] += prior * mean_x2;
            b[p] += prior * mean_x2 * s0;
            a[(k + p, k + p)] += prior;
            b[k + p] += prior * t0;
        }
        match a.cholesky() {
            Some(ch) => theta = ch.solve(&b),
            None => break,
        }
    }
    // Residual correction: the inverse-depth residuals of the known pixels,
    // spread into the holes by normalised convolution (a mask-weighted
    // blur, ≈ Gaussian of σ ≈ radius). Outliers (Cauchy weight < ½) are left
    // out so that they cannot leak into their neighbourhood.
    let mut corr: Option<Vec<f64>> = None;
    if o.residual_radius > 0 {
        let mut num = vec![0f64; w * h];
        let mut den = vec![0f64; w * h];
        let c = 2.385 * (1.4826 * median(&mut r.clone())).max(1e-12);
        for (j, &i) in train.iter().enumerate() {
            let (px, py) = coords(i);
            let res = y[j] - predict(&theta, px, py, x[j]);
            if res.abs() < c {
                num[i as usize] = res;
                den[i as usize] = 1.0;
            }
        }
        let rad = o.residual_radius;
        let (num, den) = (blur2(&num, w, h, rad), blur2(&den, w, h, rad));
        corr = Some(
            num.iter()
                .zip(&den)
                .map(|(n, d)| if *d > 1e-6 { n / d } else { 0.0 })
                .collect(),
        );
    }
    query
        .iter()
        .map(|&i| {
            let (px, py) = coords(i);
            let fix = corr.as_ref().map_or(0.0, |c| c[i as usize]);
            inverse_feature(inputs.mde.data[i as usize], inputs.kind)
                .map_or(f32::NAN, |m| from_target(predict(&theta, px, py, m) + fix, true))
        })
        .collect()
}

/// Two passes of a `(2r + 1)²` box mean (≈ a Gaussian of σ ≈ 0.8·r),
/// borders clipped; sums via running windows, O(pixels).
fn blur2(v: &[f64], w: usize, h: usize, r: usize) -> Vec<f64> {
    let pass = |src: &[f64]| -> Vec<f64> {
        let mut tmp = vec![0f64; w * h];
        for y in 0..h {
            let row = &src[y * w..(y + 1) * w];
            let mut acc: f64 = row[..(r + 1).min(w)].iter().sum();
            for x in 0..w {
                tmp[y * w + x] = acc;
                if x + r + 1 < w {
                    acc += row[x + r + 1];
                }
                if x >= r {
                    acc -= row[x - r];
                }
            }
        }
        let mut out = vec![0f64; w * h];
        for x in 0..w {
            let mut acc: f64 = (0..(r + 1).min(h)).map(|y| tmp[y * w + x]).sum();
            for y in 0..h {
                out[y * w + x] = acc;
                if y + r + 1 < h {
                    acc += tmp[(y + r + 1) * w + x];
                }
                if y >= r {
                    acc -= tmp[(y - r) * w + x];
                }
            }
        }
        out
    };
    // Unnormalised sums: callers divide a blurred value by a blurred mask.
    pass(&pass(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_affine_ignores_a_third_of_outliers() {
        let mut rng = SplitMix64::new(3);
        let x: Vec<f64> = (0..3000).map(|_| rng.unit_f64() * 4.0).collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                if k % 3 == 0 {
                    50.0 * rng.unit_f64()
                } else {
                    0.7 * v + 0.2 + 1e-3 * (rng.unit_f64() - 0.5)
                }
            })
            .collect();
        let (s, t) = robust_affine(&x, &y, 1);
        assert!((s - 0.7).abs() < 1e-3 && (t - 0.2).abs() < 1e-3, "{s} {t}");
    }

    /// Exact inverse-depth data with a smooth spatial scale: `spatial`
    /// recovers it, global scale-and-shift cannot.
    #[test]
    fn spatial_recovers_a_smoothly_varying_scale() {
        let (w, h) = (80, 60);
        let mut depth = DepthMap::filled(w, h, 0.0);
        let mut mde = DepthMap::filled(w, h, 0.0);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let z = 2.0 + 3.0 * ((x as f32 * 0.13).sin() * 0.5 + 0.5) + (y as f32) * 0.02;
                depth.data[i] = z;
                let s = 1.0 + 0.2 * (x as f32 / w as f32);
                mde.data[i] = s * (1.0 / z) + 0.1;
            }
        }
        let all: Vec<u32> = (0..(w * h) as u32).collect();
        let inputs = Inputs {
            mde: &mde,
            kind: MdeKind::Disparity,
            rgb: None,
        };
        let o = FitOptions::default();
        let err = |m: Method| {
            let p = fit_predict(m, inputs, &depth, &all, &all, &o).unwrap();
            p.iter()
                .zip(&depth.data)
                .map(|(a, b)| (a - b).abs() as f64)
                .sum::<f64>()
                / p.len() as f64
        };
        let (global, local) = (err(Method::ScaleShiftInverse), err(Method::Spatial));
        assert!(
            local < 0.02 && local < 0.2 * global,
            "spatial {local} m, global {global} m"
        );
    }
}
