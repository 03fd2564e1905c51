//! Lambda Twist P3P (Persson & Nordberg, "Lambda Twist: An Accurate Fast
//! Robust Perspective Three Point (P3P) Solver", ECCV 2018).
//!
//! Given three unit bearings `yᵢ` (camera frame) and three world points
//! `xᵢ`, find every world-to-camera pose with `λᵢ yᵢ = R xᵢ + t`, `λᵢ > 0`.
//! The depths satisfy three quadrics
//!
//! ```text
//! λ₁² + λ₂² + b₁₂ λ₁λ₂ = a₁₂     bᵢⱼ = −2 yᵢ·yⱼ,  aᵢⱼ = |xᵢ − xⱼ|²
//! λ₁² + λ₃² + b₁₃ λ₁λ₃ = a₁₃
//! λ₂² + λ₃² + b₂₃ λ₂λ₃ = a₂₃
//! ```
//!
//! Two homogeneous combinations `D₁ = a₂₃M₁₂ − a₁₂M₂₃` and
//! `D₂ = a₁₃M₂₃ − a₂₃M₁₃` span a pencil; a real root `γ` of the cubic
//! `det(D₁ + γD₂) = 0` gives a degenerate conic that factors into two lines
//! through the solutions. Each line turns one quadric into a quadratic in
//! `τ = λ₃/λ₂`; a few Gauss–Newton steps polish the depths, and the pose
//! follows from the two difference vectors in each frame.
//!
//! Preconditions: none — degenerate triplets (coincident or collinear world
//! points, parallel bearings) return no solution. At most 4 solutions.

use heapless::Vec as HVec;
use nalgebra::{Matrix3, Vector3};

use crate::pose::Pose;

/// Up to four poses.
pub type P3pSolutions = HVec<Pose, 4>;

/// Solves P3P for unit bearings `y` and world points `x`, appending every
/// pose with positive depths to `out` (cleared first). Returns the count.
pub fn lambda_twist(y: &[Vector3<f64>; 3], x: &[Vector3<f64>; 3], out: &mut P3pSolutions) -> usize {
    out.clear();
    let d12 = x[0] - x[1];
    let d13 = x[0] - x[2];
    let d23 = x[1] - x[2];
    let a12 = d12.norm_squared();
    let a13 = d13.norm_squared();
    let a23 = d23.norm_squared();
    // The pose needs a non-degenerate world triangle.
    let cross = d12.cross(&d13);
    let scale2 = a12.max(a13).max(a23);
    if !(scale2 > 0.0) || !(cross.norm_squared() > 1e-20 * scale2 * scale2) {
        return 0;
    }
    let b12 = -2.0 * y[0].dot(&y[1]);
    let b13 = -2.0 * y[0].dot(&y[2]);
    let b23 = -2.0 * y[1].dot(&y[2]);

    let m12 = Matrix3::new(1.0, 0.5 * b12, 0.0, 0.5 * b12, 1.0, 0.0, 0.0, 0.0, 0.0);
    let m13 = Matrix3::new(1.0, 0.0, 0.5 * b13, 0.0, 0.0, 0.0, 0.5 * b13, 0.0, 1.0);
    let m23 = Matrix3::new(0.0, 0.0, 0.0, 0.0, 1.0, 0.5 * b23, 0.0, 0.5 * b23, 1.0);
    let d1 = m12 * a23 - m23 * a12;
    let d2 = m23 * a13 - m13 * a23;

    // det(D1 + g D2) = c3 g³ + c2 g² + c1 g + c0.
    let c0 = d1.determinant();
    let c3 = d2.determinant();
    let c1 = (adjugate(&d1) * d2).trace();
    let c2 = (adjugate(&d2) * d1).trace();
    let mut roots = [0.0; 3];
    let nroots = real_cubic_roots(c3, c2, c1, c0, &mut roots);

    let mut lambdas: HVec<[f64; 3], 4> = HVec::new();
    for &g in &roots[..nroots] {
        let d0 = d1 + d2 * g;
        if collect_from_conic(&d0, a12, a13, a23, b12, b13, b23, &mut lambdas) {
            break;
        }
    }

    // Rotation between orthonormal frames built from the triangle's edge
    // vectors in each frame (always a proper rotation, exact for exact λ).
    let Some(fw) = frame(&d12, &d13) else {
        return 0;
    };
    for l in lambdas.iter_mut() {
        refine_lambdas(l, a12, a13, a23, b12, b13, b23);
        let ry = [y[0] * l[0], y[1] * l[1], y[2] * l[2]];
        let Some(fc) = frame(&(ry[0] - ry[1]), &(ry[0] - ry[2])) else {
            continue;
        };
        let r = fc * fw.transpose();
        let t = ((ry[0] - r * x[0]) + (ry[1] - r * x[1]) + (ry[2] - r * x[2])) / 3.0;
        let pose = Pose::new(r, t);
        if pose.is_valid(1e-9) && out.push(pose).is_err() {
            break;
        }
    }
    out.len()
}

/// Factors the degenerate conic `d0` into two lines and intersects each
/// with the quadrics; pushes positive-depth solutions. Returns false when
/// the conic is not a pair of real lines (try another root).
#[allow(clippy::too_many_arguments)]
fn collect_from_conic(
    d0: &Matrix3<f64>,
    a12: f64,
    a13: f64,
    a23: f64,
    b12: f64,
    b13: f64,
    b23: f64,
    out: &mut HVec<[f64; 3], 4>,
) -> bool {
    // Eigenvalues of a rank-2 symmetric matrix: roots of μ² − tr μ + m = 0
    // with m the sum of principal 2×2 minors.
    let tr = d0.trace();
    let m = d0[(0, 0)] * d0[(1, 1)] - d0[(0, 1)] * d0[(1, 0)] + d0[(0, 0)] * d0[(2, 2)]
        - d0[(0, 2)] * d0[(2, 0)]
        + d0[(1, 1)] * d0[(2, 2)]
        - d0[(1, 2)] * d0[(2, 1)];
    let disc = tr * tr - 4.0 * m;
    if !(disc >= 0.0) {
        return false;
    }
    let sq = libm::sqrt(disc);
    let (mut e0, mut e1) = (0.5 * (tr + sq), 0.5 * (tr - sq));
    if libm::fabs(e0) < libm::fabs(e1) {
        core::mem::swap(&mut e0, &mut e1);
    }
    // A real line pair needs eigenvalues of opposite sign.
    if !(e0 * e1 < 0.0) {
        return false;
    }
    let (Some(v0), Some(v1)) = (eigenvector(d0, e0), eigenvector(d0, e1)) else {
        return false;
    };
    let v = libm::sqrt(-e1 / e0);
    for s in [v, -v] {
        // Line: (v0 − s v1) · λ = 0  ⇒  λ1 = w0 λ2 + w1 λ3.
        let den = s * v1[0] - v0[0];
        if libm::fabs(den) < 1e-300 {
            continue;
        }
        let w2 = 1.0 / den;
        let w0 = (v0[1] - s * v1[1]) * w2;
        let w1 = (v0[2] - s * v1[2]) * w2;
        // a13·eq12 − a12·eq13 in τ = λ3/λ2 (λ2 = 1).
        let qa = (a13 - a12) * w1 * w1 - a12 * b13 * w1 - a12;
        let qb = a13 * b12 * w1 - a12 * b13 * w0 - 2.0 * w0 * w1 * (a12 - a13);
        let qc = (a13 - a12) * w0 * w0 + a13 * b12 * w0 + a13;
        let mut taus = [0.0; 2];
        let ntau = real_quadratic_roots(qa, qb, qc, &mut taus);
        for &tau in &taus[..ntau] {
            if !(tau > 0.0) {
                continue;
            }
            let d = a23 / (tau * (b23 + tau) + 1.0);
            if !(d > 0.0) {
                continue;
            }
            let l2 = libm::sqrt(d);
            let l3 = tau * l2;
            let l1 = w0 * l2 + w1 * l3;
            if l1 > 0.0 && out.push([l1, l2, l3]).is_err() {
                return true;
            }
        }
    }
    true
}

/// Right-handed orthonormal frame with first axis along `a` and second in
/// the plane of `a` and `b`.
fn frame(a: &Vector3<f64>, b: &Vector3<f64>) -> Option<Matrix3<f64>> {
    let e1 = a.try_normalize(0.0)?;
    let e2 = (b - e1 * e1.dot(b)).try_normalize(0.0)?;
    Some(Matrix3::from_columns(&[e1, e2, e1.cross(&e2)]))
}

/// Unit eigenvector of symmetric `m` for eigenvalue `e`: the largest cross
/// product of two rows of `m − eI`.
fn eigenvector(m: &Matrix3<f64>, e: f64) -> Option<Vector3<f64>> {
    let a = m - Matrix3::identity() * e;
    let r0 = a.row(0).transpose();
    let r1 = a.row(1).transpose();
    let r2 = a.row(2).transpose();
    let c = [r0.cross(&r1), r0.cross(&r2), r1.cross(&r2)];
    let mut best = c[0];
    for v in &c[1..] {
        if v.norm_squared() > best.norm_squared() {
            best = *v;
        }
    }
    let n = best.norm();
    (n > 0.0 && n.is_finite()).then(|| best / n)
}

/// Gauss–Newton on the three depth equations; keeps the best iterate.
fn refine_lambdas(l: &mut [f64; 3], a12: f64, a13: f64, a23: f64, b12: f64, b13: f64, b23: f64) {
    let residual = |l: &[f64; 3]| {
        Vector3::new(
            l[0] * l[0] + l[1] * l[1] + b12 * l[0] * l[1] - a12,
            l[0] * l[0] + l[2] * l[2] + b13 * l[0] * l[2] - a13,
            l[1] * l[1] + l[2] * l[2] + b23 * l[1] * l[2] - a23,
        )
    };
    let mut r = residual(l);
    for _ in 0..5 {
        if r.norm_squared() < 1e-30 * (a12 + a13 + a23) {
            break;
        }
        let j = Matrix3::new(
            2.0 * l[0] + b12 * l[1],
            2.0 * l[1] + b12 * l[0],
            0.0,
            2.0 * l[0] + b13 * l[2],
            0.0,
            2.0 * l[2] + b13 * l[0],
            0.0,
            2.0 * l[1] + b23 * l[2],
            2.0 * l[2] + b23 * l[1],
        );
        let Some(ji) = j.try_inverse() else {
            break;
        };
        let step = ji * r;
        let cand = [l[0] - step[0], l[1] - step[1], l[2] - step[2]];
        let rc = residual(&cand);
        if !(rc.norm_squared() < r.norm_squared()) {
            break;
        }
        *l = cand;
        r = rc;
    }
}

fn adjugate(m: &Matrix3<f64>) -> Matrix3<f64> {
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[(r0, c0)] * m[(r1, c1)] - m[(r0, c1)] * m[(r1, c0)];
    Matrix3::new(
        c(1, 2, 1, 2),
        -c(0, 2, 1, 2),
        c(0, 1, 1, 2),
        -c(1, 2, 0, 2),
        c(0, 2, 0, 2),
        -c(0, 1, 0, 2),
        c(1, 2, 0, 1),
        -c(0, 2, 0, 1),
        c(0, 1, 0, 1),
    )
}

/// Real roots of `a x² + b x + c` (numerically stable form); count returned.
pub(crate) fn real_quadratic_roots(a: f64, b: f64, c: f64, out: &mut [f64; 2]) -> usize {
    if a == 0.0 {
        if b == 0.0 {
            return 0;
        }
        out[0] = -c / b;
        return usize::from(out[0].is_finite());
    }
    let disc = b * b - 4.0 * a * c;
    if !(disc >= 0.0) {
        return 0;
    }
    let q = -0.5 * (b + libm::copysign(libm::sqrt(disc), b));
    if q == 0.0 {
        out[0] = 0.0;
        return 1;
    }
    let mut n = 0;
    for r in [q / a, c / q] {
        if r.is_finite() {
            out[n] = r;
            n += 1;
        }
    }
    n
}

/// Real roots of `c3 x³ + c2 x² + c1 x + c0`, each polished by Newton's
/// method. Falls back to the quadratic when `c3` is negligible.
pub(crate) fn real_cubic_roots(c3: f64, c2: f64, c1: f64, c0: f64, out: &mut [f64; 3]) -> usize {
    let scale = libm::fabs(c0)
        .max(libm::fabs(c1))
        .max(libm::fabs(c2))
        .max(libm::fabs(c3));
    if !(scale > 0.0) || !scale.is_finite() {
        return 0;
    }
    if libm::fabs(c3) <= 1e-14 * scale {
        let mut q = [0.0; 2];
        let n = real_quadratic_roots(c2, c1, c0, &mut q);
        out[..n].copy_from_slice(&q[..n]);
        return n;
    }
    let (a, b, c) = (c2 / c3, c1 / c3, c0 / c3);
    // Depressed cubic t³ + p t + q with x = t − a/3.
    let p = b - a * a / 3.0;
    let q = 2.0 * a * a * a / 27.0 - a * b / 3.0 + c;
    let shift = -a / 3.0;
    let disc = q * q / 4.0 + p * p * p / 27.0;
    let n;
    if disc > 0.0 {
        let s = libm::sqrt(disc);
        let u = libm::cbrt(-q / 2.0 + s);
        let v = libm::cbrt(-q / 2.0 - s);
        out[0] = u + v + shift;
        n = 1;
    } else if p < 0.0 {
        let r = libm::sqrt(-p / 3.0);
        let arg = (3.0 * q / (2.0 * p * r)).clamp(-1.0, 1.0);
        let phi = libm::acos(arg) / 3.0;
        for (k, root) in out.iter_mut().enumerate() {
            *root = 2.0 * r * libm::cos(phi - 2.0 * core::f64::consts::PI * k as f64 / 3.0) + shift;
        }
        n = 3;
    } else {
        out[0] = shift;
        n = 1;
    }
    for x in out[..n].iter_mut() {
        for _ in 0..3 {
            let f = ((*x + a) * *x + b) * *x + c;
            let df = (3.0 * *x + 2.0 * a) * *x + b;
            if df == 0.0 {
                break;
            }
            let nx = *x - f / df;
            if !nx.is_finite() {
                break;
            }
            *x = nx;
        }
    }
    n
}
