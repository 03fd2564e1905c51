//! `sld pnp`: solve a batch of PnP problems from JSON (for benchmarks and
//! for checking the solver against other tools on the same files).
//!
//! Input: `{"cases": [{"camera": {"width", "height", "fx", "fy", "cx", "cy"},
//! "points2d": [[u, v], ...], "points3d": [[x, y, z], ...],
//! "confidence": [c, ...]}, ...]}` — pixels in the pixel-centre convention,
//! metres, world-to-camera output. Unknown keys are ignored.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sld_core::pnp::{PnpOptions, PnpSolver, Sampling};
use sld_core::Camera;

/// One camera as given in the input file (pixels).
#[derive(Debug, Deserialize)]
pub struct CameraJson {
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// Focal lengths, pixels.
    pub fx: f64,
    /// Vertical focal length, pixels.
    pub fy: f64,
    /// Principal point, pixels (pixel-centre convention).
    pub cx: f64,
    /// Principal point, pixels.
    pub cy: f64,
    /// Optional radial coefficient (default 0).
    #[serde(default)]
    pub kappa: f64,
}

/// One PnP problem.
#[derive(Debug, Deserialize)]
pub struct CaseJson {
    /// Intrinsics.
    pub camera: CameraJson,
    /// Observed pixels.
    pub points2d: Vec<[f64; 2]>,
    /// World points, metres.
    pub points3d: Vec<[f64; 3]>,
    /// Optional confidences (≥ 0).
    #[serde(default)]
    pub confidence: Option<Vec<f64>>,
}

/// The input file.
#[derive(Debug, Deserialize)]
pub struct CasesJson {
    /// Problems, solved in order.
    pub cases: Vec<CaseJson>,
}

/// One result line.
#[derive(Debug, Serialize, PartialEq)]
pub struct ResultJson {
    /// True when a pose was found.
    pub ok: bool,
    /// Rotation, row-major (world-to-camera); identity when `ok` is false.
    #[serde(rename = "R")]
    pub r: [[f64; 3]; 3],
    /// Translation, metres.
    pub t: [f64; 3],
    /// Inliers of the returned pose.
    pub inliers: usize,
    /// RANSAC iterations.
    pub iterations: u32,
    /// Solve time of this case, microseconds (around the solve only).
    pub time_us: f64,
    /// Why no pose was returned (absent when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The output file.
#[derive(Debug, Serialize)]
pub struct ResultsJson {
    /// One per input case, in input order.
    pub results: Vec<ResultJson>,
}

/// One case of the input: its camera and data when they are valid, else
/// why not ("case K: field …"), reported as that case's result.
pub type Case = std::result::Result<(Camera, CaseJson), String>;

/// Reads the input file. A file that is not a cases file fails as a whole;
/// a case with a bad field becomes an error of that case alone (the other
/// cases are still solved), naming the case and the field.
pub fn read_cases(path: &Path) -> Result<Vec<Case>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed: CasesJson = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid PnP cases file", path.display()))?;
    Ok(parsed
        .cases
        .into_iter()
        .enumerate()
        .map(|(i, case)| check_case(case).map_err(|e| format!("case {i}: {e}")))
        .collect())
}

/// Checks one case: camera, lengths, finite values, confidences.
fn check_case(case: CaseJson) -> Result<(Camera, CaseJson)> {
    let c = &case.camera;
    let camera = Camera::new(c.width, c.height, c.fx, c.fy, c.cx, c.cy, c.kappa)
        .map_err(|e| anyhow::anyhow!("field \"camera\": {e}"))?;
    let n = case.points2d.len();
    if case.points3d.len() != n {
        bail!(
            "field \"points3d\" has {} entries, \"points2d\" has {n}",
            case.points3d.len()
        );
    }
    if let Some(conf) = &case.confidence {
        if conf.len() != n {
            bail!(
                "field \"confidence\" has {} entries, \"points2d\" has {n}",
                conf.len()
            );
        }
        if let Some(k) = conf.iter().position(|c| !(c.is_finite() && *c >= 0.0)) {
            bail!("field \"confidence\"[{k}] must be finite and >= 0");
        }
    }
    if let Some(k) = case
        .points2d
        .iter()
        .position(|p| !p.iter().all(|v| v.is_finite()))
    {
        bail!("field \"points2d\"[{k}] is not finite");
    }
    if let Some(k) = case
        .points3d
        .iter()
        .position(|p| !p.iter().all(|v| v.is_finite()))
    {
        bail!("field \"points3d\"[{k}] is not finite");
    }
    Ok((camera, case))
}

/// The result of a case that could not be attempted.
fn failed(error: String, time_us: f64) -> ResultJson {
    ResultJson {
        ok: false,
        r: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        t: [0.0; 3],
        inliers: 0,
        iterations: 0,
        time_us,
        error: Some(error),
    }
}

/// Solves every case; a case without a pose is reported with `ok: false`
/// and the reason, never dropped.
pub fn solve_cases(cases: &[Case], options: PnpOptions) -> Vec<ResultJson> {
    let max_n = cases
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .map(|(_, c)| c.points2d.len())
        .max()
        .unwrap_or(0);
    let mut solver = PnpSolver::with_capacity(options, max_n);
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let (camera, case) = match case {
            Ok(c) => c,
            Err(e) => {
                results.push(failed(e.clone(), 0.0));
                continue;
            }
        };
        let conf = case.confidence.as_deref();
        let start = Instant::now();
        let res = solver.solve(&case.points2d, &case.points3d, conf, camera, None);
        let time_us = start.elapsed().as_secs_f64() * 1e6;
        results.push(match res {
            Ok(s) => {
                let rows = s.pose.to_rows();
                ResultJson {
                    ok: true,
                    r: [
                        [rows[0][0], rows[0][1], rows[0][2]],
                        [rows[1][0], rows[1][1], rows[1][2]],
                        [rows[2][0], rows[2][1], rows[2][2]],
                    ],
                    t: [rows[0][3], rows[1][3], rows[2][3]],
                    inliers: s.inliers,
                    iterations: s.iterations,
                    time_us,
                    error: None,
                }
            }
            Err(e) => failed(e.to_string(), time_us),
        });
    }
    results
}

/// Parses a sampling name for the command line.
pub fn parse_sampling(s: &str) -> Result<Sampling, String> {
    match s {
        "prosac" => Ok(Sampling::Prosac),
        "uniform" => Ok(Sampling::Uniform),
        "weighted" => Ok(Sampling::Weighted),
        _ => Err(format!("unknown sampling '{s}' (prosac, uniform, weighted)")),
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// JSON file with the cases.
    #[arg(long, short)]
    pub input: PathBuf,
    /// Where to write the results JSON.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Inlier threshold on the reprojection error, pixels.
    #[arg(long, default_value_t = 8.0)]
    pub max_reproj_px: f64,
    /// Seed of the RANSAC sampler (results are deterministic for a seed).
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// Minimal-sample selection: prosac (by confidence), weighted, uniform.
    #[arg(long, default_value = "prosac", value_parser = parse_sampling)]
    pub sampling: Sampling,
    /// Maximum RANSAC iterations.
    #[arg(long, default_value_t = 10_000)]
    pub max_iterations: u32,
    /// Minimum RANSAC iterations before adaptive termination may stop.
    #[arg(long, default_value_t = PnpOptions::default().ransac.min_iterations)]
    pub min_iterations: u32,
    /// Stop scoring a model once it is worse than the best minimal model
    /// (experiments; off by default).
    #[arg(long)]
    pub early_exit: bool,
    /// Local optimisation's wide pass: threshold multiplier (<= 1 disables).
    #[arg(long, default_value_t = PnpOptions::default().lo_wide_factor)]
    pub lo_wide_factor: f64,
    /// PROSAC horizon T_N: samples after which PROSAC samples uniformly.
    #[arg(long, default_value_t = PnpOptions::default().prosac_horizon)]
    pub prosac_horizon: u32,
    /// Disable PROSAC's early stop on the pool's inlier ratio (experiments).
    #[arg(long)]
    pub no_progressive_stop: bool,
    /// Levenberg–Marquardt iterations of each local optimisation.
    #[arg(long, default_value_t = PnpOptions::default().lo_iterations)]
    pub lo_iterations: u32,
}

/// Runs `sld pnp`.
pub fn run(args: Args) -> Result<()> {
    let cases = read_cases(&args.input)?;
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
    let results = solve_cases(&cases, options);
    let solved = results.iter().filter(|r| r.ok).count();
    let json = serde_json::to_string(&ResultsJson { results })?;
    sld_train::io::atomic::write_atomic(&args.output, json.as_bytes())?;
    eprintln!(
        "sld pnp: {solved}/{} cases solved → {}",
        cases.len(),
        args.output.display()
    );
    Ok(())
}
