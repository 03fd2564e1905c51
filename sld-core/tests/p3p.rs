//! Lambda Twist P3P against exact poses and an independent brute-force
//! solver.

mod common;

use common::*;
use sld_core::nalgebra::Vector3;
use sld_core::pnp::p3p::{lambda_twist, P3pSolutions};
use sld_core::rng::SplitMix64;
use sld_core::{position_error_m, rotation_error_deg};

fn triplet(rng: &mut SplitMix64) -> (sld_core::Pose, [Vector3<f64>; 3], [Vector3<f64>; 3]) {
    let pose = random_pose(rng);
    let cam = vga();
    let mut y = [Vector3::zeros(); 3];
    let mut x = [Vector3::zeros(); 3];
    for k in 0..3 {
        let (_, pw) = visible_point(rng, &pose, &cam, 0.5, 10.0);
        x[k] = Vector3::from(pw);
        y[k] = pose.transform(&x[k]).normalize();
    }
    (pose, y, x)
}

/// Every solution must map the three world points onto the three rays.
fn assert_consistent(sol: &sld_core::Pose, y: &[Vector3<f64>; 3], x: &[Vector3<f64>; 3]) {
    for k in 0..3 {
        let pc = sol.transform(&x[k]);
        assert!(pc[2] > 0.0);
        let ang = pc.normalize().dot(&y[k]).clamp(-1.0, 1.0).acos();
        assert!(ang < 1e-7, "solution does not reproject: {ang} rad");
    }
}

#[test]
fn recovers_the_true_pose_on_random_triplets() {
    let mut rng = SplitMix64::new(1);
    let mut out = P3pSolutions::new();
    let mut worst_rot = 0.0f64;
    let mut worst_pos = 0.0f64;
    for _ in 0..10_000 {
        let (pose, y, x) = triplet(&mut rng);
        let n = lambda_twist(&y, &x, &mut out);
        assert!(n >= 1, "no solution for a valid triplet");
        let mut best = (f64::INFINITY, f64::INFINITY);
        for sol in &out {
            assert_consistent(sol, &y, &x);
            let e = (rotation_error_deg(&pose, sol), position_error_m(&pose, sol));
            if e.0 + e.1 < best.0 + best.1 {
                best = e;
            }
        }
        worst_rot = worst_rot.max(best.0);
        worst_pos = worst_pos.max(best.1);
    }
    assert!(worst_rot < 1e-5, "worst rotation error {worst_rot} deg");
    assert!(worst_pos < 1e-6, "worst position error {worst_pos} m");
}

/// Independent solver: scan λ1, solve λ2 and λ3 from the 1-2 and 1-3
/// equations (two branches each) and find sign changes of the 2-3 equation.
fn brute_force_count(y: &[Vector3<f64>; 3], x: &[Vector3<f64>; 3]) -> usize {
    let a12 = (x[0] - x[1]).norm_squared();
    let a13 = (x[0] - x[2]).norm_squared();
    let a23 = (x[1] - x[2]).norm_squared();
    let (c12, c13, c23) = (y[0].dot(&y[1]), y[0].dot(&y[2]), y[1].dot(&y[2]));
    // λ1 is bounded by the law of sines: λ1² (1 − c12²) ≤ a12.
    let lmax = (a12 / (1.0 - c12 * c12))
        .sqrt()
        .min((a13 / (1.0 - c13 * c13)).sqrt());
    let f = |l1: f64, s2: f64, s3: f64| -> Option<f64> {
        let d2 = a12 - l1 * l1 * (1.0 - c12 * c12);
        let d3 = a13 - l1 * l1 * (1.0 - c13 * c13);
        if d2 < 0.0 || d3 < 0.0 {
            return None;
        }
        let l2 = l1 * c12 + s2 * d2.sqrt();
        let l3 = l1 * c13 + s3 * d3.sqrt();
        if l2 <= 0.0 || l3 <= 0.0 {
            return None;
        }
        Some(l2 * l2 + l3 * l3 - 2.0 * c23 * l2 * l3 - a23)
    };
    let steps = 200_000;
    let mut count = 0;
    for (s2, s3) in [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)] {
        let mut prev: Option<f64> = None;
        for i in 1..steps {
            let l1 = lmax * i as f64 / steps as f64;
            let cur = f(l1, s2, s3);
            if let (Some(a), Some(b)) = (prev, cur) {
                if a == 0.0 || a.signum() != b.signum() {
                    count += 1;
                }
            }
            prev = cur;
        }
    }
    count
}

#[test]
fn finds_all_real_solutions_like_a_brute_force_solver() {
    let mut rng = SplitMix64::new(2);
    let mut out = P3pSolutions::new();
    let (mut agree, mut total, mut multi) = (0, 0, 0);
    for _ in 0..300 {
        let (_, y, x) = triplet(&mut rng);
        let n = lambda_twist(&y, &x, &mut out);
        let m = brute_force_count(&y, &x);
        total += 1;
        multi += usize::from(m > 1);
        agree += usize::from(n == m);
    }
    // The scan can miss nearly tangent root pairs; demand near-total agreement.
    assert!(
        agree >= total * 99 / 100,
        "solution counts agree on {agree}/{total}"
    );
    assert!(multi > 10, "test should include multi-solution cases ({multi})");
}

#[test]
fn near_degenerate_triplets_are_solved_or_rejected_cleanly() {
    let mut rng = SplitMix64::new(3);
    let mut out = P3pSolutions::new();
    for k in 0..2000 {
        let (pose, y, mut x) = triplet(&mut rng);
        // Push the third point towards the line through the first two.
        let eps = 10f64.powi(-(k % 9));
        x[2] = x[0] + (x[1] - x[0]) * 0.37 + (x[2] - x[0]) * eps;
        let y = [y[0], y[1], pose.transform(&x[2]).normalize()];
        let y = if pose.transform(&x[2])[2] > 0.0 {
            y
        } else {
            continue;
        };
        lambda_twist(&y, &x, &mut out);
        for sol in &out {
            assert!(sol.is_valid(1e-6));
            for v in sol.translation.iter() {
                assert!(v.is_finite());
            }
        }
        if eps >= 1e-3 {
            assert!(
                out.iter().any(|s| rotation_error_deg(&pose, s) < 1e-2),
                "missed the true pose at eps={eps}"
            );
        }
    }
    // Exactly collinear and coincident points: no solution.
    let (_, y, x) = triplet(&mut rng);
    let collinear = [x[0], x[1], x[0] * 2.0 - x[1]];
    assert_eq!(lambda_twist(&y, &collinear, &mut out), 0);
    let coincident = [x[0], x[0], x[1]];
    assert_eq!(lambda_twist(&y, &coincident, &mut out), 0);
}
