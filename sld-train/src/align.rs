//! Similarity alignment (Umeyama 1991): the scale `s`, rotation `R` and
//! translation `t` minimising `Σ ‖dst_i − (s·R·src_i + t)‖²` — to compare an
//! SfM reconstruction (arbitrary gauge) with ground truth.

use sld_core::nalgebra::{Matrix3, Vector3};

/// `x ↦ s·R·x + t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    /// Scale.
    pub scale: f64,
    /// Rotation.
    pub rotation: Matrix3<f64>,
    /// Translation.
    pub translation: Vector3<f64>,
}

impl Similarity {
    /// Applies the transform to a point.
    pub fn apply(&self, x: &Vector3<f64>) -> Vector3<f64> {
        self.scale * (self.rotation * x) + self.translation
    }
}

/// The least-squares similarity taking `src` onto `dst` (equal lengths,
/// at least 3 non-collinear points); `None` if degenerate.
pub fn umeyama(src: &[Vector3<f64>], dst: &[Vector3<f64>]) -> Option<Similarity> {
    let n = src.len();
    if n < 3 || dst.len() != n {
        return None;
    }
    let mu_s = src.iter().sum::<Vector3<f64>>() / n as f64;
    let mu_d = dst.iter().sum::<Vector3<f64>>() / n as f64;
    let mut cov = Matrix3::zeros();
    let mut var_s = 0.0;
    for (a, b) in src.iter().zip(dst) {
        let (da, db) = (a - mu_s, b - mu_d);
        cov += db * da.transpose();
        var_s += da.norm_squared();
    }
    cov /= n as f64;
    var_s /= n as f64;
    let svd = cov.svd(true, true);
    let (u, vt) = (svd.u?, svd.v_t?);
    let mut d = Matrix3::identity();
    if (u * vt).determinant() < 0.0 {
        d[(2, 2)] = -1.0;
    }
    let rotation = u * d * vt;
    let sv = svd.singular_values;
    if var_s <= 0.0 || sv[1] <= 1e-12 * sv[0] {
        return None;
    }
    let scale = (sv[0] * d[(0, 0)] + sv[1] * d[(1, 1)] + sv[2] * d[(2, 2)]) / var_s;
    let translation = mu_d - scale * (rotation * mu_s);
    Some(Similarity {
        scale,
        rotation,
        translation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sld_core::pose::so3_exp;
    use sld_core::rng::SplitMix64;

    #[test]
    fn recovers_a_known_similarity() {
        let mut rng = SplitMix64::new(9);
        let r = so3_exp(&Vector3::new(0.3, -1.2, 2.0));
        let (s, t) = (0.37, Vector3::new(1.0, -2.0, 0.5));
        let src: Vec<Vector3<f64>> = (0..20)
            .map(|_| Vector3::new(rng.unit_f64(), rng.unit_f64(), rng.unit_f64()) * 5.0)
            .collect();
        let dst: Vec<Vector3<f64>> = src.iter().map(|x| s * (r * x) + t).collect();
        let a = umeyama(&src, &dst).unwrap();
        assert!((a.scale - s).abs() < 1e-12);
        assert!((a.rotation - r).norm() < 1e-12);
        assert!((a.translation - t).norm() < 1e-12);
        // Collinear points are degenerate.
        let line: Vec<Vector3<f64>> = (0..5).map(|i| Vector3::new(i as f64, 0.0, 0.0)).collect();
        assert!(umeyama(&line, &line).is_none());
    }
}
