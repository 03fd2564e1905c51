//! [`Localizer`]: bytes of one `.sld` model + an image → camera pose.
//!
//! `Localizer::new` loads and validates the model and allocates every
//! buffer the per-frame path needs (activation arena, im2col scratch,
//! detections, PnP scratch). [`Localizer::localize`] then runs
//! preprocess → CNN → decode → PnP without touching the allocator.

use alloc::vec::Vec;
use core::fmt;

use crate::camera::{Camera, CameraError};
use crate::gate::{Gate, GateFailure, PoseQuality};
use crate::heatmap::{self, DecodeError, DecodeOptions, Detection, HeatmapShape, Refinement};
use crate::image::{resize_normalize, Image};
use crate::model::{HeatmapKind, Model, ModelError, ModelInfo};
use crate::nn::{self, NnError};
use crate::pnp::{PnpError, PnpOptions, PnpSolver};
use crate::pose::Pose;

/// Time spent in each stage of one [`Localizer::localize`] call, in
/// microseconds (zero without the `std` feature, which provides the clock).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    /// Resize + normalise.
    pub preprocess_us: f64,
    /// Network forward pass.
    pub cnn_us: f64,
    /// Heatmap decoding.
    pub decode_us: f64,
    /// Robust PnP.
    pub pnp_us: f64,
}

/// Result of localising one image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Localization {
    /// World-to-camera pose of the camera that took the image.
    pub pose: Pose,
    /// PnP inliers.
    pub inliers: usize,
    /// Detections passed to PnP (heatmap peaks above the threshold).
    pub detections: usize,
    /// The evidence behind the pose (what [`Localizer::gate`] judged).
    pub quality: PoseQuality,
    /// Per-stage timings.
    pub times: StageTimes,
}

/// Why an image could not be localised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LocalizeError {
    /// The camera is invalid or does not describe an image of this size.
    Camera(CameraError),
    /// The camera's width/height differ from the image's.
    CameraSizeMismatch,
    /// The network could not run (buffer sizes; cannot happen after `new`).
    Network(NnError),
    /// Decoding failed (non-finite heatmaps).
    Decode(DecodeError),
    /// No pose (too few detections, no consensus, degenerate geometry).
    Pnp(PnpError),
    /// PnP found a pose, but the evidence for it fails [`Localizer::gate`]:
    /// no pose is returned. The pose and its quality are here for
    /// diagnostics only; do not act on them.
    Unreliable {
        /// The rejected pose (world-to-camera).
        pose: Pose,
        /// Its evidence.
        quality: PoseQuality,
        /// The first threshold it failed.
        failed: GateFailure,
    },
}

impl fmt::Display for LocalizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Camera(e) => write!(f, "camera: {e}"),
            Self::CameraSizeMismatch => f.write_str("camera width/height differ from the image's"),
            Self::Network(e) => write!(f, "network: {e}"),
            Self::Decode(e) => write!(f, "heatmap decoding: {e}"),
            Self::Pnp(e) => write!(f, "pose: {e}"),
            Self::Unreliable { quality: q, failed, .. } => write!(
                f,
                "pose rejected as unreliable: {failed} ({} inliers of {} detections, {} landmarks expected in view)",
                q.inliers, q.detections, q.expected_visible
            ),
        }
    }
}

impl core::error::Error for LocalizeError {}

/// A loaded model with all per-frame memory reserved.
#[derive(Debug)]
pub struct Localizer<B: AsRef<[u8]>> {
    model: Model<B>,
    arena: Vec<f32>,
    scratch: Vec<f32>,
    detections: Vec<Detection>,
    p2d: Vec<[f64; 2]>,
    p3d: Vec<[f64; 3]>,
    conf: Vec<f64>,
    inlier_mask: Vec<bool>,
    pnp: PnpSolver,
    /// Thresholds a pose must meet to be returned (default: the calibrated
    /// [`Gate::default`]; [`Gate::OFF`] returns every pose PnP finds).
    pub gate: Gate,
    /// Heatmap decoding options (stride from the model; threshold and
    /// refinement from its [`HeatmapKind`]: 0.2 and a Gaussian fit for
    /// heatmaps; for logits every peak, parabola fit, then
    /// [`Localizer::presence_threshold`]).
    pub decode: DecodeOptions,
    /// [`HeatmapKind::Logits`] models: a peak is a detection when the
    /// probability that its landmark is in the image
    /// ([`heatmap::presence`]) is at least this (default 0.5); that
    /// probability is the detection's confidence.
    pub presence_threshold: f32,
    last_times: StageTimes,
    last_detections: usize,
    last_quality: Option<PoseQuality>,
    #[cfg(feature = "std")]
    pool: Option<nn::Pool>,
}

/// Why [`Localizer::set_threads`] failed (the Localizer keeps its threads).
#[cfg(feature = "std")]
#[derive(Debug)]
pub enum ThreadsError {
    /// The count is 0 or above [`nn::pool::MAX_THREADS`].
    OutOfRange(usize),
    /// The scratch for the threads could not be reserved.
    OutOfMemory,
    /// The system refused a thread.
    Spawn(std::io::Error),
}

#[cfg(feature = "std")]
impl fmt::Display for ThreadsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange(n) => write!(f, "{n} threads: must be 1 to {}", nn::pool::MAX_THREADS),
            Self::OutOfMemory => f.write_str("out of memory reserving the threads' scratch"),
            Self::Spawn(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ThreadsError {}

impl<B: AsRef<[u8]>> Localizer<B> {
    /// Loads `bytes` (a `.sld` file; `&[u8]` reads weights in place) with
    /// default PnP options.
    pub fn new(bytes: B) -> Result<Self, ModelError> {
        Self::with_options(bytes, PnpOptions::default())
    }

    /// Loads `bytes` with the given PnP options.
    pub fn with_options(bytes: B, pnp: PnpOptions) -> Result<Self, ModelError> {
        let model = Model::load(bytes)?;
        let plan = model.plan();
        let l = model.landmarks().len();
        // Every buffer through `try_reserve`: a failed allocation is an
        // error the caller (a C program) can handle, not an abort.
        Ok(Self {
            arena: try_filled(plan.arena_len, 0.0)?,
            scratch: try_filled(plan.scratch_len, 0.0)?,
            detections: try_filled(l, Detection::default())?,
            p2d: try_filled(l, [0.0; 2])?,
            p3d: try_filled(l, [0.0; 3])?,
            conf: try_filled(l, 0.0)?,
            inlier_mask: try_filled(l, false)?,
            gate: Gate::default(),
            pnp: PnpSolver::try_with_capacity(pnp, l).map_err(|_| ModelError::OutOfMemory {
                bytes: l.saturating_mul(core::mem::size_of::<crate::pnp::PointScratch>()),
            })?,
            decode: decode_options(model.info()),
            presence_threshold: 0.5,
            last_times: StageTimes::default(),
            last_detections: 0,
            last_quality: None,
            #[cfg(feature = "std")]
            pool: None,
            model,
        })
    }

    /// Runs the network on `threads` threads (1, the default, is the
    /// calling thread alone). The pool of `threads − 1` workers and a
    /// scratch per thread are created here, so `localize` still never
    /// allocates; the workers sleep between frames. Results are
    /// bit-identical whatever the count (the work is split by output
    /// rows and channels, each computed as with one thread).
    #[cfg(feature = "std")]
    pub fn set_threads(&mut self, threads: usize) -> Result<(), ThreadsError> {
        if !(1..=nn::pool::MAX_THREADS).contains(&threads) {
            return Err(ThreadsError::OutOfRange(threads));
        }
        let want = self.model.plan().scratch_len.saturating_mul(threads);
        if want > self.scratch.len() {
            self.scratch
                .try_reserve_exact(want - self.scratch.len())
                .map_err(|_| ThreadsError::OutOfMemory)?;
            self.scratch.resize(want, 0.0);
        }
        self.pool = match threads {
            1 => None,
            n => Some(nn::Pool::new(n).map_err(ThreadsError::Spawn)?),
        };
        Ok(())
    }

    /// Threads the network runs on ([`Localizer::set_threads`]).
    pub fn threads(&self) -> usize {
        #[cfg(feature = "std")]
        if let Some(p) = &self.pool {
            return p.threads();
        }
        1
    }

    /// Stage timings of the last [`Localizer::localize`] call, also when it
    /// failed (stages not reached are 0).
    pub fn last_times(&self) -> StageTimes {
        self.last_times
    }

    /// Detections of the last [`Localizer::localize`] call (landmark id,
    /// position in **network-input** pixels, confidence), also when PnP
    /// failed; empty before the first call.
    pub fn last_detections(&self) -> &[Detection] {
        self.detections.get(..self.last_detections).unwrap_or(&[])
    }

    /// Forgets the last call's detections and stage times (a caller whose
    /// own checks rejected a frame before [`Localizer::localize`] ran).
    pub fn clear_last(&mut self) {
        self.last_times = StageTimes::default();
        self.last_detections = 0;
        self.last_quality = None;
    }

    /// The evidence behind the last call's pose: `Some` when PnP found one,
    /// whether [`Localizer::gate`] accepted it or not; `None` otherwise.
    pub fn last_quality(&self) -> Option<PoseQuality> {
        self.last_quality
    }

    /// The loaded model.
    pub fn model(&self) -> &Model<B> {
        &self.model
    }

    /// Bytes of per-frame working memory reserved at load.
    pub fn arena_bytes(&self) -> usize {
        4 * (self.arena.len() + self.scratch.len())
    }

    /// Runs only the network on `image`; returns the heatmap stack
    /// `[L, H, W]` split per output head (for inspection and tests).
    pub fn heatmaps(&mut self, image: &Image<'_>) -> Result<HeatmapShape, LocalizeError> {
        self.preprocess(image);
        self.run_network()?;
        let [h, w] = self.model.plan().heatmap_hw;
        Ok(HeatmapShape {
            landmarks: self.model.landmarks().len(),
            height: h,
            width: w,
        })
    }

    /// The `k`-th output head's heatmaps after [`Localizer::heatmaps`] or
    /// [`Localizer::localize`].
    pub fn head_output(&self, k: usize) -> Option<&[f32]> {
        nn::output(self.model.plan(), &self.arena, k)
    }

    fn preprocess(&mut self, image: &Image<'_>) {
        let plan = self.model.plan();
        let spec = &self.model.info().graph.input;
        if let Some(input) = nn::input_mut(plan, &mut self.arena) {
            resize_normalize(
                image,
                spec.width as usize,
                spec.height as usize,
                &spec.mean,
                &spec.std,
                input,
            );
            let (c, w, h) = (spec.channels as usize, spec.width as usize, spec.height as usize);
            crate::image::normalize(spec.normalize, input, c, w, h, &mut self.scratch);
        }
    }

    fn run_network(&mut self) -> Result<(), LocalizeError> {
        #[cfg(feature = "std")]
        let par = nn::Par::new(self.pool.as_ref());
        #[cfg(not(feature = "std"))]
        let par = nn::Par::SERIAL;
        nn::run_par(
            self.model.plan(),
            self.model.weights(),
            &mut self.arena,
            &mut self.scratch,
            par,
        )
        .map_err(LocalizeError::Network)
    }

    /// Localises one image taken by `camera` (intrinsics of *this* image,
    /// any size; they are scaled to the network input internally).
    pub fn localize(&mut self, image: &Image<'_>, camera: &Camera) -> Result<Localization, LocalizeError> {
        // A call that fails early reports no detections and no times, never
        // the previous frame's.
        self.clear_last();
        camera.validate().map_err(LocalizeError::Camera)?;
        if camera.width != image.width() || camera.height != image.height() {
            return Err(LocalizeError::CameraSizeMismatch);
        }
        let spec = &self.model.info().graph.input;
        let (iw, ih) = (spec.width, spec.height);
        let net_cam = camera
            .scaled(
                iw as f64 / camera.width as f64,
                ih as f64 / camera.height as f64,
                iw,
                ih,
            )
            .map_err(LocalizeError::Camera)?;
        self.last_times = StageTimes::default();
        self.last_detections = 0;
        let mut clock = Clock::start();

        self.preprocess(image);
        self.last_times.preprocess_us = clock.lap();
        self.run_network()?;
        self.last_times.cnn_us = clock.lap();

        // Decode every head; landmark ids continue across heads.
        let plan = self.model.plan();
        let [h, w] = plan.heatmap_hw;
        let logits = self.model.info().heatmaps == HeatmapKind::Logits;
        let mut n = 0;
        let mut first = 0;
        for k in 0..plan.outputs.len() {
            let maps = nn::output(plan, &self.arena, k).unwrap_or(&[]);
            let lk = plan.tensors[plan.outputs[k]].shape[0];
            let shape = HeatmapShape {
                landmarks: lk,
                height: h,
                width: w,
            };
            let got = heatmap::decode(maps, shape, &self.decode, &mut self.detections[n..])
                .map_err(LocalizeError::Decode)?;
            let plane = h * w;
            // presence ≥ p ⇔ Σ eᶻ ≥ p / (1 − p), and Σ eᶻ ≤ cells · e^peak:
            // maps whose peak is below this cannot pass (no exp needed).
            let p = self.presence_threshold;
            let min_peak = libm::logf(p / (1.0 - p)) - libm::logf(plane as f32);
            let mut kept = 0;
            for j in n..n + got {
                let mut d = self.detections[j];
                if logits {
                    if d.confidence < min_peak {
                        continue;
                    }
                    // Confidence: the probability that the landmark is in
                    // the image; detected when more likely than not.
                    let map = maps.get(d.landmark as usize * plane..(d.landmark as usize + 1) * plane);
                    let p = map.map_or(0.0, heatmap::presence);
                    if !(p >= self.presence_threshold) {
                        continue;
                    }
                    d.confidence = p;
                }
                d.landmark += first as u32;
                self.detections[n + kept] = d;
                kept += 1;
            }
            n += kept;
            first += lk;
        }
        let landmarks = self.model.landmarks();
        for (k, d) in self.detections[..n].iter().enumerate() {
            self.p2d[k] = [d.u as f64, d.v as f64];
            self.p3d[k] = landmarks[d.landmark as usize];
            self.conf[k] = d.confidence as f64;
        }
        self.last_detections = n;
        self.last_times.decode_us = clock.lap();
        let sol = self.pnp.solve(
            &self.p2d[..n],
            &self.p3d[..n],
            Some(&self.conf[..n]),
            &net_cam,
            Some(&mut self.inlier_mask[..n]),
        );
        let sol = sol.map_err(|e| {
            self.last_times.pnp_us = clock.lap();
            LocalizeError::Pnp(e)
        })?;
        let quality = self.quality(&sol.pose, sol.inliers, sol.rms_px, n, &net_cam);
        self.last_times.pnp_us = clock.lap();
        self.last_quality = Some(quality);
        if let Err(failed) = self.gate.check(&quality) {
            return Err(LocalizeError::Unreliable {
                pose: sol.pose,
                quality,
                failed,
            });
        }
        Ok(Localization {
            pose: sol.pose,
            inliers: sol.inliers,
            detections: n,
            quality,
            times: self.last_times,
        })
    }

    /// The evidence behind `pose`, found by PnP with `inliers` of the `n`
    /// detections (marked in `self.inlier_mask`) seen through `cam` (the
    /// network-input camera).
    fn quality(&self, pose: &Pose, inliers: usize, rms_px: f64, n: usize, cam: &Camera) -> PoseQuality {
        let inlier_confidence: f64 = self.conf[..n]
            .iter()
            .zip(&self.inlier_mask[..n])
            .filter(|(_, &m)| m)
            .map(|(c, _)| c)
            .sum();
        let (w, h) = (cam.width as f64, cam.height as f64);
        let expected_visible = self
            .model
            .landmarks()
            .iter()
            .filter(|x| {
                let pc = pose.transform(&nalgebra::Vector3::from(**x));
                pc[2] > 1e-6
                    && cam
                        .project([pc[0], pc[1], pc[2]])
                        .is_ok_and(|p| p[0] >= -0.5 && p[1] >= -0.5 && p[0] < w - 0.5 && p[1] < h - 0.5)
            })
            .count();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
        PoseQuality {
            inliers: inliers as u32,
            detections: n as u32,
            inlier_ratio: ratio(inliers, n),
            inlier_confidence: inlier_confidence as f32,
            expected_visible: expected_visible as u32,
            visible_fraction: ratio(inliers, expected_visible),
            rms_px: rms_px as f32,
        }
    }
}

/// `n` copies of `v` in a vector reserved with `try_reserve_exact`.
fn try_filled<T: Clone>(n: usize, v: T) -> Result<Vec<T>, ModelError> {
    let mut x = Vec::new();
    x.try_reserve_exact(n).map_err(|_| ModelError::OutOfMemory {
        bytes: n.saturating_mul(core::mem::size_of::<T>()),
    })?;
    x.resize(n, v);
    Ok(x)
}

/// Decoding options matching what `info`'s output maps hold.
pub fn decode_options(info: &ModelInfo) -> DecodeOptions {
    let mut d = DecodeOptions::for_stride(info.stride as f32);
    if info.heatmaps == HeatmapKind::Logits {
        // Every map's peak; the Localizer keeps those likely present.
        d.threshold = f32::MIN;
        d.refinement = Refinement::Parabola;
    }
    d
}

/// Stage clock: `std::time::Instant` with `std`, nothing without.
struct Clock {
    #[cfg(feature = "std")]
    last: std::time::Instant,
}

impl Clock {
    fn start() -> Self {
        Self {
            #[cfg(feature = "std")]
            last: std::time::Instant::now(),
        }
    }

    /// Microseconds since the last lap (0 without `std`).
    fn lap(&mut self) -> f64 {
        #[cfg(feature = "std")]
        {
            let now = std::time::Instant::now();
            let us = (now - self.last).as_secs_f64() * 1e6;
            self.last = now;
            us
        }
        #[cfg(not(feature = "std"))]
        {
            0.0
        }
    }
}
