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
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use sld_core::rng::SplitMix64;

use super::{
    append_metrics, build, check_options, epoch_rng, export, fresh_adamw, lr_factor, named_tensors,
    save_checkpoint, shuffled, truncate_metrics, AdamW, Arch, BackboneKind, Checkpoint, Control, HeadKind,
    TrainOptions, TrainScene,
};
use crate::data::indoor6::write_atomic;
use crate::eval::{evaluate, EvalOptions};
use crate::export::NamedTensor;
use crate::labels::TargetOptions;

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
        for chunk in shuffled(n, rng).chunks(batch) {
            out.push((k, chunk.to_vec()));
        }
    }
    let order = shuffled(out.len(), rng);
    let mut slots: Vec<Option<(usize, Vec<usize>)>> = out.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The backbone kind of a run: `small` trains [`BackboneKind::Small`];
/// `lite0` trains the atrous EfficientNet-Lite0 that head mode freezes
/// (initialised from `o.backbone`, an `sld weights import` file, when given).
pub fn backbone_kind(o: &TrainOptions) -> BackboneKind {
    match o.arch {
        Arch::Small => BackboneKind::Small { width: o.width },
        Arch::Lite0 => BackboneKind::Lite0Atrous8,
    }
}

/// Writes the backbone's tensors as safetensors, tagged with `kind`.
pub fn write_backbone(path: &Path, kind: BackboneKind, tensors: &[NamedTensor]) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            Ok((
                t.name.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([(super::BACKBONE_KEY.to_string(), kind.tag())]);
    write_atomic(path, &safetensors::serialize(views, Some(meta))?)
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
    use std::sync::atomic::Ordering;
    crate::alloc::tune_for_training();
    check_options(o)?;
    ensure!(!scenes.is_empty(), "no scenes given (--scene, once per scene)");
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
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
    let kind = backbone_kind(o);
    // One network per scene; the backbone tensors are the same in each
    // (built first from the same seed), the heads differ in their last layer.
    let mut nets = Vec::with_capacity(opened.len());
    for ts in &opened {
        let mut n = build(kind, HeadKind::Light, o, ts.landmarks.len(), &ts.name);
        n.info.provenance.date = crate::eval::utc_now();
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
        let w = crate::weights::read_safetensors(init)?;
        for t in &mut bb_init {
            let src = w.get(&t.name).with_context(|| {
                format!(
                    "{}: no tensor {} (make it with `sld weights import`)",
                    init.display(),
                    t.name
                )
            })?;
            ensure!(
                src.shape == t.shape,
                "{}: {} has shape {:?}, expected {:?}",
                init.display(),
                t.name,
                src.shape,
                t.shape
            );
            t.data = src.data.clone();
        }
    }
    let head_inits: Vec<Vec<NamedTensor>> = nets.iter().map(|n| split(&n.tensors).1).collect();
    let prefix = |k: usize| format!("scene{k}/");

    let mut start_epoch = 0;
    let (mut bb_opt, mut heads): (AdamW, Vec<AdamW>) = if resume {
        let ck = Checkpoint::read(out)?;
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
        start_epoch = ck.get("epoch")?;
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
            .map(|(k, (init, &st))| ck.adamw(&prefix(k), init, st, o.lr))
            .collect::<Result<Vec<_>>>()?;
        (bb, heads)
    } else {
        let _ = std::fs::remove_file(out.join("metrics.jsonl"));
        let heads = head_inits
            .iter()
            .map(|h| fresh_adamw(h, o.lr))
            .collect::<Result<Vec<_>>>()?;
        (fresh_adamw(&bb_init, o.lr)?, heads)
    };
    if resume {
        truncate_metrics(&out.join("metrics.jsonl"), start_epoch)?;
    }
    if start_epoch >= o.epochs {
        bail!("the checkpoint is at epoch {start_epoch}; ask for more --epochs to continue");
    }

    let samples = opened
        .iter()
        .zip(&nets)
        .map(|(ts, n)| ts.training_samples(o, &n.info.graph.input, progress))
        .collect::<Result<Vec<_>>>()?;
    let val: Vec<Vec<usize>> = opened
        .iter()
        .map(|ts| ts.scene.part("val"))
        .collect::<Result<_>>()?;
    let sizes: Vec<usize> = samples.iter().map(Vec::len).collect();
    let bo = super::data::BatchOptions {
        grid: [o.input_height / 8, o.input_width / 8],
        stride: 8.0,
        target: TargetOptions {
            sigma: o.sigma,
            ..Default::default()
        },
        jitter: o.jitter,
        pos_weight: o.pos_weight,
        loss: o.loss,
        geometric: o.geometric_aug,
    };
    let steps_per_epoch: usize = sizes.iter().map(|n| n.div_ceil(o.batch)).sum();
    let bar = crate::progress::bar(
        (o.epochs - start_epoch) * steps_per_epoch,
        progress,
        "training  {bar:40} epoch {msg}  {per_sec}  eta {eta}",
    );
    let models: Vec<PathBuf> = opened
        .iter()
        .map(|ts| out.join(format!("{}.sld", ts.name)))
        .collect();
    let backbone_path = out.join("backbone.safetensors");
    let (mut metrics, mut total, mut interrupted) = (Vec::new(), 0.0, false);
    for epoch in start_epoch..o.epochs {
        if control.stop_after.is_some_and(|n| epoch >= n) {
            break;
        }
        let lr = o.lr * lr_factor(epoch, o.epochs);
        bb_opt.params.lr = lr;
        heads.iter_mut().for_each(|h| h.params.lr = lr);
        let mut rng = epoch_rng(o.seed, epoch);
        let batches = scene_batches(&sizes, o.batch, &mut rng);
        let t0 = Instant::now();
        let mut loss_sum = vec![0.0; scenes.len()];
        for (k, idx) in &batches {
            if control.stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            crate::faults::point("step");
            let batch: Vec<&super::data::Sample> = idx.iter().map(|&i| &samples[*k][i]).collect();
            let graph = &nets[*k].info.graph;
            let (loss, lv) = super::batch_loss(
                graph,
                &[&bb_opt.vars, &heads[*k].vars],
                &batch,
                &bo,
                &mut rng,
                epoch,
            )?;
            let grads = loss.backward()?;
            bb_opt.apply(&grads)?;
            heads[*k].apply(&grads)?;
            loss_sum[*k] += lv * batch.len() as f64;
            bar.set_message(format!(
                "{}/{} {} loss {:.3}",
                epoch + 1,
                o.epochs,
                opened[*k].name,
                lv
            ));
            bar.inc(1);
        }
        if interrupted {
            break;
        }
        let secs = t0.elapsed().as_secs_f64();
        total += secs;
        let bb_now = named_tensors(&bb_opt.vars)?;
        write_backbone(&backbone_path, kind, &bb_now)?;
        let last = epoch + 1 == o.epochs;
        let validate_now = last || (o.validate_every > 0 && (epoch + 1) % o.validate_every == 0);
        let mut per_scene = Vec::with_capacity(scenes.len());
        for (k, ts) in opened.iter().enumerate() {
            let bytes = export(&nets[k].info, &bb_now, &heads[k].vars, &ts.landmarks)?;
            write_atomic(&models[k], &bytes)?;
            let (recall, pix) = if validate_now && !val[k].is_empty() {
                let r = evaluate(&bytes, &ts.scene, &val[k], &EvalOptions::default())?;
                (Some(r.recall_5cm_5deg), r.median_pixel_error)
            } else {
                (None, None)
            };
            per_scene.push(SceneEpoch {
                scene: ts.name.clone(),
                loss: loss_sum[k] / sizes[k].max(1) as f64,
                val_recall_5cm_5deg: recall,
                val_pixel_error: pix,
            });
        }
        let m = BackboneEpoch {
            epoch: epoch + 1,
            loss: loss_sum.iter().sum::<f64>() / sizes.iter().sum::<usize>().max(1) as f64,
            lr,
            train_seconds: secs,
            steps: batches.len(),
            scenes: per_scene,
        };
        append_metrics(out, &m)?;
        let head_steps: Vec<u64> = heads.iter().map(|h| h.step).collect();
        let meta = HashMap::from([
            ("epoch".to_string(), (epoch + 1).to_string()),
            ("step".to_string(), bb_opt.step.to_string()),
            ("head_steps".to_string(), serde_json::to_string(&head_steps)?),
            ("options".to_string(), serde_json::to_string(o)?),
            ("scenes".to_string(), serde_json::to_string(scenes)?),
            ("backbone".to_string(), kind.tag()),
        ]);
        let prefixes: Vec<String> = (0..heads.len()).map(prefix).collect();
        let mut opts: Vec<(&str, &AdamW)> = vec![("", &bb_opt)];
        opts.extend(prefixes.iter().map(String::as_str).zip(heads.iter()));
        save_checkpoint(out, &opts, meta)?;
        if progress && validate_now {
            for s in &m.scenes {
                bar.println(format!(
                    "epoch {:>3} {}: loss {:.3}, val recall 5cm/5° {}, median pixel error {}",
                    m.epoch,
                    s.scene,
                    s.loss,
                    s.val_recall_5cm_5deg
                        .map_or("-".into(), |r| format!("{:.1} %", 100.0 * r)),
                    s.val_pixel_error.map_or("-".into(), |p| format!("{p:.2} px"))
                ));
            }
        }
        metrics.push(m);
    }
    bar.finish_and_clear();
    Ok(BackboneOutcome {
        backbone: backbone_path,
        models,
        epochs: metrics,
        train_seconds: total,
        interrupted,
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
        crate::weights::write_safetensors(&plain, &t, "test").unwrap();
        assert_eq!(BackboneKind::of_file(&plain).unwrap(), BackboneKind::Lite0Atrous8);
        let lying = dir.join("lying.safetensors");
        std::fs::write(&lying, [0xff, 0xff, 0xff, 0x05, 0, 0, 0, 0, b'{']).unwrap();
        let e = BackboneKind::of_file(&lying).unwrap_err();
        assert!(format!("{e:#}").contains("not a safetensors file"), "{e:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
