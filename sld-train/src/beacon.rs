//! A known-answer kit for integration tests: a hand-weighted "beacon"
//! model, an image of its beacons seen from a known pose, and that pose.
//!
//! Landmark `l` is a coloured dot: a Gaussian blob (σ = 3 px) of a saturated
//! colour `c_l` on black. The model is two 1×1 convolutions, written by hand
//! rather than trained:
//!
//! ```text
//! diff_l,c± = relu(±(x_c − c_l,c))                 6 channels per landmark
//! heat_l    = relu(1 − Σ diff_l / T)                T = 0.45
//! ```
//!
//! so `heat_l` is `1 − (1 − g)·|c_l|₁ / T` inside a blob of colour `c_l`
//! with weight `g`, zero elsewhere (every blob of another palette colour,
//! at any intensity, stays at least 0.5 > T away in L1). The heatmaps are at
//! stride 1 and peak at the blob centres, so [`sld_core::Localizer`] — or
//! a C program through `sld-ffi` — must recover the pose to well under a
//! centimetre. Nothing here is learned; the kit checks that the plumbing
//! (file loading, image layout, intrinsics, decoding, PnP, pose convention)
//! is right end to end, against a pose known exactly.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sld_core::nalgebra::Vector3;
use sld_core::rng::SplitMix64;
use sld_core::{Camera, Pose};

use crate::net::builder::{ConvSpec, GraphBuilder};
use crate::net::export::to_sld_bytes;
use sld_core::model::graph::Activation;

/// Blob standard deviation, pixels.
pub const SIGMA_PX: f64 = 4.0;
/// Detector tolerance: a pixel matches colour `c` when its L1 distance to
/// `c` is below `T` (colour values in `[0, 1]`).
pub const T: f32 = 0.45;

/// Saturated colours (max channel 1, channels in {0, ½, 1}): 19 of them.
pub fn palette() -> Vec<[f32; 3]> {
    let levels = [0.0, 0.5, 1.0];
    let mut out = vec![];
    for r in levels {
        for g in levels {
            for b in levels {
                if r == 1.0 || g == 1.0 || b == 1.0 {
                    out.push([r, g, b]);
                }
            }
        }
    }
    out
}

/// Everything a known-answer test needs.
pub struct BeaconKit {
    /// The `.sld` model file.
    pub model: Vec<u8>,
    /// The image, RGB8, tightly packed (`stride = 3 · width`).
    pub rgb: Vec<u8>,
    /// Intrinsics of the image (pixel-centre convention).
    pub camera: Camera,
    /// World-to-camera pose the image was rendered from.
    pub pose: Pose,
    /// Landmark positions, world frame, metres.
    pub landmarks: Vec<[f64; 3]>,
    /// Their exact projections, pixels.
    pub pixels: Vec<[f64; 2]>,
}

/// Builds a kit: `landmarks` beacons (at most 19) in a `width × height`
/// image; `seed` picks the pose and positions.
pub fn beacon_kit(width: u32, height: u32, landmarks: usize, seed: u64) -> Result<BeaconKit> {
    let colours = palette();
    if !(4..=colours.len()).contains(&landmarks) {
        bail!(
            "a beacon kit has 4 to {} landmarks, not {landmarks}",
            colours.len()
        );
    }
    if width < 64 || height < 64 {
        bail!("a beacon image needs at least 64×64 pixels");
    }
    let (w, h) = (width as f64, height as f64);
    let f = 0.9 * w;
    let camera = Camera::pinhole(width, height, f, 0.5 * w - 0.5, 0.5 * h - 0.5)?;
    let mut rng = SplitMix64::new(seed);
    // Camera somewhere in a room, looking roughly along +x with some tilt.
    let yaw = (rng.unit_f64() - 0.5) * 1.0;
    let tilt = (rng.unit_f64() - 0.5) * 0.4;
    let omega = Vector3::new(tilt, yaw, (rng.unit_f64() - 0.5) * 0.2);
    let centre = Vector3::new(rng.unit_f64() * 2.0, rng.unit_f64() * 2.0, rng.unit_f64());
    let r = sld_core::pose::so3_exp(&omega);
    let pose = Pose::from_centre(r, centre);
    let cam_to_world = pose.inverse();

    // Beacon centres: well separated pixels, depths 2–5 m.
    // 5σ apart, each blob's detectable core (≲ 2σ) is untouched by others.
    let margin = 3.0 * SIGMA_PX + 2.0;
    let min_sep = 5.0 * SIGMA_PX;
    let mut pixels: Vec<[f64; 2]> = vec![];
    let mut tries = 0;
    while pixels.len() < landmarks {
        tries += 1;
        if tries > 100_000 {
            bail!("image too small for {landmarks} separated beacons");
        }
        let u = margin + rng.unit_f64() * (w - 1.0 - 2.0 * margin);
        let v = margin + rng.unit_f64() * (h - 1.0 - 2.0 * margin);
        if pixels.iter().all(|p| (p[0] - u).hypot(p[1] - v) >= min_sep) {
            pixels.push([u, v]);
        }
    }
    let landmarks_w: Vec<[f64; 3]> = pixels
        .iter()
        .map(|&[u, v]| {
            let z = 2.0 + 3.0 * rng.unit_f64();
            let p_cam = Vector3::new(
                (u - camera.cx) / camera.fx * z,
                (v - camera.cy) / camera.fy * z,
                z,
            );
            let p = cam_to_world.transform(&p_cam);
            [p.x, p.y, p.z]
        })
        .collect();

    let rgb = render(width, height, &pixels, &colours);
    let model = beacon_model(width, height, &colours[..landmarks], &landmarks_w)?;
    Ok(BeaconKit {
        model,
        rgb,
        camera,
        pose,
        landmarks: landmarks_w,
        pixels,
    })
}

/// Draws the blobs: each pixel takes the colour of the blob with the
/// largest Gaussian weight `g`, scaled by `g`, rounded to 8 bits.
fn render(width: u32, height: u32, pixels: &[[f64; 2]], colours: &[[f32; 3]]) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut rgb = vec![0u8; w * h * 3];
    let reach = (4.0 * SIGMA_PX).ceil() as i64;
    let mut best = vec![0.0f64; w * h];
    for (l, &[cu, cv]) in pixels.iter().enumerate() {
        let (u0, v0) = (cu.round() as i64, cv.round() as i64);
        for y in (v0 - reach).max(0)..=(v0 + reach).min(h as i64 - 1) {
            for x in (u0 - reach).max(0)..=(u0 + reach).min(w as i64 - 1) {
                let d2 = (x as f64 - cu).powi(2) + (y as f64 - cv).powi(2);
                let g = (-d2 / (2.0 * SIGMA_PX * SIGMA_PX)).exp();
                let i = y as usize * w + x as usize;
                if g > best[i] {
                    best[i] = g;
                    for c in 0..3 {
                        rgb[3 * i + c] = (255.0 * g * colours[l][c] as f64).round() as u8;
                    }
                }
            }
        }
    }
    rgb
}

/// The two-layer colour detector as a `.sld` file (stride 1, inputs in
/// `[0, 1]`: mean 0, std 1).
fn beacon_model(width: u32, height: u32, colours: &[[f32; 3]], landmarks: &[[f64; 3]]) -> Result<Vec<u8>> {
    let l = colours.len();
    let mut b = GraphBuilder::new(3, height as usize, width as usize, 0);
    let diff = b.conv("diff", "image", ConvSpec::new(6 * l, 1).act(Activation::Relu));
    let heat = b.conv("heat", &diff, ConvSpec::new(l, 1).act(Activation::Relu));
    let (info, mut tensors) = b.finish(&[&heat], 1, "beacons");
    let mut set = |name: &str, data: Vec<f32>| {
        if let Some(t) = tensors.iter_mut().find(|t| t.name == name) {
            t.data = data;
        }
    };
    // diff: weight [6L, 3, 1, 1], bias [6L].
    let mut w1 = vec![0.0f32; 6 * l * 3];
    let mut b1 = vec![0.0f32; 6 * l];
    for (k, c) in colours.iter().enumerate() {
        for ch in 0..3 {
            let plus = 6 * k + 2 * ch;
            w1[plus * 3 + ch] = 1.0;
            b1[plus] = -c[ch];
            w1[(plus + 1) * 3 + ch] = -1.0;
            b1[plus + 1] = c[ch];
        }
    }
    set("diff.weight", w1);
    set("diff.bias", b1);
    // heat: weight [L, 6L, 1, 1], bias [L].
    let mut w2 = vec![0.0f32; l * 6 * l];
    for k in 0..l {
        for j in 0..6 {
            w2[k * 6 * l + 6 * k + j] = -1.0 / T;
        }
    }
    set("heat.weight", w2);
    set("heat.bias", vec![1.0; l]);
    let lm: Vec<[f32; 3]> = landmarks.iter().map(|p| p.map(|v| v as f32)).collect();
    to_sld_bytes(&info, &tensors, &lm)
}

/// Writes a kit to `dir`: `model.sld`, `image.ppm` (binary P6, RGB8) and
/// `truth.txt` (documented in the file's comment lines).
pub fn write_kit(kit: &BeaconKit, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| crate::io::atomic::write_atomic(&dir.join(name), bytes);
    write("model.sld", &kit.model)?;
    let mut ppm = format!("P6\n{} {}\n255\n", kit.camera.width, kit.camera.height).into_bytes();
    ppm.extend_from_slice(&kit.rgb);
    write("image.ppm", &ppm)?;
    let c = &kit.camera;
    let rows = kit.pose.to_rows();
    let mut t = Vec::new();
    writeln!(t, "# sld beacon kit: the pose image.ppm was rendered from")?;
    writeln!(
        t,
        "# line 1: width height fx fy cx cy kappa (pixels; pixel (0,0) is the centre of the top-left pixel)"
    )?;
    writeln!(
        t,
        "# line 2: R row-major (world-to-camera: x_cam = R x_world + t)"
    )?;
    writeln!(t, "# line 3: t (metres)")?;
    writeln!(
        t,
        "{} {} {} {} {} {} {}",
        c.width, c.height, c.fx, c.fy, c.cx, c.cy, c.kappa
    )?;
    let r: Vec<String> = rows
        .iter()
        .flat_map(|row| row[..3].iter().map(|v| format!("{v:.17e}")))
        .collect();
    writeln!(t, "{}", r.join(" "))?;
    let tr: Vec<String> = rows.iter().map(|row| format!("{:.17e}", row[3])).collect();
    writeln!(t, "{}", tr.join(" "))?;
    write("truth.txt", &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No blob of one colour, at any intensity, comes within the detector
    /// tolerance of another colour.
    #[test]
    fn palette_has_no_crosstalk() {
        let p = palette();
        assert_eq!(p.len(), 19);
        for (i, ci) in p.iter().enumerate() {
            for (j, cj) in p.iter().enumerate() {
                if i == j {
                    continue;
                }
                for k in 0..=1000 {
                    let g = k as f32 / 1000.0;
                    let d: f32 = (0..3).map(|c| (g * ci[c] - cj[c]).abs()).sum();
                    assert!(d > T + 0.01, "colour {i} at g={g} is {d} from colour {j}");
                }
            }
        }
    }

    #[test]
    fn pose_projects_landmarks_to_their_pixels() {
        let kit = beacon_kit(256, 192, 16, 7).unwrap();
        for (x, px) in kit.landmarks.iter().zip(&kit.pixels) {
            let pc = kit.pose.transform(&Vector3::from(*x));
            let uv = kit.camera.project([pc.x, pc.y, pc.z]).unwrap();
            assert!((uv[0] - px[0]).abs() < 1e-9 && (uv[1] - px[1]).abs() < 1e-9);
        }
    }

    /// The Rust localizer recovers the rendered pose from the kit.
    #[test]
    fn localizer_recovers_the_pose() {
        for seed in 1..4 {
            let kit = beacon_kit(256, 192, 16, seed).unwrap();
            let mut loc = sld_core::Localizer::new(kit.model.clone()).unwrap();
            let img = sld_core::Image::new(256, 192, 256 * 3, sld_core::PixelFormat::Rgb8, &kit.rgb).unwrap();
            let out = loc.localize(&img, &kit.camera).unwrap();
            assert_eq!(out.detections, 16);
            assert_eq!(out.inliers, 16);
            let dt = sld_core::position_error_m(&kit.pose, &out.pose);
            let dr = sld_core::rotation_error_deg(&kit.pose, &out.pose);
            let worst = loc
                .last_detections()
                .iter()
                .map(|d| {
                    let p = kit.pixels[d.landmark as usize];
                    (d.u as f64 - p[0]).hypot(d.v as f64 - p[1])
                })
                .fold(0.0, f64::max);
            eprintln!(
                "seed {seed}: {:.2} mm, {dr:.4} deg, worst detection {worst:.3} px",
                dt * 1e3
            );
            assert!(worst < 0.5, "detection error {worst} px");
            assert!(dt < 0.01 && dr < 0.1, "{dt} m, {dr} deg");
        }
    }
}
