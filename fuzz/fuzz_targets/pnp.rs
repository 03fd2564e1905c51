#![allow(clippy::field_reassign_with_default)]
//! PnP on arbitrary correspondences, confidences, cameras and options.
//! Points come either raw (any bit pattern) or as small perturbations of
//! an exact synthetic problem, so that both rejection and the full RANSAC
//! + refinement path are exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_core::pnp::{PnpOptions, PnpSolver, Sampling};
use sld_core::Camera;
use sld_fuzz::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let n = (c.u8() % 128) as usize;
    let mode = c.u8();
    let camera = Camera {
        width: c.u16() as u32,
        height: c.u16() as u32,
        fx: c.f64(),
        fy: c.f64(),
        cx: c.f64(),
        cy: c.f64(),
        kappa: c.f64(),
    };
    let mut o = PnpOptions::default();
    o.max_reproj_px = c.f64();
    o.sampling = match c.u8() % 3 {
        0 => Sampling::Uniform,
        1 => Sampling::Prosac,
        _ => Sampling::Weighted,
    };
    // Iteration limits are fuzzed below the fuzzer's time limit; the upper
    // bounds are unit-tested (`PnpOptions::validate`).
    o.ransac.max_iterations = c.u16() as u32 % 5000;
    o.ransac.min_iterations = c.u16() as u32;
    o.ransac.success_prob = c.f64();
    o.ransac.trials_mult = c.f64();
    o.ransac.early_exit = c.u8() & 1 == 1;
    o.ransac.progressive_stop = c.u8() & 1 == 1;
    o.lo_iterations = c.u8() as u32;
    o.lo_wide_factor = c.f64();
    o.refine_iterations = c.u8() as u32;
    o.refine_rounds = c.u8() as u32 % 16;
    o.exhaustive_max_subsets = c.u16() as u32;
    o.min_inliers = c.u8() as usize;
    o.seed = c.u64();
    let with_conf = mode & 1 == 1;
    let mut p2 = Vec::with_capacity(n);
    let mut p3 = Vec::with_capacity(n);
    let mut conf = Vec::with_capacity(n);
    for i in 0..n {
        if mode & 2 == 0 {
            p2.push([c.f64(), c.f64()]);
            p3.push([c.f64(), c.f64(), c.f64()]);
            conf.push(c.f64());
        } else {
            // A point on a 5×5×3 grid in front of the camera, seen by a
            // 100 px focal camera at the origin, perturbed by fuzz bytes.
            let (x, y, z) = (
                (i % 5) as f64 - 2.0,
                ((i / 5) % 5) as f64 - 2.0,
                4.0 + (i / 25) as f64,
            );
            let d = |b: u8| (b as i8) as f64 / 16.0;
            p3.push([x, y, z]);
            p2.push([
                100.0 * x / z + 320.0 + d(c.u8()),
                100.0 * y / z + 240.0 + d(c.u8()),
            ]);
            conf.push(c.u8() as f64 / 255.0);
        }
    }
    let mut mask = vec![false; n];
    let mut solver = PnpSolver::with_capacity(o, n);
    let conf = with_conf.then_some(conf.as_slice());
    if let Ok(s) = solver.solve(&p2, &p3, conf, &camera, Some(&mut mask)) {
        assert!(s.pose.is_valid(1e-6), "invalid pose {s:?}");
        assert!(s.inliers >= 4 && s.inliers <= n);
        assert_eq!(mask.iter().filter(|&&b| b).count(), s.inliers);
        assert!(s.rms_px.is_finite());
    }
});
