//! Small helpers every part of the trainer shares.
//!
//! * [`stats`] — the median (one definition for every report).
//! * [`time`] — UTC timestamps for provenance.
//! * [`progress`] — progress bars, one style for all long work.
//! * [`malloc`] — glibc allocator tuning for Candle training.
//! * [`memory`] — what a job needs against what the machine has.

pub mod malloc;
pub mod memory;
pub mod progress;
pub mod stats;
pub mod time;
