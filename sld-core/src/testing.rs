//! Entry points into sld-core's internals for its own tests
//! (`sld-core/tests/unit/`). **Not part of the API**: hidden from the docs
//! and free to change in any release.
//!
//! Why they exist: the module tests live outside the library, so that
//! `cargo test` compiles the library once. A unit-test build compiles the
//! whole crate a second time, every kernel included: four minutes of one
//! core, and the end of CI's test build (RELIABILITY.md, "CI budget").
//! The wrappers are plain functions, not generic ones, so a test calls the
//! code compiled into the library instead of instantiating the kernels
//! again in the test crate.
//!
//! The kernels expect what a validated plan gives them (a stride of at
//! least 1, shapes that agree with the step); they refuse buffers that are
//! too short.

#[cfg(feature = "alloc")]
use alloc::{vec, vec::Vec};

#[cfg(feature = "alloc")]
pub use crate::nn::blocked::{Depthwise, Direct, Pointwise};
#[cfg(feature = "alloc")]
pub use crate::nn::winograd::Winograd;
#[cfg(feature = "alloc")]
use crate::{
    model::{
        layout::{self, BLOCK, DIRECT_GROUP},
        plan::ConvStep,
        Shape,
    },
    nn::{gemm::Plain, Par},
};

/// The blocked 1×1 convolution ([`Pointwise`]) at the CPU's kernel level;
/// false when a buffer is too short.
#[cfg(feature = "alloc")]
pub fn pointwise(op: &Pointwise<'_>, out: &mut [f32], par: Par<'_>) -> bool {
    crate::nn::blocked::pointwise::<Plain>(op, out, par)
}

/// The blocked depthwise convolution ([`Depthwise`]) at the CPU's kernel
/// level; false when a buffer is too short.
#[cfg(feature = "alloc")]
pub fn depthwise(op: &Depthwise<'_>, out: &mut [f32], par: Par<'_>) -> bool {
    crate::nn::blocked::depthwise::<Plain>(op, out, par)
}

/// The direct convolution ([`Direct`]) at the CPU's kernel level; false
/// when a buffer is too short.
#[cfg(feature = "alloc")]
pub fn direct(op: &Direct<'_>, out: &mut [f32], par: Par<'_>) -> bool {
    crate::nn::blocked::direct::<Plain>(op, out, par)
}

/// The Winograd F(2×2, 3×3) convolution ([`Winograd`]) at the CPU's
/// kernel level; `scratch` holds `per` floats per thread (at least
/// [`winograd_scratch_len`]). False when a buffer is too short.
#[cfg(feature = "alloc")]
pub fn winograd(op: &Winograd<'_>, out: &mut [f32], scratch: &mut [f32], per: usize, par: Par<'_>) -> bool {
    crate::nn::winograd::run::<Plain>(op, out, scratch, per, par)
}

/// Scratch floats [`winograd`] needs per thread for `ci` → `co` channels
/// at output tile side `m` (2 or 4).
#[cfg(feature = "alloc")]
pub fn winograd_scratch_len(ci: usize, co: usize, m: usize) -> usize {
    crate::nn::winograd::scratch_len(ci, co, m)
}

/// 3×3 weights `[co, ci, 3, 3]` packed for [`winograd`] at output tile
/// side `m` (2 or 4).
#[cfg(feature = "alloc")]
pub fn packed_winograd(w: &[f32], co: usize, ci: usize, m: usize) -> Vec<f32> {
    let mut dst = vec![0.0; crate::nn::winograd::packed_len(ci, co, m)];
    crate::nn::winograd::pack(w, co, ci, m, &mut dst);
    dst
}

/// One planar convolution (`[C, H, W]` in and out), multiply then add
/// where the CPU's level has no FMA; false when a buffer is too short.
/// `scratch` holds [`conv_scratch_len`] floats.
#[cfg(feature = "alloc")]
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> bool {
    crate::nn::conv::conv2d::<Plain>(
        st, in_shape, out_shape, input, weight, bias, residual, out, scratch, par,
    )
}

/// [`conv2d`] with fused multiply-adds in the portable code (what aarch64
/// runs).
#[cfg(feature = "std")]
#[allow(clippy::too_many_arguments)]
pub fn conv2d_fused(
    st: &ConvStep,
    in_shape: Shape,
    out_shape: Shape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
    par: Par<'_>,
) -> bool {
    crate::nn::conv::conv2d::<crate::nn::gemm::Fused>(
        st, in_shape, out_shape, input, weight, bias, residual, out, scratch, par,
    )
}

/// Scratch floats [`conv2d`] needs for this step on one thread.
#[cfg(feature = "alloc")]
pub fn conv_scratch_len(st: &ConvStep, in_shape: Shape, out_shape: Shape) -> usize {
    crate::nn::conv::scratch_len(st, in_shape, out_shape)
}

/// 1×1 weights `[co, ci]` packed for [`pointwise`]: `[⌈co/G⌉, ci, G]`,
/// `G` = [`layout::pointwise_group`].
#[cfg(feature = "alloc")]
pub fn packed_pointwise(w: &[f32], co: usize, ci: usize) -> Vec<f32> {
    let g = layout::pointwise_group();
    let mut dst = vec![0.0; co.div_ceil(g) * g * ci];
    if ci > 0 {
        layout::pack_pointwise(w, co, ci, &mut dst);
    }
    dst
}

/// Depthwise weights `[c, taps]` packed for [`depthwise`]:
/// `[⌈c/16⌉, taps, 16]`.
#[cfg(feature = "alloc")]
pub fn packed_depthwise(w: &[f32], c: usize, taps: usize) -> Vec<f32> {
    let mut dst = vec![0.0; c.div_ceil(BLOCK) * BLOCK * taps];
    if taps > 0 {
        layout::pack_depthwise(w, c, taps, &mut dst);
    }
    dst
}

/// Convolution weights `[co, ci, taps]` packed for [`direct`]:
/// `[⌈co/80⌉, ⌈ci/16⌉, taps, 16, 80]`.
#[cfg(feature = "alloc")]
pub fn packed_direct(w: &[f32], co: usize, ci: usize, taps: usize) -> Vec<f32> {
    let mut dst = vec![0.0; co.div_ceil(DIRECT_GROUP) * ci.div_ceil(BLOCK) * taps * BLOCK * DIRECT_GROUP];
    if ci > 0 && taps > 0 {
        layout::pack_direct(w, co, ci, taps, &mut dst);
    }
    dst
}

/// The PnP refinement's 6×6 Cholesky solve: `a·x = b` for a symmetric
/// positive-definite `a`; `None` when `a` is not (or not finite).
pub fn cholesky_solve6(
    a: &nalgebra::Matrix6<f64>,
    b: &nalgebra::Vector6<f64>,
) -> Option<nalgebra::Vector6<f64>> {
    crate::pnp::refine::cholesky_solve6(a, b)
}
