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

/// Runs `info`'s graph in sld-core on a random input; returns the plan's
/// steps and every output.
/// [`compare`], then asserts the activations do not vanish (a peak over
/// 0.1) and sld-core is within 1e-4 of the peak of candle.
fn assert_matches_candle(info: &sld_core::model::ModelInfo, tensors: &[NamedTensor], seed: u64) {
    let (diff, peak) = compare(info, tensors, seed);
    assert!(peak > 0.1, "degenerate test: activations vanish");
    assert!(
        diff <= 1e-4 * peak,
        "max abs diff {diff} vs max |activation| {peak}"
    );
}

fn run_sld(
    info: &sld_core::model::ModelInfo,
    tensors: &[NamedTensor],
) -> (Vec<sld_core::model::Step>, Vec<Vec<f32>>) {
    let bytes = to_sld_bytes(info, tensors, &random_landmarks(info.landmarks as usize)).unwrap();
    let model = Model::load(bytes.as_slice()).unwrap();
    let plan = model.plan();
    let [c, h, w] = plan.tensors[0].shape;
    let mut rng = SplitMix64::new(5);
    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len];
    for v in sld_core::nn::input_mut(plan, &mut arena)
        .unwrap()
        .iter_mut()
        .take(c * h * w)
    {
        *v = rng.unit_f64() as f32;
    }
    sld_core::nn::run(plan, model.weights(), &mut arena, &mut scratch).unwrap();
    let outs = (0..plan.outputs.len())
        .map(|k| sld_core::nn::output(plan, &arena, k).unwrap().to_vec())
        .collect();
    (plan.steps.clone(), outs)
}

/// A residual add right after its 1×1 projection is fused into the
/// projection's store (the add becomes an alias of the same arena block);
/// the result is the same bits as the two steps run apart, which the
/// same graph gives when the projection's output is also a graph output
/// (then it cannot be fused).
#[test]
fn a_fused_residual_add_gives_the_same_bits_as_the_add() {
    use sld_core::model::Step;
    let build = |expose_projection: bool| {
        let mut b = GraphBuilder::new(3, 21, 70, 1);
        let stem = b.conv("stem", "image", ConvSpec::new(24, 3).act(Activation::Relu6));
        let dw = b.conv("dw", &stem, ConvSpec::new(24, 3).groups(0).act(Activation::Relu6));
        let pw = b.conv("pw", &dw, ConvSpec::new(24, 1));
        let res = b.add("res", &[&stem, &pw], Activation::Relu);
        // A later step that overwrites freed blocks, so a wrong alias shows.
        let tail = b.conv("tail", &res, ConvSpec::new(10, 3).act(Activation::Silu));
        let outs: Vec<&str> = if expose_projection {
            vec![tail.as_str(), res.as_str(), pw.as_str()]
        } else {
            vec![tail.as_str(), res.as_str()]
        };
        b.finish(&outs, 1, "fusion")
    };
    let (info, tensors) = build(false);
    let (steps, fused) = run_sld(&info, &tensors);
    let (info2, tensors2) = build(true);
    let (steps2, apart) = run_sld(&info2, &tensors2);
    assert!(
        steps.iter().any(|s| matches!(s, Step::Alias { .. })),
        "the add was not fused: {steps:?}"
    );
    assert!(
        steps2.iter().any(|s| matches!(s, Step::Add { .. })),
        "an exposed projection must not be fused"
    );
    for (k, (a, b)) in fused.iter().zip(&apart).enumerate() {
        assert_eq!(a.len(), b.len());
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "output {k} differs between fused and unfused runs");
    }
    assert!(
        fused[1].iter().any(|v| *v > 0.0),
        "degenerate test: the residual sum is all zero"
    );
}

/// `sld model forward --profile` prints one line per plan step (the fused
/// add and its projection named as such) and the totals per kernel path,
/// and writes the same heatmaps as the library.
#[test]
fn model_forward_profile_lists_every_step() {
    let mut b = GraphBuilder::new(3, 12, 40, 1);
    let stem = b.conv("stem", "image", ConvSpec::new(8, 3).act(Activation::Relu6));
    let pw = b.conv("pw", &stem, ConvSpec::new(8, 1));
    let res = b.add("res", &[&stem, &pw], Activation::None);
    let (info, tensors) = b.finish(&[&res], 1, "profile");
    let (steps, outs) = run_sld(&info, &tensors);
    let dir = std::env::temp_dir().join(format!("sld-profile-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.sld");
    std::fs::write(
        &model,
        to_sld_bytes(&info, &tensors, &random_landmarks(8)).unwrap(),
    )
    .unwrap();
    // The input run_sld used (seed 5).
    let mut rng = SplitMix64::new(5);
    let input: Vec<u8> = (0..3 * 12 * 40)
        .flat_map(|_| (rng.unit_f64() as f32).to_le_bytes())
        .collect();
    std::fs::write(dir.join("in.f32"), input).unwrap();
    // `sld model forward --profile` on the model and input above.
    let forward = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sld"));
        c.args(["model", "forward", "--repeats", "2", "--profile", "--input"])
            .arg(dir.join("in.f32"))
            .arg("--output")
            .arg(dir.join("out.f32"))
            .arg(&model);
        c
    };
    let out = forward().output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|t| t.parse::<usize>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), steps.len(), "{text}");
    assert!(
        rows[1].contains("1x1 gemm") && rows[1].contains("+residual"),
        "{text}"
    );
    assert!(rows[2].contains("add (fused above)"), "{text}");
    assert!(text.contains("totals per kernel path"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("forward_ms "), "{text}");
    let written: Vec<f32> = std::fs::read(dir.join("out.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(written, outs[0]);
    // Into a pipe nobody reads (`sld … | head` after head exits): a quiet
    // end, not a panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = forward().stdout(writer).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
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
    assert_matches_candle(&info, &tensors, 2);
}

#[test]
fn blocked_concatenations_match_candle() {
    // Channel-blocked (x86 with AVX2), a concatenation whose inputs hold
    // whole 16-channel blocks, bar the last, is the inputs' memory one
    // after the other, and stays blocked; one with 8 channels in the
    // middle stays planar. Both feed 1×1 heads, as the ASPP head does.
    let mut b = GraphBuilder::new(3, 23, 37, 1);
    let x = b.conv("x", "image", ConvSpec::new(32, 1).act(Activation::Relu6));
    let p = b.conv("p", &x, ConvSpec::new(16, 3).act(Activation::Relu));
    let q = b.conv("q", &x, ConvSpec::new(32, 1));
    let r = b.conv("r", &x, ConvSpec::new(8, 3).dilation(2).act(Activation::Relu6));
    let whole = b.concat("whole", &[&p, &q, &r]);
    let split = b.concat("split", &[&r, &p]);
    let h0 = b.conv("head0", &whole, ConvSpec::new(7, 1));
    let h1 = b.conv("head1", &split, ConvSpec::new(5, 1));
    let (info, tensors) = b.finish(&[&h0, &h1], 1, "concat");
    assert_matches_candle(&info, &tensors, 3);
}

#[test]
fn efficientnet_lite0_stride8_with_aspp_head_matches_candle() {
    // Small input keeps the debug-build test fast; same graph as 640×352.
    let mut b = GraphBuilder::new(3, 64, 96, 3);
    let trunk = efficientnet_lite0_s8(&mut b);
    assert_eq!(b.shape(&trunk), [320, 8, 12]);
    let head = aspp_head(&mut b, "head", &trunk, 80, 125);
    let (info, tensors) = b.finish(&[&head], 8, "lite0");
    assert_matches_candle(&info, &tensors, 4);
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
    assert_matches_candle(&info, &tensors, 4);
}

/// A model with a lighting-invariant input (`--input gray-lcn`): sld-core's
/// `Localizer`, given the 8-bit image, computes the same heatmaps as the
/// Candle network given the training pipeline's input for that image
/// (`samples::finish` of the stored raw RGB) — the robot sees what
/// training saw.
#[test]
fn normalised_input_matches_training_preprocessing() {
    use sld_train::net::arch::{build, BackboneKind, HeadKind, NetSpec};
    use sld_train::train::InputMode;
    for mode in [InputMode::GrayLcn, InputMode::RgbLcn] {
        let (w, h) = (64usize, 48usize);
        let spec = NetSpec {
            input_width: w,
            input_height: h,
            head_channels: 8,
            heads: 1,
            seed: 4,
            heatmaps: sld_core::model::HeatmapKind::Logits,
            input: mode,
        };
        let net = build(
            BackboneKind::Small { width: 8 },
            HeadKind::Scene,
            &spec,
            5,
            "parity",
        );
        assert_eq!(net.info.graph.input.channels as usize, mode.channels());
        let bytes = to_sld_bytes(&net.info, &net.tensors, &random_landmarks(5)).unwrap();
        let mut loc = sld_core::Localizer::new(bytes.as_slice()).unwrap();
        let mut rng = SplitMix64::new(11);
        let rgb: Vec<u8> = (0..w * h * 3).map(|_| (rng.unit_f64() * 255.0) as u8).collect();
        let img = sld_core::Image::new(
            w as u32,
            h as u32,
            w * 3,
            sld_core::image::PixelFormat::Rgb8,
            &rgb,
        )
        .unwrap();
        loc.heatmaps(&img).unwrap();
        let ours = loc.head_output(0).unwrap().to_vec();

        let plane = w * h;
        let mut raw = vec![0f32; 3 * plane];
        for i in 0..plane {
            for c in 0..3 {
                raw[c * plane + i] = rgb[i * 3 + c] as f32 / 255.0;
            }
        }
        let input = sld_train::train::samples::finish(&raw, &net.info.graph.input);
        let dev = Device::Cpu;
        let weights: HashMap<String, Tensor> = net
            .tensors
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &dev).unwrap(),
                )
            })
            .collect();
        let x = Tensor::from_vec(input, (1, mode.channels(), h, w), &dev).unwrap();
        let outs = forward(&net.info.graph, &weights, &x).unwrap();
        let reference: Vec<f32> = outs[0].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(reference.len(), ours.len());
        let peak = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = reference
            .iter()
            .zip(&ours)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff <= 1e-4 * peak.max(1.0), "{mode}: diff {diff}, peak {peak}");
    }
}

/// XFeat's trunk (average-pool skip as a strided conv, bilinear `resize`
/// fusion) with the scene head, random weights: sld-core and Candle agree.
#[test]
fn xfeat_trunk_with_scene_head_matches_candle() {
    use sld_train::net::arch::{build, BackboneKind, HeadKind, NetSpec};
    let spec = NetSpec {
        input_width: 80,
        input_height: 48,
        head_channels: 16,
        heads: 1,
        seed: 2,
        heatmaps: sld_core::model::HeatmapKind::Logits,
        input: Default::default(),
    };
    let net = build(BackboneKind::XFeat, HeadKind::Scene, &spec, 6, "xfeat");
    assert_eq!(net.feature_channels, 64);
    assert_eq!(net.info.graph.input.channels, 1);
    let (diff, peak) = compare(&net.info, &net.tensors, 5);
    assert!(diff <= 1e-4 * peak.max(1.0), "diff {diff}, peak {peak}");
    // Where the CPU takes channel-blocked kernels, every tensor of 16
    // channels or more (8 at AVX2) but the outputs is blocked: the
    // strided convolutions, the add of the pooled skip, both resizes and
    // the fusion add included (so the comparison above ran them blocked).
    if sld_core::nn::blocked::preferred() {
        let least = sld_core::model::layout::min_blocked_channels();
        let bytes = to_sld_bytes(&net.info, &net.tensors, &random_landmarks(6)).unwrap();
        let model = Model::load(bytes.as_slice()).unwrap();
        let plan = model.plan();
        for (i, t) in plan.tensors.iter().enumerate().skip(1) {
            let want = t.shape[0] >= least && !plan.outputs.contains(&i);
            assert_eq!(
                t.layout == sld_core::model::plan::Layout::Blocked,
                want,
                "tensor {i} {:?}",
                t.shape
            );
        }
    }
}
