//! `sld train full`: trains a whole network (backbone + heatmap head) for
//! one scene with Candle, SLD*-style: Gaussian heatmap targets at stride 8,
//! squared error summed over the maps with label ≠ 0.5, AdamW, learning
//! rate at full, 0.3× and 0.1× over 60 %, 25 % and 15 % of the epochs ([`lr_factor`]).
//!
//! - [`data`]: preprocessing identical to the `Localizer`'s, labels, batches.
//! - [`adamw`]: the optimiser, with state that checkpoints hold.
//!
//! Every epoch: a checkpoint (weights + optimiser moments, written
//! atomically), the exported `.sld`, one line in `metrics.jsonl` with the
//! loss and the validation recall measured through `sld-core` — the code
//! path a robot runs — and `metrics.png` plotting them ([`crate::plot`]). `resume` continues from the checkpoint exactly
//! (the shuffling of epoch `e` depends only on the seed and `e`).

pub mod adamw;
pub mod backbone;
pub mod data;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use sld_core::model::{InputSpec, ModelInfo};
use sld_core::rng::SplitMix64;

use crate::data::indoor6::{read_landmarks, write_atomic};
use crate::data::scene::SceneDir;
use crate::eval::{evaluate, EvalOptions};
use crate::export::{to_sld_bytes, NamedTensor};
use crate::labels::TargetOptions;
use crate::net::builder::{
    aspp_head, efficientnet_lite0_atrous8, efficientnet_lite0_s8, skip_head, small_backbone, GraphBuilder,
    LIGHT_HEAD, SCENE_HEAD,
};
use adamw::{AdamW, AdamWParams};

/// Network architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Small CPU-friendly backbone + the paper's scene head (demo, tests).
    Small,
    /// EfficientNet-Lite0 at stride 8 + SLD*'s ASPP head (the SLD* baseline).
    Lite0,
}

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
}

/// The training loss of the heatmap outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
    /// What the exported output maps hold.
    pub fn heatmap_kind(self) -> sld_core::model::HeatmapKind {
        match self {
            Loss::Mse => sld_core::model::HeatmapKind::Gaussian,
            Loss::Softmax => sld_core::model::HeatmapKind::Logits,
        }
    }
}

fn one() -> usize {
    1
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean loss per image over the epoch.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock seconds of this epoch's training steps.
    pub train_seconds: f64,
    /// Validation recall at 5 cm / 5° (fraction), when measured.
    pub val_recall_5cm_5deg: Option<f64>,
    /// Validation median pixel error of detections (input pixels), when measured.
    pub val_pixel_error: Option<f64>,
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

/// The result of a run.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The exported model.
    pub model: PathBuf,
    /// Metrics of every epoch run in this call.
    pub epochs: Vec<EpochMetrics>,
    /// Total training seconds (steps only) in this call.
    pub train_seconds: f64,
    /// True when the run was stopped (Ctrl-C) before its last epoch.
    pub interrupted: bool,
}

/// Which trunk a network uses. A backbone file written by `sld train
/// backbone` names its kind in the safetensors metadata key
/// [`BACKBONE_KEY`]; a file without it (`sld weights import`) is the
/// ImageNet EfficientNet-Lite0, built as [`BackboneKind::Lite0Atrous8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackboneKind {
    /// [`small_backbone`] of this width (output `2·width` channels at 1/8).
    Small {
        /// Middle-stage channels.
        width: usize,
    },
    /// EfficientNet-Lite0 with SLD*'s strides (320 channels at 1/8).
    Lite0S8,
    /// EfficientNet-Lite0, original strides to 1/8, then dilated (320 channels at 1/8).
    Lite0Atrous8,
}

/// Safetensors metadata key naming a backbone file's [`BackboneKind`].
pub const BACKBONE_KEY: &str = "sld.backbone";

impl BackboneKind {
    /// The metadata value: `small-W`, `lite0-s8` or `lite0-atrous8`.
    pub fn tag(&self) -> String {
        match self {
            BackboneKind::Small { width } => format!("small-{width}"),
            BackboneKind::Lite0S8 => "lite0-s8".into(),
            BackboneKind::Lite0Atrous8 => "lite0-atrous8".into(),
        }
    }

    /// Parses [`tag`](Self::tag)'s output.
    pub fn parse(tag: &str) -> Result<Self> {
        Ok(match tag {
            "lite0-s8" => BackboneKind::Lite0S8,
            "lite0-atrous8" => BackboneKind::Lite0Atrous8,
            t => match t.strip_prefix("small-").and_then(|w| w.parse().ok()) {
                Some(width) if (4..=1024).contains(&width) => BackboneKind::Small { width },
                _ => bail!("unknown backbone kind '{t}' (expected small-W, lite0-s8 or lite0-atrous8)"),
            },
        })
    }

    /// The kind a backbone file holds (from its metadata; none: the ImageNet import).
    pub fn of_file(path: &Path) -> Result<Self> {
        let mut f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        // The header is at most 100 MB by safetensors' own limit; read just it.
        let mut len = [0u8; 8];
        std::io::Read::read_exact(&mut f, &mut len)
            .with_context(|| format!("{}: not a safetensors file", path.display()))?;
        let n = u64::from_le_bytes(len);
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        ensure!(
            n <= 100 << 20 && n.saturating_add(8) <= size,
            "{}: not a safetensors file (header of {n} bytes in a file of {size})",
            path.display()
        );
        let mut head = vec![0u8; n as usize];
        std::io::Read::read_exact(&mut f, &mut head)
            .with_context(|| format!("{}: truncated safetensors header", path.display()))?;
        let v: serde_json::Value = serde_json::from_slice(&head)
            .with_context(|| format!("{}: safetensors header is not JSON", path.display()))?;
        match v
            .get("__metadata__")
            .and_then(|m| m.get(BACKBONE_KEY))
            .and_then(|t| t.as_str())
        {
            Some(t) => Self::parse(t).with_context(|| path.display().to_string()),
            None => Ok(BackboneKind::Lite0Atrous8),
        }
    }

    /// Adds the trunk to `b`; returns its output tensor.
    pub fn build(&self, b: &mut GraphBuilder) -> String {
        match *self {
            BackboneKind::Small { width } => small_backbone(b, width),
            BackboneKind::Lite0S8 => efficientnet_lite0_s8(b),
            BackboneKind::Lite0Atrous8 => efficientnet_lite0_atrous8(b),
        }
    }
}

/// Which heatmap head a network ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadKind {
    /// The paper's scene head ([`SCENE_HEAD`]).
    Scene,
    /// SLD*'s ASPP head ([`aspp_head`]).
    Aspp,
    /// The lighter head of backbone training ([`LIGHT_HEAD`]).
    Light,
}

/// A built network: its graph, initial weights and the backbone's output
/// channels (the head's input).
pub struct Network {
    /// Graph and metadata.
    pub info: ModelInfo,
    /// Initial weights, backbone first.
    pub tensors: Vec<NamedTensor>,
    /// Channels of the backbone output.
    pub feature_channels: usize,
}

/// Builds `backbone` + `head` (`channels` hidden, `landmarks` heatmaps) over
/// an `input_width × input_height` input, weights seeded by `seed`. The
/// last layer starts scaled down (×0.1, zero bias) so heatmaps start near 0.
pub fn build(
    backbone: BackboneKind,
    head: HeadKind,
    o: &TrainOptions,
    landmarks: usize,
    scene: &str,
) -> Network {
    let mut b = GraphBuilder::new(3, o.input_height, o.input_width, o.seed);
    let x = backbone.build(&mut b);
    let feature_channels = b.shape(&x)[0];
    let outs = add_heads(&mut b, head, &x, o.head_channels, landmarks, o.heads);
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let (mut info, mut tensors) = b.finish(&refs, 8, scene);
    info.heatmaps = o.loss.heatmap_kind();
    // Small output weights; logits start with every cell at the prior
    // `1/cells` of the landmark being there, "absent" at about one half.
    let cells = (o.input_height / 8).max(1) * (o.input_width / 8).max(1);
    let bias = match o.loss {
        Loss::Mse => 0.0,
        Loss::Softmax => -(cells as f32).ln(),
    };
    for t in &mut tensors {
        if outs.iter().any(|out| t.name.starts_with(&format!("{out}."))) {
            if t.name.ends_with(".bias") {
                t.data.iter_mut().for_each(|v| *v = bias);
            } else {
                t.data.iter_mut().for_each(|v| *v *= 0.1);
            }
        }
    }
    Network {
        info,
        tensors,
        feature_channels,
    }
}

/// The landmark index ranges of an ensemble of `heads` heads over
/// `landmarks` landmarks: consecutive, in the landmark file's (selection)
/// order as SLD* splits them, sizes differing by at most one (the first
/// `landmarks % heads` one larger). `heads` is clamped to `1..=landmarks`.
pub fn landmark_subsets(landmarks: usize, heads: usize) -> Vec<std::ops::Range<usize>> {
    let n = heads.clamp(1, landmarks.max(1));
    let (q, r) = (landmarks / n, landmarks % n);
    let mut start = 0;
    (0..n)
        .map(|k| {
            let len = q + usize::from(k < r);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

/// Adds `heads` heads of `kind` (`channels` hidden each) reading `input`,
/// over the [`landmark_subsets`] of `landmarks`; returns their outputs in
/// landmark order (the graph's outputs, concatenated, are the landmarks).
/// One head is named `head.*`; an ensemble's `head.eK.*`.
pub fn add_heads(
    b: &mut GraphBuilder,
    kind: HeadKind,
    input: &str,
    channels: usize,
    landmarks: usize,
    heads: usize,
) -> Vec<String> {
    let subsets = landmark_subsets(landmarks, heads);
    let single = subsets.len() == 1;
    subsets
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let name = if single {
                "head".to_string()
            } else {
                format!("head.e{k}")
            };
            let l = r.len();
            match kind {
                HeadKind::Scene => skip_head(b, &name, input, channels, l, SCENE_HEAD),
                HeadKind::Aspp => aspp_head(b, &name, input, channels, l),
                HeadKind::Light => skip_head(b, &name, input, channels, l, LIGHT_HEAD),
            }
        })
        .collect()
}

/// Builds the network of `sld train full|head` for `o` with `landmarks`
/// heatmaps: head mode ([`TrainOptions::backbone`] set) puts the scene head
/// on the file's backbone kind; full mode builds `o.arch`.
pub fn build_network(o: &TrainOptions, landmarks: usize, scene: &str) -> Result<Network> {
    let (kind, head) = match (&o.backbone, o.arch) {
        (Some(p), _) => (BackboneKind::of_file(p)?, HeadKind::Scene),
        (None, Arch::Small) => (BackboneKind::Small { width: o.width }, HeadKind::Scene),
        (None, Arch::Lite0) => (BackboneKind::Lite0S8, HeadKind::Aspp),
    };
    Ok(build(kind, head, o, landmarks, scene))
}

/// Runs the frozen backbone (sld-core's interpreter, the code the robot
/// runs) on every sample — `o.buffer_copies` times, copies after the first
/// with photometric jitter — and replaces the images by the features.
fn fill_feature_buffer(
    info: &ModelInfo,
    frozen: &[NamedTensor],
    feature_channels: usize,
    samples: Vec<data::Sample>,
    o: &TrainOptions,
    progress: bool,
) -> Result<Vec<data::Sample>> {
    // The backbone alone as a model: its output is the feature map.
    let mut graph = info.graph.clone();
    let feat = graph
        .layers
        .iter()
        .rev()
        .find(|l| !l.name.starts_with("head."))
        .map(|l| l.name.clone())
        .context("no backbone layer")?;
    graph.layers.retain(|l| !l.name.starts_with("head."));
    graph.outputs = vec![feat];
    let bb_info = ModelInfo {
        graph,
        stride: 8,
        landmarks: feature_channels as u32,
        heatmaps: Default::default(),
        scene: info.scene.clone(),
        provenance: info.provenance.clone(),
    };
    let bytes = to_sld_bytes(&bb_info, frozen, &vec![[0f32; 3]; feature_channels])?;
    let model = sld_core::model::Model::load(&bytes[..]).map_err(|e| anyhow::anyhow!("backbone: {e}"))?;
    let plan = model.plan();
    let copies = o.buffer_copies.max(1);
    let bar = crate::progress::bar(
        samples.len() * copies,
        progress,
        "features  {bar:40} {pos}/{len}  {per_sec}  eta {eta}",
    );
    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len];
    let mut out = Vec::with_capacity(samples.len() * copies);
    let mut rng = SplitMix64::new(o.seed ^ 0xfea7_b0ff);
    for s in &samples {
        for k in 0..copies {
            crate::faults::point("buffer");
            let mut x = s.input.clone();
            let mut labels = s.labels.clone();
            if k > 0 {
                data::jitter(&mut x, 3, &mut rng, o.jitter);
                if o.geometric_aug {
                    let t = data::Similarity2::random(&mut rng);
                    let (w, h) = (o.input_width, o.input_height);
                    x = t.warp(&x, 3, w, h);
                    labels = t.labels(&labels, w, h);
                }
            }
            sld_core::nn::input_mut(plan, &mut arena)
                .context("backbone input")?
                .copy_from_slice(&x);
            sld_core::nn::run(plan, model.weights(), &mut arena, &mut scratch)
                .map_err(|e| anyhow::anyhow!("backbone: {e}"))?;
            let f = sld_core::nn::output(plan, &arena, 0).context("backbone output")?;
            out.push(data::Sample {
                input: f.to_vec(),
                labels,
                image: s.image,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Learning-rate schedule: full rate for the first 60 % of the epochs, then
/// 0.3×, then 0.1× for the last 15 % (a step schedule like SLD*'s, which
/// halves every 40 of 200 epochs, but keeping the full rate longer for
/// short runs).
pub fn lr_factor(epoch: usize, epochs: usize) -> f64 {
    let f = epoch as f64 / epochs.max(1) as f64;
    if f < 0.6 {
        1.0
    } else if f < 0.85 {
        0.3
    } else {
        0.1
    }
}

fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("checkpoint.safetensors")
}

/// Writes the variables and moments of every optimiser (tensor names
/// `param/PREFIX+NAME`, `adam_m/…`, `adam_v/…`) and `meta` atomically as
/// one safetensors file, serialised in memory first.
fn save_checkpoint(out: &Path, opts: &[(&str, &AdamW)], meta: HashMap<String, String>) -> Result<()> {
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (pre, opt) in opts {
        for (n, v, m, s) in &opt.vars {
            for (kind, t) in [("param", v.as_tensor()), ("adam_m", m), ("adam_v", s)] {
                let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
                data.push((format!("{kind}/{pre}{n}"), t.dims().to_vec(), bytes));
            }
        }
    }
    let views = data
        .iter()
        .map(|(n, shape, b)| {
            Ok((
                n.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, Some(meta))?;
    crate::data::indoor6::write_atomic_traced(&checkpoint_path(out), &bytes, Some("checkpoint"))
}

/// A checkpoint read back: tensors by name and the metadata.
struct Checkpoint {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    meta: HashMap<String, String>,
}

impl Checkpoint {
    fn read(out: &Path) -> Result<Self> {
        let path = checkpoint_path(out);
        let bytes =
            std::fs::read(&path).with_context(|| format!("--resume: cannot read {}", path.display()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{}: not a checkpoint", path.display()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        Ok(Self { path, tensors, meta })
    }

    /// Refuses to resume with options that build another network.
    fn check_network(&self, o: &TrainOptions) -> Result<()> {
        let saved: TrainOptions = self.options()?;
        ensure!(
            saved.arch == o.arch
                && saved.width == o.width
                && saved.head_channels == o.head_channels
                && saved.heads == o.heads
                && saved.input_width == o.input_width
                && saved.input_height == o.input_height,
            "{}: the checkpoint's network ({:?}, width {}, head {}, {} head(s), {}×{}) differs from the options given",
            self.path.display(),
            saved.arch,
            saved.width,
            saved.head_channels,
            saved.heads,
            saved.input_width,
            saved.input_height
        );
        Ok(())
    }

    fn get<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        self.meta
            .get(key)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{}: no '{key}' in the checkpoint", self.path.display()))
    }

    fn options<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(self.meta.get("options").map(String::as_str).unwrap_or("{}"))
            .with_context(|| format!("{}: no training options in the checkpoint", self.path.display()))
    }

    /// The optimiser over `init`'s names (prefixed by `prefix` in the file).
    fn adamw(&self, prefix: &str, init: &[NamedTensor], step: u64, lr: f64) -> Result<AdamW> {
        let get = |k: &str| {
            self.tensors
                .get(k)
                .cloned()
                .with_context(|| format!("{}: missing tensor {k}", self.path.display()))
        };
        let vars = init
            .iter()
            .map(|t| {
                let p = get(&format!("param/{prefix}{}", t.name))?;
                ensure!(
                    p.dims() == t.shape.as_slice(),
                    "{}: tensor {prefix}{} has shape {:?}, expected {:?}",
                    self.path.display(),
                    t.name,
                    p.dims(),
                    t.shape
                );
                Ok((
                    t.name.clone(),
                    Var::from_tensor(&p)?,
                    get(&format!("adam_m/{prefix}{}", t.name))?,
                    get(&format!("adam_v/{prefix}{}", t.name))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            vars,
            step,
            params: AdamWParams {
                lr,
                ..Default::default()
            },
        })
    }
}

/// A fresh optimiser over `init`.
fn fresh_adamw(init: &[NamedTensor], lr: f64) -> Result<AdamW> {
    let vars = init
        .iter()
        .map(|t| {
            Ok((
                t.name.clone(),
                Var::from_tensor(&Tensor::from_vec(
                    t.data.clone(),
                    t.shape.as_slice(),
                    &Device::Cpu,
                )?)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    AdamW::new(
        vars,
        AdamWParams {
            lr,
            ..Default::default()
        },
    )
}

/// Keeps the lines of `metrics.jsonl` for epochs `1..=epochs` (a run killed
/// after logging an epoch but before checkpointing it redoes that epoch).
fn truncate_metrics(path: &Path, epochs: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let keep: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("epoch").and_then(|e| e.as_u64()))
                .is_some_and(|e| e as usize <= epochs)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, keep.as_bytes())
}

/// Appends one JSON line to `out/metrics.jsonl`, fsyncs it, and redraws
/// `out/metrics.png` (loss, validation pixel error and recall per epoch).
fn append_metrics(out: &Path, line: &impl Serialize) -> Result<()> {
    let path = out.join("metrics.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot append to {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(line)?)?;
    f.sync_all()?;
    crate::plot::plot_metrics(&path, &out.join("metrics.png"))
}

/// The random stream of epoch `epoch` (0-based): shuffling and
/// augmentation depend only on the seed and the epoch, so a resumed run
/// repeats them exactly.
fn epoch_rng(seed: u64, epoch: usize) -> SplitMix64 {
    SplitMix64::new(seed ^ (epoch as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// `0..n` in a Fisher–Yates order drawn from `rng`.
fn shuffled(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// Exports `frozen` plus the current `vars` as a `.sld` file; returns the bytes.
fn export(
    info: &ModelInfo,
    frozen: &[NamedTensor],
    vars: &[(String, Var, Tensor, Tensor)],
    landmarks: &[[f64; 3]],
) -> Result<Vec<u8>> {
    let mut tensors = frozen.to_vec();
    tensors.extend(named_tensors(vars)?);
    let lm: Vec<[f32; 3]> = landmarks.iter().map(|p| p.map(|v| v as f32)).collect();
    to_sld_bytes(info, &tensors, &lm)
}

/// The current values of optimiser variables.
fn named_tensors(vars: &[(String, Var, Tensor, Tensor)]) -> Result<Vec<NamedTensor>> {
    vars.iter()
        .map(|(n, v, _, _)| {
            let t = v.as_tensor();
            Ok(NamedTensor {
                name: n.clone(),
                shape: t.dims().to_vec(),
                data: t.flatten_all()?.to_vec1::<f32>()?,
            })
        })
        .collect()
}

/// Checks the options every training mode shares.
fn check_options(o: &TrainOptions) -> Result<()> {
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
    Ok(())
}

/// One scene opened for training: its directory, name and landmarks.
struct TrainScene {
    scene: SceneDir,
    name: String,
    landmarks_path: PathBuf,
    landmarks: Vec<[f64; 3]>,
}

impl TrainScene {
    fn open(root: &Path, landmarks_path: &Path, o: &TrainOptions) -> Result<Self> {
        let mut scene = SceneDir::open(root)?;
        scene.depth_variant = o.depth_variant.clone();
        let landmarks = read_landmarks(landmarks_path)?;
        ensure!(
            !landmarks.is_empty(),
            "{}: no landmarks",
            landmarks_path.display()
        );
        ensure!(
            o.heads <= landmarks.len(),
            "--heads {} is more than the {} landmarks of {} (each head needs at least one)",
            o.heads,
            landmarks.len(),
            landmarks_path.display()
        );
        let name = root
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("scene")
            .to_string();
        Ok(Self {
            scene,
            name,
            landmarks_path: landmarks_path.to_path_buf(),
            landmarks,
        })
    }

    /// The training images, preprocessed for `spec` and labelled. Images
    /// without a depth map take visibility from the tracks
    /// (`visibility-N.txt` next to `landmarks-N.txt`), e.g. COLMAP imports.
    fn training_samples(
        &self,
        o: &TrainOptions,
        spec: &InputSpec,
        progress: bool,
    ) -> Result<Vec<data::Sample>> {
        let (scene, lp) = (&self.scene, &self.landmarks_path);
        let train_idx = scene.part("train")?;
        ensure!(
            !train_idx.is_empty(),
            "{}: no training images",
            scene.root.display()
        );
        let vis_path = lp.with_file_name(lp.file_name().and_then(|n| n.to_str()).unwrap_or("").replacen(
            "landmarks-",
            "visibility-",
            1,
        ));
        let tracks = if vis_path.exists() && vis_path != *lp {
            let v = crate::data::indoor6::read_visibility(&vis_path)?;
            ensure!(
                v.rows.len() == self.landmarks.len() && v.images == scene.images.len(),
                "{}: {} rows × {} images, but there are {} landmarks and {} images",
                vis_path.display(),
                v.rows.len(),
                v.images,
                self.landmarks.len(),
                scene.images.len()
            );
            Some(v)
        } else {
            None
        };
        let samples = data::load_samples(
            scene,
            &train_idx,
            &self.landmarks,
            spec,
            o.depth_tolerance,
            tracks.as_ref(),
            progress,
        )?;
        let labelled = samples
            .iter()
            .flat_map(|s| &s.labels)
            .filter(|(_, w)| *w == 1.0)
            .count();
        ensure!(
            labelled > 0,
            "{}: no landmark is labelled visible in any training image: no depth maps (NAME.depth.png) \
             and no {} to take visibility from (run `sld landmarks`)",
            scene.root.display(),
            vis_path.display()
        );
        Ok(samples)
    }
}

/// The batch loss: squared error against the Gaussian targets, weighted
/// per cell, summed and divided by the batch size. Returns the loss
/// tensor and its value (an error when it is not finite).
fn batch_loss(
    graph: &sld_core::model::Graph,
    vars: &[&[(String, Var, Tensor, Tensor)]],
    batch: &[&data::Sample],
    bo: &data::BatchOptions,
    rng: &mut SplitMix64,
    epoch: usize,
) -> Result<(Tensor, f64)> {
    let (x, t, m) = data::batch(batch, &graph.input, bo, Some(rng), &Device::Cpu)?;
    let weights: HashMap<String, Tensor> = vars
        .iter()
        .flat_map(|v| v.iter())
        .map(|(n, v, _, _)| (n.clone(), v.as_tensor().clone()))
        .collect();
    // An ensemble's outputs, concatenated, are the landmarks in order.
    let mut ys = crate::net::graph::forward(graph, &weights, &x)?;
    let y = if ys.len() == 1 {
        ys.remove(0)
    } else {
        Tensor::cat(&ys, 1)?
    };
    let loss = match bo.loss {
        Loss::Mse => ((y - t)?.sqr()?.mul(&m)?.sum_all()? / batch.len() as f64)?,
        Loss::Softmax => (softmax_loss(&y, &t, &m)? / batch.len() as f64)?,
    };
    let lv = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    ensure!(
        lv.is_finite(),
        "training diverged at epoch {} (loss {lv}); try a lower --lr",
        epoch + 1
    );
    Ok((loss, lv))
}

/// Summed cross-entropy of the [`Loss::Softmax`] loss for logits `y`
/// `[B, L, h, w]`, Gaussian targets `t` and cell weights `m` (as
/// [`data::batch`] makes them): a map whose weights are all 0 is ignored;
/// a map with a positive target is a visible landmark whose target
/// distribution is `t` normalised over the cells; any other map is a
/// landmark not in the image, whose target is the absent bin.
pub fn softmax_loss(y: &Tensor, t: &Tensor, m: &Tensor) -> Result<Tensor> {
    let (b, l, h, w) = y.dims4()?;
    let cells = h * w;
    let t = t.reshape((b * l, cells))?;
    let tv = t.to_vec2::<f32>()?;
    let mv = m.reshape((b * l, cells))?.max(1)?.to_vec1::<f32>()?;
    let mut target = Vec::with_capacity(b * l * (cells + 1));
    let mut weight = Vec::with_capacity(b * l);
    for (row, &mk) in tv.iter().zip(&mv) {
        let sum: f32 = row.iter().sum();
        if sum > 0.0 {
            target.extend(row.iter().map(|v| v / sum));
            target.push(0.0);
        } else {
            target.extend(std::iter::repeat_n(0.0, cells));
            target.push(1.0);
        }
        weight.push(if mk > 0.0 { 1f32 } else { 0.0 });
    }
    let dev = y.device();
    let target = Tensor::from_vec(target, (b * l, cells + 1), dev)?;
    let weight = Tensor::from_vec(weight, (b * l, 1), dev)?;
    let absent = Tensor::zeros((b * l, 1), y.dtype(), dev)?;
    let z = Tensor::cat(&[&y.reshape((b * l, cells))?, &absent], 1)?;
    let logp = candle_nn::ops::log_softmax(&z, 1)?;
    Ok((logp.mul(&target)?.broadcast_mul(&weight)?.sum_all()?.neg())?)
}

/// Trains (or resumes training of) a full network on `scene` into `out`
/// (`checkpoint.safetensors`, `model.sld`, `metrics.jsonl`).
pub fn train_full(
    scene_root: &Path,
    out: &Path,
    o: &TrainOptions,
    resume: bool,
    progress: bool,
    control: &Control,
) -> Result<TrainOutcome> {
    use std::sync::atomic::Ordering;
    crate::alloc::tune_for_training();
    check_options(o)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let ts = TrainScene::open(scene_root, &o.landmarks, o)?;
    let landmarks = &ts.landmarks;
    let Network {
        mut info,
        tensors: mut init,
        feature_channels,
    } = build_network(o, landmarks.len(), &ts.name)?;
    info.provenance.date = crate::eval::utc_now();
    // Head mode: backbone weights from the file, frozen; the Candle graph is
    // the head alone, reading backbone features.
    let mut frozen: Vec<NamedTensor> = Vec::new();
    let mut train_graph = info.graph.clone();
    if let Some(bb) = &o.backbone {
        let w = crate::weights::read_safetensors(bb)?;
        for t in init.iter_mut().filter(|t| !t.name.starts_with("head.")) {
            let src = w.get(&t.name).with_context(|| {
                format!(
                    "{}: no tensor {} (make it with `sld weights import` or `sld train backbone`)",
                    bb.display(),
                    t.name
                )
            })?;
            ensure!(
                src.shape == t.shape,
                "{}: {} has shape {:?}, expected {:?}",
                bb.display(),
                t.name,
                src.shape,
                t.shape
            );
            t.data = src.data.clone();
        }
        let (f, h): (Vec<_>, Vec<_>) = init.into_iter().partition(|t| !t.name.starts_with("head."));
        frozen = f;
        init = h;
        let mut hb = GraphBuilder::new(feature_channels, o.input_height / 8, o.input_width / 8, o.seed);
        let outs = add_heads(
            &mut hb,
            HeadKind::Scene,
            sld_core::model::INPUT,
            o.head_channels,
            landmarks.len(),
            o.heads,
        );
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        train_graph = hb.finish(&refs, 1, &ts.name).0.graph;
    }

    // Variables: fresh, or from the checkpoint.
    let mut start_epoch = 0;
    let mut opt = if resume {
        let ck = Checkpoint::read(out)?;
        ck.check_network(o)?;
        start_epoch = ck.get("epoch")?;
        ck.adamw("", &init, ck.get("step")?, o.lr)?
    } else {
        // A fresh run starts a fresh metrics file.
        let _ = std::fs::remove_file(out.join("metrics.jsonl"));
        fresh_adamw(&init, o.lr)?
    };
    if resume {
        truncate_metrics(&out.join("metrics.jsonl"), start_epoch)?;
    }
    if start_epoch >= o.epochs {
        bail!("the checkpoint is at epoch {start_epoch}; ask for more --epochs to continue");
    }

    let val_idx = ts.scene.part("val")?;
    let mut samples = ts.training_samples(o, &info.graph.input, progress)?;
    let jitter = if o.backbone.is_some() {
        samples = fill_feature_buffer(&info, &frozen, feature_channels, samples, o, progress)?;
        0.0 // applied to the images before the backbone
    } else {
        o.jitter
    };
    let bo = data::BatchOptions {
        grid: [o.input_height / 8, o.input_width / 8],
        stride: 8.0,
        target: TargetOptions {
            sigma: o.sigma,
            ..Default::default()
        },
        jitter,
        pos_weight: o.pos_weight,
        loss: o.loss,
        // Head mode: the buffer's copies carry the augmentation.
        geometric: o.geometric_aug && o.backbone.is_none(),
    };

    let steps_per_epoch = samples.len().div_ceil(o.batch);
    let bar = crate::progress::bar(
        (o.epochs - start_epoch) * steps_per_epoch,
        progress,
        "training  {bar:40} epoch {msg}  {per_sec}  eta {eta}",
    );
    let mut metrics = Vec::new();
    let mut total = 0.0;
    let mut interrupted = false;
    for epoch in start_epoch..o.epochs {
        if control.stop_after.is_some_and(|n| epoch >= n) {
            break;
        }
        opt.params.lr = o.lr * lr_factor(epoch, o.epochs);
        let mut rng = epoch_rng(o.seed, epoch);
        let order = shuffled(samples.len(), &mut rng);
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        for chunk in order.chunks(o.batch) {
            if control.stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            crate::faults::point("step");
            let batch: Vec<&data::Sample> = chunk.iter().map(|&i| &samples[i]).collect();
            let (loss, lv) = batch_loss(&train_graph, &[&opt.vars], &batch, &bo, &mut rng, epoch)?;
            opt.backward_step(&loss)?;
            loss_sum += lv * batch.len() as f64;
            bar.set_message(format!("{}/{} loss {:.3}", epoch + 1, o.epochs, lv));
            bar.inc(1);
        }
        if interrupted {
            break; // the checkpoint of the last finished epoch stays
        }
        let secs = t0.elapsed().as_secs_f64();
        total += secs;
        let bytes = export(&info, &frozen, &opt.vars, landmarks)?;
        write_atomic(&out.join("model.sld"), &bytes)?;
        let last = epoch + 1 == o.epochs;
        let validate =
            !val_idx.is_empty() && (last || (o.validate_every > 0 && (epoch + 1) % o.validate_every == 0));
        let (recall, pix) = if validate {
            let r = evaluate(&bytes, &ts.scene, &val_idx, &EvalOptions::default())?;
            (Some(r.recall_5cm_5deg), r.median_pixel_error)
        } else {
            (None, None)
        };
        let m = EpochMetrics {
            epoch: epoch + 1,
            loss: loss_sum / samples.len() as f64,
            lr: opt.params.lr,
            train_seconds: secs,
            val_recall_5cm_5deg: recall,
            val_pixel_error: pix,
        };
        append_metrics(out, &m)?;
        // Last: once the checkpoint names this epoch, everything it
        // produced (model, metrics line) is already on disk.
        let meta = HashMap::from([
            ("epoch".to_string(), (epoch + 1).to_string()),
            ("step".to_string(), opt.step.to_string()),
            ("options".to_string(), serde_json::to_string(o)?),
            ("model".to_string(), serde_json::to_string(&info)?),
        ]);
        save_checkpoint(out, &[("", &opt)], meta)?;
        if progress && recall.is_some() {
            bar.println(format!(
                "epoch {:>3}: loss {:.3}, val recall 5cm/5° {:.1} %, median pixel error {}",
                m.epoch,
                m.loss,
                100.0 * recall.unwrap_or(0.0),
                pix.map_or("-".into(), |p| format!("{p:.2} px"))
            ));
        }
        metrics.push(m);
    }
    bar.finish_and_clear();
    Ok(TrainOutcome {
        model: out.join("model.sld"),
        epochs: metrics,
        train_seconds: total,
        interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed form: with every logit 0, each softmax over `cells + 1` bins
    /// puts `1/(cells + 1)` on every bin, so each map that counts costs
    /// `ln(cells + 1)` whatever its target; ignored maps cost nothing.
    #[test]
    fn softmax_loss_closed_form_at_zero_logits() {
        let (b, l, h, w) = (2usize, 3usize, 2usize, 3usize);
        let cells = h * w;
        let y = Tensor::zeros((b, l, h, w), DType::F32, &Device::Cpu).unwrap();
        let mut t = vec![0f32; b * l * cells];
        let mut m = vec![1f32; b * l * cells];
        t[2] = 1.0; // map (0, 0) visible
        t[3] = 0.5;
        m[cells..2 * cells].iter_mut().for_each(|v| *v = 0.0); // map (0, 1) ignored
        let t = Tensor::from_vec(t, (b, l, h, w), &Device::Cpu).unwrap();
        let m = Tensor::from_vec(m, (b, l, h, w), &Device::Cpu).unwrap();
        let got = softmax_loss(&y, &t, &m).unwrap().to_scalar::<f32>().unwrap() as f64;
        let want = 5.0 * ((cells + 1) as f64).ln();
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    /// Against a direct f64 evaluation on random logits: a visible map's
    /// cost is `−Σ (t/Σt)·log p`, an absent map's `−log p(absent)`.
    #[test]
    fn softmax_loss_matches_a_direct_evaluation() {
        let (h, w) = (3usize, 4usize);
        let cells = h * w;
        let mut rng = SplitMix64::new(5);
        let z: Vec<f32> = (0..2 * cells)
            .map(|_| (4.0 * rng.unit_f64() - 2.0) as f32)
            .collect();
        let mut t = vec![0f32; 2 * cells];
        t[5] = 1.0;
        t[6] = 0.25;
        t[1] = 0.5;
        let m = vec![1f32; 2 * cells];
        let lse = |zs: &[f32]| -> f64 {
            let s: f64 = zs.iter().map(|&v| (v as f64).exp()).sum::<f64>() + 1.0;
            s.ln()
        };
        let sum_t: f64 = t[..cells].iter().map(|&v| v as f64).sum();
        let visible: f64 = (0..cells)
            .map(|c| -(t[c] as f64 / sum_t) * (z[c] as f64 - lse(&z[..cells])))
            .sum();
        let absent = lse(&z[cells..]);
        let dev = Device::Cpu;
        let got = softmax_loss(
            &Tensor::from_vec(z, (1, 2, h, w), &dev).unwrap(),
            &Tensor::from_vec(t, (1, 2, h, w), &dev).unwrap(),
            &Tensor::from_vec(m, (1, 2, h, w), &dev).unwrap(),
        )
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
        assert!(
            (got - (visible + absent)).abs() < 1e-4,
            "{got} vs {}",
            visible + absent
        );
    }
}
