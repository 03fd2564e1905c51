//! A whole scene directory: the Indoor6 files plus sld's additions
//! (`docs/dataset-format.md`):
//!
//! ```text
//! SCENE/images/NAME.depth.png   metric depth, 16-bit PNG, millimetres, 0 = unknown
//! SCENE/points3d.txt            "id x y z n i1 … in": point (metres) and the global indices of the images observing it
//! SCENE/sessions.txt            "NAME session" per image (recording session, for landmark scores)
//! ```
//!
//! Image global indices are the positions of the images in name order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use sld_core::{Camera, Pose};

use super::depth_map::{self, DepthMap};
use super::indoor6::{self, Split};
use super::naming;
use crate::io::atomic::write_atomic;

/// One image of a scene.
#[derive(Clone, Debug)]
pub struct SceneImage {
    /// Name without suffix (`image-00012`).
    pub name: String,
    /// Path of the colour image.
    pub color: PathBuf,
    /// Intrinsics (pixels).
    pub camera: Camera,
    /// World-to-camera pose (metres).
    pub pose: Pose,
    /// Recording session (0 when the scene has no `sessions.txt`).
    pub session: usize,
}

impl SceneImage {
    /// Reads the colour image as RGB8, checking its size against the intrinsics.
    pub fn read_rgb(&self) -> Result<image::RgbImage> {
        let rgb = crate::io::image_file::read_rgb(&self.color)?;
        ensure!(
            rgb.width() == self.camera.width && rgb.height() == self.camera.height,
            "{}: image is {}×{} but its intrinsics say {}×{}",
            self.color.display(),
            rgb.width(),
            rgb.height(),
            self.camera.width,
            self.camera.height
        );
        Ok(rgb)
    }

    /// The camera scaled to a `width × height` network input (the
    /// `Localizer`'s resize rule).
    pub fn network_camera(&self, width: u32, height: u32) -> Result<Camera> {
        let c = &self.camera;
        Ok(c.scaled(
            width as f64 / c.width as f64,
            height as f64 / c.height as f64,
            width,
            height,
        )?)
    }
}

/// Borrows an RGB8 buffer as an sld-core image.
pub fn as_image(rgb: &image::RgbImage) -> Result<sld_core::Image<'_>> {
    sld_core::Image::new(
        rgb.width(),
        rgb.height(),
        rgb.width() as usize * 3,
        sld_core::PixelFormat::Rgb8,
        rgb.as_raw(),
    )
    .map_err(|e| anyhow::anyhow!("image: {e}"))
}

/// A scene directory, read.
#[derive(Clone, Debug)]
pub struct SceneDir {
    /// The scene root.
    pub root: PathBuf,
    /// All images in global index order (name order).
    pub images: Vec<SceneImage>,
    /// The split (global indices), if `train_test_val.pkl` exists.
    pub split: Option<Split>,
    /// Which depth maps [`SceneDir::depth`] reads: `None` →
    /// `NAME.depth.png`; `Some(v)` → `NAME.v.depth.png` (e.g. `filled`, as
    /// written by `sld depth fill`), required for every image.
    pub depth_variant: Option<String>,
}

impl SceneDir {
    /// Reads the image list, intrinsics, poses, sessions and split.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("images");
        let mut names: Vec<(String, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let p = e?.path();
            let file = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
            for suffix in [".color.jpg", ".color.png"] {
                if let Some(stem) = file.strip_suffix(suffix) {
                    names.push((stem.to_string(), p.clone()));
                }
            }
        }
        ensure!(
            !names.is_empty(),
            "{}: no NAME.color.jpg or NAME.color.png images",
            dir.display()
        );
        names.sort();
        for w in names.windows(2) {
            ensure!(
                w[0].0 != w[1].0,
                "{}: both a .jpg and a .png for {}",
                dir.display(),
                w[0].0
            );
        }
        let sessions = read_sessions(&root.join("sessions.txt"))?;
        let mut images = Vec::with_capacity(names.len());
        for (name, color) in names {
            let intr = indoor6::read_intrinsics(&naming::intrinsics_file(&dir, &name))?;
            let pose = indoor6::read_pose(&naming::pose_file(&dir, &name))?;
            let session = sessions
                .as_ref()
                .map(|s| {
                    s.iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, k)| *k)
                        .with_context(|| {
                            format!(
                                "{}: no session for image {name}",
                                root.join("sessions.txt").display()
                            )
                        })
                })
                .transpose()?
                .unwrap_or(0);
            images.push(SceneImage {
                name,
                color,
                camera: intr.camera,
                pose,
                session,
            });
        }
        let split_path = root.join("train_test_val.pkl");
        let split = if split_path.exists() {
            let s = indoor6::read_split(&split_path)?;
            for (what, idx) in [
                ("train_idx", &s.train_idx),
                ("val_idx", &s.val_idx),
                ("test_idx", &s.test_idx),
            ] {
                for &i in idx {
                    ensure!(
                        i >= 0 && (i as usize) < images.len(),
                        "{}: {what} holds {i}, but the scene has {} images",
                        split_path.display(),
                        images.len()
                    );
                }
            }
            Some(s)
        } else {
            None
        };
        Ok(Self {
            root: root.to_path_buf(),
            images,
            split,
            depth_variant: None,
        })
    }

    /// Global indices of a split part (`train`, `val`, `test`); without a
    /// split file, `train` is every image and the others are empty.
    pub fn part(&self, which: &str) -> Result<Vec<usize>> {
        let Some(s) = &self.split else {
            return Ok(if which == "train" {
                (0..self.images.len()).collect()
            } else {
                Vec::new()
            });
        };
        let idx = match which {
            "train" => &s.train_idx,
            "val" => &s.val_idx,
            "test" => &s.test_idx,
            _ => bail!("unknown split part '{which}' (train, val or test)"),
        };
        Ok(idx.iter().map(|&i| i as usize).collect())
    }

    /// Number of distinct sessions.
    pub fn sessions(&self) -> usize {
        self.images.iter().map(|i| i.session + 1).max().unwrap_or(1)
    }

    /// The depth map of image `i`, if `NAME.depth.png` exists; with a
    /// [`SceneDir::depth_variant`] `v`, `NAME.v.depth.png`, which must exist.
    pub fn depth(&self, i: usize) -> Result<Option<DepthMap>> {
        let name = &self.images[i].name;
        let p = naming::depth_file(&self.root.join("images"), name, self.depth_variant.as_deref());
        if !p.exists() {
            ensure!(
                self.depth_variant.is_none(),
                "{} is missing: --depth-variant needs one for every image (sld depth fill --out it)",
                p.display()
            );
            return Ok(None);
        }
        depth_map::read_png(&p).map(Some)
    }

    /// The scene's point cloud (`points3d.txt`).
    pub fn points(&self) -> Result<Vec<TrackedPoint>> {
        read_points(&self.root.join("points3d.txt"), self.images.len())
    }
}

/// Reads `sessions.txt` (`NAME session` per line); `None` if absent.
pub fn read_sessions(path: &Path) -> Result<Option<Vec<(String, usize)>>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || t[0].starts_with('#') {
            continue;
        }
        ensure!(
            t.len() == 2,
            "{}:{}: expected 'NAME session'",
            path.display(),
            i + 1
        );
        let s: usize = t[1].parse().with_context(|| {
            format!(
                "{}:{}: session '{}' is not a non-negative integer",
                path.display(),
                i + 1,
                t[1]
            )
        })?;
        out.push((t[0].to_string(), s));
    }
    Ok(Some(out))
}

/// Writes `sessions.txt`.
pub fn write_sessions(path: &Path, sessions: &[(String, usize)]) -> Result<()> {
    let mut s = String::from("# NAME session\n");
    for (n, k) in sessions {
        let _ = writeln!(s, "{n} {k}");
    }
    write_atomic(path, s.as_bytes())
}

/// Reads `points3d.txt`; every image index must be `< num_images`.
pub fn read_points(path: &Path, num_images: usize) -> Result<Vec<TrackedPoint>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut pts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let t: Vec<&str> = line.split_whitespace().collect();
        ensure!(t.len() >= 5, "{}: expected 'id x y z n i1 … in'", at());
        let mut xyz = [0.0; 3];
        for k in 0..3 {
            xyz[k] = t[k + 1]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .with_context(|| format!("{}: coordinate '{}' is not a finite number", at(), t[k + 1]))?;
        }
        let n: usize = t[4]
            .parse()
            .with_context(|| format!("{}: track length '{}' is not an integer", at(), t[4]))?;
        ensure!(
            t.len() == 5 + n,
            "{}: track length {n} but {} image indices",
            at(),
            t.len() - 5
        );
        let images = t[5..]
            .iter()
            .map(|s| {
                s.parse::<usize>()
                    .ok()
                    .filter(|&j| j < num_images)
                    .with_context(|| format!("{}: image index '{s}' is not in 0..{num_images}", at()))
            })
            .collect::<Result<Vec<_>>>()?;
        pts.push(TrackedPoint { xyz, images });
    }
    Ok(pts)
}

/// Writes `points3d.txt`.
pub fn write_points(path: &Path, pts: &[TrackedPoint]) -> Result<()> {
    let mut s = String::from("# id x y z track_length image_index...\n");
    for (i, p) in pts.iter().enumerate() {
        let _ = write!(
            s,
            "{i} {:.5} {:.5} {:.5} {}",
            p.xyz[0],
            p.xyz[1],
            p.xyz[2],
            p.images.len()
        );
        for j in &p.images {
            let _ = write!(s, " {j}");
        }
        s.push('\n');
    }
    write_atomic(path, s.as_bytes())
}

/// One 3D point with the images that observe it.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackedPoint {
    /// World position, metres.
    pub xyz: [f64; 3],
    /// Indices of the observing images (into the pose and session lists).
    pub images: Vec<usize>,
}
