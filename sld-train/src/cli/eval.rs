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
    let gate = a.gate.gate()?;
    // The model first, so that its error names its file.
    sld_core::model::Model::load(&bytes[..])
        .map_err(|e| anyhow::anyhow!("{}: not a usable model: {e}", a.model.display()))?;
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
    o.gate = Some(gate);
    warn_if_not_this_scenes_model(&bytes, &a.model, &a.scene, &scene, &idx);
    let r = evaluate(&bytes, &scene, &idx, &o)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_report(&r);
    }
    Ok(())
}

/// Warns (on stderr) when the model looks like another scene's: none of
/// its landmarks projects into any evaluated image under the true poses, or
/// the scene has landmark files and the model's landmarks match none.
fn warn_if_not_this_scenes_model(
    bytes: &[u8],
    model_path: &std::path::Path,
    scene_path: &std::path::Path,
    scene: &SceneDir,
    idx: &[usize],
) {
    let Ok(model) = sld_core::model::Model::load(bytes) else {
        return;
    };
    let lm = model.landmarks();
    let projects = idx.iter().filter_map(|&i| scene.images.get(i)).any(|im| {
        let c = &im.camera;
        lm.iter().any(|x| {
            let pc = im.pose.transform(&sld_core::nalgebra::Vector3::from(*x));
            c.project([pc[0], pc[1], pc[2]]).is_ok_and(|p| {
                p[0] >= -0.5 && p[1] >= -0.5 && p[0] < c.width as f64 - 0.5 && p[1] < c.height as f64 - 0.5
            })
        })
    });
    if !projects {
        eprintln!(
            "warning: no landmark of {} projects into any evaluated image of {}: is it this scene's model?",
            model_path.display(),
            scene_path.display()
        );
        return;
    }
    let files: Vec<_> = std::fs::read_dir(scene_path.join("landmarks"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("landmarks") && n.ends_with(".txt")
        })
        .collect();
    let matches = |f: &std::path::PathBuf| {
        sld_train::data::indoor6::read_landmarks(f).is_ok_and(|l| {
            l.len() == lm.len()
                && l.iter()
                    .zip(lm)
                    .all(|(a, b)| (0..3).all(|k| (a[k] - b[k]).abs() < 1e-3))
        })
    };
    if !files.is_empty() && !files.iter().any(matches) {
        eprintln!(
            "warning: the landmarks of {} match none of the {} landmark files in {}: is it this scene's model?",
            model_path.display(),
            files.len(),
            scene_path.join("landmarks").display()
        );
    }
}
