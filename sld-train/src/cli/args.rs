//! What several commands share: argument groups (training, depth
//! inputs), value choices for library enums, and helpers.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::path::PathBuf;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::Args;
use sld_train::depth::fit::{FitOptions, Method};
use sld_train::depth::holdout::Hide;
use sld_train::depth::MdeKind;
use sld_train::device::DeviceChoice;
use sld_train::net::arch::Arch;
use sld_train::train::{Control, InputMode, Loss, TrainOptions};

/// A library enum offered on the command line: each value with its name
/// and help line. The library stays free of the CLI; the names live here.
pub trait Choice: Copy + Send + Sync + 'static {
    /// `(value, name, help)` for every value, in the order `--help` lists them.
    const CHOICES: &'static [(Self, &'static str, &'static str)];
}

/// A clap value parser for a [`Choice`]: accepts exactly the names, lists
/// them with their help in `--help` and in errors.
pub fn choice<T: Choice>() -> ChoiceParser<T> {
    ChoiceParser(PhantomData)
}

/// The parser [`choice`] returns.
#[derive(Clone, Copy)]
pub struct ChoiceParser<T>(PhantomData<T>);

impl<T: Choice> TypedValueParser for ChoiceParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let names = T::CHOICES.iter().map(|(_, n, h)| PossibleValue::new(*n).help(*h));
        let name = clap::builder::PossibleValuesParser::new(names).parse_ref(cmd, arg, value)?;
        T::CHOICES
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(v, _, _)| *v)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            T::CHOICES.iter().map(|(_, n, h)| PossibleValue::new(*n).help(*h)),
        ))
    }
}

impl Choice for Arch {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            Arch::Small,
            "small",
            "Small CPU-friendly backbone + the paper's scene head (demo, tests)",
        ),
        (
            Arch::Lite0,
            "lite0",
            "EfficientNet-Lite0 at stride 8 + SLD*'s ASPP head (the SLD* baseline)",
        ),
    ];
}

impl Choice for InputMode {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (InputMode::Rgb, "rgb", "RGB; --jitter is a colour gain and offset"),
        (
            InputMode::GrayLcn,
            "gray-lcn",
            "Luminance, log local-contrast normalised (smooth lighting changes cancel); training augments the raw image (gamma, colour, exposure, shading, shadows, blur, noise; --jitter scales them). Small architecture only",
        ),
        (InputMode::RgbLcn, "rgb-lcn", "The same on each of R, G and B. Small architecture only"),
    ];
}

impl Choice for sld_train::train::options::HeadChoice {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = {
        use sld_train::train::options::HeadChoice as H;
        &[
            (H::Scene, "scene", "The paper's scene head: two dilated 3×3 blocks (dilation 2, 4)"),
            (
                H::Wide,
                "wide",
                "Four dilated 3×3 blocks (dilation 2, 4, 8, 16): context across most of the image, for landmarks on repetitive texture",
            ),
            (H::Light, "light", "1×1 blocks only: each cell decided by the backbone's features there"),
        ]
    };
}

impl Choice for Loss {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            Loss::Mse,
            "mse",
            "SLD*'s: squared error against Gaussian targets of height 1 (cells with a positive target weighted by `pos_weight`); maps labelled not visible train towards 0",
        ),
        (
            Loss::Softmax,
            "softmax",
            "Per landmark, cross-entropy of a softmax over the map's cells plus an \"absent\" bin of logit 0, against the normalised Gaussian target (visible) or the absent bin (not visible). The model exports logits ([`sld_core::model::HeatmapKind::Logits`])",
        ),
    ];
}

impl Choice for MdeKind {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (MdeKind::Depth, "depth", "Larger values are farther"),
        (
            MdeKind::Disparity,
            "disparity",
            "Larger values are closer (inverse depth up to scale and shift)",
        ),
    ];
}

impl Choice for Method {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            Method::ScaleShiftDepth,
            "scale-shift-depth",
            "Robust scale and shift in depth",
        ),
        (
            Method::ScaleShiftInverse,
            "scale-shift-inverse",
            "Robust scale and shift in inverse depth",
        ),
        (
            Method::Spatial,
            "spatial",
            "Spatially varying scale and shift in inverse depth (the default)",
        ),
        (
            Method::Mlp,
            "mlp",
            "The paper's MLP regressor (hidden layers 100 and 50), in Candle",
        ),
    ];
}

impl Choice for Hide {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Hide::Random, "random", "Independent random pixels"),
        (
            Hide::Blocks,
            "blocks",
            "Random squares with sides of 1/8 of the shorter image side",
        ),
    ];
}

/// Options shared by the `train` modes.
#[derive(Args)]
pub struct TrainArgs {
    /// The scene directory (Indoor6 layout with depth maps); `train
    /// backbone` takes it once per scene.
    #[arg(long, required = true)]
    pub scene: Vec<PathBuf>,
    /// Output directory (checkpoint, model.sld, metrics.jsonl).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Landmark file; default: the scene's only landmarks/landmarks-N.txt.
    /// `train backbone`: once per --scene, in the same order, or not at all.
    #[arg(long)]
    pub landmarks: Vec<PathBuf>,
    /// Architecture of `train full`: small (CPU-friendly) or lite0
    /// (EfficientNet-Lite0 s8 + ASPP, SLD*); of `train backbone`: small or
    /// lite0 (the atrous Lite0 that `train head` freezes). `train head`
    /// builds the backbone its file names.
    #[arg(long, default_value = "small", value_parser = choice::<Arch>())]
    pub arch: Arch,
    /// Backbone width (small architecture).
    #[arg(value_parser = int_in::<usize>(4, 1024), long, default_value_t = 32)]
    pub width: usize,
    /// Hidden channels of the head.
    #[arg(value_parser = int_in::<usize>(1, 4096), long, default_value_t = 64)]
    pub head_channels: usize,
    /// Network input width, pixels (multiple of 8).
    #[arg(value_parser = int_in::<usize>(32, 4096), long, default_value_t = 320)]
    pub input_width: usize,
    /// Network input height, pixels (multiple of 8).
    #[arg(value_parser = int_in::<usize>(32, 4096), long, default_value_t = 176)]
    pub input_height: usize,
    /// Epochs.
    #[arg(value_parser = int_in::<usize>(1, 1_000_000), long, default_value_t = 40)]
    pub epochs: usize,
    /// Images per batch.
    #[arg(value_parser = int_in::<usize>(1, 1024), long, default_value_t = 8)]
    pub batch: usize,
    /// Initial learning rate.
    #[arg(value_parser = real_in::<f64>(1e-12, 10.0), long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Seed of weights, shuffling and augmentation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where Candle trains: cpu, cuda (the first GPU), cuda:N, or auto (a
    /// GPU when this sld was built with `--features cuda` and one answers,
    /// else the CPU). A checkpoint resumes on any device.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,
    /// Data-parallel training, one rank per device, e.g. `--devices 0,1`
    /// (GPUs 0 and 1): each batch is split between the ranks and their
    /// gradients summed, so a run gives the weights one device would, to
    /// float rounding. Replaces --device. `cpu,cpu` runs two ranks on the
    /// CPU (a check of the mechanism, no faster).
    ///
    /// Across processes or machines, start the same command once per rank
    /// with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (LOCAL_RANK
    /// picks the GPU for --device auto), e.g. on each of two machines:
    /// `torchrun --nnodes 2 --nproc-per-node 4 --node-rank N
    /// --master-addr HOST --master-port 29500 --no-python sld train full …`.
    /// Rank 0 writes OUT; the others write nothing.
    #[arg(long, value_delimiter = ',', value_name = "DEVICES")]
    pub devices: Vec<DeviceChoice>,
    /// Gaussian σ of the targets, heatmap cells (default: 0.5 for
    /// `--loss softmax`, 1.5 for `--loss mse`; EXPERIMENTS.md).
    #[arg(value_parser = real_in::<f32>(0.05, 64.0), long)]
    pub sigma: Option<f32>,
    /// Photometric augmentation strength (0 = off).
    #[arg(value_parser = real_in::<f32>(0.0, 2.0), long, default_value_t = 0.3)]
    pub jitter: f32,
    /// Geometric augmentation: rotate each training image in-plane (±10°)
    /// and scale it (0.9–1.1) about its centre, moving the labels exactly
    /// (SLD*'s ranges). `train head`: applied to the buffer's augmented
    /// copies.
    #[arg(long)]
    pub geometric: bool,
    /// Geometric augmentation by exact camera rotations: roll ±15°,
    /// pitch/yaw ±8° and a focal change of 0.7–1.4 as the homography
    /// K'·R·K⁻¹, labels moved exactly (wider than --geometric, which it
    /// replaces).
    #[arg(long)]
    pub rotations: bool,
    /// Novel-view augmentation: half the training images (those with
    /// depth maps) re-rendered from a nearby camera — moved up to 15 % of
    /// the image's median depth, turned ±10° — by warping their pixels
    /// with their depth; landmarks re-projected and checked for occlusion.
    /// The other half as --rotations / --geometric say. `train head`:
    /// applied to the buffer's augmented copies.
    #[arg(long)]
    pub novel_views: bool,
    /// Relative depth tolerance of the visibility labels.
    #[arg(value_parser = real_in::<f64>(1e-4, 10.0), long, default_value_t = 0.1)]
    pub depth_tolerance: f64,
    /// Label from NAME.<VARIANT>.depth.png instead of NAME.depth.png (e.g.
    /// `filled`: maps completed by `sld depth fill`).
    #[arg(long)]
    pub depth_variant: Option<String>,
    /// Validate every this many epochs (0 = only at the end).
    #[arg(value_parser = int_in::<usize>(0, 1_000_000), long, default_value_t = 5)]
    pub validate_every: usize,
    /// Loss weight of cells with a positive target (1 = SLD*'s plain loss;
    /// `--loss mse` only).
    #[arg(value_parser = real_in::<f32>(1e-3, 1e4), long, default_value_t = 10.0)]
    pub pos_weight: f32,
    /// Training loss: softmax (per landmark, a softmax over the cells plus
    /// an "absent" bin; the model exports logits, which the Localizer
    /// decodes accordingly; measured better and faster, EXPERIMENTS.md) or
    /// mse (SLD*'s heatmap regression).
    #[arg(long, default_value = "softmax", value_parser = choice::<Loss>())]
    pub loss: Loss,
    /// Ensemble: split the landmarks into this many consecutive subsets
    /// (file order) with one head each, all on the one backbone (SLD*: 8
    /// heads × 125 landmarks, each with its own network). Every head has
    /// --head-channels hidden channels, so the head's cost grows with N.
    #[arg(value_parser = int_in::<usize>(1, 256), long, default_value_t = 1)]
    pub heads: usize,
    /// What the network sees of an image (recorded in model.sld, so
    /// sld-core preprocesses a robot's image the same way).
    #[arg(long, default_value = "rgb", value_parser = choice::<InputMode>())]
    pub input: InputMode,
    /// Continue from OUT/checkpoint.safetensors.
    #[arg(long)]
    pub resume: bool,
}

impl TrainArgs {
    /// The library options: `landmarks` resolved, `backbone` (head mode's
    /// frozen trunk or backbone mode's initialisation) and the feature
    /// buffer's `buffer_copies`.
    pub fn options(
        &self,
        landmarks: PathBuf,
        backbone: Option<PathBuf>,
        buffer_copies: usize,
    ) -> TrainOptions {
        TrainOptions {
            arch: self.arch,
            width: self.width,
            head_channels: self.head_channels,
            input_width: self.input_width,
            input_height: self.input_height,
            landmarks,
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            seed: self.seed,
            depth_tolerance: self.depth_tolerance,
            sigma: self.sigma.unwrap_or(self.loss.default_sigma()),
            jitter: self.jitter,
            validate_every: self.validate_every,
            pos_weight: self.pos_weight,
            backbone,
            buffer_copies,
            geometric_aug: self.geometric,
            rotation_aug: self.rotations,
            novel_view_aug: self.novel_views,
            head: Default::default(),
            depth_variant: self.depth_variant.clone(),
            loss: self.loss,
            heads: self.heads,
            input: self.input,
            device: self.device,
            devices: self.devices.clone(),
            world: None,
        }
    }
}

/// A stop flag for training that the first Ctrl-C sets (finish the
/// current step, keep the last epoch's checkpoint); a second one exits at
/// once (checkpoints are atomic).
pub fn ctrlc_control() -> Control {
    let control = Control::default();
    let flag = control.stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("\nsld train: stopping after this step (Ctrl-C again to quit now)");
    });
    control
}

/// Options shared by `depth fill` and `depth eval`.
#[derive(Args)]
pub struct DepthInputs {
    /// The monocular depth estimate: .npy (float32/64), .pfm or 16-bit .png;
    /// same size as --depth.
    #[arg(long)]
    pub mde: PathBuf,
    /// Metric depth with holes: COLMAP dense .bin (`patch_match_stereo`'s
    /// *.geometric.bin), .npy, .pfm or 16-bit .png in millimetres; 0 or NaN
    /// = missing.
    #[arg(long)]
    pub depth: PathBuf,
    /// The RGB image (colour features of the MLP).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// What the MDE values are: disparity (larger = closer, as
    /// Depth-Anything writes) or depth (larger = farther).
    #[arg(long, default_value = "disparity", value_parser = choice::<MdeKind>())]
    pub mde_kind: MdeKind,
    /// Grid nodes across the width for the spatial method.
    #[arg(value_parser = int_in::<usize>(1, 1024), long, default_value_t = 12)]
    pub grid: usize,
    /// Curvature penalty between grid nodes for the spatial method
    /// (relative to the data term; larger = smoother).
    #[arg(value_parser = real_in::<f64>(0.0, 1e9), long, default_value_t = 1e-3)]
    pub smoothness: f64,
    /// Radius in pixels over which the spatial method spreads the known
    /// pixels' residuals into the holes (0 = off).
    #[arg(value_parser = int_in::<usize>(0, 256), long, default_value_t = 8)]
    pub residual_radius: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where the MLP method trains: cpu, cuda (the first GPU), cuda:N, or
    /// auto (a GPU when this sld was built with `cuda` and one answers).
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,
}

impl DepthInputs {
    /// The fit options these arguments set.
    pub fn fit_options(&self) -> FitOptions {
        FitOptions {
            grid: self.grid,
            smoothness: self.smoothness,
            residual_radius: self.residual_radius,
            seed: self.seed,
            device: self.device,
            ..Default::default()
        }
    }
}

/// The reliability gate of `sld localize` and `sld eval`: the thresholds a
/// pose must meet to be reported (defaults: sld-core's calibrated
/// `Gate::default()`; see EXPERIMENTS.md, "The reliability gate").
#[derive(Args, Clone, Debug, Default)]
pub struct GateArgs {
    /// Report every pose PnP finds, however weak the evidence (for
    /// diagnostics; a robot should keep the gate on).
    #[arg(long, help_heading = "Reliability gate")]
    pub no_gate: bool,
    /// Fewest PnP inliers [default: 10].
    #[arg(long, value_name = "N", help_heading = "Reliability gate")]
    pub min_inliers: Option<u32>,
    /// Smallest share of the detections that are inliers, 0–1 [default: 0.5].
    #[arg(long, value_name = "R", help_heading = "Reliability gate")]
    pub min_inlier_ratio: Option<f32>,
    /// Smallest share of the landmarks expected in view (under the pose)
    /// that are inliers, 0–1 [default: 0.15].
    #[arg(long, value_name = "F", help_heading = "Reliability gate")]
    pub min_visible_fraction: Option<f32>,
    /// Smallest summed confidence of the inliers [default: 0].
    #[arg(long, value_name = "C", help_heading = "Reliability gate")]
    pub min_inlier_confidence: Option<f32>,
}

impl GateArgs {
    /// The gate these flags describe; an out-of-range value names its flag.
    pub fn gate(&self) -> anyhow::Result<sld_core::Gate> {
        let mut g = if self.no_gate {
            sld_core::Gate::OFF
        } else {
            sld_core::Gate::default()
        };
        if let Some(v) = self.min_inliers {
            g.min_inliers = v;
        }
        let unit = |v: Option<f32>, flag: &str, dst: &mut f32| -> anyhow::Result<()> {
            if let Some(v) = v {
                anyhow::ensure!((0.0..=1.0).contains(&v), "{flag} {v}: must lie in [0, 1]");
                *dst = v;
            }
            Ok(())
        };
        unit(
            self.min_inlier_ratio,
            "--min-inlier-ratio",
            &mut g.min_inlier_ratio,
        )?;
        unit(
            self.min_visible_fraction,
            "--min-visible-fraction",
            &mut g.min_visible_fraction,
        )?;
        if let Some(v) = self.min_inlier_confidence {
            anyhow::ensure!(
                v.is_finite() && v >= 0.0,
                "--min-inlier-confidence {v}: must be finite and >= 0"
            );
            g.min_inlier_confidence = v;
        }
        g.validate().map_err(|e| anyhow::anyhow!("gate: {e}"))?;
        Ok(g)
    }
}

/// A clap parser for an integer option that must lie in `lo..=hi`: out of
/// range is an `error:` line naming the flag and the range, before any work.
pub fn int_in<T>(lo: u64, hi: u64) -> clap::builder::RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::fmt::Display + Send + Sync + 'static,
{
    clap::builder::RangedU64ValueParser::<T>::new().range(lo..=hi)
}

/// A clap parser for a real option that must be finite and lie in
/// `[lo, hi]`.
pub fn real_in<T>(lo: f64, hi: f64) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: From<f32> + Into<f64> + std::str::FromStr + Copy + Send + Sync + 'static,
{
    move |s: &str| {
        let v: T = s.trim().parse().map_err(|_| format!("'{s}' is not a number"))?;
        let x: f64 = v.into();
        if x.is_finite() && (lo..=hi).contains(&x) {
            Ok(v)
        } else {
            Err(format!("{s} is not in [{lo}, {hi}]"))
        }
    }
}
