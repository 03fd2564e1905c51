//! Heatmap decoding against rendered Gaussians with known sub-pixel peaks.

use sld_core::heatmap::{decode_into, DecodeError, DecodeOptions, Detection, HeatmapShape, Refinement};
use sld_core::rng::SplitMix64;

const W: usize = 80;
const H: usize = 44;

/// Renders an unnormalised Gaussian (peak `amp`) centred at grid
/// coordinates `(gx, gy)` with standard deviation `sigma` cells.
fn render(map: &mut [f32], gx: f64, gy: f64, sigma: f64, amp: f64) {
    for y in 0..H {
        for x in 0..W {
            let d2 = (x as f64 - gx).powi(2) + (y as f64 - gy).powi(2);
            map[y * W + x] = (amp * (-d2 / (2.0 * sigma * sigma)).exp()) as f32;
        }
    }
}

fn errors_px(refinement: Refinement, sigma: f64) -> (f64, f64) {
    let mut rng = SplitMix64::new(7);
    let l = 200;
    let mut maps = vec![0f32; l * H * W];
    let mut truth = Vec::new();
    let opts = DecodeOptions {
        refinement,
        ..DecodeOptions::for_stride(8.0)
    };
    for (i, map) in maps.chunks_exact_mut(H * W).enumerate() {
        // Away from the border so that no window is clipped.
        let gx = 9.0 + rng.unit_f64() * (W as f64 - 18.0);
        let gy = 9.0 + rng.unit_f64() * (H as f64 - 18.0);
        render(map, gx, gy, sigma, 0.5 + 0.5 * (i % 2) as f64);
        truth.push(opts.grid_to_pixel(gx as f32, gy as f32));
    }
    let mut out = vec![Detection::default(); l];
    let n = sld_core::decode(
        &maps,
        HeatmapShape {
            landmarks: l,
            height: H,
            width: W,
        },
        &opts,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, l);
    let mut worst: f64 = 0.0;
    let mut sum = 0.0;
    for d in &out[..n] {
        let (u, v) = truth[d.landmark as usize];
        let e = (((d.u - u) as f64).powi(2) + ((d.v - v) as f64).powi(2)).sqrt();
        worst = worst.max(e);
        sum += e;
    }
    (worst, sum / n as f64)
}

#[test]
fn gaussian_fit_recovers_subpixel_peaks_within_a_tenth_of_a_pixel() {
    // σ = 2.5 cells is SLD*'s training target (20 px at stride 8).
    for sigma in [1.0, 2.5, 4.0] {
        let (worst, _) = errors_px(Refinement::GaussianFit, sigma);
        assert!(worst < 0.1, "sigma {sigma}: worst error {worst} px");
    }
}

#[test]
fn parabola_fit_recovers_subpixel_peaks_of_log_gaussians_exactly() {
    // Logits of a softmax-trained map are a log-Gaussian plus a constant:
    // a parabola, which the 3-point fit recovers exactly (f32 rounding).
    for sigma in [0.75f64, 1.5] {
        let mut rng = SplitMix64::new(11);
        let opts = DecodeOptions {
            refinement: Refinement::Parabola,
            threshold: f32::MIN,
            ..DecodeOptions::for_stride(8.0)
        };
        let shape = HeatmapShape {
            landmarks: 1,
            height: H,
            width: W,
        };
        for _ in 0..50 {
            let gx = 2.0 + rng.unit_f64() * (W as f64 - 4.0);
            let gy = 2.0 + rng.unit_f64() * (H as f64 - 4.0);
            let offset = -3.0 + 6.0 * rng.unit_f64();
            let map: Vec<f32> = (0..H * W)
                .map(|i| {
                    let d2 = ((i % W) as f64 - gx).powi(2) + ((i / W) as f64 - gy).powi(2);
                    (offset - d2 / (2.0 * sigma * sigma)) as f32
                })
                .collect();
            let mut out = [Detection::default(); 1];
            assert_eq!(sld_core::decode(&map, shape, &opts, &mut out), Ok(1));
            let (u, v) = opts.grid_to_pixel(gx as f32, gy as f32);
            assert!(
                (out[0].u - u).abs() < 2e-3 && (out[0].v - v).abs() < 2e-3,
                "sigma {sigma}: ({}, {}) against ({u}, {v})",
                out[0].u,
                out[0].v
            );
        }
    }
}

#[test]
fn presence_is_the_softmax_mass_off_the_absent_bin() {
    use sld_core::heatmap::presence;
    // Closed forms: n cells of logit z against one absent bin of logit 0.
    for (n, z) in [(1usize, 0.0f32), (4, 0.0), (100, -3.0), (880, 2.0), (10, 60.0)] {
        let want = (n as f64 * (z as f64).exp()) / (1.0 + n as f64 * (z as f64).exp());
        let got = presence(&vec![z; n]) as f64;
        assert!((got - want).abs() < 1e-5, "n {n}, z {z}: {got} vs {want}");
    }
    // One dominant cell at logit 0: half. No overflow at huge logits.
    let mut map = vec![-50.0f32; 64];
    map[17] = 0.0;
    assert!((presence(&map) - 0.5).abs() < 1e-6);
    map[3] = 1e30;
    assert_eq!(presence(&map), 1.0);
    map[5] = f32::INFINITY;
    assert_eq!(presence(&map), 1.0);
    map[9] = f32::NAN;
    assert!(presence(&map).is_nan());
    assert_eq!(presence(&[]), 0.0);
    assert!(presence(&[f32::NEG_INFINITY; 3]) == 0.0);
}

#[test]
fn weighted_mean_is_accurate_with_a_wide_window() {
    // A window of ±3σ leaves a truncation bias well below 0.1 input px.
    let (worst, _) = errors_px(Refinement::WeightedMean { radius: 8 }, 2.5);
    assert!(worst < 0.1, "worst error {worst} px");
    // SLD's 9×9 window is biased towards the peak cell: measured ~1 px mean, < 2 px worst.
    let (worst9, mean9) = errors_px(Refinement::WeightedMean { radius: 4 }, 2.5);
    assert!(worst9 < 2.0 && mean9 > 0.5, "9x9: worst {worst9}, mean {mean9}");
    // No refinement: up to half a cell (4 px) off.
    let (worst0, _) = errors_px(Refinement::None, 2.5);
    assert!(worst0 > 2.0 && worst0 <= 4.0 * 2f64.sqrt() + 1e-3);
}

#[test]
fn thresholds_confidences_and_landmark_ids() {
    let l = 5;
    let mut maps = vec![0f32; l * H * W];
    for (i, map) in maps.chunks_exact_mut(H * W).enumerate() {
        render(map, 10.0 + i as f64 * 7.0, 20.0, 2.5, 0.1 + 0.2 * i as f64);
    }
    let mut out = vec![Detection::default(); l];
    let shape = HeatmapShape {
        landmarks: l,
        height: H,
        width: W,
    };
    let n = sld_core::decode(&maps, shape, &DecodeOptions::default(), &mut out).unwrap();
    // Peaks 0.1, 0.3, 0.5, 0.7, 0.9 against threshold 0.2.
    assert_eq!(n, 4);
    let ids: Vec<u32> = out[..n].iter().map(|d| d.landmark).collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    for d in &out[..n] {
        assert!((d.confidence - (0.1 + 0.2 * d.landmark as f32)).abs() < 1e-6);
        // Pixel mapping: u = 8·gx + 3.5.
        assert!((d.u - (8.0 * (10.0 + d.landmark as f32 * 7.0) + 3.5)).abs() < 1e-3);
        assert!((d.v - (8.0 * 20.0 + 3.5)).abs() < 1e-3);
    }
    let mut hv = heapless::Vec::<Detection, 8>::new();
    assert_eq!(
        decode_into(&maps, shape, &DecodeOptions::default(), &mut hv),
        Ok(4)
    );
    assert_eq!(&hv[..], &out[..4]);
}

#[test]
fn peaks_on_the_border_and_flat_maps() {
    let mut map = vec![0f32; H * W];
    map[0] = 1.0; // top-left corner
    let mut out = [Detection::default(); 1];
    let shape = HeatmapShape {
        landmarks: 1,
        height: H,
        width: W,
    };
    for refinement in [
        Refinement::GaussianFit,
        Refinement::WeightedMean { radius: 4 },
        Refinement::None,
    ] {
        let opts = DecodeOptions {
            refinement,
            ..DecodeOptions::default()
        };
        assert_eq!(sld_core::decode(&map, shape, &opts, &mut out), Ok(1));
        assert_eq!((out[0].u, out[0].v), (3.5, 3.5));
    }
    // A constant map: first cell wins, no NaN from the refinement.
    let flat = vec![0.5f32; H * W];
    assert_eq!(
        sld_core::decode(&flat, shape, &DecodeOptions::default(), &mut out),
        Ok(1)
    );
    assert!(out[0].u.is_finite() && out[0].v.is_finite());
}

#[test]
fn bad_inputs_are_errors() {
    let shape = HeatmapShape {
        landmarks: 2,
        height: H,
        width: W,
    };
    let mut maps = vec![0f32; 2 * H * W];
    let mut out = [Detection::default(); 2];
    let opts = DecodeOptions::default();
    assert_eq!(
        sld_core::decode(&maps[1..], shape, &opts, &mut out),
        Err(DecodeError::ShapeMismatch {
            expected: 2 * H * W,
            actual: 2 * H * W - 1
        })
    );
    assert_eq!(
        sld_core::decode(&maps, shape, &opts, &mut out[..1]),
        Err(DecodeError::OutputTooSmall {
            needed: 2,
            capacity: 1
        })
    );
    let huge = HeatmapShape {
        landmarks: usize::MAX,
        height: 2,
        width: 2,
    };
    assert!(matches!(
        sld_core::decode(&maps, huge, &opts, &mut out),
        Err(DecodeError::ShapeMismatch { .. })
    ));
    let bad = DecodeOptions { stride: 0.0, ..opts };
    assert_eq!(
        sld_core::decode(&maps, shape, &bad, &mut out),
        Err(DecodeError::InvalidOptions(
            "stride must lie in (0, 65536] input pixels per cell"
        ))
    );
    // NaN at a peak's neighbour and +inf as a peak.
    render(&mut maps[H * W..], 30.0, 20.0, 2.5, 1.0);
    maps[H * W + 20 * W + 31] = f32::NAN;
    assert_eq!(
        sld_core::decode(&maps, shape, &opts, &mut out),
        Err(DecodeError::NonFinite { landmark: 1 })
    );
    maps[H * W + 20 * W + 31] = f32::INFINITY;
    assert_eq!(
        sld_core::decode(&maps, shape, &opts, &mut out),
        Err(DecodeError::NonFinite { landmark: 1 })
    );
    // An all-NaN map is an error, not a detection at (0, 0).
    for v in &mut maps[H * W..] {
        *v = f32::NAN;
    }
    assert_eq!(
        sld_core::decode(&maps, shape, &opts, &mut out),
        Err(DecodeError::NonFinite { landmark: 1 })
    );
}
