//! Reading and writing depth maps. Formats, chosen by file extension:
//!
//! | extension | content |
//! |---|---|
//! | `.npy` | 2-D `float32` or `float64` (or 3-D with one channel), C or Fortran order |
//! | `.pfm` | Portable Float Map, one channel (`Pf`), either byte order |
//! | `.png` | 16-bit gray, **millimetres** (0 = missing); 8-bit gray read as is |
//! | `.bin` | COLMAP dense map: ASCII `width&height&channels&`, then `f32` little-endian, row-major, one channel |
//!
//! Missing values: 0, negative or NaN on input, NaN in memory; written as
//! NaN (`.npy`, `.pfm`), 0 (`.png`, `.bin`: COLMAP's own convention).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use super::Map;

/// Largest accepted map side, pixels (guards allocations from corrupt headers).
pub const MAX_SIDE: usize = 1 << 15;

fn ext(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn check_size(path: &Path, w: usize, h: usize) -> Result<()> {
    ensure!(
        w > 0 && h > 0 && w <= MAX_SIDE && h <= MAX_SIDE,
        "{}: map size {w}x{h} is out of range (1..={MAX_SIDE} per side)",
        path.display()
    );
    Ok(())
}

/// Marks 0, negative and non-finite values missing (NaN).
fn normalise_missing(mut m: Map) -> Map {
    for v in &mut m.data {
        if !(v.is_finite() && *v > 0.0) {
            *v = f32::NAN;
        }
    }
    m
}

/// Reads a depth or MDE map; see the module table for formats. For depth,
/// missing values become NaN; `keep_zero` keeps zeros and negatives as
/// values (MDE maps may legitimately hold them).
pub fn read_map(path: &Path, keep_zero: bool) -> Result<Map> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_map(&bytes, path, keep_zero)
}

/// Parses a map held in memory (as [`read_map`]); `path` gives the format
/// (its extension) and names the file in errors.
pub fn parse_map(bytes: &[u8], path: &Path, keep_zero: bool) -> Result<Map> {
    let m = match ext(path).as_str() {
        "npy" => read_npy(path, bytes)?,
        "pfm" => read_pfm(path, bytes)?,
        "png" => read_png(path, bytes)?,
        "bin" => read_colmap(path, bytes)?,
        e => bail!(
            "{}: unknown map format '.{e}' (use .npy, .pfm, .png (16-bit mm) or .bin (COLMAP dense))",
            path.display()
        ),
    };
    Ok(if keep_zero {
        Map {
            data: m
                .data
                .into_iter()
                .map(|v| if v.is_finite() { v } else { f32::NAN })
                .collect(),
            ..m
        }
    } else {
        normalise_missing(m)
    })
}

/// Checks an `.npy` header before the Python-literal parser sees it: a
/// simple float array's header is a short dict of plain tokens. Nested
/// brackets (structured dtypes) and long headers are refused, since the
/// parser backtracks exponentially on deep nesting (found by fuzzing).
fn check_npy_header(path: &Path, bytes: &[u8]) -> Result<()> {
    ensure!(
        bytes.len() >= 10 && bytes.starts_with(b"\x93NUMPY"),
        "{}: not a .npy file (no \\x93NUMPY magic)",
        path.display()
    );
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!("{}: unsupported .npy version {v}", path.display()),
    };
    ensure!(
        len <= 4096 && start + len <= bytes.len(),
        "{}: .npy header of {len} bytes is truncated or too long",
        path.display()
    );
    let header = &bytes[start..start + len];
    ensure!(
        header
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b" \t\n\r{}():,'\"<>|=_.-".contains(&c)),
        "{}: .npy header is not a plain float-array header (structured dtypes are not supported)",
        path.display()
    );
    // The shape, checked here because npyz multiplies its dimensions
    // without overflow checks (found by fuzzing).
    let text = String::from_utf8_lossy(header);
    let dims = text
        .split_once("'shape'")
        .or_else(|| text.split_once("\"shape\""))
        .and_then(|(_, rest)| rest.split_once('(')?.1.split_once(')'))
        .map(|(inside, _)| {
            inside
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| t.parse::<usize>().ok().filter(|&d| d <= MAX_SIDE))
                .collect::<Option<Vec<usize>>>()
        });
    match dims {
        Some(Some(d)) if (1..=3).contains(&d.len()) => Ok(()),
        _ => bail!(
            "{}: .npy shape is missing, not 1 to 3 sizes, or has a side over {MAX_SIDE}",
            path.display()
        ),
    }
}

fn read_npy(path: &Path, bytes: &[u8]) -> Result<Map> {
    check_npy_header(path, bytes)?;
    let npy =
        npyz::NpyFile::new(bytes).with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let (h, w) = match shape.as_slice() {
        [h, w] | [h, w, 1] | [1, h, w] => (*h, *w),
        s => bail!("{}: expected a 2-D map (H, W), found shape {s:?}", path.display()),
    };
    check_size(path, w, h)?;
    let fortran = npy.order() == npyz::Order::Fortran;
    let descr = npy.dtype().descr();
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    // The header's shape must be backed by data before anything is
    // allocated for it (a corrupt header must not ask for gigabytes).
    let item = if descr.ends_with("f8") { 8 } else { 4 };
    ensure!(
        w * h * item <= bytes.len(),
        "{}: header says {h}x{w} values, the file holds only {} bytes",
        path.display(),
        bytes.len()
    );
    let data: Vec<f32> = if descr.ends_with("f4") {
        npy.into_vec::<f32>()
            .with_context(|| format!("{}: cannot read float32 data", path.display()))?
    } else if descr.ends_with("f8") {
        npy.into_vec::<f64>()
            .with_context(|| format!("{}: cannot read float64 data", path.display()))?
            .into_iter()
            .map(|v| v as f32)
            .collect()
    } else {
        bail!("{}: dtype {descr} is not float32 or float64", path.display());
    };
    ensure!(
        data.len() == w * h,
        "{}: {} values for a {w}x{h} map",
        path.display(),
        data.len()
    );
    let data = if fortran {
        // Column-major (x slowest) → row-major.
        let mut out = vec![0.0; w * h];
        for x in 0..w {
            for y in 0..h {
                out[y * w + x] = data[x * h + y];
            }
        }
        out
    } else {
        data
    };
    Ok(Map {
        width: w,
        height: h,
        data,
    })
}

fn read_pfm(path: &Path, bytes: &[u8]) -> Result<Map> {
    // Header: "Pf" WS width WS height WS scale WS(single) data.
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        ensure!(
            pos > start && pos < bytes.len(),
            "{}: truncated PFM header",
            path.display()
        );
        fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
    }
    pos += 1; // the single whitespace byte after the scale
    match fields[0].as_str() {
        "Pf" => {}
        "PF" => bail!(
            "{}: colour PFM (PF); a depth map has one channel (Pf)",
            path.display()
        ),
        m => bail!("{}: not a PFM file (magic '{m}')", path.display()),
    }
    let parse = |s: &str, what: &str| -> Result<usize> {
        s.parse()
            .with_context(|| format!("{}: bad PFM {what} '{s}'", path.display()))
    };
    let (w, h) = (parse(&fields[1], "width")?, parse(&fields[2], "height")?);
    check_size(path, w, h)?;
    let scale: f32 = fields[3]
        .parse()
        .with_context(|| format!("{}: bad PFM scale '{}'", path.display(), fields[3]))?;
    ensure!(
        scale != 0.0 && scale.is_finite(),
        "{}: PFM scale must be non-zero",
        path.display()
    );
    let little = scale < 0.0;
    let need = w * h * 4;
    let data = &bytes[pos.min(bytes.len())..];
    ensure!(
        data.len() >= need,
        "{}: PFM holds {} data bytes, {w}x{h} needs {need}",
        path.display(),
        data.len()
    );
    // PFM rows run bottom to top.
    let mut out = vec![0.0f32; w * h];
    for (k, c) in data[..need].chunks_exact(4).enumerate() {
        let b = [c[0], c[1], c[2], c[3]];
        let v = if little {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        };
        let (row, x) = (k / w, k % w);
        out[(h - 1 - row) * w + x] = v;
    }
    Ok(Map {
        width: w,
        height: h,
        data: out,
    })
}

fn read_png(path: &Path, bytes: &[u8]) -> Result<Map> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .with_context(|| format!("{}: not a readable PNG", path.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    check_size(path, w, h)?;
    let data = match img {
        image::DynamicImage::ImageLuma16(g) => g.into_raw().into_iter().map(|v| v as f32 / 1000.0).collect(),
        image::DynamicImage::ImageLuma8(g) => g.into_raw().into_iter().map(|v| v as f32).collect(),
        other => bail!(
            "{}: a depth PNG must be single-channel (16-bit millimetres), found {:?}",
            path.display(),
            other.color()
        ),
    };
    Ok(Map {
        width: w,
        height: h,
        data,
    })
}

fn read_colmap(path: &Path, bytes: &[u8]) -> Result<Map> {
    // "width&height&channels&" then f32 LE; COLMAP stores channel planes,
    // each row-major (its reader reshapes (W, H, C) in Fortran order).
    let mut nums = [0usize; 3];
    let mut pos = 0;
    for n in &mut nums {
        let start = pos;
        while pos < bytes.len() && pos - start < 12 && bytes[pos] != b'&' {
            pos += 1;
        }
        ensure!(
            pos < bytes.len() && bytes[pos] == b'&',
            "{}: not a COLMAP dense map (expected 'width&height&channels&')",
            path.display()
        );
        let s = std::str::from_utf8(&bytes[start..pos]).unwrap_or("");
        *n = s
            .trim()
            .parse()
            .with_context(|| format!("{}: bad COLMAP header field '{s}'", path.display()))?;
        pos += 1;
    }
    let [w, h, c] = nums;
    check_size(path, w, h)?;
    ensure!(c == 1, "{}: {c} channels; a depth map has 1", path.display());
    let need = w * h * 4;
    ensure!(
        bytes.len() - pos >= need,
        "{}: holds {} data bytes, {w}x{h} needs {need}",
        path.display(),
        bytes.len() - pos
    );
    let data = bytes[pos..pos + need]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Map {
        width: w,
        height: h,
        data,
    })
}

/// Writes `map` in the format of `path`'s extension, atomically (a
/// temporary file renamed into place).
pub fn write_map(path: &Path, map: &Map) -> Result<()> {
    let e = ext(path);
    let mut buf = Vec::new();
    match e.as_str() {
        "npy" => {
            use npyz::WriterBuilder;
            let mut w = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&[map.height as u64, map.width as u64])
                .writer(&mut buf)
                .begin_nd()?;
            w.extend(map.data.iter().copied())?;
            w.finish()?;
        }
        "pfm" => {
            write!(buf, "Pf\n{} {}\n-1.0\n", map.width, map.height)?;
            for row in map.data.chunks_exact(map.width).rev() {
                for v in row {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        "bin" => {
            write!(buf, "{}&{}&1&", map.width, map.height)?;
            for v in &map.data {
                let v = if v.is_finite() { *v } else { 0.0 };
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        "png" => {
            let px: Vec<u16> = map
                .data
                .iter()
                .map(|&v| {
                    if v.is_finite() && v > 0.0 {
                        (v * 1000.0).round().clamp(1.0, 65535.0) as u16
                    } else {
                        0
                    }
                })
                .collect();
            let img =
                image::ImageBuffer::<image::Luma<u16>, _>::from_raw(map.width as u32, map.height as u32, px)
                    .context("map size")?;
            img.write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)?;
        }
        _ => bail!(
            "{}: unknown map format '.{e}' (use .npy, .pfm, .png or .bin)",
            path.display()
        ),
    }
    let tmp = path.with_extension(format!("{e}.tmp"));
    std::fs::write(&tmp, &buf).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a colourised preview PNG (near = yellow, far = purple; missing =
/// black) with the colour range from the 2nd to the 98th percentile.
pub fn write_preview(path: &Path, map: &Map) -> Result<()> {
    let mut vals: Vec<f32> = map.data.iter().copied().filter(|v| v.is_finite()).collect();
    vals.sort_by(f32::total_cmp);
    let (lo, hi) = if vals.is_empty() {
        (0.0, 1.0)
    } else {
        let q = |p: f64| vals[((vals.len() - 1) as f64 * p) as usize];
        (q(0.02), q(0.98).max(q(0.02) + 1e-6))
    };
    let mut img = image::RgbImage::new(map.width as u32, map.height as u32);
    for (i, &v) in map.data.iter().enumerate() {
        let px = if v.is_finite() {
            let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
            colormap(1.0 - t)
        } else {
            [0, 0, 0]
        };
        img.put_pixel((i % map.width) as u32, (i / map.width) as u32, image::Rgb(px));
    }
    let tmp = path.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// A small perceptual ramp (dark purple → teal → yellow) for `t ∈ [0, 1]`.
fn colormap(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let s = t * 4.0;
    let i = (s.floor() as usize).min(3);
    let f = s - i as f32;
    let mut out = [0u8; 3];
    for c in 0..3 {
        out[c] = (STOPS[i][c] * (1.0 - f) + STOPS[i + 1][c] * f).round() as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Map {
        let mut m = Map::filled(7, 5, 0.0);
        for (i, v) in m.data.iter_mut().enumerate() {
            *v = 0.5 + i as f32 * 0.125;
        }
        m.data[3] = f32::NAN;
        m
    }

    #[test]
    fn every_format_round_trips() {
        let dir = std::env::temp_dir().join(format!("sld-depth-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = sample();
        for e in ["npy", "pfm", "bin", "png"] {
            let p = dir.join(format!("m.{e}"));
            write_map(&p, &m).unwrap();
            let r = read_map(&p, false).unwrap();
            assert_eq!((r.width, r.height), (7, 5), "{e}");
            for (a, b) in m.data.iter().zip(&r.data) {
                let tol = if e == "png" { 5e-4 } else { 0.0 };
                assert!(
                    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol,
                    "{e}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn colmap_layout_and_bad_headers() {
        let dir = std::env::temp_dir().join(format!("sld-depth-colmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 3 wide, 2 high: row-major values 1..6 as COLMAP's writer lays them out.
        let mut b = b"3&2&1&".to_vec();
        for v in 1..=6 {
            b.extend_from_slice(&(v as f32).to_le_bytes());
        }
        let p = dir.join("d.bin");
        std::fs::write(&p, &b).unwrap();
        let m = read_map(&p, false).unwrap();
        assert_eq!(m.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        std::fs::write(&p, &b[..b.len() - 3]).unwrap();
        assert!(format!("{:#}", read_map(&p, false).unwrap_err()).contains("needs 24"));
        std::fs::write(&p, b"99999999&1&1&").unwrap();
        assert!(format!("{:#}", read_map(&p, false).unwrap_err()).contains("out of range"));
        std::fs::write(&p, b"3&2&3&").unwrap();
        assert!(format!("{:#}", read_map(&p, false).unwrap_err()).contains("channels"));
        std::fs::write(&p, b"garbage").unwrap();
        assert!(read_map(&p, false).is_err());
    }
}
