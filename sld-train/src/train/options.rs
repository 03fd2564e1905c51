//! The settings of a training run, shared by every mode, and how a run
//! is stopped from outside.

use std::path::PathBuf;

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

use super::samples::BatchOptions;
use super::targets::TargetOptions;
use crate::net::arch::{Arch, NetSpec};

/// Settings of a training run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Architecture.
    pub arch: Arch,
    /// Backbone width (channels of the small backbone's middle stage).
    pub width: usize,
    /// Channels of the head's hidden layers.
    pub head_channels: usize,
    /// Network input width, pixels (multiple of 8).
    pub input_width: usize,
    /// Network input height, pixels (multiple of 8).
    pub input_height: usize,
    /// Landmark file (`landmarks-N.txt`).
    pub landmarks: PathBuf,
    /// Epochs.
    pub epochs: usize,
    /// Images per batch.
    pub batch: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// Seed (initial weights, shuffling, augmentation).
    pub seed: u64,
    /// Relative depth tolerance of the visibility labels.
    pub depth_tolerance: f64,
    /// Gaussian σ of the targets, heatmap cells.
    pub sigma: f32,
    /// Photometric augmentation strength (0 = off).
    pub jitter: f32,
    /// Validate every this many epochs (0 = only at the end).
    pub validate_every: usize,
    /// Loss weight of the cells where the target is positive (1 = SLD*'s
    /// plain squared error; larger values escape the all-zero start faster).
    pub pos_weight: f32,
    /// Head mode: a frozen, pre-trained EfficientNet-Lite0 backbone
    /// (`sld weights import` output); only the scene head is trained, from
    /// a feature buffer filled once. `None`: train the whole network.
    #[serde(default)]
    pub backbone: Option<PathBuf>,
    /// Head mode: augmented copies of each training image in the buffer
    /// (copy 0 plain, the others with photometric jitter).
    #[serde(default = "one")]
    pub buffer_copies: usize,
    /// Geometric augmentation: an in-plane rotation (±10°) and focal
    /// scaling (0.9–1.1) about the image centre, labels moved exactly; on
    /// every training batch (full and backbone modes) or on the feature
    /// buffer's augmented copies (head mode).
    #[serde(default)]
    pub geometric_aug: bool,
    /// Geometric augmentation by exact camera rotations (roll ±15°,
    /// pitch/yaw ±8°) and focal changes (0.7–1.4), labels moved exactly;
    /// replaces `geometric_aug`'s similarity where both are set.
    #[serde(default)]
    pub rotation_aug: bool,
    /// Novel-view augmentation: half the training images (those with
    /// depth) re-rendered from a camera moved up to 15 % of their median
    /// depth and turned ±10° ([`super::novel_view`]); in head mode, the
    /// buffer's augmented copies.
    #[serde(default)]
    pub novel_view_aug: bool,
    /// Head mode: which head sits on the frozen backbone.
    #[serde(default)]
    pub head: HeadChoice,
    /// Depth maps the visibility labels read: `NAME.<variant>.depth.png`
    /// (e.g. `filled`); `None`: `NAME.depth.png`.
    #[serde(default)]
    pub depth_variant: Option<String>,
    /// Training loss (and so what the exported maps hold).
    #[serde(default)]
    pub loss: Loss,
    /// Heads in the ensemble: the landmarks split into this many
    /// consecutive subsets ([`landmark_subsets`]), one head each, all on
    /// the one backbone (SLD*'s 8 × 125, paying the backbone once). 1: one
    /// head for every landmark.
    #[serde(default = "one")]
    pub heads: usize,
    /// What the network sees of an image (and how training augments it).
    #[serde(default)]
    pub input: InputMode,
    /// Where Candle trains (not saved: a checkpoint resumes on any device).
    #[serde(skip)]
    pub device: crate::device::DeviceChoice,
    /// Data-parallel ranks, one per device, rank 0 first ([`super::parallel`]);
    /// empty: one rank on `device`. Not saved either.
    #[serde(skip)]
    pub devices: Vec<crate::device::DeviceChoice>,
    /// This process's place in a multi-process run (one rank per
    /// process, [`super::world`]); `None`: every rank is in this process.
    /// The command line reads it from `torchrun`'s environment variables.
    #[serde(skip)]
    pub world: Option<super::world::World>,
}

/// What the network sees of an image. The `.sld` file records it (input
/// channels and [`sld_core::model::Normalize`]), so `sld-core` preprocesses
/// a robot's image exactly as training did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputMode {
    /// RGB in `[0, 1]` (then the backbone's mean/std); photometric
    /// augmentation is `--jitter`'s gain and offset.
    #[default]
    Rgb,
    /// Luminance through a log local-contrast normalisation (box radius
    /// [`LCN_RADIUS`] network pixels): smooth lighting changes cancel.
    /// Training augments the raw image before normalising (gamma, colour
    /// gains, exposure, contrast, shadow fields, blur, noise; `--jitter`
    /// scales them).
    GrayLcn,
    /// The same on each of R, G and B.
    RgbLcn,
}

/// The head `sld train head` puts on the frozen backbone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadChoice {
    /// The paper's scene head: two dilated 3×3 blocks (dilation 2, 4).
    #[default]
    Scene,
    /// Four dilated 3×3 blocks (dilation 2, 4, 8, 16): context across
    /// most of the image, to tell apart landmarks on repetitive texture.
    Wide,
    /// 1×1 blocks only: each cell decided by the backbone's features there.
    Light,
}

/// Box radius of the local-contrast input modes, network-input pixels.
pub const LCN_RADIUS: u32 = 8;

impl InputMode {
    /// Every value with its `--input` name.
    pub const ALL: [(InputMode, &'static str); 3] = [
        (InputMode::Rgb, "rgb"),
        (InputMode::GrayLcn, "gray-lcn"),
        (InputMode::RgbLcn, "rgb-lcn"),
    ];

    /// Channels of the network input.
    pub fn channels(self) -> usize {
        match self {
            InputMode::GrayLcn => 1,
            InputMode::Rgb | InputMode::RgbLcn => 3,
        }
    }

    /// The per-image normalisation the model file records.
    pub fn normalize(self) -> sld_core::model::Normalize {
        match self {
            InputMode::Rgb => sld_core::model::Normalize::None,
            InputMode::GrayLcn | InputMode::RgbLcn => {
                sld_core::model::Normalize::LogLocalContrast { radius: LCN_RADIUS }
            }
        }
    }
}

impl std::fmt::Display for InputMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::ALL.iter().find(|(m, _)| m == self).map_or("?", |(_, n)| n);
        f.write_str(name)
    }
}

/// The training loss of the heatmap outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// SLD*'s: squared error against Gaussian targets of height 1 (cells
    /// with a positive target weighted by `pos_weight`); maps labelled
    /// not visible train towards 0.
    #[default]
    Mse,
    /// Per landmark, cross-entropy of a softmax over the map's cells plus
    /// an "absent" bin of logit 0, against the normalised Gaussian target
    /// (visible) or the absent bin (not visible). The model exports logits
    /// ([`sld_core::model::HeatmapKind::Logits`]).
    Softmax,
}

impl Loss {
    /// Every value with its `--loss` name.
    pub const ALL: [(Loss, &'static str); 2] = [(Loss::Softmax, "softmax"), (Loss::Mse, "mse")];

    /// The default Gaussian σ of the targets for this loss, heatmap cells
    /// (measured, EXPERIMENTS.md): sharp for softmax, wider for mse.
    pub fn default_sigma(self) -> f32 {
        match self {
            Loss::Softmax => 0.5,
            Loss::Mse => 1.5,
        }
    }

    /// What the exported output maps hold.
    pub fn heatmap_kind(self) -> sld_core::model::HeatmapKind {
        match self {
            Loss::Mse => sld_core::model::HeatmapKind::Gaussian,
            Loss::Softmax => sld_core::model::HeatmapKind::Logits,
        }
    }
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::ALL.iter().find(|(l, _)| l == self).map_or("?", |(_, n)| n);
        f.write_str(name)
    }
}

fn one() -> usize {
    1
}

impl TrainOptions {
    /// Checks the options every training mode shares.
    pub fn check(&self) -> Result<()> {
        let o = self;
        ensure!(
            o.input_width.is_multiple_of(8) && o.input_height.is_multiple_of(8),
            "input size must be a multiple of 8"
        );
        ensure!(
            o.input_width >= 32 && o.input_height >= 32,
            "input must be at least 32×32"
        );
        ensure!(
            o.batch >= 1 && o.epochs >= 1,
            "--batch and --epochs must be at least 1"
        );
        ensure!(o.lr > 0.0 && o.lr.is_finite(), "--lr must be positive");
        ensure!(o.heads >= 1, "--heads must be at least 1");
        ensure!(
            o.input == InputMode::Rgb || (o.arch == Arch::Small && o.backbone.is_none()),
            "--input {} needs --arch small trained whole (`train full` or `train backbone`); \
             pre-trained backbones take RGB",
            o.input
        );
        Ok(())
    }

    /// A lower bound of the memory training `images` images with
    /// `landmarks` landmarks takes, bytes: the stored samples (input, depth,
    /// labels), the feature buffer when a frozen backbone of
    /// `feature_channels` channels is given, and one batch's input and
    /// first-layer activations with their gradients. Measured peaks run
    /// about 5× above it (EXPERIMENTS.md); it exists to refuse absurd sizes
    /// before allocating, not to predict.
    pub fn memory_lower_bound(
        &self,
        images: usize,
        landmarks: usize,
        feature_channels: Option<usize>,
    ) -> u64 {
        use crate::util::memory::product;
        let (w, h) = (self.input_width, self.input_height);
        let per_sample = product(&[w, h, 4, 4]).saturating_add(product(&[landmarks, 28]));
        let samples = per_sample.saturating_mul(images as u64);
        let (buffer, batch) = match feature_channels {
            Some(c) => (
                product(&[images, self.buffer_copies, c, w / 8, h / 8, 4]),
                product(&[self.batch, c + 2 * self.head_channels, w / 8, h / 8, 4]),
            ),
            None => (0, product(&[self.batch, w, h, 4, 3 + 2 * self.width])),
        };
        samples.saturating_add(buffer).saturating_add(batch)
    }

    /// The head of head mode.
    pub fn head_kind(&self) -> crate::net::arch::HeadKind {
        use crate::net::arch::HeadKind;
        match self.head {
            HeadChoice::Scene => HeadKind::Scene,
            HeadChoice::Wide => HeadKind::Wide,
            HeadChoice::Light => HeadKind::Light,
        }
    }

    /// The network these options build.
    pub fn net_spec(&self) -> NetSpec {
        NetSpec {
            input_width: self.input_width,
            input_height: self.input_height,
            head_channels: self.head_channels,
            heads: self.heads,
            seed: self.seed,
            heatmaps: self.loss.heatmap_kind(),
            input: self.input,
        }
    }

    /// How batches are made from these options: targets at stride 8, `jitter`
    /// photometric strength, geometric augmentation when `geometric`
    /// (the options' rotations when they ask for them).
    pub fn batch_options(&self, jitter: f32, geometric: bool) -> BatchOptions {
        BatchOptions {
            grid: [self.input_height / 8, self.input_width / 8],
            stride: 8.0,
            target: TargetOptions {
                sigma: self.sigma,
                ..Default::default()
            },
            jitter,
            pos_weight: self.pos_weight,
            loss: self.loss,
            geometric,
            rotations: geometric && self.rotation_aug,
            novel_views: geometric && self.novel_view_aug,
        }
    }
}

/// Stopping a run from outside: `stop` is checked after every step (the
/// Ctrl-C handler of `sld train` sets it); `stop_after` ends the run after
/// that many epochs in total (e.g. to split a run in parts). A run stopped
/// mid-epoch keeps the checkpoint of the last finished epoch, which
/// `resume` continues exactly.
#[derive(Clone, Debug, Default)]
pub struct Control {
    /// Set to stop as soon as possible.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Stop after this epoch (1-based count of finished epochs).
    pub stop_after: Option<usize>,
}
