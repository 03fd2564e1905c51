//! The recommended recipe: what `sld train` (no mode) and `sld demo` run.
//! A scene head on XFeat's frozen trunk (lighting- and viewpoint-robust
//! local features; the trunk ships inside the binary, [`XFEAT_TRUNK`]),
//! trained from a feature buffer with camera-rotation augmentation. Measured against the other routes in EXPERIMENTS.md
//! ("The query session: routes").

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::options::{InputMode, Loss, TrainOptions};
use crate::net::arch::Arch;

/// XFeat's trunk as `sld weights import-xfeat` writes it (Apache-2.0; see
/// `sld-train/weights/README.md` for its provenance and licence).
pub const XFEAT_TRUNK: &[u8] = include_bytes!("../../weights/xfeat.safetensors");

/// File name of the trunk in a run's output directory.
pub const TRUNK_FILE: &str = "xfeat.safetensors";

/// Writes [`XFEAT_TRUNK`] to `dir/`[`TRUNK_FILE`] (atomically; kept when
/// already identical) and returns its path: the run's backbone, next to
/// the model it produced.
pub fn write_trunk(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let p = dir.join(TRUNK_FILE);
    if std::fs::read(&p).ok().as_deref() != Some(XFEAT_TRUNK) {
        crate::io::atomic::write_atomic(&p, XFEAT_TRUNK)?;
    }
    Ok(p)
}

/// The recipe's training options for `landmarks`, on the trunk at
/// `backbone` ([`write_trunk`]), `epochs` epochs, seed `seed`.
pub fn options(landmarks: PathBuf, backbone: PathBuf, epochs: usize, seed: u64) -> TrainOptions {
    TrainOptions {
        arch: Arch::Small,
        width: 16,
        head_channels: 64,
        input_width: INPUT_WIDTH,
        input_height: INPUT_HEIGHT,
        landmarks,
        epochs,
        batch: 2,
        lr: 2e-3,
        seed,
        depth_tolerance: 0.1,
        sigma: Loss::Softmax.default_sigma(),
        jitter: 0.3,
        validate_every: 0,
        pos_weight: 1.0,
        backbone: Some(backbone),
        buffer_copies: COPIES,
        geometric_aug: false,
        rotation_aug: true,
        novel_view_aug: false,
        head: Default::default(),
        depth_variant: None,
        loss: Loss::Softmax,
        heads: 1,
        input: InputMode::Rgb,
        device: Default::default(),
        devices: vec![],
        world: None,
    }
}

/// Epochs of the recipe unless asked otherwise.
pub const EPOCHS: usize = 30;

/// Copies of each training image in the feature buffer (one plain, the
/// other with photometric jitter and a camera rotation).
pub const COPIES: usize = 2;

/// Network input width, pixels: 480×264 localised the query session
/// better than 320×176 (a cell of the stride-8 maps is a smaller angle).
pub const INPUT_WIDTH: usize = 480;

/// Network input height, pixels.
pub const INPUT_HEIGHT: usize = 264;
