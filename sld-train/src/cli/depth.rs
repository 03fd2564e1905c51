//! `sld depth fill | eval | simulate | labels`: complete holey depth maps
//! from a monocular estimate, and measure how well it works.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use sld_train::data::scene::SceneDir;
use sld_train::depth::fill::{fill, load};
use sld_train::depth::fit::{FitOptions, Inputs, Method};
use sld_train::depth::holdout::{holdout, Hide, Metrics, Row};
use sld_train::depth::io::{read_map, write_map, write_preview};
use sld_train::depth::labels::{label_study, LabelStats};
use sld_train::depth::simulate::simulate;

use super::args::{choice, DepthInputs};

#[derive(clap::Subcommand)]
pub enum Command {
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
        #[arg(long, default_value = "spatial", value_parser = choice::<Method>())]
        method: Method,
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
        #[arg(long, value_delimiter = ',', value_parser = choice::<Method>())]
        methods: Vec<Method>,
        /// Hiding modes (default: random,blocks).
        #[arg(long, value_delimiter = ',', value_parser = choice::<Hide>())]
        hide: Vec<Hide>,
        /// Fraction of the known pixels hidden.
        #[arg(value_parser = super::args::real_in::<f64>(0.0, 1.0), long, default_value_t = 0.2)]
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
        #[arg(value_parser = super::args::int_in::<usize>(1, 1_000_000), long, default_value_t = 20)]
        images: usize,
        /// Landmarks used (spread over the point cloud).
        #[arg(value_parser = super::args::int_in::<usize>(1, 1_000_000), long, default_value_t = 300)]
        landmarks: usize,
        /// Fill method.
        #[arg(long, default_value = "spatial", value_parser = choice::<Method>())]
        method: Method,
        /// Relative depth tolerance of the visibility test.
        #[arg(value_parser = super::args::real_in::<f64>(1e-4, 10.0), long, default_value_t = 0.1)]
        tolerance: f64,
        /// Seed of the simulation.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `sld depth`.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Fill {
            inputs,
            out,
            preview,
            method,
        } => run_fill(&inputs, &out, preview.as_deref(), method),
        Command::Eval {
            inputs,
            truth,
            methods,
            hide,
            fraction,
            json,
        } => {
            let methods = if methods.is_empty() {
                Method::ALL.to_vec()
            } else {
                methods
            };
            let hide = if hide.is_empty() {
                vec![Hide::Random, Hide::Blocks]
            } else {
                hide
            };
            run_eval(&inputs, truth.as_deref(), &methods, &hide, fraction, json)
        }
        Command::Simulate {
            scene,
            index,
            out,
            seed,
        } => run_simulate(&scene, index, &out, seed),
        Command::Labels {
            scene,
            images,
            landmarks,
            method,
            tolerance,
            seed,
            json,
        } => run_labels(
            &scene,
            images,
            landmarks,
            method,
            tolerance,
            json,
            &FitOptions {
                seed,
                ..Default::default()
            },
        ),
    }
}

/// `sld depth fill`: writes OUT and a colourised preview next to it.
fn run_fill(inputs: &DepthInputs, out: &Path, preview: Option<&Path>, method: Method) -> Result<()> {
    let o = inputs.fit_options();
    let l = load(&inputs.mde, &inputs.depth, inputs.image.as_deref())?;
    if method == Method::Mlp {
        let device = sld_train::device::open(o.device)?;
        eprintln!(
            "sld depth fill: the MLP trains on {}",
            sld_train::device::describe(&device)
        );
        if l.rgb.is_none() {
            eprintln!("note: no --image: the MLP's colour features are zero");
        }
    }
    let (filled, s) = fill(&l, inputs.mde_kind, method, &o)?;
    write_map(out, &filled)?;
    let preview = preview
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out.with_extension("preview.png"));
    write_preview(&preview, &filled)?;
    println!(
        "{}: {} known, {} filled, {} left missing ({}, {:.3} s); preview {}",
        out.display(),
        s.known,
        s.filled,
        s.left_missing,
        method.name(),
        s.seconds,
        preview.display()
    );
    Ok(())
}

/// `sld depth eval`: the hold-out table for each method and hiding mode.
fn run_eval(
    inputs: &DepthInputs,
    truth: Option<&Path>,
    methods: &[Method],
    hides: &[Hide],
    fraction: f64,
    json: bool,
) -> Result<()> {
    let o = &inputs.fit_options();
    ensure!(
        fraction > 0.0 && fraction < 1.0,
        "--fraction must lie in (0, 1), not {fraction}"
    );
    let l = load(&inputs.mde, &inputs.depth, inputs.image.as_deref())?;
    let truth = truth.map(|p| read_map(p, false)).transpose()?;
    if let Some(t) = &truth {
        ensure!(
            (t.width, t.height) == (l.depth.width, l.depth.height),
            "the truth map is {}x{}, the depth map {}x{}",
            t.width,
            t.height,
            l.depth.width,
            l.depth.height
        );
    }
    let fit_inputs = Inputs {
        mde: &l.mde,
        kind: inputs.mde_kind,
        rgb: l.rgb.as_deref(),
    };
    let mut rows: Vec<Row> = vec![];
    for &hide in hides {
        for &m in methods {
            rows.push(holdout(
                m,
                fit_inputs,
                &l.depth,
                truth.as_ref(),
                hide,
                fraction,
                o,
            )?);
        }
    }
    if json {
        println!("{}", serde_json::to_string(&serde_json::json!({ "rows": rows }))?);
    } else {
        print_table(&rows);
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<8} {:<20} {:>7} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "hidden", "method", "n", "MSE m²", "MAE m", "RMSE m", "AbsRel", "δ<1.25", "time s"
    );
    let line = |label: &str, r: &Row, m: &Metrics| {
        println!(
            "{:<8} {:<20} {:>7} {:>9.4} {:>8.4} {:>8.4} {:>8.4} {:>7.3} {:>9.3}",
            label,
            r.method.name(),
            m.n,
            m.mse,
            m.mae,
            m.rmse,
            m.abs_rel,
            m.delta1,
            r.seconds
        );
    };
    for r in rows {
        let hide = match r.hide {
            Hide::Random => "random",
            Hide::Blocks => "blocks",
        };
        line(hide, r, &r.vs_depth);
    }
    if rows.iter().any(|r| r.vs_truth.is_some()) {
        println!("against the true depth:");
        for r in rows {
            if let Some(t) = &r.vs_truth {
                let hide = match r.hide {
                    Hide::Random => "random",
                    Hide::Blocks => "blocks",
                };
                line(hide, r, t);
            }
        }
    }
}

/// `sld depth simulate`: writes OUT/{truth.npy, mde.npy, colmap.bin,
/// image.png} from image `index` of a rendered scene.
fn run_simulate(scene: &Path, index: usize, out: &Path, seed: u64) -> Result<()> {
    let s = SceneDir::open(scene)?;
    ensure!(
        index < s.images.len(),
        "the scene has {} images, no index {index}",
        s.images.len()
    );
    let truth = s
        .depth(index)?
        .with_context(|| format!("image {index} of {} has no depth map", scene.display()))?;
    let rgb = s.images[index].read_rgb()?;
    let sim = simulate(&truth, rgb.as_raw(), seed);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_map(&out.join("truth.npy"), &sim.truth)?;
    write_map(&out.join("mde.npy"), &sim.mde)?;
    write_map(&out.join("colmap.bin"), &sim.colmap)?;
    sld_train::io::atomic::save_image_atomic(&rgb, &out.join("image.png"), image::ImageFormat::Png)?;
    let n = sim.colmap.data.len();
    println!(
        "wrote {}/{{truth.npy, mde.npy (disparity), colmap.bin, image.png}}: {}x{}, {:.1} % of COLMAP-like pixels missing",
        out.display(),
        truth.width,
        truth.height,
        100.0 * (n - sim.colmap.count_known()) as f64 / n as f64
    );
    Ok(())
}

/// `sld depth labels`.
fn run_labels(
    scene: &Path,
    images: usize,
    landmarks: usize,
    method: Method,
    tol: f64,
    json: bool,
    o: &FitOptions,
) -> Result<()> {
    let st = label_study(scene, images, landmarks, method, tol, o)?;
    if json {
        println!("{}", serde_json::to_string(&st)?);
        return Ok(());
    }
    let pct = |a: usize, s: &LabelStats| 100.0 * a as f64 / s.pairs.max(1) as f64;
    println!(
        "{} images x {} landmarks; visibility tolerance {tol}; fill: {}",
        st.images,
        st.landmarks,
        method.name()
    );
    println!(
        "{:<8} {:>8} {:>9} {:>11} {:>7}",
        "depth", "pairs", "correct", "unverified", "wrong"
    );
    for (name, s) in [("raw", &st.raw), ("filled", &st.filled)] {
        println!(
            "{:<8} {:>8} {:>8.1}% {:>10.1}% {:>6.1}%",
            name,
            s.pairs,
            pct(s.correct, s),
            pct(s.unverified, s),
            pct(s.wrong, s)
        );
    }
    let m = &st.fill_vs_truth;
    println!(
        "filled holes vs truth: MAE {:.3} m, AbsRel {:.3}, δ<1.25 {:.3} over {} pixels",
        m.mae, m.abs_rel, m.delta1, m.n
    );
    Ok(())
}
