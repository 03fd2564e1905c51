//! Metric depth maps and their 16-bit PNG codec (millimetres), the one
//! type behind scene depth (`NAME.depth.png`), visibility labels and depth
//! fill.
//!
//! Units: `z` along the optical axis in metres; pixel `(x, y)` = column,
//! row. Unknown depth is 0 or non-finite in memory (readers produce NaN
//! or 0; every test uses [`DepthMap::known`]) and 0 in a PNG.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Largest depth a 16-bit millimetre PNG holds, metres (65 535 mm).
pub const PNG_MAX_M: f32 = 65.535;

/// A dense `f32` map, row-major; for depth, metres with 0 or NaN = unknown.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthMap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Values, `width × height`, row-major.
    pub data: Vec<f32>,
}

impl DepthMap {
    /// A map filled with `v`.
    pub fn filled(width: usize, height: usize, v: f32) -> Self {
        Self {
            width,
            height,
            data: vec![v; width * height],
        }
    }

    /// True where a depth is known (finite and > 0).
    pub fn known(&self, i: usize) -> bool {
        self.data.get(i).is_some_and(|d| d.is_finite() && *d > 0.0)
    }

    /// Number of known pixels.
    pub fn count_known(&self) -> usize {
        (0..self.data.len()).filter(|&i| self.known(i)).count()
    }

    /// Depth at the pixel nearest to `(u, v)` (pixel-centre convention), if known.
    pub fn at(&self, u: f64, v: f64) -> Option<f64> {
        let (x, y) = (u.round(), v.round());
        if x < 0.0 || y < 0.0 || x >= self.width as f64 || y >= self.height as f64 {
            return None;
        }
        let d = *self.data.get(y as usize * self.width + x as usize)? as f64;
        (d.is_finite() && d > 0.0).then_some(d)
    }
}

/// Encodes `map` as a 16-bit grey PNG in millimetres. Unknown depths, and
/// depths at or beyond [`PNG_MAX_M`] (which the format cannot hold), are
/// written as 0 = unknown: never clamped to a wrong value.
pub fn encode_png(map: &DepthMap) -> Result<Vec<u8>> {
    let mm: Vec<u16> = map
        .data
        .iter()
        .map(|&z| {
            let v = (z * 1000.0).round();
            if z.is_finite() && z > 0.0 && (1.0..=65535.0).contains(&v) {
                v as u16
            } else {
                0
            }
        })
        .collect();
    let img = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(map.width as u32, map.height as u32, mm)
        .context("depth map size does not match its data")?;
    let mut buf = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
        .context("encoding a depth PNG")?;
    Ok(buf)
}

/// Decodes a 16-bit grey PNG in millimetres into metres, 0 = unknown.
/// Any other pixel format (8-bit, colour) is refused: it cannot hold
/// millimetres. `path` names the file in errors.
pub fn decode_png(bytes: &[u8], path: &Path) -> Result<DepthMap> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .with_context(|| format!("{}: not a readable PNG", path.display()))?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let data = match img {
        image::DynamicImage::ImageLuma16(g) => g.into_raw().into_iter().map(|v| v as f32 / 1000.0).collect(),
        other => bail!(
            "{}: a depth PNG must be single-channel 16-bit (millimetres), found {:?}",
            path.display(),
            other.color()
        ),
    };
    Ok(DepthMap { width, height, data })
}

/// Writes `map` as a depth PNG ([`encode_png`]) atomically.
pub fn write_png(path: &Path, map: &DepthMap) -> Result<()> {
    crate::io::atomic::write_atomic(path, &encode_png(map)?)
}

/// Reads a depth PNG ([`decode_png`]).
pub fn read_png(path: &Path) -> Result<DepthMap> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read depth map {}", path.display()))?;
    decode_png(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Millimetre rounding round-trips; unknown and out-of-range depths come
    /// back as 0 (unknown), never as a clamped 65.535 m.
    #[test]
    fn png_round_trip_and_out_of_range_is_unknown() {
        let m = DepthMap {
            width: 3,
            height: 2,
            data: vec![1.2344, 0.0, f32::NAN, 65.535, 65.6, 1e9],
        };
        let back = decode_png(&encode_png(&m).unwrap(), Path::new("t.png")).unwrap();
        assert_eq!((back.width, back.height), (3, 2));
        assert!((back.data[0] - 1.234).abs() < 1e-6);
        assert_eq!(back.data[1], 0.0);
        assert_eq!(back.data[2], 0.0);
        assert!((back.data[3] - 65.535).abs() < 1e-6);
        assert_eq!(back.data[4], 0.0, "beyond the range must read as unknown");
        assert_eq!(back.data[5], 0.0);
        assert_eq!(back.at(0.0, 0.0), Some(back.data[0] as f64));
        assert_eq!(back.at(1.0, 0.0), None);
        assert_eq!(back.at(1.0, 1.0), None);
    }

    #[test]
    fn eight_bit_and_colour_pngs_are_refused() {
        let mut buf = Vec::new();
        image::GrayImage::new(2, 2)
            .write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
            .unwrap();
        let e = decode_png(&buf, Path::new("d.png")).unwrap_err();
        assert!(format!("{e:#}").contains("16-bit"), "{e:#}");
        assert!(decode_png(b"not a png", Path::new("d.png")).is_err());
    }
}
