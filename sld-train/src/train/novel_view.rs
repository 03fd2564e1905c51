//! Novel-view augmentation: a training image re-rendered from a nearby
//! camera (moved and turned) by forward-warping its pixels with their
//! depth, and its landmarks re-projected and re-checked for occlusion.
//! Rotations and zoom ([`super::samples::Rotation2`]) cannot show what a
//! query session's other camera *positions* show (parallax, occlusion,
//! scale across the image); this can, within what the source image saw.
//!
//! Conventions: camera frame `x` right, `y` down, `z` forward, metres;
//! pixels at network-input resolution, pixel-centre convention; depth is
//! `z` along the optical axis, 0 = unknown.

use sld_core::nalgebra::{Matrix3, Rotation3, Vector3};
use sld_core::rng::SplitMix64;

use super::samples::Label;

/// The move from the source camera to the virtual one: a point `X` of the
/// source camera frame is at `R·X + t` in the new one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NovelView {
    /// Rotation, source camera frame to new camera frame.
    pub r: Matrix3<f64>,
    /// Translation, metres (new camera frame).
    pub t: Vector3<f64>,
}

/// How far [`NovelView::random`] moves the camera, as a fraction of the
/// image's median depth (so a room-scale image moves ~0.4 m at most).
pub const MAX_SHIFT: f64 = 0.15;

impl NovelView {
    /// A random nearby camera for an image of median depth `median_depth`
    /// (metres): moved up to [`MAX_SHIFT`]·median depth in a uniformly
    /// random direction, turned by yaw/pitch uniform in ±10° and roll in
    /// ±10°.
    pub fn random(rng: &mut SplitMix64, median_depth: f64) -> Self {
        let dir = loop {
            let v = Vector3::new(
                rng.uniform(-1.0, 1.0),
                rng.uniform(-1.0, 1.0),
                rng.uniform(-1.0, 1.0),
            );
            let n = v.norm();
            if n > 1e-3 && n <= 1.0 {
                break v / n;
            }
        };
        let shift = MAX_SHIFT * median_depth.max(0.1) * rng.unit_f64();
        let deg = |rng: &mut SplitMix64| rng.uniform(-10.0, 10.0).to_radians();
        let r = Rotation3::from_axis_angle(&Vector3::z_axis(), deg(rng))
            * Rotation3::from_axis_angle(&Vector3::x_axis(), deg(rng))
            * Rotation3::from_axis_angle(&Vector3::y_axis(), deg(rng));
        NovelView {
            r: *r.matrix(),
            t: dir * shift,
        }
    }

    /// Re-renders a `[C, h, w]` image with per-pixel depth `depth` (`w·h`
    /// values, metres, 0 unknown) and intrinsics `k = [fx, fy, cx, cy]`
    /// from the new camera: each source pixel lands, nearest first
    /// (z-buffer), on the pixels its footprint covers; one-pixel cracks are
    /// filled from their neighbours; what the source never saw stays 0.
    /// Returns the image and the new view's depth (0 where empty).
    pub fn render(
        &self,
        input: &[f32],
        channels: usize,
        w: usize,
        h: usize,
        depth: &[f32],
        k: [f64; 4],
    ) -> (Vec<f32>, Vec<f32>) {
        let plane = w * h;
        let mut out = vec![0f32; channels * plane];
        let mut zbuf = vec![f32::INFINITY; plane];
        let mut from = vec![usize::MAX; plane];
        if depth.len() < plane || input.len() < channels * plane {
            return (out, vec![0.0; plane]);
        }
        let [fx, fy, cx, cy] = k;
        for y in 0..h {
            for x in 0..w {
                let z = depth[y * w + x] as f64;
                if !(z.is_finite() && z > 0.0) {
                    continue;
                }
                let p = self.r * Vector3::new((x as f64 - cx) / fx * z, (y as f64 - cy) / fy * z, z) + self.t;
                if p[2] < 0.05 {
                    continue;
                }
                let (u, v) = (fx * p[0] / p[2] + cx, fy * p[1] / p[2] + cy);
                // Footprint: the source pixel grows as the camera nears it.
                let grow = (z / p[2]).clamp(1.0, 3.0);
                let rad = 0.5 * grow;
                let (x0, x1) = ((u - rad).round().max(0.0), (u + rad).round().min(w as f64 - 1.0));
                let (y0, y1) = ((v - rad).round().max(0.0), (v + rad).round().min(h as f64 - 1.0));
                if x0 > x1 || y0 > y1 {
                    continue;
                }
                for yy in y0 as usize..=y1 as usize {
                    for xx in x0 as usize..=x1 as usize {
                        let i = yy * w + xx;
                        if (p[2] as f32) < zbuf[i] {
                            zbuf[i] = p[2] as f32;
                            from[i] = y * w + x;
                        }
                    }
                }
            }
        }
        // One-pixel cracks: an empty pixel with both neighbours filled
        // along a row or column takes the nearer one.
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if from[i] != usize::MAX {
                    continue;
                }
                let pairs = [
                    (x > 0 && x + 1 < w).then(|| (i - 1, i + 1)),
                    (y > 0 && y + 1 < h).then(|| (i - w, i + w)),
                ];
                for (a, b) in pairs.into_iter().flatten() {
                    if from[a] != usize::MAX
                        && from[b] != usize::MAX
                        && zbuf[a].is_finite()
                        && zbuf[b].is_finite()
                    {
                        let src = if zbuf[a] <= zbuf[b] { a } else { b };
                        from[i] = from[src];
                        zbuf[i] = zbuf[src];
                        break;
                    }
                }
            }
        }
        for (i, &s) in from.iter().enumerate() {
            if s == usize::MAX {
                zbuf[i] = 0.0;
                continue;
            }
            for c in 0..channels {
                out[c * plane + i] = input[c * plane + s];
            }
        }
        (out, zbuf)
    }

    /// Moves a sample's labels: each landmark's source-camera point
    /// `points[l]` (metres) is re-projected; a visible landmark stays
    /// visible only when it lands inside the image, in front, and not
    /// behind the new view's surface (`zbuf`, from [`NovelView::render`];
    /// 10 % + 5 cm tolerance, or where the new view is empty); others keep
    /// their weight (an "unverified" one that leaves the image becomes 0).
    pub fn labels(
        &self,
        labels: &[Label],
        points: &[[f32; 3]],
        zbuf: &[f32],
        w: usize,
        h: usize,
        k: [f64; 4],
    ) -> Vec<Label> {
        let [fx, fy, cx, cy] = k;
        labels
            .iter()
            .zip(points)
            .map(|(&(_, wgt), p)| {
                let q = self.r * Vector3::new(p[0] as f64, p[1] as f64, p[2] as f64) + self.t;
                if q[2] < 0.1 {
                    return (None, 0.0);
                }
                let (u, v) = (fx * q[0] / q[2] + cx, fy * q[1] / q[2] + cy);
                let inside = u >= -0.5 && v >= -0.5 && u < w as f64 - 0.5 && v < h as f64 - 0.5;
                let px = Some((u as f32, v as f32));
                if !inside {
                    return (px, 0.0);
                }
                if wgt != 1.0 {
                    return (px, wgt);
                }
                let i = (v.round() as usize).min(h - 1) * w + (u.round() as usize).min(w - 1);
                let surface = zbuf.get(i).copied().unwrap_or(0.0) as f64;
                let hidden = surface > 0.0 && q[2] > surface * 1.1 + 0.05;
                (px, if hidden { 0.0 } else { 1.0 })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: [f64; 4] = [200.0, 200.0, 79.5, 59.5];

    /// A textured wall at 3 m seen after a sideways step: a bright pixel
    /// and its landmark land on the same pixel, where the analytic
    /// projection puts them.
    #[test]
    fn image_and_labels_move_together() {
        let (w, h) = (160usize, 120usize);
        let depth = vec![3.0f32; w * h];
        let mut img = vec![0f32; w * h];
        let (sx, sy) = (60usize, 50usize);
        img[sy * w + sx] = 1.0;
        let z = 3.0;
        let p = [
            ((sx as f64 - K[2]) / K[0] * z) as f32,
            ((sy as f64 - K[3]) / K[1] * z) as f32,
            z as f32,
        ];
        let nv = NovelView {
            r: *Rotation3::from_axis_angle(&Vector3::y_axis(), 0.05).matrix(),
            t: Vector3::new(0.3, -0.1, 0.2),
        };
        let (out, zbuf) = nv.render(&img, 1, w, h, &depth, K);
        let l = nv.labels(&[(Some((sx as f32, sy as f32)), 1.0)], &[p], &zbuf, w, h, K);
        let (u, v) = l[0].0.unwrap();
        assert_eq!(l[0].1, 1.0);
        let q = nv.r * Vector3::new(p[0] as f64, p[1] as f64, p[2] as f64) + nv.t;
        assert!((u as f64 - (K[0] * q[0] / q[2] + K[2])).abs() < 1e-3);
        let at = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        let (bx, by) = ((at % w) as f32, (at / w) as f32);
        assert!(
            (bx - u).abs() <= 1.0 && (by - v).abs() <= 1.0,
            "peak ({bx},{by}) vs ({u},{v})"
        );
        // The wall covers most of the new view, not the border the source never saw.
        let empty = zbuf.iter().filter(|&&d| d == 0.0).count();
        assert!(empty > 0 && empty < w * h / 2, "{empty}");
    }

    /// A landmark on the back wall that a near box hides from the new
    /// camera becomes "not visible".
    #[test]
    fn occluded_landmark_becomes_invisible() {
        let (w, h) = (160usize, 120usize);
        // Back wall at 4 m; a box at 1.5 m covering the left third.
        let depth: Vec<f32> = (0..w * h).map(|i| if i % w < 50 { 1.5 } else { 4.0 }).collect();
        let img = vec![0.5f32; w * h];
        // Landmark on the back wall just right of the box's edge.
        let (sx, sy) = (56.0f64, 60.0f64);
        let p = [
            ((sx - K[2]) / K[0] * 4.0) as f32,
            ((sy - K[3]) / K[1] * 4.0) as f32,
            4.0,
        ];
        // Moving the camera left slides the near box (parallax) over it.
        let nv = NovelView {
            r: Matrix3::identity(),
            t: Vector3::new(0.3, 0.0, 0.0),
        };
        let (_, zbuf) = nv.render(&img, 1, w, h, &depth, K);
        let l = nv.labels(&[(Some((sx as f32, sy as f32)), 1.0)], &[p], &zbuf, w, h, K);
        assert_eq!(l[0].1, 0.0, "{l:?}");
        // Without the move it stays visible.
        let still = NovelView {
            r: Matrix3::identity(),
            t: Vector3::zeros(),
        };
        let (_, zbuf) = still.render(&img, 1, w, h, &depth, K);
        let l = still.labels(&[(Some((sx as f32, sy as f32)), 1.0)], &[p], &zbuf, w, h, K);
        assert_eq!(l[0].1, 1.0);
    }
}
