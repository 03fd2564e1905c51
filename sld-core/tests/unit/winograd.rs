//! Tests of `nn::winograd`.

use sld_core::model::layout::BLOCK;
use sld_core::model::plan::{ConvStep, WeightRange};
use sld_core::model::Activation;
use sld_core::nn::Par;
use sld_core::rng::SplitMix64;
use sld_core::testing::{packed_winograd, winograd, winograd_scratch_len, Winograd};

use crate::blocked::{from_blocked, to_blocked};

fn step(padding: [usize; 4], dilation: usize, activation: Activation) -> ConvStep {
    ConvStep {
        input: 0,
        output: 1,
        weight: WeightRange { start: 0, len: 0 },
        bias: None,
        kernel: [3, 3],
        stride: [1, 1],
        padding,
        dilation: [dilation; 2],
        groups: 1,
        residual: None,
        activation,
        packed: None,
        winograd: 0,
    }
}

/// The convolution by its definition, in f64, with the largest sum of
/// absolute products per output (the scale of its rounding error).
#[allow(clippy::too_many_arguments)]
fn reference(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    [ci, h, wi]: [usize; 3],
    [co, ho, wo]: [usize; 3],
    [pt, pl, ..]: [usize; 4],
    d: usize,
    act: Activation,
) -> (Vec<f32>, f64) {
    let mut out = vec![0.0; co * ho * wo];
    let mut scale = 0f64;
    for o in 0..co {
        for oy in 0..ho {
            for ox in 0..wo {
                let (mut s, mut a) = (b[o] as f64, b[o].abs() as f64);
                for i in 0..ci {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let y = (oy + ky * d) as isize - pt as isize;
                            let xx = (ox + kx * d) as isize - pl as isize;
                            if y < 0 || xx < 0 || y as usize >= h || xx as usize >= wi {
                                continue;
                            }
                            let v = x[(i * h + y as usize) * wi + xx as usize] as f64;
                            let k = w[((o * ci + i) * 3 + ky) * 3 + kx] as f64;
                            s += v * k;
                            a += (v * k).abs();
                        }
                    }
                }
                scale = scale.max(a);
                out[(o * ho + oy) * wo + ox] = act.apply(s as f32);
            }
        }
    }
    (out, scale)
}

/// Output tiles of 2 and 4 for 3×3 convolutions at dilations 1–4, symmetric, asymmetric and no
/// padding, sizes that leave partial tiles (odd, smaller than a tile
/// band), channels off the block size and more tiles than one chunk,
/// every activation: within float rounding of the definition in f64
/// (relative to the sum of absolute products), the same bits on 2 and 3
/// threads (split by rows, by rows modulo the dilation, or by blocks where
/// the rows share out unevenly), NaN padding lanes never reaching a real channel, and short
/// buffers refused.
#[test]
fn winograd_matches_the_definition() {
    let mut rng = SplitMix64::new(31);
    #[rustfmt::skip]
    #[allow(clippy::type_complexity)]
    let cases: &[(usize, usize, usize, usize, [usize; 4], usize, Activation)] = &[
        (16, 16, 8, 8, [1; 4], 1, Activation::None),
        (5, 17, 7, 9, [1; 4], 1, Activation::Relu),
        (33, 20, 13, 11, [2; 4], 2, Activation::Relu6),
        (48, 40, 22, 40, [4; 4], 4, Activation::Relu),
        (24, 40, 9, 15, [0, 1, 2, 0], 1, Activation::Silu),
        (20, 16, 5, 6, [0; 4], 1, Activation::None),
        (8, 8, 3, 3, [3; 4], 3, Activation::Relu),
        (16, 32, 40, 37, [1; 4], 1, Activation::None),
        // 3 bands of rows (tiles of 4) and 2 output blocks: 2 threads
        // split the blocks.
        (20, 32, 11, 12, [1; 4], 1, Activation::Relu6),
        // 3 bands at dilation 2 (tiles of 4), 5 at dilation 4 (tiles of
        // 2): 2 threads split the rows' phases (rows mod d).
        (24, 20, 22, 12, [2; 4], 2, Activation::Relu),
        (16, 16, 40, 10, [4; 4], 4, Activation::None),
    ];
    for (&(ci, co, h, w, padding, d, act), m) in cases.iter().flat_map(|c| [(c, 2), (c, 4)]) {
        let ho = h + padding[0] + padding[2] - 2 * d;
        let wo = w + padding[1] + padding[3] - 2 * d;
        let st = step(padding, d, act);
        let mut r = |len: usize| {
            (0..len)
                .map(|_| rng.uniform(-1.0, 1.0) as f32)
                .collect::<Vec<_>>()
        };
        let (x, wt, b) = (r(ci * h * w), r(co * ci * 9), r(co));
        let (want, scale) = reference(&x, &wt, &b, [ci, h, w], [co, ho, wo], padding, d, act);
        let packed = packed_winograd(&wt, co, ci, m);
        let xin = to_blocked(&x, ci, h * w);
        let op = Winograd {
            x: &xin,
            w: &packed,
            tile: m,
            bias: Some(&b),
            st: &st,
            in_shape: [ci, h, w],
            out_shape: [co, ho, wo],
        };
        let per = winograd_scratch_len(ci, co, m);
        let olen = co.div_ceil(BLOCK) * BLOCK * ho * wo;
        let mut out = vec![f32::NAN; olen];
        let mut scratch = vec![0.0; 3 * per];
        assert!(winograd(&op, &mut out, &mut scratch, per, Par::SERIAL));
        let got = from_blocked(&out, co, ho * wo);
        let case = format!("F({m}x{m}) ({ci}->{co}, {h}x{w}, pad {padding:?}, d {d})");
        // F(2×2) adds and subtracts only; F(4×4)'s constants (up to 8)
        // round more (1e-6 of the scale measured in f32 by numpy).
        let tol = if m == 2 { 2e-6 } else { 1e-5 };
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                ((g - e).abs() as f64) <= tol * scale,
                "{case} at {i}: {g} vs {e} (scale {scale})"
            );
        }
        #[cfg(feature = "std")]
        for threads in [2, 3] {
            let pool = sld_core::nn::Pool::new(threads).unwrap();
            let mut o = vec![f32::NAN; olen];
            assert!(winograd(&op, &mut o, &mut scratch, per, Par::new(Some(&pool))));
            let o = from_blocked(&o, co, ho * wo);
            assert!(
                o.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{case} on {threads} threads"
            );
        }
        // Too-short buffers and scratch are refused, not read.
        assert!(!winograd(
            &op,
            &mut out[..olen - 1],
            &mut scratch,
            per,
            Par::SERIAL
        ));
        assert!(!winograd(
            &op,
            &mut out,
            &mut scratch[..per - 1],
            per - 1,
            Par::SERIAL
        ));
        let short = Winograd {
            x: &xin[..xin.len() - 1],
            ..op
        };
        assert!(!winograd(&short, &mut out, &mut scratch, per, Par::SERIAL));
    }
}
