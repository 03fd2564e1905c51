//! What pose accuracy the geometry alone allows on a scene: every landmark
//! that is visible (depth-verified) in an image is "detected" at its true
//! projection on the network input plus Gaussian pixel noise, then sld-core's
//! robust PnP runs on the network-input camera, as the `Localizer` does.
//! Separates detector error from landmark layout and PnP conditioning.
//!
//! ```text
//! cargo run --release -p sld-train --example oracle_pnp -- SCENE LANDMARKS.txt WIDTH HEIGHT NOISE_PX [SPLIT]
//! ```
use anyhow::{Context, Result};
use sld_core::nalgebra::Vector3;
use sld_core::pnp::{PnpOptions, PnpSolver};
use sld_core::rng::SplitMix64;
use sld_core::{position_error_m, rotation_error_deg};
use sld_train::data::{indoor6::read_landmarks, scene::SceneDir};
use sld_train::landmarks::visibility::{visibility, Visible};

fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() >= 6,
        "usage: oracle_pnp SCENE LANDMARKS W H NOISE_PX [SPLIT]"
    );
    let scene = SceneDir::open(a[1].as_ref())?;
    let lms = read_landmarks(a[2].as_ref())?;
    let (w, h): (u32, u32) = (a[3].parse()?, a[4].parse()?);
    let noise: f64 = a[5].parse()?;
    let split = a.get(6).map(String::as_str).unwrap_or("train");
    let mut rng = SplitMix64::new(7);
    let mut pnp = PnpSolver::with_capacity(PnpOptions::default(), lms.len());
    let (mut pos, mut rot) = (Vec::new(), Vec::new());
    for i in scene.part(split)? {
        let im = &scene.images[i];
        let cam = im.network_camera(w, h)?;
        let depth = scene.depth(i)?;
        let (mut p2, mut p3) = (Vec::new(), Vec::new());
        for x in &lms {
            let (v, _) = visibility(*x, &im.pose, &im.camera, depth.as_ref(), 0.1, 0.1);
            if v != Visible::Yes {
                continue;
            }
            let pc = im.pose.transform(&Vector3::from(*x));
            let p = cam.project([pc[0], pc[1], pc[2]]).context("projection")?;
            p2.push([p[0] + noise * gauss(&mut rng), p[1] + noise * gauss(&mut rng)]);
            p3.push(*x);
        }
        match pnp.solve(&p2, &p3, None, &cam, None) {
            Ok(s) => {
                pos.push(position_error_m(&im.pose, &s.pose));
                rot.push(rotation_error_deg(&im.pose, &s.pose));
            }
            Err(_) => {
                pos.push(f64::INFINITY);
                rot.push(180.0);
            }
        }
    }
    let n = pos.len();
    let hit = |dm: f64, dd: f64| {
        pos.iter().zip(&rot).filter(|(p, r)| **p < dm && **r < dd).count() as f64 / n as f64
    };
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{n} images, noise {noise} px at {w}x{h}: 5cm/5deg {:.1} %, 10cm/10deg {:.1} %, median {:.1} cm {:.2} deg",
        100.0 * hit(0.05, 5.0),
        100.0 * hit(0.10, 10.0),
        100.0 * med(&mut pos),
        med(&mut rot)
    );
    Ok(())
}

/// Standard normal sample (Box–Muller).
fn gauss(rng: &mut SplitMix64) -> f64 {
    let u = rng.unit_f64().max(1e-300);
    let v = rng.unit_f64();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}
