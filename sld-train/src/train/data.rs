//! Training samples: scene images preprocessed exactly as `sld-core`'s
//! `Localizer` does (bilinear resize to the network input, normalisation),
//! and per image the landmark positions in network-input pixels with their
//! visibility weights (SLD*: 1 visible, 0.5 unverified — ignored by the
//! loss —, 0 not visible). Heatmap targets are rendered per batch.

use anyhow::Result;
use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sld_core::heatmap::DecodeOptions;
use sld_core::image::resize_normalize;
use sld_core::model::InputSpec;
use sld_core::rng::SplitMix64;

use crate::data::scene::{as_image, SceneDir};
use crate::labels::{gaussian_target, visibility, TargetOptions, Visible};

/// One preprocessed training image.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Network input `[C, H, W]`, normalised.
    pub input: Vec<f32>,
    /// Per landmark: pixel in network-input coordinates (pixel-centre
    /// convention; `None` when behind the camera) and label weight.
    pub labels: Vec<(Option<(f32, f32)>, f32)>,
    /// Index of the image in the scene.
    pub image: usize,
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
    let bar = if progress {
        ProgressBar::new(indices.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("loading   {bar:40} {pos}/{len} images")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let out = indices
        .par_iter()
        .map(|&i| -> Result<Sample> {
            let im = &scene.images[i];
            let (w, h) = (spec.width as usize, spec.height as usize);
            let rgb = im.read_rgb()?;
            let img = as_image(&rgb)?;
            let mut input = vec![0f32; spec.channels as usize * w * h];
            resize_normalize(&img, w, h, &spec.mean, &spec.std, &mut input);
            let net_cam = im.network_camera(w as u32, h as u32)?;
            let depth = scene.depth(i)?;
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
    } = *o;
    let target = &target;
    let (c, h, w) = (spec.channels as usize, spec.height as usize, spec.width as usize);
    let l = samples.first().map_or(0, |s| s.labels.len());
    let b = samples.len();
    let mut x = Vec::with_capacity(b * c * h * w);
    let mut rng = rng;
    for s in samples {
        let start = x.len();
        x.extend_from_slice(&s.input);
        if let Some(r) = rng.as_deref_mut() {
            jitter(&mut x[start..], c, r, jitter_strength);
        }
    }
    let opts = DecodeOptions::for_stride(stride);
    let cells = grid[0] * grid[1];
    let mut t = vec![0f32; b * l * cells];
    let mut m = vec![0f32; b * l * cells];
    t.par_chunks_mut(l * cells)
        .zip(m.par_chunks_mut(l * cells))
        .zip(samples.par_iter())
        .for_each(|((tb, mb), s)| {
            for (k, (px, wgt)) in s.labels.iter().enumerate() {
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
