//! GEMM throughput on the shapes EfficientNet-Lite0-s8 at 640×352 uses
//! (1×1 convolutions: C_out × C_in × pixels).
//!
//! `cargo bench -p sld-core --bench gemm` — best of 5, GFLOP/s = 2·m·k·n / s.
use sld_core::nn::gemm::sgemm;
use std::time::Instant;
fn main() {
    for &(m, k, n) in &[
        (144usize, 24usize, 14080usize),
        (24, 144, 14080),
        (480, 80, 14080),
        (80, 480, 14080),
        (125, 320, 3520),
        (256, 256, 4096),
        (672, 112, 14080),
        (112, 672, 14080),
        (1152, 192, 3520),
        (192, 1152, 3520),
        (80, 2880, 3520),
    ] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0f32; m * n];
        let mut best = f64::INFINITY;
        for _ in 0..12 {
            let t = Instant::now();
            sgemm(m, k, n, &a, &b, &mut c, false);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{m}x{k}x{n}: {:.2} ms, {:.1} GFLOP/s",
            best * 1e3,
            2.0 * (m * k * n) as f64 / best / 1e9
        );
    }
}
