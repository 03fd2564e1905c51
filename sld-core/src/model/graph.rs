//! The network graph stored in a `.sld` file: an ordered list of layers,
//! each producing one named tensor (`[C, H, W]`, batch 1, f32).
//!
//! Shapes are inferred and every reference checked at load
//! ([`Graph::validate`]), so nothing can fail when the graph runs.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// Activation applied to a layer's output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)` (EfficientNet-Lite).
    Relu6,
    /// `x · sigmoid(x)`.
    Silu,
}

impl Activation {
    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::Silu => x / (1.0 + libm::expf(-x)),
        }
    }

    /// [`Activation::apply`] over a slice, matched once so the loop
    /// vectorises.
    #[inline(always)]
    pub fn apply_all(self, xs: &mut [f32]) {
        match self {
            Activation::None => {}
            Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
            Activation::Relu6 => xs.iter_mut().for_each(|x| *x = x.clamp(0.0, 6.0)),
            Activation::Silu => xs.iter_mut().for_each(|x| *x = Activation::Silu.apply(*x)),
        }
    }
}

/// A 2D convolution (cross-correlation, as in PyTorch and Candle) with
/// optional bias and fused activation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Name of the input tensor.
    pub input: String,
    /// Weight tensor name, shape `[C_out, C_in / groups, kh, kw]`.
    pub weight: String,
    /// Optional bias tensor name, shape `[C_out]`.
    #[serde(default)]
    pub bias: Option<String>,
    /// `[sh, sw]`.
    #[serde(default = "one_pair")]
    pub stride: [u32; 2],
    /// Zero padding `[top, left, bottom, right]` in input pixels
    /// (asymmetric allowed, e.g. TF "SAME" at stride 2).
    #[serde(default)]
    pub padding: [u32; 4],
    /// `[dh, dw]`.
    #[serde(default = "one_pair")]
    pub dilation: [u32; 2],
    /// Channel groups (`C_in` for depthwise).
    #[serde(default = "one")]
    pub groups: u32,
    /// Fused activation.
    #[serde(default)]
    pub activation: Activation,
}

fn one() -> u32 {
    1
}

fn one_pair() -> [u32; 2] {
    [1, 1]
}

/// What a layer computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Convolution.
    Conv2d(Conv2d),
    /// Element-wise sum of same-shape tensors, then an activation.
    Add {
        /// Inputs (≥ 2).
        inputs: Vec<String>,
        /// Activation after the sum.
        #[serde(default)]
        activation: Activation,
    },
    /// Concatenation along channels.
    Concat {
        /// Inputs (≥ 1), same `H × W`.
        inputs: Vec<String>,
    },
    /// Bilinear resampling of `input` to the height and width of `like`
    /// (PyTorch's `interpolate(mode="bilinear", align_corners=False)`:
    /// pixel centres aligned, source coordinates clamped at the edges).
    Resize {
        /// Tensor resampled (its channels are kept).
        input: String,
        /// Tensor whose `H × W` the output takes.
        like: String,
    },
    /// A standalone activation.
    Activation {
        /// Input tensor.
        input: String,
        /// Function.
        activation: Activation,
    },
}

/// One layer: an op and the name of the tensor it produces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Name of the output tensor (unique; not `"image"`).
    pub name: String,
    /// The computation.
    #[serde(flatten)]
    pub op: Op,
}

/// The network input: an image resized to `width × height`, normalised as
/// `(pixel / 255 − mean[c]) / std[c]`, then per image by [`Normalize`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
    /// 3 (RGB) or 1 (gray).
    pub channels: u32,
    /// Per-channel mean, on pixel values scaled to `[0, 1]`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation (> 0).
    pub std: Vec<f32>,
    /// Per-image normalisation after the mean/std step (absent in the
    /// file: [`Normalize::None`]).
    #[serde(default, skip_serializing_if = "Normalize::is_none")]
    pub normalize: Normalize,
}

/// Per-image normalisation of the network input, applied to each channel
/// plane after `(pixel / 255 − mean) / std` ([`crate::image::normalize`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Normalize {
    /// Nothing beyond mean/std.
    #[default]
    None,
    /// Lighting-invariant local contrast: each value `v` (with mean 0 and
    /// std 1, the intensity in `[0, 1]`) becomes `u = ln(max(v, 0) + 1/64)`,
    /// then `(u − m) / max(s, 0.1)` with `m`, `s` the mean and standard
    /// deviation of `u` over the `(2·radius + 1)²` box around the pixel
    /// (clipped at the borders). A smooth change of illumination or
    /// exposure multiplies `v`, adds a constant to `u`, and cancels.
    LogLocalContrast {
        /// Box radius, network-input pixels (1–64).
        radius: u32,
    },
    /// Instance normalisation (XFeat's input): each plane minus its mean,
    /// divided by `sqrt(variance + 1e-5)` (population variance).
    Instance,
}

impl Normalize {
    /// True for [`Normalize::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Normalize::None)
    }

    /// Scratch `f32`s [`crate::image::normalize`] needs for a `width ×
    /// height` plane.
    pub fn scratch_len(&self, width: usize, height: usize) -> usize {
        match self {
            Normalize::None | Normalize::Instance => 0,
            Normalize::LogLocalContrast { .. } => 2 * width * height,
        }
    }
}

/// The whole graph: input, layers in execution order, heatmap outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Input description; the input tensor is named `"image"`.
    pub input: InputSpec,
    /// Layers in execution order.
    pub layers: Vec<Layer>,
    /// Tensors whose channels, concatenated in this order, are the `L`
    /// landmark heatmaps (one per head; several heads may share a backbone).
    pub outputs: Vec<String>,
}

/// Name of the network's input tensor.
pub const INPUT: &str = "image";

/// Shape `[C, H, W]` of a tensor.
pub type Shape = [usize; 3];
