//! Handle creation under hostile files and scarce memory (issue 19, items
//! 8, 13, 14 and 15): a model file is checked (header, declared size, size
//! limit) before it is read; every large buffer of a handle is reserved
//! fallibly, so a failed allocation is `SLD_STATUS_OUT_OF_MEMORY`, never an
//! abort; and each PnP misuse has one status and one message naming it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{CStr, CString};

use sld::*;

/// Fails, on threads that ask for it, every allocation of at least
/// [`LARGE`] bytes: the buffers a handle reserves, not the small ones of
/// parsing.
struct FailLarge;

const LARGE: usize = 256 * 1024;

std::thread_local! {
    static FAIL_LARGE: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator, or returns NULL (allowed: the
// caller handles a failed allocation).
unsafe impl GlobalAlloc for FailLarge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE && FAIL_LARGE.try_with(Cell::get).unwrap_or(false) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= LARGE && FAIL_LARGE.try_with(Cell::get).unwrap_or(false) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: FailLarge = FailLarge;

fn last_error() -> String {
    // SAFETY: a NUL-terminated string owned by this thread.
    unsafe { CStr::from_ptr(version::sld_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn kit() -> sld_train::beacon::BeaconKit {
    sld_train::beacon::beacon_kit(256, 192, 16, 4).expect("beacon kit")
}

fn from_file(path: &std::path::Path) -> (SldStatus, String) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut h = std::ptr::null_mut();
    // SAFETY: NUL-terminated path; writable out.
    let st = unsafe { localizer::sld_localizer_new_from_file(c.as_ptr(), &mut h) };
    let msg = last_error();
    if !h.is_null() {
        // SAFETY: a live handle.
        unsafe { localizer::sld_localizer_free(h) };
    }
    (st, msg)
}

#[test]
fn a_failed_allocation_at_creation_is_out_of_memory() {
    let kit = kit();
    let mut h = std::ptr::null_mut();
    let mut solver = std::ptr::null_mut();
    FAIL_LARGE.with(|f| f.set(true));
    // SAFETY: valid buffer and out pointers.
    let st = unsafe { localizer::sld_localizer_new(kit.model.as_ptr(), kit.model.len(), &mut h) };
    let msg = last_error();
    // SAFETY: valid out pointer; NULL options are the defaults.
    let st_solver = unsafe { geometry::sld_pnp_solver_new(1 << 20, std::ptr::null(), &mut solver) };
    let msg_solver = last_error();
    FAIL_LARGE.with(|f| f.set(false));
    assert_eq!((st, h.is_null()), (SldStatus::OutOfMemory, true), "{msg}");
    assert!(msg.contains("out of memory"), "{msg}");
    assert_eq!((st_solver, solver.is_null()), (SldStatus::OutOfMemory, true));
    assert!(msg_solver.contains("correspondences"), "{msg_solver}");

    // The same calls with memory to spare succeed.
    // SAFETY: as above.
    let st = unsafe { localizer::sld_localizer_new(kit.model.as_ptr(), kit.model.len(), &mut h) };
    assert_eq!(st, SldStatus::Ok);
    // SAFETY: a live handle, freed once.
    unsafe { localizer::sld_localizer_free(h) };
}

#[test]
fn files_are_checked_before_they_are_read() {
    let kit = kit();
    let dir = std::env::temp_dir().join(format!("sld-load-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    assert_eq!(from_file(&write("ok.sld", &kit.model)).0, SldStatus::Ok);

    // A 4 GiB sparse file holding a model then zeros: rejected from its
    // header and size alone (it used to be read whole first).
    let sparse = write("sparse.sld", &kit.model);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let (st, msg) = from_file(&sparse);
    assert_eq!(st, SldStatus::InvalidModel, "{msg}");
    assert!(
        msg.contains("trailing bytes") && msg.contains("sparse.sld"),
        "{msg}"
    );
    std::fs::remove_file(&sparse).unwrap();

    let (st, msg) = from_file(&write("short.sld", &kit.model[..kit.model.len() - 10]));
    assert_eq!(st, SldStatus::InvalidModel);
    assert!(msg.contains("truncated"), "{msg}");

    // A header declaring 2 GiB of data: over the limit, nothing reserved.
    let huge = br#"{"w":{"dtype":"F32","shape":[536870912],"data_offsets":[0,2147483648]}}"#;
    let mut f = (huge.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(huge);
    let (st, msg) = from_file(&write("huge.sld", &f));
    assert_eq!(st, SldStatus::InvalidModel);
    assert!(msg.contains("limit"), "{msg}");

    // An endless stream of zeros: header length 0, rejected at byte 8.
    #[cfg(unix)]
    {
        let (st, msg) = from_file(std::path::Path::new("/dev/zero"));
        assert_eq!(st, SldStatus::InvalidModel, "{msg}");
        assert!(msg.contains("header length 0"), "{msg}");
    }
    let (st, msg) = from_file(&dir.join("missing.sld"));
    assert_eq!(st, SldStatus::Io, "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pnp_misuse_gets_one_status_and_one_message() {
    let mut opts = std::mem::MaybeUninit::<SldPnpOptions>::uninit();
    // SAFETY: writable out.
    assert_eq!(
        unsafe { geometry::sld_pnp_options_default(opts.as_mut_ptr()) },
        SldStatus::Ok
    );
    // SAFETY: written by the call above.
    let opts = unsafe { opts.assume_init() };
    let new = |o: &SldPnpOptions, capacity: usize| {
        let mut s = std::ptr::null_mut();
        // SAFETY: valid options and out.
        let st = unsafe { geometry::sld_pnp_solver_new(capacity, o, &mut s) };
        (st, s, last_error())
    };
    // min_inliers above the capacity: no call could ever succeed.
    let (st, s, msg) = new(
        &SldPnpOptions {
            min_inliers: 20,
            ..opts
        },
        16,
    );
    assert_eq!((st, s.is_null()), (SldStatus::InvalidArgument, true));
    assert!(msg.contains("min_inliers 20 exceeds capacity 16"), "{msg}");
    // max_iterations 0: one sentence about that option only.
    let (st, _, msg) = new(
        &SldPnpOptions {
            max_iterations: 0,
            ..opts
        },
        16,
    );
    assert_eq!(st, SldStatus::InvalidArgument);
    assert_eq!(msg, "max_iterations is 0; RANSAC needs at least 1");

    let (st, solver, _) = new(&opts, 16);
    assert_eq!(st, SldStatus::Ok);
    let kit = sld_train::beacon::beacon_kit(128, 96, 12, 5).unwrap();
    let p2: Vec<f64> = kit.pixels.iter().flatten().copied().collect();
    let mut p3: Vec<f64> = kit.landmarks.iter().flatten().copied().collect();
    let mut conf = vec![1.0; 12];
    let cam = SldCamera {
        fx: kit.camera.fx,
        fy: kit.camera.fy,
        cx: kit.camera.cx,
        cy: kit.camera.cy,
        kappa: kit.camera.kappa,
    };
    let solve = |p3: &[f64], conf: &[f64]| {
        let mut res = SldPnpResult::default();
        // SAFETY: 12 rows each, valid camera and out.
        let st = unsafe {
            geometry::sld_pnp_solve(
                solver,
                p2.as_ptr(),
                p3.as_ptr(),
                conf.as_ptr(),
                12,
                &cam,
                &mut res,
                std::ptr::null_mut(),
            )
        };
        (st, last_error())
    };
    assert_eq!(solve(&p3, &conf).0, SldStatus::Ok);
    // A negative confidence is a bad argument, not a non-finite value.
    conf[3] = -0.5;
    let (st, msg) = solve(&p3, &conf);
    assert_eq!(st, SldStatus::InvalidArgument);
    assert_eq!(msg, "correspondence 3: its confidence is negative");
    conf[3] = 1.0;
    // Points ×1e300 are absurd, not "coincident or collinear".
    let scaled: Vec<f64> = p3.iter().map(|v| v * 1e300).collect();
    let (st, msg) = solve(&scaled, &conf);
    assert_eq!(st, SldStatus::InvalidArgument);
    assert!(msg.contains("beyond 1e15"), "{msg}");
    p3[5] = f64::NAN;
    let (st, msg) = solve(&p3, &conf);
    assert_eq!(st, SldStatus::NonFinite);
    assert_eq!(msg, "correspondence 1: its 3D point is NaN or infinite");
    // SAFETY: a live solver, freed once.
    unsafe { geometry::sld_pnp_solver_free(solver) };
}
