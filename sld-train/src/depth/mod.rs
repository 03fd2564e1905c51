//! Depth fill: complete a holey metric depth map (COLMAP/MVS) with a
//! monocular depth estimate (MDE) that has a value everywhere but no scale.
//!
//! * [`io`] — depth maps in `.npy`, `.pfm`, 16-bit PNG (millimetres) and
//!   COLMAP's dense `.bin`; 0 or NaN = missing.
//! * [`fit`] — regressors from MDE to metric depth, fitted on the pixels
//!   where both exist: robust scale-and-shift in depth or inverse depth, a
//!   spatially varying scale-and-shift, and the paper's MLP (in Candle).
//! * [`mlp`] — the paper's MLP regressor, in Candle.
//! * [`simulate`] — an MDE map and a COLMAP-like map from a rendered true
//!   depth, for tests and benchmarks with ground truth.
//! * [`fill`] — inputs read and checked, holes filled (`sld depth fill`).
//! * [`labels`] — visibility labels from raw vs filled depth against the
//!   truth (`sld depth labels`).
//! * [`holdout`] — the paper's hold-out protocol (hide known depths, predict
//!   them) with random pixels and contiguous blocks, and the metrics.
//!
//! Units: depth `z` along the optical axis in metres; pixel `(x, y)` =
//! column, row of the map.

pub mod fill;
pub mod fit;
pub mod holdout;
pub mod io;
pub mod labels;
pub mod mlp;
pub mod simulate;

pub use crate::data::depth_map::DepthMap;

/// What an MDE map holds: relative depth (larger = farther) or relative
/// disparity / inverse depth (larger = closer, as Depth-Anything writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MdeKind {
    /// Larger values are farther.
    Depth,
    /// Larger values are closer (inverse depth up to scale and shift).
    Disparity,
}
