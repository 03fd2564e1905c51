//! `sld colmap import`: a COLMAP sparse model and its images written in
//! the Indoor6 layout, with the pixel-convention shift and, for camera
//! models Indoor6 cannot hold, resampling to a pinhole.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use sld_core::Camera;

use super::{CameraModel, ColmapCamera, ColmapImage, SparseModel};
use crate::data::indoor6::{self, Intrinsics, Split};
use crate::data::naming;
use crate::data::scene::{write_points, write_sessions, TrackedPoint};

/// Normalised → distorted normalised coordinates of a camera model.
fn distort(model: &CameraModel, x: f64, y: f64) -> (f64, f64) {
    let r2 = x * x + y * y;
    match *model {
        CameraModel::SimplePinhole(_) | CameraModel::Pinhole(_) => (x, y),
        CameraModel::SimpleRadial([_, _, _, k]) => (x * (1.0 + k * r2), y * (1.0 + k * r2)),
        CameraModel::Radial([_, _, _, k1, k2]) => {
            let s = 1.0 + k1 * r2 + k2 * r2 * r2;
            (x * s, y * s)
        }
        CameraModel::OpenCv([_, _, _, _, k1, k2, p1, p2]) => {
            let s = 1.0 + k1 * r2 + k2 * r2 * r2;
            (
                x * s + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
                y * s + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y,
            )
        }
    }
}

/// `(fx, fy, cx, cy)` in COLMAP's pixel convention.
/// The Indoor6 camera for a COLMAP camera (our pixel convention), and
/// whether images must be resampled to it.
pub fn indoor6_camera(c: &ColmapCamera) -> Result<(Camera, bool)> {
    let (fx, fy, cx, cy) = c.model.focal_centre();
    let (cx, cy) = (cx - 0.5, cy - 0.5);
    let same_f = (fx - fy).abs() <= 1e-9 * fx.abs();
    let (kappa, resample) = match c.model {
        CameraModel::SimplePinhole(_) => (0.0, false),
        CameraModel::SimpleRadial([.., k]) => (k, false),
        CameraModel::Pinhole(_) => (0.0, !same_f),
        CameraModel::Radial(_) | CameraModel::OpenCv(_) => (0.0, true),
    };
    let f = 0.5 * (fx + fy);
    Ok((Camera::new(c.width, c.height, f, f, cx, cy, kappa)?, resample))
}

/// Resamples `img` (taken by `c`) to the pinhole `target` (bilinear).
pub fn undistort(img: &image::RgbImage, c: &ColmapCamera, target: &Camera) -> image::RgbImage {
    let (fx, fy, cx, cy) = c.model.focal_centre();
    let (w, h) = (target.width, target.height);
    image::RgbImage::from_fn(w, h, |u, v| {
        let x = (u as f64 - target.cx) / target.fx;
        let y = (v as f64 - target.cy) / target.fy;
        let (xd, yd) = distort(&c.model, x, y);
        // Source pixel in our convention (COLMAP's minus 0.5).
        let (su, sv) = (fx * xd + cx - 0.5, fy * yd + cy - 0.5);
        let (iw, ih) = (img.width() as f64, img.height() as f64);
        if !(su > -0.5 && sv > -0.5 && su < iw - 0.5 && sv < ih - 0.5) {
            return image::Rgb([0, 0, 0]);
        }
        let (su, sv) = (su.clamp(0.0, iw - 1.0), sv.clamp(0.0, ih - 1.0));
        let (x0, y0) = (su.floor() as u32, sv.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(img.width() - 1), (y0 + 1).min(img.height() - 1));
        let (ax, ay) = (su - x0 as f64, sv - y0 as f64);
        let mut out = [0u8; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let p = |x: u32, y: u32| img.get_pixel(x, y)[k] as f64;
            let top = p(x0, y0) * (1.0 - ax) + p(x1, y0) * ax;
            let bot = p(x0, y1) * (1.0 - ax) + p(x1, y1) * ax;
            *o = (top * (1.0 - ay) + bot * ay).round().clamp(0.0, 255.0) as u8;
        }
        image::Rgb(out)
    })
}

/// What `sld colmap import` wrote.
#[derive(Clone, Debug)]
pub struct ImportSummary {
    /// Images written.
    pub images: usize,
    /// Of which resampled to a pinhole.
    pub resampled: usize,
    /// Points written.
    pub points: usize,
}

/// Imports a sparse model and its images into the Indoor6 layout at `out`.
/// Images are named `image-NNNNN` in the order of their COLMAP names; the
/// original name is kept in the intrinsics file. Every `test_every`-th
/// image (if > 0) goes to the test split, the rest to train.
///
/// The scene is built in a temporary sibling folder and renamed to `out`
/// at the end: a failed import leaves nothing behind, and never a
/// half-written scene. A non-empty `out` is refused unless `force`, which
/// replaces it (only once the new scene is complete).
///
/// JPEG images that need no resampling are copied byte for byte (after a
/// strict decode checks them), never re-encoded: re-encoding would turn a
/// damaged file into a clean-looking one.
pub fn import(
    model_dir: &Path,
    image_dir: &Path,
    out: &Path,
    test_every: usize,
    force: bool,
) -> Result<ImportSummary> {
    let non_empty = out.is_dir()
        && std::fs::read_dir(out)
            .with_context(|| format!("cannot list {}", out.display()))?
            .next()
            .is_some();
    ensure!(
        !non_empty || force,
        "{} is not empty; import into a new folder, or pass --force to replace it",
        out.display()
    );
    ensure!(
        !out.exists() || out.is_dir(),
        "{} exists and is not a folder",
        out.display()
    );
    let name = out
        .file_name()
        .with_context(|| format!("{}: not a folder name", out.display()))?;
    let tmp = out.with_file_name(format!(
        ".{}.importing-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = import_into(model_dir, image_dir, &tmp, test_every);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        return result;
    }
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("cannot replace {}", out.display()))?;
    }
    std::fs::rename(&tmp, out)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    result
}

fn import_into(model_dir: &Path, image_dir: &Path, out: &Path, test_every: usize) -> Result<ImportSummary> {
    let m = SparseModel::read(model_dir)?;
    ensure!(
        !m.images.is_empty(),
        "{}: the model has no registered images",
        model_dir.display()
    );
    let mut order: Vec<(&u32, &ColmapImage)> = m.images.iter().collect();
    order.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let index: BTreeMap<u32, usize> = order.iter().enumerate().map(|(k, (id, _))| (**id, k)).collect();
    let dir = out.join("images");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut resampled = 0;
    let mut split = Split::default();
    let mut names = Vec::new();
    for (k, (_, im)) in order.iter().enumerate() {
        let cam = &m.cameras[&im.camera];
        let (target, resample) = indoor6_camera(cam)?;
        let src = image_dir.join(&im.name);
        let bytes = std::fs::read(&src)
            .with_context(|| format!("cannot read {} (image '{}' of the model)", src.display(), im.name))?;
        let rgb = crate::io::image_file::decode_rgb(&bytes)
            .with_context(|| format!("{}: damaged or unsupported image", src.display()))?;
        ensure!(
            rgb.width() == cam.width && rgb.height() == cam.height,
            "{}: image is {}×{} but its COLMAP camera is {}×{}",
            src.display(),
            rgb.width(),
            rgb.height(),
            cam.width,
            cam.height
        );
        let name = format!("image-{k:05}");
        let color = naming::color_jpg(&dir, &name);
        let is_jpeg = crate::io::image_file::sniff(&bytes) == Some(crate::io::image_file::Format::Jpeg);
        if resample {
            resampled += 1;
            let rgb = undistort(&rgb, cam, &target);
            crate::io::atomic::save_image_atomic(&rgb, &color, image::ImageFormat::Jpeg)?;
        } else if is_jpeg {
            // The original bytes: no second lossy encoding, no laundering.
            std::fs::write(&color, &bytes).with_context(|| format!("cannot write {}", color.display()))?;
        } else {
            crate::io::atomic::save_image_atomic(&rgb, &color, image::ImageFormat::Jpeg)?;
        }
        indoor6::write_intrinsics(
            &naming::intrinsics_file(&dir, &name),
            &Intrinsics {
                camera: target,
                original_name: im.name.replace(char::is_whitespace, "_"),
            },
        )?;
        indoor6::write_pose(&naming::pose_file(&dir, &name), &im.pose)?;
        let file = format!("{name}.color.jpg");
        if test_every > 0 && k % test_every == test_every - 1 {
            split.test.push(file);
            split.test_idx.push(k as i64);
        } else {
            split.train.push(file);
            split.train_idx.push(k as i64);
        }
        names.push((name, 0));
    }
    indoor6::write_split(&out.join("train_test_val.pkl"), &split)?;
    write_sessions(&out.join("sessions.txt"), &names)?;
    let points: Vec<TrackedPoint> = m
        .points
        .iter()
        .map(|p| {
            let mut images: Vec<usize> = p.images.iter().filter_map(|i| index.get(i).copied()).collect();
            images.sort_unstable();
            images.dedup();
            TrackedPoint { xyz: p.xyz, images }
        })
        .collect();
    write_points(&out.join("points3d.txt"), &points)?;
    Ok(ImportSummary {
        images: order.len(),
        resampled,
        points: points.len(),
    })
}
