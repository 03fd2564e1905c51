//! Every `extern "C"` entry point of sld-ffi, called as C calls them, under
//! Miri (undefined behaviour, out-of-bounds and misaligned accesses, leaks,
//! data races): the known-answer beacon kit end to end, decode and PnP on
//! exact synthetic data, every error path that touches caller memory, and
//! two handles on two threads (the header's thread-safety statement).
//! Also an ordinary test under `cargo test`.

use sld::geometry::*;
use sld::localizer::*;
use sld::version::*;
use sld::*;
use std::ffi::CStr;
use std::ptr;

// The smallest beacon kit (`sld model beacons --width 64 --height 64
// --landmarks 4`): under Miri, the GEMM of the forward pass is most of
// the time, and every byte of the image is interpreted.
const MODEL: &[u8] = include_bytes!("../fixtures/small/model.sld");
const PPM: &[u8] = include_bytes!("../fixtures/small/image.ppm");
const TRUTH: &str = include_str!("../fixtures/small/truth.txt");
/// Landmarks (beacons) of the kit.
const L: usize = 4;

/// `(width, height, rgb)` of the binary P6 fixture.
fn image() -> (u32, u32, &'static [u8]) {
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while PPM[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !PPM[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(std::str::from_utf8(&PPM[start..pos]).unwrap());
    }
    let (w, h): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, &PPM[pos + 1..pos + 1 + (3 * w * h) as usize])
}

/// `(camera, R row-major, t)` from truth.txt.
fn truth() -> (SldCamera, [f64; 9], [f64; 3]) {
    let lines: Vec<Vec<f64>> = TRUTH
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    let c = &lines[0];
    let cam = SldCamera {
        fx: c[2],
        fy: c[3],
        cx: c[4],
        cy: c[5],
        kappa: c[6],
    };
    (
        cam,
        lines[1].clone().try_into().unwrap(),
        lines[2].clone().try_into().unwrap(),
    )
}

fn message(p: *const std::ffi::c_char) -> String {
    // SAFETY: the library returns NUL-terminated static or handle-owned text.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn new_localizer(bytes: &[u8], borrowed: bool) -> (SldStatus, *mut SldLocalizer) {
    let mut h = ptr::null_mut();
    // SAFETY: valid slice, writable out.
    let st = unsafe {
        if borrowed {
            sld_localizer_new_borrowed(bytes.as_ptr(), bytes.len(), &mut h)
        } else {
            sld_localizer_new(bytes.as_ptr(), bytes.len(), &mut h)
        }
    };
    if st == SldStatus::Ok {
        // The kit has 4 beacons, below the default gate's 10 inliers (a
        // real map has hundreds): lower that threshold only, through the
        // gate API, which Miri then checks too.
        let mut g = std::mem::MaybeUninit::<SldGate>::uninit();
        // SAFETY: valid handle, writable out; the gate read back is
        // initialised by the call.
        unsafe {
            assert_eq!(sld_localizer_gate(h, g.as_mut_ptr()), SldStatus::Ok);
            let g = SldGate {
                min_inliers: L as u32,
                ..g.assume_init()
            };
            assert_eq!(sld_localizer_set_gate(h, &g), SldStatus::Ok);
        }
    }
    (st, h)
}

fn localize(
    h: *mut SldLocalizer,
    stride: usize,
    data: &[u8],
    cam: &SldCamera,
) -> (SldStatus, SldLocalization) {
    let (w, hgt, _) = image();
    let img = SldImage {
        width: w,
        height: hgt,
        stride,
        format: SldPixelFormat::Rgb8 as u32,
        data: data.as_ptr(),
    };
    let mut out = SldLocalization::default();
    // SAFETY: valid handle; `data` holds stride·(h−1) + 3w bytes.
    let st = unsafe { sld_localizer_localize(h, &img, cam, &mut out) };
    (st, out)
}

fn assert_pose(out: &SldLocalization) {
    let (_, r, t) = truth();
    let dr = out
        .pose
        .rotation
        .iter()
        .zip(r)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let dt = out
        .pose
        .translation
        .iter()
        .zip(t)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(dr < 1e-3 && dt < 1e-2, "pose off by {dr} (R), {dt} m (t)");
}

#[test]
fn beacon_kit_end_to_end() {
    let (w, _, rgb) = image();
    let (cam, _, _) = truth();
    // Under Miri a localisation takes minutes: one pass (borrowed weights,
    // the zero-copy path with the most unsafe code), no repeats.
    let passes: &[bool] = if cfg!(miri) { &[true] } else { &[false, true] };
    for &borrowed in passes {
        // Borrowed weights must be 4-aligned: copy into a u32 buffer.
        let mut aligned = vec![0u32; MODEL.len().div_ceil(4)];
        // SAFETY: the u32 buffer has at least MODEL.len() bytes.
        let bytes = unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), MODEL.len()) };
        bytes.copy_from_slice(MODEL);
        let (st, h) = new_localizer(bytes, borrowed);
        assert_eq!(st, SldStatus::Ok, "{}", message(sld_last_error()));

        let mut info = std::mem::MaybeUninit::<SldModelInfo>::zeroed();
        // SAFETY: valid handle, writable out.
        assert_eq!(unsafe { sld_localizer_info(h, info.as_mut_ptr()) }, SldStatus::Ok);
        // SAFETY: written on success.
        let info = unsafe { info.assume_init() };
        assert_eq!(info.landmarks as usize, L);
        if borrowed {
            assert!(info.zero_copy, "aligned borrowed weights are read in place");
        }

        let mut xyz = [0.0f64; 3 * L];
        // SAFETY: 3L writable doubles.
        assert_eq!(
            unsafe { sld_localizer_landmarks(h, xyz.as_mut_ptr(), L) },
            SldStatus::Ok
        );
        assert_eq!(
            unsafe { sld_localizer_landmarks(h, xyz.as_mut_ptr(), L - 1) },
            SldStatus::BufferTooSmall
        );

        let (st, out) = localize(h, 3 * w as usize, rgb, &cam);
        assert_eq!(
            st,
            SldStatus::Ok,
            "{}",
            message(unsafe { sld_localizer_last_error(h) })
        );
        assert_eq!(out.inliers as usize, L);
        assert_pose(&out);

        // A padded stride gives the same pose (skipped under Miri: the
        // same code path again).
        let stride = 3 * w as usize + 5;
        let mut padded = vec![0u8; stride * rgb.len() / (3 * w as usize)];
        for (row, src) in padded.chunks_mut(stride).zip(rgb.chunks(3 * w as usize)) {
            row[..src.len()].copy_from_slice(src);
        }
        if !cfg!(miri) {
            let (st, out2) = localize(h, stride, &padded, &cam);
            assert_eq!(st, SldStatus::Ok);
            assert_eq!(out2.pose.rotation, out.pose.rotation);
        }

        let mut dets = [SldDetection::default(); L];
        let mut count = 0;
        // SAFETY: L writable detections, writable count.
        let st = unsafe { sld_localizer_detections(h, dets.as_mut_ptr(), L, &mut count) };
        assert_eq!((st, count as usize), (SldStatus::Ok, L));

        // Bad calls leave the handle usable.
        let (st, _) = localize(h, 3 * w as usize - 1, rgb, &cam);
        assert_eq!(st, SldStatus::InvalidImage);
        let bad_cam = SldCamera { fx: 0.0, ..cam };
        assert_eq!(
            localize(h, 3 * w as usize, rgb, &bad_cam).0,
            SldStatus::InvalidCamera
        );
        assert!(message(unsafe { sld_localizer_last_error(h) }).contains("camera"));
        // SAFETY: NULL image/camera/out are reported, never read.
        let st = unsafe { sld_localizer_localize(h, ptr::null(), &cam, ptr::null_mut()) };
        assert_eq!(st, SldStatus::NullPointer);
        if !cfg!(miri) {
            assert_eq!(localize(h, 3 * w as usize, rgb, &cam).0, SldStatus::Ok);
        }
        // SAFETY: created above, freed once.
        unsafe { sld_localizer_free(h) };
    }
    // SAFETY: NULL is a no-op.
    unsafe { sld_localizer_free(ptr::null_mut()) };
}

#[test]
fn bad_models_and_null_pointers() {
    for (bytes, want) in [
        (&MODEL[..0], SldStatus::InvalidModel),
        (&MODEL[..7], SldStatus::InvalidModel),
        (&MODEL[..MODEL.len() - 1], SldStatus::InvalidModel),
        (&b"not a model at all"[..], SldStatus::InvalidModel),
    ] {
        let (st, h) = new_localizer(bytes, false);
        assert_eq!(st, want);
        assert!(h.is_null());
        assert!(!message(sld_last_error()).is_empty());
    }
    let mut corrupt = MODEL.to_vec();
    corrupt[10] ^= 0xff;
    assert_eq!(new_localizer(&corrupt, false).0, SldStatus::InvalidModel);
    // Misaligned borrowed bytes still load (the weights are then copied).
    let mut shifted = vec![0u8; MODEL.len() + 1];
    shifted[1..].copy_from_slice(MODEL);
    let (st, h) = new_localizer(&shifted[1..], true);
    assert_eq!(st, SldStatus::Ok);
    unsafe { sld_localizer_free(h) };
    let mut h = ptr::null_mut();
    // SAFETY: NULL model with a length is reported, not read.
    assert_eq!(
        unsafe { sld_localizer_new(ptr::null(), 10, &mut h) },
        SldStatus::NullPointer
    );
    assert_eq!(
        unsafe { sld_localizer_new(MODEL.as_ptr(), MODEL.len(), ptr::null_mut()) },
        SldStatus::NullPointer
    );
    assert_eq!(message(sld_status_name(SldStatus::NoPose as u32)), "no pose");
    assert_eq!(message(sld_status_name(1000)), "unknown status");
    assert!(message(sld_version()).starts_with(&format!("{SLD_VERSION_MAJOR}.")));
}

#[test]
fn decode_and_pnp() {
    // Three 6×8 Gaussian maps, peaks at known cells, decoded at stride 8.
    // No peak sits half-way between two cells: Miri perturbs `exp` by an
    // ulp or so, which would flip such a tie, here onto the border column
    // where the 3-point fit has no right neighbour.
    let (l, hh, ww) = (3usize, 6usize, 8usize);
    let peaks = [(2.0f32, 1.0f32), (5.0, 3.0), (6.4, 4.25)];
    let mut maps = vec![0.0f32; l * hh * ww];
    for (k, (px, py)) in peaks.iter().enumerate() {
        for y in 0..hh {
            for x in 0..ww {
                let d2 = (x as f32 - px).powi(2) + (y as f32 - py).powi(2);
                maps[(k * hh + y) * ww + x] = (-d2 / 2.0).exp();
            }
        }
    }
    let mut o = std::mem::MaybeUninit::<SldDecodeOptions>::zeroed();
    // SAFETY: writable out.
    assert_eq!(
        unsafe { sld_decode_options_default(8.0, o.as_mut_ptr()) },
        SldStatus::Ok
    );
    // SAFETY: written on success.
    let o = unsafe { o.assume_init() };
    let mut dets = [SldDetection::default(); 3];
    let mut count = 0;
    // SAFETY: maps hold l·h·w floats; 3 writable detections.
    let st = unsafe { sld_decode_heatmaps(maps.as_ptr(), l, hh, ww, &o, dets.as_mut_ptr(), 3, &mut count) };
    assert_eq!((st, count), (SldStatus::Ok, 3));
    for (d, (px, py)) in dets.iter().zip(peaks) {
        assert!(
            (d.u - (3.5 + 8.0 * px)).abs() < 0.05 && (d.v - (3.5 + 8.0 * py)).abs() < 0.05,
            "{d:?}"
        );
    }
    maps[10] = f32::INFINITY; // the first map's peak
    let st = unsafe { sld_decode_heatmaps(maps.as_ptr(), l, hh, ww, &o, dets.as_mut_ptr(), 3, &mut count) };
    assert_eq!(st, SldStatus::NonFinite);
    let st = unsafe { sld_decode_heatmaps(maps.as_ptr(), l, hh, ww, &o, dets.as_mut_ptr(), 2, &mut count) };
    assert_eq!(st, SldStatus::BufferTooSmall);
    // A misaligned float pointer is refused, not dereferenced.
    let raw = maps.as_ptr().cast::<u8>().wrapping_add(1).cast::<f32>();
    let st = unsafe { sld_decode_heatmaps(raw, 1, 1, 1, &o, dets.as_mut_ptr(), 3, &mut count) };
    assert_eq!(st, SldStatus::InvalidArgument);

    // PnP: 12 points on a grid 5 m in front of the camera, exact
    // projections, 2 outliers.
    let (cam, _, _) = truth();
    let r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let t = [0.1, -0.2, 5.0];
    let mut p3 = Vec::new();
    let mut p2 = Vec::new();
    for i in 0..12 {
        let x = [(i % 4) as f64 - 1.5, (i / 4) as f64 - 1.0, 0.3 * (i % 3) as f64];
        let c: Vec<f64> = (0..3)
            .map(|k| r[3 * k] * x[0] + r[3 * k + 1] * x[1] + r[3 * k + 2] * x[2] + t[k])
            .collect();
        p3.extend_from_slice(&x);
        let (mut u, v) = (cam.fx * c[0] / c[2] + cam.cx, cam.fy * c[1] / c[2] + cam.cy);
        if i == 3 || i == 7 {
            u += 40.0;
        }
        p2.extend_from_slice(&[u, v]);
    }
    let mut po = std::mem::MaybeUninit::<SldPnpOptions>::zeroed();
    assert_eq!(unsafe { sld_pnp_options_default(po.as_mut_ptr()) }, SldStatus::Ok);
    let po = unsafe { po.assume_init() };
    let mut solver = ptr::null_mut();
    assert_eq!(unsafe { sld_pnp_solver_new(16, &po, &mut solver) }, SldStatus::Ok);
    let mut res = std::mem::MaybeUninit::<SldPnpResult>::zeroed();
    let mut mask = [0u8; 12];
    // SAFETY: 12 points of each kind, a 12-byte mask.
    let st = unsafe {
        sld_pnp_solve(
            solver,
            p2.as_ptr(),
            p3.as_ptr(),
            ptr::null(),
            12,
            &cam,
            res.as_mut_ptr(),
            mask.as_mut_ptr(),
        )
    };
    assert_eq!(
        st,
        SldStatus::Ok,
        "{}",
        message(unsafe { sld_pnp_solver_last_error(solver) })
    );
    let res = unsafe { res.assume_init() };
    assert_eq!(res.inliers, 10);
    assert_eq!((mask[3], mask[7], mask[0]), (0, 0, 1));
    let dt = res
        .pose
        .translation
        .iter()
        .zip(t)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(dt < 1e-6, "{dt}");
    let mut res2 = std::mem::MaybeUninit::<SldPnpResult>::zeroed();
    let st = unsafe {
        sld_pnp_solve(
            solver,
            p2.as_ptr(),
            p3.as_ptr(),
            ptr::null(),
            17,
            &cam,
            res2.as_mut_ptr(),
            ptr::null_mut(),
        )
    };
    assert_eq!(st, SldStatus::BufferTooSmall);
    unsafe { sld_pnp_solver_free(solver) };
}

#[test]
fn two_handles_on_two_threads_match_sequential_use() {
    let (w, _, rgb) = image();
    let (cam, _, _) = truth();
    // Natively: a full localisation per thread, compared with sequential
    // use. Under Miri a localisation takes minutes, so the threads make the
    // calls that touch shared state (handle creation, per-thread error
    // messages, failing and cheap calls) while the race detector watches.
    let full = !cfg!(miri);
    let want = full.then(|| {
        let (st, h) = new_localizer(MODEL, false);
        assert_eq!(st, SldStatus::Ok);
        let (_, want) = localize(h, 3 * w as usize, rgb, &cam);
        unsafe { sld_localizer_free(h) };
        want.pose.rotation
    });
    let results: Vec<(Option<[f64; 9]>, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|t| {
                s.spawn(move || {
                    let (st, h) = new_localizer(MODEL, t == 1);
                    assert_eq!(st, SldStatus::Ok);
                    let mut xyz = [0.0f64; 3 * L];
                    assert_eq!(
                        unsafe { sld_localizer_landmarks(h, xyz.as_mut_ptr(), L) },
                        SldStatus::Ok
                    );
                    // A different failure on each thread.
                    let stride = if t == 0 {
                        3 * w as usize - 1
                    } else {
                        3 * w as usize
                    };
                    let c = if t == 0 {
                        cam
                    } else {
                        SldCamera { fx: -1.0, ..cam }
                    };
                    let (st, _) = localize(h, stride, rgb, &c);
                    assert_ne!(st, SldStatus::Ok);
                    let msg = message(sld_last_error());
                    let pose = full.then(|| {
                        let (st, out) = localize(h, 3 * w as usize, rgb, &cam);
                        assert_eq!(st, SldStatus::Ok);
                        assert_pose(&out);
                        out.pose.rotation
                    });
                    unsafe { sld_localizer_free(h) };
                    (pose, msg)
                })
            })
            .collect();
        hs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    assert!(results[0].1.contains("stride"), "{:?}", results[0].1);
    assert!(results[1].1.contains("focal"), "{:?}", results[1].1);
    if let Some(want) = want {
        assert!(results.iter().all(|(p, _)| *p == Some(want)));
    }
}
