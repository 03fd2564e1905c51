//! Small helpers every part of the trainer shares.
//!
//! * [`stats`] — the median (one definition for every report).
//! * [`time`] — UTC timestamps for provenance.
//! * [`progress`] — progress bars, one style for all long work.
//! * [`malloc`] — glibc allocator tuning for Candle training.
//! * [`memory`] — what a job needs against what the machine has.
//! * [`panic`] — the message of a caught panic.

pub mod malloc;
pub mod memory;
pub mod panic;
pub mod progress;
pub mod stats;
pub mod time;
