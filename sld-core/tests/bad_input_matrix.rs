//! The bad-input matrix of sld-core's run-time surfaces (RELIABILITY.md):
//! images, cameras, heatmap decoding, PnP and its options, and the
//! `Localizer`. Each row is a class of bad input and the exact typed error
//! it must produce. (Model files: `sld-train/tests/bad_input_matrix.rs`,
//! which can build them.)

use sld_core::heatmap::{decode, DecodeError, DecodeOptions, Detection, HeatmapShape, Refinement};
use sld_core::pnp::PointProblem;
use sld_core::pnp::{PnpError, PnpOptions, PnpSolver};
use sld_core::{Camera, CameraError, Image, ImageError, LocalizeError, Localizer, PixelFormat};

const MODEL: &[u8] = include_bytes!("../../tests/miri/fixtures/model.sld");

#[test]
fn images() {
    let buf = [0u8; 64];
    let rows: [(&str, u32, u32, usize, PixelFormat, usize, ImageError); 6] = [
        ("zero width", 0, 4, 12, PixelFormat::Rgb8, 64, ImageError::Empty),
        ("zero height", 4, 0, 12, PixelFormat::Rgb8, 64, ImageError::Empty),
        (
            "stride below width·channels",
            4,
            4,
            11,
            PixelFormat::Rgb8,
            64,
            ImageError::StrideTooSmall,
        ),
        (
            "buffer too small",
            4,
            4,
            16,
            PixelFormat::Rgb8,
            59,
            ImageError::BufferTooSmall,
        ),
        (
            "overflowing stride × height",
            4,
            u32::MAX,
            usize::MAX / 2,
            PixelFormat::Gray8,
            64,
            ImageError::BufferTooSmall,
        ),
        (
            "overflowing width × channels",
            u32::MAX,
            1,
            usize::MAX,
            PixelFormat::Rgb8,
            64,
            ImageError::BufferTooSmall,
        ),
    ];
    for (class, w, h, stride, fmt, len, want) in rows {
        assert_eq!(
            Image::new(w, h, stride, fmt, &buf[..len]).err(),
            Some(want),
            "image / {class}"
        );
    }
}

#[test]
fn cameras() {
    let rows: [(&str, u32, u32, [f64; 5], CameraError); 7] = [
        (
            "zero focal",
            640,
            480,
            [0.0, 500.0, 320.0, 240.0, 0.0],
            CameraError::InvalidFocal,
        ),
        (
            "negative focal",
            640,
            480,
            [500.0, -1.0, 320.0, 240.0, 0.0],
            CameraError::InvalidFocal,
        ),
        (
            "NaN focal",
            640,
            480,
            [f64::NAN, 500.0, 320.0, 240.0, 0.0],
            CameraError::InvalidFocal,
        ),
        (
            "inf principal point",
            640,
            480,
            [500.0, 500.0, f64::INFINITY, 240.0, 0.0],
            CameraError::NonFinite,
        ),
        (
            "NaN kappa",
            640,
            480,
            [500.0, 500.0, 320.0, 240.0, f64::NAN],
            CameraError::NonFinite,
        ),
        (
            "zero width",
            0,
            480,
            [500.0, 500.0, 320.0, 240.0, 0.0],
            CameraError::EmptyImage,
        ),
        (
            "zero height",
            640,
            0,
            [500.0, 500.0, 320.0, 240.0, 0.0],
            CameraError::EmptyImage,
        ),
    ];
    for (class, w, h, [fx, fy, cx, cy, k], want) in rows {
        assert_eq!(
            Camera::new(w, h, fx, fy, cx, cy, k).err(),
            Some(want),
            "camera / {class}"
        );
    }
}

#[test]
fn heatmap_decoding() {
    let shape = HeatmapShape {
        landmarks: 2,
        height: 3,
        width: 4,
    };
    let ok = vec![0.5f32; 24];
    let mut out = [Detection::default(); 2];
    let o = DecodeOptions::default();
    let with = |i: usize, v: f32| {
        let mut m = ok.clone();
        m[i] = v;
        m
    };
    let huge = HeatmapShape {
        landmarks: usize::MAX,
        height: 2,
        width: 2,
    };
    type Row<'a> = (&'a str, Vec<f32>, HeatmapShape, DecodeOptions, usize, DecodeError);
    let rows: Vec<Row> = vec![
        (
            "length mismatch",
            vec![0.5; 23],
            shape,
            o,
            2,
            DecodeError::ShapeMismatch {
                expected: 24,
                actual: 23,
            },
        ),
        (
            "overflowing shape",
            vec![0.5; 24],
            huge,
            o,
            2,
            DecodeError::ShapeMismatch {
                expected: usize::MAX,
                actual: 24,
            },
        ),
        (
            "output too small",
            ok.clone(),
            shape,
            o,
            1,
            DecodeError::OutputTooSmall {
                needed: 2,
                capacity: 1,
            },
        ),
        (
            "NaN off the peak",
            with(13, f32::NAN),
            shape,
            o,
            2,
            DecodeError::NonFinite { landmark: 1 },
        ),
        (
            "NaN in an all-zero map",
            with(3, f32::NAN)
                .iter()
                .map(|v| if v.is_nan() { *v } else { 0.0 })
                .collect(),
            shape,
            o,
            2,
            DecodeError::NonFinite { landmark: 0 },
        ),
        (
            "-inf",
            with(20, f32::NEG_INFINITY),
            shape,
            o,
            2,
            DecodeError::NonFinite { landmark: 1 },
        ),
        (
            "+inf peak",
            with(13, f32::INFINITY),
            shape,
            o,
            2,
            DecodeError::NonFinite { landmark: 1 },
        ),
        (
            "NaN threshold",
            ok.clone(),
            shape,
            DecodeOptions {
                threshold: f32::NAN,
                ..o
            },
            2,
            DecodeError::InvalidOptions("threshold must be finite"),
        ),
        (
            "zero stride",
            ok.clone(),
            shape,
            DecodeOptions { stride: 0.0, ..o },
            2,
            DecodeError::InvalidOptions("stride must lie in (0, 65536] input pixels per cell"),
        ),
        (
            "negative stride",
            ok.clone(),
            shape,
            DecodeOptions { stride: -8.0, ..o },
            2,
            DecodeError::InvalidOptions("stride must lie in (0, 65536] input pixels per cell"),
        ),
        (
            "inf offset",
            ok.clone(),
            shape,
            DecodeOptions {
                offset: f32::INFINITY,
                ..o
            },
            2,
            DecodeError::InvalidOptions("offset must lie in [-65536, 65536] input pixels"),
        ),
        (
            "window radius over 127",
            ok.clone(),
            shape,
            DecodeOptions {
                refinement: Refinement::WeightedMean { radius: 200 },
                ..o
            },
            2,
            DecodeError::InvalidOptions("the weighted-mean window radius must be at most 127 cells"),
        ),
        (
            "stride so large the position would overflow (1e38; was called a NaN)",
            with(6, 0.9),
            shape,
            DecodeOptions { stride: 1e38, ..o },
            2,
            DecodeError::InvalidOptions("stride must lie in (0, 65536] input pixels per cell"),
        ),
    ];
    for (class, maps, shape, opts, cap, want) in rows {
        assert_eq!(
            decode(&maps, shape, &opts, &mut out[..cap]),
            Err(want),
            "decode / {class}"
        );
    }
    // All-equal maps and denormals are valid input: a detection at the
    // first cell or none, never garbage.
    for v in [0.5f32, f32::MIN_POSITIVE / 4.0, -1e30, 0.0] {
        let n = decode(&[v; 24], shape, &o, &mut out).unwrap();
        assert!(
            out[..n].iter().all(|d| d.u.is_finite() && d.v.is_finite()),
            "decode / constant {v}"
        );
    }
}

/// An exact problem: 12 points 5 m in front of a 500 px camera.
fn problem() -> (Vec<[f64; 2]>, Vec<[f64; 3]>, Camera) {
    let cam = Camera::pinhole(640, 480, 500.0, 319.5, 239.5).unwrap();
    let p3: Vec<[f64; 3]> = (0..12)
        .map(|i| {
            [
                (i % 4) as f64 - 1.5,
                (i / 4) as f64 - 1.0,
                5.0 + 0.3 * (i % 3) as f64,
            ]
        })
        .collect();
    let p2 = p3
        .iter()
        .map(|p| [500.0 * p[0] / p[2] + 319.5, 500.0 * p[1] / p[2] + 239.5])
        .collect();
    (p2, p3, cam)
}

#[test]
fn pnp() {
    let (p2, p3, cam) = problem();
    let mut s = PnpSolver::with_capacity(PnpOptions::default(), 12);
    assert!(
        s.solve(&p2, &p3, None, &cam, None).is_ok(),
        "the exact problem solves"
    );
    let set = |i: usize, v: [f64; 3]| {
        let mut p = p3.clone();
        p[i] = v;
        p
    };
    let collinear: Vec<[f64; 3]> = (0..12).map(|i| [i as f64 * 0.1, 0.0, 5.0]).collect();
    let conf_neg: Vec<f64> = (0..12).map(|i| if i == 4 { -1.0 } else { 1.0 }).collect();
    let conf_nan: Vec<f64> = (0..12).map(|i| if i == 2 { f64::NAN } else { 1.0 }).collect();
    let bad_cam = Camera { fx: 0.0, ..cam };
    let mut p2_nan = p2.clone();
    p2_nan[7] = [f64::NAN, 1.0];
    type Row<'a> = (
        &'a str,
        Vec<[f64; 2]>,
        Vec<[f64; 3]>,
        Option<Vec<f64>>,
        Camera,
        PnpError,
    );
    let rows: Vec<Row> = vec![
        (
            "length mismatch",
            p2.clone(),
            p3[..11].to_vec(),
            None,
            cam,
            PnpError::LengthMismatch,
        ),
        (
            "confidence length mismatch",
            p2.clone(),
            p3.clone(),
            Some(vec![1.0; 3]),
            cam,
            PnpError::LengthMismatch,
        ),
        (
            "too few points",
            p2[..3].to_vec(),
            p3[..3].to_vec(),
            None,
            cam,
            PnpError::TooFewPoints { given: 3 },
        ),
        (
            "NaN 3D point",
            p2.clone(),
            set(5, [f64::NAN, 0.0, 5.0]),
            None,
            cam,
            PnpError::InvalidPoint {
                index: 5,
                why: PointProblem::NonFinite3d,
            },
        ),
        (
            "inf 3D point",
            p2.clone(),
            set(6, [0.0, f64::INFINITY, 5.0]),
            None,
            cam,
            PnpError::InvalidPoint {
                index: 6,
                why: PointProblem::NonFinite3d,
            },
        ),
        (
            "NaN 2D point",
            p2_nan,
            p3.clone(),
            None,
            cam,
            PnpError::InvalidPoint {
                index: 7,
                why: PointProblem::NonFinite2d,
            },
        ),
        (
            "negative confidence",
            p2.clone(),
            p3.clone(),
            Some(conf_neg),
            cam,
            PnpError::InvalidPoint {
                index: 4,
                why: PointProblem::NegativeConfidence,
            },
        ),
        (
            "NaN confidence",
            p2.clone(),
            p3.clone(),
            Some(conf_nan),
            cam,
            PnpError::InvalidPoint {
                index: 2,
                why: PointProblem::NonFiniteConfidence,
            },
        ),
        (
            "collinear 3D points",
            p2.clone(),
            collinear,
            None,
            cam,
            PnpError::DegeneratePoints,
        ),
        (
            "coincident 3D points",
            p2.clone(),
            vec![[1.0, 2.0, 5.0]; 12],
            None,
            cam,
            PnpError::DegeneratePoints,
        ),
        (
            "invalid camera",
            p2.clone(),
            p3.clone(),
            None,
            bad_cam,
            PnpError::InvalidCamera(CameraError::InvalidFocal),
        ),
    ];
    for (class, a, b, c, camera, want) in rows {
        assert_eq!(
            s.solve(&a, &b, c.as_deref(), &camera, None).err(),
            Some(want),
            "PnP / {class}"
        );
    }
    // Every option out of range is named.
    let d = PnpOptions::default();
    let opts: Vec<(&str, PnpOptions, &str)> = vec![
        (
            "NaN threshold",
            PnpOptions {
                max_reproj_px: f64::NAN,
                ..d
            },
            "max_reproj_px",
        ),
        (
            "zero threshold",
            PnpOptions {
                max_reproj_px: 0.0,
                ..d
            },
            "max_reproj_px",
        ),
        (
            "min_inliers below 4",
            PnpOptions { min_inliers: 3, ..d },
            "min_inliers",
        ),
        (
            "unbounded iterations",
            PnpOptions {
                ransac: sld_core::pnp::ransac::RansacOptions {
                    max_iterations: u32::MAX,
                    ..d.ransac
                },
                ..d
            },
            "max_iterations",
        ),
        (
            "unbounded exhaustive search",
            PnpOptions {
                exhaustive_max_subsets: u32::MAX,
                ..d
            },
            "exhaustive_max_subsets",
        ),
        (
            "success probability 1",
            PnpOptions {
                ransac: sld_core::pnp::ransac::RansacOptions {
                    success_prob: 1.0,
                    ..d.ransac
                },
                ..d
            },
            "success_prob",
        ),
        (
            "NaN trials multiplier",
            PnpOptions {
                ransac: sld_core::pnp::ransac::RansacOptions {
                    trials_mult: f64::NAN,
                    ..d.ransac
                },
                ..d
            },
            "trials_mult",
        ),
        (
            "inf LO widening",
            PnpOptions {
                lo_wide_factor: f64::INFINITY,
                ..d
            },
            "lo_wide_factor",
        ),
        (
            "unbounded LO iterations",
            PnpOptions {
                lo_iterations: u32::MAX,
                ..d
            },
            "lo_iterations",
        ),
        (
            "unbounded refinement",
            PnpOptions {
                refine_iterations: 1_000_000,
                ..d
            },
            "refine_iterations",
        ),
        (
            "unbounded refinement rounds",
            PnpOptions {
                refine_rounds: 1_000,
                ..d
            },
            "refine_rounds",
        ),
    ];
    for (class, o, name) in opts {
        let mut s = PnpSolver::with_capacity(o, 12);
        match s.solve(&p2, &p3, None, &cam, None) {
            Err(PnpError::InvalidOptions(what)) => {
                assert!(what.contains(name), "PnP options / {class}: {what}")
            }
            other => panic!("PnP options / {class}: {other:?}"),
        }
    }
    // Scratch or mask shorter than the input.
    let mut scratch = vec![sld_core::PointScratch::default(); 11];
    assert_eq!(
        sld_core::solve_pnp(&p2, &p3, None, &cam, &d, &mut scratch, None).err(),
        Some(PnpError::ScratchTooSmall { needed: 12 }),
        "PnP / scratch too small"
    );
    let mut mask = [false; 11];
    assert_eq!(
        s.solve(&p2, &p3, None, &cam, Some(&mut mask)).err(),
        Some(PnpError::ScratchTooSmall { needed: 12 }),
        "PnP / mask too small"
    );
}

#[test]
fn localizer() {
    let mut loc = Localizer::new(MODEL).unwrap();
    let rgb = vec![0u8; 96 * 64 * 3];
    let image = Image::new(96, 64, 96 * 3, PixelFormat::Rgb8, &rgb).unwrap();
    let cam = Camera::pinhole(96, 64, 80.0, 47.5, 31.5).unwrap();
    let rows: [(&str, Camera, LocalizeError); 2] = [
        (
            "camera of another size",
            Camera::pinhole(640, 480, 500.0, 319.5, 239.5).unwrap(),
            LocalizeError::CameraSizeMismatch,
        ),
        (
            "invalid camera",
            Camera { fx: f64::NAN, ..cam },
            LocalizeError::Camera(CameraError::InvalidFocal),
        ),
    ];
    for (class, c, want) in rows {
        assert_eq!(loc.localize(&image, &c).err(), Some(want), "localize / {class}");
    }
    // A black image has no detections: no pose, not a made-up one.
    assert!(
        matches!(loc.localize(&image, &cam), Err(LocalizeError::Pnp(_))),
        "localize / black image"
    );
}
