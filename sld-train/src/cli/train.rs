//! `sld train` (the recommended recipe) and `sld train full | head | backbone`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sld_train::data::naming::only_landmarks_file;
use sld_train::io::safetensors::read_metadata;
use sld_train::train::backbone::{train_backbone, BackboneScene};
use sld_train::train::checkpoint::checkpoint_path;
use sld_train::train::options::{HeadChoice, TrainOptions};
use sld_train::train::train_full;
use sld_train::train::world::World;

use super::args::{ctrlc_control, TrainArgs};
use super::Interrupted;

/// `sld train`: the recipe, or an explicit mode.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Without a mode, trains the recommended recipe: a scene head on XFeat's frozen trunk \
(shipped in the binary; Apache-2.0), 480×264 input, a 2-copy feature buffer (the second copy with \
photometric jitter and a camera rotation), softmax loss, 30 epochs; it writes OUT/model.sld (and OUT/xfeat.safetensors, the trunk \
it used). Chosen by query-session recall over rendered rooms (EXPERIMENTS.md).\n\n\
Example: sld train --scene scenes/room1 --out runs/room1\n\
Then:    sld eval --model runs/room1/model.sld --scene scenes/room1 --split test"
)]
pub struct TrainCmd {
    /// An explicit training mode (default: the recommended recipe).
    #[command(subcommand)]
    pub mode: Option<Command>,
    /// The recipe's arguments.
    #[command(flatten)]
    pub recipe: RecipeArgs,
}

/// Arguments of the recommended recipe (`sld train` without a mode).
#[derive(clap::Args)]
pub struct RecipeArgs {
    /// The scene directory (Indoor6 layout: images, intrinsics, poses,
    /// depth maps, train_test_val.pkl, landmarks/).
    #[arg(long, required = true)]
    pub scene: Option<PathBuf>,
    /// Output directory (model.sld, checkpoint, metrics).
    #[arg(long, short, required = true)]
    pub out: Option<PathBuf>,
    /// Landmark file; default: the scene's only landmarks/landmarks-N.txt.
    #[arg(long)]
    pub landmarks: Option<PathBuf>,
    /// Epochs over the feature buffer.
    #[arg(long, default_value_t = sld_train::train::recipe::EPOCHS, value_parser = super::args::int_in::<usize>(1, 1_000_000))]
    pub epochs: usize,
    /// Seed of weights, shuffling and augmentation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Continue from OUT/checkpoint.safetensors.
    #[arg(long)]
    pub resume: bool,
    /// Where Candle trains: cpu, cuda (the first GPU), cuda:N, or auto (a
    /// GPU when this sld was built with `--features cuda` and one answers,
    /// else the CPU). A checkpoint resumes on any device.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: sld_train::device::DeviceChoice,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Train the whole network (backbone + head) for one scene (SLD*'s baseline).
    ///
    /// Labels: each landmark of --landmarks projected into each training
    /// image, visible when depth-consistent (NAME.depth.png); Gaussian
    /// targets (σ cells) at stride 8. Loss (--loss): softmax (default) —
    /// per landmark a softmax over the cells plus an "absent" bin,
    /// cross-entropy against the normalised Gaussian when visible, against
    /// "absent" when not; or mse (SLD*'s) — squared error summed over the
    /// maps labelled visible or not-visible (cells with a positive target
    /// weighted by --pos-weight). AdamW; the learning rate drops to 0.3×
    /// at 60 % and 0.1× at 85 % of the epochs. Writes OUT/checkpoint.safetensors
    /// (weights + optimiser state, atomically, every epoch), OUT/model.sld
    /// and OUT/metrics.jsonl (loss, validation recall). Interrupting
    /// leaves the last epoch's checkpoint; --resume continues exactly.
    ///
    /// Example: sld train full --scene scenes/room1 --out runs/room1 --epochs 60
    Full(TrainArgs),
    /// Train only a scene head on a frozen backbone (the faster-training
    /// paper's head mode).
    ///
    /// The backbone is the ImageNet EfficientNet-Lite0 (`sld weights
    /// import`; built at output stride 8 the DeepLab way — original strides
    /// to 1/8, then dilated — so the frozen filters see their trained
    /// scale) or a scene-agnostic one from `sld train backbone` (its file
    /// names its architecture). It runs once per training image and
    /// augmented copy, in sld-core, filling a feature buffer (its output
    /// channels at stride 8); the scene head (two dilated 3×3 blocks
    /// with 1×1 skips, then 1×1 to the heatmaps) trains from the buffer.
    /// The exported model is backbone + head. Same outputs, labels and
    /// loss as `full`.
    ///
    /// Example: sld train head --scene scenes/room1 --out runs/room1-head --backbone lite0.safetensors
    Head {
        #[command(flatten)]
        args: TrainArgs,
        /// Backbone weights (`sld weights import` or `sld train backbone` output).
        #[arg(long)]
        backbone: PathBuf,
        /// Copies of each training image in the feature buffer (the first
        /// plain, the others with photometric jitter, and with --geometric
        /// also rotated and scaled).
        #[arg(long, default_value_t = 2, value_parser = super::args::int_in::<usize>(1, 64))]
        copies: usize,
        /// The head on the frozen backbone.
        #[arg(long, default_value = "scene", value_parser = super::args::choice::<HeadChoice>())]
        head: HeadChoice,
    },
    /// Train one backbone shared by several scenes, a light head per scene
    /// (the faster-training paper's scene-agnostic backbone).
    ///
    /// Batches are scene-homogeneous and shuffled across scenes; each step
    /// updates the backbone and the head of the batch's scene; an epoch
    /// visits every batch of every scene once. The head is one block of
    /// 1×1 convolutions with a 1×1 skip, then 1×1 to the heatmaps. Labels,
    /// loss and schedule as in `full`. Writes OUT/backbone.safetensors (use
    /// it as `train head --backbone` on a new scene), OUT/SCENE.sld per
    /// scene, OUT/metrics.jsonl (per-scene loss and validation) and
    /// OUT/checkpoint.safetensors (--resume continues exactly).
    ///
    /// Example: sld train backbone --scene scenes/a --scene scenes/b --scene scenes/c --out runs/bb
    Backbone {
        #[command(flatten)]
        args: TrainArgs,
        /// Start the lite0 backbone from ImageNet weights (`sld weights import` output).
        #[arg(long)]
        init_backbone: Option<PathBuf>,
    },
}

/// Runs `sld train`.
pub fn run(t: TrainCmd) -> Result<()> {
    let Some(c) = t.mode else {
        return run_recipe(&t.recipe);
    };
    match c {
        Command::Full(a) => run_single(&a, None, 1, HeadChoice::Scene),
        Command::Head {
            args,
            backbone,
            copies,
            head,
        } => run_single(&args, Some(backbone), copies, head),
        Command::Backbone { args, init_backbone } => run_backbone(&args, init_backbone),
    }
}

/// The last line of a rank other than 0 of a multi-process run (which
/// wrote nothing); `None` for the process that wrote OUT.
fn rank_done(o: &TrainOptions) -> Option<String> {
    let w = o.world.as_ref().filter(|w| !w.writes())?;
    Some(format!(
        "sld train: rank {} of {} done; rank 0 wrote the output",
        w.rank, w.size
    ))
}

/// What `--resume` means for OUT: with no checkpoint yet (a run stopped
/// before its first epoch ended) training starts fresh, and says so; on a
/// checkpoint that already holds `epochs` epochs there is nothing to do
/// (`None`, said on stderr, exit 0). Otherwise whether to resume. Ranks
/// other than 0 of a multi-process run never read OUT: rank 0's state,
/// resumed or not, reaches them when training starts.
fn resume_from(out: &Path, resume: bool, epochs: usize, o: &TrainOptions) -> Result<Option<bool>> {
    let ck = checkpoint_path(out);
    if !resume || o.world.as_ref().is_some_and(|w| !w.writes()) {
        return Ok(Some(false));
    }
    if !ck.exists() {
        eprintln!(
            "sld train: no checkpoint in {} yet: starting fresh",
            out.display()
        );
        return Ok(Some(false));
    }
    let done: usize = read_metadata(&ck)?
        .get("epoch")
        .and_then(|e| e.parse().ok())
        .with_context(|| format!("{}: no epoch in the checkpoint", ck.display()))?;
    if done >= epochs {
        eprintln!(
            "sld train: already complete: {} holds epoch {done} of {epochs}; ask for more --epochs to continue",
            ck.display()
        );
        return Ok(None);
    }
    Ok(Some(true))
}

/// The error of a run stopped by Ctrl-C (exit 130): where to continue.
fn interrupted(out: &Path) -> anyhow::Error {
    let ck = checkpoint_path(out);
    let what = if ck.exists() {
        format!(
            "{} holds the last finished epoch; continue with the same command and --resume",
            ck.display()
        )
    } else {
        "no epoch had finished, so there is no checkpoint yet; the same command with --resume starts fresh"
            .to_string()
    };
    Interrupted(format!("sld train: interrupted; {what}")).into()
}

/// `sld train` without a mode: the recommended recipe.
fn run_recipe(a: &RecipeArgs) -> Result<()> {
    let (Some(scene), Some(out)) = (&a.scene, &a.out) else {
        anyhow::bail!("give --scene and --out (or a mode: sld train full | head | backbone)");
    };
    let landmarks = match &a.landmarks {
        Some(p) => p.clone(),
        None => only_landmarks_file(scene)?,
    };
    let trunk = sld_train::train::recipe::write_trunk(out)?;
    let mut o = sld_train::train::recipe::options(landmarks, trunk, a.epochs, a.seed);
    o.device = a.device;
    o.world = World::from_env()?;
    o.check()?;
    eprintln!(
        "sld train: the recommended recipe (scene head on XFeat's frozen trunk, {}×{}, {} epochs, {} buffer copies)",
        o.input_width, o.input_height, o.epochs, o.buffer_copies
    );
    let Some(resume) = resume_from(out, a.resume, a.epochs, &o)? else {
        return Ok(());
    };
    let r = train_full(scene, out, &o, resume, true, &ctrlc_control())?;
    if r.interrupted {
        return Err(interrupted(out));
    }
    if let Some(line) = rank_done(&o) {
        eprintln!("{line}");
        return Ok(());
    }
    eprintln!(
        "sld train: {} epochs in {:.1} s (final loss {:.3}) → {}",
        r.epochs.len(),
        r.train_seconds,
        r.epochs.last().map_or(f64::NAN, |m| m.loss),
        r.model.display()
    );
    Ok(())
}

/// `train full` (no backbone) and `train head`.
fn run_single(
    a: &TrainArgs,
    backbone: Option<PathBuf>,
    buffer_copies: usize,
    head: HeadChoice,
) -> Result<()> {
    let [scene] = a.scene.as_slice() else {
        anyhow::bail!("give one --scene (several train a shared backbone: `sld train backbone`)");
    };
    let landmarks = match a.landmarks.as_slice() {
        [] => only_landmarks_file(scene)?,
        [p] => p.clone(),
        _ => anyhow::bail!("give at most one --landmarks for one --scene"),
    };
    let mut o = a.options(landmarks, backbone, buffer_copies);
    o.head = head;
    o.world = World::from_env()?;
    let Some(resume) = resume_from(&a.out, a.resume, a.epochs, &o)? else {
        return Ok(());
    };
    let r = train_full(scene, &a.out, &o, resume, true, &ctrlc_control())?;
    if r.interrupted {
        return Err(interrupted(&a.out));
    }
    if let Some(line) = rank_done(&o) {
        eprintln!("{line}");
        return Ok(());
    }
    let last = r.epochs.last();
    eprintln!(
        "sld train: {} epochs in {:.1} s (final loss {:.3}) → {}",
        r.epochs.len(),
        r.train_seconds,
        last.map_or(f64::NAN, |m| m.loss),
        r.model.display()
    );
    Ok(())
}

/// `train backbone`.
fn run_backbone(a: &TrainArgs, init_backbone: Option<PathBuf>) -> Result<()> {
    let landmarks = if a.landmarks.is_empty() {
        a.scene
            .iter()
            .map(|s| only_landmarks_file(s))
            .collect::<Result<Vec<_>>>()?
    } else {
        anyhow::ensure!(
            a.landmarks.len() == a.scene.len(),
            "{} --landmarks for {} --scene: give one per scene, in the same order, or none",
            a.landmarks.len(),
            a.scene.len()
        );
        a.landmarks.clone()
    };
    let scenes: Vec<_> = a
        .scene
        .iter()
        .zip(landmarks)
        .map(|(root, landmarks)| BackboneScene {
            root: root.clone(),
            landmarks,
        })
        .collect();
    let first = scenes[0].landmarks.clone();
    let mut o = a.options(first, init_backbone, 1);
    o.world = World::from_env()?;
    let Some(resume) = resume_from(&a.out, a.resume, a.epochs, &o)? else {
        return Ok(());
    };
    let r = train_backbone(&scenes, &a.out, &o, resume, true, &ctrlc_control())?;
    if r.interrupted {
        return Err(interrupted(&a.out));
    }
    if let Some(line) = rank_done(&o) {
        eprintln!("{line}");
        return Ok(());
    }
    eprintln!(
        "sld train backbone: {} scenes, {} epochs in {:.1} s (final loss {:.3}) → {}",
        scenes.len(),
        r.epochs.len(),
        r.train_seconds,
        r.epochs.last().map_or(f64::NAN, |m| m.loss),
        r.backbone.display()
    );
    for (m, s) in r
        .models
        .iter()
        .zip(r.epochs.last().map(|e| e.scenes.as_slice()).unwrap_or(&[]))
    {
        eprintln!(
            "  {}: loss {:.3}, val recall 5cm/5° {}, pixel error {} → {}",
            s.scene,
            s.loss,
            s.val_recall_5cm_5deg
                .map_or("-".into(), |r| format!("{:.1} %", 100.0 * r)),
            s.val_pixel_error.map_or("-".into(), |p| format!("{p:.2} px")),
            m.display()
        );
    }
    Ok(())
}
