//! Ray casting: one primary ray per pixel centre, Lambertian shading with
//! inverse-square point lights and hard shadows, sRGB-like gamma, a little
//! sensor noise. Depth is `z` along the optical axis (metres), exact.

use sld_core::{Camera, Pose};

use super::scene::{Lighting, Scene};
use super::texture::hash2;

/// One rendered view.
#[derive(Clone, Debug)]
pub struct View {
    /// RGB8, row-major, `width × height × 3`.
    pub rgb: Vec<u8>,
    /// Depth along the optical axis, metres, row-major.
    pub depth: Vec<f32>,
}

/// Renders `scene` under `lighting` from `pose` (world-to-camera) with a
/// pinhole `camera` (κ ignored; synthetic cameras have none). `noise_seed`
/// varies the sensor noise between frames.
pub fn render(scene: &Scene, lighting: &Lighting, camera: &Camera, pose: &Pose, noise_seed: u32) -> View {
    let (w, h) = (camera.width as usize, camera.height as usize);
    let mut rgb = vec![0u8; w * h * 3];
    let mut depth = vec![0f32; w * h];
    let rt = pose.rotation.transpose();
    let c = pose.centre();
    let origin = [c[0], c[1], c[2]];
    for y in 0..h {
        for x in 0..w {
            // Pixel centre convention: pixel (x, y) is at (x, y).
            let dc = [
                (x as f64 - camera.cx) / camera.fx,
                (y as f64 - camera.cy) / camera.fy,
                1.0,
            ];
            let dw = rt * sld_core::nalgebra::Vector3::from(dc);
            let d = [dw[0], dw[1], dw[2]];
            let Some(hit) = scene.intersect(origin, d, 1e-6) else {
                continue;
            };
            // With d = Rᵀ(x, y, 1), the hit's camera z equals t.
            depth[y * w + x] = hit.t as f32;
            let p = [
                origin[0] + hit.t * d[0],
                origin[1] + hit.t * d[1],
                origin[2] + hit.t * d[2],
            ];
            let albedo = scene.materials[hit.material].albedo(hit.uv[0], hit.uv[1]);
            let mut light = lighting.ambient;
            // Ambient falls off a little towards the floor and corners.
            let ao = 0.75 + 0.25 * (p[2] / scene.size[2]) as f32;
            light.iter_mut().for_each(|l| *l *= ao);
            for l in &lighting.lights {
                let v = [l.position[0] - p[0], l.position[1] - p[1], l.position[2] - p[2]];
                let d2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
                let cos = (v[0] * hit.normal[0] + v[1] * hit.normal[1] + v[2] * hit.normal[2]) / d2.sqrt();
                if cos <= 0.0 {
                    continue;
                }
                let q = [
                    p[0] + 1e-4 * hit.normal[0],
                    p[1] + 1e-4 * hit.normal[1],
                    p[2] + 1e-4 * hit.normal[2],
                ];
                if scene.occluded(q, l.position) {
                    continue;
                }
                let k = (cos / d2.max(0.25)) as f32;
                for (li, p) in light.iter_mut().zip(l.power) {
                    *li += p * k;
                }
            }
            let n = hash2(x as i32, y as i32, noise_seed) - 0.5;
            let out = &mut rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
            for ch in 0..3 {
                let lin = albedo[ch] * light[ch] * lighting.exposure;
                let g = lin.max(0.0).powf(1.0 / 2.2) * 255.0 + 4.0 * n;
                out[ch] = g.clamp(0.0, 255.0) as u8;
            }
        }
    }
    View { rgb, depth }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scene::{Aabb, Light};
    use crate::synth::texture::{Material, Pattern};
    use sld_core::nalgebra::{Matrix3, Vector3};
    use sld_core::rng::SplitMix64;

    /// Depth of every pixel equals the analytic ray–plane intersection with
    /// the wall the camera faces.
    #[test]
    fn depth_matches_ray_plane_intersection() {
        let scene = Scene {
            size: [6.0, 5.0, 3.0],
            boxes: vec![Aabb {
                min: [2.0, 2.0, 0.0],
                max: [2.5, 2.5, 0.3],
            }],
            materials: vec![Material::random(Pattern::Bricks, &mut SplitMix64::new(2))],
            face_material: vec![0; 7],
            furniture: vec![0],
        };
        let lighting = Lighting {
            ambient: [0.3; 3],
            lights: vec![Light {
                position: [3.0, 2.5, 2.8],
                power: [3.0; 3],
            }],
            exposure: 1.0,
        };
        // Camera at (1, 2.5, 1.5) looking along +x (world), tilted 10° up.
        let pitch = 10f64.to_radians();
        let f = Vector3::new(pitch.cos(), 0.0, pitch.sin());
        let r = Vector3::new(0.0, -1.0, 0.0);
        let dn = f.cross(&r);
        let r_c2w = Matrix3::from_columns(&[r, dn, f]);
        let pose = Pose::from_centre(r_c2w.transpose(), Vector3::new(1.0, 2.5, 1.5));
        let cam = Camera::pinhole(64, 48, 40.0, 31.5, 23.5).unwrap();
        let view = render(&scene, &lighting, &cam, &pose, 1);
        let mut checked = 0;
        for y in 0..48 {
            for x in 0..64 {
                let dc = Vector3::new((x as f64 - 31.5) / 40.0, (y as f64 - 23.5) / 40.0, 1.0);
                let dw = r_c2w * dc;
                // Wall x = 6: t = 5 / dw.x, valid if the hit lies within y, z bounds.
                let t = 5.0 / dw[0];
                let p = Vector3::new(1.0, 2.5, 1.5) + dw * t;
                if p[1] > 0.0 && p[1] < 5.0 && p[2] > 0.0 && p[2] < 3.0 {
                    let got = view.depth[y * 64 + x] as f64;
                    assert!((got - t).abs() < 1e-5 * t, "pixel ({x},{y}): {got} vs {t}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
        // The image is not blank.
        let mean = view.rgb.iter().map(|&v| v as f64).sum::<f64>() / view.rgb.len() as f64;
        assert!(mean > 20.0 && mean < 235.0, "{mean}");
    }
}
