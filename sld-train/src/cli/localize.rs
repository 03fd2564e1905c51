//! `sld localize`: run a `.sld` model on image files, one JSON line per image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use sld_core::{Camera, Gate, Image, LocalizeError, Localizer, PixelFormat};

use sld_train::data::indoor6::read_intrinsics;
use sld_train::data::naming::sidecar_intrinsics;

/// Parses `fx,fy,cx,cy[,kappa]` (pixels) for an image of `w × h`.
pub fn parse_camera(spec: &str, w: u32, h: u32) -> Result<Camera> {
    let v = parse_camera_numbers(spec)?;
    Camera::new(w, h, v[0], v[1], v[2], v[3], v.get(4).copied().unwrap_or(0.0))
        .with_context(|| format!("--camera {spec} for a {w}×{h} image"))
}

/// Localises each image; prints one JSON line per image (and, for an image
/// that could not be processed, an `error:` line naming it and the reason
/// on stderr). Returns how many images could not be processed (unreadable,
/// no intrinsics). A `--camera` that cannot describe any image is an error
/// before the first image.
pub fn localize_images(
    model: &Path,
    images: &[PathBuf],
    camera: Option<&str>,
    gate: Gate,
    threads: usize,
) -> Result<usize> {
    if let Some(spec) = camera {
        // Checked once, naming the flag (not once per image).
        parse_camera_numbers(spec)?;
    }
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let mut loc =
        Localizer::new(bytes).map_err(|e| anyhow::anyhow!("{}: not a usable model: {e}", model.display()))?;
    loc.gate = gate;
    loc.set_threads(threads)?;
    let mut failures = 0;
    for path in images {
        let line = match localize_one(&mut loc, path, camera) {
            Ok(v) => v,
            Err(e) => {
                failures += 1;
                eprintln!("error: {}: {e:#}", path.display());
                json!({"image": path.display().to_string(), "ok": false, "error": format!("{e:#}")})
            }
        };
        println!("{line}");
    }
    Ok(failures)
}

/// The numbers of a `--camera fx,fy,cx,cy[,kappa]` value, checked: four or
/// five finite numbers, focal lengths > 0.
fn parse_camera_numbers(spec: &str) -> Result<Vec<f64>> {
    let v: Vec<f64> = spec
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--camera {spec}: expects fx,fy,cx,cy[,kappa] in pixels"))?;
    if !(v.len() == 4 || v.len() == 5) {
        bail!(
            "--camera {spec}: expects 4 or 5 numbers (fx,fy,cx,cy[,kappa]), got {}",
            v.len()
        );
    }
    if !v.iter().all(|x| x.is_finite()) {
        bail!("--camera {spec}: every number must be finite");
    }
    if !(v[0] > 0.0 && v[1] > 0.0) {
        bail!("--camera {spec}: focal lengths fx, fy must be > 0 pixels");
    }
    Ok(v)
}

fn localize_one(
    loc: &mut Localizer<Vec<u8>>,
    path: &Path,
    camera: Option<&str>,
) -> Result<serde_json::Value> {
    let img = sld_train::io::image_file::read_rgb(path)?;
    let (w, h) = img.dimensions();
    let cam = match camera {
        Some(spec) => parse_camera(spec, w, h)?,
        None => {
            let side = sidecar_intrinsics(path);
            if !side.exists() {
                bail!(
                    "no --camera given and no intrinsics file {} next to the image",
                    side.display()
                );
            }
            let c = read_intrinsics(&side)
                .with_context(|| format!("{}: invalid intrinsics file", side.display()))?
                .camera;
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
                "quality": r.quality,
                "times_us": {"preprocess": r.times.preprocess_us, "cnn": r.times.cnn_us,
                             "decode": r.times.decode_us, "pnp": r.times.pnp_us},
            })
        }
        Err(e) => {
            let t = loc.last_times();
            let quality = match &e {
                LocalizeError::Unreliable { quality, .. } => Some(*quality),
                _ => None,
            };
            json!({"image": name, "ok": false, "error": e.to_string(), "quality": quality,
                   "times_us": {"preprocess": t.preprocess_us, "cnn": t.cnn_us,
                                "decode": t.decode_us, "pnp": t.pnp_us}})
        }
    })
}

#[derive(clap::Args)]
pub struct Args {
    /// The `.sld` model file.
    #[arg(long, short)]
    pub model: PathBuf,
    /// Intrinsics of the images as fx,fy,cx,cy[,kappa] in pixels
    /// (pixel-centre convention); default: Indoor6 sidecar files.
    #[arg(long, allow_hyphen_values = true, value_name = "FX,FY,CX,CY[,KAPPA]")]
    pub camera: Option<String>,
    /// Images (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub gate: super::args::GateArgs,
    /// Threads the network is split over (same results for any count).
    #[arg(value_parser = super::args::int_in::<usize>(1, 16), long, default_value_t = 1)]
    pub threads: usize,
}

/// Runs `sld localize`.
pub fn run(a: Args) -> Result<()> {
    let failed = localize_images(
        &a.model,
        &a.images,
        a.camera.as_deref(),
        a.gate.gate()?,
        a.threads,
    )?;
    if failed > 0 {
        bail!("{failed} of {} images could not be processed", a.images.len())
    }
    Ok(())
}
