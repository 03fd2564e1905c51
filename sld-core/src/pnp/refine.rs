//! Non-linear refinement of a pose by Levenberg–Marquardt on the
//! reprojection error in pixels, with a robust loss (IRLS weights).
//!
//! Update rule (left perturbation of the whole transform, `δ = (ω, v)`):
//! `R ← exp(ω)·R`, `t ← exp(ω)·t + v`, so a camera-frame point moves by
//! `ω × P + v`. Residuals are `(fx·(Px/Pz − x), fy·(Py/Pz − y))` in
//! pixels against undistorted normalised observations `(x, y)`.

use nalgebra::{Matrix6, Vector3, Vector6};

use super::PointScratch;
use crate::pose::{so3_exp, Pose};

/// Robust loss on the squared pixel error `s = e²`; the scale `c` is in
/// pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// `ρ(s) = s`.
    Squared,
    /// Huber: quadratic below `c`, linear above.
    Huber(f64),
    /// Cauchy: `ρ(s) = c² · ln(1 + s / c²)`.
    Cauchy(f64),
    /// Truncated: `ρ(s) = min(s, c²)` (points beyond `c` get no weight).
    Truncated(f64),
}

impl Loss {
    #[inline]
    fn rho(&self, s: f64) -> f64 {
        match *self {
            Loss::Squared => s,
            Loss::Huber(c) => {
                let e = libm::sqrt(s);
                if e <= c {
                    s
                } else {
                    2.0 * c * e - c * c
                }
            }
            Loss::Cauchy(c) => c * c * libm::log1p(s / (c * c)),
            Loss::Truncated(c) => s.min(c * c),
        }
    }

    /// IRLS weight `ρ'(s)`.
    #[inline]
    fn weight(&self, s: f64) -> f64 {
        match *self {
            Loss::Squared => 1.0,
            Loss::Huber(c) => {
                let e = libm::sqrt(s);
                if e <= c {
                    1.0
                } else {
                    c / e
                }
            }
            Loss::Cauchy(c) => 1.0 / (1.0 + s / (c * c)),
            Loss::Truncated(c) => {
                if s <= c * c {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// Loss charged for a point behind the camera (no gradient).
    #[inline]
    fn behind(&self) -> f64 {
        match *self {
            Loss::Squared => 1e12,
            Loss::Huber(c) | Loss::Cauchy(c) | Loss::Truncated(c) => self.rho(1e6 * c * c),
        }
    }
}

/// Statistics of one refinement.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RefineStats {
    /// LM iterations run.
    pub iterations: u32,
    /// Robust cost before (pixels², summed).
    pub initial_cost: f64,
    /// Robust cost after.
    pub final_cost: f64,
}

/// Robust cost of `pose` over `points` (those with `use_point` true).
pub(crate) fn cost(
    pose: &Pose,
    points: &[PointScratch],
    fx: f64,
    fy: f64,
    loss: Loss,
    only_inliers: bool,
) -> f64 {
    let mut total = 0.0;
    for p in points.iter().filter(|p| !only_inliers || p.inlier) {
        let pc = pose.rotation * Vector3::from(p.x) + pose.translation;
        if !(pc[2] > 0.0) {
            total += loss.behind();
            continue;
        }
        let iz = 1.0 / pc[2];
        let ru = fx * (pc[0] * iz - p.n[0]);
        let rv = fy * (pc[1] * iz - p.n[1]);
        total += loss.rho(ru * ru + rv * rv);
    }
    total
}

/// Refines `pose` by Levenberg–Marquardt; never returns a pose with a
/// higher cost than the input.
pub(crate) fn refine(
    pose: &Pose,
    points: &[PointScratch],
    fx: f64,
    fy: f64,
    loss: Loss,
    only_inliers: bool,
    max_iterations: u32,
) -> (Pose, RefineStats) {
    let mut current = *pose;
    let mut current_cost = cost(&current, points, fx, fy, loss, only_inliers);
    let mut stats = RefineStats {
        iterations: 0,
        initial_cost: current_cost,
        final_cost: current_cost,
    };
    let mut lambda = 1e-3;
    while stats.iterations < max_iterations {
        stats.iterations += 1;
        let mut jtj = Matrix6::<f64>::zeros();
        let mut jtr = Vector6::<f64>::zeros();
        for p in points.iter().filter(|p| !only_inliers || p.inlier) {
            let pc = current.rotation * Vector3::from(p.x) + current.translation;
            if !(pc[2] > 0.0) {
                continue;
            }
            let iz = 1.0 / pc[2];
            let (u, v) = (pc[0] * iz, pc[1] * iz);
            let ru = fx * (u - p.n[0]);
            let rv = fy * (v - p.n[1]);
            let w = loss.weight(ru * ru + rv * rv);
            if w == 0.0 {
                continue;
            }
            // d(u)/dP and d(v)/dP, scaled to pixels.
            let gu = Vector3::new(fx * iz, 0.0, -fx * u * iz);
            let gv = Vector3::new(0.0, fy * iz, -fy * v * iz);
            // d/dω = P × g, d/dv = g.
            let ju_w = pc.cross(&gu);
            let jv_w = pc.cross(&gv);
            let ju = Vector6::new(ju_w[0], ju_w[1], ju_w[2], gu[0], gu[1], gu[2]);
            let jv = Vector6::new(jv_w[0], jv_w[1], jv_w[2], gv[0], gv[1], gv[2]);
            jtj += (ju * ju.transpose() + jv * jv.transpose()) * w;
            jtr += (ju * ru + jv * rv) * w;
        }
        let grad_norm = jtr.amax();
        if !(grad_norm > 1e-12) {
            break;
        }
        let mut improved = false;
        while lambda < 1e10 {
            let mut a = jtj;
            for i in 0..6 {
                a[(i, i)] += lambda * (jtj[(i, i)] + 1e-9);
            }
            let Some(step) = cholesky_solve6(&a, &jtr) else {
                lambda *= 10.0;
                continue;
            };
            let delta = -step;
            let candidate = apply(&current, &delta);
            let c = cost(&candidate, points, fx, fy, loss, only_inliers);
            if c < current_cost {
                let rel = (current_cost - c) / current_cost.max(1e-300);
                current = candidate;
                current_cost = c;
                lambda = (lambda * 0.1).max(1e-9);
                improved = true;
                if delta.amax() < 1e-10 || rel < 1e-10 {
                    stats.final_cost = current_cost;
                    return (current, stats);
                }
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    stats.final_cost = current_cost;
    (current, stats)
}

#[inline]
fn apply(pose: &Pose, delta: &Vector6<f64>) -> Pose {
    let dr = so3_exp(&Vector3::new(delta[0], delta[1], delta[2]));
    let mut r = dr * pose.rotation;
    // Re-orthonormalise occasionally drifting rotations (cheap Gram–Schmidt).
    let c0 = r.column(0).normalize();
    let c1 = (r.column(1) - c0 * c0.dot(&r.column(1))).normalize();
    let c2 = c0.cross(&c1);
    r.set_column(0, &c0);
    r.set_column(1, &c1);
    r.set_column(2, &c2);
    Pose::new(
        r,
        dr * pose.translation + Vector3::new(delta[3], delta[4], delta[5]),
    )
}

/// Solves `a·x = b` for a symmetric positive-definite 6×6 `a` by Cholesky
/// (`a = L·Lᵀ`, then two triangular solves); `None` when `a` is not
/// positive definite (or not finite). Own code rather than nalgebra's
/// `cholesky()`: its decompositions of stack matrices violate the aliasing
/// rules under Miri (nalgebra issue #1520), and this is 30 lines.
pub(crate) fn cholesky_solve6(a: &Matrix6<f64>, b: &Vector6<f64>) -> Option<Vector6<f64>> {
    let mut l = [[0.0f64; 6]; 6];
    for j in 0..6 {
        let mut d = a[(j, j)];
        for v in &l[j][..j] {
            d -= v * v;
        }
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let djj = libm::sqrt(d);
        l[j][j] = djj;
        for i in j + 1..6 {
            let mut s = a[(i, j)];
            for (x, y) in l[i][..j].iter().zip(&l[j][..j]) {
                s -= x * y;
            }
            l[i][j] = s / djj;
        }
    }
    let mut y = [0.0f64; 6];
    for i in 0..6 {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i][k] * y[k];
        }
        y[i] = s / l[i][i];
    }
    let mut x = [0.0f64; 6];
    for i in (0..6).rev() {
        let mut s = y[i];
        for k in i + 1..6 {
            s -= l[k][i] * x[k];
        }
        x[i] = s / l[i][i];
    }
    Some(Vector6::from(x))
}
