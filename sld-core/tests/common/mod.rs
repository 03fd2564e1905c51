//! Ground-truth problem generators shared by the integration tests.
#![allow(dead_code)]

use sld_core::nalgebra::{Matrix3, Vector3};
use sld_core::pose::so3_exp;
use sld_core::rng::SplitMix64;
use sld_core::{Camera, Pose};

/// Standard normal sample (Box–Muller).
pub fn gauss(rng: &mut SplitMix64) -> f64 {
    let u1 = rng.unit_f64().max(1e-300);
    let u2 = rng.unit_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Uniform in [a, b).
pub fn uniform(rng: &mut SplitMix64, a: f64, b: f64) -> f64 {
    a + (b - a) * rng.unit_f64()
}

/// A random rotation (uniform axis, angle up to π).
pub fn random_rotation(rng: &mut SplitMix64) -> Matrix3<f64> {
    let axis = Vector3::new(gauss(rng), gauss(rng), gauss(rng)).normalize();
    so3_exp(&(axis * uniform(rng, 0.0, std::f64::consts::PI)))
}

/// A random world-to-camera pose with the camera within a few metres of
/// the origin.
pub fn random_pose(rng: &mut SplitMix64) -> Pose {
    let r = random_rotation(rng);
    let c = Vector3::new(
        uniform(rng, -2.0, 2.0),
        uniform(rng, -2.0, 2.0),
        uniform(rng, -2.0, 2.0),
    );
    Pose::from_centre(r, c)
}

/// A VGA camera, f = 550 px.
pub fn vga() -> Camera {
    Camera::pinhole(640, 480, 550.0, 319.5, 239.5).unwrap()
}

/// A world point visible in `camera` at `pose`, depth in [zmin, zmax],
/// with its exact pixel.
pub fn visible_point(
    rng: &mut SplitMix64,
    pose: &Pose,
    camera: &Camera,
    zmin: f64,
    zmax: f64,
) -> ([f64; 2], [f64; 3]) {
    let u = uniform(rng, 0.0, camera.width as f64 - 1.0);
    let v = uniform(rng, 0.0, camera.height as f64 - 1.0);
    let z = uniform(rng, zmin, zmax);
    let n = camera.unproject([u, v]).unwrap();
    let pc = Vector3::new(n[0] * z, n[1] * z, z);
    let pw = pose.inverse().transform(&pc);
    ([u, v], [pw[0], pw[1], pw[2]])
}

/// A synthetic PnP problem resembling landmark localisation.
pub struct Problem {
    pub pose: Pose,
    pub camera: Camera,
    pub p2d: Vec<[f64; 2]>,
    pub p3d: Vec<[f64; 3]>,
    pub conf: Vec<f64>,
    pub is_inlier: Vec<bool>,
}

/// `n` correspondences, `outlier_frac` of them wrong (random pixels),
/// Gaussian pixel noise `sigma`; confidences higher for inliers but
/// overlapping.
pub fn problem(rng: &mut SplitMix64, n: usize, outlier_frac: f64, sigma: f64) -> Problem {
    let camera = vga();
    let pose = random_pose(rng);
    let mut p2d = Vec::with_capacity(n);
    let mut p3d = Vec::with_capacity(n);
    let mut conf = Vec::with_capacity(n);
    let mut is_inlier = Vec::with_capacity(n);
    let n_out = (n as f64 * outlier_frac).round() as usize;
    for i in 0..n {
        let (mut px, pw) = visible_point(rng, &pose, &camera, 1.0, 8.0);
        let inlier = i >= n_out;
        if inlier {
            px[0] += sigma * gauss(rng);
            px[1] += sigma * gauss(rng);
            conf.push(uniform(rng, 0.3, 1.0));
        } else {
            px = [uniform(rng, 0.0, 639.0), uniform(rng, 0.0, 479.0)];
            conf.push(uniform(rng, 0.2, 0.7));
        }
        p2d.push(px);
        p3d.push(pw);
        is_inlier.push(inlier);
    }
    Problem {
        pose,
        camera,
        p2d,
        p3d,
        conf,
        is_inlier,
    }
}
