//! The ImageNet EfficientNet-Lite0: its checkpoint's tensors mapped onto
//! our graph names with batch norm folded into the convolutions (`sld
//! weights import`), and a top-5 classifier that checks an import end to
//! end. The checkpoint's convolutions use TF "SAME" padding, which
//! [`crate::net::builder`] reproduces.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};

use crate::io::pth::StateDict;
use crate::io::safetensors::{Metadata, NamedTensor};
use crate::net::lite0::LITE0_STAGES;

/// Batch-norm epsilon of the TF EfficientNet-Lite checkpoints.
pub const BN_EPS: f32 = 1e-3;

/// Folds batch norm `prefix_bn` into conv `prefix_conv` (no conv bias):
/// `w' = w·γ/√(σ²+ε)`, `b' = β − γ·μ/√(σ²+ε)`.
fn fold(sd: &StateDict, conv: &str, bn: &str, ours: &str) -> Result<[NamedTensor; 2]> {
    let get = |k: String| sd.get(&k).with_context(|| format!("checkpoint lacks {k}"));
    let (shape, w) = get(format!("{conv}.weight"))?;
    let (_, g) = get(format!("{bn}.weight"))?;
    let (_, beta) = get(format!("{bn}.bias"))?;
    let (_, mean) = get(format!("{bn}.running_mean"))?;
    let (_, var) = get(format!("{bn}.running_var"))?;
    let o = shape.first().copied().unwrap_or(0);
    ensure!(
        o > 0 && !w.is_empty() && w.len().is_multiple_of(o),
        "{conv}.weight of shape {shape:?} has no output channels"
    );
    ensure!(
        g.len() == o && beta.len() == o && mean.len() == o && var.len() == o,
        "{bn} does not match {conv}"
    );
    let per = w.len() / o;
    let scale: Vec<f32> = (0..o).map(|i| g[i] / (var[i] + BN_EPS).sqrt()).collect();
    let wf: Vec<f32> = w.iter().enumerate().map(|(k, v)| v * scale[k / per]).collect();
    let bf: Vec<f32> = (0..o).map(|i| beta[i] - mean[i] * scale[i]).collect();
    Ok([
        NamedTensor {
            name: format!("{ours}.weight"),
            shape: shape.clone(),
            data: wf,
        },
        NamedTensor {
            name: format!("{ours}.bias"),
            shape: vec![o],
            data: bf,
        },
    ])
}

/// Maps the checkpoint onto our names (`stem`, `blocks.S.B.{expand,dw,project}`,
/// and `classifier.conv` + `classifier.fc` for the ImageNet head), batch
/// norm folded.
pub fn lite0_tensors(sd: &StateDict) -> Result<Vec<NamedTensor>> {
    let mut out = Vec::new();
    out.extend(fold(sd, "_conv_stem", "_bn0", "stem")?);
    let mut g = 0;
    for (si, &(n, _, e, _)) in LITE0_STAGES.iter().enumerate() {
        for bi in 0..n {
            let p = format!("_blocks.{g}");
            let ours = format!("blocks.{si}.{bi}");
            if e != 1 {
                out.extend(fold(
                    sd,
                    &format!("{p}._expand_conv"),
                    &format!("{p}._bn0"),
                    &format!("{ours}.expand"),
                )?);
            }
            out.extend(fold(
                sd,
                &format!("{p}._depthwise_conv"),
                &format!("{p}._bn1"),
                &format!("{ours}.dw"),
            )?);
            out.extend(fold(
                sd,
                &format!("{p}._project_conv"),
                &format!("{p}._bn2"),
                &format!("{ours}.project"),
            )?);
            g += 1;
        }
    }
    ensure!(
        !sd.contains_key(&format!("_blocks.{g}._depthwise_conv.weight")),
        "checkpoint has more blocks than Lite0"
    );
    out.extend(fold(sd, "_conv_head", "_bn1", "classifier.conv")?);
    for k in ["weight", "bias"] {
        let (shape, v) = sd
            .get(&format!("_fc.{k}"))
            .with_context(|| format!("checkpoint lacks _fc.{k}"))?;
        out.push(NamedTensor {
            name: format!("classifier.fc.{k}"),
            shape: shape.clone(),
            data: v.clone(),
        });
    }
    Ok(out)
}

/// Writes imported tensors as safetensors (atomically), recording their
/// `source` and the batch-norm fold in the metadata.
pub fn write_weights(path: &Path, tensors: &[NamedTensor], source: &str) -> Result<()> {
    let meta = Metadata::from([
        ("source".to_string(), source.to_string()),
        ("bn_folded".to_string(), format!("eps={BN_EPS}")),
    ]);
    crate::io::safetensors::write(path, tensors, meta, None)
}

/// Reads `pth` (legacy format) and writes its Lite0 tensors, batch norm
/// folded, to `out`; returns how many tensors were written.
pub fn import(pth: &Path, out: &Path) -> Result<usize> {
    let sd = crate::io::pth::read_legacy_pth(pth)?;
    let t = lite0_tensors(&sd)?;
    write_weights(out, &t, &pth.display().to_string())?;
    Ok(t.len())
}

/// Top-5 ImageNet class indices (with softmax probabilities) of a photo,
/// classified by the imported network at 224×224 (bilinear resize, inputs
/// `(x/255 − 0.5)/0.5`): stride-32 Lite0, `classifier.conv` (1×1 to 1280,
/// ReLU6), global average pool, `classifier.fc`.
pub fn classify(weights: &Path, photo: &Path) -> Result<Vec<(usize, f32)>> {
    use crate::net::builder::{ConvSpec, GraphBuilder};
    use crate::net::lite0::efficientnet_lite0;
    use candle_core::{Device, Tensor, D};
    use sld_core::model::Activation;

    let w = crate::io::safetensors::read(weights)?.tensors;
    let mut b = GraphBuilder::new(3, 224, 224, 0);
    let x = efficientnet_lite0(&mut b, 32);
    let head = b.conv(
        "classifier.conv",
        &x,
        ConvSpec::new(1280, 1).act(Activation::Relu6),
    );
    let (mut info, _) = b.finish(&[&head], 32, "imagenet");
    info.graph.input.mean = vec![0.5; 3];
    info.graph.input.std = vec![0.5; 3];
    let dev = Device::Cpu;
    let mut tensors = HashMap::new();
    for (k, t) in &w {
        tensors.insert(
            k.clone(),
            Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &dev)?,
        );
    }
    let rgb = crate::io::image_file::read_rgb(photo)?;
    let img = crate::data::scene::as_image(&rgb)?;
    let spec = &info.graph.input;
    let mut input = vec![0f32; 3 * 224 * 224];
    sld_core::image::resize_normalize(&img, 224, 224, &spec.mean, &spec.std, &mut input);
    let xin = Tensor::from_vec(input, (1, 3, 224, 224), &dev)?;
    let feat = crate::net::graph::forward(&info.graph, &tensors, &xin)?.remove(0);
    let pooled = feat.mean((2, 3))?; // [1, 1280]
    let fw = tensors
        .get("classifier.fc.weight")
        .context("no classifier.fc.weight")?;
    let fb = tensors
        .get("classifier.fc.bias")
        .context("no classifier.fc.bias")?;
    let logits = pooled.matmul(&fw.t()?)?.broadcast_add(fb)?;
    let p = candle_nn::ops::softmax(&logits, D::Minus1)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    Ok(idx.into_iter().take(5).map(|i| (i, p[i])).collect())
}
