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
//! path a robot runs. `resume` continues from the checkpoint exactly
//! (the shuffling of epoch `e` depends only on the seed and `e`).

pub mod adamw;
pub mod data;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use sld_core::model::ModelInfo;
use sld_core::rng::SplitMix64;

use crate::data::indoor6::{read_landmarks, write_atomic};
use crate::data::scene::SceneDir;
use crate::eval::{evaluate, EvalOptions};
use crate::export::{to_sld_bytes, NamedTensor};
use crate::labels::TargetOptions;
use crate::net::builder::{
    aspp_head, efficientnet_lite0_atrous8, efficientnet_lite0_s8, scene_head, small_backbone, GraphBuilder,
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
    /// Head mode: the augmented copies also get an in-plane rotation
    /// (±10°) and focal scaling (0.9–1.1) about the image centre, labels
    /// moved exactly.
    #[serde(default)]
    pub geometric_aug: bool,
    /// Depth maps the visibility labels read: `NAME.<variant>.depth.png`
    /// (e.g. `filled`); `None`: `NAME.depth.png`.
    #[serde(default)]
    pub depth_variant: Option<String>,
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

/// Builds the network for `o` with `landmarks` heatmaps.
pub fn build_network(o: &TrainOptions, landmarks: usize, scene: &str) -> (ModelInfo, Vec<NamedTensor>) {
    let mut b = GraphBuilder::new(3, o.input_height, o.input_width, o.seed);
    let out = match o.arch {
        _ if o.backbone.is_some() => {
            let x = efficientnet_lite0_atrous8(&mut b);
            scene_head(&mut b, "head", &x, o.head_channels, landmarks)
        }
        Arch::Small => {
            let x = small_backbone(&mut b, o.width);
            scene_head(&mut b, "head", &x, o.head_channels, landmarks)
        }
        Arch::Lite0 => {
            let x = efficientnet_lite0_s8(&mut b);
            aspp_head(&mut b, "head", &x, o.head_channels, landmarks)
        }
    };
    let (info, mut tensors) = b.finish(&[&out], 8, scene);
    // Heatmaps start near zero: scale the last layer down, zero its bias.
    for t in &mut tensors {
        if t.name.starts_with(&format!("{out}.")) {
            let k = if t.name.ends_with(".bias") { 0.0 } else { 0.1 };
            t.data.iter_mut().for_each(|v| *v *= k);
        }
    }
    (info, tensors)
}

/// Runs the frozen backbone (sld-core's interpreter, the code the robot
/// runs) on every sample — `o.buffer_copies` times, copies after the first
/// with photometric jitter — and replaces the images by the features.
fn fill_feature_buffer(
    info: &ModelInfo,
    frozen: &[NamedTensor],
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
        landmarks: 320,
        scene: info.scene.clone(),
        provenance: info.provenance.clone(),
    };
    let bytes = to_sld_bytes(&bb_info, frozen, &vec![[0f32; 3]; 320])?;
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
                    // In-plane rotation ±10° and focal scaling 0.9–1.1 (SLD*'s ranges).
                    let t = data::Similarity2 {
                        angle: (rng.unit_f64() as f32 - 0.5) * 0.35,
                        scale: 0.9 + 0.2 * rng.unit_f64() as f32,
                    };
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

/// Writes weights and optimiser state atomically (one safetensors file
/// with the epoch, step and options in its metadata).
fn save_checkpoint(out: &Path, opt: &AdamW, epoch: usize, o: &TrainOptions, info: &ModelInfo) -> Result<()> {
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(3 * opt.vars.len());
    for (n, v, m, s) in &opt.vars {
        for (prefix, t) in [("param", v.as_tensor()), ("adam_m", m), ("adam_v", s)] {
            let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
            data.push((format!("{prefix}/{n}"), t.dims().to_vec(), bytes));
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
    let meta = HashMap::from([
        ("epoch".to_string(), epoch.to_string()),
        ("step".to_string(), opt.step.to_string()),
        ("options".to_string(), serde_json::to_string(o)?),
        ("model".to_string(), serde_json::to_string(info)?),
    ]);
    let bytes = safetensors::serialize(views, Some(meta))?;
    crate::data::indoor6::write_atomic_traced(&checkpoint_path(out), &bytes, Some("checkpoint"))
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

/// Exports the current weights as a `.sld` file; returns the bytes.
fn export(
    info: &ModelInfo,
    frozen: &[NamedTensor],
    vars: &[(String, Var, Tensor, Tensor)],
    landmarks: &[[f64; 3]],
) -> Result<Vec<u8>> {
    let mut tensors = frozen.to_vec();
    let trained = vars
        .iter()
        .map(|(n, v, _, _)| {
            let t = v.as_tensor();
            Ok(NamedTensor {
                name: n.clone(),
                shape: t.dims().to_vec(),
                data: t.flatten_all()?.to_vec1::<f32>()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    tensors.extend(trained);
    let lm: Vec<[f32; 3]> = landmarks.iter().map(|p| p.map(|v| v as f32)).collect();
    to_sld_bytes(info, &tensors, &lm)
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
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let device = Device::Cpu;
    let mut scene = SceneDir::open(scene_root)?;
    scene.depth_variant = o.depth_variant.clone();
    let landmarks = read_landmarks(&o.landmarks)?;
    ensure!(!landmarks.is_empty(), "{}: no landmarks", o.landmarks.display());
    let name = scene_root
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("scene")
        .to_string();
    let (mut info, mut init) = build_network(o, landmarks.len(), &name);
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
                    "{}: no tensor {} (make it with `sld weights import`)",
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
        let mut hb = GraphBuilder::new(320, o.input_height / 8, o.input_width / 8, o.seed);
        let out = scene_head(
            &mut hb,
            "head",
            sld_core::model::INPUT,
            o.head_channels,
            landmarks.len(),
        );
        train_graph = hb.finish(&[&out], 1, &name).0.graph;
    }

    // Variables: fresh, or from the checkpoint.
    let mut start_epoch = 0;
    let mut opt = if resume {
        let path = checkpoint_path(out);
        let bytes =
            std::fs::read(&path).with_context(|| format!("--resume: cannot read {}", path.display()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let saved: TrainOptions =
            serde_json::from_str(meta.get("options").map(String::as_str).unwrap_or("{}"))
                .with_context(|| format!("{}: no training options in the checkpoint", path.display()))?;
        ensure!(
            saved.arch == o.arch
                && saved.width == o.width
                && saved.head_channels == o.head_channels
                && saved.input_width == o.input_width
                && saved.input_height == o.input_height,
            "{}: the checkpoint's network ({:?}, width {}, head {}, {}×{}) differs from the options given",
            path.display(),
            saved.arch,
            saved.width,
            saved.head_channels,
            saved.input_width,
            saved.input_height
        );
        start_epoch = meta
            .get("epoch")
            .and_then(|s| s.parse().ok())
            .context("checkpoint without epoch")?;
        let step: u64 = meta
            .get("step")
            .and_then(|s| s.parse().ok())
            .context("checkpoint without step")?;
        let map = candle_core::safetensors::load_buffer(&bytes, &device)?;
        let get = |k: &str| {
            map.get(k)
                .cloned()
                .with_context(|| format!("{}: missing tensor {k}", path.display()))
        };
        let vars = init
            .iter()
            .map(|t| {
                let p = get(&format!("param/{}", t.name))?;
                ensure!(
                    p.dims() == t.shape.as_slice(),
                    "{}: tensor {} has shape {:?}",
                    path.display(),
                    t.name,
                    p.dims()
                );
                Ok((
                    t.name.clone(),
                    Var::from_tensor(&p)?,
                    get(&format!("adam_m/{}", t.name))?,
                    get(&format!("adam_v/{}", t.name))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        AdamW {
            vars,
            step,
            params: AdamWParams {
                lr: o.lr,
                ..Default::default()
            },
        }
    } else {
        let vars = init
            .iter()
            .map(|t| {
                Ok((
                    t.name.clone(),
                    Var::from_tensor(&Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &device)?)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // A fresh run starts a fresh metrics file.
        let _ = std::fs::remove_file(out.join("metrics.jsonl"));
        AdamW::new(
            vars,
            AdamWParams {
                lr: o.lr,
                ..Default::default()
            },
        )?
    };
    if resume {
        truncate_metrics(&out.join("metrics.jsonl"), start_epoch)?;
    }
    if start_epoch >= o.epochs {
        bail!("the checkpoint is at epoch {start_epoch}; ask for more --epochs to continue");
    }

    let train_idx = scene.part("train")?;
    let val_idx = scene.part("val")?;
    ensure!(
        !train_idx.is_empty(),
        "{}: no training images",
        scene_root.display()
    );
    let image_spec = info.graph.input.clone();
    // Visibility from tracks (visibility-N.txt next to landmarks-N.txt) for
    // images without a depth map, e.g. COLMAP imports.
    let vis_path = o.landmarks.with_file_name(
        o.landmarks
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .replacen("landmarks-", "visibility-", 1),
    );
    let tracks = if vis_path.exists() && vis_path != o.landmarks {
        let v = crate::data::indoor6::read_visibility(&vis_path)?;
        ensure!(
            v.rows.len() == landmarks.len() && v.images == scene.images.len(),
            "{}: {} rows × {} images, but there are {} landmarks and {} images",
            vis_path.display(),
            v.rows.len(),
            v.images,
            landmarks.len(),
            scene.images.len()
        );
        Some(v)
    } else {
        None
    };
    let mut samples = data::load_samples(
        &scene,
        &train_idx,
        &landmarks,
        &image_spec,
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
        "no landmark is labelled visible in any training image: no depth maps (NAME.depth.png) \
         and no {} to take visibility from (run `sld landmarks`)",
        vis_path.display()
    );
    let spec = train_graph.input.clone();
    let jitter = if o.backbone.is_some() {
        samples = fill_feature_buffer(&info, &frozen, samples, o, progress)?;
        0.0 // applied to the images before the backbone
    } else {
        o.jitter
    };
    let grid = [o.input_height / 8, o.input_width / 8];
    let target = TargetOptions {
        sigma: o.sigma,
        ..Default::default()
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
        let mut rng = SplitMix64::new(o.seed ^ (epoch as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut order: Vec<usize> = (0..samples.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        for chunk in order.chunks(o.batch) {
            if control.stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            crate::faults::point("step");
            let batch: Vec<&data::Sample> = chunk.iter().map(|&i| &samples[i]).collect();
            let bo = data::BatchOptions {
                grid,
                stride: 8.0,
                target,
                jitter,
                pos_weight: o.pos_weight,
            };
            let (x, t, m) = data::batch(&batch, &spec, &bo, Some(&mut rng), &device)?;
            let weights: HashMap<String, Tensor> = opt
                .vars
                .iter()
                .map(|(n, v, _, _)| (n.clone(), v.as_tensor().clone()))
                .collect();
            let y = crate::net::graph::forward(&train_graph, &weights, &x)?.remove(0);
            let loss = ((y - t)?.sqr()?.mul(&m)?.sum_all()? / batch.len() as f64)?;
            let lv = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            ensure!(
                lv.is_finite(),
                "training diverged at epoch {} (loss {lv}); try a lower --lr",
                epoch + 1
            );
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
        let bytes = export(&info, &frozen, &opt.vars, &landmarks)?;
        write_atomic(&out.join("model.sld"), &bytes)?;
        let last = epoch + 1 == o.epochs;
        let validate =
            !val_idx.is_empty() && (last || (o.validate_every > 0 && (epoch + 1) % o.validate_every == 0));
        let (recall, pix) = if validate {
            let r = evaluate(&bytes, &scene, &val_idx, &EvalOptions::default())?;
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
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out.join("metrics.jsonl"))
            .with_context(|| format!("cannot append to {}", out.join("metrics.jsonl").display()))?;
        writeln!(f, "{}", serde_json::to_string(&m)?)?;
        f.sync_all()?;
        // Last: once the checkpoint names this epoch, everything it
        // produced (model, metrics line) is already on disk.
        save_checkpoint(out, &opt, epoch + 1, o, &info)?;
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
