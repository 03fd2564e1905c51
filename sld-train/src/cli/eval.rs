//! `sld eval`: localise a scene's split with a model and score it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sld_train::data::scene::SceneDir;
use sld_train::eval::{evaluate, EvalOptions, EvalReport, CORRECT_PX, WRONG_DEG, WRONG_M};

#[derive(clap::Args)]
pub struct Args {
    /// The `.sld` model.
    #[arg(long, short)]
    pub model: PathBuf,
    /// The scene directory.
    #[arg(long)]
    pub scene: PathBuf,
    /// Split part: test, val or train.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// PnP inlier threshold on the reprojection error, network-input
    /// pixels (default: sld-core's `PnpOptions::default()`, 8 px).
    #[arg(long)]
    pub max_reproj_px: Option<f64>,
    /// Models trained with `--loss softmax`: detect a landmark when the
    /// probability that it is in the image is at least this (default 0.5).
    #[arg(long)]
    pub min_presence: Option<f32>,
    #[command(flatten)]
    pub gate: super::args::GateArgs,
}

/// Prints an evaluation as the table `sld eval` and `sld demo` show.
pub fn print_report(r: &EvalReport) {
    println!("images               {}", r.images);

    println!("recall 5cm/5deg      {:.1} %", 100.0 * r.recall_5cm_5deg);
    println!("recall 10cm/10deg    {:.1} %", 100.0 * r.recall_10cm_10deg);
    println!("recall 1cm/1deg      {:.1} %", 100.0 * r.recall_1cm_1deg);
    println!(
        "wrong poses          {:.1} % (> {} m or > {} deg; {:.1} % rejected as unreliable)",
        100.0 * r.wrong_rate,
        WRONG_M,
        WRONG_DEG,
        100.0 * r.rejected_rate
    );
    println!(
        "median error         {} cm, {:.3} deg",
        r.median_position_m
            .map_or("inf".into(), |p| format!("{:.2}", 100.0 * p)),
        r.median_rotation_deg
    );
    println!(
        "detections (median)  {:.0}, of which correct (< {} px) {:.0}",
        r.median_detections, CORRECT_PX, r.median_correct
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

/// Runs `sld eval`.
pub fn run(a: Args) -> Result<()> {
    let bytes = std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let scene = SceneDir::open(&a.scene)?;
    let idx = scene.part(&a.split)?;
    anyhow::ensure!(
        !idx.is_empty(),
        "{}: the '{}' split is empty",
        a.scene.display(),
        a.split
    );
    let mut o = EvalOptions::default();
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
    o.gate = Some(a.gate.gate()?);
    let r = evaluate(&bytes, &scene, &idx, &o)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_report(&r);
    }
    Ok(())
}
