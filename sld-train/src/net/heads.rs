//! Heatmap heads: SLD*'s ASPP head, and the faster-training paper's skip
//! heads (the scene head of head training, the light head of backbone
//! training).

use sld_core::model::Activation;

use super::builder::{ConvSpec, GraphBuilder};

/// SLD*'s heatmap head: ASPP (four 3×3 branches, dilation 1–4, ReLU,
/// concatenated) then a 1×1 convolution to `landmarks` heatmaps.
pub fn aspp_head(b: &mut GraphBuilder, name: &str, input: &str, branch: usize, landmarks: usize) -> String {
    let branches: Vec<String> = (1..=4)
        .map(|d| {
            b.conv(
                &format!("{name}.aspp{d}"),
                input,
                ConvSpec::new(branch, 3).dilation(d).act(Activation::Relu),
            )
        })
        .collect();
    let refs: Vec<&str> = branches.iter().map(|s| s.as_str()).collect();
    let cat = b.concat(&format!("{name}.cat"), &refs);
    b.conv(&format!("{name}.heatmaps"), &cat, ConvSpec::new(landmarks, 1))
}

/// The faster-training paper's scene head: two blocks, each a dilated 3×3
/// convolution (ReLU) plus a 1×1-convolution skip, summed and ReLU'd
/// (dilations 2 and 4). `(kernel, dilation)` per block, for [`skip_head`].
pub const SCENE_HEAD: &[(usize, usize)] = &[(3, 2), (3, 4)];

/// The scene head widened: dilations 2, 4, 8 and 16 at stride 8 see
/// ±60 cells, most of a 320×176 image, so a landmark on repetitive
/// texture (bricks, tiles) is told apart by what surrounds it.
pub const WIDE_HEAD: &[(usize, usize)] = &[(3, 2), (3, 4), (3, 8), (3, 16)];

/// The lighter head of backbone training (the faster-training paper): one
/// block of a 1×1 convolution (ReLU) plus a 1×1 skip. Being per-pixel, it
/// leaves all spatial reasoning to the shared backbone. For [`skip_head`].
pub const LIGHT_HEAD: &[(usize, usize)] = &[(1, 1)];

/// A heatmap head of skip blocks (`blocks`: `(kernel, dilation)` each, e.g.
/// [`SCENE_HEAD`] or [`LIGHT_HEAD`]), `channels` wide, then a 1×1
/// convolution to `landmarks` heatmaps. Layers `NAME.blockI.{conv,skip,add}`
/// and `NAME.heatmaps`; returns the heatmap tensor.
pub fn skip_head(
    b: &mut GraphBuilder,
    name: &str,
    input: &str,
    channels: usize,
    landmarks: usize,
    blocks: &[(usize, usize)],
) -> String {
    let mut x = input.to_string();
    for (i, &(k, d)) in blocks.iter().enumerate() {
        x = skip_block(b, &format!("{name}.block{i}"), &x, channels, k, d);
    }
    b.conv(&format!("{name}.heatmaps"), &x, ConvSpec::new(landmarks, 1))
}

/// `relu(conv_k×k,dilation(x) (ReLU) + conv_1×1(x))`: layers `NAME.conv`,
/// `NAME.skip`, `NAME.add`, all `channels` wide. Returns the sum.
fn skip_block(
    b: &mut GraphBuilder,
    name: &str,
    x: &str,
    channels: usize,
    k: usize,
    dilation: usize,
) -> String {
    let y = b.conv(
        &format!("{name}.conv"),
        x,
        ConvSpec::new(channels, k)
            .dilation(dilation)
            .act(Activation::Relu),
    );
    let s = b.conv(&format!("{name}.skip"), x, ConvSpec::new(channels, 1));
    b.add(&format!("{name}.add"), &[&y, &s], Activation::Relu)
}
