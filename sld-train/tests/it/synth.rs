//! The renderer against its own ground truth: files written by `sld synth`
//! are mutually consistent (pose, intrinsics, depth, point tracks), a box
//! corner projects onto the pixel whose ray hits that corner, output is
//! deterministic, and landmark selection + visibility work on the result.

use std::path::PathBuf;

use sld_core::nalgebra::Vector3;
use sld_train::data::scene::SceneDir;
use sld_train::synth::{scene::Scene, synthesize, SynthOptions};

fn tiny(dir: &std::path::Path, seed: u64) -> SynthOptions {
    let _ = std::fs::remove_dir_all(dir);
    SynthOptions {
        seed,
        images: 24,
        sessions: 2,
        width: 128,
        height: 72,
        point_density: 40.0,
        progress: false,
        ..SynthOptions::default()
    }
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sld-synth-test-{name}-{}", std::process::id()))
}

#[test]
fn files_agree_with_each_other_and_with_the_geometry() {
    let dir = tmp("consistency");
    let o = tiny(&dir, 7);
    let summary = synthesize(&dir, &o).unwrap();
    assert_eq!(summary.images, 24);
    let scene = SceneDir::open(&dir).unwrap();
    assert_eq!(scene.images.len(), 24);
    assert_eq!(scene.sessions(), 2);
    // The last session is the test split.
    let test = scene.part("test").unwrap();
    assert_eq!(test.len(), 12);
    assert!(test.iter().all(|&i| scene.images[i].session == 1));

    // Every observation of every point: the point projects where the
    // image's depth map (read back from the 16-bit PNG) has its depth.
    let points = scene.points().unwrap();
    assert!(points.len() > 100, "{}", points.len());
    let mut checked = 0;
    let depths: Vec<_> = (0..24).map(|i| scene.depth(i).unwrap().unwrap()).collect();
    for p in &points {
        assert!(p.images.len() >= 2);
        for &j in &p.images {
            let im = &scene.images[j];
            let pc = im.pose.transform(&Vector3::from(p.xyz));
            let px = im.camera.project([pc[0], pc[1], pc[2]]).unwrap();
            let d = depths[j].at(px[0], px[1]).unwrap();
            // 1 cm + 1 % tolerance of the tracker, plus 1 mm quantisation.
            assert!(
                (d - pc[2]).abs() < 0.012 + 0.01 * pc[2],
                "depth {d} vs z {}",
                pc[2]
            );
            checked += 1;
        }
    }
    assert!(checked > 1000);

    // A furniture corner seen in an image lands on the pixel whose
    // camera ray (the renderer's own ray construction) hits the corner.
    let world = Scene::random(7);
    let mut corners_seen = 0;
    for im in &scene.images {
        for &b in &world.furniture {
            let bx = &world.boxes[b];
            // Near the top corners (2 cm inside the top face, so the ray
            // cannot graze past the silhouette edge).
            let (x0, x1, y0, y1) = (
                bx.min[0] + 0.02,
                bx.max[0] - 0.02,
                bx.min[1] + 0.02,
                bx.max[1] - 0.02,
            );
            for (x, y) in [(x0, y0), (x1, y1), (x0, y1), (x1, y0)] {
                let corner = Vector3::new(x, y, bx.max[2]);
                let pc = im.pose.transform(&corner);
                if pc[2] < 0.5 {
                    continue;
                }
                let px = im.camera.project([pc[0], pc[1], pc[2]]).unwrap();
                if px[0] < 2.0 || px[1] < 2.0 || px[0] > 125.0 || px[1] > 69.0 {
                    continue;
                }
                // The ray through that (sub-pixel) position.
                let dc = Vector3::new(
                    (px[0] - im.camera.cx) / im.camera.fx,
                    (px[1] - im.camera.cy) / im.camera.fy,
                    1.0,
                );
                let dw = im.pose.rotation.transpose() * dc;
                let c = im.pose.centre();
                let hit = world
                    .intersect([c[0], c[1], c[2]], [dw[0], dw[1], dw[2]], 1e-6)
                    .unwrap();
                if hit.normal != [0.0, 0.0, 1.0] || hit.material != world.face_material[6 + b] {
                    continue; // occluded: the ray's first hit is another surface
                }
                let p = c + dw * hit.t;
                assert!((p - corner).norm() < 1e-6, "corner {corner:?} hit at {p:?}");
                corners_seen += 1;
            }
        }
    }
    assert!(corners_seen > 5, "{corners_seen}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_seed_same_files_other_seed_other_scene() {
    let (a, b, c) = (tmp("det-a"), tmp("det-b"), tmp("det-c"));
    let mut o = tiny(&a, 3);
    o.images = 4;
    synthesize(&a, &o).unwrap();
    let _ = std::fs::remove_dir_all(&b);
    synthesize(&b, &o).unwrap();
    o.seed = 4;
    let _ = std::fs::remove_dir_all(&c);
    synthesize(&c, &o).unwrap();
    for f in [
        "images/image-00002.color.jpg",
        "images/image-00002.depth.png",
        "images/image-00002.pose.txt",
        "points3d.txt",
    ] {
        let (x, y, z) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            std::fs::read(c.join(f)).unwrap(),
        );
        assert_eq!(x, y, "{f} differs between runs");
        assert_ne!(x, z, "{f} equal across seeds");
    }
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn sessions_differ_in_lighting() {
    let s = Scene::random(11);
    let l0 = s.lighting(11, 0);
    let l1 = s.lighting(11, 1);
    assert_ne!(l0, l1);
}

#[test]
fn landmarks_are_selected_and_visibility_matches_depth() {
    let dir = tmp("landmarks");
    let mut o = tiny(&dir, 5);
    o.images = 40;
    synthesize(&dir, &o).unwrap();
    let lo = sld_train::landmarks::pipeline::LandmarkOptions {
        count: 20,
        select: sld_train::landmarks::select::SelectOptions {
            min_track: 5,
            radius: 1.0,
            ..Default::default()
        },
        depth_tolerance: 0.1,
        depth_variant: None,
    };
    let s = sld_train::landmarks::pipeline::run(&dir, &lo).unwrap();
    assert_eq!(s.chosen, 20);
    let lm = sld_train::data::indoor6::read_landmarks(&dir.join("landmarks/landmarks-20.txt")).unwrap();
    let vis = sld_train::data::indoor6::read_visibility(&dir.join("landmarks/visibility-20.txt")).unwrap();
    assert_eq!((lm.len(), vis.rows.len(), vis.images), (20, 20, 40));
    let scene = SceneDir::open(&dir).unwrap();
    // Visible ⇔ projected inside and within 10 % of the rendered depth.
    for (l, row) in vis.rows.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let im = &scene.images[j];
            let pc = im.pose.transform(&Vector3::from(lm[l]));
            let expect = pc[2] > 0.1
                && im.camera.project([pc[0], pc[1], pc[2]]).ok().is_some_and(|px| {
                    let d = scene.depth(j).unwrap().unwrap();
                    d.at(px[0], px[1])
                        .is_some_and(|d| (d - pc[2]).abs() / pc[2] < 0.1)
                });
            assert_eq!(v, expect, "landmark {l} image {j}");
        }
    }
    // Asking for more landmarks than pass the filters is a clear error.
    let mut too_many = lo.clone();
    too_many.count = 100_000;
    let e = sld_train::landmarks::pipeline::run(&dir, &too_many).unwrap_err();
    assert!(format!("{e:#}").contains("pass the filters"), "{e:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
