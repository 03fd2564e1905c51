//! The plain-data structs of the C ABI and their checked conversions to
//! `sld-core` types. Conventions (as everywhere in sld): pixel `(0, 0)` is
//! the *centre* of the top-left pixel, `u` right and `v` down; poses are
//! world-to-camera (`x_cam = R · x_world + t`), metres; times in µs.

use sld_core::{Camera, Image, PixelFormat, Pose};

use crate::status::{fail, Failure};

/// Pixel layout of an [`SldImage`] (the value of its `format` field).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SldPixelFormat {
    /// Red, green, blue; 3 bytes per pixel.
    Rgb8 = 0,
    /// Blue, green, red; 3 bytes per pixel (OpenCV's order).
    Bgr8 = 1,
    /// One luminance byte per pixel.
    Gray8 = 2,
}

/// A borrowed 8-bit image. The library reads it during the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SldImage {
    /// Width in pixels (> 0).
    pub width: u32,
    /// Height in pixels (> 0).
    pub height: u32,
    /// Bytes from the start of one row to the next (≥ width × bytes per pixel).
    pub stride: usize,
    /// An `SldPixelFormat` value.
    pub format: u32,
    /// First byte of the top row; `stride × (height − 1) + width × bytes per
    /// pixel` bytes must be readable.
    pub data: *const u8,
}

/// Pinhole intrinsics with one radial coefficient, in pixels of the image
/// they describe (`u = fx · x · (1 + kappa · r²) + cx`, `r² = x² + y²` on
/// normalised coordinates `x = X/Z, y = Y/Z`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SldCamera {
    /// Horizontal focal length, pixels (> 0).
    pub fx: f64,
    /// Vertical focal length, pixels (> 0).
    pub fy: f64,
    /// Principal point, horizontal, pixels (pixel-centre convention).
    pub cx: f64,
    /// Principal point, vertical, pixels (pixel-centre convention).
    pub cy: f64,
    /// Radial distortion on normalised coordinates (0 = none).
    pub kappa: f64,
}

/// A rigid world-to-camera transform: `x_cam = R · x_world + t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SldPose {
    /// `R`, row-major (`rotation[3 * row + col]`).
    pub rotation: [f64; 9],
    /// `t`, metres.
    pub translation: [f64; 3],
    /// Camera centre in the world frame, `−Rᵀ t`, metres.
    pub centre: [f64; 3],
}

/// Time spent in each stage of one localisation, microseconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SldStageTimes {
    /// Resize and normalise the image to the network input.
    pub preprocess_us: f64,
    /// Network forward pass.
    pub cnn_us: f64,
    /// Heatmap decoding.
    pub decode_us: f64,
    /// Robust PnP.
    pub pnp_us: f64,
}

/// Result of `sld_localizer_localize`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SldLocalization {
    /// The pose (valid only when the call returned `SLD_STATUS_OK`).
    pub pose: SldPose,
    /// PnP inliers (0 unless `SLD_STATUS_OK`).
    pub inliers: u32,
    /// Landmarks detected (heatmap peaks above the threshold), also filled
    /// when the call returned `SLD_STATUS_NO_POSE`.
    pub detections: u32,
    /// Stage timings, also filled on `SLD_STATUS_NO_POSE`.
    pub times: SldStageTimes,
}

/// One decoded landmark.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SldDetection {
    /// Landmark index (heatmap channel).
    pub landmark: u32,
    /// Horizontal position, pixels (pixel-centre convention).
    pub u: f32,
    /// Vertical position, pixels (pixel-centre convention).
    pub v: f32,
    /// Heatmap peak value.
    pub confidence: f32,
}

impl From<sld_core::Detection> for SldDetection {
    fn from(d: sld_core::Detection) -> Self {
        Self {
            landmark: d.landmark,
            u: d.u,
            v: d.v,
            confidence: d.confidence,
        }
    }
}

impl SldPose {
    pub(crate) fn from_pose(p: &Pose) -> Self {
        let rows = p.to_rows();
        let c = p.centre();
        let mut out = Self {
            centre: [c.x, c.y, c.z],
            ..Self::default()
        };
        for (r, row) in rows.iter().enumerate() {
            out.rotation[3 * r..3 * r + 3].copy_from_slice(&row[..3]);
            out.translation[r] = row[3];
        }
        out
    }
}

impl SldImage {
    /// Checks the description and borrows the pixels.
    ///
    /// # Safety
    /// `data` must point to the number of readable bytes the fields promise.
    pub(crate) unsafe fn borrow_image(&self) -> Result<Image<'_>, Failure> {
        let format = match self.format {
            0 => PixelFormat::Rgb8,
            1 => PixelFormat::Bgr8,
            2 => PixelFormat::Gray8,
            f => {
                return Err(fail!(
                    InvalidArgument,
                    "image format {f} is not an SldPixelFormat"
                ))
            }
        };
        if self.width == 0 || self.height == 0 {
            return Err(fail!(
                InvalidImage,
                "image is {}x{} pixels: width and height must be > 0",
                self.width,
                self.height
            ));
        }
        let row = (self.width as usize).checked_mul(format.channels());
        let Some(row) = row.filter(|&r| r <= self.stride) else {
            return Err(fail!(
                InvalidImage,
                "image stride {} bytes is smaller than width {} x {} bytes per pixel",
                self.stride,
                self.width,
                format.channels()
            ));
        };
        let len = self
            .stride
            .checked_mul(self.height as usize - 1)
            .and_then(|v| v.checked_add(row))
            .filter(|&n| n <= isize::MAX as usize);
        let Some(len) = len else {
            return Err(fail!(
                InvalidImage,
                "image size overflows: stride {} x height {}",
                self.stride,
                self.height
            ));
        };
        if self.data.is_null() {
            return Err(Failure::null("image->data"));
        }
        // SAFETY: non-null, `len` ≤ isize::MAX, and the caller promises
        // `len` readable bytes for the duration of the call.
        let data = unsafe { core::slice::from_raw_parts(self.data, len) };
        Image::new(self.width, self.height, self.stride, format, data)
            .map_err(|e| fail!(InvalidImage, "image: {e}"))
    }
}

impl SldCamera {
    /// A checked camera for an image of `width × height` pixels.
    pub(crate) fn to_camera(self, width: u32, height: u32) -> Result<Camera, Failure> {
        Camera::new(width, height, self.fx, self.fy, self.cx, self.cy, self.kappa).map_err(|e| {
            fail!(
                InvalidCamera,
                "camera (fx {}, fy {}, cx {}, cy {}, kappa {}): {e}",
                self.fx,
                self.fy,
                self.cx,
                self.cy,
                self.kappa
            )
        })
    }
}

/// Reads `*ptr`, or fails naming the argument when it is NULL.
///
/// # Safety
/// A non-null `ptr` must point to a valid `T`.
pub(crate) unsafe fn read<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller promises a valid `T` behind a non-null pointer.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(name))
}

/// Checks a caller's output array: not NULL, and room for `needed` items
/// (`capacity` is in items; `what` names them in the message).
pub(crate) fn check_room<T>(
    ptr: *mut T,
    name: &str,
    capacity: usize,
    needed: usize,
    what: &str,
) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    if capacity < needed {
        return Err(fail!(
            BufferTooSmall,
            "{name} has room for {capacity} {what}, {needed} needed"
        ));
    }
    Ok(())
}

/// A checked, non-null output pointer: written once with [`Out::set`],
/// never read (the caller's memory may be uninitialised).
pub(crate) struct Out<T>(core::ptr::NonNull<T>);

impl<T> Out<T> {
    /// Fails naming the argument when `ptr` is NULL.
    pub(crate) fn new(ptr: *mut T, name: &str) -> Result<Self, Failure> {
        core::ptr::NonNull::new(ptr)
            .map(Self)
            .ok_or_else(|| Failure::null(name))
    }

    /// Writes `value` without reading or dropping the old contents.
    ///
    /// # Safety
    /// The pointer must be valid for writing a `T` (the C caller's promise).
    pub(crate) unsafe fn set(&self, value: T) {
        // SAFETY: non-null by construction, writable by the caller's promise.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Thresholds a pose must meet before `sld_localizer_localize` returns it
/// (`sld_localizer_set_gate`); a pose that fails any of them gives
/// `SLD_STATUS_NO_POSE`. All zero returns every pose PnP finds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SldGate {
    /// Fewest PnP inliers.
    pub min_inliers: u32,
    /// Smallest share of the detections that are inliers, `[0, 1]`.
    pub min_inlier_ratio: f32,
    /// Smallest summed confidence of the inliers (≥ 0).
    pub min_inlier_confidence: f32,
    /// Smallest share of the landmarks expected in view (under the pose)
    /// that are inliers, `[0, 1]`.
    pub min_visible_fraction: f32,
}

impl From<sld_core::Gate> for SldGate {
    fn from(g: sld_core::Gate) -> Self {
        Self {
            min_inliers: g.min_inliers,
            min_inlier_ratio: g.min_inlier_ratio,
            min_inlier_confidence: g.min_inlier_confidence,
            min_visible_fraction: g.min_visible_fraction,
        }
    }
}

impl SldGate {
    /// The checked `sld-core` gate.
    pub(crate) fn to_gate(self) -> Result<sld_core::Gate, Failure> {
        let g = sld_core::Gate {
            min_inliers: self.min_inliers,
            min_inlier_ratio: self.min_inlier_ratio,
            min_inlier_confidence: self.min_inlier_confidence,
            min_visible_fraction: self.min_visible_fraction,
        };
        g.validate().map_err(|e| fail!(InvalidArgument, "gate: {e}"))?;
        Ok(g)
    }
}

/// The evidence behind the last pose PnP found, accepted by the gate or not
/// (`sld_localizer_last_quality`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SldPoseQuality {
    /// PnP inliers.
    pub inliers: u32,
    /// Detections passed to PnP.
    pub detections: u32,
    /// Landmarks in front of the camera projecting inside the image under
    /// the pose.
    pub expected_visible: u32,
    /// 1 when the gate accepted the pose, 0 when it rejected it.
    pub accepted: u32,
    /// `inliers / detections`.
    pub inlier_ratio: f32,
    /// Sum of the inliers' confidences.
    pub inlier_confidence: f32,
    /// `inliers / expected_visible`.
    pub visible_fraction: f32,
    /// Root-mean-square reprojection error of the inliers, pixels of the
    /// network input.
    pub rms_px: f32,
}

impl SldPoseQuality {
    /// `q` with the gate's verdict.
    pub fn new(q: &sld_core::PoseQuality, accepted: bool) -> Self {
        Self {
            inliers: q.inliers,
            detections: q.detections,
            expected_visible: q.expected_visible,
            accepted: accepted as u32,
            inlier_ratio: q.inlier_ratio,
            inlier_confidence: q.inlier_confidence,
            visible_fraction: q.visible_fraction,
            rms_px: q.rms_px,
        }
    }
}
