//! The Indoor6 scene layout, read and written (spec: `docs/dataset-format.md`).
//!
//! ```text
//! SCENE/images/NAME.color.jpg|png     the image
//! SCENE/images/NAME.intrinsics.txt    "W H f cx cy kappa ORIGINAL-NAME" (pixels; pixel-centre convention)
//! SCENE/images/NAME.pose.txt          3×4 [R|t], world-to-camera, metres
//! SCENE/train_test_val.pkl            pickle dict: train/val/test (file names), *_idx (global indices)
//! SCENE/landmarks/landmarks-N.txt     "N" then "id x y z" per landmark (metres)
//! SCENE/landmarks/visibility-N.txt    N rows × num_images columns of 0/1
//! ```
//!
//! Every reader reports errors with the file and the 1-based line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use sld_core::nalgebra::{Matrix3, Vector3};
use sld_core::{Camera, Pose};

use crate::io::atomic::write_atomic;

/// Largest image side accepted in an intrinsics file, pixels.
const MAX_SIDE: f64 = 65536.0;

/// One line of an intrinsics file.
#[derive(Clone, Debug, PartialEq)]
pub struct Intrinsics {
    /// The camera (`fx = fy = f`).
    pub camera: Camera,
    /// The original image name recorded in the file (may be empty).
    pub original_name: String,
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Exactly `n` finite numbers on `line` (more or fewer is an error naming
/// `path:line_no`: extra values are never dropped silently).
fn parse_floats(path: &Path, line_no: usize, line: &str, n: usize) -> Result<Vec<f64>> {
    let found = line.split_whitespace().count();
    ensure!(
        found == n,
        "{}:{line_no}: expected {n} numbers, found {found} values",
        path.display()
    );
    let v: Vec<f64> = line
        .split_whitespace()
        .enumerate()
        .map(|(k, t)| {
            t.parse::<f64>().ok().filter(|v| v.is_finite()).with_context(|| {
                format!(
                    "{}:{line_no}: value {} ('{t}') is not a finite number",
                    path.display(),
                    k + 1
                )
            })
        })
        .collect::<Result<_>>()?;
    ensure!(
        v.len() == n,
        "{}:{line_no}: expected {n} numbers, found {}",
        path.display(),
        v.len()
    );
    Ok(v)
}

/// Reads `NAME.intrinsics.txt`: `W H f cx cy kappa [original-name]`.
pub fn read_intrinsics(path: &Path) -> Result<Intrinsics> {
    parse_intrinsics(&read_text(path)?, path)
}

/// Parses the text of a intrinsics file (format as [`read_intrinsics`]); `path` names it in errors.
pub fn parse_intrinsics(text: &str, path: &Path) -> Result<Intrinsics> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let line = lines.next().map_or("", |(_, l)| l);
    if let Some((i, _)) = lines.next() {
        bail!(
            "{}:{}: an intrinsics file holds one line (W H f cx cy kappa [original-name])",
            path.display(),
            i + 1
        );
    }
    let tokens: Vec<&str> = line.split_whitespace().collect();
    ensure!(
        (6..=7).contains(&tokens.len()),
        "{}:1: expected W H f cx cy kappa [original-name], found {} values",
        path.display(),
        tokens.len()
    );
    let v = parse_floats(path, 1, &tokens[..6].join(" "), 6)?;
    ensure!(
        v[0] >= 1.0 && v[1] >= 1.0 && v[0].fract() == 0.0 && v[1].fract() == 0.0,
        "{}:1: width and height must be positive integers",
        path.display()
    );
    ensure!(
        v[0] <= MAX_SIDE && v[1] <= MAX_SIDE,
        "{}:1: image size {}x{} is out of range (at most {MAX_SIDE} per side)",
        path.display(),
        v[0],
        v[1]
    );
    let camera = Camera::new(v[0] as u32, v[1] as u32, v[2], v[2], v[3], v[4], v[5])
        .with_context(|| format!("{}:1: invalid intrinsics", path.display()))?;
    let original_name = line.split_whitespace().nth(6).unwrap_or("").to_string();
    Ok(Intrinsics {
        camera,
        original_name,
    })
}

/// Writes an intrinsics file (`fx` is written as `f`; `fy` must equal it).
pub fn write_intrinsics(path: &Path, i: &Intrinsics) -> Result<()> {
    let c = &i.camera;
    ensure!(
        c.fx == c.fy,
        "Indoor6 intrinsics have one focal length, got fx {} fy {}",
        c.fx,
        c.fy
    );
    let line = format!(
        "{} {} {} {} {} {} {}\n",
        c.width, c.height, c.fx, c.cx, c.cy, c.kappa, i.original_name
    );
    write_atomic(path, line.as_bytes())
}

/// Reads `NAME.pose.txt`: three rows of `r r r t`, world-to-camera.
pub fn read_pose(path: &Path) -> Result<Pose> {
    parse_pose(&read_text(path)?, path)
}

/// Parses the text of a pose file (format as [`read_pose`]); `path` names it in errors.
pub fn parse_pose(text: &str, path: &Path) -> Result<Pose> {
    let rows: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    ensure!(
        rows.len() == 3,
        "{}: expected 3 rows of 4 numbers (world-to-camera [R | t]), found {} rows{}",
        path.display(),
        rows.len(),
        if rows.len() == 4 {
            " (a 4×4 matrix, as 7-Scenes writes camera-to-world, is not an Indoor6 pose)"
        } else {
            ""
        }
    );
    let mut m = [[0.0; 4]; 3];
    for (r, (i, line)) in rows.iter().take(3).enumerate() {
        let v = parse_floats(path, i + 1, line, 4)?;
        m[r].copy_from_slice(&v);
    }
    let rot = Matrix3::new(
        m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2],
    );
    let pose = Pose::new(rot, Vector3::new(m[0][3], m[1][3], m[2][3]));
    ensure!(
        pose.is_valid(1e-3),
        "{}: the 3×3 part is not a rotation (orthonormal, det +1)",
        path.display()
    );
    Ok(pose)
}

/// Writes a pose file (3×4, world-to-camera).
pub fn write_pose(path: &Path, pose: &Pose) -> Result<()> {
    let mut s = String::new();
    for row in pose.to_rows() {
        let _ = writeln!(
            s,
            "{:.17e} {:.17e} {:.17e} {:.17e}",
            row[0], row[1], row[2], row[3]
        );
    }
    write_atomic(path, s.as_bytes())
}

/// The split file `train_test_val.pkl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Training image file names.
    pub train: Vec<String>,
    /// Validation image file names.
    pub val: Vec<String>,
    /// Test image file names.
    pub test: Vec<String>,
    /// Global indices of the training images (columns of the visibility file).
    pub train_idx: Vec<i64>,
    /// Global indices of the validation images.
    pub val_idx: Vec<i64>,
    /// Global indices of the test images.
    pub test_idx: Vec<i64>,
}

/// Reads `train_test_val.pkl` (a Python pickle of a dict).
pub fn read_split(path: &Path) -> Result<Split> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_split(&bytes, path)
}

/// Parses the bytes of a split pickle (as [`read_split`]); `path` names it in errors.
pub fn parse_split(bytes: &[u8], path: &Path) -> Result<Split> {
    // serde-pickle clones shared objects, so nested references to one
    // container expand exponentially (a fuzzer timeout from 806 bytes).
    crate::io::pickle_scan::check_plain_data(bytes)
        .with_context(|| format!("{}: not a train/val/test split pickle", path.display()))?;
    let split: Split = serde_pickle::from_slice(bytes, serde_pickle::DeOptions::new())
        .with_context(|| format!("{}: not a train/val/test split pickle", path.display()))?;
    for (name, files, idx) in [
        ("train", &split.train, &split.train_idx),
        ("val", &split.val, &split.val_idx),
        ("test", &split.test, &split.test_idx),
    ] {
        ensure!(
            files.len() == idx.len(),
            "{}: '{name}' has {} names but '{name}_idx' has {} indices",
            path.display(),
            files.len(),
            idx.len()
        );
    }
    Ok(split)
}

/// Writes `train_test_val.pkl` (protocol 3, readable by Python 3's `pickle`).
pub fn write_split(path: &Path, split: &Split) -> Result<()> {
    let bytes = serde_pickle::to_vec(split, serde_pickle::SerOptions::new()).context("pickling the split")?;
    write_atomic(path, &bytes)
}

/// Reads `landmarks-N.txt`: first line `N`, then `id x y z` (metres).
/// Returns the points in id order (ids must be 0..N, any order).
pub fn read_landmarks(path: &Path) -> Result<Vec<[f64; 3]>> {
    parse_landmarks(&read_text(path)?, path)
}

/// Parses the text of a landmarks file (format as [`read_landmarks`]); `path` names it in errors.
pub fn parse_landmarks(text: &str, path: &Path) -> Result<Vec<[f64; 3]>> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines
        .next()
        .with_context(|| format!("{}: empty file", path.display()))?;
    let n: usize = first
        .trim()
        .parse()
        .with_context(|| format!("{}:1: first line must be the landmark count", path.display()))?;
    let mut pts: BTreeMap<usize, [f64; 3]> = BTreeMap::new();
    for (i, line) in lines {
        let v = parse_floats(path, i + 1, line, 4)?;
        ensure!(
            v[0] >= 0.0 && v[0].fract() == 0.0,
            "{}:{}: id must be a non-negative integer",
            path.display(),
            i + 1
        );
        let id = v[0] as usize;
        ensure!(
            id < n,
            "{}:{}: id {id} out of range (N = {n})",
            path.display(),
            i + 1
        );
        ensure!(
            pts.insert(id, [v[1], v[2], v[3]]).is_none(),
            "{}:{}: duplicate id {id}",
            path.display(),
            i + 1
        );
    }
    ensure!(
        pts.len() == n,
        "{}: header says {n} landmarks, found {}",
        path.display(),
        pts.len()
    );
    Ok(pts.into_values().collect())
}

/// Writes `landmarks-N.txt` (ids 0..N in order, 6 decimals = micrometres).
pub fn write_landmarks(path: &Path, pts: &[[f64; 3]]) -> Result<()> {
    let mut s = format!("{}\n", pts.len());
    for (i, p) in pts.iter().enumerate() {
        ensure!(p.iter().all(|v| v.is_finite()), "landmark {i} is not finite");
        let _ = writeln!(s, "{i} {:.6} {:.6} {:.6}", p[0], p[1], p[2]);
    }
    write_atomic(path, s.as_bytes())
}

/// Visibility: `rows[l][j]` — landmark `l` visible in image `j` (global index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visibility {
    /// Number of images (columns).
    pub images: usize,
    /// One row per landmark.
    pub rows: Vec<Vec<bool>>,
}

/// Reads `visibility-N.txt`: one row per landmark of 0/1 per image.
pub fn read_visibility(path: &Path) -> Result<Visibility> {
    parse_visibility(&read_text(path)?, path)
}

/// Parses the text of a visibility file (format as [`read_visibility`]); `path` names it in errors.
pub fn parse_visibility(text: &str, path: &Path) -> Result<Visibility> {
    let mut rows = Vec::new();
    let mut images = None;
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let row = line
            .split_whitespace()
            .enumerate()
            .map(|(k, t)| match t {
                "0" | "0.0" => Ok(false),
                "1" | "1.0" => Ok(true),
                _ => bail!(
                    "{}:{}: column {} is '{t}', expected 0 or 1",
                    path.display(),
                    i + 1,
                    k + 1
                ),
            })
            .collect::<Result<Vec<bool>>>()?;
        match images {
            None => images = Some(row.len()),
            Some(n) => ensure!(
                row.len() == n,
                "{}:{}: {} columns, earlier rows have {n}",
                path.display(),
                i + 1,
                row.len()
            ),
        }
        rows.push(row);
    }
    Ok(Visibility {
        images: images.unwrap_or(0),
        rows,
    })
}

/// Writes `visibility-N.txt`.
pub fn write_visibility(path: &Path, v: &Visibility) -> Result<()> {
    let mut s = String::with_capacity(v.rows.len() * (2 * v.images + 1));
    for (l, row) in v.rows.iter().enumerate() {
        ensure!(
            row.len() == v.images,
            "visibility row {l} has {} columns, expected {}",
            row.len(),
            v.images
        );
        for (k, b) in row.iter().enumerate() {
            s.push(if *b { '1' } else { '0' });
            s.push(if k + 1 == row.len() { '\n' } else { ' ' });
        }
        if row.is_empty() {
            s.push('\n');
        }
    }
    write_atomic(path, s.as_bytes())
}
