//! # sld-ffi — the C ABI of sld
//!
//! Link `libsld.a` or `libsld.so`, include `sld.h`. Every function returns
//! an [`SldStatus`] (or is infallible), checks every pointer and size it is
//! given, and never lets a Rust panic cross into C: it becomes
//! `SLD_STATUS_PANIC`. Messages: `sld_last_error()` (per thread) and
//! `sld_localizer_last_error(handle)` (per handle).
//!
//! * [`localizer`] — `SldLocalizer`: model bytes + image → pose.
//! * [`geometry`] — heatmap decoding and an `SldPnpSolver`, for stacks
//!   that run the network on their own accelerator.
//! * [`types`] — the plain structs (`SldImage`, `SldCamera`, `SldPose`, …).
//! * [`version`] — `sld_version`, `sld_status_name`, `sld_last_error`.
//!
//! **Memory.** Handles are created (allocating everything they will need)
//! and freed explicitly; no other call allocates. `sld_localizer_new`
//! copies the model bytes, `sld_localizer_new_borrowed` reads them in place.
//!
//! **Threads.** A handle is used by one thread at a time; different handles
//! may be used concurrently. The free functions (`sld_decode_heatmaps`,
//! option defaults, `sld_version`) are thread-safe.
//!
//! **Conventions.** Pixel `(0, 0)` is the centre of the top-left pixel;
//! poses are world-to-camera (`x_cam = R · x_world + t`), metres; rotation
//! matrices row-major; times in microseconds.
//!
//! **Firmware build.** With the `std` feature off the crate is `no_std`: it
//! allocates through the C library's `malloc`/`free`, aborts on panic, keeps
//! one global last-error message, and has no `sld_localizer_new_from_file`.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
// Failures carry their message in a fixed 256-byte buffer so that no error
// path allocates; the large `Err` variant is the price, paid only on failure.
#![allow(clippy::result_large_err)]

extern crate alloc;

pub mod geometry;
mod guard;
pub mod localizer;
pub mod status;
pub mod types;
pub mod version;

#[cfg(all(not(feature = "std"), not(test)))]
mod firmware;

pub use geometry::{SldDecodeOptions, SldPnpOptions, SldPnpResult, SldPnpSolver, SldRefinement, SldSampling};
pub use localizer::{SldLocalizer, SldModelInfo};
pub use status::SldStatus;
pub use types::{
    SldCamera, SldDetection, SldGate, SldImage, SldLocalization, SldPixelFormat, SldPose, SldPoseQuality,
    SldStageTimes,
};
pub use version::{SLD_VERSION_MAJOR, SLD_VERSION_MINOR, SLD_VERSION_PATCH};
