//! Training targets: Gaussian heatmaps on the network's output grid.
//!
//! The target of a landmark seen at input pixel `(u, v)` is an
//! unnormalised Gaussian with peak 1 centred at
//! `DecodeOptions::pixel_to_grid(u, v)` — the exact inverse of the mapping
//! `sld_core::heatmap::decode` uses, so a perfect network's output decodes
//! back to `(u, v)`.

use sld_core::heatmap::DecodeOptions;

/// Shape of a heatmap target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetOptions {
    /// Standard deviation in grid cells (SLD*: 2.5 at stride 8 = 20 px).
    pub sigma: f32,
    /// Values below this are set to 0 (SLD*: 0.1).
    pub floor: f32,
}

impl Default for TargetOptions {
    fn default() -> Self {
        Self {
            sigma: 2.5,
            floor: 0.1,
        }
    }
}

/// Writes into `out` (`[height, width]`, row-major) a Gaussian with peak 1
/// at the grid position of input pixel `(u, v)` (pixel-centre convention).
/// A landmark outside the grid leaves zeros where the Gaussian does not reach.
pub fn gaussian_target(
    out: &mut [f32],
    [height, width]: [usize; 2],
    (u, v): (f32, f32),
    grid: &DecodeOptions,
    target: &TargetOptions,
) {
    let (gx, gy) = grid.pixel_to_grid(u, v);
    let (sigma, floor) = (target.sigma, target.floor);
    let inv = 1.0 / (2.0 * sigma * sigma);
    for (y, row) in out.chunks_exact_mut(width).take(height).enumerate() {
        let dy = y as f32 - gy;
        for (x, cell) in row.iter_mut().enumerate() {
            let dx = x as f32 - gx;
            let g = (-(dx * dx + dy * dy) * inv).exp();
            *cell = if g >= floor { g } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sld_core::heatmap::{decode, Detection, HeatmapShape};

    #[test]
    fn targets_decode_back_to_their_pixel() {
        let opts = DecodeOptions::for_stride(8.0);
        let (h, w) = (44, 80);
        let mut map = vec![0f32; h * w];
        let mut out = [Detection::default(); 1];
        for (u, v) in [(321.3f32, 175.9f32), (10.0, 10.0), (600.7, 300.2), (3.5, 3.5)] {
            gaussian_target(&mut map, [h, w], (u, v), &opts, &TargetOptions::default());
            let n = decode(
                &map,
                HeatmapShape {
                    landmarks: 1,
                    height: h,
                    width: w,
                },
                &opts,
                &mut out,
            )
            .unwrap();
            assert_eq!(n, 1);
            assert!(
                (out[0].u - u).abs() < 0.1 && (out[0].v - v).abs() < 0.1,
                "{u},{v} -> {:?}",
                out[0]
            );
            assert!(out[0].confidence > 0.9);
        }
    }
}
