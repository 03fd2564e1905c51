//! Execution plan: the graph resolved to tensor ids, weight ranges and
//! shapes, with every activation placed in one arena by liveness.
//!
//! Built once at load. Arena placement is first-fit over the blocks live
//! at each step: a tensor's block is reused after its last reader ran. A
//! layer's output never overlaps its own inputs.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::graph::{Activation, Conv2d, Normalize, Op, Shape, INPUT};
pub use super::layout::Layout;
use super::layout::BLOCK;
use super::{ModelError, ModelInfo};

/// A weight tensor's position in [`super::Model::weights`], in f32 units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightRange {
    /// First element.
    pub start: usize,
    /// Number of elements.
    pub len: usize,
}

/// A tensor of the plan: shape `[C, H, W]` and arena offset (f32 units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSlot {
    /// Name in the graph.
    pub name: String,
    /// `[C, H, W]`.
    pub shape: Shape,
    /// Offset in the arena, in f32 elements (a multiple of 16: 64 bytes).
    pub offset: usize,
    /// Order of the values ([`Layout::Blocked`]: channels padded to 16).
    pub layout: Layout,
}

impl TensorSlot {
    /// Number of elements, padding channels included.
    pub fn len(&self) -> usize {
        let c = match self.layout {
            Layout::Planar => self.shape[0],
            Layout::Blocked => self.shape[0].div_ceil(BLOCK) * BLOCK,
        };
        c * self.shape[1] * self.shape[2]
    }

    /// True when the tensor has no elements (never, after validation).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Convolution parameters resolved for execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvStep {
    /// Input tensor id.
    pub input: usize,
    /// Output tensor id.
    pub output: usize,
    /// Weights `[C_out, C_in/groups, kh, kw]`.
    pub weight: WeightRange,
    /// Bias `[C_out]`.
    pub bias: Option<WeightRange>,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// `[dh, dw]`.
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
    /// Tensor added after the bias and before the activation (a residual
    /// connection fused by [`fuse_residuals`]; 1×1 convolutions only).
    pub residual: Option<usize>,
    /// Fused activation.
    pub activation: Activation,
    /// The weights packed for channel-blocked kernels, in
    /// [`Plan::packed`] (`[⌈C_out/G⌉, C_in, G]` for 1×1, `G` = `layout::pointwise_group()`,
    /// `[⌈C_out/80⌉, ⌈C_in/16⌉, kh·kw, 16, 80]` for a direct convolution,
    /// `[⌈C/16⌉, kh·kw, 16]` for depthwise); set when the convolution
    /// reads or writes a [`Layout::Blocked`] tensor.
    pub packed: Option<WeightRange>,
    /// 0, or the output tile side `m` (2 or 4) of the Winograd F(m×m, 3×3)
    /// convolution this step runs as ([`crate::nn::winograd`]): `packed`
    /// then holds its `(m + 2)²` transformed 1×1 matrices.
    pub winograd: u8,
}

/// One executable step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Convolution.
    Conv(ConvStep),
    /// Sum of inputs, then activation.
    Add {
        /// Input tensor ids.
        inputs: Vec<usize>,
        /// Output tensor id.
        output: usize,
        /// Activation.
        activation: Activation,
    },
    /// Channel concatenation.
    Concat {
        /// Input tensor ids.
        inputs: Vec<usize>,
        /// Output tensor id.
        output: usize,
    },
    /// Bilinear resampling to the output's `H × W`.
    Resize {
        /// Input tensor id.
        input: usize,
        /// Output tensor id.
        output: usize,
    },
    /// No work: `output` is `input` (an add fused into the convolution
    /// that produced `input`; the two tensors share their arena block).
    Alias {
        /// Input tensor id.
        input: usize,
        /// Output tensor id.
        output: usize,
    },
    /// Standalone activation.
    Act {
        /// Input tensor id.
        input: usize,
        /// Output tensor id.
        output: usize,
        /// Function.
        activation: Activation,
    },
}

/// The resolved, placed graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Tensors; id 0 is the input image.
    pub tensors: Vec<TensorSlot>,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Heatmap tensor ids, in landmark order.
    pub outputs: Vec<usize>,
    /// Arena size in f32 elements (activations).
    pub arena_len: usize,
    /// Scratch size in f32 elements, per thread (im2col chunks, the
    /// input's normalisation, Winograd chunks).
    pub scratch_len: usize,
    /// Heatmap grid `[H, W]`.
    pub heatmap_hw: [usize; 2],
    /// Weights packed for the channel-blocked convolutions
    /// ([`ConvStep::packed`] ranges count from the first 64-byte aligned
    /// element); empty when no tensor is blocked.
    pub packed: Vec<f32>,
}

/// Output pixels unfolded per im2col chunk: the unfolded block stays in
/// the L2 cache between the unfold and its GEMM, and the scratch is
/// `C_in·kh·kw × 256` values instead of a whole unfolded image.
pub const IM2COL_CHUNK: usize = 256;

/// Largest arena, scratch or tensor accepted (2²⁸ f32 = 1 GiB): a corrupt
/// graph must not make a device allocate more than any real model needs.
pub const MAX_ELEMS: usize = 1 << 28;

fn bad(msg: String) -> ModelError {
    ModelError::BadGraph(msg)
}

impl Plan {
    /// Resolves and validates `info.graph`; `resolve(name)` returns a
    /// tensor's shape and weight range (f32, present, else an error).
    pub fn new(
        info: &ModelInfo,
        mut resolve: impl FnMut(&str) -> Result<(Vec<usize>, WeightRange), ModelError>,
    ) -> Result<Self, ModelError> {
        let g = &info.graph;
        let mut tensors = vec![input_slot(info)?];
        let mut steps = Vec::with_capacity(g.layers.len());
        let mut scratch_len = 0usize;
        for layer in &g.layers {
            let name = layer.name.as_str();
            if name.is_empty() || tensors.iter().any(|t| t.name == name) {
                return Err(bad(format!("layer name '{name}' is empty or not unique")));
            }
            let output = tensors.len();
            let (step, shape) = match &layer.op {
                Op::Conv2d(cv) => {
                    let (step, shape, scratch) = conv_step(&tensors, name, cv, output, &mut resolve)?;
                    scratch_len = scratch_len.max(scratch);
                    (step, shape)
                }
                Op::Add { inputs, activation } => add_step(&tensors, name, inputs, *activation, output)?,
                Op::Concat { inputs } => concat_step(&tensors, name, inputs, output)?,
                Op::Resize { input, like } => {
                    let input = find(&tensors, name, input)?;
                    let like = find(&tensors, name, like)?;
                    let shape = [
                        tensors[input].shape[0],
                        tensors[like].shape[1],
                        tensors[like].shape[2],
                    ];
                    (Step::Resize { input, output }, shape)
                }
                Op::Activation { input, activation } => {
                    let input = find(&tensors, name, input)?;
                    let shape = tensors[input].shape;
                    (
                        Step::Act {
                            input,
                            output,
                            activation: *activation,
                        },
                        shape,
                    )
                }
            };
            check_size(name, &shape)?;
            tensors.push(TensorSlot {
                name: name.into(),
                shape,
                offset: 0,
                layout: Layout::Planar,
            });
            steps.push(step);
        }
        let (outputs, heatmap_hw) = resolve_outputs(info, &tensors)?;
        fuse_residuals(&tensors, &mut steps, &outputs);
        let arena_len = place(&mut tensors, &steps, &outputs)?;
        let inp = &info.graph.input;
        scratch_len = scratch_len.max(inp.normalize.scratch_len(inp.width as usize, inp.height as usize));
        if scratch_len > MAX_ELEMS {
            return Err(bad("im2col scratch exceeds 2^28 elements (1 GiB)".into()));
        }
        Ok(Self {
            tensors,
            steps,
            outputs,
            arena_len,
            scratch_len,
            heatmap_hw,
            packed: Vec::new(),
        })
    }

    /// Bytes of activation memory (arena + scratch) needed per running model.
    pub fn memory_bytes(&self) -> usize {
        4 * (self.arena_len + self.scratch_len)
    }

    /// This plan with the depthwise-separable core in channel-blocked
    /// layout and its weights packed from `weights` (see [`super::layout`]).
    pub fn block_channels(&self, weights: &[f32]) -> Result<Plan, ModelError> {
        super::layout::block_channels(self, weights)
    }
}

/// The input tensor of `info`'s graph, after checking the input
/// description (1 or 3 channels, finite mean, positive std) and the stride.
fn input_slot(info: &ModelInfo) -> Result<TensorSlot, ModelError> {
    let inp = &info.graph.input;
    let c = inp.channels as usize;
    if !(c == 1 || c == 3) || inp.width == 0 || inp.height == 0 {
        return Err(bad(format!(
            "input must be 1 or 3 channels and non-empty, got {}x{}x{}",
            inp.channels, inp.height, inp.width
        )));
    }
    if inp.mean.len() != c
        || inp.std.len() != c
        || !inp.mean.iter().all(|m| m.is_finite())
        || !inp.std.iter().all(|s| s.is_finite() && *s > 0.0)
    {
        return Err(bad(format!("input mean/std need {c} finite values, std > 0")));
    }
    if info.stride == 0 {
        return Err(bad("stride must be >= 1".into()));
    }
    if let Normalize::LogLocalContrast { radius } = inp.normalize {
        if !(1..=64).contains(&radius) {
            return Err(bad(format!("input normalize radius must be 1–64, got {radius}")));
        }
    }
    let slot = TensorSlot {
        name: INPUT.into(),
        shape: [c, inp.height as usize, inp.width as usize],
        offset: 0,
        layout: Layout::Planar,
    };
    check_size(INPUT, &slot.shape)?;
    Ok(slot)
}

/// The id of tensor `name`, which layer `layer` reads.
fn find(tensors: &[TensorSlot], layer: &str, name: &str) -> Result<usize, ModelError> {
    tensors.iter().position(|t| t.name == name).ok_or_else(|| {
        bad(format!(
            "layer '{layer}' reads '{name}', which no earlier layer produces"
        ))
    })
}

/// Resolves and checks convolution `name` writing tensor `output`: its
/// step, output shape, and the scratch (f32 elements) it needs.
fn conv_step(
    tensors: &[TensorSlot],
    name: &str,
    cv: &Conv2d,
    output: usize,
    resolve: &mut impl FnMut(&str) -> Result<(Vec<usize>, WeightRange), ModelError>,
) -> Result<(Step, [usize; 3], usize), ModelError> {
    let input = find(tensors, name, &cv.input)?;
    let [ci, h, w] = tensors[input].shape;
    let (wshape, weight) = resolve(&cv.weight)?;
    let groups = cv.groups as usize;
    let stride = [cv.stride[0] as usize, cv.stride[1] as usize];
    let dilation = [cv.dilation[0] as usize, cv.dilation[1] as usize];
    let padding = cv.padding.map(|p| p as usize);
    if wshape.len() != 4 {
        return Err(ModelError::ShapeMismatch {
            tensor: cv.weight.clone(),
            found: wshape,
            expected: vec![0, ci / groups.max(1), 0, 0],
        });
    }
    let (co, kh, kw) = (wshape[0], wshape[2], wshape[3]);
    if groups == 0 || ci % groups != 0 || co % groups != 0 || co == 0 {
        return Err(bad(format!(
            "layer '{name}': groups {groups} must divide input channels {ci} and output channels {co}"
        )));
    }
    if wshape[1] != ci / groups || kh == 0 || kw == 0 {
        return Err(ModelError::ShapeMismatch {
            tensor: cv.weight.clone(),
            found: wshape,
            expected: vec![co, ci / groups, kh.max(1), kw.max(1)],
        });
    }
    if stride.contains(&0) || dilation.contains(&0) || stride.iter().chain(&dilation).any(|v| *v > 64) {
        return Err(bad(format!(
            "layer '{name}': stride and dilation must be in 1..=64"
        )));
    }
    if padding.iter().any(|p| *p > 1024) {
        return Err(bad(format!("layer '{name}': padding must be at most 1024")));
    }
    // Saturating: sizes come from the file, and usize may be
    // 32 bits (a saturated size fails the checks below).
    let eh = dilation[0].saturating_mul(kh - 1).saturating_add(1);
    let ew = dilation[1].saturating_mul(kw - 1).saturating_add(1);
    let ph = h.saturating_add(padding[0] + padding[2]);
    let pw = w.saturating_add(padding[1] + padding[3]);
    if ph < eh || pw < ew {
        return Err(bad(format!(
            "layer '{name}': kernel {kh}x{kw} (dilated {eh}x{ew}) does not fit the padded input {ph}x{pw}"
        )));
    }
    let shape = [co, (ph - eh) / stride[0] + 1, (pw - ew) / stride[1] + 1];
    let bias = match &cv.bias {
        Some(b) => {
            let (bshape, range) = resolve(b)?;
            if bshape != [co] {
                return Err(ModelError::ShapeMismatch {
                    tensor: b.clone(),
                    found: bshape,
                    expected: vec![co],
                });
            }
            Some(range)
        }
        None => None,
    };
    let step = ConvStep {
        input,
        output,
        weight,
        bias,
        kernel: [kh, kw],
        stride,
        padding,
        dilation,
        groups,
        residual: None,
        activation: cv.activation,
        packed: None,
        winograd: 0,
    };
    let scratch = crate::nn::conv::scratch_len(&step, [ci, h, w], shape);
    Ok((Step::Conv(step), shape, scratch))
}

/// Resolves and checks the element-wise sum `name` writing `output`.
fn add_step(
    tensors: &[TensorSlot],
    name: &str,
    inputs: &[String],
    activation: Activation,
    output: usize,
) -> Result<(Step, [usize; 3]), ModelError> {
    if inputs.len() < 2 {
        return Err(bad(format!("layer '{name}': add needs at least 2 inputs")));
    }
    let ids = inputs
        .iter()
        .map(|i| find(tensors, name, i))
        .collect::<Result<Vec<_>, _>>()?;
    let shape = tensors[ids[0]].shape;
    if let Some(&o) = ids.iter().find(|&&i| tensors[i].shape != shape) {
        return Err(bad(format!(
            "layer '{name}': add of {:?} and {:?} ('{}')",
            shape, tensors[o].shape, tensors[o].name
        )));
    }
    Ok((
        Step::Add {
            inputs: ids,
            output,
            activation,
        },
        shape,
    ))
}

/// Resolves and checks the channel concatenation `name` writing `output`.
fn concat_step(
    tensors: &[TensorSlot],
    name: &str,
    inputs: &[String],
    output: usize,
) -> Result<(Step, [usize; 3]), ModelError> {
    if inputs.is_empty() {
        return Err(bad(format!("layer '{name}': concat needs at least 1 input")));
    }
    let ids = inputs
        .iter()
        .map(|i| find(tensors, name, i))
        .collect::<Result<Vec<_>, _>>()?;
    let [_, h, w] = tensors[ids[0]].shape;
    let mut c = 0usize;
    for &i in &ids {
        let s = tensors[i].shape;
        if s[1] != h || s[2] != w {
            return Err(bad(format!(
                "layer '{name}': concat of {h}x{w} and {}x{}",
                s[1], s[2]
            )));
        }
        c = s[0].saturating_add(c); // too large fails check_size
    }
    Ok((Step::Concat { inputs: ids, output }, [c, h, w]))
}

/// The graph's outputs: they exist, share one grid, have as many channels
/// together as the model has landmarks, and the grid matches the stride.
/// Returns their tensor ids and the grid `[H, W]`.
fn resolve_outputs(info: &ModelInfo, tensors: &[TensorSlot]) -> Result<(Vec<usize>, [usize; 2]), ModelError> {
    let g = &info.graph;
    let inp = &g.input;
    if g.outputs.is_empty() {
        return Err(bad("no outputs".into()));
    }
    let outputs = g
        .outputs
        .iter()
        .map(|o| find(tensors, "outputs", o))
        .collect::<Result<Vec<_>, _>>()?;
    let [_, hh, hw] = tensors[outputs[0]].shape;
    let total: usize = outputs.iter().map(|&o| tensors[o].shape[0]).sum();
    if outputs.iter().any(|&o| tensors[o].shape[1..] != [hh, hw]) {
        return Err(bad("outputs differ in height or width".into()));
    }
    if total != info.landmarks as usize {
        return Err(bad(format!(
            "outputs have {total} channels, the model has {} landmarks",
            info.landmarks
        )));
    }
    let s = info.stride as usize;
    let (ih, iw) = (inp.height as usize, inp.width as usize);
    if hh != ih.div_ceil(s) || hw != iw.div_ceil(s) {
        return Err(bad(format!(
            "heatmaps are {hh}x{hw}, but a {ih}x{iw} input at stride {s} gives {}x{}",
            ih.div_ceil(s),
            iw.div_ceil(s)
        )));
    }
    Ok((outputs, [hh, hw]))
}

/// True for convolutions executed as im2col + GEMM (not 1×1 pointwise at
/// stride 1 without padding, not depthwise).
pub(crate) fn needs_im2col(s: &ConvStep, in_channels: usize) -> bool {
    let pointwise = s.kernel == [1, 1] && s.stride == [1, 1] && s.padding == [0; 4] && s.groups == 1;
    let depthwise = s.groups == in_channels && s.weight.len / s.kernel[0] / s.kernel[1] == in_channels;
    !(pointwise || depthwise)
}

fn check_size(name: &str, s: &Shape) -> Result<(), ModelError> {
    match s[0].checked_mul(s[1]).and_then(|v| v.checked_mul(s[2])) {
        Some(n) if n > 0 && n <= MAX_ELEMS => Ok(()),
        _ => Err(bad(format!(
            "tensor '{name}' of shape {s:?} is empty or too large"
        ))),
    }
}

/// Fuses each two-input add that directly follows the 1×1 convolution
/// producing one of its inputs into that convolution's store (as ONNX
/// Runtime's Conv + Sum): the convolution adds the other input before the
/// add's activation, and the add becomes an [`Step::Alias`]. Only when the
/// convolution has no activation of its own, its output is read by nothing
/// else and is not a graph output, so the values are the same bits as
/// running the two steps (`(a·b + bias) + r`, then the activation).
fn fuse_residuals(tensors: &[TensorSlot], steps: &mut [Step], outputs: &[usize]) {
    let mut readers = vec![0usize; tensors.len()];
    for step in steps.iter() {
        match step {
            Step::Conv(c) => readers[c.input] += 1,
            Step::Act { input, .. } | Step::Resize { input, .. } | Step::Alias { input, .. } => {
                readers[*input] += 1
            }
            Step::Add { inputs, .. } | Step::Concat { inputs, .. } => {
                inputs.iter().for_each(|&t| readers[t] += 1)
            }
        }
    }
    for i in 1..steps.len() {
        // Step i - 1 produces tensor i; step i produces tensor i + 1.
        let conv_out = i;
        let Step::Add {
            inputs,
            output,
            activation,
        } = &steps[i]
        else {
            continue;
        };
        let (output, activation) = (*output, *activation);
        let other = match inputs.as_slice() {
            [a, b] if *a == conv_out && *b != conv_out => *b,
            [a, b] if *b == conv_out && *a != conv_out => *a,
            _ => continue,
        };
        if readers[conv_out] != 1 || outputs.contains(&conv_out) {
            continue;
        }
        let Step::Conv(c) = &mut steps[i - 1] else {
            continue;
        };
        let ci = tensors[c.input].shape[0];
        let pointwise = !needs_im2col(c, ci) && c.groups == 1;
        if !pointwise || c.activation != Activation::None || c.residual.is_some() {
            continue;
        }
        c.residual = Some(other);
        c.activation = activation;
        steps[i] = Step::Alias {
            input: conv_out,
            output,
        };
    }
}

/// First-fit placement by liveness; returns the arena length (with
/// [`BLOCK`] elements of slack for aligning the caller's buffer).
pub(super) fn place(
    tensors: &mut [TensorSlot],
    steps: &[Step],
    outputs: &[usize],
) -> Result<usize, ModelError> {
    let n = tensors.len();
    let mut last_use = vec![0usize; n];
    for (i, step) in steps.iter().enumerate() {
        let mut touch = |t: usize| last_use[t] = last_use[t].max(i + 1);
        match step {
            Step::Conv(c) => {
                touch(c.input);
                c.residual.into_iter().for_each(touch);
            }
            Step::Act { input, .. } | Step::Resize { input, .. } | Step::Alias { input, .. } => touch(*input),
            Step::Add { inputs, .. } | Step::Concat { inputs, .. } => inputs.iter().for_each(|&t| touch(t)),
        }
    }
    for &o in outputs {
        last_use[o] = usize::MAX;
    }
    // An alias keeps its input's block alive as long as itself (latest
    // first, so chains of aliases extend all the way back).
    for step in steps.iter().rev() {
        if let Step::Alias { input, output } = *step {
            last_use[input] = last_use[input].max(last_use[output]);
        }
    }
    // Live blocks as (offset, len, tensor), sorted by offset.
    let mut live: Vec<(usize, usize, usize)> = Vec::new();
    let mut arena = 0usize;
    let mut alloc_block = |live: &mut Vec<(usize, usize, usize)>, t: usize, len: usize| -> usize {
        let mut at = 0usize;
        for &(off, l, _) in live.iter() {
            if off >= at.saturating_add(len) {
                break;
            }
            at = at.max(off.saturating_add(l));
        }
        live.push((at, len, t));
        live.sort_unstable();
        arena = arena.max(at.saturating_add(len));
        at
    };
    // Time 0 produces the image; step i produces tensor i + 1 at time i + 1.
    tensors[0].offset = alloc_block(&mut live, 0, tensors[0].len().div_ceil(BLOCK) * BLOCK);
    for (i, step) in steps.iter().enumerate() {
        let t = i + 1;
        // Whole 64-byte lines: every block starts aligned.
        let len = tensors[t].len().div_ceil(BLOCK) * BLOCK;
        tensors[t].offset = match *step {
            Step::Alias { input, .. } => tensors[input].offset,
            _ => alloc_block(&mut live, t, len),
        };
        // Free every tensor not read after this step.
        live.retain(|&(_, _, id)| last_use[id] > i + 1);
    }
    if arena > MAX_ELEMS {
        return Err(bad("activation arena exceeds 2^28 elements (1 GiB)".into()));
    }
    // Slack to start the arena at a 64-byte boundary of the caller's buffer.
    Ok(arena + BLOCK)
}
