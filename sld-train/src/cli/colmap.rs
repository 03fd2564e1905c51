//! `sld colmap import`: a COLMAP sparse model as an Indoor6 scene.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Import a COLMAP sparse model and its images as an Indoor6 scene.
    ///
    /// Reads SPARSE_DIR/{cameras,images,points3D}.bin (or .txt). Writes
    /// OUT/images/image-NNNNN.{color.jpg,intrinsics.txt,pose.txt} in the
    /// order of the COLMAP image names, points3d.txt (tracks as image
    /// indices), sessions.txt (all session 0) and train_test_val.pkl.
    /// Principal points move from COLMAP's pixel convention (top-left
    /// pixel centre at 0.5, 0.5) to ours (0, 0). SIMPLE_PINHOLE,
    /// SIMPLE_RADIAL and PINHOLE with fx = fy are kept; PINHOLE with
    /// fx ≠ fy, RADIAL and OPENCV images are resampled to a pinhole with
    /// f = (fx + fy)/2. Poses stay in the model's frame and units.
    /// JPEG images that need no resampling are copied byte for byte; every
    /// image is strictly decoded first, so a damaged one stops the import.
    /// The scene is built in a temporary folder and appears at OUT only
    /// when complete.
    ///
    /// Example: sld colmap import --model work/sparse/0 --images work/images --out scenes/office
    Import {
        /// The sparse model directory.
        #[arg(long)]
        model: PathBuf,
        /// The directory the model's image names are relative to.
        #[arg(long)]
        images: PathBuf,
        /// Output scene directory.
        #[arg(long, short)]
        out: PathBuf,
        /// Put every N-th image (in name order) in the test split (0: none).
        #[arg(long, default_value_t = 0)]
        test_every: usize,
        /// Replace OUT if it is not empty (only once the new scene is
        /// complete; without it a non-empty OUT is refused).
        #[arg(long)]
        force: bool,
    },
}

/// Runs `sld colmap`.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Import {
            model,
            images,
            out,
            test_every,
            force,
        } => {
            let s = sld_train::data::colmap::import(&model, &images, &out, test_every, force)?;
            eprintln!(
                "sld colmap import: {} images ({} resampled to a pinhole), {} points → {}",
                s.images,
                s.resampled,
                s.points,
                out.display()
            );
        }
    }
    Ok(())
}
