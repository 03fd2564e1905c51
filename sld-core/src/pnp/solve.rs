//! [`solve_pnp`]: checks → undistort → sort by confidence → LO-RANSAC →
//! final refinement; and [`PnpSolver`], which owns the scratch.

use super::absolute::{is_degenerate, mark_inliers, AbsolutePose, PointScratch};
use super::error::{PnpError, PointProblem, MAX_COORDINATE};
use super::options::{PnpOptions, Sampling};
use super::ransac::{self, RansacOptions};
use super::refine::{self, Loss, RefineStats};
use super::sampler::{Exhaustive, Prosac, Uniform, Weighted};
use crate::camera::Camera;
use crate::pose::Pose;
use crate::rng::SplitMix64;

/// A solved pose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PnpSolution {
    /// World-to-camera pose.
    pub pose: Pose,
    /// Inliers of the final pose (reprojection error ≤ threshold).
    pub inliers: usize,
    /// RANSAC iterations (minimal samples drawn).
    pub iterations: u32,
    /// Local optimisations run inside RANSAC.
    pub local_optimizations: u32,
    /// Root-mean-square reprojection error over the inliers, pixels.
    pub rms_px: f64,
    /// Final refinement statistics.
    pub refine: RefineStats,
}

/// Solves for the world-to-camera pose from `points2d` (distorted pixels,
/// pixel-centre convention), `points3d` (world, metres) and optional
/// `confidence` (≥ 0, higher = more likely correct).
///
/// `scratch` and, when given, `inlier_mask` must hold at least
/// `points2d.len()` entries; the mask is written (in input order) only on
/// success. Deterministic for a given `opts.seed`.
pub fn solve_pnp(
    points2d: &[[f64; 2]],
    points3d: &[[f64; 3]],
    confidence: Option<&[f64]>,
    camera: &Camera,
    opts: &PnpOptions,
    scratch: &mut [PointScratch],
    inlier_mask: Option<&mut [bool]>,
) -> Result<PnpSolution, PnpError> {
    let n = points2d.len();
    if points3d.len() != n || confidence.is_some_and(|c| c.len() != n) {
        return Err(PnpError::LengthMismatch);
    }
    if n < 4 {
        return Err(PnpError::TooFewPoints { given: n });
    }
    if n > u32::MAX as usize || scratch.len() < n || inlier_mask.as_ref().is_some_and(|m| m.len() < n) {
        return Err(PnpError::ScratchTooSmall { needed: n });
    }
    camera.validate().map_err(PnpError::InvalidCamera)?;
    opts.validate()?;
    let pts = &mut scratch[..n];
    for (i, s) in pts.iter_mut().enumerate() {
        let conf = confidence.map_or(1.0, |c| c[i]);
        let x = points3d[i];
        let why = if !points2d[i].iter().all(|v| v.is_finite()) {
            Some(PointProblem::NonFinite2d)
        } else if !x.iter().all(|v| v.is_finite()) {
            Some(PointProblem::NonFinite3d)
        } else if !x.iter().all(|v| v.abs() <= MAX_COORDINATE) {
            Some(PointProblem::Huge3d)
        } else if !conf.is_finite() {
            Some(PointProblem::NonFiniteConfidence)
        } else if conf < 0.0 {
            Some(PointProblem::NegativeConfidence)
        } else {
            None
        };
        if let Some(why) = why {
            return Err(PnpError::InvalidPoint { index: i, why });
        }
        let nrm = camera
            .unproject(points2d[i])
            .map_err(|_| PnpError::InvalidPoint {
                index: i,
                why: PointProblem::NotUndistortable,
            })?;
        *s = PointScratch {
            n: nrm,
            x,
            conf,
            cdf: 0.0,
            index: i as u32,
            inlier: false,
        };
    }
    // Degeneracy is a property of a sample, not of the whole set: one far
    // outlier makes the rest look coincident next to it, yet the others
    // determine the pose. Only the consensus (below) must be well spread.
    // Highest confidence first; ties keep input order (deterministic).
    pts.sort_unstable_by(|a, b| b.conf.total_cmp(&a.conf).then(a.index.cmp(&b.index)));

    if opts.sampling == Sampling::Weighted {
        let mut acc = 0.0;
        for p in pts.iter_mut() {
            acc += p.conf;
            p.cdf = acc;
        }
    }
    let est = AbsolutePose {
        pts,
        fx: camera.fx,
        fy: camera.fy,
        thr2: opts.max_reproj_px * opts.max_reproj_px,
        lo_iterations: opts.lo_iterations,
        lo_wide_factor: opts.lo_wide_factor,
    };
    let mut rng = SplitMix64::new(opts.seed);
    let uniform = |rng: &mut SplitMix64| ransac::ransac(&est, &mut Uniform::new(n), rng, &opts.ransac);
    let subsets = Exhaustive::count(n, 3);
    let result = match opts.sampling {
        // Small problems: try every triplet once, best-ranked first.
        _ if subsets <= opts.exhaustive_max_subsets as u64 => {
            let all = RansacOptions {
                min_iterations: subsets as u32,
                max_iterations: subsets as u32,
                ..opts.ransac
            };
            ransac::ransac(&est, &mut Exhaustive::new(n, 3), &mut rng, &all)
        }
        Sampling::Prosac => {
            let mut s = Prosac::new(n, 3, opts.prosac_horizon as u64);
            ransac::ransac(&est, &mut s, &mut rng, &opts.ransac)
        }
        Sampling::Uniform => uniform(&mut rng),
        Sampling::Weighted => match Weighted::new(n, 3, |i| est.pts[i].cdf) {
            Some(mut s) => ransac::ransac(&est, &mut s, &mut rng, &opts.ransac),
            // Fewer than 3 positive confidences: weighting cannot sample.
            None => uniform(&mut rng),
        },
    };
    let Some((pose, stats)) = result else {
        // No sample gave a pose: say why when the whole set is degenerate.
        return Err(if is_degenerate(scratch[..n].iter().map(|p| &p.x)) {
            PnpError::DegeneratePoints
        } else {
            PnpError::NoConsensus { best_inliers: 0 }
        });
    };

    // Final refinement: Huber-loss LM on the inliers, re-selecting the
    // inliers after each round until the set stops changing (the pose
    // improves, more true inliers fall within the threshold).
    let pts = &mut scratch[..n];
    let thr2 = opts.max_reproj_px * opts.max_reproj_px;
    let mut refined = pose;
    let mut inliers = mark_inliers(&refined, pts, camera.fx, camera.fy, thr2);
    let mut rstats = RefineStats::default();
    for round in 0..opts.refine_rounds.max(1) {
        let (cand, st) = refine::refine(
            &refined,
            pts,
            camera.fx,
            camera.fy,
            // Least squares on the inliers (the maximum-likelihood fit under
            // Gaussian pixel noise), linear beyond the threshold. Measured
            // better than PoseLib's Cauchy(τ/2): see EXPERIMENTS.md.
            Loss::Huber(opts.max_reproj_px),
            true,
            opts.refine_iterations,
        );
        if round == 0 {
            rstats.initial_cost = st.initial_cost;
        }
        rstats.iterations += st.iterations;
        rstats.final_cost = st.final_cost;
        let before = inliers;
        let cand_inliers = mark_inliers(&cand, pts, camera.fx, camera.fy, thr2);
        if cand_inliers < before {
            // Refinement must not lose support; keep the previous pose.
            inliers = mark_inliers(&refined, pts, camera.fx, camera.fy, thr2);
            break;
        }
        refined = cand;
        inliers = cand_inliers;
        if cand_inliers == before {
            break;
        }
    }
    if inliers < opts.min_inliers {
        return Err(PnpError::NoConsensus {
            best_inliers: inliers,
        });
    }
    if is_degenerate(pts.iter().filter(|p| p.inlier).map(|p| &p.x)) {
        return Err(PnpError::DegeneratePoints);
    }
    let sq = refine::cost(&refined, pts, camera.fx, camera.fy, Loss::Squared, true);
    if let Some(mask) = inlier_mask {
        for p in pts.iter() {
            mask[p.index as usize] = p.inlier;
        }
    }
    Ok(PnpSolution {
        pose: refined,
        inliers,
        iterations: stats.iterations,
        local_optimizations: stats.local_optimizations,
        rms_px: libm::sqrt(sq / inliers as f64),
        refine: rstats,
    })
}

/// Owns the scratch for [`solve_pnp`] (feature `alloc`). Reserve capacity
/// up front with [`PnpSolver::with_capacity`]: a call with more points than
/// ever before grows the buffers (the only allocation it makes).
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default)]
pub struct PnpSolver {
    /// Options used by [`PnpSolver::solve`].
    pub options: PnpOptions,
    scratch: alloc::vec::Vec<PointScratch>,
}

#[cfg(feature = "alloc")]
impl PnpSolver {
    /// A solver with room for `capacity` correspondences.
    pub fn with_capacity(options: PnpOptions, capacity: usize) -> Self {
        Self {
            options,
            scratch: alloc::vec![PointScratch::default(); capacity],
        }
    }

    /// Like [`PnpSolver::with_capacity`], but reports a failed allocation
    /// instead of aborting.
    pub fn try_with_capacity(
        options: PnpOptions,
        capacity: usize,
    ) -> Result<Self, alloc::collections::TryReserveError> {
        let mut scratch = alloc::vec::Vec::new();
        scratch.try_reserve_exact(capacity)?;
        scratch.resize(capacity, PointScratch::default());
        Ok(Self { options, scratch })
    }

    /// [`solve_pnp`] with this solver's options and scratch.
    pub fn solve(
        &mut self,
        points2d: &[[f64; 2]],
        points3d: &[[f64; 3]],
        confidence: Option<&[f64]>,
        camera: &Camera,
        inlier_mask: Option<&mut [bool]>,
    ) -> Result<PnpSolution, PnpError> {
        if self.scratch.len() < points2d.len() {
            self.scratch.resize(points2d.len(), PointScratch::default());
        }
        solve_pnp(
            points2d,
            points3d,
            confidence,
            camera,
            &self.options,
            &mut self.scratch,
            inlier_mask,
        )
    }
}
