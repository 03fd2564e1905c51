//! `sld-train`: the `std` half of sld — scene data, landmark selection,
//! Candle training, export, evaluation and the tools behind the `sld`
//! command-line program (`src/main.rs`, commands in `src/cli/`).
//!
//! | module | owns |
//! |---|---|
//! | [`io`] | atomic writes, safetensors, pickle scanning, legacy `.pth` |
//! | [`data`] | the Indoor6 layout, file naming, scene directories, depth maps, COLMAP |
//! | [`synth`] | the procedural room renderer (`sld synth`) |
//! | [`landmarks`] | saliency score and selection, visibility, the landmark pipeline |
//! | [`net`] | graph builder, architectures, Candle forward pass, custom ops, `.sld` export |
//! | [`train`] | options, samples, targets, losses, AdamW, checkpoints, the epoch loop, the three modes |
//! | [`imagenet`] | the ImageNet EfficientNet-Lite0 import and its classifier check |
//! | [`eval`] | localising a scene's split through sld-core and scoring it |
//! | [`simulate`] | decode + PnP on heatmaps simulated from ground truth |
//! | [`depth`] | depth fill from monocular estimates |
//! | [`device`] | the compute device training runs on (`--device cpu\|cuda[:N]`) |
//! | [`beacon`] | the known-answer kit for integration tests |
//! | [`align`], [`plot`], [`faults`], [`util`] | Umeyama alignment, training plots, fault injection, small helpers |

#![warn(missing_docs)]

pub mod align;
pub mod beacon;
pub mod data;
pub mod depth;
pub mod device;
pub mod eval;
pub mod faults;
pub mod imagenet;
pub mod io;
pub mod landmarks;
pub mod net;
pub mod plot;
pub mod simulate;
pub mod synth;
pub mod train;
pub mod util;
pub mod xfeat;
