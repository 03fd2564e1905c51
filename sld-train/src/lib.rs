//! `sld-train`: the `std` half of sld — scene data (synthetic renderer,
//! Indoor6 layout), landmark selection and labels, Candle training,
//! export, evaluation and the `sld` command-line tool. The `sld` binary is `src/main.rs`.

#![warn(missing_docs)]

pub mod align;
pub mod alloc;
pub mod beacon;
pub mod data;
pub mod demo;
pub mod depth;
pub mod depth_cli;
pub mod eval;
pub mod export;
pub mod faults;
pub mod labels;
pub mod landmarks;
pub mod landmarks_cli;
pub mod localize_cli;
pub mod net;
pub mod pickle_scan;
pub mod plot;
pub mod pnp_cli;
pub mod progress;
pub mod synth;
pub mod train;
pub mod weights;
