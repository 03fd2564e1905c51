//! Heatmap decoding throughput against a plain memcpy of the same bytes.
//!
//! `cargo bench -p sld-core --bench decode` — 1000 landmarks × 44×80
//! (a 640×352 input at stride 8), one Gaussian peak per map.

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use sld_core::heatmap::{DecodeOptions, Detection, HeatmapShape, Refinement};

const L: usize = 1000;
const H: usize = 44;
const W: usize = 80;

fn maps() -> Vec<f32> {
    let mut maps = vec![0f32; L * H * W];
    for (l, map) in maps.chunks_exact_mut(H * W).enumerate() {
        let gx = (l * 37 % W) as f32 + 0.3;
        let gy = (l * 11 % H) as f32 + 0.6;
        for y in 0..H {
            for x in 0..W {
                let d2 = (x as f32 - gx).powi(2) + (y as f32 - gy).powi(2);
                map[y * W + x] = 0.02 * ((x * 7 + y * 13 + l) % 5) as f32 + (-d2 / 12.5).exp();
            }
        }
    }
    maps
}

fn main() {
    divan::main();
}

#[divan::bench(args = ["gaussian_fit", "weighted_mean_r4", "none"])]
fn decode(bencher: Bencher, refinement: &str) {
    let maps = maps();
    let refinement = match refinement {
        "gaussian_fit" => Refinement::GaussianFit,
        "weighted_mean_r4" => Refinement::WeightedMean { radius: 4 },
        _ => Refinement::None,
    };
    let opts = DecodeOptions {
        refinement,
        ..DecodeOptions::default()
    };
    let shape = HeatmapShape {
        landmarks: L,
        height: H,
        width: W,
    };
    let mut out = vec![Detection::default(); L];
    bencher
        .counter(BytesCount::of_slice(&maps))
        .bench_local(|| sld_core::decode(black_box(&maps), shape, &opts, &mut out).unwrap());
}

#[divan::bench]
fn memcpy_same_bytes(bencher: Bencher) {
    let maps = maps();
    let mut dst = vec![0f32; maps.len()];
    bencher.counter(BytesCount::of_slice(&maps)).bench_local(|| {
        dst.copy_from_slice(black_box(&maps));
        black_box(&dst);
    });
}

/// The extra cost of a logits model ([`HeatmapKind::Logits`]): the
/// presence probability of every map (a softmax normaliser, one `expf`
/// per cell), the worst case, when no map is skipped by the Localizer's
/// peak early-out.
///
/// [`HeatmapKind::Logits`]: sld_core::model::HeatmapKind::Logits
#[divan::bench]
fn presence_every_map(bencher: Bencher) {
    let maps = maps();
    bencher.counter(BytesCount::of_slice(&maps)).bench_local(|| {
        let mut s = 0f32;
        for map in black_box(&maps).chunks_exact(H * W) {
            s += sld_core::heatmap::presence(map);
        }
        black_box(s)
    });
}
