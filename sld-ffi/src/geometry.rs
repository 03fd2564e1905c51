//! The geometry alone, for stacks that run the CNN on their own
//! accelerator (NPU, TensorRT) and only need heatmap decoding and PnP.
//! Neither allocates per call: decoding writes into the caller's array,
//! and an `SldPnpSolver` reserves its scratch for `capacity` points once.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_char;

use sld_core::heatmap::{DecodeOptions, Detection, HeatmapShape, Refinement};
use sld_core::pnp::PointProblem;
use sld_core::pnp::{PnpOptions, PnpSolver, Sampling};
use sld_core::{DecodeError, PnpError};

use crate::guard::{call, with_handle, ErrorSlot};
use crate::status::{fail, Failure, SldStatus, Text};
use crate::types::{check_room, read, Out, SldCamera, SldDetection, SldPose};

/// Sub-pixel refinement of heatmap peaks (the `refinement` field of
/// [`SldDecodeOptions`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SldRefinement {
    /// The centre of the arg-max cell.
    None = 0,
    /// Mean of cell positions weighted by the values in a square window of
    /// half-width `window_radius` cells (SLD's 9×9 at stride 8: radius 4).
    WeightedMean = 1,
    /// Separable log-parabola fit through the peak and its 4-neighbours
    /// (exact for sampled Gaussians; the default).
    GaussianFit = 2,
    /// Separable parabola fit on the raw values through the peak and its
    /// 4-neighbours (for maps of logits / log-probabilities).
    Parabola = 3,
}

/// Options of `sld_decode_heatmaps`; start from
/// `sld_decode_options_default`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SldDecodeOptions {
    /// Minimum peak value for a detection (default 0.2).
    pub threshold: f32,
    /// Input pixels per heatmap cell (8 for SLD* networks).
    pub stride: f32,
    /// Input-pixel position of cell (0, 0); default `(stride − 1) / 2`, the
    /// centre of the `stride × stride` block the cell covers.
    pub offset: f32,
    /// An `SldRefinement` value.
    pub refinement: u32,
    /// Window half-width in cells for `SLD_REFINEMENT_WEIGHTED_MEAN` (≤ 127).
    pub window_radius: u32,
}

impl SldDecodeOptions {
    fn to_core(self) -> Result<DecodeOptions, Failure> {
        let refinement = match self.refinement {
            0 => Refinement::None,
            1 => Refinement::WeightedMean {
                radius: u8::try_from(self.window_radius)
                    .ok()
                    .filter(|&r| r <= 127)
                    .ok_or_else(|| fail!(InvalidArgument, "window_radius {} > 127", self.window_radius))?,
            },
            2 => Refinement::GaussianFit,
            3 => Refinement::Parabola,
            r => return Err(fail!(InvalidArgument, "refinement {r} is not an SldRefinement")),
        };
        if !(self.threshold.is_finite()
            && self.stride.is_finite()
            && self.stride > 0.0
            && self.offset.is_finite())
        {
            return Err(fail!(
                InvalidArgument,
                "decode options must be finite with stride > 0 (threshold {}, stride {}, offset {})",
                self.threshold,
                self.stride,
                self.offset
            ));
        }
        Ok(DecodeOptions {
            threshold: self.threshold,
            refinement,
            stride: self.stride,
            offset: self.offset,
        })
    }
}

/// Writes the default decode options for heatmaps at `stride` input pixels
/// per cell: threshold 0.2, Gaussian fit, offset `(stride − 1) / 2`.
///
/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn sld_decode_options_default(stride: f32, out: *mut SldDecodeOptions) -> SldStatus {
    call(|| {
        let out = Out::new(out, "out")?;
        if !(stride.is_finite() && stride > 0.0) {
            return Err(fail!(InvalidArgument, "stride {stride} must be finite and > 0"));
        }
        let d = DecodeOptions::for_stride(stride);
        // SAFETY: writable (contract).
        unsafe {
            out.set(SldDecodeOptions {
                threshold: d.threshold,
                stride: d.stride,
                offset: d.offset,
                refinement: SldRefinement::GaussianFit as u32,
                window_radius: 4,
            })
        };
        Ok(())
    })
}

/// Decodes `landmarks` heatmaps of `height × width` cells (`[L, H, W]`
/// floats, row-major, contiguous) into at most one detection per landmark,
/// in landmark order, positions in input pixels. `options` NULL means the
/// defaults for stride 8. `capacity` must be at least `landmarks` (nothing
/// is ever dropped); `*count` receives the number written.
///
/// # Safety
/// `heatmaps` must hold `landmarks × height × width` readable floats; `out`
/// `capacity` writable entries; `count` writable.
#[no_mangle]
pub unsafe extern "C" fn sld_decode_heatmaps(
    heatmaps: *const f32,
    landmarks: usize,
    height: usize,
    width: usize,
    options: *const SldDecodeOptions,
    out: *mut SldDetection,
    capacity: usize,
    count: *mut usize,
) -> SldStatus {
    call(|| {
        let count = Out::new(count, "count")?;
        // SAFETY: writable (contract).
        unsafe { count.set(0) };
        if heatmaps.is_null() {
            return Err(Failure::null("heatmaps"));
        }
        if landmarks == 0 || height == 0 || width == 0 {
            return Err(fail!(
                InvalidArgument,
                "heatmap shape {landmarks}x{height}x{width} has a zero size"
            ));
        }
        let per_map = height.checked_mul(width);
        let total = per_map.and_then(|m| m.checked_mul(landmarks));
        let (Some(per_map), Some(total)) = (per_map, total.filter(|&t| t <= isize::MAX as usize / 4)) else {
            return Err(fail!(
                InvalidArgument,
                "heatmap shape {landmarks}x{height}x{width} overflows"
            ));
        };
        // Room for every landmark, so that nothing is ever dropped.
        check_room(out, "out", capacity, landmarks, "detections")?;
        let opts = match options.is_null() {
            true => DecodeOptions::default(),
            // SAFETY: non-null and valid (contract).
            false => unsafe { read(options, "options") }?.to_core()?,
        };
        if !heatmaps.is_aligned() {
            return Err(fail!(InvalidArgument, "heatmaps is not aligned for float"));
        }
        // SAFETY: non-null, aligned, `total` floats readable (contract),
        // total · 4 ≤ isize::MAX checked above.
        let maps = unsafe { core::slice::from_raw_parts(heatmaps, total) };
        let shape = HeatmapShape {
            landmarks: 1,
            height,
            width,
        };
        let mut n = 0;
        // One map at a time: no buffer of L detections is needed.
        for (l, map) in maps.chunks_exact(per_map).enumerate() {
            let mut one = [Detection::default()];
            let got = sld_core::decode(map, shape, &opts, &mut one).map_err(|e| match e {
                DecodeError::NonFinite { .. } => {
                    fail!(NonFinite, "heatmap of landmark {l} holds a NaN or an infinity")
                }
                other => fail!(InvalidArgument, "{other}"),
            })?;
            if got == 1 {
                let mut d: SldDetection = one[0].into();
                d.landmark = l as u32;
                // SAFETY: n ≤ l < landmarks ≤ capacity.
                unsafe { out.add(n).write(d) };
                n += 1;
            }
        }
        // SAFETY: writable (contract).
        unsafe { count.set(n) };
        Ok(())
    })
}

/// How RANSAC draws minimal samples (the `sampling` field of
/// [`SldPnpOptions`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SldSampling {
    /// Uniform over all correspondences.
    Uniform = 0,
    /// PROSAC over the confidence order (highest first); the default.
    Prosac = 1,
    /// Probability proportional to confidence.
    Weighted = 2,
}

/// Options of an `SldPnpSolver`; start from `sld_pnp_options_default`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SldPnpOptions {
    /// Inlier threshold on the reprojection error, pixels (default 8).
    pub max_reproj_px: f64,
    /// An `SldSampling` value (default PROSAC).
    pub sampling: u32,
    /// Hard cap on RANSAC iterations (default 10000, ≥ 1): bounds the time
    /// of one solve whatever the input.
    pub max_iterations: u32,
    /// Iterations always run before adaptive termination (default 20).
    pub min_iterations: u32,
    /// Fewest inliers accepted (default 4, ≥ 4).
    pub min_inliers: u32,
    /// Required probability of an all-inlier sample (default 0.9999, in (0, 1)).
    pub success_prob: f64,
    /// Seed of the sampler; equal inputs and seeds give equal poses.
    pub seed: u64,
}

impl SldPnpOptions {
    fn from_core(o: &PnpOptions) -> Self {
        Self {
            max_reproj_px: o.max_reproj_px,
            sampling: match o.sampling {
                Sampling::Uniform => 0,
                Sampling::Prosac => 1,
                Sampling::Weighted => 2,
            },
            max_iterations: o.ransac.max_iterations,
            min_iterations: o.ransac.min_iterations,
            min_inliers: o.min_inliers as u32,
            success_prob: o.ransac.success_prob,
            seed: o.seed,
        }
    }

    fn to_core(self) -> Result<PnpOptions, Failure> {
        let sampling = match self.sampling {
            0 => Sampling::Uniform,
            1 => Sampling::Prosac,
            2 => Sampling::Weighted,
            s => return Err(fail!(InvalidArgument, "sampling {s} is not an SldSampling")),
        };
        if !(self.max_reproj_px.is_finite() && self.max_reproj_px > 0.0) {
            return Err(fail!(
                InvalidArgument,
                "max_reproj_px {} must be finite and > 0",
                self.max_reproj_px
            ));
        }
        if self.min_inliers < 4 {
            return Err(fail!(
                InvalidArgument,
                "min_inliers is {}; it must be at least 4",
                self.min_inliers
            ));
        }
        if self.max_iterations == 0 {
            return Err(fail!(
                InvalidArgument,
                "max_iterations is 0; RANSAC needs at least 1"
            ));
        }
        if !(self.success_prob > 0.0 && self.success_prob < 1.0) {
            return Err(fail!(
                InvalidArgument,
                "success_prob {} must lie in (0, 1)",
                self.success_prob
            ));
        }
        let d = PnpOptions::default();
        Ok(PnpOptions {
            sampling,
            max_reproj_px: self.max_reproj_px,
            ransac: sld_core::pnp::ransac::RansacOptions {
                max_iterations: self.max_iterations,
                min_iterations: self.min_iterations.min(self.max_iterations),
                success_prob: self.success_prob,
                ..d.ransac
            },
            min_inliers: self.min_inliers as usize,
            seed: self.seed,
            ..d
        })
    }
}

/// Writes the default PnP options.
///
/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn sld_pnp_options_default(out: *mut SldPnpOptions) -> SldStatus {
    call(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: writable (contract).
        unsafe { out.set(SldPnpOptions::from_core(&PnpOptions::default())) };
        Ok(())
    })
}

/// A PnP solver with scratch for up to `capacity` correspondences (opaque).
/// Use one handle from one thread at a time.
pub struct SldPnpSolver {
    solver: PnpSolver,
    mask: Vec<bool>,
    error: Text,
}

/// Result of `sld_pnp_solve`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SldPnpResult {
    /// The world-to-camera pose.
    pub pose: SldPose,
    /// Inliers of the final pose (reprojection error ≤ the threshold).
    pub inliers: u32,
    /// RANSAC iterations (minimal samples drawn).
    pub iterations: u32,
    /// Root-mean-square reprojection error over the inliers, pixels.
    pub rms_px: f64,
}

/// Creates a solver for up to `capacity` correspondences per call (4 to
/// 2^20: its scratch is allocated here, ~50 bytes per correspondence).
/// `options` NULL means the defaults; options out of range fail here with
/// `SLD_STATUS_INVALID_ARGUMENT`, naming the option. On failure `*out` is NULL.
///
/// # Safety
/// `options` NULL or valid; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sld_pnp_solver_new(
    capacity: usize,
    options: *const SldPnpOptions,
    out: *mut *mut SldPnpSolver,
) -> SldStatus {
    call(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: writable (contract).
        unsafe { out.set(core::ptr::null_mut()) };
        if !(4..=1 << 20).contains(&capacity) {
            return Err(fail!(
                InvalidArgument,
                "capacity {capacity} must lie in [4, 2^20]"
            ));
        }
        let opts = match options.is_null() {
            true => PnpOptions::default(),
            // SAFETY: non-null and valid (contract).
            false => unsafe { read(options, "options") }?.to_core()?,
        };
        opts.validate().map_err(|e| fail!(InvalidArgument, "{e}"))?;
        if opts.min_inliers > capacity {
            return Err(fail!(
                InvalidArgument,
                "min_inliers {} exceeds capacity {capacity}: no call could succeed",
                opts.min_inliers
            ));
        }
        let oom = || {
            fail!(
                OutOfMemory,
                "cannot reserve scratch for {capacity} correspondences"
            )
        };
        let solver = PnpSolver::try_with_capacity(opts, capacity).map_err(|_| oom())?;
        let mut mask = Vec::new();
        mask.try_reserve_exact(capacity).map_err(|_| oom())?;
        mask.resize(capacity, false);
        let handle = Box::new(SldPnpSolver {
            solver,
            mask,
            error: Text::new(),
        });
        // SAFETY: writable (contract).
        unsafe { out.set(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Frees a solver. NULL is ignored.
///
/// # Safety
/// `solver` must be NULL or a live handle from `sld_pnp_solver_new`.
#[no_mangle]
pub unsafe extern "C" fn sld_pnp_solver_free(solver: *mut SldPnpSolver) {
    if !solver.is_null() {
        let _ = crate::guard::catch(|| {
            // SAFETY: created by `Box::into_raw`, not yet freed (contract).
            drop(unsafe { Box::from_raw(solver) });
            Ok(())
        });
    }
}

/// The solver's last error message ("" if none; NULL gives "").
///
/// # Safety
/// `solver` must be NULL or a valid handle.
#[no_mangle]
pub unsafe extern "C" fn sld_pnp_solver_last_error(solver: *const SldPnpSolver) -> *const c_char {
    // SAFETY: NULL or valid (contract).
    match unsafe { solver.as_ref() } {
        Some(s) => s.error.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Borrows `n` rows of `K` doubles.
///
/// # Safety
/// A non-null `ptr` must hold `K·n` readable doubles.
unsafe fn rows<'a, const K: usize>(ptr: *const f64, n: usize, name: &str) -> Result<&'a [[f64; K]], Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    if !ptr.is_aligned() {
        return Err(fail!(InvalidArgument, "{name} is not aligned for double"));
    }
    // n ≤ u32::MAX was checked, so K·n·8 cannot overflow isize on 64-bit;
    // check anyway for 32-bit targets.
    if n.checked_mul(K * 8).is_none_or(|b| b > isize::MAX as usize) {
        return Err(fail!(InvalidArgument, "{name}: {n} points overflow"));
    }
    // SAFETY: non-null, aligned, size checked, readable (contract);
    // `[f64; K]` has the layout of K consecutive doubles.
    Ok(unsafe { core::slice::from_raw_parts(ptr.cast::<[f64; K]>(), n) })
}

/// Solves for the world-to-camera pose from `n` correspondences:
/// `points2d` (`n` pairs `u, v`: distorted pixels, pixel-centre
/// convention), `points3d` (`n` triples, world frame, metres) and optional
/// `confidence` (`n` values ≥ 0, higher = more likely correct; NULL = all
/// equal). `inlier_mask`, when not NULL, receives `n` bytes (1 = inlier)
/// on success. Deterministic for a given seed; never allocates.
///
/// `SLD_STATUS_NO_POSE` when fewer than 4 points, no consensus or a
/// degenerate configuration; `SLD_STATUS_BUFFER_TOO_SMALL` when `n`
/// exceeds the solver's capacity.
///
/// # Safety
/// Every non-null pointer must hold the number of elements stated.
#[no_mangle]
pub unsafe extern "C" fn sld_pnp_solve(
    solver: *mut SldPnpSolver,
    points2d: *const f64,
    points3d: *const f64,
    confidence: *const f64,
    n: usize,
    camera: *const SldCamera,
    out: *mut SldPnpResult,
    inlier_mask: *mut u8,
) -> SldStatus {
    with_handle(solver, "solver", |s| {
        solve(s, points2d, points3d, confidence, n, camera, out, inlier_mask)
    })
}

impl ErrorSlot for SldPnpSolver {
    fn error_slot(&mut self) -> &mut Text {
        &mut self.error
    }
}

#[allow(clippy::too_many_arguments)]
fn solve(
    s: &mut SldPnpSolver,
    points2d: *const f64,
    points3d: *const f64,
    confidence: *const f64,
    n: usize,
    camera: *const SldCamera,
    out: *mut SldPnpResult,
    inlier_mask: *mut u8,
) -> Result<(), Failure> {
    let out = Out::new(out, "out")?;
    if n > s.mask.len() {
        return Err(fail!(
            BufferTooSmall,
            "{n} points exceed the solver's capacity of {}",
            s.mask.len()
        ));
    }
    // SAFETY: sizes as stated (contract).
    let p2 = unsafe { rows::<2>(points2d, n, "points2d") }?;
    // SAFETY: as above.
    let p3 = unsafe { rows::<3>(points3d, n, "points3d") }?;
    let conf = match confidence.is_null() {
        true => None,
        // SAFETY: as above.
        false => Some(unsafe { rows::<1>(confidence, n, "confidence") }?),
    };
    let conf = conf.map(|c| -> &[f64] { c.as_flattened() });
    // SAFETY: valid struct (contract).
    let cam = unsafe { read(camera, "camera") }?;
    // PnP needs no image size; 1×1 passes the camera's own checks.
    let cam = cam.to_camera(1, 1)?;
    let mask = &mut s.mask[..n];
    let sol = s
        .solver
        .solve(p2, p3, conf, &cam, Some(&mut *mask))
        .map_err(|e| match e {
            PnpError::InvalidPoint {
                why: PointProblem::NonFinite2d | PointProblem::NonFinite3d | PointProblem::NonFiniteConfidence,
                ..
            } => fail!(NonFinite, "{e}"),
            PnpError::InvalidPoint { .. } => fail!(InvalidArgument, "{e}"),
            PnpError::InvalidCamera(c) => fail!(InvalidCamera, "camera: {c}"),
            PnpError::InvalidOptions(_) => fail!(InvalidArgument, "{e}"),
            PnpError::ScratchTooSmall { .. } | PnpError::LengthMismatch => fail!(BufferTooSmall, "{e}"),
            PnpError::TooFewPoints { .. } | PnpError::DegeneratePoints | PnpError::NoConsensus { .. } => {
                fail!(NoPose, "{e}")
            }
        })?;
    if !inlier_mask.is_null() {
        for (i, &m) in mask.iter().enumerate() {
            // SAFETY: i < n; the mask holds n bytes (contract).
            unsafe { inlier_mask.add(i).write(m as u8) };
        }
    }
    // SAFETY: writable (contract).
    unsafe {
        out.set(SldPnpResult {
            pose: SldPose::from_pose(&sol.pose),
            inliers: sol.inliers as u32,
            iterations: sol.iterations,
            rms_px: sol.rms_px,
        })
    };
    Ok(())
}
