//! `sld landmarks`: choose landmarks for a scene and write
//! `landmarks/landmarks-N.txt` and `landmarks/visibility-N.txt`.
//!
//! Visibility of landmark `l` in image `j` (the 0/1 file): projected in
//! front of the camera and inside the image, and either depth-consistent
//! with `NAME.depth.png` (when it exists) or listed in the point's track
//! (COLMAP observation). The SLD* 1 / 0.5 / 0 training weights are computed
//! from the same test by [`weights`].

use std::path::Path;

use anyhow::{ensure, Result};
use rayon::prelude::*;

use super::select::{score, select, SelectOptions};
use super::visibility::{visibility, Visible};
use crate::data::indoor6::{self, Visibility};
use crate::data::naming;
use crate::data::scene::SceneDir;

/// Settings of `sld landmarks`.
#[derive(Clone, Debug)]
pub struct LandmarkOptions {
    /// Number of landmarks to choose.
    pub count: usize,
    /// Scoring filters and the starting radius.
    pub select: SelectOptions,
    /// Relative depth tolerance of the visibility test (SLD*: 0.3 → we use 0.1 on exact depth).
    pub depth_tolerance: f64,
    /// Depth maps to read (`NAME.<variant>.depth.png`, e.g. `filled`); `None`: `NAME.depth.png`.
    pub depth_variant: Option<String>,
}

/// What `sld landmarks` found.
#[derive(Clone, Debug)]
pub struct LandmarkSummary {
    /// Points read.
    pub points: usize,
    /// Points passing the score filters.
    pub candidates: usize,
    /// Landmarks chosen.
    pub chosen: usize,
    /// Smallest sweep radius used, metres.
    pub final_radius: f64,
    /// Mean number of images seeing a landmark.
    pub mean_visible: f64,
}

/// Visibility per landmark and image, as training weights (1 / 0.5 / 0),
/// landmark-major `[L][num_images]`.
pub fn weights(scene: &SceneDir, landmarks: &[[f64; 3]], depth_tolerance: f64) -> Result<Vec<Vec<f32>>> {
    let per_image: Vec<Vec<f32>> = (0..scene.images.len())
        .into_par_iter()
        .map(|j| -> Result<Vec<f32>> {
            let depth = scene.depth(j)?;
            let im = &scene.images[j];
            Ok(landmarks
                .iter()
                .map(|x| {
                    visibility(*x, &im.pose, &im.camera, depth.as_ref(), depth_tolerance, 0.1)
                        .0
                        .weight()
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    Ok((0..landmarks.len())
        .map(|l| per_image.iter().map(|w| w[l]).collect())
        .collect())
}

/// Scores the scene's points, selects `count` landmarks and writes the
/// landmark and visibility files.
pub fn run(root: &Path, o: &LandmarkOptions) -> Result<LandmarkSummary> {
    ensure!(o.count >= 1, "--count must be at least 1");
    ensure!(o.select.radius > 0.0, "--radius must be positive");
    let mut scene = SceneDir::open(root)?;
    scene.depth_variant = o.depth_variant.clone();
    let points = scene.points()?;
    let poses: Vec<_> = scene.images.iter().map(|i| i.pose).collect();
    let sessions: Vec<usize> = scene.images.iter().map(|i| i.session).collect();
    let n_sessions = scene.sessions();
    let scores: Vec<Option<f64>> = points
        .par_iter()
        .map(|p| score(p, &poses, &sessions, n_sessions, &o.select))
        .collect();
    let candidates = scores.iter().filter(|s| s.is_some()).count();
    ensure!(
        candidates >= o.count,
        "{}: only {candidates} of {} points pass the filters (track > {}, mean depth < {} m, angular span > {} rad); \
         ask for fewer landmarks or relax --min-track/--max-depth/--min-span",
        root.join("points3d.txt").display(),
        points.len(),
        o.select.min_track,
        o.select.max_mean_depth,
        o.select.min_angle_span
    );
    let chosen = select(&points, &scores, o.count, o.select.radius);
    let lm: Vec<[f64; 3]> = chosen.iter().map(|s| points[s.index].xyz).collect();
    let w = weights(&scene, &lm, o.depth_tolerance)?;
    let rows: Vec<Vec<bool>> = chosen
        .iter()
        .zip(&w)
        .map(|(s, wl)| {
            let track = &points[s.index].images;
            wl.iter()
                .enumerate()
                .map(|(j, &v)| {
                    v == Visible::Yes.weight() || (v == Visible::Unverified.weight() && track.contains(&j))
                })
                .collect()
        })
        .collect();
    let n = lm.len();
    let mean_visible = rows
        .iter()
        .map(|r| r.iter().filter(|&&b| b).count())
        .sum::<usize>() as f64
        / n.max(1) as f64;
    indoor6::write_landmarks(&naming::landmarks_file(root, n), &lm)?;
    indoor6::write_visibility(
        &naming::visibility_file(root, n),
        &Visibility {
            images: scene.images.len(),
            rows,
        },
    )?;
    Ok(LandmarkSummary {
        points: points.len(),
        candidates,
        chosen: n,
        final_radius: chosen.iter().map(|s| s.radius).fold(f64::INFINITY, f64::min),
        mean_visible,
    })
}
