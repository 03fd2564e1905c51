//! `sld simulate`: decode and PnP on heatmaps simulated from ground truth.

use anyhow::Result;
use sld_train::simulate::{simulate, SimulateConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Number of landmarks in the scene.
    #[arg(value_parser = super::args::int_in::<usize>(4, 1_000_000), long, default_value_t = 300)]
    pub landmarks: usize,
    /// Number of query images.
    #[arg(value_parser = super::args::int_in::<usize>(1, 1_000_000), long, default_value_t = 100)]
    pub queries: usize,
    /// Fraction of visible landmarks detected at a wrong place (0–1).
    #[arg(value_parser = super::args::real_in::<f64>(0.0, 1.0), long, default_value_t = 0.3)]
    pub outlier_frac: f64,
    /// Pixel noise of correct detections, standard deviation in pixels.
    #[arg(value_parser = super::args::real_in::<f64>(0.0, 1e4), long, default_value_t = 1.5)]
    pub pixel_noise: f64,
    /// Random seed (the run is deterministic for a seed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `sld simulate`.
pub fn run(args: Args) -> Result<()> {
    let cfg = SimulateConfig {
        landmarks: args.landmarks,
        queries: args.queries,
        outlier_frac: args.outlier_frac,
        pixel_noise: args.pixel_noise,
        seed: args.seed,
    };
    eprintln!(
        "sld simulate: synthetic room, {} landmarks, {} queries, 640x352 input, stride 8 \
         (CNN simulated: heatmaps rendered from ground truth)",
        cfg.landmarks, cfg.queries
    );
    let r = simulate(&cfg)?;
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
