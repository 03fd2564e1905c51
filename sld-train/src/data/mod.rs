//! Scene data on disk.
//!
//! * [`indoor6`] — the Indoor6 files (intrinsics, poses, split pickle,
//!   landmarks, visibility), read and written, errors with file:line.
//! * [`naming`] — every file name of the layout, built in one place.
//! * [`scene`] — a whole scene directory with sld's additions (depth maps,
//!   `points3d.txt`, `sessions.txt`).
//! * [`depth_map`] — the metric depth map type and its 16-bit PNG codec.
//! * [`colmap`] — COLMAP sparse models, read and imported.

pub mod colmap;
pub mod depth_map;
pub mod indoor6;
pub mod naming;
pub mod scene;
