//! `sld train backbone`: one backbone shared by N scenes, one light head
//! per scene (the faster-training paper's multi-head regime).
//!
//! - Batches are **scene-homogeneous**: each scene's training images are
//!   shuffled and cut into batches, then the batches of all scenes are
//!   shuffled together ([`scene_batches`]). One epoch visits every batch
//!   of every scene exactly once.
//! - A step on a batch of scene `k` runs the backbone and head `k`, and
//!   updates the backbone and head `k` only: the backbone and every head
//!   have their own AdamW (so each head's bias correction counts its own
//!   steps), all fed from one backward pass.
//! - The head is [`LIGHT_HEAD`](crate::net::builder::LIGHT_HEAD) (1×1
//!   convolutions), so the backbone must learn the spatial context.
//!
//! Outputs in `OUT/`: `backbone.safetensors` (the shared trunk, tagged with
//! its [`BackboneKind`] so `sld train head --backbone` rebuilds it),
//! `SCENE.sld` per scene (backbone + its head, runnable by `sld eval`),
//! `metrics.jsonl` (per epoch: mean loss and validation numbers per scene)
//! and `checkpoint.safetensors` (every weight and moment; `--resume`
//! continues exactly).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};
use sld_core::rng::SplitMix64;

use super::adamw::AdamW;
use super::checkpoint::{export, fresh_adamw, named_tensors, save_checkpoint, Checkpoint};
use super::epochs::{self, EpochEnd};
use super::loss::batch_loss;
use super::options::{Control, TrainOptions};
use super::parallel::{self, Peers, Vars};
use super::samples::{BatchOptions, Sample};
use super::scene::TrainScene;
use super::world::{run_fingerprint, World};
use crate::eval::{evaluate, EvalOptions};
use crate::io::atomic::write_atomic;
use crate::io::safetensors::{Metadata, NamedTensor};
use crate::net::arch::{build, BackboneKind, Mode, Network, BACKBONE_KEY};

/// One scene of a backbone run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackboneScene {
    /// Scene directory (Indoor6 layout).
    pub root: PathBuf,
    /// Its landmark file.
    pub landmarks: PathBuf,
}

/// Per-scene numbers of one epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SceneEpoch {
    /// Scene name (directory name).
    pub scene: String,
    /// Mean loss per image of this scene's batches.
    pub loss: f64,
    /// Validation recall at 5 cm / 5° (fraction), when measured.
    pub val_recall_5cm_5deg: Option<f64>,
    /// Validation median pixel error of detections (input pixels), when measured.
    pub val_pixel_error: Option<f64>,
}

/// One line of a backbone run's `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackboneEpoch {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean loss per image over all scenes.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock seconds of this epoch's training steps.
    pub train_seconds: f64,
    /// Optimiser steps this epoch (batches of all scenes).
    pub steps: usize,
    /// Per scene.
    pub scenes: Vec<SceneEpoch>,
}

/// The result of a backbone run.
#[derive(Clone, Debug)]
pub struct BackboneOutcome {
    /// `OUT/backbone.safetensors`.
    pub backbone: PathBuf,
    /// `OUT/SCENE.sld`, in the order of the scenes given.
    pub models: Vec<PathBuf>,
    /// Metrics of every epoch run in this call.
    pub epochs: Vec<BackboneEpoch>,
    /// Total training seconds (steps only) in this call.
    pub train_seconds: f64,
    /// True when stopped (Ctrl-C) before the last epoch.
    pub interrupted: bool,
}

/// The batches of one epoch: each scene's samples (`sizes[k]` of scene
/// `k`) shuffled and cut into batches of at most `batch`, then all batches
/// shuffled across scenes. Returns `(scene, sample indices)` per batch;
/// every sample of every scene appears exactly once.
pub fn scene_batches(sizes: &[usize], batch: usize, rng: &mut SplitMix64) -> Vec<(usize, Vec<usize>)> {
    let batch = batch.max(1);
    let mut out = Vec::new();
    for (k, &n) in sizes.iter().enumerate() {
        for chunk in epochs::shuffled(n, rng).chunks(batch) {
            out.push((k, chunk.to_vec()));
        }
    }
    let order = epochs::shuffled(out.len(), rng);
    let mut slots: Vec<Option<(usize, Vec<usize>)>> = out.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The backbone kind of a run ([`crate::net::arch::Arch::resolve`] in
/// backbone mode).
pub fn backbone_kind(o: &TrainOptions) -> BackboneKind {
    o.arch.resolve(o.width, Mode::Backbone).0
}

/// Writes the backbone's tensors as safetensors, tagged with `kind`.
pub fn write_backbone(path: &Path, kind: BackboneKind, tensors: &[NamedTensor]) -> Result<()> {
    let meta = Metadata::from([(BACKBONE_KEY.to_string(), kind.tag())]);
    crate::io::safetensors::write(path, tensors, meta, None)
}

/// The multi-scene training mode inside the shared epoch loop.
struct Shared<'a> {
    o: &'a TrainOptions,
    out: &'a Path,
    scenes: &'a [BackboneScene],
    opened: Vec<TrainScene>,
    nets: Vec<Network>,
    kind: BackboneKind,
    backbone: AdamW,
    heads: Vec<AdamW>,
    /// Data-parallel ranks beyond the first (`--devices`): each holds the
    /// backbone's optimiser, then every scene head's.
    peers: Option<Peers>,
    samples: Vec<Vec<Sample>>,
    val: Vec<Vec<usize>>,
    bo: BatchOptions,
    models: Vec<PathBuf>,
    backbone_path: PathBuf,
}

/// Tensor-name prefix of scene `k`'s head in the checkpoint.
fn head_prefix(k: usize) -> String {
    format!("scene{k}/")
}

impl epochs::Mode for Shared<'_> {
    type Metrics = BackboneEpoch;

    fn groups(&self) -> usize {
        self.opened.len()
    }

    fn steps_per_epoch(&self, batch: usize) -> usize {
        self.samples.iter().map(|s| s.len().div_ceil(batch)).sum()
    }

    fn set_lr(&mut self, lr: f64) {
        self.backbone.params.lr = lr;
        self.heads.iter_mut().for_each(|h| h.params.lr = lr);
        if let Some(p) = &mut self.peers {
            p.set_lr(lr);
        }
    }

    fn batches(&self, batch: usize, rng: &mut SplitMix64) -> Vec<(usize, Vec<usize>)> {
        let sizes: Vec<usize> = self.samples.iter().map(Vec::len).collect();
        scene_batches(&sizes, batch, rng)
    }

    fn step(&mut self, k: usize, idx: &[usize], rng: &mut SplitMix64, epoch: usize) -> Result<f64> {
        let (samples, graph, bo) = (&self.samples[k], &self.nets[k].info.graph, &self.bo);
        let loss = |vars: &[&Vars], shard: &[usize], rng: &mut SplitMix64| {
            let batch: Vec<&Sample> = shard.iter().map(|&i| &samples[i]).collect();
            batch_loss(graph, vars, &batch, bo, rng, epoch)
        };
        if let Some(peers) = &mut self.peers {
            // Each peer's list: the backbone's optimiser, then the heads'.
            let mut mine = [&mut self.backbone, &mut self.heads[k]];
            return parallel::step(&mut mine, peers, &[0, 1 + k], idx, rng, loss);
        }
        let (loss, lv) = loss(&[&self.backbone.vars, &self.heads[k].vars], idx, rng)?;
        // One backward pass feeds the backbone's and this scene's AdamW.
        let grads = loss.backward()?;
        self.backbone.apply(&grads)?;
        self.heads[k].apply(&grads)?;
        Ok(lv)
    }

    fn group_name(&self, k: usize) -> &str {
        &self.opened[k].name
    }

    fn writes(&self) -> bool {
        self.peers.as_ref().is_none_or(Peers::writes)
    }

    fn end_epoch(&mut self, e: &EpochEnd, loss_sums: &[f64], validate: bool) -> Result<BackboneEpoch> {
        let bb_now = named_tensors(&self.backbone.vars)?;
        write_backbone(&self.backbone_path, self.kind, &bb_now)?;
        let mut per_scene = Vec::with_capacity(self.opened.len());
        for (k, ts) in self.opened.iter().enumerate() {
            let bytes = export(&self.nets[k].info, &bb_now, &self.heads[k].vars, &ts.landmarks)?;
            write_atomic(&self.models[k], &bytes)?;
            let (recall, pix) = if validate && !self.val[k].is_empty() {
                let r = evaluate(&bytes, &ts.scene, &self.val[k], &EvalOptions::default())?;
                (Some(r.recall_5cm_5deg), r.median_pixel_error)
            } else {
                (None, None)
            };
            per_scene.push(SceneEpoch {
                scene: ts.name.clone(),
                loss: loss_sums[k] / self.samples[k].len().max(1) as f64,
                val_recall_5cm_5deg: recall,
                val_pixel_error: pix,
            });
        }
        let images: usize = self.samples.iter().map(Vec::len).sum();
        Ok(BackboneEpoch {
            epoch: e.epoch,
            loss: loss_sums.iter().sum::<f64>() / images.max(1) as f64,
            lr: e.lr,
            train_seconds: e.train_seconds,
            steps: e.steps,
            scenes: per_scene,
        })
    }

    fn save_checkpoint(&self, epoch: usize) -> Result<()> {
        let head_steps: Vec<u64> = self.heads.iter().map(|h| h.step).collect();
        let meta = HashMap::from([
            ("epoch".to_string(), epoch.to_string()),
            ("step".to_string(), self.backbone.step.to_string()),
            ("head_steps".to_string(), serde_json::to_string(&head_steps)?),
            ("options".to_string(), serde_json::to_string(self.o)?),
            ("scenes".to_string(), serde_json::to_string(self.scenes)?),
            ("backbone".to_string(), self.kind.tag()),
        ]);
        let prefixes: Vec<String> = (0..self.heads.len()).map(head_prefix).collect();
        let mut opts: Vec<(&str, &AdamW)> = vec![("", &self.backbone)];
        opts.extend(prefixes.iter().map(String::as_str).zip(self.heads.iter()));
        save_checkpoint(self.out, &opts, meta)
    }

    fn report(&self, m: &BackboneEpoch) -> Vec<String> {
        if m.scenes.iter().all(|s| s.val_recall_5cm_5deg.is_none()) && m.epoch != self.o.epochs {
            return Vec::new();
        }
        m.scenes
            .iter()
            .map(|s| {
                format!(
                    "epoch {:>3} {}: loss {:.3}, val recall 5cm/5° {}, median pixel error {}",
                    m.epoch,
                    s.scene,
                    s.loss,
                    s.val_recall_5cm_5deg
                        .map_or("-".into(), |r| format!("{:.1} %", 100.0 * r)),
                    s.val_pixel_error.map_or("-".into(), |p| format!("{p:.2} px"))
                )
            })
            .collect()
    }
}

/// Trains (or resumes) one backbone with a light head per scene into `out`.
pub fn train_backbone(
    scenes: &[BackboneScene],
    out: &Path,
    o: &TrainOptions,
    resume: bool,
    progress: bool,
    control: &Control,
) -> Result<BackboneOutcome> {
    ensure!(!scenes.is_empty(), "no scenes given (--scene, once per scene)");
    // The device first: one that cannot be had leaves OUT untouched.
    let devices = crate::device::open_all(o.device, &o.devices, o.world.as_ref())?;
    let device = devices[0].clone();
    let writes = o.world.as_ref().is_none_or(World::writes);
    epochs::setup(out, o, writes)?;
    let opened = scenes
        .iter()
        .map(|s| TrainScene::open(&s.root, &s.landmarks, o))
        .collect::<Result<Vec<_>>>()?;
    for (i, a) in opened.iter().enumerate() {
        if let Some(b) = opened[..i].iter().find(|b| b.name == a.name) {
            bail!(
                "two scenes are named '{}' ({} and {}): each scene's model is OUT/NAME.sld",
                a.name,
                b.scene.root.display(),
                a.scene.root.display()
            );
        }
    }
    let (kind, head) = o.arch.resolve(o.width, Mode::Backbone);
    // One network per scene; the backbone tensors are the same in each
    // (built first from the same seed), the heads differ in their last layer.
    let spec = o.net_spec();
    let mut nets = Vec::with_capacity(opened.len());
    for ts in &opened {
        let mut n = build(kind, head, &spec, ts.landmarks.len(), &ts.name);
        n.info.provenance.date = crate::util::time::utc_now();
        nets.push(n);
    }
    let split = |t: &[NamedTensor]| -> (Vec<NamedTensor>, Vec<NamedTensor>) {
        t.iter().cloned().partition(|t| !t.name.starts_with("head."))
    };
    let (mut bb_init, _) = split(&nets[0].tensors);
    if let Some(init) = &o.backbone {
        ensure!(
            kind == BackboneKind::Lite0Atrous8,
            "--init-backbone initialises the lite0 architecture (use --arch lite0)"
        );
        super::full::load_backbone(init, &mut bb_init)?;
    }
    let head_inits: Vec<Vec<NamedTensor>> = nets.iter().map(|n| split(&n.tensors).1).collect();

    // Several processes: meet the other ranks now, before anything slow.
    let mut peers = match &o.world {
        Some(w) => {
            let counts = opened
                .iter()
                .map(|ts| Ok((ts.scene.part("train")?.len(), ts.landmarks.len())))
                .collect::<Result<Vec<_>>>()?;
            let shapes: Vec<_> = nets
                .iter()
                .flat_map(|n| n.tensors.iter().map(|t| (&t.name, &t.shape)))
                .collect();
            let what = (counts, shapes);
            Some(Peers::join(w, &device, run_fingerprint(o, &what)?, progress)?)
        }
        None => None,
    };
    // Other ranks of a multi-process run get rank 0's state below.
    let (mut backbone, mut heads, mut start_epoch) = if resume && writes {
        let ck = Checkpoint::read(out, &device)?;
        ck.check_network(o)?;
        let saved_scenes: Vec<BackboneScene> =
            serde_json::from_str(ck.meta.get("scenes").map_or("[]", |s| s))?;
        ensure!(
            saved_scenes == scenes,
            "{}: the checkpoint was trained on other scenes ({:?})",
            ck.path.display(),
            saved_scenes
                .iter()
                .map(|s| s.root.display().to_string())
                .collect::<Vec<_>>()
        );
        let steps: Vec<u64> = serde_json::from_str(ck.meta.get("head_steps").map_or("[]", |s| s))?;
        ensure!(
            steps.len() == scenes.len(),
            "{}: head steps missing",
            ck.path.display()
        );
        let bb = ck.adamw("", &bb_init, ck.get("step")?, o.lr)?;
        let heads = head_inits
            .iter()
            .zip(&steps)
            .enumerate()
            .map(|(k, (init, &st))| ck.adamw(&head_prefix(k), init, st, o.lr))
            .collect::<Result<Vec<_>>>()?;
        (bb, heads, ck.get("epoch")?)
    } else {
        let heads = head_inits
            .iter()
            .map(|h| fresh_adamw(h, o.lr, &device))
            .collect::<Result<Vec<_>>>()?;
        (fresh_adamw(&bb_init, o.lr, &device)?, heads, 0)
    };
    if writes {
        epochs::begin(out, resume, start_epoch, o)?;
    }
    if let Some(p) = &mut peers {
        let mut all: Vec<&mut AdamW> = vec![&mut backbone];
        all.extend(heads.iter_mut());
        p.sync_from_rank0(&mut all, &mut start_epoch)?;
    }

    // Refuse what cannot fit before loading anything (all scenes' samples
    // stay in memory together).
    let mut need = 0u64;
    for ts in &opened {
        let n = ts.scene.part("train")?.len();
        need = need.saturating_add(o.memory_lower_bound(n, ts.landmarks.len(), None));
    }
    crate::util::memory::ensure_fits(
        "training",
        need,
        "lower --input-width/--input-height, --batch or --width, or train on fewer images",
    )
    .inspect_err(|_| {
        // Leave no empty output folder behind (a resumed run's is not empty).
        if writes {
            let _ = std::fs::remove_dir(out);
        }
    })?;
    if progress {
        eprintln!(
            "sld train backbone: {}",
            crate::device::placement(&devices, o.world.as_ref())
        );
    }
    // Other ranks of a multi-process run show no progress bar of their own.
    let progress = progress && writes;
    let samples = opened
        .iter()
        .zip(&nets)
        .map(|(ts, n)| ts.training_samples(o, &n.info.graph.input, progress))
        .collect::<Result<Vec<_>>>()?;
    let val: Vec<Vec<usize>> = opened
        .iter()
        .map(|ts| ts.scene.part("val"))
        .collect::<Result<_>>()?;
    let models: Vec<PathBuf> = opened
        .iter()
        .map(|ts| out.join(format!("{}.sld", ts.name)))
        .collect();
    let mut all: Vec<&AdamW> = vec![&backbone];
    all.extend(heads.iter());
    if peers.is_none() {
        peers = Peers::new(&all, &devices)?;
    }
    let mut mode = Shared {
        peers,
        o,
        out,
        scenes,
        opened,
        nets,
        kind,
        backbone,
        heads,
        samples,
        val,
        bo: o.batch_options(o.jitter, o.geometric_aug || o.rotation_aug || o.novel_view_aug),
        models: models.clone(),
        backbone_path: out.join("backbone.safetensors"),
    };
    let r = epochs::run(&mut mode, o, start_epoch, out, progress, control)?;
    Ok(BackboneOutcome {
        backbone: mode.backbone_path,
        models,
        epochs: r.epochs,
        train_seconds: r.train_seconds,
        interrupted: r.interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample of every scene once; batches never mix scenes; scenes
    /// interleave (the cross-scene shuffle), not one block per scene.
    #[test]
    fn batches_are_scene_homogeneous_and_cover_each_epoch_once() {
        let sizes = [7usize, 12, 3];
        let mut rng = SplitMix64::new(5);
        let b = scene_batches(&sizes, 4, &mut rng);
        assert_eq!(b.len(), 2 + 3 + 1);
        let mut seen: Vec<Vec<usize>> = sizes.iter().map(|_| Vec::new()).collect();
        for (k, idx) in &b {
            assert!(!idx.is_empty() && idx.len() <= 4);
            seen[*k].extend(idx);
        }
        for (k, s) in seen.iter_mut().enumerate() {
            s.sort_unstable();
            assert_eq!(*s, (0..sizes[k]).collect::<Vec<_>>(), "scene {k}");
        }
        // Interleaved: over 50 epochs the scene sequence is not always sorted.
        let mut mixed = 0;
        for _ in 0..50 {
            let b = scene_batches(&sizes, 4, &mut rng);
            let ks: Vec<usize> = b.iter().map(|(k, _)| *k).collect();
            let mut sorted = ks.clone();
            sorted.sort_unstable();
            mixed += usize::from(ks != sorted);
        }
        assert!(
            mixed > 40,
            "batches ordered by scene in {} of 50 epochs",
            50 - mixed
        );
    }

    #[test]
    fn backbone_kind_tags_round_trip() {
        for k in [
            BackboneKind::Small { width: 24 },
            BackboneKind::Lite0S8,
            BackboneKind::Lite0Atrous8,
        ] {
            assert_eq!(BackboneKind::parse(&k.tag()).unwrap(), k);
        }
        assert!(BackboneKind::parse("small-x").is_err());
        assert!(BackboneKind::parse("resnet").is_err());
    }

    /// A backbone file names its kind; an untagged one (the ImageNet
    /// import) is the atrous Lite0; a header longer than the file is refused
    /// before anything is allocated for it.
    #[test]
    fn backbone_files_name_their_kind() {
        let dir = std::env::temp_dir().join(format!("sld-bbkind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = vec![NamedTensor {
            name: "bb.down0.weight".into(),
            shape: vec![2],
            data: vec![1.0, 2.0],
        }];
        let tagged = dir.join("tagged.safetensors");
        write_backbone(&tagged, BackboneKind::Small { width: 12 }, &t).unwrap();
        assert_eq!(
            BackboneKind::of_file(&tagged).unwrap(),
            BackboneKind::Small { width: 12 }
        );
        let plain = dir.join("plain.safetensors");
        crate::io::safetensors::write(&plain, &t, Metadata::new(), None).unwrap();
        assert_eq!(BackboneKind::of_file(&plain).unwrap(), BackboneKind::Lite0Atrous8);
        let lying = dir.join("lying.safetensors");
        std::fs::write(&lying, [0xff, 0xff, 0xff, 0x05, 0, 0, 0, 0, b'{']).unwrap();
        let e = BackboneKind::of_file(&lying).unwrap_err();
        assert!(format!("{e:#}").contains("not a safetensors file"), "{e:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
