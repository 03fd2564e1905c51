//! Channel-blocked activations (NCHW16c) for the depthwise-separable core
//! of a network, decided once at load.
//!
//! A [`Layout::Blocked`] tensor of `C` channels and `N = H·W` pixels keeps
//! channel `c` of pixel `p` at `((c / 16)·N + p)·16 + c mod 16`: each
//! pixel's 16 channels of a block are one 64-byte vector. Depthwise
//! convolutions then vectorise across channels (every load a whole,
//! aligned vector, weights as vectors, no border special cases in the
//! lanes), and 1×1 convolutions broadcast one input value against a vector
//! of 16 output channels, reading their packed weights in order, as ONNX
//! Runtime's MLAS does. Channels past `C` in the last block are padding:
//! kernels compute them, and no kernel ever reads them into a real channel.
//!
//! [`block_channels`] picks which tensors are blocked: those produced by
//! a convolution (1×1, depthwise or direct), an add or a resize whose
//! every reader can take them, and concatenations of such tensors that
//! hold whole blocks of 16 channels (bar the last: the blocked
//! concatenation is then the inputs' memory one after the other, as the
//! ASPP head's four 80-channel branches). The graph's input and outputs,
//! tensors of fewer than 16 channels (8 at AVX2: [`min_blocked_channels`]),
//! other concatenations, standalone
//! activations and grouped (non-depthwise) convolutions stay planar
//! `[C, H, W]`. A depthwise
//! convolution, an add and a resize read and write one layout, a fused
//! residual has its convolution's output layout, a 1×1 convolution may
//! convert (planar in, blocked out, or the reverse), and a direct
//! convolution (any other ungrouped one: 3×3, dilated as in the ASPP
//! head, strided as in XFeat's trunk or a stem on the image) reads either
//! layout (blocked only at stride 1 or 2: the planar read is for the
//! image and other few-channel inputs) and writes either; a strided one
//! takes the direct kernel even planar in and out, instead of im2col. It
//! then packs those layers' weights (a copy: the model keeps its file's
//! weights untouched) and places the arena anew.
//! Only where [`crate::nn::blocked::preferred`] says so (x86-64 with AVX2
//! or AVX-512); elsewhere the plan stays planar.

use alloc::vec;
use alloc::vec::Vec;

use super::plan::{needs_im2col, place, ConvStep, Plan, Step, WeightRange};
use super::ModelError;

/// Channels per block (one AVX-512 vector, two AVX2 vectors, four NEON).
pub const BLOCK: usize = 16;

/// Output channels per row of packed 1×1 weights on this CPU: 64 at
/// AVX-512, whose widest 1×1 tile (4 blocks) then reads one contiguous row
/// per input channel; else 16, the one block an AVX2 or portable tile
/// reads, so its weights are one contiguous stream (with rows of 64 it
/// used a quarter of each 256-byte row, and the 1×1 layers ran ~6 %
/// slower at AVX2). Packing and kernels both ask this (the level is fixed
/// for the process).
pub fn pointwise_group() -> usize {
    if crate::nn::cpu::level() == crate::nn::cpu::Level::Avx512 {
        64
    } else {
        BLOCK
    }
}

/// The fewest channels a tensor is blocked with on this CPU: 8 at AVX2,
/// whose tiles of two pixels per vector (`Lanes::PAIRS`) spend no FMA on
/// an 8-channel block's padding (XFeat's 8 → 8 channel 3×3 layer at
/// 480×264: 1.13 ms planar by implicit GEMM, 0.68 ms blocked by the direct
/// kernel); else 16 (padded to 16, XFeat's 4-channel layer took 1.13 ms
/// blocked and 0.34 ms planar at AVX-512).
pub fn min_blocked_channels() -> usize {
    if crate::nn::cpu::level() == crate::nn::cpu::Level::Avx2 {
        BLOCK / 2
    } else {
        BLOCK
    }
}

/// Output channels per row of packed direct-convolution weights: the
/// widest direct tile (AVX-512, 5 blocks × 4 pixels) reads one contiguous
/// row per input channel and tap.
pub const DIRECT_GROUP: usize = 80;

/// How a tensor's values are ordered in the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// `[C, H, W]`, row-major.
    #[default]
    Planar,
    /// `[⌈C/16⌉, H, W, 16]` (NCHW16c), channels padded to a multiple of 16.
    Blocked,
}

/// What a convolution is, for the layout decision.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 1×1, stride 1, no padding, one group.
    Pointwise,
    /// One group per channel, as many outputs as inputs.
    Depthwise,
    /// Any other ungrouped convolution (3×3, dilated, padded, strided):
    /// reads either layout (blocked only at strides 1 and 2), writes
    /// either.
    Direct,
    /// Anything else (read and written planar).
    Other,
}

fn kind(c: &ConvStep, in_channels: usize, out_channels: usize) -> Kind {
    if needs_im2col(c, in_channels) {
        if c.groups == 1 && !c.kernel.contains(&0) && !c.dilation.contains(&0) && !c.stride.contains(&0) {
            Kind::Direct
        } else {
            Kind::Other
        }
    } else if c.groups == 1 {
        Kind::Pointwise
    } else if out_channels == in_channels {
        Kind::Depthwise
    } else {
        Kind::Other
    }
}

/// Whether the tensors `inputs`, blocked, concatenate along channels by
/// placing their memory one after the other: every one but the last
/// holds whole blocks of 16 channels (no padding lanes in between).
fn concat_aligned(p: &Plan, inputs: &[usize]) -> bool {
    let n = inputs.len();
    inputs
        .iter()
        .take(n.saturating_sub(1))
        .all(|&t| p.tensors[t].shape[0].is_multiple_of(BLOCK))
}

/// Marks the tensors of `plan` that are better blocked, packs the weights
/// (taken from `weights`, the model's) of every convolution that reads or
/// writes one, and places the arena again. A plan with no such layer is
/// returned unchanged.
pub fn block_channels(plan: &Plan, weights: &[f32]) -> Result<Plan, ModelError> {
    let mut p = plan.clone();
    if !crate::nn::blocked::preferred() {
        return Ok(p);
    }
    let n = p.tensors.len();
    let kinds: Vec<Kind> = p
        .steps
        .iter()
        .map(|s| match s {
            Step::Conv(c) => kind(c, p.tensors[c.input].shape[0], p.tensors[c.output].shape[0]),
            _ => Kind::Other,
        })
        .collect();
    // Start from every tensor of at least `min_blocked_channels` that a
    // convolution, add, resize, alias or aligned concatenation produces
    // (fewer would be mostly padding), then clear
    // every tensor a constraint rules out until none does (only ever
    // clearing, so this ends).
    let mut blocked = vec![false; n];
    for (i, s) in p.steps.iter().enumerate() {
        blocked[i + 1] = match s {
            Step::Conv(_) => kinds[i] != Kind::Other,
            Step::Alias { .. } => true,
            Step::Concat { inputs, .. } => concat_aligned(&p, inputs),
            Step::Add { .. } | Step::Resize { .. } => true,
            Step::Act { .. } => false,
        } && p.tensors[i + 1].shape[0] >= min_blocked_channels();
    }
    for &o in &p.outputs {
        blocked[o] = false;
    }
    loop {
        let mut changed = false;
        let mut clear = |t: usize, b: &mut Vec<bool>| {
            if b[t] {
                b[t] = false;
                changed = true;
            }
        };
        for (i, s) in p.steps.iter().enumerate() {
            match s {
                Step::Conv(c) => match kinds[i] {
                    Kind::Pointwise | Kind::Direct => {
                        if kinds[i] == Kind::Direct && c.stride != [1, 1] && c.stride != [2, 2] {
                            clear(c.input, &mut blocked);
                        }
                        if let Some(r) = c.residual {
                            if blocked[r] != blocked[c.output] {
                                clear(r, &mut blocked);
                                clear(c.output, &mut blocked);
                            }
                        }
                    }
                    Kind::Depthwise => {
                        if blocked[c.input] != blocked[c.output] {
                            clear(c.input, &mut blocked);
                            clear(c.output, &mut blocked);
                        }
                    }
                    Kind::Other => clear(c.input, &mut blocked),
                },
                Step::Alias { input, output } => {
                    if blocked[*input] != blocked[*output] {
                        clear(*input, &mut blocked);
                        clear(*output, &mut blocked);
                    }
                }
                // Blocked, a concatenation of whole channel blocks is the
                // inputs' memory one after the other (`concat_aligned`):
                // all of them blocked or none.
                Step::Concat { inputs, output } => {
                    if inputs.iter().any(|&t| blocked[t] != blocked[*output]) {
                        inputs.iter().for_each(|&t| clear(t, &mut blocked));
                        clear(*output, &mut blocked);
                    }
                }
                // Element-wise over the padded blocks: every tensor in one
                // layout.
                Step::Add { inputs, output, .. } => {
                    if inputs.iter().any(|&t| blocked[t] != blocked[*output]) {
                        inputs.iter().for_each(|&t| clear(t, &mut blocked));
                        clear(*output, &mut blocked);
                    }
                }
                Step::Resize { input, output } => {
                    if blocked[*input] != blocked[*output] {
                        clear(*input, &mut blocked);
                        clear(*output, &mut blocked);
                    }
                }
                Step::Act { input, .. } => clear(*input, &mut blocked),
            }
        }
        if !changed {
            break;
        }
    }
    let strided = p
        .steps
        .iter()
        .zip(&kinds)
        .any(|(s, k)| matches!(s, Step::Conv(c) if *k == Kind::Direct && c.stride != [1, 1]));
    if !blocked.iter().any(|b| *b) && !strided {
        return Ok(p);
    }
    for (t, b) in p.tensors.iter_mut().zip(&blocked) {
        t.layout = if *b { Layout::Blocked } else { Layout::Planar };
    }
    // Pack the weights of every convolution touching a blocked tensor.
    let mut packed_len = 0usize;
    let mut jobs = Vec::new();
    for (i, s) in p.steps.iter_mut().enumerate() {
        let Step::Conv(c) = s else { continue };
        // A strided direct convolution takes the direct kernel even
        // planar in and out (no im2col; XFeat's 4 → 8 channel layer ran
        // in 0.68 ms instead of 1.05).
        let strided = kinds[i] == Kind::Direct && c.stride != [1, 1];
        if !(blocked[c.input] || blocked[c.output] || strided) {
            continue;
        }
        let [co, ..] = p.tensors[c.output].shape;
        let ci = p.tensors[c.input].shape[0];
        // Blocked in and out, 3×3 at stride 1: Winograd.
        let [_, ho, wo] = p.tensors[c.output].shape;
        c.winograd = if kinds[i] == Kind::Direct && blocked[c.input] && blocked[c.output] {
            crate::nn::winograd::tile_for(c, ci, co, [ho, wo])
        } else {
            0
        };
        let m = c.winograd as usize;
        if m > 0 {
            p.scratch_len = p.scratch_len.max(crate::nn::winograd::scratch_len(ci, co, m));
        }
        let len = match kinds[i] {
            _ if m > 0 => crate::nn::winograd::packed_len(ci, co, m),
            Kind::Pointwise => {
                co.div_ceil(pointwise_group()) * pointwise_group() * p.tensors[c.input].shape[0]
            }
            Kind::Direct => {
                let ci = p.tensors[c.input].shape[0];
                co.div_ceil(DIRECT_GROUP)
                    * ci.div_ceil(BLOCK)
                    * BLOCK
                    * DIRECT_GROUP
                    * c.kernel[0]
                    * c.kernel[1]
            }
            _ => co.div_ceil(BLOCK) * BLOCK * c.kernel[0] * c.kernel[1],
        };
        c.packed = Some(WeightRange {
            start: packed_len,
            len,
        });
        jobs.push(i);
        packed_len = packed_len.saturating_add(len);
    }
    let total = packed_len.saturating_add(BLOCK);
    let mut packed = Vec::new();
    packed
        .try_reserve_exact(total)
        .map_err(|_| ModelError::OutOfMemory { bytes: 4 * total })?;
    packed.resize(total, 0.0);
    {
        let (shift, _) = aligned_shift(&packed);
        let dst = &mut packed[shift..];
        for i in jobs {
            let Step::Conv(c) = &p.steps[i] else { continue };
            let w = weights
                .get(c.weight.start..c.weight.start + c.weight.len)
                .ok_or_else(|| ModelError::BadGraph("weights outside the data section".into()))?;
            let Some(r) = c.packed else { continue };
            let d = &mut dst[r.start..r.start + r.len];
            let [co, ..] = p.tensors[c.output].shape;
            match kinds[i] {
                _ if c.winograd > 0 => {
                    crate::nn::winograd::pack(w, co, p.tensors[c.input].shape[0], c.winograd as usize, d)
                }
                Kind::Pointwise => pack_pointwise(w, co, p.tensors[c.input].shape[0], d),
                Kind::Direct => pack_direct(w, co, p.tensors[c.input].shape[0], c.kernel[0] * c.kernel[1], d),
                _ => pack_depthwise(w, co, c.kernel[0] * c.kernel[1], d),
            }
        }
    }
    p.packed = packed;
    p.arena_len = place(&mut p.tensors, &p.steps, &p.outputs)?;
    Ok(p)
}

/// Elements to skip from `v`'s start to reach a 64-byte boundary, and the
/// slice from there (`v` must have [`BLOCK`] elements of slack).
pub(crate) fn aligned_shift(v: &[f32]) -> (usize, &[f32]) {
    let shift = ((64 - (v.as_ptr() as usize) % 64) % 64) / 4;
    let shift = shift.min(v.len());
    (shift, &v[shift..])
}

/// `[C_out, C_in]` → `[⌈C_out/G⌉, C_in, G]` with `G` =
/// [`pointwise_group`], padded output channels zero.
pub(crate) fn pack_pointwise(w: &[f32], co: usize, ci: usize, dst: &mut [f32]) {
    let group = pointwise_group();
    for (o, row) in w.chunks_exact(ci).take(co).enumerate() {
        let (g, l) = (o / group, o % group);
        for (i, v) in row.iter().enumerate() {
            dst[(g * ci + i) * group + l] = *v;
        }
    }
}

/// `[C_out, C_in, kh, kw]` → `[⌈C_out/80⌉, ⌈C_in/16⌉, kh·kw, 16, 80]`
/// (output channels innermost, then the 16 input channels of a block, as
/// the direct kernel reads them), padded channels zero.
pub(crate) fn pack_direct(w: &[f32], co: usize, ci: usize, taps: usize, dst: &mut [f32]) {
    let cbs = ci.div_ceil(BLOCK);
    for (o, row) in w.chunks_exact(ci * taps).take(co).enumerate() {
        let (grp, l) = (o / DIRECT_GROUP, o % DIRECT_GROUP);
        for (k, v) in row.iter().enumerate() {
            let (i, t) = (k / taps, k % taps);
            let at = (((grp * cbs + i / BLOCK) * taps + t) * BLOCK + i % BLOCK) * DIRECT_GROUP + l;
            dst[at] = *v;
        }
    }
}

/// `[C, 1, kh, kw]` → `[⌈C/16⌉, kh·kw, 16]`, padded channels zero.
pub(crate) fn pack_depthwise(w: &[f32], c: usize, taps: usize, dst: &mut [f32]) {
    for (ch, row) in w.chunks_exact(taps).take(c).enumerate() {
        let (b, l) = (ch / BLOCK, ch % BLOCK);
        for (t, v) in row.iter().enumerate() {
            dst[(b * taps + t) * BLOCK + l] = *v;
        }
    }
}
