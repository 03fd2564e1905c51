//! `sld train full` and `sld train head`: one scene, one network.
//!
//! Full mode trains backbone and head together on augmented images. Head
//! mode ([`TrainOptions::backbone`] set) loads and freezes the backbone,
//! fills a feature buffer once ([`super::buffer`]) and trains only the
//! head, in Candle, from it; the export is backbone + head.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use sld_core::model::{Graph, ModelInfo};
use sld_core::rng::SplitMix64;

use super::adamw::AdamW;
use super::checkpoint::{export, fresh_adamw, save_checkpoint, Checkpoint};
use super::epochs::{self, EpochEnd};
use super::loss::batch_loss;
use super::options::{Control, TrainOptions};
use super::parallel::{self, Peers, Vars};
use super::samples::{BatchOptions, Sample};
use super::scene::TrainScene;
use super::world::{digest, run_fingerprint, World};
use crate::eval::{evaluate, EvalOptions};
use crate::io::atomic::write_atomic;
use crate::io::safetensors::NamedTensor;
use crate::net::arch::{add_heads, build, BackboneKind, Mode, Network};
use crate::net::builder::GraphBuilder;

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

/// Builds the network of `sld train full|head` for `o` with `landmarks`
/// heatmaps: head mode ([`TrainOptions::backbone`] set) puts the scene head
/// on the file's backbone kind; full mode builds `o.arch`.
pub fn build_network(o: &TrainOptions, landmarks: usize, scene: &str) -> Result<Network> {
    let (kind, head) = match &o.backbone {
        Some(p) => (BackboneKind::of_file(p)?, o.head_kind()),
        None => o.arch.resolve(o.width, Mode::Full),
    };
    Ok(build(kind, head, &o.net_spec(), landmarks, scene))
}

/// Copies the backbone tensors of `init` (every name not under `head.`)
/// from the weights file `path`, checking names and shapes.
pub fn load_backbone(path: &Path, init: &mut [NamedTensor]) -> Result<()> {
    let w = crate::io::safetensors::read(path)?.tensors;
    let fixed = crate::net::xfeat::FIXED_PREFIX;
    for t in init
        .iter_mut()
        .filter(|t| !t.name.starts_with("head.") && !t.name.starts_with(fixed))
    {
        let src = w.get(&t.name).with_context(|| {
            format!(
                "{}: no tensor {} (make it with `sld weights import` or `sld train backbone`)",
                path.display(),
                t.name
            )
        })?;
        ensure!(
            src.shape == t.shape,
            "{}: {} has shape {:?}, expected {:?}",
            path.display(),
            t.name,
            src.shape,
            t.shape
        );
        t.data = src.data.clone();
    }
    Ok(())
}

/// The single-scene training mode inside the shared epoch loop.
struct Single<'a> {
    o: &'a TrainOptions,
    out: &'a Path,
    ts: &'a TrainScene,
    info: ModelInfo,
    frozen: Vec<NamedTensor>,
    train_graph: Graph,
    opt: AdamW,
    /// Data-parallel ranks beyond `opt`'s (`--devices`).
    peers: Option<Peers>,
    samples: Vec<Sample>,
    bo: BatchOptions,
    val: Vec<usize>,
}

impl epochs::Mode for Single<'_> {
    type Metrics = EpochMetrics;

    fn groups(&self) -> usize {
        1
    }

    fn steps_per_epoch(&self, batch: usize) -> usize {
        self.samples.len().div_ceil(batch)
    }

    fn set_lr(&mut self, lr: f64) {
        self.opt.params.lr = lr;
        if let Some(p) = &mut self.peers {
            p.set_lr(lr);
        }
    }

    fn batches(&self, batch: usize, rng: &mut SplitMix64) -> Vec<(usize, Vec<usize>)> {
        let order = epochs::shuffled(self.samples.len(), rng);
        order.chunks(batch).map(|c| (0, c.to_vec())).collect()
    }

    fn step(&mut self, _: usize, idx: &[usize], rng: &mut SplitMix64, epoch: usize) -> Result<f64> {
        let (samples, graph, bo) = (&self.samples, &self.train_graph, &self.bo);
        let loss = |vars: &[&Vars], shard: &[usize], rng: &mut SplitMix64| {
            let batch: Vec<&Sample> = shard.iter().map(|&i| &samples[i]).collect();
            batch_loss(graph, vars, &batch, bo, rng, epoch)
        };
        if let Some(peers) = &mut self.peers {
            return parallel::step(&mut [&mut self.opt], peers, &[0], idx, rng, loss);
        }
        let (l, lv) = loss(&[&self.opt.vars], idx, rng)?;
        self.opt.backward_step(&l)?;
        Ok(lv)
    }

    fn group_name(&self, _: usize) -> &str {
        ""
    }

    fn writes(&self) -> bool {
        self.peers.as_ref().is_none_or(Peers::writes)
    }

    fn end_epoch(&mut self, e: &EpochEnd, loss_sums: &[f64], validate: bool) -> Result<EpochMetrics> {
        let bytes = export(&self.info, &self.frozen, &self.opt.vars, &self.ts.landmarks)?;
        write_atomic(&self.out.join("model.sld"), &bytes)?;
        let (recall, pix) = if validate && !self.val.is_empty() {
            let r = evaluate(&bytes, &self.ts.scene, &self.val, &EvalOptions::default())?;
            (Some(r.recall_5cm_5deg), r.median_pixel_error)
        } else {
            (None, None)
        };
        Ok(EpochMetrics {
            epoch: e.epoch,
            loss: loss_sums[0] / self.samples.len() as f64,
            lr: e.lr,
            train_seconds: e.train_seconds,
            val_recall_5cm_5deg: recall,
            val_pixel_error: pix,
        })
    }

    fn save_checkpoint(&self, epoch: usize) -> Result<()> {
        let meta = HashMap::from([
            ("epoch".to_string(), epoch.to_string()),
            ("step".to_string(), self.opt.step.to_string()),
            ("options".to_string(), serde_json::to_string(self.o)?),
            ("model".to_string(), serde_json::to_string(&self.info)?),
        ]);
        save_checkpoint(self.out, &[("", &self.opt)], meta)
    }

    fn report(&self, m: &EpochMetrics) -> Vec<String> {
        m.val_recall_5cm_5deg
            .map(|recall| {
                format!(
                    "epoch {:>3}: loss {:.3}, val recall 5cm/5° {:.1} %, median pixel error {}",
                    m.epoch,
                    m.loss,
                    100.0 * recall,
                    m.val_pixel_error.map_or("-".into(), |p| format!("{p:.2} px"))
                )
            })
            .into_iter()
            .collect()
    }
}

/// Trains (or resumes training of) a network on `scene` into `out`
/// (`checkpoint.safetensors`, `model.sld`, `metrics.jsonl`, `metrics.png`):
/// the whole network, or with [`TrainOptions::backbone`] only the head.
pub fn train_full(
    scene_root: &Path,
    out: &Path,
    o: &TrainOptions,
    resume: bool,
    progress: bool,
    control: &Control,
) -> Result<TrainOutcome> {
    // The devices first: one that cannot be had leaves OUT untouched.
    let devices = crate::device::open_all(o.device, &o.devices, o.world.as_ref())?;
    let device = devices[0].clone();
    let writes = o.world.as_ref().is_none_or(World::writes);
    epochs::setup(out, o, writes)?;
    let ts = TrainScene::open(scene_root, &o.landmarks, o)?;
    let Network {
        mut info,
        tensors: mut init,
        feature_channels,
    } = build_network(o, ts.landmarks.len(), &ts.name)?;
    info.provenance.date = crate::util::time::utc_now();
    // Head mode: backbone weights from the file, frozen; the Candle graph is
    // the head alone, reading backbone features.
    let mut frozen: Vec<NamedTensor> = Vec::new();
    let mut train_graph = info.graph.clone();
    if let Some(bb) = &o.backbone {
        load_backbone(bb, &mut init)?;
        let (f, h): (Vec<_>, Vec<_>) = init.into_iter().partition(|t| !t.name.starts_with("head."));
        frozen = f;
        init = h;
        let mut hb = GraphBuilder::new(feature_channels, o.input_height / 8, o.input_width / 8, o.seed);
        let outs = add_heads(
            &mut hb,
            o.head_kind(),
            sld_core::model::INPUT,
            o.head_channels,
            ts.landmarks.len(),
            o.heads,
        );
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        train_graph = hb.finish(&refs, 1, &ts.name).0.graph;
    }

    // Several processes: meet the other ranks now, before anything slow.
    let mut peers = match &o.world {
        Some(w) => {
            let what = (
                ts.scene.part("train")?.len(),
                ts.landmarks.len(),
                init.iter().map(|t| (&t.name, &t.shape)).collect::<Vec<_>>(),
                frozen
                    .iter()
                    .map(|t| (&t.name, digest(&t.data)))
                    .collect::<Vec<_>>(),
            );
            Some(Peers::join(w, &device, run_fingerprint(o, &what)?, progress)?)
        }
        None => None,
    };
    // Variables: fresh, or from the checkpoint, on the training device
    // (other ranks of a multi-process run get rank 0's below).
    let (mut opt, mut start_epoch) = if resume && writes {
        let ck = Checkpoint::read(out, &device)?;
        ck.check_network(o)?;
        (ck.adamw("", &init, ck.get("step")?, o.lr)?, ck.get("epoch")?)
    } else {
        (fresh_adamw(&init, o.lr, &device)?, 0)
    };
    if writes {
        epochs::begin(out, resume, start_epoch, o)?;
    }
    if let Some(p) = &mut peers {
        p.sync_from_rank0(&mut [&mut opt], &mut start_epoch)?;
    }

    let val = ts.scene.part("val")?;
    // Refuse what cannot fit before loading anything.
    let need = o.memory_lower_bound(
        ts.scene.part("train")?.len(),
        ts.landmarks.len(),
        o.backbone.is_some().then_some(feature_channels),
    );
    crate::util::memory::ensure_fits(
        "training",
        need,
        "lower --input-width/--input-height, --batch, --width or --buffer-copies, or train on fewer images",
    )
    .inspect_err(|_| {
        // Leave no empty output folder behind (a resumed run's is not empty).
        if writes {
            let _ = std::fs::remove_dir(out);
        }
    })?;
    if progress {
        eprintln!(
            "sld train: {}",
            crate::device::placement(&devices, o.world.as_ref())
        );
    }
    // Other ranks of a multi-process run show no progress bar of their own.
    let progress = progress && writes;
    let mut samples = ts.training_samples(o, &info.graph.input, progress)?;
    let bo = if o.backbone.is_some() {
        samples = super::buffer::fill_feature_buffer(&info, &frozen, feature_channels, samples, o, progress)?;
        // The buffer's copies carry the augmentation, applied to the
        // images before the backbone.
        o.batch_options(0.0, false)
    } else {
        o.batch_options(o.jitter, o.geometric_aug || o.rotation_aug || o.novel_view_aug)
    };
    if peers.is_none() {
        peers = Peers::new(&[&opt], &devices)?;
    }
    let mut mode = Single {
        peers,
        o,
        out,
        ts: &ts,
        info,
        frozen,
        train_graph,
        opt,
        samples,
        bo,
        val,
    };
    let r = epochs::run(&mut mode, o, start_epoch, out, progress, control)?;
    Ok(TrainOutcome {
        model: out.join("model.sld"),
        epochs: r.epochs,
        train_seconds: r.train_seconds,
        interrupted: r.interrupted,
    })
}
