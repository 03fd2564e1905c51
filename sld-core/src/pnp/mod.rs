//! Robust absolute pose (PnP) from 2D detections and 3D landmarks.
//!
//! [`solve_pnp`] is the one entry point:
//!
//! 1. **Checks** — lengths, at least 4 points, finite values, a valid
//!    camera, non-negative confidences, 3D points that are neither
//!    coincident nor collinear. Failures are [`PnpError`]s, never panics.
//! 2. **Normalise** — pixels are undistorted and unprojected through the
//!    [`Camera`]; data are sorted by decreasing confidence (stable).
//! 3. **LO-RANSAC** ([`ransac`]) — Lambda Twist P3P ([`p3p`]) on minimal
//!    samples chosen by [`Sampling`] (PROSAC over the confidence order by
//!    default; every triplet when N ≤ 10), MSAC scoring with the pixel
//!    threshold, local optimisation (LM with a truncated loss at 3τ, then
//!    τ) whenever a minimal model beats the best minimal model, adaptive and
//!    PROSAC termination.
//! 4. **Refine** ([`refine`]) — LM with a Huber loss (scale = the
//!    threshold, i.e. least squares on the inliers) on the inliers,
//!    re-selecting inliers between rounds until the set is stable.
//!
//! Everything runs in caller-provided scratch (one [`PointScratch`] per
//! correspondence): no allocation. With the `alloc` feature,
//! [`PnpSolver`] owns that scratch.
//!
//! Errors are measured in **undistorted pixels**: `(fx·Δx, fy·Δy)` on the
//! normalised image plane. The output pose is world-to-camera.

pub mod p3p;
pub mod ransac;
pub mod refine;
pub mod sampler;

use core::fmt;

use heapless::Vec as HVec;
use nalgebra::{Matrix3, Vector3};

use crate::camera::Camera;
use crate::pose::Pose;
use crate::rng::SplitMix64;
use ransac::{Estimator, RansacOptions, Score, MAX_MODELS};
pub use refine::{Loss, RefineStats};
use sampler::{Exhaustive, Prosac, Uniform, Weighted};

/// How RANSAC picks minimal samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// Uniform over all correspondences (ignores confidences).
    Uniform,
    /// PROSAC over the confidence order (highest first).
    Prosac,
    /// Probability proportional to confidence.
    Weighted,
}

/// Options of [`solve_pnp`]; `Default` gives the documented values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PnpOptions {
    /// Inlier threshold on the reprojection error, pixels (default 8).
    pub max_reproj_px: f64,
    /// Sampling strategy (default PROSAC).
    pub sampling: Sampling,
    /// RANSAC loop options.
    pub ransac: RansacOptions,
    /// PROSAC horizon `T_N`: samples until it samples uniformly (default 20000).
    pub prosac_horizon: u32,
    /// LM iterations per pass of local optimisation (default 10).
    pub lo_iterations: u32,
    /// Local optimisation first fits with the threshold × this factor, then
    /// with the threshold (default 3; ≤ 1 skips the wide pass).
    pub lo_wide_factor: f64,
    /// LM iterations per round of the final refinement (default 50).
    pub refine_iterations: u32,
    /// Rounds of final refinement, re-selecting inliers after each
    /// (default 4; stops early when the inlier set is stable).
    pub refine_rounds: u32,
    /// Problems with at most this many 3-point subsets (default 120, i.e.
    /// N ≤ 10) try every subset once instead of sampling.
    pub exhaustive_max_subsets: u32,
    /// Fewest inliers accepted (default 4, at least 4).
    pub min_inliers: usize,
    /// Seed of the sampler's random numbers.
    pub seed: u64,
}

impl Default for PnpOptions {
    fn default() -> Self {
        Self {
            max_reproj_px: 8.0,
            sampling: Sampling::Prosac,
            ransac: RansacOptions::default(),
            prosac_horizon: 20_000,
            lo_iterations: 10,
            lo_wide_factor: 3.0,
            refine_iterations: 50,
            refine_rounds: 4,
            exhaustive_max_subsets: 120,
            min_inliers: 4,
            seed: 0x5eed,
        }
    }
}

/// Most minimal samples one solve may draw ([`RansacOptions::max_iterations`]
/// and [`PnpOptions::exhaustive_max_subsets`]): bounds the time of a solve
/// whatever the options, at about `MAX_SAMPLES · N` residuals.
pub const MAX_SAMPLES: u32 = 1_000_000;

/// Most Levenberg–Marquardt iterations per optimisation pass
/// ([`PnpOptions::lo_iterations`], [`PnpOptions::refine_iterations`]).
pub const MAX_LM_ITERATIONS: u32 = 1_000;

/// Most rounds of final refinement ([`PnpOptions::refine_rounds`]).
pub const MAX_REFINE_ROUNDS: u32 = 100;

impl PnpOptions {
    /// Checks every option against its range; the error names the first
    /// one out of range. The limits bound the work of one solve (iterations
    /// of every loop) whatever the options and the data.
    pub fn validate(&self) -> Result<(), PnpError> {
        let r = &self.ransac;
        let checks: [(bool, &'static str); 10] = [
            (
                self.max_reproj_px.is_finite() && self.max_reproj_px > 0.0,
                "max_reproj_px must be finite and > 0",
            ),
            (self.min_inliers >= 4, "min_inliers must be at least 4"),
            (
                r.max_iterations <= MAX_SAMPLES,
                "max_iterations must be at most 1e6",
            ),
            (
                self.exhaustive_max_subsets <= MAX_SAMPLES,
                "exhaustive_max_subsets must be at most 1e6",
            ),
            (
                r.success_prob > 0.0 && r.success_prob < 1.0,
                "success_prob must lie strictly between 0 and 1",
            ),
            (
                r.trials_mult.is_finite() && r.trials_mult >= 0.0,
                "trials_mult must be finite and >= 0",
            ),
            (self.lo_wide_factor.is_finite(), "lo_wide_factor must be finite"),
            (
                self.lo_iterations <= MAX_LM_ITERATIONS,
                "lo_iterations must be at most 1000",
            ),
            (
                self.refine_iterations <= MAX_LM_ITERATIONS,
                "refine_iterations must be at most 1000",
            ),
            (
                self.refine_rounds <= MAX_REFINE_ROUNDS,
                "refine_rounds must be at most 100",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(PnpError::InvalidOptions(what)),
            None => Ok(()),
        }
    }
}

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

/// Why no pose was returned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PnpError {
    /// 2D points, 3D points and confidences differ in length.
    LengthMismatch,
    /// Fewer than 4 correspondences.
    TooFewPoints {
        /// Correspondences given.
        given: usize,
    },
    /// The scratch or inlier-mask slice is shorter than the input.
    ScratchTooSmall {
        /// Entries needed.
        needed: usize,
    },
    /// The camera is invalid (e.g. zero focal length).
    InvalidCamera(crate::camera::CameraError),
    /// A coordinate or confidence is NaN/inf, a confidence is negative,
    /// or a pixel cannot be undistorted.
    InvalidPoint {
        /// Index of the offending correspondence.
        index: usize,
    },
    /// An option is out of range (see [`PnpOptions::validate`]); names it.
    InvalidOptions(&'static str),
    /// The 3D points are (nearly) coincident or collinear: the pose is not
    /// determined.
    DegeneratePoints,
    /// No pose had at least `min_inliers` inliers.
    NoConsensus {
        /// Inliers of the best pose found.
        best_inliers: usize,
    },
}

impl fmt::Display for PnpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthMismatch => f.write_str("2D points, 3D points and confidences differ in length"),
            Self::TooFewPoints { given } => write!(f, "need at least 4 correspondences, got {given}"),
            Self::ScratchTooSmall { needed } => write!(f, "scratch and inlier mask need {needed} entries"),
            Self::InvalidCamera(e) => write!(f, "invalid camera: {e}"),
            Self::InvalidPoint { index } => {
                write!(f, "correspondence {index} is not finite, has a negative confidence, or cannot be undistorted")
            }
            Self::InvalidOptions(what) => write!(f, "PnP option out of range: {what}"),
            Self::DegeneratePoints => f.write_str("3D points are coincident or collinear"),
            Self::NoConsensus { best_inliers } => {
                write!(f, "no pose with enough inliers (best had {best_inliers})")
            }
        }
    }
}

impl core::error::Error for PnpError {}

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
        if !(conf.is_finite() && conf >= 0.0 && x.iter().all(|v| v.is_finite())) {
            return Err(PnpError::InvalidPoint { index: i });
        }
        let nrm = camera
            .unproject(points2d[i])
            .map_err(|_| PnpError::InvalidPoint { index: i })?;
        *s = PointScratch {
            n: nrm,
            x,
            conf,
            cdf: 0.0,
            index: i as u32,
            inlier: false,
        };
    }
    if is_degenerate(pts.iter().map(|p| &p.x)) {
        return Err(PnpError::DegeneratePoints);
    }
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
        return Err(PnpError::NoConsensus { best_inliers: 0 });
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

/// Sets each point's inlier flag for `pose`; returns the count.
fn mark_inliers(pose: &Pose, pts: &mut [PointScratch], fx: f64, fy: f64, thr2: f64) -> usize {
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
fn is_degenerate<'a>(points: impl Iterator<Item = &'a [f64; 3]> + Clone) -> bool {
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
struct AbsolutePose<'a> {
    pts: &'a [PointScratch],
    fx: f64,
    fy: f64,
    /// Squared threshold, pixels².
    thr2: f64,
    lo_iterations: u32,
    lo_wide_factor: f64,
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
