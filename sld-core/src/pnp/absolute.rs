//! The absolute-pose problem as a RANSAC [`Estimator`]: P3P on minimal
//! samples, MSAC scoring on reprojection errors in undistorted pixels,
//! local optimisation by LM; and the degeneracy test of a point set.

use heapless::Vec as HVec;
use nalgebra::{Matrix3, Vector3};

use super::p3p;
use super::ransac::{Estimator, Score, MAX_MODELS};
use super::refine::{self, Loss};
use crate::pose::Pose;

/// Per-correspondence working memory for [`solve_pnp`] (one per point).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PointScratch {
    /// Undistorted normalised image coordinates `(X/Z, Y/Z)`.
    pub(crate) n: [f64; 2],
    /// World point, metres.
    pub(crate) x: [f64; 3],
    /// Confidence (≥ 0).
    pub(crate) conf: f64,
    /// Cumulative confidence (weighted sampling).
    pub(crate) cdf: f64,
    /// Index of the correspondence in the caller's input.
    pub(crate) index: u32,
    /// Inlier flag of the current pose.
    pub(crate) inlier: bool,
}

/// Sets each point's inlier flag for `pose`; returns the count.
pub(super) fn mark_inliers(pose: &Pose, pts: &mut [PointScratch], fx: f64, fy: f64, thr2: f64) -> usize {
    let mut count = 0;
    for p in pts.iter_mut() {
        p.inlier = reproj_error2(pose, p, fx, fy) <= thr2;
        count += usize::from(p.inlier);
    }
    count
}

/// Squared reprojection error in pixels² (∞ behind the camera).
#[inline]
fn reproj_error2(pose: &Pose, p: &PointScratch, fx: f64, fy: f64) -> f64 {
    let r = &pose.rotation;
    let t = &pose.translation;
    let x = &p.x;
    let pz = r[(2, 0)] * x[0] + r[(2, 1)] * x[1] + r[(2, 2)] * x[2] + t[2];
    if !(pz > 0.0) {
        return f64::INFINITY;
    }
    let px = r[(0, 0)] * x[0] + r[(0, 1)] * x[1] + r[(0, 2)] * x[2] + t[0];
    let py = r[(1, 0)] * x[0] + r[(1, 1)] * x[1] + r[(1, 2)] * x[2] + t[1];
    let iz = 1.0 / pz;
    let du = fx * (px * iz - p.n[0]);
    let dv = fy * (py * iz - p.n[1]);
    du * du + dv * dv
}

/// True when the points are (nearly) coincident or collinear: the second
/// principal axis of their spread is below `1e-6` of the first, or the
/// spread itself is below `1e-9` of the points' magnitude.
pub(super) fn is_degenerate<'a>(points: impl Iterator<Item = &'a [f64; 3]> + Clone) -> bool {
    let mut count = 0usize;
    let mut mean = Vector3::zeros();
    for p in points.clone() {
        mean += Vector3::from(*p);
        count += 1;
    }
    if count < 3 {
        return true;
    }
    mean /= count as f64;
    let mut cov = Matrix3::<f64>::zeros();
    for p in points {
        let d = Vector3::from(*p) - mean;
        cov += d * d.transpose();
    }
    cov /= count as f64;
    let ev = cov.symmetric_eigenvalues();
    let mut e = [ev[0].abs(), ev[1].abs(), ev[2].abs()];
    e.sort_unstable_by(f64::total_cmp);
    let scale2 = mean.norm_squared().max(1.0);
    !(e[2] > 1e-18 * scale2) || !(e[1] > 1e-12 * e[2])
}

/// The absolute-pose problem for the RANSAC loop.
pub(super) struct AbsolutePose<'a> {
    pub(super) pts: &'a [PointScratch],
    pub(super) fx: f64,
    pub(super) fy: f64,
    /// Squared threshold, pixels².
    pub(super) thr2: f64,
    pub(super) lo_iterations: u32,
    pub(super) lo_wide_factor: f64,
}

impl Estimator for AbsolutePose<'_> {
    type Model = Pose;
    const SAMPLE_SIZE: usize = 3;

    fn len(&self) -> usize {
        self.pts.len()
    }

    fn generate(&self, sample: &[usize], models: &mut HVec<Pose, MAX_MODELS>) {
        let mut y = [Vector3::zeros(); 3];
        let mut x = [Vector3::zeros(); 3];
        for k in 0..3 {
            let p = &self.pts[sample[k]];
            y[k] = Vector3::new(p.n[0], p.n[1], 1.0).normalize();
            x[k] = Vector3::from(p.x);
        }
        p3p::lambda_twist(&y, &x, models);
    }

    fn score(&self, model: &Pose, bound: f64) -> Score {
        let mut cost = 0.0;
        let mut inliers = 0;
        for p in self.pts {
            let e2 = reproj_error2(model, p, self.fx, self.fy);
            if e2 < self.thr2 {
                cost += e2;
                inliers += 1;
            } else {
                cost += self.thr2;
            }
            if cost > bound {
                return Score { cost, inliers };
            }
        }
        Score { cost, inliers }
    }

    fn inliers_in_prefix(&self, model: &Pose, k: usize) -> Option<usize> {
        let pts = self.pts.get(..k)?;
        Some(
            pts.iter()
                .filter(|p| reproj_error2(model, p, self.fx, self.fy) < self.thr2)
                .count(),
        )
    }

    /// Two LM passes with a truncated loss: first at `lo_wide_factor × τ`,
    /// then at `τ`. The wide pass pulls in true inliers that a near-miss
    /// minimal model puts just beyond the threshold (+7 recall points on
    /// the σ = 4 px family, EXPERIMENTS.md).
    fn local_optimize(&self, model: &Pose) -> Pose {
        let c = libm::sqrt(self.thr2);
        let mut m = *model;
        if self.lo_wide_factor > 1.0 {
            let wide = Loss::Truncated(self.lo_wide_factor * c);
            m = refine::refine(&m, self.pts, self.fx, self.fy, wide, false, self.lo_iterations).0;
        }
        refine::refine(
            &m,
            self.pts,
            self.fx,
            self.fy,
            Loss::Truncated(c),
            false,
            self.lo_iterations,
        )
        .0
    }
}
