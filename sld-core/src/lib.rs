//! # sld-core — the on-device half of scene landmark detection
//!
//! `sld-core` turns what a scene-specific CNN sees into a camera pose. It is
//! `#![no_std]` (the `alloc` feature adds model loading, inference and owning
//! conveniences; `std` adds stage timings and run-time SIMD dispatch),
//! never panics on any input, and allocates nothing on the
//! per-frame path: every per-frame function writes into caller-provided
//! storage or a scratch area sized once at set-up.
//!
//! ## Layers (data flows one way)
//!
//! ```text
//!  heatmaps ──heatmap::decode──▶ detections (pixels, confidence)
//!  detections + landmarks + camera ──pnp::solve_pnp──▶ pose (world-to-camera)
//! ```
//!
//! * [`camera`] — pinhole + one radial coefficient, the pixel convention.
//! * [`pose`] — rigid world-to-camera transforms and the recall metrics.
//! * [`heatmap`] — peak finding and sub-pixel refinement on stride-`s` grids.
//! * [`pnp`] — Lambda Twist P3P, LO-RANSAC with MSAC scoring and
//!   confidence-guided sampling, Levenberg–Marquardt refinement.
//! * [`image`] — borrowed 8-bit images, resize + normalise to the input.
//! * `model` (feature `alloc`) — the `.sld` file: validation, graph, plan.
//! * `nn` (feature `alloc`) — runs a plan in one arena (conv, add, concat).
//! * `localizer` (feature `alloc`) — model bytes + image → pose.
//! * [`rng`] — a tiny deterministic random number generator.
//!
//! ## Conventions (read these once; every number in the crate follows them)
//!
//! * **Pixels**: `(u, v)` with `u` to the right and `v` down; pixel `(0, 0)`
//!   is the *centre* of the top-left pixel, so an image of width `W` spans
//!   `u ∈ [-0.5, W - 0.5]`.
//! * **Poses**: world-to-camera, `x_cam = R · x_world + t` (COLMAP / Indoor6).
//!   The camera looks down `+z`, `x` right, `y` down.
//! * **Units**: world coordinates and translations in metres, angles in
//!   degrees at API boundaries (radians inside), times in microseconds.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// `!(x > 0.0)` is this crate's idiom for "not a positive number, NaN
// included": every such negation is deliberate, so the lint is off.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod camera;
pub mod exp;
pub mod gate;
pub mod heatmap;
pub mod image;
#[cfg(feature = "alloc")]
pub mod localizer;
#[cfg(feature = "alloc")]
pub mod model;
#[cfg(feature = "alloc")]
pub mod nn;
pub mod pnp;
pub mod pose;
pub mod rng;
#[doc(hidden)]
pub mod testing;

pub use camera::{Camera, CameraError};
pub use gate::{Gate, GateFailure, PoseQuality};
pub use heatmap::{decode, DecodeError, DecodeOptions, Detection, HeatmapShape, Refinement};
pub use image::{Image, ImageError, PixelFormat};
#[cfg(all(feature = "alloc", feature = "std"))]
pub use localizer::ThreadsError;
#[cfg(feature = "alloc")]
pub use localizer::{Localization, LocalizeError, Localizer, StageTimes};
pub use pnp::{solve_pnp, PnpError, PnpOptions, PnpSolution, PointScratch, Sampling};
pub use pose::{position_error_m, rotation_error_deg, Pose};

/// Linear algebra types used in the public API (re-exported `nalgebra`).
pub use nalgebra;
