//! Filling a depth map's holes: inputs read and checked, a fit from MDE
//! to metric depth, predictions written into the holes.

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Result};
use serde::Serialize;

use super::fit::{fit_predict, FitOptions, Inputs, Method};
use super::io::read_map;
use super::{DepthMap, MdeKind};

/// Reads an RGB image that must match `w × h`.
fn read_rgb(path: &Path, w: usize, h: usize) -> Result<Vec<u8>> {
    let img = crate::io::image_file::read_rgb(path)?;
    ensure!(
        img.width() as usize == w && img.height() as usize == h,
        "{}: image is {}x{}, the depth map {w}x{h}",
        path.display(),
        img.width(),
        img.height()
    );
    Ok(img.into_raw())
}

/// Inputs of `fill` and `eval`, read and checked.
pub struct Loaded {
    /// MDE map.
    pub mde: DepthMap,
    /// Metric depth with holes.
    pub depth: DepthMap,
    /// RGB, if given.
    pub rgb: Option<Vec<u8>>,
}

/// Reads `--mde`, `--depth` and optional `--image`, checking sizes.
pub fn load(mde: &Path, depth: &Path, image: Option<&Path>) -> Result<Loaded> {
    let m = read_map(mde, true)?;
    let d = read_map(depth, false)?;
    ensure!(
        (m.width, m.height) == (d.width, d.height),
        "{} is {}x{} but {} is {}x{}: MDE and depth must be the same size (resize the MDE output first)",
        mde.display(),
        m.width,
        m.height,
        depth.display(),
        d.width,
        d.height
    );
    ensure!(
        m.data.iter().any(|v| v.is_finite()),
        "{}: the MDE map holds no finite value (all NaN or infinite): nothing to fill from",
        mde.display()
    );
    ensure!(
        d.count_known() > 0,
        "{}: the depth map has no known pixel (every value 0, negative or not finite): nothing to fit the MDE to",
        depth.display()
    );
    let rgb = image.map(|p| read_rgb(p, d.width, d.height)).transpose()?;
    Ok(Loaded {
        mde: m,
        depth: d,
        rgb,
    })
}

/// Result of [`fill`].
#[derive(Serialize)]
pub struct FillSummary {
    /// Pixels that had a depth.
    pub known: usize,
    /// Missing pixels filled.
    pub filled: usize,
    /// Missing pixels left missing (no usable MDE value or prediction).
    pub left_missing: usize,
    /// Seconds to fit and predict.
    pub seconds: f64,
}

/// Fills the holes of `l.depth`; known pixels are kept as they are.
pub fn fill(l: &Loaded, kind: MdeKind, method: Method, o: &FitOptions) -> Result<(DepthMap, FillSummary)> {
    let n = l.depth.data.len() as u32;
    let (known, missing): (Vec<u32>, Vec<u32>) = (0..n).partition(|&i| l.depth.known(i as usize));
    let inputs = Inputs {
        mde: &l.mde,
        kind,
        rgb: l.rgb.as_deref(),
    };
    let t0 = Instant::now();
    let pred = fit_predict(method, inputs, &l.depth, &known, &missing, o)?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut out = l.depth.clone();
    let mut filled = 0;
    for (&i, &p) in missing.iter().zip(&pred) {
        out.data[i as usize] = p;
        filled += p.is_finite() as usize;
    }
    Ok((
        out,
        FillSummary {
            known: known.len(),
            filled,
            left_missing: missing.len() - filled,
            seconds,
        },
    ))
}
