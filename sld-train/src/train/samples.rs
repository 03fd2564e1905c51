//! Training samples: scene images preprocessed exactly as `sld-core`'s
//! `Localizer` does (bilinear resize to the network input, normalisation),
//! and per image the landmark positions in network-input pixels with their
//! visibility weights (SLD*: 1 visible, 0.5 unverified — ignored by the
//! loss —, 0 not visible). Heatmap targets are rendered per batch.

use anyhow::Result;
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use sld_core::heatmap::DecodeOptions;
use sld_core::image::resize_normalize;
use sld_core::model::InputSpec;
use sld_core::nalgebra::{Matrix3, Rotation3, Vector3};
use sld_core::rng::SplitMix64;

use super::novel_view::NovelView;
use super::targets::{gaussian_target, TargetOptions};
use crate::data::scene::{as_image, SceneDir};
use crate::landmarks::visibility::{visibility, Visible};

/// One landmark's label in one image: pixel in network-input coordinates
/// (pixel-centre convention; `None` when behind the camera) and label
/// weight (1 visible, 0 not visible, 0.5 unverified).
pub type Label = (Option<(f32, f32)>, f32);

/// One preprocessed training image.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Network input `[C, H, W]`, normalised; for an input with a per-image
    /// normalisation ([`InputSpec::normalize`]) the resized RGB in `[0, 1]`
    /// that [`finish`] turns into the input.
    pub input: Vec<f32>,
    /// Per landmark: pixel in network-input coordinates (pixel-centre
    /// convention; `None` when behind the camera) and label weight.
    pub labels: Vec<Label>,
    /// Index of the image in the scene.
    pub image: usize,
    /// Pinhole intrinsics `[fx, fy, cx, cy]` of the network input, pixels
    /// (what [`Rotation2`] needs to rotate the camera exactly).
    pub intrinsics: [f64; 4],
    /// Depth at network-input resolution (`z`, metres, 0 unknown; empty
    /// without a depth map): what [`NovelView`] re-renders with.
    pub depth: Vec<f32>,
    /// Per landmark, its position in this camera's frame (metres).
    pub points: Vec<[f32; 3]>,
}

/// Loads and preprocesses images `indices` of `scene` for a network with
/// input `spec`, labelling `landmarks` (world, metres): against each
/// image's depth map (relative tolerance `depth_tolerance`) where it has
/// one; otherwise from `tracks` (the `visibility-N.txt` matrix, e.g. from
/// COLMAP tracks): 1 when listed visible, 0.5 (ignored) when inside the
/// image but not listed, 0 outside — SLD*'s scheme.
pub fn load_samples(
    scene: &SceneDir,
    indices: &[usize],
    landmarks: &[[f64; 3]],
    spec: &InputSpec,
    depth_tolerance: f64,
    tracks: Option<&crate::data::indoor6::Visibility>,
    progress: bool,
) -> Result<Vec<Sample>> {
    let bar = crate::util::progress::bar(indices.len(), progress, "loading   {bar:40} {pos}/{len} images");
    let out = indices
        .par_iter()
        .map(|&i| -> Result<Sample> {
            let im = &scene.images[i];
            let (w, h) = (spec.width as usize, spec.height as usize);
            let rgb = im.read_rgb()?;
            let img = as_image(&rgb)?;
            // Normalised inputs are stored raw (RGB in [0, 1]): augmentation
            // acts on the image before [`finish`] normalises it.
            let input = if spec.normalize.is_none() {
                let mut input = vec![0f32; spec.channels as usize * w * h];
                resize_normalize(&img, w, h, &spec.mean, &spec.std, &mut input);
                input
            } else {
                let mut input = vec![0f32; 3 * w * h];
                resize_normalize(&img, w, h, &[0.0; 3], &[1.0; 3], &mut input);
                input
            };
            let net_cam = im.network_camera(w as u32, h as u32)?;
            let depth = scene.depth(i)?;
            let points = landmarks
                .iter()
                .map(|x| {
                    let pc = im.pose.transform(&sld_core::nalgebra::Vector3::from(*x));
                    [pc[0] as f32, pc[1] as f32, pc[2] as f32]
                })
                .collect();
            let net_depth = depth.as_ref().map_or_else(Vec::new, |d| {
                let (sx, sy) = (d.width as f64 / w as f64, d.height as f64 / h as f64);
                (0..w * h)
                    .map(|i| {
                        let (x, y) = ((i % w) as f64, (i / w) as f64);
                        d.at((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5).unwrap_or(0.0) as f32
                    })
                    .collect()
            });
            let labels = landmarks
                .iter()
                .enumerate()
                .map(|(l, x)| {
                    // Visibility on the full-resolution image; pixel on the network input.
                    let (mut v, _) =
                        visibility(*x, &im.pose, &im.camera, depth.as_ref(), depth_tolerance, 0.1);
                    if depth.is_none() && v == Visible::Unverified {
                        if let Some(t) = tracks {
                            if t.rows.get(l).and_then(|r| r.get(i)).copied().unwrap_or(false) {
                                v = Visible::Yes;
                            }
                        }
                    }
                    let pc = im.pose.transform(&sld_core::nalgebra::Vector3::from(*x));
                    let px = if pc[2] > 0.1 {
                        net_cam.project([pc[0], pc[1], pc[2]]).ok()
                    } else {
                        None
                    };
                    (px.map(|p| (p[0] as f32, p[1] as f32)), v.weight())
                })
                .collect();
            bar.inc(1);
            Ok(Sample {
                input,
                labels,
                image: i,
                intrinsics: [net_cam.fx, net_cam.fy, net_cam.cx, net_cam.cy],
                depth: net_depth,
                points,
            })
        })
        .collect::<Result<Vec<_>>>();
    bar.finish_and_clear();
    out
}

/// Photometric augmentation that keeps labels exact: per-channel gain and
/// offset plus a global gain (lighting changes), in normalised units of a
/// `[0, 1]` input.
pub fn jitter(input: &mut [f32], channels: usize, rng: &mut SplitMix64, strength: f32) {
    if strength <= 0.0 {
        return;
    }
    let plane = input.len() / channels.max(1);
    let global = 1.0 + strength * (2.0 * rng.unit_f64() as f32 - 1.0);
    for c in 0..channels {
        let gain = global * (1.0 + 0.3 * strength * (2.0 * rng.unit_f64() as f32 - 1.0));
        let off = 0.2 * strength * (2.0 * rng.unit_f64() as f32 - 1.0);
        for v in &mut input[c * plane..(c + 1) * plane] {
            *v = *v * gain + off;
        }
    }
}

/// Which geometric augmentation [`warp_sample`] draws from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Geometry {
    /// Half the samples with depth re-rendered from a nearby camera ([`NovelView`]).
    pub novel_views: bool,
    /// Camera rotations ([`Rotation2`]) instead of SLD*'s similarity ([`Similarity2`]).
    pub rotations: bool,
}

/// A randomly moved copy of sample `s` (`channels` stored planes of
/// `w × h`) and its labels moved exactly with it: a novel view (half the
/// time, with `how.novel_views` and depth), else a camera rotation
/// (`how.rotations`) or SLD*'s similarity.
pub fn warp_sample(
    s: &Sample,
    channels: usize,
    w: usize,
    h: usize,
    r: &mut SplitMix64,
    how: Geometry,
) -> (Vec<f32>, Vec<Label>) {
    if how.novel_views && !s.depth.is_empty() && r.unit_f64() < 0.5 {
        let mut known: Vec<f64> = s.depth.iter().filter(|d| **d > 0.0).map(|&d| d as f64).collect();
        let median = crate::util::stats::median(&mut known).unwrap_or(2.0);
        let t = NovelView::random(r, median);
        let (out, zbuf) = t.render(&s.input, channels, w, h, &s.depth, s.intrinsics);
        return (out, t.labels(&s.labels, &s.points, &zbuf, w, h, s.intrinsics));
    }
    if how.rotations {
        let t = Rotation2::random(r, s.intrinsics);
        return (t.warp(&s.input, channels, w, h), t.labels(&s.labels, w, h));
    }
    let t = Similarity2::random(r);
    (t.warp(&s.input, channels, w, h), t.labels(&s.labels, w, h))
}

/// The network input of a stored raw sample (resized RGB in `[0, 1]`)
/// for an input with a per-image normalisation: luminance when `spec` has
/// one channel, then `(v − mean) / std`, then [`sld_core::image::normalize`]
/// — what `sld-core`'s `Localizer` computes from the same pixels.
pub fn finish(raw: &[f32], spec: &InputSpec) -> Vec<f32> {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let plane = w * h;
    let c = spec.channels as usize;
    let mut out = if c == 1 {
        (0..plane)
            .map(|i| 0.299 * raw[i] + 0.587 * raw[plane + i] + 0.114 * raw[2 * plane + i])
            .collect()
    } else {
        raw[..3 * plane].to_vec()
    };
    for (k, p) in out.chunks_exact_mut(plane).enumerate() {
        p.iter_mut().for_each(|v| *v = (*v - spec.mean[k]) / spec.std[k]);
    }
    let mut scratch = vec![0f32; spec.normalize.scratch_len(w, h)];
    sld_core::image::normalize(spec.normalize, &mut out, c, w, h, &mut scratch);
    out
}

/// Photometric augmentation of a raw RGB `[3, h, w]` image in `[0, 1]`,
/// modelling another session's light; `strength` 1 gives the full ranges:
/// per-channel gains 0.7–1.3 (light colour), exposure ×0.5–2, a smooth
/// multiplicative shading field (up to ×e^±0.5) and, half the time, a
/// soft-edged cast shadow (×0.3–0.7), then gamma 0.5–2, contrast ±40 %,
/// a 3×3 blur (a third of the time) and sensor noise (σ up to 0.02),
/// clamped to `[0, 1]`. Labels stay exact (no pixel moves).
pub fn photometric(img: &mut [f32], w: usize, h: usize, rng: &mut SplitMix64, strength: f32) {
    let s = strength.max(0.0);
    if s == 0.0 {
        return;
    }
    let plane = w * h;
    let sym = |rng: &mut SplitMix64| 2.0 * rng.unit_f64() as f32 - 1.0;
    let exposure = (sym(rng) * s * std::f32::consts::LN_2).exp();
    let gains: [f32; 3] = std::array::from_fn(|_| exposure * (1.0 + 0.3 * s * sym(rng)));
    // Shading: two random low-frequency cosines (periods ~0.5–2 image widths).
    let waves: [(f32, f32, f32, f32); 2] = std::array::from_fn(|_| {
        let a = rng.unit_f64() as f32 * std::f32::consts::TAU;
        let k = std::f32::consts::TAU / (w as f32 * (0.5 + 1.5 * rng.unit_f64() as f32));
        (
            k * a.cos(),
            k * a.sin(),
            rng.unit_f64() as f32 * std::f32::consts::TAU,
            0.25 * s * sym(rng),
        )
    });
    // Cast shadow: a half-plane through a random point, soft edge of ~2–10 px.
    let shadow = (rng.unit_f64() < 0.5).then(|| {
        let a = rng.unit_f64() as f32 * std::f32::consts::TAU;
        let (px, py) = (rng.unit_f64() as f32 * w as f32, rng.unit_f64() as f32 * h as f32);
        let soft = 2.0 + 8.0 * rng.unit_f64() as f32;
        let depth = s * (0.3 + 0.4 * rng.unit_f64() as f32);
        (a.cos(), a.sin(), px, py, soft, depth)
    });
    let gamma = (sym(rng) * s * std::f32::consts::LN_2).exp();
    let contrast = 1.0 + 0.4 * s * sym(rng);
    let blur = rng.unit_f64() < 0.33;
    let noise = 0.02 * s * rng.unit_f64() as f32;
    let mut mean = 0f64;
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f32, y as f32);
            let mut field: f32 = waves
                .iter()
                .map(|&(kx, ky, ph, amp)| amp * (kx * xf + ky * yf + ph).cos())
                .sum();
            field = field.exp();
            if let Some((nx, ny, px, py, soft, depth)) = shadow {
                let d = (nx * (xf - px) + ny * (yf - py)) / soft;
                field *= 1.0 - depth / (1.0 + (-d).exp());
            }
            for (ch, g) in gains.iter().enumerate() {
                let v = &mut img[ch * plane + y * w + x];
                *v = (*v * g * field).clamp(0.0, 1.0).powf(gamma);
                mean += *v as f64;
            }
        }
    }
    let mean = (mean / (3 * plane).max(1) as f64) as f32;
    for v in img[..3 * plane].iter_mut() {
        *v = mean + contrast * (*v - mean);
    }
    if blur {
        for p in img[..3 * plane].chunks_exact_mut(plane) {
            box_blur3(p, w, h);
        }
    }
    for v in img[..3 * plane].iter_mut() {
        *v = (*v + noise * rng.gauss() as f32).clamp(0.0, 1.0);
    }
}

/// 3×3 box blur of one plane (edges clamped).
fn box_blur3(p: &mut [f32], w: usize, h: usize) {
    let src = p.to_vec();
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for dy in [-1i64, 0, 1] {
                for dx in [-1i64, 0, 1] {
                    let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
                    let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                    acc += src[yy * w + xx];
                }
            }
            p[y * w + x] = acc / 9.0;
        }
    }
}

/// How a batch's targets and augmentation are made.
#[derive(Clone, Copy, Debug)]
pub struct BatchOptions {
    /// Heatmap grid `[h, w]`.
    pub grid: [usize; 2],
    /// Output stride, input pixels per cell.
    pub stride: f32,
    /// Gaussian target shape.
    pub target: TargetOptions,
    /// Photometric augmentation strength (0 = off).
    pub jitter: f32,
    /// Loss weight of the cells with a positive target.
    pub pos_weight: f32,
    /// The loss the batch trains (the targets above serve both).
    pub loss: super::Loss,
    /// Rotate each image in-plane (±10°) and scale it (0.9–1.1) about its
    /// centre, moving the labels exactly ([`Similarity2::random`]); only
    /// with an `rng`, and only for image inputs (not feature buffers).
    pub geometric: bool,
    /// Instead of `geometric`'s similarity, an exact camera rotation and
    /// focal change ([`Rotation2::random`]); images only, with an `rng`.
    pub rotations: bool,
    /// Half the images re-rendered from a nearby camera ([`NovelView`])
    /// where they have depth, the others as `geometric` says.
    pub novel_views: bool,
}

/// A batch as tensors: input `[B, C, H, W]`, targets `[B, L, h, w]`, and
/// per-cell loss weights `[B, L, h, w]`: 0 on maps the loss ignores
/// (label 0.5), `pos_weight` where the target is positive, else 1.
pub fn batch(
    samples: &[&Sample],
    spec: &InputSpec,
    o: &BatchOptions,
    rng: Option<&mut SplitMix64>,
    device: &Device,
) -> Result<(Tensor, Tensor, Tensor)> {
    let BatchOptions {
        grid,
        stride,
        target,
        jitter: jitter_strength,
        pos_weight,
        ..
    } = *o;
    let target = &target;
    let (c, h, w) = (spec.channels as usize, spec.height as usize, spec.width as usize);
    let l = samples.first().map_or(0, |s| s.labels.len());
    let b = samples.len();
    let mut x = Vec::with_capacity(b * c * h * w);
    let mut rng = rng;
    let mut moved: Vec<Vec<Label>> = Vec::new();
    let raw = !spec.normalize.is_none();
    let stored = if raw { 3 } else { c };
    for s in samples {
        let (mut img, labels) = match rng.as_deref_mut() {
            Some(r) if o.geometric => {
                let how = Geometry {
                    novel_views: o.novel_views,
                    rotations: o.rotations,
                };
                warp_sample(s, stored, w, h, r, how)
            }
            _ => (s.input.clone(), s.labels.clone()),
        };
        moved.push(labels);
        if let Some(r) = rng.as_deref_mut() {
            if raw {
                photometric(&mut img, w, h, r, jitter_strength);
            } else {
                jitter(&mut img, c, r, jitter_strength);
            }
        }
        if raw {
            img = finish(&img, spec);
        }
        x.extend_from_slice(&img);
    }
    let labels: Vec<&[Label]> = moved.iter().map(|l| l.as_slice()).collect();
    let opts = DecodeOptions::for_stride(stride);
    let cells = grid[0] * grid[1];
    let mut t = vec![0f32; b * l * cells];
    let mut m = vec![0f32; b * l * cells];
    t.par_chunks_mut(l * cells)
        .zip(m.par_chunks_mut(l * cells))
        .zip(labels.par_iter())
        .for_each(|((tb, mb), labels)| {
            for (k, (px, wgt)) in labels.iter().enumerate() {
                let tk = &mut tb[k * cells..(k + 1) * cells];
                let mk = &mut mb[k * cells..(k + 1) * cells];
                // SLD*: maps labelled 0.5 (unverified) are ignored; 0 maps train towards 0.
                if *wgt == 0.5 {
                    continue;
                }
                if *wgt == 1.0 {
                    if let Some((u, v)) = px {
                        gaussian_target(tk, grid, (*u, *v), &opts, target);
                    }
                }
                for (mv, tv) in mk.iter_mut().zip(tk.iter()) {
                    *mv = if *tv > 0.0 { pos_weight } else { 1.0 };
                }
            }
        });
    Ok((
        Tensor::from_vec(x, (b, c, h, w), device)?,
        Tensor::from_vec(t, (b, l, grid[0], grid[1]), device)?,
        Tensor::from_vec(m, (b, l, grid[0], grid[1]), device)?,
    ))
}

/// An exact rotation of the camera about its centre plus a change of focal
/// length, as the homography `H = K'·R·K⁻¹` of the network image (`K'` is
/// `K` with `fx`, `fy` scaled): every pixel, and so every landmark's
/// projection, moves exactly as if the camera had turned and zoomed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotation2 {
    /// The homography, network-input pixels (pixel-centre convention).
    pub h: Matrix3<f64>,
}

impl Rotation2 {
    /// Roll uniform in ±15°, pitch and yaw in ±8°, focal scale log-uniform
    /// in 0.7–1.4, for intrinsics `[fx, fy, cx, cy]`.
    pub fn random(rng: &mut SplitMix64, k: [f64; 4]) -> Self {
        let roll = rng.uniform(-15.0, 15.0).to_radians();
        let pitch = rng.uniform(-8.0, 8.0).to_radians();
        let yaw = rng.uniform(-8.0, 8.0).to_radians();
        let scale = rng.uniform(0.7f64.ln(), 1.4f64.ln()).exp();
        Self::new(k, roll, pitch, yaw, scale)
    }

    /// The homography of a camera with intrinsics `[fx, fy, cx, cy]` turned
    /// by `roll` (about the optical axis), `pitch` (about x) and `yaw`
    /// (about y), radians, with its focal length scaled by `scale`.
    pub fn new(k: [f64; 4], roll: f64, pitch: f64, yaw: f64, scale: f64) -> Self {
        let [fx, fy, cx, cy] = k;
        let kk = Matrix3::new(fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0);
        let ks = Matrix3::new(scale * fx, 0.0, cx, 0.0, scale * fy, cy, 0.0, 0.0, 1.0);
        let r = Rotation3::from_axis_angle(&Vector3::z_axis(), roll)
            * Rotation3::from_axis_angle(&Vector3::x_axis(), pitch)
            * Rotation3::from_axis_angle(&Vector3::y_axis(), yaw);
        let inv = kk.try_inverse().unwrap_or_else(Matrix3::identity);
        Rotation2 {
            h: ks * r.matrix() * inv,
        }
    }

    /// Where pixel `(u, v)` moves; `None` when it goes behind the camera.
    pub fn apply(&self, (u, v): (f32, f32)) -> Option<(f32, f32)> {
        map(&self.h, u, v)
    }

    /// Warps a `[C, h, w]` tensor (bilinear; zero outside).
    pub fn warp(&self, input: &[f32], channels: usize, w: usize, h: usize) -> Vec<f32> {
        let inv = self.h.try_inverse().unwrap_or_else(Matrix3::identity);
        warp_with(input, channels, w, h, |x, y| map(&inv, x, y))
    }

    /// Moves a sample's labels: positions mapped; a visible landmark leaving
    /// the image (or going behind the camera) becomes "not visible" (0).
    pub fn labels(&self, labels: &[Label], w: usize, h: usize) -> Vec<Label> {
        move_labels(labels, w, h, |p| self.apply(p))
    }
}

/// `H·(u, v, 1)` dehomogenised; `None` behind the camera.
fn map(h: &Matrix3<f64>, u: f32, v: f32) -> Option<(f32, f32)> {
    let p = h * Vector3::new(u as f64, v as f64, 1.0);
    (p[2] > 1e-9).then(|| ((p[0] / p[2]) as f32, (p[1] / p[2]) as f32))
}

/// Warps a `[C, h, w]` tensor by sampling each output pixel at `src(x, y)`
/// (bilinear; zero where that is outside or `None`).
fn warp_with(
    input: &[f32],
    channels: usize,
    w: usize,
    h: usize,
    src: impl Fn(f32, f32) -> Option<(f32, f32)>,
) -> Vec<f32> {
    let mut out = vec![0f32; input.len()];
    let plane = w * h;
    for y in 0..h {
        for x in 0..w {
            let Some((su, sv)) = src(x as f32, y as f32) else {
                continue;
            };
            if !(su >= 0.0 && sv >= 0.0 && su <= (w - 1) as f32 && sv <= (h - 1) as f32) {
                continue;
            }
            let (x0, y0) = (su.floor() as usize, sv.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (ax, ay) = (su - x0 as f32, sv - y0 as f32);
            for ch in 0..channels {
                let p = &input[ch * plane..(ch + 1) * plane];
                let top = p[y0 * w + x0] * (1.0 - ax) + p[y0 * w + x1] * ax;
                let bot = p[y1 * w + x0] * (1.0 - ax) + p[y1 * w + x1] * ax;
                out[ch * plane + y * w + x] = top * (1.0 - ay) + bot * ay;
            }
        }
    }
    out
}

/// Labels moved by `f`: a visible landmark that leaves the `w × h` image
/// (or that `f` drops) becomes "not visible" (0).
fn move_labels(
    labels: &[Label],
    w: usize,
    h: usize,
    f: impl Fn((f32, f32)) -> Option<(f32, f32)>,
) -> Vec<Label> {
    labels
        .iter()
        .map(|&(px, wgt)| {
            let Some(q) = px.and_then(&f) else {
                return (None, if wgt == 1.0 { 0.0 } else { wgt });
            };
            let inside = q.0 >= -0.5 && q.1 >= -0.5 && q.0 < w as f32 - 0.5 && q.1 < h as f32 - 0.5;
            (Some(q), if inside || wgt == 0.0 { wgt } else { 0.0 })
        })
        .collect()
}

/// A similarity of the image plane about its centre: rotation by `angle`
/// (radians, counter-clockwise on screen) and scaling by `scale` — an
/// in-plane camera rotation plus a focal-length change when the centre is
/// the principal point. Labels move exactly with it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity2 {
    /// Rotation, radians.
    pub angle: f32,
    /// Scale factor.
    pub scale: f32,
}

impl Similarity2 {
    /// SLD*'s augmentation ranges: rotation uniform in ±10°, scale uniform
    /// in 0.9–1.1.
    pub fn random(rng: &mut SplitMix64) -> Self {
        Similarity2 {
            angle: (rng.unit_f64() as f32 - 0.5) * 20f32.to_radians(),
            scale: 0.9 + 0.2 * rng.unit_f64() as f32,
        }
    }

    /// Where pixel `(u, v)` of a `w × h` image moves (pixel-centre convention).
    pub fn apply(&self, (u, v): (f32, f32), w: usize, h: usize) -> (f32, f32) {
        let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let (s, c) = self.angle.sin_cos();
        let (x, y) = (u - cx, v - cy);
        (
            cx + self.scale * (c * x + s * y),
            cy + self.scale * (-s * x + c * y),
        )
    }

    /// Warps a `[C, h, w]` tensor (bilinear; zero outside).
    pub fn warp(&self, input: &[f32], channels: usize, w: usize, h: usize) -> Vec<f32> {
        let inv = Similarity2 {
            angle: -self.angle,
            scale: 1.0 / self.scale,
        };
        warp_with(input, channels, w, h, |x, y| Some(inv.apply((x, y), w, h)))
    }

    /// Moves a sample's labels: positions transformed; a visible landmark
    /// leaving the image becomes "not visible" (0).
    pub fn labels(&self, labels: &[Label], w: usize, h: usize) -> Vec<Label> {
        move_labels(labels, w, h, |p| Some(self.apply(p, w, h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `geometric`, a batch's image and targets move together: the
    /// warped bright dot and the target peak of its landmark fall in the
    /// same cell, and the transform is the one `Similarity2::random` draws
    /// first from the same generator.
    #[test]
    fn geometric_batch_moves_image_and_targets_together() {
        let (w, h) = (64usize, 48usize);
        let spec = InputSpec {
            width: w as u32,
            height: h as u32,
            channels: 1,
            mean: vec![0.0],
            std: vec![1.0],
            normalize: Default::default(),
        };
        let (u, v) = (44.0f32, 12.0f32);
        let mut input = vec![0f32; w * h];
        for dy in -1i32..=1 {
            for dx in -1i32..=1 {
                input[(v as i32 + dy) as usize * w + (u as i32 + dx) as usize] = 1.0;
            }
        }
        let s = Sample {
            input,
            labels: vec![(Some((u, v)), 1.0)],
            image: 0,
            intrinsics: [60.0, 60.0, 31.5, 23.5],
            depth: Vec::new(),
            points: Vec::new(),
        };
        let o = BatchOptions {
            grid: [h / 8, w / 8],
            stride: 8.0,
            target: TargetOptions {
                sigma: 0.5,
                ..Default::default()
            },
            jitter: 0.0,
            pos_weight: 1.0,
            loss: super::super::Loss::Softmax,
            geometric: true,
            rotations: false,
            novel_views: false,
        };
        for seed in 0..8u64 {
            let mut rng = SplitMix64::new(seed);
            let t = Similarity2::random(&mut SplitMix64::new(seed));
            let (x, tg, _) = batch(&[&s], &spec, &o, Some(&mut rng), &Device::Cpu).unwrap();
            let img = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let (mut sx, mut sy, mut sum) = (0.0, 0.0, 0.0);
            for (i, a) in img.iter().enumerate() {
                sx += a * (i % w) as f32;
                sy += a * (i / w) as f32;
                sum += a;
            }
            let q = t.apply((u, v), w, h);
            assert!(
                (sx / sum - q.0).abs() < 0.6 && (sy / sum - q.1).abs() < 0.6,
                "seed {seed}"
            );
            let tv = tg.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let best = (0..tv.len()).max_by(|&a, &b| tv[a].total_cmp(&tv[b])).unwrap();
            let cell = ((best % (w / 8)) as f32, (best / (w / 8)) as f32);
            // Cell centres at 8c + 3.5 (pixel-centre convention, stride 8).
            let want = ((q.0 - 3.5) / 8.0, (q.1 - 3.5) / 8.0);
            assert!(
                (cell.0 - want.0).abs() <= 0.5 + 1e-4 && (cell.1 - want.1).abs() <= 0.5 + 1e-4,
                "seed {seed}: peak cell {cell:?}, label at {want:?}"
            );
        }
    }

    /// A bright dot warped by the similarity lands where its label moves.
    #[test]
    fn warped_image_and_labels_agree() {
        let (w, h) = (64usize, 40usize);
        let t = Similarity2 {
            angle: 0.17,
            scale: 1.08,
        };
        for (u, v) in [(20.0f32, 12.0f32), (45.0, 30.0), (31.5, 19.5)] {
            let mut img = vec![0f32; w * h];
            img[v as usize * w + u as usize] = 1.0;
            let out = t.warp(&img, 1, w, h);
            // Intensity-weighted centroid of the warped dot.
            let (mut sx, mut sy, mut s) = (0.0, 0.0, 0.0);
            for y in 0..h {
                for x in 0..w {
                    let a = out[y * w + x];
                    sx += a * x as f32;
                    sy += a * y as f32;
                    s += a;
                }
            }
            let (q, _) = (t.apply((u.floor(), v.floor()), w, h), 0);
            assert!(s > 0.5, "dot lost");
            assert!(
                (sx / s - q.0).abs() < 0.5 && (sy / s - q.1).abs() < 0.5,
                "{:?} vs {q:?}",
                (sx / s, sy / s)
            );
        }
        // A label pushed out of the image stops being visible.
        let far = Similarity2 {
            angle: 0.0,
            scale: 3.0,
        };
        let l = far.labels(&[(Some((1.0, 1.0)), 1.0), (Some((31.5, 19.5)), 1.0)], w, h);
        assert_eq!(l[0].1, 0.0);
        assert_eq!(l[1].1, 1.0);
    }

    /// `Rotation2` moves a point's projection exactly where the rotated,
    /// zoomed camera sees it (independent ground truth: project the
    /// rotated 3-D point).
    #[test]
    fn rotation_homography_is_the_rotated_camera() {
        let k = [250.0, 240.0, 159.5, 87.5];
        let (roll, pitch, yaw, scale) = (0.2, -0.1, 0.12, 1.3);
        let t = Rotation2::new(k, roll, pitch, yaw, scale);
        let r = Rotation3::from_axis_angle(&Vector3::z_axis(), roll)
            * Rotation3::from_axis_angle(&Vector3::x_axis(), pitch)
            * Rotation3::from_axis_angle(&Vector3::y_axis(), yaw);
        let mut rng = SplitMix64::new(3);
        for _ in 0..50 {
            let x = Vector3::new(
                rng.uniform(-2.0, 2.0),
                rng.uniform(-1.0, 1.0),
                rng.uniform(1.0, 6.0),
            );
            let (u, v) = (k[0] * x[0] / x[2] + k[2], k[1] * x[1] / x[2] + k[3]);
            let y = r * x;
            let want = (
                scale * k[0] * y[0] / y[2] + k[2],
                scale * k[1] * y[1] / y[2] + k[3],
            );
            let got = t.apply((u as f32, v as f32)).expect("in front");
            assert!(
                (got.0 as f64 - want.0).abs() < 1e-3 && (got.1 as f64 - want.1).abs() < 1e-3,
                "{got:?} vs {want:?}"
            );
        }
        // The warp moves a bright pixel to where `apply` sends it.
        let (w, h) = (320usize, 176usize);
        let mut img = vec![0f32; w * h];
        img[80 * w + 100] = 1.0;
        let out = t.warp(&img, 1, w, h);
        let (mut best, mut at) = (0f32, 0usize);
        for (i, v) in out.iter().enumerate() {
            if *v > best {
                best = *v;
                at = i;
            }
        }
        let q = t.apply((100.0, 80.0)).unwrap();
        let (bx, by) = ((at % w) as f32, (at / w) as f32);
        assert!(
            (bx - q.0).abs() <= 1.0 && (by - q.1).abs() <= 1.0,
            "peak ({bx},{by}) vs {q:?}"
        );
    }
}
