//! Tests of `pnp::refine`.

use sld_core::nalgebra::{Matrix6, Vector6};
use sld_core::testing::cholesky_solve6;

/// Against a closed-form case: `a = M·Mᵀ + I` with a known `x`, and a
/// matrix that is not positive definite.
#[test]
fn cholesky_solve6_solves_and_refuses_indefinite_matrices() {
    let m =
        Matrix6::<f64>::from_fn(|i, j| ((i * 7 + j * 3) % 5) as f64 - 2.0 + if i == j { 3.0 } else { 0.0 });
    let a = m * m.transpose() + Matrix6::identity();
    let x = Vector6::new(1.0, -2.0, 0.5, 3.0, -1.5, 2.5);
    let b = a * x;
    let got = cholesky_solve6(&a, &b).unwrap();
    assert!((got - x).amax() < 1e-10, "{got:?}");
    let mut bad = a;
    bad[(3, 3)] = -1.0;
    assert!(cholesky_solve6(&bad, &b).is_none());
    bad[(3, 3)] = f64::NAN;
    assert!(cholesky_solve6(&bad, &b).is_none());
}
