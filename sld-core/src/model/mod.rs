//! The `.sld` model file: one safetensors file holding the network weights
//! (batch norm already folded into the convolutions), the landmark
//! coordinates and, in `__metadata__`, a format version and a JSON
//! description ([`ModelInfo`]). Specified in `docs/model-format.md`.
//!
//! [`Model::load`] validates **everything** — version, JSON, every tensor a
//! layer references (present, f32, right shape), shapes through the graph,
//! the landmark table — and plans the activation arena. A loaded model
//! cannot fail when it runs.

pub mod container;
pub mod graph;
pub mod layout;
pub mod plan;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

pub use graph::{Activation, Conv2d, Graph, InputSpec, Layer, Normalize, Op, Shape, INPUT};
pub use plan::{Plan, Step, WeightRange};

/// Format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Metadata key holding the format version (a decimal string).
pub const META_VERSION: &str = "sld.version";
/// Metadata key holding the [`ModelInfo`] JSON.
pub const META_MODEL: &str = "sld.model";
/// Tensor holding the landmarks, f32 `[L, 3]`, world coordinates in metres.
pub const LANDMARKS_TENSOR: &str = "landmarks";

/// Where a model came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The command line that trained / exported it.
    #[serde(default)]
    pub command: String,
    /// ISO 8601 date of export.
    #[serde(default)]
    pub date: String,
}

/// What the network's output maps hold, and so how the [`Localizer`]
/// decodes them.
///
/// [`Localizer`]: crate::Localizer
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeatmapKind {
    /// Heatmaps regressed to Gaussians of height 1 (SLD*): a detection is a
    /// peak ≥ 0.2, refined by a 3-point log-parabola (Gaussian) fit, and its
    /// confidence is the peak value.
    #[default]
    Gaussian,
    /// Per-landmark spatial logits trained with a softmax over the cells
    /// plus an "absent" bin of logit 0: a landmark is detected when the
    /// cells hold at least half the probability
    /// ([`presence`](crate::heatmap::presence), its confidence), at the
    /// peak refined by a 3-point parabola fit on the logits (the
    /// log-probability).
    Logits,
}

/// Everything in the `sld.model` metadata entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The network.
    pub graph: Graph,
    /// Input pixels per heatmap cell (8 for SLD*).
    pub stride: u32,
    /// Number of landmarks `L` (= total heatmap channels = rows of `landmarks`).
    pub landmarks: u32,
    /// What the output maps hold (default: Gaussian heatmaps).
    #[serde(default)]
    pub heatmaps: HeatmapKind,
    /// Scene name.
    #[serde(default)]
    pub scene: String,
    /// Provenance.
    #[serde(default)]
    pub provenance: Provenance,
}

/// Why a model file was rejected (always at load, never at run time).
#[derive(Clone, Debug, PartialEq)]
pub enum ModelError {
    /// Not a safetensors file, or truncated / inconsistent (the reader's message).
    Container(String),
    /// `sld.version` missing.
    MissingVersion,
    /// A version this build cannot read.
    UnsupportedVersion(String),
    /// `sld.model` missing or not valid JSON for this version.
    BadDescription(String),
    /// A tensor the model needs is absent.
    MissingTensor(String),
    /// A tensor has a dtype other than f32.
    WrongDtype {
        /// Tensor name.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// A tensor's shape differs from what the graph needs.
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// Shape found.
        found: Vec<usize>,
        /// Shape expected.
        expected: Vec<usize>,
    },
    /// The graph is inconsistent (unknown input, duplicate name, bad
    /// parameters, incompatible shapes); the message names the layer.
    BadGraph(String),
    /// The header declares a file of `declared` bytes, but there are
    /// `actual`: truncated, or trailing bytes after the model.
    SizeMismatch {
        /// Bytes the header declares (header + data).
        declared: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A buffer the model needs could not be reserved.
    OutOfMemory {
        /// Bytes requested.
        bytes: usize,
    },
    /// A value no model can use: a non-finite weight, or a landmark
    /// coordinate that is not finite or beyond ±[`MAX_LANDMARK_M`] metres.
    BadValue {
        /// Tensor name.
        tensor: String,
        /// Index of the value in the tensor (row-major).
        index: usize,
        /// The value.
        value: f32,
    },
}

/// Largest landmark coordinate accepted, metres (100 km): beyond any
/// scene a camera relocalises in, and still resolved to ~1 cm by `f32`.
pub const MAX_LANDMARK_M: f32 = 1e5;

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Container(m) => write!(f, "not a valid safetensors file: {m}"),
            Self::MissingVersion => write!(f, "metadata has no '{META_VERSION}' entry: not an .sld model"),
            Self::UnsupportedVersion(v) => {
                write!(
                    f,
                    "model format version '{v}' is not supported (this build reads {FORMAT_VERSION})"
                )
            }
            Self::BadDescription(m) => write!(f, "metadata '{META_MODEL}' is invalid: {m}"),
            Self::MissingTensor(t) => write!(f, "tensor '{t}' is referenced but not in the file"),
            Self::WrongDtype { tensor, dtype } => write!(f, "tensor '{tensor}' is {dtype}, f32 required"),
            Self::ShapeMismatch {
                tensor,
                found,
                expected,
            } => write!(f, "tensor '{tensor}' has shape {found:?}, expected {expected:?}"),
            Self::BadGraph(m) => write!(f, "invalid graph: {m}"),
            Self::SizeMismatch { declared, actual } if actual < declared => write!(
                f,
                "truncated: the header declares {declared} bytes, there are {actual}"
            ),
            Self::SizeMismatch { declared, actual } => write!(
                f,
                "{} trailing bytes after the model (the header declares {declared} bytes, there are {actual})",
                actual - declared
            ),
            Self::OutOfMemory { bytes } => write!(f, "out of memory reserving {bytes} bytes"),
            Self::BadValue { tensor, index, value } if tensor == LANDMARKS_TENSOR => write!(
                f,
                "landmark {} coordinate {} is {value}: landmark coordinates must be finite and within ±{MAX_LANDMARK_M} m",
                index / 3,
                index % 3
            ),
            Self::BadValue { tensor, index, value } => write!(
                f,
                "tensor '{tensor}' value {index} is {value}: weights must be finite"
            ),
        }
    }
}

impl core::error::Error for ModelError {}

/// Weights as one f32 slice: borrowed from the file bytes when aligned
/// (zero-copy), else copied once at load.
#[derive(Clone, Debug)]
enum Storage {
    /// f32 view of the file's data section starting at this byte offset.
    Borrowed { start: usize, len: usize },
    /// Copy of the data section.
    Owned(Vec<f32>),
}

/// A validated, planned model over its file bytes `B` (`&[u8]` for
/// zero-copy weights, or an owning buffer such as `Vec<u8>`).
#[derive(Clone, Debug)]
pub struct Model<B: AsRef<[u8]>> {
    bytes: B,
    storage: Storage,
    info: ModelInfo,
    plan: Plan,
    landmarks: Vec<[f64; 3]>,
}

impl<B: AsRef<[u8]>> Model<B> {
    /// Parses and validates a `.sld` file and plans its execution, with
    /// the depthwise-separable core channel-blocked ([`layout`]): the
    /// fastest plan, at the cost of a packed copy of those layers' weights
    /// (most of a MobileNet-style model's).
    pub fn load(bytes: B) -> Result<Self, ModelError> {
        let mut m = Self::load_planar(bytes)?;
        m.plan = m.plan.block_channels(m.weights())?;
        Ok(m)
    }

    /// [`Model::load`] with every activation planar `[C, H, W]` and no
    /// packed weights: the weights stay in the file's bytes (zero-copy when
    /// they are aligned), for devices short of memory, and the reference
    /// the blocked plan is tested against.
    pub fn load_planar(bytes: B) -> Result<Self, ModelError> {
        let data = bytes.as_ref();
        // The framing first: a clear message for truncated files and
        // trailing bytes (safetensors' own is terse).
        if let Ok(declared) = container::declared_len(data) {
            if declared != data.len() {
                return Err(ModelError::SizeMismatch {
                    declared,
                    actual: data.len(),
                });
            }
        }
        let st = SafeTensors::deserialize(data).map_err(|e| ModelError::Container(e.to_string()))?;
        let (header_len, meta) =
            SafeTensors::read_metadata(data).map_err(|e| ModelError::Container(e.to_string()))?;
        let kv = meta.metadata().as_ref();
        let version = kv
            .and_then(|m| m.get(META_VERSION))
            .ok_or(ModelError::MissingVersion)?;
        if version.trim() != FORMAT_VERSION.to_string() {
            return Err(ModelError::UnsupportedVersion(version.clone()));
        }
        let json = kv
            .and_then(|m| m.get(META_MODEL))
            .ok_or_else(|| ModelError::BadDescription("entry missing".into()))?;
        let info: ModelInfo =
            serde_json::from_str(json).map_err(|e| ModelError::BadDescription(e.to_string()))?;

        // Landmarks.
        let lm = tensor_f32(&st, LANDMARKS_TENSOR)?;
        let l = info.landmarks as usize;
        expect_shape(LANDMARKS_TENSOR, lm.shape(), &[l, 3])?;
        let mut landmarks = Vec::new();
        landmarks
            .try_reserve_exact(l)
            .map_err(|_| ModelError::OutOfMemory { bytes: 24 * l })?;
        for (i, c) in lm.data().chunks_exact(12).enumerate() {
            let mut p = [0.0; 3];
            for (k, x) in p.iter_mut().enumerate() {
                let v = f32::from_le_bytes([c[4 * k], c[4 * k + 1], c[4 * k + 2], c[4 * k + 3]]);
                if !(v.abs() <= MAX_LANDMARK_M) {
                    return Err(ModelError::BadValue {
                        tensor: LANDMARKS_TENSOR.into(),
                        index: 3 * i + k,
                        value: v,
                    });
                }
                *x = v as f64;
            }
            landmarks.push(p);
        }

        // The data section and how weights will be read.
        let data_start = 8 + header_len;
        let section = &data[data_start..];
        let base_aligned = (section.as_ptr() as usize).is_multiple_of(4) && cfg!(target_endian = "little");
        let offsets_aligned = meta
            .tensors()
            .values()
            .all(|t| t.data_offsets.0.is_multiple_of(4));
        let storage = if base_aligned && offsets_aligned {
            Storage::Borrowed {
                start: data_start,
                len: section.len() / 4,
            }
        } else {
            let mut copy = Vec::new();
            copy.try_reserve_exact(section.len() / 4)
                .map_err(|_| ModelError::OutOfMemory { bytes: section.len() })?;
            copy.extend(
                section
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            Storage::Owned(copy)
        };
        let resolve = |name: &str| -> Result<(Vec<usize>, WeightRange), ModelError> {
            let t = tensor_f32(&st, name)?;
            // Checked once here, so nothing fails at run time after a load.
            if let Some((index, value)) = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .enumerate()
                .find(|(_, v)| !v.is_finite())
            {
                return Err(ModelError::BadValue {
                    tensor: name.into(),
                    index,
                    value,
                });
            }
            let off = t.data().as_ptr() as usize - section.as_ptr() as usize;
            if !off.is_multiple_of(4) {
                return Err(ModelError::Container(format!(
                    "tensor '{name}' is not 4-byte aligned"
                )));
            }
            Ok((
                t.shape().to_vec(),
                WeightRange {
                    start: off / 4,
                    len: t.data().len() / 4,
                },
            ))
        };
        let plan = Plan::new(&info, resolve)?;
        Ok(Self {
            bytes,
            storage,
            info,
            plan,
            landmarks,
        })
    }

    /// The description stored in the file.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The execution plan (steps, shapes, arena layout).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Landmark coordinates, world frame, metres (`L` entries, in heatmap order).
    pub fn landmarks(&self) -> &[[f64; 3]] {
        &self.landmarks
    }

    /// True when the weights are read in place from the file bytes.
    pub fn is_zero_copy(&self) -> bool {
        matches!(self.storage, Storage::Borrowed { .. })
    }

    /// All weights as one f32 slice, indexed by [`WeightRange`]s.
    pub fn weights(&self) -> &[f32] {
        match &self.storage {
            Storage::Owned(v) => v,
            Storage::Borrowed { start, len } => {
                let bytes = self.bytes.as_ref();
                bytes
                    .get(*start..*start + 4 * *len)
                    .and_then(|b| bytemuck::try_cast_slice(b).ok())
                    // `B::as_ref` returned a different buffer than at load:
                    // an empty slice makes every range lookup fail safely.
                    .unwrap_or(&[])
            }
        }
    }
}

fn tensor_f32<'a>(
    st: &SafeTensors<'a>,
    name: &str,
) -> Result<safetensors::tensor::TensorView<'a>, ModelError> {
    let t = st
        .tensor(name)
        .map_err(|_| ModelError::MissingTensor(name.into()))?;
    if t.dtype() != Dtype::F32 {
        return Err(ModelError::WrongDtype {
            tensor: name.into(),
            dtype: format!("{:?}", t.dtype()),
        });
    }
    Ok(t)
}

fn expect_shape(name: &str, found: &[usize], expected: &[usize]) -> Result<(), ModelError> {
    if found != expected {
        return Err(ModelError::ShapeMismatch {
            tensor: name.into(),
            found: found.to_vec(),
            expected: expected.to_vec(),
        });
    }
    Ok(())
}
