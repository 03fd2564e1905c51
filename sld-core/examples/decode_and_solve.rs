//! The per-frame path of sld-core on made-up data: heatmaps → detections →
//! pose. Run with `cargo run --release -p sld-core --example decode_and_solve`.
//!
//! A camera 640×352 (f = 500 px) looks at 50 landmarks; one heatmap per
//! landmark holds a Gaussian peak where the landmark projects, as a trained
//! network would output. Decoding and PnP then recover the pose.

use sld_core::heatmap::{decode, DecodeOptions, Detection, HeatmapShape};
use sld_core::nalgebra::Vector3;
use sld_core::pnp::{solve_pnp, PointScratch};
use sld_core::{position_error_m, rotation_error_deg, Camera, PnpOptions, Pose};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let camera = Camera::pinhole(640, 352, 500.0, 319.5, 175.5)?;
    // World-to-camera pose: rotated 0.2 rad about y, camera centre at (0.3, −0.1, −1) m.
    let truth = Pose::from_centre(
        Pose::from_axis_angle(Vector3::new(0.0, 0.2, 0.0), Vector3::zeros()).rotation,
        Vector3::new(0.3, -0.1, -1.0),
    );
    // 50 landmarks on a 10 × 5 grid, 4–6 m in front of the camera.
    let landmarks: Vec<[f64; 3]> = (0..50)
        .map(|i| {
            let (gx, gy) = ((i % 10) as f64, (i / 10) as f64);
            [gx * 0.5 - 2.0, gy * 0.4 - 1.0, 4.0 + 0.2 * ((i * 7) % 10) as f64]
        })
        .collect();

    // What the CNN would output: 50 maps of 44 × 80 cells (stride 8).
    let opts = DecodeOptions::for_stride(8.0);
    let shape = HeatmapShape {
        landmarks: 50,
        height: 44,
        width: 80,
    };
    let mut maps = vec![0f32; 50 * 44 * 80];
    for (l, map) in maps.chunks_exact_mut(44 * 80).enumerate() {
        let pc = truth.transform(&Vector3::from(landmarks[l]));
        let Ok([u, v]) = camera.project([pc[0], pc[1], pc[2]]) else {
            continue;
        };
        if !(0.0..=639.0).contains(&u) || !(0.0..=351.0).contains(&v) {
            continue; // out of view: a trained network outputs no peak
        }
        let (gx, gy) = opts.pixel_to_grid(u as f32, v as f32);
        for y in 0..44 {
            for x in 0..80 {
                let d2 = (x as f32 - gx).powi(2) + (y as f32 - gy).powi(2);
                map[y * 80 + x] = (-d2 / (2.0 * 2.5 * 2.5)).exp();
            }
        }
    }

    // Set-up once: output and scratch sized for the landmark count.
    let mut dets = vec![Detection::default(); 50];
    let mut scratch = vec![PointScratch::default(); 50];
    let (mut p2d, mut p3d, mut conf) = (vec![[0.0; 2]; 50], vec![[0.0; 3]; 50], vec![0.0; 50]);

    // Per frame (allocation-free).
    let n = decode(&maps, shape, &opts, &mut dets)?;
    for (k, d) in dets[..n].iter().enumerate() {
        p2d[k] = [d.u as f64, d.v as f64];
        p3d[k] = landmarks[d.landmark as usize];
        conf[k] = d.confidence as f64;
    }
    let sol = solve_pnp(
        &p2d[..n],
        &p3d[..n],
        Some(&conf[..n]),
        &camera,
        &PnpOptions::default(),
        &mut scratch,
        None,
    )?;

    println!(
        "{n} detections, {} inliers, {} RANSAC iterations",
        sol.inliers, sol.iterations
    );
    println!(
        "error: {:.3} cm, {:.4} deg (camera centre {:?})",
        100.0 * position_error_m(&truth, &sol.pose),
        rotation_error_deg(&truth, &sol.pose),
        sol.pose.centre().as_slice()
    );
    Ok(())
}
