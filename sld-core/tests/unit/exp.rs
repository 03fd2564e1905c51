//! Tests of `exp`.

use sld_core::exp::{exp_nonpositive, sum_exp_shifted};

#[test]
fn matches_f64_exp_over_the_whole_range() {
    let mut worst = 0f64;
    let n = 200_000;
    for i in 0..=n {
        let x = -87.0 * i as f32 / n as f32;
        let got = exp_nonpositive(x) as f64;
        let want = (x as f64).exp();
        worst = worst.max(((got - want) / want).abs());
    }
    assert!(worst < 4e-7, "worst relative error {worst}");
    // Exactly representable points.
    assert_eq!(exp_nonpositive(0.0), 1.0);
    assert_eq!(exp_nonpositive(-0.0), 1.0);
}

#[test]
fn edges_underflow_and_nan() {
    assert_eq!(exp_nonpositive(-87.5), 0.0);
    assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp_nonpositive(f32::MIN), 0.0);
    assert!(exp_nonpositive(f32::NAN).is_nan());
    assert_eq!(exp_nonpositive(3.0), 1.0);
    let (a, b) = (exp_nonpositive(-86.9) as f64, (-86.9f32 as f64).exp());
    assert!(((a - b) / b).abs() < 4e-7);
}

#[test]
fn shifted_sum_matches_a_plain_f64_sum() {
    let mut rng = sld_core::rng::SplitMix64::new(9);
    for len in [0usize, 1, 7, 8, 9, 880, 3520] {
        let z: Vec<f32> = (0..len).map(|_| (rng.unit_f64() * 30.0 - 20.0) as f32).collect();
        let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max).max(0.0);
        let want: f64 = z.iter().map(|&v| (v as f64 - m as f64).exp()).sum();
        let got = sum_exp_shifted(&z, m) as f64;
        assert!(
            (got - want).abs() <= 1e-5 * want.max(1e-30),
            "len {len}: {got} vs {want}"
        );
    }
    assert!(sum_exp_shifted(&[0.0, f32::NAN, 1.0], 1.0).is_nan());
}
