//! Two promises of `sld.h`, checked through the `extern "C"` functions:
//! no per-frame call allocates once its handle exists, and handles used
//! from several threads at once give the results of sequential use; and
//! `sld_last_error()` is per thread (the header's thread-safety statement).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sld::*;

/// Counts allocations made by the calling thread only (other test threads
/// must not disturb the count).
struct Counting;

std::thread_local! {
    static COUNT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
static TOTAL: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; the counters have no effect on
// the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        TOTAL.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations_on_this_thread() -> usize {
    COUNT.with(|c| c.get())
}

struct Kit {
    kit: sld_train::beacon::BeaconKit,
}

impl Kit {
    /// A kit of 12 beacons: enough inliers for the default reliability gate.
    fn new(seed: u64) -> Self {
        Self {
            kit: sld_train::beacon::beacon_kit(160, 120, 12, seed).unwrap(),
        }
    }
    fn image(&self) -> SldImage {
        SldImage {
            width: self.kit.camera.width,
            height: self.kit.camera.height,
            stride: 3 * self.kit.camera.width as usize,
            format: SldPixelFormat::Rgb8 as u32,
            data: self.kit.rgb.as_ptr(),
        }
    }
    fn camera(&self) -> SldCamera {
        let c = &self.kit.camera;
        SldCamera {
            fx: c.fx,
            fy: c.fy,
            cx: c.cx,
            cy: c.cy,
            kappa: c.kappa,
        }
    }
    fn localizer(&self) -> *mut SldLocalizer {
        let mut h = std::ptr::null_mut();
        // SAFETY: valid buffer and out pointer.
        let st =
            unsafe { localizer::sld_localizer_new(self.kit.model.as_ptr(), self.kit.model.len(), &mut h) };
        assert_eq!(st, SldStatus::Ok);
        h
    }
}

fn localize(h: *mut SldLocalizer, kit: &Kit) -> (SldStatus, SldLocalization) {
    let mut out = SldLocalization::default();
    // SAFETY: valid handle, image, camera and out.
    let st = unsafe { localizer::sld_localizer_localize(h, &kit.image(), &kit.camera(), &mut out) };
    (st, out)
}

#[test]
fn per_frame_calls_do_not_allocate() {
    let kit = Kit::new(5);
    let h = kit.localizer();
    let mut solver = std::ptr::null_mut();
    // SAFETY: valid out pointer.
    assert_eq!(
        unsafe { geometry::sld_pnp_solver_new(16, std::ptr::null(), &mut solver) },
        SldStatus::Ok
    );
    let (st, first) = localize(h, &kit); // warm-up (lazy statics such as CPU feature detection)
    assert_eq!(st, SldStatus::Ok);

    let maps: Vec<f32> = (0..8 * 12 * 16)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    let mut dets = vec![SldDetection::default(); 12];
    let p2: Vec<f64> = kit.kit.pixels.iter().flatten().copied().collect();
    let p3: Vec<f64> = kit.kit.landmarks.iter().flatten().copied().collect();
    let mut res = SldPnpResult::default();
    let mut mask = [0u8; 8];
    let mut n = 0;

    let before = allocations_on_this_thread();
    for _ in 0..3 {
        let (st, out) = localize(h, &kit);
        assert_eq!(st, SldStatus::Ok);
        assert_eq!(out.pose.rotation, first.pose.rotation);
        // SAFETY: buffers sized as stated.
        unsafe {
            assert_eq!(
                localizer::sld_localizer_detections(h, dets.as_mut_ptr(), 12, &mut n),
                SldStatus::Ok
            );
            assert_eq!(
                geometry::sld_decode_heatmaps(
                    maps.as_ptr(),
                    8,
                    12,
                    16,
                    std::ptr::null(),
                    dets.as_mut_ptr(),
                    8,
                    &mut n
                ),
                SldStatus::Ok
            );
            assert_eq!(
                geometry::sld_pnp_solve(
                    solver,
                    p2.as_ptr(),
                    p3.as_ptr(),
                    std::ptr::null(),
                    8,
                    &kit.camera(),
                    &mut res,
                    mask.as_mut_ptr()
                ),
                SldStatus::Ok
            );
        }
    }
    // Failures format their messages into fixed buffers: no allocation either.
    let mut bad = kit.image();
    bad.stride = 1;
    let mut out = SldLocalization::default();
    // SAFETY: valid pointers; the bad stride is what is tested.
    let st = unsafe { localizer::sld_localizer_localize(h, &bad, &kit.camera(), &mut out) };
    assert_eq!(st, SldStatus::InvalidImage);
    assert_eq!(
        allocations_on_this_thread() - before,
        0,
        "per-frame calls allocated"
    );

    // SAFETY: handles from the constructors, freed once.
    unsafe {
        localizer::sld_localizer_free(h);
        geometry::sld_pnp_solver_free(solver);
    }
}

#[test]
fn handles_on_several_threads_match_sequential_results() {
    let kits: Vec<Kit> = (10..14).map(Kit::new).collect();
    let sequential: Vec<[f64; 12]> = kits
        .iter()
        .map(|k| {
            let h = k.localizer();
            let (st, out) = localize(h, k);
            assert_eq!(st, SldStatus::Ok);
            // SAFETY: handle from the constructor.
            unsafe { localizer::sld_localizer_free(h) };
            pose_bits(&out)
        })
        .collect();
    let parallel: Vec<Vec<[f64; 12]>> = std::thread::scope(|s| {
        let workers: Vec<_> = kits
            .iter()
            .map(|k| {
                s.spawn(move || {
                    let h = k.localizer();
                    let poses = (0..5)
                        .map(|_| {
                            let (st, out) = localize(h, k);
                            assert_eq!(st, SldStatus::Ok);
                            pose_bits(&out)
                        })
                        .collect();
                    // SAFETY: handle from the constructor, used by this thread only.
                    unsafe { localizer::sld_localizer_free(h) };
                    poses
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (seq, par) in sequential.iter().zip(&parallel) {
        for p in par {
            assert_eq!(p, seq, "a threaded result differs from the sequential one");
        }
    }
    assert!(TOTAL.load(Ordering::Relaxed) > 0);
}

fn pose_bits(l: &SldLocalization) -> [f64; 12] {
    let mut v = [0.0; 12];
    v[..9].copy_from_slice(&l.pose.rotation);
    v[9..].copy_from_slice(&l.pose.translation);
    v
}

/// `sld_last_error()` is per thread: two threads fail at the same time in
/// different ways, and each then reads its own message, not the other's.
#[test]
fn last_error_is_per_thread() {
    let barrier = std::sync::Barrier::new(2);
    let messages: Vec<(SldStatus, String)> = std::thread::scope(|s| {
        let b = &barrier;
        let a = s.spawn(move || {
            let mut h = std::ptr::null_mut();
            // SAFETY: NULL model bytes are reported, never read.
            let st = unsafe { localizer::sld_localizer_new(std::ptr::null(), 8, &mut h) };
            b.wait(); // the other thread has failed too
            b.wait();
            (st, last_error())
        });
        let c = s.spawn(move || {
            let garbage = [7u8; 64];
            let mut h = std::ptr::null_mut();
            // SAFETY: a valid 64-byte buffer.
            let st = unsafe { localizer::sld_localizer_new(garbage.as_ptr(), garbage.len(), &mut h) };
            b.wait();
            b.wait();
            (st, last_error())
        });
        vec![a.join().unwrap(), c.join().unwrap()]
    });
    assert_eq!(messages[0].0, SldStatus::NullPointer);
    assert!(messages[0].1.contains("NULL"), "{:?}", messages[0]);
    assert_eq!(messages[1].0, SldStatus::InvalidModel);
    assert!(messages[1].1.contains("safetensors"), "{:?}", messages[1]);
    // A thread that never failed has no message.
    let fresh = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(fresh, "");
}

fn last_error() -> String {
    // SAFETY: a NUL-terminated string owned by this thread.
    unsafe { std::ffi::CStr::from_ptr(version::sld_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// A localize call that fails (bad camera, bad image) clears the previous
/// frame's detections: `sld_localizer_detections` then reports 0, never
/// stale positions from another image.
#[test]
fn a_failed_localize_leaves_no_stale_detections() {
    let kit = Kit::new(9);
    let h = kit.localizer();
    let detections = || {
        let mut dets = vec![SldDetection::default(); 12];
        let mut n = usize::MAX;
        // SAFETY: valid handle; buffer of 12; count writable.
        let st = unsafe { localizer::sld_localizer_detections(h, dets.as_mut_ptr(), 12, &mut n) };
        assert_eq!(st, SldStatus::Ok);
        n
    };
    let (st, out) = localize(h, &kit);
    assert_eq!(st, SldStatus::Ok);
    assert!(out.detections > 0 && detections() == out.detections as usize);

    let mut bad_camera = kit.camera();
    bad_camera.fx = 0.0;
    let mut out = SldLocalization::default();
    // SAFETY: valid handle, image, camera and out.
    let st = unsafe { localizer::sld_localizer_localize(h, &kit.image(), &bad_camera, &mut out) };
    assert_eq!(st, SldStatus::InvalidCamera);
    assert_eq!(detections(), 0, "stale detections after INVALID_CAMERA");

    assert_eq!(localize(h, &kit).0, SldStatus::Ok);
    assert!(detections() > 0);
    let mut bad_image = kit.image();
    bad_image.stride = 1; // smaller than width × 3
                          // SAFETY: as above (the image is rejected before its data is read).
    let st = unsafe { localizer::sld_localizer_localize(h, &bad_image, &kit.camera(), &mut out) };
    assert_eq!(st, SldStatus::InvalidImage);
    assert_eq!(detections(), 0, "stale detections after INVALID_IMAGE");
    // SAFETY: created above, freed once.
    unsafe { localizer::sld_localizer_free(h) };
}
