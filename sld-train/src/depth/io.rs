//! Reading and writing depth maps. Formats, chosen by file extension:
//!
//! | extension | content |
//! |---|---|
//! | `.npy` | 2-D `float32` or `float64` (or 3-D with one channel), C or Fortran order |
//! | `.pfm` | Portable Float DepthMap, one channel (`Pf`), either byte order |
//! | `.png` | 16-bit gray, **millimetres** (0 = missing; [`crate::data::depth_map`]); an MDE map may also be 8-bit gray, read as is |
//! | `.bin` | COLMAP dense map: ASCII `width&height&channels&`, then `f32` little-endian, row-major, one channel |
//!
//! Missing values: 0, negative or NaN on input, NaN in memory; written as
//! NaN (`.npy`, `.pfm`), 0 (`.png`, `.bin`: COLMAP's own convention). A
//! `.png` cannot hold 65.535 m or more: such depths are written as missing.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use crate::data::depth_map::DepthMap;

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
fn normalise_missing(mut m: DepthMap) -> DepthMap {
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
pub fn read_map(path: &Path, keep_zero: bool) -> Result<DepthMap> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_map(&bytes, path, keep_zero)
}

/// Parses a map held in memory (as [`read_map`]); `path` gives the format
/// (its extension) and names the file in errors.
pub fn parse_map(bytes: &[u8], path: &Path, keep_zero: bool) -> Result<DepthMap> {
    let m = match ext(path).as_str() {
        "npy" => read_npy(path, bytes)?,
        "pfm" => read_pfm(path, bytes)?,
        "png" => read_png(path, bytes, keep_zero)?,
        "bin" => read_colmap(path, bytes)?,
        e => bail!(
            "{}: unknown map format '.{e}' (use .npy, .pfm, .png (16-bit mm) or .bin (COLMAP dense))",
            path.display()
        ),
    };
    Ok(if keep_zero {
        DepthMap {
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

/// The three fields of an `.npy` header that matter here.
struct NpyHeader {
    /// Bytes per value (4 or 8).
    item: usize,
    /// Values stored big-endian.
    big_endian: bool,
    /// Column-major data.
    fortran: bool,
    /// The shape.
    shape: Vec<usize>,
    /// Offset of the data.
    data_start: usize,
}

/// Parses an `.npy` header ourselves, strictly: a simple float array's
/// header is one flat dict `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (H, W), }`. No Python-literal parser sees untrusted text (npyz's
/// backtracks exponentially on nested brackets and multiplies shapes
/// without overflow checks: both found by fuzzing).
fn parse_npy_header(path: &Path, bytes: &[u8]) -> Result<NpyHeader> {
    let bad = |what: &str| anyhow::anyhow!("{}: not a valid .npy file ({what})", path.display());
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        return Err(bad("no \\x93NUMPY magic"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!("{}: unsupported .npy version {v}", path.display()),
    };
    if len > 4096 || start + len > bytes.len() {
        return Err(bad("header truncated or longer than 4 KiB"));
    }
    let text = std::str::from_utf8(&bytes[start..start + len]).map_err(|_| bad("header is not text"))?;
    let body = text.trim();
    let body = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or_else(|| bad("header is not a dict"))?;
    if body.contains(['{', '}', '[', ']']) || body.matches('(').count() != 1 || body.matches(')').count() != 1
    {
        return Err(bad("header is not a flat dict of a plain float array"));
    }
    // Value of `key`: the text after `'key':` (or `"key":`) up to the end
    // of its token.
    let value = |key: &str| -> Option<&str> {
        let at = body
            .find(&format!("'{key}'"))
            .or_else(|| body.find(&format!("\"{key}\"")))?;
        let rest = body[at + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        Some(rest)
    };
    let descr = value("descr").ok_or_else(|| bad("no 'descr'"))?;
    let quote = descr
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| bad("bad 'descr'"))?;
    let descr = descr[1..].split(quote).next().unwrap_or("");
    let (big_endian, item) = match descr {
        "<f4" | "=f4" | "|f4" | "f4" => (false, 4),
        ">f4" => (true, 4),
        "<f8" | "=f8" | "|f8" | "f8" => (false, 8),
        ">f8" => (true, 8),
        d => bail!("{}: dtype {d} is not float32 or float64", path.display()),
    };
    let fortran = match value("fortran_order") {
        Some(v) if v.starts_with("True") => true,
        Some(v) if v.starts_with("False") => false,
        _ => return Err(bad("no 'fortran_order'")),
    };
    let shape = value("shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| bad("no 'shape'"))?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<usize>().ok().filter(|&d| d <= MAX_SIDE))
        .collect::<Option<Vec<usize>>>()
        .filter(|d| (1..=3).contains(&d.len()))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: .npy shape is not 1 to 3 sizes of at most {MAX_SIDE}",
                path.display()
            )
        })?;
    Ok(NpyHeader {
        item,
        big_endian,
        fortran,
        shape,
        data_start: start + len,
    })
}

fn read_npy(path: &Path, bytes: &[u8]) -> Result<DepthMap> {
    let h = parse_npy_header(path, bytes)?;
    let (rows, cols) = match h.shape.as_slice() {
        [r, c] | [r, c, 1] | [1, r, c] => (*r, *c),
        s => bail!("{}: expected a 2-D map (H, W), found shape {s:?}", path.display()),
    };
    check_size(path, cols, rows)?;
    let (w, hgt) = (cols, rows);
    let need = w * hgt * h.item;
    let data = &bytes[h.data_start..];
    ensure!(
        data.len() >= need,
        "{}: cannot read {} data: {w}x{hgt} needs {need} bytes, the file holds {}",
        path.display(),
        if h.item == 4 { "float32" } else { "float64" },
        data.len()
    );
    let values: Vec<f32> = data[..need]
        .chunks_exact(h.item)
        .map(|c| match (h.item, h.big_endian) {
            (4, false) => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            (4, true) => f32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            (_, false) => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32,
            (_, true) => f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32,
        })
        .collect();
    let data = if h.fortran {
        // Column-major (x slowest) → row-major.
        let mut out = vec![0.0; w * hgt];
        for x in 0..w {
            for y in 0..hgt {
                out[y * w + x] = values[x * hgt + y];
            }
        }
        out
    } else {
        values
    };
    Ok(DepthMap {
        width: w,
        height: hgt,
        data,
    })
}

fn read_pfm(path: &Path, bytes: &[u8]) -> Result<DepthMap> {
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
    Ok(DepthMap {
        width: w,
        height: h,
        data: out,
    })
}

fn read_png(path: &Path, bytes: &[u8], keep_zero: bool) -> Result<DepthMap> {
    // An MDE map may come as 8-bit grey: its values are read as they are.
    if keep_zero {
        if let Ok(image::DynamicImage::ImageLuma8(g)) =
            image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        {
            let (w, h) = (g.width() as usize, g.height() as usize);
            check_size(path, w, h)?;
            return Ok(DepthMap {
                width: w,
                height: h,
                data: g.into_raw().into_iter().map(f32::from).collect(),
            });
        }
    }
    let m = crate::data::depth_map::decode_png(bytes, path)?;
    check_size(path, m.width, m.height)?;
    Ok(m)
}

fn read_colmap(path: &Path, bytes: &[u8]) -> Result<DepthMap> {
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
    Ok(DepthMap {
        width: w,
        height: h,
        data,
    })
}

/// Writes `map` in the format of `path`'s extension, atomically (a
/// temporary file renamed into place).
pub fn write_map(path: &Path, map: &DepthMap) -> Result<()> {
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
        "png" => buf = crate::data::depth_map::encode_png(map)?,
        _ => bail!(
            "{}: unknown map format '.{e}' (use .npy, .pfm, .png or .bin)",
            path.display()
        ),
    }
    crate::io::atomic::write_atomic(path, &buf)
}

/// Writes a colourised preview PNG (near = yellow, far = purple; missing =
/// black) with the colour range from the 2nd to the 98th percentile.
pub fn write_preview(path: &Path, map: &DepthMap) -> Result<()> {
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
    crate::io::atomic::save_image_atomic(&img, path, image::ImageFormat::Png)
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

    fn sample() -> DepthMap {
        let mut m = DepthMap::filled(7, 5, 0.0);
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

    /// `.npy` variants numpy writes: float64, big-endian, Fortran order,
    /// a trailing unit axis. Values 1..6 of a 2×3 map.
    #[test]
    fn npy_variants_read_the_same_map() {
        let file = |descr: &str, fortran: bool, shape: &str, payload: Vec<u8>| {
            let mut h = format!(
                "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
                if fortran { "True" } else { "False" }
            );
            while (10 + h.len() + 1) % 64 != 0 {
                h.push(' ');
            }
            h.push('\n');
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend((h.len() as u16).to_le_bytes());
            b.extend(h.as_bytes());
            b.extend(payload);
            b
        };
        let c_order = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let f_order = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0];
        let cases = [
            file(
                "<f4",
                false,
                "(2, 3)",
                c_order.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect(),
            ),
            file(
                ">f4",
                false,
                "(2, 3)",
                c_order.iter().flat_map(|v| (*v as f32).to_be_bytes()).collect(),
            ),
            file(
                "<f8",
                false,
                "(2, 3, 1)",
                c_order.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            file(
                ">f8",
                true,
                "(2, 3)",
                f_order.iter().flat_map(|v| v.to_be_bytes()).collect(),
            ),
            file(
                "<f4",
                true,
                "(1, 2, 3)",
                f_order.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect(),
            ),
        ];
        for (k, b) in cases.iter().enumerate() {
            let m = parse_map(b, Path::new("d.npy"), true).unwrap();
            assert_eq!((m.width, m.height), (3, 2), "case {k}");
            assert_eq!(m.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "case {k}");
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
