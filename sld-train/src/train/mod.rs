//! Training with Candle, in three modes that share one epoch loop
//! ([`epochs`]):
//!
//! * `full` ([`full`]): one scene, backbone and head trained together.
//! * `head` ([`full`] with a backbone file): the backbone frozen, run once
//!   per image into a feature buffer ([`buffer`]); only the head trains.
//! * `backbone` ([`backbone`]): one trunk shared by several scenes, a light
//!   head per scene.
//!
//! Samples are preprocessed exactly as the `Localizer` does ([`samples`]);
//! targets are Gaussians on the output grid ([`targets`]); the loss is the
//! softmax with an "absent" bin (default) or SLD*'s squared error
//! ([`loss`]); the optimiser is AdamW with checkpointable state
//! ([`adamw`], [`checkpoint`]). Every epoch writes the model, one line of
//! `metrics.jsonl` (validation measured through `sld-core`, the code path
//! a robot runs), `metrics.png`, and last the checkpoint, so `--resume`
//! continues exactly.

pub mod adamw;
pub mod allreduce;
pub mod backbone;
pub mod buffer;
pub mod checkpoint;
pub mod epochs;
pub mod full;
pub mod loss;
pub mod novel_view;
pub mod options;
pub mod parallel;
pub mod recipe;
pub mod samples;
pub mod scene;
pub mod targets;
pub mod tcp_group;
pub mod world;

pub use full::{train_full, EpochMetrics, TrainOutcome};
pub use options::{Control, InputMode, Loss, TrainOptions};
