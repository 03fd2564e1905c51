//! COLMAP import against ground truth: `tests/fixtures/colmap-room5` is a
//! real COLMAP 3.8 reconstruction (SIFT on CPU, exhaustive matching,
//! mapper; `bench/make_colmap_fixture.sh`) of the scene `sld synth --seed 5
//! --images 36 --sessions 1` renders. The test renders that scene again
//! (deterministic), imports the model and checks every registered pose
//! against the renderer's after a similarity alignment.

use std::path::{Path, PathBuf};

use sld_core::nalgebra::{Matrix3, Vector3};
use sld_core::rotation_error_deg;
use sld_train::align::umeyama;
use sld_train::data::colmap::{import, SparseModel};
use sld_train::data::scene::SceneDir;
use sld_train::synth::{synthesize, SynthOptions};

fn fixture(format: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/colmap-room5")
        .join(format)
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sld-colmap-test-{name}-{}", std::process::id()))
}

fn check_against_truth(format: &str) {
    let truth = tmp(&format!("truth-{format}"));
    let _ = std::fs::remove_dir_all(&truth);
    synthesize(
        &truth,
        &SynthOptions {
            seed: 5,
            images: 36,
            sessions: 1,
            progress: false,
            ..SynthOptions::default()
        },
    )
    .unwrap();
    let out = tmp(&format!("import-{format}"));
    let _ = std::fs::remove_dir_all(&out);
    let s = import(&fixture(format), &truth.join("images"), &out, 0, false).unwrap();
    assert!(s.images >= 20, "only {} images registered", s.images);
    assert_eq!(s.resampled, 0, "SIMPLE_RADIAL needs no resampling");
    let imported = SceneDir::open(&out).unwrap();
    let gt = SceneDir::open(&truth).unwrap();
    // No resampling: the JPEG bytes are copied, not re-encoded.
    let first = &imported.images[0];
    let intr0 = sld_train::data::indoor6::read_intrinsics(
        &out.join("images").join(format!("{}.intrinsics.txt", first.name)),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&first.color).unwrap(),
        std::fs::read(truth.join("images").join(&intr0.original_name)).unwrap()
    );
    // Match by original name (the COLMAP image name).
    let mut pairs = Vec::new();
    for im in &imported.images {
        let intr = sld_train::data::indoor6::read_intrinsics(
            &out.join("images").join(format!("{}.intrinsics.txt", im.name)),
        )
        .unwrap();
        let stem = intr.original_name.trim_end_matches(".color.jpg");
        let g = gt.images.iter().find(|g| g.name == stem).unwrap();
        // Intrinsics: COLMAP refined f and κ from its 1.2·max(W, H) guess; the
        // principal point moved by −0.5 px into our convention.
        assert!(
            (im.camera.fx / g.camera.fx - 1.0).abs() < 0.02,
            "f {} vs {}",
            im.camera.fx,
            g.camera.fx
        );
        assert!(
            (im.camera.cx - g.camera.cx).abs() < 1e-9,
            "cx {} vs {}",
            im.camera.cx,
            g.camera.cx
        );
        pairs.push((im.pose, g.pose));
    }
    let src: Vec<Vector3<f64>> = pairs.iter().map(|(a, _)| a.centre()).collect();
    let dst: Vec<Vector3<f64>> = pairs.iter().map(|(_, b)| b.centre()).collect();
    let sim = umeyama(&src, &dst).unwrap();
    let ra: Matrix3<f64> = sim.rotation;
    for (a, g) in &pairs {
        // Camera rotation in the ground-truth frame: R_imp · R_alignᵀ.
        let aligned = sld_core::Pose::from_centre(a.rotation * ra.transpose(), sim.apply(&a.centre()));
        let rot = rotation_error_deg(g, &aligned);
        let pos = (aligned.centre() - g.centre()).norm();
        assert!(rot < 1.0, "rotation error {rot}°");
        assert!(pos < 0.05, "position error {pos} m in a room of 6–9 m");
    }
    // Points: after alignment they lie on the rendered surfaces, i.e. at
    // the depth the ground-truth depth maps record where they project.
    let pts = imported.points().unwrap();
    assert!(pts.len() > 500, "{}", pts.len());
    let mut close = 0;
    let mut checked = 0;
    for p in pts.iter().filter(|p| p.images.len() >= 3).take(300) {
        let x = sim.apply(&Vector3::from(p.xyz));
        let j = p.images[0];
        let intr = sld_train::data::indoor6::read_intrinsics(
            &out.join("images")
                .join(format!("{}.intrinsics.txt", imported.images[j].name)),
        )
        .unwrap();
        let stem = intr.original_name.trim_end_matches(".color.jpg");
        let gi = gt.images.iter().position(|g| g.name == stem).unwrap();
        let g = &gt.images[gi];
        let pc = g.pose.transform(&x);
        let Ok(px) = g.camera.project([pc[0], pc[1], pc[2]]) else {
            continue;
        };
        let Some(d) = gt.depth(gi).unwrap().unwrap().at(px[0], px[1]) else {
            continue;
        };
        checked += 1;
        if (d - pc[2]).abs() < 0.05 {
            close += 1;
        }
    }
    assert!(
        checked > 100 && close * 10 >= checked * 9,
        "{close} of {checked} points on the surfaces"
    );
    for d in [truth, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn binary_model_matches_the_renderer() {
    check_against_truth("bin");
}

#[test]
fn text_model_reads_like_the_binary_one() {
    let b = SparseModel::read(&fixture("bin")).unwrap();
    let t = SparseModel::read(&fixture("txt")).unwrap();
    assert_eq!(b.cameras.len(), t.cameras.len());
    assert_eq!(b.images.len(), t.images.len());
    assert_eq!(b.points.len(), t.points.len());
    for (id, im) in &b.images {
        let ti = &t.images[id];
        assert_eq!(im.name, ti.name);
        assert!((im.pose.rotation - ti.pose.rotation).norm() < 1e-6);
        assert!((im.pose.translation - ti.pose.translation).norm() < 1e-6);
    }
    let (mut bp, mut tp) = (b.points.clone(), t.points.clone());
    bp.sort_by_key(|p| p.id);
    tp.sort_by_key(|p| p.id);
    for (p, q) in bp.iter().zip(&tp) {
        assert_eq!(p.id, q.id);
        assert!((Vector3::from(p.xyz) - Vector3::from(q.xyz)).norm() < 1e-5);
        assert_eq!(p.images, q.images);
    }
}

#[test]
fn broken_models_name_the_file_and_record() {
    let dir = tmp("broken");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["cameras.bin", "images.bin", "points3D.bin"] {
        std::fs::copy(fixture("bin").join(f), dir.join(f)).unwrap();
    }
    // Truncated images.bin.
    let full = std::fs::read(fixture("bin").join("images.bin")).unwrap();
    std::fs::write(dir.join("images.bin"), &full[..full.len() / 2]).unwrap();
    let e = format!("{:#}", SparseModel::read(&dir).unwrap_err());
    assert!(e.contains("images.bin") && e.contains("truncated"), "{e}");
    let e2 = format!("{:#}", SparseModel::read(&dir).unwrap_err());
    assert_eq!(e, e2);
    // A count that cannot fit (would allocate terabytes).
    let mut huge = full.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(dir.join("images.bin"), &huge).unwrap();
    let e = format!("{:#}", SparseModel::read(&dir).unwrap_err());
    assert!(e.contains("cannot fit"), "{e}");
    std::fs::write(dir.join("images.bin"), &full).unwrap();
    // A camera id the images refer to is missing (empty cameras.bin).
    std::fs::write(dir.join("cameras.bin"), 0u64.to_le_bytes()).unwrap();
    let e = format!("{:#}", SparseModel::read(&dir).unwrap_err());
    assert!(e.contains("cameras.bin lacks"), "{e}");
    // Text: a wrong column count names file and line.
    let tdir = tmp("broken-txt");
    let _ = std::fs::remove_dir_all(&tdir);
    std::fs::create_dir_all(&tdir).unwrap();
    std::fs::write(tdir.join("cameras.txt"), "# c\n1 SIMPLE_RADIAL 640 352 500 320\n").unwrap();
    std::fs::write(tdir.join("images.txt"), "").unwrap();
    std::fs::write(tdir.join("points3D.txt"), "").unwrap();
    let e = format!("{:#}", SparseModel::read(&tdir).unwrap_err());
    assert!(e.contains("cameras.txt:2") && e.contains("4 parameters"), "{e}");
    // Unsupported models say what to do.
    std::fs::write(tdir.join("cameras.txt"), "1 FOV 640 352 500 500 320 176 0.1\n").unwrap();
    let e = format!("{:#}", SparseModel::read(&tdir).unwrap_err());
    assert!(
        e.contains("not supported") && e.contains("image_undistorter"),
        "{e}"
    );
    // Not a model at all.
    let e = format!("{:#}", SparseModel::read(&tmp("nothing")).unwrap_err());
    assert!(e.contains("not a COLMAP sparse model"), "{e}");
    for d in [dir, tdir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn undistortion_resamples_radial_cameras_onto_the_pinhole() {
    use sld_train::data::colmap::{indoor6_camera, undistort, CameraModel, ColmapCamera};
    // An OPENCV camera: a pixel of the pinhole image must come from where
    // the distortion model puts that ray in the source image.
    let c = ColmapCamera {
        width: 64,
        height: 48,
        model: CameraModel::OpenCv([50.0, 52.0, 32.0, 24.0, -0.1, 0.02, 0.001, -0.002]),
    };
    let (pin, resample) = indoor6_camera(&c).unwrap();
    assert!(resample && pin.fx == 51.0 && pin.cx == 31.5 && pin.kappa == 0.0);
    // Source image: intensity = 4 × (COLMAP x coordinate), clamped.
    let src = image::RgbImage::from_fn(64, 48, |x, _| image::Rgb([((x as f64 + 0.5) * 3.0) as u8, 0, 0]));
    let out = undistort(&src, &c, &pin);
    let (u, v) = (40u32, 30u32);
    let (x, y) = ((u as f64 - pin.cx) / pin.fx, (v as f64 - pin.cy) / pin.fy);
    let r2 = x * x + y * y;
    let s = 1.0 - 0.1 * r2 + 0.02 * r2 * r2;
    let xd = x * s + 2.0 * 0.001 * x * y + -0.002 * (r2 + 2.0 * x * x);
    let su = 50.0 * xd + 32.0; // COLMAP convention
    let expect = su * 3.0;
    let got = out.get_pixel(u, v)[0] as f64;
    assert!((got - expect).abs() <= 2.0, "{got} vs {expect}");
}

/// A tiny text model over two 32×24 JPEGs, in `dir/{sparse,images}`.
fn tiny_model(dir: &Path, focal: &str) {
    let sparse = dir.join("sparse");
    let images = dir.join("images");
    std::fs::create_dir_all(&sparse).unwrap();
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(
        sparse.join("cameras.txt"),
        format!("# cameras\n1 SIMPLE_PINHOLE 32 24 {focal} 16 12\n"),
    )
    .unwrap();
    std::fs::write(
        sparse.join("images.txt"),
        "1 1 0 0 0 0 0 0 1 a.jpg\n\n2 1 0 0 0 0.1 0 0 1 b.jpg\n\n",
    )
    .unwrap();
    std::fs::write(sparse.join("points3D.txt"), "").unwrap();
    for n in ["a.jpg", "b.jpg"] {
        let img = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([(x * 8) as u8, (y * 10) as u8, 90]));
        img.save(images.join(n)).unwrap();
    }
}

/// Nothing half-written (issue 19, items 2 and 9): a failed import leaves no
/// folder; a damaged image stops it; a non-empty output is refused unless
/// `--force`, which replaces it whole; a zero focal length names
/// `cameras.txt:LINE` and the camera.
#[test]
fn an_import_is_all_or_nothing() {
    let dir = tmp("atomic");
    let _ = std::fs::remove_dir_all(&dir);
    tiny_model(&dir, "30");
    let (sparse, images, out) = (dir.join("sparse"), dir.join("images"), dir.join("scene"));
    let leftovers = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "sparse" && n != "images")
            .collect::<Vec<_>>()
    };
    let b = std::fs::read(images.join("b.jpg")).unwrap();

    // A missing image: an error naming it, and nothing written.
    std::fs::remove_file(images.join("b.jpg")).unwrap();
    let e = format!("{:#}", import(&sparse, &images, &out, 0, false).unwrap_err());
    assert!(e.contains("b.jpg"), "{e}");
    assert_eq!(leftovers(), Vec::<String>::new());

    // A truncated JPEG: refused by the strict decoder, nothing written.
    std::fs::write(images.join("b.jpg"), &b[..b.len() / 2]).unwrap();
    let e = format!("{:#}", import(&sparse, &images, &out, 0, false).unwrap_err());
    assert!(e.contains("b.jpg") && e.contains("damaged"), "{e}");
    assert_eq!(leftovers(), Vec::<String>::new());

    // Intact: the scene appears whole, the bytes copied.
    std::fs::write(images.join("b.jpg"), &b).unwrap();
    let s = import(&sparse, &images, &out, 0, false).unwrap();
    assert_eq!(s.images, 2);
    assert_eq!(
        std::fs::read(out.join("images/image-00001.color.jpg")).unwrap(),
        b
    );
    assert_eq!(leftovers(), vec!["scene".to_string()]);

    // A second import into the same folder: refused; with force, replaced
    // whole (no stale file survives).
    std::fs::write(out.join("stale.txt"), "old").unwrap();
    let e = format!("{:#}", import(&sparse, &images, &out, 0, false).unwrap_err());
    assert!(e.contains("not empty") && e.contains("--force"), "{e}");
    import(&sparse, &images, &out, 0, true).unwrap();
    assert!(!out.join("stale.txt").exists());
    assert!(out.join("points3d.txt").exists() && out.join("train_test_val.pkl").exists());

    // A zero focal length names the file, line and camera.
    tiny_model(&dir, "0");
    let e = format!(
        "{:#}",
        import(&sparse, &images, &dir.join("other"), 0, false).unwrap_err()
    );
    assert!(
        e.contains("cameras.txt:2: camera 1") && e.contains("focal length 0"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
