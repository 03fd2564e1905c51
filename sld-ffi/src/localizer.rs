//! `SldLocalizer`: one loaded model with all per-frame memory reserved;
//! image + intrinsics in, world-to-camera pose out.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_char;

use sld_core::model::container::{self, MAX_MODEL_BYTES};
use sld_core::model::ModelError;
use sld_core::{CameraError, DecodeError, LocalizeError, Localizer, PnpError};

use crate::guard::{self, call, with_handle, ErrorSlot};
use crate::status::{fail, Failure, SldStatus, Text};
use crate::types::{
    check_room, read, Out, SldCamera, SldDetection, SldGate, SldImage, SldLocalization, SldPose,
    SldPoseQuality, SldStageTimes,
};

/// The bytes of a model: a private copy, or the caller's buffer.
enum ModelBytes {
    Owned(Vec<u8>),
    Borrowed { ptr: *const u8, len: usize },
}

impl AsRef<[u8]> for ModelBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            // SAFETY: `sld_localizer_new_borrowed`'s contract: the buffer
            // stays valid and unchanged until the handle is freed; `len`
            // was checked against isize::MAX and `ptr` for NULL.
            Self::Borrowed { ptr, len } => unsafe { core::slice::from_raw_parts(*ptr, *len) },
        }
    }
}

/// A loaded model and its working memory (opaque). Use one handle from one
/// thread at a time; different handles are independent.
pub struct SldLocalizer {
    inner: Localizer<ModelBytes>,
    error: Text,
    /// Size of the last localised image (to report detections in its pixels).
    last_size: (u32, u32),
}

/// What a model expects and what it costs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SldModelInfo {
    /// Network input width, pixels (images of any size are resized to it).
    pub input_width: u32,
    /// Network input height, pixels.
    pub input_height: u32,
    /// Network input channels (3 = RGB, 1 = gray).
    pub input_channels: u32,
    /// Number of landmarks `L` (heatmaps).
    pub landmarks: u32,
    /// Heatmap width, cells.
    pub heatmap_width: u32,
    /// Heatmap height, cells.
    pub heatmap_height: u32,
    /// Input pixels per heatmap cell.
    pub stride: u32,
    /// Bytes of per-frame working memory reserved at creation.
    pub arena_bytes: usize,
    /// True when the weights are read in place from the model bytes.
    pub zero_copy: bool,
}

fn new_handle(bytes: ModelBytes, out: &Out<*mut SldLocalizer>) -> Result<(), Failure> {
    let inner = Localizer::new(bytes).map_err(|e| match e {
        ModelError::OutOfMemory { .. } => fail!(OutOfMemory, "loading the model: {e}"),
        e => fail!(InvalidModel, "invalid model: {e}"),
    })?;
    let handle = Box::new(SldLocalizer {
        inner,
        error: Text::new(),
        last_size: (0, 0),
    });
    // SAFETY: `out` is writable (the caller's promise).
    unsafe { out.set(Box::into_raw(handle)) };
    Ok(())
}

/// Checks `(ptr, len)` as a byte buffer.
fn model_slice_args(model: *const u8, len: usize) -> Result<(), Failure> {
    if model.is_null() {
        return Err(Failure::null("model"));
    }
    if len == 0 {
        return Err(fail!(InvalidModel, "model buffer is empty (0 bytes)"));
    }
    if len > isize::MAX as usize {
        return Err(fail!(InvalidArgument, "model size {len} bytes overflows"));
    }
    Ok(())
}

/// Runs `body` with `out` checked and cleared to NULL first, so a failed
/// creation always leaves `*out == NULL`.
fn create(
    out: *mut *mut SldLocalizer,
    body: impl FnOnce(&Out<*mut SldLocalizer>) -> Result<(), Failure>,
) -> SldStatus {
    call(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is writable (the caller's promise).
        unsafe { out.set(core::ptr::null_mut()) };
        body(&out)
    })
}

/// Loads a model from `len` bytes at `model` (a `.sld` file's contents).
/// The library **copies** the bytes: the buffer may be freed as soon as this
/// returns. On success `*out` is a new handle (free it with
/// `sld_localizer_free`); on failure `*out` is NULL.
///
/// Creation allocates everything the handle will need: the copy, the
/// parsed model and every per-frame buffer. `sld_localizer_localize` then
/// never allocates.
///
/// # Safety
/// `model` must point to `len` readable bytes; `out` to a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_new(
    model: *const u8,
    len: usize,
    out: *mut *mut SldLocalizer,
) -> SldStatus {
    create(out, |out| {
        model_slice_args(model, len)?;
        let mut copy = Vec::new();
        copy.try_reserve_exact(len)
            .map_err(|_| fail!(OutOfMemory, "cannot reserve {len} bytes for the model"))?;
        // SAFETY: checked non-null and ≤ isize::MAX; readable by contract.
        copy.extend_from_slice(unsafe { core::slice::from_raw_parts(model, len) });
        new_handle(ModelBytes::Owned(copy), out)
    })
}

/// Like `sld_localizer_new`, but **without copying**: the handle reads the
/// weights in place from `model` (when 4-byte aligned; else they are copied
/// once). Suits models in flash or memory-mapped files. The buffer must
/// stay valid and unchanged until `sld_localizer_free`.
///
/// # Safety
/// As `sld_localizer_new`, and `model` must outlive the handle unchanged.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_new_borrowed(
    model: *const u8,
    len: usize,
    out: *mut *mut SldLocalizer,
) -> SldStatus {
    create(out, |out| {
        model_slice_args(model, len)?;
        new_handle(ModelBytes::Borrowed { ptr: model, len }, out)
    })
}

/// Loads a model from the `.sld` file at `path` (NUL-terminated, UTF-8 on
/// Windows, bytes elsewhere). The header is read and checked first: a file
/// whose size differs from what its header declares, or over 1 GiB, is
/// `SLD_STATUS_INVALID_MODEL` before the rest is read. Not available in the firmware (`no_std`)
/// build, which has no file system.
///
/// # Safety
/// `path` must be a NUL-terminated string; `out` a writable pointer.
#[cfg(feature = "std")]
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_new_from_file(
    path: *const c_char,
    out: *mut *mut SldLocalizer,
) -> SldStatus {
    create(out, |out| {
        if path.is_null() {
            return Err(Failure::null("path"));
        }
        // SAFETY: non-null and NUL-terminated by contract.
        let cpath = unsafe { core::ffi::CStr::from_ptr(path) };
        let p = path_from_c(cpath)?;
        let bytes = read_model_file(&p)?;
        new_handle(ModelBytes::Owned(bytes), out)
            .map_err(|f| Failure::new(f.status, format_args!("{}: {}", p.display(), f.text.as_str())))
    })
}

/// Reads a `.sld` file, checking before it reads on: the header length,
/// then the size the header declares against the file's size and
/// [`MAX_MODEL_BYTES`]; the buffer is reserved with `try_reserve`. A 4 GiB
/// sparse file or `/dev/zero` fails at once, never after filling memory.
#[cfg(feature = "std")]
fn read_model_file(p: &std::path::Path) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    let io = |e: std::io::Error| fail!(Io, "cannot read model {}: {e}", p.display());
    let bad = |e: ModelError| fail!(InvalidModel, "{}: invalid model: {e}", p.display());
    let mut f = std::fs::File::open(p).map_err(io)?;
    let file_len = f.metadata().map_err(io)?;
    let file_len = file_len.is_file().then_some(file_len.len());
    let mut head = [0u8; 8];
    let got = read_up_to(&mut f, &mut head).map_err(io)?;
    let n = container::header_len(&head[..got]).map_err(bad)?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(8 + n)
        .map_err(|_| fail!(OutOfMemory, "cannot reserve {} bytes for the model header", 8 + n))?;
    bytes.extend_from_slice(&head);
    (&mut f).take(n as u64).read_to_end(&mut bytes).map_err(io)?;
    let declared = container::declared_len(&bytes).map_err(bad)?;
    if declared as u64 > MAX_MODEL_BYTES {
        return Err(fail!(
            InvalidModel,
            "{}: the header declares {declared} bytes, more than the {MAX_MODEL_BYTES}-byte limit",
            p.display()
        ));
    }
    if let Some(len) = file_len.filter(|&l| l != declared as u64) {
        return Err(bad(ModelError::SizeMismatch {
            declared,
            actual: usize::try_from(len).unwrap_or(usize::MAX),
        }));
    }
    bytes
        .try_reserve_exact(declared - bytes.len())
        .map_err(|_| fail!(OutOfMemory, "cannot reserve {declared} bytes for the model"))?;
    // One byte more than declared: a stream (no file size) with trailing
    // bytes is caught too.
    (&mut f)
        .take((declared - bytes.len()) as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() != declared {
        return Err(bad(ModelError::SizeMismatch {
            declared,
            actual: bytes.len(),
        }));
    }
    Ok(bytes)
}

/// Reads until `buf` is full or the end of the file; returns the count.
#[cfg(feature = "std")]
fn read_up_to(f: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(all(feature = "std", unix))]
fn path_from_c(c: &core::ffi::CStr) -> Result<std::path::PathBuf, Failure> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(
        c.to_bytes(),
    )))
}

#[cfg(all(feature = "std", not(unix)))]
fn path_from_c(c: &core::ffi::CStr) -> Result<std::path::PathBuf, Failure> {
    c.to_str()
        .map(std::path::PathBuf::from)
        .map_err(|_| fail!(InvalidArgument, "path is not valid UTF-8"))
}

/// Frees a handle and everything it owns. NULL is ignored.
///
/// # Safety
/// `localizer` must be NULL or a handle from `sld_localizer_new*` not yet
/// freed; it must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_free(localizer: *mut SldLocalizer) {
    if !localizer.is_null() {
        let _ = guard::catch(|| {
            // SAFETY: created by `Box::into_raw` and not freed (contract).
            drop(unsafe { Box::from_raw(localizer) });
            Ok(())
        });
    }
}

impl ErrorSlot for SldLocalizer {
    fn error_slot(&mut self) -> &mut Text {
        &mut self.error
    }
}

/// The handle's last error message: of the most recent failed call on this
/// handle, "" if none. NULL gives "". Valid until the next call on the
/// handle.
///
/// # Safety
/// `localizer` must be NULL or a valid handle.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_last_error(localizer: *const SldLocalizer) -> *const c_char {
    // SAFETY: NULL or valid (contract).
    match unsafe { localizer.as_ref() } {
        Some(h) => h.error.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Describes the loaded model.
///
/// # Safety
/// `localizer` must be a valid handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_info(
    localizer: *const SldLocalizer,
    out: *mut SldModelInfo,
) -> SldStatus {
    call(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: valid handle (contract).
        let h = unsafe { read(localizer, "localizer") }?;
        let m = h.inner.model();
        let spec = &m.info().graph.input;
        let [hh, hw] = m.plan().heatmap_hw;
        let info = SldModelInfo {
            input_width: spec.width,
            input_height: spec.height,
            input_channels: spec.channels,
            landmarks: m.landmarks().len() as u32,
            heatmap_width: hw as u32,
            heatmap_height: hh as u32,
            stride: m.info().stride,
            arena_bytes: h.inner.arena_bytes(),
            zero_copy: m.is_zero_copy(),
        };
        // SAFETY: writable (contract).
        unsafe { out.set(info) };
        Ok(())
    })
}

/// Copies the `L` landmark positions (world frame, metres) into `xyz` as
/// `L` consecutive `(x, y, z)` triples. `capacity` is in landmarks; fewer
/// than `L` fails with `SLD_STATUS_BUFFER_TOO_SMALL` and writes nothing.
///
/// # Safety
/// `localizer` valid; `xyz` must hold `3 × capacity` writable doubles.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_landmarks(
    localizer: *const SldLocalizer,
    xyz: *mut f64,
    capacity: usize,
) -> SldStatus {
    call(|| {
        // SAFETY: valid handle (contract).
        let h = unsafe { read(localizer, "localizer") }?;
        let lm = h.inner.model().landmarks();
        check_room(xyz, "xyz", capacity, lm.len(), "landmarks")?;
        for (i, p) in lm.iter().enumerate() {
            for (k, v) in p.iter().enumerate() {
                // SAFETY: i < L ≤ capacity, so 3i + k < 3·capacity.
                unsafe { xyz.add(3 * i + k).write(*v) };
            }
        }
        Ok(())
    })
}

/// Localises one image: resize + normalise, CNN, heatmap decoding, robust
/// PnP. `camera` holds the intrinsics of *this* image (any size; the model
/// input size is handled inside). Never allocates.
///
/// Returns `SLD_STATUS_OK` with the pose in `out`, or `SLD_STATUS_NO_POSE`
/// when the image could not be localised (then `out->detections` and
/// `out->times` are still filled); other statuses mean bad arguments.
///
/// # Safety
/// `localizer` valid and not used by another thread during the call;
/// `image->data` readable as `image` describes; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_localize(
    localizer: *mut SldLocalizer,
    image: *const SldImage,
    camera: *const SldCamera,
    out: *mut SldLocalization,
) -> SldStatus {
    with_handle(localizer, "localizer", |h| {
        // A call rejected below leaves no detections of an earlier frame.
        h.inner.clear_last();
        let out = Out::new(out, "out")?;
        // SAFETY: valid structs behind non-null pointers (contract).
        let image = unsafe { read(image, "image") }?;
        // SAFETY: as above.
        let camera = unsafe { read(camera, "camera") }?;
        // SAFETY: the pixel buffer is readable as described (contract).
        let img = unsafe { image.borrow_image() }?;
        let cam = camera.to_camera(image.width, image.height)?;
        h.last_size = (image.width, image.height);
        let result = h.inner.localize(&img, &cam);
        let t = h.inner.last_times();
        let times = SldStageTimes {
            preprocess_us: t.preprocess_us,
            cnn_us: t.cnn_us,
            decode_us: t.decode_us,
            pnp_us: t.pnp_us,
        };
        let detections = h.inner.last_detections().len() as u32;
        let (loc, err) = match result {
            Ok(l) => (
                SldLocalization {
                    pose: SldPose::from_pose(&l.pose),
                    inliers: l.inliers as u32,
                    detections,
                    times,
                },
                None,
            ),
            Err(e) => (
                SldLocalization {
                    detections,
                    times,
                    ..SldLocalization::default()
                },
                Some(e),
            ),
        };
        // SAFETY: writable (contract).
        unsafe { out.set(loc) };
        match err {
            None => Ok(()),
            Some(e) => Err(localize_failure(e, detections)),
        }
    })
}

fn localize_failure(e: LocalizeError, detections: u32) -> Failure {
    match e {
        LocalizeError::Camera(c) => fail!(InvalidCamera, "camera: {c}"),
        LocalizeError::CameraSizeMismatch => fail!(InvalidCamera, "{e}"),
        LocalizeError::Decode(d @ DecodeError::NonFinite { .. }) => {
            fail!(NonFinite, "the network produced non-finite heatmaps: {d}")
        }
        LocalizeError::Decode(d) => fail!(InvalidModel, "heatmap decoding: {d}"),
        LocalizeError::Network(n) => fail!(InvalidModel, "network: {n}"),
        LocalizeError::Pnp(PnpError::InvalidCamera(CameraError::NotInvertible)) => {
            fail!(InvalidCamera, "kappa is not invertible over the image")
        }
        LocalizeError::Pnp(p) => fail!(NoPose, "no pose from {detections} detections: {p}"),
        LocalizeError::Unreliable { .. } => fail!(NoPose, "no pose: {e}"),
    }
}

/// Sets the reliability gate: the thresholds a pose must meet before
/// `sld_localizer_localize` returns it (a new handle has the calibrated
/// default, see `sld_localizer_gate`). A field out of range gives
/// `SLD_STATUS_INVALID_ARGUMENT` and keeps the old gate.
///
/// # Safety
/// `localizer` valid and not used by another thread during the call;
/// `gate` readable.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_set_gate(
    localizer: *mut SldLocalizer,
    gate: *const SldGate,
) -> SldStatus {
    with_handle(localizer, "localizer", |h| {
        // SAFETY: readable struct behind a non-null pointer (contract).
        let g = unsafe { read(gate, "gate") }?;
        h.inner.gate = g.to_gate()?;
        Ok(())
    })
}

/// Splits the network over `threads` threads (1 to 16; 1, the default,
/// is the calling thread alone). The worker threads and their scratch are
/// created here; `sld_localizer_localize` then still never allocates, and
/// gives the same bits for any count. Out of range is
/// `SLD_STATUS_INVALID_ARGUMENT`; a thread or memory the system refuses is
/// `SLD_STATUS_OUT_OF_MEMORY`; either way the handle keeps its threads. Not
/// in the firmware (`no_std`) build.
///
/// # Safety
/// `localizer` valid and not used by another thread during the call.
#[cfg(feature = "std")]
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_set_threads(localizer: *mut SldLocalizer, threads: u32) -> SldStatus {
    with_handle(localizer, "localizer", |h| {
        h.inner.set_threads(threads as usize).map_err(|e| match e {
            sld_core::ThreadsError::OutOfRange(_) => fail!(InvalidArgument, "{e}"),
            e => fail!(OutOfMemory, "{e}"),
        })
    })
}

/// Writes the handle's current reliability gate to `out`.
///
/// # Safety
/// `localizer` valid; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_gate(localizer: *const SldLocalizer, out: *mut SldGate) -> SldStatus {
    call(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: valid handle (contract).
        let h = unsafe { read(localizer, "localizer") }?;
        // SAFETY: writable (contract).
        unsafe { out.set(h.inner.gate.into()) };
        Ok(())
    })
}

/// Writes the evidence behind the pose of the last `sld_localizer_localize`
/// call to `out`: also when the gate rejected it (`accepted` = 0, the call
/// returned `SLD_STATUS_NO_POSE`). When that call found no pose at all (or
/// failed earlier), returns `SLD_STATUS_NO_POSE` and writes zeros.
///
/// # Safety
/// `localizer` valid; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_last_quality(
    localizer: *const SldLocalizer,
    out: *mut SldPoseQuality,
) -> SldStatus {
    call(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: valid handle (contract).
        let h = unsafe { read(localizer, "localizer") }?;
        let q = h.inner.last_quality();
        let v = q.map_or_else(SldPoseQuality::default, |q| {
            SldPoseQuality::new(&q, h.inner.gate.check(&q).is_ok())
        });
        // SAFETY: writable (contract).
        unsafe { out.set(v) };
        match q {
            Some(_) => Ok(()),
            None => Err(fail!(NoPose, "the last localisation found no pose")),
        }
    })
}

/// Copies the detections of the last `sld_localizer_localize` call (also
/// when it returned `SLD_STATUS_NO_POSE`) into `out`, in pixels of that
/// call's image; `*count` receives how many. `capacity` below the number of
/// detections fails with `SLD_STATUS_BUFFER_TOO_SMALL` (`*count` then holds
/// the number needed); `L` entries always suffice.
///
/// # Safety
/// `localizer` valid; `out` must hold `capacity` writable entries; `count`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn sld_localizer_detections(
    localizer: *const SldLocalizer,
    out: *mut SldDetection,
    capacity: usize,
    count: *mut usize,
) -> SldStatus {
    call(|| {
        let count = Out::new(count, "count")?;
        // SAFETY: valid handle (contract).
        let h = unsafe { read(localizer, "localizer") }?;
        let dets = h.inner.last_detections();
        // SAFETY: writable (contract).
        unsafe { count.set(dets.len()) };
        if dets.is_empty() {
            return Ok(());
        }
        check_room(out, "out", capacity, dets.len(), "detections")?;
        let spec = &h.inner.model().info().graph.input;
        let sx = h.last_size.0 as f32 / spec.width as f32;
        let sy = h.last_size.1 as f32 / spec.height as f32;
        for (i, d) in dets.iter().enumerate() {
            let mut d: SldDetection = (*d).into();
            // Network-input pixels → image pixels (pixel-centre convention).
            d.u = (d.u + 0.5) * sx - 0.5;
            d.v = (d.v + 0.5) * sy - 0.5;
            // SAFETY: i < len ≤ capacity.
            unsafe { out.add(i).write(d) };
        }
        Ok(())
    })
}
