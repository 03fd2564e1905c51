//! The bad-input matrix (RELIABILITY.md): for every surface that reads
//! outside input, each class of bad input and the exact error it must
//! produce. Rust surfaces return typed errors (`ModelError`) or `anyhow`
//! errors whose message must name the problem (checked by substring); the
//! CLI must exit non-zero with one `error:` line naming the problem. The C
//! rows live in `tests/c/consumer.c` (statuses + messages).

use std::path::Path;

use sld_core::model::{Model, ModelError};
use sld_train::data::colmap::{
    parse_cameras_bin, parse_cameras_txt, parse_images_bin, parse_images_txt, parse_points_bin,
    parse_points_txt,
};
use sld_train::data::indoor6::{
    parse_intrinsics, parse_landmarks, parse_pose, parse_split, parse_visibility,
};
use sld_train::depth::io::parse_map;

const MODEL: &[u8] = include_bytes!("../../../tests/miri/fixtures/model.sld");

/// Asserts that `r` failed with a message containing `want`.
fn fails<T: std::fmt::Debug>(surface: &str, class: &str, r: anyhow::Result<T>, want: &str) {
    match r {
        Ok(v) => panic!("{surface} / {class}: accepted, gave {v:?}"),
        Err(e) => {
            let m = format!("{e:#}");
            assert!(m.contains(want), "{surface} / {class}: '{want}' not in '{m}'");
        }
    }
}

/// The fixture model with its `sld.model` JSON edited by `f`, or its
/// tensor table edited by `g` (safetensors header JSON).
fn edit_model(f: impl Fn(&mut serde_json::Value), g: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(MODEL[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&MODEL[8..8 + n]).unwrap();
    let mut desc: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["sld.model"].as_str().unwrap()).unwrap();
    f(&mut desc);
    header["__metadata__"]["sld.model"] = serde_json::Value::String(desc.to_string());
    g(&mut header);
    let mut h = header.to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&MODEL[8 + n..]);
    out
}

fn no_edit(_: &mut serde_json::Value) {}

#[test]
fn model_file() {
    assert!(Model::load(MODEL).is_ok(), "the fixture itself loads");
    type Row<'a> = (&'a str, Vec<u8>, &'a dyn Fn(&ModelError) -> bool);
    let rows: Vec<Row> = vec![
        ("empty", vec![], &|e| matches!(e, ModelError::Container(_))),
        ("truncated header", MODEL[..20].to_vec(), &|e| {
            matches!(e, ModelError::Container(_))
        }),
        (
            "truncated data",
            MODEL[..MODEL.len() - 4].to_vec(),
            &|e| matches!(e, ModelError::SizeMismatch { declared, actual } if *declared == actual + 4),
        ),
        ("trailing bytes", [MODEL, &[0u8; 5][..]].concat(), &|e| {
            matches!(e, ModelError::SizeMismatch { declared, actual } if *declared + 5 == *actual)
                && e.to_string().starts_with("5 trailing bytes")
        }),
        (
            "wrong magic (not safetensors)",
            b"GGUF\x03\x00\x00\x00garbage".to_vec(),
            &|e| matches!(e, ModelError::Container(_)),
        ),
        (
            "header length overflowing the file",
            [&u64::MAX.to_le_bytes()[..], &MODEL[8..]].concat(),
            &|e| matches!(e, ModelError::Container(_)),
        ),
        (
            "wrong format version",
            edit_model(no_edit, |h| h["__metadata__"]["sld.version"] = "99".into()),
            &|e| *e == ModelError::UnsupportedVersion("99".into()),
        ),
        (
            "missing version",
            edit_model(no_edit, |h| {
                h["__metadata__"].as_object_mut().unwrap().remove("sld.version");
            }),
            &|e| *e == ModelError::MissingVersion,
        ),
        (
            "description not JSON",
            edit_model(no_edit, |h| h["__metadata__"]["sld.model"] = "{graph".into()),
            &|e| matches!(e, ModelError::BadDescription(_)),
        ),
        (
            "wrong dtype",
            edit_model(no_edit, |h| h["diff.bias"]["dtype"] = "I32".into()),
            &|e| matches!(e, ModelError::WrongDtype { tensor, .. } if tensor == "diff.bias"),
        ),
        (
            "shape mismatch (tensor vs graph)",
            edit_model(no_edit, |h| {
                h["heat.weight"]["shape"] = serde_json::json!([5, 30, 1, 1, 1]);
            }),
            &|e| matches!(e, ModelError::ShapeMismatch { tensor, .. } if tensor == "heat.weight"),
        ),
        (
            "missing tensor",
            edit_model(|d| d["graph"]["layers"][0]["bias"] = "ghost.bias".into(), no_edit),
            &|e| *e == ModelError::MissingTensor("ghost.bias".into()),
        ),
        (
            "zero input size",
            edit_model(|d| d["graph"]["input"]["width"] = 0.into(), no_edit),
            &|e| matches!(e, ModelError::BadGraph(m) if m.contains("non-empty")),
        ),
        (
            "negative size",
            edit_model(|d| d["graph"]["input"]["height"] = (-64).into(), no_edit),
            &|e| matches!(e, ModelError::BadDescription(_)),
        ),
        (
            "overflowing size",
            edit_model(
                |d| d["graph"]["input"]["width"] = 4_000_000_000u64.into(),
                no_edit,
            ),
            &|e| matches!(e, ModelError::BadGraph(m) if m.contains("too large") || m.contains("exceeds")),
        ),
        (
            "activation memory over the 1 GiB cap",
            edit_model(
                |d| {
                    d["graph"]["input"]["width"] = 40_000.into();
                    d["graph"]["input"]["height"] = 40_000.into();
                },
                no_edit,
            ),
            &|e| matches!(e, ModelError::BadGraph(m) if m.contains("too large") || m.contains("exceeds")),
        ),
        (
            "duplicate layer names",
            edit_model(|d| d["graph"]["layers"][1]["name"] = "diff".into(), no_edit),
            &|e| matches!(e, ModelError::BadGraph(m) if m.contains("not unique")),
        ),
        (
            "NaN normalisation",
            edit_model(
                |d| d["graph"]["input"]["std"] = serde_json::json!([1.0, 0.0, 1.0]),
                no_edit,
            ),
            &|e| matches!(e, ModelError::BadGraph(m) if m.contains("std > 0")),
        ),
        (
            "landmark count the heads do not produce",
            edit_model(|d| d["landmarks"] = 7.into(), no_edit),
            &|e| matches!(e, ModelError::BadGraph(_) | ModelError::ShapeMismatch { .. }),
        ),
    ];
    for (class, bytes, want) in rows {
        match Model::load(bytes.as_slice()) {
            Ok(_) => panic!("model / {class}: accepted"),
            Err(e) => assert!(want(&e), "model / {class}: unexpected {e:?}"),
        }
    }
    // Values in the data section: non-finite or absurd landmark
    // coordinates, non-finite weights. Each names the tensor and the value.
    let n = u64::from_le_bytes(MODEL[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&MODEL[8..8 + n]).unwrap();
    let start = |t: &str| 8 + n + header[t]["data_offsets"][0].as_u64().unwrap() as usize;
    let weight = header
        .as_object()
        .unwrap()
        .keys()
        .find(|k| *k != "__metadata__" && *k != "landmarks")
        .unwrap()
        .clone();
    let with = |at: usize, v: f32| {
        let mut b = MODEL.to_vec();
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        Model::load(b)
    };
    let lm = start("landmarks");
    for (class, at, v, tensor, index) in [
        ("NaN landmark", lm, f32::NAN, "landmarks", 0),
        ("landmark at 1e30 m", lm + 4 * 4, 1e30, "landmarks", 4),
        ("landmark at -2e5 m", lm + 4 * 2, -2e5, "landmarks", 2),
        (
            "+inf weight",
            start(&weight) + 4,
            f32::INFINITY,
            weight.as_str(),
            1,
        ),
        ("NaN weight", start(&weight), f32::NAN, weight.as_str(), 0),
    ] {
        match with(at, v) {
            Err(e @ ModelError::BadValue { .. }) => {
                let ModelError::BadValue {
                    tensor: t, index: i, ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!((t.as_str(), *i), (tensor, index), "model / {class}");
                let m = e.to_string();
                let what = if tensor == "landmarks" { "100000 m" } else { tensor };
                assert!(m.contains(what), "model / {class}: {m}");
            }
            other => panic!("model / {class}: {other:?}"),
        }
    }
    // A landmark within the bound still loads.
    assert!(with(lm, 9.9e4).is_ok(), "model / landmark at 99 km");
}

#[test]
fn colmap_binary() {
    let p = Path::new("x.bin");
    let cam = |id: i32, model: i32, w: u64, h: u64, params: &[f64]| {
        let mut b = id.to_le_bytes().to_vec();
        b.extend(model.to_le_bytes());
        b.extend(w.to_le_bytes());
        b.extend(h.to_le_bytes());
        params.iter().for_each(|v| b.extend(v.to_le_bytes()));
        b
    };
    let file = |n: u64, recs: &[Vec<u8>]| [&n.to_le_bytes()[..], &recs.concat()].concat();
    let good = cam(1, 1, 640, 480, &[500.0, 500.0, 320.0, 240.0]);
    assert_eq!(
        parse_cameras_bin(&file(1, std::slice::from_ref(&good)), p)
            .unwrap()
            .len(),
        1
    );
    let image = |id: i32, q: [f64; 4], name: &[u8], npts: u64| {
        let mut b = id.to_le_bytes().to_vec();
        q.iter()
            .chain(&[0.0, 0.0, 1.0])
            .for_each(|v| b.extend(v.to_le_bytes()));
        b.extend(1i32.to_le_bytes());
        b.extend(name);
        b.push(0);
        b.extend(npts.to_le_bytes());
        b
    };
    let rows: Vec<(&str, anyhow::Result<usize>, &str)> = vec![
        (
            "empty",
            parse_cameras_bin(&[], p).map(|m| m.len()),
            "truncated at byte 0",
        ),
        (
            "truncated record",
            parse_cameras_bin(&file(1, &[good[..20].to_vec()]), p).map(|m| m.len()),
            "truncated",
        ),
        (
            "overflowing count",
            parse_cameras_bin(&file(u64::MAX, std::slice::from_ref(&good)), p).map(|m| m.len()),
            "cannot fit",
        ),
        (
            "duplicate ids",
            parse_cameras_bin(&file(2, &[good.clone(), good.clone()]), p).map(|m| m.len()),
            "duplicate camera id 1",
        ),
        (
            "zero size",
            parse_cameras_bin(&file(1, &[cam(1, 1, 0, 480, &[1.0, 1.0, 1.0, 1.0])]), p).map(|m| m.len()),
            "size 0×480 is invalid",
        ),
        (
            "unknown model id",
            parse_cameras_bin(&file(1, &[cam(1, 77, 640, 480, &[])]), p).map(|m| m.len()),
            "unknown camera model id 77",
        ),
        (
            "unsupported model",
            parse_cameras_bin(&file(1, &[cam(1, 5, 640, 480, &[1.0; 8])]), p).map(|m| m.len()),
            "OPENCV_FISHEYE (id 5) is not supported",
        ),
        (
            "NaN parameter",
            parse_cameras_bin(&file(1, &[cam(1, 1, 640, 480, &[f64::NAN, 1.0, 1.0, 1.0])]), p)
                .map(|m| m.len()),
            "must be finite",
        ),
        (
            "quaternion not unit",
            parse_images_bin(&file(1, &[image(1, [2.0, 0.0, 0.0, 0.0], b"a.jpg", 0)]), p).map(|m| m.len()),
            "quaternion norm 2 is not 1",
        ),
        (
            "NaN pose",
            parse_images_bin(&file(1, &[image(1, [f64::NAN, 0.0, 0.0, 0.0], b"a.jpg", 0)]), p)
                .map(|m| m.len()),
            "pose is not finite",
        ),
        (
            "name not UTF-8",
            parse_images_bin(&file(1, &[image(1, [1.0, 0.0, 0.0, 0.0], b"\xff\xfe", 0)]), p).map(|m| m.len()),
            "not UTF-8",
        ),
        (
            "overflowing 2D point count",
            parse_images_bin(
                &file(1, &[image(1, [1.0, 0.0, 0.0, 0.0], b"a.jpg", u64::MAX / 2)]),
                p,
            )
            .map(|m| m.len()),
            "cannot fit",
        ),
        (
            "unterminated name",
            parse_images_bin(
                &file(1, &[image(1, [1.0, 0.0, 0.0, 0.0], b"a.jpg", 0)[..70].to_vec()]),
                p,
            )
            .map(|m| m.len()),
            "truncated",
        ),
        (
            "points: truncated",
            parse_points_bin(&file(1, &[vec![0u8; 30]]), p).map(|m| m.len()),
            "cannot fit",
        ),
        (
            "points: NaN coordinate",
            parse_points_bin(
                &file(
                    1,
                    &[[
                        &1u64.to_le_bytes()[..],
                        &f64::NAN.to_le_bytes(),
                        &[0u8; 16],
                        &[0u8; 3],
                        &[0u8; 8],
                        &0u64.to_le_bytes(),
                    ]
                    .concat()],
                ),
                p,
            )
            .map(|m| m.len()),
            "not finite",
        ),
    ];
    for (class, r, want) in rows {
        fails("COLMAP .bin", class, r, want);
    }
}

#[test]
fn colmap_text() {
    let p = Path::new("x.txt");
    let rows: Vec<(&str, anyhow::Result<usize>, &str)> = vec![
        (
            "wrong column count",
            parse_cameras_txt("1 PINHOLE 640\n", p).map(|m| m.len()),
            "expected 'CAMERA_ID MODEL WIDTH HEIGHT",
        ),
        (
            "parameter count",
            parse_cameras_txt("1 PINHOLE 640 480 1 2 3\n", p).map(|m| m.len()),
            "has 4 parameters, found 3",
        ),
        (
            "not a number",
            parse_cameras_txt("1 PINHOLE 640 480 a 2 3 4\n", p).map(|m| m.len()),
            "'a' is not a number",
        ),
        (
            "negative size",
            parse_cameras_txt("1 PINHOLE -640 480 1 2 3 4\n", p).map(|m| m.len()),
            "'-640' is not a number",
        ),
        (
            "zero size",
            parse_cameras_txt("1 PINHOLE 0 480 1 2 3 4\n", p).map(|m| m.len()),
            "must be positive",
        ),
        (
            "overflowing size",
            parse_cameras_txt("1 PINHOLE 99999999999 480 1 2 3 4\n", p).map(|m| m.len()),
            "is not a number",
        ),
        (
            "NaN parameter",
            parse_cameras_txt("1 PINHOLE 640 480 nan 2 3 4\n", p).map(|m| m.len()),
            "must be finite",
        ),
        (
            "duplicate ids",
            parse_cameras_txt("1 PINHOLE 640 480 1 2 3 4\n1 PINHOLE 640 480 1 2 3 4\n", p).map(|m| m.len()),
            "duplicate camera id 1",
        ),
        (
            "unknown model",
            parse_cameras_txt("1 FISHEYE42 640 480 1\n", p).map(|m| m.len()),
            "FISHEYE42",
        ),
        (
            "images: wrong column count",
            parse_images_txt("1 1 0 0 0 0 0\n\n", p).map(|m| m.len()),
            "expected 'IMAGE_ID QW",
        ),
        (
            "images: quaternion not unit",
            parse_images_txt("1 0 0 0 0 0 0 0 1 a.jpg\n\n", p).map(|m| m.len()),
            "quaternion norm 0",
        ),
        (
            "images: duplicate ids",
            parse_images_txt("1 1 0 0 0 0 0 0 1 a.jpg\n\n1 1 0 0 0 0 0 0 1 b.jpg\n\n", p).map(|m| m.len()),
            "duplicate image id 1",
        ),
        (
            "points: odd track",
            parse_points_txt("1 0 0 0 1 2 3 0.5 7\n", p).map(|m| m.len()),
            "expected 'POINT3D_ID X Y Z",
        ),
        (
            "points: inf coordinate",
            parse_points_txt("1 inf 0 0 1 2 3 0.5\n", p).map(|m| m.len()),
            "not finite",
        ),
    ];
    for (class, r, want) in rows {
        fails("COLMAP .txt", class, r, want);
    }
}

#[test]
fn indoor6_files() {
    let p = Path::new("f.txt");
    let rows: Vec<(&str, anyhow::Result<String>, &str)> = vec![
        (
            "intrinsics: empty",
            parse_intrinsics("", p).map(|v| format!("{v:?}")),
            "expected W H f cx cy kappa [original-name], found 0 values",
        ),
        (
            "intrinsics: wrong column count",
            parse_intrinsics("640 480 500 320\n", p).map(|v| format!("{v:?}")),
            "found 4 values",
        ),
        (
            "intrinsics: extra tokens after the original name",
            parse_intrinsics("640 480 500 320 240 0 a.jpg 7\n", p).map(|v| format!("{v:?}")),
            "f.txt:1: expected W H f cx cy kappa [original-name], found 8 values",
        ),
        (
            "intrinsics: a second line",
            parse_intrinsics("640 480 500 320 240 0 a.jpg\n1 2 3\n", p).map(|v| format!("{v:?}")),
            "f.txt:2: an intrinsics file holds one line",
        ),
        (
            "pose: a 4×4 matrix",
            parse_pose("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n", p).map(|v| format!("{v:?}")),
            "found 4 rows (a 4×4 matrix",
        ),
        (
            "pose: a row of 5 columns",
            parse_pose("1 0 0 0\n0 1 0 0 9\n0 0 1 0\n", p).map(|v| format!("{v:?}")),
            "f.txt:2: expected 4 numbers, found 5 values",
        ),
        (
            "intrinsics: NaN",
            parse_intrinsics("640 480 nan 320 240 0\n", p).map(|v| format!("{v:?}")),
            "not a finite number",
        ),
        (
            "intrinsics: zero size",
            parse_intrinsics("0 480 500 320 240 0\n", p).map(|v| format!("{v:?}")),
            "positive integers",
        ),
        (
            "intrinsics: negative focal",
            parse_intrinsics("640 480 -500 320 240 0\n", p).map(|v| format!("{v:?}")),
            "invalid intrinsics",
        ),
        (
            "intrinsics: overflowing size",
            parse_intrinsics("1e30 480 500 320 240 0\n", p).map(|v| format!("{v:?}")),
            "is out of range",
        ),
        (
            "pose: two rows",
            parse_pose("1 0 0 0\n0 1 0 0\n", p).map(|v| format!("{v:?}")),
            "found 2 rows",
        ),
        (
            "pose: wrong column count",
            parse_pose("1 0 0\n0 1 0 0\n0 0 1 0\n", p).map(|v| format!("{v:?}")),
            "expected 4 numbers, found 3",
        ),
        (
            "pose: not a rotation",
            parse_pose("2 0 0 0\n0 1 0 0\n0 0 1 0\n", p).map(|v| format!("{v:?}")),
            "not a rotation",
        ),
        (
            "pose: inf",
            parse_pose("1 0 0 inf\n0 1 0 0\n0 0 1 0\n", p).map(|v| format!("{v:?}")),
            "not a finite number",
        ),
        (
            "landmarks: empty",
            parse_landmarks("", p).map(|v| format!("{v:?}")),
            "empty file",
        ),
        (
            "landmarks: bad count",
            parse_landmarks("two\n", p).map(|v| format!("{v:?}")),
            "must be the landmark count",
        ),
        (
            "landmarks: duplicate ids",
            parse_landmarks("2\n0 1 2 3\n0 1 2 3\n", p).map(|v| format!("{v:?}")),
            "duplicate id 0",
        ),
        (
            "landmarks: id out of range",
            parse_landmarks("1\n5 1 2 3\n", p).map(|v| format!("{v:?}")),
            "out of range",
        ),
        (
            "landmarks: count mismatch",
            parse_landmarks("3\n0 1 2 3\n", p).map(|v| format!("{v:?}")),
            "header says 3 landmarks, found 1",
        ),
        (
            "landmarks: negative id",
            parse_landmarks("1\n-1 1 2 3\n", p).map(|v| format!("{v:?}")),
            "non-negative integer",
        ),
        (
            "landmarks: NaN",
            parse_landmarks("1\n0 nan 2 3\n", p).map(|v| format!("{v:?}")),
            "not a finite number",
        ),
        (
            "landmarks: a row of 5 columns",
            parse_landmarks("1\n0 1 2 3 4\n", p).map(|v| format!("{v:?}")),
            "f.txt:2: expected 4 numbers, found 5 values",
        ),
        (
            "visibility: ragged rows",
            parse_visibility("1 0 1\n1 0\n", p).map(|v| format!("{v:?}")),
            "2 columns, earlier rows have 3",
        ),
        (
            "visibility: not 0/1",
            parse_visibility("1 2 1\n", p).map(|v| format!("{v:?}")),
            "expected 0 or 1",
        ),
        (
            "split: not a pickle",
            parse_split(b"hello", p).map(|v| format!("{v:?}")),
            "not a train/val/test split pickle",
        ),
        (
            "split: truncated",
            parse_split(&split_bytes()[..20], p).map(|v| format!("{v:?}")),
            "not a train/val/test split pickle",
        ),
        (
            "split: names and indices differ in length",
            parse_split(&split_bytes_with(vec!["a".into()], vec![]), p).map(|v| format!("{v:?}")),
            "'train' has 1 names but 'train_idx' has 0 indices",
        ),
        (
            "split: shared containers, exponential when expanded (fuzzer timeout)",
            parse_split(
                include_bytes!(
                    "../../../fuzz/regressions/split_pickle/timeout-a990451094228aac75c4e4b59a7bf17db31e2e7a"
                ),
                p,
            )
            .map(|v| format!("{v:?}")),
            "not a train/val/test split pickle",
        ),
        (
            "split: a pickle that builds objects",
            parse_split(b"\x80\x02cos\nsystem\n.", p).map(|v| format!("{v:?}")),
            "builds objects other than plain data",
        ),
    ];
    for (class, r, want) in rows {
        fails("Indoor6", class, r, want);
    }
}

fn split_bytes_with(train: Vec<String>, train_idx: Vec<i64>) -> Vec<u8> {
    let s = sld_train::data::indoor6::Split {
        train,
        train_idx,
        ..Default::default()
    };
    serde_pickle::to_vec(&s, serde_pickle::SerOptions::new()).unwrap()
}

fn split_bytes() -> Vec<u8> {
    split_bytes_with(vec!["a.jpg".into(), "b.jpg".into()], vec![0, 1])
}

#[test]
fn depth_maps() {
    let npy = |descr: &str, shape: &str, payload: usize| {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        b.extend(vec![0x3fu8; payload]);
        b
    };
    assert!(parse_map(&npy("<f4", "(2, 3)", 24), Path::new("d.npy"), false).is_ok());
    let nested = {
        let mut b = npy("<f4", "(2, 3)", 24);
        let at = b.windows(5).position(|w| w == b"'<f4'").unwrap();
        b.splice(at..at, std::iter::repeat_n(b'[', 60));
        b
    };
    let rows: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("npy: empty", "d.npy", vec![], "not a valid .npy file"),
        (
            "npy: wrong magic",
            "d.npy",
            b"\x93NUMPZ\x01\x00\x10\x00{}".to_vec(),
            "not a valid .npy file",
        ),
        (
            "npy: unsupported version",
            "d.npy",
            b"\x93NUMPY\x09\x00\x10\x00{}".to_vec(),
            "unsupported .npy version 9",
        ),
        (
            "npy: truncated header",
            "d.npy",
            npy("<f4", "(2, 3)", 24)[..40].to_vec(),
            "header truncated",
        ),
        (
            "npy: truncated data",
            "d.npy",
            npy("<f4", "(2, 3)", 23),
            "cannot read float32 data",
        ),
        (
            "npy: wrong dtype",
            "d.npy",
            npy("<i4", "(2, 3)", 24),
            "is not float32 or float64",
        ),
        (
            "npy: 3-channel shape",
            "d.npy",
            npy("<f4", "(2, 3, 3)", 72),
            "expected a 2-D map",
        ),
        ("npy: zero size", "d.npy", npy("<f4", "(0, 3)", 0), "out of range"),
        (
            "npy: huge shape, little data",
            "d.npy",
            npy("<f4", "(30000, 30000)", 64),
            "needs 3600000000 bytes",
        ),
        (
            "npy: overflowing shape",
            "d.npy",
            npy("<f4", "(99999999999999999999, 3)", 64),
            "not 1 to 3 sizes of at most 32768",
        ),
        (
            "npy: shape whose product overflows (fuzzer crash)",
            "d.npy",
            npy("<f4", "(49, 92577420144, 4809469, 6, 4)", 64),
            "not 1 to 3 sizes",
        ),
        (
            "npy: nested header (fuzzer timeout)",
            "d.npy",
            nested,
            "not a valid .npy file",
        ),
        (
            "npy: nested braces (second fuzzer timeout)",
            "d.npy",
            include_bytes!(
                "../../../fuzz/regressions/depth_map/timeout-414d5b68567fb17540d03ca1a529481c8756e7f9"
            )[1..]
                .to_vec(),
            "not a valid .npy file",
        ),
        ("pfm: colour", "d.pfm", b"PF\n2 2\n-1\n".to_vec(), "colour PFM"),
        (
            "pfm: wrong magic",
            "d.pfm",
            b"P6\n2 2\n255\n".to_vec(),
            "not a PFM file",
        ),
        (
            "pfm: truncated header",
            "d.pfm",
            b"Pf\n2".to_vec(),
            "truncated PFM header",
        ),
        (
            "pfm: negative size",
            "d.pfm",
            b"Pf\n-2 2\n-1\n".to_vec(),
            "bad PFM width",
        ),
        (
            "pfm: zero scale",
            "d.pfm",
            b"Pf\n2 2\n0\n".to_vec(),
            "scale must be non-zero",
        ),
        (
            "pfm: truncated data",
            "d.pfm",
            b"Pf\n2 2\n-1\n\0\0\0\0".to_vec(),
            "needs 16",
        ),
        (
            "pfm: overflowing size",
            "d.pfm",
            b"Pf\n99999999999 2\n-1\n".to_vec(),
            "out of range",
        ),
        (
            "png: not a PNG",
            "d.png",
            b"\x89PNX garbage".to_vec(),
            "not a readable PNG",
        ),
        (
            "png: truncated",
            "d.png",
            png16()[..40].to_vec(),
            "not a readable PNG",
        ),
        ("png: colour", "d.png", png_rgb(), "must be single-channel"),
        (
            "bin: no header",
            "d.bin",
            b"garbage".to_vec(),
            "not a COLMAP dense map",
        ),
        ("bin: 3 channels", "d.bin", b"3&2&3&".to_vec(), "3 channels"),
        (
            "bin: truncated data",
            "d.bin",
            [&b"3&2&1&"[..], &[0u8; 20]].concat(),
            "needs 24",
        ),
        (
            "bin: overflowing size",
            "d.bin",
            b"99999999&1&1&".to_vec(),
            "out of range",
        ),
        (
            "bin: negative size",
            "d.bin",
            b"-3&2&1&".to_vec(),
            "bad COLMAP header field '-3'",
        ),
        (
            "unknown extension",
            "d.exr",
            vec![0u8; 16],
            "unknown map format '.exr'",
        ),
    ];
    for (class, name, bytes, want) in rows {
        fails(
            "depth map",
            class,
            parse_map(&bytes, Path::new(name), false).map(|m| m.width),
            want,
        );
    }
    fails(
        "depth map",
        "missing file",
        sld_train::depth::io::read_map(Path::new("/nonexistent/d.npy"), false).map(|m| m.width),
        "cannot read /nonexistent/d.npy",
    );
}

fn png16() -> Vec<u8> {
    let img =
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 2, vec![1000u16, 0, 2000, 3000]).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn png_rgb() -> Vec<u8> {
    let img = image::RgbImage::new(2, 2);
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The CLI: non-zero exit, one `error:` line on stderr naming the problem.
#[test]
fn command_line() {
    let dir = std::env::temp_dir().join(format!("sld-bad-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corrupt = dir.join("corrupt.sld");
    std::fs::write(&corrupt, &MODEL[..MODEL.len() / 2]).unwrap();
    let empty_scene = dir.join("scene");
    std::fs::create_dir_all(&empty_scene).unwrap();
    let d = |s: &str| dir.join(s).display().to_string();
    let c = corrupt.display().to_string();
    let es = empty_scene.display().to_string();
    let (out_npy, out_s, out_imp) = (d("o.npy"), d("s"), d("imp"));
    let c_truncated = format!("{c}: not a usable model: truncated");
    let map = |v: f32| sld_train::depth::DepthMap {
        width: 8,
        height: 6,
        data: vec![v; 48],
    };
    let (nan_mde, ok_mde, zero_depth, ok_depth) = (d("nan.npy"), d("mde.npy"), d("zero.npy"), d("depth.npy"));
    sld_train::depth::io::write_map(Path::new(&nan_mde), &map(f32::NAN)).unwrap();
    sld_train::depth::io::write_map(Path::new(&ok_mde), &map(0.5)).unwrap();
    sld_train::depth::io::write_map(Path::new(&zero_depth), &map(0.0)).unwrap();
    sld_train::depth::io::write_map(Path::new(&ok_depth), &map(2.0)).unwrap();
    let nan_mde_msg = format!("{nan_mde}: the MDE map holds no finite value");
    let zero_depth_msg = format!("{zero_depth}: the depth map has no known pixel");
    let ok_model = d("ok.sld");
    std::fs::write(&ok_model, MODEL).unwrap();
    // A 32×24 JPEG cut in half, and one with an unreadable sidecar file.
    let img = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([(x * 8) as u8, (y * 10) as u8, 90]));
    let mut jpg = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg)
        .unwrap();
    let cut_jpg = d("cut.jpg");
    std::fs::write(&cut_jpg, &jpg[..jpg.len() / 2]).unwrap();
    let side_jpg = d("image-00000.color.jpg");
    std::fs::write(&side_jpg, &jpg).unwrap();
    std::fs::write(d("image-00000.intrinsics.txt"), "640 480 five\n").unwrap();
    let rows: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "missing model file",
            vec!["model", "info", "/nonexistent/m.sld"],
            "/nonexistent/m.sld",
        ),
        ("truncated model", vec!["model", "info", &c], "truncated"),
        (
            "eval with a truncated model names it",
            vec!["eval", "--model", &c, "--scene", &es],
            &c_truncated,
        ),
        (
            "depth fill with an all-NaN MDE names it",
            vec![
                "depth", "fill", "--mde", &nan_mde, "--depth", &ok_depth, "--out", &out_npy,
            ],
            &nan_mde_msg,
        ),
        (
            "depth fill with an all-zero depth map names it",
            vec![
                "depth",
                "fill",
                "--mde",
                &ok_mde,
                "--depth",
                &zero_depth,
                "--out",
                &out_npy,
            ],
            &zero_depth_msg,
        ),
        (
            "localize a truncated JPEG: the reason on stderr, naming the image",
            vec![
                "localize",
                "--model",
                &ok_model,
                "--camera",
                "30,30,15.5,11.5",
                &cut_jpg,
            ],
            "cut.jpg: damaged or unsupported image",
        ),
        (
            "localize with a bad --camera: once, naming the flag",
            vec![
                "localize", "--model", &ok_model, "--camera", "1,2,3", &cut_jpg, &cut_jpg,
            ],
            "--camera 1,2,3: expects 4 or 5 numbers",
        ),
        (
            "localize with a negative --camera value: a value, not a flag",
            vec![
                "localize",
                "--model",
                &ok_model,
                "--camera",
                "-30,30,15.5,11.5",
                &cut_jpg,
            ],
            "focal lengths fx, fy must be > 0",
        ),
        (
            "localize with an invalid sidecar intrinsics file (not 'missing')",
            vec!["localize", "--model", &ok_model, &side_jpg],
            "invalid intrinsics file",
        ),
        (
            "a gate ratio out of range names its flag",
            vec![
                "eval",
                "--model",
                &ok_model,
                "--scene",
                &es,
                "--min-inlier-ratio",
                "1.5",
            ],
            "--min-inlier-ratio 1.5: must lie in [0, 1]",
        ),
        (
            "missing scene",
            vec!["eval", "--model", &ok_model, "--scene", "/nonexistent/scene"],
            "/nonexistent/scene",
        ),
        ("scene without images", vec!["landmarks", "--scene", &es], "scene"),
        (
            "missing depth input",
            vec![
                "depth",
                "fill",
                "--mde",
                "/nonexistent/a.npy",
                "--depth",
                "/nonexistent/b.bin",
                "--out",
                &out_npy,
            ],
            "cannot read /nonexistent/a.npy",
        ),
        (
            "missing PnP problem file",
            vec!["pnp", "/nonexistent/p.json"],
            "/nonexistent/p.json",
        ),
        (
            "bad option value",
            vec!["synth", "--out", &out_s, "--images", "-3"],
            "-3",
        ),
        (
            "COLMAP import from an empty folder",
            vec![
                "colmap", "import", "--model", &es, "--images", &es, "--out", &out_imp,
            ],
            "no cameras.bin or cameras.txt",
        ),
        (
            "train full with two scenes",
            vec!["train", "full", "--scene", &es, "--scene", &es, "--out", &out_s],
            "give one --scene",
        ),
        (
            "train backbone, landmark files not one per scene",
            vec![
                "train",
                "backbone",
                "--scene",
                &es,
                "--scene",
                &es,
                "--landmarks",
                &c,
                "--out",
                &out_s,
            ],
            "give one per scene",
        ),
        (
            "plot of a missing metrics file",
            vec!["plot", "/nonexistent/metrics.jsonl", "--out", &out_s],
            "cannot read /nonexistent/metrics.jsonl",
        ),
    ];
    for (class, args, want) in rows {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sld"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "CLI / {class}: exit 0");
        assert!(err.contains(want), "CLI / {class}: '{want}' not in '{err}'");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.first().is_some_and(|l| l.starts_with("error")),
            "CLI / {class}: stderr does not start with an error line: '{err}'"
        );
        assert!(!err.contains("panicked"), "CLI / {class}: panicked: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn legacy_pth_checkpoint() {
    use sld_train::io::pth::parse_legacy_pth;
    let p = Path::new("w.pth");
    // The legacy magic number pickle, then whatever follows.
    let magic: &[u8] = &[
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
    ];
    let with = |rest: &[u8]| [magic, rest].concat();
    let rows: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "legacy torch magic number"),
        (
            "zip-format checkpoint",
            b"PK\x03\x04rest".to_vec(),
            "legacy torch magic number",
        ),
        ("truncated after the magic", magic.to_vec(), "truncated pickle"),
        (
            "4 GiB string length in 20 bytes",
            with(b"\x80\x02X\xff\xff\xff\xffabc"),
            "runs past the end",
        ),
        (
            "8-byte length overflowing",
            with(b"\x80\x02\x8e\xff\xff\xff\xff\xff\xff\xff\xffabc"),
            "runs past the end",
        ),
        (
            "unknown opcode",
            with(b"\x80\x02\xff"),
            "unsupported pickle opcode 0xff",
        ),
        (
            "unterminated GLOBAL",
            with(b"\x80\x02ctorch"),
            "unterminated text argument",
        ),
        (
            // Found by fuzzing: Candle's into_tensor_info indexes the
            // arguments of _rebuild_tensor_v2 unchecked and panicked.
            "tensor rebuild call with no arguments",
            include_bytes!("../../../fuzz/regressions/pth_import/crash-rebuild-too-few-args").to_vec(),
            "malformed state dict pickle",
        ),
    ];
    for (class, bytes, want) in rows {
        fails(
            "legacy .pth",
            class,
            parse_legacy_pth(&bytes, p).map(|sd| sd.len()),
            want,
        );
    }
}
