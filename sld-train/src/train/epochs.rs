//! The epoch loop every training mode shares: learning-rate schedule,
//! per-epoch random stream, batching order, progress bar, Ctrl-C and
//! `stop_after`, timing, validation cadence, `metrics.jsonl` and the
//! checkpoint written last. A mode ([`Mode`]) supplies only its batches,
//! its step, and its end of epoch (export, validation, checkpoint).
//!
//! Ordering makes `--resume` exact: the checkpoint is written after the
//! epoch's model and metrics line, so once it names an epoch everything
//! that epoch produced is on disk; shuffling and augmentation of epoch `e`
//! depend only on the seed and `e`.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sld_core::rng::SplitMix64;

use super::options::{Control, TrainOptions};

/// What a training mode does inside [`run`].
pub trait Mode {
    /// One line of `metrics.jsonl`.
    type Metrics: Serialize;
    /// Groups (scenes) the batches come from.
    fn groups(&self) -> usize;
    /// Batches per epoch for `batch` samples per batch.
    fn steps_per_epoch(&self, batch: usize) -> usize;
    /// Sets the learning rate of every optimiser.
    fn set_lr(&mut self, lr: f64);
    /// This epoch's batches, drawn from `rng`: `(group, sample indices)`,
    /// where a group is a scene (one group in single-scene modes).
    fn batches(&self, batch: usize, rng: &mut SplitMix64) -> Vec<(usize, Vec<usize>)>;
    /// One optimiser step on samples `idx` of `group`; returns the batch loss.
    fn step(&mut self, group: usize, idx: &[usize], rng: &mut SplitMix64, epoch: usize) -> Result<f64>;
    /// The group's name in the progress bar (empty for single-scene modes).
    fn group_name(&self, group: usize) -> &str;
    /// After an epoch's steps: export what the epoch trained, validate when
    /// `validate`, and return the metrics line. `loss_sums[g]` is group
    /// `g`'s summed per-image loss.
    fn end_epoch(&mut self, epoch: &EpochEnd, loss_sums: &[f64], validate: bool) -> Result<Self::Metrics>;
    /// Writes the checkpoint of `epoch` (1-based count of finished epochs).
    fn save_checkpoint(&self, epoch: usize) -> Result<()>;
    /// Lines printed above the progress bar after a validated epoch.
    fn report(&self, metrics: &Self::Metrics) -> Vec<String>;
    /// False on the ranks of a multi-process run other than rank 0: they
    /// train but write nothing (no model, metrics or checkpoint).
    fn writes(&self) -> bool {
        true
    }
}

/// What the loop knows when an epoch ends.
#[derive(Clone, Copy, Debug)]
pub struct EpochEnd {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock seconds of the epoch's steps.
    pub train_seconds: f64,
    /// Optimiser steps taken.
    pub steps: usize,
}

/// What [`run`] did.
#[derive(Clone, Debug)]
pub struct Outcome<M> {
    /// Metrics of every epoch run in this call.
    pub epochs: Vec<M>,
    /// Total training seconds (steps only) in this call.
    pub train_seconds: f64,
    /// True when stopped (Ctrl-C) before the last epoch.
    pub interrupted: bool,
}

/// What every mode does first: checks the options, tunes the allocator
/// for Candle, and creates `out` (when this process `writes` it: every
/// process but rank 0's of a multi-process run leaves it alone).
pub fn setup(out: &Path, o: &TrainOptions, writes: bool) -> Result<()> {
    o.check()?;
    crate::util::malloc::tune_for_training();
    if !writes {
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

/// Prepares `OUT/metrics.jsonl` for a run starting at `start_epoch`: a
/// fresh run starts a fresh file, a resumed one keeps the lines of the
/// epochs its checkpoint holds. Refuses a checkpoint already at `o.epochs`.
pub fn begin(out: &Path, resume: bool, start_epoch: usize, o: &TrainOptions) -> Result<()> {
    let path = out.join("metrics.jsonl");
    if resume {
        truncate_metrics(&path, start_epoch)?;
    } else {
        let _ = std::fs::remove_file(&path);
    }
    if start_epoch >= o.epochs {
        bail!("the checkpoint is at epoch {start_epoch}; ask for more --epochs to continue");
    }
    Ok(())
}

/// Runs epochs `start_epoch..o.epochs` of `mode`, writing into `out`.
pub fn run<M: Mode>(
    mode: &mut M,
    o: &TrainOptions,
    start_epoch: usize,
    out: &Path,
    progress: bool,
    control: &Control,
) -> Result<Outcome<M::Metrics>> {
    let bar = crate::util::progress::bar(
        (o.epochs - start_epoch) * mode.steps_per_epoch(o.batch),
        progress,
        "training  {bar:40} epoch {msg}  {per_sec}  eta {eta}",
    );
    let (mut metrics, mut total, mut interrupted) = (Vec::new(), 0.0, false);
    for epoch in start_epoch..o.epochs {
        if control.stop_after.is_some_and(|n| epoch >= n) {
            break;
        }
        let lr = o.lr * lr_factor(epoch, o.epochs);
        mode.set_lr(lr);
        let mut rng = epoch_rng(o.seed, epoch);
        let batches = mode.batches(o.batch, &mut rng);
        let t0 = Instant::now();
        let mut loss_sums = vec![0.0; mode.groups()];
        for (g, idx) in &batches {
            if control.stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            crate::faults::point("step");
            let lv = mode.step(*g, idx, &mut rng, epoch)?;
            loss_sums[*g] += lv * idx.len() as f64;
            let name = mode.group_name(*g);
            let sep = if name.is_empty() { "" } else { " " };
            bar.set_message(format!("{}/{}{sep}{name} loss {lv:.3}", epoch + 1, o.epochs));
            bar.inc(1);
        }
        if interrupted {
            break; // the checkpoint of the last finished epoch stays
        }
        let secs = t0.elapsed().as_secs_f64();
        total += secs;
        if !mode.writes() {
            continue;
        }
        let last = epoch + 1 == o.epochs;
        let validate = last || (o.validate_every > 0 && (epoch + 1) % o.validate_every == 0);
        let end = EpochEnd {
            epoch: epoch + 1,
            lr,
            train_seconds: secs,
            steps: batches.len(),
        };
        let m = mode.end_epoch(&end, &loss_sums, validate)?;
        append_metrics(out, &m)?;
        // Last: once the checkpoint names this epoch, everything it
        // produced (model, metrics line) is already on disk.
        mode.save_checkpoint(epoch + 1)?;
        if progress {
            for line in mode.report(&m) {
                bar.println(line);
            }
        }
        metrics.push(m);
    }
    bar.finish_and_clear();
    Ok(Outcome {
        epochs: metrics,
        train_seconds: total,
        interrupted,
    })
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
    crate::io::atomic::write_atomic(path, keep.as_bytes())
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
pub fn shuffled(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}
