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

mod absolute;
mod error;
mod options;
pub mod p3p;
pub mod ransac;
pub mod refine;
pub mod sampler;
mod solve;

pub use absolute::PointScratch;
pub use error::{PnpError, PointProblem, MAX_COORDINATE};
pub use options::{PnpOptions, Sampling, MAX_LM_ITERATIONS, MAX_REFINE_ROUNDS, MAX_SAMPLES};
pub use refine::{Loss, RefineStats};
#[cfg(feature = "alloc")]
pub use solve::PnpSolver;
pub use solve::{solve_pnp, PnpSolution};
