//! `sld depth fill | eval | simulate | labels`.

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde::Serialize;

use crate::data::scene::SceneDir;
use crate::depth::eval::{holdout, metrics, Hide, Metrics, Row};
use crate::depth::fit::{fit_predict, FitOptions, Inputs, Method};
use crate::depth::io::{read_map, write_map, write_preview};
use crate::depth::simulate::simulate;
use crate::depth::{Map, MdeKind};
use crate::labels::{visibility, DepthMap, Visible};

/// Reads an RGB image that must match `w × h`.
fn read_rgb(path: &Path, w: usize, h: usize) -> Result<Vec<u8>> {
    let img = image::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .to_rgb8();
    ensure!(
        img.width() as usize == w && img.height() as usize == h,
        "{}: image is {}x{}, the depth map {w}x{h}",
        path.display(),
        img.width(),
        img.height()
    );
    Ok(img.into_raw())
}

/// Inputs of `fill` and `eval`, read and checked.
pub struct Loaded {
    /// MDE map.
    pub mde: Map,
    /// Metric depth with holes.
    pub depth: Map,
    /// RGB, if given.
    pub rgb: Option<Vec<u8>>,
}

/// Reads `--mde`, `--depth` and optional `--image`, checking sizes.
pub fn load(mde: &Path, depth: &Path, image: Option<&Path>) -> Result<Loaded> {
    let m = read_map(mde, true)?;
    let d = read_map(depth, false)?;
    ensure!(
        (m.width, m.height) == (d.width, d.height),
        "{} is {}x{} but {} is {}x{}: MDE and depth must be the same size (resize the MDE output first)",
        mde.display(),
        m.width,
        m.height,
        depth.display(),
        d.width,
        d.height
    );
    let rgb = image.map(|p| read_rgb(p, d.width, d.height)).transpose()?;
    Ok(Loaded {
        mde: m,
        depth: d,
        rgb,
    })
}

/// Result of [`fill`].
#[derive(Serialize)]
pub struct FillSummary {
    /// Pixels that had a depth.
    pub known: usize,
    /// Missing pixels filled.
    pub filled: usize,
    /// Missing pixels left missing (no usable MDE value or prediction).
    pub left_missing: usize,
    /// Seconds to fit and predict.
    pub seconds: f64,
}

/// Fills the holes of `l.depth`; known pixels are kept as they are.
pub fn fill(l: &Loaded, kind: MdeKind, method: Method, o: &FitOptions) -> Result<(Map, FillSummary)> {
    let n = l.depth.data.len() as u32;
    let (known, missing): (Vec<u32>, Vec<u32>) = (0..n).partition(|&i| l.depth.known(i as usize));
    let inputs = Inputs {
        mde: &l.mde,
        kind,
        rgb: l.rgb.as_deref(),
    };
    let t0 = Instant::now();
    let pred = fit_predict(method, inputs, &l.depth, &known, &missing, o)?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut out = l.depth.clone();
    let mut filled = 0;
    for (&i, &p) in missing.iter().zip(&pred) {
        out.data[i as usize] = p;
        filled += p.is_finite() as usize;
    }
    Ok((
        out,
        FillSummary {
            known: known.len(),
            filled,
            left_missing: missing.len() - filled,
            seconds,
        },
    ))
}

/// `sld depth fill`: writes OUT and a colourised preview next to it.
#[allow(clippy::too_many_arguments)]
pub fn run_fill(
    mde: &Path,
    depth: &Path,
    image: Option<&Path>,
    out: &Path,
    preview: Option<&Path>,
    kind: MdeKind,
    method: Method,
    o: &FitOptions,
) -> Result<()> {
    let l = load(mde, depth, image)?;
    if method == Method::Mlp && l.rgb.is_none() {
        eprintln!("note: no --image: the MLP's colour features are zero");
    }
    let (filled, s) = fill(&l, kind, method, o)?;
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
#[allow(clippy::too_many_arguments)]
pub fn run_eval(
    mde: &Path,
    depth: &Path,
    image: Option<&Path>,
    truth: Option<&Path>,
    kind: MdeKind,
    methods: &[Method],
    hides: &[Hide],
    fraction: f64,
    json: bool,
    o: &FitOptions,
) -> Result<()> {
    ensure!(
        fraction > 0.0 && fraction < 1.0,
        "--fraction must lie in (0, 1), not {fraction}"
    );
    let l = load(mde, depth, image)?;
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
    let inputs = Inputs {
        mde: &l.mde,
        kind,
        rgb: l.rgb.as_deref(),
    };
    let mut rows: Vec<Row> = vec![];
    for &hide in hides {
        for &m in methods {
            rows.push(holdout(m, inputs, &l.depth, truth.as_ref(), hide, fraction, o)?);
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
pub fn run_simulate(scene: &Path, index: usize, out: &Path, seed: u64) -> Result<()> {
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
    let truth = Map {
        width: truth.width,
        height: truth.height,
        data: truth.data,
    };
    let sim = simulate(&truth, rgb.as_raw(), seed);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_map(&out.join("truth.npy"), &sim.truth)?;
    write_map(&out.join("mde.npy"), &sim.mde)?;
    write_map(&out.join("colmap.bin"), &sim.colmap)?;
    crate::data::indoor6::save_image_atomic(&rgb, &out.join("image.png"), image::ImageFormat::Png)?;
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

/// Visibility labels from one depth source compared with the truth's.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct LabelStats {
    /// Landmark–image pairs projecting inside the image.
    pub pairs: usize,
    /// Labelled as the true depth labels them.
    pub correct: usize,
    /// Left unverified (no depth at the pixel).
    pub unverified: usize,
    /// Labelled the opposite way.
    pub wrong: usize,
}

/// Result of [`label_study`].
#[derive(Debug, Serialize)]
pub struct LabelStudy {
    /// Images used.
    pub images: usize,
    /// Landmarks used.
    pub landmarks: usize,
    /// Labels from the COLMAP-like depth with holes.
    pub raw: LabelStats,
    /// Labels from the filled depth.
    pub filled: LabelStats,
    /// Hold-out errors of the fill against the truth at the holes, pooled.
    pub fill_vs_truth: Metrics,
}

/// Simulates COLMAP-like depth and MDE for `images` images of a rendered
/// scene, fills the holes with `method`, and counts correct visibility
/// labels (tolerance `tol`) with raw vs filled depth, against labels from
/// the true depth; landmarks are up to `landmarks` points of the scene's
/// point cloud.
pub fn label_study(
    scene: &Path,
    images: usize,
    landmarks: usize,
    method: Method,
    tol: f64,
    o: &FitOptions,
) -> Result<LabelStudy> {
    let s = SceneDir::open(scene)?;
    let points = s.points()?;
    ensure!(
        !points.is_empty(),
        "{} has no points3d.txt points",
        scene.display()
    );
    let step = points.len().div_ceil(landmarks.max(1));
    let lm: Vec<[f64; 3]> = points.iter().step_by(step).map(|p| p.xyz).collect();
    let n = images.min(s.images.len());
    let (mut raw, mut filled) = (LabelStats::default(), LabelStats::default());
    let mut pred_all = vec![];
    let mut truth_all = vec![];
    let bar = crate::progress::bar(n, true, "labels {bar:30} {pos}/{len} images {eta}");
    for i in 0..n {
        let Some(t) = s.depth(i)? else { continue };
        let im = &s.images[i];
        let rgb = im.read_rgb()?;
        let truth = Map {
            width: t.width,
            height: t.height,
            data: t.data.clone(),
        };
        let sim = simulate(&truth, rgb.as_raw(), o.seed ^ i as u64);
        let loaded = Loaded {
            mde: sim.mde.clone(),
            depth: sim.colmap.clone(),
            rgb: Some(rgb.into_raw()),
        };
        let (f, _) = fill(&loaded, MdeKind::Disparity, method, o)?;
        for (k, (&c, &p)) in sim.colmap.data.iter().zip(&f.data).enumerate() {
            if !c.is_finite() {
                pred_all.push(p);
                truth_all.push(sim.truth.data[k]);
            }
        }
        let dm = |m: &Map| DepthMap {
            width: m.width,
            height: m.height,
            data: m.data.clone(),
        };
        let (dt, dr, df) = (dm(&sim.truth), dm(&sim.colmap), dm(&f));
        for x in &lm {
            let (vt, px) = visibility(*x, &im.pose, &im.camera, Some(&dt), tol, 0.1);
            let inside = px.is_some_and(|p| {
                p[0] >= -0.5
                    && p[1] >= -0.5
                    && p[0] < im.camera.width as f64 - 0.5
                    && p[1] < im.camera.height as f64 - 0.5
            });
            // Only pairs the true depth decides (in the image, depth known).
            if !inside || vt == Visible::Unverified {
                continue;
            }
            for (stats, d) in [(&mut raw, &dr), (&mut filled, &df)] {
                stats.pairs += 1;
                match visibility(*x, &im.pose, &im.camera, Some(d), tol, 0.1).0 {
                    v if v == vt => stats.correct += 1,
                    Visible::Unverified => stats.unverified += 1,
                    _ => stats.wrong += 1,
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(LabelStudy {
        images: n,
        landmarks: lm.len(),
        raw,
        filled,
        fill_vs_truth: metrics(&pred_all, &truth_all),
    })
}

/// `sld depth labels`.
pub fn run_labels(
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
