//! The reliability gate: whether the evidence behind a pose is strong
//! enough to return it.
//!
//! RANSAC always finds *some* consensus. On an image the model does not
//! know (noise, another room, a lens cap) a handful of spurious peaks can
//! agree on a pose metres off, and a robot would act on it. The gate looks
//! at the evidence PnP leaves behind, summarised as a [`PoseQuality`], and
//! turns weak poses into "no pose": a wrong answer is worse than none.
//!
//! The default thresholds ([`Gate::default`]) were calibrated on trained
//! models of rendered rooms, true poses against noise images and images of
//! other rooms; EXPERIMENTS.md ("The reliability gate") has the data and the
//! trade-off table.

use core::fmt;

/// The evidence behind one pose (all counts over this frame's detections).
/// Serialises (feature `alloc`) as the `quality` object of `sld eval` and
/// `sld localize` JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "alloc", derive(serde::Serialize))]
pub struct PoseQuality {
    /// PnP inliers.
    pub inliers: u32,
    /// Detections passed to PnP.
    pub detections: u32,
    /// `inliers / detections` (0 without detections).
    pub inlier_ratio: f32,
    /// Sum of the inliers' detection confidences (for softmax models each
    /// is the probability that the landmark is in the image, in `[0, 1]`).
    pub inlier_confidence: f32,
    /// Landmarks in front of the camera whose projection under the pose
    /// falls inside the image: how many the model could have seen.
    pub expected_visible: u32,
    /// `inliers / expected_visible` (0 when none is expected).
    pub visible_fraction: f32,
    /// Root-mean-square reprojection error over the inliers, network-input
    /// pixels.
    pub rms_px: f32,
}

/// Thresholds a pose must meet to be returned. [`Gate::OFF`] returns every
/// pose PnP finds (for calibration and diagnostics).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gate {
    /// Fewest PnP inliers (default 10; PnP itself needs 4).
    pub min_inliers: u32,
    /// Smallest `inliers / detections` (default 0.5).
    pub min_inlier_ratio: f32,
    /// Smallest summed confidence of the inliers (default 0, i.e. off).
    pub min_inlier_confidence: f32,
    /// Smallest `inliers / expected_visible` (default 0.15).
    pub min_visible_fraction: f32,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            min_inliers: 10,
            min_inlier_ratio: 0.5,
            min_inlier_confidence: 0.0,
            min_visible_fraction: 0.15,
        }
    }
}

/// Which threshold a pose failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateFailure {
    /// Fewer inliers than [`Gate::min_inliers`].
    Inliers,
    /// Inlier ratio below [`Gate::min_inlier_ratio`].
    InlierRatio,
    /// Summed inlier confidence below [`Gate::min_inlier_confidence`].
    InlierConfidence,
    /// Visible fraction below [`Gate::min_visible_fraction`].
    VisibleFraction,
}

impl fmt::Display for GateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Inliers => "too few inliers",
            Self::InlierRatio => "too small a share of the detections are inliers",
            Self::InlierConfidence => "the inliers' summed confidence is too low",
            Self::VisibleFraction => "too few of the landmarks that should be visible were found",
        })
    }
}

/// A [`Gate`] field out of range (its name and the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidGate(pub &'static str);

impl fmt::Display for InvalidGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl core::error::Error for InvalidGate {}

impl Gate {
    /// Returns every pose PnP finds (PnP's own minimum of 4 inliers still
    /// applies).
    pub const OFF: Gate = Gate {
        min_inliers: 0,
        min_inlier_ratio: 0.0,
        min_inlier_confidence: 0.0,
        min_visible_fraction: 0.0,
    };

    /// Checks the ranges: ratios in `[0, 1]`, confidence finite and ≥ 0.
    pub fn validate(&self) -> Result<(), InvalidGate> {
        if !(0.0..=1.0).contains(&self.min_inlier_ratio) {
            return Err(InvalidGate("min_inlier_ratio must lie in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.min_visible_fraction) {
            return Err(InvalidGate("min_visible_fraction must lie in [0, 1]"));
        }
        if !(self.min_inlier_confidence.is_finite() && self.min_inlier_confidence >= 0.0) {
            return Err(InvalidGate("min_inlier_confidence must be finite and >= 0"));
        }
        Ok(())
    }

    /// `Ok` when `q` meets every threshold, else the first one it fails.
    pub fn check(&self, q: &PoseQuality) -> Result<(), GateFailure> {
        if q.inliers < self.min_inliers {
            Err(GateFailure::Inliers)
        } else if !(q.inlier_ratio >= self.min_inlier_ratio) {
            Err(GateFailure::InlierRatio)
        } else if !(q.inlier_confidence >= self.min_inlier_confidence) {
            Err(GateFailure::InlierConfidence)
        } else if !(q.visible_fraction >= self.min_visible_fraction) {
            Err(GateFailure::VisibleFraction)
        } else {
            Ok(())
        }
    }
}
