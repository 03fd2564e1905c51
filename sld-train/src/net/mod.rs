//! Networks: `.sld` graphs built with initial weights, run in Candle for
//! training, and exported.
//!
//! * [`builder`] — the layer-by-layer graph builder.
//! * [`lite0`] — EfficientNet-Lite0 trunks; [`heads`] — heatmap heads.
//! * [`arch`] — whole networks: trunk + head(s) for a training mode.
//! * [`graph`] — runs any `.sld` graph in Candle (the training twin of
//!   `sld_core::nn`, parity-tested).
//! * [`unfold`], [`bias`] — Candle custom ops for fast CPU training.
//! * [`export`] — the `.sld` writer.

pub mod arch;
pub mod bias;
pub mod builder;
pub mod export;
pub mod graph;
pub mod heads;
pub mod lite0;
pub mod unfold;
pub mod xfeat;
