//! Inference: runs a [`Plan`] over one arena, no allocation.
//!
//! With `std` on x86-64 the interpreter and every kernel are compiled a
//! second and third time for AVX2 + FMA and for AVX-512 and picked at run
//! time ([`cpu::level`], capped by `SLD_CPU_LEVEL`); those copies, and
//! aarch64, use fused multiply-adds (`gemm::Fused`). Measured in
//! BENCHMARKS.md.
//!
//! The kernels are `#[inline(always)]` down to their tiles, so that each
//! level's copy inlines its vector intrinsics. The channel-blocked 1×1 and
//! direct kernels stop that at one block of tiles: `Lanes::enter` (in
//! `simd`) makes each tile shape a function of its own with the level's
//! target features, since one function holding them all took LLVM ~4
//! minutes to optimise. `--cfg sld_no_forced_inline` drops the forced
//! inlining altogether (the same code, as separate functions, slower):
//! the CI fuzz smoke build sets it, because sanitizer instrumentation of
//! the inlined functions took ~10 minutes of its build (fuzz/build.sh).
//!
//! The caller owns the arena (`plan.arena_len` f32) and the scratch
//! (`plan.scratch_len` f32), writes the normalised input into
//! [`input_mut`], calls [`run`], and reads heatmaps with [`output`].

pub mod blocked;
pub mod conv;
pub mod cpu;
pub mod gemm;
pub mod pool;
pub mod resize;
mod simd;
pub mod winograd;

use core::fmt;

use crate::model::layout::{aligned_shift, BLOCK};
use crate::model::plan::{needs_im2col, Layout, Plan, Step, TensorSlot, WeightRange};
pub use pool::Par;
#[cfg(feature = "std")]
pub use pool::Pool;

/// Why a forward pass could not run (only caller-side mistakes: buffers
/// smaller than the plan asks, weights from a different model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NnError {
    /// Arena or scratch shorter than the plan needs.
    BufferTooSmall,
    /// A weight range lies outside the weights slice.
    WeightsMismatch,
}

impl fmt::Display for NnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BufferTooSmall => "arena or scratch smaller than the plan needs",
            Self::WeightsMismatch => "weights do not match the plan",
        })
    }
}

impl core::error::Error for NnError {}

/// The input tensor's region of the arena (`[C, H, W]`).
pub fn input_mut<'a>(plan: &Plan, arena: &'a mut [f32]) -> Option<&'a mut [f32]> {
    let t = plan.tensors.first()?;
    aligned_mut(arena).get_mut(t.offset..t.offset + t.len())
}

/// The `k`-th heatmap output (`[C_k, H, W]`).
pub fn output<'a>(plan: &Plan, arena: &'a [f32], k: usize) -> Option<&'a [f32]> {
    let t = plan.tensors.get(*plan.outputs.get(k)?)?;
    let (_, arena) = aligned_shift(arena);
    arena.get(t.offset..t.offset + t.len())
}

/// The arena from its first 64-byte boundary on: tensor offsets count from
/// there, so every blocked vector is one aligned cache line (the plan's
/// `arena_len` includes the slack).
fn aligned_mut(arena: &mut [f32]) -> &mut [f32] {
    let (shift, _) = aligned_shift(arena);
    &mut arena[shift..]
}

fn weight(weights: &[f32], r: WeightRange) -> Result<&[f32], NnError> {
    weights
        .get(r.start..r.start + r.len)
        .ok_or(NnError::WeightsMismatch)
}

/// The arena around one output slot: (before, the slot, after).
type Split<'a> = (&'a [f32], &'a mut [f32], &'a [f32]);

/// Splits the arena into the output slot (mutable) and everything else.
fn split<'a>(arena: &'a mut [f32], out: &TensorSlot) -> Result<Split<'a>, NnError> {
    if out.offset + out.len() > arena.len() {
        return Err(NnError::BufferTooSmall);
    }
    let (lo, rest) = arena.split_at_mut(out.offset);
    let (o, hi) = rest.split_at_mut(out.len());
    Ok((lo, o, hi))
}

/// Reads tensor `t` from the parts of the arena around the output slot.
fn read<'a>(lo: &'a [f32], hi: &'a [f32], out: &TensorSlot, t: &TensorSlot) -> Result<&'a [f32], NnError> {
    let (s, n) = (t.offset, t.len());
    if s + n <= lo.len() {
        Ok(&lo[s..s + n])
    } else if s >= out.offset + out.len() {
        let k = s - out.offset - out.len();
        hi.get(k..k + n).ok_or(NnError::BufferTooSmall)
    } else {
        Err(NnError::BufferTooSmall)
    }
}

/// Runs every step of `plan` on one thread. The input must already be in
/// [`input_mut`].
pub fn run(plan: &Plan, weights: &[f32], arena: &mut [f32], scratch: &mut [f32]) -> Result<(), NnError> {
    run_par(plan, weights, arena, scratch, Par::SERIAL)
}

/// [`run`] with the convolutions split over `par`'s threads (bit-identical
/// results). `scratch` holds `plan.scratch_len` f32 per thread.
pub fn run_par(
    plan: &Plan,
    weights: &[f32],
    arena: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> Result<(), NnError> {
    run_range(plan, 0..plan.steps.len(), weights, arena, scratch, par)
}

/// [`run_par`] with each step timed: `seconds[i]` receives step `i`'s wall
/// time in seconds (for profiling: `sld model forward --profile`). Fails
/// with [`NnError::BufferTooSmall`] when `seconds` has fewer entries than
/// the plan has steps.
#[cfg(feature = "std")]
pub fn run_par_timed(
    plan: &Plan,
    weights: &[f32],
    arena: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
    seconds: &mut [f64],
) -> Result<(), NnError> {
    if seconds.len() < plan.steps.len() {
        return Err(NnError::BufferTooSmall);
    }
    for (i, s) in seconds.iter_mut().enumerate().take(plan.steps.len()) {
        let t = std::time::Instant::now();
        run_range(plan, i..i + 1, weights, arena, scratch, par)?;
        *s = t.elapsed().as_secs_f64();
    }
    Ok(())
}

/// Steps `range` of `plan`, in the best kernel level the CPU has.
fn run_range(
    plan: &Plan,
    range: core::ops::Range<usize>,
    weights: &[f32],
    arena: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> Result<(), NnError> {
    if arena.len() < plan.arena_len || scratch.len() < plan.scratch_len {
        return Err(NnError::BufferTooSmall);
    }
    let steps = plan.steps.get(range).ok_or(NnError::BufferTooSmall)?;
    let arena = aligned_mut(arena);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        use cpu::{level, Level};
        match level() {
            // SAFETY: `level()` is Avx512 only when the CPU was detected to
            // have AVX-512F (+ AVX2/FMA); `run_avx512`'s body is safe.
            #[allow(unsafe_code)]
            Level::Avx512 => return unsafe { run_avx512(plan, steps, weights, arena, scratch, par) },
            // SAFETY: `level()` is Avx2 only when AVX2 and FMA were detected.
            #[allow(unsafe_code)]
            Level::Avx2 => return unsafe { run_avx2(plan, steps, weights, arena, scratch, par) },
            Level::Portable => {}
        }
    }
    #[cfg(all(feature = "std", target_arch = "aarch64"))]
    {
        // NEON and FMA are baseline on aarch64.
        return run_steps::<gemm::Fused>(plan, steps, weights, arena, scratch, par);
    }
    #[allow(unreachable_code)]
    run_steps::<gemm::Plain>(plan, steps, weights, arena, scratch, par)
}

/// [`run_steps`] with every kernel compiled for AVX-512.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx2,fma")]
fn run_avx512(
    plan: &Plan,
    steps: &[Step],
    weights: &[f32],
    arena: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> Result<(), NnError> {
    run_steps::<gemm::Fused>(plan, steps, weights, arena, scratch, par)
}

/// [`run_steps`] with every kernel compiled for AVX2 + FMA.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(
    plan: &Plan,
    steps: &[Step],
    weights: &[f32],
    arena: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> Result<(), NnError> {
    run_steps::<gemm::Fused>(plan, steps, weights, arena, scratch, par)
}

/// The interpreter loop; inlined into each feature-specific copy above.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn run_steps<F: gemm::MulAdd>(
    plan: &Plan,
    steps: &[Step],
    weights: &[f32],
    arena: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> Result<(), NnError> {
    let (_, packed) = aligned_shift(&plan.packed);
    for step in steps {
        match step {
            Step::Conv(c) => {
                let (it, ot) = (&plan.tensors[c.input], &plan.tensors[c.output]);
                let b = c.bias.map(|r| weight(weights, r)).transpose()?;
                let (lo, out, hi) = split(arena, ot)?;
                let x = read(lo, hi, ot, it)?;
                let r = match c.residual {
                    Some(t) => Some(read(lo, hi, ot, &plan.tensors[t])?),
                    None => None,
                };
                let ok = match c.packed {
                    // Channel-blocked: 1×1 in any layout pair, direct (blocked in,
                    // either out), or depthwise.
                    Some(pr) => {
                        let w = weight(packed, pr)?;
                        if c.winograd > 0 {
                            let op = winograd::Winograd {
                                x,
                                w,
                                tile: c.winograd as usize,
                                bias: b,
                                st: c,
                                in_shape: it.shape,
                                out_shape: ot.shape,
                            };
                            winograd::run::<F>(&op, out, scratch, plan.scratch_len, par)
                        } else if c.groups == 1 && !needs_im2col(c, it.shape[0]) {
                            let op = blocked::Pointwise {
                                x,
                                in_layout: it.layout,
                                w,
                                group: crate::model::layout::pointwise_group(),
                                bias: b,
                                residual: r,
                                out_layout: ot.layout,
                                ci: it.shape[0],
                                co: ot.shape[0],
                                n: ot.shape[1] * ot.shape[2],
                                activation: c.activation,
                            };
                            blocked::pointwise::<F>(&op, out, par)
                        } else if c.groups == 1 {
                            let op = blocked::Direct {
                                x,
                                in_layout: it.layout,
                                w,
                                bias: b,
                                residual: r,
                                out_layout: ot.layout,
                                st: c,
                                in_shape: it.shape,
                                out_shape: ot.shape,
                            };
                            blocked::direct::<F>(&op, out, par)
                        } else if it.layout == ot.layout && it.layout == Layout::Blocked {
                            let op = blocked::Depthwise {
                                x,
                                w,
                                bias: b,
                                st: c,
                                in_shape: it.shape,
                                out_shape: ot.shape,
                            };
                            blocked::depthwise::<F>(&op, out, par)
                        } else {
                            // The plan never packs anything else.
                            false
                        }
                    }
                    None => {
                        let w = weight(weights, c.weight)?;
                        conv::conv2d::<F>(c, it.shape, ot.shape, x, w, b, r, out, scratch, par)
                    }
                };
                if !ok {
                    return Err(NnError::WeightsMismatch);
                }
            }
            Step::Add {
                inputs,
                output,
                activation,
            } => {
                let ot = &plan.tensors[*output];
                let (lo, out, hi) = split(arena, ot)?;
                let mut ins: [&[f32]; MAX_ADD_INPUTS] = [&[]; MAX_ADD_INPUTS];
                if inputs.len() < 2 || inputs.len() > MAX_ADD_INPUTS {
                    return Err(NnError::WeightsMismatch);
                }
                for (slot, &i) in ins.iter_mut().zip(inputs.iter()) {
                    *slot = read(lo, hi, ot, &plan.tensors[i])?;
                    if slot.len() != out.len() {
                        return Err(NnError::BufferTooSmall);
                    }
                }
                let ins = &ins[..inputs.len()];
                let activation = *activation;
                elementwise(out, par, &|at, d| {
                    // First two inputs in one pass, the rest accumulated.
                    let (a, b) = (&ins[0][at..at + d.len()], &ins[1][at..at + d.len()]);
                    for ((d, x), y) in d.iter_mut().zip(a).zip(b) {
                        *d = x + y;
                    }
                    for src in &ins[2..] {
                        for (d, s) in d.iter_mut().zip(&src[at..]) {
                            *d += s;
                        }
                    }
                    activation.apply_all(d);
                });
            }
            Step::Concat { inputs, output } => {
                let ot = &plan.tensors[*output];
                let (lo, out, hi) = split(arena, ot)?;
                let mut at = 0;
                for &i in inputs {
                    let src = read(lo, hi, ot, &plan.tensors[i])?;
                    out[at..at + src.len()].copy_from_slice(src);
                    at += src.len();
                }
            }
            Step::Resize { input, output } => {
                let ot = &plan.tensors[*output];
                let it = &plan.tensors[*input];
                let (lo, out, hi) = split(arena, ot)?;
                let x = read(lo, hi, ot, it)?;
                if it.layout != ot.layout {
                    return Err(NnError::WeightsMismatch);
                }
                resize_par(x, it.shape, out, ot.shape, it.layout, par);
            }
            // The convolution before it already wrote this block.
            Step::Alias { .. } => {}
            Step::Act {
                input,
                output,
                activation,
            } => {
                let ot = &plan.tensors[*output];
                let (lo, out, hi) = split(arena, ot)?;
                let x = read(lo, hi, ot, &plan.tensors[*input])?;
                if x.len() != out.len() {
                    return Err(NnError::BufferTooSmall);
                }
                let activation = *activation;
                elementwise(out, par, &|at, d| {
                    d.copy_from_slice(&x[at..at + d.len()]);
                    activation.apply_all(d);
                });
            }
        }
    }
    Ok(())
}

/// Most inputs one add step takes (the plan's adds have 2 or 3).
const MAX_ADD_INPUTS: usize = 8;

/// Least floats per thread for an element-wise step: below this a part
/// costs less than handing it over.
const ELEMENTWISE_GRAIN: usize = 16 * 1024;

/// Runs `f(at, piece)` over `out` cut into one contiguous piece per thread
/// (`piece` is `out[at..at + piece.len()]`; pieces are whole cache lines).
/// Each value is computed by the same code whichever piece it is in, so
/// the result does not depend on the thread count.
fn elementwise(out: &mut [f32], par: Par<'_>, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let threads = par
        .threads()
        .min(pool::MAX_THREADS)
        .min(out.len() / ELEMENTWISE_GRAIN)
        .max(1);
    if threads == 1 {
        f(0, out);
        return;
    }
    let lines = out.len().div_ceil(16);
    let mut parts: [Option<(usize, &mut [f32])>; pool::MAX_THREADS] = Default::default();
    let mut rest = out;
    let mut at = 0;
    for (t, slot) in parts.iter_mut().take(threads).enumerate() {
        let end = ((t + 1) * lines / threads * 16).min(at + rest.len());
        let (piece, tail) = rest.split_at_mut(end - at);
        *slot = Some((at, piece));
        rest = tail;
        at = end;
    }
    par.for_parts(&mut parts, &|_, (at, piece)| f(at, piece));
}

/// [`resize::bilinear`] or [`resize::bilinear_blocked`] (by `layout`) with
/// the channels (planar) or channel blocks (blocked) split over `par`'s
/// threads; each channel is resampled by the same code, so the same bits.
fn resize_par(
    x: &[f32],
    [c, h, w]: [usize; 3],
    out: &mut [f32],
    [oc, oh, ow]: [usize; 3],
    layout: Layout,
    par: Par<'_>,
) {
    let (units, per) = match layout {
        Layout::Planar => (c, 1),
        Layout::Blocked => (c.div_ceil(BLOCK), BLOCK),
    };
    let one = |u0: usize, u1: usize, dst: &mut [f32]| {
        let Some(src) = x.get(u0 * per * h * w..u1 * per * h * w) else {
            return;
        };
        match layout {
            Layout::Planar => resize::bilinear(src, [u1 - u0, h, w], dst, [u1 - u0, oh, ow]),
            Layout::Blocked => {
                resize::bilinear_blocked(src, [(u1 - u0) * BLOCK, h, w], dst, [(u1 - u0) * BLOCK, oh, ow])
            }
        }
    };
    let threads = par
        .threads()
        .min(pool::MAX_THREADS)
        .min(units)
        .min(out.len() / ELEMENTWISE_GRAIN)
        .max(1);
    if c != oc || out.len() != units * per * oh * ow || threads == 1 {
        // One call (which also ignores wrong shapes, as the plan checked them).
        match layout {
            Layout::Planar => resize::bilinear(x, [c, h, w], out, [oc, oh, ow]),
            Layout::Blocked => resize::bilinear_blocked(x, [c, h, w], out, [oc, oh, ow]),
        }
        return;
    }
    let mut parts: [Option<(usize, usize, &mut [f32])>; pool::MAX_THREADS] = Default::default();
    let mut rest = out;
    for (t, slot) in parts.iter_mut().take(threads).enumerate() {
        let (u0, u1) = (t * units / threads, (t + 1) * units / threads);
        let (piece, tail) = rest.split_at_mut((u1 - u0) * per * oh * ow);
        *slot = Some((u0, u1, piece));
        rest = tail;
    }
    par.for_parts(&mut parts, &|_, (u0, u1, piece)| one(u0, u1, piece));
}
