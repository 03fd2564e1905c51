//! The feature buffer of head training: the frozen backbone runs once per
//! training image and augmented copy, in sld-core (the code the robot
//! runs), and its features replace the images.

use anyhow::{Context, Result};
use sld_core::model::ModelInfo;
use sld_core::rng::SplitMix64;

use super::options::TrainOptions;
use super::samples;
use crate::io::safetensors::NamedTensor;
use crate::net::export::to_sld_bytes;

/// Runs the frozen backbone (sld-core's interpreter, the code the robot
/// runs) on every sample — `o.buffer_copies` times, copies after the first
/// with photometric jitter — and replaces the images by the features.
pub fn fill_feature_buffer(
    info: &ModelInfo,
    frozen: &[NamedTensor],
    feature_channels: usize,
    samples: Vec<samples::Sample>,
    o: &TrainOptions,
    progress: bool,
) -> Result<Vec<samples::Sample>> {
    // The backbone alone as a model: its output is the feature map.
    let mut graph = info.graph.clone();
    let feat = graph
        .layers
        .iter()
        .rev()
        .find(|l| !l.name.starts_with("head."))
        .map(|l| l.name.clone())
        .context("no backbone layer")?;
    graph.layers.retain(|l| !l.name.starts_with("head."));
    graph.outputs = vec![feat];
    let bb_info = ModelInfo {
        graph,
        stride: 8,
        landmarks: feature_channels as u32,
        heatmaps: Default::default(),
        scene: info.scene.clone(),
        provenance: info.provenance.clone(),
    };
    let bytes = to_sld_bytes(&bb_info, frozen, &vec![[0f32; 3]; feature_channels])?;
    let model = sld_core::model::Model::load(&bytes[..]).map_err(|e| anyhow::anyhow!("backbone: {e}"))?;
    let plan = model.plan();
    let copies = o.buffer_copies.max(1);
    let bar = crate::util::progress::bar(
        samples.len() * copies,
        progress,
        "features  {bar:40} {pos}/{len}  {per_sec}  eta {eta}",
    );
    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len];
    let mut out = Vec::with_capacity(samples.len() * copies);
    let mut rng = SplitMix64::new(o.seed ^ 0xfea7_b0ff);
    for s in &samples {
        for k in 0..copies {
            crate::faults::point("buffer");
            // A normalised input is stored raw (RGB in [0, 1]) and finished here.
            let raw = !info.graph.input.normalize.is_none();
            let (w, h) = (o.input_width, o.input_height);
            let (mut x, labels) = if k > 0 && (o.geometric_aug || o.rotation_aug || o.novel_view_aug) {
                let how = samples::Geometry {
                    novel_views: o.novel_view_aug,
                    rotations: o.rotation_aug,
                };
                samples::warp_sample(s, 3, w, h, &mut rng, how)
            } else {
                (s.input.clone(), s.labels.clone())
            };
            if k > 0 {
                if raw {
                    samples::photometric(&mut x, w, h, &mut rng, o.jitter);
                } else {
                    samples::jitter(&mut x, 3, &mut rng, o.jitter);
                }
            }
            if raw {
                x = samples::finish(&x, &info.graph.input);
            }
            sld_core::nn::input_mut(plan, &mut arena)
                .context("backbone input")?
                .copy_from_slice(&x);
            sld_core::nn::run(plan, model.weights(), &mut arena, &mut scratch)
                .map_err(|e| anyhow::anyhow!("backbone: {e}"))?;
            let f = sld_core::nn::output(plan, &arena, 0).context("backbone output")?;
            out.push(samples::Sample {
                input: f.to_vec(),
                labels,
                image: s.image,
                intrinsics: s.intrinsics,
                depth: Vec::new(),
                points: Vec::new(),
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(out)
}
