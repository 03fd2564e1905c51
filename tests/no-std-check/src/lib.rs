//! A bare-metal consumer of sld-core: decode heatmaps and solve PnP with
//! no std, its own panic handler and a bump allocator.
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use sld_core::heatmap::{DecodeOptions, Detection, HeatmapShape};
use sld_core::pnp::{PnpOptions, PnpSolver, PointScratch};
use sld_core::Camera;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

const ARENA: usize = 64 * 1024;

struct Bump {
    mem: UnsafeCell<[u8; ARENA]>,
    next: AtomicUsize,
}

// SAFETY: allocations hand out disjoint ranges reserved by an atomic bump
// of `next`, so concurrent callers never alias.
unsafe impl Sync for Bump {}

// SAFETY: every returned pointer lies inside `mem`, is aligned to
// `layout.align()` and is never handed out twice; exhaustion returns null.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.mem.get() as usize;
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + cur).next_multiple_of(layout.align()) - base;
            let end = match start.checked_add(layout.size()) {
                Some(e) if e <= ARENA => e,
                _ => return core::ptr::null_mut(),
            };
            match self.next.compare_exchange(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (base + start) as *mut u8,
                Err(now) => cur = now,
            }
        }
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static HEAP: Bump = Bump {
    mem: UnsafeCell::new([0; ARENA]),
    next: AtomicUsize::new(0),
};

/// Decodes `maps` (`[l, h, w]`) and solves for the pose against `points3d`;
/// returns the inlier count, or −1 on any error.
#[no_mangle]
pub extern "C" fn sld_check_localize(
    maps: *const f32,
    l: usize,
    h: usize,
    w: usize,
    points3d: *const [f64; 3],
) -> i32 {
    if maps.is_null() || points3d.is_null() || l > 64 {
        return -1;
    }
    // SAFETY: the caller passes `l·h·w` floats and `l` points.
    let maps = unsafe { core::slice::from_raw_parts(maps, l * h * w) };
    // SAFETY: as above.
    let landmarks = unsafe { core::slice::from_raw_parts(points3d, l) };
    let mut dets = [Detection::default(); 64];
    let shape = HeatmapShape { landmarks: l, height: h, width: w };
    let Ok(n) = sld_core::decode(maps, shape, &DecodeOptions::default(), &mut dets) else {
        return -1;
    };
    let mut p2 = [[0.0; 2]; 64];
    let mut p3 = [[0.0; 3]; 64];
    for (k, d) in dets[..n].iter().enumerate() {
        p2[k] = [d.u as f64, d.v as f64];
        p3[k] = landmarks[d.landmark as usize];
    }
    let Ok(cam) = Camera::pinhole(640, 352, 500.0, 319.5, 175.5) else {
        return -1;
    };
    let mut scratch = [PointScratch::default(); 64];
    match sld_core::solve_pnp(&p2[..n], &p3[..n], None, &cam, &PnpOptions::default(), &mut scratch, None) {
        Ok(s) => s.inliers as i32,
        Err(_) => {
            // The alloc-backed solver links too.
            let mut solver = PnpSolver::with_capacity(PnpOptions::default(), n);
            solver.solve(&p2[..n], &p3[..n], None, &cam, None).map_or(-1, |s| s.inliers as i32)
        }
    }
}
