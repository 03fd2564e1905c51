//! sld-core's GEMM under Miri, against a naive product. Run three ways
//! (RELIABILITY.md): plain (portable kernel), and with
//! `RUSTFLAGS=-Ctarget-feature=+avx2,+fma` or `+avx512f,+avx2,+fma`, which
//! make `is_x86_feature_detected!` true at compile time so the
//! `#[target_feature]` dispatch (the only `unsafe` in sld-core) is taken.

use sld_core::nn::gemm::sgemm;

#[test]
fn gemm_matches_a_naive_product() {
    // Odd sizes: partial register tiles and panels on every edge.
    for &(m, k, n) in &[(1, 1, 1), (5, 7, 19), (9, 3, 70)] {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 13) as f32 - 6.0) / 8.0).collect();
        let mut c = vec![0.5f32; m * n];
        assert!(sgemm(m, k, n, &a, &b, &mut c, true));
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 0.5 + (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
                assert!((c[i * n + j] - want).abs() < 1e-4, "({m},{k},{n}) at ({i},{j})");
            }
        }
    }
    // Sizes that do not fit the slices are refused, not read.
    assert!(!sgemm(3, 3, 3, &[0.0; 8], &[0.0; 9], &mut [0.0; 9], false));
    assert!(!sgemm(
        usize::MAX,
        2,
        2,
        &[0.0; 4],
        &[0.0; 4],
        &mut [0.0; 4],
        false
    ));
}
