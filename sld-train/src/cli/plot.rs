//! `sld plot`: draw a run's metrics.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The metrics file.
    pub metrics: PathBuf,
    /// Output PNG (960×240).
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Runs `sld plot`.
pub fn run(a: Args) -> Result<()> {
    sld_train::plot::plot_metrics(&a.metrics, &a.out)
}
