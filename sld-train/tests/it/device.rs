//! `--device`: the choice is reported, a device that cannot be had is a
//! clear error that leaves the output folder untouched, and the device is
//! not part of a checkpoint (a run resumes on another device, bit for bit
//! the same on the CPU). On a build without `cuda` (this one, in CI) every
//! choice resolves to the CPU, so what runs here is the device-generic
//! path; `scripts/gpu-check.sh` runs the CUDA side where there is a GPU.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{f32_tensors, run, sld, small_scene};

/// A 16-image 96×64 scene with 8 landmarks named `name`: (scene, landmarks file).
fn scene(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    small_scene(dir, name, 16, 8, 5)
}

/// The small network, input and batch of every run here.
const SMALL: [&str; 14] = [
    "--arch",
    "small",
    "--width",
    "8",
    "--head-channels",
    "8",
    "--input-width",
    "96",
    "--input-height",
    "64",
    "--batch",
    "4",
    "--seed",
    "3",
];

fn train(scene: &Path, lm: &Path, out: &Path, epochs: u32, device: &str, resume: bool) -> Command {
    let mut c = sld();
    c.args(["train", "full"])
        .args(SMALL)
        .args([
            "--validate-every",
            "0",
            "--epochs",
            &epochs.to_string(),
            "--device",
            device,
        ])
        .arg("--scene")
        .arg(scene)
        .arg("--landmarks")
        .arg(lm)
        .arg("--out")
        .arg(out);
    if resume {
        c.arg("--resume");
    }
    c
}

#[test]
fn the_device_is_reported_checked_first_and_not_saved_in_checkpoints() {
    let dir = std::env::temp_dir().join(format!("sld-device-{}", std::process::id()));
    let (s, lm) = scene(&dir, "scene");
    let cuda_built = sld_train::device::CUDA_BUILT;

    // A device this build cannot have: a clear error, nothing written.
    if !cuda_built {
        let out = dir.join("refused");
        let o = train(&s, &lm, &out, 1, "cuda:1", false).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains("--device cuda:1")
                && err.contains("built without CUDA")
                && err.contains("--features cuda"),
            "{err}"
        );
        assert!(!out.exists(), "a refused device must leave no output folder");
    }
    let bad = train(&s, &lm, &dir.join("bad"), 1, "cuda:x", false)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("give cpu, cuda"));

    // Two epochs on the CPU in one go, against one epoch on the CPU and a
    // resume with `auto` (the CPU here): the same weights, bit for bit.
    let straight = dir.join("straight");
    let o = run(&mut train(&s, &lm, &straight, 2, "cpu", false));
    assert!(String::from_utf8_lossy(&o.stderr).contains("training on cpu"));
    let split = dir.join("split");
    run(&mut train(&s, &lm, &split, 1, "cpu", false));
    let o = run(&mut train(&s, &lm, &split, 2, "auto", true));
    let said = String::from_utf8_lossy(&o.stderr);
    let want = if cuda_built {
        "training on "
    } else {
        "training on cpu"
    };
    assert!(said.contains(want), "{said}");
    if !cuda_built {
        let a = std::fs::read(straight.join("model.sld")).unwrap();
        let b = std::fs::read(split.join("model.sld")).unwrap();
        let tensors = |bytes: &[u8]| -> std::collections::BTreeMap<String, Vec<u8>> {
            let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
            st.tensors()
                .into_iter()
                .map(|(n, v)| (n, v.data().to_vec()))
                .collect()
        };
        assert_eq!(tensors(&a), tensors(&b));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Loss `Σ y² / 2 + Σ y·r` over every output map `y` (`r` a fixed random
/// map, so no gradient is symmetric by accident) and its gradient for
/// every weight, on `dev`: on the CPU with its custom ops or, under
/// `generic`, the Candle ops CUDA runs.
fn loss_and_gradients(
    net: &sld_train::net::arch::Network,
    input: &[usize; 4],
    dev: &candle_core::Device,
    generic: bool,
) -> (f64, std::collections::BTreeMap<String, Vec<f32>>) {
    use candle_core::{Tensor, Var};
    use sld_train::net::graph::{forward, with_generic_ops};
    let dev = dev.clone();
    let mut rng = sld_core::rng::SplitMix64::new(11);
    let mut noise = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.unit_f64() as f32 * 2.0 - 1.0).collect() };
    let vars: Vec<(String, Var)> = net
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                Var::from_vec(t.data.clone(), t.shape.as_slice(), &dev).unwrap(),
            )
        })
        .collect();
    let weights = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let x = Tensor::from_vec(noise(input.iter().product()), input.as_slice(), &dev).unwrap();
    let run = || forward(&net.info.graph, &weights, &x).unwrap();
    let ys = if generic { with_generic_ops(run) } else { run() };
    let mut loss = Tensor::new(0f32, &dev).unwrap();
    for y in &ys {
        let r = Tensor::from_vec(noise(y.elem_count()), y.dims(), &dev).unwrap();
        let term = ((y.sqr().unwrap().sum_all().unwrap() * 0.5).unwrap()
            + (y * r).unwrap().sum_all().unwrap())
        .unwrap();
        loss = (loss + term).unwrap();
    }
    let grads = loss.backward().unwrap();
    let g = vars
        .iter()
        .map(|(n, v)| {
            let g = grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {n}"));
            (n.clone(), g.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        })
        .collect();
    (loss.to_scalar::<f32>().unwrap() as f64, g)
}

/// The networks of each training mode: full (small backbone + scene head;
/// Lite0 + ASPP), head (the scene and wide heads on backbone features),
/// backbone (two light heads), at 48×32.
fn mode_networks() -> Vec<(&'static str, sld_train::net::arch::Network)> {
    use sld_train::net::arch::{add_heads, build, BackboneKind, HeadKind, NetSpec};
    use sld_train::net::builder::GraphBuilder;
    let spec = |heads: usize| NetSpec {
        input_width: 48,
        input_height: 32,
        head_channels: 8,
        heads,
        seed: 4,
        heatmaps: Default::default(),
        input: Default::default(),
    };
    // Head mode trains the head alone on backbone features (16 channels
    // at 1/8 of 96×64 here).
    let head_only = |kind: HeadKind| {
        let mut b = GraphBuilder::new(16, 8, 12, 5);
        let outs = add_heads(&mut b, kind, sld_core::model::INPUT, 8, 5, 1);
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let (info, tensors) = b.finish(&refs, 1, "p");
        sld_train::net::arch::Network {
            info,
            tensors,
            feature_channels: 16,
        }
    };
    vec![
        (
            "full, small + scene",
            build(
                BackboneKind::Small { width: 8 },
                HeadKind::Scene,
                &spec(1),
                5,
                "p",
            ),
        ),
        (
            "full, lite0 + aspp",
            build(BackboneKind::Lite0S8, HeadKind::Aspp, &spec(1), 5, "p"),
        ),
        ("head, scene", head_only(HeadKind::Scene)),
        ("head, wide", head_only(HeadKind::Wide)),
        (
            "backbone, small + 2 light heads",
            build(
                BackboneKind::Small { width: 8 },
                HeadKind::Light,
                &spec(2),
                6,
                "p",
            ),
        ),
    ]
}

/// One training step's loss and every gradient on the CPU with its custom
/// ops against `(dev, generic)`, within 1e-4 relative (gradients: of the
/// tensor's largest magnitude).
fn assert_step_parity(dev: &candle_core::Device, generic: bool) {
    for (what, net) in mode_networks() {
        let g = &net.info.graph.input;
        let input = [2, g.channels as usize, g.height as usize, g.width as usize];
        let (la, ga) = loss_and_gradients(&net, &input, &candle_core::Device::Cpu, false);
        let (lb, gb) = loss_and_gradients(&net, &input, dev, generic);
        assert!(
            (la - lb).abs() <= 1e-4 * la.abs().max(1.0),
            "{what}: loss {la} against {lb}"
        );
        assert_eq!(ga.len(), net.tensors.len());
        for (name, a) in &ga {
            let b = &gb[name];
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                worst <= 1e-4 * scale,
                "{what}: gradient of {name} differs by {worst} (scale {scale})"
            );
        }
    }
}

/// What CUDA runs instead of the CPU's custom ops (Candle's `conv2d` for
/// k×k convolutions, a broadcast bias add) gives the same loss and every
/// gradient within 1e-4 relative, on the networks of each training mode.
/// The custom ops' own gradients are checked against finite differences
/// in `net::unfold` and `net::bias`; this checks the switch between them.
#[test]
fn the_ops_cuda_runs_give_the_cpu_ops_loss_and_gradients() {
    assert_step_parity(&candle_core::Device::Cpu, true);
}

/// The same step on the first CUDA GPU against the CPU (run by
/// `scripts/gpu-check.sh`; needs a `cuda` build and a GPU).
#[test]
#[cfg_attr(
    not(feature = "cuda"),
    ignore = "needs --features cuda and a GPU: scripts/gpu-check.sh"
)]
fn a_cuda_training_step_gives_the_cpu_loss_and_gradients() {
    let dev = sld_train::device::open(sld_train::device::DeviceChoice::Cuda(0))
        .unwrap_or_else(|e| panic!("this check needs a CUDA GPU: {e}"));
    assert_step_parity(&dev, false);
}

/// Every tensor of a `.sld` (safetensors) file as `f32`, by name.
fn weights(path: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    f32_tensors(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The largest difference between two weight sets, relative to each
/// tensor's largest magnitude.
fn worst_relative(
    a: &std::collections::BTreeMap<String, Vec<f32>>,
    b: &std::collections::BTreeMap<String, Vec<f32>>,
) -> f32 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .map(|(n, x)| {
            let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            x.iter().zip(&b[n]).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
        })
        .fold(0f32, f32::max)
}

/// `--devices cpu,cpu[,cpu]`: N ranks, each computing its shard of every
/// batch of 4 and summing gradients through the in-process all-reduce,
/// give the weights one rank gives with the whole batch, to float
/// rounding, in full and in backbone mode. Three ranks split a batch of 4
/// unevenly (1, 1, 2) and the epoch's last, short batch leaves a rank
/// empty. (No augmentation: each rank draws its own stream.)
#[test]
fn n_ranks_on_shards_give_the_weights_of_one_rank_on_the_whole_batch() {
    let dir = std::env::temp_dir().join(format!("sld-ranks-{}", std::process::id()));
    let (s, lm) = scene(&dir.join("a"), "room-a");
    let (s2, lm2) = scene(&dir.join("b"), "room-b");
    let full = |out: &Path, devices: Option<&str>| {
        let mut c = train(&s, &lm, out, 3, "cpu", false);
        c.args(["--jitter", "0"]);
        if let Some(d) = devices {
            c.args(["--devices", d]);
        }
        run(&mut c);
        weights(&out.join("model.sld"))
    };
    let one = full(&dir.join("one"), None);
    for (devices, ranks) in [("cpu,cpu", 2), ("cpu,cpu,cpu", 3)] {
        let got = full(&dir.join(format!("ranks{ranks}")), Some(devices));
        let worst = worst_relative(&one, &got);
        assert!(
            worst < 1e-4,
            "full, {ranks} ranks: weights differ by {worst} relative"
        );
    }

    let backbone = |out: &Path, devices: Option<&str>| {
        let mut c = sld();
        c.args(["train", "backbone"])
            .args(SMALL)
            .args(["--jitter", "0"])
            .args(["--validate-every", "0", "--epochs", "2"])
            .arg("--scene")
            .arg(&s)
            .arg("--scene")
            .arg(&s2)
            .arg("--landmarks")
            .arg(&lm)
            .arg("--landmarks")
            .arg(&lm2)
            .arg("--out")
            .arg(out);
        if let Some(d) = devices {
            c.args(["--devices", d]);
        }
        run(&mut c);
        weights(&out.join("backbone.safetensors"))
    };
    let one = backbone(&dir.join("bb-one"), None);
    let two = backbone(&dir.join("bb-two"), Some("cpu,cpu"));
    let worst = worst_relative(&one, &two);
    assert!(
        worst < 1e-4,
        "backbone, 2 ranks: weights differ by {worst} relative"
    );

    // A GPU named twice is refused before anything is written.
    let out = dir.join("twice");
    let o = train(&s, &lm, &out, 1, "cpu", false)
        .args(["--devices", "cuda:0,0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).ok();
}
