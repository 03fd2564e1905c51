//! The Localizer on several threads (issue 17): bit-identical to one
//! thread, and still no allocation per frame, on any thread. This file
//! holds a single test so that a process-wide allocation counter is exact
//! (no other test runs beside it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sld_core::{Camera, Image, Localizer, PixelFormat};

/// Counts every allocation in the process, on every thread.
struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards unchanged to the system allocator; the counter has no
// effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The beacon kit (`sld model beacons --width 96 --height 64 --landmarks
/// 5`): its 1×1 convolutions are wide enough (30 output channels) for the
/// GEMM to split its rows over the threads.
const MODEL: &[u8] = include_bytes!("../../tests/miri/fixtures/model.sld");
const PPM: &[u8] = include_bytes!("../../tests/miri/fixtures/image.ppm");
const TRUTH: &str = include_str!("../../tests/miri/fixtures/truth.txt");

#[test]
fn threads_give_the_same_bits_and_allocate_nothing_per_frame() {
    // P6 header: "P6\n96 64\n255\n".
    let header_end = PPM.windows(4).position(|w| w == b"255\n").map(|p| p + 4).unwrap();
    let rgb = &PPM[header_end..];
    let intr: Vec<f64> = TRUTH
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    let (w, h) = (intr[0] as u32, intr[1] as u32);
    let camera = Camera::pinhole(w, h, intr[2], intr[4], intr[5]).unwrap();
    let image = Image::new(w, h, 3 * w as usize, PixelFormat::Rgb8, rgb).unwrap();

    let mut one = Localizer::new(MODEL).unwrap();
    one.gate.min_inliers = 5;
    let want = one.localize(&image, &camera).unwrap();
    let want_maps: Vec<f32> = one.head_output(0).unwrap().to_vec();

    for threads in [2, 3] {
        let mut loc = Localizer::new(MODEL).unwrap();
        loc.gate.min_inliers = 5;
        loc.set_threads(threads).unwrap();
        assert_eq!(loc.threads(), threads);
        let _ = loc.localize(&image, &camera); // warm-up
        let before = ALLOCS.load(Ordering::Relaxed);
        for _ in 0..5 {
            let got = loc.localize(&image, &camera).unwrap();
            assert_eq!(got.pose, want.pose, "{threads} threads");
        }
        assert_eq!(
            ALLOCS.load(Ordering::Relaxed) - before,
            0,
            "{threads} threads allocated"
        );
        let maps = loc.head_output(0).unwrap();
        assert!(
            maps.iter()
                .zip(&want_maps)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{threads} threads: heatmaps differ from one thread's"
        );
    }
    let mut loc = Localizer::new(MODEL).unwrap();
    assert!(loc.set_threads(0).is_err() && loc.set_threads(17).is_err());
}
