//! COLMAP sparse models (`cameras`, `images`, `points3D`, in `.bin` or
//! `.txt`), read here and imported into the Indoor6 layout by [`import`]
//! (`sld colmap import`).
//!
//! Conventions: COLMAP poses are world-to-camera (`x_cam = R·x + t`, `R`
//! from the unit quaternion `qw qx qy qz`), like ours. COLMAP puts the
//! centre of the top-left pixel at `(0.5, 0.5)`; we put it at `(0, 0)`, so
//! the principal point becomes `cx − 0.5, cy − 0.5` on import.
//!
//! Cameras whose model Indoor6 can hold (SIMPLE_PINHOLE, SIMPLE_RADIAL,
//! and PINHOLE with `fx = fy`) are imported as they are; the others
//! (PINHOLE with `fx ≠ fy`, RADIAL, OPENCV) have their images resampled
//! to a pinhole camera with `f = (fx + fy)/2` and the same principal point
//! and size. Every reader error names the file and the record.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use sld_core::nalgebra::{Matrix3, UnitQuaternion, Vector3};
use sld_core::Pose;

pub mod import;

pub use import::{import, indoor6_camera, undistort, ImportSummary};

/// A COLMAP camera model with its parameters (COLMAP's pixel convention).
#[derive(Clone, Debug, PartialEq)]
pub enum CameraModel {
    /// `f, cx, cy`.
    SimplePinhole([f64; 3]),
    /// `fx, fy, cx, cy`.
    Pinhole([f64; 4]),
    /// `f, cx, cy, k`.
    SimpleRadial([f64; 4]),
    /// `f, cx, cy, k1, k2`.
    Radial([f64; 5]),
    /// `fx, fy, cx, cy, k1, k2, p1, p2`.
    OpenCv([f64; 8]),
}

impl CameraModel {
    /// `(fx, fy, cx, cy)` in COLMAP's pixel convention (pixel centres at
    /// `+0.5`).
    pub fn focal_centre(&self) -> (f64, f64, f64, f64) {
        match *self {
            CameraModel::SimplePinhole([f, cx, cy]) => (f, f, cx, cy),
            CameraModel::Pinhole([fx, fy, cx, cy]) => (fx, fy, cx, cy),
            CameraModel::SimpleRadial([f, cx, cy, _]) => (f, f, cx, cy),
            CameraModel::Radial([f, cx, cy, _, _]) => (f, f, cx, cy),
            CameraModel::OpenCv([fx, fy, cx, cy, ..]) => (fx, fy, cx, cy),
        }
    }
}

/// A COLMAP camera.
#[derive(Clone, Debug, PartialEq)]
pub struct ColmapCamera {
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// Model and parameters.
    pub model: CameraModel,
}

/// A registered COLMAP image.
#[derive(Clone, Debug, PartialEq)]
pub struct ColmapImage {
    /// Image file name (relative to the image directory).
    pub name: String,
    /// Camera id.
    pub camera: u32,
    /// World-to-camera pose.
    pub pose: Pose,
}

/// A COLMAP 3D point.
#[derive(Clone, Debug, PartialEq)]
pub struct ColmapPoint {
    /// COLMAP point id.
    pub id: u64,
    /// World position (model units; metres if the model is metric).
    pub xyz: [f64; 3],
    /// Ids of the images observing it.
    pub images: Vec<u32>,
}

/// A sparse model.
#[derive(Clone, Debug, Default)]
pub struct SparseModel {
    /// Cameras by id.
    pub cameras: BTreeMap<u32, ColmapCamera>,
    /// Images by id.
    pub images: BTreeMap<u32, ColmapImage>,
    /// Points (id order).
    pub points: Vec<ColmapPoint>,
}

fn model_from(id: i64, name: &str, p: &[f64], at: &dyn Fn() -> String) -> Result<CameraModel> {
    let need = |n: usize| -> Result<()> {
        ensure!(
            p.len() == n,
            "{}: camera model {name} has {n} parameters, found {}",
            at(),
            p.len()
        );
        Ok(())
    };
    let arr = |n: usize| -> Result<Vec<f64>> {
        need(n)?;
        ensure!(
            p.iter().all(|v| v.is_finite()),
            "{}: camera parameters must be finite",
            at()
        );
        Ok(p.to_vec())
    };
    let model = match (id, name) {
        (0, _) | (_, "SIMPLE_PINHOLE") => CameraModel::SimplePinhole(arr(3)?.try_into().unwrap_or_default()),
        (1, _) | (_, "PINHOLE") => CameraModel::Pinhole(arr(4)?.try_into().unwrap_or_default()),
        (2, _) | (_, "SIMPLE_RADIAL") => CameraModel::SimpleRadial(arr(4)?.try_into().unwrap_or_default()),
        (3, _) | (_, "RADIAL") => CameraModel::Radial(arr(5)?.try_into().unwrap_or_default()),
        (4, _) | (_, "OPENCV") => CameraModel::OpenCv(arr(8)?.try_into().unwrap_or_default()),
        _ => bail!(
            "{}: camera model {name} (id {id}) is not supported; undistort the images first \
             (colmap image_undistorter) or use SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL or OPENCV",
            at()
        ),
    };
    let (fx, fy, _, _) = model.focal_centre();
    ensure!(
        fx > 0.0 && fy > 0.0,
        "{}: focal length {} must be > 0 pixels",
        at(),
        if fx > 0.0 { fy } else { fx }
    );
    Ok(model)
}

fn model_params(id: i64) -> Option<(usize, &'static str)> {
    Some(match id {
        0 => (3, "SIMPLE_PINHOLE"),
        1 => (4, "PINHOLE"),
        2 => (4, "SIMPLE_RADIAL"),
        3 => (5, "RADIAL"),
        4 => (8, "OPENCV"),
        5 => (8, "OPENCV_FISHEYE"),
        6 => (12, "FULL_OPENCV"),
        7 => (5, "FOV"),
        8 => (4, "SIMPLE_RADIAL_FISHEYE"),
        9 => (5, "RADIAL_FISHEYE"),
        10 => (12, "THIN_PRISM_FISHEYE"),
        _ => return None,
    })
}

fn pose_from(q: [f64; 4], t: [f64; 3], at: &dyn Fn() -> String) -> Result<Pose> {
    ensure!(
        q.iter().chain(t.iter()).all(|v| v.is_finite()),
        "{}: pose is not finite",
        at()
    );
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    ensure!((n - 1.0).abs() < 1e-3, "{}: quaternion norm {n} is not 1", at());
    let r: Matrix3<f64> =
        UnitQuaternion::from_quaternion(sld_core::nalgebra::Quaternion::new(q[0], q[1], q[2], q[3]))
            .to_rotation_matrix()
            .into_inner();
    Ok(Pose::new(r, Vector3::from(t)))
}

/// A little-endian cursor that names the file on truncation.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    file: &'a Path,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            bail!(
                "{}: truncated at byte {} while reading {what}",
                self.file.display(),
                self.pos
            )
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into()?))
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.take(4, what)?.try_into()?))
    }
    fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take(8, what)?.try_into()?))
    }
    /// A count whose records need at least `min_record` bytes each.
    fn count(&mut self, what: &str, min_record: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.b.len() - self.pos) as u64;
        ensure!(
            n.saturating_mul(min_record as u64) <= left,
            "{}: {what} = {n} cannot fit in the {left} bytes left (truncated or corrupt file)",
            self.file.display()
        );
        Ok(n as usize)
    }
}

fn read_bytes(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

fn read_cameras_bin(p: &Path) -> Result<BTreeMap<u32, ColmapCamera>> {
    parse_cameras_bin(&read_bytes(p)?, p)
}

/// Parses COLMAP's `cameras.bin` from memory; `p` names the file in errors.
pub fn parse_cameras_bin(b: &[u8], p: &Path) -> Result<BTreeMap<u32, ColmapCamera>> {
    let mut r = Reader { b, pos: 0, file: p };
    let n = r.count("number of cameras", 24)?;
    let mut out = BTreeMap::new();
    for k in 0..n {
        let id = r.i32("camera id")?;
        let at = || format!("{}: camera record {k} (camera {id})", p.display());
        let model = r.i32("model id")? as i64;
        let (w, h) = (r.u64("width")?, r.u64("height")?);
        let (np, name) =
            model_params(model).with_context(|| format!("{}: unknown camera model id {model}", at()))?;
        let params = (0..np)
            .map(|_| r.f64("camera parameter"))
            .collect::<Result<Vec<_>>>()?;
        ensure!(
            w >= 1 && h >= 1 && w < 1 << 20 && h < 1 << 20,
            "{}: size {w}×{h} is invalid",
            at()
        );
        let cam = ColmapCamera {
            width: w as u32,
            height: h as u32,
            model: model_from(model, name, &params, &at)?,
        };
        ensure!(
            out.insert(id as u32, cam).is_none(),
            "{}: duplicate camera id {id}",
            at()
        );
    }
    Ok(out)
}

fn read_images_bin(p: &Path) -> Result<BTreeMap<u32, ColmapImage>> {
    parse_images_bin(&read_bytes(p)?, p)
}

/// Parses COLMAP's `images.bin` from memory; `p` names the file in errors.
pub fn parse_images_bin(b: &[u8], p: &Path) -> Result<BTreeMap<u32, ColmapImage>> {
    let mut r = Reader { b, pos: 0, file: p };
    let n = r.count("number of images", 64)?;
    let mut out = BTreeMap::new();
    for k in 0..n {
        let at = || format!("{}: image record {k}", p.display());
        let id = r.i32("image id")?;
        let q = [r.f64("qw")?, r.f64("qx")?, r.f64("qy")?, r.f64("qz")?];
        let t = [r.f64("tx")?, r.f64("ty")?, r.f64("tz")?];
        let camera = r.i32("camera id")? as u32;
        let mut name = Vec::new();
        loop {
            let c = r.take(1, "image name")?[0];
            if c == 0 {
                break;
            }
            name.push(c);
        }
        let name = String::from_utf8(name).with_context(|| format!("{}: image name is not UTF-8", at()))?;
        let np = r.count("number of 2D points", 24)?;
        r.take(np * 24, "2D points")?;
        let img = ColmapImage {
            name,
            camera,
            pose: pose_from(q, t, &at)?,
        };
        ensure!(
            out.insert(id as u32, img).is_none(),
            "{}: duplicate image id {id}",
            at()
        );
    }
    Ok(out)
}

fn read_points_bin(p: &Path) -> Result<Vec<ColmapPoint>> {
    parse_points_bin(&read_bytes(p)?, p)
}

/// Parses COLMAP's `points3D.bin` from memory; `p` names the file in errors.
pub fn parse_points_bin(b: &[u8], p: &Path) -> Result<Vec<ColmapPoint>> {
    let mut r = Reader { b, pos: 0, file: p };
    let n = r.count("number of points", 43)?;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let id = r.u64("point id")?;
        let xyz = [r.f64("x")?, r.f64("y")?, r.f64("z")?];
        r.take(3, "colour")?;
        r.f64("error")?;
        let tl = r.count("track length", 8)?;
        let mut images = Vec::with_capacity(tl);
        for _ in 0..tl {
            images.push(r.i32("track image id")? as u32);
            r.i32("track point index")?;
        }
        ensure!(
            xyz.iter().all(|v| v.is_finite()),
            "{}: point record {k} is not finite",
            p.display()
        );
        out.push(ColmapPoint { id, xyz, images });
    }
    Ok(out)
}

fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l))
}

fn nums<T: std::str::FromStr>(p: &Path, line: usize, toks: &[&str], what: &str) -> Result<Vec<T>> {
    toks.iter()
        .map(|t| {
            t.parse::<T>()
                .ok()
                .with_context(|| format!("{}:{line}: {what} '{t}' is not a number", p.display()))
        })
        .collect()
}

fn read_cameras_txt(p: &Path) -> Result<BTreeMap<u32, ColmapCamera>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    parse_cameras_txt(&text, p)
}

/// Parses COLMAP's `cameras.txt` from memory; `p` names the file in errors.
pub fn parse_cameras_txt(text: &str, p: &Path) -> Result<BTreeMap<u32, ColmapCamera>> {
    let mut out = BTreeMap::new();
    for (line, l) in data_lines(text) {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.is_empty() {
            continue;
        }
        ensure!(
            t.len() >= 4,
            "{}:{line}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS…'",
            p.display()
        );
        let id: u32 = nums(p, line, &t[..1], "camera id")?[0];
        let at = || format!("{}:{line}: camera {id}", p.display());
        let wh: Vec<u32> = nums(p, line, &t[2..4], "image size")?;
        let params: Vec<f64> = nums(p, line, &t[4..], "camera parameter")?;
        let cam = ColmapCamera {
            width: wh[0],
            height: wh[1],
            model: model_from(-1, t[1], &params, &at)?,
        };
        ensure!(wh[0] >= 1 && wh[1] >= 1, "{}: image size must be positive", at());
        ensure!(
            out.insert(id, cam).is_none(),
            "{}: duplicate camera id {id}",
            at()
        );
    }
    Ok(out)
}

fn read_images_txt(p: &Path) -> Result<BTreeMap<u32, ColmapImage>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    parse_images_txt(&text, p)
}

/// Parses COLMAP's `images.txt` from memory; `p` names the file in errors.
pub fn parse_images_txt(text: &str, p: &Path) -> Result<BTreeMap<u32, ColmapImage>> {
    let mut out = BTreeMap::new();
    // Records are two lines: the pose line, then the 2D points (may be empty).
    let mut it = data_lines(text);
    while let Some((line, l)) = it.next() {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.is_empty() {
            continue;
        }
        let at = || format!("{}:{line}", p.display());
        ensure!(
            t.len() >= 10,
            "{}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME'",
            at()
        );
        let id: u32 = nums(p, line, &t[..1], "image id")?[0];
        let v: Vec<f64> = nums(p, line, &t[1..8], "pose value")?;
        let camera: u32 = nums(p, line, &t[8..9], "camera id")?[0];
        let name = t[9..].join(" ");
        let _points = it.next();
        let img = ColmapImage {
            name,
            camera,
            pose: pose_from([v[0], v[1], v[2], v[3]], [v[4], v[5], v[6]], &at)?,
        };
        ensure!(out.insert(id, img).is_none(), "{}: duplicate image id {id}", at());
    }
    Ok(out)
}

fn read_points_txt(p: &Path) -> Result<Vec<ColmapPoint>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    parse_points_txt(&text, p)
}

/// Parses COLMAP's `points3D.txt` from memory; `p` names the file in errors.
pub fn parse_points_txt(text: &str, p: &Path) -> Result<Vec<ColmapPoint>> {
    let mut out = Vec::new();
    for (line, l) in data_lines(text) {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.is_empty() {
            continue;
        }
        ensure!(
            t.len() >= 8 && (t.len() - 8).is_multiple_of(2),
            "{}:{line}: expected 'POINT3D_ID X Y Z R G B ERROR (IMAGE_ID POINT2D_IDX)…'",
            p.display()
        );
        let id: u64 = nums(p, line, &t[..1], "point id")?[0];
        let xyz: Vec<f64> = nums(p, line, &t[1..4], "coordinate")?;
        ensure!(
            xyz.iter().all(|v| v.is_finite()),
            "{}:{line}: point is not finite",
            p.display()
        );
        let track: Vec<u32> = nums(p, line, &t[8..], "track entry")?;
        out.push(ColmapPoint {
            id,
            xyz: [xyz[0], xyz[1], xyz[2]],
            images: track.chunks(2).map(|c| c[0]).collect(),
        });
    }
    Ok(out)
}

impl SparseModel {
    /// Reads `DIR/{cameras,images,points3D}.bin`, or the `.txt` files when
    /// the binary ones are absent; checks that every reference resolves.
    pub fn read(dir: &Path) -> Result<Self> {
        let bin = dir.join("cameras.bin").exists();
        let m = if bin {
            Self {
                cameras: read_cameras_bin(&dir.join("cameras.bin"))?,
                images: read_images_bin(&dir.join("images.bin"))?,
                points: read_points_bin(&dir.join("points3D.bin"))?,
            }
        } else if dir.join("cameras.txt").exists() {
            Self {
                cameras: read_cameras_txt(&dir.join("cameras.txt"))?,
                images: read_images_txt(&dir.join("images.txt"))?,
                points: read_points_txt(&dir.join("points3D.txt"))?,
            }
        } else {
            bail!(
                "{}: no cameras.bin or cameras.txt (not a COLMAP sparse model)",
                dir.display()
            );
        };
        let ext = if bin { "bin" } else { "txt" };
        for (id, im) in &m.images {
            ensure!(
                m.cameras.contains_key(&im.camera),
                "{}: image {id} ('{}') uses camera {}, which cameras.{ext} lacks",
                dir.join(format!("images.{ext}")).display(),
                im.name,
                im.camera
            );
        }
        for (k, p) in m.points.iter().enumerate() {
            for i in &p.images {
                ensure!(
                    m.images.contains_key(i),
                    "{}: point record {k} is observed by image {i}, which images.{ext} lacks",
                    dir.join(format!("points3D.{ext}")).display()
                );
            }
        }
        Ok(m)
    }
}
