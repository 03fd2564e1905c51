//! `sld eval`: localises a scene's images with a `.sld` model through
//! `sld-core`'s `Localizer` (the code path a robot runs) and compares with
//! the ground-truth poses.
//!
//! Errors: rotation `acos((tr(RᵀR̂) − 1)/2)` in degrees, position = distance
//! between camera centres in metres; recall thresholds are strict (`<`);
//! a failed localisation counts as a miss (∞ error). Pixel error: distance
//! in network-input pixels between each detection and the true projection
//! of its landmark.

use anyhow::{Context, Result};
use serde::Serialize;
use sld_core::nalgebra::Vector3;
use sld_core::pnp::PnpOptions;
use sld_core::{position_error_m, rotation_error_deg, Gate, LocalizeError, Localizer, PoseQuality};

use crate::data::scene::{as_image, SceneDir};

/// A detection closer than this to its landmark's true projection is
/// correct (network-input pixels: one heatmap cell at stride 8).
pub const CORRECT_PX: f64 = 8.0;

/// A returned pose further than this from the truth (metres) is *wrong*:
/// a robot acting on it would be lost ([`EvalReport::wrong_rate`]).
pub const WRONG_M: f64 = 0.5;
/// A returned pose rotated more than this from the truth (degrees) is
/// *wrong*.
pub const WRONG_DEG: f64 = 15.0;

/// Evaluation settings.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// PnP options (defaults: sld-core's).
    pub pnp: PnpOptions,
    /// Logits models: the Localizer's presence threshold (`None`: its
    /// default, 0.5).
    pub presence_threshold: Option<f32>,
    /// The reliability gate (`None`: sld-core's default).
    pub gate: Option<Gate>,
}

/// Result for one image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageResult {
    /// Image name.
    pub image: String,
    /// Localised at all.
    pub ok: bool,
    /// Rotation error, degrees (`null` if not localised).
    pub rotation_deg: Option<f64>,
    /// Position error, metres (`null` if not localised).
    pub position_m: Option<f64>,
    /// Heatmap peaks above threshold.
    pub detections: usize,
    /// PnP inliers.
    pub inliers: usize,
    /// Median pixel error of the detections of landmarks that project
    /// inside the image (network-input pixels).
    pub pixel_error: Option<f64>,
    /// Detections within [`CORRECT_PX`] of their landmark's true projection.
    pub correct: usize,
    /// Stage times, microseconds: preprocess, cnn, decode, pnp.
    pub times_us: [f64; 4],
    /// The evidence behind the pose PnP found (`null` when it found none),
    /// also when the gate rejected it.
    pub quality: Option<PoseQuality>,
    /// Why the gate rejected the pose PnP found (`null`: not rejected).
    pub rejected: Option<String>,
}

/// Aggregate evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Images evaluated.
    pub images: usize,
    /// Fraction with error < 5 cm and < 5°.
    pub recall_5cm_5deg: f64,
    /// Fraction with error < 10 cm and < 10°.
    pub recall_10cm_10deg: f64,
    /// Fraction with error < 1 cm and < 1°.
    pub recall_1cm_1deg: f64,
    /// Fraction given a *wrong* pose: error > [`WRONG_M`] or > [`WRONG_DEG`].
    pub wrong_rate: f64,
    /// Fraction whose pose the reliability gate rejected.
    pub rejected_rate: f64,
    /// Median rotation error, degrees (failures = 180).
    pub median_rotation_deg: f64,
    /// Median position error, metres (failures = ∞, printed as `null`).
    pub median_position_m: Option<f64>,
    /// Median detections per image.
    pub median_detections: f64,
    /// Median over images of the per-image median pixel error.
    pub median_pixel_error: Option<f64>,
    /// Median over images of the correct detections.
    pub median_correct: f64,
    /// Median stage times, milliseconds: preprocess, cnn, decode, pnp.
    pub median_times_ms: [f64; 4],
    /// Per image.
    pub per_image: Vec<ImageResult>,
}

/// [`crate::util::stats::median`] of an owned list.
fn median(mut v: Vec<f64>) -> Option<f64> {
    crate::util::stats::median(&mut v)
}

/// Localises images `indices` of `scene` with the model in `bytes`.
pub fn evaluate(bytes: &[u8], scene: &SceneDir, indices: &[usize], o: &EvalOptions) -> Result<EvalReport> {
    let mut loc = Localizer::with_options(bytes, o.pnp).map_err(|e| anyhow::anyhow!("model: {e}"))?;
    if let Some(p) = o.presence_threshold {
        loc.presence_threshold = p;
    }
    if let Some(g) = o.gate {
        loc.gate = g;
    }
    let spec = loc.model().info().graph.input.clone();
    let landmarks: Vec<[f64; 3]> = loc.model().landmarks().to_vec();
    let mut per_image = Vec::with_capacity(indices.len());
    for &i in indices {
        let im = scene
            .images
            .get(i)
            .with_context(|| format!("image index {i} out of range"))?;
        let rgb = im.read_rgb()?;
        let img = as_image(&rgb)?;
        let res = loc.localize(&img, &im.camera);
        let t = loc.last_times();
        let net_cam = im.network_camera(spec.width, spec.height)?;
        // Errors of detections whose landmark projects inside the network input.
        let (nw, nh) = (spec.width as f64, spec.height as f64);
        let errs: Vec<f64> = loc
            .last_detections()
            .iter()
            .filter_map(|d| {
                let x = landmarks.get(d.landmark as usize)?;
                let pc = im.pose.transform(&Vector3::from(*x));
                if pc[2] <= 0.0 {
                    return None;
                }
                let p = net_cam.project([pc[0], pc[1], pc[2]]).ok()?;
                let inside = p[0] >= -0.5 && p[1] >= -0.5 && p[0] < nw - 0.5 && p[1] < nh - 0.5;
                inside.then(|| ((p[0] - d.u as f64).powi(2) + (p[1] - d.v as f64).powi(2)).sqrt())
            })
            .collect();
        let correct = errs.iter().filter(|&&e| e < CORRECT_PX).count();
        let (ok, rot, pos, inliers) = match &res {
            Ok(l) => (
                true,
                Some(rotation_error_deg(&im.pose, &l.pose)),
                Some(position_error_m(&im.pose, &l.pose)),
                l.inliers,
            ),
            Err(_) => (false, None, None, 0),
        };
        let rejected = match &res {
            Err(LocalizeError::Unreliable { failed, .. }) => Some(failed.to_string()),
            _ => None,
        };
        per_image.push(ImageResult {
            image: im.name.clone(),
            ok,
            rotation_deg: rot,
            position_m: pos,
            detections: loc.last_detections().len(),
            inliers,
            pixel_error: median(errs),
            correct,
            times_us: [t.preprocess_us, t.cnn_us, t.decode_us, t.pnp_us],
            quality: loc.last_quality(),
            rejected,
        });
    }
    let n = per_image.len().max(1) as f64;
    let recall = |dm: f64, dd: f64| {
        per_image
            .iter()
            .filter(|r| r.position_m.is_some_and(|p| p < dm) && r.rotation_deg.is_some_and(|a| a < dd))
            .count() as f64
            / n
    };
    let med_pos = median(
        per_image
            .iter()
            .map(|r| r.position_m.unwrap_or(f64::INFINITY))
            .collect(),
    );
    Ok(EvalReport {
        images: per_image.len(),
        recall_5cm_5deg: recall(0.05, 5.0),
        recall_10cm_10deg: recall(0.10, 10.0),
        recall_1cm_1deg: recall(0.01, 1.0),
        wrong_rate: per_image
            .iter()
            .filter(|r| {
                r.position_m.is_some_and(|p| p > WRONG_M) || r.rotation_deg.is_some_and(|a| a > WRONG_DEG)
            })
            .count() as f64
            / n,
        rejected_rate: per_image.iter().filter(|r| r.rejected.is_some()).count() as f64 / n,
        median_rotation_deg: median(
            per_image
                .iter()
                .map(|r| r.rotation_deg.unwrap_or(180.0))
                .collect(),
        )
        .unwrap_or(180.0),
        median_position_m: med_pos.filter(|p| p.is_finite()),
        median_detections: median(per_image.iter().map(|r| r.detections as f64).collect()).unwrap_or(0.0),
        median_pixel_error: median(per_image.iter().filter_map(|r| r.pixel_error).collect()),
        median_correct: median(per_image.iter().map(|r| r.correct as f64).collect()).unwrap_or(0.0),
        median_times_ms: [0, 1, 2, 3]
            .map(|k| median(per_image.iter().map(|r| r.times_us[k] / 1000.0).collect()).unwrap_or(0.0)),
        per_image,
    })
}
