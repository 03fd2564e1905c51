//! Why [`solve_pnp`](super::solve_pnp) returned no pose.

use core::fmt;

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
