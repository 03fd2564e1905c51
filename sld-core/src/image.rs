//! Borrowed 8-bit images and the resize-and-normalise step that turns one
//! into the network input.
//!
//! **Resize rule**: the whole image is resampled (bilinear, pixel-centre
//! aligned, edges clamped) to the model's input size — anisotropically,
//! as SLD* does for Indoor6 (1280×720 → 640×352). Intrinsics follow with
//! [`crate::Camera::scaled`] by `(W_in / W, H_in / H)`.

use core::fmt;

#[cfg(feature = "alloc")]
use crate::model::Normalize;

/// Pixel layout of an 8-bit image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// Red, green, blue; 3 bytes per pixel.
    Rgb8,
    /// Blue, green, red; 3 bytes per pixel.
    Bgr8,
    /// One luminance byte per pixel.
    Gray8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Gray8 => 1,
        }
    }
}

/// Why an image was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Width or height is zero.
    Empty,
    /// Row stride (bytes) is smaller than `width × channels`, or overflows.
    StrideTooSmall,
    /// The buffer is shorter than `stride × (height − 1) + width × channels`.
    BufferTooSmall,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "image width and height must be > 0",
            Self::StrideTooSmall => "row stride is smaller than width x bytes per pixel",
            Self::BufferTooSmall => "image buffer is shorter than its size and stride need",
        })
    }
}

impl core::error::Error for ImageError {}

/// A borrowed 8-bit image with any row stride.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    width: usize,
    height: usize,
    stride: usize,
    format: PixelFormat,
    data: &'a [u8],
}

impl<'a> Image<'a> {
    /// Checks sizes once; every later access is in bounds.
    pub fn new(
        width: u32,
        height: u32,
        stride_bytes: usize,
        format: PixelFormat,
        data: &'a [u8],
    ) -> Result<Self, ImageError> {
        let (w, h) = (width as usize, height as usize);
        if w == 0 || h == 0 {
            return Err(ImageError::Empty);
        }
        let row = w
            .checked_mul(format.channels())
            .ok_or(ImageError::StrideTooSmall)?;
        if stride_bytes < row {
            return Err(ImageError::StrideTooSmall);
        }
        let need = stride_bytes
            .checked_mul(h - 1)
            .and_then(|v| v.checked_add(row))
            .ok_or(ImageError::BufferTooSmall)?;
        if data.len() < need {
            return Err(ImageError::BufferTooSmall);
        }
        Ok(Self {
            width: w,
            height: h,
            stride: stride_bytes,
            format,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width as u32
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height as u32
    }

    /// `(r, g, b)` of pixel `(x, y)` as f32 in `[0, 255]` (gray replicated).
    #[inline]
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        let i = y * self.stride + x * self.format.channels();
        let d = self.data;
        match self.format {
            PixelFormat::Rgb8 => [d[i] as f32, d[i + 1] as f32, d[i + 2] as f32],
            PixelFormat::Bgr8 => [d[i + 2] as f32, d[i + 1] as f32, d[i] as f32],
            PixelFormat::Gray8 => [d[i] as f32; 3],
        }
    }
}

/// Source coordinate and weights for one destination sample (bilinear,
/// pixel centres aligned, clamped at the edges).
#[inline]
fn tap(dst: usize, scale: f32, n: usize) -> (usize, usize, f32) {
    let s = ((dst as f32 + 0.5) * scale - 0.5).clamp(0.0, (n - 1) as f32);
    let i0 = s as usize;
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, s - i0 as f32)
}

/// Resamples `img` to `out_w × out_h` and writes the normalised `[C, H, W]`
/// tensor `(v / 255 − mean[c]) / std[c]` into `out` (`C` = 1 takes luma
/// 0.299 R + 0.587 G + 0.114 B). `out` must hold `C·H·W` values.
pub fn resize_normalize(
    img: &Image<'_>,
    out_w: usize,
    out_h: usize,
    mean: &[f32],
    std: &[f32],
    out: &mut [f32],
) {
    let c = mean.len().min(std.len());
    if !(c == 1 || c == 3) || out.len() < c * out_w * out_h {
        return;
    }
    let sx = img.width as f32 / out_w as f32;
    let sy = img.height as f32 / out_h as f32;
    let plane = out_w * out_h;
    for y in 0..out_h {
        let (y0, y1, fy) = tap(y, sy, img.height);
        for x in 0..out_w {
            let (x0, x1, fx) = tap(x, sx, img.width);
            let (a, b, cc, d) = (img.rgb(x0, y0), img.rgb(x1, y0), img.rgb(x0, y1), img.rgb(x1, y1));
            let mut px = [0f32; 3];
            for k in 0..3 {
                let top = a[k] + (b[k] - a[k]) * fx;
                let bot = cc[k] + (d[k] - cc[k]) * fx;
                px[k] = top + (bot - top) * fy;
            }
            let idx = y * out_w + x;
            if c == 1 {
                let l = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
                out[idx] = (l / 255.0 - mean[0]) / std[0];
            } else {
                for k in 0..3 {
                    out[k * plane + idx] = (px[k] / 255.0 - mean[k]) / std[k];
                }
            }
        }
    }
}

#[cfg(feature = "alloc")]
/// Applies the per-image normalisation `how` to a `[C, H, W]` input `x`
/// (already through [`resize_normalize`]), each channel plane on its own.
/// `scratch` must hold [`Normalize::scratch_len`]`(w, h)` values; with less
/// (or a short `x`) nothing is changed. No allocation.
pub fn normalize(how: Normalize, x: &mut [f32], channels: usize, w: usize, h: usize, scratch: &mut [f32]) {
    let plane = w * h;
    if how == Normalize::Instance {
        if plane == 0 || x.len() < channels * plane {
            return;
        }
        for p in x[..channels * plane].chunks_exact_mut(plane) {
            let m = p.iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
            let var = p.iter().map(|&v| (v as f64 - m) * (v as f64 - m)).sum::<f64>() / plane as f64;
            let inv = 1.0 / libm::sqrt(var + 1e-5);
            p.iter_mut().for_each(|v| *v = ((*v as f64 - m) * inv) as f32);
        }
        return;
    }
    let Normalize::LogLocalContrast { radius } = how else {
        return;
    };
    if plane == 0 || x.len() < channels * plane || scratch.len() < how.scratch_len(w, h) {
        return;
    }
    let (sum, sq) = scratch[..2 * plane].split_at_mut(plane);
    for p in x[..channels * plane].chunks_exact_mut(plane) {
        log_local_contrast(p, w, h, radius as usize, sum, sq);
    }
}

#[cfg(feature = "alloc")]
/// [`Normalize::LogLocalContrast`] of one `w × h` plane; `sum` and `sq`
/// hold `w·h` values each (horizontal box sums of `u` and `u²`).
fn log_local_contrast(p: &mut [f32], w: usize, h: usize, r: usize, sum: &mut [f32], sq: &mut [f32]) {
    for v in p.iter_mut() {
        *v = libm::logf(v.max(0.0) + 1.0 / 64.0);
    }
    // Horizontal box sums, each row with a fresh f64 accumulator.
    for y in 0..h {
        let row = &p[y * w..(y + 1) * w];
        let (mut s, mut q) = (0f64, 0f64);
        for &v in &row[..r.min(w - 1) + 1] {
            s += v as f64;
            q += (v as f64) * (v as f64);
        }
        for x in 0..w {
            sum[y * w + x] = s as f32;
            sq[y * w + x] = q as f32;
            if x + r + 1 < w {
                let v = row[x + r + 1] as f64;
                s += v;
                q += v * v;
            }
            if x >= r {
                let v = row[x - r] as f64;
                s -= v;
                q -= v * v;
            }
        }
    }
    // Vertical box sums of those, column by column, writing the result.
    for x in 0..w {
        let cols = (x + r + 1).min(w) - x.saturating_sub(r);
        let (mut s, mut q) = (0f64, 0f64);
        for y in 0..r.min(h - 1) + 1 {
            s += sum[y * w + x] as f64;
            q += sq[y * w + x] as f64;
        }
        for y in 0..h {
            let rows = (y + r + 1).min(h) - y.saturating_sub(r);
            let n = (rows * cols) as f64;
            let m = s / n;
            let var = (q / n - m * m).max(0.0);
            let sd = libm::sqrt(var).max(0.1);
            let i = y * w + x;
            p[i] = ((p[i] as f64 - m) / sd) as f32;
            if y + r + 1 < h {
                s += sum[(y + r + 1) * w + x] as f64;
                q += sq[(y + r + 1) * w + x] as f64;
            }
            if y >= r {
                s -= sum[(y - r) * w + x] as f64;
                q -= sq[(y - r) * w + x] as f64;
            }
        }
    }
}
