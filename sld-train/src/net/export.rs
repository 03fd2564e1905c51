//! Writing `.sld` model files (the format `sld_core::model` reads; spec in
//! `docs/model-format.md`).

use anyhow::{ensure, Context, Result};
use sld_core::model::{ModelInfo, FORMAT_VERSION, LANDMARKS_TENSOR, META_MODEL, META_VERSION};

use crate::io::safetensors::Metadata;
pub use crate::io::safetensors::NamedTensor;

/// Serialises a model: `tensors` (weights, batch norm already folded),
/// `landmarks` (world coordinates, metres) and `info` (graph and
/// description). Returns the file bytes; `sld_core::model::Model::load`
/// accepts them.
pub fn to_sld_bytes(info: &ModelInfo, tensors: &[NamedTensor], landmarks: &[[f32; 3]]) -> Result<Vec<u8>> {
    ensure!(
        landmarks.len() == info.landmarks as usize,
        "landmark count differs from the description"
    );
    let mut all = tensors.to_vec();
    all.push(NamedTensor {
        name: LANDMARKS_TENSOR.into(),
        shape: vec![landmarks.len(), 3],
        data: landmarks.iter().flatten().copied().collect(),
    });
    let meta = Metadata::from([
        (META_VERSION.to_string(), FORMAT_VERSION.to_string()),
        (META_MODEL.to_string(), serde_json::to_string(info)?),
    ]);
    crate::io::safetensors::serialize(&all, meta).context("serialising the model")
}
