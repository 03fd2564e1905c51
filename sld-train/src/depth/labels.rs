//! What filling does to visibility labels: on a rendered scene, labels
//! from simulated COLMAP-like depth, raw and filled, against the labels of
//! the true depth (`sld depth labels`).

use std::path::Path;

use anyhow::{ensure, Result};
use serde::Serialize;

use super::fill::{fill, Loaded};
use super::fit::{FitOptions, Method};
use super::holdout::{metrics, Metrics};
use super::simulate::simulate;
use super::MdeKind;
use crate::data::scene::SceneDir;
use crate::landmarks::visibility::{visibility, Visible};

/// Visibility labels from one depth source compared with the truth's.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct LabelStats {
    /// Landmark–image pairs projecting inside the image.
    pub pairs: usize,
    /// Labelled as the true depth labels them.
    pub correct: usize,
    /// Left unverified (no depth at the pixel).
    pub unverified: usize,
    /// Labelled the opposite way.
    pub wrong: usize,
}

/// Result of [`label_study`].
#[derive(Debug, Serialize)]
pub struct LabelStudy {
    /// Images used.
    pub images: usize,
    /// Landmarks used.
    pub landmarks: usize,
    /// Labels from the COLMAP-like depth with holes.
    pub raw: LabelStats,
    /// Labels from the filled depth.
    pub filled: LabelStats,
    /// Hold-out errors of the fill against the truth at the holes, pooled.
    pub fill_vs_truth: Metrics,
}

/// Simulates COLMAP-like depth and MDE for `images` images of a rendered
/// scene, fills the holes with `method`, and counts correct visibility
/// labels (tolerance `tol`) with raw vs filled depth, against labels from
/// the true depth; landmarks are up to `landmarks` points of the scene's
/// point cloud.
pub fn label_study(
    scene: &Path,
    images: usize,
    landmarks: usize,
    method: Method,
    tol: f64,
    o: &FitOptions,
) -> Result<LabelStudy> {
    let s = SceneDir::open(scene)?;
    let points = s.points()?;
    ensure!(
        !points.is_empty(),
        "{} has no points3d.txt points",
        scene.display()
    );
    let step = points.len().div_ceil(landmarks.max(1));
    let lm: Vec<[f64; 3]> = points.iter().step_by(step).map(|p| p.xyz).collect();
    let n = images.min(s.images.len());
    let (mut raw, mut filled) = (LabelStats::default(), LabelStats::default());
    let mut pred_all = vec![];
    let mut truth_all = vec![];
    let bar = crate::util::progress::bar(n, true, "labels {bar:30} {pos}/{len} images {eta}");
    for i in 0..n {
        let Some(t) = s.depth(i)? else { continue };
        let im = &s.images[i];
        let rgb = im.read_rgb()?;
        let sim = simulate(&t, rgb.as_raw(), o.seed ^ i as u64);
        let loaded = Loaded {
            mde: sim.mde.clone(),
            depth: sim.colmap.clone(),
            rgb: Some(rgb.into_raw()),
        };
        let (f, _) = fill(&loaded, MdeKind::Disparity, method, o)?;
        for (k, (&c, &p)) in sim.colmap.data.iter().zip(&f.data).enumerate() {
            if !c.is_finite() {
                pred_all.push(p);
                truth_all.push(sim.truth.data[k]);
            }
        }
        let (dt, dr, df) = (&sim.truth, &sim.colmap, &f);
        for x in &lm {
            let (vt, px) = visibility(*x, &im.pose, &im.camera, Some(dt), tol, 0.1);
            let inside = px.is_some_and(|p| {
                p[0] >= -0.5
                    && p[1] >= -0.5
                    && p[0] < im.camera.width as f64 - 0.5
                    && p[1] < im.camera.height as f64 - 0.5
            });
            // Only pairs the true depth decides (in the image, depth known).
            if !inside || vt == Visible::Unverified {
                continue;
            }
            for (stats, d) in [(&mut raw, dr), (&mut filled, df)] {
                stats.pairs += 1;
                match visibility(*x, &im.pose, &im.camera, Some(d), tol, 0.1).0 {
                    v if v == vt => stats.correct += 1,
                    Visible::Unverified => stats.unverified += 1,
                    _ => stats.wrong += 1,
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(LabelStudy {
        images: n,
        landmarks: lm.len(),
        raw,
        filled,
        fill_vs_truth: metrics(&pred_all, &truth_all),
    })
}
