//! The paper's hold-out protocol: hide some known depths, fit on the rest,
//! predict the hidden ones and compare. Hidden sets are random pixels or
//! contiguous square blocks (real holes are blocks: low-texture walls,
//! occlusions), 20 % of the known pixels by default.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use sld_core::rng::SplitMix64;

use super::fit::{fit_predict, FitOptions, Inputs, Method};
use super::DepthMap;

/// How the hidden pixels are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hide {
    /// Independent random pixels.
    Random,
    /// Random squares with sides of 1/8 of the shorter image side.
    Blocks,
}

/// Errors of predicted against reference depths (metres).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Metrics {
    /// Pixels compared.
    pub n: usize,
    /// Hidden pixels the method left missing (no positive finite prediction).
    pub unfilled: usize,
    /// Mean squared error, m².
    pub mse: f64,
    /// Mean absolute error, m.
    pub mae: f64,
    /// Root mean squared error, m.
    pub rmse: f64,
    /// Mean of |pred − ref| / ref.
    pub abs_rel: f64,
    /// Fraction with max(pred/ref, ref/pred) < 1.25.
    pub delta1: f64,
}

/// Metrics of `pred` against `reference` over pairs where the reference is
/// known; missing predictions are counted in `unfilled`, not in the errors.
pub fn metrics(pred: &[f32], reference: &[f32]) -> Metrics {
    let mut m = Metrics::default();
    for (&p, &r) in pred.iter().zip(reference) {
        if !(r.is_finite() && r > 0.0) {
            continue;
        }
        if !(p.is_finite() && p > 0.0) {
            m.unfilled += 1;
            continue;
        }
        let (p, r) = (p as f64, r as f64);
        let e = p - r;
        m.n += 1;
        m.mse += e * e;
        m.mae += e.abs();
        m.abs_rel += e.abs() / r;
        if (p / r).max(r / p) < 1.25 {
            m.delta1 += 1.0;
        }
    }
    if m.n > 0 {
        let n = m.n as f64;
        m.mse /= n;
        m.mae /= n;
        m.abs_rel /= n;
        m.delta1 /= n;
        m.rmse = m.mse.sqrt();
    }
    m
}

/// Splits the known pixels of `depth` into (kept, hidden) with about
/// `fraction` of them hidden.
pub fn split(depth: &DepthMap, how: Hide, fraction: f64, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut rng = SplitMix64::new(seed);
    let known: Vec<u32> = (0..depth.data.len() as u32)
        .filter(|&i| depth.known(i as usize))
        .collect();
    let mut hidden = vec![false; depth.data.len()];
    match how {
        Hide::Random => {
            for &i in &known {
                hidden[i as usize] = rng.unit_f64() < fraction;
            }
        }
        Hide::Blocks => {
            let (w, h) = (depth.width, depth.height);
            let side = (w.min(h) / 8).max(1);
            let target = (known.len() as f64 * fraction) as usize;
            let mut count = 0;
            let mut tries = 0;
            while count < target && tries < 100_000 {
                tries += 1;
                let x0 = (rng.unit_f64() * (w.saturating_sub(side) + 1) as f64) as usize;
                let y0 = (rng.unit_f64() * (h.saturating_sub(side) + 1) as f64) as usize;
                for y in y0..(y0 + side).min(h) {
                    for x in x0..(x0 + side).min(w) {
                        let i = y * w + x;
                        if depth.known(i) && !hidden[i] {
                            hidden[i] = true;
                            count += 1;
                        }
                    }
                }
            }
        }
    }
    known.into_iter().partition(|&i| !hidden[i as usize])
}

/// One row of a hold-out evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The method.
    pub method: Method,
    /// How pixels were hidden.
    pub hide: Hide,
    /// Errors at the hidden pixels against the given depth map.
    pub vs_depth: Metrics,
    /// Errors at the hidden pixels against the true depth, when given.
    pub vs_truth: Option<Metrics>,
    /// Seconds to fit and predict.
    pub seconds: f64,
}

/// Hides known depths, fits `method` on the rest and scores the hidden ones.
pub fn holdout(
    method: Method,
    inputs: Inputs<'_>,
    depth: &DepthMap,
    truth: Option<&DepthMap>,
    how: Hide,
    fraction: f64,
    o: &FitOptions,
) -> Result<Row> {
    let (kept, hidden) = split(depth, how, fraction, o.seed ^ 0x41de);
    let t0 = Instant::now();
    let pred = fit_predict(method, inputs, depth, &kept, &hidden, o)?;
    let seconds = t0.elapsed().as_secs_f64();
    let at = |m: &DepthMap| -> Vec<f32> { hidden.iter().map(|&i| m.data[i as usize]).collect() };
    Ok(Row {
        method,
        hide: how,
        vs_depth: metrics(&pred, &at(depth)),
        vs_truth: truth.map(|t| metrics(&pred, &at(t))),
        seconds,
    })
}
