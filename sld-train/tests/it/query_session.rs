//! The product's job, end to end: map a rendered room in two sessions,
//! train the recommended recipe (`sld train` without a mode: a scene head
//! on XFeat's frozen trunk), and relocalise a third session under another
//! lighting, on another camera path, through sld-core's `Localizer`.
//!
//! Issue 15's goal (most query images within 5 cm / 5°) is not reached
//! yet (EXPERIMENTS.md, "The query session: routes"): this test guards
//! what the recipe does reach, with a margin, so that a change that loses
//! it fails here.

use sld_train::data::scene::SceneDir;
use sld_train::train::{recipe, train_full};

#[test]
fn the_recipe_relocalises_part_of_a_query_session_under_other_light() {
    let dir = std::env::temp_dir().join(format!("sld-query-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scene = dir.join("scene");
    let landmarks = crate::localizes::rendered_room(&scene, SEED, 240, 3, 300);
    let run = dir.join("run");
    let trunk = recipe::write_trunk(&run).unwrap();
    // The recipe at 320×176 and fewer epochs, to fit the CI budget.
    let mut o = recipe::options(landmarks, trunk, EPOCHS, 1);
    (o.input_width, o.input_height) = (320, 176);
    let t = std::time::Instant::now();
    let r = train_full(&scene, &run, &o, false, false, &Default::default()).unwrap();
    let train_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::read(&r.model).unwrap();
    let sd = SceneDir::open(&scene).unwrap();
    let query = sd.part("test").unwrap();
    assert_eq!(query.len(), 80, "the third session is the query split");
    let e = sld_train::eval::evaluate(&bytes, &sd, &query, &Default::default()).unwrap();
    eprintln!(
        "recipe, {EPOCHS} epochs in {train_s:.0} s; query session: 5cm/5° {:.1} %, 10cm/10° {:.1} %, median {:.1} cm {:.2}°, {} correct of {} detections, {:.2} px",
        100.0 * e.recall_5cm_5deg,
        100.0 * e.recall_10cm_10deg,
        100.0 * e.median_position_m.unwrap_or(f64::INFINITY),
        e.median_rotation_deg,
        e.median_correct,
        e.median_detections,
        e.median_pixel_error.unwrap_or(f64::NAN),
    );
    assert!(
        e.recall_10cm_10deg >= MIN_RECALL_10CM,
        "only {:.1} % of the query images within 10 cm / 10° (guard: {:.1} %)",
        100.0 * e.recall_10cm_10deg,
        100.0 * MIN_RECALL_10CM
    );

    // The reliability gate (issue 19, item 1), default on: the same query
    // images without it give more wrong poses, and noise gives no pose.
    let off = sld_train::eval::EvalOptions {
        gate: Some(sld_core::Gate::OFF),
        ..Default::default()
    };
    let u = sld_train::eval::evaluate(&bytes, &sd, &query, &off).unwrap();
    eprintln!(
        "gate on: wrong {:.1} %, 10cm {:.1} %; off: wrong {:.1} %, 10cm {:.1} %",
        100.0 * e.wrong_rate,
        100.0 * e.recall_10cm_10deg,
        100.0 * u.wrong_rate,
        100.0 * u.recall_10cm_10deg
    );
    assert!(e.wrong_rate < u.wrong_rate, "the gate avoided no wrong pose");
    assert!(
        e.recall_10cm_10deg >= 0.75 * u.recall_10cm_10deg,
        "the gate lost too many good poses"
    );
    let mut loc = sld_core::Localizer::new(&bytes[..]).unwrap();
    let cam = sd.images[query[0]].camera;
    let (w, h) = (cam.width as usize, cam.height as usize);
    let images = sld_train::synth::noise::noise_images(200, w, h, 3);
    let posed = images
        .iter()
        .filter(|rgb| {
            let img =
                sld_core::Image::new(cam.width, cam.height, 3 * w, sld_core::PixelFormat::Rgb8, rgb).unwrap();
            loc.localize(&img, &cam).is_ok()
        })
        .count();
    assert!(posed <= 2, "{posed} of 200 noise images were given a pose");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Room of the test.
const SEED: u64 = 7;
/// Epochs of the test.
const EPOCHS: usize = 20;
/// The guard: measured 11.2 % (9 of 80 query images; median 42.7 cm,
/// 18 of 32 detections correct) on 2026-12-03; the margin is 5 images.
/// A pipeline that does not carry over to the query session (wrong labels,
/// no lighting robustness, a broken export) gets 0–1 image.
const MIN_RECALL_10CM: f64 = 0.05;
