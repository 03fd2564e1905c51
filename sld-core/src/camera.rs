//! Pinhole camera with one radial distortion coefficient.
//!
//! The model is COLMAP's `SIMPLE_RADIAL` generalised to separate focal
//! lengths, which is also what an Indoor6 `*.intrinsics.txt` line
//! (`W H f cx cy kappa`) describes:
//!
//! ```text
//! normalised:  (x, y) = (X / Z, Y / Z)              camera frame, Z > 0
//! distorted:   (xd, yd) = (x, y) · (1 + κ · (x² + y²))
//! pixels:      (u, v) = (fx · xd + cx, fy · yd + cy)
//! ```
//!
//! Pixel convention: `(0, 0)` is the **centre** of the top-left pixel, `u`
//! grows to the right, `v` grows downwards. Focal lengths and principal point
//! are in pixels; `κ` is dimensionless (applied to normalised coordinates).

use core::fmt;

/// Intrinsics of a pinhole camera with one radial coefficient.
///
/// Construct with [`Camera::new`] (checked) — every other method then
/// assumes valid parameters, which the checked constructor guarantees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Horizontal focal length in pixels.
    pub fx: f64,
    /// Vertical focal length in pixels.
    pub fy: f64,
    /// Principal point, horizontal, in pixels (pixel-centre convention).
    pub cx: f64,
    /// Principal point, vertical, in pixels (pixel-centre convention).
    pub cy: f64,
    /// Radial distortion coefficient κ on normalised coordinates (0 = none).
    pub kappa: f64,
}

/// Why a camera or a point could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraError {
    /// A focal length is zero, negative or not finite.
    InvalidFocal,
    /// The principal point or κ is not finite.
    NonFinite,
    /// Width or height is zero.
    EmptyImage,
    /// A point lies at or behind the camera (`Z ≤ 0`) or is not finite.
    BehindCamera,
    /// Undistortion did not converge: the pixel lies outside the region where
    /// the radial model is invertible (strong negative κ far from the centre).
    NotInvertible,
}

impl fmt::Display for CameraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidFocal => "focal length must be finite and > 0 pixels",
            Self::NonFinite => "principal point and kappa must be finite",
            Self::EmptyImage => "image width and height must be > 0",
            Self::BehindCamera => "point is at or behind the camera (z <= 0) or not finite",
            Self::NotInvertible => "radial distortion is not invertible at this pixel",
        })
    }
}

impl core::error::Error for CameraError {}

impl Camera {
    /// A checked camera: focal lengths finite and `> 0`, everything finite,
    /// a non-empty image.
    pub fn new(
        width: u32,
        height: u32,
        fx: f64,
        fy: f64,
        cx: f64,
        cy: f64,
        kappa: f64,
    ) -> Result<Self, CameraError> {
        let cam = Self {
            width,
            height,
            fx,
            fy,
            cx,
            cy,
            kappa,
        };
        cam.validate()?;
        Ok(cam)
    }

    /// A distortion-free camera with one focal length `f` (pixels).
    pub fn pinhole(width: u32, height: u32, f: f64, cx: f64, cy: f64) -> Result<Self, CameraError> {
        Self::new(width, height, f, f, cx, cy, 0.0)
    }

    /// Checks the invariants [`Camera::new`] establishes (useful after
    /// mutating public fields).
    pub fn validate(&self) -> Result<(), CameraError> {
        if !(self.fx.is_finite() && self.fy.is_finite() && self.fx > 0.0 && self.fy > 0.0) {
            return Err(CameraError::InvalidFocal);
        }
        if !(self.cx.is_finite() && self.cy.is_finite() && self.kappa.is_finite()) {
            return Err(CameraError::NonFinite);
        }
        if self.width == 0 || self.height == 0 {
            return Err(CameraError::EmptyImage);
        }
        Ok(())
    }

    /// The same camera for an image resized by `(sx, sy)` (new size =
    /// old size × scale). With the pixel-centre convention a pixel centre `u`
    /// maps to `(u + 0.5)·sx − 0.5`. κ is unchanged (it acts on normalised
    /// coordinates).
    pub fn scaled(&self, sx: f64, sy: f64, width: u32, height: u32) -> Result<Self, CameraError> {
        Self::new(
            width,
            height,
            self.fx * sx,
            self.fy * sy,
            (self.cx + 0.5) * sx - 0.5,
            (self.cy + 0.5) * sy - 0.5,
            self.kappa,
        )
    }

    /// Mean focal length in pixels, used to convert pixel thresholds to
    /// normalised ones.
    pub fn mean_focal(&self) -> f64 {
        0.5 * (self.fx + self.fy)
    }

    /// Projects a point in the **camera frame** (metres) to pixels.
    pub fn project(&self, p_cam: [f64; 3]) -> Result<[f64; 2], CameraError> {
        let [x, y, z] = p_cam;
        if !(z > 0.0 && x.is_finite() && y.is_finite() && z.is_finite()) {
            return Err(CameraError::BehindCamera);
        }
        Ok(self.distort_to_pixel([x / z, y / z]))
    }

    /// Maps undistorted normalised coordinates `(X/Z, Y/Z)` to pixels.
    pub fn distort_to_pixel(&self, n: [f64; 2]) -> [f64; 2] {
        let d = 1.0 + self.kappa * (n[0] * n[0] + n[1] * n[1]);
        [self.fx * n[0] * d + self.cx, self.fy * n[1] * d + self.cy]
    }

    /// Maps a pixel to undistorted normalised coordinates `(X/Z, Y/Z)`: the
    /// ray through the pixel is `(x, y, 1)` in the camera frame.
    pub fn unproject(&self, px: [f64; 2]) -> Result<[f64; 2], CameraError> {
        if !(px[0].is_finite() && px[1].is_finite()) {
            return Err(CameraError::NonFinite);
        }
        let xd = (px[0] - self.cx) / self.fx;
        let yd = (px[1] - self.cy) / self.fy;
        if self.kappa == 0.0 {
            return Ok([xd, yd]);
        }
        // Solve rd = r (1 + κ r²) for r by Newton's method, then scale.
        let rd = libm::sqrt(xd * xd + yd * yd);
        if rd == 0.0 {
            return Ok([0.0, 0.0]);
        }
        let mut r = rd;
        for _ in 0..20 {
            let f = r * (1.0 + self.kappa * r * r) - rd;
            let df = 1.0 + 3.0 * self.kappa * r * r;
            if df <= 1e-9 {
                return Err(CameraError::NotInvertible);
            }
            let step = f / df;
            r -= step;
            if libm::fabs(step) <= 1e-15 * (1.0 + r) {
                break;
            }
        }
        let residual = r * (1.0 + self.kappa * r * r) - rd;
        if !(r > 0.0 && r.is_finite()) || libm::fabs(residual) > 1e-10 * (1.0 + rd) {
            return Err(CameraError::NotInvertible);
        }
        // The inverse must lie on the monotonic branch of the model.
        if 1.0 + 3.0 * self.kappa * r * r <= 0.0 {
            return Err(CameraError::NotInvertible);
        }
        let s = r / rd;
        Ok([xd * s, yd * s])
    }

    /// Removes distortion from a pixel: the pixel where the same ray would
    /// land in the distortion-free camera with the same `fx, fy, cx, cy`.
    pub fn undistort_pixel(&self, px: [f64; 2]) -> Result<[f64; 2], CameraError> {
        let n = self.unproject(px)?;
        Ok([self.fx * n[0] + self.cx, self.fy * n[1] + self.cy])
    }
}
