//! Tests of `nn::conv`.

use sld_core::model::plan::{ConvStep, WeightRange};
use sld_core::model::{Activation, Shape};
use sld_core::nn::Par;
use sld_core::rng::SplitMix64;
use sld_core::testing::{conv2d, conv_scratch_len};

type ConvFn = fn(
    &ConvStep,
    Shape,
    Shape,
    &[f32],
    &[f32],
    Option<&[f32]>,
    Option<&[f32]>,
    &mut [f32],
    &mut [f32],
    Par<'_>,
) -> bool;

/// Direct convolution, the definition: a second implementation.
fn naive(
    st: &ConvStep,
    [ci, h, w]: Shape,
    [co, ho, wo]: Shape,
    x: &[f32],
    wt: &[f32],
    b: &[f32],
) -> Vec<f32> {
    let [kh, kw] = st.kernel;
    let (cig, cog) = (ci / st.groups, co / st.groups);
    let mut out = vec![0f32; co * ho * wo];
    for o in 0..co {
        let g = o / cog;
        for y in 0..ho {
            for xo in 0..wo {
                let mut acc = b[o] as f64;
                for c in 0..cig {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy =
                                (y * st.stride[0] + ky * st.dilation[0]) as isize - st.padding[0] as isize;
                            let ix =
                                (xo * st.stride[1] + kx * st.dilation[1]) as isize - st.padding[1] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let xi = x[((g * cig + c) * h + iy as usize) * w + ix as usize];
                            let wi = wt[((o * cig + c) * kh + ky) * kw + kx];
                            acc += xi as f64 * wi as f64;
                        }
                    }
                }
                out[(o * ho + y) * wo + xo] = st.activation.apply(acc as f32);
            }
        }
    }
    out
}

/// Every path of `conv2d` (1×1 GEMM, depthwise at strides 1 and 2 and
/// with dilation, im2col with groups, strides, dilation and asymmetric
/// padding; few channels in and out) against the direct definition, on
/// odd sizes that leave partial GEMM tiles. Runs on every architecture (CI runs it for
/// aarch64 under qemu).
#[test]
fn every_conv_path_matches_the_direct_definition() {
    // (ci, co, groups, k, stride, padding [t, l, b, r], dilation, h, w, act)
    #[allow(clippy::type_complexity)]
    #[rustfmt::skip]
    let cases: &[(
        usize,
        usize,
        usize,
        [usize; 2],
        [usize; 2],
        [usize; 4],
        [usize; 2],
        usize,
        usize,
        Activation,
    )] = &[
        (13, 21, 1, [1, 1], [1, 1], [0; 4], [1, 1], 9, 37, Activation::Relu),
        (3, 70, 1, [1, 1], [1, 1], [0; 4], [1, 1], 5, 19, Activation::None),
        (8, 8, 8, [3, 3], [1, 1], [1; 4], [1, 1], 11, 17, Activation::Relu6),
        (6, 6, 6, [5, 5], [2, 2], [2; 4], [1, 1], 13, 21, Activation::None),
        (5, 5, 5, [3, 3], [2, 2], [0, 0, 1, 1], [1, 1], 10, 15, Activation::Silu),
        (4, 4, 4, [3, 3], [1, 1], [2; 4], [2, 2], 9, 12, Activation::None),
        (3, 24, 1, [3, 3], [2, 2], [1; 4], [1, 1], 17, 23, Activation::Relu),
        (16, 32, 2, [3, 3], [1, 1], [1; 4], [1, 1], 8, 9, Activation::None),
        (7, 9, 1, [3, 3], [1, 1], [2; 4], [2, 2], 12, 14, Activation::Relu),
        (4, 12, 1, [4, 4], [4, 4], [0; 4], [1, 1], 16, 24, Activation::None),
        // Depthwise rows wider than a block (with a partial last block),
        // stride 3, stride 2 with dilation, an odd output height.
        (3, 3, 3, [5, 5], [1, 1], [2; 4], [1, 1], 7, 150, Activation::Relu6),
        (2, 2, 2, [3, 3], [3, 3], [1, 0, 1, 2], [1, 1], 10, 77, Activation::None),
        (3, 3, 3, [3, 3], [2, 2], [2; 4], [2, 2], 9, 70, Activation::Relu),
        (2, 2, 2, [1, 7], [1, 1], [0, 3, 0, 3], [1, 1], 5, 9, Activation::None),
        // Stride-1 convolutions read in place (implicit GEMM): 5×5,
        // asymmetric padding, no padding, wide rows, 1×3.
        (5, 7, 1, [5, 5], [1, 1], [2, 1, 2, 3], [1, 1], 9, 11, Activation::Relu6),
        (6, 4, 1, [3, 3], [1, 1], [0; 4], [1, 1], 8, 70, Activation::None),
        (3, 5, 1, [1, 3], [1, 1], [0, 1, 0, 1], [1, 3], 4, 66, Activation::Relu),
        // Few channels in and out (at most 4 × 36: one product per output
        // row, unpacked, at AVX2 and AVX-512), rows not a whole number of
        // its column steps.
        (1, 4, 1, [3, 3], [1, 1], [1; 4], [1, 1], 13, 70, Activation::Relu),
        (3, 3, 1, [3, 3], [1, 1], [2; 4], [2, 2], 9, 37, Activation::Silu),
        (4, 1, 1, [3, 3], [1, 1], [1, 0, 1, 2], [1, 1], 6, 5, Activation::None),
    ];
    let mut rng = SplitMix64::new(7);
    for &(ci, co, groups, kernel, stride, padding, dilation, h, w, activation) in cases {
        let [kh, kw] = kernel;
        let ho = (h + padding[0] + padding[2] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
        let wo = (w + padding[1] + padding[3] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
        let wlen = co * (ci / groups) * kh * kw;
        let st = ConvStep {
            input: 0,
            output: 1,
            weight: WeightRange { start: 0, len: wlen },
            bias: Some(WeightRange { start: wlen, len: co }),
            kernel,
            stride,
            padding,
            dilation,
            groups,
            residual: None,
            activation,
            packed: None,
            winograd: 0,
        };
        let mut r = |n: usize| (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect::<Vec<_>>();
        let (x, wt, b) = (r(ci * h * w), r(wlen), r(co));
        let want = naive(&st, [ci, h, w], [co, ho, wo], &x, &wt, &b);
        let max_error = |f: ConvFn| {
            let mut out = vec![f32::NAN; co * ho * wo];
            // Exactly what the plan reserves for this step.
            let mut scratch = vec![0f32; conv_scratch_len(&st, [ci, h, w], [co, ho, wo])];
            assert!(f(
                &st,
                [ci, h, w],
                [co, ho, wo],
                &x,
                &wt,
                Some(&b),
                None,
                &mut out,
                &mut scratch,
                Par::SERIAL
            ));
            out.iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        };
        let what = format!("case {ci}->{co} g{groups} k{kernel:?} s{stride:?} d{dilation:?}");
        let err = max_error(conv2d);
        assert!(err < 1e-4, "{what}, multiply then add: max error {err}");
        #[cfg(feature = "std")]
        {
            let err = max_error(sld_core::testing::conv2d_fused);
            assert!(err < 1e-4, "{what}, fused: max error {err}");
        }
    }
}
