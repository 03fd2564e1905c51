//! The `sld` command line: one file per command, each holding its
//! arguments, their conversion into library options, and its printing.
//! Argument groups and value choices that several commands share live in
//! [`args`].

use anyhow::Result;
use clap::{Parser, Subcommand};

pub mod args;
pub mod colmap;
pub mod demo;
pub mod depth;
pub mod eval;
pub mod landmarks;
pub mod localize;
pub mod model;
pub mod plot;
pub mod pnp;
pub mod simulate;
pub mod synth;
pub mod train;
pub mod weights;

/// Scene landmark detection: train scene models, localise images.
#[derive(Parser)]
#[command(name = "sld", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    Pnp(pnp::Args),
    /// The main job on a built-in synthetic scene: render, choose
    /// landmarks, train, export, localise the held-out images, print
    /// recall and timing.
    ///
    /// Renders a room in three lighting sessions (two for mapping, one for
    /// queries) and selects landmarks. Then trains with Candle on the
    /// mapping images with the recommended recipe (`sld train` without a
    /// mode: a scene head on XFeat's frozen trunk, shipped in the binary).
    /// Exports a `.sld` and localises held-out mapping images and the query
    /// session (other lighting, other path) through sld-core's
    /// Localizer — the path a robot runs. Everything lands in --work
    /// (default: a temporary directory).
    Demo(demo::Args),
    /// PnP on simulated detections: heatmaps rendered from ground-truth
    /// projections with pixel noise and wrong detections, then the real
    /// decode and PnP of sld-core (no CNN). Shows the geometry alone.
    Simulate(simulate::Args),
    /// Train a scene model: `sld train --scene S --out R` runs the
    /// recommended recipe; `full`, `head` and `backbone` are the explicit
    /// modes.
    Train(train::TrainCmd),
    /// Localise a scene's images with a model and compare with the
    /// ground-truth poses.
    ///
    /// Runs sld-core's Localizer (resize → CNN → decode → PnP) on every
    /// image of the split and prints 5cm/5°, 10cm/10° and 1cm/1° recall,
    /// median rotation (degrees) and position (metres, between camera
    /// centres) errors, detections, the median pixel error of detections
    /// (network-input pixels) and per-stage times. --json prints one JSON
    /// object with the per-image results.
    ///
    /// Example: sld eval --model runs/room1/model.sld --scene scenes/room1 --split test
    Eval(eval::Args),
    /// Plot a run's metrics.jsonl: training loss, validation pixel error
    /// and validation recall at 5 cm/5° against the epoch, one line per
    /// scene for backbone runs (training redraws RUN/metrics.png itself
    /// after every epoch).
    ///
    /// Example: sld plot runs/room1/metrics.jsonl --out room1.png
    Plot(plot::Args),
    /// COLMAP interoperability.
    #[command(subcommand)]
    Colmap(colmap::Command),
    /// Complete holey metric depth maps (COLMAP/MVS) with a monocular depth
    /// estimate, and measure how well it works.
    #[command(subcommand)]
    Depth(depth::Command),
    /// Pre-trained weights.
    #[command(subcommand)]
    Weights(weights::Command),
    /// Localise images with a `.sld` model; one JSON line per image.
    ///
    /// Intrinsics come from --camera, or from the Indoor6 sidecar file
    /// (NAME.color.jpg → NAME.intrinsics.txt: "W H f cx cy kappa"), rescaled
    /// if the image has another size. Output per image: {"image", "ok", "R",
    /// "t", "inliers", "detections", "times_us": {"preprocess", "cnn",
    /// "decode", "pnp"}} with R|t world-to-camera; failures carry "error".
    ///
    /// Example: sld localize --model scene6.sld images/*.color.jpg
    Localize(localize::Args),
    /// Create or inspect `.sld` model files.
    #[command(subcommand)]
    Model(model::Command),
    /// Render a synthetic indoor scene with exact poses and depth.
    ///
    /// A furnished room with procedural textures and posters, recorded in
    /// several sessions that differ in lighting (ambient level and colour,
    /// lights on/off, exposure) and camera path. Written in the Indoor6
    /// layout (images/NAME.color.jpg, .intrinsics.txt, .pose.txt,
    /// train_test_val.pkl) plus NAME.depth.png (16-bit millimetres),
    /// sessions.txt and points3d.txt (surface points with the images that
    /// see them). The last session is the test split; every 10th mapping
    /// image is validation. Same seed, same files.
    ///
    /// Example: sld synth --out scenes/room1 --seed 1 --images 300 --sessions 3
    Synth(synth::Args),
    /// Choose landmarks in a scene and write their visibility.
    ///
    /// Scores every point of SCENE/points3d.txt with the SLD saliency score
    /// (depth variation, track length, sessions, angular span of the
    /// viewing rays), keeps those passing the filters, and picks COUNT
    /// greedily in score order at least RADIUS metres apart (halving the
    /// radius until COUNT are chosen). Writes
    /// SCENE/landmarks/landmarks-COUNT.txt and visibility-COUNT.txt
    /// (visible = in front, inside the image, and consistent with the
    /// image's depth map, or in the point's track where there is none).
    ///
    /// Example: sld landmarks --scene scenes/room1 --count 300
    Landmarks(landmarks::Args),
}

/// A command stopped by Ctrl-C: `sld` prints the message (where to
/// continue) and exits 130 (128 + SIGINT), so `train && eval` stops.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Runs one command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Pnp(a) => pnp::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Train(c) => train::run(c),
        Command::Eval(a) => eval::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Colmap(c) => colmap::run(c),
        Command::Depth(c) => depth::run(c),
        Command::Weights(c) => weights::run(c),
        Command::Localize(a) => localize::run(a),
        Command::Model(c) => model::run(c),
        Command::Synth(a) => synth::run(a),
        Command::Landmarks(a) => landmarks::run(a),
    }
}
