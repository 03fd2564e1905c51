//! `sld demo`: the main job on a built-in synthetic scene — render, choose
//! landmarks, train, export, localise held-out and query images.

use std::path::PathBuf;

use anyhow::Result;
use sld_train::data::naming::landmarks_file;
use sld_train::data::scene::SceneDir;
use sld_train::eval::evaluate;
use sld_train::landmarks::pipeline::{run as choose_landmarks, LandmarkOptions};
use sld_train::landmarks::select::SelectOptions;
use sld_train::synth::{synthesize, SynthOptions};
use sld_train::train::train_full;

use super::eval::print_report;

#[derive(clap::Args)]
pub struct Args {
    /// Working directory (scene, run); default: a fresh temporary directory.
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Images rendered, split evenly over the sessions.
    #[arg(value_parser = super::args::int_in::<usize>(4, 100_000), long, default_value_t = 240)]
    pub images: usize,
    /// Lighting sessions: all but the last are for mapping (training), the
    /// last is the query session localised at the end.
    #[arg(value_parser = super::args::int_in::<usize>(1, 64), long, default_value_t = 3)]
    pub sessions: usize,
    /// Landmarks.
    #[arg(value_parser = super::args::int_in::<usize>(4, 100_000), long, default_value_t = 300)]
    pub landmarks: usize,
    /// Training epochs (over the feature buffer).
    #[arg(value_parser = super::args::int_in::<usize>(1, 1_000_000), long, default_value_t = sld_train::train::recipe::EPOCHS)]
    pub epochs: usize,
    /// Scene seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `sld demo`.
pub fn run(a: Args) -> Result<()> {
    let work = match &a.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("sld-demo-{}", std::process::id())),
    };
    let scene = work.join("scene");
    let run = work.join("run");
    let t0 = std::time::Instant::now();
    eprintln!("sld demo: working in {}", work.display());
    let _ = std::fs::remove_dir_all(&scene);
    let s = synthesize(
        &scene,
        &SynthOptions {
            seed: a.seed,
            images: a.images,
            sessions: a.sessions,
            // The Indoor6 layout's size; the recipe resizes to its input.
            width: 640,
            height: 352,
            ..Default::default()
        },
    )?;
    let t_render = t0.elapsed().as_secs_f64();
    eprintln!(
        "[1/4] rendered {} images ({} lighting sessions, the last for queries), {} surface points in {t_render:.1} s",
        s.images, a.sessions, s.points
    );
    let lo = LandmarkOptions {
        count: a.landmarks,
        // Measured (EXPERIMENTS.md, "The geometry ceiling"): loose filters
        // leave far more candidates, so every view keeps enough landmarks.
        select: SelectOptions::loose(),
        depth_tolerance: 0.1,
        depth_variant: None,
    };
    let l = choose_landmarks(&scene, &lo)?;
    eprintln!(
        "[2/4] chose {} landmarks, each visible in {:.1} images on average",
        l.chosen, l.mean_visible
    );
    // The recommended recipe (`sld train` without a mode): a scene head on
    // XFeat's frozen trunk, which ships inside the binary.
    let trunk = sld_train::train::recipe::write_trunk(&run)?;
    let o = sld_train::train::recipe::options(landmarks_file(&scene, l.chosen), trunk, a.epochs, a.seed);
    eprintln!(
        "      the recommended recipe: a scene head on XFeat's frozen trunk, {}×{} input, {} buffer copies",
        o.input_width, o.input_height, o.buffer_copies
    );
    let t1 = std::time::Instant::now();
    let r = train_full(&scene, &run, &o, false, true, &Default::default())?;
    eprintln!(
        "[3/4] trained for {} epochs in {:.1} s (final loss {:.3}) → {}",
        o.epochs,
        t1.elapsed().as_secs_f64(),
        r.epochs.last().map_or(f64::NAN, |m| m.loss),
        r.model.display()
    );
    let bytes = std::fs::read(&r.model)?;
    let sd = SceneDir::open(&scene)?;
    let held_out = evaluate(&bytes, &sd, &sd.part("val")?, &Default::default())?;
    let rep = evaluate(&bytes, &sd, &sd.part("test")?, &Default::default())?;
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
    println!("\n-- the query session (another lighting, another camera path)");
    print_report(&rep);
    Ok(())
}
