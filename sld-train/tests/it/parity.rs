//! Parity: a network built in Candle, exported to `.sld`, must give the
//! same heatmaps in sld-core (max abs diff ≤ 1e-4 × max |activation|).

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use sld_core::model::{Activation, Model};
use sld_core::rng::SplitMix64;
use sld_train::net::builder::{ConvSpec, GraphBuilder};
use sld_train::net::export::{to_sld_bytes, NamedTensor};
use sld_train::net::graph::forward;
use sld_train::net::heads::aspp_head;
use sld_train::net::lite0::efficientnet_lite0_s8;

fn random_landmarks(n: usize) -> Vec<[f32; 3]> {
    (0..n)
        .map(|i| [i as f32 * 0.1, 1.0, 2.0 - i as f32 * 0.01])
        .collect()
}

/// Runs both implementations on one random input; returns (max abs diff,
/// max |activation|) over all heatmaps.
fn compare(info: &sld_core::model::ModelInfo, tensors: &[NamedTensor], seed: u64) -> (f32, f32) {
    let bytes = to_sld_bytes(info, tensors, &random_landmarks(info.landmarks as usize)).unwrap();
    let model = Model::load(bytes.as_slice()).unwrap();
    let plan = model.plan();
    let [c, h, w] = plan.tensors[0].shape;
    let mut rng = SplitMix64::new(seed);
    let input: Vec<f32> = (0..c * h * w).map(|_| rng.unit_f64() as f32).collect();

    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len];
    sld_core::nn::input_mut(plan, &mut arena)
        .unwrap()
        .copy_from_slice(&input);
    sld_core::nn::run(plan, model.weights(), &mut arena, &mut scratch).unwrap();

    let dev = Device::Cpu;
    let weights: HashMap<String, Tensor> = tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &dev).unwrap(),
            )
        })
        .collect();
    let x = Tensor::from_vec(input, (1, c, h, w), &dev).unwrap();
    let outs = forward(&info.graph, &weights, &x).unwrap();
    let (mut diff, mut peak) = (0f32, 0f32);
    for (k, o) in outs.iter().enumerate() {
        let reference: Vec<f32> = o.flatten_all().unwrap().to_vec1().unwrap();
        let ours = sld_core::nn::output(plan, &arena, k).unwrap();
        assert_eq!(reference.len(), ours.len());
        for (a, b) in reference.iter().zip(ours) {
            diff = diff.max((a - b).abs());
            peak = peak.max(a.abs());
        }
    }
    (diff, peak)
}

#[test]
fn every_op_type_matches_candle() {
    // Stem: 3×3 stride 2 with TF-SAME (asymmetric) padding.
    let mut b = GraphBuilder::new(3, 45, 62, 1);
    let stem = b.conv(
        "stem",
        "image",
        ConvSpec::new(16, 3).stride(2).act(Activation::Relu6),
    );
    // Depthwise 3×3 and 5×5 (stride 2), pointwise 1×1.
    let dw = b.conv("dw", &stem, ConvSpec::new(16, 3).groups(0).act(Activation::Relu6));
    let pw = b.conv("pw", &dw, ConvSpec::new(16, 1));
    let res = b.add("res", &[&pw, &stem], Activation::Relu);
    let dw5 = b.conv(
        "dw5",
        &res,
        ConvSpec::new(16, 5).stride(2).groups(0).act(Activation::Silu),
    );
    // Grouped (2 groups) and dilated 3×3 convolutions, explicit padding.
    let grp = b.conv("grp", &dw5, ConvSpec::new(24, 3).groups(2).act(Activation::Relu));
    let dil = b.conv(
        "dil",
        &dw5,
        ConvSpec::new(8, 3)
            .dilation(2)
            .padding([2, 2, 2, 2])
            .act(Activation::Relu),
    );
    let dil3 = b.conv("dil3", &dw5, ConvSpec::new(8, 3).dilation(3));
    // Depthwise, dilated, with padding such that no kernel column covers a
    // whole output row (the zero-fill path of the depthwise kernel).
    let dwd = b.conv(
        "dwd",
        &dw5,
        ConvSpec::new(16, 3).groups(0).dilation(2).padding([1, 1, 3, 3]),
    );
    let cat = b.concat("cat", &[&grp, &dil, &dil3, &dwd]);
    let act = b.activation("act", &cat, Activation::Silu);
    // 1×1 at stride 2 is not pointwise-fast: the im2col path.
    let s2 = b.conv("s2", &act, ConvSpec::new(12, 1).stride(2).padding([0, 0, 0, 0]));
    // Two heads sharing the trunk.
    let h0 = b.conv("head0", &s2, ConvSpec::new(7, 1));
    let h1 = b.conv("head1", &s2, ConvSpec::new(5, 3));
    let (info, tensors) = b.finish(&[&h0, &h1], 8, "parity");
    let (diff, peak) = compare(&info, &tensors, 2);
    assert!(peak > 0.1, "degenerate test: activations vanish");
    assert!(
        diff <= 1e-4 * peak,
        "max abs diff {diff} vs max |activation| {peak}"
    );
}

#[test]
fn efficientnet_lite0_stride8_with_aspp_head_matches_candle() {
    // Small input keeps the debug-build test fast; same graph as 640×352.
    let mut b = GraphBuilder::new(3, 64, 96, 3);
    let trunk = efficientnet_lite0_s8(&mut b);
    assert_eq!(b.shape(&trunk), [320, 8, 12]);
    let head = aspp_head(&mut b, "head", &trunk, 80, 125);
    let (info, tensors) = b.finish(&[&head], 8, "lite0");
    let (diff, peak) = compare(&info, &tensors, 4);
    assert!(peak > 0.1);
    assert!(
        diff <= 1e-4 * peak,
        "max abs diff {diff} vs max |activation| {peak}"
    );
}

#[test]
fn atrous_efficientnet_lite0_with_scene_head_matches_candle() {
    use sld_train::net::heads::{skip_head, SCENE_HEAD};
    use sld_train::net::lite0::efficientnet_lite0_atrous8;
    let mut b = GraphBuilder::new(3, 64, 96, 5);
    let trunk = efficientnet_lite0_atrous8(&mut b);
    assert_eq!(b.shape(&trunk), [320, 8, 12]);
    let head = skip_head(&mut b, "head", &trunk, 32, 20, SCENE_HEAD);
    let (info, tensors) = b.finish(&[&head], 8, "lite0-atrous");
    // Dilated depthwise convolutions are present (2 and 4).
    let dil: Vec<u32> = info
        .graph
        .layers
        .iter()
        .filter_map(|l| match &l.op {
            sld_core::model::Op::Conv2d(c) if c.groups > 1 => Some(c.dilation[0]),
            _ => None,
        })
        .collect();
    assert!(dil.contains(&2) && dil.contains(&4), "{dil:?}");
    let (diff, peak) = compare(&info, &tensors, 4);
    assert!(peak > 0.1);
    assert!(
        diff <= 1e-4 * peak,
        "max abs diff {diff} vs max |activation| {peak}"
    );
}
