//! Why [`solve_pnp`](super::solve_pnp) returned no pose.

use core::fmt;

/// What is wrong with one correspondence ([`PnpError::InvalidPoint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointProblem {
    /// A 2D coordinate is NaN or infinite.
    NonFinite2d,
    /// A 3D coordinate is NaN or infinite.
    NonFinite3d,
    /// A 3D coordinate is beyond ±[`MAX_COORDINATE`] (its square would
    /// overflow the solver's arithmetic).
    Huge3d,
    /// The confidence is NaN or infinite.
    NonFiniteConfidence,
    /// The confidence is negative.
    NegativeConfidence,
    /// The pixel lies where the camera's distortion cannot be inverted.
    NotUndistortable,
}

/// Largest magnitude of a 3D coordinate [`solve_pnp`](super::solve_pnp)
/// accepts (in the points' own unit, normally metres): 1e15, far beyond any
/// map, and small enough that products of coordinates stay finite.
pub const MAX_COORDINATE: f64 = 1e15;

impl fmt::Display for PointProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NonFinite2d => "its 2D point is NaN or infinite",
            Self::NonFinite3d => "its 3D point is NaN or infinite",
            Self::Huge3d => "its 3D point lies beyond 1e15 (absurd for a map)",
            Self::NonFiniteConfidence => "its confidence is NaN or infinite",
            Self::NegativeConfidence => "its confidence is negative",
            Self::NotUndistortable => "its pixel lies where the distortion cannot be inverted",
        })
    }
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
    /// One correspondence cannot be used; `why` says which part of it.
    InvalidPoint {
        /// Index of the offending correspondence.
        index: usize,
        /// What is wrong with it.
        why: PointProblem,
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
            Self::InvalidPoint { index, why } => write!(f, "correspondence {index}: {why}"),
            Self::InvalidOptions(what) => write!(f, "PnP option out of range: {what}"),
            Self::DegeneratePoints => f.write_str("3D points are coincident or collinear"),
            Self::NoConsensus { best_inliers } => {
                write!(f, "no pose with enough inliers (best had {best_inliers})")
            }
        }
    }
}

impl core::error::Error for PnpError {}
