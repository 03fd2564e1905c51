//! Camera paths: a hand-held camera at human height walking through the
//! free floor space, looking around (mostly across the room).

use sld_core::nalgebra::{Matrix3, Vector3};
use sld_core::rng::SplitMix64;
use sld_core::Pose;

use super::scene::Scene;

/// World-to-camera rotation of a camera looking along `yaw` (radians from
/// world `+x` towards `+y`), `pitch` (up positive) and `roll` (radians);
/// camera `x` right, `y` down, `z` forward, world `z` up.
pub fn look_rotation(yaw: f64, pitch: f64, roll: f64) -> Matrix3<f64> {
    let f = Vector3::new(pitch.cos() * yaw.cos(), pitch.cos() * yaw.sin(), pitch.sin());
    let r0 = f.cross(&Vector3::z()).normalize();
    let d0 = f.cross(&r0);
    let (s, c) = roll.sin_cos();
    let r = r0 * c + d0 * s;
    let d = d0 * c - r0 * s;
    Matrix3::from_columns(&[r, d, f]).transpose()
}

/// True when `(x, y)` is at least `margin` metres from walls and furniture.
pub fn is_free(scene: &Scene, x: f64, y: f64, margin: f64) -> bool {
    let [sx, sy, _] = scene.size;
    if x < margin || y < margin || x > sx - margin || y > sy - margin {
        return false;
    }
    scene.furniture.iter().all(|&i| {
        let b = &scene.boxes[i];
        x < b.min[0] - margin || x > b.max[0] + margin || y < b.min[1] - margin || y > b.max[1] + margin
    })
}

/// `n` poses of one session: a smooth Lissajous walk over the free floor at
/// 1.4–1.8 m, heading towards the room centre ± up to 80°, pitch ±15°, roll ±4°.
pub fn session_path(scene: &Scene, seed: u64, session: usize, n: usize) -> Vec<Pose> {
    let mut rng = SplitMix64::new(seed ^ 0x7a3c_0001 ^ (session as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let [sx, sy, _] = scene.size;
    let (cx, cy) = (sx / 2.0, sy / 2.0);
    let (ax, ay) = (sx / 2.0 - 0.8, sy / 2.0 - 0.8);
    let w = [
        1.0 + rng.below(2) as f64,
        2.0 + rng.below(2) as f64,
        3.0,
        5.0,
        7.0,
    ];
    let ph: Vec<f64> = (0..8).map(|_| rng.uniform(0.0, std::f64::consts::TAU)).collect();
    let look_amp = rng.uniform(0.8, 1.4);
    let mut poses = Vec::with_capacity(n);
    // Walk the closed curve once, skipping samples that are not free.
    let steps = (n * 20).max(1);
    let mut k = 0usize;
    let mut candidates = Vec::new();
    while candidates.len() < n * 4 && k < steps * 4 {
        let t = k as f64 / steps as f64 * std::f64::consts::TAU;
        k += 1;
        let x = cx + ax * (w[0] * t + ph[0]).sin() * (0.7 + 0.3 * (w[2] * t + ph[2]).sin());
        let y = cy + ay * (w[1] * t + ph[1]).sin() * (0.7 + 0.3 * (w[3] * t + ph[3]).cos());
        if is_free(scene, x, y, 0.5) {
            candidates.push((t, x, y));
        }
    }
    if candidates.is_empty() {
        candidates.push((0.0, cx, cy));
    }
    for i in 0..n {
        let (t, x, y) = candidates[i * candidates.len() / n];
        let z = 1.6 + 0.2 * (w[4] * t + ph[4]).sin();
        let to_centre = (cy - y).atan2(cx - x);
        let yaw = to_centre + look_amp * (w[2] * t * 1.7 + ph[5]).sin() + rng.uniform(-0.1, 0.1);
        let pitch = 0.26 * (w[3] * t + ph[6]).sin() - 0.05;
        let roll = 0.07 * (w[4] * t + ph[7]).sin();
        poses.push(Pose::from_centre(
            look_rotation(yaw, pitch, roll),
            Vector3::new(x, y, z),
        ));
    }
    poses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_rotation_is_a_rotation_with_the_right_axes() {
        let r = look_rotation(0.0, 0.0, 0.0);
        // World +x is the optical axis; world −y is camera right; world −z is camera down.
        assert!((r * Vector3::x() - Vector3::z()).norm() < 1e-12);
        assert!((r * -Vector3::y() - Vector3::x()).norm() < 1e-12);
        assert!((r * -Vector3::z() - Vector3::y()).norm() < 1e-12);
        let r = look_rotation(1.0, 0.3, 0.1);
        assert!(
            (r * r.transpose() - Matrix3::identity()).norm() < 1e-12 && (r.determinant() - 1.0).abs() < 1e-12
        );
    }

    #[test]
    fn paths_stay_in_free_space_at_human_height() {
        let scene = Scene::random(4);
        let poses = session_path(&scene, 4, 1, 50);
        assert_eq!(poses.len(), 50);
        for p in &poses {
            let c = p.centre();
            assert!(is_free(&scene, c[0], c[1], 0.49), "{c:?}");
            assert!(c[2] > 1.35 && c[2] < 1.85);
        }
    }
}
