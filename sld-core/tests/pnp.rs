//! Robust PnP on synthetic problems with exact ground truth.
//! (acos near 1 resolves angles only down to ~1e-6 degrees, hence 1e-5 bounds.)

mod common;

use common::*;
use sld_core::pnp::PointProblem;
use sld_core::pnp::{PnpError, PnpSolver, PointScratch, Sampling};
use sld_core::rng::SplitMix64;
use sld_core::{position_error_m, rotation_error_deg, solve_pnp, Camera, PnpOptions};

fn solve(p: &Problem, opts: &PnpOptions) -> Result<sld_core::PnpSolution, PnpError> {
    let mut scratch = vec![PointScratch::default(); p.p2d.len()];
    solve_pnp(&p.p2d, &p.p3d, Some(&p.conf), &p.camera, opts, &mut scratch, None)
}

#[test]
fn exact_data_gives_the_exact_pose() {
    let mut rng = SplitMix64::new(10);
    for _ in 0..200 {
        let p = problem(&mut rng, 20, 0.0, 0.0);
        let s = solve(&p, &PnpOptions::default()).unwrap();
        assert!(rotation_error_deg(&p.pose, &s.pose) < 1e-5);
        assert!(position_error_m(&p.pose, &s.pose) < 1e-6);
        assert_eq!(s.inliers, 20);
    }
}

#[test]
fn ransac_finds_the_pose_at_high_outlier_rates() {
    for (sampling, frac, n) in [
        (Sampling::Prosac, 0.85, 200),
        (Sampling::Uniform, 0.85, 200),
        (Sampling::Weighted, 0.85, 200),
        (Sampling::Prosac, 0.75, 60),
        (Sampling::Prosac, 0.25, 8),
    ] {
        let mut rng = SplitMix64::new(11);
        let mut ok = 0;
        let trials = 50;
        for _ in 0..trials {
            let p = problem(&mut rng, n, frac, 1.0);
            let opts = PnpOptions {
                sampling,
                ..PnpOptions::default()
            };
            if let Ok(s) = solve(&p, &opts) {
                if rotation_error_deg(&p.pose, &s.pose) < 2.0 && position_error_m(&p.pose, &s.pose) < 0.1 {
                    ok += 1;
                }
            }
        }
        assert!(
            ok >= trials * 9 / 10,
            "{sampling:?} {frac} {n}: {ok}/{trials} solved"
        );
    }
}

#[test]
fn inlier_mask_matches_the_true_inliers() {
    let mut rng = SplitMix64::new(12);
    let p = problem(&mut rng, 300, 0.5, 0.5);
    let mut scratch = vec![PointScratch::default(); 300];
    let mut mask = vec![false; 300];
    let s = solve_pnp(
        &p.p2d,
        &p.p3d,
        Some(&p.conf),
        &p.camera,
        &PnpOptions::default(),
        &mut scratch,
        Some(&mut mask),
    )
    .unwrap();
    assert_eq!(mask.iter().filter(|m| **m).count(), s.inliers);
    // Every true inlier is found; a random outlier may land within 8 px.
    let missed = p.is_inlier.iter().zip(&mask).filter(|(t, m)| **t && !**m).count();
    let extra = p.is_inlier.iter().zip(&mask).filter(|(t, m)| !**t && **m).count();
    assert_eq!(missed, 0);
    assert!(extra <= 10, "{extra} outliers marked as inliers");
}

#[test]
fn refinement_reduces_the_reprojection_error() {
    let mut rng = SplitMix64::new(13);
    for _ in 0..50 {
        let p = problem(&mut rng, 100, 0.3, 2.0);
        let mut no_refine = PnpOptions {
            refine_iterations: 0,
            lo_iterations: 0,
            ..PnpOptions::default()
        };
        let raw = solve(&p, &no_refine).unwrap();
        no_refine.refine_iterations = 50;
        let refined = solve(&p, &no_refine).unwrap();
        assert!(refined.refine.final_cost <= refined.refine.initial_cost);
        assert!(
            refined.rms_px <= raw.rms_px + 1e-9,
            "{} > {}",
            refined.rms_px,
            raw.rms_px
        );
    }
}

#[test]
fn same_seed_same_answer() {
    let mut rng = SplitMix64::new(14);
    let p = problem(&mut rng, 100, 0.6, 2.0);
    let a = solve(&p, &PnpOptions::default()).unwrap();
    let b = solve(&p, &PnpOptions::default()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn degenerate_inputs_are_errors() {
    let mut rng = SplitMix64::new(15);
    let p = problem(&mut rng, 10, 0.0, 0.0);
    let opts = PnpOptions::default();
    let mut scratch = vec![PointScratch::default(); 10];
    let run =
        |p2: &[[f64; 2]], p3: &[[f64; 3]], c: Option<&[f64]>, cam: &Camera, scratch: &mut [PointScratch]| {
            solve_pnp(p2, p3, c, cam, &opts, scratch, None)
        };
    // Fewer than 4 points.
    assert_eq!(
        run(&p.p2d[..3], &p.p3d[..3], None, &p.camera, &mut scratch),
        Err(PnpError::TooFewPoints { given: 3 })
    );
    // Length mismatch.
    assert_eq!(
        run(&p.p2d, &p.p3d[..9], None, &p.camera, &mut scratch),
        Err(PnpError::LengthMismatch)
    );
    assert_eq!(
        run(&p.p2d, &p.p3d, Some(&p.conf[..5]), &p.camera, &mut scratch),
        Err(PnpError::LengthMismatch)
    );
    // NaN / inf anywhere.
    let mut bad2 = p.p2d.clone();
    bad2[4][1] = f64::NAN;
    assert_eq!(
        run(&bad2, &p.p3d, None, &p.camera, &mut scratch),
        Err(PnpError::InvalidPoint {
            index: 4,
            why: PointProblem::NonFinite2d
        })
    );
    let mut bad3 = p.p3d.clone();
    bad3[7][0] = f64::INFINITY;
    assert_eq!(
        run(&p.p2d, &bad3, None, &p.camera, &mut scratch),
        Err(PnpError::InvalidPoint {
            index: 7,
            why: PointProblem::NonFinite3d
        })
    );
    let mut badc = p.conf.clone();
    badc[2] = -1.0;
    assert_eq!(
        run(&p.p2d, &p.p3d, Some(&badc), &p.camera, &mut scratch),
        Err(PnpError::InvalidPoint {
            index: 2,
            why: PointProblem::NegativeConfidence
        })
    );
    // Zero focal length.
    let mut cam = p.camera;
    cam.fx = 0.0;
    assert!(matches!(
        run(&p.p2d, &p.p3d, None, &cam, &mut scratch),
        Err(PnpError::InvalidCamera(_))
    ));
    // Coincident 3D points.
    let same = vec![p.p3d[0]; 10];
    assert_eq!(
        run(&p.p2d, &same, None, &p.camera, &mut scratch),
        Err(PnpError::DegeneratePoints)
    );
    // Collinear 3D points.
    let a = sld_core::nalgebra::Vector3::from(p.p3d[0]);
    let b = sld_core::nalgebra::Vector3::from(p.p3d[1]);
    let line: Vec<[f64; 3]> = (0..10).map(|k| (a + (b - a) * (k as f64 * 0.3)).into()).collect();
    assert_eq!(
        run(&p.p2d, &line, None, &p.camera, &mut scratch),
        Err(PnpError::DegeneratePoints)
    );
    // Scratch too small.
    assert_eq!(
        run(&p.p2d, &p.p3d, None, &p.camera, &mut scratch[..5]),
        Err(PnpError::ScratchTooSmall { needed: 10 })
    );
    // Pure noise: no consensus rather than a made-up pose.
    let noise: Vec<[f64; 2]> = (0..10)
        .map(|_| [uniform(&mut rng, 0.0, 640.0), uniform(&mut rng, 0.0, 480.0)])
        .collect();
    let r = run(&noise, &p.p3d, None, &p.camera, &mut scratch);
    assert!(
        matches!(r, Err(PnpError::NoConsensus { .. })) || r.as_ref().is_ok_and(|s| s.inliers >= 4),
        "{r:?}"
    );
}

#[test]
fn distortion_is_removed_before_solving() {
    let mut rng = SplitMix64::new(16);
    let cam = Camera::new(640, 480, 520.0, 530.0, 320.0, 240.0, -0.08).unwrap();
    let pose = random_pose(&mut rng);
    let mut p2 = Vec::new();
    let mut p3 = Vec::new();
    for _ in 0..40 {
        let (_, pw) = visible_point(&mut rng, &pose, &vga(), 1.0, 6.0);
        let pc = pose.transform(&pw.into());
        if let Ok(px) = cam.project([pc[0], pc[1], pc[2]]) {
            p2.push(px);
            p3.push(pw);
        }
    }
    let mut solver = PnpSolver::with_capacity(PnpOptions::default(), 64);
    let s = solver.solve(&p2, &p3, None, &cam, None).unwrap();
    assert!(rotation_error_deg(&pose, &s.pose) < 1e-5);
    assert!(position_error_m(&pose, &s.pose) < 1e-6);
}

#[test]
fn weighted_sampling_with_too_few_positive_confidences_falls_back_to_uniform() {
    let mut rng = SplitMix64::new(17);
    let mut p = problem(&mut rng, 30, 0.2, 0.5);
    for (i, c) in p.conf.iter_mut().enumerate() {
        *c = if i < 2 { 1.0 } else { 0.0 };
    }
    let opts = PnpOptions {
        sampling: Sampling::Weighted,
        ..PnpOptions::default()
    };
    let s = solve(&p, &opts).unwrap();
    assert!(rotation_error_deg(&p.pose, &s.pose) < 1.0);
    assert!(position_error_m(&p.pose, &s.pose) < 0.05);
}

#[test]
fn small_problems_enumerate_every_triplet() {
    let mut rng = SplitMix64::new(18);
    let p = problem(&mut rng, 8, 0.25, 0.0);
    let s = solve(&p, &PnpOptions::default()).unwrap();
    // C(8, 3) = 56 triplets, each tried once.
    assert_eq!(s.iterations, 56);
    assert!(rotation_error_deg(&p.pose, &s.pose) < 1e-5);
}

/// Degeneracy belongs to a sample, not to the whole set: one point 1e8 m
/// away among 40 exact ones (which made the set look collinear next to it)
/// is an outlier, and the others give the exact pose.
#[test]
fn one_far_point_is_an_outlier_not_a_degenerate_set() {
    let mut rng = SplitMix64::new(16);
    for far in [1e8, -1e8, 1e12] {
        let mut p = problem(&mut rng, 40, 0.0, 0.0);
        p.p3d[17] = [far, 0.5 * far, 3.0];
        let mut mask = vec![false; 40];
        let mut scratch = vec![PointScratch::default(); 40];
        let s = solve_pnp(
            &p.p2d,
            &p.p3d,
            Some(&p.conf),
            &p.camera,
            &PnpOptions::default(),
            &mut scratch,
            Some(&mut mask),
        )
        .unwrap();
        assert_eq!(s.inliers, 39, "far = {far}");
        assert!(!mask[17]);
        assert!(rotation_error_deg(&p.pose, &s.pose) < 1e-5);
        assert!(position_error_m(&p.pose, &s.pose) < 1e-6);
    }
}
