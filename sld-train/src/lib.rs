//! `sld-train`: the `std` half of sld — command-line tools now; data,
//! training and export as they land. The `sld` binary is `src/main.rs`.

pub mod data;
pub mod demo;
pub mod export;
pub mod labels;
pub mod landmarks;
pub mod localize_cli;
pub mod net;
pub mod pnp_cli;
