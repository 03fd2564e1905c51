//! `sld model`: create or inspect `.sld` model files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sld_train::net::builder::GraphBuilder;
use sld_train::net::export::to_sld_bytes;
use sld_train::net::heads::aspp_head;
use sld_train::net::lite0::efficientnet_lite0_s8;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print a model's description, size and working memory.
    Info {
        /// The `.sld` file.
        model: PathBuf,
    },
    /// Run the network alone on a raw input tensor and time it (for
    /// cross-checks with other runtimes): reads f32 little-endian [C, H, W]
    /// already normalised, writes the heatmaps [L, h, w] the same way, prints
    /// the median time to write the input into the arena (`input_ms`: a
    /// copy; a `Localizer` writes the normalised image there instead), then
    /// the fastest and the median forward time over --repeats runs, from
    /// the input in place to the heatmaps (`forward_min_ms`, `forward_ms`:
    /// as ONNX Runtime is timed from a prepared input; on --threads threads;
    /// `SLD_CPU_LEVEL=portable|avx2|avx512` caps the x86 kernels;
    /// `SLD_WINOGRAD=0` runs 3×3 layers by the direct kernel).
    Forward {
        /// The `.sld` file.
        model: PathBuf,
        /// Raw f32 input tensor.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the raw f32 heatmaps.
        #[arg(long)]
        output: PathBuf,
        /// Timed runs (after one warm-up).
        #[arg(value_parser = super::args::int_in::<usize>(1, 100_000), long, default_value_t = 5)]
        repeats: usize,
        /// Threads the network is split over (the results are the same
        /// bits for any count).
        #[arg(value_parser = super::args::int_in::<usize>(1, 16), long, default_value_t = 1)]
        threads: usize,
        /// Also time every layer (--repeats more runs, one step at a time)
        /// and print a table: median ms, share, GFLOP/s (of the direct
        /// convolution's multiply-adds, also for Winograd layers), and the
        /// kernel path each convolution takes, then totals per path.
        #[arg(long)]
        profile: bool,
        /// Keep every activation planar [C, H, W] (no channel-blocked
        /// layers, no packed weights): the reference plan, to compare.
        #[arg(long)]
        planar: bool,
    },
    /// Write a known-answer kit for integration tests on a device or in C:
    /// DIR/model.sld (a hand-weighted detector of coloured dots, not
    /// trained), DIR/image.ppm (binary P6 RGB8: the dots seen from a known
    /// pose) and DIR/truth.txt (intrinsics, then R and t, world-to-camera).
    /// Localising image.ppm with model.sld must give the pose in truth.txt
    /// to well under a centimetre; anything else is an integration bug
    /// (image layout, intrinsics, pose convention).
    ///
    /// Example: sld model beacons --out kit && ./my_robot_test kit
    Beacons {
        /// Output folder.
        #[arg(long, short)]
        out: PathBuf,
        /// Number of beacons (landmarks), 4 to 19.
        #[arg(value_parser = super::args::int_in::<usize>(1, 100_000), long, default_value_t = 16)]
        landmarks: usize,
        /// Image width in pixels.
        #[arg(value_parser = super::args::int_in::<u32>(8, 4096), long, default_value_t = 256)]
        width: u32,
        /// Image height in pixels.
        #[arg(value_parser = super::args::int_in::<u32>(8, 4096), long, default_value_t = 192)]
        height: u32,
        /// Seed of the pose and beacon positions.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a model with random weights (by default EfficientNet-Lite0
    /// stride 8 + ASPP head; `--arch` picks another): for benchmarks and
    /// plumbing tests, not for localising. `--heads N` puts N heads on the
    /// one backbone (SLD*'s ensemble, sharing the backbone: `sld train
    /// --heads`).
    Random {
        /// Output `.sld` file.
        #[arg(long, short)]
        out: PathBuf,
        /// Number of landmarks (heatmaps) per head.
        #[arg(value_parser = super::args::int_in::<usize>(1, 100_000), long, default_value_t = 125)]
        landmarks: usize,
        /// Heads on the backbone, each with --landmarks heatmaps.
        #[arg(value_parser = super::args::int_in::<usize>(1, 64), long, default_value_t = 1)]
        heads: usize,
        /// Input width in pixels.
        #[arg(value_parser = super::args::int_in::<usize>(8, 4096), long, default_value_t = 640)]
        width: usize,
        /// Input height in pixels.
        #[arg(value_parser = super::args::int_in::<usize>(8, 4096), long, default_value_t = 352)]
        height: usize,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Which network: `lite0` (EfficientNet-Lite0 stride 8 + SLD*'s
        /// ASPP head, 3-channel input), `small` (`sld train full --arch
        /// small`'s default: the small backbone of width 32 + the scene
        /// head, 64 channels) or `xfeat` (the recommended recipe's network:
        /// XFeat's trunk, 1-channel input, + the scene head, 64 channels).
        #[arg(long, value_enum, default_value_t = RandomArch::Lite0)]
        arch: RandomArch,
    },
}

/// The networks `sld model random` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RandomArch {
    /// EfficientNet-Lite0 stride 8 + SLD*'s ASPP head (80 channels a branch).
    Lite0,
    /// The small backbone (width 32) + the scene head (64 channels).
    Small,
    /// XFeat's trunk + the scene head (64 channels): the recommended recipe.
    Xfeat,
}

/// Runs `sld model`.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Info { model } => {
            println!("{}", describe(&model)?);
        }
        Command::Forward {
            model,
            input,
            output,
            repeats,
            threads,
            profile,
            planar,
        } => {
            let (ms, min, copy) = forward_raw(&model, &input, &output, repeats, threads, profile, planar)?;
            println!("input_ms {copy:.3}");
            // The minimum first: on a shared host noise only adds time, so
            // it is the steadier figure for comparing two builds.
            println!("forward_min_ms {min:.3}");
            println!("forward_ms {ms:.3}");
        }
        Command::Beacons {
            out,
            landmarks,
            width,
            height,
            seed,
        } => {
            let kit = sld_train::beacon::beacon_kit(width, height, landmarks, seed)?;
            sld_train::beacon::write_kit(&kit, &out)?;
            println!("wrote {}/{{model.sld,image.ppm,truth.txt}}", out.display());
        }
        Command::Random {
            out,
            landmarks,
            heads,
            width,
            height,
            seed,
            arch,
        } => write_random_model(&out, arch, landmarks, heads, width, height, seed)?,
    }
    Ok(())
}

/// Writes a model with random weights (for benchmarks and plumbing tests):
/// `arch`'s network with `heads` heads of `per_head` landmarks each, for a
/// `width × height` input (pixels).
pub fn write_random_model(
    out: &Path,
    arch: RandomArch,
    per_head: usize,
    heads: usize,
    width: usize,
    height: usize,
    seed: u64,
) -> Result<()> {
    use sld_train::net::arch::{build, BackboneKind, HeadKind, NetSpec};
    let landmarks = per_head * heads;
    let (info, tensors) = match arch {
        RandomArch::Lite0 => {
            let mut b = GraphBuilder::new(3, height, width, seed);
            let trunk = efficientnet_lite0_s8(&mut b);
            let outs: Vec<String> = (0..heads)
                .map(|k| {
                    let name = if heads == 1 {
                        "head".to_string()
                    } else {
                        format!("head{k}")
                    };
                    aspp_head(&mut b, &name, &trunk, 80, per_head)
                })
                .collect();
            let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
            b.finish(&refs, 8, "random")
        }
        RandomArch::Small | RandomArch::Xfeat => {
            if !width.is_multiple_of(8) || !height.is_multiple_of(8) {
                bail!("--arch {arch:?}: width and height must be multiples of 8 (got {width}x{height})");
            }
            let backbone = match arch {
                RandomArch::Small => BackboneKind::Small { width: 32 },
                _ => BackboneKind::XFeat,
            };
            let spec = NetSpec {
                input_width: width,
                input_height: height,
                head_channels: 64,
                heads,
                seed,
                heatmaps: Default::default(),
                input: Default::default(),
            };
            let n = build(backbone, HeadKind::Scene, &spec, landmarks, "random");
            (n.info, n.tensors)
        }
    };
    // Landmarks spread through a 4 × 3 × 4 m box (not collinear, so PnP runs).
    let mut rng = sld_core::rng::SplitMix64::new(seed ^ 0x1a4d);
    let mut u = |s: f64| ((rng.unit_f64() - 0.5) * s) as f32;
    let lm: Vec<[f32; 3]> = (0..landmarks).map(|_| [u(4.0), u(3.0), 2.0 + u(4.0)]).collect();
    let bytes = to_sld_bytes(&info, &tensors, &lm)?;
    sld_train::io::atomic::write_atomic(out, &bytes)
}

/// A human-readable summary of a model file.
pub fn describe(model: &Path) -> Result<String> {
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let size = bytes.len();
    let m =
        sld_core::model::Model::load(bytes).with_context(|| format!("{}: invalid model", model.display()))?;
    let i = m.info();
    let p = m.plan();
    Ok(format!(
        "scene          {}\nformat         version {}\ninput          {}x{}x{}\nstride         {}\n\
         landmarks      {}\nheads          {}\nlayers         {}\nfile           {:.1} MB\n\
         working memory {:.1} MB (arena {:.1} MB + scratch {:.1} MB)\n\
         packed weights {:.1} MB (channel-blocked layers; 0 on a planar plan)\nprovenance     {} {}",
        i.scene,
        sld_core::model::FORMAT_VERSION,
        i.graph.input.width,
        i.graph.input.height,
        i.graph.input.channels,
        i.stride,
        i.landmarks,
        i.graph.outputs.len(),
        i.graph.layers.len(),
        size as f64 / 1e6,
        p.memory_bytes() as f64 / 1e6,
        4.0 * p.arena_len as f64 / 1e6,
        4.0 * p.scratch_len as f64 / 1e6,
        4.0 * p.packed.len() as f64 / 1e6,
        i.provenance.date,
        i.provenance.command
    ))
}

/// Runs the network on a raw f32 `[C, H, W]` input file, writes the raw
/// f32 heatmaps, returns the median and the minimum forward time and the
/// median time to copy the input into the arena, in milliseconds over
/// `repeats` runs (after one warm-up run; the forward from the input in
/// place to the heatmaps, the copy apart). With
/// `profile`, also prints the per-layer table (`sld model forward --profile`).
pub fn forward_raw(
    model: &Path,
    input: &Path,
    output: &Path,
    repeats: usize,
    threads: usize,
    profile: bool,
    planar: bool,
) -> Result<(f64, f64, f64)> {
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let m = if planar {
        sld_core::model::Model::load_planar(bytes)
    } else {
        sld_core::model::Model::load(bytes)
    }
    .with_context(|| format!("{}: invalid model", model.display()))?;
    let plan = m.plan();
    let raw = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let need = plan.tensors[0].len();
    if raw.len() != 4 * need {
        bail!(
            "{}: {} bytes, the model input needs {} f32 ({:?})",
            input.display(),
            raw.len(),
            need,
            plan.tensors[0].shape
        );
    }
    let x: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len * threads];
    let pool = sld_core::nn::Pool::new(threads).context("cannot start the threads")?;
    let par = sld_core::nn::Par::new(Some(&pool));
    let mut times = Vec::with_capacity(repeats);
    let mut copies = Vec::with_capacity(repeats);
    for run in 0..=repeats {
        // The arena reuses the input's space for later layers, so every
        // run writes it anew.
        let t = std::time::Instant::now();
        sld_core::nn::input_mut(plan, &mut arena)
            .context("arena")?
            .copy_from_slice(&x);
        let copied = t.elapsed();
        let t = std::time::Instant::now();
        sld_core::nn::run_par(plan, m.weights(), &mut arena, &mut scratch, par)?;
        if run > 0 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
            copies.push(copied.as_secs_f64() * 1e3);
        }
    }
    if profile {
        let mut per_step = vec![Vec::with_capacity(repeats); plan.steps.len()];
        let mut seconds = vec![0f64; plan.steps.len()];
        for _ in 0..repeats {
            sld_core::nn::input_mut(plan, &mut arena)
                .context("arena")?
                .copy_from_slice(&x);
            sld_core::nn::run_par_timed(plan, m.weights(), &mut arena, &mut scratch, par, &mut seconds)?;
            for (v, s) in per_step.iter_mut().zip(&seconds) {
                v.push(*s * 1e3);
            }
        }
        print!("{}", profile_table(plan, &per_step));
    }
    let mut out = Vec::new();
    for k in 0..plan.outputs.len() {
        out.extend(
            sld_core::nn::output(plan, &arena, k)
                .context("output")?
                .iter()
                .flat_map(|v| v.to_le_bytes()),
        );
    }
    sld_train::io::atomic::write_atomic(output, &out)?;
    times.sort_by(f64::total_cmp);
    copies.sort_by(f64::total_cmp);
    Ok((
        times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
        times.first().copied().unwrap_or(f64::NAN),
        copies.get(copies.len() / 2).copied().unwrap_or(f64::NAN),
    ))
}

/// The `--profile` table: one line per step (median ms over the runs in
/// `per_step`), then the totals per kernel path.
fn profile_table(plan: &sld_core::model::Plan, per_step: &[Vec<f64>]) -> String {
    use sld_core::model::Step;
    use std::fmt::Write;
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let ms: Vec<f64> = per_step.iter().map(|v| median(v)).collect();
    let total: f64 = ms.iter().sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>4} {:<28} {:<34} {:>16} {:>9} {:>6} {:>8}",
        "step", "layer", "kernel", "output", "ms", "share", "GFLOP/s"
    );
    let mut by_path: Vec<(String, f64, f64)> = Vec::new();
    for (i, (step, t)) in plan.steps.iter().zip(&ms).enumerate() {
        let out_t = &plan.tensors[i + 1];
        let (kind, path, flops) = match step {
            Step::Conv(c) => {
                let it = &plan.tensors[c.input];
                let [co, ho, wo] = out_t.shape;
                let flops =
                    2.0 * (co * it.shape[0] / c.groups.max(1) * c.kernel[0] * c.kernel[1] * ho * wo) as f64;
                let path = sld_core::nn::conv::path_name(c, it.shape[0]);
                let fused = if c.residual.is_some() { " +residual" } else { "" };
                let kind = format!(
                    "{path} {}x{} s{} d{}{fused}",
                    c.kernel[0], c.kernel[1], c.stride[0], c.dilation[0]
                );
                (kind, path.to_string(), flops)
            }
            Step::Add { .. } => ("add".into(), "add".into(), 0.0),
            Step::Concat { .. } => ("concat".into(), "concat".into(), 0.0),
            Step::Resize { .. } => ("resize".into(), "resize".into(), 0.0),
            Step::Act { .. } => ("activation".into(), "activation".into(), 0.0),
            Step::Alias { .. } => ("add (fused above)".into(), "fused add".into(), 0.0),
        };
        let rate = if flops > 0.0 && *t > 0.0 {
            format!("{:.1}", flops / (t * 1e-3) / 1e9)
        } else {
            String::new()
        };
        let shape = format!("{:?}", out_t.shape);
        let name: String = out_t.name.chars().take(28).collect();
        let _ = writeln!(
            out,
            "{i:>4} {name:<28} {kind:<34} {shape:>16} {t:>9.3} {:>5.1}% {rate:>8}",
            100.0 * t / total
        );
        match by_path.iter_mut().find(|(p, _, _)| *p == path) {
            Some(e) => {
                e.1 += t;
                e.2 += flops;
            }
            None => by_path.push((path, *t, flops)),
        }
    }
    by_path.sort_by(|a, b| b.1.total_cmp(&a.1));
    let _ = writeln!(out, "totals per kernel path (sum of medians {total:.3} ms):");
    for (path, t, flops) in by_path {
        let rate = if flops > 0.0 && t > 0.0 {
            format!("{:.1} GFLOP/s", flops / (t * 1e-3) / 1e9)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {path:<16} {t:>9.3} ms {:>5.1}%  {rate}",
            100.0 * t / total
        );
    }
    out
}
