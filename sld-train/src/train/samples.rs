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
use sld_core::rng::SplitMix64;

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
    /// Network input `[C, H, W]`, normalised.
    pub input: Vec<f32>,
    /// Per landmark: pixel in network-input coordinates (pixel-centre
    /// convention; `None` when behind the camera) and label weight.
    pub labels: Vec<Label>,
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
    let bar = crate::util::progress::bar(indices.len(), progress, "loading   {bar:40} {pos}/{len} images");
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
    /// The loss the batch trains (the targets above serve both).
    pub loss: super::Loss,
    /// Rotate each image in-plane (±10°) and scale it (0.9–1.1) about its
    /// centre, moving the labels exactly ([`Similarity2::random`]); only
    /// with an `rng`, and only for image inputs (not feature buffers).
    pub geometric: bool,
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
    for s in samples {
        let start = x.len();
        match rng.as_deref_mut() {
            Some(r) if o.geometric => {
                let t = Similarity2::random(r);
                x.extend_from_slice(&t.warp(&s.input, c, w, h));
                moved.push(t.labels(&s.labels, w, h));
            }
            _ => x.extend_from_slice(&s.input),
        }
        if let Some(r) = rng.as_deref_mut() {
            jitter(&mut x[start..], c, r, jitter_strength);
        }
    }
    let labels: Vec<&[Label]> = if moved.is_empty() {
        samples.iter().map(|s| s.labels.as_slice()).collect()
    } else {
        moved.iter().map(|l| l.as_slice()).collect()
    };
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
        let mut out = vec![0f32; input.len()];
        let plane = w * h;
        for y in 0..h {
            for x in 0..w {
                let (su, sv) = inv.apply((x as f32, y as f32), w, h);
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

    /// Moves a sample's labels: positions transformed; a visible landmark
    /// leaving the image becomes "not visible" (0).
    pub fn labels(
        &self,
        labels: &[(Option<(f32, f32)>, f32)],
        w: usize,
        h: usize,
    ) -> Vec<(Option<(f32, f32)>, f32)> {
        labels
            .iter()
            .map(|&(px, wgt)| {
                let Some(p) = px else { return (None, wgt) };
                let q = self.apply(p, w, h);
                let inside = q.0 >= -0.5 && q.1 >= -0.5 && q.0 < w as f32 - 0.5 && q.1 < h as f32 - 0.5;
                (Some(q), if inside || wgt == 0.0 { wgt } else { 0.0 })
            })
            .collect()
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
}
