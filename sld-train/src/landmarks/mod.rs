//! Landmarks: which 3D points a scene model detects.
//!
//! * [`select`] — the SLD saliency score and greedy, grid-accelerated
//!   selection at a minimum distance.
//! * [`visibility`] — whether a landmark is visible in an image (the SLD*
//!   1 / 0.5 / 0 label weights).
//! * [`pipeline`] — `sld landmarks`: score, select, write the landmark and
//!   visibility files.

pub mod pipeline;
pub mod select;
pub mod visibility;
