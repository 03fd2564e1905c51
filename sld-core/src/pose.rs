//! Rigid poses in the world-to-camera convention and the recall metrics.
//!
//! A [`Pose`] maps world points (metres) into the camera frame:
//! `x_cam = R · x_world + t` (COLMAP / Indoor6 `*.pose.txt`). The camera
//! centre in world coordinates is `c = −Rᵀ t`.

use nalgebra::{Matrix3, Vector3};

/// World-to-camera rigid transform `x_cam = R · x_world + t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    /// Rotation `R` (orthonormal, det +1).
    pub rotation: Matrix3<f64>,
    /// Translation `t` in metres (camera frame).
    pub translation: Vector3<f64>,
}

impl Default for Pose {
    fn default() -> Self {
        Self::identity()
    }
}

impl Pose {
    /// The identity transform.
    pub fn identity() -> Self {
        Self {
            rotation: Matrix3::identity(),
            translation: Vector3::zeros(),
        }
    }

    /// A pose from `R` and `t` (not checked; see [`Pose::is_valid`]).
    pub fn new(rotation: Matrix3<f64>, translation: Vector3<f64>) -> Self {
        Self {
            rotation,
            translation,
        }
    }

    /// A pose from a rotation vector (axis × angle, radians) and `t`.
    pub fn from_axis_angle(omega: Vector3<f64>, translation: Vector3<f64>) -> Self {
        Self::new(so3_exp(&omega), translation)
    }

    /// A pose whose camera centre is `centre` (world, metres) with rotation `R`.
    pub fn from_centre(rotation: Matrix3<f64>, centre: Vector3<f64>) -> Self {
        Self::new(rotation, -(rotation * centre))
    }

    /// True when all entries are finite, `R` is orthonormal to `tol` and
    /// `det R > 0`.
    pub fn is_valid(&self, tol: f64) -> bool {
        let finite = self
            .rotation
            .iter()
            .chain(self.translation.iter())
            .all(|v| v.is_finite());
        if !finite {
            return false;
        }
        let e = self.rotation.transpose() * self.rotation - Matrix3::identity();
        e.iter().all(|v| libm::fabs(*v) <= tol) && self.rotation.determinant() > 0.0
    }

    /// Maps a world point (metres) into the camera frame.
    pub fn transform(&self, x_world: &Vector3<f64>) -> Vector3<f64> {
        self.rotation * x_world + self.translation
    }

    /// `self ∘ other`: first `other`, then `self` (`x ↦ self(other(x))`).
    pub fn compose(&self, other: &Pose) -> Pose {
        Pose::new(
            self.rotation * other.rotation,
            self.rotation * other.translation + self.translation,
        )
    }

    /// The inverse transform (camera-to-world for a world-to-camera pose).
    pub fn inverse(&self) -> Pose {
        let rt = self.rotation.transpose();
        Pose::new(rt, -(rt * self.translation))
    }

    /// Camera centre in world coordinates (metres): `c = −Rᵀ t`.
    pub fn centre(&self) -> Vector3<f64> {
        -(self.rotation.transpose() * self.translation)
    }

    /// Rows of `[R | t]` as a row-major 3×4 array (the Indoor6 pose file).
    pub fn to_rows(&self) -> [[f64; 4]; 3] {
        let r = &self.rotation;
        let t = &self.translation;
        [
            [r[(0, 0)], r[(0, 1)], r[(0, 2)], t[0]],
            [r[(1, 0)], r[(1, 1)], r[(1, 2)], t[1]],
            [r[(2, 0)], r[(2, 1)], r[(2, 2)], t[2]],
        ]
    }
}

/// Rotation error in **degrees** between two poses:
/// `acos((tr(Rᵀ R̂) − 1) / 2)`, the argument clamped to `[−1, 1]`.
pub fn rotation_error_deg(truth: &Pose, estimate: &Pose) -> f64 {
    let c = ((truth.rotation.transpose() * estimate.rotation).trace() - 1.0) * 0.5;
    libm::acos(c.clamp(-1.0, 1.0)).to_degrees()
}

/// Position error in **metres**: distance between the camera centres.
pub fn position_error_m(truth: &Pose, estimate: &Pose) -> f64 {
    (truth.centre() - estimate.centre()).norm()
}

/// Skew-symmetric matrix `[v]×` with `[v]× w = v × w`.
pub(crate) fn skew(v: &Vector3<f64>) -> Matrix3<f64> {
    Matrix3::new(0.0, -v[2], v[1], v[2], 0.0, -v[0], -v[1], v[0], 0.0)
}

/// Rodrigues' formula: the rotation by `|ω|` radians about `ω / |ω|`.
pub fn so3_exp(omega: &Vector3<f64>) -> Matrix3<f64> {
    let theta2 = omega.norm_squared();
    let k = skew(omega);
    let (a, b) = if theta2 < 1e-10 {
        // Taylor expansion keeps the small-angle case accurate.
        (1.0 - theta2 / 6.0, 0.5 - theta2 / 24.0)
    } else {
        let theta = libm::sqrt(theta2);
        (libm::sin(theta) / theta, (1.0 - libm::cos(theta)) / theta2)
    };
    Matrix3::identity() + k * a + k * k * b
}
