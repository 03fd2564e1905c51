//! Checkpoints: every variable and both AdamW moments of every optimiser,
//! with the run's metadata, in one safetensors file written atomically
//! (`OUT/checkpoint.safetensors`); read back for an exact `--resume`.
//! Also the model export of the current variables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var};

use super::adamw::{AdamW, AdamWParams};
use super::options::TrainOptions;
use crate::io::safetensors::{Metadata, NamedTensor};
use crate::net::export::to_sld_bytes;
use sld_core::model::ModelInfo;

/// `OUT/checkpoint.safetensors`.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("checkpoint.safetensors")
}

/// Writes the variables and moments of every optimiser (tensor names
/// `param/PREFIX+NAME`, `adam_m/…`, `adam_v/…`) and `meta` atomically as
/// one safetensors file, serialised in memory first.
pub fn save_checkpoint(out: &Path, opts: &[(&str, &AdamW)], meta: Metadata) -> Result<()> {
    let mut tensors = Vec::new();
    for (pre, opt) in opts {
        for (n, v, m, s) in &opt.vars {
            for (kind, t) in [("param", v.as_tensor()), ("adam_m", m), ("adam_v", s)] {
                tensors.push(NamedTensor {
                    name: format!("{kind}/{pre}{n}"),
                    shape: t.dims().to_vec(),
                    data: t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
                });
            }
        }
    }
    crate::io::safetensors::write(&checkpoint_path(out), &tensors, meta, Some("checkpoint"))
}

/// A checkpoint read back: tensors by name and the metadata.
pub struct Checkpoint {
    /// Where it was read from.
    pub path: PathBuf,
    /// Tensors by name (`param/…`, `adam_m/…`, `adam_v/…`).
    pub tensors: HashMap<String, Tensor>,
    /// The metadata (epoch, steps, options, …).
    pub meta: HashMap<String, String>,
}

impl Checkpoint {
    /// Reads `OUT/checkpoint.safetensors` (for `--resume`), its tensors
    /// onto `device` (a checkpoint written on one device resumes on any).
    pub fn read(out: &Path, device: &Device) -> Result<Self> {
        let path = checkpoint_path(out);
        let st = crate::io::safetensors::read(&path).context("--resume")?;
        let tensors = st
            .tensors
            .into_values()
            .map(|t| Ok((t.name, Tensor::from_vec(t.data, t.shape.as_slice(), device)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        let meta = st.meta;
        Ok(Self { path, tensors, meta })
    }

    /// Refuses to resume with options that build another network.
    pub fn check_network(&self, o: &TrainOptions) -> Result<()> {
        let saved: TrainOptions = self.options()?;
        ensure!(
            saved.arch == o.arch
                && saved.width == o.width
                && saved.head_channels == o.head_channels
                && saved.heads == o.heads
                && saved.input_width == o.input_width
                && saved.input_height == o.input_height,
            "{}: the checkpoint's network ({:?}, width {}, head {}, {} head(s), {}×{}) differs from the options given",
            self.path.display(),
            saved.arch,
            saved.width,
            saved.head_channels,
            saved.heads,
            saved.input_width,
            saved.input_height
        );
        Ok(())
    }

    /// The metadata value `key`, parsed.
    pub fn get<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        self.meta
            .get(key)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{}: no '{key}' in the checkpoint", self.path.display()))
    }

    /// The training options saved with the checkpoint.
    pub fn options<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(self.meta.get("options").map(String::as_str).unwrap_or("{}"))
            .with_context(|| format!("{}: no training options in the checkpoint", self.path.display()))
    }

    /// The optimiser over `init`'s names (prefixed by `prefix` in the file).
    pub fn adamw(&self, prefix: &str, init: &[NamedTensor], step: u64, lr: f64) -> Result<AdamW> {
        let get = |k: &str| {
            self.tensors
                .get(k)
                .cloned()
                .with_context(|| format!("{}: missing tensor {k}", self.path.display()))
        };
        let vars = init
            .iter()
            .map(|t| {
                let p = get(&format!("param/{prefix}{}", t.name))?;
                ensure!(
                    p.dims() == t.shape.as_slice(),
                    "{}: tensor {prefix}{} has shape {:?}, expected {:?}",
                    self.path.display(),
                    t.name,
                    p.dims(),
                    t.shape
                );
                Ok((
                    t.name.clone(),
                    Var::from_tensor(&p)?,
                    get(&format!("adam_m/{prefix}{}", t.name))?,
                    get(&format!("adam_v/{prefix}{}", t.name))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            vars,
            step,
            params: AdamWParams {
                lr,
                ..Default::default()
            },
        })
    }
}

/// A fresh optimiser over `init`, its variables on `device`.
pub fn fresh_adamw(init: &[NamedTensor], lr: f64, device: &Device) -> Result<AdamW> {
    let vars = init
        .iter()
        .map(|t| {
            Ok((
                t.name.clone(),
                Var::from_tensor(&Tensor::from_vec(t.data.clone(), t.shape.as_slice(), device)?)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    AdamW::new(
        vars,
        AdamWParams {
            lr,
            ..Default::default()
        },
    )
}

/// The current values of optimiser variables.
pub fn named_tensors(vars: &[(String, Var, Tensor, Tensor)]) -> Result<Vec<NamedTensor>> {
    vars.iter()
        .map(|(n, v, _, _)| {
            let t = v.as_tensor();
            Ok(NamedTensor {
                name: n.clone(),
                shape: t.dims().to_vec(),
                data: t.flatten_all()?.to_vec1::<f32>()?,
            })
        })
        .collect()
}

/// Exports `frozen` plus the current `vars` as a `.sld` file; returns the bytes.
pub fn export(
    info: &ModelInfo,
    frozen: &[NamedTensor],
    vars: &[(String, Var, Tensor, Tensor)],
    landmarks: &[[f64; 3]],
) -> Result<Vec<u8>> {
    let mut tensors = frozen.to_vec();
    tensors.extend(named_tensors(vars)?);
    let lm: Vec<[f32; 3]> = landmarks.iter().map(|p| p.map(|v| v as f32)).collect();
    to_sld_bytes(info, &tensors, &lm)
}
