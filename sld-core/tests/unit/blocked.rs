//! Tests of `nn::blocked`.

use sld_core::model::layout::{Layout, BLOCK};
use sld_core::model::plan::{ConvStep, WeightRange};
use sld_core::model::{Activation, Shape};
use sld_core::nn::Par;
use sld_core::rng::SplitMix64;
use sld_core::testing::{
    conv2d, conv_scratch_len, depthwise, direct, packed_depthwise, packed_direct, packed_pointwise,
    pointwise, Depthwise, Direct, Pointwise,
};

/// `[c, n]` planar → `[⌈c/16⌉, n, 16]`, padding lanes NaN (a kernel
/// that read them into a real channel would show it).
pub(crate) fn to_blocked(x: &[f32], c: usize, n: usize) -> Vec<f32> {
    let mut b = vec![f32::NAN; c.div_ceil(BLOCK) * BLOCK * n];
    for ch in 0..c {
        for p in 0..n {
            b[((ch / BLOCK) * n + p) * BLOCK + ch % BLOCK] = x[ch * n + p];
        }
    }
    b
}

pub(crate) fn from_blocked(b: &[f32], c: usize, n: usize) -> Vec<f32> {
    let mut x = vec![0.0; c * n];
    for ch in 0..c {
        for p in 0..n {
            x[ch * n + p] = b[((ch / BLOCK) * n + p) * BLOCK + ch % BLOCK];
        }
    }
    x
}

fn step(c: [usize; 2], kernel: [usize; 2], stride: usize, padding: [usize; 4], dilation: usize) -> ConvStep {
    let groups = if kernel == [1, 1] { 1 } else { c[0] };
    let wlen = c[1] * (c[0] / groups) * kernel[0] * kernel[1];
    ConvStep {
        input: 0,
        output: 1,
        weight: WeightRange { start: 0, len: wlen },
        bias: Some(WeightRange {
            start: wlen,
            len: c[1],
        }),
        kernel,
        stride: [stride; 2],
        padding,
        dilation: [dilation; 2],
        groups,
        residual: None,
        activation: Activation::None,
        packed: None,
        winograd: 0,
    }
}

/// The planar reference: `conv2d` (itself tested against the direct
/// definition in `conv`), with the residual and activation applied as
/// the plan's fusion does.
#[allow(clippy::too_many_arguments)]
fn planar(st: &ConvStep, i: Shape, o: Shape, x: &[f32], w: &[f32], b: &[f32], r: Option<&[f32]>) -> Vec<f32> {
    let mut out = vec![f32::NAN; o[0] * o[1] * o[2]];
    let mut scratch = vec![0.0; conv_scratch_len(st, i, o)];
    assert!(conv2d(
        st,
        i,
        o,
        x,
        w,
        Some(b),
        r,
        &mut out,
        &mut scratch,
        Par::SERIAL
    ));
    out
}

/// Runs `kernel` on 2 and 3 threads (rows split; blocks where rows are
/// fewer) and checks that its output, `co` channels × `n` pixels
/// (blocked or planar), has the bits of `got` (one thread's).
#[cfg(feature = "std")]
fn same_bits_on_threads(
    kernel: &dyn Fn(&mut [f32], Par<'_>) -> bool,
    len: usize,
    blocked: bool,
    co: usize,
    n: usize,
    got: &[f32],
) {
    for threads in [2, 3] {
        let pool = sld_core::nn::Pool::new(threads).unwrap();
        let mut out = vec![f32::NAN; len];
        assert!(kernel(&mut out, Par::new(Some(&pool))));
        let out = if blocked { from_blocked(&out, co, n) } else { out };
        assert_eq!(out.len(), got.len());
        assert!(
            out.iter().zip(got).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{threads} threads"
        );
    }
}

/// 1×1 convolutions in every layout pair, with residuals, every
/// activation, channel counts off the block size, pixel counts off the
/// tile, and more input channels than a k-slice: the blocked kernel
/// gives the planar GEMM's bits (the same sum in the same order), and
/// NaN padding lanes never reach a real channel.
#[test]
fn pointwise_gives_the_planar_gemms_bits_in_every_layout() {
    use Layout::{Blocked as B, Planar as P};
    let mut rng = SplitMix64::new(11);
    #[rustfmt::skip]
    let cases: &[(usize, usize, usize, Layout, Layout, bool, Activation)] = &[
        (3, 5, 7, P, B, false, Activation::Relu6),
        (20, 40, 50, B, B, true, Activation::None),
        (200, 70, 37, B, P, true, Activation::Relu),
        (16, 64, 197, B, B, false, Activation::Silu),
        (130, 130, 100, P, B, true, Activation::Relu6),
        (33, 17, 6, B, P, false, Activation::None),
        (24, 144, 1, B, B, true, Activation::Relu6),
        // Planar outputs transposed in registers (no residual; ReLU,
        // ReLU6 or none), in every tile shape: 6 px × 4 blocks (and the
        // 13 lanes of a 125-channel head), 8 × 3, 12 × 2, 24 × 1.
        (64, 125, 37, B, P, false, Activation::None),
        (20, 40, 50, B, P, false, Activation::Relu6),
        (16, 20, 30, B, P, false, Activation::None),
        (16, 16, 53, B, P, false, Activation::Relu),
        (3, 21, 29, P, P, false, Activation::Relu),
    ];
    for &(ci, co, n, il, ol, res, act) in cases {
        let mut st = step([ci, co], [1, 1], 1, [0; 4], 1);
        st.activation = act;
        let mut r = |len: usize| {
            (0..len)
                .map(|_| rng.uniform(-1.0, 1.0) as f32)
                .collect::<Vec<_>>()
        };
        let (x, w, b, resid) = (r(ci * n), r(co * ci), r(co), r(co * n));
        let want = planar(&st, [ci, n, 1], [co, n, 1], &x, &w, &b, res.then_some(&resid[..]));
        let g = sld_core::model::layout::pointwise_group();
        let packed = packed_pointwise(&w, co, ci);
        let xin = if il == B { to_blocked(&x, ci, n) } else { x.clone() };
        let rin = if ol == B {
            to_blocked(&resid, co, n)
        } else {
            resid.clone()
        };
        let op = Pointwise {
            x: &xin,
            in_layout: il,
            w: &packed,
            group: g,
            bias: Some(&b),
            residual: res.then_some(&rin[..]),
            out_layout: ol,
            ci,
            co,
            n,
            activation: act,
        };
        let olen = if ol == B {
            co.div_ceil(BLOCK) * BLOCK * n
        } else {
            co * n
        };
        let mut out = vec![f32::NAN; olen];
        assert!(pointwise(&op, &mut out, Par::SERIAL));
        let got = if ol == B { from_blocked(&out, co, n) } else { out };
        // Both sides pick the CPU's kernel level (FMA or not) by
        // themselves, so the bits must match.
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                e.to_bits(),
                "({ci},{co},{n},{il:?}->{ol:?}) at {i}: {g} vs {e}"
            );
        }
        // Split over threads: the same bits.
        #[cfg(feature = "std")]
        same_bits_on_threads(&|o, par| pointwise(&op, o, par), olen, ol == B, co, n, &got);
        // Too-short buffers are refused, not read.
        assert!(!pointwise(
            &Pointwise {
                x: &xin[..xin.len() - 1],
                ..op
            },
            &mut vec![0.0; olen],
            Par::SERIAL
        ));
    }
}

/// Depthwise convolutions, blocked in and out: strides 1 and 2 (and 3,
/// the run-time stride path), dilation, asymmetric padding, rows
/// narrower than a tile, channels off the block size; against the
/// planar kernel, and NaN padding lanes stay in their lanes.
#[test]
fn depthwise_matches_the_planar_kernel() {
    let mut rng = SplitMix64::new(12);
    #[rustfmt::skip]
    #[allow(clippy::type_complexity)]
    let cases: &[(usize, [usize; 2], usize, [usize; 4], usize, usize, usize, Activation)] = &[
        (24, [3, 3], 1, [1; 4], 1, 11, 37, Activation::Relu6),
        (40, [5, 5], 2, [2; 4], 1, 13, 21, Activation::None),
        (16, [5, 5], 1, [2; 4], 1, 9, 150, Activation::Relu),
        (5, [3, 3], 2, [0, 0, 1, 1], 1, 10, 15, Activation::Silu),
        (17, [3, 3], 1, [2; 4], 2, 9, 12, Activation::None),
        (3, [3, 3], 3, [1, 0, 1, 2], 1, 10, 77, Activation::Relu6),
        (33, [3, 3], 1, [1; 4], 1, 3, 4, Activation::Relu6),
    ];
    for &(c, kernel, s, padding, d, h, w, act) in cases {
        let mut st = step([c, c], kernel, s, padding, d);
        st.activation = act;
        let [kh, kw] = kernel;
        let ho = (h + padding[0] + padding[2] - d * (kh - 1) - 1) / s + 1;
        let wo = (w + padding[1] + padding[3] - d * (kw - 1) - 1) / s + 1;
        let mut r = |len: usize| {
            (0..len)
                .map(|_| rng.uniform(-1.0, 1.0) as f32)
                .collect::<Vec<_>>()
        };
        let (x, wt, b) = (r(c * h * w), r(c * kh * kw), r(c));
        let want = planar(&st, [c, h, w], [c, ho, wo], &x, &wt, &b, None);
        let packed = packed_depthwise(&wt, c, kh * kw);
        let xin = to_blocked(&x, c, h * w);
        let op = Depthwise {
            x: &xin,
            w: &packed,
            bias: Some(&b),
            st: &st,
            in_shape: [c, h, w],
            out_shape: [c, ho, wo],
        };
        let mut out = vec![f32::NAN; c.div_ceil(BLOCK) * BLOCK * ho * wo];
        assert!(depthwise(&op, &mut out, Par::SERIAL));
        let got = from_blocked(&out, c, ho * wo);
        #[cfg(feature = "std")]
        same_bits_on_threads(
            &|o, par| depthwise(&op, o, par),
            out.len(),
            true,
            c,
            ho * wo,
            &got,
        );
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                "(c {c}, k {kernel:?}, s {s}, d {d}, {h}x{w}) at {i}: {g} vs {e}"
            );
        }
        let short = out.len() - 1;
        assert!(!depthwise(&op, &mut out[..short], Par::SERIAL));
    }
}
/// Ungrouped convolutions, either layout in, either out: 3×3 at
/// dilations 1–4 (ASPP), 5×5, 1×3, stride 2 from blocked input and
/// strides 2 and 4 (a 4×4 patch convolution) from planar input of 1 to
/// 24 channels, asymmetric and zero padding, odd sizes, rows narrower
/// than a tile, tall maps (column tiles at the borders), channels off the
/// block size and past one weight group,
/// residuals and every activation; against the planar implicit GEMM /
/// im2col (the same sums in another order: within 1e-5), the same
/// bits on 2 and 3 threads, and NaN padding lanes never read.
#[test]
fn direct_matches_the_planar_convolution() {
    use Layout::{Blocked as B, Planar as P};
    let mut rng = SplitMix64::new(13);
    #[rustfmt::skip]
    #[allow(clippy::type_complexity)]
    let cases: &[(usize, usize, [usize; 2], [usize; 4], usize, usize, usize, usize, Layout, Layout, bool, Activation)] = &[
        (40, 80, [3, 3], [1; 4], 1, 1, 9, 30, B, P, false, Activation::Relu),
        (32, 80, [3, 3], [4; 4], 1, 4, 12, 23, B, P, false, Activation::Relu),
        (20, 37, [3, 3], [2; 4], 1, 2, 7, 19, B, B, true, Activation::Relu6),
        (17, 100, [5, 5], [2; 4], 1, 1, 8, 14, B, P, true, Activation::None),
        (48, 176, [3, 3], [3, 3, 3, 3], 1, 3, 6, 5, B, B, false, Activation::Silu),
        (16, 64, [1, 3], [0, 1, 0, 1], 1, 1, 5, 33, B, B, false, Activation::Relu),
        (24, 16, [3, 3], [0, 2, 1, 0], 1, 1, 4, 3, B, P, true, Activation::None),
        (5, 3, [3, 3], [1; 4], 1, 1, 6, 6, B, P, false, Activation::Relu),
        // Stride 2 from blocked input (XFeat's downsampling layers).
        (24, 64, [3, 3], [1; 4], 2, 1, 13, 31, B, B, false, Activation::Relu),
        (64, 128, [3, 3], [1; 4], 2, 1, 9, 16, B, P, true, Activation::Relu),
        (8, 24, [3, 3], [0, 1, 1, 0], 2, 1, 7, 40, B, B, false, Activation::None),
        (33, 80, [3, 3], [1; 4], 2, 2, 12, 27, B, B, false, Activation::Relu6),
        // Planar input: the image (1 or 3 channels) and few channels.
        (1, 4, [3, 3], [1; 4], 1, 1, 11, 37, P, B, false, Activation::Relu),
        (3, 32, [3, 3], [0, 0, 1, 1], 2, 1, 12, 33, P, B, false, Activation::Relu6),
        // The small network's stem: one output block, 24-pixel tiles at
        // AVX-512 (35 columns: one tile and one overlapping it).
        (3, 16, [3, 3], [0, 0, 1, 1], 2, 1, 10, 70, P, B, false, Activation::Relu),
        (4, 8, [3, 3], [1; 4], 2, 1, 9, 21, P, P, false, Activation::Relu),
        (1, 24, [4, 4], [0; 4], 4, 1, 16, 40, P, B, false, Activation::None),
        (24, 20, [3, 3], [1; 4], 1, 1, 5, 19, P, B, true, Activation::Silu),
        (2, 16, [3, 3], [2; 4], 3, 2, 10, 17, P, P, false, Activation::Relu),
        // Tall maps: border columns in column tiles (rows of the same
        // kernel rows, whole tiles and leftovers), at dilations 2 and 4,
        // stride 2, and rows narrower than a tile (every column a border).
        (64, 64, [3, 3], [2; 4], 1, 2, 22, 15, B, B, true, Activation::Relu),
        (16, 48, [3, 3], [4; 4], 1, 4, 23, 11, B, P, false, Activation::Relu6),
        (24, 32, [3, 3], [1; 4], 2, 1, 31, 13, B, B, false, Activation::None),
        (16, 96, [3, 3], [1; 4], 1, 1, 20, 5, B, P, true, Activation::Relu),
        // The interior's last column in column tiles (13 = 2×6 + 1).
        (64, 96, [3, 3], [1; 4], 1, 1, 9, 15, B, P, true, Activation::Relu),
        // Padding wider than the kernel: border outputs are the bias.
        (16, 32, [3, 3], [4; 4], 1, 1, 5, 6, B, B, false, Activation::None),
        (16, 24, [3, 3], [4; 4], 1, 1, 5, 14, B, P, true, Activation::Relu),
    ];
    for &(ci, co, kernel, padding, s, d, h, w, il, ol, res, act) in cases {
        let [kh, kw] = kernel;
        let mut st = step([ci, co], kernel, s, padding, d);
        st.groups = 1;
        st.weight.len = co * ci * kh * kw;
        st.bias = Some(WeightRange {
            start: st.weight.len,
            len: co,
        });
        st.activation = act;
        let ho = (h + padding[0] + padding[2] - d * (kh - 1) - 1) / s + 1;
        let wo = (w + padding[1] + padding[3] - d * (kw - 1) - 1) / s + 1;
        let n = ho * wo;
        let mut r = |len: usize| {
            (0..len)
                .map(|_| rng.uniform(-1.0, 1.0) as f32)
                .collect::<Vec<_>>()
        };
        let (x, wt, b, resid) = (r(ci * h * w), r(co * ci * kh * kw), r(co), r(co * n));
        let mut want = planar(&st, [ci, h, w], [co, ho, wo], &x, &wt, &b, None);
        // The plan fuses a residual before the activation; the planar
        // reference here adds it by hand.
        if res {
            let mut plain = st.clone();
            plain.activation = Activation::None;
            want = planar(&plain, [ci, h, w], [co, ho, wo], &x, &wt, &b, None);
            for (v, r) in want.iter_mut().zip(&resid) {
                *v = act.apply(*v + r);
            }
        }
        let packed = packed_direct(&wt, co, ci, kh * kw);
        let xin = if il == B {
            to_blocked(&x, ci, h * w)
        } else {
            x.clone()
        };
        let rin = if ol == B {
            to_blocked(&resid, co, n)
        } else {
            resid.clone()
        };
        let op = Direct {
            x: &xin,
            in_layout: il,
            w: &packed,
            bias: Some(&b),
            residual: res.then_some(&rin[..]),
            out_layout: ol,
            st: &st,
            in_shape: [ci, h, w],
            out_shape: [co, ho, wo],
        };
        let olen = if ol == B {
            co.div_ceil(BLOCK) * BLOCK * n
        } else {
            co * n
        };
        let mut out = vec![f32::NAN; olen];
        assert!(direct(&op, &mut out, Par::SERIAL));
        let got = if ol == B { from_blocked(&out, co, n) } else { out };
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                "({ci}->{co}, k {kernel:?}, s {s}, d {d}, {h}x{w}, {il:?}->{ol:?}) at {i}: {g} vs {e}"
            );
        }
        #[cfg(feature = "std")]
        same_bits_on_threads(&|o, par| direct(&op, o, par), olen, ol == B, co, n, &got);
        assert!(!direct(
            &Direct {
                w: &packed[..packed.len() - 1],
                ..op
            },
            &mut vec![0.0; olen],
            Par::SERIAL
        ));
    }
}
