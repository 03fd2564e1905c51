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
    /// Score every model in full (no early exit); slower, for experiments.
    #[arg(long)]
    no_early_exit: bool,
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
    options.ransac.early_exit = !args.no_early_exit;
    if !(options.max_reproj_px.is_finite() && options.max_reproj_px > 0.0) {
        anyhow::bail!("--max-reproj-px must be a positive number of pixels");
    }
    let results = pnp_cli::solve_cases(&cases, options);
    let solved = results.iter().filter(|r| r.ok).count();
    let json = serde_json::to_string(&pnp_cli::ResultsJson { results })?;
    let tmp = args.output.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.output).with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("sld pnp: {solved}/{} cases solved → {}", cases.len(), args.output.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match &cli.command {
        Command::Pnp(args) => run_pnp(args),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
