//! Atomic file writes: a temporary file next to the target (`NAME.tmp~`),
//! written, flushed to disk (`fsync`), then renamed over the target. A
//! crash at any moment leaves either the old file or the new one, never a
//! mixture (a stale `*.tmp~` at worst). Every file the trainer writes goes
//! through here.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The temporary name used for `path`: `path` with `.tmp~` appended to its
/// file name (so `a.png` and `a.npy` never share one).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp~");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically, creating the parent directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_traced(path, bytes, None)
}

/// [`write_atomic`] with a fault-injection point half-way through the
/// temporary file (see [`crate::faults`]).
pub fn write_atomic_traced(path: &Path, bytes: &[u8], phase: Option<&str>) -> Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        let (a, b) = bytes.split_at(bytes.len() / 2);
        f.write_all(a)?;
        if let Some(p) = phase {
            f.flush()?;
            crate::faults::point(p);
        }
        f.write_all(b)?;
        f.sync_all()
    };
    write().with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Encodes `img` as `format` and writes it atomically (as [`write_atomic`]).
pub fn save_image_atomic<P, C>(
    img: &image::ImageBuffer<P, C>,
    path: &Path,
    format: image::ImageFormat,
) -> Result<()>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, format)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    write_atomic(path, &buf.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("sld-atomic-{}", std::process::id()));
        let p = dir.join("sub/a.png");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(temp_path(&p), dir.join("sub/a.png.tmp~"));
        assert!(!temp_path(&p).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
