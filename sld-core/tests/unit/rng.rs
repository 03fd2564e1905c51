//! Tests of `rng`.

use sld_core::rng::SplitMix64;

#[test]
fn uniform_stays_in_range_and_gauss_has_unit_moments() {
    let mut r = SplitMix64::new(7);
    let n = 200_000;
    let (mut s, mut s2) = (0.0, 0.0);
    for _ in 0..n {
        let u = r.uniform(-2.0, 3.0);
        assert!((-2.0..3.0).contains(&u));
        let g = r.gauss();
        s += g;
        s2 += g * g;
    }
    let mean = s / n as f64;
    let var = s2 / n as f64 - mean * mean;
    // Standard errors: 1/sqrt(n) ≈ 0.0022 for the mean, ≈ 0.0032 for the variance.
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var - 1.0).abs() < 0.015, "variance {var}");
}
