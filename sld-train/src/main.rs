//! The `sld` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use sld_core::pnp::{PnpOptions, Sampling};
use sld_train::pnp_cli;

/// Scene landmark detection: train scene models, localise images.
#[derive(Parser)]
#[command(name = "sld", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Solve PnP problems from a JSON file (robust P3P + LO-RANSAC + LM).
    ///
    /// Input: {"cases": [{"camera": {"width", "height", "fx", "fy", "cx", "cy"},
    /// "points2d": [[u, v], ...], "points3d": [[x, y, z], ...], "confidence": [c, ...]}]}.
    /// Pixels use the pixel-centre convention ((0, 0) is the centre of the
    /// top-left pixel); points are in metres; "confidence" is optional.
    ///
    /// Output: {"results": [{"ok", "R", "t", "inliers", "iterations", "time_us"}]}
    /// in input order, with R|t world-to-camera (x_cam = R x_world + t) and
    /// time_us the single-threaded solve time of that case.
    ///
    /// Example: sld pnp --input cases.json --output results.json --max-reproj-px 8
    Pnp(PnpArgs),
    /// Run the localisation pipeline end to end on a synthetic scene and
    /// print recall and timing.
    ///
    /// A room with landmarks on its walls and furniture; query cameras at
    /// human height. The CNN is simulated for now (heatmaps rendered from the
    /// ground-truth projections, with pixel noise and wrong detections);
    /// decoding, PnP and the error metrics are the real sld-core path.
    Demo(DemoArgs),
    /// Localise images with a `.sld` model; one JSON line per image.
    ///
    /// Intrinsics come from --camera, or from the Indoor6 sidecar file
    /// (NAME.color.jpg → NAME.intrinsics.txt: "W H f cx cy kappa"), rescaled
    /// if the image has another size. Output per image: {"image", "ok", "R",
    /// "t", "inliers", "detections", "times_us": {"preprocess", "cnn",
    /// "decode", "pnp"}} with R|t world-to-camera; failures carry "error".
    ///
    /// Example: sld localize --model scene6.sld images/*.color.jpg
    Localize(LocalizeArgs),
    /// Create or inspect `.sld` model files.
    #[command(subcommand)]
    Model(ModelCommand),
}

#[derive(Args)]
struct LocalizeArgs {
    /// The `.sld` model file.
    #[arg(long, short)]
    model: PathBuf,
    /// Intrinsics of the images as fx,fy,cx,cy[,kappa] in pixels
    /// (pixel-centre convention); default: Indoor6 sidecar files.
    #[arg(long)]
    camera: Option<String>,
    /// Images (PNG or JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Print a model's description, size and working memory.
    Info {
        /// The `.sld` file.
        model: PathBuf,
    },
    /// Run the network alone on a raw input tensor and time it (for
    /// cross-checks with other runtimes): reads f32 little-endian [C, H, W]
    /// already normalised, writes the heatmaps [L, h, w] the same way, prints
    /// the median forward time over --repeats runs (single thread).
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
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
    /// Write a model with random weights (EfficientNet-Lite0 stride 8 + ASPP
    /// head): for benchmarks and plumbing tests, not for localising.
    Random {
        /// Output `.sld` file.
        #[arg(long, short)]
        out: PathBuf,
        /// Number of landmarks (heatmaps).
        #[arg(long, default_value_t = 125)]
        landmarks: usize,
        /// Input width in pixels.
        #[arg(long, default_value_t = 640)]
        width: usize,
        /// Input height in pixels.
        #[arg(long, default_value_t = 352)]
        height: usize,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Args)]
struct DemoArgs {
    /// Number of landmarks in the scene.
    #[arg(long, default_value_t = 300)]
    landmarks: usize,
    /// Number of query images.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Fraction of visible landmarks detected at a wrong place (0–1).
    #[arg(long, default_value_t = 0.3)]
    outlier_frac: f64,
    /// Pixel noise of correct detections, standard deviation in pixels.
    #[arg(long, default_value_t = 1.5)]
    pixel_noise: f64,
    /// Random seed (the run is deterministic for a seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct PnpArgs {
    /// JSON file with the cases.
    #[arg(long, short)]
    input: PathBuf,
    /// Where to write the results JSON.
    #[arg(long, short)]
    output: PathBuf,
    /// Inlier threshold on the reprojection error, pixels.
    #[arg(long, default_value_t = 8.0)]
    max_reproj_px: f64,
    /// Seed of the RANSAC sampler (results are deterministic for a seed).
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Minimal-sample selection: prosac (by confidence), weighted, uniform.
    #[arg(long, default_value = "prosac", value_parser = pnp_cli::parse_sampling)]
    sampling: Sampling,
    /// Maximum RANSAC iterations.
    #[arg(long, default_value_t = 10_000)]
    max_iterations: u32,
    /// Minimum RANSAC iterations before adaptive termination may stop.
    #[arg(long, default_value_t = PnpOptions::default().ransac.min_iterations)]
    min_iterations: u32,
    /// Stop scoring a model once it is worse than the best minimal model
    /// (experiments; off by default).
    #[arg(long)]
    early_exit: bool,
    /// Local optimisation's wide pass: threshold multiplier (<= 1 disables).
    #[arg(long, default_value_t = PnpOptions::default().lo_wide_factor)]
    lo_wide_factor: f64,
    /// PROSAC horizon T_N: samples after which PROSAC samples uniformly.
    #[arg(long, default_value_t = PnpOptions::default().prosac_horizon)]
    prosac_horizon: u32,
    /// Disable PROSAC's early stop on the pool's inlier ratio (experiments).
    #[arg(long)]
    no_progressive_stop: bool,
    /// Levenberg–Marquardt iterations of each local optimisation.
    #[arg(long, default_value_t = PnpOptions::default().lo_iterations)]
    lo_iterations: u32,
}

fn run_pnp(args: &PnpArgs) -> Result<()> {
    let cases = pnp_cli::read_cases(&args.input)?;
    let mut options = PnpOptions {
        max_reproj_px: args.max_reproj_px,
        seed: args.seed,
        sampling: args.sampling,
        ..PnpOptions::default()
    };
    options.ransac.max_iterations = args.max_iterations;
    options.ransac.min_iterations = args.min_iterations;
    options.lo_iterations = args.lo_iterations;
    options.ransac.early_exit = args.early_exit;
    options.prosac_horizon = args.prosac_horizon;
    options.lo_wide_factor = args.lo_wide_factor;
    options.ransac.progressive_stop = !args.no_progressive_stop;
    if !(options.max_reproj_px.is_finite() && options.max_reproj_px > 0.0) {
        anyhow::bail!("--max-reproj-px must be a positive number of pixels");
    }
    let results = pnp_cli::solve_cases(&cases, options);
    let solved = results.iter().filter(|r| r.ok).count();
    let json = serde_json::to_string(&pnp_cli::ResultsJson { results })?;
    let tmp = args.output.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.output).with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "sld pnp: {solved}/{} cases solved → {}",
        cases.len(),
        args.output.display()
    );
    Ok(())
}

fn run_demo(args: &DemoArgs) -> Result<()> {
    let cfg = sld_train::demo::DemoConfig {
        landmarks: args.landmarks,
        queries: args.queries,
        outlier_frac: args.outlier_frac,
        pixel_noise: args.pixel_noise,
        seed: args.seed,
    };
    eprintln!(
        "sld demo: synthetic room, {} landmarks, {} queries, 640x352 input, stride 8 \
         (CNN simulated: heatmaps rendered from ground truth)",
        cfg.landmarks, cfg.queries
    );
    let r = sld_train::demo::run(&cfg)?;
    println!("queries              {}", r.queries);
    println!("detections (median)  {:.0}", r.median_detections);
    println!("recall 5cm/5deg      {:.1} %", 100.0 * r.recall_5cm_5deg);
    println!("recall 10cm/10deg    {:.1} %", 100.0 * r.recall_10cm_10deg);
    println!(
        "median error         {:.2} cm, {:.3} deg",
        100.0 * r.median_position_m,
        r.median_rotation_deg
    );
    println!("decode (median)      {:.3} ms / image", r.median_decode_ms);
    println!("PnP (median)         {:.3} ms / image", r.median_pnp_ms);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match &cli.command {
        Command::Pnp(args) => run_pnp(args),
        Command::Demo(args) => run_demo(args),
        Command::Localize(a) => {
            sld_train::localize_cli::localize_images(&a.model, &a.images, a.camera.as_deref()).and_then(
                |failed| {
                    if failed > 0 {
                        anyhow::bail!("{failed} of {} images could not be processed", a.images.len())
                    }
                    Ok(())
                },
            )
        }
        Command::Model(ModelCommand::Forward {
            model,
            input,
            output,
            repeats,
        }) => sld_train::localize_cli::forward_raw(model, input, output, *repeats).map(|ms| {
            println!("forward_ms {ms:.3}");
        }),
        Command::Model(ModelCommand::Info { model }) => {
            sld_train::localize_cli::describe(model).map(|s| println!("{s}"))
        }
        Command::Model(ModelCommand::Random {
            out,
            landmarks,
            width,
            height,
            seed,
        }) => sld_train::localize_cli::write_random_model(out, *landmarks, *width, *height, *seed),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
