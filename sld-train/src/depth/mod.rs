//! Depth fill: complete a holey metric depth map (COLMAP/MVS) with a
//! monocular depth estimate (MDE) that has a value everywhere but no scale.
//!
//! * [`io`] — depth maps in `.npy`, `.pfm`, 16-bit PNG (millimetres) and
//!   COLMAP's dense `.bin`; 0 or NaN = missing.
//! * [`fit`] — regressors from MDE to metric depth, fitted on the pixels
//!   where both exist: robust scale-and-shift in depth or inverse depth, a
//!   spatially varying scale-and-shift, and the paper's MLP (in Candle).
//! * [`simulate`] — an MDE map and a COLMAP-like map from a rendered true
//!   depth, for tests and benchmarks with ground truth.
//! * [`eval`] — the paper's hold-out protocol (hide known depths, predict
//!   them) with random pixels and contiguous blocks, and the metrics.
//!
//! Units: depth `z` along the optical axis in metres; pixel `(x, y)` =
//! column, row of the map.

pub mod eval;
pub mod fit;
pub mod io;
pub mod simulate;

/// A dense `f32` map, row-major; for depth, metres with NaN = missing.
#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Values, `width × height`, row-major.
    pub data: Vec<f32>,
}

impl Map {
    /// A map filled with `v`.
    pub fn filled(width: usize, height: usize, v: f32) -> Self {
        Self {
            width,
            height,
            data: vec![v; width * height],
        }
    }

    /// True where a depth is known (finite and > 0).
    pub fn known(&self, i: usize) -> bool {
        let d = self.data[i];
        d.is_finite() && d > 0.0
    }

    /// Number of known pixels.
    pub fn count_known(&self) -> usize {
        (0..self.data.len()).filter(|&i| self.known(i)).count()
    }
}

/// What an MDE map holds: relative depth (larger = farther) or relative
/// disparity / inverse depth (larger = closer, as Depth-Anything writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum MdeKind {
    /// Larger values are farther.
    Depth,
    /// Larger values are closer (inverse depth up to scale and shift).
    Disparity,
}
