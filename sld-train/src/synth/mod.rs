//! `sld synth`: synthetic indoor scenes with exact ground truth, written in
//! the Indoor6 layout (plus depth, sessions and a tracked point cloud).
//!
//! - [`texture`]: procedural materials (albedo from surface coordinates).
//! - [`scene`]: the room, furniture and posters; lighting per session.
//! - [`trajectory`]: hand-held camera paths at human height.
//! - [`render`]: ray casting to colour and metric depth.
//!
//! Sessions differ in illumination (ambient level and tint, which lights
//! are on, their colour and power, exposure) and in camera path. With two or
//! more sessions the last one is the test (query) set, as in Indoor6 where
//! queries come from another time of day; every 10th mapping image is
//! validation.

pub mod noise;
pub mod render;
pub mod scene;
pub mod texture;
pub mod trajectory;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{ensure, Context, Result};
use rayon::prelude::*;
use sld_core::rng::SplitMix64;
use sld_core::Camera;

use crate::data::depth_map::{self, DepthMap};
use crate::data::indoor6::{self, Intrinsics, Split};
use crate::data::naming;
use crate::data::scene::{write_points, write_sessions, TrackedPoint};
use crate::io::atomic::save_image_atomic;
use scene::Scene;

/// What to render.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// Scene seed: the same seed gives the same files.
    pub seed: u64,
    /// Total number of images (split evenly over sessions).
    pub images: usize,
    /// Number of recording sessions (lighting conditions).
    pub sessions: usize,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// Horizontal field of view, degrees.
    pub hfov_deg: f64,
    /// Surface points sampled per square metre for the point cloud.
    pub point_density: f64,
    /// Show a progress bar.
    pub progress: bool,
    /// Every session under the first session's lighting: an ablation that
    /// separates the change of viewpoint from the change of light.
    pub same_lighting: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            images: 300,
            sessions: 3,
            width: 640,
            height: 352,
            hfov_deg: 70.0,
            point_density: 120.0,
            progress: true,
            same_lighting: false,
        }
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct SynthSummary {
    /// Images rendered.
    pub images: usize,
    /// Points in `points3d.txt`.
    pub points: usize,
    /// Mean track length.
    pub mean_track: f64,
}

/// Samples surface points (with outward normals) over every visible face.
fn sample_points(scene: &Scene, density: f64, seed: u64) -> Vec<([f64; 3], [f64; 3])> {
    let mut rng = SplitMix64::new(seed ^ 0x9017_5eed);
    let mut out = Vec::new();
    let mut face = |origin: [f64; 3], ea: [f64; 3], eb: [f64; 3], n: [f64; 3], rng: &mut SplitMix64| {
        let la = (ea[0] * ea[0] + ea[1] * ea[1] + ea[2] * ea[2]).sqrt();
        let lb = (eb[0] * eb[0] + eb[1] * eb[1] + eb[2] * eb[2]).sqrt();
        let count = (la * lb * density).round() as usize;
        for _ in 0..count {
            let (a, b) = (rng.unit_f64(), rng.unit_f64());
            let p = [
                origin[0] + a * ea[0] + b * eb[0] + 1e-3 * n[0],
                origin[1] + a * ea[1] + b * eb[1] + 1e-3 * n[1],
                origin[2] + a * ea[2] + b * eb[2] + 1e-3 * n[2],
            ];
            out.push((p, n));
        }
    };
    let boxes = std::iter::once((
        scene::Aabb {
            min: [0.0; 3],
            max: scene.size,
        },
        -1.0,
    ))
    .chain(scene.boxes.iter().map(|b| (b.clone(), 1.0)));
    for (b, s) in boxes {
        for axis in 0..3 {
            let (a1, a2) = ((axis + 1) % 3, (axis + 2) % 3);
            for side in [0, 1] {
                let mut o = b.min;
                if side == 1 {
                    o[axis] = b.max[axis];
                }
                let mut ea = [0.0; 3];
                ea[a1] = b.max[a1] - b.min[a1];
                let mut eb = [0.0; 3];
                eb[a2] = b.max[a2] - b.min[a2];
                let mut n = [0.0; 3];
                n[axis] = if side == 1 { s } else { -s };
                face(o, ea, eb, n, &mut rng);
            }
        }
    }
    out
}

/// Renders a scene into `out` (created if missing; existing files of the
/// same names are replaced).
pub fn synthesize(out: &Path, o: &SynthOptions) -> Result<SynthSummary> {
    ensure!(o.images >= 1, "--images must be at least 1");
    ensure!(
        o.sessions >= 1 && o.sessions <= o.images,
        "--sessions must be between 1 and --images"
    );
    ensure!(
        o.width >= 16 && o.height >= 16 && o.width <= 8192 && o.height <= 8192,
        "image size must be 16..8192 pixels"
    );
    ensure!(
        o.hfov_deg > 10.0 && o.hfov_deg < 150.0,
        "field of view must be 10..150 degrees"
    );
    let scene = Scene::random(o.seed);
    let f = (o.width as f64 / 2.0) / (o.hfov_deg.to_radians() / 2.0).tan();
    let camera = Camera::pinhole(
        o.width,
        o.height,
        f,
        (o.width as f64 - 1.0) / 2.0,
        (o.height as f64 - 1.0) / 2.0,
    )?;
    let dir = out.join("images");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    // Frames: session k gets images/sessions (the first ones one more).
    let mut frames = Vec::with_capacity(o.images);
    for k in 0..o.sessions {
        let n = o.images / o.sessions + usize::from(k < o.images % o.sessions);
        for pose in trajectory::session_path(&scene, o.seed, k, n) {
            frames.push((k, pose));
        }
    }
    let lightings: Vec<_> = (0..o.sessions)
        .map(|k| scene.lighting(o.seed, if o.same_lighting { 0 } else { k }))
        .collect();
    let points = sample_points(&scene, o.point_density, o.seed);

    let bar = crate::util::progress::bar(
        frames.len(),
        o.progress,
        "rendering {bar:40} {pos}/{len} images  {per_sec}  eta {eta}",
    );
    let done = AtomicUsize::new(0);
    let observed: Vec<Vec<u32>> = frames
        .par_iter()
        .enumerate()
        .map(|(i, (k, pose))| -> Result<Vec<u32>> {
            let view = render::render(
                &scene,
                &lightings[*k],
                &camera,
                pose,
                (o.seed as u32) ^ (i as u32).wrapping_mul(0x9e37),
            );
            let name = format!("image-{i:05}");
            let img = image::RgbImage::from_raw(o.width, o.height, view.rgb).context("image buffer")?;
            save_image_atomic(&img, &naming::color_jpg(&dir, &name), image::ImageFormat::Jpeg)?;
            let depth = DepthMap {
                width: o.width as usize,
                height: o.height as usize,
                data: view.depth,
            };
            depth_map::write_png(&naming::depth_file(&dir, &name, None), &depth)?;
            indoor6::write_pose(&naming::pose_file(&dir, &name), pose)?;
            indoor6::write_intrinsics(
                &naming::intrinsics_file(&dir, &name),
                &Intrinsics {
                    camera,
                    original_name: format!("session{k}/{name}.jpg"),
                },
            )?;
            // Observations: in front, inside, facing the camera, not occluded.
            let c = pose.centre();
            let mut seen = Vec::new();
            for (j, (p, n)) in points.iter().enumerate() {
                let x = sld_core::nalgebra::Vector3::from(*p);
                let pc = pose.transform(&x);
                if pc[2] < 0.2 {
                    continue;
                }
                let v = c - x;
                let cos = (v[0] * n[0] + v[1] * n[1] + v[2] * n[2]) / v.norm();
                if cos < 0.15 {
                    continue;
                }
                let Ok(px) = camera.project([pc[0], pc[1], pc[2]]) else {
                    continue;
                };
                if let Some(d) = depth.at(px[0], px[1]) {
                    if (d - pc[2]).abs() < 0.01 + 0.01 * pc[2] {
                        seen.push(j as u32);
                    }
                }
            }
            bar.set_position(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
            Ok(seen)
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();

    // Tracks: points seen by at least two images.
    let mut tracks: Vec<Vec<usize>> = vec![Vec::new(); points.len()];
    for (i, seen) in observed.iter().enumerate() {
        for &j in seen {
            tracks[j as usize].push(i);
        }
    }
    let cloud: Vec<TrackedPoint> = points
        .iter()
        .zip(tracks)
        .filter(|(_, t)| t.len() >= 2)
        .map(|((p, _), images)| TrackedPoint { xyz: *p, images })
        .collect();
    write_points(&out.join("points3d.txt"), &cloud)?;
    let names: Vec<(String, usize)> = frames
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (format!("image-{i:05}"), *k))
        .collect();
    write_sessions(&out.join("sessions.txt"), &names)?;

    let mut split = Split::default();
    for (i, (name, k)) in names.iter().enumerate() {
        let file = format!("{name}.color.jpg");
        let test = if o.sessions >= 2 {
            *k == o.sessions - 1
        } else {
            i % 5 == 4
        };
        if test {
            split.test.push(file);
            split.test_idx.push(i as i64);
        } else if i % 10 == 9 {
            split.val.push(file);
            split.val_idx.push(i as i64);
        } else {
            split.train.push(file);
            split.train_idx.push(i as i64);
        }
    }
    indoor6::write_split(&out.join("train_test_val.pkl"), &split)?;
    let mean_track = cloud.iter().map(|p| p.images.len()).sum::<usize>() as f64 / cloud.len().max(1) as f64;
    Ok(SynthSummary {
        images: frames.len(),
        points: cloud.len(),
        mean_track,
    })
}
