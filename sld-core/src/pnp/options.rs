//! What [`solve_pnp`](super::solve_pnp) may do: threshold, sampling,
//! RANSAC and refinement settings, and their valid ranges.

use super::error::PnpError;
use super::ransac::RansacOptions;

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
