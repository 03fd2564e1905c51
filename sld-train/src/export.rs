//! Writing `.sld` model files (the format `sld_core::model` reads; spec in
//! `docs/model-format.md`).

use std::collections::HashMap;

use anyhow::{ensure, Context, Result};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use sld_core::model::{ModelInfo, FORMAT_VERSION, LANDMARKS_TENSOR, META_MODEL, META_VERSION};

/// A named f32 tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Tensor name (as referenced by the graph).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Serialises a model: `tensors` (weights, batch norm already folded),
/// `landmarks` (world coordinates, metres) and `info` (graph and
/// description). Returns the file bytes; `sld_core::model::Model::load`
/// accepts them.
pub fn to_sld_bytes(info: &ModelInfo, tensors: &[NamedTensor], landmarks: &[[f32; 3]]) -> Result<Vec<u8>> {
    ensure!(
        landmarks.len() == info.landmarks as usize,
        "landmark count differs from the description"
    );
    let lm: Vec<u8> = landmarks.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    let mut bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|t| {
            ensure!(
                t.shape.iter().product::<usize>() == t.data.len(),
                "tensor '{}' has a wrong length",
                t.name
            );
            Ok((
                t.name.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            ))
        })
        .collect::<Result<_>>()?;
    bytes.push((LANDMARKS_TENSOR.into(), lm, vec![landmarks.len(), 3]));
    let views = bytes
        .iter()
        .map(|(n, b, s)| Ok((n.as_str(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([
        (META_VERSION.to_string(), FORMAT_VERSION.to_string()),
        (META_MODEL.to_string(), serde_json::to_string(info)?),
    ]);
    safetensors::serialize(views, Some(meta)).context("serialising the model")
}
