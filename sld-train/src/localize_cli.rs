//! `sld localize` and `sld model`: run a `.sld` model on image files, and
//! create or inspect model files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use sld_core::{Camera, Image, Localizer, PixelFormat};

use crate::export::to_sld_bytes;
use crate::net::builder::{aspp_head, efficientnet_lite0_s8, GraphBuilder};

/// Reads an Indoor6 intrinsics line `W H f cx cy kappa [name]`.
pub fn read_intrinsics(path: &Path) -> Result<Camera> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: Vec<f64> = text
        .split_whitespace()
        .take(6)
        .map(|t| t.parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: expected 'W H f cx cy kappa'", path.display()))?;
    if v.len() < 5 {
        bail!(
            "{}: expected 'W H f cx cy kappa', found {} numbers",
            path.display(),
            v.len()
        );
    }
    Camera::new(
        v[0] as u32,
        v[1] as u32,
        v[2],
        v[2],
        v[3],
        v[4],
        v.get(5).copied().unwrap_or(0.0),
    )
    .with_context(|| format!("{}: invalid intrinsics", path.display()))
}

/// The Indoor6 sidecar of an image: `NAME.color.jpg` → `NAME.intrinsics.txt`.
pub fn sidecar_intrinsics(image: &Path) -> PathBuf {
    let name = image.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = name.split(".color.").next().unwrap_or(name);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    image.with_file_name(format!("{stem}.intrinsics.txt"))
}

/// Parses `fx,fy,cx,cy[,kappa]` (pixels) for an image of `w × h`.
pub fn parse_camera(spec: &str, w: u32, h: u32) -> Result<Camera> {
    let v: Vec<f64> = spec
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .context("--camera expects fx,fy,cx,cy[,kappa] in pixels")?;
    if !(v.len() == 4 || v.len() == 5) {
        bail!("--camera expects 4 or 5 numbers, got {}", v.len());
    }
    Ok(Camera::new(
        w,
        h,
        v[0],
        v[1],
        v[2],
        v[3],
        v.get(4).copied().unwrap_or(0.0),
    )?)
}

/// Localises each image; prints one JSON line per image. Returns how many
/// images could not be processed (unreadable, no intrinsics).
pub fn localize_images(model: &Path, images: &[PathBuf], camera: Option<&str>) -> Result<usize> {
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let mut loc =
        Localizer::new(bytes).with_context(|| format!("{}: not a usable model", model.display()))?;
    let mut failures = 0;
    for path in images {
        let line = match localize_one(&mut loc, path, camera) {
            Ok(v) => v,
            Err(e) => {
                failures += 1;
                json!({"image": path.display().to_string(), "ok": false, "error": format!("{e:#}")})
            }
        };
        println!("{line}");
    }
    Ok(failures)
}

fn localize_one(
    loc: &mut Localizer<Vec<u8>>,
    path: &Path,
    camera: Option<&str>,
) -> Result<serde_json::Value> {
    let img = image::open(path)
        .with_context(|| format!("cannot decode {}", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let cam = match camera {
        Some(spec) => parse_camera(spec, w, h)?,
        None => {
            let c = read_intrinsics(&sidecar_intrinsics(path))
                .context("no --camera given and no Indoor6 intrinsics file next to the image")?;
            // Indoor6 intrinsics describe the stored image; rescale if needed.
            if (c.width, c.height) != (w, h) {
                c.scaled(w as f64 / c.width as f64, h as f64 / c.height as f64, w, h)?
            } else {
                c
            }
        }
    };
    let image = Image::new(w, h, 3 * w as usize, PixelFormat::Rgb8, img.as_raw())?;
    let name = path.display().to_string();
    Ok(match loc.localize(&image, &cam) {
        Ok(r) => {
            let rows = r.pose.to_rows();
            json!({
                "image": name, "ok": true,
                "R": [&rows[0][..3], &rows[1][..3], &rows[2][..3]],
                "t": [rows[0][3], rows[1][3], rows[2][3]],
                "inliers": r.inliers, "detections": r.detections,
                "times_us": {"preprocess": r.times.preprocess_us, "cnn": r.times.cnn_us,
                             "decode": r.times.decode_us, "pnp": r.times.pnp_us},
            })
        }
        Err(e) => {
            let t = loc.last_times();
            json!({"image": name, "ok": false, "error": e.to_string(),
                   "times_us": {"preprocess": t.preprocess_us, "cnn": t.cnn_us,
                                "decode": t.decode_us, "pnp": t.pnp_us}})
        }
    })
}

/// Writes a model with random weights (for benchmarks and plumbing tests):
/// EfficientNet-Lite0 at stride 8 + SLD*'s ASPP head.
pub fn write_random_model(
    out: &Path,
    landmarks: usize,
    width: usize,
    height: usize,
    seed: u64,
) -> Result<()> {
    let mut b = GraphBuilder::new(3, height, width, seed);
    let trunk = efficientnet_lite0_s8(&mut b);
    let head = aspp_head(&mut b, "head", &trunk, 80, landmarks);
    let (info, tensors) = b.finish(&[&head], 8, "random");
    // Landmarks spread through a 4 × 3 × 4 m box (not collinear, so PnP runs).
    let mut rng = sld_core::rng::SplitMix64::new(seed ^ 0x1a4d);
    let mut u = |s: f64| ((rng.unit_f64() - 0.5) * s) as f32;
    let lm: Vec<[f32; 3]> = (0..landmarks).map(|_| [u(4.0), u(3.0), 2.0 + u(4.0)]).collect();
    let bytes = to_sld_bytes(&info, &tensors, &lm)?;
    let tmp = out.with_extension("sld.tmp");
    std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// A human-readable summary of a model file.
pub fn describe(model: &Path) -> Result<String> {
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let size = bytes.len();
    let m =
        sld_core::model::Model::load(bytes).with_context(|| format!("{}: invalid model", model.display()))?;
    let i = m.info();
    let p = m.plan();
    Ok(format!(
        "scene          {}\nformat         version {}\ninput          {}x{}x{}\nstride         {}\n\
         landmarks      {}\nheads          {}\nlayers         {}\nfile           {:.1} MB\n\
         working memory {:.1} MB (arena {:.1} MB + scratch {:.1} MB)\nprovenance     {} {}",
        i.scene,
        sld_core::model::FORMAT_VERSION,
        i.graph.input.width,
        i.graph.input.height,
        i.graph.input.channels,
        i.stride,
        i.landmarks,
        i.graph.outputs.len(),
        i.graph.layers.len(),
        size as f64 / 1e6,
        p.memory_bytes() as f64 / 1e6,
        4.0 * p.arena_len as f64 / 1e6,
        4.0 * p.scratch_len as f64 / 1e6,
        i.provenance.date,
        i.provenance.command
    ))
}

/// Runs the network on a raw f32 `[C, H, W]` input file, writes the raw
/// f32 heatmaps, returns the median forward time in milliseconds.
pub fn forward_raw(model: &Path, input: &Path, output: &Path, repeats: usize) -> Result<f64> {
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let m =
        sld_core::model::Model::load(bytes).with_context(|| format!("{}: invalid model", model.display()))?;
    let plan = m.plan();
    let raw = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let need = plan.tensors[0].len();
    if raw.len() != 4 * need {
        bail!(
            "{}: {} bytes, the model input needs {} f32 ({:?})",
            input.display(),
            raw.len(),
            need,
            plan.tensors[0].shape
        );
    }
    let x: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len];
    let mut times = Vec::with_capacity(repeats);
    for run in 0..=repeats {
        let t = std::time::Instant::now();
        sld_core::nn::input_mut(plan, &mut arena)
            .context("arena")?
            .copy_from_slice(&x);
        sld_core::nn::run(plan, m.weights(), &mut arena, &mut scratch)?;
        if run > 0 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut out = Vec::new();
    for k in 0..plan.outputs.len() {
        out.extend(
            sld_core::nn::output(plan, &arena, k)
                .context("output")?
                .iter()
                .flat_map(|v| v.to_le_bytes()),
        );
    }
    crate::data::indoor6::write_atomic(output, &out)?;
    times.sort_by(f64::total_cmp);
    Ok(times.get(times.len() / 2).copied().unwrap_or(f64::NAN))
}
