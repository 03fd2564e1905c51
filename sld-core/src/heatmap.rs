//! Heatmap decoding: one map per landmark → at most one detection each.
//!
//! Input is `L` maps of `H × W` `f32` values, row-major and contiguous
//! (`[L, H, W]`, the layout a CNN writes). For each map:
//!
//! 1. **Peak**: the arg-max cell; its value is the detection's confidence.
//! 2. **Threshold**: maps whose peak is below [`DecodeOptions::threshold`]
//!    yield no detection (SLD* uses 0.2 on raw scores).
//! 3. **Sub-pixel position** ([`Refinement`]): a weighted mean in a square
//!    window around the peak (the SLD paper's choice), or a separable
//!    log-parabola (Gaussian) fit through the peak and its 4-neighbours,
//!    which is exact for sampled Gaussians and the default because it
//!    measured unbiased where the window mean is pulled towards the peak
//!    cell (see `EXPERIMENTS.md`).
//! 4. **Grid → pixels**: heatmap cell `(x, y)` corresponds to input pixel
//!    `(stride·x + offset, stride·y + offset)` in the pixel-centre
//!    convention of [`crate::camera`]. The default `offset = (stride − 1)/2`
//!    puts a cell at the centre of the `stride × stride` block of input
//!    pixels it covers. Training labels must use the same mapping —
//!    [`DecodeOptions::pixel_to_grid`] is its inverse.
//!
//! Decoding never allocates and never panics; a non-finite value that
//! reaches a detection is reported as an error, never passed on.

use core::fmt;

/// Shape of a heatmap stack `[landmarks, height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeatmapShape {
    /// Number of maps (landmarks) `L`.
    pub landmarks: usize,
    /// Rows per map `H` (grid cells).
    pub height: usize,
    /// Columns per map `W` (grid cells).
    pub width: usize,
}

impl HeatmapShape {
    /// Number of `f32` values in the stack, or `None` on overflow.
    pub fn len(&self) -> Option<usize> {
        self.landmarks.checked_mul(self.height)?.checked_mul(self.width)
    }

    /// True when the stack holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// Sub-pixel refinement of a heatmap peak.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refinement {
    /// The centre of the arg-max cell (no refinement).
    None,
    /// Mean of cell positions weighted by `max(value, 0)` over the
    /// `(2·radius + 1)²` window centred on the peak, clipped at the map
    /// border (SLD's 9×9 window at stride 8 is `radius = 4`).
    WeightedMean {
        /// Half-width of the window in grid cells.
        radius: u8,
    },
    /// Separable 3-point log-parabola fit (exact for a sampled Gaussian);
    /// falls back to the cell centre on an axis where a neighbour is
    /// missing (border) or not positive.
    GaussianFit,
    /// Separable 3-point parabola fit on the raw values (for maps that hold
    /// log-probabilities, e.g. logits); falls back to the cell centre on an
    /// axis where a neighbour is missing (border) or the values are not
    /// concave there.
    Parabola,
}

/// Options for [`decode`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Minimum peak value for a detection (SLD* uses 0.2).
    pub threshold: f32,
    /// Sub-pixel refinement.
    pub refinement: Refinement,
    /// Input pixels per grid cell (8 for the SLD* network).
    pub stride: f32,
    /// Input-pixel position of cell `(0, 0)`; default `(stride − 1) / 2`.
    pub offset: f32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self::for_stride(8.0)
    }
}

impl DecodeOptions {
    /// Checks every option against its range; the error names the first
    /// one out of range.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let checks: [(bool, &'static str); 4] = [
            (self.threshold.is_finite(), "threshold must be finite"),
            (
                self.stride > 0.0 && self.stride <= MAX_STRIDE,
                "stride must lie in (0, 65536] input pixels per cell",
            ),
            (
                self.offset.is_finite() && self.offset.abs() <= MAX_STRIDE,
                "offset must lie in [-65536, 65536] input pixels",
            ),
            (
                !matches!(self.refinement, Refinement::WeightedMean { radius } if radius > 127),
                "the weighted-mean window radius must be at most 127 cells",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(DecodeError::InvalidOptions(what)),
            None => Ok(()),
        }
    }

    /// Defaults for a given stride: threshold 0.2, Gaussian fit, cell
    /// centres at `(stride − 1) / 2`.
    pub fn for_stride(stride: f32) -> Self {
        Self {
            threshold: 0.2,
            refinement: Refinement::GaussianFit,
            stride,
            offset: 0.5 * (stride - 1.0),
        }
    }

    /// Grid coordinates (cells) → input pixels.
    #[inline]
    pub fn grid_to_pixel(&self, gx: f32, gy: f32) -> (f32, f32) {
        (self.stride * gx + self.offset, self.stride * gy + self.offset)
    }

    /// Input pixels → grid coordinates (cells); the inverse of
    /// [`DecodeOptions::grid_to_pixel`], for building training targets.
    #[inline]
    pub fn pixel_to_grid(&self, u: f32, v: f32) -> (f32, f32) {
        ((u - self.offset) / self.stride, (v - self.offset) / self.stride)
    }
}

/// One decoded landmark.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Detection {
    /// Index of the landmark (the heatmap channel).
    pub landmark: u32,
    /// Horizontal position in input pixels (pixel-centre convention).
    pub u: f32,
    /// Vertical position in input pixels (pixel-centre convention).
    pub v: f32,
    /// Peak value of the heatmap.
    pub confidence: f32,
}

/// Why a heatmap stack could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// `heatmaps.len()` differs from `L·H·W` (or that product overflows).
    ShapeMismatch {
        /// Values expected from the shape (`usize::MAX` on overflow).
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// The output slice holds fewer than `L` detections.
    OutputTooSmall {
        /// Capacity needed (`L`).
        needed: usize,
        /// Capacity given.
        capacity: usize,
    },
    /// An option is out of range; names it and its range.
    InvalidOptions(&'static str),
    /// A map holds a NaN or an infinity (anywhere: a broken accelerator's
    /// output is reported, never decoded around), or its refined position
    /// overflows.
    NonFinite {
        /// The landmark (channel) concerned.
        landmark: u32,
    },
}

/// Largest [`DecodeOptions::stride`] and `|offset|`, input pixels (the
/// largest image side sld accepts): positions stay finite in `f32`.
pub const MAX_STRIDE: f32 = 65536.0;

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShapeMismatch { expected, actual } => {
                write!(f, "heatmap buffer holds {actual} values, shape needs {expected}")
            }
            Self::OutputTooSmall { needed, capacity } => {
                write!(f, "output holds {capacity} detections, need room for {needed}")
            }
            Self::InvalidOptions(what) => write!(f, "decode option out of range: {what}"),
            Self::NonFinite { landmark } => {
                write!(f, "heatmap of landmark {landmark} holds a NaN or an infinity")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Decodes `heatmaps` (`[L, H, W]`, row-major) into `out`, returning how
/// many detections were written (in landmark order). `out` must hold at
/// least `L` entries so that nothing is ever dropped.
pub fn decode(
    heatmaps: &[f32],
    shape: HeatmapShape,
    opts: &DecodeOptions,
    out: &mut [Detection],
) -> Result<usize, DecodeError> {
    let expected = shape.len().unwrap_or(usize::MAX);
    if expected != heatmaps.len() {
        return Err(DecodeError::ShapeMismatch {
            expected,
            actual: heatmaps.len(),
        });
    }
    if out.len() < shape.landmarks {
        return Err(DecodeError::OutputTooSmall {
            needed: shape.landmarks,
            capacity: out.len(),
        });
    }
    opts.validate()?;
    let plane = shape.height * shape.width;
    if plane == 0 {
        return Ok(0);
    }
    let mut count = 0;
    for (l, map) in heatmaps.chunks_exact(plane).enumerate() {
        let landmark = l as u32;
        let (idx, peak) = argmax(map);
        if peak.is_nan() || peak == f32::INFINITY {
            return Err(DecodeError::NonFinite { landmark });
        }
        if !(peak >= opts.threshold) {
            continue;
        }
        let (py, px) = (idx / shape.width, idx % shape.width);
        let (gx, gy) = match opts.refinement {
            Refinement::None => (px as f32, py as f32),
            Refinement::WeightedMean { radius } => {
                weighted_mean(map, shape.width, shape.height, px, py, radius as usize)
            }
            Refinement::GaussianFit => three_point_fit(map, shape.width, shape.height, px, py, log_parabola),
            Refinement::Parabola => three_point_fit(map, shape.width, shape.height, px, py, parabola),
        };
        let (u, v) = opts.grid_to_pixel(gx, gy);
        if !(u.is_finite() && v.is_finite()) {
            return Err(DecodeError::NonFinite { landmark });
        }
        // `out.len() >= L` was checked, so `count < out.len()`.
        if let Some(slot) = out.get_mut(count) {
            *slot = Detection {
                landmark,
                u,
                v,
                confidence: peak,
            };
            count += 1;
        }
    }
    Ok(count)
}

/// Probability that a landmark is in the image from its map of spatial
/// logits `z` (a [`HeatmapKind::Logits`] output): the softmax over the
/// cells plus an "absent" bin of logit 0 puts `Σ eᶻ / (1 + Σ eᶻ)` on the
/// cells. Computed without overflow; NaN in → NaN out; an empty map → 0.
///
/// [`HeatmapKind::Logits`]: crate::model::HeatmapKind::Logits
pub fn presence(z: &[f32]) -> f32 {
    // NaN is skipped by the max and caught by the sum (NaN in, NaN out).
    let m = crate::exp::max_at_least(z, 0.0);
    if m == f32::INFINITY {
        return if z.iter().any(|v| v.is_nan()) {
            f32::NAN
        } else {
            1.0
        };
    }
    let s = crate::exp::sum_exp_shifted(z, m);
    let absent = crate::exp::exp_nonpositive(-m);
    s / (s + absent)
}

/// Decodes into a fixed-capacity `heapless::Vec` (cleared first).
pub fn decode_into<const N: usize>(
    heatmaps: &[f32],
    shape: HeatmapShape,
    opts: &DecodeOptions,
    out: &mut heapless::Vec<Detection, N>,
) -> Result<usize, DecodeError> {
    out.clear();
    let mut buf = [Detection::default(); 64];
    // Decode in blocks of 64 landmarks through a stack buffer so the
    // capacity check stays exact and nothing is dropped.
    if shape.landmarks > N {
        return Err(DecodeError::OutputTooSmall {
            needed: shape.landmarks,
            capacity: N,
        });
    }
    let plane = shape.height.saturating_mul(shape.width);
    let expected = shape.len().unwrap_or(usize::MAX);
    if expected != heatmaps.len() {
        return Err(DecodeError::ShapeMismatch {
            expected,
            actual: heatmaps.len(),
        });
    }
    if plane == 0 {
        return Ok(0);
    }
    for (block, maps) in heatmaps.chunks(64 * plane).enumerate() {
        let sub = HeatmapShape {
            landmarks: maps.len() / plane,
            ..shape
        };
        let n = decode(maps, sub, opts, &mut buf)?;
        for d in &buf[..n] {
            let mut d = *d;
            d.landmark += (block * 64) as u32;
            // Capacity N >= L was checked above.
            let _ = out.push(d);
        }
    }
    Ok(out.len())
}

/// Index and value of the largest element (first one on ties). NaNs are
/// skipped; an all-NaN map returns NaN.
#[inline]
fn argmax(map: &[f32]) -> (usize, f32) {
    // Pass 1: the block of 64 with the largest value, 8 lanes at a time so
    // the compiler emits packed max instructions.
    const BLOCK: usize = 64;
    let mut best_block = 0;
    let mut best = f32::NEG_INFINITY;
    let mut poison = 0.0f32;
    for (b, block) in map.chunks(BLOCK).enumerate() {
        let (m, p) = block_max(block);
        poison += p;
        if m > best {
            best = m;
            best_block = b;
        }
    }
    // A NaN or an infinity anywhere makes the whole map suspect (a
    // misbehaving accelerator): report it rather than decode around it.
    if poison.is_nan() {
        return (0, f32::NAN);
    }
    // Pass 2: its position inside that block.
    let start = best_block * BLOCK;
    let end = (start + BLOCK).min(map.len());
    for (i, &v) in map[start..end].iter().enumerate() {
        if v == best {
            return (start + i, v);
        }
    }
    (0, f32::NAN)
}

/// The largest value of `block`, and a value that is NaN exactly when the
/// block holds a NaN or an infinity (`v · 0` is NaN only for those).
#[inline]
fn block_max(block: &[f32]) -> (f32, f32) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut poison = [0.0f32; 8];
    let mut chunks = block.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            // `>` is false for NaN, so NaNs never win.
            lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
            poison[i] += c[i] * 0.0;
        }
    }
    let mut m = f32::NEG_INFINITY;
    let mut p = poison.iter().sum::<f32>();
    for &v in lanes.iter().chain(chunks.remainder()) {
        if v > m {
            m = v;
        }
    }
    for &v in chunks.remainder() {
        p += v * 0.0;
    }
    (m, p)
}

fn weighted_mean(map: &[f32], w: usize, h: usize, px: usize, py: usize, r: usize) -> (f32, f32) {
    let (x0, x1) = (px.saturating_sub(r), (px + r).min(w - 1));
    let (y0, y1) = (py.saturating_sub(r), (py + r).min(h - 1));
    let (mut sw, mut sx, mut sy) = (0.0f32, 0.0f32, 0.0f32);
    for y in y0..=y1 {
        let row = &map[y * w..(y + 1) * w];
        for (x, &v) in row.iter().enumerate().take(x1 + 1).skip(x0) {
            // NaN propagates into the sums and is caught by the caller.
            let wv = if v > 0.0 || v.is_nan() { v } else { 0.0 };
            sw += wv;
            sx += wv * (x as f32 - px as f32);
            sy += wv * (y as f32 - py as f32);
        }
    }
    // sw >= peak >= threshold; guard anyway for a threshold <= 0.
    if !(sw > 0.0) && !sw.is_nan() {
        return (px as f32, py as f32);
    }
    (px as f32 + sx / sw, py as f32 + sy / sw)
}

/// Separable sub-cell fit around the peak `(px, py)`: `fit(left, centre,
/// right)` gives the vertex offset along each axis; 0 at the border.
fn three_point_fit(
    map: &[f32],
    w: usize,
    h: usize,
    px: usize,
    py: usize,
    fit: fn(f32, f32, f32) -> f32,
) -> (f32, f32) {
    let at = |x: usize, y: usize| map[y * w + x];
    let c = at(px, py);
    let dx = if px > 0 && px + 1 < w {
        fit(at(px - 1, py), c, at(px + 1, py))
    } else {
        0.0
    };
    let dy = if py > 0 && py + 1 < h {
        fit(at(px, py - 1), c, at(px, py + 1))
    } else {
        0.0
    };
    (px as f32 + dx, py as f32 + dy)
}

/// Vertex offset of the parabola through `(−1, a), (0, b), (1, c)`,
/// clamped to `[−0.5, 0.5]`; 0 when it is not concave (or the values are
/// infinite). NaN in → NaN out.
#[inline]
fn parabola(a: f32, b: f32, c: f32) -> f32 {
    if a.is_nan() || b.is_nan() || c.is_nan() {
        return f32::NAN;
    }
    let den = a - 2.0 * b + c;
    if !(den < 0.0 && den.is_finite()) {
        return 0.0;
    }
    let off = 0.5 * (a - c) / den;
    if off.is_finite() {
        off.clamp(-0.5, 0.5)
    } else {
        0.0
    }
}

/// Vertex offset of the parabola through `(−1, ln a), (0, ln b), (1, ln c)`,
/// clamped to `[−0.5, 0.5]`; 0 when a value is not positive. NaN in → NaN out.
#[inline]
fn log_parabola(a: f32, b: f32, c: f32) -> f32 {
    if a.is_nan() || b.is_nan() || c.is_nan() {
        return f32::NAN;
    }
    if !(a > 0.0 && b > 0.0 && c > 0.0) {
        return 0.0;
    }
    let (la, lb, lc) = (libm::logf(a), libm::logf(b), libm::logf(c));
    let den = la - 2.0 * lb + lc;
    if !(den < 0.0) {
        return 0.0;
    }
    (0.5 * (la - lc) / den).clamp(-0.5, 0.5)
}
