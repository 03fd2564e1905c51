//! `sld simulate`: the geometry path (decode + PnP) on a synthetic scene
//! with a **simulated** CNN: for each
//! query image the heatmaps a well-trained network would output are
//! rendered directly from the ground-truth projection of every landmark
//! (Gaussian σ = 2.5 cells, pixel noise, random peak heights, a fraction of
//! landmarks firing at a wrong place, low background noise). Everything
//! after that is the real on-device path of `sld-core`: heatmap decoding,
//! robust PnP, pose errors against the exact ground truth.

use std::time::Instant;

use anyhow::{ensure, Result};
use sld_core::heatmap::{DecodeOptions, Detection, HeatmapShape};
use sld_core::nalgebra::{Matrix3, Vector3};
use sld_core::pnp::{PnpOptions, PnpSolver};
use sld_core::rng::SplitMix64;
use sld_core::{position_error_m, rotation_error_deg, Camera, Pose};

use crate::util::stats::median;

/// Settings of the demo (all distances in metres, angles in degrees).
#[derive(Clone, Debug)]
pub struct SimulateConfig {
    /// Number of landmarks in the scene.
    pub landmarks: usize,
    /// Number of query images.
    pub queries: usize,
    /// Fraction of visible landmarks detected at a wrong place.
    pub outlier_frac: f64,
    /// Pixel noise of correct detections (standard deviation, input px).
    pub pixel_noise: f64,
    /// Random seed.
    pub seed: u64,
}

impl Default for SimulateConfig {
    fn default() -> Self {
        Self {
            landmarks: 300,
            queries: 100,
            outlier_frac: 0.3,
            pixel_noise: 1.5,
            seed: 1,
        }
    }
}

/// Aggregate results of a demo run.
#[derive(Clone, Debug)]
pub struct SimulateReport {
    /// Queries run.
    pub queries: usize,
    /// Fraction with error < 5 cm and < 5°.
    pub recall_5cm_5deg: f64,
    /// Fraction with error < 10 cm and < 10°.
    pub recall_10cm_10deg: f64,
    /// Median position error, metres (failures count as ∞).
    pub median_position_m: f64,
    /// Median rotation error, degrees (failures count as 180°).
    pub median_rotation_deg: f64,
    /// Median decode time per image, milliseconds.
    pub median_decode_ms: f64,
    /// Median PnP time per image, milliseconds.
    pub median_pnp_ms: f64,
    /// Median detections per image.
    pub median_detections: f64,
}

const W: usize = 640;
const H: usize = 352;
const STRIDE: usize = 8;

/// Runs the demo.
pub fn simulate(cfg: &SimulateConfig) -> Result<SimulateReport> {
    ensure!(
        cfg.landmarks >= 4 && cfg.queries >= 1,
        "need at least 4 landmarks and 1 query"
    );
    ensure!(
        (0.0..=1.0).contains(&cfg.outlier_frac),
        "outlier fraction must lie in [0, 1]"
    );
    let mut rng = SplitMix64::new(cfg.seed);
    let camera = Camera::pinhole(
        W as u32,
        H as u32,
        500.0,
        (W as f64 - 1.0) / 2.0,
        (H as f64 - 1.0) / 2.0,
    )?;
    // A room 10 × 8 × 3 m; landmarks on its walls, floor, ceiling and on
    // box-shaped furniture inside.
    let landmarks: Vec<[f64; 3]> = (0..cfg.landmarks).map(|_| room_point(&mut rng)).collect();
    let (gw, gh) = (W / STRIDE, H / STRIDE);
    let shape = HeatmapShape {
        landmarks: cfg.landmarks,
        height: gh,
        width: gw,
    };
    let decode_opts = DecodeOptions::for_stride(STRIDE as f32);
    let mut maps = vec![0f32; cfg.landmarks * gh * gw];
    let mut dets = vec![Detection::default(); cfg.landmarks];
    let mut p2 = vec![[0.0; 2]; cfg.landmarks];
    let mut p3 = vec![[0.0; 3]; cfg.landmarks];
    let mut conf = vec![0.0; cfg.landmarks];
    let mut solver = PnpSolver::with_capacity(PnpOptions::default(), cfg.landmarks);

    let (mut rot, mut pos, mut t_dec, mut t_pnp, mut ndet) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..cfg.queries {
        let pose = query_pose(&mut rng);
        simulate_heatmaps(&mut rng, cfg, &camera, &pose, &landmarks, &decode_opts, &mut maps);

        let t0 = Instant::now();
        let n = sld_core::decode(&maps, shape, &decode_opts, &mut dets)?;
        t_dec.push(t0.elapsed().as_secs_f64() * 1e3);
        ndet.push(n as f64);
        for (k, d) in dets[..n].iter().enumerate() {
            p2[k] = [d.u as f64, d.v as f64];
            p3[k] = landmarks[d.landmark as usize];
            // SLD*'s weighting: confidence squared.
            conf[k] = (d.confidence as f64).powi(2);
        }
        let t1 = Instant::now();
        let res = solver.solve(&p2[..n], &p3[..n], Some(&conf[..n]), &camera, None);
        t_pnp.push(t1.elapsed().as_secs_f64() * 1e3);
        match res {
            Ok(s) => {
                rot.push(rotation_error_deg(&pose, &s.pose));
                pos.push(position_error_m(&pose, &s.pose));
            }
            Err(_) => {
                rot.push(180.0);
                pos.push(f64::INFINITY);
            }
        }
    }
    let recall = |dr: f64, dp: f64| {
        rot.iter().zip(&pos).filter(|(r, p)| **r < dr && **p < dp).count() as f64 / cfg.queries as f64
    };
    Ok(SimulateReport {
        queries: cfg.queries,
        recall_5cm_5deg: recall(5.0, 0.05),
        recall_10cm_10deg: recall(10.0, 0.10),
        median_position_m: median(&mut pos).unwrap_or(f64::NAN),
        median_rotation_deg: median(&mut rot).unwrap_or(f64::NAN),
        median_decode_ms: median(&mut t_dec).unwrap_or(f64::NAN),
        median_pnp_ms: median(&mut t_pnp).unwrap_or(f64::NAN),
        median_detections: median(&mut ndet).unwrap_or(f64::NAN),
    })
}

fn room_point(rng: &mut SplitMix64) -> [f64; 3] {
    // World frame: x ∈ [0, 10], y ∈ [0, 8] on the floor, z up ∈ [0, 3].
    match rng.below(6) {
        0 => [0.0, rng.uniform(0.0, 8.0), rng.uniform(0.0, 3.0)],
        1 => [10.0, rng.uniform(0.0, 8.0), rng.uniform(0.0, 3.0)],
        2 => [rng.uniform(0.0, 10.0), 0.0, rng.uniform(0.0, 3.0)],
        3 => [rng.uniform(0.0, 10.0), 8.0, rng.uniform(0.0, 3.0)],
        4 => [rng.uniform(0.0, 10.0), rng.uniform(0.0, 8.0), 0.0],
        // Furniture: points on boxes up to 1.2 m high.
        _ => [
            rng.uniform(1.0, 9.0),
            rng.uniform(1.0, 7.0),
            rng.uniform(0.0, 1.2),
        ],
    }
}

/// A camera at human height somewhere in the room, looking roughly
/// horizontally in a random direction.
fn query_pose(rng: &mut SplitMix64) -> Pose {
    let centre = Vector3::new(
        rng.uniform(2.5, 7.5),
        rng.uniform(2.0, 6.0),
        rng.uniform(1.4, 1.8),
    );
    let yaw = rng.uniform(0.0, std::f64::consts::TAU);
    let pitch = rng.uniform(-0.3, 0.1);
    // Camera axes in world coordinates: z forward, x right, y down.
    let fwd = Vector3::new(yaw.cos() * pitch.cos(), yaw.sin() * pitch.cos(), pitch.sin());
    let right = fwd.cross(&Vector3::z()).normalize();
    let down = fwd.cross(&right);
    let cam_to_world = Matrix3::from_columns(&[right, down, fwd]);
    Pose::from_centre(cam_to_world.transpose(), centre)
}

#[allow(clippy::too_many_arguments)]
fn simulate_heatmaps(
    rng: &mut SplitMix64,
    cfg: &SimulateConfig,
    camera: &Camera,
    pose: &Pose,
    landmarks: &[[f64; 3]],
    opts: &DecodeOptions,
    maps: &mut [f32],
) {
    let (gw, gh) = (W / STRIDE, H / STRIDE);
    for (l, map) in maps.chunks_exact_mut(gw * gh).enumerate() {
        for v in map.iter_mut() {
            *v = (0.05 * rng.unit_f64()) as f32;
        }
        let pc = pose.transform(&Vector3::from(landmarks[l]));
        let Ok(px) = camera.project([pc[0], pc[1], pc[2]]) else {
            continue;
        };
        let inside = px[0] >= 0.0 && px[0] <= W as f64 - 1.0 && px[1] >= 0.0 && px[1] <= H as f64 - 1.0;
        if !inside || pc[2] < 0.3 {
            continue;
        }
        let (u, v) = if rng.unit_f64() < cfg.outlier_frac {
            (rng.uniform(0.0, W as f64 - 1.0), rng.uniform(0.0, H as f64 - 1.0))
        } else {
            (
                px[0] + cfg.pixel_noise * rng.gauss(),
                px[1] + cfg.pixel_noise * rng.gauss(),
            )
        };
        let amp = rng.uniform(0.4, 1.0) as f32;
        let (gx, gy) = opts.pixel_to_grid(u as f32, v as f32);
        let sigma = 2.5f32;
        let (x0, x1) = (
            (gx - 8.0).max(0.0) as usize,
            ((gx + 8.0).max(0.0) as usize).min(gw - 1),
        );
        let (y0, y1) = (
            (gy - 8.0).max(0.0) as usize,
            ((gy + 8.0).max(0.0) as usize).min(gh - 1),
        );
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d2 = (x as f32 - gx).powi(2) + (y as f32 - gy).powi(2);
                let g = amp * (-d2 / (2.0 * sigma * sigma)).exp();
                let cell = &mut map[y * gw + x];
                *cell = cell.max(g);
            }
        }
    }
}
