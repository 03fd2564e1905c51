//! Named `f32` tensors in safetensors files, with string metadata: the one
//! reader and writer behind model files, backbones, checkpoints and
//! imported weights. Values are little-endian `f32`, row-major.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

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

/// String metadata of a safetensors file (`__metadata__`).
pub type Metadata = HashMap<String, String>;

/// The tensors of a file by name, and its metadata.
pub struct Tensors {
    /// Tensors by name.
    pub tensors: HashMap<String, NamedTensor>,
    /// The file's metadata (empty when it has none).
    pub meta: Metadata,
}

/// Serialises `tensors` and `meta` (checks each tensor's length against its shape).
pub fn serialize(tensors: &[NamedTensor], meta: Metadata) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| {
            ensure!(
                t.shape.iter().product::<usize>() == t.data.len(),
                "tensor '{}' has {} values for shape {:?}",
                t.name,
                t.data.len(),
                t.shape
            );
            Ok(t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect::<Result<_>>()?;
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| Ok((t.name.as_str(), TensorView::new(Dtype::F32, t.shape.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(meta)).context("serialising safetensors")
}

/// Writes `tensors` and `meta` to `path` atomically ([`crate::io::atomic`]);
/// `phase` names a fault-injection point for the crash tests.
pub fn write(path: &Path, tensors: &[NamedTensor], meta: Metadata, phase: Option<&str>) -> Result<()> {
    let bytes = serialize(tensors, meta)?;
    crate::io::atomic::write_atomic_traced(path, &bytes, phase)
}

/// Parses a safetensors file held in memory; every tensor must be f32.
/// `path` names it in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Tensors> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut tensors = HashMap::new();
    for (name, v) in st.tensors() {
        ensure!(
            v.dtype() == Dtype::F32,
            "{}: tensor {name} is not f32",
            path.display()
        );
        let data = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(
            name.clone(),
            NamedTensor {
                name,
                shape: v.shape().to_vec(),
                data,
            },
        );
    }
    Ok(Tensors { tensors, meta })
}

/// Reads and parses a safetensors file (as [`parse`]).
pub fn read(path: &Path) -> Result<Tensors> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes, path)
}

/// Reads only the metadata of a safetensors file (the header, not the
/// tensor data; the header length is checked against the file first).
pub fn read_metadata(path: &Path) -> Result<Metadata> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let n = u64::from_le_bytes(len);
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    // safetensors' own limit on the header is 100 MB.
    ensure!(
        n <= 100 << 20 && n.saturating_add(8) <= size,
        "{}: not a safetensors file (header of {n} bytes in a file of {size})",
        path.display()
    );
    let mut head = vec![0u8; n as usize];
    f.read_exact(&mut head)
        .with_context(|| format!("{}: truncated safetensors header", path.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&head)
        .with_context(|| format!("{}: safetensors header is not JSON", path.display()))?;
    let meta = v
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_metadata_and_header_only_read() {
        let dir = std::env::temp_dir().join(format!("sld-st-{}", std::process::id()));
        let p = dir.join("t.safetensors");
        let t = vec![
            NamedTensor {
                name: "a".into(),
                shape: vec![2, 3],
                data: vec![1.0, -2.0, 3.5, 0.0, 1e-8, 7.0],
            },
            NamedTensor {
                name: "b".into(),
                shape: vec![1],
                data: vec![42.0],
            },
        ];
        let meta = Metadata::from([("k".to_string(), "v".to_string())]);
        write(&p, &t, meta.clone(), None).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back.meta, meta);
        assert_eq!(back.tensors["a"], t[0]);
        assert_eq!(back.tensors["b"], t[1]);
        assert_eq!(read_metadata(&p).unwrap(), meta);
        // A wrong length is refused, not written.
        let bad = NamedTensor {
            name: "c".into(),
            shape: vec![4],
            data: vec![1.0],
        };
        assert!(serialize(&[bad], Metadata::new()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
