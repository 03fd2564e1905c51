//! EfficientNet-Lite0 trunks (stem + 16 MBConv blocks, ReLU6, no SE):
//! SLD*'s stride-8 variant, the ImageNet original at stride 32, and the
//! atrous stride-8 variant that head training freezes.

use sld_core::model::{Activation, INPUT};

use super::builder::{ConvSpec, GraphBuilder};

/// `(repeats, kernel, expansion, channels)` of Lite0's seven stages.
pub const LITE0_STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 3, 1, 16),
    (2, 3, 6, 24),
    (2, 5, 6, 40),
    (3, 3, 6, 80),
    (3, 5, 6, 112),
    (4, 5, 6, 192),
    (1, 3, 6, 320),
];

/// Kernel, stride, expansion and dilation of one MBConv block.
#[derive(Clone, Copy)]
struct Mb {
    k: usize,
    stride: usize,
    expand: usize,
    dilation: usize,
}

/// One EfficientNet-Lite inverted-residual block (expand 1×1 → depthwise
/// k×k → project 1×1; ReLU6; residual when shapes allow). Returns its output.
fn mbconv(b: &mut GraphBuilder, name: &str, input: &str, out: usize, m: Mb) -> String {
    let Mb {
        k,
        stride,
        expand,
        dilation,
    } = m;
    let ci = b.shape(input)[0];
    let mut x = input.to_string();
    if expand != 1 {
        x = b.conv(
            &format!("{name}.expand"),
            &x,
            ConvSpec::new(ci * expand, 1).act(Activation::Relu6),
        );
    }
    x = b.conv(
        &format!("{name}.dw"),
        &x,
        ConvSpec::new(ci * expand, k)
            .stride(stride)
            .dilation(dilation)
            .groups(0)
            .act(Activation::Relu6),
    );
    x = b.conv(&format!("{name}.project"), &x, ConvSpec::new(out, 1));
    if stride == 1 && ci == out {
        x = b.add(&format!("{name}.add"), &[&x, input], Activation::None);
    }
    x
}

/// EfficientNet-Lite0 trunk at output stride 8, as SLD* uses it: the
/// 40- and 80-channel stages keep stride 1; output 320 channels at 1/8.
pub fn efficientnet_lite0_s8(b: &mut GraphBuilder) -> String {
    efficientnet_lite0(b, 8)
}

/// EfficientNet-Lite0 trunk (stem + 16 MBConv blocks, ReLU6, no SE) at
/// output stride 8 (SLD*) or 32 (the ImageNet original). Layer names
/// (`stem`, `blocks.S.B.{expand,dw,project}`) are what
/// `sld weights import` writes.
pub fn efficientnet_lite0(b: &mut GraphBuilder, output_stride: usize) -> String {
    // Stage strides: the original's, or SLD*'s with stages 2 and 3 at stride 1.
    let strides: [usize; 7] = if output_stride == 32 {
        [1, 2, 2, 2, 1, 2, 1]
    } else {
        [1, 2, 1, 1, 1, 2, 1]
    };
    lite0_trunk(b, strides, false)
}

/// EfficientNet-Lite0 at output stride 8 the DeepLab way: the original
/// strides up to 1/8, then each removed stride doubles the dilation of the
/// depthwise convolutions after it (stages 3–4 dilation 2, 5–6 dilation 4),
/// so every filter sees the scale it was trained at. Used for the frozen
/// ImageNet backbone of head training; 4× cheaper than SLD*'s variant,
/// which runs stages 2–4 at 1/4.
pub fn efficientnet_lite0_atrous8(b: &mut GraphBuilder) -> String {
    lite0_trunk(b, [1, 2, 2, 2, 1, 2, 1], true)
}

fn lite0_trunk(b: &mut GraphBuilder, strides: [usize; 7], atrous_after_8: bool) -> String {
    let mut x = b.conv(
        "stem",
        INPUT,
        ConvSpec::new(32, 3).stride(2).act(Activation::Relu6),
    );
    let (mut total, mut dilation) = (2usize, 1usize);
    for (si, &(n, k, e, c)) in LITE0_STAGES.iter().enumerate() {
        for bi in 0..n {
            let mut s = if bi == 0 { strides[si] } else { 1 };
            let d = dilation;
            if atrous_after_8 && s > 1 && total >= 8 {
                // Keep the resolution; the following blocks dilate instead.
                s = 1;
                dilation *= 2;
            } else {
                total *= s;
            }
            let m = Mb {
                k,
                stride: s,
                expand: e,
                dilation: if bi == 0 { d } else { dilation },
            };
            x = mbconv(b, &format!("blocks.{si}.{bi}"), &x, c, m);
        }
    }
    x
}
