//! Files on disk, one helper per job.
//!
//! * [`atomic`] — write-to-temporary, fsync, rename: every file the trainer
//!   writes goes through it, so a crash leaves the old file or the new one.
//! * [`safetensors`] — named `f32` tensors with string metadata (backbones,
//!   checkpoints, model files, imported weights).
//! * [`pickle_scan`] — a bounds-checking pickle walker run before any
//!   third-party pickle reader sees the bytes.
//! * [`pth`] — the legacy (pre-zip) PyTorch checkpoint format.
//! * [`image_file`] — strict JPEG/PNG decoding: damage is an error.

pub mod atomic;
pub mod image_file;
pub mod pickle_scan;
pub mod pth;
pub mod safetensors;
