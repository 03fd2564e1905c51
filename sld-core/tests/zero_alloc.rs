//! Decode + PnP make zero heap allocations per call after set-up,
//! counted by a global allocator that tallies this thread's allocations.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use sld_core::heatmap::{DecodeOptions, Detection, HeatmapShape};
use sld_core::pnp::{PnpSolver, PointScratch};
use sld_core::rng::SplitMix64;
use sld_core::PnpOptions;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; the
// counter is a const-initialised thread-local without a destructor, so
// touching it never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCS.with(|c| c.get())
}

#[test]
fn decode_and_pnp_do_not_allocate_per_call() {
    // Set-up (allocates freely).
    let (l, h, w) = (300, 44, 80);
    let mut rng = SplitMix64::new(21);
    let p = problem(&mut rng, l, 0.5, 2.0);
    let mut maps = vec![0f32; l * h * w];
    let opts = DecodeOptions::default();
    for (i, map) in maps.chunks_exact_mut(h * w).enumerate() {
        // One Gaussian peak per map, somewhere on the 80×44 grid.
        let (gx, gy) = (p.p2d[i][0] as f32 / 8.0, p.p2d[i][1] as f32 / 480.0 * 44.0);
        for y in 0..h {
            for x in 0..w {
                let d2 = (x as f32 - gx).powi(2) + (y as f32 - gy).powi(2);
                map[y * w + x] = p.conf[i] as f32 * (-d2 / 12.5).exp();
            }
        }
    }
    let shape = HeatmapShape {
        landmarks: l,
        height: h,
        width: w,
    };
    let mut dets = vec![Detection::default(); l];
    let mut scratch = vec![PointScratch::default(); l];
    let mut mask = vec![false; l];
    let mut solver = PnpSolver::with_capacity(PnpOptions::default(), l);
    let mut p2 = vec![[0.0; 2]; l];
    let mut p3 = vec![[0.0; 3]; l];
    let mut conf = vec![0.0; l];

    let before = allocations();
    for _ in 0..3 {
        let n = sld_core::decode(&maps, shape, &opts, &mut dets).unwrap();
        assert!(n > 100);
        // Use the exact 2D points for the solve (decode output shape is
        // what matters for the allocation count, not its geometry).
        for (k, d) in dets[..n].iter().enumerate() {
            let i = d.landmark as usize;
            p2[k] = p.p2d[i];
            p3[k] = p.p3d[i];
            conf[k] = d.confidence as f64;
        }
        let s = sld_core::solve_pnp(
            &p2[..n],
            &p3[..n],
            Some(&conf[..n]),
            &p.camera,
            &PnpOptions::default(),
            &mut scratch,
            Some(&mut mask),
        )
        .unwrap();
        assert!(s.inliers >= 4);
        let s2 = solver
            .solve(&p.p2d, &p.p3d, Some(&p.conf), &p.camera, None)
            .unwrap();
        assert!(s2.inliers >= 100);
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "per-frame path allocated {} times",
        after - before
    );

    // The counter itself works: a Vec allocates.
    let v: Vec<u8> = Vec::with_capacity(16);
    assert!(allocations() > after);
    drop(v);
}
