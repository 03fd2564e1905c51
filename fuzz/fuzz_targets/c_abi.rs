//! The C ABI driven through its `extern "C"` functions, as C would call
//! them: fuzzed sizes, strides, formats, counts, capacities, options and
//! buffer contents, and NULLs. Buffers are always as large as the sizes
//! passed claim (the C contract); everything else is fair game. Every
//! call must return a status (no panic escapes, no crash), and a handle
//! must stay usable after a failing call.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sld::geometry::*;
use sld::localizer::*;
use sld::*;
use std::ptr;

#[derive(Arbitrary, Debug)]
struct Cam {
    fx: f64,
    fy: f64,
    cx: f64,
    cy: f64,
    kappa: f64,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A new handle from fuzzed model bytes (replaces the kit's if it loads).
    NewModel {
        bytes: Vec<u8>,
        borrowed: bool,
    },
    Localize {
        width: u16,
        height: u16,
        /// Added to `width · channels` (negative: a too-small stride).
        stride_delta: i16,
        format: u32,
        null_data: bool,
        null_camera: bool,
        fill: u8,
        camera: Option<Cam>,
    },
    Detections {
        capacity: u16,
        null_out: bool,
    },
    Landmarks {
        capacity: u16,
        null_out: bool,
    },
    Info,
    /// A status code as C may pass it: any integer.
    StatusName(u32),
    /// A reliability gate with any values (range-checked), or NULL.
    SetGate {
        min_inliers: u32,
        min_inlier_ratio: f32,
        min_inlier_confidence: f32,
        min_visible_fraction: f32,
        null: bool,
    },
    /// The evidence behind the last pose.
    LastQuality,
    Decode {
        landmarks: u8,
        height: u8,
        width: u8,
        threshold: f32,
        stride: f32,
        offset: f32,
        refinement: u32,
        window_radius: u32,
        capacity: u16,
        values: Vec<f32>,
        null_options: bool,
    },
    Pnp {
        capacity: u16,
        values: Vec<f64>,
        n: u8,
        conf: bool,
        mask: bool,
        camera: Cam,
        max_reproj_px: f64,
        sampling: u32,
        max_iterations: u16,
        min_inliers: u32,
        success_prob: f64,
        seed: u64,
    },
}

fn camera(c: &Cam) -> SldCamera {
    SldCamera {
        fx: c.fx,
        fy: c.fy,
        cx: c.cx,
        cy: c.cy,
        kappa: c.kappa,
    }
}

fn take<T: Copy>(values: &[T], n: usize, zero: T) -> Vec<T> {
    (0..n)
        .map(|i| values.get(i % values.len().max(1)).copied().unwrap_or(zero))
        .collect()
}

fuzz_target!(|ops: Vec<Op>| {
    let kit = sld_fuzz::kit();
    let mut handle: *mut SldLocalizer = ptr::null_mut();
    // SAFETY (all calls below): pointers are NULL or point to live buffers
    // at least as large as the sizes passed with them (the C contract).
    let st = unsafe { sld_localizer_new(kit.model.as_ptr(), kit.model.len(), &mut handle) };
    assert_eq!(st, SldStatus::Ok);
    // The kit has 5 beacons: a gate of 4 inliers lets its image localise, so
    // the OK path stays reachable (SetGate ops change it further).
    let kit_gate = SldGate {
        min_inliers: 4,
        min_inlier_ratio: 0.5,
        min_inlier_confidence: 0.0,
        min_visible_fraction: 0.15,
    };
    assert_eq!(unsafe { sld_localizer_set_gate(handle, &kit_gate) }, SldStatus::Ok);
    for op in ops.iter().take(16) {
        match op {
            Op::NewModel { bytes, borrowed } => {
                let mut h: *mut SldLocalizer = ptr::null_mut();
                let st = unsafe {
                    if *borrowed {
                        sld_localizer_new_borrowed(bytes.as_ptr(), bytes.len(), &mut h)
                    } else {
                        sld_localizer_new(bytes.as_ptr(), bytes.len(), &mut h)
                    }
                };
                if st == SldStatus::Ok {
                    assert!(!h.is_null());
                    let mut info = std::mem::MaybeUninit::<SldModelInfo>::zeroed();
                    assert_eq!(unsafe { sld_localizer_info(h, info.as_mut_ptr()) }, SldStatus::Ok);
                    let info = unsafe { info.assume_init() };
                    if info.arena_bytes > 64 << 20 {
                        unsafe { sld_localizer_free(h) };
                        continue;
                    }
                    // `ops` outlives every handle, so borrowed bytes stay valid.
                    unsafe { sld_localizer_free(handle) };
                    handle = h;
                } else {
                    assert!(h.is_null());
                }
            }
            Op::Localize {
                width,
                height,
                stride_delta,
                format,
                null_data,
                null_camera,
                fill,
                camera: cam,
            } => {
                let channels = if *format == 2 { 1 } else { 3 };
                let row = *width as i64 * channels;
                let stride = (row + *stride_delta as i64).max(0) as usize;
                let need = if *height == 0 {
                    0
                } else {
                    stride.max(row as usize) * (*height as usize - 1) + row as usize
                };
                if need > 4 << 20 {
                    continue;
                }
                let buf = vec![*fill; need.max(1)];
                let img = SldImage {
                    width: *width as u32,
                    height: *height as u32,
                    stride,
                    format: *format,
                    data: if *null_data { ptr::null() } else { buf.as_ptr() },
                };
                let c = match cam {
                    Some(c) => camera(c),
                    None => SldCamera {
                        fx: 0.9 * *width as f64,
                        fy: 0.9 * *width as f64,
                        cx: (*width as f64 - 1.0) / 2.0,
                        cy: (*height as f64 - 1.0) / 2.0,
                        kappa: 0.0,
                    },
                };
                let mut out = SldLocalization::default();
                let st = unsafe {
                    sld_localizer_localize(
                        handle,
                        &img,
                        if *null_camera { ptr::null() } else { &c },
                        &mut out,
                    )
                };
                if st == SldStatus::Ok {
                    assert!(out
                        .pose
                        .rotation
                        .iter()
                        .chain(&out.pose.translation)
                        .all(|v| v.is_finite()));
                    assert!(out.inliers >= 4 && out.inliers <= out.detections);
                    // A returned pose meets the handle's gate.
                    let mut g = SldGate::default();
                    let mut q = SldPoseQuality::default();
                    unsafe {
                        assert_eq!(sld_localizer_gate(handle, &mut g), SldStatus::Ok);
                        assert_eq!(sld_localizer_last_quality(handle, &mut q), SldStatus::Ok);
                    }
                    assert!(q.accepted == 1 && q.inliers >= g.min_inliers && q.inliers == out.inliers);
                    assert!(q.inlier_ratio >= g.min_inlier_ratio && q.visible_fraction >= g.min_visible_fraction);
                }
            }
            Op::Detections { capacity, null_out } => {
                let mut dets = vec![SldDetection::default(); *capacity as usize];
                let mut count = 0usize;
                let p = if *null_out {
                    ptr::null_mut()
                } else {
                    dets.as_mut_ptr()
                };
                let st = unsafe { sld_localizer_detections(handle, p, *capacity as usize, &mut count) };
                if st == SldStatus::Ok {
                    assert!(count <= *capacity as usize);
                }
            }
            Op::Landmarks { capacity, null_out } => {
                let mut xyz = vec![0.0f64; 3 * *capacity as usize];
                let p = if *null_out {
                    ptr::null_mut()
                } else {
                    xyz.as_mut_ptr()
                };
                let _ = unsafe { sld_localizer_landmarks(handle, p, *capacity as usize) };
            }
            Op::Info => {
                let mut info = std::mem::MaybeUninit::<SldModelInfo>::zeroed();
                assert_eq!(
                    unsafe { sld_localizer_info(handle, info.as_mut_ptr()) },
                    SldStatus::Ok
                );
            }
            Op::SetGate {
                min_inliers,
                min_inlier_ratio,
                min_inlier_confidence,
                min_visible_fraction,
                null,
            } => {
                let g = SldGate {
                    min_inliers: *min_inliers,
                    min_inlier_ratio: *min_inlier_ratio,
                    min_inlier_confidence: *min_inlier_confidence,
                    min_visible_fraction: *min_visible_fraction,
                };
                let mut before = SldGate::default();
                unsafe { assert_eq!(sld_localizer_gate(handle, &mut before), SldStatus::Ok) };
                let st = unsafe { sld_localizer_set_gate(handle, if *null { ptr::null() } else { &g }) };
                let mut after = SldGate::default();
                unsafe { assert_eq!(sld_localizer_gate(handle, &mut after), SldStatus::Ok) };
                // Accepted exactly as given, or refused with the old gate kept.
                if st == SldStatus::Ok {
                    assert_eq!(after, g);
                } else {
                    assert_eq!(after, before);
                }
            }
            Op::LastQuality => {
                let mut q = SldPoseQuality::default();
                let st = unsafe { sld_localizer_last_quality(handle, &mut q) };
                assert!(matches!(st, SldStatus::Ok | SldStatus::NoPose));
                if st == SldStatus::NoPose {
                    assert_eq!(q, SldPoseQuality::default());
                }
            }
            Op::StatusName(code) => {
                // SAFETY: returns a static NUL-terminated string for any code.
                let name = unsafe { std::ffi::CStr::from_ptr(sld::version::sld_status_name(*code)) };
                assert!(!name.to_bytes().is_empty());
            }
            Op::Decode {
                landmarks,
                height,
                width,
                threshold,
                stride,
                offset,
                refinement,
                window_radius,
                capacity,
                values,
                null_options,
            } => {
                let n = *landmarks as usize * *height as usize * *width as usize;
                let maps = take(values, n, 0.5f32);
                let opts = SldDecodeOptions {
                    threshold: *threshold,
                    stride: *stride,
                    offset: *offset,
                    refinement: *refinement,
                    window_radius: *window_radius,
                };
                let mut dets = vec![SldDetection::default(); *capacity as usize];
                let mut count = 0usize;
                let st = unsafe {
                    sld_decode_heatmaps(
                        maps.as_ptr(),
                        *landmarks as usize,
                        *height as usize,
                        *width as usize,
                        if *null_options { ptr::null() } else { &opts },
                        dets.as_mut_ptr(),
                        *capacity as usize,
                        &mut count,
                    )
                };
                if st == SldStatus::Ok {
                    assert!(count <= *landmarks as usize && count <= *capacity as usize);
                    assert!(dets[..count].iter().all(|d| d.u.is_finite() && d.v.is_finite()));
                }
            }
            Op::Pnp {
                capacity,
                values,
                n,
                conf,
                mask,
                camera: cam,
                max_reproj_px,
                sampling,
                max_iterations,
                min_inliers,
                success_prob,
                seed,
            } => {
                let n = *n as usize;
                let p2 = take(values, 2 * n, 1.0);
                let p3: Vec<f64> = take(values, 3 * n + 7, 2.0)[7..].to_vec();
                let cf = take(values, n, 1.0);
                let mut o = std::mem::MaybeUninit::<SldPnpOptions>::zeroed();
                assert_eq!(unsafe { sld_pnp_options_default(o.as_mut_ptr()) }, SldStatus::Ok);
                let mut o = unsafe { o.assume_init() };
                o.max_reproj_px = *max_reproj_px;
                o.sampling = *sampling;
                o.max_iterations = *max_iterations as u32;
                o.min_inliers = *min_inliers;
                o.success_prob = *success_prob;
                o.seed = *seed;
                let mut solver: *mut SldPnpSolver = ptr::null_mut();
                let st = unsafe { sld_pnp_solver_new(*capacity as usize, &o, &mut solver) };
                if st != SldStatus::Ok {
                    assert!(solver.is_null());
                    continue;
                }
                let mut res = std::mem::MaybeUninit::<SldPnpResult>::zeroed();
                let mut m = vec![0u8; n];
                let c = camera(cam);
                let st = unsafe {
                    sld_pnp_solve(
                        solver,
                        p2.as_ptr(),
                        p3.as_ptr(),
                        if *conf { cf.as_ptr() } else { ptr::null() },
                        n,
                        &c,
                        res.as_mut_ptr(),
                        if *mask { m.as_mut_ptr() } else { ptr::null_mut() },
                    )
                };
                if st == SldStatus::Ok {
                    let r = unsafe { res.assume_init() };
                    assert!(r.inliers as usize >= 4 && r.inliers as usize <= n);
                    assert!(r.pose.rotation.iter().all(|v| v.is_finite()));
                }
                unsafe { sld_pnp_solver_free(solver) };
            }
        }
        // The handle's message is always a valid C string.
        let msg = unsafe { std::ffi::CStr::from_ptr(sld_localizer_last_error(handle)) };
        let _ = msg.to_bytes().len();
    }
    unsafe { sld_localizer_free(handle) };
});
