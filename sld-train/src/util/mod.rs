//! Small helpers every part of the trainer shares.
//!
//! * [`stats`] — the median (one definition for every report).
//! * [`time`] — UTC timestamps for provenance.
//! * [`progress`] — progress bars, one style for all long work.
//! * [`malloc`] — glibc allocator tuning for Candle training.

pub mod malloc;
pub mod progress;
pub mod stats;
pub mod time;
