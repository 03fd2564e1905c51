//! File names of the Indoor6 scene layout, built in one place
//! (`docs/dataset-format.md`):
//!
//! ```text
//! SCENE/images/NAME.color.jpg         NAME.intrinsics.txt  NAME.pose.txt
//! SCENE/images/NAME.depth.png         NAME.VARIANT.depth.png (e.g. filled)
//! SCENE/landmarks/landmarks-N.txt     SCENE/landmarks/visibility-N.txt
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// `SCENE/landmarks`.
pub fn landmarks_dir(scene: &Path) -> PathBuf {
    scene.join("landmarks")
}

/// `SCENE/landmarks/landmarks-N.txt`.
pub fn landmarks_file(scene: &Path, n: usize) -> PathBuf {
    landmarks_dir(scene).join(format!("landmarks-{n}.txt"))
}

/// `SCENE/landmarks/visibility-N.txt`.
pub fn visibility_file(scene: &Path, n: usize) -> PathBuf {
    landmarks_dir(scene).join(format!("visibility-{n}.txt"))
}

/// The visibility file that goes with a landmark file
/// (`…/landmarks-N.txt` → `…/visibility-N.txt`); `None` when the name does
/// not follow the pattern.
pub fn visibility_for(landmarks: &Path) -> Option<PathBuf> {
    let name = landmarks.file_name()?.to_str()?;
    let rest = name.strip_prefix("landmarks-")?;
    Some(landmarks.with_file_name(format!("visibility-{rest}")))
}

/// The scene's only `landmarks/landmarks-N.txt` (the default of `--landmarks`).
pub fn only_landmarks_file(scene: &Path) -> Result<PathBuf> {
    let dir = landmarks_dir(scene);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {} (run `sld landmarks` first)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("landmarks-") && n.ends_with(".txt"))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "{}: no landmarks-N.txt (run `sld landmarks` first)",
            dir.display()
        ),
        _ => bail!(
            "{}: several landmark files; choose one with --landmarks",
            dir.display()
        ),
    }
}

/// `DIR/NAME.color.jpg`.
pub fn color_jpg(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.color.jpg"))
}

/// `DIR/NAME.intrinsics.txt`.
pub fn intrinsics_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.intrinsics.txt"))
}

/// `DIR/NAME.pose.txt`.
pub fn pose_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pose.txt"))
}

/// `DIR/NAME.depth.png`, or `DIR/NAME.VARIANT.depth.png` with a variant.
pub fn depth_file(dir: &Path, name: &str, variant: Option<&str>) -> PathBuf {
    match variant {
        Some(v) => dir.join(format!("{name}.{v}.depth.png")),
        None => dir.join(format!("{name}.depth.png")),
    }
}

/// The Indoor6 sidecar of an image file: `NAME.color.jpg` (or any
/// `NAME.EXT`) → `NAME.intrinsics.txt` in the same directory.
pub fn sidecar_intrinsics(image: &Path) -> PathBuf {
    let name = image.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = name.split(".color.").next().unwrap_or(name);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    image.with_file_name(format!("{stem}.intrinsics.txt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let s = Path::new("scenes/a");
        assert_eq!(
            landmarks_file(s, 300),
            Path::new("scenes/a/landmarks/landmarks-300.txt")
        );
        assert_eq!(
            visibility_for(&landmarks_file(s, 300)).unwrap(),
            visibility_file(s, 300)
        );
        assert_eq!(visibility_for(Path::new("x/mine.txt")), None);
        assert_eq!(
            sidecar_intrinsics(Path::new("i/img-001.color.jpg")),
            Path::new("i/img-001.intrinsics.txt")
        );
        assert_eq!(
            sidecar_intrinsics(Path::new("i/b.png")),
            Path::new("i/b.intrinsics.txt")
        );
        assert_eq!(
            depth_file(Path::new("i"), "a", Some("filled")),
            Path::new("i/a.filled.depth.png")
        );
    }
}
